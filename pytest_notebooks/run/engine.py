"""The papermill engine every case runs with: nbclient's client, plus the output budget and masking.

A boundary module like execute.py: it subclasses papermill's engine and execution manager and
nbclient's client, so that every kernel message is masked and counted before it becomes an
output, and the saves papermill makes while a case runs stay cheap. The private names of
nbclient and papermill it relies on are listed in run/internals.py, each checked by a test.
"""

from __future__ import annotations

import asyncio
import copy
import json
import os
from dataclasses import dataclass
from typing import Any

import nbformat
from nbclient.exceptions import CellExecutionError
from nbclient.util import ensure_async, run_sync
from nbformat.v4 import new_output, output_from_msg
from nbformat.v4.nbjson import BytesEncoder
from papermill.clientwrap import PapermillNotebookClient
from papermill.engines import NBClientEngine, NotebookExecutionManager, papermill_engines
from papermill.log import logger
from papermill.utils import merge_kwargs, remove_args

from pytest_notebooks.cases.notebook import INJECTED_TAG
from pytest_notebooks.files import is_url, overwrite, printable
from pytest_notebooks.redact import Redactor
from pytest_notebooks.run.budget import CellBudget, OutputBudget, Overflow, output_size, trim_error

ENGINE_NAME = "pytest-notebooks"
INTERRUPT_GRACE = 10.0  # seconds a stopped cell gets to end after the interrupt
COMPACT_EVERY = 1000  # outputs a cell may gather before its runs of one stream are merged


@dataclass(frozen=True)
class OutputLimitHit:
    """The cell (index in the executed copy) that passed an output limit, and which limit."""

    cell_index: int
    scope: str  # "cell" or "notebook"
    limit: int


class _Cut:
    """A cell's outputs once it passed its limit: the head kept so far, a marker saying how much
    was left out, then the tail of each stream (run/budget.py's ``Overflow`` keeps the text)."""

    def __init__(self, outputs: list[Any], budget: CellBudget) -> None:
        self.outputs = outputs
        self.overflow = Overflow(budget.scope, budget.limit, budget.tail_size)
        self.marker = new_output("stream", name="stderr", text="")
        self.tails: dict[str, Any] = {}  # stream name -> its tail's output, in the order they came
        outputs.append(self.marker)

    def add(self, msg: dict[str, Any]) -> None:
        """Take a message that arrived after the cut: a stream's text goes to its tail, an error
        (where the interrupt landed) is kept trimmed to the tail size, the rest is counted."""
        content = msg["content"]
        if msg["msg_type"] == "stream":
            name = str(content.get("name", "stdout"))
            if self.overflow.add_stream(name, str(content.get("text", ""))):
                last = self.tails[next(reversed(self.tails))] if self.tails else self.marker
                self.tails[name] = new_output("stream", name=name, text="")
                self.outputs.insert(_position(self.outputs, last) + 1, self.tails[name])
        elif msg["msg_type"] == "error":
            trimmed = trim_error(content, self.overflow.tail_size)
            self.outputs.append(output_from_msg({**msg, "content": trimmed}))
        else:
            self.overflow.drop(output_size(msg))

    def materialize(self, redactor: Redactor) -> None:
        """Write the tails and the marker into the cell's outputs (before every save)."""
        for name, output in self.tails.items():
            output["text"] = redactor.text(self.overflow.tails[name].value)
        self.marker["text"] = self.overflow.marker()


@dataclass
class _RunningCell:
    """The cell nbclient is running: its budget, its cut once it passed it, the interrupt's timer."""

    budget: CellBudget
    compacted: int = 0  # outputs before this index were compacted already
    cut: _Cut | None = None
    timer: asyncio.TimerHandle | None = None

    @property
    def index(self) -> int:
        return self.budget.index


class Guard:
    """One case's output budget and masking, and what happened (read by execute.py after the run).

    Masking: every message from the kernel is masked (redact.py) before nbclient turns it into an
    output, so no copy papermill saves while a cell runs holds a secret; a secret printed across
    two chunks of a stream is caught where the chunks meet.

    Budget: up to its limit a cell keeps outputs as they come. The output that passes it is cut
    there, the cell is interrupted (and abandoned if it has not ended INTERRUPT_GRACE s later),
    and from then on only a rolling tail of each stream and error outputs are kept: memory stays
    bounded while the kernel drains. The saved cell reads: the head, a marker line saying how much
    was left out, the tail, the KeyboardInterrupt traceback. A cell that prints in many tiny chunks
    is compacted as it goes (runs of one stream merged), so the per-output overhead cannot outgrow
    the limit either. What it cannot bound: one message is received whole before it is looked at,
    and ipykernel batches what a cell prints for a moment into one message.
    """

    def __init__(self, max_cell: int | None, max_notebook: int | None, redactor: Redactor) -> None:
        self.budget = OutputBudget(max_cell, max_notebook)
        self.redactor = redactor
        self.hit: OutputLimitHit | None = None
        self.cell: _RunningCell | None = None
        self.touched: set[int] = set()  # earlier cells whose outputs a display update changed
        self.notebook: Any = None  # the notebook the run left, in memory: what is judged, not a file

    def start_cell(self, index: int) -> _RunningCell:
        self.cell = _RunningCell(self.budget.open(index))
        return self.cell

    def end_cell(self) -> None:
        running, self.cell = self.cell, None
        if running is None:
            return
        self.budget.close(running.budget)
        if running.timer is not None:
            running.timer.cancel()
        if running.cut is not None:
            running.cut.materialize(self.redactor)

    def flush(self) -> None:
        """Bring the running cell's outputs up to date (a save is coming)."""
        if self.cell is not None and self.cell.cut is not None:
            self.cell.cut.materialize(self.redactor)


