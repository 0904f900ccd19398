"""Results file + git + the files on disk -> ``Inputs`` (what may be promoted), or ``Refused``.

A committed notebook below the source root is promoted only when

- the results file has cases for it and every one of them ``passed`` (failed, error, skipped,
  xfailed, xpassed all block),
- its sha256 in the results file is that of the file on disk now (and so is its fixture's),
- the results file comes from the commit that is checked out, tested on a clean tree, and the tree is
  still clean now.

Promotion is all or nothing: one notebook that may not be promoted refuses the whole run, because
templates feed each other and a half-updated set is not what was tested. A committed notebook with
no fixture is never tested, so it is left out (and said so) without blocking the others.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import Any

from pytest_notebooks.files import is_url
from pytest_notebooks.gitinfo import committed_files, git_state
from pytest_notebooks.promote.errors import Refused
from pytest_notebooks.promote.models import Candidate, Inputs
from pytest_notebooks.results.recorder import SCHEMA, SCHEMA_VERSION

FIXTURE_SUFFIXES = (".yaml", ".yml")  # as the plugin collects them
HINT = "promote what was tested: commit, run pytest on that commit, then run nbpromote on the same checkout"


def gather(
    results_path: Path,
    start: Path,
    source_root: Path | None,
    ignore: tuple[Path, ...] = (),
    project: Path | None = None,
) -> Inputs:
    """Check the results file against git and the disk; raise Refused listing every problem found.

    ``start`` is a directory inside the repository; ``source_root`` defaults to the repository
    root. Paths in the results file are relative to its ``rootdir`` when that is a directory of
    this repository, else (results tested in another checkout) to ``project``, the directory
    pytest runs in (default: the repository root). Untracked files below ``ignore`` (a local
    target), the results file and the results' output directory do not make the tree dirty.
    """
    results = _load(results_path)
    # as the plugin does when it records git.dirty: its own outputs do not count
    ignore = (*ignore, results_path.resolve())
    output_dir = str(results.get("output_dir") or "")
    if output_dir and not is_url(output_dir):
        ignore = (*ignore, Path(output_dir).resolve())
    state = git_state(start, ignore=ignore)
    if state is None:
        raise Refused([f"{start} is not inside a git repository: nbpromote publishes committed notebooks only"], HINT)
    if state.commit is None:
        raise Refused([f"the repository at {state.root} has no commits yet"], HINT)
    root = state.root
    source = (source_root or root).resolve()
    if not source.is_relative_to(root):
        raise Refused([f"the source root {source} is outside the repository {root}"], "set --source-root")

    reasons = _git_reasons(results, state.commit, state.dirty)
    rootdir = Path(str(results.get("rootdir", ""))).resolve()
    if not (rootdir.is_dir() and rootdir.is_relative_to(root)):  # tested in another checkout
        rootdir = (project or root).resolve()
    tested = _tested(results, rootdir, root)
    committed = set(committed_files(root))
    source_rel = "" if source == root else source.relative_to(root).as_posix()

    candidates: list[Candidate] = []
    untested: set[str] = set()
    notes: list[str] = []
    for path in sorted(p for p in committed if _is_template(p, source_rel)):
        key = _key(path, source_rel)
        record = tested.get(path)
        if record is None:
            fixture = next((f for f in _fixtures(path) if f in committed), None)
            if fixture is not None:
                reasons.append(
                    f"{path}: has the fixture {fixture} but the results file has no case of it (a partial run?)"
                )
            else:
                untested.add(key)
                notes.append(f"{path}: not promoted: no fixture ({PurePosixPath(path).stem}.yaml), so never tested")
            continue
        problems, candidate = _check(path, key, record, root)
        reasons.extend(problems)
        if candidate is not None:
            candidates.append(candidate)
    for path in sorted(tested):
        if not _under(path, source_rel):
            notes.append(f"{path}: not promoted: outside the source root {source_rel or '.'}/")
        elif path not in committed:
            reasons.append(f"{path}: tested but not committed")
    if not candidates and not reasons:
        reasons.append(f"no tested notebook below the source root {source_rel or '.'}/ (is --source-root right?)")
    if reasons:
        raise Refused(reasons, HINT)
    return Inputs(
        commit=state.commit,
        branch=state.branch,
        tested_at=results.get("created"),
        source_root=source_rel,
        candidates=tuple(candidates),
        untested=frozenset(untested),
        notes=tuple(notes),
    )


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _load(path: Path) -> dict[str, Any]:
    try:
        results = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise Refused(
            [f"results file {path} not found"], "run pytest first (the plugin writes it), or pass --results"
        ) from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise Refused([f"cannot read the results file {path}: {exc}"], HINT) from None
    if not isinstance(results, dict) or results.get("schema") != SCHEMA:
        raise Refused([f"{path} is not a pytest-notebooks results file (schema {SCHEMA!r})"], HINT)
    if results.get("version") != SCHEMA_VERSION:
        raise Refused(
            [f"{path} has results schema version {results.get('version')!r}; this nbpromote reads {SCHEMA_VERSION}"],
            "use the same pytest-notebooks version for testing and promoting",
        )
    return results


def _git_reasons(results: Mapping[str, Any], head: str, dirty_now: bool) -> list[str]:
    reasons = []
    git = results.get("git")
    if not isinstance(git, dict) or not git.get("commit"):
        reasons.append("the results file was not written in a git repository with a commit (its 'git' is empty)")
    else:
        if git["commit"] != head:
            reasons.append(f"the results file is from commit {git['commit'][:12]}, but {head[:12]} is checked out")
        if git.get("dirty"):
            reasons.append("the tests ran on a working tree with uncommitted changes (results: git.dirty = true)")
    if dirty_now:
        reasons.append("the working tree has uncommitted changes now (see `git status`)")
    return reasons


def _tested(results: Mapping[str, Any], rootdir: Path, root: Path) -> dict[str, dict[str, Any]]:
    """Results per notebook, keyed by path relative to the repository root."""
    cases: dict[str, list[Mapping[str, Any]]] = {}
    for case in results.get("cases", []):
        cases.setdefault(str(case.get("notebook")), []).append(case)
    tested: dict[str, dict[str, Any]] = {}
    for notebook in results.get("notebooks", []):
        absolute = (rootdir / str(notebook["path"])).resolve()
        try:
            path = absolute.relative_to(root).as_posix()
        except ValueError:
            path = absolute.as_posix()
        fixture = notebook.get("fixture")
        fixture_path = (rootdir / str(fixture)).resolve() if fixture else None
        tested[path] = {**notebook, "case_records": cases.get(str(notebook["path"]), []), "fixture_path": fixture_path}
    return tested


def _check(path: str, key: str, record: Mapping[str, Any], root: Path) -> tuple[list[str], Candidate | None]:
    problems = []
    records = record["case_records"]
    if not records:
        problems.append(f"{path}: the results file lists no case of it")
    for case in records:
        if case.get("outcome") != "passed":
            failure = case.get("failure") or {}
            summary = f": {failure['summary']}" if failure.get("summary") else ""
            problems.append(f"{path}: case {case.get('case')!r} {case.get('outcome')}{summary}")
    if not problems and record.get("outcome") != "passed":
        problems.append(f"{path}: not every case passed (outcome {record.get('outcome')!r})")
    try:
        data = (root / path).read_bytes()
    except OSError as exc:
        return [*problems, f"{path}: cannot read it: {exc}"], None
    digest = sha256_hex(data)
    if digest != record.get("sha256"):
        problems.append(
            f"{path}: changed since it was tested (sha256 {digest[:12]} on disk, "
            f"{str(record.get('sha256'))[:12]} in the results file)"
        )
    fixture = record.get("fixture")
    fixture_sha = record.get("fixture_sha256")
    fixture_path = record.get("fixture_path")
    if (
        fixture_path is not None
        and fixture_sha
        and (not fixture_path.is_file() or sha256_hex(fixture_path.read_bytes()) != fixture_sha)
    ):
        problems.append(f"{path}: its fixture {fixture} changed since it was tested")
    if problems:
        return problems, None
    return [], Candidate(
        key=key,
        source_path=path,
        sha256=digest,
        size=len(data),
        cases=tuple(str(c.get("case")) for c in records),
        fixture=str(fixture) if fixture else None,
        fixture_sha256=str(fixture_sha) if fixture_sha else None,
        data=data,
    )


def _under(path: str, source_rel: str) -> bool:
    return not source_rel or path.startswith(source_rel + "/")


def _is_template(path: str, source_rel: str) -> bool:
    """A committed notebook below the source root, outside hidden and tool-owned directories.

    Hidden: .ipynb_checkpoints, .nbpromote. Tool-owned: __snapshots__, __pycache__ and the like.
    """
    if not path.endswith(".ipynb") or not _under(path, source_rel):
        return False
    directories = PurePosixPath(_key(path, source_rel)).parts[:-1]
    return not any(part.startswith((".", "__")) for part in directories)


def _key(path: str, source_rel: str) -> str:
    return path[len(source_rel) + 1 :] if source_rel else path


def _fixtures(path: str) -> list[str]:
    stem = path[: -len(".ipynb")]
    return [stem + suffix for suffix in FIXTURE_SUFFIXES]
