"""The git state of a directory. The only module that imports gitpython."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class GitState:
    """The commit checked out in a working tree and whether the tree differs from it."""

    commit: str | None  # None in a repository with no commits yet
    dirty: bool
    branch: str | None  # None on a detached HEAD
    root: Path


def git_state(path: Path, ignore: tuple[Path, ...] = ()) -> GitState | None:
    """The state of the repository containing ``path``; None outside git or without git.

    Untracked files below ``ignore`` (the plugin's own output directory) do not make it dirty.
    """
    try:
        import git
    except ImportError:  # gitpython raises ImportError when no git executable is found
        return None
    try:
        repo = git.Repo(path, search_parent_directories=True)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError):
        return None
    with repo:
        try:
            commit: str | None = repo.head.commit.hexsha
        except ValueError:  # no commits yet
            commit = None
        branch = None if repo.head.is_detached else repo.active_branch.name
        root = Path(repo.working_tree_dir or path).resolve()
        dirty = repo.is_dirty(untracked_files=False) or any(
            not any((root / name).resolve().is_relative_to(i) for i in ignore) for name in repo.untracked_files
        )
        return GitState(commit=commit, dirty=dirty, branch=branch, root=root)
