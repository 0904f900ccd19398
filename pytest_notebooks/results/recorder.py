"""Test reports -> the results file (JSON). Runs on the controller only, like junitxml.

The file is evidence that ``nbpromote`` trusts, so it records what happened, never what was hoped:

- A case is ``passed`` only on a passing call report. A case whose setup passed but whose call
  report never came is ``interrupted`` (Ctrl-C, SIGTERM) or ``crashed`` (its xdist worker died);
  ``error`` is a failed setup or teardown.
- One record per case, however many reports of its node id arrive: every run of it is an attempt
  (``--dist each`` runs it on every worker, ``--keep-duplicates`` twice in one process), and the
  record's outcome is the worst attempt's. An attempt that pytest-rerunfailures reran (a ``rerun``
  report) is superseded by the next one in its process: a case that passes on its rerun is
  ``passed``, ``flaky``, with no failure.
- Every case its fixture declares is listed, ``not run`` when it did not run in this session
  (deselected, another shard, stopped before it started), as a small record. A notebook is
  ``passed`` only when every declared case ran and passed. Declared case ids are kept once per
  notebook, so the file grows linearly with the cases.
- ``session.state`` says how the session ended: ``completed``, ``stopped`` (``-x``/``--maxfail``),
  ``interrupted``, ``internal-error`` or ``worker-crashed``.

The file belongs to the session: the earlier file is read once, as the session starts
(``read_previous``), and only that snapshot accumulates (``accumulate()``): a case that did not
run in this session keeps its record from it when both sessions tested the same commit on a clean
tree and its notebook and fixture have the same sha256 now; a case that ran replaces its record.
Anything else starts the file afresh. What a notebook (or another pytest) writes into the file
during the session is ignored, with a warning. The shape is ``results.schema.json`` beside this
module (see ``read.py``).
"""

from __future__ import annotations

import datetime
import hashlib
import platform
import uuid
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from pytest_notebooks.files import atomic_write
from pytest_notebooks.gitinfo import GitState
from pytest_notebooks.results.read import (
    MAX_BYTES,
    SCHEMA,
    SCHEMA_VERSION,
    ResultsError,
    dumps,
    entries_problem,
    parse_results,
)

REPORT_ATTRIBUTE = "pytest_notebooks"  # the attribute of a TestReport that carries a case record
PRINCIPLES_ATTRIBUTE = "pytest_notebooks_principles"  # ... and a notebook's principles measures
WORKER_OUTPUT_KEY = "pytest_notebooks_collected"  # xdist workeroutput: every notebook case collected
WORKER_DECLARED_KEY = "pytest_notebooks_declared"  # xdist workeroutput: notebook -> its declared case ids
STARTED = "started"  # internal: setup passed, no call report yet
NOT_RUN = "not run"
RAN = ("passed", "failed", "error", "skipped", "xfailed", "xpassed", "interrupted", "crashed")
OUTCOMES = (*RAN, NOT_RUN)
WORST_FIRST = ("crashed", "interrupted", "error", "failed", "xpassed", "skipped", "xfailed", "passed")
_PACKAGES = ("pytest-notebooks", "papermill", "nbclient", "ipykernel", "pytest")
STATIC = (  # what every report of a case carries alike
    "notebook",
    "fixture",
    "case",
    "parameters",
    "notebook_sha256",
    "fixture_sha256",
    "output",
    "fixture_skip",
    "fixture_xfail",
)
_IDENTITY = ("notebook", "fixture", "case", "notebook_sha256", "fixture_sha256")  # of a collected case
_FROM_CALL = ("execution_seconds", "kernel", "snapshot")  # what one attempt's call report says
_NOT_STATIC = frozenset({"declared_cases", "failure", *_FROM_CALL})  # any other key of a record is kept as is
_ANY_WORKER = "*"  # a crashed attempt that xdist rescheduled: its rerun may come from any worker


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def rank(outcome: str) -> int:
    """Worse outcomes first: ``crashed`` 0 ... ``passed`` 7; an unknown outcome ranks as ``passed``."""
    return WORST_FIRST.index(outcome) if outcome in WORST_FIRST else len(WORST_FIRST) - 1


