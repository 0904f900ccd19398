"""The pytest tools people already run, with those plugins installed: junitxml, pytest-html, pytest-timeout."""

from __future__ import annotations

import html
import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from pytest_notebooks.models import CellFailure, FailureKind
from tests.notebooks import PARAMS, TWO_REGIONS, write_notebook

FAILING = [
    "md:# Aggregation",
    PARAMS,
    "counts = {'luna': 3}",
    "total = counts[region_code]\nprint(total)",
]
SLEEPY = [PARAMS, "x = 1", "import time\nfor _ in range(600):\n    time.sleep(0.1)", "y = 2"]
MARKED = "SECRET-MARKER-param-31ab"  # a fake credential, searched for in junit


def failing_project(pytester: pytest.Pytester) -> Path:
    notebook = write_notebook(pytester.path / "notebooks" / "vid_agg.ipynb", FAILING)
    notebook.with_suffix(".yaml").write_text(TWO_REGIONS)
    return notebook


def properties(xml: Path) -> dict[str, dict[str, str]]:
    """Each testcase's properties, by test name."""
    out = {}
    for case in ET.parse(xml).getroot().iter("testcase"):  # noqa: S314 - written by the test's own pytest
        out[case.get("name", "")] = {p.get("name", ""): p.get("value", "") for p in case.iter("property")}
    return out


@pytest.mark.kernel
@pytest.mark.parametrize("workers", [["-p", "no:xdist"], ["-n", "2"]], ids=["serial", "xdist"])
def test_junit_properties_name_the_output_the_parameters_and_the_failing_cell(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, workers: list[str]
) -> None:
    monkeypatch.setenv("MY_TOKEN", MARKED)
    failing_project(pytester)
    fixture = TWO_REGIONS.replace('run_date: "2017-01-01"', f'run_date: "{MARKED}"')
    (pytester.path / "notebooks" / "vid_agg.yaml").write_text(fixture)
    result = pytester.runpytest_subprocess(*workers, "--junitxml=junit.xml")
    result.assert_outcomes(passed=1, failed=1)
    found = properties(pytester.path / "junit.xml")
    assert found["fr"] == {
        "notebook_output": "notebook-outputs/notebooks/vid_agg/fr.ipynb",
        "notebook_parameters": json.dumps({"run_date": "***", "region_code": "fr"}),
        "notebook_failure_cell": "4",
        "notebook_failure": "cell 4 (In [4]): KeyError: 'fr'",
    }
    assert found["luna"] == {
        "notebook_output": "notebook-outputs/notebooks/vid_agg/luna.ipynb",
        "notebook_parameters": json.dumps({"run_date": "***", "region_code": "luna"}),
    }
    assert MARKED not in (pytester.path / "junit.xml").read_text()


def html_rows(path: Path) -> dict[str, list[dict[str, Any]]]:
    """pytest-html 4 keeps its rows in a JSON blob, an attribute of the report: each test's rows."""
    blob = re.search(r'data-jsonblob="([^"]*)"', path.read_text())
    assert blob is not None
    tests: dict[str, list[dict[str, Any]]] = json.loads(html.unescape(blob.group(1)))["tests"]
    return tests


@pytest.mark.kernel
@pytest.mark.parametrize("workers", [["-p", "no:xdist"], ["-n", "2"]], ids=["serial", "xdist"])
def test_pytest_html_links_the_executed_notebook_and_shows_the_failing_cell(
    pytester: pytest.Pytester, workers: list[str]
) -> None:
    failing_project(pytester)
    result = pytester.runpytest_subprocess(*workers, "--html=reports/index.html")
    result.assert_outcomes(passed=1, failed=1)
    report = pytester.path / "reports" / "index.html"
    assert "Failing cell</th>" in report.read_text()
    rows = html_rows(report)
    for case in ("luna", "fr"):
        (row,) = rows[f"notebooks/vid_agg.ipynb::{case}"]
        links = {extra["name"]: extra["content"] for extra in row["extras"]}
        assert links["executed notebook"] == f"../notebook-outputs/notebooks/vid_agg/{case}.ipynb"
        assert (report.parent / links["executed notebook"]).is_file()  # opens from the report's folder
        cells = row["resultsTableRow"]
        assert len(cells) == 5
        shown = "cell 4 (In [4]): KeyError: &#x27;fr&#x27;" if case == "fr" else ""
        assert cells[2] == f'<td class="col-failing-cell">{shown}</td>'
    (fr,) = rows["notebooks/vid_agg.ipynb::fr"]
    cell = {extra["name"]: extra["content"] for extra in fr["extras"]}["failing cell"]
    text = (report.parent / cell).read_text()
    assert text.startswith("cell 4 (In [4]): KeyError: 'fr'\n\n--> 1 | total = counts[region_code]\n")
    assert text.splitlines()[-1] == "KeyError: 'fr'"


@pytest.mark.kernel
def test_without_pytest_html_the_plugin_runs_as_before(pytester: pytest.Pytester) -> None:
    failing_project(pytester)
    result = pytester.runpytest_subprocess("-p", "no:xdist", "-p", "no:html", "-p", "no:timeout", "-k", "luna")
    result.assert_outcomes(passed=1, deselected=1)


def test_the_failing_cell_text_is_its_summary_source_and_traceback() -> None:
    from pytest_notebooks.interop import failure_text

    failure = CellFailure(
        FailureKind.ERROR,
        cell_number=4,
        exec_count=3,
        source="a = 1\nb = a['x']",
        line=2,
        ename="TypeError",
        evalue="no",
        traceback=("\x1b[31mTypeError\x1b[0m: no",),
    )
    assert failure_text(failure).splitlines() == [
        "cell 4 (In [3]): TypeError: no",
        "",
        "    1 | a = 1",
        "--> 2 | b = a['x']",
        "",
        "TypeError: no",
    ]


