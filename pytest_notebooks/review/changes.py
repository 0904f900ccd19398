"""Two commits -> TemplateChange per changed notebook: what a reviewer of the PR needs to read.

Sources only by default: outputs and metadata are normalised away on both sides (see
normalize.py), so a re-executed but unchanged template shows no change.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_notebooks.gitinfo import ChangedFile, changed_files
from pytest_notebooks.review.diff import NotebookDiff, diff_notebooks
from pytest_notebooks.review.normalize import normalize

_EMPTY: dict[str, Any] = {"cells": [], "metadata": {}}


@dataclass(frozen=True)
class TemplateChange:
    """One notebook changed between base and head."""

    status: str  # "added", "removed", "modified", "renamed"
    path: str
    old_path: str | None
    diff: NotebookDiff
    cells: int  # cells in the head version (base version when removed)
    problem: str = ""  # set when a side is not a readable notebook

    def summary(self) -> str:
        """``modified, 2 cells changed`` / ``renamed from a.ipynb, no cell changed`` / ``added, 5 cells``."""
        if self.problem:
            return f"{self.status}: {self.problem}"
        if self.status == "added":
            return f"added, {self.cells} cells"
        if self.status == "removed":
            return f"removed ({self.cells} cells)"
        changed = len(self.diff.changes)
        what = f"{changed} cell{'s' if changed != 1 else ''} changed" if changed else "no cell source changed"
        if self.status == "renamed":
            return f"renamed from {self.old_path}, {what}"
        return f"modified, {what}"


def template_changes(root: Path, base: str, head: str = "HEAD", *, outputs: bool = False) -> list[TemplateChange]:
    """The notebooks that changed from the merge base of ``base`` and ``head`` to ``head``."""
    return [_change(changed, outputs) for changed in changed_files(root, base, head)]


def _parse(data: bytes | None) -> dict[str, Any]:
    if data is None:
        return _EMPTY
    nb = json.loads(data)
    if not isinstance(nb, dict) or not isinstance(nb.get("cells"), list):
        raise ValueError("no cells")
    return nb


def _change(changed: ChangedFile, outputs: bool) -> TemplateChange:
    try:
        old, new = _parse(changed.old_bytes), _parse(changed.new_bytes)
    except ValueError as exc:
        return TemplateChange(
            changed.status, changed.path, changed.old_path, NotebookDiff(()), 0, f"not a readable notebook ({exc})"
        )
    if changed.status == "removed":
        return TemplateChange(changed.status, changed.path, changed.old_path, NotebookDiff(()), len(old["cells"]))
    found = diff_notebooks(normalize(old, outputs=outputs), normalize(new, outputs=outputs), outputs=outputs)
    return TemplateChange(changed.status, changed.path, changed.old_path, found, len(new["cells"]))
