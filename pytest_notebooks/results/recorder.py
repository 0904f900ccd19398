"""Test reports -> the results file (JSON). Runs on the controller only, like junitxml.

The file is evidence that ``nbpromote`` trusts, so it records what happened, never what was hoped:

- A case is ``passed`` only on a passing call report. A case whose setup passed but whose call
  report never came is ``interrupted`` (Ctrl-C, SIGTERM) or ``crashed`` (its xdist worker died);
  ``error`` is a failed setup or teardown.
- Every case its fixture declares is listed, ``not run`` when it did not run in this session
  (deselected, another shard, stopped before it started). A notebook is ``passed`` only when every
  declared case ran and passed.
- ``session.state`` says how the session ended: ``completed``, ``stopped`` (``-x``/``--maxfail``),
  ``interrupted``, ``internal-error`` or ``worker-crashed``.

Runs accumulate (``accumulate()``): a case that did not run in this session keeps its record from
the previous file when both sessions tested the same commit on a clean tree and its notebook and
fixture have the same sha256 now; a case that ran replaces its record. Anything else starts the
file afresh. The shape is ``results.schema.json`` beside this module (see ``read.py``).
"""

from __future__ import annotations

import datetime
import platform
import uuid
from collections import Counter
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from pytest_notebooks.files import atomic_write
from pytest_notebooks.gitinfo import GitState
from pytest_notebooks.results.read import SCHEMA, SCHEMA_VERSION, ResultsError, dumps, load_results

REPORT_ATTRIBUTE = "pytest_notebooks"  # the attribute of a TestReport that carries a case record
PRINCIPLES_ATTRIBUTE = "pytest_notebooks_principles"  # ... and a notebook's principles measures
WORKER_OUTPUT_KEY = "pytest_notebooks_collected"  # xdist workeroutput: every notebook case collected
STARTED = "started"  # internal: setup passed, no call report yet
NOT_RUN = "not run"
RAN = ("passed", "failed", "error", "skipped", "xfailed", "xpassed", "interrupted", "crashed")
OUTCOMES = (*RAN, NOT_RUN)
_PACKAGES = ("pytest-notebooks", "papermill", "nbclient", "ipykernel", "pytest")
_STATIC = (
    "notebook",
    "fixture",
    "case",
    "parameters",
    "notebook_sha256",
    "fixture_sha256",
    "output",
    "declared_cases",
    "fixture_skip",
    "fixture_xfail",
)


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


