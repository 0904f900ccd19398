"""Adoption, end to end: a repository that is not a Python project runs the reusable workflows.

The adopter has notebooks with fixtures, a requirements.txt and a .gitignore: no pyproject.toml,
no setup.py. This test builds pytest-notebooks' wheel from this checkout, makes a fresh virtual
environment, and runs the `run:` steps of the reusable workflows, read from their YAML, in the
order GitHub would: the install step (pip, offline, from the wheel), a promotion of main (its test
job, then its promote job against the moto S3 server), the PR gate on a branch (paths filter,
tests, review), the comment body, the merge's promotion, a second promotion with nothing to do,
and a rollback. Each job works in a checkout of its own, as on GitHub; an artifact is a copy.

Cloud credentials are only in the environment of the nbpromote steps; every notebook asserts
that it sees no AWS_* variable, so a leak fails the test.

The fresh environment needs no network and little time: `python -m venv --without-pip`, then a
`.pth` file that puts this test run's installed packages on its path (less pytest-notebooks
itself), so the wheel's dependencies are already satisfied and `pip install --no-index` only
unpacks the wheel.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import git
import pytest

import pytest_notebooks
from tests.gitrepo import AUTHOR, commit_all, init_repo
from tests.notebooks import write_notebook
from tests.workflow_steps import COMMENT_VALUES, ROOT, StepRun, run_step

if TYPE_CHECKING:
    from tests.s3server import S3

pytest_plugins = ("tests.s3server",)

VERSION = pytest_notebooks.__version__
OURS = re.compile(r"^(__editable__[._]+)?_*pytest_notebooks", re.IGNORECASE)  # this checkout's install
NO_CREDENTIALS = (
    "import os\n"
    'leaked = sorted(name for name in os.environ if name.startswith("AWS_"))\n'
    'assert not leaked, f"cloud credentials reached a notebook: {leaked}"'
)
TIMEOUT = 900  # against a hang only: no step here comes near it on a slow machine


def setuptools_major() -> int:
    try:
        return int(importlib.metadata.version("setuptools").split(".")[0])
    except importlib.metadata.PackageNotFoundError:  # venvs of Python 3.12+ come without it
        return 0


def checkout_copy(destination: Path) -> Path:
    """What a build of this checkout needs, copied (so no build/ lands in the work tree)."""
    destination.mkdir(parents=True, exist_ok=True)
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy2(ROOT / name, destination / name)
    shutil.copytree(
        ROOT / "pytest_notebooks", destination / "pytest_notebooks", ignore=shutil.ignore_patterns("__pycache__")
    )
    return destination


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``python -m build --wheel`` of this checkout."""
    source = checkout_copy(tmp_path_factory.mktemp("source"))
    dist = tmp_path_factory.mktemp("dist")
    command = [sys.executable, "-m", "build", "--wheel", "--outdir", str(dist), str(source)]
    # pyproject.toml builds with setuptools>=77: offline when this environment has it, else build's
    # isolated environment fetches it from the package index
    if setuptools_major() >= 77:
        command.insert(3, "--no-isolation")
    built = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT, check=False)
    assert built.returncode == 0, built.stdout + built.stderr
    (found,) = dist.glob("pytest_notebooks-*.whl")
    assert found.name == f"pytest_notebooks-{VERSION}-py3-none-any.whl"
    return found


@dataclass(frozen=True)
class Venv:
    path: Path
    env: dict[str, str]  # the environment of every step: this venv first on PATH, pip offline, no AWS_*


