"""Fixture bytes -> (data, where each key sits). YAML read the way papermill reads ``-f file.yaml``:
safe, with dates left as strings. Pure: no pytest, no papermill.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import yaml

from pytest_notebooks.errors import FixtureError

_NO_DATES = {
    key: [resolver for resolver in resolvers if resolver[0] != "tag:yaml.org,2002:timestamp"]
    for key, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


class NoDatesSafeLoader(yaml.SafeLoader):
    """papermill's loader for ``-f``/``-y``: SafeLoader without the timestamp resolver."""

    yaml_implicit_resolvers = _NO_DATES  # a class attribute subclasses replace, as papermill does


# libyaml's parser when PyYAML was built with it (about 15x faster for 5,000 fixtures), with the
# same Python resolver and constructor, so values are the same as with NoDatesSafeLoader.
if hasattr(yaml, "CSafeLoader"):

    class _FastLoader(yaml.CSafeLoader):
        yaml_implicit_resolvers = _NO_DATES

    _LOADER: type[Any] = _FastLoader
else:  # pragma: no cover - PyYAML without libyaml
    _LOADER = NoDatesSafeLoader


@dataclass(frozen=True)
class Spot:
    """Where a key sits in the fixture file and, for scalars, the text written there."""

    line: int
    text: str | None


@dataclass(frozen=True)
class Locator:
    """Names a place in one fixture file for messages: ``x.yaml:7``."""

    label: str
    spots: Mapping[tuple[str, ...], Spot]

    def where(self, *path: str) -> str:
        spot = self.spots.get(path)
        return f"{self.label}:{spot.line}" if spot else self.label

    def line(self, *path: str) -> int | None:
        spot = self.spots.get(path)
        return spot.line if spot else None

    def text(self, *path: str) -> str | None:
        spot = self.spots.get(path)
        return spot.text if spot else None

    def fail(self, path: tuple[str, ...], problem: str, hint: str = "") -> FixtureError:
        return FixtureError(self.where(*path), problem, hint)


def load_yaml(fixture: str, raw: bytes) -> tuple[dict[str, Any], dict[tuple[str, ...], Spot]]:
    try:
        text = raw.decode("utf-8")
        loader = _LOADER(text)  # parse once: the node tree gives the lines, then the values
        try:
            node = loader.get_single_node()
            data = loader.construct_document(node) if node is not None else None
        finally:
            loader.dispose()
    except UnicodeDecodeError as exc:
        raise FixtureError(str(fixture), f"is not UTF-8 text ({exc})", "save it as UTF-8") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{fixture}:{mark.line + 1}" if mark is not None else str(fixture)
        problem = getattr(exc, "problem", None) or str(exc)
        raise FixtureError(
            where, f"invalid YAML: {problem}", "check the indentation and quoting on that line"
        ) from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise FixtureError(
            f"{fixture}:1",
            f"the fixture must be a mapping of settings, got {kind(data)}",
            "start with `parameters:` and/or `cases:`; see the README's fixture reference",
        )
    spots: dict[tuple[str, ...], Spot] = {}
    if node is not None:
        _index(node, (), spots)
    return data, spots


def _index(node: yaml.Node, path: tuple[str, ...], spots: dict[tuple[str, ...], Spot]) -> None:
    """Record the line of every mapping key down to case parameters (depth 4)."""
    if not isinstance(node, yaml.MappingNode) or len(path) >= 4:
        return
    for key_node, value_node in node.value:
        key_path = (*path, str(key_node.value))
        text = value_node.value if isinstance(value_node, yaml.ScalarNode) else None
        spots[key_path] = Spot(key_node.start_mark.line + 1, text)
        _index(value_node, key_path, spots)


def kind(value: Any) -> str:
    if value is None:
        return "nothing (null)"
    names = {dict: "a mapping", list: "a list", str: "a string", bool: "a boolean"}
    return names.get(type(value), f"{type(value).__name__} {value!r}")


def suggest(name: str, choices: tuple[str, ...] | list[str]) -> str:
    close = difflib.get_close_matches(name, choices, n=1)
    return f"did you mean {close[0]!r}? " if close else ""
