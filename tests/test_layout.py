"""The layout imports keep: test modules share helper modules, not each other; a stage imports no later stage.

Imports are read from the source with ast, so one inside a function or under TYPE_CHECKING counts too.
"""

from __future__ import annotations

import ast
import importlib.util
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TESTS = ROOT / "tests"
PACKAGE = ROOT / "pytest_notebooks"
# The stages, in the order data flows through them. The modules at the package root are shared
# (below every stage: models.py, files.py, errors.py, gitinfo.py, ...), except the pytest wiring
# (above every stage). A module may import its own rank and those below it, never one above.
STAGES = ("cases", "run", "results", "review", "promote")
WIRING = ("pytest_notebooks.collect", "pytest_notebooks.interop", "pytest_notebooks.plugin")
# Imports that run back up today, each to be removed: an entry fails the test once it is gone, so
# the list only shrinks, and any import not listed here fails it at once.
KNOWN_UPWARD: set[tuple[str, str]] = set()  # none left: keep it so


def module_name(path: Path) -> str:
    """The dotted name of a module file below ROOT (a package's ``__init__.py`` names the package)."""
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def is_module(name: str) -> bool:
    """Whether ``name`` is a module or package of this checkout (the package or the tests)."""
    path = ROOT.joinpath(*name.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def imported_modules(source: str, module: str, is_package: bool = False) -> set[str]:
    """The modules that ``source``, the code of ``module``, imports; relative imports made absolute.

    ``from package import name`` imports ``package``, and ``package.name`` too when that is a module.
    """
    package = module if is_package else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = importlib.util.resolve_name("." * node.level + (node.module or ""), package)
            found.add(base)
            found.update(name for alias in node.names if is_module(name := f"{base}.{alias.name}"))
    return found


def imports_of(path: Path) -> set[str]:
    return imported_modules(path.read_text(encoding="utf-8"), module_name(path), path.name == "__init__.py")


def is_test_module(name: str) -> bool:
    parts = name.split(".")
    return len(parts) >= 2 and parts[0] == "tests" and parts[1].startswith("test_")


def rank(name: str) -> int | None:
    """Where a module of the package sits: 0 shared, 1.. the stages in order, then the wiring; None outside it."""
    parts = name.split(".")
    if parts[0] != "pytest_notebooks":
        return None
    if ".".join(parts[:2]) in WIRING:
        return len(STAGES) + 1
    return STAGES.index(parts[1]) + 1 if len(parts) > 1 and parts[1] in STAGES else 0


def test_the_import_reader_finds_every_form() -> None:
    source = (
        "from typing import TYPE_CHECKING\n"
        "import tests.test_review as review\n"
        "from tests.test_workflows import run_step\n"
        "from . import test_select, notebooks\n"
        "if TYPE_CHECKING:\n"
        "    from .test_gitinfo import something\n"
        "def later():\n"
        "    from pytest_notebooks.review import normalize\n"
    )
    assert imported_modules(source, "tests.test_example") == {
        "typing",
        "tests.test_review",
        "tests.test_workflows",
        "tests",
        "tests.test_select",
        "tests.notebooks",
        "tests.test_gitinfo",
        "pytest_notebooks.review",
        "pytest_notebooks.review.normalize",
    }
    assert imported_modules("from .settings import x", "pytest_notebooks.cases", is_package=True) == {
        "pytest_notebooks.cases.settings"
    }
    ranked = ["git", "pytest_notebooks", "pytest_notebooks.models", "pytest_notebooks.cases.params"]
    ranked += ["pytest_notebooks.promote.cli", "pytest_notebooks.plugin"]
    assert [rank(name) for name in ranked] == [None, 0, 0, 1, len(STAGES), len(STAGES) + 1]


def test_no_module_in_tests_imports_a_test_module() -> None:
    """A helper two test modules share lives in a helper module (tests/gitrepo.py, tests/workflow_steps.py,
    tests/review_checks.py, ...): importing a test module imports its tests and its fixtures too."""
    modules = sorted(TESTS.glob("*.py"))
    assert len(modules) > 10
    found = {}
    for path in modules:
        imported = sorted(name for name in imports_of(path) if is_test_module(name) and name != module_name(path))
        if imported:
            found[path.name] = imported
    assert found == {}, "move what these test modules import into a helper module under tests/ (not test_*.py)"


def test_every_folder_of_the_package_is_a_stage() -> None:
    folders = {path.parent.name for path in PACKAGE.glob("*/*.py")}
    assert folders == set(STAGES), "a new folder is a stage: place it in STAGES, in the order data flows"


def test_no_module_imports_a_later_stage() -> None:
    upward = set()
    for path in sorted(PACKAGE.rglob("*.py")):
        own = rank(module_name(path))
        assert own is not None
        for name in imports_of(path):
            imported = rank(name)
            if imported is not None and imported > own:
                upward.add((path.relative_to(ROOT).as_posix(), name))
    assert upward - KNOWN_UPWARD == set(), (
        "these imports run against the data flow (cases -> run -> results -> review -> promote; shared "
        "root modules below every stage, collect.py and plugin.py above): move what is shared down"
    )
    assert KNOWN_UPWARD - upward == set(), "these imports are gone: take them out of KNOWN_UPWARD"


def test_the_documented_layout_lists_every_module_once() -> None:
    """docs/development.md's "How the code is laid out" names each module of the package on a line of its own."""
    page = (ROOT / "docs" / "development.md").read_text()
    section = re.split(r"^#+ How the code is laid out\n", page, maxsplit=1, flags=re.MULTILINE)[1].split("\n#", 1)[0]
    listed = [line.split("`")[1] for line in section.splitlines() if line.startswith("- `pytest_notebooks/")]
    modules = sorted(
        path.relative_to(ROOT).as_posix()
        for path in (ROOT / "pytest_notebooks").rglob("*.py")
        if path.name != "__init__.py"
    )
    assert len(listed) == len(set(listed)), "a module is listed twice"
    assert sorted(listed) == modules
