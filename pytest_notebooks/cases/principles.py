"""The three principles of notebook templates, measured from the code cells' AST. Pure.

Low branching factor, library functions in libraries, short and simple: why, and what each measure
counts, is the README's "The three principles of notebook templates"; ``LIMITS`` holds the limits.
Every measure leaves out the injected-parameters cell and IPython magic / shell lines; a cell that
does not parse as Python counts for size only. Only Python notebooks are measured: R's ``x <- 5``
parses as the Python comparison ``x < -5`` and its ``if (x) {`` not at all, so the measures of an R,
Julia or Scala notebook would be made up; ``not_measured`` says why such a notebook is skipped.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from pytest_notebooks import pysource
from pytest_notebooks.cases.languages import notebook_language

INJECTED_TAG = "injected-parameters"

# name -> (default, what it bounds); a fixture's `principles:` and the ini override the defaults
LIMITS: dict[str, tuple[int, str]] = {
    "max_branches": (10, "decision points (if/elif, loops, except, match arms, comprehension ifs)"),
    "max_function_lines": (15, "lines of one function or class defined in a cell"),
    "max_functions": (3, "functions and classes defined in cells"),
    "max_code_cells": (25, "code cells"),
    "max_lines": (250, "non-blank code lines"),
}


@dataclass(frozen=True)
class Definition:
    """A function or class defined in a cell."""

    name: str
    kind: str  # "function" or "class"
    cell: int  # 1-based number in the template
    lines: int


@dataclass(frozen=True)
class Measures:
    """What a notebook's code looks like, by the principles' measures."""

    branches: int
    definitions: tuple[Definition, ...]
    code_cells: int
    lines: int
    outputs: int
    branchiest_cell: int | None  # the cell with the most decision points
    unparsed_cells: tuple[int, ...] = ()

    @property
    def paths(self) -> int:
        return self.branches + 1

    def to_json(self) -> dict[str, Any]:
        return {
            "branches": self.branches,
            "paths": self.paths,
            "definitions": [
                {"name": d.name, "kind": d.kind, "cell": d.cell, "lines": d.lines} for d in self.definitions
            ],
            "code_cells": self.code_cells,
            "lines": self.lines,
            "outputs": self.outputs,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Measures:
        """The measures as a results file keeps them (which cell is branchiest is not kept)."""
        return cls(
            branches=int(data["branches"]),
            definitions=tuple(
                Definition(str(d["name"]), str(d["kind"]), int(d["cell"]), int(d["lines"]))
                for d in data.get("definitions") or ()
            ),
            code_cells=int(data["code_cells"]),
            lines=int(data["lines"]),
            outputs=int(data.get("outputs") or 0),
            branchiest_cell=None,
        )


@dataclass(frozen=True)
class Violation:
    """A measure over its limit, with the principle's advice."""

    limit_name: str
    value: int
    limit: int
    cell: int | None
    message: str
    hint: str

    def to_json(self) -> dict[str, Any]:
        return {
            "limit": self.limit_name,
            "value": self.value,
            "max": self.limit,
            "cell": self.cell,
            "message": self.message,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Violation:
        """A violation as a results file keeps it (its hint is not kept)."""
        cell = data.get("cell")
        return cls(
            str(data["limit"]),
            int(data.get("value") or 0),
            int(data.get("max") or 0),
            None if cell is None else int(cell),
            str(data["message"]),
            "",
        )


def not_measured(notebook: Mapping[str, Any]) -> str | None:
    """Why the notebook (its JSON) is not measured: its language is not Python; None when it is."""
    language = notebook_language(notebook)
    if language is None or language.lower() == "python":
        return None
    return (
        f"the principles are measured in Python notebooks only; this notebook is in {language} "
        "(its language_info / kernelspec), whose code cannot be read as Python"
    )


def measure(cells: Iterable[Mapping[str, Any]]) -> Measures:
    """Measure a notebook from its cells as in the ``.ipynb`` JSON."""
    branches = code_cells = lines = outputs = 0
    definitions: list[Definition] = []
    unparsed: list[int] = []
    most, branchiest = 0, None
    for number, cell in enumerate(cells, start=1):
        if cell.get("cell_type") != "code":
            continue
        tags = (cell.get("metadata") or {}).get("tags") or []
        if INJECTED_TAG in tags:
            continue
        code_cells += 1
        outputs += len(cell.get("outputs") or [])
        source = _python(cell.get("source", ""))
        lines += sum(1 for line in source.splitlines() if line.strip())
        try:
            tree = pysource.parse(source)
        except pysource.UNPARSABLE:
            unparsed.append(number)
            continue
        count = 0
        for node in ast.walk(tree):
            count += _decisions(node)
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                end = node.end_lineno or node.lineno
                first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
                kind = "class" if isinstance(node, ast.ClassDef) else "function"
                definitions.append(Definition(node.name, kind, number, end - first + 1))
        branches += count
        if count > most:
            most, branchiest = count, number
    return Measures(branches, tuple(definitions), code_cells, lines, outputs, branchiest, tuple(unparsed))


def _decisions(node: ast.AST) -> int:
    if isinstance(node, (ast.If, ast.IfExp, ast.For, ast.AsyncFor, ast.While)):
        return 1
    if isinstance(node, ast.Try) or (hasattr(ast, "TryStar") and isinstance(node, ast.TryStar)):
        return len(node.handlers)  # type: ignore[attr-defined,unused-ignore]
    if isinstance(node, ast.comprehension):
        return len(node.ifs)
    if isinstance(node, ast.Match):
        return max(len(node.cases) - 1, 0)
    return 0


def _python(source: Any) -> str:
    """The cell's source without IPython magics and shell escapes (kept as blank lines)."""
    text = "".join(source) if isinstance(source, list) else str(source)
    if text.lstrip().startswith("%%"):
        return ""  # a cell magic: not Python
    return "\n".join("" if line.lstrip().startswith(("%", "!")) else line for line in text.splitlines())


def check(measures: Measures, limits: Mapping[str, int]) -> list[Violation]:
    """The limits ``measures`` exceed, each with a hint that follows the principle."""
    found: list[Violation] = []
    branch_limit = limits["max_branches"]
    if measures.branches > branch_limit:
        found.append(
            Violation(
                "max_branches",
                measures.branches,
                branch_limit,
                measures.branchiest_cell,
                f"{measures.branches} decision points ({measures.paths} paths) > max_branches {branch_limit}",
                "keep the notebook linear: move the branching into a library function with unit tests for each "
                "path, or split the notebook by the condition",
            )
        )
    line_limit = limits["max_function_lines"]
    for definition in measures.definitions:
        if definition.lines > line_limit:
            found.append(
                Violation(
                    "max_function_lines",
                    definition.lines,
                    line_limit,
                    definition.cell,
                    f"{definition.kind} `{definition.name}` is {definition.lines} lines > max_function_lines "
                    f"{line_limit}",
                    f"move `{definition.name}` ({definition.lines} lines, cell {definition.cell}) into the library "
                    "package beside the notebooks, with a unit test, and import it",
                )
            )
    count_limit = limits["max_functions"]
    if len(measures.definitions) > count_limit:
        names = ", ".join(f"`{d.name}` (cell {d.cell})" for d in measures.definitions)
        found.append(
            Violation(
                "max_functions",
                len(measures.definitions),
                count_limit,
                measures.definitions[count_limit].cell,
                f"{len(measures.definitions)} functions and classes defined in cells > max_functions {count_limit}",
                f"library functions belong in the library package beside the notebooks: move {names}",
            )
        )
    for name, value, advice in (
        ("max_code_cells", measures.code_cells, "code cells"),
        ("max_lines", measures.lines, "non-blank code lines"),
    ):
        if value > limits[name]:
            found.append(
                Violation(
                    name,
                    value,
                    limits[name],
                    None,
                    f"{value} {advice} > {name} {limits[name]}",
                    "short and simple is better: move the logic into the library and keep a few cells that "
                    "call it, or split the notebook into steps",
                )
            )
    return found


def parse_limits(pairs: Mapping[str, Any], where: str) -> dict[str, int]:
    """Validated limits from a mapping (fixture ``principles:`` or ini lines); raises ValueError."""
    limits = {}
    for name, value in pairs.items():
        if name not in LIMITS:
            known = ", ".join(LIMITS)
            raise ValueError(f"{where}: unknown principle limit {name!r}; known: {known}")
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"{where}: `{name}` must be a whole number >= 0, got {value!r}")
        limits[name] = value
    return limits


def defaults() -> dict[str, int]:
    return {name: default for name, (default, _) in LIMITS.items()}
