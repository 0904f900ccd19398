"""Typed results documents for the review and report tests, from the few fields a test cares about."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pytest_notebooks.results.record import ResultsDocument


def case_json(case: Mapping[str, Any]) -> dict[str, Any]:
    """A case record's JSON with every field a test leaves out filled as the recorder would."""
    notebook = str(case.get("notebook", "nb.ipynb"))
    name = str(case.get("case", "default"))
    failure = case.get("failure")
    if isinstance(failure, Mapping):
        failure = {"kind": "error", "summary": "", **failure}
    return {
        "nodeid": f"{notebook}::{name}",
        "fixture": notebook.removesuffix(".ipynb") + ".yaml",
        **case,
        "notebook": notebook,
        "case": name,
        "failure": failure,
    }


def results_document(data: Mapping[str, Any] | None = None, **top: Any) -> ResultsDocument:
    """A results document from a partial JSON mapping (``{"cases": [...]}`` and any top-level keys)."""
    given = {**(data or {}), **top}
    git = given.get("git")
    session = {"id": "s1", "state": "completed", **given.get("session", {})}
    return ResultsDocument.from_json(
        {
            "created": "2026-12-07T00:00:00+00:00",
            "rootdir": ".",
            "output_dir": "notebook-outputs",
            "notebooks": [],
            **given,
            "git": None if git is None else {"dirty": False, **git},
            "session": session,
            "sessions": given.get("sessions", [session]),
            "cases": [case_json(case) for case in given.get("cases", [])],
        }
    )