def fresh_venv(root: Path) -> Venv:
    """A fresh virtual environment that sees this test run's packages, but not pytest-notebooks;
    pip in it is offline and reads none of this machine's configuration."""
    if importlib.util.find_spec("pip") is None:
        pytest.fail(
            "pip is not installed here, and the workflows' steps run `python -m pip` (uv's venv: uv pip install pip)"
        )
    path = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(path)], check=True, timeout=TIMEOUT)
    shared = root / "site-packages"  # every installed distribution of this run except ours
    shared.mkdir()
    here = sysconfig.get_paths()
    for directory in dict.fromkeys((here["purelib"], here["platlib"])):
        for entry in Path(directory).iterdir():
            if not OURS.match(entry.name) and not (shared / entry.name).exists():
                (shared / entry.name).symlink_to(entry)
    python = path / "bin" / "python"
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
        timeout=TIMEOUT,
    ).stdout.strip()
    (Path(purelib) / "test-run-packages.pth").write_text(f"{shared}\n")

    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("AWS_", "BOTO", "PIP_", "GITHUB_", "PYTHON")) and name != "VIRTUAL_ENV"
    }
    outer_bin = str(Path(sys.executable).parent)
    system_path = [entry for entry in env.get("PATH", "").split(os.pathsep) if entry and entry != outer_bin]
    env["PATH"] = os.pathsep.join([str(path / "bin"), *system_path])
    env["VIRTUAL_ENV"] = str(path)
    env |= {"PIP_CONFIG_FILE": os.devnull, "PIP_NO_INDEX": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1", "CI": "true"}
    return Venv(path, env)


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory, wheel: Path) -> Venv:
    """A fresh virtual environment whose pip finds the wheel (and nothing else)."""
    fresh = fresh_venv(tmp_path_factory.mktemp("venv"))
    return Venv(fresh.path, fresh.env | {"PIP_FIND_LINKS": str(wheel.parent)})


def adopter_repository(root: Path) -> Path:
    """The adopter's repository, pushed to a bare origin; returns the origin."""
    seed = root / "seed"
    (seed / "notebooks").mkdir(parents=True)
    (seed / ".gitignore").write_text("notebook-outputs/\n__pycache__/\n")
    (seed / "requirements.txt").write_text("PyYAML>=6.0  # what the notebooks import\n")
    (seed / "README.md").write_text("# Our scheduled notebooks\n")
    write_notebook(
        seed / "notebooks" / "greet.ipynb",
        [
            ('name = "world"\nshout = False', ["parameters"]),
            NO_CREDENTIALS,
            'greeting = f"hello {name}"\nprint(greeting.upper() if shout else greeting)',
        ],
    )
    (seed / "notebooks" / "greet.test.yaml").write_text("cases:\n  world:\n  jane:\n    name: Jane\n    shout: true\n")
    write_notebook(
        seed / "notebooks" / "totals.ipynb",
        [
            ("rows = 3", ["parameters"]),
            NO_CREDENTIALS,
            "import yaml\n\ndocument = yaml.safe_load(yaml.safe_dump({'rows': list(range(rows))}))\n"
            "assert sum(document['rows']) == rows * (rows - 1) // 2\nprint(len(document['rows']), 'rows')",
        ],
    )
    (seed / "notebooks" / "totals.test.yaml").write_text("cases:\n  small:\n    rows: 3\n  large:\n    rows: 100\n")
    # The scheduler's own file beside a notebook it runs (issue 24): the fixtures are named *.test.yaml,
    # so legacy_job.yaml is never read and legacy_job.ipynb, which has no fixture, is neither tested nor promoted.
    (seed / "pytest.ini").write_text("[pytest]\nnotebooks_fixture_suffixes = .test.yaml\n")
    write_notebook(seed / "notebooks" / "legacy_job.ipynb", [("day = 1", ["parameters"]), "raise SystemExit(1)"])
    (seed / "notebooks" / "legacy_job.yaml").write_text(SCHEDULER_JOB)
    commit_all(init_repo(seed), "notebooks")
    origin = root / "origin.git"
    git.Repo.clone_from(seed, origin, bare=True)
    return origin


SCHEDULER_JOB = "schedule: '0 3 * * *'\nowner: data-eng\nretries: 3\n"


def checkout(origin: Path, where: Path, branch: str = "main") -> Path:
    """actions/checkout: a fresh clone of the branch."""
    git.Repo.clone_from(origin, where, branch=branch)
    return where


def step(
    workflow: str,
    job: str,
    name: str,
    workspace: Path,
    env: Mapping[str, str],
    values: Mapping[str, str] | None = None,
) -> StepRun:
    started = time.monotonic()
    ran = run_step(workflow, job, name, workspace, values, env)
    took = time.monotonic() - started
    print(f"--- {workflow} {job}: {name} (exit {ran.code}, {took:.1f} s)\n{ran.text}")  # shown when the test fails
    return ran


