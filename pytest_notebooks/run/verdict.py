"""The verdict on an executed notebook, in the template's terms. Pure: no papermill, no nbclient.

papermill alone gets two tags wrong, so the verdict is taken from the saved notebook, not from
papermill's exception: a cell tagged ``raises-exception`` must raise (papermill fails the run when
it does), a clean ``sys.exit(0)`` passes, and a cell papermill marked failed without an error
output fails. Cell numbers are the template's: papermill inserts and drops cells in its copy.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from pytest_notebooks.cases.notebook import ERROR_MARKER_TAG, INJECTED_TAG, cell_source, cell_tags, strip_ansi
from pytest_notebooks.models import CellFailure, FailureKind

RAISES_TAG = "raises-exception"
STDERR_LINES = 20  # last lines of a failed cell's stderr shown when it left no error output
_CELL_LINE = re.compile(r"Cell In\[(\d+)\], line (\d+)")
_ARROW_LINE = re.compile(r"^-+>\s*(\d+)", re.MULTILINE)
_EXCEPTION_LINE = re.compile(r"^([A-Za-z_][\w.]*(?:Error|Exception|Interrupt|Exit)): ?(.*)$")


@dataclass(frozen=True)
class TemplateNumbering:
    """Maps a cell index in the executed copy to its 1-based number in the template.

    papermill drops the template's old error-marker cells and inserts an injected-parameters
    cell (or replaces the template's own), so positions differ between the two.
    """

    template_positions: tuple[int, ...]  # template index of each cell papermill kept
    injected_index: int | None  # index of the inserted parameters cell in the executed copy
    template_ids: tuple[str | None, ...]  # cell ids as saved in the template (older ones have none)

    @classmethod
    def of(cls, cells: list[Any], executed_cells: list[Any]) -> TemplateNumbering:
        """From the template's cells (as in its JSON) and the executed copy's cells."""
        kept = tuple(i for i, c in enumerate(cells) if ERROR_MARKER_TAG not in cell_tags(c))
        replaced = any(INJECTED_TAG in cell_tags(cells[i]) for i in kept)
        injected = [i for i, c in enumerate(executed_cells) if INJECTED_TAG in cell_tags(c)]
        ids = tuple(c.get("id") for c in cells)
        return cls(kept, None if replaced or not injected else injected[0], ids)

    def cell_id(self, index: int) -> str | None:
        """The template's id of the executed cell at ``index`` (nbformat invents ids for old files)."""
        number = self.number(index)
        return self.template_ids[number - 1] if number is not None else None

    def number(self, index: int) -> int | None:
        if self.injected_index is not None and index >= self.injected_index:
            if index == self.injected_index:
                return None  # the injected-parameters cell itself is not in the template
            index -= 1
        return self.template_positions[index] + 1 if index < len(self.template_positions) else None


def judge(cells: list[Any], numbering: TemplateNumbering) -> CellFailure | None:
    """The first cell that failed the case, honouring raises-exception and clean sys.exit."""
    for index, cell in enumerate(cells):
        if cell.get("cell_type") != "code":
            continue
        errors = [o for o in cell.get("outputs", []) if o.get("output_type") == "error"]
        tagged = RAISES_TAG in cell_tags(cell)
        ran = cell.get("execution_count") is not None
        for error in errors:
            if error.get("ename") == "SystemExit" and str(error.get("evalue", "")) in ("", "0"):
                return None  # papermill treats a clean sys.exit as success; later cells did not run
            if not tagged:
                return _cell_failure(FailureKind.ERROR, cell, index, numbering, error)
        if tagged and ran and not errors:
            return _cell_failure(FailureKind.NO_RAISE, cell, index, numbering, None)
        if not errors and cell.get("metadata", {}).get("papermill", {}).get("exception") is True:
            # nbclient raised for this cell without an error output (papermill's own rule)
            return _cell_failure(FailureKind.ERROR, cell, index, numbering, _from_stderr(cell))
    return None


def _from_stderr(cell: Any) -> dict[str, Any]:
    """An error for a cell that failed without an error output, read from what it printed on stderr.

    IPython reports some failures only there: a line magic that does not exist fails the cell
    with ``UsageError: Line magic function `%x` not found.`` on stderr and no error output.
    """
    text = "".join(
        "".join(o["text"]) if isinstance(o.get("text"), list) else str(o.get("text", ""))
        for o in cell.get("outputs", [])
        if o.get("output_type") == "stream" and o.get("name") == "stderr"
    )
    lines = [line for line in strip_ansi(text).splitlines() if line.strip()]
    if not lines:
        return {"ename": "CellExecutionError", "evalue": "the cell failed without an error output"}
    shown = tuple(lines[-STDERR_LINES:])
    match = next((m for m in map(_EXCEPTION_LINE.match, reversed(lines)) if m), None)
    if match:
        return {"ename": match.group(1), "evalue": match.group(2), "traceback": shown}
    return {
        "ename": "CellExecutionError",
        "evalue": f"the cell failed; its stderr ends: {lines[-1]}",
        "traceback": shown,
    }


def _cell_failure(kind: FailureKind, cell: Any, index: int, numbering: TemplateNumbering, error: Any) -> CellFailure:
    exec_count = cell.get("execution_count")
    traceback = tuple(error.get("traceback", ())) if error is not None else ()
    ename, evalue = ("", "") if error is None else (str(error.get("ename", "")), str(error.get("evalue", "")))
    ename, evalue = restated(ename, strip_ansi(evalue))
    return CellFailure(
        kind,
        cell_number=numbering.number(index),
        cell_id=numbering.cell_id(index),
        exec_count=exec_count,
        source=cell_source(cell),
        line=failing_line(traceback, exec_count),
        ename=ename,
        evalue=evalue,
        traceback=traceback,
    )


def restated(ename: str, evalue: str) -> tuple[str, str]:
    """The error's name and message, said once when the message starts by naming the error itself.

    IRkernel names every error ``ERROR`` and gives R's own text as the message (``Error: x is not
    TRUE``, ``Error in f(1): boom``), and IJulia's message repeats the type (``UndefVarError: `x`
    not defined``): the headline said the name twice (``ERROR: Error: x is not TRUE``). Such a
    message is split where the text after its name starts: ``Error`` / ``x is not TRUE``,
    ``Error in f(1)`` / ``boom``. ``in eval(expr, envir, enclos)``, the call IRkernel evaluates a
    cell with, is left out (R's console says ``Error: boom`` for a top-level ``stop("boom")``).
    """
    text = evalue.lstrip()
    word = text[: len(ename)]
    if not ename or word.lower() != ename.lower():
        return ename, evalue
    end = _message_start(text, len(word))
    if end < 0:
        return ename, evalue
    name = text[: end - 1].rstrip().removesuffix(_IRKERNEL_CALL)
    return name, text[end:].lstrip(" ")


_IRKERNEL_CALL = " in eval(expr, envir, enclos)"


def _message_start(text: str, start: int) -> int:
    """Where the message starts after ``Error`` (``: ``) or ``Error in <call>`` (the first ``:``
    outside the call's brackets and strings); -1 when the text goes on otherwise."""
    if text.startswith(":", start):
        return start + 1
    if not text.startswith(" in ", start):
        return -1
    depth, quote, escaped = 0, "", False
    for index in range(start + 4, len(text)):
        char = text[index]
        if quote:
            escaped, quote = (not escaped and char == "\\"), ("" if char == quote and not escaped else quote)
        elif char in "\"'`":
            quote = char
        elif char in "([{":
            depth += 1
        elif char in ")]}":
            depth -= 1
        elif char == "\n":
            return -1
        elif char == ":" and depth == 0:
            return index + 1
    return -1


def failing_line(traceback: tuple[str, ...], exec_count: int | None) -> int | None:
    """The line of the cell that raised, as IPython's traceback names it."""
    text = strip_ansi("\n".join(traceback))
    for match in _CELL_LINE.finditer(text):
        if exec_count is None or int(match.group(1)) == exec_count:
            return int(match.group(2))
    arrow = _ARROW_LINE.search(text)
    return int(arrow.group(1)) if arrow else None
