"""The results record without pytest runs: the recorder's folding of reports, accumulation, the merge,
and the JSON edge (every document the code writes is valid against the published schema)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from pathlib import Path

import pytest

from pytest_notebooks.errors import MergeError, ResultsError
from pytest_notebooks.gitinfo import GitState
from pytest_notebooks.models import CellChange
from pytest_notebooks.results.merge import merge_documents
from pytest_notebooks.results.read import dumps, parse_results, validate
from pytest_notebooks.results.record import (
    AttemptRecord,
    CaseRecord,
    CaseReport,
    FailureRecord,
    Outcome,
    ResultsDocument,
    SessionState,
    SnapshotRecord,
    worst,
)
from pytest_notebooks.results.recorder import Recorder, accumulate

COMMIT = "c" * 40
BOOM = FailureRecord("error", "cell 2 (In [2]): KeyError: 'fr'", cell=2, ename="KeyError", evalue="'fr'")


def report(case: str = "fr", failure: FailureRecord | None = None, **fields: object) -> CaseReport:
    base = CaseReport("nb.ipynb", "nb.yaml", case, "a" * 64, "b" * 64, declared_cases=("fr", "us"))
    return replace(base, failure=failure, **fields)  # type: ignore[arg-type]


def recorder(tmp_path: Path, git: GitState | None = None) -> Recorder:
    return Recorder(path=tmp_path / "results.json", rootdir=tmp_path, output_dir=str(tmp_path / "out"), git=git)


def run(
    rec: Recorder,
    phases: list[tuple[str, str]],
    failure: FailureRecord | None = None,
    wasxfail: bool = False,
    worker: str | None = None,
) -> None:
    """Fold ``(when, outcome)`` phases of nb.ipynb::fr; the call report carries ``failure``."""
    for when, outcome in phases:
        sent = report(failure=failure if when == "call" else None)
        rec.add("nb.ipynb::fr", when, outcome, 0.25, sent, wasxfail, worker=worker)


def only(rec: Recorder) -> CaseRecord:
    (case,) = [c for c in rec.document().cases if c.case == "fr"]
    return case


PASS = [("setup", "passed"), ("call", "passed"), ("teardown", "passed")]
FAIL = [("setup", "passed"), ("call", "failed"), ("teardown", "passed")]
RERUN = [("setup", "passed"), ("call", "rerun")]


def test_one_meaning_of_passing_and_ok() -> None:
    assert [o for o in Outcome if o.passing] == [Outcome.PASSED]
    assert {o for o in Outcome if o.ok} == {Outcome.PASSED, Outcome.SKIPPED, Outcome.XFAILED}
    assert worst([Outcome.PASSED, Outcome.XPASSED, Outcome.SKIPPED]) is Outcome.XPASSED
    assert worst([Outcome.NOT_RUN, Outcome.PASSED]) is Outcome.PASSED  # a real record beats "not run"
    assert Outcome.CRASHED.rank == 0
    assert Outcome.NOT_RUN.rank == len(Outcome) - 1


def test_a_passing_case_and_the_declared_case_that_did_not_run(tmp_path: Path) -> None:
    rec = recorder(tmp_path)
    run(rec, PASS)
    document = rec.document()
    fr, us = sorted(document.cases, key=lambda c: c.case)
    assert (fr.outcome, fr.failure, fr.flaky, fr.duration) == (Outcome.PASSED, None, False, 0.75)
    assert (us.nodeid, us.outcome) == ("nb.ipynb::us", Outcome.NOT_RUN)
    assert us.to_json() == {
        "nodeid": "nb.ipynb::us",
        "notebook": "nb.ipynb",
        "fixture": "nb.yaml",
        "case": "us",
        "outcome": "not run",
    }
    (notebook,) = document.notebooks
    assert (notebook.declared_cases, notebook.cases, notebook.passed) == (("fr", "us"), ("fr", "us"), False)
    assert document.summary() == {"passed": 1, "not run": 1}


def test_a_rerun_that_passes_is_flaky_with_no_failure(tmp_path: Path) -> None:
    rec = recorder(tmp_path)
    run(rec, RERUN, failure=BOOM)
    run(rec, PASS)
    case = only(rec)
    assert (case.outcome, case.failure, case.flaky) == (Outcome.PASSED, None, True)
    assert [(a.outcome, a.superseded) for a in case.attempts] == [(Outcome.FAILED, True), (Outcome.PASSED, False)]
    assert case.attempts[0].failure == BOOM.brief()
    assert case.summary() == "flaky: passed on attempt 2 of 2"


def test_a_rerun_that_fails_again_keeps_the_last_failure(tmp_path: Path) -> None:
    rec = recorder(tmp_path)
    run(rec, RERUN, failure=FailureRecord("error", "first"))
    run(rec, FAIL, failure=FailureRecord("error", "second"))
    case = only(rec)
    assert (case.outcome, case.failure, case.flaky) == (Outcome.FAILED, FailureRecord("error", "second"), False)


def test_phases_fold_into_one_outcome(tmp_path: Path) -> None:
    outcomes = {
        "error in setup": ([("setup", "failed")], False, Outcome.ERROR),
        "error in teardown": ([("setup", "passed"), ("call", "passed"), ("teardown", "failed")], False, Outcome.ERROR),
        "skipped": ([("setup", "skipped")], False, Outcome.SKIPPED),
        "xfailed": ([("setup", "passed"), ("call", "skipped")], True, Outcome.XFAILED),
        "xpassed": ([("setup", "passed"), ("call", "passed")], True, Outcome.XPASSED),
    }
    for name, (phases, wasxfail, expected) in outcomes.items():
        rec = recorder(tmp_path)
        run(rec, phases, wasxfail=wasxfail)
        assert only(rec).outcome is expected, name


def test_two_independent_runs_count_the_worse(tmp_path: Path) -> None:
    rec = recorder(tmp_path)
    run(rec, PASS, worker="gw0")
    run(rec, FAIL, failure=BOOM, worker="gw1")
    case = only(rec)
    assert (case.outcome, case.failure, case.flaky) == (Outcome.FAILED, BOOM, False)


def test_a_crash_and_an_unfinished_case(tmp_path: Path) -> None:
    rec = recorder(tmp_path)
    run(rec, [("setup", "passed")], worker="gw0")
    rec.crashed("nb.ipynb::fr", "gw0")
    case = only(rec)
    assert case.outcome is Outcome.CRASHED
    assert case.failure is not None
    assert case.failure.summary.startswith("the xdist worker gw0 running it died")
    rec.crashed("other.ipynb::x", "gw0")  # not a notebook case: nothing recorded
    assert [c.nodeid for c in rec.document().cases] == ["nb.ipynb::fr", "nb.ipynb::us"]

    rec = recorder(tmp_path)
    run(rec, [("setup", "passed")])
    rec.session_ended(2, stopped_early=False)  # Ctrl-C while the case ran
    case = only(rec)
    assert (case.outcome, rec.state) == (Outcome.INTERRUPTED, SessionState.INTERRUPTED)
    assert case.failure == FailureRecord("interrupted", "interrupted before the case finished")


def test_a_crash_that_is_rescheduled_and_passes_is_flaky(tmp_path: Path) -> None:
    rec = recorder(tmp_path)
    run(rec, [("setup", "passed")], worker="gw0")
    rec.crashed("nb.ipynb::fr", "gw0", rescheduled=True)
    run(rec, PASS, worker="gw1")  # pytest-rerunfailures had xdist run it on another worker
    case = only(rec)
    assert (case.outcome, case.flaky) == (Outcome.PASSED, True)


def state(tmp_path: Path, dirty: bool = False) -> GitState:
    return GitState(root=tmp_path, commit=COMMIT, branch="main", changed=(" M x",) if dirty else ())


def test_accumulate_keeps_unchanged_evidence_of_the_same_clean_commit(tmp_path: Path) -> None:
    (tmp_path / "nb.ipynb").write_text("{}")
    (tmp_path / "nb.yaml").write_text("cases: {}")
    digest = {name: hashlib.sha256((tmp_path / name).read_bytes()).hexdigest() for name in ("nb.ipynb", "nb.yaml")}
    first = recorder(tmp_path, state(tmp_path))
    for case in ("fr", "us"):
        first.add(f"nb.ipynb::{case}", "setup", "passed", 0.1, report(case, notebook_sha256=digest["nb.ipynb"],
                  fixture_sha256=digest["nb.yaml"]), False)  # fmt: skip
        first.add(f"nb.ipynb::{case}", "call", "passed", 0.1, report(case), False)
    previous = first.document()
    now = {"nb.ipynb::fr": replace(previous.cases[0], outcome=Outcome.FAILED, session="new")}

    kept, sessions = accumulate(previous, now, [], state(tmp_path), tmp_path)
    assert {n: c.outcome for n, c in kept.items()} == {"nb.ipynb::fr": Outcome.FAILED, "nb.ipynb::us": Outcome.PASSED}
    assert [s.id for s in sessions] == [first.session_id]

    assert set(accumulate(previous, now, [], state(tmp_path, dirty=True), tmp_path)[0]) == {"nb.ipynb::fr"}
    (tmp_path / "nb.yaml").write_text("cases: {changed: {}}")  # the fixture changed since: stale evidence
    assert set(accumulate(previous, now, [], state(tmp_path), tmp_path)[0]) == {"nb.ipynb::fr"}


def shard(tmp_path: Path, session: str, outcomes: dict[str, str], state: str = "completed") -> ResultsDocument:
    rec = recorder(tmp_path)
    rec.session_id, rec.state = session, SessionState(state)
    for case, outcome in outcomes.items():
        phases = {"passed": PASS, "failed": FAIL}[outcome]
        for when, phase_outcome in phases:
            rec.add(f"nb.ipynb::{case}", when, phase_outcome, 0.1, report(case), False)
    if not outcomes:
        rec.collected("nb.ipynb::fr", report())
    return rec.document()


def test_merge_takes_a_real_record_over_not_run_and_the_worse_of_two(tmp_path: Path) -> None:
    first = shard(tmp_path, "s1", {"fr": "passed"})
    second = shard(tmp_path, "s2", {"us": "passed"})
    merged = merge_documents([first, second])
    assert {c.case: c.outcome for c in merged.cases} == {"fr": Outcome.PASSED, "us": Outcome.PASSED}
    assert merged.notebooks[0].passed
    assert merged.merged_from == 2
    assert merged.session.id == "s1+s2"
    assert [s.id for s in merged.sessions] == ["s1", "s2"]

    again = shard(tmp_path, "s3", {"fr": "failed"}, state="stopped")
    merged = merge_documents([first, second, again])
    assert {c.case: c.outcome for c in merged.cases} == {"fr": Outcome.FAILED, "us": Outcome.PASSED}
    assert merged.session.state is SessionState.STOPPED
    assert not merged.notebooks[0].passed
    validate(merged.to_json(), "merged")


def test_merge_refuses_different_bytes(tmp_path: Path) -> None:
    first = shard(tmp_path, "s1", {"fr": "passed"})
    other = replace(first, notebooks=(replace(first.notebooks[0], sha256="f" * 64),))
    with pytest.raises(MergeError, match=r"nb\.ipynb was tested with different contents"):
        merge_documents([first, other])


def test_every_record_survives_the_json_edge(tmp_path: Path) -> None:
    change = CellChange("modified", "code", 3, 3, (), ("@@ -1 +1 @@", "-[stdout] fr", "+[stdout] FR"))
    rec = recorder(tmp_path)
    snapshot = SnapshotRecord("mismatch", "__snapshots__/nb/fr.ipynb", (change,))
    parameters = {"region_code": "fr", "ratio": float("nan"), "when": {"nested": [1, 2.5]}}
    rec.add("nb.ipynb::fr", "setup", "passed", 0.1, report(parameters=parameters), False)
    rec.add("nb.ipynb::fr", "call", "failed", 0.1, report(failure=BOOM, snapshot=snapshot, kernel="python3"), False)
    written = rec.document()
    text = dumps(written)
    assert "NaN" not in text
    assert '"ratio": "nan"' in text
    read = parse_results(text, "results.json")  # validated against the published schema
    assert read.cases[0] == replace(written.cases[0], parameters={**parameters, "ratio": "nan"})
    assert read.cases[0].snapshot == snapshot
    assert read.cases[0].attempts == (AttemptRecord(Outcome.FAILED, None, 0.2, BOOM.brief(), False),)
    assert read.notebooks == written.notebooks
    assert read.session == written.session


def test_a_file_of_another_shape_is_one_line_not_a_traceback() -> None:
    text = json.dumps({"schema": "pytest-notebooks/results", "version": 3, "cases": [{"outcome": "odd"}]})
    with pytest.raises(ResultsError, match=r"^x.json: invalid results file at "):
        parse_results(text, "x.json")
    with pytest.raises(ResultsError, match=r"^x.json: not a results file of this version \(KeyError"):
        parse_results(text, "x.json", check=False)  # the recorder's quick read: starts afresh on it
