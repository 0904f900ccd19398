"""ExecutionResult -> the failure block a person reads. The only module touching _pytest internals.

The block is returned as a ``ReprExceptionInfo`` holding one native entry (our lines) and a
``reprcrash`` whose message is the one-line summary. pytest-xdist serializes that shape natively,
so ``FAILED nb.ipynb::fr - cell 4 (In [3]): KeyError: 'fr'`` reads the same with and without
``-n``, and ``--junitxml`` takes the same message.
"""

from __future__ import annotations

import math
import os
import shlex
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from _pytest._code.code import ReprEntryNative as _PytestNativeEntry
from _pytest._code.code import ReprExceptionInfo, ReprFileLocation, ReprTracebackNative
from _pytest._io import TerminalWriter

from pytest_notebooks.cases.notebook import strip_ansi
from pytest_notebooks.cases.textnotebook import is_text_suffix, text_line
from pytest_notebooks.files import printable, shown_path
from pytest_notebooks.models import CellFailure, ExecutionResult, FailureKind, NotebookCase, cut
from pytest_notebooks.redact import Redactor
from pytest_notebooks.run.execute import RunSettings, repro_path
from pytest_notebooks.terminal import inert

MAX_TRACEBACK_LINES = 40
SOURCE_CONTEXT = 3
MAX_VALUE_CHARS = 200  # a parameter value longer than this is cut in the parameters and reproduce lines


class ReprEntryNative(_PytestNativeEntry):
    """pytest's native entry, plus a coloured copy of the lines for a terminal with colour on.

    It keeps pytest's class name on purpose: xdist and ``--junitxml`` serialize an entry by class
    name and its ``lines`` field, so both get the plain lines, and only a colour terminal in the
    same process gets the coloured ones.
    """

    def __init__(self, lines: list[str], coloured: list[str]) -> None:
        super().__init__(lines)
        self.coloured = coloured

    def toterminal(self, tw: TerminalWriter) -> None:
        tw.write("".join(self.coloured if tw.hasmarkup else self.lines))


def failure_repr(
    case: NotebookCase,
    result: ExecutionResult,
    settings: RunSettings,
    *,
    relpath: Callable[[str | Path], str],
) -> ReprExceptionInfo:
    """The pytest representation of a failed case.

    Its lines are printable: an undecodable byte of a file name (``caf\\xff.ipynb``) is shown as
    ``ls -b`` shows it, else pytest would print the whole block as one escaped line.
    """
    failure = result.failure
    assert failure is not None
    plain, coloured = (
        [
            printable(inert(line, colour=colour)) + "\n"
            for line in failure_lines(case, result, settings, colour=colour, relpath=relpath)
        ]
        for colour in (False, True)
    )
    traceback = ReprTracebackNative([])
    traceback.reprentries = [ReprEntryNative(plain, coloured)]
    crash = ReprFileLocation(printable(relpath(case.notebook)), failure.cell_number or 0, failure.summary())
    return ReprExceptionInfo(reprtraceback=traceback, reprcrash=crash)


def failure_lines(
    case: NotebookCase,
    result: ExecutionResult,
    settings: RunSettings,
    *,
    colour: bool,
    relpath: Callable[[str | Path], str],
) -> list[str]:
    """The failure block: where, what, the cell, the traceback, the output, how to reproduce.

    Parameter values are masked as the notebook's outputs are (a password passed as a parameter,
    also in a credential-looking environment variable): the kernel got them, no report shows them.
    """
    failure = result.failure
    assert failure is not None
    lines = [_first_line(case, failure, relpath), *_text_line(case, failure, relpath)]
    if failure.source and failure.cell_number is not None:
        lines += ["", *source_excerpt(failure.source, failure.line)]
    if failure.traceback:
        lines += ["", *traceback_lines(failure.traceback, colour=colour)]
    if failure.detail:
        lines += ["", failure.detail]
    if failure.kind is FailureKind.NO_RAISE:
        lines += ["", "remove the raises-exception tag if the cell is meant to succeed now"]
    if failure.kind is FailureKind.CELL_TIMEOUT:
        lines += [
            "",
            "raise `cell_timeout` in the fixture (or --notebooks-cell-timeout) if the cell is slow by design",
        ]
    if failure.kind is FailureKind.NOTEBOOK_TIMEOUT:
        lines += [
            "",
            "raise `timeout` in the fixture (or --notebooks-timeout) if the notebook is slow by design",
        ]
    if failure.kind is FailureKind.OUTPUT_LIMIT:
        option = "max-cell-output" if failure.scope == "cell" else "max-output"
        lines += [
            "",
            "the output notebook keeps the head and the tail of the output; raise --notebooks-"
            f"{option} (ini notebooks_{option.replace('-', '_')}) if the notebook is meant to print this much",
        ]
    return [*lines, "", *_where_to_look(case, result, settings, relpath)]


