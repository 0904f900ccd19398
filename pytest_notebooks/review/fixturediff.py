"""Two versions of a fixture file -> FixtureChange: the cases and settings a pull request changed. Pure.

Both sides are read with ``cases/yamlfile.py``'s loader and interpreted as ``cases/params.py`` does,
then compared by key, not by line: re-indenting, comments and reordering change nothing, and a
changed default shows once, under "every case". A side the loader refuses is shown with the
loader's message and a plain line diff of the two texts.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pytest_notebooks.cases.params import DEFAULT_CASE_ID
from pytest_notebooks.cases.yamlfile import load_yaml
from pytest_notebooks.errors import FixtureError

MAX_VALUE = 200  # characters of one rendered value
_COMPARE_NODES = 100_000  # a YAML alias bomb stays a bomb: stop comparing after this many nodes
_NOT_A_MAPPING = "(not a mapping)"


@dataclass(frozen=True)
class ValueChange:
    """One key whose value differs; ``None`` on a side where the key is not set."""

    name: str
    before: str | None
    after: str | None

    def lines(self, indent: str) -> list[str]:
        out = []
        if self.before is not None:
            out.append(f"-{indent}{self.name}: {self.before}")
        if self.after is not None:
            out.append(f"+{indent}{self.name}: {self.after}")
        return out


@dataclass(frozen=True)
class CaseChange:
    """A case added, removed or changed: its parameters and its own settings, key by key."""

    case_id: str
    kind: str  # "added", "removed", "changed"
    parameters: tuple[ValueChange, ...]
    settings: tuple[ValueChange, ...]

    def lines(self) -> list[str]:
        sign, label = {"added": ("+", "new case"), "removed": ("-", "removed case")}.get(self.kind, ("~", "case"))
        out = [f"{sign} {label} {self.case_id}"]
        if self.settings:
            out.append("    settings:")
            out += [line for change in self.settings for line in change.lines("     ")]
        if self.parameters:
            if self.settings:
                out.append("    parameters:")
            out += [line for change in self.parameters for line in change.lines("     ")]
        if self.kind != "changed" and not self.settings and not self.parameters:
            out.append(f"{sign}    (no parameters of its own)")
        return out


@dataclass(frozen=True)
class FixtureChange:
    """One fixture file changed between base and head, for the notebook beside it."""

    status: str  # "added", "removed", "modified", "renamed"
    path: str
    old_path: str | None
    notebook: str
    settings: tuple[ValueChange, ...] = ()  # the file's own settings: timeout, kernel, strict, ...
    defaults: tuple[ValueChange, ...] = ()  # the file's `parameters`: every case gets them
    cases: tuple[CaseChange, ...] = ()
    problem: str = ""  # a side the loader refused; ``text_diff`` then shows the lines
    text_diff: tuple[str, ...] = ()

    def counts(self) -> dict[str, int]:
        """Cases by kind of change: ``{"added": 1, "removed": 0, "changed": 2}``."""
        return {kind: sum(case.kind == kind for case in self.cases) for kind in ("added", "removed", "changed")}

    def summary(self) -> str:
        """``1 case added, 2 changed; settings changed`` and the like, after the status."""
        if self.problem:
            return f"{self.status}: {self.problem}"
        counts = self.counts()
        changed = [f"{counts[kind]} {kind}" for kind in ("added", "removed", "changed") if counts[kind]]
        parts = [f"cases: {', '.join(changed)}"] if changed else []
        if self.defaults:
            parts.append("parameters of every case changed")
        if self.settings:
            parts.append("settings changed")
        what = ", ".join(parts) or "no change to its cases or settings (layout or comments only)"
        if self.status == "added":
            return f"new fixture: the notebook is tested, {counts['added']} case{'s' if counts['added'] != 1 else ''}"
        if self.status == "removed":
            return "removed: the notebook is no longer tested"
        if self.status == "renamed":
            return f"renamed from {self.old_path}, {what}"
        return what

    def lines(self) -> list[str]:
        """The change as lines for a ``diff`` fence: + added, - removed, ~ a changed case."""
        if self.problem:
            return [f"! {self.problem}", *self.text_diff]
        out: list[str] = []
        if self.settings:
            out.append("  settings of the file:")
            out += [line for change in self.settings for line in change.lines("   ")]
        if self.defaults:
            out.append("  parameters of every case:")
            out += [line for change in self.defaults for line in change.lines("   ")]
        for case in self.cases:
            out += case.lines()
        return out


def fixture_change(
    status: str, path: str, old_path: str | None, notebook: str, old: bytes | None, new: bytes | None
) -> FixtureChange:
    """Compare two versions of a fixture (``None``: the side where the file does not exist)."""
    try:
        before = _load(old_path or path, old)
        after = _load(path, new)
    except FixtureError as exc:
        return FixtureChange(
            status, path, old_path, notebook, problem=exc.problem, text_diff=_text_diff(old or b"", new or b"")
        )
    settings = _values(_settings(before), _settings(after))
    defaults = _values(_mapping(before.get("parameters")), _mapping(after.get("parameters")))
    old_cases, new_cases = _cases(before, old is not None), _cases(after, new is not None)
    cases = []
    for case_id in [*old_cases, *(c for c in new_cases if c not in old_cases)]:
        if case_id not in new_cases:
            cases.append(CaseChange(case_id, "removed", *_case_values(old_cases[case_id], None)))
        elif case_id not in old_cases:
            cases.append(CaseChange(case_id, "added", *_case_values(None, new_cases[case_id])))
        else:
            parameters, own = _case_values(old_cases[case_id], new_cases[case_id])
            if parameters or own:
                cases.append(CaseChange(case_id, "changed", parameters, own))
    return FixtureChange(status, path, old_path, notebook, settings, defaults, tuple(cases))


def _load(label: str, raw: bytes | None) -> dict[str, Any]:
    if raw is None:
        return {}
    data, _spots = load_yaml(label, raw)
    return data


def _text_diff(old: bytes, new: bytes) -> tuple[str, ...]:
    lines = difflib.unified_diff(
        old.decode("utf-8", "replace").splitlines(), new.decode("utf-8", "replace").splitlines(), lineterm="", n=2
    )
    return tuple(line for line in lines if not line.startswith(("---", "+++")))


def _mapping(value: Any) -> dict[str, Any]:
    """A mapping as str-keyed dict; anything else (collection refuses it) as one pseudo-entry."""
    if value is None:
        return {}
    if isinstance(value, Mapping):
        return {str(key): item for key, item in value.items()}
    return {_NOT_A_MAPPING: value}


def _settings(data: dict[str, Any]) -> dict[str, Any]:
    return {str(key): value for key, value in data.items() if key not in ("parameters", "cases")}


Case = tuple[dict[str, Any], dict[str, Any]]  # (parameters, own settings)


def _cases(data: dict[str, Any], exists: bool) -> dict[str, Case]:
    if not exists:
        return {}
    cases = data.get("cases")
    if cases is None:
        return {DEFAULT_CASE_ID: ({}, {})}
    if not isinstance(cases, Mapping):
        return {_NOT_A_MAPPING: ({"cases": cases}, {})}
    out: dict[str, Case] = {}
    for key, body in cases.items():
        if isinstance(body, Mapping) and "parameters" in body:  # the long form
            own = {str(k): v for k, v in body.items() if k != "parameters"}
            out[str(key)] = (_mapping(body["parameters"]), own)
        else:
            out[str(key)] = (_mapping(body), {})
    return out


def _case_values(old: Case | None, new: Case | None) -> tuple[tuple[ValueChange, ...], tuple[ValueChange, ...]]:
    empty: Case = ({}, {})
    before, after = old or empty, new or empty
    return _values(before[0], after[0]), _values(before[1], after[1])


def _values(before: dict[str, Any], after: dict[str, Any]) -> tuple[ValueChange, ...]:
    changes = []
    for name in [*before, *(n for n in after if n not in before)]:
        if name in before and name in after and _same(before[name], after[name]):
            continue
        changes.append(
            ValueChange(
                name,
                show_value(before[name]) if name in before else None,
                show_value(after[name]) if name in after else None,
            )
        )
    return tuple(changes)


def _same(a: Any, b: Any) -> bool:
    """Deep equality that gives up (says "different") after ``_COMPARE_NODES`` nodes."""
    budget = [_COMPARE_NODES]

    def same(x: Any, y: Any) -> bool:
        budget[0] -= 1
        if budget[0] < 0:
            return False
        if x is y:
            return True
        if type(x) is not type(y):
            return False
        if isinstance(x, dict):
            return x.keys() == y.keys() and all(same(x[k], y[k]) for k in x)
        if isinstance(x, list):
            return len(x) == len(y) and all(same(i, j) for i, j in zip(x, y, strict=True))
        return bool(x == y)

    return same(a, b)


def show_value(value: Any, limit: int = MAX_VALUE) -> str:
    """A value as YAML flow-style JSON (``"fr"``, ``120``, ``true``, ``[1, 2]``), at most ``limit`` characters.

    Renders piece by piece and stops at the limit, so an alias bomb costs no more than a short list.
    """
    out: list[str] = []
    size = [0]

    def emit(text: str) -> bool:
        out.append(text)
        size[0] += len(text)
        return size[0] <= limit

    def walk(item: Any) -> bool:
        if isinstance(item, Mapping):
            if not emit("{"):
                return False
            for index, (key, sub) in enumerate(item.items()):
                if not emit((", " if index else "") + json.dumps(str(key), ensure_ascii=False) + ": ") or not walk(sub):
                    return False
            return emit("}")
        if isinstance(item, (list, tuple)):
            if not emit("["):
                return False
            for index, sub in enumerate(item):
                if (index and not emit(", ")) or not walk(sub):
                    return False
            return emit("]")
        return emit(json.dumps(item, ensure_ascii=False, default=str))

    complete = walk(value)
    text = "".join(out)
    return text if complete and len(text) <= limit else text[: limit - 1] + "…"
