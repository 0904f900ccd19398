"""How much output a case may keep: per cell, per notebook, and of a kernel's own fds 1 and 2. Pure.

nbclient holds a cell's outputs in memory, and pytest holds what a kernel writes to fds 1 and 2;
a notebook that prints without end must not take the memory with it. Both are bounded alike: a
head up to the limit, then only a rolling tail, and a line saying how much was left out between
them. run/engine.py applies ``OutputBudget`` to the kernel's messages, run/kernels.py applies
``StreamBudget`` to the kernel's pipes.
"""

from __future__ import annotations

import json
from collections import deque
from dataclasses import dataclass, field
from typing import Any, AnyStr, Generic

from pytest_notebooks.models import format_size

MIN_TAIL, MAX_TAIL = 2_000, 1_000_000  # characters of each stream a cell keeps after its cut


class RollingTail(Generic[AnyStr]):
    """The last ``size`` characters (or bytes) of a stream, kept in chunks; ``received`` counts all
    that were added. Memory stays near ``size`` however much passes through."""

    def __init__(self, size: int, empty: AnyStr) -> None:
        self.size = size
        self.received = 0
        self._empty: AnyStr = empty
        self._chunks: deque[AnyStr] = deque()
        self._kept = 0

    def add(self, chunk: AnyStr) -> None:
        self.received += len(chunk)
        if not chunk or self.size <= 0:
            return
        chunk = chunk[-self.size :]
        self._chunks.append(chunk)
        self._kept += len(chunk)
        while self._kept - len(self._chunks[0]) >= self.size:
            self._kept -= len(self._chunks.popleft())

    @property
    def value(self) -> AnyStr:
        joined: AnyStr = self._empty.join(self._chunks)
        return joined[-self.size :] if self.size > 0 else self._empty


@dataclass
class CellBudget:
    """What one running cell may still keep: ``allowance`` characters (None: no limit), the
    smaller of its own limit and what the notebook has left; ``scope`` and ``limit`` name the
    limit that set it, for the message."""

    index: int
    allowance: int | None
    scope: str = "cell"  # "cell" or "notebook"
    limit: int = 0
    kept: int = 0

    def room(self) -> int | None:
        """Characters the cell may still keep (None: no limit)."""
        return None if self.allowance is None else max(self.allowance - self.kept, 0)

    def admit(self, size: int) -> bool:
        """Count an output of ``size`` characters if it fits; False (nothing counted) if it does not."""
        room = self.room()
        if room is not None and size > room:
            return False
        self.kept += size
        return True

    def keep_head(self, size: int) -> None:
        """Count the part of an output that fit (a stream's head) before the cell is cut."""
        self.kept += size

    def cleared(self) -> None:
        """The cell's outputs were cleared: what it keeps starts again from nothing."""
        self.kept = 0

    @property
    def tail_size(self) -> int:
        """Characters of each stream kept after the cut: a tenth of the limit, within bounds."""
        return min(max(self.limit // 10, MIN_TAIL), MAX_TAIL)


class OutputBudget:
    """The output limits of one notebook: ``max_cell`` characters a cell may keep, ``max_notebook``
    all cells together (None: no limit). Cells open one at a time, in the order they run."""

    def __init__(self, max_cell: int | None, max_notebook: int | None) -> None:
        self.max_cell = max_cell
        self.max_notebook = max_notebook
        self.used = 0  # characters kept by the cells that finished

    def open(self, index: int) -> CellBudget:
        """The budget of the cell at ``index``, which starts now."""
        limits = []
        if self.max_cell is not None:
            limits.append((self.max_cell, "cell", self.max_cell))
        if self.max_notebook is not None:
            limits.append((max(self.max_notebook - self.used, 0), "notebook", self.max_notebook))
        if not limits:
            return CellBudget(index, None)
        allowance, scope, limit = min(limits)
        return CellBudget(index, allowance, scope, limit)

    def close(self, cell: CellBudget) -> None:
        """The cell ended: what it kept counts against the notebook's limit."""
        self.used += cell.kept


@dataclass
class Overflow:
    """What a cell keeps after its cut: the tail of each stream, by name; everything that arrived
    after the cut, kept or not, is counted for the line that says how much was left out."""

    scope: str
    limit: int
    tail_size: int
    tails: dict[str, RollingTail[str]] = field(default_factory=dict)
    dropped: int = 0  # characters of outputs that are not streams (left out whole)

    def add_stream(self, name: str, text: str) -> bool:
        """Keep ``text`` in the tail of stream ``name``; True when that stream is new here."""
        new = name not in self.tails
        if new:
            self.tails[name] = RollingTail(self.tail_size, "")
        self.tails[name].add(text)
        return new

    def drop(self, size: int) -> None:
        self.dropped += size

    def left_out(self) -> int:
        return self.dropped + sum(tail.received - len(tail.value) for tail in self.tails.values())

    def marker(self) -> str:
        """The line written where the cell was cut."""
        which = "per-cell" if self.scope == "cell" else "whole-notebook"
        return (
            f"\n[pytest-notebooks: the output passed the {which} output limit of {format_size(self.limit)} here, "
            f"and the cell was stopped; {self.left_out():,} characters left out before the last ones below]\n"
        )


class StreamBudget:
    """A byte stream bounded like a cell's output: the first ``limit`` bytes pass as they come,
    then only the last ``tail_size`` are kept, to be shown at the end after a line saying how many
    were left out."""

    def __init__(self, limit: int, tail_size: int) -> None:
        self.limit = limit
        self.sent = 0
        self.tail = RollingTail(tail_size, b"")

    @property
    def passed(self) -> bool:
        """Whether the stream went past its limit."""
        return self.tail.received > 0

    def take(self, data: bytes) -> tuple[bytes, bool]:
        """What of ``data`` passes now, and whether it is the moment the limit was passed (the
        rest of ``data`` is kept in the tail)."""
        room = max(self.limit - self.sent, 0)
        head, rest = data[:room], data[room:]
        self.sent += len(head)
        passing = bool(rest) and not self.passed
        self.tail.add(rest)
        return head, passing

    def passed_line(self, name: str) -> str:
        """The line written where the stream passed its limit."""
        return (
            f"[pytest-notebooks: the kernel's {name} passed its limit of {format_size(self.limit)} here; the rest "
            f"is left out but for its last {format_size(self.tail.size)}, shown when the case ends]\n"
        )

    def summary(self, name: str) -> bytes:
        """The end of a stream past its limit: a line saying how much was left out, then the tail
        (nothing when it stayed within its limit)."""
        if not self.passed:
            return b""
        tail = self.tail.value
        said = (
            f"[pytest-notebooks: {self.tail.received - len(tail):,} bytes of the kernel's {name} were left "
            f"out; its last {len(tail):,} bytes follow]\n"
        )
        return said.encode() + tail


def output_size(msg: dict[str, Any]) -> int:
    """Characters an output message adds to a notebook (text, data as saved, a traceback)."""
    content = msg.get("content", {})
    kind = msg.get("msg_type")
    if kind == "stream":
        return len(content.get("text", ""))
    if kind == "error":
        return len(str(content.get("evalue", ""))) + sum(len(str(line)) for line in content.get("traceback", ()))
    data = content.get("data", {})
    return sum(len(value) if isinstance(value, str) else len(json.dumps(value)) for value in data.values())


def trim_error(content: dict[str, Any], size: int) -> dict[str, Any]:
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