class PostMortem(str):
    """Text that pdb's ``p`` (or the bare name) shows as its lines, not as one escaped string."""

    __slots__ = ()

    def __repr__(self) -> str:
        return str(self)


def post_mortem(
    case: NotebookCase, result: ExecutionResult, settings: RunSettings, *, relpath: Callable[[str | Path], str]
) -> PostMortem:
    """What ``pytest --pdb`` finds in the frame it stops in: the debugger can only stop in the pytest
    process, in the plugin, while the notebook ran in a kernel of its own, which has ended. So the frame
    holds where to look: the saved notebook, the reproduce command, how to step through the cell."""
    failure = result.failure
    assert failure is not None
    lines = [
        _first_line(case, failure, relpath),
        "this frame is pytest-notebooks' NotebookItem.runtest, in the pytest process: the notebook ran in a kernel "
        "of its own, which has ended, so its variables are not here",
        *_where_to_look(case, result, settings, relpath),
    ]
    if failure.cell_number is not None:
        lines.append(
            f"to step through the failing cell: open {relpath(case.notebook)} in Jupyter, set the parameters above in "
            f"a cell after its parameters cell, run down to cell {failure.cell_number} and debug it there (in Python: "
            "%debug in a new cell)"
        )
    return PostMortem("\n".join(printable(inert(line, colour=False)) for line in lines))


def _first_line(case: NotebookCase, failure: CellFailure, relpath: Callable[[str | Path], str]) -> str:
    """``nb.ipynb::fr failed at cell 4 (In [3]), id c4: KeyError: 'fr'``."""
    at = f" at {_where(failure)}" if failure.cell_number is not None else ""
    return f"{relpath(case.notebook)}::{case.case_id} failed{at}: {failure.headline()}"


def _text_line(case: NotebookCase, failure: CellFailure, relpath: Callable[[str | Path], str]) -> list[str]:
    """For a text notebook, ``x.py:12: KeyError: 'fr'``: the failing line in the file that is edited
    (the cell's first line when the traceback does not say), as editors and terminals link it."""
    if failure.cell_number is None or not is_text_suffix(case.notebook):
        return []
    line = text_line(case.notebook, case.notebook_sha256, failure.cell_number, failure.line)
    return [] if line is None else [f"{relpath(case.notebook)}:{line}: {failure.headline()}"]


def _where_to_look(
    case: NotebookCase, result: ExecutionResult, settings: RunSettings, relpath: Callable[[str | Path], str]
) -> list[str]:
    """The parameters (masked as the outputs are), the saved notebook and the reproduce command."""
    redactor = Redactor.from_environ({**os.environ, **dict(case.env)}, settings.redact)  # the fixture's env: too
    return [
        f"parameters: {format_parameters(case.parameters, redactor)}",
        f"output notebook: {relpath(result.output_path)}",
        f"reproduce: {papermill_command(case, result, settings, relpath, redactor)}",
    ]


def _where(failure: CellFailure) -> str:
    where = failure.where()
    return f"{where}, id {failure.cell_id}" if failure.cell_id and failure.cell_number else where


def source_excerpt(source: str, line: int | None) -> list[str]:
    """A few numbered lines of the cell around ``line``, the failing one marked with ``-->``."""
    rows = source.splitlines() or [""]
    if line is not None and 1 <= line <= len(rows):
        first, last = max(1, line - SOURCE_CONTEXT), min(len(rows), line + SOURCE_CONTEXT)
    else:
        first, last = 1, min(len(rows), 2 * SOURCE_CONTEXT + 1)
    width = len(str(last))
    out = [f"{'-->' if n == line else '   '} {n:>{width}} | {rows[n - 1]}" for n in range(first, last + 1)]
    if last < len(rows):
        out.append(f"    {'':>{width}}   ... {len(rows) - last} more lines")
    return out


