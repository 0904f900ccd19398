"""Results files of several shards of one run -> one results file (``nbresults merge``)."""

from __future__ import annotations

from typing import Any

from pytest_notebooks.results.recorder import NOT_RUN, build_document, rank

_STATES = ("interrupted", "internal-error", "worker-crashed", "stopped", "completed")


class MergeError(ValueError):
    """Results files that cannot be merged into one (different commit, tree, or file hashes)."""


def merge_documents(documents: list[dict[str, Any]]) -> dict[str, Any]:
    """One results document from the (validated) results files of several shards of one run.

    They must share git commit and dirty state and agree on every notebook's hashes. A case is one
    record, by notebook and case id: a real record beats ``not run``, and of two real ones (a case
    run in two shards) the worse outcome wins. The merged session state is the worst of theirs.
    Notebook entries (declared case ids, principles) come from the files.
    """
    if not documents:
        raise MergeError("no results files to merge")
    first = documents[0]
    for doc in documents[1:]:
        if doc.get("git") != first.get("git"):
            raise MergeError(f"results from different commits or trees: {first.get('git')} and {doc.get('git')}")
    notebooks: dict[str, dict[str, Any]] = {}
    cases: dict[tuple[str, str], dict[str, Any]] = {}
    for doc in documents:
        for nb in doc["notebooks"]:
            seen = notebooks.setdefault(nb["path"], dict(nb))
            if (seen["sha256"], seen["fixture_sha256"]) != (nb["sha256"], nb["fixture_sha256"]):
                raise MergeError(f"{nb['path']} was tested with different contents in different shards")
            if "principles" in nb:
                seen.setdefault("principles", nb["principles"])
        for case in doc["cases"]:
            key = (case["notebook"], case["case"])
            held = cases.get(key)
            if held is None or _rank(case) < _rank(held):
                cases[key] = case
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
        notebooks=notebooks,
        principles={path: nb["principles"] for path, nb in notebooks.items() if "principles" in nb},
        merged_from=len(documents),
    )


def _rank(case: dict[str, Any]) -> int:
    """Worse first; ``not run`` behind every real outcome."""
    return 99 if case["outcome"] == NOT_RUN else rank(case["outcome"])
