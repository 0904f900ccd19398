"""Read what collection needs from a notebook with the standard ``json`` module.

nbformat is not needed to find the ``parameters`` cell, and importing it costs seconds in some
environments (see issue 6), so collection never imports it.
"""

from __future__ import annotations

import ast
import hashlib
import json
import re
from pathlib import Path
from typing import Any

from pytest_notebooks.errors import FixtureError
from pytest_notebooks.models import DeclaredParameter, NotebookInfo

PARAMETERS_TAG = "parameters"
INJECTED_TAG = "injected-parameters"
ERROR_MARKER_TAG = "papermill-error-cell-tag"  # papermill removes cells with this tag on re-runs
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
_LITERAL_TYPES = (str, bool, int, float, list, dict, tuple)


def strip_ansi(text: str) -> str:
    """``text`` without terminal colour codes."""
    return _ANSI.sub("", text)


def cell_source(cell: dict[str, Any]) -> str:
    """A cell's source as one string (nbformat allows a list of lines on disk)."""
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else str(source)


def cell_tags(cell: dict[str, Any]) -> list[str]:
    """A cell's tags, or an empty list."""
    tags = cell.get("metadata", {}).get("tags", [])
    return [str(tag) for tag in tags] if isinstance(tags, list) else []


def read_notebook(path: Path, label: str | None = None) -> NotebookInfo:
    """Parse ``path`` and describe its kernel and declared parameters.

    Raises FixtureError (naming the file as ``label``) when the file is not a notebook at all.
    """
    data = path.read_bytes()
    try:
        nb = json.loads(data)
        cells = nb["cells"]
        metadata = nb.get("metadata", {})
    except (ValueError, KeyError, TypeError) as exc:
        raise FixtureError(
            label or str(path),
            f"is not a readable Jupyter notebook ({exc})",
            "open and save it in Jupyter, or check it with `jupyter nbconvert --to notebook`",
        ) from None
    kernelspec = metadata.get("kernelspec") or {}
    language = (metadata.get("language_info") or {}).get("name") or kernelspec.get("language")
    parameters_cell = None
    declared: tuple[DeclaredParameter, ...] = ()
    parsed = False
    for number, cell in enumerate(cells, start=1):
        if PARAMETERS_TAG in cell_tags(cell):
            parameters_cell = number
            if language in (None, "python"):
                parsed_parameters = parse_parameters(cell_source(cell))
                if parsed_parameters is not None:
                    declared, parsed = parsed_parameters, True
            break
    return NotebookInfo(
        path=path,
        sha256=hashlib.sha256(data).hexdigest(),
        kernel_name=kernelspec.get("name"),
        language=language,
        parameters_cell=parameters_cell,
        parameters=declared,
        parameters_parsed=parsed,
    )


def parse_parameters(source: str) -> tuple[DeclaredParameter, ...] | None:
    """The names assigned at top level of a Python parameters cell, with their literal types.

    Returns None when the cell does not parse (IPython magics, another language).
    """
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return None
    found: dict[str, DeclaredParameter] = {}
    for node in tree.body:
        targets: list[ast.expr]
        if isinstance(node, ast.Assign):
            targets, value = node.targets, node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            targets, value = [node.target], node.value
        else:
            continue
        for target in targets:
            if isinstance(target, ast.Name):
                found[target.id] = DeclaredParameter(target.id, _literal_type(value), node.lineno)
    return tuple(found.values())


def _literal_type(value: ast.expr) -> str | None:
    try:
        literal = ast.literal_eval(value)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return None
    if isinstance(literal, _LITERAL_TYPES):
        return "list" if isinstance(literal, tuple) else type(literal).__name__
    return None
