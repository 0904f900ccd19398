"""Two normalised notebooks -> NotebookDiff. The only module that imports nbdime (and the
nbformat node type nbdime needs).

nbdime aligns the cells (far better than a line diff of the JSON); the per-cell text diffs are
difflib, so the result is deterministic and needs no git or diff subprocess. nbdime's process-global
ignore switches are never touched: the diff uses a private copy of its notebook configuration.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Any

from pytest_notebooks.models import CellChange
from pytest_notebooks.review.normalize import output_lines


@dataclass(frozen=True)
class NotebookDiff:
    """The cell-level changes from a base notebook to a head notebook."""

    changes: tuple[CellChange, ...]

    def __bool__(self) -> bool:
        return bool(self.changes)

    def lines(self, indent: str = "    ") -> list[str]:
        out: list[str] = []
        for change in self.changes:
            out += change.lines(indent)
        return out


def diff_notebooks(
    base: dict[str, Any], head: dict[str, Any], *, sources: bool = True, outputs: bool = True
) -> NotebookDiff:
    """Align the cells of two normalised notebooks with nbdime and describe what changed."""
    from nbdime.diffing.config import DiffConfig
    from nbdime.diffing.generic import diff
    from nbdime.diffing.notebooks import notebook_differs, notebook_predicates
    from nbformat import from_dict  # nbdime reads cells as NotebookNodes (attribute access)

    config = DiffConfig(
        predicates=notebook_predicates.copy(),
        differs=notebook_differs.copy(),
        atomic_paths={"/cells/*/id": True},
    )
    entries = diff(from_dict({"cells": base["cells"]}), from_dict({"cells": head["cells"]}), path="", config=config)
    base_cells, head_cells = base["cells"], head["cells"]
    changes: list[CellChange] = []
    for entry in entries:
        if entry["key"] != "cells":
            continue
        offset = 0  # head index = base index + offset
        for op in entry["diff"]:
            key = op["key"]
            if op["op"] == "addrange":
                for i in range(len(op["valuelist"])):
                    cell = head_cells[key + offset + i]
                    changes += _whole(cell, "added", None, key + offset + i + 1, sources, outputs)
                offset += len(op["valuelist"])
            elif op["op"] == "removerange":
                for i in range(op["length"]):
                    cell = base_cells[key + i]
                    changes += _whole(cell, "removed", key + i + 1, None, sources, outputs)
                offset -= op["length"]
            elif op["op"] == "patch":
                change = _modified(
                    base_cells[key], head_cells[key + offset], key + 1, key + offset + 1, sources, outputs
                )
                if change is not None:
                    changes.append(change)
    return NotebookDiff(tuple(changes))


def _unified(before: list[str], after: list[str]) -> tuple[str, ...]:
    lines = difflib.unified_diff(before, after, lineterm="", n=2)
    return tuple(line for line in lines if not line.startswith(("---", "+++")))


def _modified(
    base: dict[str, Any], head: dict[str, Any], base_number: int, head_number: int, sources: bool, outputs: bool
) -> CellChange | None:
    source_diff = _unified(base["source"].splitlines(), head["source"].splitlines()) if sources else ()
    output_diff = _unified(output_lines(base), output_lines(head)) if outputs else ()
    if not source_diff and not output_diff:
        return None  # only what this comparison ignores changed
    return CellChange("modified", head["cell_type"], base_number, head_number, source_diff, output_diff)


def _whole(
    cell: dict[str, Any], kind: str, base_number: int | None, head_number: int | None, sources: bool, outputs: bool
) -> list[CellChange]:
    """An added or removed cell; none when it has nothing this comparison looks at."""
    sign = "+" if kind == "added" else "-"
    source = tuple(f"{sign}{line}" for line in cell["source"].splitlines()) if sources else ()
    output = tuple(f"{sign}{line}" for line in output_lines(cell)) if outputs else ()
    if not sources and not output:
        return []  # an output comparison: a new cell without outputs changes no output
    return [CellChange(kind, cell["cell_type"], base_number, head_number, source, output)]
