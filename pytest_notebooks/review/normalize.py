"""Executed notebook -> a comparable notebook. Pure: plain dicts in, plain dicts out.

Two runs of one template differ in much that nobody changed: papermill's injected cell and
timing metadata, cell ids, execution counts, ANSI colour, stream chunking, memory addresses,
timestamps, image encodings. Normalising both sides before diffing leaves the real changes.

Default replacements (always applied, then the configured ones, in order):

    0x7f3a9c2b1d40                       -> 0x<address>
    2026-11-26 05:10:00.123456 / ...T... -> <timestamp>
"""

from __future__ import annotations

import copy
import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from pytest_notebooks.cases.notebook import ERROR_MARKER_TAG, INJECTED_TAG, cell_source, cell_tags, strip_ansi

_IMAGE_PREFIX = "image/"
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


def check_pattern(pattern: str) -> None:
    """Raise ValueError naming the problem when ``pattern`` is not a valid regular expression."""
    try:
        re.compile(pattern)
    except re.error as exc:
        raise ValueError(f"invalid regular expression {pattern!r}: {exc}") from None


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


def _text(value: Any) -> str:
    return "".join(value) if isinstance(value, list) else str(value)


def _clean(text: str, rules: Iterable[Replacement]) -> str:
    text = strip_ansi(text)
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


def output_lines(cell: dict[str, Any]) -> list[str]:
    """A normalised cell's outputs as lines of text, one kind of output after another."""
    lines: list[str] = []
    for output in cell.get("outputs", []):
        kind = output["output_type"]
        if kind == "stream":
            lines += [f"[{output['name']}] {line}" for line in output["text"].splitlines()]
        elif kind == "error":
            lines.append(f"[error] {output['ename']}: {output['evalue']}")
        else:
            for mime, value in output["data"].items():
                lines += [f"[{mime}] {line}" for line in str(value).splitlines() or [""]]
    return lines