@dataclass
class Attempt:
    """One run of a case in one process (an xdist worker, or pytest itself): its phases folded."""

    worker: str | None
    chain: int  # an attempt and the reruns that superseded it share a chain; chains are independent runs
    outcome: str = STARTED
    duration: float = 0.0
    failure: dict[str, Any] | None = None
    from_call: dict[str, Any] = field(default_factory=dict)
    superseded: bool = False  # pytest-rerunfailures ran the case again after this attempt
    closed: bool = False  # its teardown was reported

    def fold(self, when: str, outcome: str, duration: float, record: Mapping[str, Any], wasxfail: bool) -> None:
        """One phase's report (setup, call, teardown); ``rerun`` is a failure that is run again."""
        self.duration += duration
        failed = outcome in ("failed", "rerun")
        self.superseded = self.superseded or outcome == "rerun"
        if when == "setup":
            if failed:
                self.outcome = "error"
            elif outcome == "skipped":
                self.outcome = "xfailed" if wasxfail else "skipped"
        elif when == "call":
            self.failure = record.get("failure")  # this attempt's own, None included
            self.from_call = {key: record.get(key) for key in _FROM_CALL}
            if wasxfail:
                self.outcome = "xfailed" if outcome == "skipped" else "xpassed"
            else:
                self.outcome = "failed" if failed else outcome
        elif when == "teardown":
            self.closed = True
            if failed:
                self.outcome = "error"

    def resolved(self, unfinished: str) -> tuple[str, dict[str, Any] | None]:
        """(outcome, failure), an attempt still running when the session ended as ``unfinished``."""
        if self.outcome != STARTED:
            return self.outcome, self.failure
        return unfinished, self.failure or {"kind": unfinished, "summary": f"{unfinished} before the case finished"}

    def to_json(self, unfinished: str) -> dict[str, Any]:
        outcome, failure = self.resolved(unfinished)
        brief = None if failure is None else {"kind": failure.get("kind"), "summary": failure.get("summary")}
        return {
            "outcome": outcome,
            "worker": self.worker,
            "duration": round(self.duration, 3),
            "failure": brief,
            "superseded": self.superseded,
        }


