"""Every exception pytest-notebooks raises on purpose: one tree for the plugin and the three commands.

    NotebooksError                base; never raised itself
    +-- FixtureError              a fixture file or its notebook cannot be turned into cases (collection)
    +-- CaseFailed                a notebook case ran to an end that is not a pass
    +-- NotebookChanged           a notebook's bytes at run time are not those collected: not run
    +-- PrinciplesFailed          a notebook over a principles limit (collect.py: it carries the violations)
    +-- KernelTemplateError       the fork template cannot fork kernels; its cases fail with this message
    +-- GitError                  git cannot give the answer asked for
    |   +-- GitUnusable           git refuses the repository (another user owns it)
    |   +-- RevisionError         no repository there, or a revision it does not have
    |   +-- GitOutputError        git printed something that cannot be read
    +-- ResultsError              a results file that cannot be used
    |   +-- MergeError            results files that cannot be merged into one
    +-- SelectionError            --notebooks-changed-since or --notebooks-shard cannot select
    +-- PromoteError              nbpromote; each maps to one exit code (promote/cli.py)
        +-- UsageError            a bad command line or [tool.nbpromote] table         -> USAGE
        +-- Refused               the inputs do not allow it: results, git, drift      -> REFUSED
        +-- Failed                it could not be done                                 -> FAILED
        |   +-- TargetError       bad target URL, credentials, bucket, I/O
        |   |   +-- LockTimeout   a local store's lock stayed taken
        |   +-- Conflict          another promotion holds or moved the release pointer -> CONFLICT
        +-- PreconditionFailed    a conditional write found another ETag (publish.py decides what it means)

    PytestNotebooksWarning        a UserWarning: something looks wrong but is not collected

A command catches the classes it documents and nothing broader: anything else that escapes is a bug,
shown with a normal traceback. No decision is taken on an exception's message text.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pytest_notebooks.models import ExecutionResult


class NotebooksError(Exception):
    """Base of every exception pytest-notebooks raises on purpose."""


class FixtureError(NotebooksError):
    """A fixture file (or the notebook it belongs to) cannot be turned into cases.

    The message is the whole user-facing text: file and line, case, key, and a hint.
    """

    def __init__(self, location: str, problem: str, hint: str = "") -> None:
        self.location = location
        self.problem = problem
        self.hint = hint
        text = f"{location}: {problem}"
        if hint:
            text += f"\n  hint: {hint}"
        super().__init__(text)


class NotAFixture(FixtureError):
    """The YAML file beside a notebook is another tool's file (cases/naming.py's ``foreign_keys``):
    the notebook is not collected, with a warning rather than an error."""

    def __init__(self, location: str, keys: tuple[str, ...]) -> None:
        self.keys = keys
        super().__init__(location, f"is not a notebook fixture (its keys: {', '.join(keys)})")


class CaseFailed(NotebooksError):
    """A notebook case ran to an end that is not a pass."""

    def __init__(self, result: ExecutionResult) -> None:
        self.result = result
        super().__init__(result.failure.summary() if result.failure else "failed")


class NotebookChanged(NotebooksError):
    """The notebook's bytes at run time are not the ones collected (and hashed)."""


class KernelTemplateError(NotebooksError):
    """The template process cannot fork kernels: a preloaded module failed or was refused, or the
    template exited. Every case that would have used it fails with this message."""


class GitError(NotebooksError):
    """git cannot give the answer asked for; the message is one line with a hint."""


class GitUnusable(GitError):
    """git refuses to work in the repository (another user owns it: git's safe.directory check)."""


class RevisionError(GitError):
    """No repository at the path, or a revision it does not have (a branch that was never fetched)."""


class GitOutputError(GitError):
    """git printed something that cannot be read; the caller must not show a partial answer."""


class ResultsError(NotebooksError):
    """A results file that cannot be used; the message is one line naming the file."""


class MergeError(ResultsError):
    """Results files that cannot be merged into one (different commit, tree, or file hashes)."""


class SelectionError(NotebooksError):
    """A selection that cannot be made: an unknown revision, a bad shard, an unreadable durations file."""


class PromoteError(NotebooksError):
    """Base of every exception nbpromote raises on purpose."""


class UsageError(PromoteError):
    """The command line or the ``[tool.nbpromote]`` table is wrong; the message is one line."""


class Refused(PromoteError):
    """Promotion is not allowed; ``reasons`` are one line each, ``hint`` says what to do."""

    def __init__(self, reasons: list[str] | tuple[str, ...], hint: str = "") -> None:
        self.reasons = tuple(reasons)
        self.hint = hint
        super().__init__("; ".join(self.reasons))


class Failed(PromoteError):
    """The promotion could not be carried out; the message is one line including a hint."""


class TargetError(Failed):
    """The target cannot be used: bad URL, no credentials, no bucket, access denied, I/O error."""


class LockTimeout(TargetError):
    """A local store's lock was held by another process for longer than nbpromote waits; the message
    names that process and what to do about it."""


class Conflict(Failed):
    """Another promotion is applying a release under its lease, or won a race for the pointer (or for a
    create-only manifest). The message names that release and its owner, says what this run did
    (nothing live, as a rule) and what to do; the exit code is CONFLICT, not FAILED."""


class PreconditionFailed(PromoteError):
    """A conditional write or delete found the key in another state than expected."""

    def __init__(self, key: str, expected: str | None) -> None:
        self.key = key
        self.expected = expected
        wanted = "absent" if expected is None else f"ETag {expected}"
        super().__init__(f"{key}: expected {wanted}")


class PytestNotebooksWarning(UserWarning):
    """A file that looks like a fixture but that no notebook uses, and similar near misses.

    Shown in pytest's warnings summary; ``-W error::pytest_notebooks.errors.PytestNotebooksWarning``
    makes it fail the run.
    """
