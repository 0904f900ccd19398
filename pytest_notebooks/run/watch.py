"""papermill's per-cell callbacks for one case: time limits, the cell running, the live log.

nbclient asks for each cell's time limit as the cell starts and reports each start and end;
``CellWatch`` answers with the smaller of the cell's and what is left of the notebook's, and
remembers which cell ran last, which limit it was given and whether it hit it: what execute.py
needs to say why a run stopped. ``Progress`` is ``--notebooks-log-output``.
"""

from __future__ import annotations

import json
import math
import sys
import time
from typing import Any

from pytest_notebooks.cases.notebook import ERROR_MARKER_TAG, INJECTED_TAG, cell_tags
from pytest_notebooks.models import CellFailure, FailureKind
from pytest_notebooks.redact import Redactor
from pytest_notebooks.run.verdict import TemplateNumbering
from pytest_notebooks.terminal import inert

KERNEL_START_TIMEOUT = 60  # at most; a whole-notebook `timeout` counts the kernel start too
TIMEOUT_ENAME = "PytestNotebooksTimeout"  # marks nbclient's synthesized reply to a timed-out cell


class CellWatch:
    """papermill's callbacks for one run (``on_cell_start``, ``timeout_func``, ``on_cell_executed``)
    and what they saw: the cell that started last, the limit it was given, whether it timed out."""

    def __init__(
        self, timeout: float | None, cell_timeout: float | None, started: float, progress: Progress | None = None
    ) -> None:
        self.timeout = timeout
        self.cell_timeout = cell_timeout
        self.deadline = started + timeout if timeout else None
        self.progress = progress
        self.last_started: int | None = None  # index (in the executed copy) of the cell that started last
        self.limit_kind = FailureKind.CELL_TIMEOUT  # the kind of limit the last cell was given
        self.timed_out = False  # a cell hit its limit and was interrupted

    def on_cell_start(self, cell: Any, cell_index: int) -> None:
        self.last_started = cell_index
        if self.progress is not None:
            self.progress.started(cell, cell_index)

    def timeout_func(self, cell: Any) -> float | None:
        """The cell's limit: its own, or what is left of the notebook's when that is less."""
        limits: list[tuple[FailureKind, float]] = []
        if self.cell_timeout:
            limits.append((FailureKind.CELL_TIMEOUT, self.cell_timeout))
        if self.deadline is not None:
            limits.append((FailureKind.NOTEBOOK_TIMEOUT, max(self.deadline - time.monotonic(), 0.01)))
        if not limits:
            return None
        self.limit_kind, limit = min(limits, key=lambda pair: pair[1])
        return limit

    def on_cell_executed(self, cell: Any, cell_index: int, execute_reply: Any) -> None:
        if self.progress is not None:
            self.progress.executed(cell)
        if execute_reply.get("content", {}).get("ename") == TIMEOUT_ENAME:
            self.timed_out = True

    def timeout_failure(self) -> CellFailure:
        """The failure of a cell stopped at the limit it was given."""
        kind = self.limit_kind
        return CellFailure(kind, limit=self.timeout if kind is FailureKind.NOTEBOOK_TIMEOUT else self.cell_timeout)

    def start_timeout(self) -> int:
        """Seconds the kernel may take to get ready: a whole-notebook limit counts it too."""
        if self.deadline is None:
            return KERNEL_START_TIMEOUT
        return min(KERNEL_START_TIMEOUT, max(math.ceil(self.deadline - time.monotonic()), 1))  # whole seconds

    def never_ready(self) -> bool:
        """The whole-notebook limit ran out before any cell started: the kernel never got ready."""
        return self.last_started is None and self.deadline is not None and time.monotonic() >= self.deadline


class Progress:
    """--notebooks-log-output: ``[nb.ipynb::fr] cell 4/12 started`` as each code cell starts, then its
    output, masked like everything else, as each cell ends (shown live with ``-s``, else on failure).

    Cells are numbered as failure reports and the results file number them (verdict.py): ``cell 4/12``
    is the template's 4th cell of 12, markdown included, whatever papermill inserted before it.
    """

    def __init__(self, name: str, template: bytes, redactor: Redactor) -> None:
        self.name = name
        self.redactor = redactor
        try:
            cells = json.loads(template).get("cells", [])
        except ValueError:
            cells = []
        self.total = len(cells)
        self.kept = tuple(i for i, c in enumerate(cells) if ERROR_MARKER_TAG not in cell_tags(c))
        self.replaced = any(INJECTED_TAG in cell_tags(cells[i]) for i in self.kept)  # papermill reuses it
        self.injected: int | None = None  # the executed copy's index of the cell papermill inserted

    def started(self, cell: Any, cell_index: int) -> None:
        if cell.get("cell_type") != "code":
            return
        if not self.replaced and self.injected is None and INJECTED_TAG in cell_tags(cell):
            self.injected = cell_index  # cells start in order: every later index is one past its template's
            print(f"[{self.name}] injected parameters cell (papermill's, not in the template) started", flush=True)
            return
        number = TemplateNumbering(self.kept, self.injected, ()).number(cell_index)
        print(f"[{self.name}] cell {number or '?'}/{self.total} started", flush=True)

    def executed(self, cell: Any) -> None:
        for output in cell.get("outputs", []):
            text = _output_text(output)
            if text:
                sys.stdout.write(inert(self.redactor.text(text), colour=True))
        sys.stdout.flush()


def _output_text(output: Any) -> str:
    """What a cell's output shows as text: a stream's text, an error's line, data's text/plain."""
    kind = output.get("output_type")
    if kind == "stream":
        text = output.get("text", "")
    elif kind == "error":
        text = f"{output.get('ename')}: {output.get('evalue')}\n"
    else:
        text = (output.get("data") or {}).get("text/plain", "")
    return "".join(text) if isinstance(text, list) else str(text)