class GuardedManager(NotebookExecutionManager):  # type: ignore[misc]  # papermill ships no types
    """papermill's execution manager, saving less and more cheaply; every save (at a code cell's
    start, the periodic autosave during a long cell, the end of the run) first brings a stopped
    cell's outputs up to date.

    papermill writes the whole notebook at every cell's start and end, markdown cells included,
    each time copying it, validating it and serializing every cell again: a notebook of N cells
    with large outputs costs about N^2 cells' worth of work (see bench/README.md). Here:

    * only a code cell's start saves, which writes every output so far and marks that cell
      running, so the saved notebook still shows the last cell that ran if the pytest process
      dies (the end of the run writes the rest, whatever ended it).
    * a save while the case runs serializes only the cells that may have changed since the last
      one: finished cells are kept as text, unless a display update changed them. The run's last
      save serializes as papermill does (copy, validate, split lines).
    * a local file is overwritten in place and then cut to length, not truncated first (ext4
      flushes a file truncated to zero to disk before it goes on). A process killed in the middle
      of a save leaves a file that does not parse, as papermill's own save does.
    """

    def __init__(self, nb: Any, guard: Guard, **kwargs: Any) -> None:
        super().__init__(nb, **kwargs)
        self.guard = guard
        guard.notebook = self.nb
        self.skip_save = False
        self.running = -1  # index of the cell that started last
        self.final = False  # the end of the run: papermill's own save
        self.serialized: dict[int, tuple[Any, str]] = {}  # index -> (cell, its JSON) of finished cells

    def cell_start(self, cell: Any, cell_index: int | None = None, **kwargs: Any) -> None:
        self.running = cell_index if cell_index is not None else self.running + 1
        self.skip_save = cell.get("cell_type") != "code"
        try:
            super().cell_start(cell, cell_index, **kwargs)
        finally:
            self.skip_save = False

    def cell_complete(self, cell: Any, cell_index: int | None = None, **kwargs: Any) -> None:
        self.skip_save = True
        try:
            super().cell_complete(cell, cell_index, **kwargs)
        finally:
            self.skip_save = False

    def notebook_complete(self, **kwargs: Any) -> None:
        self.final = True
        super().notebook_complete(**kwargs)

    def save(self, **kwargs: Any) -> None:
        if self.skip_save:
            return
        self.guard.flush()
        if not self.output_path or is_url(self.output_path) or not os.path.isabs(self.output_path):
            super().save(**kwargs)  # papermill's I/O: remote stores, its own idea of the cwd
            return
        nb = self._masked() if self.guard.redactor else self.nb
        text = nbformat.writes(nb) if self.final else self._dump(nb)
        overwrite(str(self.output_path), text.encode("utf-8"))  # a link there is replaced, not followed
        self.last_save_time = self.now()

    def _masked(self) -> Any:
        """The notebook with the parameters papermill wrote into it masked: its injected cell and
        ``metadata.papermill.parameters`` hold a secret passed as a parameter, and a run killed before
        the end must not leave it on disk. Outputs were masked as they arrived. A shallow copy: the
        cells that are not injected are the same objects, so ``_dump`` still reuses their text."""
        nb = copy.copy(self.nb)
        nb.metadata = copy.copy(nb.metadata)
        papermill = nb.metadata.get("papermill")
        if isinstance(papermill, dict):
            nb.metadata["papermill"] = self.guard.redactor.data(copy.deepcopy(papermill))
        nb.cells = [
            self.guard.redactor.data(copy.deepcopy(cell))
            if INJECTED_TAG in cell.get("metadata", {}).get("tags", [])
            else cell
            for cell in self.nb.cells
        ]
        return nb

    def _dump(self, nb: Any) -> str:
        """The notebook as nbformat writes it (indented, keys sorted), with the text of cells that
        finished before the running one reused; strings are not split into lines."""
        options: dict[str, Any] = {
            "cls": BytesEncoder,
            "indent": 1,
            "sort_keys": True,
            "separators": (",", ": "),
            "ensure_ascii": False,
        }
        for index in self.guard.touched:
            self.serialized.pop(index, None)
        self.guard.touched.clear()
        cells = []
        for index, cell in enumerate(nb.cells):
            known = self.serialized.get(index)
            if known is not None and known[0] is cell:
                text = known[1]
            else:
                text = "  " + json.dumps(cell, **options).replace("\n", "\n  ")  # nested two levels deep
                if index < self.running:  # finished: it changes only through a display update
                    self.serialized[index] = (cell, text)
            cells.append(text)
        rest = json.dumps({**nb, "cells": None}, **options)
        return rest.replace('"cells": null', '"cells": [\n' + ",\n".join(cells) + "\n ]", 1)


