"""Results files of several shards of one run -> one results file (``nbresults merge``)."""

from __future__ import annotations

import datetime
from collections import Counter
from typing import Any

from pytest_notebooks.results.recorder import SCHEMA, SCHEMA_VERSION


class MergeError(ValueError):
    """Results files that cannot be merged into one (different schema, commit, or file hashes)."""


def merge_documents(documents: list[dict[str, Any]]) -> dict[str, Any]:
    """One results document from the results files of several shards of one run.

    They must share schema version, git commit and dirty state, and agree on every notebook's
    hashes; a case reported twice keeps its worse outcome.
    """
    if not documents:
        raise MergeError("no results files to merge")
    first = documents[0]
    for doc in documents:
        if doc.get("schema") != SCHEMA or doc.get("version") != SCHEMA_VERSION:
            raise MergeError(f"not a {SCHEMA} version {SCHEMA_VERSION} file: {doc.get('schema')} {doc.get('version')}")
        if doc.get("git") != first.get("git"):
            raise MergeError(f"results from different commits or trees: {first.get('git')} and {doc.get('git')}")
    rank = {"passed": 0, "xfailed": 1, "xpassed": 1, "skipped": 2, "failed": 3, "error": 4}
    cases: dict[str, dict[str, Any]] = {}
    for doc in documents:
        for case in doc.get("cases", []):
            seen = cases.get(case["nodeid"])
            if seen is None or rank.get(case["outcome"], 5) > rank.get(seen["outcome"], 5):
                cases[case["nodeid"]] = case
    notebooks: dict[str, dict[str, Any]] = {}
    for doc in documents:
        for nb in doc.get("notebooks", []):
            seen = notebooks.get(nb["path"])
            if seen is None:
                notebooks[nb["path"]] = {**nb, "cases": [], "outcome": "passed"}
            elif (seen["sha256"], seen["fixture_sha256"]) != (nb["sha256"], nb["fixture_sha256"]):
                raise MergeError(f"{nb['path']} was tested with different contents in different shards")
    for case in cases.values():
        nb = notebooks[case["notebook"]]
        nb["cases"].append(case["case"])
        nb["outcome"] = "passed" if nb["outcome"] == "passed" and case["outcome"] == "passed" else "not passed"
    for nb in notebooks.values():
        if not nb["cases"]:
            nb["outcome"] = "not passed"
    merged = dict(first)
    merged.update(
        created=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        summary=dict(Counter(case["outcome"] for case in cases.values())),
        notebooks=list(notebooks.values()),
        cases=list(cases.values()),
        merged_from=len(documents),
    )
    return merged
