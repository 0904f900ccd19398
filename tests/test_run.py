"""Running cases end to end through pytester: real papermill, real ipykernel kernels."""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.gitrepo import init_repo
from tests.notebooks import PARAMS, TWO_REGIONS, Cell, write_notebook
from tests.subprocess_pytest import start_pytest

pytestmark = pytest.mark.kernel  # every test here runs notebooks in real kernels

FAILING: list[Cell] = [
    "md:# Aggregate plays by device",
    PARAMS,
    "counts = {'luna': 3}",
    "total = 0\nfor device in ['tv', 'web']:\n    total += 1\nvalue = counts[region_code]\nprint(value)",
    "print('done')",
]


def output(pytester: pytest.Pytester, *parts: str) -> dict[str, Any]:
    path = pytester.path.joinpath("notebook-outputs", *parts)
    return json.loads(path.read_text())  # type: ignore[no-any-return]


def sources(nb: dict[str, Any]) -> list[str]:
    return ["".join(cell["source"]) for cell in nb["cells"]]


def test_passing_cases_save_their_executed_notebooks(pytester: pytest.Pytester) -> None:
    write_notebook(
        pytester.path / "notebooks" / "vid_agg.ipynb",
        [PARAMS, "from pathlib import Path\nprint(region_code, Path('data.txt').read_text())"],
    )
    (pytester.path / "notebooks" / "data.txt").write_text("read from the notebook's directory")
    (pytester.path / "notebooks" / "vid_agg.yaml").write_text(TWO_REGIONS)
    result = pytester.runpytest("-v")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["notebooks/vid_agg.ipynb::luna PASSED*", "notebooks/vid_agg.ipynb::fr PASSED*"])
    for region in ("luna", "fr"):
        nb = output(pytester, "notebooks", "vid_agg", f"{region}.ipynb")
        assert nb["metadata"]["pytest_notebooks"]["outcome"] == "passed"
        assert nb["metadata"]["papermill"]["parameters"] == {"run_date": "2017-01-01", "region_code": region}
        printed = "".join(nb["cells"][2]["outputs"][0]["text"])
        assert printed == f"{region} read from the notebook's directory\n"


FAILURE_BLOCK = [
    "*_ [[]notebook] notebooks/vid_agg.ipynb::fr _*",
    "notebooks/vid_agg.ipynb::fr failed at cell 4 (In [4]), id cell-4: KeyError: 'fr'",
    "",
    "    1 | total = 0",
    "    2 | for device in ['tv', 'web']:",
    "    3 |     total += 1",
    "--> 4 | value = counts[region_code]",
    "    5 | print(value)",
    "",
    "-*",
    "KeyError*Traceback (most recent call last)",
    "Cell In[4], line 4",
    "*",
    "KeyError: 'fr'",
    "",
    "parameters: run_date='2017-01-01', region_code='fr'",
    "output notebook: notebook-outputs/notebooks/vid_agg/fr.ipynb",
    "reproduce: papermill notebooks/vid_agg.ipynb notebook-outputs/notebooks/vid_agg/fr.repro.ipynb --cwd notebooks "
    "-k python3 -p run_date 2017-01-01 -p region_code fr --execution-timeout 600",
]
SUMMARY = "FAILED notebooks/vid_agg.ipynb::fr - cell 4 (In [4]): KeyError: 'fr'"


@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["serial", "xdist"])
def test_failing_cell_report_is_the_same_with_and_without_xdist(pytester: pytest.Pytester, workers: list[str]) -> None:
    write_notebook(pytester.path / "notebooks" / "vid_agg.ipynb", FAILING)
    (pytester.path / "notebooks" / "vid_agg.yaml").write_text(TWO_REGIONS)
    result = pytester.runpytest_subprocess(*workers)
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines([*FAILURE_BLOCK, "*short test summary info*", SUMMARY])
    text = result.stdout.str()
    assert "\x1b[" not in text
    assert "pytest_notebooks" not in text  # no plugin traceback
    nb = output(pytester, "notebooks", "vid_agg", "fr.ipynb")
    assert nb["metadata"]["pytest_notebooks"]["failure"]["summary"] == "cell 4 (In [4]): KeyError: 'fr'"
    # the saved copy says where it failed, and a later papermill run removes those markers
    banner = nb["cells"][0]
    assert banner["metadata"]["tags"] == ["papermill-error-cell-tag"]
    assert "cell 4 (In [4])" in "".join(banner["source"])


