"""A fixture's settings (limits, kernel, snapshot, skip, xfail, snapshot_replace), validated. Pure.

The limits follow the flags' rule (options.py): seconds, and 0 or ``.inf`` for no limit."""

from __future__ import annotations

import re
from argparse import ArgumentTypeError
from typing import Any

from pytest_notebooks.cases.yamlfile import Locator, kind
from pytest_notebooks.options import limit


def check_pattern(pattern: str) -> None:
    """Raise ValueError naming the problem when ``pattern`` is not a valid regular expression (a
    fixture's ``snapshot_replace`` key, checked when the cases are read; review/normalize.py uses it
    for the ini's patterns too)."""
    try:
        re.compile(pattern)
    except re.error as exc:
        raise ValueError(f"invalid regular expression {pattern!r}: {exc}") from None


def case_settings(data: dict[str, Any], path: tuple[str, ...], where: Locator, fixture_name: str) -> dict[str, Any]:
    """timeout, cell_timeout, kernel, snapshot, skip, xfail of the file (path ``()``) or a case."""
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
    return out


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
