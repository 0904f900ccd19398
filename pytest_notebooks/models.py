"""Frozen records that cross module boundaries. Standard library only."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class DeclaredParameter:
    """One assignment in a notebook's ``parameters`` cell."""

    name: str
    type_name: str | None  # "str", "int", "float", "bool", "list", "dict"; None when unknown
    line: int  # 1-based line in the parameters cell


@dataclass(frozen=True)
class NotebookInfo:
    """What collection needs to know about a notebook, read without nbformat."""

    path: Path
    sha256: str
    kernel_name: str | None
    language: str | None
    parameters_cell: int | None  # 1-based cell number in the template, None when untagged
    parameters: tuple[DeclaredParameter, ...]
    parameters_parsed: bool  # False when the cell is not Python or does not parse
    git_blob: str = ""  # the id git gives these bytes as a blob (git hash-object): what HEAD must hold

    def declared(self, name: str) -> DeclaredParameter | None:
        """The declared parameter called ``name``, if any."""
        for parameter in self.parameters:
            if parameter.name == name:
                return parameter
        return None


@dataclass(frozen=True)
class NotebookCase:
    """One test case: a notebook run with one set of parameters and settings."""

    notebook: Path
    fixture: Path
    case_id: str
    parameters: dict[str, Any]
    timeout: float | None = None  # whole notebook, seconds
    cell_timeout: float | None = None  # each cell, seconds
    kernel: str | None = None  # from the fixture; overrides notebook_kernel
    notebook_kernel: str | None = None  # the notebook's kernelspec, read at collection
    skip: str | None = None  # reason
    xfail: str | None = None  # reason
    line: int | None = None  # where the case starts in the fixture file
    notebook_sha256: str = ""
    fixture_sha256: str = ""
    notebook_blob: str = ""  # git's (SHA-1) blob id of the bytes collected: `git cat-file -p <id>` shows them
    fixture_blob: str = ""
    snapshot: bool | None = None  # None: not said in the fixture (the flag decides)
    snapshot_replace: tuple[tuple[str, str], ...] = ()  # (regex, replacement) from the fixture
    declared_cases: tuple[str, ...] = ()  # every case id of the fixture, in file order (this one included)
    principles: tuple[tuple[str, int], ...] = ()  # the fixture's `principles:` limits, sorted by name
    env: tuple[tuple[str, str], ...] = ()  # the fixture's `env:` (the case's over the file's), sorted by name


class FailureKind(str, enum.Enum):
    """Why a case failed."""

    ERROR = "error"  # a cell raised
    NO_RAISE = "no-raise"  # a cell tagged raises-exception did not raise
    CELL_TIMEOUT = "cell-timeout"
    NOTEBOOK_TIMEOUT = "notebook-timeout"
    DEAD_KERNEL = "dead-kernel"
    MISSING_KERNEL = "missing-kernel"
    INTERRUPTED = "interrupted"
    SNAPSHOT_MISMATCH = "snapshot-mismatch"  # ran fine, but outputs differ from the snapshot
    SNAPSHOT_MISSING = "snapshot-missing"
    SETUP = "setup"  # papermill refused the notebook before any cell ran
    OUTPUT_LIMIT = "output-limit"  # a cell printed more than the per-cell or whole-notebook output limit
    NOTEBOOK_CHANGED = "notebook-changed"  # at run time the notebook's bytes were not the ones collected: not run


