"""example_repo/README.md, run as written: every console block, in order, in a fresh clone of it."""

from __future__ import annotations

from pathlib import Path

import git

from tests.example import EXAMPLE, copy_example
from tests.shelldocs import run_document


def test_the_example_walkthrough_runs_as_written(tmp_path: Path) -> None:
    root = copy_example(tmp_path / "example_repo")
    repo = git.Repo.init(root, initial_branch="main")
    with repo.config_writer() as config:
        config.set_value("user", "name", "Walker")
        config.set_value("user", "email", "walker@example.com")
    repo.git.add("-A")
    repo.index.commit("example repository")
    readme = EXAMPLE / "README.md"
    assert run_document(readme, root) == readme.read_text().count("```console") >= 9