@dataclass(eq=False)  # registered as a pytest plugin: pluggy hashes it (pytest < 9.1 does)
class Recorder:
    """Collects case records from test reports and writes the results file once."""

    path: Path
    rootdir: Path
    output_dir: str
    git: GitState | None
    shown_path: str = ""  # how the summary line names the file
    write_empty: bool = False  # a shard writes its file even when no case fell to it
    cases: dict[str, dict[str, Any]] = field(default_factory=dict)
    known: dict[str, dict[str, Any]] = field(default_factory=dict)  # nodeid -> static record, collected
    outcome: str = ""  # the summary line: where the file went, or why it could not be written
    snapshots_written: list[str] = field(default_factory=list)
    state: str = "completed"
    crashed_workers: list[str] = field(default_factory=list)
    session_id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    started: str = field(default_factory=_now)
    written: dict[str, Any] | None = None  # the document as written at the end of the session
    principles: dict[str, dict[str, Any]] = field(default_factory=dict)  # notebook -> measures, violations

    # -- what pytest tells us ------------------------------------------------------------------

    def collected(self, nodeid: str, record: dict[str, Any]) -> None:
        """A notebook case was collected (before any deselection)."""
        self.known[nodeid] = {k: record.get(k) for k in _STATIC}

    def add(
        self, nodeid: str, when: str, outcome: str, duration: float, record: dict[str, Any], wasxfail: bool
    ) -> None:
        """Fold one phase's report (setup, call, teardown) into the case's entry."""
        entry = self.cases.setdefault(nodeid, {"nodeid": nodeid, "outcome": STARTED, "duration": 0.0})
        entry.update({k: v for k, v in record.items() if v is not None or k not in entry})
        entry["duration"] = round(entry["duration"] + duration, 3)
        if when == "setup":
            if outcome == "failed":
                entry["outcome"] = "error"
            elif outcome == "skipped":
                entry["outcome"] = "xfailed" if wasxfail else "skipped"
        elif when == "call":
            if wasxfail:
                entry["outcome"] = "xfailed" if outcome == "skipped" else "xpassed"
            else:
                entry["outcome"] = outcome
        elif when == "teardown" and outcome == "failed":
            entry["outcome"] = "error"

    def crashed(self, nodeid: str, worker: str | None) -> None:
        """xdist reported that the worker running ``nodeid`` died (its report carries no record)."""
        if nodeid not in self.cases and nodeid not in self.known:
            return  # not a notebook case
        entry = self.cases.setdefault(
            nodeid, {"nodeid": nodeid, "duration": 0.0, **self.known.get(nodeid, {}), "failure": None}
        )
        entry["outcome"] = "crashed"
        entry["failure"] = {
            "kind": "crashed",
            "summary": f"the xdist worker {worker or ''} running it died (killed by the OOM killer, a segfault, "
            "or a notebook that killed its parent)".replace("  ", " "),
        }

    def pytest_runtest_logreport(self, report: Any) -> None:
        """pytest hook (this object is registered as a plugin on the controller only)."""
        measured = getattr(report, PRINCIPLES_ATTRIBUTE, None)
        if measured is not None:
            self.principles[str(measured["notebook"])] = {**measured, "session": self.session_id}
            return
        record = getattr(report, REPORT_ATTRIBUTE, None)
        if record is None:
            if report.when == "???" or "crashed while running" in str(getattr(report, "longrepr", "")):
                gateway = getattr(getattr(report, "node", None), "gateway", None)
                self.crashed(report.nodeid, getattr(gateway, "id", None))
            return
        snapshot = record.get("snapshot") or {}
        if snapshot.get("status") == "written" and report.when == "call":
            self.snapshots_written.append(snapshot["path"])
        self.add(report.nodeid, report.when, report.outcome, report.duration, record, hasattr(report, "wasxfail"))

    def worker_down(self, node: Any, error: Any) -> None:
        """An xdist worker finished (the cases it collected arrive with it) or died."""
        output = getattr(node, "workeroutput", None) or {}
        for nodeid, record in (output.get(WORKER_OUTPUT_KEY) or {}).items():
            self.known.setdefault(nodeid, record)
        if error is not None:
            self.crashed_workers.append(str(getattr(getattr(node, "gateway", None), "id", node)))

    def session_ended(self, exitstatus: int, stopped_early: bool) -> None:
        """How the session ended: pytest's exit status (2 interrupted, 3 internal error)."""
        if exitstatus == 2:
            self.state = "interrupted"
        elif exitstatus == 3:
            self.state = "internal-error"
        elif self.crashed_workers:
            self.state = "worker-crashed"
        elif stopped_early:
            self.state = "stopped"

    def pytest_sessionfinish(self, session: Any, exitstatus: int) -> None:
        """pytest hook: write the file when any notebook case was collected or ran."""
        self.session_ended(int(exitstatus), bool(getattr(session, "shouldfail", False)))
        if not self.cases and not self.known and not self.write_empty:
            return
        try:
            self.write()
        except (OSError, ResultsError) as exc:
            self.outcome = f"could not write the results file {self.shown_path}: {exc}"
        else:
            ran = sum(1 for case in self.cases.values())
            self.outcome = f"{ran} case{'' if ran == 1 else 's'} recorded in {self.shown_path}"
            if self.state != "completed":
                self.outcome += f" (session {self.state}: nbpromote will not promote from it)"

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        """pytest hook: one line saying where the results went (runs after sessionfinish)."""
        if self.snapshots_written:
            written = sorted(self.snapshots_written)
            terminalreporter.write_line(f"notebooks: wrote {len(written)} snapshots: {', '.join(written)}")
        if self.outcome:
            terminalreporter.write_line(f"notebooks: {self.outcome}", red=self.outcome.startswith("could not"))

    # -- the document --------------------------------------------------------------------------

    def session_record(self) -> dict[str, Any]:
        return {
            "id": self.session_id,
            "started": self.started,
            "finished": _now(),
            "state": self.state,
            "crashed_workers": sorted(self.crashed_workers),
        }

    def case_records(self) -> dict[str, dict[str, Any]]:
        """This session's cases: the ones that ran, in-flight ones resolved, the rest ``not run``."""
        unfinished = "interrupted" if self.state in ("interrupted", "internal-error") else "crashed"
        records: dict[str, dict[str, Any]] = {}
        for nodeid, entry in self.cases.items():
            case = dict(entry)
            if case["outcome"] == STARTED:  # setup passed and no call report came
                case["outcome"] = unfinished
                case.setdefault("failure", None)
                if case.get("failure") is None:
                    case["failure"] = {"kind": unfinished, "summary": f"{unfinished} before the case finished"}
            case["session"] = self.session_id
            records[nodeid] = case
        seen = {(c.get("notebook"), c.get("case")) for c in records.values()}
        for nodeid, static in [*self.known.items(), *records.items()]:
            for case_id in static.get("declared_cases") or ():
                if (static.get("notebook"), case_id) in seen:
                    continue
                seen.add((static.get("notebook"), case_id))
                sibling = f"{nodeid.rpartition('::')[0]}::{case_id}"
                own = self.known.get(sibling) or {**static, "case": case_id, "parameters": None, "output": None}
                records[sibling] = {
                    "nodeid": sibling,
                    **{k: own.get(k) for k in _STATIC},
                    "outcome": NOT_RUN,
                    "duration": 0.0,
                    "failure": None,
                    "session": self.session_id,
                }
        return records

    def document(self, previous: dict[str, Any] | None = None) -> dict[str, Any]:
        """The results file's content; ``previous`` is the file as it was, for ``accumulate``."""
        cases = self.case_records()
        sessions = [self.session_record()]
        principles = dict(self.principles)
        if previous is not None:
            cases, sessions = accumulate(previous, cases, sessions, self.git, self.rootdir)
            kept = {c.get("notebook") for c in cases.values() if c.get("session") != self.session_id}
            for nb in previous.get("notebooks", []):  # measures of the same bytes, from an earlier run
                if nb.get("path") in kept and nb.get("principles") and nb.get("path") not in principles:
                    principles[nb["path"]] = nb["principles"]
        return build_document(
            rootdir=str(self.rootdir),
            output_dir=self.output_dir,
            git=None
            if self.git is None
            else {"commit": self.git.commit, "dirty": self.git.dirty, "branch": self.git.branch},
            session=sessions[0],
            sessions=sessions,
            cases=list(cases.values()),
            principles=principles,
        )

    def write(self) -> None:
        """Write the file atomically (a reader never sees half of it), accumulating as documented."""
        previous = None
        if self.path.is_file():
            try:
                previous = load_results(self.path, check=False)
            except ResultsError:
                previous = None  # unreadable or another schema: start afresh
        try:
            document = self.document(previous)
        except (KeyError, TypeError, AttributeError, ValueError):  # a hand-edited earlier file: start afresh
            document = self.document(None)
        atomic_write(self.path, dumps(document))
        self.written = document


