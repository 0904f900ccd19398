"""Build small real notebooks for the tests."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

Cell = str | tuple[str, Sequence[str]]  # source, or (source, tags); "md:" prefix for markdown


def write_notebook(path: Path, cells: Sequence[Cell], kernel: str = "python3") -> Path:
    """Write a notebook at ``path`` with ``cells``: a source, or (source, tags)."""
    nb = new_notebook()
    nb.metadata["kernelspec"] = {"name": kernel, "display_name": kernel, "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    for index, spec in enumerate(cells):
        source, tags = (spec, ()) if isinstance(spec, str) else spec
        cell = new_markdown_cell(source[3:]) if source.startswith("md:") else new_code_cell(source)
        cell.id = f"cell-{index + 1}"
        if tags:
            cell.metadata["tags"] = list(tags)
        nb.cells.append(cell)
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, str(path))
    return path


PARAMS: Cell = ('region_code = "luna"\nrun_date = "2017-01-01"', ["parameters"])

# A fixture with shared defaults and two cases, as in the README.
TWO_REGIONS = """\
parameters:
  run_date: "2017-01-01"
cases:
  luna:
    region_code: luna
  fr:
    region_code: fr
"""
