"""Two commits -> the changes a reviewer of the PR needs to read, one object per changed file.

- TemplateChange: a notebook's sources only (outputs and metadata normalised away on both sides),
  so a re-executed but unchanged template shows no change.
- FixtureChange: the fixture beside a notebook, case by case and parameter by parameter (fixturediff.py).
- SnapshotUpdate: a changed ``__snapshots__/<notebook>/<case>.ipynb``, i.e. an accepted output change;
  a snapshot is not a template and is never listed as one.
- TextTemplateChange: a Jupytext text template (``x.py``, ``x.md`` with a fixture beside it, as
  collection takes it: cases/textnotebook.py), shown as a unified diff of its text: it is its own source.
"""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from pytest_notebooks.cases.naming import DEFAULT_NAMING, NOTEBOOK_SUFFIX, FixtureNaming, with_suffix
from pytest_notebooks.cases.principles import measure
from pytest_notebooks.cases.textnotebook import TEXT_SUFFIXES, is_text_suffix, reads_as_text_notebook
from pytest_notebooks.gitinfo import ChangedFile, Comparison, compare
from pytest_notebooks.models import CellChange
from pytest_notebooks.review.diff import NotebookDiff, diff_notebooks
from pytest_notebooks.review.fixturediff import FixtureChange, fixture_change
from pytest_notebooks.review.normalize import normalize
from pytest_notebooks.review.snapshot import snapshot_owner

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
    branching: tuple[int, int] | None = None  # decision points (the principles' measure) in base, head

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
        more = ""
        if self.branching is not None and self.branching[1] > self.branching[0]:
            more = f"; ⚠️ branching up from {self.branching[0]} to {self.branching[1]} decision points (keep it linear)"
        if self.status == "renamed":
            return f"renamed from {self.old_path}, {what}{more}"
        return f"modified, {what}{more}"


class TextDiff(NotebookDiff):
    """A text template's change as one unified diff (``changes`` holds it as one "text" entry)."""

    def lines(self, indent: str = "    ") -> list[str]:
        return [f"{indent}{line}" for change in self.changes for line in change.source_diff]


@dataclass(frozen=True)
class TextTemplateChange(TemplateChange):
    """A Jupytext text template changed between base and head (``cells``: its lines in head)."""

    def summary(self) -> str:
        """``modified, 3 lines added, 1 removed (text notebook)``; ``renamed from a.py, ...``."""
        if self.status in ("added", "removed"):
            return f"{self.status} ({self.cells} lines, text notebook)"
        body = [line for change in self.diff.changes for line in change.source_diff if not line.startswith("@@")]
        added = sum(1 for line in body if line.startswith("+") and not line.startswith("+++"))
        removed = sum(1 for line in body if line.startswith("-") and not line.startswith("---"))
        lines = "line" if added == 1 else "lines"
        what = f"{added} {lines} added, {removed} removed" if added or removed else "no line changed"
        renamed = f"renamed from {self.old_path}, " if self.status == "renamed" else "modified, "
        return f"{renamed}{what} (text notebook)"


@dataclass(frozen=True)
class SnapshotUpdate:
    """A snapshot file changed in the PR: the outputs a case is now expected to produce."""

    status: str  # "added", "removed", "modified", "renamed"
    path: str  # the snapshot file
    notebook: str  # the template it belongs to
    case: str
    diff: NotebookDiff  # outputs only: "-" the old snapshot, "+" the new one
    problem: str = ""

    def summary(self) -> str:
        """``snapshot updated, outputs of 1 cell changed`` and the like."""
        if self.problem:
            return f"snapshot {self.status}: {self.problem}"
        cells = len(self.diff.changes)
        counted = f"{cells} cell{'s' if cells != 1 else ''}"
        if self.status == "added":
            return f"new snapshot, outputs of {counted}"
        if self.status == "removed":
            return "snapshot removed"
        if not cells:
            return "snapshot rewritten, no output changed"
        return f"snapshot updated, outputs of {counted} changed"


Change = TemplateChange | FixtureChange | SnapshotUpdate


def pull_request_changes(
    root: Path, base: str, head: str = "HEAD", naming: FixtureNaming = DEFAULT_NAMING
) -> list[Change]:
    """Templates, fixtures and snapshots changed from the merge base of ``base`` and ``head`` to ``head``.

    Raises RevisionError for an unknown revision, ValueError outside a repository and
    GitOutputError (a ValueError) when git's answer cannot be read whole.
    """
    found = compare(root, base, head, (NOTEBOOK_SUFFIX, *TEXT_SUFFIXES, *naming.suffixes))
    changes: list[Change] = []
    for changed in found.files:
        owner = snapshot_owner(changed.path)
        if owner is not None:
            changes.append(_snapshot(changed, _snapshot_template(owner[0], found), owner[1]))
        elif changed.path.endswith(".ipynb"):
            changes.append(_template(changed))
        elif is_text_suffix(changed.path):
            if _text_template(changed, found, naming):
                changes.append(_text_change(changed))
        else:
            notebook = _fixture_owner(changed, found, naming)
            if notebook is not None:
                changes.append(
                    fixture_change(
                        changed.status,
                        changed.path,
                        changed.old_path if changed.status == "renamed" else None,
                        notebook,
                        changed.old_bytes,
                        changed.new_bytes,
                    )
                )
    return changes


