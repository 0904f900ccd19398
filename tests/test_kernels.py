"""Kernels started one case ahead: every case still has a process of its own, in its directory."""

from __future__ import annotations

import json
import os

import pytest

from tests.notebooks import PARAMS, write_notebook

pytestmark = pytest.mark.kernel  # every test here runs notebooks in real kernels

REPORT = "import os\nprint(os.getpid(), os.getcwd(), region_code)"


def test_each_case_runs_in_its_own_kernel_started_in_its_directory(pytester: pytest.Pytester) -> None:
    for folder in ("a", "b"):
        write_notebook(pytester.path / folder / "nb.ipynb", [PARAMS, REPORT])
        (pytester.path / folder / "nb.yaml").write_text(
            "cases:\n  one: {region_code: one}\n  two: {region_code: two}\n"
        )
    skipped = "cases:\n  later:\n    parameters: {region_code: later}\n    skip: not yet\n"
    write_notebook(pytester.path / "c" / "nb.ipynb", [PARAMS, REPORT])
    (pytester.path / "c" / "nb.yaml").write_text(skipped)  # a kernel started ahead for it is stopped
    result = pytester.runpytest("-p", "no:xdist")
    result.assert_outcomes(passed=4, skipped=1)
    seen = {}
    for folder in ("a", "b"):
        for case in ("one", "two"):
            nb = json.loads((pytester.path / "notebook-outputs" / folder / "nb" / f"{case}.ipynb").read_text())
            pid, cwd, region = nb["cells"][2]["outputs"][0]["text"][0].split()
            assert (cwd, region) == (str(pytester.path / folder), case)
            seen[(folder, case)] = int(pid)
    assert len(set(seen.values())) == 4  # no kernel ran two cases
    for pid in seen.values():  # and none is left running after the session
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def test_a_case_on_another_kernel_gets_the_right_one(pytester: pytest.Pytester) -> None:
    write_notebook(pytester.path / "a.ipynb", ["print('a')"])
    write_notebook(pytester.path / "b.ipynb", ["print('b')"], kernel="no-such-kernel")
    write_notebook(pytester.path / "c.ipynb", ["print('c')"])
    for name in "abc":
        (pytester.path / f"{name}.yaml").write_text("")
    result = pytester.runpytest("-p", "no:xdist")
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(["FAILED b.ipynb::default - no kernel named 'no-such-kernel' is installed here"])


def test_kernel_shutdown_prints_nothing_into_other_cases(pytester: pytest.Pytester) -> None:
    """Thirty quick cases, three interrupted at their cell limit: no ZMQError or other traceback in
    any case's captured output (ipykernel 7.4 printed one at shutdown in about one run in five).

    What a kernel writes to its own stderr while it shuts down is dropped, so this checks that
    deterministically too: an atexit handler's write never shows, a write while a cell runs does.
    """
    write_notebook(pytester.path / "quick.ipynb", [PARAMS, "print(region_code)"])
    cases = "".join(f"  c{i}: {{region_code: r{i}}}\n" for i in range(26))
    (pytester.path / "quick.yaml").write_text(f"cases:\n{cases}")
    write_notebook(pytester.path / "stuck.ipynb", [PARAMS, "import threading\nthreading.Event().wait()"])
    stuck = "".join(f"  s{i}:\n    parameters: {{region_code: s{i}}}\n    xfail: waits for ever\n" for i in range(3))
    (pytester.path / "stuck.yaml").write_text(f"cell_timeout: 1\ncases:\n{stuck}")
    write_notebook(
        pytester.path / "exits.ipynb",
        [
            "import atexit, subprocess, time\n"
            "subprocess.run(['sh', '-c', 'echo KERNEL-WHILE-RUNNING >&2'])\n"
            "time.sleep(1)  # the echo reaches pytest while the case runs\n"
            "atexit.register(subprocess.run, ['sh', '-c', 'echo KERNEL-AT-EXIT >&2'])"
        ],
    )
    (pytester.path / "exits.yaml").write_text("")
    result = pytester.runpytest_subprocess("-p", "no:xdist", "-rP")  # -rP: captured output of passes too
    result.assert_outcomes(passed=27, xfailed=3)
    output = result.stdout.str() + result.stderr.str()
    assert "ZMQError" not in output
    assert "Traceback" not in output
    assert "KERNEL-WHILE-RUNNING" in output
    assert "KERNEL-AT-EXIT" not in output