@dataclass(frozen=True)
class CellFailure:
    """Where and how a case failed, in the template's terms."""

    kind: FailureKind
    cell_number: int | None = None  # 1-based position in the template (not the executed copy)
    cell_id: str | None = None
    exec_count: int | None = None
    source: str = ""
    line: int | None = None  # 1-based line in the cell that raised, when the traceback says
    ename: str = ""
    evalue: str = ""
    traceback: tuple[str, ...] = ()
    limit: float | None = None  # the limit that was hit: seconds for timeouts, characters for output-limit
    detail: str = ""  # extra text for kinds without an exception (hint for a missing kernel)
    scope: str = ""  # output-limit: "cell" (the per-cell limit) or "notebook" (the whole-notebook one)

    def __post_init__(self) -> None:
        """Cut what the notebook controls to a size a report can carry (the saved notebook has it all).

        A 1 MB exception class name made a 4 MB terminal report, 3 MB of junit and a 2 MB results file.
        """
        object.__setattr__(self, "ename", cut(self.ename, MAX_NAME_CHARS))
        object.__setattr__(self, "evalue", cut(self.evalue, MAX_MESSAGE_CHARS))
        object.__setattr__(self, "traceback", tuple(cut(line, MAX_MESSAGE_CHARS) for line in self.traceback))

    def where(self) -> str:
        """``cell 4 (In [3])``, or ``cell 4`` when it never got an execution count."""
        if self.cell_number is None:
            return "notebook"
        text = f"cell {self.cell_number}"
        if self.exec_count is not None:
            text += f" (In [{self.exec_count}])"
        return text

    def headline(self) -> str:
        """The exception or condition, one line, no location."""
        if self.kind is FailureKind.ERROR:
            message = first_line(self.evalue)
            return f"{self.ename}: {message}" if message else self.ename
        if self.kind is FailureKind.NO_RAISE:
            return "tagged raises-exception but raised nothing"
        if self.kind is FailureKind.CELL_TIMEOUT:
            return f"timed out after the per-cell limit of {self.limit:g} s"
        if self.kind is FailureKind.NOTEBOOK_TIMEOUT:
            if self.cell_number is None:
                return f"the kernel was not ready when the whole-notebook limit of {self.limit:g} s ran out"
            return f"still running when the whole-notebook limit of {self.limit:g} s ran out"
        if self.kind is FailureKind.OUTPUT_LIMIT:
            which = "per-cell" if self.scope == "cell" else "whole-notebook"
            return f"printed more than the {which} output limit of {format_size(self.limit or 0)} and was stopped"
        if self.kind is FailureKind.DEAD_KERNEL:
            return "the kernel died while this cell was running"
        if self.kind is FailureKind.INTERRUPTED:  # Ctrl-C; or a stop from outside, which says what stopped it
            why = f"{self.ename}: {first_line(self.evalue)}" if self.ename and self.evalue else self.ename
            return (
                f"interrupted while this cell was running ({why})" if why else "interrupted while this cell was running"
            )
        if self.kind is FailureKind.SNAPSHOT_MISMATCH:
            return f"outputs differ from the snapshot {self.evalue}"
        if self.kind is FailureKind.SNAPSHOT_MISSING:
            return f"no snapshot at {self.evalue}"
        message = first_line(self.evalue)
        return f"{self.ename}: {message}" if self.ename else message

    def summary(self) -> str:
        """The one-line summary: ``cell 4 (In [3]): KeyError: 'fr'``."""
        if self.cell_number is None:
            return self.headline()
        return f"{self.where()}: {self.headline()}"

    def to_json(self) -> dict[str, Any]:
        """The failing cell as it goes into the results file."""
        return {
            "kind": self.kind.value,
            "cell": self.cell_number,
            "cell_id": self.cell_id,
            "execution_count": self.exec_count,
            "line": self.line,
            "ename": self.ename,
            "evalue": self.evalue,
            "summary": self.summary(),
        }


MAX_NAME_CHARS = 200  # an exception class name in a report
MAX_MESSAGE_CHARS = 4_000  # an exception message, or one traceback line, in a report


def cut(text: str, limit: int) -> str:
    """``text``, or its first ``limit`` characters and how many were left out."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... [{len(text) - limit:,} more characters]"


def first_line(text: str) -> str:
    """The first non-blank line of ``text``, stripped ("" when there is none)."""
    return next((line.strip() for line in text.splitlines() if line.strip()), "")


def format_size(size: float) -> str:
    """``10 MB``, ``1.5 kB``, ``999 characters``: decimal units, as the limits are written."""
    for unit, factor in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if size >= factor:
            return f"{size / factor:.3g} {unit}"
    return f"{size:g} characters"


@dataclass(frozen=True)
class ExecutionResult:
    """What running one case produced."""

    case_id: str
    passed: bool
    duration: float
    output_path: str
    kernel_name: str | None
    failure: CellFailure | None = None
    notebook: dict[str, Any] | None = field(default=None, compare=False, repr=False)  # as saved
    # A Jupytext text notebook: the sha256 of the .ipynb papermill ran, made from the text, and what made it.
    converted_sha256: str | None = None
    converted_by: str | None = None


@dataclass(frozen=True)
class CellChange:
    """One cell that differs. Numbers are 1-based positions in the base and head notebooks."""

    kind: str  # "added", "removed", "modified"
    cell_type: str
    base_number: int | None
    head_number: int | None
    source_diff: tuple[str, ...] = ()  # unified-diff body lines ("-x", "+y", " z"), no headers
    output_diff: tuple[str, ...] = ()

    def title(self) -> str:
        """``~ cell 3 (code)``, ``+ cell 4 (markdown), new``, ``- cell 2 (code), removed``."""
        if self.kind == "added":
            return f"+ cell {self.head_number} ({self.cell_type}), new"
        if self.kind == "removed":
            return f"- cell {self.base_number} ({self.cell_type}), removed"
        moved = f", was cell {self.base_number}" if self.base_number != self.head_number else ""
        return f"~ cell {self.head_number} ({self.cell_type}){moved}"

    def lines(self, indent: str = "    ") -> list[str]:
        """The change as text: title, then source and output diffs (``indent=""`` keeps the
        diff's +/- in the first column, for a Markdown ``diff`` fence to colour them)."""
        out = [self.title()]
        if self.source_diff:
            out += ["  source:", *(f"{indent}{line}" for line in self.source_diff)]
        if self.output_diff:
            out += ["  outputs:", *(f"{indent}{line}" for line in self.output_diff)]
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "cell_type": self.cell_type,
            "base_number": self.base_number,
            "head_number": self.head_number,
            "source_diff": list(self.source_diff),
            "output_diff": list(self.output_diff),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CellChange:
        return cls(
            kind=data["kind"],
            cell_type=data["cell_type"],
            base_number=data["base_number"],
            head_number=data["head_number"],
            source_diff=tuple(data.get("source_diff", ())),
            output_diff=tuple(data.get("output_diff", ())),
        )
