"""Text a notebook controls (exception names and messages, tracebacks) never acts on a reader.

The CI log obeys a line that starts with ``::`` (a workflow command), a terminal obeys escape
sequences (OSC 52 writes the clipboard, OSC 8 makes links), and a huge exception class name grew
every report. Real kernels through pytester; each check is on what pytest printed or wrote.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.notebooks import PARAMS, write_notebook

pytestmark = pytest.mark.kernel  # every test here runs notebooks in real kernels

COMMANDS = (
    "raise ValueError('injected\\n::stop-commands::pwned\\n::error file=README.md,line=1::FAKE'\n"
    "                 '\\n   ::add-mask::region\\n::warning::also fake')"
)
ESCAPES = (
    "raise ValueError('clip \\x1b]52;c;cm0gLXJmIH4=\\x07 link \\x1b]8;;https://evil.example\\x1b\\\\here"
    "\\x1b]8;;\\x1b\\\\ cursor \\x1b[2J\\x1b[H end')"
)
HUGE_NAME = "raise type('E' * 1_000_000, (Exception,), {})('a message')"


def notebook(path: Path, body: str) -> None:
    write_notebook(path / "nb.ipynb", [PARAMS, body])
    (path / "nb.yaml").write_text("cases:\n  fr: {region_code: fr}\n")


def own_commands(out: str) -> list[str]:
    """Every line of the log that the Actions runner would read as a workflow command."""
    return [line for line in out.splitlines() if line.lstrip().startswith("::")]


@pytest.mark.parametrize("workers", [["-p", "no:xdist"], ["-n", "2"]], ids=["serial", "xdist"])
def test_an_exception_cannot_send_workflow_commands(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, workers: list[str]
) -> None:
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    notebook(pytester.path, COMMANDS)
    result = pytester.runpytest_subprocess(*workers)
    result.assert_outcomes(failed=1)
    commands = own_commands(result.stdout.str())
    assert len(commands) == 1, commands
    assert commands[0].startswith("::error file=nb.ipynb,line=")  # the plugin's own annotation
    assert "::stop-commands::pwned" not in commands[0].replace("%0A", "\n").splitlines()[0]
    result.stdout.fnmatch_lines(["*:\u200b:stop-commands::pwned*"])  # still shown, defused


@pytest.mark.parametrize("colour", ["yes", "no"])
def test_an_exception_cannot_send_terminal_escapes(pytester: pytest.Pytester, colour: str) -> None:
    notebook(pytester.path, ESCAPES)
    result = pytester.runpytest_subprocess("-p", "no:xdist", f"--color={colour}")
    result.assert_outcomes(failed=1)
    out = result.stdout.str()
    assert "\x1b]" not in out  # no OSC: clipboard, links, titles
    assert "\x1b[2J" not in out
    assert "\x1b[H" not in out
    assert "clip" in out
    assert "end" in out
    if colour == "yes":
        assert "\x1b[" in out  # pytest's and the traceback's colours stay


def test_a_huge_exception_name_is_cut_everywhere(pytester: pytest.Pytester) -> None:
    notebook(pytester.path, HUGE_NAME)
    result = pytester.runpytest_subprocess("-p", "no:xdist", "--junitxml=junit.xml")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["FAILED nb.ipynb::fr - cell 2 (In [[]*[]]): EEEE*... [[]999,* more characters[]]*"])
    assert len(result.stdout.str()) < 100_000
    assert (pytester.path / "junit.xml").stat().st_size < 100_000
    assert (pytester.path / "notebook-outputs" / "results.json").stat().st_size < 100_000


PRINTS = (
    "import subprocess\n"
    "print('::stop-commands::from-print')\n"
    "subprocess.run(['echo', '::error file=README.md,line=1::from a subprocess'], check=True)\n"
    "raise ValueError('fails so that pytest shows the captured output')"
)


@pytest.mark.parametrize("log", [[], ["--notebooks-log-output", "-s"]], ids=["captured", "live"])
def test_what_a_cell_prints_cannot_send_workflow_commands(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, log: list[str]
) -> None:
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    notebook(pytester.path, PRINTS)
    result = pytester.runpytest_subprocess("-p", "no:xdist", *log)
    result.assert_outcomes(failed=1)
    out = result.stdout.str() + result.stderr.str()
    commands = own_commands(out)
    assert [c[: len("::error file=nb.ipynb,")] for c in commands] == ["::error file=nb.ipynb,"], commands
    assert "from a subprocess" in out
