"""Output limits end to end: a cell that prints without end is stopped, memory stays bounded."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.notebooks import write_notebook

RSS_BOUND_KB = 500_000  # pytest's peak RSS for the print loop; about 185 MB measured, 4-6 GB before the limit

# Written into the run's rootdir: the pytest process reports its own peak resident set size.
REPORT_PEAK_RSS = """\
def pytest_unconfigure(config):
    with open("/proc/self/status") as status:
        peak = next(line for line in status if line.startswith("VmHWM:"))
    with open("peak-rss.txt", "w") as out:
        out.write(peak.split()[1])
"""


def saved(pytester: pytest.Pytester, *parts: str) -> dict[str, Any]:
    return json.loads(pytester.path.joinpath("notebook-outputs", *parts).read_text())  # type: ignore[no-any-return]


def text(output: dict[str, Any]) -> str:
    value = output.get("text", "")
    return "".join(value) if isinstance(value, list) else str(value)


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads the peak RSS from /proc")
@pytest.mark.kernel
def test_a_print_loop_is_stopped_at_the_cell_limit_and_memory_stays_bounded(pytester: pytest.Pytester) -> None:
    write_notebook(pytester.path / "nb.ipynb", ["print('before')", "while True:\n    print('x' * 1000)", "y = 1"])
    (pytester.path / "nb.yaml").write_text("cell_timeout: 60\n")
    pytester.makeconftest(REPORT_PEAK_RSS)
    result = pytester.runpytest_subprocess("-p", "no:xdist", "--notebooks-max-cell-output=1MB")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "nb.ipynb::default failed at cell 2 (In [2]), id cell-2: printed more than the per-cell output limit "
            "of 1 MB and was stopped",
            "",
            "* 1 | while True:",  # the interrupt lands on either line of the loop: the arrow marks it
            "* 2 |     print('x' * 1000)",
            "",
            "-*",
            "KeyboardInterrupt*Traceback (most recent call last)",
            "*",
            "the output notebook keeps the head and the tail of the output; raise --notebooks-max-cell-output "
            "(ini notebooks_max_cell_output) if the notebook is meant to print this much",
            "*",
            "FAILED nb.ipynb::default - cell 2 (In [2]): printed more than the per-cell output limit of 1 MB and "
            "was stopped",
        ]
    )
    assert len([line for line in result.stdout.lines if line.startswith(("--> 1 | while", "--> 2 |     print"))]) == 1
    case = saved(pytester, "results.json")["cases"][0]
    assert case["failure"]["kind"] == "output-limit"
    assert case["execution_seconds"] < 60  # stopped by the output limit, not by the cell timeout

    peak_kb = int((pytester.path / "peak-rss.txt").read_text())
    assert peak_kb < RSS_BOUND_KB, f"pytest's peak RSS was {peak_kb / 1000:.0f} MB"

    path = pytester.path / "notebook-outputs" / "nb" / "default.ipynb"
    assert path.stat().st_size < 2_500_000  # 1 MB of head, 100 kB of tail, the rest of the notebook
    outputs = saved(pytester, "nb", "default.ipynb")["cells"][3]["outputs"]  # banner, cell 1, anchor, cell 2
    head, marker, (tail, error) = split_at_marker(outputs)
    assert head.startswith("x" * 1000 + "\n")
    assert len(head) == 1_000_000
    assert marker["name"] == "stderr"
    assert "the output passed the per-cell output limit of 1 MB here, and the cell was stopped" in text(marker)
    assert "characters left out before the last ones below" in text(marker)
    assert (tail["name"], set(text(tail))) == ("stdout", {"x", "\n"})
    assert 0 < len(text(tail)) <= 100_000
    assert error["ename"] == "KeyboardInterrupt"
    later = saved(pytester, "nb", "default.ipynb")["cells"][4]
    assert later["execution_count"] is None  # the case stopped there


@pytest.mark.kernel
def test_a_cell_that_ignores_the_interrupt_is_abandoned(pytester: pytest.Pytester) -> None:
    loop = "import signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\nwhile True:\n    print('x' * 1000)"
    write_notebook(pytester.path / "deaf.ipynb", [loop, "print('never')"])
    (pytester.path / "deaf.yaml").write_text("cell_timeout: 300\n")
    result = pytester.runpytest("-p", "no:xdist", "--notebooks-max-cell-output=100kB")
    result.stdout.fnmatch_lines(
        [
            "FAILED deaf.ipynb::default - cell 1 (In [1]): printed more than the per-cell output limit of 100 kB "
            "and was stopped"
        ]
    )
    case = saved(pytester, "results.json")["cases"][0]
    assert case["execution_seconds"] < 300  # given up INTERRUPT_GRACE (10 s) after the interrupt
    head, _, _ = split_at_marker(saved(pytester, "deaf", "default.ipynb")["cells"][2]["outputs"])
    assert len(head) == 100_000


def split_at_marker(outputs: list[dict[str, Any]]) -> tuple[str, dict[str, Any], list[dict[str, Any]]]:
    """The text kept before the limit's marker line, the marker, and the outputs after it."""
    at = next(i for i, out in enumerate(outputs) if "[pytest-notebooks: the output passed" in text(out))
    return "".join(text(out) for out in outputs[:at]), outputs[at], outputs[at + 1 :]


@pytest.mark.kernel
def test_the_whole_notebook_limit_counts_every_cell(pytester: pytest.Pytester) -> None:
    print_400k = "print('y' * 400_000)"
    write_notebook(pytester.path / "many.ipynb", [print_400k, print_400k, "x = 1", print_400k, print_400k])
    write_notebook(pytester.path / "few.ipynb", [print_400k, print_400k])
    for name in ("many", "few"):
        (pytester.path / f"{name}.yaml").write_text("")
    pytester.makeini(
        "[pytest]\n"
        "filterwarnings = ignore::pytest.PytestAssertRewriteWarning\n"
        "notebooks_max_output = 1MB\n"
        "notebooks_max_cell_output = 500kB\n"
    )
    result = pytester.runpytest("-p", "no:xdist")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            "the output notebook keeps the head and the tail of the output; raise --notebooks-max-output "
            "(ini notebooks_max_output) if the notebook is meant to print this much",
            "*",
            "FAILED many.ipynb::default - cell 4 (In [4]): printed more than the whole-notebook output limit "
            "of 1 MB and was stopped",
        ]
    )
    cells = saved(pytester, "many", "default.ipynb")["cells"]  # banner, cells 1-3, anchor, cells 4-5
    head, _, _ = split_at_marker(cells[5]["outputs"])
    assert len(head) == 1_000_000 - 2 * 400_001  # what cells 1 and 2 left of the 1 MB
    assert cells[6]["execution_count"] is None

    # The flag wins over the ini; 0 turns the limit off.
    result = pytester.runpytest("-p", "no:xdist", "--notebooks-max-output=0")
    result.assert_outcomes(passed=2)


@pytest.mark.parametrize(
    ("flag", "message"),
    [
        ("--notebooks-max-cell-output=lots", "argument --notebooks-max-cell-output: expected a number of characters "),
        ("--notebooks-max-output=12XB", "argument --notebooks-max-output: expected a number of characters "),
        ("--notebooks-kernel-env=empty", "argument --notebooks-kernel-env: invalid choice: 'empty'"),
    ],
)
def test_a_bad_setting_is_a_usage_error(pytester: pytest.Pytester, flag: str, message: str) -> None:
    result = pytester.runpytest(flag)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*{message}*"])
