"""Markdown ``console`` blocks as executable shell sessions, through Sybil.

A block is a session: ``$ command`` lines run in bash, one after the other, in the document's
working directory; the lines after a command are its expected output. ``...`` matches any text
(alone on a line: any number of lines), and a last line ``[N]`` says the command exits with N
(cram's convention; without it the command must exit 0). Commands see the documented
environment: the test's virtualenv first on PATH.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from sybil import Example, Sybil
from sybil.parsers.markdown import CodeBlockParser

TIMEOUT = 900  # seconds for one command: a bound for a stuck machine, not a speed goal
_EXIT = re.compile(r"^\[(\d+)\]$")


@dataclass(frozen=True)
class Command:
    line: str
    expected: tuple[str, ...]
    exit_code: int


def parse_session(text: str) -> list[Command]:
    """The commands of one console block with their expected output."""
    commands: list[Command] = []
    current: str | None = None
    expected: list[str] = []

    def close() -> None:
        if current is None:
            return
        code = 0
        if expected and _EXIT.match(expected[-1]):
            code = int(expected.pop()[1:-1])
        commands.append(Command(current, tuple(expected), code))

    for line in text.splitlines():
        if line.startswith("$ "):
            close()
            current, expected = line[2:], []
        elif current is not None:
            expected.append(line)
    close()
    return commands


def matches(expected: tuple[str, ...], output: str) -> bool:
    """Whether ``output`` matches the expected lines (``...`` wildcards, as described above)."""
    pattern = ""
    for line in expected:
        if line.strip() == "...":
            pattern += r"(?:.*\n)*?"
        else:
            pattern += ".*".join(re.escape(part) for part in line.split("...")) + r"\n"
    return re.fullmatch(pattern, output if output.endswith("\n") or not output else output + "\n") is not None


def environment() -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.update(COLUMNS="200", NO_COLOR="1", PYTHONDONTWRITEBYTECODE="1")
    for name in ("PYTEST_ADDOPTS", "PYTEST_XDIST_WORKER", "PYTEST_CURRENT_TEST", "GITHUB_ACTIONS"):
        env.pop(name, None)
    return env


def evaluate(example: Example) -> str | None:
    """Run one console block in ``example.namespace["cwd"]``; a mismatch is returned as text."""
    cwd: Path = example.namespace["cwd"]
    for command in parse_session(str(example.parsed)):
        run = subprocess.run(
            ["bash", "-c", command.line],
            cwd=cwd,
            env=environment(),
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            check=False,
        )
        output = run.stdout + run.stderr
        if run.returncode != command.exit_code or (command.expected and not matches(command.expected, output)):
            return (
                f"line {example.line}: $ {command.line}\n"
                f"exit code {run.returncode} (documented: {command.exit_code})\n"
                f"--- documented output:\n" + "\n".join(command.expected) + f"\n--- actual output:\n{output}"
            )
    return None


def run_document(path: Path, cwd: Path) -> int:
    """Run every console block of a Markdown file in order, in ``cwd``; returns how many ran.

    Raises sybil's failure (with the documented and the actual output) at the first mismatch.
    """
    document = Sybil(parsers=[CodeBlockParser(language="console", evaluator=evaluate)]).parse(path)
    document.namespace["cwd"] = cwd
    count = 0
    for example in document:
        example.evaluate()
        count += 1
    return count
