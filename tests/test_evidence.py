"""The evidence cannot lie: real pytest runs (real kernels, real git) that end badly, then nbpromote.

Each scenario is one the reliability probe turned into a "passed" results file and a promotion:
Ctrl-C, a worker killed mid-case, SIGTERM, a subset run, a hand-edited file. None may be promoted;
each refusal names its cause and the command that produces the missing evidence. Signals are sent
once the case is known to be running (it writes a file first), never after a sleep, so the tests
do not depend on the machine's speed.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Sequence

import pytest

from tests.project import RESULTS, WAIT, Project

TWO = "cases:\n  fr: {region_code: fr}\n  us: {region_code: us}\n"
# the us case announces that it runs, then waits to be interrupted
HANGS_IN_US = (
    "import pathlib, time\n"
    "if region_code == 'us':\n"
    "    pathlib.Path('us.started').write_text('x')\n"
    "    time.sleep(120)\n"
)


def interrupted(project: Project, args: Sequence[str], send: str) -> str:
    project.notebook("x", HANGS_IN_US, TWO)
    project.commit()
    process = project.start(*args)
    project.wait_for("us.started")
    if send == "group-int":
        os.killpg(process.pid, signal.SIGINT)
    elif send == "leader-int":
        os.kill(process.pid, signal.SIGINT)
    else:
        os.kill(process.pid, signal.SIGTERM)
    out, _ = process.communicate(timeout=WAIT)
    return out


@pytest.mark.parametrize(
    ("args", "send"),
    [
        (["-p", "no:xdist"], "leader-int"),
        (["-p", "no:xdist"], "group-int"),
        (["-p", "no:xdist"], "term"),
        (["-n", "2"], "leader-int"),
        (["-n", "2"], "group-int"),
        (["-n", "2"], "term"),
    ],
    ids=["serial-ctrl-c", "serial-ctrl-c-group", "serial-sigterm", "n2-ctrl-c", "n2-ctrl-c-group", "n2-sigterm"],
)
@pytest.mark.kernel
def test_an_interrupted_session_is_recorded_so_and_never_promoted(project: Project, args: list[str], send: str) -> None:
    out = interrupted(project, args, send)
    document = project.results()
    assert document["session"]["state"] == "interrupted", out
    assert project.outcomes()["x.ipynb::us"] in ("interrupted", "failed"), out
    assert document["notebooks"][0]["outcome"] == "not passed"
    assert "session interrupted: nbpromote will not promote from it" in out

    result = project.promote()
    assert result.code == 4, result.text
    assert "was interrupted: its evidence is incomplete" in result.err
    hint = result.err.splitlines()[-1]
    assert hint.startswith("  hint: run the cases again: pytest ")
    assert "x.ipynb::us" in hint
    assert project.published() == []


@pytest.mark.kernel
def test_a_crashed_worker_is_recorded_and_its_notebook_held_back(project: Project) -> None:
    kills_its_worker = "import os, signal\nif region_code == 'us':\n    os.kill(os.getppid(), signal.SIGKILL)\n"
    project.notebook("x", kills_its_worker, TWO)
    project.notebook("y", "print(region_code)", TWO)
    project.commit()
    run = project.pytest("-n", "2")
    assert "crashed" in run.stdout, run.stdout
    document = project.results()
    assert project.outcomes()["x.ipynb::us"] == "crashed"
    assert document["session"]["state"] == "worker-crashed"

    result = project.promote()
    assert result.code == 5, result.text
    assert "x.ipynb: case 'us' crashed: the xdist worker" in result.out
    assert project.published() == ["y.ipynb"]


@pytest.mark.kernel
def test_a_subset_run_is_not_evidence_until_the_rest_runs_on_the_same_commit(project: Project) -> None:
    project.notebook("x", "assert region_code != 'us', 'us is broken'", TWO)
    project.commit()
    run = project.pytest("-p", "no:xdist", "-k", "fr")
    assert run.returncode == 0, run.stdout
    assert project.outcomes() == {"x.ipynb::fr": "passed", "x.ipynb::us": "not run"}

    refused = project.promote()
    assert refused.code == 4, refused.text
    assert "nbpromote: refused: x.ipynb: case 'us' not run" in refused.err
    assert "hint: run the missing cases (results of the same commit accumulate): pytest x.ipynb::us" in refused.err

    # the command it printed, run as printed, adds the missing evidence: here, a failure
    assert project.pytest("-p", "no:xdist", "x.ipynb::us").returncode == 1
    assert project.outcomes() == {"x.ipynb::fr": "passed", "x.ipynb::us": "failed"}
    assert "case 'us' failed: cell 2 (In [3]): AssertionError: us is broken" in project.promote().err


@pytest.mark.kernel
def test_the_missing_case_run_later_completes_the_evidence(project: Project) -> None:
    project.notebook("x", "print(region_code)", TWO)
    project.commit()
    assert project.pytest("-p", "no:xdist", "-k", "us").returncode == 0
    assert project.pytest("-p", "no:xdist", "--deselect", "x.ipynb::us").returncode == 0
    assert project.outcomes() == {"x.ipynb::fr": "passed", "x.ipynb::us": "passed"}
    assert len(project.results()["sessions"]) == 2
    result = project.promote()
    assert result.code == 0, result.text
    assert project.published() == ["x.ipynb"]


@pytest.mark.kernel
def test_a_hand_removed_case_is_not_promoted(project: Project) -> None:
    project.notebook("x", "print(region_code)", TWO)
    project.commit()
    assert project.pytest("-p", "no:xdist").returncode == 0
    document = project.results()
    document["cases"] = [c for c in document["cases"] if c["case"] != "us"]
    for nb in document["notebooks"]:
        nb["cases"] = nb["declared_cases"] = ["fr"]
    (project.root / RESULTS).write_text(json.dumps(document))
    result = project.promote()
    assert result.code == 4, result.text
    assert "x.ipynb: case 'us' not run" in result.err


@pytest.mark.kernel
def test_one_failing_notebook_is_held_back_and_the_passing_ones_promoted(project: Project) -> None:
    project.notebook("a", "print(region_code)", TWO)
    project.notebook("b", "print(region_code)", TWO)
    project.notebook("c", "assert region_code != 'us', 'no us'", TWO)
    project.commit()
    assert project.pytest("-n", "2").returncode == 1
    result = project.promote()
    assert result.code == 5, result.text
    assert "held back 1 notebook (what is live for it stays live):" in result.out
    assert "  c.ipynb: case 'us' failed: cell 2 (In [3]): AssertionError: no us" in result.out
    # the fix is a new commit, on which no case has run yet: the hint is the whole suite
    assert "  hint: fix the failing notebooks (see each failure), commit, then test that commit: pytest\n" in result.out
    assert project.published() == ["a.ipynb", "b.ipynb"]

    strict = project.promote("--all-or-nothing", "--dry-run")
    assert strict.code == 4, strict.text
    assert "all or nothing" in strict.err


@pytest.mark.kernel
def test_a_group_with_a_failing_member_promotes_none_of_it(project: Project) -> None:
    project.notebook("a", "print(region_code)", TWO)
    project.notebook("b", "assert region_code != 'us', 'no us'", TWO)
    project.notebook("c", "print(region_code)", TWO)
    project.commit('[tool.nbpromote]\ngroups = {pipeline = ["a.ipynb", "b.ipynb"]}\n')
    assert project.pytest("-p", "no:xdist").returncode == 1
    result = project.promote()
    assert result.code == 5, result.text
    assert "a.ipynb: held back with its promotion group 'pipeline': b.ipynb did not pass" in result.out
    assert project.published() == ["c.ipynb"]


@pytest.mark.kernel
def test_fixture_skip_and_xfail_do_not_block_runtime_ones_do(project: Project) -> None:
    decided = (
        "cases:\n  fr: {region_code: fr}\n"
        "  us:\n    parameters: {region_code: us}\n    skip: no us data yet\n"
        "  de:\n    parameters: {region_code: de}\n    xfail: de is broken upstream\n"
    )
    project.notebook("decided", "assert region_code != 'de'", decided)
    project.notebook("xpass", "print(region_code)", "cases:\n  fr:\n    parameters: {region_code: fr}\n    xfail: hm\n")
    project.notebook("runtime", "print(region_code)", TWO)
    (project.root / "conftest.py").write_text(
        "import pytest\n\n\ndef pytest_runtest_setup(item):\n"
        "    if item.nodeid == 'runtime.ipynb::us':\n        pytest.skip('skipped by a conftest')\n"
    )
    project.commit()
    project.pytest("-p", "no:xdist")
    assert project.outcomes() == {
        "decided.ipynb::de": "xfailed",
        "decided.ipynb::fr": "passed",
        "decided.ipynb::us": "skipped",
        "runtime.ipynb::fr": "passed",
        "runtime.ipynb::us": "skipped",
        "xpass.ipynb::fr": "xpassed",
    }
    result = project.promote()
    assert result.code == 5, result.text
    assert "runtime.ipynb: case 'us' skipped at run time" in result.out
    assert "xpass.ipynb: case 'fr' xpassed" in result.out
    assert project.published() == ["decided.ipynb"]

    (project.root / "pyproject.toml").write_text("[tool.nbpromote]\naccept_fixture_skips = false\n")
    project.commit()
    project.pytest("-p", "no:xdist")
    strict = project.promote()
    assert strict.code == 4, strict.text
    assert "decided.ipynb: case 'us' skipped by its fixture (no us data yet) and accept_fixture_skips is false" in (
        strict.err
    )


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ('{"schema": "pytest-notebooks/results", "version": 3, "notebooks": {}}', "invalid results file at"),
        ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
        ("\x00", "NUL bytes"),
        ('{"schema": "pytest-notebooks/results", "version": 1}', "results schema version 1"),
    ],
    ids=["wrong-shape", "deep", "nul", "old-version"],
)
def test_a_malformed_results_file_is_one_line(project: Project, content: str, expected: str) -> None:
    project.notebook("x", "print(region_code)", TWO)
    project.commit()
    (project.root / "notebook-outputs").mkdir()
    (project.root / RESULTS).write_text(content)
    result = project.promote()
    assert result.code == 4, result.text
    assert expected in result.err
    assert "Traceback" not in result.text
    assert len(result.err.splitlines()) == 2  # the refusal and its hint

    merge = subprocess.run(
        [sys.executable, "-m", "pytest_notebooks.results.cli", "merge", "-o", "m.json", RESULTS],
        cwd=project.root,
        capture_output=True,
        text=True,
        check=False,
    )
    assert merge.returncode == 2
    assert merge.stderr.startswith("nbresults: cannot read: ")
    assert expected in merge.stderr
    assert len(merge.stderr.splitlines()) == 1


@pytest.mark.kernel
def test_results_file_is_world_readable(project: Project) -> None:
    project.notebook("x", "print(region_code)", "cases:\n  fr: {region_code: fr}\n")
    project.commit()
    assert project.pytest("-p", "no:xdist").returncode == 0
    assert (project.root / RESULTS).stat().st_mode & 0o777 == 0o644


@pytest.mark.kernel
def test_a_notebook_that_breaks_a_principle_is_held_back_until_its_fixture_raises_the_limit(
    project: Project,
) -> None:
    long_function = "def clean(rows):\n" + "    rows = rows\n" * 20 + "    return rows\n"
    project.notebook("a", "print(region_code)", TWO)
    project.notebook("b", long_function, TWO)
    project.commit()
    assert project.pytest("-p", "no:xdist", "--notebooks-lint").returncode == 1
    result = project.promote()
    assert result.code == 5, result.text
    assert "b.ipynb: breaks a principle: cell 2: function `clean` is 22 lines > max_function_lines 15" in result.out
    assert project.published() == ["a.ipynb"]

    (project.root / "b.yaml").write_text("principles: {max_function_lines: 25}\n" + TWO)
    project.commit()
    assert project.pytest("-p", "no:xdist", "--notebooks-lint").returncode == 0
    assert project.promote().code == 0
    assert project.published() == ["a.ipynb", "b.ipynb"]
