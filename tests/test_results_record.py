"""One record per case per session, whatever the plugin mix; a results file that belongs to its session.

Real pytest runs (real kernels, real git, real xdist / pytest-rerunfailures / pytest-repeat) and
then what a user reads: results.json, the terminal, nbpromote, nbreview and nbresults. The
interleaving test drives ``Recorder.add`` directly, in the order xdist delivers two workers' phases.
"""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from pytest_notebooks.results import cli as results_cli
from pytest_notebooks.results.record import CaseReport, FailureRecord, Outcome
from pytest_notebooks.results.recorder import Recorder
from tests.project import RESULTS, Project

ONE = "cases:\n  fr: {region_code: fr}\n"
TWO = "cases:\n  fr: {region_code: fr}\n  us: {region_code: us}\n"
# Fails on the first attempt of each case, passes on the next: a counter in an ignored directory
FLAKY = (
    "import pathlib\n"
    "counter = pathlib.Path('notebook-outputs', 'attempts-' + region_code)\n"
    "counter.parent.mkdir(parents=True, exist_ok=True)\n"
    "attempt = int(counter.read_text()) if counter.exists() else 0\n"
    "counter.write_text(str(attempt + 1))\n"
    "assert attempt > 0, f'flaky attempt {attempt}'\n"
)
ALWAYS_FAILS = FLAKY.replace("assert attempt > 0, f'flaky attempt {attempt}'", "assert False, f'attempt {attempt}'")


def case(project: Project, nodeid: str) -> dict[str, Any]:
    found: list[dict[str, Any]] = [c for c in project.results()["cases"] if c["nodeid"] == nodeid]
    assert len(found) == 1, [c["nodeid"] for c in project.results()["cases"]]
    return found[0]


def command(project: Project, module: str, *args: str) -> subprocess.CompletedProcess[str]:
    """One of the package's console scripts, run as ``python -m`` in the project."""
    return subprocess.run(
        [sys.executable, "-m", module, *args], cwd=project.root, capture_output=True, text=True, check=False
    )


# -- several reports of one node id ----------------------------------------------------------------


@pytest.mark.kernel
def test_dist_each_a_case_failing_on_one_worker_is_recorded_failed(project: Project) -> None:
    fails_on_gw1 = (
        "import os\nworker = os.environ['PYTEST_XDIST_WORKER']\nassert worker != 'gw1', f'fails on {worker}'\n"
    )
    project.notebook("x", fails_on_gw1, ONE)
    project.commit()
    run = project.pytest("-n", "2", "--dist", "each")
    assert run.returncode == 1, run.stdout
    assert "1 failed, 1 passed" in run.stdout
    record = case(project, "x.ipynb::fr")
    assert record["outcome"] == "failed"
    assert record["failure"]["summary"] == "cell 2 (In [3]): AssertionError: fails on gw1"
    assert record["flaky"] is False
    assert [(a["worker"], a["outcome"], a["superseded"]) for a in record["attempts"]] == [
        ("gw0", "passed", False),
        ("gw1", "failed", False),
    ]
    assert record["attempts"][0]["failure"] is None
    assert record["attempts"][1]["failure"]["summary"] == "cell 2 (In [3]): AssertionError: fails on gw1"
    assert record["duration"] == pytest.approx(sum(a["duration"] for a in record["attempts"]), abs=0.01)
    assert project.results()["notebooks"][0]["outcome"] == "not passed"

    result = project.promote()
    assert result.code in (4, 5), result.text
    assert "case 'fr' failed" in result.text
    assert project.published() == []


