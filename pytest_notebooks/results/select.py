"""Which cases to run: selection by change, and deterministic shards. Pure, no pytest.

Selection by change (``--notebooks-changed-since REV``) keeps a case when, since REV:

- its notebook or its fixture file changed (committed, staged, unstaged or untracked), or
- its notebook imports a Python module of the repository that changed, directly or through
  other modules of the repository (``import vidlib``, ``from vidlib import agg``; a package
  and its submodules count as one another).

Limits: only static ``import`` statements are seen (not ``importlib``, ``%run``, ``exec`` or
paths added to ``sys.path`` at run time and resolved differently); data files, requirements,
conftest.py and pytest configuration are not followed. A module file is known under every dotted
suffix of its path (``lib/vidlib/agg.py`` is ``lib.vidlib.agg``, ``vidlib.agg`` and ``agg``), so
the rule errs on the side of running a case.

Shards (``--notebooks-shard I/N``): with recorded durations, cases are dealt longest first to
the least-loaded shard; without, by a stable hash of the node id. Either way every case lands in
exactly one shard, the same on every machine and xdist worker.
"""

from __future__ import annotations

import ast
import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path, PurePosixPath

from pytest_notebooks import pysource
from pytest_notebooks.cases.notebook import cell_source
from pytest_notebooks.errors import GitError, SelectionError
from pytest_notebooks.results.record import Outcome, ResultsDocument


def module_names(relpath: str) -> set[str]:
    """Every dotted name a repository Python file may be imported as."""
    path = PurePosixPath(relpath)
    parts = [*path.parent.parts, path.stem]
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return {".".join(parts[i:]) for i in range(len(parts)) if parts[i:]}


def imports_of(source: str) -> set[str]:
    """Absolute module names a piece of Python imports (``from a import b`` gives a and a.b)."""
    lines = [line for line in source.splitlines() if not line.lstrip().startswith(("%", "!"))]
    try:
        tree = pysource.parse("\n".join(lines))
    except pysource.UNPARSABLE:
        return set()
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def notebook_imports(notebook: Path) -> set[str]:
    """The modules the code cells of ``notebook`` import."""
    cells = json.loads(notebook.read_bytes()).get("cells", [])
    return set().union(*(imports_of(cell_source(c)) for c in cells if c.get("cell_type") == "code"))


def _related(a: str, b: str) -> bool:
    return a == b or a.startswith(b + ".") or b.startswith(a + ".")


def affected_modules(changed: Iterable[str], python_files: Mapping[str, str]) -> set[str]:
    """Names of the changed repository modules and of every repository module importing them.

    ``python_files`` maps each repository .py file (relative path) to its source.
    """
    names = {path: module_names(path) for path in python_files}
    affected = set().union(*(names[p] for p in changed if p in names)) if changed else set()
    imports = {path: imports_of(source) for path, source in python_files.items()}
    grew = True
    while grew:
        grew = False
        for path, imported in imports.items():
            if names[path] <= affected:
                continue
            if any(_related(i, a) for i in imported for a in affected):
                affected |= names[path]
                grew = True
    return affected


def is_affected(notebook_imports: Iterable[str], affected: set[str]) -> bool:
    """Whether a notebook importing ``notebook_imports`` depends on an affected module."""
    return any(_related(i, a) for i in notebook_imports for a in affected)


def _stable_hash(nodeid: str) -> int:
    return int.from_bytes(hashlib.sha256(nodeid.encode()).digest()[:8], "big")


def assign_shards(nodeids: Sequence[str], total: int, durations: Mapping[str, float] | None = None) -> dict[str, int]:
    """Node id -> shard (1-based) for every id; deterministic for the same ids and durations."""
    if not durations:
        return {nodeid: _stable_hash(nodeid) % total + 1 for nodeid in nodeids}
    known = sorted(durations[n] for n in nodeids if n in durations)
    default = known[len(known) // 2] if known else 1.0
    loads = [0.0] * total
    out: dict[str, int] = {}
    for nodeid in sorted(nodeids, key=lambda n: (-durations.get(n, default), n)):
        shard = min(range(total), key=lambda i: (loads[i], i))
        loads[shard] += durations.get(nodeid, default)
        out[nodeid] = shard + 1
    return out


def durations_from_results(document: ResultsDocument) -> dict[str, float]:
    """Node id -> seconds from a results file, for balancing shards by time (``not run``: none to learn from)."""
    return {case.nodeid: case.duration for case in document.cases if case.outcome is not Outcome.NOT_RUN}


def changed_cases(start: Path, cases: Mapping[str, tuple[Path, Path]], rev: str) -> set[str]:
    """The node ids of ``cases`` (node id -> (notebook, fixture)) affected by changes since ``rev``."""
    from pytest_notebooks.gitinfo import changed_since, python_files

    try:
        root, changed = changed_since(start, rev)
    except GitError as exc:
        raise SelectionError(str(exc)) from None
    sources = {}
    for name in python_files(root):
        try:
            sources[name] = (root / name).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
    changed_py = [p.relative_to(root).as_posix() for p in changed if p.suffix == ".py"]
    affected = affected_modules(changed_py, sources)
    imports: dict[Path, set[str]] = {}
    keep = set()
    for nodeid, (notebook, fixture) in cases.items():
        if notebook in changed or fixture in changed:
            keep.add(nodeid)
            continue
        if notebook not in imports:
            imports[notebook] = notebook_imports(notebook)
        if affected and is_affected(imports[notebook], affected):
            keep.add(nodeid)
    return keep