@dataclass
class CaseEntry:
    """Every report of one node id in this session, as attempts."""

    nodeid: str
    static: dict[str, Any] = field(default_factory=dict)
    attempts: list[Attempt] = field(default_factory=list)
    running: dict[str | None, Attempt] = field(default_factory=dict)  # worker -> its open attempt
    reruns: dict[str | None, int] = field(default_factory=dict)  # worker -> the chain its next attempt continues
    chains: int = 0

    def attempt(self, worker: str | None, when: str) -> Attempt:
        """The attempt a report of ``worker`` belongs to: a setup report starts one."""
        current = self.running.get(worker)
        if current is not None and when != "setup":
            return current
        chain = self.reruns.pop(worker, None)
        if chain is None:
            chain = self.reruns.pop(_ANY_WORKER, None)
        if chain is None:
            chain, self.chains = self.chains, self.chains + 1
        new = Attempt(worker, chain)
        self.attempts.append(new)
        self.running[worker] = new
        return new

    def fold(
        self, worker: str | None, when: str, outcome: str, duration: float, record: Mapping[str, Any], wasxfail: bool
    ) -> None:
        for key, value in record.items():
            if key not in _NOT_STATIC and value is not None and self.static.get(key) is None:
                self.static[key] = value
        attempt = self.attempt(worker, when)
        attempt.fold(when, outcome, duration, record, wasxfail)
        self.settle(attempt, rescheduled=False)

    def settle(self, attempt: Attempt, *, rescheduled: bool) -> None:
        """A superseded attempt hands its chain on; a closed one leaves its worker."""
        if attempt.superseded:
            self.reruns[_ANY_WORKER if rescheduled else attempt.worker] = attempt.chain
        if attempt.closed and self.running.get(attempt.worker) is attempt:
            del self.running[attempt.worker]

    def record(self, session: str, unfinished: str) -> dict[str, Any]:
        """The case's record: the worst final attempt of its independent runs decides."""
        finals = {attempt.chain: attempt for attempt in self.attempts}  # each chain's last attempt
        chosen = min(finals.values(), key=lambda a: rank(a.resolved(unfinished)[0]))
        outcome, failure = chosen.resolved(unfinished)
        flaky = any(
            final.outcome == "passed" and sum(a.chain == chain for a in self.attempts) > 1
            for chain, final in finals.items()
        )
        static = {key: self.static.get(key) for key in STATIC}
        return {
            "nodeid": self.nodeid,
            **{key: static[key] for key in ("notebook", "fixture", "case", "parameters")},
            "outcome": outcome,
            "duration": round(sum(a.duration for a in self.attempts), 3),
            "execution_seconds": chosen.from_call.get("execution_seconds"),
            "output": static["output"],
            "kernel": chosen.from_call.get("kernel"),
            **{key: static[key] for key in ("notebook_sha256", "fixture_sha256", "fixture_skip", "fixture_xfail")},
            **{key: value for key, value in self.static.items() if key not in STATIC},  # newer fields, as sent
            "session": session,
            "failure": None if outcome == "passed" else failure,
            "snapshot": chosen.from_call.get("snapshot"),
            "flaky": flaky,
            "attempts": [a.to_json(unfinished) for a in sorted(self.attempts, key=lambda a: a.worker or "")],
        }


def collected_on_worker(output: dict[str, Any], nodeid: str, record: Mapping[str, Any]) -> None:
    """On an xdist worker: a collected case for the controller's ``worker_down``, small (no
    parameters), with the notebook's declared case ids once per notebook."""
    output.setdefault(WORKER_OUTPUT_KEY, {})[nodeid] = {key: record.get(key) for key in _IDENTITY}
    declared = output.setdefault(WORKER_DECLARED_KEY, {})
    declared.setdefault(str(record.get("notebook")), list(record.get("declared_cases") or ()))


