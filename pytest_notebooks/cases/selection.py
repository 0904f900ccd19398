"""``--notebooks-changed-since REV``: which notebooks to collect, decided from git before any is read.

A notebook is selected when, since REV, it or its fixture changed (committed, staged, unstaged or
untracked), or it imports a repository module that changed, directly or through other repository
modules (relative imports resolved; a package and its submodules count as one another). Without a
changed ``.py`` file no notebook but the changed ones is read. The imports of a notebook are cached
by the git blob id of its bytes (``ImportFacts``), so a library change reads every notebook's bytes
but parses only the ones not seen before. Only static ``import`` statements are seen.
"""

from __future__ import annotations

import ast
import functools
import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from pytest_notebooks import pysource
from pytest_notebooks.cases.naming import DEFAULT_NAMING, FixtureNaming
from pytest_notebooks.cases.notebook import cell_source
from pytest_notebooks.errors import GitError, SelectionError
from pytest_notebooks.gitinfo import blob_id, changed_since, listed_files


def module_names(relpath: str) -> set[str]:
    """Every dotted name a repository Python file may be imported as (``lib/vidlib/agg.py``:
    ``lib.vidlib.agg``, ``vidlib.agg``, ``agg``): the rule errs on the side of running a case."""
    path = PurePosixPath(relpath)
    parts = [*path.parent.parts, path.stem]
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return {".".join(parts[i:]) for i in range(len(parts)) if parts[i:]}


def imports_of(source: str, module: Iterable[str] = (), package: bool = False) -> set[str]:
    """Absolute module names a piece of Python imports (``from a import b`` gives a and a.b).

    ``module`` is every name the code's own module has (``module_names``) and ``package`` whether
    it is a package's ``__init__``: a relative import is resolved against each; without them (a
    notebook) relative imports are not followed.
    """
    lines = [line for line in source.splitlines() if not line.lstrip().startswith(("%", "!"))]
    try:
        tree = pysource.parse("\n".join(lines))
    except pysource.UNPARSABLE:
        return set()
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            for base in _bases(node, module, package):
                found.add(base)
                found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


def _bases(node: ast.ImportFrom, module: Iterable[str], package: bool) -> list[str]:
    """The absolute names ``from <node> import ...`` takes its names from."""
    if not node.level:
        return [node.module] if node.module else []
    bases = []
    for name in module:
        parts = name.split(".")
        up = node.level - 1 if package else node.level
        if up > len(parts) - (0 if package else 1) or (up == len(parts) and not node.module):
            continue
        anchor = parts[: len(parts) - up]
        bases.append(".".join([*anchor, node.module] if node.module else anchor))
    return [base for base in bases if base]


def notebook_imports(data: bytes) -> frozenset[str]:
    """The modules the code cells of a notebook (its bytes) import. Bytes that are not JSON are read
    as a text notebook's Python (a Jupytext ``x.py``: its markdown is comments); a MyST ``x.md``
    does not parse as Python and imports nothing."""
    try:
        cells = json.loads(data).get("cells", [])
    except (ValueError, AttributeError, RecursionError):
        try:
            return frozenset(imports_of(data.decode("utf-8")))
        except UnicodeDecodeError:
            return frozenset()
    code = (cell_source(c) for c in cells if isinstance(c, dict) and c.get("cell_type") == "code")
    return frozenset(set().union(*(imports_of(source) for source in code)))


def _related(a: str, b: str) -> bool:
    return a == b or a.startswith(b + ".") or b.startswith(a + ".")


def affected_modules(changed: Iterable[str], python_files: Mapping[str, str]) -> set[str]:
    """Names of the changed repository modules and of every repository module importing them.

    ``python_files`` maps each repository .py file (relative path) to its source.
    """
    names = {path: module_names(path) for path in python_files}
    affected = set().union(*(names[p] for p in changed if p in names))
    imports = {
        path: imports_of(source, names[path], PurePosixPath(path).name == "__init__.py")
        for path, source in python_files.items()
    }
    grew = bool(affected)
    while grew:
        grew = False
        for path, imported in imports.items():
            if not names[path] <= affected and is_affected(imported, affected):
                affected |= names[path]
                grew = True
    return affected


def is_affected(notebook_imports: Iterable[str], affected: set[str]) -> bool:
    """Whether code importing ``notebook_imports`` depends on an affected module."""
    return any(_related(i, a) for i in notebook_imports for a in affected)


@dataclass
class ImportFacts:
    """Notebook imports by the git blob id of the notebook's bytes: facts about content, never
    about a path or a time, so an edit, a branch switch or a rebase cannot make one stale."""

    known: dict[str, frozenset[str]] = field(default_factory=dict)
    stale: bool = False  # the stored facts were unreadable or another version's: write them again

    def imports(self, data: bytes) -> frozenset[str]:
        key = blob_id(data)
        found = self.known.get(key)
        if found is None:
            found = self.known[key] = notebook_imports(data)
            self.stale = True
        return found

    def to_json(self) -> dict[str, list[str]]:
        return {key: sorted(names) for key, names in self.known.items()}

    @classmethod
    def from_json(cls, data: object) -> ImportFacts:
        """From what ``to_json`` wrote; ValueError for anything else (a corrupt cache)."""
        if not isinstance(data, dict) or not all(
            isinstance(k, str) and isinstance(v, list) and all(isinstance(n, str) for n in v) for k, v in data.items()
        ):
            raise ValueError("not a map of blob ids to module names")
        return cls({key: frozenset(names) for key, names in data.items()})


@dataclass(frozen=True)
class Selection:
    """What changed since ``rev`` and which notebooks that selects."""

    rev: str
    root: Path
    changed: frozenset[Path]  # absolute: changed, added, deleted or untracked since rev
    affected: frozenset[str]  # repository modules that changed or import one that did
    changed_modules: tuple[str, ...]  # the changed .py files, relative to the root
    facts: ImportFacts
    naming: FixtureNaming = DEFAULT_NAMING  # which changed YAML file is whose fixture

    @functools.cached_property
    def _changed_text(self) -> frozenset[str]:
        """``changed`` as text: collection asks about every notebook, and a Path costs more to build than a str."""
        return frozenset(os.fspath(path) for path in self.changed)

    def wants(self, notebook: str | os.PathLike[str]) -> str:
        """Why ``notebook`` (absolute) is selected ("" when it is not): its bytes, its fixture, or an import."""
        text = os.fspath(notebook)
        if text in self._changed_text:
            return "changed"
        if any(fixture in self._changed_text for fixture in self.naming.candidates(text)):
            return "fixture changed"
        if not self.affected:
            return ""
        try:
            data = Path(text).read_bytes()
        except OSError:
            return "changed"  # unreadable: collection says why
        return "imports a changed module" if is_affected(self.facts.imports(data), set(self.affected)) else ""


def select_changed(
    start: Path, rev: str, facts: ImportFacts | None = None, naming: FixtureNaming = DEFAULT_NAMING
) -> Selection:
    """The changes since ``rev`` in the repository holding ``start``; SelectionError when git cannot say."""
    try:
        root, changed = changed_since(start, rev)
        python = listed_files(root, "*.py") if any(p.suffix == ".py" for p in changed) else []
    except GitError as exc:
        raise SelectionError(str(exc)) from None
    changed_py = sorted(p.relative_to(root).as_posix() for p in changed if p.suffix == ".py")
    sources = {}
    for name in python:
        try:
            sources[name] = (root / name).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
    affected = affected_modules(changed_py, sources)
    return Selection(
        rev, root, frozenset(changed), frozenset(affected), tuple(changed_py), facts or ImportFacts(), naming
    )