def test_papermill_reproduce_command_works_and_keeps_the_saved_notebook(pytester: pytest.Pytester) -> None:
    write_notebook(pytester.path / "notebooks" / "vid_agg.ipynb", FAILING)
    (pytester.path / "notebooks" / "vid_agg.yaml").write_text(TWO_REGIONS)
    result = pytester.runpytest("-k", "fr")
    line = next(x for x in result.stdout.lines if x.startswith("reproduce: "))
    argv = line.removeprefix("reproduce: ").split()
    assert argv[0] == "papermill"
    saved = pytester.path / "notebook-outputs" / "notebooks" / "vid_agg" / "fr.ipynb"
    before = saved.read_bytes()
    rerun = pytester.run(sys.executable, "-m", *argv)
    assert rerun.ret == 1
    assert "KeyError: 'fr'" in rerun.stderr.str() + rerun.stdout.str()
    assert saved.read_bytes() == before  # the evidence is not overwritten
    assert saved.with_name("fr.repro.ipynb").exists()


def test_junitxml_gets_the_plain_message_and_the_output_path(pytester: pytest.Pytester) -> None:
    write_notebook(pytester.path / "notebooks" / "vid_agg.ipynb", FAILING)
    (pytester.path / "notebooks" / "vid_agg.yaml").write_text(TWO_REGIONS)
    pytester.runpytest("--junitxml=junit.xml", "--color=yes")
    xml = (pytester.path / "junit.xml").read_text()
    assert "message=\"cell 4 (In [4]): KeyError: 'fr'\"" in xml
    assert "\x1b" not in xml
    assert "#x1B" not in xml
    assert "Cell In[4], line 4" in xml  # the block itself, plain
    expected = "notebook-outputs/notebooks/vid_agg/fr.ipynb"  # relative to the rootdir, as in the results file
    assert f'<property name="notebook_output" value="{expected}" />' in xml


def test_colour_keeps_ansi_in_the_traceback_only_when_asked(pytester: pytest.Pytester) -> None:
    write_notebook(pytester.path / "vid_agg.ipynb", FAILING)
    (pytester.path / "vid_agg.yaml").write_text(TWO_REGIONS)
    coloured = pytester.runpytest("--color=yes", "-k", "fr").stdout.str()
    block = coloured.split("failed at cell 4")[1].split("parameters: ")[0]
    assert "\x1b[" in block  # IPython's coloured traceback
    plain = pytester.runpytest("--color=no", "-k", "fr").stdout.str()
    assert "\x1b[" not in plain


def test_per_cell_timeout_names_the_cell_and_the_limit(pytester: pytest.Pytester) -> None:
    write_notebook(pytester.path / "slow.ipynb", [PARAMS, "x = 1", "import time\ntime.sleep(30)", "y = 2"])
    (pytester.path / "slow.yaml").write_text("cell_timeout: 2\n")
    result = pytester.runpytest()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "slow.ipynb::default failed at cell 3 (In [3]), id cell-3: timed out after the per-cell limit of 2 s",
            "",
            "    1 | import time",
            "--> 2 | time.sleep(30)",
            "",
            "-*",
            "KeyboardInterrupt*Traceback (most recent call last)",
            "*",
            "KeyboardInterrupt: ",
            "",
            "raise `cell_timeout` in the fixture (or --notebooks-cell-timeout) if the cell is slow by design",
            "*",
            "FAILED slow.ipynb::default - cell 3 (In [3]): timed out after the per-cell limit of 2 s",
        ]
    )
    nb = output(pytester, "slow", "default.ipynb")
    assert nb["metadata"]["pytest_notebooks"]["failure"]["kind"] == "cell-timeout"