class GuardedClient(PapermillNotebookClient):  # type: ignore[misc]  # papermill ships no types
    """papermill's nbclient client with the guard applied to every kernel message."""

    def __init__(self, nb_man: Any, guard: Guard, **kwargs: Any) -> None:
        super().__init__(nb_man, **kwargs)
        self.guard = guard

    async def async_execute_cell(
        self, cell: Any, cell_index: int, execution_count: int | None = None, store_history: bool = True
    ) -> Any:
        self.guard.start_cell(cell_index)
        try:
            executed = await super().async_execute_cell(cell, cell_index, execution_count, store_history)
        finally:
            self.guard.end_cell()
        hit = self.guard.hit
        if hit is not None and hit.cell_index == cell_index:
            # It ended before the interrupt landed: the run stops here all the same.
            raise CellExecutionError("", "OutputLimit", f"output over the {hit.scope} output limit")
        return executed

    execute_cell = run_sync(async_execute_cell)  # papermill calls the sync name

    def process_message(self, msg: dict[str, Any], cell: Any, cell_index: int) -> Any:
        if self.guard.redactor:
            self.guard.redactor.data(msg.get("content", {}))
        return super().process_message(msg, cell, cell_index)

    def _update_display_id(self, display_id: str, msg: dict[str, Any]) -> None:
        self.guard.touched.update(self._display_id_map.get(display_id, {}))  # cells saved as text
        super()._update_display_id(display_id, msg)

    def clear_output(self, outs: list[Any], msg: dict[str, Any], cell_index: int) -> None:
        running = self._running(msg, cell_index)
        if running is not None and running.cut is not None:
            return  # the cell is being stopped: keep the head, the marker and the tail
        super().clear_output(outs, msg, cell_index)
        if running is not None and not msg["content"].get("wait"):
            running.budget.cleared()
            running.compacted = 0

    def output(self, outs: list[Any], msg: dict[str, Any], display_id: str | None, cell_index: int) -> Any:
        running = self._running(msg, cell_index)
        if running is None:
            return super().output(outs, msg, display_id, cell_index)
        if running.cut is not None:
            running.cut.add(msg)
            return None
        if self.clear_before_next_output:  # a clear_output(wait=True) takes effect now
            running.budget.cleared()
            running.compacted = 0
        room = running.budget.room()
        if running.budget.admit(output_size(msg)):
            out = super().output(outs, msg, display_id, cell_index)
            self._join_split_secret(outs)
            self._compact(outs, running, cell_index)
            return out
        # This output passes the limit: keep what fits, stop the cell, keep only a tail from now on.
        rest = msg
        if msg["msg_type"] == "stream" and room:
            text = msg["content"]["text"]
            super().output(outs, {**msg, "content": {**msg["content"], "text": text[:room]}}, display_id, cell_index)
            running.budget.keep_head(room)
            rest = {**msg, "content": {**msg["content"], "text": text[room:]}}
        running.cut = _Cut(outs, running.budget)
        self._stop(running)
        running.cut.add(rest)
        return None

    def _running(self, msg: dict[str, Any], cell_index: int) -> _RunningCell | None:
        """The running cell, unless an output widget captures this message."""
        running = self.guard.cell
        parent = msg.get("parent_header", {}).get("msg_id")
        if running is None or running.index != cell_index or self.output_hook_stack.get(parent):
            return None
        return running

    def _stop(self, running: _RunningCell) -> None:
        """Interrupt the cell; abandon it if it is still running INTERRUPT_GRACE s later."""
        budget = running.budget
        self.guard.hit = OutputLimitHit(budget.index, budget.scope, budget.limit)
        loop = asyncio.get_running_loop()
        self.interrupting = asyncio.ensure_future(ensure_async(self.km.interrupt_kernel()))  # keep a reference
        running.timer = loop.call_later(INTERRUPT_GRACE, self._abandon, running)

    def _abandon(self, running: _RunningCell) -> None:
        """Stop waiting for a cell that ignored the interrupt (nbclient then reports a dead kernel;
        execute.py knows better, from the guard's ``hit``)."""
        task = getattr(self, "task_poll_for_reply", None)
        if self.guard.cell is running and task is not None and not task.done():
            task.cancel()

    def _join_split_secret(self, outs: list[Any]) -> None:
        """Merge the last stream chunk into the one before when a secret straddles them."""
        redactor = self.guard.redactor
        if not redactor or len(outs) < 2:
            return
        before, last = outs[-2], outs[-1]
        if not (_stream(before) and _stream(last) and before.get("name") == last.get("name")):
            return
        reach = redactor.longest - 1
        if redactor.contains(before["text"][-reach:] + last["text"][:reach]):
            before["text"] = redactor.text(before["text"] + last["text"])
            outs.pop()

    def _compact(self, outs: list[Any], running: _RunningCell, cell_index: int) -> None:
        """Merge runs of one stream once a cell has gathered COMPACT_EVERY more outputs."""
        if len(outs) - running.compacted < COMPACT_EVERY:
            return
        if any(cells.get(cell_index) for cells in self._display_id_map.values()):
            running.compacted = len(outs)  # output indices are remembered for display updates
            return
        merged: list[Any] = []
        for out in outs[running.compacted :]:
            if merged and _stream(out) and _stream(merged[-1]) and merged[-1].get("name") == out.get("name"):
                merged[-1]["text"] += out["text"]
            else:
                merged.append(out)
        outs[running.compacted :] = merged
        running.compacted = len(outs)


