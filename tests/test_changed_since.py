"""--notebooks-changed-since in real git repositories: what a change selects, what is never read, and
the cache of notebook imports that can never hold a stale answer. Collection only: no kernel starts."""

from __future__ import annotations

import json
import os
from pathlib import Path

import git
import pytest

from pytest_notebooks.cases.selection import affected_modules, imports_of, module_names
from tests.gitrepo import commit_all, init_repo
from tests.notebooks import PARAMS, write_notebook

PATH_CELL = "import sys\nsys.path.insert(0, '../lib')"
CACHE = Path(".pytest_cache", "d", "notebooks", "imports.json")


def library(root: Path) -> None:
    """vidlib: a package whose __init__ re-exports from a submodule with a relative import."""
    lib = root / "lib" / "vidlib"
    (lib / "io").mkdir(parents=True)
    (lib / "__init__.py").write_text("from .agg import total\n")
    (lib / "agg.py").write_text("from . import data\nfrom .io.read import rows\n\ndef total():\n    return rows()\n")
    (lib / "data.py").write_text("ROWS = 3\n")
    (lib / "io" / "__init__.py").write_text("")
    (lib / "io" / "read.py").write_text("from ..data import ROWS\n\ndef rows():\n    return ROWS\n")
    (root / "lib" / "plays.py").write_text("TITLE = 'plays'\n")  # a module of its own, outside the package


def notebook(root: Path, name: str, code: str, fixture: str = "cases:\n  fr: {region_code: fr}\n") -> None:
    write_notebook(root / "nb" / f"{name}.ipynb", [PATH_CELL, PARAMS, code])
    (root / "nb" / f"{name}.yaml").write_text(fixture)


@pytest.fixture
def repo(pytester: pytest.Pytester) -> git.Repo:
    root = pytester.path
    repo = init_repo(root)
    library(root)
    notebook(root, "uses_package", "import vidlib\nvidlib.total()")  # through the __init__ re-export
    notebook(root, "uses_report", "from plays import TITLE")
    notebook(root, "plain", "x = 1")
    (root / "data.csv").write_text("a,b\n")
    (root / ".gitignore").write_text("notebook-outputs/\n__pycache__/\n.pytest_cache/\n")
    commit_all(repo, "base")
    return repo


def selected(pytester: pytest.Pytester, rev: str = "HEAD", *args: str) -> list[str]:
    result = pytester.runpytest("--collect-only", "-q", "--notebooks-changed-since", rev, *args)
    assert result.ret in (pytest.ExitCode.OK, pytest.ExitCode.NO_TESTS_COLLECTED), result.stdout.str()
    return sorted({line.split("::")[0] for line in result.stdout.lines if "::" in line})


def test_relative_imports_resolve_against_the_module_and_its_package() -> None:
    names = module_names("lib/vidlib/io/read.py")
    assert imports_of("from ..data import ROWS", names) >= {"vidlib.data", "vidlib.data.ROWS"}
    assert imports_of("from . import data", module_names("lib/vidlib/agg.py")) >= {"vidlib", "vidlib.data"}
    init = module_names("lib/vidlib/__init__.py")
    assert imports_of("from .agg import total", init, package=True) >= {"vidlib.agg", "vidlib.agg.total"}
    assert imports_of("from . import x", {"top"}) == set()  # above the top: nothing, not a guess
    assert imports_of("from .agg import total") == set()  # a notebook has no package
    files = {
        "lib/vidlib/__init__.py": "from .agg import total\n",
        "lib/vidlib/agg.py": "from .io.read import rows\n",
        "lib/vidlib/io/__init__.py": "",
        "lib/vidlib/io/read.py": "from ..data import ROWS\n",
        "lib/vidlib/data.py": "ROWS = 3\n",
        "lib/plays.py": "",
    }
    affected = affected_modules(["lib/vidlib/data.py"], files)
    assert {"vidlib.io.read", "vidlib.agg", "vidlib"} <= affected  # up the chain to the package
    assert "plays" not in affected


def test_a_changed_notebook_or_fixture_selects_only_itself(pytester: pytest.Pytester, repo: git.Repo) -> None:
    assert selected(pytester) == []
    notebook(pytester.path, "plain", "x = 2")
    assert selected(pytester) == ["nb/plain.ipynb"]
    (pytester.path / "nb" / "uses_report.yaml").write_text("cases:\n  us: {region_code: us}\n")
    assert selected(pytester) == ["nb/plain.ipynb", "nb/uses_report.ipynb"]
    result = pytester.runpytest("--collect-only", "-q", "--notebooks-changed-since", "HEAD")
    result.stdout.fnmatch_lines(
        ["notebooks: changed since HEAD: 2 of 3 notebooks selected (1 changed, 1 fixture changed); the others*"]
    )


