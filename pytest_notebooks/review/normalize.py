"""Executed notebook -> a comparable notebook. Pure: plain dicts in, plain dicts out.

Two runs of one template differ in much that nobody changed (injected cell, timing metadata, ids,
execution counts, ANSI escapes, stream chunking, addresses, timestamps); both sides are normalised
the same way, default replacements first, then the configured ones in order. A display output is
diffed as ONE representation (``shown_mime``): an image (its digest; a plot's text/plain does not
change with the plot), else text/plain unless it is only the default repr, else text/markdown,
text/latex, text/html, application/json, then the first other by name. The others become one digest
line, so a change only they show stays visible.
"""

from __future__ import annotations

import copy
import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from pytest_notebooks.cases.notebook import ERROR_MARKER_TAG, INJECTED_TAG, cell_source, cell_tags
from pytest_notebooks.cases.settings import check_pattern

_IMAGE_PREFIX = "image/"
_PREFERRED = ("text/plain", "text/markdown", "text/latex", "text/html", "application/json")
_ADDRESS = r" at 0x(?:<address>|[0-9a-fA-F]+)"
_DEFAULT_REPR = re.compile(rf"<[\w.]+ object(?:{_ADDRESS})?>|<[\w.]+ [\w.]+{_ADDRESS}>")
# ESC ] ... (BEL | ESC \): OSC, e.g. OSC-8 links; ESC [ ... final byte: CSI (colours, cursor);
# ESC plus one byte: the other two-byte escapes. Then the C0/C1 controls a terminal acts on.
_TERMINAL = re.compile(
    r"\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x9d[^\x07\x1b\x9c]*(?:\x07|\x9c)?"
    r"|(?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]?|\x1b[@-Z\\-_]?"
)
_KEPT_NOTEBOOK_METADATA = ("kernelspec",)


@dataclass(frozen=True)
class Replacement:
    """A regular expression and what its matches become before comparison."""

    pattern: str
    replacement: str

    def apply(self, text: str) -> str:
        return re.sub(self.pattern, self.replacement, text)


DEFAULT_REPLACEMENTS = (
    Replacement(r"0x[0-9a-fA-F]{6,16}", "0x<address>"),
    Replacement(
        r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:?\d{2})?",
        "<timestamp>",
    ),
)


def parse_replacement(line: str) -> Replacement:
    """``REGEX => REPLACEMENT`` (the ini form); raises ValueError with the reason."""
    pattern, sep, replacement = line.rpartition(" => ")
    if not sep or not pattern.strip():
        raise ValueError(f"expected 'REGEX => REPLACEMENT', got {line!r}")
    check_pattern(pattern.strip())
    return Replacement(pattern.strip(), replacement.strip())


def normalize(nb: dict[str, Any], replacements: Sequence[Replacement] = (), *, outputs: bool = True) -> dict[str, Any]:
    """A copy of ``nb`` with everything volatile removed; ``outputs=False`` drops outputs too."""
    rules = (*DEFAULT_REPLACEMENTS, *replacements)
    cells = []
    for cell in nb.get("cells", []):
        tags = cell_tags(cell)
        if INJECTED_TAG in tags or ERROR_MARKER_TAG in tags:
            continue
        clean: dict[str, Any] = {"cell_type": cell.get("cell_type", "code"), "source": cell_source(cell)}
        clean["metadata"] = {"tags": tags} if tags else {}
        if clean["cell_type"] == "code":
            clean["execution_count"] = None
            clean["outputs"] = _outputs(cell.get("outputs", []), rules) if outputs else []
        cells.append(clean)
    metadata = {k: copy.deepcopy(v) for k, v in nb.get("metadata", {}).items() if k in _KEPT_NOTEBOOK_METADATA}
    return {"cells": cells, "metadata": metadata, "nbformat": 4, "nbformat_minor": 5}


def strip_terminal(text: str) -> str:
    """``text`` without terminal escape sequences: colours (CSI), OSC-8 links and other OSC."""
    return _TERMINAL.sub("", text)


def _text(value: Any) -> str:
    return "".join(value) if isinstance(value, list) else str(value)


def _clean(text: str, rules: Iterable[Replacement]) -> str:
    text = strip_terminal(text)
    for rule in rules:
        text = rule.apply(text)
    return text


def _outputs(outputs: list[dict[str, Any]], rules: Sequence[Replacement]) -> list[dict[str, Any]]:
    cleaned: list[dict[str, Any]] = []
    for output in outputs:
        kind = output.get("output_type")
        if kind == "stream":
            text = _clean(_text(output.get("text", "")), rules)
            last = cleaned[-1] if cleaned else None
            if last and last["output_type"] == "stream" and last["name"] == output.get("name"):
                last["text"] += text  # the kernel splits streams by timing; join them
            else:
                cleaned.append({"output_type": "stream", "name": output.get("name", "stdout"), "text": text})
        elif kind == "error":
            cleaned.append(
                {
                    "output_type": "error",
                    "ename": output.get("ename", ""),
                    "evalue": _clean(str(output.get("evalue", "")), rules),
                    "traceback": [],  # paths and frames differ between machines
                }
            )
        else:
            data = {}
            for mime, value in sorted(output.get("data", {}).items()):
                if mime.startswith(_IMAGE_PREFIX) and not mime.endswith("+xml"):
                    digest = hashlib.sha256(_text(value).strip().encode()).hexdigest()[:16]
                    data[mime] = f"<{mime} sha256:{digest}>"
                elif mime == "application/vnd.jupyter.widget-view+json":
                    data[mime] = "<widget>"
                else:
                    data[mime] = _clean(_text(value) if not isinstance(value, dict) else repr(value), rules)
            cleaned.append({"output_type": "display_data", "data": data, "metadata": {}})
    return cleaned


def shown_mime(data: dict[str, Any]) -> str | None:
    """The one representation of a display output that a diff shows (see the module docstring)."""
    images = sorted(mime for mime in data if mime.startswith(_IMAGE_PREFIX))
    if images:
        return images[0]
    plain = data.get("text/plain")
    if plain is not None and not _DEFAULT_REPR.fullmatch(str(plain).strip()):
        return "text/plain"
    for mime in _PREFERRED[1:]:
        if mime in data:
            return mime
    others = sorted(mime for mime in data if mime != "text/plain")
    return others[0] if others else ("text/plain" if plain is not None else None)


def output_lines(cell: dict[str, Any]) -> list[str]:
    """A normalised cell's outputs as lines of text, one kind of output after another.

    A display output shows one representation (``shown_mime``) and, when it has others, one
    ``[also: MIME, ...] sha256:...`` line for them.
    """
    lines: list[str] = []
    for output in cell.get("outputs", []):
        kind = output["output_type"]
        if kind == "stream":
            lines += [f"[{output['name']}] {line}" for line in output["text"].splitlines()]
        elif kind == "error":
            lines.append(f"[error] {output['ename']}: {output['evalue']}")
        else:
            data = output["data"]
            mime = shown_mime(data)
            if mime is not None:
                lines += [f"[{mime}] {line}" for line in str(data[mime]).splitlines() or [""]]
            others = sorted(m for m in data if m != mime)
            if others:
                digest = hashlib.sha256("\0".join(f"{m}\0{data[m]}" for m in others).encode()).hexdigest()[:12]
                lines.append(f"[also: {', '.join(others)}] sha256:{digest}")
    return lines
