"""gitinfo.git_state: what makes a working tree dirty, as `git status --short` names it."""

from __future__ import annotations

from pathlib import Path

from pytest_notebooks.gitinfo import git_state
from tests.gitrepo import commit_all, init_repo


def test_the_changes_are_named_with_renames_and_the_ignored_output_left_out(tmp_path: Path) -> None:
    repo = init_repo(tmp_path)
    for name in ("a.txt", "c.txt", "with space.txt"):
        (tmp_path / name).write_text(f"{name}\n")
    commit_all(repo, "first")
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


def test_a_rename_in_the_work_tree_is_one_line(tmp_path: Path) -> None:
    """`git add -N` makes git see a rename in the work tree (status ' R'): its source path follows
    in the output, as for a staged rename, and is not a change of its own."""
    repo = init_repo(tmp_path)
    (tmp_path / "a.txt").write_text("the same content, long enough to be a rename\n")
    commit_all(repo, "first")
    (tmp_path / "a.txt").rename(tmp_path / "d.txt")
    repo.git.add("--intent-to-add", "d.txt")
    state = git_state(tmp_path)
    assert state is not None
    assert state.changed == (" R d.txt",)