def build_document(
    *,
    rootdir: str,
    output_dir: str,
    git: dict[str, Any] | None,
    session: dict[str, Any],
    sessions: list[dict[str, Any]],
    cases: list[dict[str, Any]],
    principles: dict[str, dict[str, Any]] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """A whole results document from its case records; notebook entries and summary are derived."""
    cases = sorted(cases, key=lambda c: (str(c.get("notebook")), str(c.get("nodeid"))))
    notebooks: dict[str, dict[str, Any]] = {}
    for case in cases:
        nb = notebooks.setdefault(
            str(case.get("notebook")),
            {
                "path": case.get("notebook"),
                "fixture": case.get("fixture"),
                "sha256": case.get("notebook_sha256"),
                "fixture_sha256": case.get("fixture_sha256"),
                "declared_cases": list(case.get("declared_cases") or []),
                "cases": [],
                "outcome": "passed",
            },
        )
        nb["cases"].append(case.get("case"))
        if case.get("outcome") != "passed":
            nb["outcome"] = "not passed"
    for path, nb in notebooks.items():
        if set(nb["declared_cases"]) - set(nb["cases"]):
            nb["outcome"] = "not passed"
        if principles and path in principles:
            nb["principles"] = principles[path]
    return {
        "schema": SCHEMA,
        "version": SCHEMA_VERSION,
        "created": _now(),
        "rootdir": rootdir,
        "output_dir": output_dir,
        "git": git,
        "versions": {**{name: _version(name) for name in _PACKAGES}, "python": platform.python_version()},
        "session": session,
        "sessions": sessions,
        "summary": dict(Counter(str(case.get("outcome")) for case in cases)),
        "notebooks": list(notebooks.values()),
        "cases": cases,
        **extra,
    }


def accumulate(
    previous: dict[str, Any],
    cases: dict[str, dict[str, Any]],
    sessions: list[dict[str, Any]],
    git: GitState | None,
    rootdir: Path,
) -> tuple[dict[str, dict[str, Any]], list[dict[str, Any]]]:
    """This session's records over the previous file's, when the previous file may be kept.

    Kept only when both sessions ran on the same commit with a clean tree in the same rootdir; then a
    previous record fills a case this session did not run if the notebook's and fixture's sha256 are
    the same as now. Returns (cases, sessions newest first).
    """
    old_git = previous.get("git") or {}
    same_tree = (
        git is not None
        and git.commit is not None
        and not git.dirty
        and old_git.get("commit") == git.commit
        and old_git.get("dirty") is False
        and previous.get("rootdir") == str(rootdir)
    )
    if not same_tree:
        return cases, sessions
    merged = dict(cases)
    hashes: dict[str, tuple[str | None, str | None]] = {}
    used: set[str] = set()
    for nodeid, old in ((c.get("nodeid"), c) for c in previous.get("cases", [])):
        if not isinstance(nodeid, str) or old.get("outcome") == NOT_RUN:
            continue
        now = merged.get(nodeid)
        if now is not None and now.get("outcome") != NOT_RUN:
            continue  # re-run in this session: the new record replaces it
        notebook = str(old.get("notebook"))
        if notebook not in hashes:
            hashes[notebook] = (_sha256(rootdir / notebook), _sha256(rootdir / str(old.get("fixture"))))
        if hashes[notebook] != (old.get("notebook_sha256"), old.get("fixture_sha256")):
            continue  # the files changed since: that evidence is stale
        merged[nodeid] = old
        used.add(str(old.get("session")))
    kept = [s for s in previous.get("sessions", []) if s.get("id") in used]
    return merged, [*sessions, *kept]


def _sha256(path: Path) -> str | None:
    import hashlib

    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


def _version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None
