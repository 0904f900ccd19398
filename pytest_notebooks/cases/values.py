"""A parameter value papermill can pass and JSON can hold, or why not. Pure: standard library only.

papermill writes each parameter into the notebook as a literal and the plugin records it as JSON;
both carry str, int, bool, None, finite floats, and lists and string-keyed mappings of those, at most
``MAX_NESTING`` deep (Python's parser stops at 200 brackets). Anything else YAML's safe loader makes
(``!!binary``, ``!!set``, ``!!timestamp``, ``!!omap``, ``.nan``, ``.inf``) would fail in the middle of
a run or write non-standard JSON, so it is refused here, at collection.
"""

from __future__ import annotations

import datetime
import math
from typing import Any

# Levels of lists and mappings in one parameter. papermill writes a parameter as one literal, and
# Python's parser stops at 200 nested brackets; half of that leaves room for other kernels.
MAX_NESTING = 100
HINT = (
    "a parameter must be what papermill can pass and JSON can hold: a string, a finite number, true/false, "
    "null, or lists and mappings (with string keys) of those; "
)
_PLAIN = (int, bool)
_NOT_JSON = "which JSON cannot hold (the results file and the saved notebook would not be standard JSON)"


class _Found(Exception):
    """The first unusable part of a value: what it is, and the hint's end."""

    def __init__(self, what: str, hint: str, *, json_only: bool = False, part: bool = False) -> None:
        super().__init__(what)
        self.what = what
        self.hint = hint
        self.json_only = json_only  # papermill could pass it; only JSON cannot hold it
        self.part = part  # a part of the value where it is found (a mapping's key), never the value itself


class _TooDeep(Exception):
    """The value has more than MAX_NESTING levels of lists and mappings."""


def unusable(name: str, value: Any) -> tuple[str, str] | None:
    """Why the parameter ``name`` cannot be ``value``: (what it is, a hint), or None when it can.

    ``what`` reads after ``parameter 'x' ``: ``is bytes (a YAML !!binary value), which papermill
    cannot pass to a notebook``, or ``holds ... at x[1]['k']`` for a part of it.
    """
    if value is None or type(value) in _PLAIN or (type(value) is str and value.isascii()):
        return None  # most parameters: nothing to walk
    walk = _Walk(name)
    try:
        walk.height(value, 0)
    except _TooDeep:
        return (
            f"is nested more than {MAX_NESTING} levels deep",
            "papermill writes it into the notebook as one Python literal, and Python's parser stops at 200 "
            "nested brackets; flatten it, or pass it as a file path and read it in the notebook",
        )
    except _Found as found:
        where = f"holds {found.what} at {walk.place()}" if walk.path or found.part else f"is {found.what}"
        if found.json_only:
            return where, HINT + found.hint
        return f"{where}, which papermill cannot pass to a notebook", HINT + found.hint
    return None


class _Walk:
    """One walk over a value. A list or mapping that YAML aliases share is measured once (its height
    kept by ``id``), so a fixture of aliases costs what its distinct nodes cost."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.heights: dict[int, int] = {}
        self.path: list[Any] = []  # indexes and keys from the parameter down to the part looked at

    def place(self) -> str:
        """``x[1]['k']``: where the part looked at sits in the parameter."""
        return self.name + "".join(f"[{step!r}]" for step in self.path)

    def height(self, value: Any, depth: int) -> int:
        """Levels of lists and mappings in ``value``, found ``depth`` levels down; raises on the first
        unusable part."""
        if not isinstance(value, (list, dict)):
            _check_scalar(value)
            return 0
        known = self.heights.get(id(value))
        if known is None:
            if isinstance(value, list) and value and all(type(item) is tuple for item in value):
                raise _Found("a list of pairs (a YAML !!omap or !!pairs value)", "write it as a mapping")
            if depth >= MAX_NESTING:
                raise _TooDeep
            known = 1 + self._children(value, depth + 1)
            self.heights[id(value)] = known
        if depth + known > MAX_NESTING:
            raise _TooDeep
        return known

    def _children(self, value: list[Any] | dict[Any, Any], depth: int) -> int:
        highest = 0
        items = value.items() if isinstance(value, dict) else enumerate(value)
        for key, child in items:
            if isinstance(value, dict):
                _check_key(key)
            self.path.append(key)
            highest = max(highest, self.height(child, depth))
            self.path.pop()
        return highest


def _check_key(key: Any) -> None:
    if type(key) is not str:
        raise _Found(
            f"the mapping key {key!r} ({type(key).__name__}, not a string)",
            f"quote the key ('{key}': ...): papermill and JSON would turn it into the string '{key}' anyway",
            part=True,
        )
    _check_text(key)


def _check_scalar(value: Any) -> None:
    """Raise _Found for a value that is not str, int, bool, None or a finite float."""
    if value is None or isinstance(value, (bool, int)):
        return
    if isinstance(value, str):
        _check_text(value)
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise _Found(
                f"float {value!r}, {_NOT_JSON}",
                'use null, or text such as "nan" that the notebook turns into a number',
                json_only=True,
            )
    elif isinstance(value, bytes):
        raise _Found(
            "bytes (a YAML !!binary value)",
            "pass binary data as a file path, or as base64 text that the notebook decodes",
        )
    elif isinstance(value, (set, frozenset)):
        raise _Found("a set (a YAML !!set value)", "write it as a list")
    elif isinstance(value, tuple):
        raise _Found("a list of pairs (a YAML !!omap or !!pairs value)", "write it as a mapping")
    elif isinstance(value, (datetime.date, datetime.datetime)):
        raise _Found(
            "a date (a YAML !!timestamp value)",
            'quote it: papermill passes dates as text (`run_date: "2017-01-01"`)',
        )
    else:
        raise _Found(f"a {type(value).__name__}", "write it as one of those")


def _check_text(text: str) -> None:
    """Text must encode as UTF-8: a lone surrogate (``"\\ud800"``, read by PyYAML without libyaml)
    cannot be written into the notebook or the results file."""
    if text.isascii():
        return
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise _Found(
            f"text that is not valid Unicode (the lone surrogate \\u{ord(text[exc.start]):04x})",
            "remove the \\ud800-\\udfff escape",
        ) from None
