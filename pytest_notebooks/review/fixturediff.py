"""Two versions of a fixture file -> FixtureChange: the cases and settings a pull request changed. Pure.

Both sides are read with ``cases/yamlfile.py``'s loader and interpreted as ``cases/params.py`` does,
then compared by key, not by line: re-indenting, comments and reordering change nothing, and a
changed default shows once, under "every case". A side the loader refuses is shown with the
loader's message and a plain line diff of the two texts.

Secrets are masked as everywhere else (redact.py, collect.py ``shown_parameters``): the ``env:`` value of
a credential-looking variable is ``***`` whatever its length, and any value shown that holds one of
those values (of redact.MIN_LENGTH or more) has it masked. In the line diff of a side the loader
refuses, the value after a credential-looking ``NAME:`` is masked too, as far as a line shows it.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from pytest_notebooks.cases.params import DEFAULT_CASE_ID
from pytest_notebooks.cases.yamlfile import load_yaml
from pytest_notebooks.errors import FixtureError
from pytest_notebooks.redact import MASK, Redactor, is_credential_name

MAX_VALUE = 200  # characters of one rendered value
_COMPARE_NODES = 100_000  # a YAML alias bomb stays a bomb: stop comparing after this many nodes
_NOT_A_MAPPING = "(not a mapping)"
# `NAME:` in a line of YAML, then the value after a credential-looking one: a quoted value whole, else
# the rest of the line but for the `}` and `]` that close it (whatever follows an unquoted secret in a
# flow mapping is masked with it: where a plain scalar ends is not known from one line)
_NAME = re.compile(r"""(?P<name>[A-Za-z_][A-Za-z0-9_]*)["']?[ \t]*:[ \t]+""")
_VALUE = re.compile(r""""(?:[^"\\]|\\.)*"?|'(?:[^']|'')*'?|[^{}\[\]\s][^\n]*?(?=[\s}\]]*$)""")


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
        readable = [_readable(label, raw) for label, raw in ((old_path or path, old), (path, new))]
        shown = _Shown.of(*readable)
        return FixtureChange(
            status, path, old_path, notebook, problem=exc.problem, text_diff=_text_diff(old or b"", new or b"", shown)
        )
    shown = _Shown.of(before, after)
    settings = _values(_settings(before), _settings(after), shown, settings=True)
    defaults = _values(_mapping(before.get("parameters")), _mapping(after.get("parameters")), shown)
    old_cases, new_cases = _cases(before, old is not None), _cases(after, new is not None)
    cases = []
    for case_id in [*old_cases, *(c for c in new_cases if c not in old_cases)]:
        if case_id not in new_cases:
            cases.append(CaseChange(case_id, "removed", *_case_values(old_cases[case_id], None, shown)))
        elif case_id not in old_cases:
            cases.append(CaseChange(case_id, "added", *_case_values(None, new_cases[case_id], shown)))
        else:
            parameters, own = _case_values(old_cases[case_id], new_cases[case_id], shown)
            if parameters or own:
                cases.append(CaseChange(case_id, "changed", parameters, own))
    return FixtureChange(status, path, old_path, notebook, settings, defaults, tuple(cases))


def _load(label: str, raw: bytes | None) -> dict[str, Any]:
    if raw is None:
        return {}
    data, _spots = load_yaml(label, raw)
    return data


def _readable(label: str, raw: bytes | None) -> dict[str, Any]:
    """A side as ``_load`` reads it; empty when the loader refuses it."""
    try:
        return _load(label, raw)
    except FixtureError:
        return {}


@dataclass(frozen=True)
class _Shown:
    """How values are shown: with the secrets of both sides' ``env:`` masked (``redactor``)."""

    redactor: Redactor = field(default_factory=Redactor)

    @classmethod
    def of(cls, *sides: dict[str, Any]) -> _Shown:
        """The secrets of the sides' ``env:`` (the file's and each long-form case's)."""
        found = [(name, value) for side in sides for env in _envs(side) for name, value in _secrets(env)]
        # Redactor.from_environ keeps the names it is given once; each value here gets a key of its own.
        return cls(
            Redactor.from_environ({f"{index} {name}": value for index, (name, value) in enumerate(found)}, ["*"])
        )

    def value(self, value: Any, *, env: bool = False) -> str:
        """``show_value`` of ``value`` with the secrets masked; ``env``: an ``env:`` mapping, whose
        credential-looking variables are shown as ``***`` whatever their value."""
        if env and isinstance(value, Mapping):
            value = {key: MASK if _secret(key, item) else item for key, item in value.items()}
        if not self.redactor:
            return show_value(value)
        # shown longer than MAX_VALUE first, so that no secret is cut where the text is cut
        text = self.redactor.text(show_value(value, MAX_VALUE + self.redactor.longest))
        return text if len(text) <= MAX_VALUE else text[: MAX_VALUE - 1] + "…"

    def line(self, line: str) -> str:
        """A line of YAML with the secrets masked, and the value after a credential-looking name."""
        line = self.redactor.text(line)
        pos = 0
        while named := _NAME.search(line, pos):
            pos = named.end()
            value = _VALUE.match(line, pos) if is_credential_name(named["name"]) else None
            if value:
                line = line[:pos] + MASK + line[value.end() :]
                pos += len(MASK)
        return line


def _envs(data: dict[str, Any]) -> Iterator[Any]:
    """The ``env:`` mappings of a fixture: the file's, then each long-form case's."""
    yield data.get("env")
    cases = data.get("cases")
    if isinstance(cases, Mapping):
        for body in cases.values():
            if isinstance(body, Mapping) and "parameters" in body:
                yield body.get("env")


def _secret(name: Any, value: Any) -> bool:
    return isinstance(name, str) and is_credential_name(name) and value is not None


def _secrets(env: Any) -> list[tuple[str, str]]:
    """The (name, value) of the credential-looking variables of an ``env:`` mapping whose value is text."""
    if not isinstance(env, Mapping):
        return []
    return [(name, value) for name, value in env.items() if _secret(name, value) and isinstance(value, str)]


def _text_diff(old: bytes, new: bytes, shown: _Shown) -> tuple[str, ...]:
    lines = difflib.unified_diff(
        old.decode("utf-8", "replace").splitlines(), new.decode("utf-8", "replace").splitlines(), lineterm="", n=2
    )
    return tuple(shown.line(line) for line in lines if not line.startswith(("---", "+++")))


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


def _case_values(
    old: Case | None, new: Case | None, shown: _Shown
) -> tuple[tuple[ValueChange, ...], tuple[ValueChange, ...]]:
    empty: Case = ({}, {})
    before, after = old or empty, new or empty
    return _values(before[0], after[0], shown), _values(before[1], after[1], shown, settings=True)


def _values(
    before: dict[str, Any], after: dict[str, Any], shown: _Shown, *, settings: bool = False
) -> tuple[ValueChange, ...]:
    """The keys whose values differ; ``settings``: the keys are settings (``env`` among them)."""
    changes = []
    for name in [*before, *(n for n in after if n not in before)]:
        if name in before and name in after and _same(before[name], after[name]):
            continue
        env = settings and name == "env"
        changes.append(
            ValueChange(
                name,
                shown.value(before[name], env=env) if name in before else None,
                shown.value(after[name], env=env) if name in after else None,
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
