"""Output snapshots end to end: real runs with volatile outputs, update, match, mismatch, xdist."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from pytest_notebooks.results.read import load_results
from pytest_notebooks.review.html import render_html
from tests.notebooks import PARAMS, Cell, write_notebook

pytestmark = pytest.mark.kernel  # every test here runs notebooks in real kernels

VOLATILE: list[Cell] = [
    PARAMS,
    "import datetime\nprint('run at', datetime.datetime.now())",
    "print('object', object(), 'id', id(object()))",
    "print('region', region_code)",
    "from IPython.display import Markdown\nMarkdown(f'**{region_code}**')",
]
FIXTURE = """\
snapshot: true
snapshot_replace:
  '\\b\\d{12,}\\b': '<id>'
cases:
  luna: {region_code: luna}
  fr: {region_code: fr}
"""


def make(pytester: pytest.Pytester, cells: list[Cell] = VOLATILE) -> None:
    write_notebook(pytester.path / "notebooks" / "vid_agg.ipynb", cells)
    (pytester.path / "notebooks" / "vid_agg.yaml").write_text(FIXTURE)


@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["serial", "xdist"])
def test_missing_update_match_mismatch(pytester: pytest.Pytester, workers: list[str]) -> None:
    make(pytester)
    missing = pytester.runpytest_subprocess(*workers)
    missing.assert_outcomes(failed=2)
    missing.stdout.fnmatch_lines(
        [
            "notebooks/vid_agg.ipynb::fr failed: no snapshot at notebooks/__snapshots__/vid_agg/fr.ipynb",
            "",
            "run once with --notebooks-update-snapshots to write it from this run, then commit it",
        ]
    )

    written = pytester.runpytest_subprocess(*workers, "--notebooks-update-snapshots")
    written.assert_outcomes(passed=2)
    written.stdout.fnmatch_lines(
        [
            "notebooks: wrote 2 snapshots: notebooks/__snapshots__/vid_agg/fr.ipynb, "
            "notebooks/__snapshots__/vid_agg/luna.ipynb"
        ]
    )
    snapshot = json.loads((pytester.path / "notebooks" / "__snapshots__" / "vid_agg" / "fr.ipynb").read_text())
    assert snapshot["nbformat"] == 4
    printed = [c["outputs"][0]["text"] for c in snapshot["cells"][1:4]]
    assert printed == [
        "run at <timestamp>\n",
        "object <object object at 0x<address>> id <id>\n",
        "region fr\n",
    ]
    assert snapshot["cells"][4]["outputs"][0]["data"]["text/markdown"] == "**fr**"

    # a second run has new timestamps, addresses and ids, and still matches
    pytester.runpytest_subprocess(*workers).assert_outcomes(passed=2)
    again = pytester.runpytest_subprocess(*workers, "--notebooks-update-snapshots")
    again.assert_outcomes(passed=2)
    assert "wrote" not in again.stdout.str()

    # a real change in an output is reported, cell by cell
    changed = list(VOLATILE)
    changed[3] = "print('region', region_code.upper())"
    make(pytester, changed)
    mismatch = pytester.runpytest_subprocess(*workers)
    mismatch.assert_outcomes(failed=2)
    mismatch.stdout.fnmatch_lines(
        [
            "notebooks/vid_agg.ipynb::fr failed at cell 4: outputs differ from the snapshot "
            "notebooks/__snapshots__/vid_agg/fr.ipynb",
            "",
            "- snapshot, + this run (outputs normalised; see the docs: guides/snapshots-and-review):",
            "~ cell 4 (code)",
            "  outputs:",
            "    @@ -1 +1 @@",
            "    -[[]stdout] region fr",
            "    +[[]stdout] region FR",
            "",
            "if the change is intended: pytest --notebooks-update-snapshots, then commit the snapshot",
        ]
    )
    mismatch.stdout.fnmatch_lines(
        [
            "FAILED notebooks/vid_agg.ipynb::fr - cell 4: outputs differ from the snapshot "
            "notebooks/__snapshots__/vid_agg/fr.ipynb"
        ]
    )
    results = json.loads((pytester.path / "notebook-outputs" / "results.json").read_text())
    fr = next(c for c in results["cases"] if c["case"] == "fr")
    assert fr["snapshot"]["status"] == "mismatch"
    assert fr["snapshot"]["changes"][0]["output_diff"] == ["@@ -1 +1 @@", "-[stdout] region fr", "+[stdout] region FR"]
    # the failure recorded is the snapshot's (it was null: the passing run's result was stored first)
    assert fr["failure"]["kind"] == "snapshot-mismatch"
    assert (
        fr["failure"]["summary"] == "cell 4: outputs differ from the snapshot notebooks/__snapshots__/vid_agg/fr.ipynb"
    )
    review = subprocess.run(
        [sys.executable, "-m", "pytest_notebooks.review.cli", "--format", "text"],
        cwd=pytester.path,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "cell 4: outputs differ from the snapshot" in review
    page = render_html(load_results(pytester.path / "notebook-outputs" / "results.json"), pytester.path)
    assert "region fr" in page.split("this run")[0]  # the snapshot's box (it was always empty)
    assert "region FR" in page


def test_a_failing_case_writes_no_snapshot(pytester: pytest.Pytester) -> None:
    write_notebook(pytester.path / "nb.ipynb", ["raise ValueError('boom')"])
    (pytester.path / "nb.yaml").write_text("snapshot: true\n")
    pytester.runpytest("--notebooks-update-snapshots").assert_outcomes(failed=1)
    assert not (pytester.path / "__snapshots__").exists()


def test_snapshots_are_opt_in_per_case_or_by_flag(pytester: pytest.Pytester) -> None:
    write_notebook(pytester.path / "nb.ipynb", [PARAMS, "print(region_code)"])
    (pytester.path / "nb.yaml").write_text(
        "cases:\n  plain: {}\n  snap:\n    parameters: {region_code: snap}\n    snapshot: true\n"
    )
    result = pytester.runpytest()
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["FAILED nb.ipynb::snap - no snapshot at __snapshots__/nb/snap.ipynb"])
    result = pytester.runpytest("--notebooks-snapshots")
    result.assert_outcomes(failed=2)


def test_ini_replacements_and_bad_patterns(pytester: pytest.Pytester) -> None:
    write_notebook(pytester.path / "nb.ipynb", ["import random\nprint('draw', random.random())"])
    (pytester.path / "nb.yaml").write_text("snapshot: true\n")
    pytester.makeini("[pytest]\nnotebooks_snapshot_replace =\n    0\\.\\d+ => <random>\n")
    pytester.runpytest("--notebooks-update-snapshots").assert_outcomes(passed=1)
    pytester.runpytest().assert_outcomes(passed=1)
    snapshot = json.loads((pytester.path / "__snapshots__" / "nb" / "default.ipynb").read_text())
    assert snapshot["cells"][0]["outputs"][0]["text"] == "draw <random>\n"

    pytester.makeini("[pytest]\nnotebooks_snapshot_replace = ([ => x\n")
    result = pytester.runpytest()
    result.stderr.fnmatch_lines(["ERROR: notebooks_snapshot_replace: invalid regular expression '([[]': *"])
    (pytester.path / "nb.yaml").write_text("snapshot: true\nsnapshot_replace:\n  '([': x\n")
    pytester.makeini("[pytest]\n")
    result = pytester.runpytest()
    result.stdout.fnmatch_lines(["nb.yaml:3: `snapshot_replace`: invalid regular expression '([[]': *"])