def test_unselected_notebooks_are_never_read(pytester: pytest.Pytester, repo: git.Repo) -> None:
    (pytester.path / "nb" / "uses_report.ipynb").write_text("{ not json")  # a collection error if read
    commit_all(repo, "a broken notebook, not touched by the next change")
    notebook(pytester.path, "plain", "x = 2")
    assert selected(pytester) == ["nb/plain.ipynb"]  # no error: the broken one was not read


def test_a_renamed_notebook_and_a_deleted_fixture(pytester: pytest.Pytester, repo: git.Repo) -> None:
    root = pytester.path
    (root / "nb" / "plain.ipynb").rename(root / "nb" / "renamed.ipynb")
    (root / "nb" / "plain.yaml").rename(root / "nb" / "renamed.yaml")
    (root / "nb" / "uses_report.yaml").unlink()  # no fixture: no longer a test, nothing to select
    commit_all(repo, "rename and delete")
    assert selected(pytester, "HEAD~1") == ["nb/renamed.ipynb"]


@pytest.mark.parametrize(
    ("module", "expected"),
    [
        ("lib/vidlib/data.py", ["nb/uses_package.ipynb"]),  # io/read.py -> agg.py -> __init__ -> the notebook
        ("lib/vidlib/io/read.py", ["nb/uses_package.ipynb"]),
        ("lib/plays.py", ["nb/uses_report.ipynb"]),
        ("lib/vidlib/__init__.py", ["nb/uses_package.ipynb"]),  # the package itself
    ],
)
def test_a_library_change_selects_exactly_its_importers(
    pytester: pytest.Pytester, repo: git.Repo, module: str, expected: list[str]
) -> None:
    path = pytester.path / module
    path.write_text(path.read_text() + "\n# changed\n")
    commit_all(repo, f"change {module}")
    assert selected(pytester, "HEAD~1") == expected


def test_changes_outside_the_library_select_no_notebook(pytester: pytest.Pytester, repo: git.Repo) -> None:
    """Documented: a data file, conftest.py or pytest's configuration is not followed."""
    (pytester.path / "data.csv").write_text("a,b\n1,2\n")
    (pytester.path / "conftest.py").write_text("import os\n")
    assert selected(pytester) == []


def test_the_imports_cache_is_keyed_by_content(pytester: pytest.Pytester, repo: git.Repo) -> None:
    root = pytester.path
    (root / "lib" / "plays.py").write_text("TITLE = 'views'\n")
    assert selected(pytester) == ["nb/uses_report.ipynb"]
    stored = json.loads((root / CACHE).read_text())
    assert len(stored["imports"]) == 3  # every notebook's imports, by blob id
    # the notebook no longer imports the report module; its mtime is put back: the cache must not answer
    plain = root / "nb" / "uses_report.ipynb"
    before = plain.stat()
    notebook(root, "uses_report", "import vidlib")
    os.utime(plain, ns=(before.st_atime_ns, before.st_mtime_ns))
    commit_all(repo, "uses_report no longer imports report")
    (root / "lib" / "plays.py").write_text("TITLE = 'plays again'\n")
    assert selected(pytester) == []


def test_a_branch_switch_is_seen(pytester: pytest.Pytester, repo: git.Repo) -> None:
    root = pytester.path
    (root / "lib" / "plays.py").write_text("TITLE = 'views'\n")
    assert selected(pytester) == ["nb/uses_report.ipynb"]  # the cache now knows main's notebooks
    (root / "lib" / "plays.py").write_text("TITLE = 'plays'\n")
    repo.git.checkout("-b", "feature")
    notebook(root, "plain", "from plays import TITLE")
    commit_all(repo, "plain imports report on the feature branch")
    (root / "lib" / "plays.py").write_text("TITLE = 'views'\n")
    assert selected(pytester) == ["nb/plain.ipynb", "nb/uses_report.ipynb"]
    repo.git.checkout("main", force=True)
    (root / "lib" / "plays.py").write_text("TITLE = 'views'\n")
    assert selected(pytester) == ["nb/uses_report.ipynb"]