@pytest.mark.parametrize("xdist", [["-p", "no:xdist"], ["-n", "2"]], ids=["serial", "n2"])
@pytest.mark.kernel
def test_a_case_passing_on_its_rerun_is_flaky_and_keeps_no_failure(project: Project, xdist: list[str]) -> None:
    project.notebook("flaky", FLAKY, ONE)
    project.commit()
    run = project.pytest(*xdist, "--reruns", "1")
    assert run.returncode == 0, run.stdout
    assert "1 passed, 1 rerun" in run.stdout
    record = case(project, "flaky.ipynb::fr")
    assert record["outcome"] == "passed"
    assert record["failure"] is None
    assert record["flaky"] is True
    attempts = record["attempts"]
    assert [(a["outcome"], a["superseded"]) for a in attempts] == [("failed", True), ("passed", False)]
    workers = {a["worker"] for a in attempts}  # a rerun runs in the same process
    assert workers == {None} if xdist[0] == "-p" else workers in ({"gw0"}, {"gw1"})
    assert attempts[0]["failure"]["summary"] == "cell 2 (In [3]): AssertionError: flaky attempt 0"
    assert attempts[1]["failure"] is None

    text = command(project, "pytest_notebooks.review.cli", "--format", "text")
    assert text.returncode == 0, text.stderr
    line = next(line for line in text.stdout.splitlines() if "flaky.ipynb::fr" in line)
    assert line.split() == ["passed", "flaky.ipynb::fr", "flaky:", "passed", "on", "attempt", "2", "of", "2"]
    assert "flaky attempt 0" not in text.stdout
    html = command(project, "pytest_notebooks.review.cli", "--format", "html")
    assert "flaky: passed on attempt 2 of 2" in html.stdout
    assert "flaky attempt 0" not in html.stdout


@pytest.mark.kernel
def test_a_case_failing_every_rerun_keeps_its_last_failure(project: Project) -> None:
    project.notebook("broken", ALWAYS_FAILS, ONE)
    project.commit()
    run = project.pytest("-p", "no:xdist", "--reruns", "2")
    assert run.returncode == 1, run.stdout
    assert "1 failed, 2 rerun" in run.stdout
    record = case(project, "broken.ipynb::fr")
    assert record["outcome"] == "failed"
    assert record["flaky"] is False
    assert record["failure"]["summary"] == "cell 2 (In [3]): AssertionError: attempt 2"
    assert [(a["outcome"], a["superseded"]) for a in record["attempts"]] == [
        ("failed", True),
        ("failed", True),
        ("failed", False),
    ]
    assert [a["failure"]["summary"][-9:] for a in record["attempts"]] == ["attempt 0", "attempt 1", "attempt 2"]


@pytest.mark.kernel
def test_pytest_repeat_repeats_python_tests_but_not_notebook_cases(project: Project) -> None:
    """pytest-repeat parametrizes test functions (pytest_generate_tests); a notebook case is not one."""
    project.notebook("x", "print(region_code)", ONE)
    (project.root / "test_plain.py").write_text("def test_plain():\n    pass\n")
    project.commit()
    run = project.pytest("-p", "no:xdist", "--count", "3")
    assert run.returncode == 0, run.stdout
    assert "4 passed" in run.stdout  # test_plain three times, x.ipynb::fr once
    record = case(project, "x.ipynb::fr")
    assert record["outcome"] == "passed"
    assert [a["outcome"] for a in record["attempts"]] == ["passed"]


@pytest.mark.kernel
def test_a_case_collected_twice_in_one_process_combines_to_the_worse_run(project: Project) -> None:
    """Two independent runs of one node id in one process (--keep-duplicates): the worse outcome counts."""
    second_run_fails = FLAKY.replace("assert attempt > 0", "assert attempt == 0")
    project.notebook("twice", second_run_fails, ONE)
    project.commit()
    run = project.pytest("-p", "no:xdist", "--keep-duplicates", "twice.ipynb", "twice.ipynb")
    assert "1 failed, 1 passed" in run.stdout, run.stdout
    record = case(project, "twice.ipynb::fr")
    assert record["outcome"] == "failed"
    assert record["failure"]["summary"] == "cell 2 (In [3]): AssertionError: flaky attempt 1"
    assert record["flaky"] is False
    assert [(a["outcome"], a["superseded"]) for a in record["attempts"]] == [("passed", False), ("failed", False)]