def test_whole_notebook_timeout_names_the_running_cell(pytester: pytest.Pytester) -> None:
    # Cell 3 waits for an event nobody sets: however slow the machine, the limit runs out there
    # (30 s leaves room for a slow kernel start, which counts against it).
    cells: list[Cell] = [PARAMS, "import threading", "threading.Event().wait()", "done = True"]
    write_notebook(pytester.path / "slow.ipynb", cells)
    (pytester.path / "slow.yaml").write_text("timeout: 30\ncell_timeout: 600\n")
    result = pytester.runpytest()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "reproduce: timeout 30s papermill slow.ipynb notebook-outputs/slow/default.repro.ipynb *",
            "*",
            "FAILED slow.ipynb::default - cell 3 (In [3]): still running when the whole-notebook limit of 30 s ran out",
        ]
    )


def test_the_kernel_start_counts_against_the_whole_notebook_limit(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A kernel that never gets ready fails the case when `timeout` runs out, not after 60 s."""
    spec = pytester.path / "share" / "jupyter" / "kernels" / "never-ready"
    spec.mkdir(parents=True)
    argv = [sys.executable, "-c", "import time; time.sleep(600)", "{connection_file}"]
    (spec / "kernel.json").write_text(json.dumps({"argv": argv, "display_name": "never", "language": "python"}))
    monkeypatch.setenv("JUPYTER_PATH", str(pytester.path / "share" / "jupyter"))
    write_notebook(pytester.path / "nb.ipynb", ["x = 1"], kernel="never-ready")
    (pytester.path / "nb.yaml").write_text("timeout: 3\n")
    result = pytester.runpytest_subprocess("-p", "no:xdist")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ["FAILED nb.ipynb::default - the kernel was not ready when the whole-notebook limit of 3 s ran out"]
    )
    case = output(pytester, "results.json")["cases"][0]
    assert case["failure"]["kind"] == "notebook-timeout"
    assert case["execution_seconds"] < 40  # it was 64 s: the fixed 60 s kernel start limit, then cleanup


def test_flag_sets_the_default_cell_timeout(pytester: pytest.Pytester) -> None:
    write_notebook(pytester.path / "slow.ipynb", ["import time\ntime.sleep(30)"])
    (pytester.path / "slow.yaml").write_text("")
    result = pytester.runpytest("--notebooks-cell-timeout=1")
    result.stdout.fnmatch_lines(
        ["FAILED slow.ipynb::default - cell 1 (In [1]): timed out after the per-cell limit of 1 s"]
    )


def test_dead_kernel_names_the_cell(pytester: pytest.Pytester) -> None:
    write_notebook(pytester.path / "crash.ipynb", ["x = 1", "import os\nos._exit(3)", "y = 2"])
    (pytester.path / "crash.yaml").write_text("")
    result = pytester.runpytest()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["FAILED crash.ipynb::default - cell 2*: the kernel died while this cell was running"])
    nb = output(pytester, "crash", "default.ipynb")
    assert nb["metadata"]["pytest_notebooks"]["failure"]["kind"] == "dead-kernel"


def test_sys_exit_zero_passes_and_nonzero_fails_as_in_papermill(pytester: pytest.Pytester) -> None:
    write_notebook(
        pytester.path / "early.ipynb",
        [
            PARAMS,
            "import sys\nif region_code == 'luna':\n    sys.exit(0)\nsys.exit(3)",
            "raise RuntimeError('not reached')",
        ],
    )
    (pytester.path / "early.yaml").write_text(TWO_REGIONS)
    result = pytester.runpytest()
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["FAILED early.ipynb::fr - cell 2 (In [3]): SystemExit: 3"])


def test_skip_execution_cells_are_not_run(pytester: pytest.Pytester) -> None:
    write_notebook(
        pytester.path / "nb.ipynb",
        [PARAMS, ("import time\ntime.sleep(100)\nraise RuntimeError('ran')", ["skip-execution"]), "x = 1"],
    )
    (pytester.path / "nb.yaml").write_text("cell_timeout: 20\n")
    result = pytester.runpytest()
    result.assert_outcomes(passed=1)
    assert output(pytester, "nb", "default.ipynb")["cells"][2]["outputs"] == []


def test_raises_exception_cell_that_raises_passes(pytester: pytest.Pytester) -> None:
    write_notebook(
        pytester.path / "nb.ipynb",
        [PARAMS, ("{}['missing']", ["raises-exception"]), "after = 1\nprint('after ran')"],
    )
    (pytester.path / "nb.yaml").write_text("")
    result = pytester.runpytest()
    result.assert_outcomes(passed=1)
    nb = output(pytester, "nb", "default.ipynb")
    assert not any("papermill-error-cell-tag" in c["metadata"].get("tags", []) for c in nb["cells"])
    assert nb["cells"][-1]["outputs"][0]["text"] == ["after ran\n"]


def test_raises_exception_cell_that_does_not_raise_fails(pytester: pytest.Pytester) -> None:
    write_notebook(pytester.path / "nb.ipynb", [PARAMS, ("x = 1", ["raises-exception"]), "y = 2"])
    (pytester.path / "nb.yaml").write_text("")
    result = pytester.runpytest()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "nb.ipynb::default failed at cell 2 (In [2]), id cell-2: tagged raises-exception but raised nothing",
            "*",
            "remove the raises-exception tag if the cell is meant to succeed now",
            "*",
            "FAILED nb.ipynb::default - cell 2 (In [2]): tagged raises-exception but raised nothing",
        ]
    )


def test_a_later_error_after_an_expected_one_is_reported(pytester: pytest.Pytester) -> None:
    write_notebook(pytester.path / "nb.ipynb", [PARAMS, ("1 / 0", ["raises-exception"]), "int('x')"])
    (pytester.path / "nb.yaml").write_text("")
    result = pytester.runpytest()
    result.stdout.fnmatch_lines(
        ["FAILED nb.ipynb::default - cell 3 (In [3]): ValueError: invalid literal for int() with base 10: 'x'"]
    )


def test_missing_kernel_says_which_and_how_to_pick_another(pytester: pytest.Pytester) -> None:
    write_notebook(pytester.path / "nb.ipynb", ["x = 1"], kernel="julia-1.9")
    (pytester.path / "nb.yaml").write_text("")
    result = pytester.runpytest()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "nb.ipynb::default failed: no kernel named 'julia-1.9' is installed here",
            "",
            "installed kernels: *python3*. Pick another with --notebooks-kernel NAME or `kernel:` in the "
            "fixture file, or install it (for a Python environment: python -m ipykernel install --user "
            "--name julia-1.9)",
            "*",
            "FAILED nb.ipynb::default - no kernel named 'julia-1.9' is installed here",
        ]
    )
    assert "Traceback" not in result.stdout.str()
    assert (pytester.path / "notebook-outputs" / "nb" / "default.ipynb").exists()
    result = pytester.runpytest("--notebooks-kernel=python3")
    result.assert_outcomes(passed=1)


def test_two_cases_under_xdist_write_separate_outputs_and_one_results_file(pytester: pytest.Pytester) -> None:
    nb_path = write_notebook(
        pytester.path / "notebooks" / "vid_agg.ipynb", [PARAMS, "assert region_code != 'boom'\nprint(region_code)"]
    )
    fixture = pytester.path / "notebooks" / "vid_agg.yaml"
    fixture.write_text(TWO_REGIONS + "  boom:\n    region_code: boom\n")
    write_notebook(pytester.path / "notebooks" / "report.ipynb", ["print('report')"])
    (pytester.path / "notebooks" / "report.yaml").write_text("")
    result = pytester.runpytest_subprocess("-n", "2")
    result.assert_outcomes(passed=3, failed=1)
    for region in ("luna", "fr", "boom"):
        nb = output(pytester, "notebooks", "vid_agg", f"{region}.ipynb")
        assert nb["metadata"]["papermill"]["parameters"]["region_code"] == region
    results = output(pytester, "results.json")
    assert results["schema"] == "pytest-notebooks/results"
    assert results["version"] == 3
    assert results["summary"] == {"passed": 3, "failed": 1}
    by_case = {(c["notebook"], c["case"]): c for c in results["cases"]}
    assert set(by_case) == {
        ("notebooks/vid_agg.ipynb", "luna"),
        ("notebooks/vid_agg.ipynb", "fr"),
        ("notebooks/vid_agg.ipynb", "boom"),
        ("notebooks/report.ipynb", "default"),
    }
    boom = by_case[("notebooks/vid_agg.ipynb", "boom")]
    assert boom["outcome"] == "failed"
    assert boom["failure"]["summary"] == "cell 2 (In [3]): AssertionError"
    assert boom["output"] == "notebook-outputs/notebooks/vid_agg/boom.ipynb"
    assert boom["parameters"] == {"run_date": "2017-01-01", "region_code": "boom"}
    assert by_case[("notebooks/vid_agg.ipynb", "fr")]["outcome"] == "passed"
    notebooks = {n["path"]: n for n in results["notebooks"]}
    agg = notebooks["notebooks/vid_agg.ipynb"]
    assert agg["sha256"] == hashlib.sha256(nb_path.read_bytes()).hexdigest()
    assert agg["fixture_sha256"] == hashlib.sha256(fixture.read_bytes()).hexdigest()
    assert agg["cases"] == ["luna", "fr", "boom"] or sorted(agg["cases"]) == ["boom", "fr", "luna"]
    assert agg["outcome"] == "not passed"
    assert notebooks["notebooks/report.ipynb"]["outcome"] == "passed"
    assert set(results["versions"]) >= {"pytest-notebooks", "papermill", "nbclient", "ipykernel", "python"}
    assert results["git"] is None  # pytester.path is not a git repository


def test_results_file_records_git_state_and_skips(pytester: pytest.Pytester) -> None:
    repo = init_repo(pytester.path)
    write_notebook(pytester.path / "nb.ipynb", [PARAMS])
    (pytester.path / "nb.yaml").write_text("cases:\n  a: {}\n  b:\n    parameters: {}\n    skip: later\n")
    (pytester.path / "tox.ini").write_text("[pytest]\n")
    repo.index.add(["nb.ipynb", "nb.yaml", "tox.ini"])
    commit = repo.index.commit("notebooks").hexsha
    pytester.runpytest("--notebooks-results=out/results.json")
    results = json.loads((pytester.path / "out" / "results.json").read_text())
    assert results["git"] == {"commit": commit, "dirty": False, "branch": repo.active_branch.name}
    assert {c["case"]: c["outcome"] for c in results["cases"]} == {"a": "passed", "b": "skipped"}
    (pytester.path / "nb.yaml").write_text("")
    pytester.runpytest("--notebooks-results=out/results.json")
    assert json.loads((pytester.path / "out" / "results.json").read_text())["git"]["dirty"] is True


def test_output_dir_from_ini_and_flag(pytester: pytest.Pytester) -> None:
    write_notebook(pytester.path / "nb.ipynb", ["x = 1"])
    (pytester.path / "nb.yaml").write_text("")
    pytester.makeini("[pytest]\nnotebooks_output_dir = build/executed\n")
    pytester.runpytest().assert_outcomes(passed=1)
    assert (pytester.path / "build" / "executed" / "nb" / "default.ipynb").exists()
    assert (pytester.path / "build" / "executed" / "results.json").exists()
    pytester.runpytest("--notebooks-output-dir", "elsewhere").assert_outcomes(passed=1)
    assert (pytester.path / "elsewhere" / "nb" / "default.ipynb").exists()


def test_interrupted_run_keeps_the_output_notebook(pytester: pytest.Pytester) -> None:
    import signal
    import time

    write_notebook(pytester.path / "nb.ipynb", ["print('started', flush=True)", "import time\ntime.sleep(60)"])
    (pytester.path / "nb.yaml").write_text("")
    target = pytester.path / "notebook-outputs" / "nb" / "default.ipynb"
    proc = start_pytest(pytester.path, "-p", "no:cacheprovider")
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if target.exists() and "started\\n" in target.read_text():  # the output, not the source
                break
            time.sleep(0.2)
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=60)
    finally:
        proc.kill()
        proc.wait()  # reaped, whatever happened
    assert "KeyboardInterrupt" in out
    nb = json.loads(target.read_text())
    assert nb["metadata"]["pytest_notebooks"]["outcome"] == "failed"
    failure = nb["metadata"]["pytest_notebooks"]["failure"]
    assert (failure["kind"], failure["cell"]) == ("interrupted", 2)
    assert nb["cells"][1]["outputs"][0]["text"] == ["started\n"]


def test_papermill_own_test_notebooks(pytester: pytest.Pytester) -> None:
    """As a new user would: papermill's simple_execute with a fixture, and broken1 for a failure."""
    import papermill

    shipped = Path(papermill.__file__).parent / "tests" / "notebooks"
    if not shipped.is_dir():
        pytest.skip("this papermill wheel ships no test notebooks")
    for name in ("simple_execute", "broken1"):
        (pytester.path / f"{name}.ipynb").write_bytes((shipped / f"{name}.ipynb").read_bytes())
    (pytester.path / "simple_execute.yaml").write_text("cases:\n  hello: {msg: hello}\n  empty: {}\n")
    (pytester.path / "broken1.yaml").write_text("")
    result = pytester.runpytest()
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(
        [
            "broken1.ipynb::default failed at cell 7 (In [2]): AssertionError",
            "",
            "--> 1 | assert False",
            "*",
            "FAILED broken1.ipynb::default - cell 7 (In [2]): AssertionError",
        ]
    )
    hello = output(pytester, "simple_execute", "hello.ipynb")
    assert hello["cells"][2]["outputs"][0]["text"] == ["hello\n"]


def test_unwritable_output_dir_is_a_clear_failure(pytester: pytest.Pytester) -> None:
    write_notebook(pytester.path / "nb.ipynb", ["x = 1"])
    (pytester.path / "nb.yaml").write_text("")
    (pytester.path / "blocked").write_text("a file where the output directory should be")
    result = pytester.runpytest("--notebooks-output-dir=blocked/out")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "notebooks: could not write the results file blocked/out/results.json: *",
            "FAILED nb.ipynb::default - *Error: cannot create the output directory for *blocked/out/nb/default.ipynb*",
        ]
    )
    assert "pytest_notebooks/" not in result.stdout.str()
    assert "INTERNALERROR" not in result.stdout.str()


