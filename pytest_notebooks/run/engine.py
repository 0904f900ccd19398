"""The papermill engine cases run with: nbclient's client, plus an output limit and masking.

A boundary module like execute.py (it subclasses papermill's and nbclient's classes); execute.py
runs every case through ``papermill.execute_notebook(notebook, ..., engine_name=ENGINE_NAME,
guard=..., source_path=...)``: handed a notebook rather than a path, papermill would record the
whole notebook as the saved copy's ``input_path``; ``source_path`` is the path recorded instead.

Masking: every message from the kernel is masked (redact.py) before nbclient turns it into an
output, so no copy papermill saves while a cell runs holds a secret either. A secret printed
across two chunks of a stream is caught where the chunks meet.

Output limit: a cell may keep ``max_cell`` characters of output, and all cells together
``max_notebook``. Up to the limit outputs are kept as they come. The output that passes it is cut
there, the cell is interrupted (and abandoned if it has not ended ``INTERRUPT_GRACE`` seconds
later), and from then on only a rolling tail of each stream (a tenth of the limit, at most 1 MB)
and error outputs are kept: memory stays bounded while the kernel drains. The saved cell reads:
the head, a marker line saying how much was left out, the tail, the KeyboardInterrupt traceback.
A cell that prints in many tiny chunks is compacted as it goes (runs of one stream merged), so the
per-output overhead cannot outgrow the limit either.

What it cannot bound: one message from the kernel is received whole before it is looked at, and
ipykernel batches what a cell prints for 0.2 s into one message.
"""

from __future__ import annotations

import asyncio
import copy
import json
import os
from collections import deque
from dataclasses import dataclass, field
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
from pytest_notebooks.models import format_size
from pytest_notebooks.redact import Redactor

ENGINE_NAME = "pytest-notebooks"
INTERRUPT_GRACE = 10.0  # seconds a stopped cell gets to end after the interrupt
COMPACT_EVERY = 1000  # outputs a cell may gather before its runs of one stream are merged
MIN_TAIL, MAX_TAIL = 2_000, 1_000_000  # characters of each stream kept after the cut


@dataclass(frozen=True)
class OutputLimitHit:
    """The cell (index in the executed copy) that passed an output limit, and which limit."""

    cell_index: int
    scope: str  # "cell" or "notebook"
    limit: int


@dataclass
class _Cut:
    """What a cell keeps once it passed its limit: a marker, then the tail of each stream."""

    outputs: list[Any]
    scope: str
    limit: int
    tail_size: int
    marker: Any = None
    tails: dict[str, tuple[Any, deque[str]]] = field(default_factory=dict)  # name -> (output, chunks)
    received: int = 0  # characters that arrived after the cut (kept in a tail or not)

    def __post_init__(self) -> None:
        self.marker = new_output("stream", name="stderr", text="")
        self.outputs.append(self.marker)

    def add_stream(self, name: str, text: str) -> None:
        self.received += len(text)
        if name not in self.tails:
            tail = new_output("stream", name=name, text="")
            last = self.tails[next(reversed(self.tails))][0] if self.tails else self.marker
            self.outputs.insert(_position(self.outputs, last) + 1, tail)
            self.tails[name] = (tail, deque())
        chunks = self.tails[name][1]
        chunks.append(text[-self.tail_size :])
        kept = sum(map(len, chunks))
        while kept - len(chunks[0]) >= self.tail_size:
            kept -= len(chunks.popleft())

    def drop(self, size: int) -> None:
        self.received += size

    def materialize(self, redactor: Redactor) -> None:
        """Write the tails and the marker into the cell's outputs (before every save)."""
        kept = 0
        for tail, chunks in self.tails.values():
            text = "".join(chunks)[-self.tail_size :]
            tail["text"] = redactor.text(text)
            kept += len(text)
        which = "per-cell" if self.scope == "cell" else "whole-notebook"
        left_out = self.received - kept
        self.marker["text"] = (
            f"\n[pytest-notebooks: the output passed the {which} output limit of {format_size(self.limit)} here, "
            f"and the cell was stopped; {left_out:,} characters left out before the last ones below]\n"
        )


