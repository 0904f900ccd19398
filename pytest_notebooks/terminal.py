"""Text a notebook controls, made inert for a terminal and a CI log. Standard library only.

Exception messages, tracebacks and what cells and their subprocesses print are written by whoever
wrote the notebook. A terminal acts on escape sequences (OSC 52 writes the clipboard, OSC 8 makes
links, CSI moves the cursor), and the GitHub Actions runner acts on any line that starts with
``::`` (after blanks): ``::stop-commands::``, ``::add-mask::``, a fake ``::error``. Such a line keeps
its text here, with a zero-width space between the two colons, so it is shown but is no command.
"""

from __future__ import annotations

import io
import re
from typing import TextIO

ZWSP = "\u200b"
# Everything a terminal acts on but SGR colours: OSC strings (7-bit and C1), other CSI sequences, other
# escapes, and control characters but tab and newline.
_CONTROL = re.compile(
    r"\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x9d[^\x07\x1b\x9c]*(?:\x07|\x9c)?"
    r"|(?:\x1b\[|\x9b)[0-?]*[ -/]*[@-ln-~]|\x1b[@-Z\\-_]|[\x00-\x08\x0b-\x1a\x1c-\x1f\x7f]|\x1b(?!\[)"
)
_SGR = re.compile(r"(?:\x1b\[|\x9b)[0-?]*[ -/]*m")
_COMMAND = re.compile(r"(?m)^([ \t\f\v\r]*):(?=:)")
_COMMAND_BYTES = re.compile(rb"(?m)^([ \t\f\v\r]*):(?=:)")


def defuse_commands(text: str) -> str:
    """``text`` with every line that starts with ``::`` made a line of text, not a workflow command."""
    return _COMMAND.sub(rf"\1:{ZWSP}", text)


def defuse_command_bytes(data: bytes) -> bytes:
    """``defuse_commands`` for bytes on their way to a file descriptor (UTF-8)."""
    return _COMMAND_BYTES.sub(rb"\1:" + ZWSP.encode(), data)


def inert(line: str, *, colour: bool) -> str:
    """Notebook text (a line, or lines) that acts on no terminal and no CI log (colours kept with ``colour``)."""
    line = _CONTROL.sub("", line if colour else _SGR.sub("", line))
    return defuse_commands(line)


class InertStream(io.TextIOBase):
    """A text stream that passes on what is written to it ``inert`` (no colours): for a command whose
    lines carry text from files someone else may have written (a results file's failure summaries).
    A write that ends inside a line does not see the rest of it, so a ``::`` written mid-line in a
    write of its own is defused too: shown, with a zero-width space, never a command."""

    def __init__(self, stream: TextIO) -> None:
        super().__init__()
        self.stream = stream

    def write(self, text: str) -> int:
        self.stream.write(inert(text, colour=False))
        return len(text)

    def flush(self) -> None:
        self.stream.flush()

    def writable(self) -> bool:
        return True