def old_notebook(path: Path, sources: list[str], kernel: str = "python3") -> None:
    """An nbformat 4.4 notebook, as older Jupyter versions save them: no cell ids."""
    cells: list[dict[str, Any]] = [
        {"cell_type": "code", "metadata": {}, "source": source, "outputs": [], "execution_count": None}
        for source in sources
    ]
    metadata = {"kernelspec": {"name": kernel, "display_name": kernel, "language": "python"}}
    path.write_text(json.dumps({"cells": cells, "metadata": metadata, "nbformat": 4, "nbformat_minor": 4}))


def test_failures_read_as_one_line_and_saved_copies_stay_valid(pytester: pytest.Pytester) -> None:
    from nbformat import read, validate

    old_notebook(pytester.path / "old.ipynb", ["x = 1", "raise ValueError('\\nthe real message\\nmore')"])
    old_notebook(pytester.path / "gone.ipynb", ["x = 1"], kernel="no-such-kernel")
    old_notebook(pytester.path / "alias.ipynb", ["import sys\nprint(sys.executable)"], kernel="python")
    write_notebook(pytester.path / "magic.ipynb", ["x = 1", "%no_such_magic"])
    write_notebook(pytester.path / "big.ipynb", [("blob = ''", ["parameters"]), "assert len(blob) < 1000"])
    for name in ("old", "gone", "alias", "magic"):
        (pytester.path / f"{name}.yaml").write_text("")
    (pytester.path / "big.yaml").write_text(f"parameters:\n  blob: {'b' * 100_000}\n")
    result = pytester.runpytest("-p", "no:xdist")
    result.assert_outcomes(passed=1, failed=4)  # alias.ipynb: `python` is the native kernel, as for papermill
    result.stdout.fnmatch_lines(
        [
            f"parameters: blob='{'b' * 199}... [[]99,802 more characters]",
            "output notebook: notebook-outputs/big/default.ipynb",
            f"reproduce: papermill big.ipynb * -p blob '{'b' * 200}... [[]99,800 more characters]' *",
            "*",
            "magic.ipynb::default failed at cell 2 (In [2]), id cell-2: UsageError: Line magic function "
            "`%no_such_magic` not found.",
            "*",
            "old.ipynb::default failed at cell 2 (In [2]): ValueError: the real message",
        ]
    )
    result.stdout.fnmatch_lines(
        [
            "FAILED big.ipynb::default - cell 2 (In [3]): AssertionError",
            "FAILED gone.ipynb::default - no kernel named 'no-such-kernel' is installed here",
            "FAILED magic.ipynb::default - cell 2 (In [2]): UsageError: Line magic function `%no_such_magic` "
            "not found.",
            "FAILED old.ipynb::default - cell 2 (In [2]): ValueError: the real message",
        ]
    )
    assert len(result.stdout.str()) < 20_000  # the 100,000-character parameter is not printed
    assert "is invalid" not in result.stdout.str()  # no schema dump from nbformat's validator
    for saved in (pytester.path / "notebook-outputs").rglob("*.ipynb"):
        validate(read(str(saved), as_version=4))  # type: ignore[no-untyped-call]