def promote_main(origin: Path, root: Path, venv: Venv, s3: S3, values: Mapping[str, str]) -> tuple[StepRun, Path]:
    """The two jobs of reusable-promote.yml after a merge: test (no credentials), then promote."""
    test_job = checkout(origin, root / "test-job")
    serial = {**values, "inputs.pytest-args": "-n 0"}  # the gate runs under xdist; 4 small cases go faster without
    tested = step("reusable-promote.yml", "test", "Test the merged commit", test_job, venv.env, serial)
    assert tested.code == 0
    promote_job = checkout(origin, root / "promote-job")
    shutil.copytree(test_job / "notebook-outputs", promote_job / "notebook-outputs")  # the artifact
    # configure-aws-credentials exports the role's credentials to the steps after it: here, moto's
    promoted = step("reusable-promote.yml", "promote", "Promote or roll back", promote_job, venv.env | s3.env, values)
    return promoted, promote_job


@pytest.mark.kernel
def test_an_adopter_repository_runs_the_reusable_workflows(venv: Venv, s3: S3, tmp_path: Path) -> None:
    origin = adopter_repository(tmp_path / "adopter")
    target = f"s3://{s3.bucket}/templates/"
    values = {
        "inputs.plugin-spec": f"pytest-notebooks[s3]=={VERSION}",  # required: the wheel in the offline index
        "inputs.requirements": "requirements.txt",
        "inputs.pytest-args": "-n 2",
        "inputs.target": target,
        "inputs.paths": "notebooks/**\nrequirements.txt\n",
        "github.event_name": "pull_request",
        "github.base_ref": "main",
        "github.event.pull_request.number": "3",
    }

    # the install step, as every job runs it: the pinned release from the (offline) package index
    first_job = checkout(origin, tmp_path / "install-job")
    install = "Install pytest-notebooks and the notebooks' requirements"
    installed = step("reusable-gate.yml", "test", install, first_job, venv.env, values)
    assert installed.code == 0
    assert f"nbpromote (pytest-notebooks {VERSION})" in installed.stdout
    assert f"pytest-notebooks-{VERSION} at {venv.path}" in installed.stdout  # the wheel's, not this checkout's

    # main was promoted when the repository adopted the workflows: release 1
    first, _ = promote_main(origin, tmp_path / "merge-1", venv, s3, values)
    assert first.code == 0
    assert "promoted release 0001-" in first.stdout
    assert b"hello {name}" in (s3.get("templates/notebooks/greet.ipynb") or b"")
    untested = "notebooks/legacy_job.ipynb: not promoted: no fixture (legacy_job.test.yaml), so never tested"
    assert untested in first.stdout
    assert s3.get("templates/notebooks/legacy_job.ipynb") is None

    # a pull request: the greeting changes; the gate's steps in its checkout
    pr_dir = checkout(origin, tmp_path / "pr")
    pr = git.Repo(pr_dir)
    pr.git.checkout("-b", "friendlier")
    greet = pr_dir / "notebooks" / "greet.ipynb"
    greet.write_text(greet.read_text().replace("hello {name}", "hi there, {name}"))
    pr.git.commit("-am", "a friendlier greeting", env=AUTHOR)
    scope = step(
        "reusable-gate.yml", "test", "Decide whether the change touches the notebooks", pr_dir, venv.env, values
    )
    assert scope.outputs == {"run": "true"}
    tested = step("reusable-gate.yml", "test", "Test notebooks", pr_dir, venv.env, values)
    assert tested.code == 0
    assert "4 passed" in tested.stdout
    reviewed = step("reusable-gate.yml", "test", "Write the review", pr_dir, venv.env, values)
    assert reviewed.code == 0
    review = (pr_dir / "notebook-outputs" / "review.md").read_text()
    assert review.startswith("<!-- pytest-notebooks:review -->\n### ✅ Notebook tests: 4 passed")
    assert "<details><summary>notebooks/greet.ipynb: modified, 1 cell changed</summary>" in review
    assert review.strip() in reviewed.summary  # the job summary gets the same document
    record = "Record the pull request number for the comment workflow"
    assert step("reusable-gate.yml", "test", record, pr_dir, venv.env, values).code == 0

    # the comment workflow downloads the artifact and caps the body
    comment_job = tmp_path / "comment-job"
    shutil.copytree(pr_dir / "notebook-outputs", comment_job / "review")
    capped = step("reusable-comment.yml", "comment", "Cap the comment body", comment_job, venv.env, COMMENT_VALUES)
    assert capped.code == 0
    assert (comment_job / "review" / "pr-number.txt").read_text() == "3\n"
    body = json.loads((comment_job / "comment.json").read_text(encoding="utf-8"))["body"]
    assert body.startswith(review.rstrip("\n"))  # the whole review, then the link to the artifact
    assert "`report.html`" in body
    assert f"comment body: {len(body)} characters" in capped.stdout

    # merged: the promotion publishes the new greeting as release 2
    pr.git.checkout("main")
    pr.git.merge("--ff-only", "friendlier")
    pr.git.push("origin", "main")
    second, promote_job = promote_main(origin, tmp_path / "merge-2", venv, s3, values)
    assert second.code == 0
    assert "promoted release 0002-" in second.stdout
    assert b"hi there, {name}" in (s3.get("templates/notebooks/greet.ipynb") or b"")

    # the same promotion again: nbpromote exits 3, the step succeeds
    again = step("reusable-promote.yml", "promote", "Promote or roll back", promote_job, venv.env | s3.env, values)
    assert again.code == 0
    assert "nothing to do: what is live is what would be promoted" in again.stdout
    shown = step("reusable-promote.yml", "promote", "Show what is live", promote_job, venv.env | s3.env, values)
    assert "0002-" in shown.summary

    # a manual rollback to release 1, from a fresh checkout of main
    rollback_job = checkout(origin, tmp_path / "rollback-job")
    rollback = {**values, "inputs.rollback-to": "1"}
    rolled = step("reusable-promote.yml", "promote", "Promote or roll back", rollback_job, venv.env | s3.env, rollback)
    assert rolled.code == 0
    assert "rolled back to release 0001-" in rolled.stdout
    assert b"hello {name}" in (s3.get("templates/notebooks/greet.ipynb") or b"")
    assert s3.versions("templates/notebooks/greet.ipynb") == 3


