"""The git state of a directory. The only module that imports gitpython."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any


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


def committed_files(root: Path, under: Path | None = None) -> tuple[str, ...]:
    """Paths (POSIX, relative to ``root``) of the files in HEAD's tree, optionally only below ``under``.

    ``root`` is a repository's working tree root (``GitState.root``). Empty without commits.
    """
    import git

    with git.Repo(root) as repo:
        try:
            repo.head.commit  # noqa: B018 -- raises ValueError when there are no commits yet
        except ValueError:
            return ()
        args = ["-r", "-z", "--name-only", "--full-tree", "HEAD"]
        if under is not None and under.resolve() != root.resolve():
            args += ["--", under.resolve().relative_to(root.resolve()).as_posix()]
        listing: str = repo.git.ls_tree(*args)
    return tuple(sorted(name for name in listing.split("\0") if name))


class RevisionError(ValueError):
    """A revision that this repository does not have (say, a branch that was never fetched)."""


@dataclass(frozen=True)
class ChangedFile:
    """A file that differs between two commits, with its bytes on each side."""

    status: str  # "added", "removed", "modified", "renamed"
    old_path: str | None
    new_path: str | None
    old_bytes: bytes | None
    new_bytes: bytes | None

    @property
    def path(self) -> str:
        """The path on the head side, or the base side for a removed file."""
        return self.new_path or self.old_path or ""


def _repository(path: Path) -> Any:
    """The repository holding ``path``; ValueError outside one."""
    import git

    try:
        return git.Repo(path, search_parent_directories=True)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError):
        raise ValueError(f"{path} is not inside a git repository") from None


def _commit(repo: Any, rev: str) -> Any:
    """The commit ``rev`` names; RevisionError (with the CI hint) when the repository lacks it."""
    import git

    try:
        return repo.commit(rev)
    except (git.BadName, ValueError, git.GitCommandError):
        raise RevisionError(
            f"unknown revision {rev!r}; fetch it first (in GitHub Actions: actions/checkout with fetch-depth: 0)"
        ) from None


_STATUS = {"A": "added", "D": "removed", "M": "modified", "R": "renamed", "T": "modified"}


def changed_files(path: Path, base: str, head: str = "HEAD", suffix: str = ".ipynb") -> list[ChangedFile]:
    """Files ending in ``suffix`` that changed from the merge base of ``base`` and ``head`` to ``head``.

    Like a pull request's diff (``git diff base...head``), with renames detected. Raises
    RevisionError for an unknown revision and ValueError outside a repository.
    """
    with _repository(path) as repo:
        commits = [_commit(repo, base), _commit(repo, head)]
        bases = repo.merge_base(commits[0], commits[1])
        start = bases[0] if bases else commits[0]
        found = []
        # Small notebooks share most of their JSON boilerplate, so git's default 50% similarity
        # pairs unrelated files as renames; 90% keeps real renames (with small edits) only.
        for item in start.diff(commits[1], find_renames="90%"):
            paths = [p for p in (item.a_path, item.b_path) if p]
            if not any(p.endswith(suffix) for p in paths):
                continue
            status = _STATUS.get(item.change_type or "M", "modified")
            found.append(
                ChangedFile(
                    status=status,
                    old_path=None if status == "added" else item.a_path,
                    new_path=None if status == "removed" else item.b_path,
                    old_bytes=item.a_blob.data_stream.read() if item.a_blob and status != "added" else None,
                    new_bytes=item.b_blob.data_stream.read() if item.b_blob and status != "removed" else None,
                )
            )
        return sorted(found, key=lambda change: change.path)


def changed_since(path: Path, rev: str) -> tuple[Path, set[Path]]:
    """(repository root, absolute paths of files that differ from ``rev`` in the working tree).

    Committed, staged and unstaged changes count, and so do untracked files that git does not
    ignore; a deleted file is listed too (it no longer exists). Raises RevisionError for an
    unknown revision and ValueError outside a repository.
    """
    with _repository(path) as repo:
        root = Path(repo.working_tree_dir or path).resolve()
        _commit(repo, rev)
        names = repo.git.diff("--name-only", "--no-renames", "-z", rev).split("\0")
        names += repo.untracked_files
        return root, {root / name for name in names if name}


def python_files(root: Path) -> list[str]:
    """The repository's .py files (tracked, or untracked and not ignored), relative to ``root``."""
    import git

    with git.Repo(root) as repo:
        listing: str = repo.git.ls_files("-z", "--cached", "--others", "--exclude-standard", "--", "*.py")
    return sorted({name for name in listing.split("\0") if name})
