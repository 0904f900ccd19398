"""example_repo, copied for a test: its files without what a run leaves behind."""

from __future__ import annotations

import shutil
from pathlib import Path

import git

from tests.gitrepo import commit_all, init_repo

EXAMPLE = Path(__file__).resolve().parent.parent / "example_repo"
LEFT_BY_RUNS = ("notebook-outputs", "promoted-templates", "*.sqlite", "agg-output", "__pycache__", ".pytest_cache")


def copy_example(target: Path) -> Path:
    """Copy example_repo to ``target`` (which must not exist), leaving out run outputs."""
    shutil.copytree(EXAMPLE, target, ignore=shutil.ignore_patterns(*LEFT_BY_RUNS))
    return target


def example_repository(target: Path) -> git.Repo:
    """A copy of example_repo (without run leftovers) as a git repository with one commit on `main`."""
    repo = init_repo(copy_example(target))
    commit_all(repo, "example repository")
    return repo
