"""papermill's whole-notebook saves while a case runs: how their cost grows with the cells.

    python bench/saves.py                      # 25, 50 and 100 cells, 100 kB of output each
    python bench/saves.py --cells 100 --kb 100 --runs 3

Each size runs twice per round, alternating: with this plugin's engine as it is, and with
papermill's own saves restored (every cell's start and end, markdown cells included, each one
a full copy, validation and serialization).

papermill writes the whole output notebook at every cell's start and end (and validates it
against the nbformat schema each time), so a notebook of N cells with large outputs writes
about N^2 cells' worth of JSON. This runs notebooks through ``papermill.execute_notebook`` with
this plugin's engine (the one cases run with), counts the saves and times them (wall, inside
``write_ipynb``) against the whole run. Each cell prints ``--kb`` kB and shows an image of the
same size, so half the output is text and half is base64 data, as in a real report.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

# TID251: this harness times papermill itself, from outside the plugin.
import papermill  # noqa: TID251
import papermill.engines as engines  # noqa: TID251

import pytest_notebooks.run.engine as ours
from pytest_notebooks.redact import Redactor


def make_notebook(path: Path, cells: int, kb: int) -> None:
    """A notebook of ``cells`` code cells, each printing ``kb`` kB and displaying a ``kb`` kB PNG."""

    def code(source: str, index: int) -> dict[str, Any]:
        return {
            "cell_type": "code",
            "id": f"c{index}",
            "metadata": {},
            "execution_count": None,
            "outputs": [],
            "source": source,
        }

    setup = (
        "import base64, os\n"
        "from IPython.display import Image, display\n"
        f"blob = os.urandom({kb * 1000 * 3 // 8})\n"  # base64 of it is kb/2 kB
        "png = b'\\x89PNG\\r\\n\\x1a\\n' + blob"
    )
    work = f"print('x' * {kb * 1000 // 2})\ndisplay(Image(data=png, format='png'))"
    nb = {
        "nbformat": 4,
        "nbformat_minor": 5,
        "metadata": {
            "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
            "language_info": {"name": "python"},
        },
        "cells": [code(setup, 0), *(code(work, i) for i in range(1, cells + 1))],
    }
    path.write_text(json.dumps(nb))


def run(path: Path, out: Path, papermills: bool) -> tuple[float, float, int]:
    """(whole run s, s spent saving, saves) of one execution with this plugin's engine;
    ``papermills``: with papermill's own saves."""
    spent = [0.0, 0]
    manager = ours.GuardedManager
    ours_points = manager.cell_start, manager.cell_complete, manager.save
    base = engines.NotebookExecutionManager

    def papermills_save(self: Any, **kwargs: Any) -> None:
        self.guard.flush()
        base.save(self, **kwargs)

    chosen = papermills_save if papermills else ours_points[2]

    def timed(self: Any, **kwargs: Any) -> None:
        if getattr(self, "skip_save", False):
            return
        start = time.perf_counter()
        try:
            chosen(self, **kwargs)
        finally:
            spent[0] += time.perf_counter() - start
            spent[1] += 1

    if papermills:
        manager.cell_start = base.cell_start  # type: ignore[method-assign]
        manager.cell_complete = base.cell_complete  # type: ignore[method-assign]
    manager.save = timed  # type: ignore[method-assign]
    try:
        start = time.perf_counter()
        papermill.execute_notebook(
            str(path),
            str(out),
            kernel_name="python3",
            progress_bar=False,
            engine_name=ours.ENGINE_NAME,
            guard=ours.Guard(None, None, Redactor()),
        )
        return time.perf_counter() - start, spent[0], int(spent[1])
    finally:
        manager.cell_start, manager.cell_complete, manager.save = ours_points  # type: ignore[method-assign]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cells", type=int, action="append", help="code cells (repeatable; default 25 50 100)")
    parser.add_argument("--kb", type=int, default=100, help="kB of output per cell (default 100)")
    parser.add_argument("--runs", type=int, default=3, help="runs per size (default 3); the median is shown")
    args = parser.parse_args()
    sizes = args.cells or [25, 50, 100]
    print(
        f"{'cells':>5} {'saves':>9} {'whole run s':>11} {'in saves s':>10} {'share':>6} "
        f"{'s per save':>10} {'ours/papermill':>14}"
    )
    with tempfile.TemporaryDirectory(prefix="pytest-notebooks-saves-") as tmp:
        for cells in sizes:
            source, out = Path(tmp, f"nb{cells}.ipynb"), Path(tmp, f"out{cells}.ipynb")
            make_notebook(source, cells, args.kb)
            samples: dict[bool, list[tuple[float, float, int]]] = {True: [], False: []}
            for round_ in range(args.runs):
                for papermills in (False, True) if round_ % 2 == 0 else (True, False):
                    samples[papermills].append(run(source, out, papermills))
            ratios = [a[0] / b[0] for a, b in zip(samples[False], samples[True], strict=True)]
            for papermills, label in ((True, "papermill"), (False, "ours")):
                results = samples[papermills]
                whole = statistics.median(r[0] for r in results)
                saving = statistics.median(r[1] for r in results)
                saves = results[0][2]
                shown = f"{statistics.median(ratios):.3f}" if not papermills else ""
                print(
                    f"{cells:5d} {saves:4d} {label[:4]} {whole:11.2f} {saving:10.2f} {saving / whole:6.1%} "
                    f"{saving / saves:10.4f} {shown:>14}",
                    flush=True,
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())
