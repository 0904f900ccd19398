"""The settings (options.py): values checked when pytest parses them, one precedence rule, one "no limit"."""

from __future__ import annotations

from argparse import ArgumentTypeError
from pathlib import Path

import pytest

from pytest_notebooks.collect import NotebookItem
from pytest_notebooks.options import (
    DEFAULT_CELL_TIMEOUT,
    DEFAULT_MAX_OUTPUT,
    KERNEL_STARTS,
    NO_LIMIT,
    SETTINGS,
    Layers,
    Options,
    Shard,
    module_names,
    seconds,
    shard,
    size,
)
from pytest_notebooks.run import kernels
from tests.notebooks import write_notebook

# ---------------------------------------------------------------- the values, called directly


@pytest.mark.parametrize(
    ("text", "expected"),
    [("30", 30.0), ("2.5", 2.5), (" 45 ", 45.0), ("0", NO_LIMIT), ("0.0", NO_LIMIT), ("inf", NO_LIMIT)],
)
def test_seconds(text: str, expected: float) -> None:
    assert seconds(text) == expected


@pytest.mark.parametrize("text", ["abc", "-1", "nan", "", "30s"])
def test_seconds_refused(text: str) -> None:
    with pytest.raises(ArgumentTypeError) as excinfo:
        seconds(text)
    assert str(excinfo.value) == f"expected a number of seconds such as 30 or 2.5 (0: no limit), got {text!r}"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("10MB", 10_000_000),
        ("500 kB", 500_000),
        ("1.5k", 1_500),
        ("2000000", 2_000_000),
        ("1gb", 1_000_000_000),
        ("0", NO_LIMIT),
        ("0MB", NO_LIMIT),
        ("inf", NO_LIMIT),
    ],
)
def test_size(text: str, expected: float) -> None:
    assert size(text) == expected


@pytest.mark.parametrize("text", ["lots", "12XB", "-1MB", "nan", "MB", ""])
def test_size_refused(text: str) -> None:
    with pytest.raises(ArgumentTypeError, match="expected a number of characters such as 10MB"):
        size(text)


def test_shard_and_module_names() -> None:
    assert shard("2/4") == Shard(2, 4)
    for text in ("0/2", "3/2", "2", "a/b", "1/0", "/"):
        with pytest.raises(ArgumentTypeError, match=r"expected I/N with 1 <= I <= N \(like 2/4\)"):
            shard(text)
    assert module_names("pandas, mylib.io,") == ("pandas", "mylib.io")
    with pytest.raises(ArgumentTypeError, match="'not a module' is not a module name"):
        module_names("pandas,not a module")


def test_the_kernel_starts_are_the_pools() -> None:
    """options.py declares the choices run/kernels.py's KernelPool takes: they must not drift apart."""
    assert KERNEL_STARTS == kernels.KERNEL_STARTS


def test_an_ini_value_goes_through_the_flags_check() -> None:
    declared = {setting.dest: setting for setting in SETTINGS}
    assert declared["notebooks_timeout"].from_ini("0") == NO_LIMIT
    assert declared["notebooks_timeout"].from_ini("  ") is None  # `notebooks_timeout =`: not set
    assert declared["notebooks_max_output"].from_ini("1MB") == 1_000_000
    assert declared["notebooks_preload"].from_ini(["json", "csv,json"]) == ("json", "csv", "json")
    with pytest.raises(ArgumentTypeError, match=r"^expected inherit or clean, got 'empty'$"):
        declared["notebooks_kernel_env"].from_ini("empty")
    with pytest.raises(ArgumentTypeError, match="expected a number of seconds"):
        declared["notebooks_cell_timeout"].from_ini("soon")


# ---------------------------------------------------------------- precedence, called directly

LIMIT = Layers(flag=40.0, ini=30.0, default=DEFAULT_CELL_TIMEOUT)


@pytest.mark.parametrize(
    ("layers", "fixture", "expected"),
    [
        (LIMIT, 7.0, 7.0),  # the case (or its file) first
        (LIMIT, NO_LIMIT, NO_LIMIT),  # a fixture's 0 or .inf is a value: no limit for that case
        (LIMIT, None, 40.0),  # then the flag
        (Layers(ini=30.0, default=DEFAULT_CELL_TIMEOUT), None, 30.0),  # then the ini
        (Layers(default=DEFAULT_CELL_TIMEOUT), None, DEFAULT_CELL_TIMEOUT),  # then the default
        (Layers(flag=NO_LIMIT, ini=30.0), None, NO_LIMIT),  # a flag's 0 beats the ini
        (Layers[float](), None, None),
    ],
)
def test_precedence_of_a_limit(layers: Layers[float], fixture: float | None, expected: float | None) -> None:
    assert layers.for_case(fixture) == expected