@dataclass(eq=False)  # registered as a pytest plugin: pluggy hashes it (pytest < 9.1 does)
class Recorder:
    """Collects case records from test reports and writes the results file once."""

    path: Path
    rootdir: Path
    output_dir: str
    git: GitState | None
    shown_path: str = ""  # how the summary line names the file
    write_empty: bool = False  # a shard writes its file even when no case fell to it
    cases: dict[str, CaseEntry] = field(default_factory=dict)
    known: dict[str, dict[str, Any]] = field(default_factory=dict)  # nodeid -> identity, collected
    notebooks: dict[str, dict[str, Any]] = field(default_factory=dict)  # path -> hashes and declared case ids
    prefixes: dict[str, str] = field(default_factory=dict)  # notebook path -> node id before "::case"
    outcome: str = ""  # the summary line: where the file went, or why it could not be written
    warning: str = ""  # a line under it: the file was changed by someone else during the session
    snapshots_written: list[str] = field(default_factory=list)
    state: str = "completed"
    crashed_workers: list[str] = field(default_factory=list)
    session_id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    started: str = field(default_factory=_now)
    written: dict[str, Any] | None = None  # the document as written at the end of the session
    principles: dict[str, dict[str, Any]] = field(default_factory=dict)  # notebook -> measures, violations
    previous: dict[str, Any] | None = None  # the file as the session started (read_previous)
    previous_digest: str | None = None  # ... its bytes' digest, None when there was no file
    read_at_start: bool = False

    # -- what pytest tells us ------------------------------------------------------------------

    def read_previous(self) -> None:
        """Read the earlier results file once, as the session starts: the only earlier evidence the
        session may keep. An unreadable file, or one of another schema version, is not kept."""
        self.read_at_start = True
        self.previous_digest, data = _digest(self.path)
        if data is None:
            return
        try:
            self.previous = parse_results(data.decode("utf-8"), str(self.path), check=False)
        except (ResultsError, UnicodeDecodeError):
            self.previous = None  # start afresh

    def collected(self, nodeid: str, record: Mapping[str, Any]) -> None:
        """A notebook case was collected (before any deselection)."""
        self.known[nodeid] = {key: record.get(key) for key in _IDENTITY}
        self._notebook(nodeid, record)

    def _notebook(self, nodeid: str, record: Mapping[str, Any]) -> None:
        """The notebook of a case: its hashes and declared case ids, kept once."""
        path = record.get("notebook")
        if not isinstance(path, str) or (path in self.notebooks and self.notebooks[path]["declared_cases"]):
            return
        self.prefixes.setdefault(path, nodeid.rpartition("::")[0])
        self.notebooks[path] = {
            "path": path,
            "fixture": record.get("fixture"),
            "sha256": record.get("notebook_sha256"),
            "fixture_sha256": record.get("fixture_sha256"),
            "blob": record.get("notebook_blob"),
            "fixture_blob": record.get("fixture_blob"),
            "declared_cases": tuple(record.get("declared_cases") or ()),
        }

    def add(
        self,
        nodeid: str,
        when: str,
        outcome: str,
        duration: float,
        record: Mapping[str, Any],
        wasxfail: bool,
        worker: str | None = None,
    ) -> None:
        """Fold one phase's report (setup, call, teardown) of ``worker`` (an xdist worker id, None
        without xdist) into the case's attempts. ``outcome`` ``rerun``: pytest-rerunfailures runs it again."""
        self._notebook(nodeid, record)
        self.cases.setdefault(nodeid, CaseEntry(nodeid)).fold(worker, when, outcome, duration, record, wasxfail)

    def crashed(self, nodeid: str, worker: str | None, rescheduled: bool = False) -> None:
        """xdist reported that the worker running ``nodeid`` died (its report carries no record);
        ``rescheduled``: pytest-rerunfailures had xdist run it again, maybe on another worker."""
        if nodeid not in self.cases and nodeid not in self.known:
            return  # not a notebook case
        entry = self.cases.setdefault(nodeid, CaseEntry(nodeid, static=dict(self.known.get(nodeid, {}))))
        attempt = entry.running.get(worker) or entry.attempt(worker, "setup")
        attempt.outcome, attempt.closed, attempt.superseded = "crashed", True, rescheduled
        attempt.failure = {
            "kind": "crashed",
            "summary": f"the xdist worker {worker or ''} running it died (killed by the OOM killer, a segfault, "
            "or a notebook that killed its parent)".replace("  ", " "),
        }
        entry.settle(attempt, rescheduled=rescheduled)

    def pytest_runtest_logreport(self, report: Any) -> None:
        """pytest hook (this object is registered as a plugin on the controller only)."""
        measured = getattr(report, PRINCIPLES_ATTRIBUTE, None)
        if measured is not None:
            self.principles[str(measured["notebook"])] = {**measured, "session": self.session_id}
            return
        worker = getattr(getattr(getattr(report, "node", None), "gateway", None), "id", None)  # set by xdist
        record = getattr(report, REPORT_ATTRIBUTE, None)
        if record is None:
            if report.when == "???" or "crashed while running" in str(getattr(report, "longrepr", "")):
                self.crashed(report.nodeid, worker, rescheduled=report.outcome == "rerun")
            return
        snapshot = record.get("snapshot") or {}
        if snapshot.get("status") == "written" and report.when == "call":
            self.snapshots_written.append(snapshot["path"])
        wasxfail = hasattr(report, "wasxfail")
        self.add(report.nodeid, report.when, report.outcome, report.duration, record, wasxfail, worker)

    def worker_down(self, node: Any, error: Any) -> None:
        """An xdist worker finished (the cases it collected arrive with it) or died."""
        output = getattr(node, "workeroutput", None) or {}
        declared = output.get(WORKER_DECLARED_KEY) or {}
        for nodeid, record in (output.get(WORKER_OUTPUT_KEY) or {}).items():
            if nodeid not in self.known:
                self.collected(nodeid, {**record, "declared_cases": declared.get(record.get("notebook"))})
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
            return
        ran = len(self.cases)
        self.outcome = f"{ran} case{'' if ran == 1 else 's'} recorded in {self.shown_path}"
        if self.state != "completed":
            self.outcome += f" (session {self.state}: nbpromote will not promote from it)"
        problem = entries_problem(self.written or {})
        if problem:  # e.g. a notebook outside the rootdir
            self.outcome += f"; nbpromote and nbreview will refuse it: {problem}"

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        """pytest hook: one line saying where the results went (runs after sessionfinish)."""
        if self.snapshots_written:
            written = sorted(self.snapshots_written)
            terminalreporter.write_line(f"notebooks: wrote {len(written)} snapshots: {', '.join(written)}")
        if self.outcome:
            terminalreporter.write_line(f"notebooks: {self.outcome}", red=self.outcome.startswith("could not"))
        if self.warning:
            terminalreporter.write_line(f"notebooks: warning: {self.warning}", yellow=True)

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
        """The cases that ran in this session, one record each; in-flight ones resolved."""
        unfinished = "interrupted" if self.state in ("interrupted", "internal-error") else "crashed"
        return {nodeid: entry.record(self.session_id, unfinished) for nodeid, entry in self.cases.items()}

    def document(self) -> dict[str, Any]:
        """The results file's content: this session's records, then those kept from the file as the
        session started (``accumulate``), then every other declared case as ``not run``."""
        cases = self.case_records()
        sessions = [self.session_record()]
        notebooks = dict(self.notebooks)
        principles = dict(self.principles)
        if self.previous is not None:
            cases, sessions = accumulate(self.previous, cases, sessions, self.git, self.rootdir)
            kept = {c.get("notebook") for c in cases.values() if c.get("session") != self.session_id}
            for nb in self.previous.get("notebooks", []):  # the same bytes, tested in an earlier session
                if nb.get("path") not in kept:
                    continue
                notebooks.setdefault(nb["path"], nb)
                if nb.get("principles") and nb["path"] not in principles:
                    principles[nb["path"]] = nb["principles"]
        return build_document(
            rootdir=str(self.rootdir),
            output_dir=self.output_dir,
            git=None
            if self.git is None
            else {"commit": self.git.commit, "dirty": self.git.dirty, "branch": self.git.branch},
            session=sessions[0],
            sessions=sessions,
            cases=not_run_filled(cases, notebooks, self.prefixes),
            notebooks=notebooks,
            principles=principles,
        )

    def write(self) -> None:
        """Write the file atomically (a reader never sees half of it), accumulating as documented."""
        if self.read_at_start and _digest(self.path)[0] != self.previous_digest:
            self.warning = (
                f"{self.shown_path or self.path} was changed during the session, not by this pytest (a notebook, "
                "or another pytest writing the same file); what it held was ignored: the file holds this "
                "session's records and those it held when the session started"
            )
        try:
            document = self.document()
        except (KeyError, TypeError, AttributeError, ValueError):  # a hand-edited earlier file: start afresh
            self.previous = None
            document = self.document()
        atomic_write(self.path, dumps(document))
        self.written = document