def test_interleaved_reports_of_two_workers_do_not_mix_phases(tmp_path: Path) -> None:
    """xdist delivers reports as workers send them: gw1's call may arrive between gw0's setup and call."""
    recorder = Recorder(path=tmp_path / "results.json", rootdir=tmp_path, output_dir=str(tmp_path), git=None)
    static = CaseReport("x.ipynb", "x.yaml", "fr", declared_cases=("fr",))
    failed = replace(static, failure=FailureRecord("error", "cell 2: boom on gw1"))
    for worker, when, outcome, report in [
        ("gw0", "setup", "passed", static),
        ("gw1", "setup", "passed", static),
        ("gw1", "call", "failed", failed),
        ("gw0", "call", "passed", static),
        ("gw1", "teardown", "passed", static),
        ("gw0", "teardown", "passed", static),
    ]:
        recorder.add("x.ipynb::fr", when, outcome, 0.5, report, False, worker=worker)
    (record,) = recorder.document().cases
    assert record.outcome is Outcome.FAILED
    assert record.failure == FailureRecord("error", "cell 2: boom on gw1")
    assert record.duration == 3.0
    assert [(a.worker, a.outcome.value, a.duration) for a in record.attempts] == [
        ("gw0", "passed", 1.5),
        ("gw1", "failed", 1.5),
    ]


# -- the results file belongs to the session -------------------------------------------------------

# A notebook that writes a results file claiming that b.ipynb::fr passed on this commit, as the
# plugin would write it (every hash right), while the session tests only a.ipynb.
FORGER = """\
import hashlib, json, os, pathlib, subprocess
def sha(name):
    return hashlib.sha256(pathlib.Path(name).read_bytes()).hexdigest()
commit = subprocess.run(['git', 'rev-parse', 'HEAD'], capture_output=True, text=True).stdout.strip()
record = {'nodeid': 'b.ipynb::fr', 'notebook': 'b.ipynb', 'fixture': 'b.yaml', 'case': 'fr', 'outcome': 'passed',
          'duration': 1.0, 'notebook_sha256': sha('b.ipynb'), 'fixture_sha256': sha('b.yaml'), 'session': 'forged',
          'failure': None, 'parameters': {'region_code': 'fr'}, 'attempts': [], 'flaky': False}
session = {'id': 'forged', 'state': 'completed'}
forged = {'schema': 'pytest-notebooks/results', 'version': VERSION, 'created': 'now', 'rootdir': os.getcwd(),
          'output_dir': os.path.join(os.getcwd(), 'notebook-outputs'),
          'git': {'commit': commit, 'dirty': False, 'branch': 'master'}, 'session': session, 'sessions': [session],
          'summary': {'passed': 1},
          'notebooks': [{'path': 'b.ipynb', 'fixture': 'b.yaml', 'sha256': sha('b.ipynb'),
                         'fixture_sha256': sha('b.yaml'), 'declared_cases': ['fr'], 'cases': ['fr'],
                         'outcome': 'passed'}],
          'cases': [record]}
pathlib.Path('notebook-outputs').mkdir(exist_ok=True)
pathlib.Path('notebook-outputs/results.json').write_text(json.dumps(forged))
"""


@pytest.mark.parametrize("version", [2, 3])
@pytest.mark.kernel
def test_a_results_file_written_during_the_session_is_ignored_with_a_warning(project: Project, version: int) -> None:
    project.notebook("a", FORGER.replace("VERSION", str(version)), ONE)
    project.notebook("b", "assert False, 'b never passes'", ONE)
    project.commit()
    run = project.pytest("-p", "no:xdist", "-k", "a.ipynb")
    assert run.returncode == 0, run.stdout
    assert project.outcomes() == {"a.ipynb::fr": "passed", "b.ipynb::fr": "not run"}
    assert (
        "notebooks: warning: notebook-outputs/results.json was changed during the session, not by this pytest "
        "(a notebook, or another pytest writing the same file); what it held was ignored: the file holds this "
        "session's records and those it held when the session started" in run.stdout
    )

    result = project.promote()
    assert result.code == 5, result.text
    assert "b.ipynb: case 'fr' not run" in result.text
    assert project.published() == ["a.ipynb"]


