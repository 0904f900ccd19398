"""Test reports -> the results file (JSON). Runs on the controller only, like junitxml.

Schema ``pytest-notebooks/results`` version 1 (documented in the README)::

    {"schema": "pytest-notebooks/results", "version": 1, "created": ISO-8601,
     "rootdir": str, "output_dir": str,
     "git": {"commit": str|null, "dirty": bool, "branch": str|null} | null,
     "versions": {"pytest-notebooks", "papermill", "nbclient", "ipykernel", "pytest", "python"},
     "summary": {outcome: count},
     "notebooks": [{"path", "fixture", "sha256", "fixture_sha256", "cases": [id], "outcome"}],
     "cases": [{"nodeid", "notebook", "fixture", "case", "parameters", "outcome", "duration",
                "execution_seconds", "output", "kernel", "failure": {...}|null, ...}]}

A notebook's ``outcome`` is "passed" only when every one of its cases passed.
"""

from __future__ import annotations

import datetime
import json
import platform
from collections import Counter
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from pytest_notebooks.files import atomic_write
from pytest_notebooks.gitinfo import GitState

SCHEMA = "pytest-notebooks/results"
SCHEMA_VERSION = 1
REPORT_ATTRIBUTE = "pytest_notebooks"  # the attribute of a TestReport that carries a case record
_PACKAGES = ("pytest-notebooks", "papermill", "nbclient", "ipykernel", "pytest")


@dataclass
class Recorder:
    """Collects case records from test reports and writes the results file once."""

    path: Path
    rootdir: Path
    output_dir: str
    git: GitState | None
    shown_path: str = ""  # how the summary line names the file
    write_empty: bool = False  # a shard writes its file even when no case fell to it
    cases: dict[str, dict[str, Any]] = field(default_factory=dict)
    outcome: str = ""  # the summary line: where the file went, or why it could not be written
    snapshots_written: list[str] = field(default_factory=list)

    def add(
        self, nodeid: str, when: str, outcome: str, duration: float, record: dict[str, Any], wasxfail: bool
    ) -> None:
        """Fold one phase's report (setup, call, teardown) into the case's entry."""
        entry = self.cases.setdefault(nodeid, {"nodeid": nodeid, "outcome": "passed", "duration": 0.0})
        entry.update({k: v for k, v in record.items() if v is not None or k not in entry})
        entry["duration"] = round(entry["duration"] + duration, 3)
        if when == "call":
            if wasxfail:
                entry["outcome"] = "xfailed" if outcome == "skipped" else "xpassed"
            else:
                entry["outcome"] = outcome
        elif outcome == "failed":
            entry["outcome"] = "error"
        elif outcome == "skipped" and when == "setup":
            entry["outcome"] = "skipped"

    def pytest_runtest_logreport(self, report: Any) -> None:
        """pytest hook (this object is registered as a plugin on the controller only)."""
        record = getattr(report, REPORT_ATTRIBUTE, None)
        if record is not None:
            snapshot = record.get("snapshot") or {}
            if snapshot.get("status") == "written" and report.when == "call":
                self.snapshots_written.append(snapshot["path"])
            self.add(
                report.nodeid,
                report.when,
                report.outcome,
                report.duration,
                record,
                hasattr(report, "wasxfail"),
            )

    def pytest_sessionfinish(self) -> None:
        """pytest hook: write the file when any notebook case ran."""
        if not self.cases and not self.write_empty:
            return
        try:
            self.write()
        except OSError as exc:
            self.outcome = f"could not write the results file {self.shown_path}: {exc}"
        else:
            self.outcome = f"{len(self.cases)} cases recorded in {self.shown_path}"

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        """pytest hook: one line saying where the results went (runs after sessionfinish)."""
        if self.snapshots_written:
            written = sorted(self.snapshots_written)
            terminalreporter.write_line(f"notebooks: wrote {len(written)} snapshots: {', '.join(written)}")
        if self.outcome:
            terminalreporter.write_line(f"notebooks: {self.outcome}", red=self.outcome.startswith("could not"))

    def document(self) -> dict[str, Any]:
        """The results file's content."""
        cases = list(self.cases.values())
        notebooks: dict[str, dict[str, Any]] = {}
        for case in cases:
            nb = notebooks.setdefault(
                case["notebook"],
                {
                    "path": case["notebook"],
                    "fixture": case["fixture"],
                    "sha256": case["notebook_sha256"],
                    "fixture_sha256": case["fixture_sha256"],
                    "cases": [],
                    "outcome": "passed",
                },
            )
            nb["cases"].append(case["case"])
            if case["outcome"] != "passed":
                nb["outcome"] = "not passed"
        return {
            "schema": SCHEMA,
            "version": SCHEMA_VERSION,
            "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "rootdir": str(self.rootdir),
            "output_dir": self.output_dir,
            "git": None
            if self.git is None
            else {"commit": self.git.commit, "dirty": self.git.dirty, "branch": self.git.branch},
            "versions": {**{name: _version(name) for name in _PACKAGES}, "python": platform.python_version()},
            "summary": dict(Counter(case["outcome"] for case in cases)),
            "notebooks": list(notebooks.values()),
            "cases": cases,
        }

    def write(self) -> None:
        """Write the file atomically (a reader never sees half of it)."""
        atomic_write(self.path, json.dumps(self.document(), indent=2, default=str) + "\n")


def _version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None
