"""A case's parameters against the notebook's ``parameters`` cell: declared, and of a plausible kind. Pure.

Each value is checked where it is written: a case's own parameters as that case's, the defaults (the
top-level ``parameters``) once, as the defaults, whichever cases use them. A key of a short-form case
that is declared nowhere and reads like a case setting (``paramters``, ``timout``, ``skip``) is told
about the setting and the long form, not about ``strict: false``: that would pass it into the notebook.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pytest_notebooks.cases.yamlfile import Locator, kind, suggest
from pytest_notebooks.errors import FixtureError
from pytest_notebooks.models import DeclaredParameter, NotebookInfo

DEFAULTS = "the defaults (top-level `parameters`)"
_UNUSED = "remove it from the defaults, since no case uses it"
MAX_USERS_SHOWN = 3  # case ids named in a message about a default; the rest are counted
_TAG_HINT = (
    "tag the cell that holds the defaults with `parameters`: in JupyterLab select it, open the "
    'property inspector (gear icon) and add the tag; in the .ipynb JSON add "tags": ["parameters"] '
    "to that cell's metadata. Or set `strict: false` to let papermill inject them at the top"
)


@dataclass(frozen=True)
class Owner:
    """Whose parameters are checked, as messages name them: a case's own, or the defaults.

    ``settings``: the case settings a key may be a misspelling of, for a short-form case (whose keys
    are all parameters); empty where the keys sit under a ``parameters:`` key. ``users``: for the
    defaults, each parameter's cases that do not set their own; ``cases``: how many cases there are.
    """

    case_id: str | None
    settings: tuple[str, ...] = ()
    users: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    cases: int = 0

    @property
    def name(self) -> str:
        return DEFAULTS if self.case_id is None else f"case {self.case_id!r}"

    def unused(self, name: str) -> bool:
        """A default that every case sets for itself: no case runs with it."""
        return self.case_id is None and not self.users.get(name, ())

    def usage(self, name: str) -> str:
        """``; cases 'us' and 'de' use it`` for a default only some cases use; "" for a case's own, or a
        default every case uses."""
        if self.case_id is not None:
            return ""
        users = self.users.get(name, ())
        if not users:
            return "; every case sets its own, so no case uses it"
        if len(users) == self.cases:
            return ""
        shown = ", ".join(repr(case_id) for case_id in users[:MAX_USERS_SHOWN])
        if len(users) > MAX_USERS_SHOWN:
            shown += f" and {len(users) - MAX_USERS_SHOWN} more"
        elif len(users) > 1:
            head, last = shown.rsplit(", ", 1)
            shown = f"{head} and {last}"
        return f"; case {shown} uses it" if len(users) == 1 else f"; cases {shown} use it"


def check_declared(
    values: dict[str, Any], path: tuple[str, ...], owner: Owner, nb: NotebookInfo, where: Locator
) -> None:
    """Every parameter is declared in the notebook's parameters cell, of a kind its default allows."""
    if not values:
        return
    if nb.parameters_cell is None:
        for name in values:
            setting = meant_setting(name, [], owner.settings)
            if setting is not None:
                raise _setting_error(name, setting, (*path, name), owner, nb, where)
        verb = "set" if owner.case_id is None else "sets"
        raise where.fail(
            path,
            f"{owner.name} {verb} parameters ({', '.join(values)}) but {nb.path.name} has no cell tagged `parameters`",
            _TAG_HINT,
        )
    if not nb.parameters_parsed:
        return  # not Python, or magics in the cell: nothing to check names against
    for name, value in values.items():
        declared = nb.declared(name)
        if declared is None:
            raise _undeclared(name, (*path, name), owner, nb, where)
        problem = _contradiction(declared.type_name, value)
        if problem:
            raise _contradicts(name, value, problem, declared, (*path, name), owner, nb, where)


def meant_setting(name: str, declared: list[str], settings: tuple[str, ...]) -> str | None:
    """The setting an undeclared key of a short-form case reads as: the one it is or is close to
    (difflib's rule, as ``suggest``), unless a declared parameter is at least as close, which makes it a
    misspelt parameter. None when ``settings`` is empty (the key sits under ``parameters:``)."""
    close = difflib.get_close_matches(name, settings, n=1)
    if not close:
        return None
    rival = difflib.get_close_matches(name, declared, n=1)
    if rival and _likeness(name, rival[0]) >= _likeness(name, close[0]):
        return None
    return close[0]


def _likeness(name: str, other: str) -> float:
    return difflib.SequenceMatcher(None, other, name).ratio()  # as get_close_matches measures it