def test_the_plugin_installs_from_a_git_url_pinned_to_a_tag(tmp_path: Path) -> None:
    """README "Install": before a release, the workflows' plugin-spec is a Git URL pinned to a tag
    or commit. The gate's install step with such a spec installs the tagged commit, not the branch
    head after it (a `git+file://` URL here, offline; on GitHub it is `git+https://`)."""
    upstream = checkout_copy(tmp_path / "upstream")
    repo = init_repo(upstream)
    commit_all(repo, "release")
    repo.git.tag(f"v{VERSION}")
    tagged = repo.head.commit.hexsha
    (upstream / "README.md").write_text("not released yet\n")
    repo.git.commit("-am", "after the release", env=AUTHOR)

    fresh = fresh_venv(tmp_path / "env")
    env = dict(fresh.env)
    if setuptools_major() >= 77:
        env["PIP_NO_BUILD_ISOLATION"] = "0"  # pip reads this inverted: "0" turns build isolation off
    else:  # the isolated build fetches setuptools>=77 from the package index
        del env["PIP_NO_INDEX"]
    adopter = checkout(adopter_repository(tmp_path / "adopter"), tmp_path / "install-job")
    spec = f"pytest-notebooks[s3] @ git+file://{upstream}@v{VERSION}"
    values = {"inputs.plugin-spec": spec, "inputs.requirements": "requirements.txt"}
    install = "Install pytest-notebooks and the notebooks' requirements"
    installed = step("reusable-gate.yml", "test", install, adopter, env, values)
    assert installed.code == 0
    assert f"nbpromote (pytest-notebooks {VERSION})" in installed.stdout
    assert f"pytest-notebooks-{VERSION} at {fresh.path}" in installed.stdout
    read = "import importlib.metadata as m; print(m.distribution('pytest-notebooks').read_text('direct_url.json'))"
    shown = subprocess.run(
        [str(fresh.path / "bin" / "python"), "-c", read],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        check=True,
    )  # not from this checkout, whose pytest_notebooks.egg-info `-c` would find first
    origin = json.loads(shown.stdout)
    assert origin["url"] == f"file://{upstream}"
    assert origin["vcs_info"] == {"vcs": "git", "requested_revision": f"v{VERSION}", "commit_id": tagged}
