"""The plugin's exceptions, one small tree.

    NotebooksError                 base; never raised itself
    +-- FixtureError               a fixture file or its notebook is unusable (found at collection)
    +-- CaseFailed                 a case ran and failed; carries the ExecutionResult

    PytestNotebooksWarning         a UserWarning: something looks wrong but is not collected

Everything else that escapes is a bug in the plugin and is shown with a normal traceback.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pytest_notebooks.models import ExecutionResult


class NotebooksError(Exception):
    """Base of every exception the plugin raises on purpose."""


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


class CaseFailed(NotebooksError):
    """A notebook case ran to an end that is not a pass."""

    def __init__(self, result: ExecutionResult) -> None:
        self.result = result
        super().__init__(result.failure.summary() if result.failure else "failed")


class PytestNotebooksWarning(UserWarning):
    """A file that looks like a fixture but that no notebook uses, and similar near misses.

    Shown in pytest's warnings summary; ``-W error::pytest_notebooks.errors.PytestNotebooksWarning``
    makes it fail the run.
    """