@dataclass
class _CellState:
    index: int
    budget: int | None  # characters this cell may keep (None: no limit)
    scope: str
    limit: int
    kept: int = 0
    compacted: int = 0  # outputs before this index were compacted already
    cut: _Cut | None = None
    timer: asyncio.TimerHandle | None = None


class Guard:
    """One case's limits and masking, and what happened (read by execute.py after the run)."""

    def __init__(self, max_cell: int | None, max_notebook: int | None, redactor: Redactor) -> None:
        self.max_cell = max_cell
        self.max_notebook = max_notebook
        self.redactor = redactor
        self.used = 0  # characters kept by the cells that finished
        self.hit: OutputLimitHit | None = None
        self.cell: _CellState | None = None
        self.touched: set[int] = set()  # earlier cells whose outputs a display update changed
        self.notebook: Any = None  # the notebook the run left, in memory: what is judged, not a file

    def start_cell(self, index: int) -> _CellState:
        limits = []
        if self.max_cell is not None:
            limits.append((self.max_cell, "cell", self.max_cell))
        if self.max_notebook is not None:
            limits.append((max(self.max_notebook - self.used, 0), "notebook", self.max_notebook))
        budget, scope, limit = min(limits) if limits else (None, "cell", 0)
        self.cell = _CellState(index, budget, scope, limit)
        return self.cell

    def end_cell(self) -> None:
        state, self.cell = self.cell, None
        if state is None:
            return
        self.used += state.kept
        if state.timer is not None:
            state.timer.cancel()
        if state.cut is not None:
            state.cut.materialize(self.redactor)

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
    with large outputs costs about N^2 cells' worth of work (100 cells of 100 kB each spent 88 %
    of their run in saves, see bench/README.md). Here:

    * only a code cell's start saves, which writes every output so far and marks that cell
      running, so the saved notebook still shows the last cell that ran if the pytest process
      dies (the end of the run writes the rest, whatever ended it). The save at a cell's end
      repeated the next start's; a markdown cell's start changed only its metadata.
    * a save while the case runs serializes only the cells that may have changed since the last
      one: finished cells are kept as text, unless a display update changed them. The run's last
      save serializes as papermill does (copy, validate, split lines), so the notebook a case
      leaves is formatted as before.
    * a local file is overwritten in place and then cut to length, not truncated first: ext4
      flushes a file truncated to zero (or renamed over another) to disk before it goes on,
      which made each of papermill's saves wait 3 to 7 ms here. A process killed in the middle
      of a save leaves a file that does not parse, as papermill's own save (truncate, then
      write) does.
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
        _overwrite(str(self.output_path), text.encode("utf-8"))
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


