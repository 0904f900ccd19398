"""A fixture's settings (limits, kernel, snapshot, skip, xfail, snapshot_replace, env), validated. Pure.

The limits follow the flags' rule (options.py): seconds, and 0 or ``.inf`` for no limit."""

from __future__ import annotations

import re
from argparse import ArgumentTypeError
from typing import Any

from pytest_notebooks.cases.yamlfile import Locator, kind
from pytest_notebooks.errors import FixtureError
from pytest_notebooks.options import limit
from pytest_notebooks.redact import is_credential_name

# A variable a case's kernel may be given: what POSIX shells accept as a name.
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_ENV_HINT = (
    'write one `NAME: "text"` per line; environment variables are text, so quote numbers and '
    "booleans (YAML reads unquoted 8080 as a number and yes/no/on/off as booleans)"
)


def check_pattern(pattern: str) -> None:
    """Raise ValueError naming the problem when ``pattern`` is not a valid regular expression (a
    fixture's ``snapshot_replace`` key, checked when the cases are read; review/normalize.py uses it
    for the ini's patterns too)."""
    try:
        re.compile(pattern)
    except re.error as exc:
        raise ValueError(f"invalid regular expression {pattern!r}: {exc}") from None


def case_settings(data: dict[str, Any], path: tuple[str, ...], where: Locator, fixture_name: str) -> dict[str, Any]:
    """timeout, cell_timeout, kernel, snapshot, skip, xfail, env of the file (path ``()``) or a case."""
    out: dict[str, Any] = {key: _seconds(data.get(key), (*path, key), where) for key in ("timeout", "cell_timeout")}
    kernel = data.get("kernel")
    if kernel is not None and (not isinstance(kernel, str) or not kernel):
        raise where.fail(
            (*path, "kernel"),
            f"`kernel` must be a kernel name, got {kind(kernel)}",
            "list installed kernels with `jupyter kernelspec list`",
        )
    out["kernel"] = kernel
    snapshot = data.get("snapshot")
    if snapshot is not None and not isinstance(snapshot, bool):
        raise where.fail((*path, "snapshot"), f"`snapshot` must be true or false, got {kind(snapshot)}")
    out["snapshot"] = snapshot
    for key in ("skip", "xfail"):
        value = data.get(key)
        if value is True:
            value = f"{key} set in {fixture_name}"
        elif value is False:
            value = ""  # set, and empty: a case's `skip: false` overrides the file's `skip`
        elif value is not None and (not isinstance(value, str) or not value.strip()):
            raise where.fail((*path, key), f"`{key}` must be a reason (a string) or true, got {kind(value)}")
        out[key] = value
    out["env"] = environment(data.get("env"), (*path, "env"), where)
    return out


def environment(value: Any, path: tuple[str, ...], where: Locator) -> tuple[tuple[str, str], ...] | None:
    """A fixture's ``env:`` mapping (file or case) as sorted (name, value) pairs; None when not set.

    Values must be strings: the kernel's environment holds text, and a YAML number or boolean would
    reach it spelt otherwise than written (``yes`` as ``True``, ``0o17`` as ``15``). The value of a
    credential-looking name is never shown in the error."""
    if value is None:
        return None
    owner = f"case {path[1]!r}: " if path[0] == "cases" else ""
    if not isinstance(value, dict):
        raise where.fail(
            path, f"{owner}`env` must be a mapping of variable names to text, got {kind(value)}", _ENV_HINT
        )
    for name, text in value.items():
        key = (*path, str(name))
        if not isinstance(name, str) or not _ENV_NAME.fullmatch(name):
            raise where.fail(
                key,
                f"{owner}`env` name {name!r} is not a valid environment variable name",
                "use letters, digits and '_', not starting with a digit",
            )
        if not isinstance(text, str) or "\0" in text:
            raise _env_value(text, name, key, owner, where)
    return tuple(sorted(value.items()))


def _env_value(text: Any, name: str, key: tuple[str, ...], owner: str, where: Locator) -> FixtureError:
    """The error for an ``env:`` value that is not text (or holds NUL, which no environment can)."""
    if isinstance(text, str):
        return where.fail(key, f"{owner}`env` variable {name!r} holds a NUL character", "no environment can hold one")
    secret = is_credential_name(name)
    shown = kind(text) if not secret or isinstance(text, (bool, dict, list)) or text is None else "a number"
    written = where.text(*key)
    hint = _ENV_HINT
    if written is not None and not secret and isinstance(text, (bool, int, float)):
        hint = f'quote it if you meant the text: {name}: "{written}"; {hint}'
    return where.fail(key, f"{owner}`env` variable {name!r} must be text, got {shown}", hint, at_value=True)


def _seconds(value: Any, path: tuple[str, ...], where: Locator) -> float | None:
    """A fixture's time limit, by the flags' rule (options.py): seconds; 0 or .inf is no limit (NO_LIMIT)."""
    if value is None:
        return None
    try:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ArgumentTypeError(value)
        return limit(float(value), value, "seconds")
    except ArgumentTypeError:
        raise where.fail(
            path, f"`{path[-1]}` must be a number of seconds, got {kind(value)}", "write seconds; 0 or .inf: no limit"
        ) from None


def replacements(value: Any, where: Locator) -> tuple[tuple[str, str], ...]:
    """The fixture's ``snapshot_replace`` mapping as (regex, replacement) pairs, each regex checked."""
    if value is None:
        return ()
    hint = "write one `'REGEX': 'replacement'` per line; single quotes keep backslashes as written"
    if not isinstance(value, dict):
        raise where.fail(("snapshot_replace",), f"`snapshot_replace` must be a mapping, got {kind(value)}", hint)
    pairs = []
    for pattern, replacement in value.items():
        key = ("snapshot_replace", str(pattern))
        if not isinstance(pattern, str) or not isinstance(replacement, str):
            raise where.fail(key, f"`snapshot_replace` entry {pattern!r}: both sides must be strings", hint)
        try:
            check_pattern(pattern)
        except ValueError as exc:
            raise where.fail(key, f"`snapshot_replace`: {exc}", hint) from None
        pairs.append((pattern, replacement))
    return tuple(pairs)
