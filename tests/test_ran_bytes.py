"""What ran is what was collected (issue 20): real pytest runs, real kernels, real papermill.

A notebook's sha256 is taken at collection. A case must run exactly those bytes, or fail saying
the file changed; a notebook reached by two paths (a directory symlink) is collected once; a
symlink that loops is a clean message, never a traceback.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import pytest

from tests.notebooks import write_notebook

SERIAL = ["-p", "no:randomly", "-n", "0"]  # a.ipynb runs before b.ipynb: file name order
WARNING = "default::pytest_notebooks.errors.PytestNotebooksWarning"  # the outer run's filterwarnings = error


def results(pytester: pytest.Pytester) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((pytester.path / "notebook-outputs" / "results.json").read_text())
    return document


def cases(pytester: pytest.Pytester) -> dict[str, dict[str, Any]]:
    return {case["nodeid"]: case for case in results(pytester)["cases"]}


def notebooks(pytester: pytest.Pytester) -> dict[str, str]:
    return {entry["path"]: entry["outcome"] for entry in results(pytester)["notebooks"]}


# ---------------------------------------------------------------- a notebook that rewrites another


def swapping_project(root: Path, passing_b: list[str]) -> None:
    """a.ipynb copies ``b_passing.json`` over b.ipynb, whose committed version raises."""
    write_notebook(
        root / "a.ipynb", [("x = 1", ["parameters"]), "import shutil\nshutil.copyfile('b_passing.json', 'b.ipynb')"]
    )
    (root / "a.yaml").write_text("cases:\n  swap: {}\n")
    write_notebook(root / "b.ipynb", [("x = 1", ["parameters"]), "raise ValueError('the committed b.ipynb raises')"])
    (root / "b.ipynb").rename(root / "b_committed.json")
    write_notebook(root / "b.ipynb", [("x = 1", ["parameters"]), *passing_b])
    (root / "b.ipynb").rename(root / "b_passing.json")
    (root / "b.ipynb").write_bytes((root / "b_committed.json").read_bytes())
    (root / "b.yaml").write_text("cases:\n  only: {}\n")


def assert_b_failed_as_changed(pytester: pytest.Pytester, result: pytest.RunResult) -> None:
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            "b.ipynb::only failed: b.ipynb changed on disk after it was collected (sha256 * at collection, * now): "
            "not run",
            "",
            "hint: run pytest again, so that it collects and runs the notebook as it is now*",
            "*short test summary info*",
            "FAILED b.ipynb::only - b.ipynb changed on disk after it was collected *",
        ]
    )
    assert "Traceback" not in result.stdout.str()
    record = cases(pytester)["b.ipynb::only"]
    assert record["outcome"] == "failed"
    assert record["failure"]["kind"] == "notebook-changed"
    assert record["notebook_sha256"] == sha256_of(pytester.path / "b_committed.json")
    assert notebooks(pytester)["b.ipynb"] == "not passed"
    assert cases(pytester)["a.ipynb::swap"]["outcome"] == "passed"
    saved = json.loads((pytester.path / "notebook-outputs" / "b" / "only.ipynb").read_text())
    assert saved["metadata"]["pytest_notebooks"]["outcome"] == "failed"  # still saved, stamped
    ran = json.loads((pytester.path / "notebook-outputs" / "a" / "swap.ipynb").read_text())
    assert ran["metadata"]["papermill"]["input_path"] == str(pytester.path / "a.ipynb")  # a path, not the notebook


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.kernel
def test_a_notebook_swapped_before_it_runs_fails_as_changed(pytester: pytest.Pytester) -> None:
    swapping_project(pytester.path, ["print('the swapped-in b.ipynb passes')"])
    result = pytester.runpytest(*SERIAL)
    assert_b_failed_as_changed(pytester, result)


@pytest.mark.kernel
def test_a_notebook_swapped_and_swapped_back_fails_as_changed(pytester: pytest.Pytester) -> None:
    """The swapped-in version restores the committed bytes as it runs: after the run the file is the
    committed one again, so only reading the bytes once, before the run, can tell."""
    swapping_project(pytester.path, ["import shutil\nshutil.copyfile('b_committed.json', 'b.ipynb')"])
    result = pytester.runpytest(*SERIAL)
    assert_b_failed_as_changed(pytester, result)


@pytest.mark.kernel
def test_the_principles_are_measured_on_the_bytes_collected(pytester: pytest.Pytester) -> None:
    """--notebooks-lint: b.ipynb::principles reads the notebook at run time too; nbpromote trusts it."""
    swapping_project(pytester.path, ["print('the swapped-in b.ipynb passes')"])
    result = pytester.runpytest(*SERIAL, "--notebooks-lint", "-rf")
    result.assert_outcomes(passed=2, failed=2)
    result.stdout.fnmatch_lines(
        [
            "b.ipynb changed on disk after it was collected (sha256 * at collection, * now): not measured",
            "hint: run pytest again, so that it collects and runs the notebook as it is now*",
        ]
    )
    result.stdout.fnmatch_lines(["FAILED b.ipynb::principles - b.ipynb changed on disk after it was collected *"])
    assert "Traceback" not in result.stdout.str()


@pytest.mark.kernel
def test_a_notebook_that_rewrites_itself_while_it_runs_ran_what_was_collected(pytester: pytest.Pytester) -> None:
    """Saved over while it runs (Jupyter open on it): the run and the record are of the collected bytes."""
    write_notebook(pytester.path / "later.ipynb", [("x = 1", ["parameters"]), "raise ValueError('saved later')"])
    (pytester.path / "later.ipynb").rename(pytester.path / "later.json")
    write_notebook(
        pytester.path / "b.ipynb",
        [("x = 1", ["parameters"]), "import shutil\nshutil.copyfile('later.json', 'b.ipynb')", "print('ran')"],
    )
    collected = sha256_of(pytester.path / "b.ipynb")
    (pytester.path / "b.yaml").write_text("cases:\n  only: {}\n")
    result = pytester.runpytest(*SERIAL)
    result.assert_outcomes(passed=1)
    assert cases(pytester)["b.ipynb::only"]["notebook_sha256"] == collected
    saved = json.loads((pytester.path / "notebook-outputs" / "b" / "only.ipynb").read_text())
    assert "".join(saved["cells"][-1]["outputs"][0]["text"]) == "ran\n"


@pytest.mark.kernel
def test_a_fixture_rewritten_during_the_run_runs_and_records_the_parameters_collected(
    pytester: pytest.Pytester,
) -> None:
    """The fixture is read once, at collection: its hash, the parameters and skip/xfail come from the
    same bytes, and nothing reads it again at run time."""
    write_notebook(
        pytester.path / "a.ipynb",
        [("x = 1", ["parameters"]), "open('b.yaml', 'w').write('cases:\\n  only: {x: 2}\\n')"],
    )
    (pytester.path / "a.yaml").write_text("cases:\n  swap: {}\n")
    write_notebook(pytester.path / "b.ipynb", [("x = 0", ["parameters"]), "assert x == 1, x"])
    (pytester.path / "b.yaml").write_text("cases:\n  only: {x: 1}\n")
    collected = sha256_of(pytester.path / "b.yaml")
    result = pytester.runpytest(*SERIAL)
    result.assert_outcomes(passed=2)
    assert (pytester.path / "b.yaml").read_text() == "cases:\n  only: {x: 2}\n"  # it was rewritten
    record = cases(pytester)["b.ipynb::only"]
    assert (record["parameters"], record["fixture_sha256"]) == ({"x": 1}, collected)


# ---------------------------------------------------------------- one notebook, two paths


def aliased_project(root: Path) -> None:
    """notebooks/a.ipynb with a passing and a failing case, and ``alias -> notebooks``."""
    write_notebook(root / "notebooks" / "a.ipynb", [("x = 1", ["parameters"]), "assert x == 1"])
    (root / "notebooks" / "a.yaml").write_text("cases:\n  one: {x: 1}\n  two: {x: 2}\n")
    (root / "alias").symlink_to("notebooks", target_is_directory=True)


ALIAS_WARNING = (
    "*PytestNotebooksWarning: alias/a.ipynb is notebooks/a.ipynb reached through a symlink: "
    "collected once, as notebooks/a.ipynb*"
)


@pytest.mark.parametrize("workers", [["-n", "0"], ["-n", "2"]], ids=["serial", "xdist"])
@pytest.mark.kernel
def test_a_notebook_behind_a_directory_symlink_is_collected_once(pytester: pytest.Pytester, workers: list[str]) -> None:
    aliased_project(pytester.path)
    result = pytester.runpytest_subprocess("-p", "no:randomly", *workers, "-rf")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines([ALIAS_WARNING])
    result.stdout.fnmatch_lines(["FAILED notebooks/a.ipynb::two - *"])
    assert "alias/a.ipynb::" not in result.stdout.str()
    assert set(cases(pytester)) == {"notebooks/a.ipynb::one", "notebooks/a.ipynb::two"}
    assert notebooks(pytester) == {"notebooks/a.ipynb": "not passed"}


@pytest.mark.filterwarnings(WARNING)
def test_the_real_path_wins_in_either_sort_order(pytester: pytest.Pytester) -> None:
    aliased_project(pytester.path)
    (pytester.path / "zz").symlink_to("notebooks", target_is_directory=True)  # sorts after the real path
    result = pytester.runpytest("--collect-only", "-q")
    result.stdout.fnmatch_lines(["notebooks/a.ipynb::one", "notebooks/a.ipynb::two", "", "2 tests collected*"])
    result.stdout.fnmatch_lines([ALIAS_WARNING])
    result.stdout.fnmatch_lines(["*zz/a.ipynb is notebooks/a.ipynb reached through a symlink*"])


@pytest.mark.filterwarnings(WARNING)
def test_a_notebook_is_named_by_its_real_path_however_it_is_reached(pytester: pytest.Pytester) -> None:
    """The same node ids (and records) whether the run starts from the alias or the real directory,
    so that runs of one commit accumulate one record per case."""
    aliased_project(pytester.path)
    for args in (["alias"], ["--ignore=notebooks"], ["notebooks"]):
        result = pytester.runpytest("--collect-only", "-q", *args)
        result.stdout.fnmatch_lines(["notebooks/a.ipynb::one", "notebooks/a.ipynb::two", "", "2 tests collected*"])


@pytest.mark.filterwarnings(WARNING)
def test_a_notebook_given_by_its_alias_keeps_that_path(pytester: pytest.Pytester) -> None:
    """pytest matches a path on the command line to the collected file by its path."""
    aliased_project(pytester.path)
    result = pytester.runpytest("--collect-only", "-q", "alias/a.ipynb::two")
    result.stdout.fnmatch_lines(["alias/a.ipynb::two", "", "1 test collected*"])
    assert "PytestNotebooksWarning" not in result.stdout.str()


@pytest.mark.filterwarnings(WARNING)
def test_two_aliases_of_a_directory_outside_the_run_collect_the_first(
    pytester: pytest.Pytester, tmp_path: Path
) -> None:
    outside = tmp_path / "shared"
    write_notebook(outside / "a.ipynb", [("x = 1", ["parameters"]), "assert x == 1"])
    (outside / "a.yaml").write_text("cases:\n  one: {x: 1}\n")
    (pytester.path / "b").symlink_to(outside, target_is_directory=True)
    (pytester.path / "a").symlink_to(outside, target_is_directory=True)
    result = pytester.runpytest("--collect-only", "-q")
    result.stdout.fnmatch_lines(["a/a.ipynb::one", "", "1 test collected*"])
    result.stdout.fnmatch_lines(["*b/a.ipynb is a/a.ipynb reached through a symlink: collected once, as a/a.ipynb*"])


@pytest.mark.filterwarnings(WARNING)
def test_a_directory_symlink_to_its_parent_collects_each_notebook_once(pytester: pytest.Pytester) -> None:
    write_notebook(pytester.path / "a.ipynb", [("x = 1", ["parameters"])])
    (pytester.path / "a.yaml").write_text("cases:\n  one: {}\n")
    (pytester.path / "self").symlink_to(".", target_is_directory=True)
    result = pytester.runpytest("--collect-only", "-q")
    result.stdout.fnmatch_lines(["a.ipynb::one", "", "1 test collected*"])


@pytest.mark.filterwarnings(WARNING)
def test_a_notebook_and_fixture_symlinked_elsewhere_are_collected_at_their_real_path(pytester: pytest.Pytester) -> None:
    aliased_project(pytester.path)
    (pytester.path / "alias").unlink()
    (pytester.path / "a_copy").mkdir()  # sorts before the real directory
    (pytester.path / "a_copy" / "a.ipynb").symlink_to("../notebooks/a.ipynb")
    (pytester.path / "a_copy" / "a.yaml").symlink_to("../notebooks/a.yaml")
    result = pytester.runpytest("--collect-only", "-q")
    result.stdout.fnmatch_lines(["notebooks/a.ipynb::one", "notebooks/a.ipynb::two", "", "2 tests collected*"])
    result.stdout.fnmatch_lines(["*a_copy/a.ipynb is notebooks/a.ipynb reached through a symlink*"])


def test_a_notebook_symlinked_with_its_own_fixture_is_a_notebook_of_its_own(pytester: pytest.Pytester) -> None:
    """b.ipynb -> a.ipynb with a b.yaml of its own: the same template, other cases; both run."""
    write_notebook(pytester.path / "a.ipynb", [("x = 1", ["parameters"])])
    (pytester.path / "a.yaml").write_text("cases:\n  one: {}\n")
    (pytester.path / "b.ipynb").symlink_to("a.ipynb")
    (pytester.path / "b.yaml").write_text("cases:\n  two: {x: 2}\n")
    result = pytester.runpytest("--collect-only", "-q")
    result.stdout.fnmatch_lines(["a.ipynb::one", "b.ipynb::two", "", "2 tests collected*"])


# ---------------------------------------------------------------- symlinks that loop


def loop(path: Path) -> None:
    path.symlink_to(path.name)


def ok_notebook(root: Path) -> None:
    write_notebook(root / "ok.ipynb", [("x = 1", ["parameters"])])
    (root / "ok.yaml").write_text("cases:\n  one: {}\n")


def test_a_directory_symlink_that_loops_is_ignored(pytester: pytest.Pytester) -> None:
    ok_notebook(pytester.path)
    loop(pytester.path / "loop")
    result = pytester.runpytest("--collect-only", "-q")
    result.stdout.fnmatch_lines(["ok.ipynb::one", "", "1 test collected*"])
    assert "Traceback" not in result.stdout.str() + result.stderr.str()
    assert result.ret == pytest.ExitCode.OK


@pytest.mark.parametrize(
    ("fixture", "target", "why"),
    [
        ("x.yaml", "x.yaml", "Too many levels of symbolic links"),
        ("x.yml", "x.yml", "Too many levels of symbolic links"),
        ("x.yaml", "../gone/x.yaml", "No such file or directory"),
    ],
    ids=["yaml-loop", "yml-loop", "yaml-dangling"],
)
def test_a_fixture_symlink_that_leads_nowhere_is_a_collection_error(
    pytester: pytest.Pytester, fixture: str, target: str, why: str
) -> None:
    """Left out without a word, the notebook would go untested; the message names the link."""
    ok_notebook(pytester.path)
    write_notebook(pytester.path / "x.ipynb", [("x = 1", ["parameters"])])
    (pytester.path / fixture).symlink_to(target)
    result = pytester.runpytest("--collect-only", "-q", "-ra")
    result.stdout.fnmatch_lines(
        [
            f"{fixture}: is a symlink that cannot be followed ({why})",
            f"  hint: point {fixture} at a fixture file, or delete it",
            "*short test summary info*",
            f"ERROR x.ipynb - {fixture}: is a symlink that cannot be followed *",
        ]
    )
    assert "Traceback" not in result.stdout.str() + result.stderr.str()
    assert result.ret == pytest.ExitCode.INTERRUPTED


@pytest.mark.filterwarnings(WARNING)
def test_a_notebook_symlink_that_loops_is_named_in_the_warning(pytester: pytest.Pytester) -> None:
    ok_notebook(pytester.path)
    (pytester.path / "x.yaml").write_text("cases:\n  one: {}\n")
    loop(pytester.path / "x.ipynb")
    result = pytester.runpytest("--collect-only", "-q")
    result.stdout.fnmatch_lines(
        [
            "ok.ipynb::one",
            "*x.yaml:0: PytestNotebooksWarning: x.yaml reads as a notebook fixture, but x.ipynb beside it is a "
            "symlink that cannot be followed (*Too many levels of symbolic links*): no case in it runs. "
            "Hint: point x.ipynb at a notebook, or delete it",
        ]
    )
    assert "Traceback" not in result.stdout.str() + result.stderr.str()


@pytest.mark.kernel
def test_an_unreadable_notebook_symlink_under_xdist(pytester: pytest.Pytester) -> None:
    """Every variant at once, with two workers: the same clean messages, no crash."""
    ok_notebook(pytester.path)
    loop(pytester.path / "loop")
    write_notebook(pytester.path / "x.ipynb", [("x = 1", ["parameters"])])
    loop(pytester.path / "x.yaml")
    (pytester.path / "y.yaml").write_text("cases:\n  one: {}\n")
    loop(pytester.path / "y.ipynb")
    result = pytester.runpytest_subprocess("-n", "2", "-ra")
    result.stdout.fnmatch_lines(["ERROR x.ipynb - x.yaml: is a symlink that cannot be followed *"])
    text = result.stdout.str() + result.stderr.str()
    assert "Traceback" not in text
    assert "INTERNALERROR" not in text
    assert os.path.islink(pytester.path / "loop")


DELETES_ITS_OUTPUT = (
    "import subprocess, sys, textwrap\n"
    "watcher = textwrap.dedent('''\n"
    "    import os, signal, sys, time\n"
    "    signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
    "    path = sys.argv[1]\n"
    "    for _ in range(6000):\n"
    "        try:\n"
    '            if \'"evalue": "this template raises"\' in open(path).read():\n'
    "                os.remove(path)\n"
    "                break\n"
    "        except OSError:\n"
    "            pass\n"
    "        time.sleep(0.005)\n"
    "''')\n"
    "subprocess.Popen([sys.executable, '-c', watcher, 'notebook-outputs/nb/default.ipynb'], start_new_session=True)"
)


@pytest.mark.kernel
def test_a_case_is_judged_on_what_ran_not_on_what_a_leftover_process_left_on_disk(pytester: pytest.Pytester) -> None:
    """A process the notebook started deletes the saved copy once it shows the error: the case still fails."""
    write_notebook(
        pytester.path / "nb.ipynb",
        [
            ("x = 1", ["parameters"]),
            DELETES_ITS_OUTPUT,
            "import time\ntime.sleep(1)",
            "raise ValueError('this template raises')",
        ],
    )
    (pytester.path / "nb.yaml").write_text("")
    result = pytester.runpytest_subprocess("-p", "no:xdist")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["FAILED nb.ipynb::default - cell 4 (In [[]*[]]): ValueError: this template raises"])
    saved = json.loads((pytester.path / "notebook-outputs" / "nb" / "default.ipynb").read_text())
    assert saved["metadata"]["pytest_notebooks"]["outcome"] == "failed"
