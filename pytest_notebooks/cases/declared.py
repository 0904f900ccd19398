"""A case's parameters against the notebook's ``parameters`` cell: declared, and of a plausible kind. Pure."""

from __future__ import annotations

from typing import Any

from pytest_notebooks.cases.yamlfile import Locator, kind, suggest
from pytest_notebooks.models import NotebookInfo

_TAG_HINT = (
    "tag the cell that holds the defaults with `parameters`: in JupyterLab select it, open the "
    'property inspector (gear icon) and add the tag; in the .ipynb JSON add "tags": ["parameters"] '
    "to that cell's metadata. Or set `strict: false` to let papermill inject them at the top"
)


def check_declared(
    values: dict[str, Any], path: tuple[str, ...], case_id: str, nb: NotebookInfo, where: Locator
) -> None:
    """Every parameter is declared in the notebook's parameters cell, of a kind its default allows."""
    if not values:
        return
    if nb.parameters_cell is None:
        raise where.fail(
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
            raise where.fail(
                (*path, name),
                f"case {case_id!r}: parameter {name!r} is not declared in the parameters cell "
                f"(cell {nb.parameters_cell}) of {nb.path.name}; declared: {listing}",
                f"{suggest(name, names)}add it to the parameters cell, or set `strict: false` "
                "in the fixture to pass undeclared parameters",
            )
        problem = _contradiction(declared.type_name, value)
        if problem:
            text = where.text(*path, name)
            if text is not None and where.plain(*path, name) and declared.type_name == "str":
                hint = (
                    f'quote it if you meant the text: {name}: "{text}" (YAML 1.1 reads unquoted '
                    "2017_01_01 as a number and yes/no/on/off as booleans); or set `strict: false`"
                )
            else:
                hint = (
                    f"give it a value of that kind, change the default in {nb.path.name}, or set "
                    "`strict: false` to pass it as written"
                )
            raise where.fail(
                (*path, name),
                f"case {case_id!r}: parameter {name!r} is {kind(value)} here, but its default in "
                f"{nb.path.name} (cell {nb.parameters_cell}, line {declared.line}) is {problem}",
                hint,
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
