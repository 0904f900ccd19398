"""Benchmark corpora: notebooks with a ``parameters`` cell and a sibling fixture, written with ``json``.

Each notebook is valid nbformat 4.5 (kernelspec python3, deterministic cell ids): a markdown
title, a ``parameters``-tagged cell and K small work cells. Each work cell sums 1000 squares,
prints, builds a dict and ends in an expression, so it yields a stream and an execute_result
(the corpus of ``shared/research/baselines.md``). The fixture holds one case whose parameters
match the parameters cell. ``tiny=True`` writes one work cell of a single line instead, for the
5,000-notebook collection corpus. ``imports=("pandas", "numpy")`` adds a first work cell that
imports them and builds a small DataFrame, as real notebooks begin.

Run it alone to inspect a corpus: ``python bench/corpus.py DIR -n 3 -k 5``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

PARAMETERS = {"region_code": "us", "run_date": "2024-01-01"}  # the notebook's defaults
FIXTURE_PARAMETERS = {"region_code": "eu", "run_date": "2024-01-01"}  # what the one case injects

_WORK_CELL = """\
total = sum(i * i for i in range({seed}, {seed} + 1000))
print("cell {index}", region_code, run_date, total)
row = {{"cell": {index}, "region": region_code, "total": total}}
row"""


def _cell(cell_type: str, cell_id: str, source: str, tags: list[str] | None = None) -> dict[str, Any]:
    cell: dict[str, Any] = {
        "cell_type": cell_type,
        "id": cell_id,
        "metadata": {"tags": tags} if tags else {},
        "source": source.splitlines(keepends=True),
    }
    if cell_type == "code":
        cell.update(execution_count=None, outputs=[])
    return cell


_IMPORT_CELL = """\
import pandas as pd
import numpy as np
frame = pd.DataFrame({{"x": np.arange({seed}, {seed} + 100)}})
frame.x.sum()"""


def notebook(index: int, cells: int, tiny: bool = False, imports: tuple[str, ...] = ()) -> dict[str, Any]:
    """The JSON of notebook ``index`` with ``cells`` work cells (after an import cell: ``imports``)."""
    parameters = "\n".join(f"{name} = {value!r}" for name, value in PARAMETERS.items())
    body = [
        _cell("markdown", f"title-{index}", f"# Benchmark notebook {index}"),
        _cell("code", "parameters", parameters, tags=["parameters"]),
    ]
    if imports == ("pandas", "numpy"):
        body.append(_cell("code", "imports", _IMPORT_CELL.format(seed=index)))
    elif imports:
        body.append(_cell("code", "imports", "\n".join(f"import {name}" for name in imports)))
    for k in range(cells):
        source = f"x = {k}" if tiny else _WORK_CELL.format(seed=index * 7 + k, index=k)
        body.append(_cell("code", f"work-{k}", source))
    return {
        "cells": body,
        "metadata": {
            "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
            "language_info": {"name": "python"},
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }


def fixture_text() -> str:
    """The sibling YAML: one (default) case whose parameters match the parameters cell."""
    items = ", ".join(f"{name}: {json.dumps(value)}" for name, value in FIXTURE_PARAMETERS.items())
    return f"parameters: {{{items}}}\n"


def make_corpus(
    directory: Path, count: int, cells: int, tiny: bool = False, imports: tuple[str, ...] = ()
) -> list[Path]:
    """Write ``count`` notebooks (``nb_00000.ipynb`` ...) and their fixtures into ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    fixture = fixture_text()
    paths = []
    for index in range(count):
        path = directory / f"nb_{index:05d}.ipynb"
        path.write_text(json.dumps(notebook(index, cells, tiny, imports), indent=1) + "\n", encoding="utf-8")
        path.with_suffix(".yaml").write_text(fixture, encoding="utf-8")
        paths.append(path)
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("directory", type=Path)
    parser.add_argument("-n", "--count", type=int, default=40, help="notebooks (default 40)")
    parser.add_argument("-k", "--cells", type=int, default=5, help="work cells per notebook (default 5)")
    parser.add_argument("--tiny", action="store_true", help="one one-line work cell (collection corpus)")
    parser.add_argument("--imports", default="", help="modules a first work cell imports, e.g. pandas,numpy")
    args = parser.parse_args()
    imports = tuple(name for name in args.imports.split(",") if name)
    paths = make_corpus(args.directory, args.count, args.cells, args.tiny, imports)
    print(f"wrote {len(paths)} notebooks and fixtures into {args.directory}")


if __name__ == "__main__":
    main()