class GuardedEngine(NBClientEngine):  # type: ignore[misc]  # papermill ships no types
    """papermill's nbclient engine with GuardedManager and GuardedClient.

    execute.py calls ``papermill.execute_notebook(notebook, ..., engine_name=ENGINE_NAME, guard=...,
    source_path=...)``: handed a notebook rather than a path, papermill would record the whole
    notebook as the saved copy's ``input_path``; ``source_path`` is the path recorded instead.
    """

    @classmethod
    def execute_notebook(
        cls,
        nb: Any,
        kernel_name: str,
        output_path: str | None = None,
        progress_bar: bool = True,
        log_output: bool = False,
        autosave_cell_every: int = 30,
        guard: Guard | None = None,
        source_path: str | None = None,
        **kwargs: Any,
    ) -> Any:
        guard = guard or Guard(None, None, Redactor())
        if source_path is not None:  # handed a notebook, papermill records the notebook itself as its input
            nb.metadata.papermill["input_path"] = printable(source_path)
        if output_path is not None:  # a file name's undecodable byte: UTF-8 JSON cannot hold its surrogate
            nb.metadata.papermill["output_path"] = printable(str(output_path))
        nb_man = GuardedManager(
            nb,
            guard,
            output_path=output_path,
            progress_bar=progress_bar,
            log_output=log_output,
            autosave_cell_every=autosave_cell_every,
        )
        nb_man.notebook_start()
        try:
            cls.execute_managed_notebook(nb_man, kernel_name, log_output=log_output, guard=guard, **kwargs)
        finally:
            nb_man.cleanup_pbar()
            nb_man.notebook_complete()
        return nb_man.nb

    @classmethod
    def execute_managed_notebook(
        cls,
        nb_man: Any,
        kernel_name: str,
        log_output: bool = False,
        stdout_file: Any = None,
        stderr_file: Any = None,
        start_timeout: float = 60,
        execution_timeout: float | None = None,
        guard: Guard | None = None,
        **kwargs: Any,
    ) -> Any:
        """NBClientEngine's, building our client (the same arguments reach nbclient)."""
        kwargs = remove_args(["input_path"], **kwargs)
        safe_kwargs = remove_args(["timeout", "startup_timeout"], **kwargs)
        final_kwargs = merge_kwargs(
            safe_kwargs,
            timeout=execution_timeout if execution_timeout else kwargs.get("timeout"),
            startup_timeout=start_timeout,
            kernel_name=kernel_name,
            log=logger,
            log_output=log_output,
            stdout_file=stdout_file,
            stderr_file=stderr_file,
        )
        return GuardedClient(nb_man, guard or Guard(None, None, Redactor()), **final_kwargs).execute()


papermill_engines.register(ENGINE_NAME, GuardedEngine)


def _stream(output: Any) -> bool:
    return isinstance(output, dict) and output.get("output_type") == "stream" and isinstance(output.get("text"), str)


def _position(outputs: list[Any], target: Any) -> int:
    """Index of ``target`` itself in ``outputs`` (``list.index`` compares by value)."""
    return next(index for index, output in enumerate(outputs) if output is target)
