"""One cell numbering everywhere (issue 24): the failure report, the summary line, --notebooks-log-output
and the results file all say ``cell N`` for the template's N-th cell (1-based, markdown included,
papermill's injected parameters cell not counted) and ``In [n]`` for its execution count in the saved
copy, the prompt Jupyter shows beside it and the ``Cell In[n]`` of IPython's traceback.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pytest_notebooks.cases.notebook import INJECTED_TAG
from pytest_notebooks.redact import Redactor
from pytest_notebooks.run.watch import Progress
from tests.notebooks import PARAMS, Cell, write_notebook

# Two markdown cells, so that the template's cell number (5), the execution count (4: the parameters
# cell, the injected one, `x = 1`, then this) and the executed copy's index (6) all differ.
CELLS: list[Cell] = ["md:# Plays", PARAMS, "md:## Step", "x = 1", "raise ValueError('boom')"]


@pytest.mark.kernel
def test_the_log_the_report_and_the_results_file_number_a_cell_alike(pytester: pytest.Pytester) -> None:
    write_notebook(pytester.path / "nb.ipynb", CELLS)
    (pytester.path / "nb.yaml").write_text("cases:\n  fr: {region_code: fr}\n")
    result = pytester.runpytest_subprocess("-p", "no:xdist", "-s", "--notebooks-log-output")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*[[]nb.ipynb::fr] cell 2/5 started",  # after pytest's "nb.ipynb ", on the same line
            "[[]nb.ipynb::fr] injected parameters cell (papermill's, not in the template) started",
            "[[]nb.ipynb::fr] cell 4/5 started",
            "[[]nb.ipynb::fr] cell 5/5 started",
            "ValueError: boom",
            "*_ [[]notebook] nb.ipynb::fr _*",
            "nb.ipynb::fr failed at cell 5 (In [4]), id cell-5: ValueError: boom",
            "*",
            "Cell In[4], line 1",
            "*",
            "FAILED nb.ipynb::fr - cell 5 (In [4]): ValueError: boom",
        ]
    )
    failure = json.loads((pytester.path / "notebook-outputs" / "results.json").read_text())["cases"][0]["failure"]
    assert (failure["cell"], failure["execution_count"]) == (5, 4)
    assert failure["summary"] == "cell 5 (In [4]): ValueError: boom"
    saved = json.loads((pytester.path / "notebook-outputs" / "nb" / "fr.ipynb").read_text())
    (prompted,) = [c for c in saved["cells"] if c.get("execution_count") == 4]
    assert "".join(prompted["source"]) == "raise ValueError('boom')"


def test_the_log_numbers_cells_as_the_template_does(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Without a kernel: papermill's callbacks, as the executed copy's cells start (index 2 is injected)."""
    template = write_notebook(tmp_path / "nb.ipynb", CELLS).read_bytes()
    progress = Progress("nb.ipynb::fr", template, Redactor())
    cells = json.loads(template)["cells"]
    injected = {"cell_type": "code", "metadata": {"tags": [INJECTED_TAG]}, "source": "region_code = 'fr'"}
    for index, cell in enumerate([*cells[:2], injected, *cells[2:]]):
        progress.started(cell, index)
    assert capsys.readouterr().out.splitlines() == [
        "[nb.ipynb::fr] cell 2/5 started",
        "[nb.ipynb::fr] injected parameters cell (papermill's, not in the template) started",
        "[nb.ipynb::fr] cell 4/5 started",
        "[nb.ipynb::fr] cell 5/5 started",
    ]


def test_a_template_that_holds_an_injected_cell_keeps_its_numbers(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A saved papermill output used as a template: papermill replaces its injected cell in place, so that
    cell keeps its template number, as in a failure report."""
    cells: list[Cell] = [PARAMS, ("region_code = 'old'", [INJECTED_TAG]), "x = 1"]
    template = write_notebook(tmp_path / "nb.ipynb", cells).read_bytes()
    progress = Progress("nb.ipynb::fr", template, Redactor())
    for index, cell in enumerate(json.loads(template)["cells"]):
        progress.started(cell, index)
    assert capsys.readouterr().out.splitlines() == [
        "[nb.ipynb::fr] cell 1/3 started",
        "[nb.ipynb::fr] cell 2/3 started",
        "[nb.ipynb::fr] cell 3/3 started",
    ]