def sleepy_project(pytester: pytest.Pytester) -> None:
    notebook = write_notebook(pytester.path / "jobs" / "slow.ipynb", SLEEPY)
    notebook.with_suffix(".yaml").write_text("cases:\n  luna: {region_code: luna}\n  fr: {region_code: fr}\n")


def results(pytester: pytest.Pytester) -> dict[str, object]:
    data: dict[str, object] = json.loads((pytester.path / "notebook-outputs" / "results.json").read_text())
    return data


@pytest.mark.kernel
def test_pytest_timeout_signal_method_records_the_running_cell(pytester: pytest.Pytester) -> None:
    sleepy_project(pytester)
    result = pytester.runpytest_subprocess("-p", "no:xdist", "--timeout=8", "--timeout-method=signal", "-k", "luna")
    result.assert_outcomes(failed=1, deselected=1)
    result.stdout.fnmatch_lines(["*Failed: Timeout (>8.0s) from pytest-timeout.*"])
    (case,) = [c for c in results(pytester)["cases"] if c["case"] == "luna"]  # type: ignore[attr-defined]
    assert case["outcome"] == "failed"
    assert case["failure"]["cell"] == 3
    assert case["failure"]["kind"] == "interrupted"
    assert case["failure"]["ename"] == "Failed"
    assert case["failure"]["summary"] == (
        "cell 3 (In [4]): interrupted while this cell was running (Failed: Timeout (>8.0s) from pytest-timeout.)"
    )
    saved = json.loads((pytester.path / "notebook-outputs" / "jobs" / "slow" / "luna.ipynb").read_text())
    assert saved["metadata"]["pytest_notebooks"]["failure"]["cell"] == 3


@pytest.mark.kernel
def test_pytest_timeout_thread_method_writes_the_results_file_first(pytester: pytest.Pytester) -> None:
    sleepy_project(pytester)
    result = pytester.runpytest_subprocess("-p", "no:xdist", "--timeout=8", "--timeout-method=thread")
    assert result.ret == 1  # pytest-timeout ended the process (os._exit)
    result.stdout.fnmatch_lines(
        [
            "notebooks: jobs/slow.ipynb::luna timed out at cell 3: recorded in "
            "notebook-outputs/results.json (session interrupted)",
            "*+ Timeout +*",
        ]
    )
    document = results(pytester)
    assert document["session"]["state"] == "interrupted"  # type: ignore[index]
    cases = {c["case"]: c for c in document["cases"]}  # type: ignore[attr-defined]
    assert cases["luna"]["outcome"] == "failed"
    assert cases["luna"]["failure"]["cell"] == 3
    assert cases["luna"]["failure"]["ename"] == "Timeout"
    assert cases["luna"]["failure"]["summary"] == (
        "cell 3: interrupted while this cell was running (Timeout: pytest-timeout (thread method) ended pytest "
        "after 8 s)"
    )
    assert cases["fr"]["outcome"] == "not run"


STUCK = [PARAMS, "import time\nwhile region_code == 'luna':\n    time.sleep(0.1)", "y = 2"]  # luna never ends


@pytest.mark.kernel
def test_pytest_timeout_thread_method_under_xdist_records_the_cell_its_worker_was_running(
    pytester: pytest.Pytester,
) -> None:
    notebook = write_notebook(pytester.path / "jobs" / "stuck.ipynb", STUCK)
    cases = "cases:\n  luna: {region_code: luna}\n  fr: {region_code: fr}\n  de: {region_code: de}\n"
    notebook.with_suffix(".yaml").write_text(cases)
    result = pytester.runpytest_subprocess("-n", "2", "-p", "timeout", "--timeout=10", "--timeout-method=thread")
    assert result.ret == 1  # tests failed (the crash), not pytest-timeout's exit: that was the worker's
    said = "pytest-timeout (thread method) ended it after 10 s at cell 2"  # no In [n]: the cell never finished
    result.stdout.fnmatch_lines(
        [
            "*= warnings summary =*",
            "jobs/stuck.ipynb::luna",
            f"  jobs/stuck.ipynb:0: CaseTimedOut: {said}",
            f"FAILED jobs/stuck.ipynb::luna - worker 'gw*' crashed while running 'jobs/stuck.ipynb::luna': {said}",
            "*= 1 failed, 2 passed, 1 warning in *",
        ]
    )
    document = results(pytester)
    assert document["session"]["state"] == "worker-crashed"  # type: ignore[index]
    records = {c["case"]: c for c in document["cases"]}  # type: ignore[attr-defined]
    assert records["luna"]["outcome"] == "crashed"  # its worker did die
    failure = records["luna"]["failure"]
    assert (failure["kind"], failure["cell"], failure["ename"]) == ("interrupted", 2, "Timeout")
    (attempt,) = records["luna"]["attempts"]
    ended = f"pytest-timeout (thread method) ended xdist worker {attempt['worker']} after 10 s"
    assert failure["summary"] == f"cell 2: Timeout: {ended}"
    assert attempt["failure"] == {"kind": "interrupted", "summary": failure["summary"]}
    assert [(records[c]["outcome"], records[c]["failure"]) for c in ("fr", "de")] == [("passed", None)] * 2
    saved = json.loads((pytester.path / "notebook-outputs" / "jobs" / "stuck" / "luna.ipynb").read_text())
    running = [c for c in saved["cells"] if c["metadata"].get("papermill", {}).get("status") == "running"]
    assert [c["source"] for c in running] == [STUCK[1]]  # the executed notebook, saved as the cell started