def traceback_lines(traceback: tuple[str, ...], *, colour: bool) -> list[str]:
    """IPython's traceback, ANSI-free unless colour is on, cut to fit one screen."""
    text = "\n".join(traceback)
    lines = (text if colour else strip_ansi(text)).splitlines()
    if len(lines) > MAX_TRACEBACK_LINES:
        head, tail = 5, MAX_TRACEBACK_LINES - 6
        omitted = len(lines) - head - tail
        lines = [
            *lines[:head],
            f"... {omitted} lines omitted: the output notebook has them all ...",
            *lines[-tail:],
        ]
    return lines


def format_parameters(parameters: Mapping[str, Any], redactor: Redactor | None = None) -> str:
    """``region_code='fr', run_date='2017-01-01'``, secrets masked, long values cut (see ``abbreviate``)."""
    mask = (redactor or Redactor()).text
    return ", ".join(f"{k}={abbreviate(mask(repr(v)))}" for k, v in parameters.items()) or "(none, notebook defaults)"


def abbreviate(text: str, limit: int = MAX_VALUE_CHARS) -> str:
    """``text``, or its first ``limit`` characters and how many were left out."""
    return cut(text, limit)


def papermill_command(
    case: NotebookCase,
    result: ExecutionResult,
    settings: RunSettings,
    relpath: Callable[[str | Path], str],
    redactor: Redactor | None = None,
) -> str:
    """The papermill CLI call that runs this case the same way.

    It writes next to the saved notebook (``<case>.repro.ipynb``), never over it. The whole-notebook
    limit, which papermill's CLI lacks, is coreutils' ``timeout``. A long value is cut and says so,
    and a secret is masked: the line then shows the call rather than being one to paste.
    """
    mask = (redactor or Redactor()).text
    text = is_text_suffix(case.notebook)  # papermill reads .ipynb: jupytext converts the file on the way in
    argv = ["papermill", "-" if text else relpath(case.notebook), relpath(repro_path(result.output_path))]
    argv += ["--cwd", relpath(case.notebook.parent)]
    kernel = settings.kernel or result.kernel_name
    if kernel:
        argv += ["-k", kernel]
    for name, value in case.parameters.items():
        argv += [abbreviate(mask(arg)) for arg in _parameter_args(name, value)]
    if settings.cell_timeout and math.isfinite(settings.cell_timeout):
        argv += ["--execution-timeout", f"{math.ceil(settings.cell_timeout)}"]
    if settings.timeout and math.isfinite(settings.timeout):
        argv = ["timeout", f"{settings.timeout:g}s", *argv]
    if case.env:  # the fixture's env:, as the case's kernel got it
        argv = ["env", *(abbreviate(mask(f"{name}={value}")) for name, value in case.env), *argv]
    command = " ".join(shell_word(arg) for arg in argv)
    if text:
        command = f"jupytext --to ipynb --output - {shell_word(relpath(case.notebook))} | {command}"
    return command


def shell_word(text: str) -> str:
    """``text`` quoted for a POSIX shell; a file name with an undecodable byte in bash's ``$'...'``
    (``$'caf\\xff.ipynb'``), the only quoting that can write the byte."""
    if printable(text) == text:
        return shlex.quote(text)
    escaped = "".join(_ansi_c(char) for char in text)
    return f"$'{escaped}'"


def _ansi_c(char: str) -> str:
    if char in "\\'":
        return "\\" + char
    code = ord(char)
    if 0xDC80 <= code <= 0xDCFF:  # an undecodable byte, as os.fsdecode reads it
        return f"\\x{code - 0xDC00:02x}"
    if code < 0x20 or code == 0x7F or 0xD800 <= code <= 0xDFFF:
        return f"\\x{code:02x}" if code < 0x80 else "?"
    return char


def _parameter_args(name: str, value: Any) -> list[str]:
    """``-p`` when papermill's CLI parses the text back to the same value, else ``-r``/``-y``."""
    if isinstance(value, str):
        return ["-p", name, value] if _papermill_cli_type(value) == value else ["-r", name, value]
    if value is None or isinstance(value, (bool, int, float)):
        return ["-p", name, repr(value)]
    import json

    return ["-y", f"{name}: {json.dumps(value)}"]


def _papermill_cli_type(text: str) -> Any:
    """What ``papermill -p name TEXT`` passes (mirrors papermill.cli._resolve_type)."""
    if text in ("True", "False", "None"):
        return {"True": True, "False": False, "None": None}[text]
    for convert in (int, float):
        try:
            return convert(text)
        except ValueError:
            pass
    return text


def relative_to(base: Path) -> Callable[[str | Path], str]:
    """A function that shows paths relative to ``base`` where they are below it."""

    def relpath(path: str | Path) -> str:
        return shown_path(path, base)

    return relpath
