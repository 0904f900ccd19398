"""Executed notebook + committed snapshot -> SnapshotCheck. Pure apart from reading/writing the file.

A snapshot (``notebooks/__snapshots__/vid_agg/fr.ipynb`` for case fr of ``notebooks/vid_agg.ipynb``)
is the case's executed notebook, normalised (normalize.py): a valid notebook whose git diff shows
only real changes. Only outputs are compared: a template edit that leaves them alone passes.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from pytest_notebooks.files import atomic_write
from pytest_notebooks.review.diff import NotebookDiff, diff_notebooks
from pytest_notebooks.review.normalize import Replacement, normalize

SNAPSHOT_DIR = "__snapshots__"
NO_CHANGES = NotebookDiff(())


def snapshot_path(notebook: Path, case_id: str) -> Path:
    """Where the snapshot of ``case_id`` of ``notebook`` lives."""
    return notebook.parent / SNAPSHOT_DIR / notebook.stem / f"{case_id}.ipynb"


def snapshot_owner(path: str) -> tuple[str, str] | None:
    """(template, case id) of a snapshot at the POSIX ``path``, or None when it is not one.

    The inverse of ``snapshot_path``: ``a/__snapshots__/vid_agg/fr.ipynb`` -> ``("a/vid_agg.ipynb", "fr")``.
    """
    parts = PurePosixPath(path).parts
    if len(parts) < 3 or parts[-3] != SNAPSHOT_DIR or not parts[-1].endswith(".ipynb"):
        return None
    template = PurePosixPath(*parts[:-3], f"{parts[-2]}.ipynb")
    return template.as_posix(), parts[-1][: -len(".ipynb")]


@dataclass(frozen=True)
class SnapshotCheck:
    """The outcome of comparing one case with its snapshot."""

    status: str  # "matched", "mismatch", "missing", "written"
    path: Path
    diff: NotebookDiff = NO_CHANGES

    def to_json(self, relpath: str) -> dict[str, Any]:
        return {"status": self.status, "path": relpath, "changes": [c.to_json() for c in self.diff.changes]}


def check_snapshot(
    executed: dict[str, Any], path: Path, replacements: Sequence[Replacement], *, update: bool
) -> SnapshotCheck:
    """Compare ``executed`` with the snapshot at ``path``; with ``update``, (re)write it instead."""
    actual = normalize(executed, replacements)
    if update:
        if not path.is_file() or normalize(_read(path), replacements) != actual:
            _write(path, actual)
            return SnapshotCheck("written", path)
        return SnapshotCheck("matched", path)
    if not path.is_file():
        return SnapshotCheck("missing", path)
    expected = normalize(_read(path), replacements)
    if expected == actual:
        return SnapshotCheck("matched", path)
    found = diff_notebooks(expected, actual, sources=False, outputs=True)
    return SnapshotCheck("mismatch" if found else "matched", path, found)


def _read(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def _write(path: Path, nb: dict[str, Any]) -> None:
    snapshot = {**nb, "nbformat_minor": 4}  # 4.4: cells without ids are valid
    text = json.dumps(snapshot, indent=1, sort_keys=True, ensure_ascii=False) + "\n"
    atomic_write(path, text)