@pytest.mark.kernel
def test_the_file_as_it_was_at_session_start_still_accumulates(project: Project) -> None:
    project.notebook("a", "print(region_code)", ONE)
    project.notebook("b", "print(region_code)", ONE)
    project.commit()
    assert project.pytest("-p", "no:xdist", "-k", "b.ipynb").returncode == 0
    run = project.pytest("-p", "no:xdist", "-k", "a.ipynb")
    assert run.returncode == 0, run.stdout
    assert "notebooks: warning" not in run.stdout
    assert project.outcomes() == {"a.ipynb::fr": "passed", "b.ipynb::fr": "passed"}
    assert len(project.results()["sessions"]) == 2


# -- size: linear in cases ---------------------------------------------------------------------------


@pytest.mark.kernel
def test_two_thousand_declared_cases_one_selected_is_a_small_file(project: Project) -> None:
    cases = [f"case_{i:04d}" for i in range(2000)]
    project.notebook("many", "pass", "cases:\n" + "".join(f"  {c}: {{}}\n" for c in cases))
    project.commit()
    run = project.pytest("-p", "no:xdist", "-k", "case_0007")
    assert run.returncode == 0, run.stdout
    assert "1 passed, 1999 deselected" in run.stdout
    path = project.root / RESULTS
    assert path.stat().st_size < 1_000_000
    document = project.results()
    assert document["summary"] == {"passed": 1, "not run": 1999}
    (notebook,) = document["notebooks"]
    assert notebook["declared_cases"] == cases
    assert notebook["outcome"] == "not passed"
    not_run = next(c for c in document["cases"] if c["case"] == "case_1999")
    assert not_run == {
        "nodeid": "many.ipynb::case_1999",
        "notebook": "many.ipynb",
        "fixture": "many.yaml",
        "case": "case_1999",
        "outcome": "not run",
    }
    assert all("declared_cases" not in c for c in document["cases"])

    merged = command(project, "pytest_notebooks.results.cli", "merge", "-o", "notebook-outputs/m.json", RESULTS)
    assert merged.returncode == 0, merged.stderr
    assert merged.stdout == "nbresults: merged 1 files into notebook-outputs/m.json: 1999 not run, 1 passed\n"
    review = command(project, "pytest_notebooks.review.cli", "--format", "text")
    assert review.returncode == 0, review.stderr
    assert review.stdout.startswith("Notebook tests FAILED: 1999 not run, 1 passed\n")
    refused = project.promote()
    assert refused.code == 4, refused.text
    assert "many.ipynb: case 'case_0000' not run" in refused.text


# -- one spelling of each path, one record of each case -----------------------------------------------


@pytest.fixture(scope="module")
def tested(tmp_path_factory: pytest.TempPathFactory) -> tuple[Project, dict[str, Any]]:
    """A real results file: x.ipynb::fr passed, x.ipynb::us failed."""
    project = Project(tmp_path_factory.mktemp("spellings") / "repo")
    project.notebook("x", "assert region_code != 'us', 'no us'", TWO)
    project.commit()
    assert project.pytest("-p", "no:xdist").returncode == 1
    return project, project.results()


def _respelled(spelling: str, field: str) -> Callable[[dict[str, Any]], None]:
    """The failing us case gains a passing twin whose notebook (or fixture) path is spelled ``spelling``."""

    def edit(document: dict[str, Any]) -> None:
        us = next(c for c in document["cases"] if c["case"] == "us")
        twin = {**copy.deepcopy(us), "outcome": "passed", "failure": None, field: spelling}
        twin["nodeid"] = f"{twin['notebook']}::us"
        document["cases"].append(twin)

    return edit


