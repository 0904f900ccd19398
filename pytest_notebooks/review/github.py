"""Results -> GitHub Actions workflow commands and the job summary. Pure text, no network.

Annotations: ``::error file=PATH,line=N,title=T::message``. GitHub shows 10 errors per step, so
at most 10 are emitted, one per failing case. Each points into the raw .ipynb of the template:

- at the failing source line, when the failure knows it: the element of the cell's JSON
  ``source`` array that holds that line (notebooks on disk keep one source line per element);
- else at the failing cell (the line of its ``"id"``, or where the cell starts).

The message is the failure summary without terminal escape sequences. PATH is relative to
``$GITHUB_WORKSPACE`` when that is set, since GitHub attaches annotations to
the PR's files by their path in the repository, and pytest may run in a subdirectory of it.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pytest_notebooks.results.record import ResultsDocument
from pytest_notebooks.review.normalize import strip_terminal

MAX_ANNOTATIONS = 10
_SPACE = re.compile(r"[ \t\n\r]*")
_SCALAR = re.compile(r"-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][-+]?\d+)?|true|false|null")
_scanstring: Any = json.decoder.scanstring  # type: ignore[attr-defined]  # the C scanner; untyped in typeshed


def escape_data(text: str) -> str:
    """Escape a workflow command's message."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    """Escape a workflow command's property value."""
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


@dataclass
class _Cell:
    """Where one cell sits in the notebook's text: its start, its id line, its source lines."""

    start: int
    id: str | None = None
    id_line: int | None = None
    source_line: int | None = None  # the line of the "source" value (a string, or the array's "[")
    source: list[tuple[int, str]] = field(default_factory=list)  # (line, text) per array element


class _Scanner:
    """A JSON reader that remembers the line of each cell and of each element of its source."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.cells: list[_Cell] = []
        self._newlines = [m.start() for m in re.finditer("\n", text)]

    def skip(self, pos: int) -> int:
        """The position after the whitespace at ``pos``."""
        match = _SPACE.match(self.text, pos)
        return match.end() if match else pos

    def line(self, offset: int) -> int:
        from bisect import bisect_left

        return bisect_left(self._newlines, offset) + 1

    def value(self, pos: int, path: tuple[Any, ...]) -> int:
        pos = self.skip(pos)
        char = self.text[pos : pos + 1]
        if len(path) == 2 and path[0] == "cells":
            self.cells.append(_Cell(self.line(pos)))
        if len(path) == 3 and path[0] == "cells" and path[2] == "source":
            self.cells[-1].source_line = self.line(pos)
        if char == "{":
            return self._object(pos + 1, path)
        if char == "[":
            return self._array(pos + 1, path)
        if char == '"':
            text, end = _scanstring(self.text, pos + 1)
            if len(path) == 4 and path[0] == "cells" and path[2] == "source":
                self.cells[-1].source.append((self.line(pos), text))
            elif len(path) == 3 and path[0] == "cells" and path[2] in ("id", "source"):
                cell = self.cells[-1]
                if path[2] == "id":
                    cell.id, cell.id_line = text, self.line(pos)
                else:
                    cell.source.append((self.line(pos), text))
            return int(end)
        match = _SCALAR.match(self.text, pos)
        if match is None:
            raise ValueError(f"unexpected character at {pos}")
        return match.end()

    def _object(self, pos: int, path: tuple[Any, ...]) -> int:
        pos = self.skip(pos)
        if self.text.startswith("}", pos):
            return pos + 1
        while True:
            if not self.text.startswith('"', pos):
                raise ValueError(f"expected a key at {pos}")
            key, pos = _scanstring(self.text, pos + 1)
            pos = self.skip(pos)
            if not self.text.startswith(":", pos):
                raise ValueError(f"expected ':' at {pos}")
            pos = self.value(pos + 1, (*path, key) if len(path) < 4 else path)
            pos = self.skip(pos)
            if self.text.startswith("}", pos):
                return pos + 1
            if not self.text.startswith(",", pos):
                raise ValueError(f"expected ',' at {pos}")
            pos = self.skip(pos + 1)

    def _array(self, pos: int, path: tuple[Any, ...]) -> int:
        pos = self.skip(pos)
        if self.text.startswith("]", pos):
            return pos + 1
        index = 0
        while True:
            pos = self.value(pos, (*path, index) if len(path) < 4 else path)
            pos = self.skip(pos)
            if self.text.startswith("]", pos):
                return pos + 1
            if not self.text.startswith(",", pos):
                raise ValueError(f"expected ',' at {pos}")
            pos += 1
            index += 1


def _cells(notebook_text: str) -> list[_Cell]:
    scanner = _Scanner(notebook_text)
    try:
        scanner.value(0, ())
    except (ValueError, IndexError, RecursionError):
        return []  # not JSON we can read: the annotation points at line 1
    return scanner.cells


def cell_line(notebook_text: str, cell_number: int | None, cell_id: str | None, line: int | None = None) -> int:
    """The 1-based line of the raw notebook to annotate (1 when unknown).

    With ``line`` (1-based, in the cell's source), the JSON line holding that source line; else the
    cell's ``"id"`` line, or the line where the cell starts.
    """
    cells = _cells(notebook_text)
    cell = next((c for c in cells if cell_id and c.id == cell_id), None)
    if cell is None and cell_number and 0 < cell_number <= len(cells):
        cell = cells[cell_number - 1]
    if cell is None:
        return 1
    if line and line > 0 and cell.source:
        seen = 0  # source lines before the current element
        found = cell.source[0][0]
        for json_line, text in cell.source:
            if seen + 1 > line:
                break
            found = json_line
            seen += text.count("\n")
        return found
    return cell.id_line or cell.start


def annotation_path(notebook: Path, shown: str) -> str:
    """``notebook`` relative to ``$GITHUB_WORKSPACE`` when it lies below it, else ``shown``."""
    workspace = os.environ.get("GITHUB_WORKSPACE")
    if workspace:
        try:
            return notebook.resolve().relative_to(Path(workspace).resolve()).as_posix()
        except (ValueError, OSError):
            pass
    return shown


def error_annotations(results: ResultsDocument, rootdir: Path) -> list[str]:
    """``::error`` lines for the first ``MAX_ANNOTATIONS`` failing cases."""
    out = []
    for case in results.cases:
        failure = case.failure
        if case.outcome.ok or failure is None:
            continue
        path = rootdir / case.notebook
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            text = ""
        line = cell_line(text, failure.cell, failure.cell_id, failure.line)
        shown = annotation_path(path, case.notebook)
        title = f"{case.notebook}::{case.case} failed"
        out.append(
            f"::error file={escape_property(shown)},line={line},title={escape_property(title)}"
            f"::{escape_data(strip_terminal(failure.summary))}"
        )
        if len(out) == MAX_ANNOTATIONS:
            break
    return out


def append_step_summary(markdown: str) -> str:
    """Append to ``$GITHUB_STEP_SUMMARY`` when it is set; "" when done (or unset), else why not.

    The review is written elsewhere first, so a full disk or a bad path here loses nothing: the
    caller says so in one line instead of a traceback.
    """
    target = os.environ.get("GITHUB_STEP_SUMMARY")
    if not target:
        return ""
    try:
        with open(target, "a", encoding="utf-8") as handle:
            handle.write(markdown if markdown.endswith("\n") else markdown + "\n")
    except OSError as exc:
        return f"could not append the review to $GITHUB_STEP_SUMMARY ({target}): {exc.strerror or exc}"
    return ""