def test_precedence_of_the_kernel() -> None:
    kernel = Layers(flag="fromflag", ini="fromini", fixture_wins=False)
    assert kernel.for_case("fromfixture", notebook="python3") == "fromflag"
    assert Layers(ini="fromini", fixture_wins=False).for_case("fromfixture", notebook="python3") == "fromini"
    assert Layers[str](fixture_wins=False).for_case("fromfixture", notebook="python3") == "fromfixture"
    assert Layers[str](fixture_wins=False).for_case(None, notebook="python3") == "python3"


def test_options_read_flags_over_ini(tmp_path: Path) -> None:
    options = Options.read(tmp_path, {}, {})
    assert options.output_dir == str(tmp_path / "notebook-outputs")
    assert options.results_path == tmp_path / "notebook-outputs" / "results.json"
    assert (options.max_output, options.kernel_start, options.shard) == (DEFAULT_MAX_OUTPUT, "fork", None)
    flags = {"notebooks_max_output": NO_LIMIT, "notebooks_preload": [("a",), ("b", "a")], "notebooks_timeout": 5.0}
    ini = {"notebooks_max_output": 1000, "notebooks_preload": ("c",), "notebooks_output_dir": "s3://bucket/x"}
    options = Options.read(tmp_path, flags, ini)
    assert options.max_output is None  # 0 on the command line: no limit, whatever the ini says
    assert options.preload == ("a", "b")  # the flags' list replaces the ini's
    assert options.timeout == Layers(flag=5.0)
    assert (options.output_dir, options.results_path) == ("s3://bucket/x", tmp_path / "notebook-results.json")


# ---------------------------------------------------------------- what a user sees, through pytester


def ran_marker(pytester: pytest.Pytester) -> Path:
    """A notebook whose only cell leaves a file behind: its absence shows that no kernel ran it."""
    marker = pytester.path / "ran.txt"
    write_notebook(pytester.path / "nb.ipynb", [f"open({str(marker)!r}, 'w').close()"])
    (pytester.path / "nb.yaml").write_text("strict: true\n")
    return marker


@pytest.mark.parametrize(
    ("flag", "message"),
    [
        ("--notebooks-timeout=abc", "argument --notebooks-timeout: expected a number of seconds such as 30 or 2.5 *"),
        ("--notebooks-cell-timeout=-5", "argument --notebooks-cell-timeout: expected a number of seconds *'-5'"),
        ("--notebooks-max-cell-output=lots", "argument --notebooks-max-cell-output: expected a number of characters *"),
        ("--notebooks-kernel-env=empty", "argument --notebooks-kernel-env: invalid choice: 'empty' *"),
        ("--notebooks-kernel-start=vfork", "argument --notebooks-kernel-start: invalid choice: 'vfork' *"),
        ("--notebooks-preload=a b", "argument --notebooks-preload: 'a b' is not a module name *"),
        ("--notebooks-shard=3/2", "argument --notebooks-shard: expected I/N with 1 <= I <= N (like 2/4), got '3/2'"),
        ("--notebooks-kernel=", "argument --notebooks-kernel: expected a kernel name *"),
    ],
)
def test_a_bad_flag_is_a_usage_error_before_anything_runs(pytester: pytest.Pytester, flag: str, message: str) -> None:
    marker = ran_marker(pytester)
    result = pytester.runpytest("-p", "no:xdist", flag)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*error: {message}"])
    assert "collected" not in result.stdout.str()
    assert not marker.exists()


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("notebooks_timeout = abc", "notebooks_timeout: expected a number of seconds such as 30 or 2.5 *"),
        ("notebooks_cell_timeout = nan", "notebooks_cell_timeout: expected a number of seconds *'nan'"),
        ("notebooks_max_output = 12XB", "notebooks_max_output: expected a number of characters *'12XB'"),
        ("notebooks_kernel_env = empty", "notebooks_kernel_env: expected inherit or clean, got 'empty'"),
        ("notebooks_kernel_start = vfork", "notebooks_kernel_start: expected fork or spawn, got 'vfork'"),
        ("notebooks_preload =\n    json\n    a b", "notebooks_preload: 'a b' is not a module name *"),
        ("notebooks_lint = true\nnotebooks_principles = max_lines = many", "notebooks_principles: expected *"),
    ],
)
def test_a_bad_ini_value_is_a_usage_error_naming_the_key(pytester: pytest.Pytester, line: str, message: str) -> None:
    marker = ran_marker(pytester)
    pytester.makeini(f"[pytest]\n{line}\n")
    result = pytester.runpytest("-p", "no:xdist")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: {message}"])
    assert not marker.exists()


def test_an_unreadable_durations_file_blames_its_flag(pytester: pytest.Pytester) -> None:
    marker = ran_marker(pytester)
    result = pytester.runpytest("-p", "no:xdist", "--notebooks-shard=1/2", "--notebooks-durations=gone.json")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: --notebooks-durations: cannot read gone.json: results file * not found"])
    (pytester.path / "bad.json").write_text("{}")
    result = pytester.runpytest("-p", "no:xdist", "--notebooks-shard=1/2", "--notebooks-durations=bad.json")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: --notebooks-durations: cannot read bad.json: *"])
    assert not marker.exists()