def _overwrite(path: str, data: bytes) -> None:
    """Write ``data`` over the file at ``path`` from its start, then cut it to that length; a link
    at ``path`` (one the notebook planted, say) is replaced, never written through."""
    overwrite(path, data)


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
        state = self._state(msg, cell_index)
        if state is not None and state.cut is not None:
            return  # the cell is being stopped: keep the head, the marker and the tail
        super().clear_output(outs, msg, cell_index)
        if state is not None and not msg["content"].get("wait"):
            state.kept = state.compacted = 0

    def output(self, outs: list[Any], msg: dict[str, Any], display_id: str | None, cell_index: int) -> Any:
        state = self._state(msg, cell_index)
        if state is None:
            return super().output(outs, msg, display_id, cell_index)
        if state.cut is not None:
            self._after_cut(state.cut, msg)
            return None
        if self.clear_before_next_output:  # a clear_output(wait=True) takes effect now
            state.kept = state.compacted = 0
        size = _size(msg)
        room = None if state.budget is None else state.budget - state.kept
        if room is None or size <= room:
            state.kept += size
            out = super().output(outs, msg, display_id, cell_index)
            self._join_split_secret(outs)
            self._compact(outs, state, cell_index)
            return out
        # This output passes the limit: keep what fits, stop the cell, keep only a tail from now on.
        content = msg["content"]
        rest = msg
        if msg["msg_type"] == "stream" and room > 0:
            head = {**msg, "content": {**content, "text": content["text"][:room]}}
            super().output(outs, head, display_id, cell_index)
            state.kept += room
            rest = {**msg, "content": {**content, "text": content["text"][room:]}}
        state.cut = _Cut(outs, state.scope, state.limit, min(max(state.limit // 10, MIN_TAIL), MAX_TAIL))
        self._stop(state)
        self._after_cut(state.cut, rest)
        return None

    def _state(self, msg: dict[str, Any], cell_index: int) -> _CellState | None:
        """The running cell's state, unless an output widget captures this message."""
        state = self.guard.cell
        parent = msg.get("parent_header", {}).get("msg_id")
        if state is None or state.index != cell_index or self.output_hook_stack.get(parent):
            return None
        return state

    def _after_cut(self, cut: _Cut, msg: dict[str, Any]) -> None:
        content = msg["content"]
        if msg["msg_type"] == "stream":
            cut.add_stream(str(content.get("name", "stdout")), str(content.get("text", "")))
        elif msg["msg_type"] == "error":  # where the interrupt landed: kept, trimmed to the tail size
            cut.outputs.append(output_from_msg({**msg, "content": _trim_error(content, cut.tail_size)}))
        else:
            cut.drop(_size(msg))

    def _stop(self, state: _CellState) -> None:
        """Interrupt the cell; abandon it if it is still running INTERRUPT_GRACE s later."""
        self.guard.hit = OutputLimitHit(state.index, state.scope, state.limit)
        loop = asyncio.get_running_loop()
        self.interrupting = asyncio.ensure_future(ensure_async(self.km.interrupt_kernel()))  # keep a reference

        def abandon() -> None:
            task = getattr(self, "task_poll_for_reply", None)
            if self.guard.cell is state and task is not None and not task.done():
                task.cancel()  # nbclient reports this as a dead kernel; execute.py knows better

        state.timer = loop.call_later(INTERRUPT_GRACE, abandon)

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

    def _compact(self, outs: list[Any], state: _CellState, cell_index: int) -> None:
        """Merge runs of one stream once a cell has gathered COMPACT_EVERY more outputs."""
        if len(outs) - state.compacted < COMPACT_EVERY:
            return
        if any(cells.get(cell_index) for cells in self._display_id_map.values()):
            state.compacted = len(outs)  # output indices are remembered for display updates
            return
        merged: list[Any] = []
        for out in outs[state.compacted :]:
            if merged and _stream(out) and _stream(merged[-1]) and merged[-1].get("name") == out.get("name"):
                merged[-1]["text"] += out["text"]
            else:
                merged.append(out)
        outs[state.compacted :] = merged
        state.compacted = len(outs)


class GuardedEngine(NBClientEngine):  # type: ignore[misc]  # papermill ships no types
    """papermill's nbclient engine with GuardedManager and GuardedClient."""

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


def _size(msg: dict[str, Any]) -> int:
    """Characters an output message adds to a notebook (text, data as saved, a traceback)."""
    content = msg.get("content", {})
    kind = msg.get("msg_type")
    if kind == "stream":
        return len(content.get("text", ""))
    if kind == "error":
        return len(str(content.get("evalue", ""))) + sum(len(str(line)) for line in content.get("traceback", ()))
    data = content.get("data", {})
    return sum(len(value) if isinstance(value, str) else len(json.dumps(value)) for value in data.values())


def _trim_error(content: dict[str, Any], size: int) -> dict[str, Any]:
    """An error's content cut to about ``size`` characters: its last traceback lines are kept."""
    evalue = str(content.get("evalue", ""))[:size]
    traceback: list[str] = []
    room = size - len(evalue)
    for line in reversed([str(line) for line in content.get("traceback", ())]):
        if len(line) > room:
            break
        traceback.insert(0, line)
        room -= len(line)
    return {**content, "evalue": evalue, "traceback": traceback}


def _stream(output: Any) -> bool:
    return isinstance(output, dict) and output.get("output_type") == "stream" and isinstance(output.get("text"), str)


def _position(outputs: list[Any], target: Any) -> int:
    """Index of ``target`` itself in ``outputs`` (``list.index`` compares by value)."""
    return next(index for index, output in enumerate(outputs) if output is target)
