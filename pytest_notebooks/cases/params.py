"""Fixture YAML + notebook -> NotebookCase per case. Pure: no pytest, no papermill.

A fixture file sits beside its notebook (``vid_agg.ipynb`` + ``vid_agg.yaml``)::

    parameters: {run_date: "2017-01-01"}      # defaults for every case
    cases:
      luna: {region_code: luna}              # short form: parameters only
      fr:                                    # long form: chosen by the `parameters` key
        parameters: {region_code: fr}
        timeout: 1200
        xfail: "fr data is late"
    timeout: 600
    cell_timeout: 120
    kernel: python3
    strict: true

YAML is read the way papermill reads ``-f file.yaml``: safe, with dates left as strings.
"""

from __future__ import annotations

import difflib
import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from pytest_notebooks.errors import FixtureError
from pytest_notebooks.models import NotebookCase, NotebookInfo
from pytest_notebooks.review.normalize import check_pattern

DEFAULT_CASE_ID = "default"
TOP_LEVEL_KEYS = (
    "parameters",
    "cases",
    "timeout",
    "cell_timeout",
    "kernel",
    "strict",
    "skip",
    "xfail",
    "snapshot",
    "snapshot_replace",
)
CASE_KEYS = ("parameters", "timeout", "cell_timeout", "kernel", "skip", "xfail", "snapshot")
_CASE_ID = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]*$")
_TAG_HINT = (
    "tag the cell that holds the defaults with `parameters`: in JupyterLab select it, open the "
    'property inspector (gear icon) and add the tag; in the .ipynb JSON add "tags": ["parameters"] '
    "to that cell's metadata. Or set `strict: false` to let papermill inject them at the top"
)


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
class _Spot:
    """Where a key sits in the fixture file and, for scalars, the text written there."""

    line: int
    text: str | None


def sibling_fixture(notebook: Path, label: str | None = None) -> Path | None:
    """The fixture file beside ``notebook``, or None. Raises FixtureError when both exist."""
    found = [p for p in (notebook.with_suffix(".yaml"), notebook.with_suffix(".yml")) if p.is_file()]
    if len(found) == 2:
        raise FixtureError(
            label or str(found[0]),
            f"{notebook.name} has two fixture files, {found[0].name} and {found[1].name}",
            "keep one of them",
        )
    return found[0] if found else None


def load_cases(fixture: Path, notebook: NotebookInfo, label: str | None = None) -> list[NotebookCase]:
    """Read ``fixture`` and return one NotebookCase per case, in file order.

    ``label`` is how messages name the fixture file (a path relative to the rootdir, say).
    """
    raw = fixture.read_bytes()
    shown = label or str(fixture)
    data, spots = _load_yaml(shown, raw)
    return _Builder(fixture, shown, notebook, spots, hashlib.sha256(raw).hexdigest()).build(data)


def _load_yaml(fixture: str, raw: bytes) -> tuple[dict[str, Any], dict[tuple[str, ...], _Spot]]:
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
            f"the fixture must be a mapping of settings, got {_kind(data)}",
            "start with `parameters:` and/or `cases:`; see the README's fixture reference",
        )
    spots: dict[tuple[str, ...], _Spot] = {}
    if node is not None:
        _index(node, (), spots)
    return data, spots


def _index(node: yaml.Node, path: tuple[str, ...], spots: dict[tuple[str, ...], _Spot]) -> None:
    """Record the line of every mapping key down to case parameters (depth 4)."""
    if not isinstance(node, yaml.MappingNode) or len(path) >= 4:
        return
    for key_node, value_node in node.value:
        key_path = (*path, str(key_node.value))
        text = value_node.value if isinstance(value_node, yaml.ScalarNode) else None
        spots[key_path] = _Spot(key_node.start_mark.line + 1, text)
        _index(value_node, key_path, spots)


def _kind(value: Any) -> str:
    if value is None:
        return "nothing (null)"
    names = {dict: "a mapping", list: "a list", str: "a string", bool: "a boolean"}
    return names.get(type(value), f"{type(value).__name__} {value!r}")


def _suggest(name: str, choices: tuple[str, ...] | list[str]) -> str:
    close = difflib.get_close_matches(name, choices, n=1)
    return f"did you mean {close[0]!r}? " if close else ""


