"""GitHub annotations: at the failing source line in the raw .ipynb, with a path GitHub can attach."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pytest_notebooks.results.record import ResultsDocument
from pytest_notebooks.review.github import cell_line, error_annotations
from tests.notebooks import PARAMS, write_notebook
from tests.records import results_document


def failing(notebook: str, cell: int | None, cell_id: str | None, line: int | None) -> ResultsDocument:
    failure = {"cell": cell, "cell_id": cell_id, "line": line, "summary": "cell 3 (In [2]): KeyError: 'fr'"}
    return results_document(cases=[{"notebook": notebook, "case": "fr", "outcome": "failed", "failure": failure}])


def test_the_annotation_points_at_the_failing_source_line(tmp_path: Path) -> None:
    path = write_notebook(tmp_path / "nb.ipynb", [PARAMS, "a = 1\nb = 2", "x = 1\ny = {}[region_code]\nz = 3"])
    lines = path.read_text().splitlines()
    wanted = lines.index('    "y = {}[region_code]\\n",') + 1
    assert cell_line(path.read_text(), 3, "cell-3", 2) == wanted
    assert cell_line(path.read_text(), 3, None, 2) == wanted  # by position when the id is unknown
    assert cell_line(path.read_text(), 3, "cell-3", 3) == wanted + 1
    assert cell_line(path.read_text(), 3, "cell-3", None) == lines.index('   "id": "cell-3",') + 1  # no line: the cell
    assert cell_line(path.read_text(), 3, "cell-3", 99) == wanted + 1  # past the end: its last line
    assert cell_line("not json", 3, "cell-3", 2) == 1


def test_a_source_kept_as_one_string_and_a_compact_file(tmp_path: Path) -> None:
    cells = [
        {"cell_type": "code", "id": "a", "metadata": {}, "outputs": [], "source": "x = 1\ny = 2"},
        {"cell_type": "code", "metadata": {}, "outputs": [], "source": ["p = 1\n", "q = 2\n", "r = 3"]},
    ]
    compact = json.dumps({"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 4})
    assert cell_line(compact, 1, "a", 2) == 1
    spread = json.dumps({"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 4}, indent=2)
    assert spread.splitlines()[cell_line(spread, 1, "a", 2) - 1].strip() == '"source": "x = 1\\ny = 2"'
    assert spread.splitlines()[cell_line(spread, 2, None, 3) - 1].strip() == '"r = 3"'


def test_the_path_is_relative_to_the_workspace_when_pytest_runs_below_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    workspace = tmp_path / "checkout"
    rootdir = workspace / "example_repo"  # the shipped gate runs pytest in a subdirectory
    path = write_notebook(rootdir / "notebooks" / "nb.ipynb", [PARAMS, "x = 1", "y = {}[region_code]"])
    line = path.read_text().splitlines().index('    "y = {}[region_code]"') + 1
    results = failing("notebooks/nb.ipynb", 3, "cell-3", 1)
    monkeypatch.setenv("GITHUB_WORKSPACE", str(workspace))
    assert error_annotations(results, rootdir) == [
        f"::error file=example_repo/notebooks/nb.ipynb,line={line},title=notebooks/nb.ipynb%3A%3Afr failed"
        "::cell 3 (In [2]): KeyError: 'fr'"
    ]
    monkeypatch.delenv("GITHUB_WORKSPACE")
    assert error_annotations(results, rootdir)[0].startswith(f"::error file=notebooks/nb.ipynb,line={line},")
    monkeypatch.setenv("GITHUB_WORKSPACE", str(tmp_path / "elsewhere"))  # not below it: as recorded
    assert error_annotations(results, rootdir)[0].startswith(f"::error file=notebooks/nb.ipynb,line={line},")


def test_unfinished_outcomes_are_annotated_too(tmp_path: Path) -> None:
    write_notebook(tmp_path / "nb.ipynb", [PARAMS])
    summary = "\x1b]8;;https://evil.example\x07crashed\x1b]8;;\x07 \x1b[1m!"
    results = results_document(
        cases=[{"notebook": "nb.ipynb", "case": "fr", "outcome": "crashed", "failure": {"summary": summary}}]
    )
    assert error_annotations(results, tmp_path) == [
        "::error file=nb.ipynb,line=1,title=nb.ipynb%3A%3Afr failed::crashed !"  # no escape reaches the log
    ]