def unknown_key_hint(key: str, nb: NotebookInfo, settings: tuple[str, ...]) -> str:
    """The hint for a key of a long-form case that is not one of its ``settings``."""
    if nb.parameters_parsed and nb.declared(key) is not None:
        return f"{key!r} is a parameter: move it under the case's `parameters:`"
    return (
        f"{suggest(key, settings)}a case with `parameters:` takes only {', '.join(settings)}; "
        "move parameters under its `parameters:`"
    )


def _cell(nb: NotebookInfo) -> str:
    """Where parameters are declared, for a message: ``the parameters cell (cell 2) of nb.ipynb``."""
    if nb.parameters_cell is None:
        return f"{nb.path.name} (it has no cell tagged `parameters`)"
    return f"the parameters cell (cell {nb.parameters_cell}) of {nb.path.name}"


def _undeclared(name: str, path: tuple[str, ...], owner: Owner, nb: NotebookInfo, where: Locator) -> FixtureError:
    names = [p.name for p in nb.parameters]
    setting = meant_setting(name, names, owner.settings)
    if setting is not None:
        return _setting_error(name, setting, path, owner, nb, where)
    listing = ", ".join(names) if names else "none"
    return where.fail(
        path,
        f"{owner.name}: parameter {name!r} is not declared in {_cell(nb)}; declared: {listing}",
        f"{suggest(name, names)}add it to the parameters cell, or set `strict: false` "
        "in the fixture to pass undeclared parameters",
    )


def _setting_error(
    name: str, setting: str, path: tuple[str, ...], owner: Owner, nb: NotebookInfo, where: Locator
) -> FixtureError:
    """A short-form case's key that is, or is a misspelling of, a case setting: never `strict: false`."""
    long_form = f"`{owner.case_id}: {{parameters: {{...}}, {setting}: ...}}`"
    declare = f"if {name!r} is a parameter, add it to the parameters cell"
    if nb.parameters_cell is None:
        declare = f"if {name!r} is a parameter, tag the cell of {nb.path.name} that assigns it `parameters`"
    if setting == name:  # `skip: later` beside parameters: a parameter called skip, or the setting?
        names = ", ".join(p.name for p in nb.parameters) or "none"
        listing = f"; declared: {names}" if nb.parameters_cell is not None else ""
        return where.fail(
            path,
            f"{owner.name}: parameter {name!r} is not declared in {_cell(nb)}{listing}",
            f"`{name}` is a case setting only in the long form, its parameters under `parameters:`: "
            f"{long_form}; {declare}",
        )
    if setting == "parameters":
        others = ", ".join(key for key in owner.settings if key != setting)
        hint = f"a case's parameters go under its `parameters:`, beside its settings ({others})"
    else:
        hint = f"a case's settings need the long form, its parameters under `parameters:`: {long_form}; {declare}"
    return where.fail(
        path,
        f"{owner.name}: unknown key {name!r}: neither a case setting nor a parameter declared in {_cell(nb)}",
        f"did you mean {setting!r}? {hint}",
    )


def _contradicts(
    name: str,
    value: Any,
    problem: str,
    declared: DeclaredParameter,
    path: tuple[str, ...],
    owner: Owner,
    nb: NotebookInfo,
    where: Locator,
) -> FixtureError:
    """A value of a kind its default in the notebook rules out, reported at the value's line."""
    text = where.text(*path)
    unused = owner.unused(name)  # then `strict: false` would pass a value no case runs with: say so instead
    if text is not None and where.plain(*path) and declared.type_name == "str":
        hint = (
            f'quote it if you meant the text: {name}: "{text}" (YAML 1.1 reads unquoted '
            "2017_01_01 as a number and yes/no/on/off as booleans); or "
        )
        hint += _UNUSED if unused else "set `strict: false`"
    else:
        hint = f"give it a value of that kind, change the default in {nb.path.name}, or "
        hint += _UNUSED if unused else "set `strict: false` to pass it as written"
    return where.fail(
        path,
        f"{owner.name}: parameter {name!r} is {kind(value)} here, but its default in "
        f"{nb.path.name} (cell {nb.parameters_cell}, line {declared.line}) is {problem}{owner.usage(name)}",
        hint,
        at_value=True,
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
    article = "an" if declared == "int" else "a"
    if isinstance(value, bool) and declared != "bool":
        return f"{article} {declared}"
    if isinstance(value, expected):
        return ""
    if declared == "int" and isinstance(value, float):
        return ""  # 1 -> 1.5 is a plausible change of mind, not a YAML accident
    return f"{article} {declared}"