def test_a_corrupt_cache_is_one_warning_and_another_version_is_ignored(
    pytester: pytest.Pytester, repo: git.Repo
) -> None:
    root = pytester.path
    (root / "lib" / "plays.py").write_text("TITLE = 'views'\n")
    assert selected(pytester) == ["nb/uses_report.ipynb"]
    (root / CACHE).write_text('{"version": "0.0.0", "imports": {"%s": ["vidlib.report"]}}' % ("0" * 40))
    assert selected(pytester) == ["nb/uses_report.ipynb"]  # another version's file: not used, rewritten
    assert json.loads((root / CACHE).read_text())["version"] != "0.0.0"
    (root / CACHE).write_text("{ torn")
    result = pytester.runpytest("--collect-only", "-q", "--notebooks-changed-since", "HEAD")
    assert result.ret == pytest.ExitCode.OK
    assert [line for line in result.stdout.lines if "imports.json" in line and "ignored" in line] != []
    assert sum("imports.json" in line for line in result.stdout.lines if "Warning" in line) == 1
    assert json.loads((root / CACHE).read_text())["imports"]  # written again


def test_without_the_cache_plugin_selection_is_the_same(pytester: pytest.Pytester, repo: git.Repo) -> None:
    (pytester.path / "lib" / "vidlib" / "data.py").write_text("ROWS = 4\n")
    assert selected(pytester, "HEAD", "-p", "no:cacheprovider") == ["nb/uses_package.ipynb"]
    assert not (pytester.path / CACHE).exists()


def test_a_cache_directory_that_cannot_be_made_is_not_a_traceback(pytester: pytest.Pytester, repo: git.Repo) -> None:
    (pytester.path / "blocker").write_text("a file where pytest's cache directory would go")
    for args in ([], ["--notebooks-changed-since", "HEAD"]):
        # a subprocess: this suite turns warnings into errors, pytest's own cache warning among them
        result = pytester.runpytest_subprocess("--collect-only", "-q", "-o", "cache_dir=blocker/cache", *args)
        assert result.ret in (pytest.ExitCode.OK, pytest.ExitCode.NO_TESTS_COLLECTED), result.stdout.str()
        assert "Traceback" not in result.stdout.str() + result.stderr.str()
    notebook(pytester.path, "plain", "x = 2")
    changed = ("--collect-only", "-q", "-o", "cache_dir=blocker/cache", "--notebooks-changed-since", "HEAD")
    result = pytester.runpytest_subprocess(*changed)
    assert [line for line in result.stdout.lines if "::" in line] == ["nb/plain.ipynb::fr"]


def test_a_notebook_reached_through_a_directory_link_is_selected_by_its_real_path(
    pytester: pytest.Pytester, repo: git.Repo
) -> None:
    (pytester.path / "alias").symlink_to(pytester.path / "nb", target_is_directory=True)
    notebook(pytester.path, "plain", "x = 2")
    # a subprocess: the alias warning (collected once, at its real path) is an error in this suite
    result = pytester.runpytest_subprocess("--collect-only", "-q", "--notebooks-changed-since", "HEAD", "alias")
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()
    assert [line for line in result.stdout.lines if "::" in line] == ["nb/plain.ipynb::fr"]
    result.stdout.fnmatch_lines(["*alias/plain.ipynb is nb/plain.ipynb reached through a symlink*"])


def test_folders_of_unselected_notebooks_are_skipped_and_everything_else_is_walked(
    pytester: pytest.Pytester, repo: git.Repo
) -> None:
    for name in ("a", "b"):
        write_notebook(pytester.path / "only" / f"{name}.ipynb", [PARAMS])
        (pytester.path / "only" / f"{name}.yaml").write_text("cases:\n  fr: {region_code: fr}\n")
    write_notebook(pytester.path / "mixed" / "c.ipynb", [PARAMS])
    (pytester.path / "mixed" / "c.yaml").write_text("cases:\n  fr: {region_code: fr}\n")
    (pytester.path / "mixed" / "test_lib.py").write_text("def test_lib():\n    pass\n")
    (pytester.path / "only" / "deeper").mkdir()
    (pytester.path / "only" / "deeper" / "test_deep.py").write_text("def test_deep():\n    pass\n")
    commit_all(repo, "more notebooks, and tests beside them")
    (pytester.path / "only" / "deeper" / "x.txt").write_text("")  # keeps 'only' walked: it has a folder
    result = pytester.runpytest("--collect-only", "-q", "--notebooks-changed-since", "HEAD", "-p", "no:randomly")
    lines = result.stdout.lines
    assert "mixed/test_lib.py::test_lib" in lines
    assert "only/deeper/test_deep.py::test_deep" in lines
    assert not [line for line in lines if ".ipynb::" in line]
    (pytester.path / "only" / "b.yaml").write_text("cases:\n  de: {region_code: de}\n")
    result = pytester.runpytest("--notebooks-changed-since", "HEAD", "-p", "no:randomly", "--collect-only")
    result.stdout.fnmatch_lines(["notebooks: changed since HEAD: 1 of 6 notebooks selected (1 fixture changed)*"])
    assert "<NotebookItem de>" in result.stdout.str()
