"""Results files of several shards of one run -> one results file (``nbresults merge``)."""

from __future__ import annotations

from typing import Any

from pytest_notebooks.results.recorder import NOT_RUN, build_document

# worse first: a case reported by two shards keeps its worse outcome; a real record beats "not run"
_RANK = {"crashed": 0, "interrupted": 1, "error": 2, "failed": 3, "xpassed": 4, "skipped": 5, "xfailed": 6}
_STATES = ("interrupted", "internal-error", "worker-crashed", "stopped", "completed")


class MergeError(ValueError):
    """Results files that cannot be merged into one (different commit, tree, or file hashes)."""


def merge_documents(documents: list[dict[str, Any]]) -> dict[str, Any]:
    """One results document from the (validated) results files of several shards of one run.

    They must share git commit and dirty state and agree on every notebook's hashes. The merged
    session state is the worst of theirs.
    """
    if not documents:
        raise MergeError("no results files to merge")
    first = documents[0]
    for doc in documents[1:]:
        if doc.get("git") != first.get("git"):
            raise MergeError(f"results from different commits or trees: {first.get('git')} and {doc.get('git')}")
    hashes: dict[str, tuple[Any, Any]] = {}
    cases: dict[str, dict[str, Any]] = {}
    for doc in documents:
        for nb in doc["notebooks"]:
            seen = hashes.setdefault(nb["path"], (nb["sha256"], nb["fixture_sha256"]))
            if seen != (nb["sha256"], nb["fixture_sha256"]):
                raise MergeError(f"{nb['path']} was tested with different contents in different shards")
        for case in doc["cases"]:
            held = cases.get(case["nodeid"])
            if held is None or _rank(case) < _rank(held):
                cases[case["nodeid"]] = case
    sessions = [doc["session"] for doc in documents]
    state = min((s["state"] for s in sessions), key=_STATES.index)
    session = {
        "id": "+".join(s["id"] for s in sessions),
        "state": state,
        "crashed_workers": sorted({w for s in sessions for w in s.get("crashed_workers", [])}),
    }
    return build_document(
        rootdir=first["rootdir"],
        output_dir=first["output_dir"],
        git=first["git"],
        session=session,
        sessions=[s for doc in documents for s in doc.get("sessions", [doc["session"]])],
        cases=list(cases.values()),
        merged_from=len(documents),
    )


def _rank(case: dict[str, Any]) -> int:
    if case["outcome"] == NOT_RUN:
        return 99
    return _RANK.get(case["outcome"], 10)  # passed: 10, behind every other real outcome