FIXTURE = """\
kernel: fromfixture
timeout: 100
cell_timeout: 10
cases:
  file: {}
  case:
    parameters: {}
    timeout: 200
    cell_timeout: 20
  unlimited:
    parameters: {}
    timeout: 0
    cell_timeout: .inf
"""


def settings_of(pytester: pytest.Pytester, *args: str) -> dict[str, tuple[str | None, float | None, float | None]]:
    """Node id -> (kernel, timeout, cell_timeout) a case would run with, read from the collected items."""
    items, _ = pytester.inline_genitems("-p", "no:xdist", *args)
    found = {}
    for item in items:
        assert isinstance(item, NotebookItem)
        settings = item.run_settings()
        found[item.nodeid] = (settings.kernel, settings.timeout, settings.cell_timeout)
    return found


def test_precedence_table(pytester: pytest.Pytester) -> None:
    """case > fixture file > flag > ini > default for the limits; flag > ini > fixture > notebook for
    the kernel; 0 and .inf are no limit (None) wherever they are written."""
    write_notebook(pytester.path / "set.ipynb", ["1"], kernel="fromnotebook")
    (pytester.path / "set.yaml").write_text(FIXTURE)
    write_notebook(pytester.path / "bare.ipynb", ["1"], kernel="fromnotebook")
    (pytester.path / "bare.yaml").write_text("strict: true\n")

    assert settings_of(pytester) == {
        "bare.ipynb::default": ("fromnotebook", None, DEFAULT_CELL_TIMEOUT),
        "set.ipynb::file": ("fromfixture", 100.0, 10.0),
        "set.ipynb::case": ("fromfixture", 200.0, 20.0),
        "set.ipynb::unlimited": ("fromfixture", None, None),
    }
    pytester.makeini(
        "[pytest]\nnotebooks_kernel = fromini\nnotebooks_timeout = 300\nnotebooks_cell_timeout = 30\n"
        "filterwarnings = ignore::pytest.PytestAssertRewriteWarning\n"
    )
    assert settings_of(pytester) == {
        "bare.ipynb::default": ("fromini", 300.0, 30.0),
        "set.ipynb::file": ("fromini", 100.0, 10.0),
        "set.ipynb::case": ("fromini", 200.0, 20.0),
        "set.ipynb::unlimited": ("fromini", None, None),
    }
    flags = ("--notebooks-kernel=fromflag", "--notebooks-timeout=400", "--notebooks-cell-timeout=0")
    assert settings_of(pytester, *flags) == {
        "bare.ipynb::default": ("fromflag", 400.0, None),
        "set.ipynb::file": ("fromflag", 100.0, 10.0),
        "set.ipynb::case": ("fromflag", 200.0, 20.0),
        "set.ipynb::unlimited": ("fromflag", None, None),
    }


@pytest.mark.kernel
def test_the_run_gets_the_chosen_limits(pytester: pytest.Pytester) -> None:
    """End to end: the reproduce line of a failing case carries the limits it ran with; a fixture's
    `timeout: .inf` runs without a limit (it used to fail on an OverflowError at kernel start)."""
    fail = ["raise ValueError('boom')"]
    write_notebook(pytester.path / "set.ipynb", fail)
    (pytester.path / "set.yaml").write_text(
        "cell_timeout: 7\ncases:\n  file: {}\n"
        "  unlimited:\n    parameters: {}\n    timeout: .inf\n    cell_timeout: 0\n"
    )
    write_notebook(pytester.path / "bare.ipynb", fail)
    (pytester.path / "bare.yaml").write_text("strict: true\n")
    pytester.makeini(
        "[pytest]\nnotebooks_timeout = 300\nnotebooks_cell_timeout = 30\n"
        "filterwarnings = ignore::pytest.PytestAssertRewriteWarning\n"
    )
    result = pytester.runpytest("-p", "no:xdist", "--notebooks-cell-timeout=40")
    result.assert_outcomes(failed=3)
    reproduce = sorted(line for line in result.stdout.lines if line.startswith("reproduce: "))
    assert reproduce == [
        "reproduce: papermill set.ipynb notebook-outputs/set/unlimited.repro.ipynb --cwd . -k python3",
        "reproduce: timeout 300s papermill bare.ipynb notebook-outputs/bare/default.repro.ipynb --cwd . -k python3 "
        "--execution-timeout 40",
        "reproduce: timeout 300s papermill set.ipynb notebook-outputs/set/file.repro.ipynb --cwd . -k python3 "
        "--execution-timeout 7",
    ]
    assert result.stdout.str().count("ValueError: boom") >= 3
    assert "OverflowError" not in result.stdout.str()