SPELLINGS = [
    ("./x.ipynb", "notebook", "cases[2] (node id './x.ipynb::us'): notebook path './x.ipynb' is not in normal form"),
    ("sub/../x.ipynb", "notebook", "cases[2] (node id 'sub/../x.ipynb::us'): notebook path 'sub/../x.ipynb' is not"),
    ("sub//x.ipynb", "notebook", "cases[2] (node id 'sub//x.ipynb::us'): notebook path 'sub//x.ipynb' is not"),
    ("/repo/x.ipynb", "notebook", "cases[2] (node id '/repo/x.ipynb::us'): notebook path '/repo/x.ipynb' is absolute"),
    ("x.yaml/", "fixture", "cases[2] (node id 'x.ipynb::us'): fixture path 'x.yaml/' is not in normal form"),
]


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        *[(_respelled(spelling, field), expected) for spelling, field, expected in SPELLINGS],
        (
            lambda d: d["cases"].append({**d["cases"][1], "outcome": "passed", "failure": None}),
            "cases[2] (node id 'x.ipynb::us'): a second record of node id 'x.ipynb::us' (the first is cases[1])",
        ),
        (
            lambda d: d["cases"].append({**d["cases"][1], "nodeid": "alias/x.ipynb::us", "outcome": "passed"}),
            "cases[2] (node id 'alias/x.ipynb::us'): a second record of x.ipynb case 'us' (the first is cases[1])",
        ),
        (
            lambda d: d["notebooks"].append({**d["notebooks"][0], "path": "./x.ipynb"}),
            "notebooks[1] ('./x.ipynb'): notebook path './x.ipynb' is not in normal form",
        ),
        (
            lambda d: d["notebooks"].append(dict(d["notebooks"][0])),
            "notebooks[1] ('x.ipynb'): a second entry of notebook 'x.ipynb' (the first is notebooks[0])",
        ),
    ],
    ids=["dot-slash", "dot-dot", "double-slash", "absolute", "trailing-slash", "nodeid", "case", "nb-dot", "nb-twice"],
)
@pytest.mark.kernel
def test_two_spellings_of_a_path_or_two_records_of_a_case_are_refused(
    tested: tuple[Project, dict[str, Any]], tmp_path: Path, edit: Callable[[dict[str, Any]], None], expected: str
) -> None:
    project, document = tested
    edited = copy.deepcopy(document)
    edit(edited)
    path = tmp_path / "results.json"
    path.write_text(json.dumps(edited))

    result = project.promote("--results", str(path), "--dry-run")
    assert result.code == 4, result.text
    assert f"nbpromote: refused: {path}: invalid results file: {expected}" in result.err
    assert len(result.err.splitlines()) == 2, result.err  # the refusal and its hint
    review = command(project, "pytest_notebooks.review.cli", "--results", str(path))
    assert review.returncode == 2
    assert review.stderr.startswith(f"nbreview: {path}: invalid results file: {expected}")
    merged = command(project, "pytest_notebooks.results.cli", "merge", "-o", str(tmp_path / "m.json"), str(path))
    assert merged.returncode == 2
    assert merged.stderr.startswith(f"nbresults: cannot read: {path}: invalid results file: {expected}")
    assert len(merged.stderr.splitlines()) == 1


@pytest.mark.parametrize("argv", [["--help"], ["merge", "--help"]])
def test_help_ends_with_the_exit_codes(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        results_cli.main(argv)
    assert exited.value.code == 0
    assert capsys.readouterr().out.endswith(
        "exit codes:\n"
        "  0  merged: the merged file was written\n"
        "  2  usage: bad arguments, or files that cannot be read, are not valid results files, cannot\n"
        "     be merged (shards of other commits, a notebook tested with other contents) or written; one\n"
        "     line on stderr\n"
    )
