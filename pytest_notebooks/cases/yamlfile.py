"""Fixture bytes -> (data, where each key sits). YAML read the way papermill reads ``-f file.yaml``:
safe, with dates left as strings. Pure: no pytest, no papermill.

The node tree is checked before any value is built, for what PyYAML would let through silently: a
key written twice (PyYAML keeps the last), keys that read the same as text (``1`` and ``"1"``), an
alias that contains itself, aliases that expand past ``FIXTURE_LIMIT`` (a "billion laughs" file),
and integers longer than ``MAX_INT_DIGITS``.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import yaml

from pytest_notebooks.errors import FixtureError

# The whole fixture, once aliases are expanded, in characters written as JSON (about). Checked
# before any value is built: merge keys (`<<: *x`) copy pairs while they are built.
FIXTURE_LIMIT = 20_000_000
# Digits of an integer anywhere in a fixture: Python's default limit for converting between int and
# text (sys.get_int_max_str_digits), which building the value, papermill writing it into the notebook,
# the kernel parsing it and JSON recording it each meet. Fixed, whatever this process's own limit.
MAX_INT_DIGITS = 4300
_INT_BOUND = 10**MAX_INT_DIGITS
_SHORT_INT = 20  # characters: an integer written in fewer is far below the limit in any notation
_STR_TAG = "tag:yaml.org,2002:str"
_INT_TAG = "tag:yaml.org,2002:int"
_MERGE_TAG = "tag:yaml.org,2002:merge"

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
    """Where a key sits in the fixture file and, for scalars, the text written there.

    ``plain`` is true for an unquoted scalar (the only kind YAML 1.1 turns into a number or a
    boolean); ``size`` is the value's size written as JSON, about, with aliases expanded.
    ``value_line`` is where the value starts: the key's line, or a later one for a block list or
    mapping (an alias's value is where the key is, not where its anchor was written).
    """

    line: int
    text: str | None
    plain: bool = False
    size: int = 0
    value_line: int = 0


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

    def plain(self, *path: str) -> bool:
        """Whether the value at ``path`` was written as an unquoted scalar."""
        spot = self.spots.get(path)
        return spot.plain if spot else False

    def size(self, *path: str) -> int:
        """The value at ``path`` written as JSON, in characters (about; aliases expanded)."""
        spot = self.spots.get(path)
        return spot.size if spot else 0

    def fail(self, path: tuple[str, ...], problem: str, hint: str = "", *, at_value: bool = False) -> FixtureError:
        """The error about the key at ``path``, or, ``at_value``, about its value (named at its own line)."""
        spot = self.spots.get(path)
        if at_value and spot is not None and spot.value_line:
            return FixtureError(f"{self.label}:{spot.value_line}", problem, hint)
        return FixtureError(self.where(*path), problem, hint)


def load_yaml(fixture: str, raw: bytes) -> tuple[dict[str, Any], dict[tuple[str, ...], Spot]]:
    try:
        text = raw.decode("utf-8")
        loader = _LOADER(text)  # parse once: the node tree gives the lines, then the values
        try:
            node = loader.get_single_node()
            checker = _Checker(fixture, loader)
            if node is not None:
                checker.check(node)
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
            "start with `parameters:` and/or `cases:`; see the docs' fixture reference (reference/fixture-keys)",
        )
    spots: dict[tuple[str, ...], Spot] = {}
    if node is not None:
        _index(node, (), spots, checker)
    return data, spots


def top_level_keys(raw: bytes) -> list[str] | None:
    """The top-level keys of a YAML file, or None when it is not a readable YAML mapping.

    Composes the node tree only: no value is built, so any file is cheap to look at.
    """
    try:
        loader = _LOADER(raw.decode("utf-8"))
        try:
            node = loader.get_single_node()
        finally:
            loader.dispose()
    except (UnicodeDecodeError, yaml.YAMLError):
        return None
    if not isinstance(node, yaml.MappingNode):
        return None
    return [str(key.value) for key, _ in node.value]


def _index(node: yaml.Node, path: tuple[str, ...], spots: dict[tuple[str, ...], Spot], checked: _Checker) -> None:
    """Record the line of every mapping key down to case parameters (depth 4), by the key's text."""
    if not isinstance(node, yaml.MappingNode) or len(path) >= 4:
        return
    sizes = checked.sizes
    for key_node, value_node in node.value:
        key_path = (*path, checked.texts.get(id(key_node), str(key_node.value)))
        scalar = isinstance(value_node, yaml.ScalarNode)
        text = value_node.value if scalar else None
        plain = scalar and not value_node.style  # libyaml says "", PyYAML None
        line = key_node.start_mark.line + 1
        after = value_node.start_mark.index >= key_node.end_mark.index  # not an alias of an earlier anchor
        value_line = value_node.start_mark.line + 1 if after else line
        spots[key_path] = Spot(line, text, plain, sizes.get(id(value_node), 0), value_line)
        _index(value_node, key_path, spots, checked)


class _Checker:
    """One walk over the node tree, each node once however many aliases point at it.

    Raises FixtureError for duplicate keys, recursive aliases and a file too big once expanded.
    Keeps every node's expanded size (capped just above FIXTURE_LIMIT) and every scalar key's
    text as the built value reads (``yes`` -> ``True``), both by the node's ``id``.
    """

    def __init__(self, label: str, loader: Any) -> None:
        self.label = label
        self.loader = loader
        self.sizes: dict[int, int] = {}
        self.texts: dict[int, str] = {}

    def check(self, root: yaml.Node) -> None:
        sizes, open_nodes = self.sizes, set()
        # (node, path to it, line of the key above it, children done): an explicit stack, since
        # libyaml nests up to 1,000 levels and recursion here would meet Python's own limit.
        # Scalars, most of the tree, are sized where they are met, without a path or a stack entry.
        stack: list[tuple[yaml.Node, tuple[str, ...], int, bool]] = [(root, (), 1, False)]
        while stack:
            node, path, line, done = stack.pop()
            key = id(node)
            if done:
                open_nodes.discard(key)
                sizes[key] = self._size(node)
                continue
            if key in sizes:
                continue
            if key in open_nodes:
                raise FixtureError(
                    f"{self.label}:{line}",
                    f"`{_dotted(path)}` contains itself through a YAML alias",
                    "a recursive value cannot be passed to a notebook; remove the alias",
                )
            if isinstance(node, yaml.ScalarNode):
                sizes[key] = len(node.value) + 2
                continue
            open_nodes.add(key)
            stack.append((node, path, line, True))
            if isinstance(node, yaml.MappingNode):
                self._check_keys(node, path)
                for key_node, value_node in node.value:
                    if isinstance(key_node, yaml.ScalarNode):
                        sizes[id(key_node)] = len(key_node.value) + 2
                    else:
                        stack.append((key_node, path, key_node.start_mark.line + 1, False))
                    key_path = (*path, str(key_node.value))
                    if isinstance(value_node, yaml.ScalarNode):
                        self._check_int(value_node, key_path)
                        sizes[id(value_node)] = len(value_node.value) + 2
                    else:
                        stack.append((value_node, key_path, key_node.start_mark.line + 1, False))
            else:
                for index, child in enumerate(node.value):
                    if isinstance(child, yaml.ScalarNode):
                        self._check_int(child, (*path, f"[{index}]"))
                        sizes[id(child)] = len(child.value) + 2
                    else:
                        stack.append((child, (*path, f"[{index}]"), line, False))
        if sizes[id(root)] > FIXTURE_LIMIT:
            self._too_big(root)

    def _size(self, node: yaml.Node) -> int:
        """The size of a collection whose children are sized: JSON's brackets, ', ' and ': '."""
        sizes = self.sizes
        if isinstance(node, yaml.MappingNode):
            total = 2 + sum(sizes[id(k)] + sizes[id(v)] + 4 for k, v in node.value)
        else:
            total = 2 + sum(sizes[id(child)] + 2 for child in node.value)
        return min(total, FIXTURE_LIMIT + 1)

    def _check_keys(self, node: yaml.MappingNode, path: tuple[str, ...]) -> None:
        """No key twice, and no two keys that read the same as text (``1`` and ``"1"``)."""
        seen: dict[Any, yaml.Node] = {}
        mixed = False  # a key that is not a string: only then can two keys read the same as text
        for key_node, _ in node.value:
            if key_node.tag == _STR_TAG:
                value = key_node.value
            elif key_node.tag == _MERGE_TAG or not isinstance(key_node, yaml.ScalarNode):
                continue  # `<<: *x` merges; a collection as a key is refused when values are built
            else:
                self._check_int(key_node, path, key=True)
                value = self.loader.construct_object(key_node)
                self.texts[id(key_node)] = str(value)
                mixed = True
            first = seen.get(value)
            if first is not None:
                self._duplicate(path, first, key_node, str(value), same=True)
            seen[value] = key_node
        if mixed:
            texts: dict[str, yaml.Node] = {}
            for value, key_node in seen.items():
                text = str(value)
                if text in texts:
                    self._duplicate(path, texts[text], key_node, text, same=False)  # file order
                texts[text] = key_node

    def _check_int(self, node: yaml.ScalarNode, path: tuple[str, ...], *, key: bool = False) -> None:
        """Raise for an integer of more than MAX_INT_DIGITS digits, before Python is asked to build it
        (a 30-line ValueError traceback) or to write it as text. Hex, octal and base 60 are built
        to be measured."""
        text = node.value
        if len(text) <= _SHORT_INT or node.tag != _INT_TAG:
            return
        digits = text.lstrip("+-").replace("_", "")
        if digits.isascii() and digits.isdigit() and not digits.startswith("0"):  # decimal ('0...' is octal)
            too_long = len(digits) > MAX_INT_DIGITS
        else:
            try:
                too_long = abs(self.loader.construct_object(node)) >= _INT_BOUND
            except ValueError:  # a base-60 part too long to read
                too_long = True
        if too_long:
            what = "has a key that is" if key else "is"
            raise FixtureError(
                f"{self.label}:{node.start_mark.line + 1}",
                f"`{_dotted(path)}` {what} an integer of more than {MAX_INT_DIGITS:,} digits; the limit is "
                f"{MAX_INT_DIGITS:,}",
                "Python refuses to turn longer integers into text, and papermill writes every parameter into the "
                "notebook as text; quote it to pass a string",
            )

    def _duplicate(self, path: tuple[str, ...], first: yaml.Node, second: yaml.Node, name: str, *, same: bool) -> None:
        lines = (first.start_mark.line + 1, second.start_mark.line + 1)
        where = f"{self.label}:{lines[1]}"
        keep = "YAML would keep only the second and drop the first without a word"
        if not same:
            written = f"{_written(first)} (line {lines[0]}) and {_written(second)} (line {lines[1]})"
            if path == ("cases",):
                raise FixtureError(
                    where,
                    f"case ids {written} both become the test id {name!r}",
                    "rename one of them; quote ids that YAML would read as numbers or booleans",
                )
            raise FixtureError(
                where,
                f"keys {written} in `{_dotted(path)}` both read {name!r} as text",
                "rename one of them: as text (a Python name, a JSON key) they would collide",
            )
        if first.value != second.value:  # 1 and 1.0, true and True: one key to YAML
            written = f"{_written(first)} and {_written(second)}"
            problem, hint = f"keys {written} are the same YAML key", "remove one of the two, or quote both"
        elif not path:
            problem, hint = f"top-level key `{name}` is written twice", f"merge the two `{name}:` blocks into one"
        elif path == ("cases",):
            problem, hint = f"case id {name!r} is written twice", "rename or remove one of the two cases"
        else:
            problem, hint = f"key {name!r} is written twice in `{_dotted(path)}`", "remove one of the two"
        raise FixtureError(where, f"{problem} (lines {lines[0]} and {lines[1]}); {keep}", hint)

    def _too_big(self, root: yaml.Node) -> None:
        """Raise for a fixture over FIXTURE_LIMIT, naming the key (two levels down) that holds most."""
        path: tuple[str, ...] = ()
        line, node = 1, root
        while isinstance(node, yaml.MappingNode) and node.value and len(path) < 2:
            key_node, node = max(node.value, key=lambda pair: self.sizes[id(pair[1])])
            path, line = (*path, str(key_node.value)), key_node.start_mark.line + 1
        raise FixtureError(
            f"{self.label}:{line}",
            f"the fixture expands to more than {FIXTURE_LIMIT:,} characters once its YAML aliases are "
            f"repeated, most of it in `{_dotted(path)}`; the limit is {FIXTURE_LIMIT:,}",
            "every alias (*name) repeats what it points to, and parameters are written into each executed "
            "notebook and into the results file; pass big inputs as a file path and read them in the notebook",
        )


def _dotted(path: tuple[str, ...]) -> str:
    """``("cases", "fr", "[2]")`` -> ``cases.fr[2]``; the root is ``(the fixture)``."""
    text = "".join(part if part.startswith("[") else f".{part}" for part in path).lstrip(".")
    return text or "(the fixture)"


def _written(node: yaml.Node) -> str:
    """A scalar key as it was written: quoted when it was quoted."""
    value = str(node.value)
    return repr(value) if getattr(node, "style", None) else value


def kind(value: Any) -> str:
    if value is None:
        return "nothing (null)"
    names = {dict: "a mapping", list: "a list", str: "a string", bool: "a boolean"}
    return names.get(type(value), f"{type(value).__name__} {value!r}")


def suggest(name: str, choices: tuple[str, ...] | list[str]) -> str:
    close = difflib.get_close_matches(name, choices, n=1)
    return f"did you mean {close[0]!r}? " if close else ""
