"""gitinfo.git_state: what makes a working tree dirty, as `git status --short` names it."""

from __future__ import annotations

from pathlib import Path

import git

from pytest_notebooks.gitinfo import git_state

AUTHOR = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com"} | {
    "GIT_COMMITTER_NAME": "t",
    "GIT_COMMITTER_EMAIL": "t@example.com",
}


def test_the_changes_are_named_with_renames_and_the_ignored_output_left_out(tmp_path: Path) -> None:
    repo = git.Repo.init(tmp_path, initial_branch="main")
    for name in ("a.txt", "c.txt", "with space.txt"):
        (tmp_path / name).write_text(f"{name}\n")
    repo.git.add("--all")
    repo.git.commit("-m", "first", env=AUTHOR)
    state = git_state(tmp_path, ignore=(tmp_path / "notebook-outputs",))
    assert state is not None
    assert (state.changed, state.dirty, state.branch) == ((), False, "main")

    repo.git.mv("a.txt", "b.txt")
    (tmp_path / "c.txt").write_text("changed\n")
    (tmp_path / "with space.txt").unlink()
    (tmp_path / "notebook-outputs" / "x").mkdir(parents=True)
    (tmp_path / "notebook-outputs" / "x" / "case.ipynb").write_text("{}")  # the plugin's own output
    (tmp_path / "new.txt").write_text("new\n")
    state = git_state(tmp_path, ignore=(tmp_path / "notebook-outputs",))
    assert state is not None
    assert state.changed == ("R  b.txt", " M c.txt", " D with space.txt", "?? new.txt")
    assert state.dirty