class _LiveNotebooks:
    """After each case: how many executed notebooks' nodes are still alive in this process."""

    def __init__(self) -> None:
        self.counts: list[int] = []

    def pytest_runtest_logfinish(self) -> None:
        import gc

        from nbformat import NotebookNode

        gc.collect()
        self.counts.append(sum(isinstance(o, NotebookNode) for o in gc.get_objects()))


def test_a_long_run_keeps_no_notebook_or_record_per_case(pytester: pytest.Pytester) -> None:
    """Items and reports live until the session ends; what a case leaves on them stays small: the
    executed notebook is not kept with the item, and the record leaves the report once the
    recorder has it (a 1,000-case run grew by the notebooks and three records a case)."""
    from pytest_notebooks.results.recorder import REPORT_ATTRIBUTE

    write_notebook(pytester.path / "nb.ipynb", [PARAMS, "print(region_code)", "x = 1"])
    (pytester.path / "nb.yaml").write_text("cases:\n" + "".join(f"  c{i}: {{region_code: r{i}}}\n" for i in range(5)))
    probe = _LiveNotebooks()
    reprec = pytester.inline_run("-p", "no:xdist", plugins=[probe])
    reprec.assertoutcome(passed=5)
    assert probe.counts[1:] == [probe.counts[1]] * 4, probe.counts  # flat after the first case
    reports = reprec.getreports("pytest_runtest_logreport")
    assert len(reports) == 15
    assert not [r for r in reports if hasattr(r, REPORT_ATTRIBUTE)]
    cases = output(pytester, "results.json")["cases"]
    assert [(c["case"], c["outcome"], c["kernel"]) for c in cases] == [(f"c{i}", "passed", "python3") for i in range(5)]