def template_changes(root: Path, base: str, head: str = "HEAD", naming: FixtureNaming = DEFAULT_NAMING) -> list[Change]:
    """``pull_request_changes``: every change the review shows (the name the plugin imports)."""
    return pull_request_changes(root, base, head, naming)


def _fixture_owner(changed: ChangedFile, found: Comparison, naming: FixtureNaming) -> str | None:
    """The notebook beside a fixture file (in head, or in the base for a removed fixture): its
    ``.ipynb``, else a text notebook of its name (``x.py``, ``x.md``)."""
    notebook = naming.notebook_of(changed.path)
    if notebook is None:
        return None
    paths = found.start_paths if changed.status == "removed" else found.head_paths
    for candidate in (notebook, *(with_suffix(notebook, suffix) for suffix in TEXT_SUFFIXES)):
        if candidate in paths or candidate in found.head_paths:
            return candidate
    return None


def _snapshot_template(notebook: str, found: Comparison) -> str:
    """The template a snapshot of ``x`` belongs to: ``x.ipynb``, else a text notebook ``x.py`` or
    ``x.md`` that is there (in head, or in the base), as collection picks it."""
    for candidate in (notebook, *(with_suffix(notebook, suffix) for suffix in TEXT_SUFFIXES)):
        if candidate in found.head_paths or candidate in found.start_paths:
            return candidate
    return notebook


def _text_template(changed: ChangedFile, found: Comparison, naming: FixtureNaming) -> bool:
    """Whether a changed ``.py``/``.md`` file is a text template: a fixture beside it and no ``.ipynb``
    of its name (in head, or in the base when it was removed), and either side reads as a notebook."""
    paths = found.start_paths if changed.status == "removed" else found.head_paths
    if with_suffix(changed.path, NOTEBOOK_SUFFIX) in paths:
        return False  # the fixture is the .ipynb's (a paired text file is not the template)
    if not any(fixture in paths for fixture in naming.candidates(changed.path)):
        return False
    suffix = PurePosixPath(changed.path).suffix
    return any(
        data is not None and reads_as_text_notebook(data, suffix) for data in (changed.new_bytes, changed.old_bytes)
    )


def _text_change(changed: ChangedFile) -> TextTemplateChange:
    """The unified diff of a text template's two sides (no git or diff subprocess: difflib)."""
    old, new = (_text_lines(data) for data in (changed.old_bytes, changed.new_bytes))
    old_name = changed.old_path if changed.status == "renamed" and changed.old_path else changed.path
    body = list(difflib.unified_diff(old, new, f"a/{old_name}", f"b/{changed.path}", lineterm="", n=2))
    diff = TextDiff((CellChange("modified", "text", None, None, tuple(body)),) if body else ())
    lines = len(old) if changed.status == "removed" else len(new)
    return TextTemplateChange(changed.status, changed.path, changed.old_path, diff, lines)


def _text_lines(data: bytes | None) -> list[str]:
    return [] if data is None else data.decode("utf-8", "replace").splitlines()


def _parse(data: bytes | None) -> dict[str, Any]:
    if data is None:
        return _EMPTY
    try:
        nb = json.loads(data)
    except RecursionError:
        raise ValueError("nested too deeply") from None
    if not isinstance(nb, dict) or not isinstance(nb.get("cells"), list):
        raise ValueError("no cells")
    return nb


def _template(changed: ChangedFile) -> TemplateChange:
    try:
        old, new = _parse(changed.old_bytes), _parse(changed.new_bytes)
        if changed.status == "removed":
            return TemplateChange(changed.status, changed.path, changed.old_path, NotebookDiff(()), len(old["cells"]))
        found = diff_notebooks(normalize(old, outputs=False), normalize(new, outputs=False), outputs=False)
    except (ValueError, TypeError, AttributeError, KeyError) as exc:  # valid JSON, not a notebook's shape
        return TemplateChange(
            changed.status, changed.path, changed.old_path, NotebookDiff(()), 0, f"not a readable notebook ({exc})"
        )
    branching = None
    if changed.status in ("modified", "renamed"):
        branching = (measure(old["cells"]).branches, measure(new["cells"]).branches)
    return TemplateChange(changed.status, changed.path, changed.old_path, found, len(new["cells"]), "", branching)


def _snapshot(changed: ChangedFile, notebook: str, case: str) -> SnapshotUpdate:
    try:
        old, new = normalize(_parse(changed.old_bytes)), normalize(_parse(changed.new_bytes))
        found = diff_notebooks(old, new, sources=False, outputs=True)
    except (ValueError, TypeError, AttributeError, KeyError) as exc:
        return SnapshotUpdate(
            changed.status, changed.path, notebook, case, NotebookDiff(()), f"not a readable notebook ({exc})"
        )
    return SnapshotUpdate(changed.status, changed.path, notebook, case, found)
