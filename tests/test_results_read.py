"""Reading a results file: what a hand-edited file that is not standard JSON gets, from the reader and
from a command that reads it."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_notebooks.errors import ResultsError
from pytest_notebooks.exitcodes import ExitCode
from pytest_notebooks.results import cli
from pytest_notebooks.results.read import dumps, load_results
from tests.records import case_json, results_document

SHA = {"notebook_sha256": "0" * 64, "fixture_sha256": "1" * 64}


def results_file(path: Path) -> Path:
    """A valid results file: one case that passed in 1.5 s with ``rows: 2``, and a parameter ``"NaN"``."""
    case = {"case": "fr", "outcome": "passed", "duration": 1.5, "parameters": {"rows": 2, "note": "NaN"}, **SHA}
    path.write_text(dumps(results_document({"cases": [case_json(case)]})))
    return path


@pytest.mark.parametrize(
    ("before", "after"),
    [('"duration": 1.5', '"duration": NaN'), ('"rows": 2', '"rows": Infinity'), ('"rows": 2', '"rows": -Infinity')],
    ids=["nan", "infinity", "minus-infinity"],
)
def test_a_number_json_cannot_hold_is_refused_naming_the_file_and_token(
    tmp_path: Path, before: str, after: str
) -> None:
    path = results_file(tmp_path / "results.json")
    assert load_results(path).cases[0].parameters == {"rows": 2, "note": "NaN"}  # text "NaN" is a string
    path.write_text(path.read_text().replace(before, after))
    token = after.split(": ")[1]
    with pytest.raises(ResultsError) as raised:
        load_results(path)
    assert str(raised.value) == (
        f"{path}: not valid JSON ({token} is not a JSON number: a results file holds no NaN or infinity; "
        "was it edited by hand?)"
    )


def test_nbresults_refuses_a_nan_with_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = results_file(tmp_path / "shard-1.json")
    path.write_text(path.read_text().replace('"duration": 1.5', '"duration": NaN'))
    merged = tmp_path / "merged.json"
    code = cli.main(["merge", "-o", str(merged), str(path)])
    out, err = capsys.readouterr()
    assert (code, out) == (ExitCode.USAGE, "")
    assert err.splitlines() == [
        f"nbresults: cannot read: {path}: not valid JSON (NaN is not a JSON number: a results file holds no NaN "
        "or infinity; was it edited by hand?)"
    ]
    assert not merged.exists()
