"""example_repo/README.md, run as written: every console block, in order, in a fresh clone of it."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.example import EXAMPLE, copy_example
from tests.gitrepo import repo_with_identity
from tests.shelldocs import run_document

pytestmark = pytest.mark.kernel  # every test here runs notebooks in real kernels


def test_the_example_walkthrough_runs_as_written(tmp_path: Path) -> None:
    root = copy_example(tmp_path / "example_repo")
    repo = repo_with_identity(root, branch="main")
    repo.git.add("-A")
    repo.index.commit("example repository")
    readme = EXAMPLE / "README.md"
    assert run_document(readme, root) == readme.read_text().count("```console") >= 9