def not_run_filled(
    cases: dict[str, dict[str, Any]], notebooks: Mapping[str, Mapping[str, Any]], prefixes: Mapping[str, str]
) -> list[dict[str, Any]]:
    """``cases`` and a small ``not run`` record for every declared case of ``notebooks`` without one."""
    filled = list(cases.values())
    seen = {(c.get("notebook"), c.get("case")) for c in filled}
    prefix: dict[Any, str] = {c.get("notebook"): str(c.get("nodeid")).rpartition("::")[0] for c in filled}
    prefix.update(prefixes)
    for path, notebook in notebooks.items():
        for case_id in notebook.get("declared_cases") or ():
            if (path, case_id) in seen:
                continue
            seen.add((path, case_id))
            filled.append(
                {
                    "nodeid": f"{prefix.get(path, path)}::{case_id}",
                    "notebook": path,
                    "fixture": notebook.get("fixture"),
                    "case": case_id,
                    "outcome": NOT_RUN,
                }
            )
    return filled


def build_document(
    *,
    rootdir: str,
    output_dir: str,
    git: dict[str, Any] | None,
    session: dict[str, Any],
    sessions: list[dict[str, Any]],
    cases: list[dict[str, Any]],
    notebooks: Mapping[str, Mapping[str, Any]] | None = None,
    principles: dict[str, dict[str, Any]] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """A whole results document from its case records; notebook entries and summary are derived.

    ``notebooks`` (path -> ``fixture``, ``sha256``, ``fixture_sha256``, ``declared_cases``) gives
    each notebook's own entry; without it, its hashes are its cases' and it declares the cases listed.
    """
    cases = sorted(cases, key=lambda c: (str(c.get("notebook")), str(c.get("nodeid"))))
    entries: dict[str, dict[str, Any]] = {}
    for case in cases:
        path = str(case.get("notebook"))
        if path not in entries:
            given = (notebooks or {}).get(path) or {}
            entries[path] = {
                "path": case.get("notebook"),
                "fixture": given.get("fixture") or case.get("fixture"),
                "sha256": given.get("sha256"),
                "fixture_sha256": given.get("fixture_sha256"),
                "blob": given.get("blob") or case.get("notebook_blob"),
                "fixture_blob": given.get("fixture_blob") or case.get("fixture_blob"),
                "declared_cases": list(given.get("declared_cases") or ()),
                "cases": [],
                "outcome": "passed",
            }
        nb = entries[path]
        nb["sha256"] = nb["sha256"] or case.get("notebook_sha256")
        nb["fixture_sha256"] = nb["fixture_sha256"] or case.get("fixture_sha256")
        nb["cases"].append(case.get("case"))
        if case.get("outcome") != "passed":
            nb["outcome"] = "not passed"
    for path, nb in entries.items():
        nb["declared_cases"] = nb["declared_cases"] or list(nb["cases"])
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
        "notebooks": list(entries.values()),
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
    """This session's records (the cases that ran) over the previous file's, when it may be kept.

    ``previous`` is the file as the session started. Kept only when both sessions ran on the same
    commit with a clean tree in the same rootdir; then a previous record fills a case this session
    did not run if the notebook's and fixture's sha256 are the same as now. Returns (cases,
    sessions newest first).
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
    ran = {(c.get("notebook"), c.get("case")) for c in cases.values()}
    hashes: dict[str, tuple[str | None, str | None]] = {}
    used: set[str] = set()
    for nodeid, old in ((c.get("nodeid"), c) for c in previous.get("cases", [])):
        if not isinstance(nodeid, str) or old.get("outcome") == NOT_RUN:
            continue
        if nodeid in merged or (old.get("notebook"), old.get("case")) in ran:
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
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


def _digest(path: Path) -> tuple[str | None, bytes | None]:
    """(a digest of the file at ``path``, its bytes): (None, None) when there is none. A file too big
    to be a results file is told by its size and time instead, and its bytes are not read."""
    try:
        status = path.stat()
        if status.st_size > MAX_BYTES:
            return f"{status.st_size} bytes, modified {status.st_mtime_ns}", None
        data = path.read_bytes()
    except FileNotFoundError:
        return None, None
    except OSError as exc:
        return f"unreadable: {exc}", None
    return hashlib.sha256(data).hexdigest(), data


def _version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None