class _Builder:
    """Validates one fixture file against its notebook; raises FixtureError on the first problem."""

    def __init__(
        self,
        fixture: Path,
        label: str,
        notebook: NotebookInfo,
        spots: dict[tuple[str, ...], _Spot],
        sha: str,
    ) -> None:
        self.fixture = fixture
        self.label = label
        self.notebook = notebook
        self.spots = spots
        self.sha = sha

    def where(self, *path: str) -> str:
        spot = self.spots.get(path)
        return f"{self.label}:{spot.line}" if spot else self.label

    def fail(self, path: tuple[str, ...], problem: str, hint: str = "") -> FixtureError:
        return FixtureError(self.where(*path), problem, hint)

    def build(self, data: dict[str, Any]) -> list[NotebookCase]:
        for key in data:
            if key not in TOP_LEVEL_KEYS:
                raise self.fail(
                    (str(key),),
                    f"unknown top-level key {key!r}",
                    f"{_suggest(str(key), TOP_LEVEL_KEYS)}allowed keys: {', '.join(TOP_LEVEL_KEYS)}",
                )
        strict = data.get("strict", True)
        if not isinstance(strict, bool):
            raise self.fail(("strict",), f"`strict` must be true or false, got {_kind(strict)}")
        defaults = self.parameters(data.get("parameters"), ("parameters",), "the defaults")
        settings = self.settings(data, ())
        settings["snapshot_replace"] = self.replacements(data.get("snapshot_replace"))
        cases = data.get("cases")
        if cases is None:
            if "cases" in data:
                raise self.fail(("cases",), "`cases` is empty", "list cases under it, or remove it")
            entries: list[tuple[str, Any]] = [(DEFAULT_CASE_ID, {})]
        elif isinstance(cases, dict) and cases:
            entries = [(str(key), value) for key, value in cases.items()]
        else:
            raise self.fail(
                ("cases",),
                f"`cases` must be a non-empty mapping of case ids to cases, got {_kind(cases)}",
                "write `cases:` then one indented `case_id: {parameter: value}` per case",
            )
        return [self.case(case_id, body, defaults, settings, strict) for case_id, body in entries]

    def case(
        self,
        case_id: str,
        body: Any,
        defaults: dict[str, Any],
        top: dict[str, Any],
        strict: bool,
    ) -> NotebookCase:
        path: tuple[str, ...] = ("cases", case_id)
        if not _CASE_ID.match(case_id):
            raise self.fail(
                path,
                f"case id {case_id!r} is not a usable test id",
                "use letters, digits, '_', '.' and '-' only (it becomes a file name and a pytest id)",
            )
        if body is None:
            body = {}
        if not isinstance(body, dict):
            raise self.fail(
                path,
                f"case {case_id!r} must be a mapping, got {_kind(body)}",
                f"write it as `{case_id}: {{parameter: value}}`, or `{case_id}: {{}}` for the defaults",
            )
        if "parameters" in body:  # the long form: parameters plus settings
            for key in body:
                if key not in CASE_KEYS:
                    raise self.fail(
                        (*path, str(key)),
                        f"case {case_id!r}: unknown key {key!r} in a case that has `parameters:`",
                        f"{_suggest(str(key), CASE_KEYS)}a case with `parameters:` takes only "
                        f"{', '.join(CASE_KEYS)}; move parameters under its `parameters:`",
                    )
            own = self.parameters(body["parameters"], (*path, "parameters"), f"case {case_id!r}")
            settings = {**top, **{k: v for k, v in self.settings(body, path).items() if v is not None}}
            param_path = (*path, "parameters")
        else:
            own = self.parameters(body, path, f"case {case_id!r}")
            settings = top
            param_path = path
        if strict:
            self.check_declared(own, param_path, case_id)
            self.check_declared(defaults, ("parameters",), case_id)
        return NotebookCase(
            notebook=self.notebook.path,
            fixture=self.fixture,
            case_id=case_id,
            parameters={**defaults, **own},
            line=self.spots[path].line if path in self.spots else None,
            notebook_sha256=self.notebook.sha256,
            notebook_kernel=self.notebook.kernel_name,
            fixture_sha256=self.sha,
            **settings,
        )

    def parameters(self, value: Any, path: tuple[str, ...], owner: str) -> dict[str, Any]:
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise self.fail(
                path,
                f"parameters of {owner} must be a mapping of names to values, got {_kind(value)}",
                "write one `name: value` per line, indented under it",
            )
        for name in value:
            if not isinstance(name, str) or not name.isidentifier():
                raise self.fail(
                    (*path, str(name)),
                    f"{owner}: parameter name {name!r} is not a Python identifier",
                    "papermill assigns each parameter as a variable; rename it",
                )
        return dict(value)

    def settings(self, data: dict[str, Any], path: tuple[str, ...]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key in ("timeout", "cell_timeout"):
            value = data.get(key)
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0):
                raise self.fail((*path, key), f"`{key}` must be a positive number of seconds, got {_kind(value)}")
            out[key] = None if value is None else float(value)
        kernel = data.get("kernel")
        if kernel is not None and (not isinstance(kernel, str) or not kernel):
            raise self.fail(
                (*path, "kernel"),
                f"`kernel` must be a kernel name, got {_kind(kernel)}",
                "list installed kernels with `jupyter kernelspec list`",
            )
        out["kernel"] = kernel
        snapshot = data.get("snapshot")
        if snapshot is not None and not isinstance(snapshot, bool):
            raise self.fail((*path, "snapshot"), f"`snapshot` must be true or false, got {_kind(snapshot)}")
        out["snapshot"] = snapshot
        for key in ("skip", "xfail"):
            value = data.get(key)
            if value is True:
                value = f"{key} set in {self.fixture.name}"
            elif value is False:
                value = ""  # set, and empty: a case's `skip: false` overrides the file's `skip`
            elif value is not None and (not isinstance(value, str) or not value.strip()):
                raise self.fail((*path, key), f"`{key}` must be a reason (a string) or true, got {_kind(value)}")
            out[key] = value
        return out

    def replacements(self, value: Any) -> tuple[tuple[str, str], ...]:
        if value is None:
            return ()
        hint = "write one `'REGEX': 'replacement'` per line; single quotes keep backslashes as written"
        if not isinstance(value, dict):
            raise self.fail(("snapshot_replace",), f"`snapshot_replace` must be a mapping, got {_kind(value)}", hint)
        pairs = []
        for pattern, replacement in value.items():
            where = ("snapshot_replace", str(pattern))
            if not isinstance(pattern, str) or not isinstance(replacement, str):
                raise self.fail(where, f"`snapshot_replace` entry {pattern!r}: both sides must be strings", hint)
            try:
                check_pattern(pattern)
            except ValueError as exc:
                raise self.fail(where, f"`snapshot_replace`: {exc}", hint) from None
            pairs.append((pattern, replacement))
        return tuple(pairs)

    def check_declared(self, values: dict[str, Any], path: tuple[str, ...], case_id: str) -> None:
        nb = self.notebook
        if not values:
            return
        if nb.parameters_cell is None:
            raise self.fail(
                path,
                f"case {case_id!r} sets parameters ({', '.join(values)}) but {nb.path.name} has no "
                "cell tagged `parameters`",
                _TAG_HINT,
            )
        if not nb.parameters_parsed:
            return  # not Python, or magics in the cell: nothing to check names against
        names = [p.name for p in nb.parameters]
        for name, value in values.items():
            declared = nb.declared(name)
            if declared is None:
                listing = ", ".join(names) if names else "none"
                raise self.fail(
                    (*path, name),
                    f"case {case_id!r}: parameter {name!r} is not declared in the parameters cell "
                    f"(cell {nb.parameters_cell}) of {nb.path.name}; declared: {listing}",
                    f"{_suggest(name, names)}add it to the parameters cell, or set `strict: false` "
                    "in the fixture to pass undeclared parameters",
                )
            problem = _contradiction(declared.type_name, value)
            if problem:
                spot = self.spots.get((*path, name))
                written = spot.text if spot and spot.text is not None else str(value)
                raise self.fail(
                    (*path, name),
                    f"case {case_id!r}: parameter {name!r} is {_kind(value)} here, but its default in "
                    f"{nb.path.name} (cell {nb.parameters_cell}, line {declared.line}) is {problem}",
                    f'quote it if you meant the text: {name}: "{written}" (YAML 1.1 reads unquoted '
                    "2017_01_01 as a number and yes/no/on/off as booleans); or set `strict: false`",
                )


def _contradiction(declared: str | None, value: Any) -> str:
    """The default's kind when ``value`` clearly cannot stand for it, else ""."""
    if declared is None or value is None:
        return ""
    ok: dict[str, tuple[type, ...]] = {
        "str": (str,),
        "int": (int,),
        "float": (int, float),
        "bool": (bool,),
        "list": (list,),
        "dict": (dict,),
    }
    expected = ok.get(declared)
    if expected is None:
        return ""
    if isinstance(value, bool) and declared != "bool":
        return f"a {declared}"
    if isinstance(value, expected):
        return ""
    if declared == "int" and isinstance(value, float):
        return ""  # 1 -> 1.5 is a plausible change of mind, not a YAML accident
    return f"a {declared}"
