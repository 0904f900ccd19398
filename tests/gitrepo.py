"""Git repositories for tests: a new repository on `main`, and commits by one test author."""

from __future__ import annotations

from pathlib import Path

import git

# git refuses to commit without an identity; the environment gives one without touching any config
AUTHOR = {"GIT_AUTHOR_NAME": "ci", "GIT_AUTHOR_EMAIL": "ci@example.com"}
AUTHOR |= {"GIT_COMMITTER_NAME": "ci", "GIT_COMMITTER_EMAIL": "ci@example.com"}


def init_repo(root: Path, branch: str | None = "main") -> git.Repo:
    """A new git repository at ``root`` whose first branch is ``branch`` (None: git's configured default).

    The one place tests make a repository: every other set-up goes through this function.
    """
    return git.Repo.init(root, initial_branch=branch)  # gitpython leaves out an option whose value is None


def repo_with_identity(root: Path, branch: str | None = None) -> git.Repo:
    """A new git repository at ``root`` whose own config names a committer, so that ``git commit``
    (and gitpython's ``index.commit``) work without a global identity, as on a fresh CI machine."""
    repo = init_repo(root, branch)
    with repo.config_writer() as config:
        config.set_value("user", "name", "Test")
        config.set_value("user", "email", "test@example.com")
    return repo


def commit_all(repo: git.Repo, message: str) -> str:
    """``git add -A && git commit`` (deletions and renames included), as a user would; the new commit's sha."""
    repo.git.add(A=True)
    repo.git.commit("-m", message, env=AUTHOR)
    return repo.head.commit.hexsha
