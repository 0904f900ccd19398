"""The `run:` steps of the GitHub Actions workflows, run here as the runner would run them.

A step's script is read from the workflow's YAML and run verbatim with bash, in the step's
working-directory, with the step's env: (its `${{ }}` values filled in) and $GITHUB_OUTPUT and
$GITHUB_STEP_SUMMARY files. tests/test_workflows.py runs them in a copy of example_repo,
tests/test_adoption.py in a fresh adopter repository with the built wheel.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
WORKFLOWS_DIR = ROOT / ".github" / "workflows"
EXPRESSION = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")
# what the reusable comment workflow reads from the `workflow_run` event that starts it
COMMENT_VALUES = {
    "github.token": "t0ken",
    "github.repository": "acme/notebooks",
    "github.event.workflow_run.id": "4242",
    "github.event.workflow_run.head_sha": "a" * 40,
    "github.server_url": "https://github.com",
}


def load(workflow: str) -> dict[str, Any]:
    data: dict[Any, Any] = yaml.safe_load((WORKFLOWS_DIR / workflow).read_text())
    if True in data:  # YAML 1.1 reads the key `on` as a boolean
        data["on"] = data.pop(True)
    return data


def inputs_of(workflow: str) -> dict[str, Any]:
    """The `workflow_call` inputs of a reusable workflow, by name."""
    inputs: dict[str, Any] = load(workflow)["on"]["workflow_call"].get("inputs", {})
    return inputs


def default_values(workflow: str) -> dict[str, str]:
    """`inputs.NAME` -> the input's default, as GitHub writes it into a string (booleans lower case)."""
    values = {}
    for name, spec in inputs_of(workflow).items():
        default = spec.get("default", "")
        values[f"inputs.{name}"] = str(default).lower() if isinstance(default, bool) else str(default)
    return values


def steps(workflow: str, job_id: str) -> dict[str, dict[str, Any]]:
    return {step["name"]: step for step in load(workflow)["jobs"][job_id]["steps"] if "name" in step}


def render(text: str, values: Mapping[str, str]) -> str:
    """Replace each ``${{ expr }}`` by ``values[expr]``; an expression without a value is an error."""

    def one(match: re.Match[str]) -> str:
        if match.group(1) not in values:
            raise KeyError(f"the test gives no value for ${{{{ {match.group(1)} }}}} in {text!r}")
        return values[match.group(1)]

    return EXPRESSION.sub(one, text)


@dataclass(frozen=True)
class StepRun:
    code: int
    stdout: str
    stderr: str
    outputs: dict[str, str]
    summary: str

    @property
    def text(self) -> str:
        return self.stdout + self.stderr


def run_step(
    workflow: str,
    job: str,
    name: str,
    workspace: Path,
    values: Mapping[str, str] | None = None,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, str] | None = None,
) -> StepRun:
    """Run one `run:` step as the runner does, its script verbatim.

    ``workspace`` is $GITHUB_WORKSPACE (the checkout); the step runs in its working-directory below
    it. ``values`` fill the `${{ }}` of the step's env and working-directory, over the inputs'
    defaults; ``env`` is the job's environment (default: this process's); ``overrides`` win over
    the step's own env.
    """
    job_spec = load(workflow)["jobs"][job]
    step = steps(workflow, job)[name]
    context = {**default_values(workflow), **(values or {})}
    step_env = {key: render(str(value), context) for key, value in step.get("env", {}).items()}
    cwd = workspace / render(step.get("working-directory", "."), context)
    shell = job_spec.get("defaults", {}).get("run", {}).get("shell")
    # `shell: bash` is `bash --noprofile --norc -eo pipefail {0}`; no shell is `bash -e {0}`
    flags = ["--noprofile", "--norc", "-eo", "pipefail"] if shell == "bash" else ["-e"]
    with tempfile.TemporaryDirectory() as files:
        output, summary = Path(files) / "output", Path(files) / "summary"
        output.touch()
        summary.touch()
        full_env = {**(os.environ if env is None else env), "GITHUB_WORKSPACE": str(workspace)}
        full_env |= {"GITHUB_OUTPUT": str(output), "GITHUB_STEP_SUMMARY": str(summary)}
        full_env |= step_env | dict(overrides or {})
        ran = subprocess.run(
            ["bash", *flags, "-c", step["run"]],
            cwd=cwd,
            env=full_env,
            capture_output=True,
            text=True,
            timeout=900,  # a hang, not a slow machine: the slowest step here takes well under a minute
            check=False,
        )
        outputs = dict(line.split("=", 1) for line in output.read_text().splitlines() if "=" in line)
        return StepRun(ran.returncode, ran.stdout, ran.stderr, outputs, summary.read_text())


def with_path(*directories: Path, env: Mapping[str, str] | None = None) -> dict[str, str]:
    """``env`` (default: this process's) with ``directories`` first on PATH."""
    base = dict(os.environ if env is None else env)
    base["PATH"] = os.pathsep.join([*map(str, directories), base.get("PATH", "")])
    return base


def fake_program(directory: Path, name: str, body: str) -> Path:
    """A Python program called ``name`` in ``directory``, run by this interpreter."""
    directory.mkdir(parents=True, exist_ok=True)
    program = directory / name
    program.write_text(f"#!{sys.executable}\n{body}")
    program.chmod(0o755)
    return program
