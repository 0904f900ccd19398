"""The GitHub Actions workflows: schema-valid, zizmor-clean, and their commands really work.

The last test runs the `run:` steps of the PR gate and of the promotion workflow, read from the
workflow files themselves, in a copy of example_repo made into a git repository with an origin,
as the runner would: tests pass, the review is written, promotion to a local store works, and a
second promotion has nothing to do.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import git
import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
PINNED = re.compile(r"^\s*(?:-\s*)?uses:\s*[\w.-]+/[\w./-]+@([0-9a-f]{40}) # v\d+\.\d+\.\d+$")


def tool(name: str) -> str:
    found = shutil.which(name, path=str(Path(sys.executable).parent)) or shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is not installed: pip install -e '.[test]'")
    return found


def test_workflows_match_the_github_schema() -> None:
    run = subprocess.run(
        [tool("check-jsonschema"), "--builtin-schema", "vendor.github-workflows", *map(str, WORKFLOWS)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 0, run.stdout + run.stderr


def test_zizmor_finds_nothing() -> None:
    run = subprocess.run(
        [tool("zizmor"), "--offline", "--no-progress", str(ROOT / ".github" / "workflows")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "No findings to report" in run.stdout


def test_every_action_is_pinned_by_sha_with_a_version_comment() -> None:
    for workflow in WORKFLOWS:
        for line in workflow.read_text().splitlines():
            if re.match(r"^\s*(?:-\s*)?uses:", line):
                assert PINNED.match(line), f"{workflow.name}: {line.strip()}"


def steps(workflow: str, job_id: str | None = None) -> dict[str, dict[str, Any]]:
    data = yaml.safe_load((ROOT / ".github" / "workflows" / workflow).read_text())
    job = data["jobs"][job_id] if job_id else next(iter(data["jobs"].values()))
    return {step["name"]: step for step in job["steps"] if "name" in step}


def run_step(step: dict[str, Any], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run a step's shell as the runner does (bash -e), with its env: expressions replaced by ``env``."""
    step_env = {}
    for name, value in step.get("env", {}).items():
        step_env[name] = env[name] if "${{" in str(value) else str(value)
    script = step["run"].replace("-n auto", "-n 2")  # the suite runs on 2 cores: -n 2, as the guide says
    bin_dir = str(Path(sys.executable).parent)
    return subprocess.run(
        ["bash", "-e", "-c", script],
        cwd=cwd,
        env={**os.environ, **step_env, "NOTEBOOKS_DIR": ".", "PATH": f"{bin_dir}:{os.environ['PATH']}"},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


AUTHOR = {"GIT_AUTHOR_NAME": "ci", "GIT_AUTHOR_EMAIL": "ci@example.com"}
AUTHOR |= {"GIT_COMMITTER_NAME": "ci", "GIT_COMMITTER_EMAIL": "ci@example.com"}


def example_repository(target: Path) -> git.Repo:
    """A copy of example_repo (without run leftovers) as a git repository with one commit."""
    shutil.copytree(
        ROOT / "example_repo",
        target,
        ignore=shutil.ignore_patterns("notebook-outputs", "*.sqlite", "agg-output", "__pycache__", ".pytest_cache"),
    )
    repo = git.Repo.init(target, initial_branch="main")
    repo.git.add(A=True)
    repo.git.commit("-m", "example repository", env=AUTHOR)
    return repo


def test_the_workflow_steps_run_here(tmp_path: Path) -> None:
    origin_dir = tmp_path / "origin"
    example_repository(origin_dir)
    clone_dir = tmp_path / "checkout"
    clone = git.Repo.clone_from(origin_dir, clone_dir)

    # a pull request: one template edited on a branch
    clone.git.checkout("-b", "feature")
    report = clone_dir / "notebooks" / "report.ipynb"
    edited = report.read_text().replace("print(text)", "print(text.upper())")
    assert edited != report.read_text()
    report.write_text(edited)
    clone.git.commit("-am", "shout the report", env=AUTHOR)

    gate = steps("notebooks-pr.yml")
    env = {"BASE_REF": "main", "PR_NUMBER": "7", "TARGET": str(tmp_path / "live")}
    tested = run_step(gate["Test notebooks"], clone_dir, env)
    # the edited title changes the report's output, so its snapshots fail, as a reviewer should see
    assert tested.returncode == 1, tested.stdout + tested.stderr
    assert "outputs differ from the snapshot notebooks/__snapshots__/report/luna.ipynb" in tested.stdout
    review = (clone_dir / "notebook-outputs" / "review.md").read_text()
    assert review.startswith("<!-- pytest-notebooks:review -->\n### ❌ Notebook tests: 2 failed, ")
    assert "<details><summary>notebooks/report.ipynb: modified, 1 cell changed</summary>" in review
    assert "\n-print(text)\n+print(text.upper())\n" in review
    assert "#### Output changes (snapshots)" in review
    assert (clone_dir / "notebook-outputs" / "junit.xml").is_file()
    recorded = run_step(gate["Record the pull request number for the comment workflow"], clone_dir, env)
    assert recorded.returncode == 0, recorded.stderr
    assert (clone_dir / "notebook-outputs" / "pr-number.txt").read_text() == "7\n"

    # after the merge (here: main as it is), the promotion workflow's steps
    clone.git.checkout("main")
    promote = steps("notebooks-promote.yml")
    merged = run_step(promote["Test the merge commit"], clone_dir, env)
    assert merged.returncode == 0, merged.stdout + merged.stderr
    first = run_step(promote["Promote"], clone_dir, env)
    assert first.returncode == 0, first.stdout + first.stderr
    live = sorted(p.relative_to(tmp_path / "live").as_posix() for p in (tmp_path / "live").glob("*.ipynb"))
    assert live == ["collect_plays.ipynb", "enrich_geo.ipynb", "report.ipynb", "vid_agg.ipynb"]
    second = run_step(promote["Promote"], clone_dir, env)
    assert second.returncode == 0, second.stdout + second.stderr
    assert "nothing to do" in (second.stdout + second.stderr).lower()


def test_the_shard_matrix_runs_every_case_once_and_merges(tmp_path: Path) -> None:
    repo_dir = tmp_path / "repo"
    repo = example_repository(repo_dir)
    shard_step = steps("notebooks-shards.yml", "shard")["Test one shard"]
    artifacts = tmp_path / "artifacts"
    for shard in ("1", "2", "3", "4"):  # each on a machine of its own: a clean checkout
        ran = run_step(shard_step, repo_dir, {"SHARD": shard})
        assert ran.returncode in (0, 5), ran.stdout + ran.stderr  # 5: this shard got no test
        shutil.copytree(repo_dir / "shard-results", artifacts, dirs_exist_ok=True)  # upload-artifact
        repo.git.clean("-fdx")
    shutil.copytree(artifacts, repo_dir / "shard-results")  # download-artifact, merge-multiple
    merge_step = steps("notebooks-shards.yml", "merge")["Merge them into one results file"]
    merged = run_step(merge_step, repo_dir, {})
    assert merged.returncode == 0, merged.stdout + merged.stderr
    document = json.loads((repo_dir / "notebook-outputs" / "results.json").read_text())
    nodeids = [case["nodeid"] for case in document["cases"]]
    assert len(nodeids) == len(set(nodeids)) == 9  # every case of example_repo, once
    assert document["summary"] == {"passed": 9}
