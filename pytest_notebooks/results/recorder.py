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

import dataclasses
import datetime
import hashlib
import platform
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from pytest_notebooks.cases.naming import DEFAULT_SUFFIXES
from pytest_notebooks.errors import ResultsError
from pytest_notebooks.files import atomic_write
from pytest_notebooks.gitinfo import GitState
from pytest_notebooks.results.read import MAX_BYTES, dumps, entries_problem, parse_results
from pytest_notebooks.results.record import (
    AttemptRecord,
    CaseRecord,
    CaseReport,
    FailureRecord,
    GitRecord,
    NotebookRecord,
    Outcome,
    PrinciplesRecord,
    ResultsDocument,
    SessionRecord,
    SessionState,
)

REPORT_ATTRIBUTE = "pytest_notebooks"  # the attribute of a TestReport that carries a CaseReport's JSON
PRINCIPLES_ATTRIBUTE = "pytest_notebooks_principles"  # ... and a notebook's PrinciplesRecord's JSON
WORKER_OUTPUT_KEY = "pytest_notebooks_collected"  # xdist workeroutput: every notebook case collected
WORKER_DECLARED_KEY = "pytest_notebooks_declared"  # xdist workeroutput: notebook -> its declared case ids
_PACKAGES = ("pytest-notebooks", "papermill", "nbclient", "ipykernel", "pytest")
_ANY_WORKER = "*"  # a crashed attempt that xdist rescheduled: its rerun may come from any worker


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


@dataclass
class Attempt:
    """One run of a case in one process (an xdist worker, or pytest itself): its phases folded."""

    worker: str | None
    chain: int  # an attempt and the reruns that superseded it share a chain; chains are independent runs
    outcome: Outcome | None = None  # None: its setup passed, no call report yet
    duration: float = 0.0
    failure: FailureRecord | None = None
    call: CaseReport | None = None  # the call phase's report: kernel, execution time, snapshot
    superseded: bool = False  # pytest-rerunfailures ran the case again after this attempt
    closed: bool = False  # its teardown was reported

    def fold(self, when: str, outcome: str, duration: float, report: CaseReport, wasxfail: bool) -> None:
        """One phase's report (setup, call, teardown); ``rerun`` is a failure that is run again."""
        self.duration += duration
        failed = outcome in ("failed", "rerun")
        self.superseded = self.superseded or outcome == "rerun"
        if when == "setup":
            if failed:
                self.outcome = Outcome.ERROR
            elif outcome == "skipped":
                self.outcome = Outcome.XFAILED if wasxfail else Outcome.SKIPPED
        elif when == "call":
            self.failure, self.call = report.failure, report  # this attempt's own, None included
            if wasxfail:
                self.outcome = Outcome.XFAILED if outcome == "skipped" else Outcome.XPASSED
            else:
                self.outcome = Outcome.FAILED if failed else Outcome(outcome)
        elif when == "teardown":
            self.closed = True
            if failed:
                self.outcome = Outcome.ERROR

    def resolved(self, unfinished: Outcome) -> tuple[Outcome, FailureRecord | None]:
        """(outcome, failure), an attempt still running when the session ended as ``unfinished``."""
        if self.outcome is not None:
            return self.outcome, self.failure
        return unfinished, self.failure or FailureRecord(unfinished.value, f"{unfinished} before the case finished")

    def record(self, unfinished: Outcome) -> AttemptRecord:
        outcome, failure = self.resolved(unfinished)
        brief = None if failure is None else failure.brief()
        return AttemptRecord(outcome, self.worker, round(self.duration, 3), brief, self.superseded)


@dataclass
class CaseEntry:
    """Every report of one node id in this session, as attempts."""

    nodeid: str
    identity: CaseReport
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
        self, worker: str | None, when: str, outcome: str, duration: float, report: CaseReport, wasxfail: bool
    ) -> None:
        attempt = self.attempt(worker, when)
        attempt.fold(when, outcome, duration, report, wasxfail)
        self.settle(attempt, rescheduled=False)

    def settle(self, attempt: Attempt, *, rescheduled: bool) -> None:
        """A superseded attempt hands its chain on; a closed one leaves its worker."""
        if attempt.superseded:
            self.reruns[_ANY_WORKER if rescheduled else attempt.worker] = attempt.chain
        if attempt.closed and self.running.get(attempt.worker) is attempt:
            del self.running[attempt.worker]

    def record(self, session: str, unfinished: Outcome) -> CaseRecord:
        """The case's record: the worst final attempt of its independent runs decides."""
        finals = {attempt.chain: attempt for attempt in self.attempts}  # each chain's last attempt
        chosen = min(finals.values(), key=lambda a: a.resolved(unfinished)[0].rank)
        outcome, failure = chosen.resolved(unfinished)
        flaky = any(
            final.outcome is Outcome.PASSED and sum(a.chain == chain for a in self.attempts) > 1
            for chain, final in finals.items()
        )
        case, call = self.identity, chosen.call
        return CaseRecord(
            nodeid=self.nodeid,
            notebook=case.notebook,
            fixture=case.fixture,
            case=case.case,
            outcome=outcome,
            parameters=case.parameters,
            duration=round(sum(a.duration for a in self.attempts), 3),
            execution_seconds=None if call is None else call.execution_seconds,
            output=case.output,
            kernel=None if call is None else call.kernel,
            notebook_sha256=case.notebook_sha256,
            fixture_sha256=case.fixture_sha256,
            fixture_skip=case.fixture_skip,
            fixture_xfail=case.fixture_xfail,
            session=session,
            failure=None if outcome is Outcome.PASSED else failure,
            snapshot=None if call is None else call.snapshot,
            flaky=flaky,
            attempts=tuple(a.record(unfinished) for a in sorted(self.attempts, key=lambda a: a.worker or "")),
            converted_sha256=None if call is None else call.converted_sha256,
            converted_by=None if call is None else call.converted_by,
        )


def collected_on_worker(output: dict[str, Any], nodeid: str, report: CaseReport) -> None:
    """On an xdist worker: a collected case for the controller's ``worker_down``, small (no
    parameters), with the notebook's declared case ids once per notebook."""
    identity = dataclasses.replace(report.identity(), declared_cases=())
    output.setdefault(WORKER_OUTPUT_KEY, {})[nodeid] = identity.to_json()
    declared = output.setdefault(WORKER_DECLARED_KEY, {})
    declared.setdefault(report.notebook, list(report.declared_cases))


@dataclass(eq=False)  # registered as a pytest plugin: pluggy hashes it (pytest < 9.1 does)
class Recorder:
    """Collects case records from test reports and writes the results file once."""

    path: Path
    rootdir: Path
    output_dir: str
    git: GitState | None
    shown_path: str = ""  # how the summary line names the file
    write_empty: bool = False  # a shard writes its file even when no case fell to it
    fixture_suffixes: tuple[str, ...] = DEFAULT_SUFFIXES  # the session's fixture naming, recorded for nbpromote
    cases: dict[str, CaseEntry] = field(default_factory=dict)
    known: dict[str, CaseReport] = field(default_factory=dict)  # nodeid -> identity, collected
    notebooks: dict[str, NotebookRecord] = field(default_factory=dict)  # path -> hashes and declared case ids
    prefixes: dict[str, str] = field(default_factory=dict)  # notebook path -> node id before "::case"
    outcome: str = ""  # the summary line: where the file went, or why it could not be written
    warning: str = ""  # a line under it: the file was changed by someone else during the session
    snapshots_written: list[str] = field(default_factory=list)
    state: SessionState = SessionState.COMPLETED
    crashed_workers: list[str] = field(default_factory=list)
    session_id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    started: str = field(default_factory=_now)
    written: ResultsDocument | None = None  # the document as written at the end of the session
    principles: dict[str, PrinciplesRecord] = field(default_factory=dict)  # notebook -> measures, violations
    previous: ResultsDocument | None = None  # the file as the session started (read_previous)
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

    def collected(self, nodeid: str, report: CaseReport) -> None:
        """A notebook case was collected (before any deselection)."""
        self.known[nodeid] = report.identity()
        self._notebook(nodeid, report)

    def _notebook(self, nodeid: str, report: CaseReport) -> None:
        """The notebook of a case: its hashes and declared case ids, kept once."""
        path = report.notebook
        if path in self.notebooks and self.notebooks[path].declared_cases:
            return
        self.prefixes.setdefault(path, nodeid.rpartition("::")[0])
        self.notebooks[path] = NotebookRecord(
            path=path,
            fixture=report.fixture,
            sha256=report.notebook_sha256,
            fixture_sha256=report.fixture_sha256,
            blob=report.notebook_blob,
            fixture_blob=report.fixture_blob,
            declared_cases=report.declared_cases,
        )

    def add(
        self,
        nodeid: str,
        when: str,
        outcome: str,
        duration: float,
        report: CaseReport,
        wasxfail: bool,
        worker: str | None = None,
    ) -> None:
        """Fold one phase's report (setup, call, teardown) of ``worker`` (an xdist worker id, None
        without xdist) into the case's attempts. ``outcome`` ``rerun``: pytest-rerunfailures runs it again."""
        self._notebook(nodeid, report)
        entry = self.cases.setdefault(nodeid, CaseEntry(nodeid, report))
        entry.fold(worker, when, outcome, duration, report, wasxfail)

    def crashed(
        self, nodeid: str, worker: str | None, rescheduled: bool = False, failure: FailureRecord | None = None
    ) -> None:
        """xdist says the worker running ``nodeid`` died (``pytest_handlecrashitem``); ``rescheduled``:
        pytest-rerunfailures had xdist run it again, maybe on another worker. ``failure``: what the
        worker said before it died (pytest-timeout's thread method: the running cell), kept as the
        crashed attempt's failure instead of the generic one."""
        known = self.cases[nodeid].identity if nodeid in self.cases else self.known.get(nodeid)
        if known is None:
            return  # not a notebook case
        entry = self.cases.setdefault(nodeid, CaseEntry(nodeid, known))
        attempt = entry.running.get(worker) or entry.attempt(worker, "setup")
        attempt.outcome, attempt.closed, attempt.superseded = Outcome.CRASHED, True, rescheduled
        attempt.failure = failure or FailureRecord(
            "crashed",
            f"the xdist worker {worker or ''} running it died (killed by the OOM killer, a segfault, "
            "or a notebook that killed its parent)".replace("  ", " "),
        )
        entry.settle(attempt, rescheduled=rescheduled)

    def pytest_runtest_logreport(self, report: Any) -> None:
        """pytest hook (this object is registered as a plugin on the controller only)."""
        measured = getattr(report, PRINCIPLES_ATTRIBUTE, None)
        if measured is not None:
            principles = dataclasses.replace(PrinciplesRecord.from_json(measured), session=self.session_id)
            self.principles[principles.notebook] = principles
            return
        data = getattr(report, REPORT_ATTRIBUTE, None)
        if data is None:
            return  # not a notebook case, or xdist's report of a crashed worker (see crashed())
        case = CaseReport.from_json(data)
        snapshot = case.snapshot
        if snapshot is not None and snapshot.status == "written" and report.when == "call":
            self.snapshots_written.append(snapshot.path)
        worker = getattr(getattr(getattr(report, "node", None), "gateway", None), "id", None)  # set by xdist
        self.add(report.nodeid, report.when, report.outcome, report.duration, case, hasattr(report, "wasxfail"), worker)

    def worker_down(self, node: Any, error: Any) -> None:
        """An xdist worker finished (the cases it collected arrive with it) or died."""
        output = getattr(node, "workeroutput", None) or {}
        declared = output.get(WORKER_DECLARED_KEY) or {}
        for nodeid, data in (output.get(WORKER_OUTPUT_KEY) or {}).items():
            if nodeid not in self.known:
                report = CaseReport.from_json(data)
                ids = tuple(declared.get(report.notebook) or ())
                self.collected(nodeid, dataclasses.replace(report, declared_cases=ids))
        if error is not None:
            self.crashed_workers.append(str(getattr(getattr(node, "gateway", None), "id", node)))

    def session_ended(self, exitstatus: int, stopped_early: bool) -> None:
        """How the session ended: pytest's exit status (2 interrupted, 3 internal error)."""
        if exitstatus == 2:
            self.state = SessionState.INTERRUPTED
        elif exitstatus == 3:
            self.state = SessionState.INTERNAL_ERROR
        elif self.crashed_workers:
            self.state = SessionState.WORKER_CRASHED
        elif stopped_early:
            self.state = SessionState.STOPPED

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
        if self.state is not SessionState.COMPLETED:
            self.outcome += f" (session {self.state}: nbpromote will not promote from it)"
        problem = entries_problem(self.written) if self.written is not None else ""
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

    def session_record(self) -> SessionRecord:
        return SessionRecord(self.session_id, self.state, self.started, _now(), tuple(sorted(self.crashed_workers)))

    def case_records(self) -> dict[str, CaseRecord]:
        """The cases that ran in this session, one record each; in-flight ones resolved."""
        interrupted = self.state in (SessionState.INTERRUPTED, SessionState.INTERNAL_ERROR)
        unfinished = Outcome.INTERRUPTED if interrupted else Outcome.CRASHED
        return {nodeid: entry.record(self.session_id, unfinished) for nodeid, entry in self.cases.items()}

    def document(self) -> ResultsDocument:
        """The results file's content: this session's records, then those kept from the file as the
        session started (``accumulate``), then every other declared case as ``not run``."""
        cases = self.case_records()
        sessions = [self.session_record()]
        notebooks = dict(self.notebooks)
        principles = dict(self.principles)
        if self.previous is not None:
            cases, sessions = accumulate(self.previous, cases, sessions, self.git, self.rootdir)
            kept = {c.notebook for c in cases.values() if c.session != self.session_id}
            for nb in self.previous.notebooks:  # the same bytes, tested in an earlier session
                if nb.path not in kept:
                    continue
                notebooks.setdefault(nb.path, nb)
                if nb.principles is not None and nb.path not in principles:
                    principles[nb.path] = nb.principles
        git = None if self.git is None else GitRecord(self.git.commit, self.git.dirty, self.git.branch)
        return build_document(
            rootdir=str(self.rootdir),
            output_dir=self.output_dir,
            git=git,
            sessions=sessions,
            cases=not_run_filled(cases, notebooks, self.prefixes),
            notebooks=notebooks,
            principles=principles,
            fixture_suffixes=self.fixture_suffixes,
        )

    def write(self) -> None:
        """Write the file atomically (a reader never sees half of it), accumulating as documented."""
        if self.read_at_start and _digest(self.path)[0] != self.previous_digest:
            self.warning = (
                f"{self.shown_path or self.path} was changed during the session, not by this pytest (a notebook, "
                "or another pytest writing the same file); what it held was ignored: the file holds this "
                "session's records and those it held when the session started"
            )
        document = self.document()
        atomic_write(self.path, dumps(document))
        self.written = document


def not_run_filled(
    cases: Mapping[str, CaseRecord], notebooks: Mapping[str, NotebookRecord], prefixes: Mapping[str, str]
) -> list[CaseRecord]:
    """``cases`` and a small ``not run`` record for every declared case of ``notebooks`` without one."""
    filled = list(cases.values())
    seen = {case.key for case in filled}
    prefix = {case.notebook: case.nodeid.rpartition("::")[0] for case in filled}
    prefix.update(prefixes)
    for path, notebook in notebooks.items():
        for case_id in notebook.declared_cases:
            if (path, case_id) in seen:
                continue
            seen.add((path, case_id))
            nodeid = f"{prefix.get(path, path)}::{case_id}"
            filled.append(CaseRecord(nodeid, path, notebook.fixture, case_id, Outcome.NOT_RUN))
    return filled


def build_document(
    *,
    rootdir: str,
    output_dir: str,
    git: GitRecord | None,
    sessions: Iterable[SessionRecord],
    cases: Iterable[CaseRecord],
    session: SessionRecord | None = None,
    notebooks: Mapping[str, NotebookRecord] | None = None,
    principles: Mapping[str, PrinciplesRecord] | None = None,
    merged_from: int | None = None,
    fixture_suffixes: tuple[str, ...] = DEFAULT_SUFFIXES,
) -> ResultsDocument:
    """A whole results document from its case records; ``session`` is the one that writes it (the
    first of ``sessions`` when not given).

    ``notebooks`` gives each notebook's hashes and declared case ids; without an entry, a notebook's
    hashes are its cases' and it declares the cases listed. A notebook passed when every case it
    declares has a record and every one passed.
    """
    ordered = tuple(sorted(cases, key=lambda c: (c.notebook, c.nodeid)))
    by_notebook: dict[str, list[CaseRecord]] = {}
    for case in ordered:
        by_notebook.setdefault(case.notebook, []).append(case)
    entries = tuple(
        _notebook_entry(path, found, (notebooks or {}).get(path), (principles or {}).get(path))
        for path, found in by_notebook.items()
    )
    session_list = tuple(sessions)
    return ResultsDocument(
        created=_now(),
        rootdir=rootdir,
        output_dir=output_dir,
        git=git,
        session=session or session_list[0],
        sessions=session_list,
        notebooks=entries,
        cases=ordered,
        versions={**{name: _version(name) for name in _PACKAGES}, "python": platform.python_version()},
        merged_from=merged_from,
        fixture_suffixes=fixture_suffixes,
    )


def _notebook_entry(
    path: str, cases: list[CaseRecord], given: NotebookRecord | None, principles: PrinciplesRecord | None
) -> NotebookRecord:
    names = tuple(case.case for case in cases)
    declared = given.declared_cases if given is not None and given.declared_cases else names
    first = cases[0]
    return NotebookRecord(
        path=path,
        fixture=(given.fixture if given is not None else "") or first.fixture,
        sha256=(given.sha256 if given is not None else None) or first.notebook_sha256,
        fixture_sha256=(given.fixture_sha256 if given is not None else None) or first.fixture_sha256,
        blob=None if given is None else given.blob,
        fixture_blob=None if given is None else given.fixture_blob,
        declared_cases=declared,
        cases=names,
        passed=all(case.outcome.passing for case in cases) and not set(declared) - set(names),
        principles=principles,
    )


def accumulate(
    previous: ResultsDocument,
    cases: Mapping[str, CaseRecord],
    sessions: list[SessionRecord],
    git: GitState | None,
    rootdir: Path,
) -> tuple[dict[str, CaseRecord], list[SessionRecord]]:
    """This session's records (the cases that ran) over the previous file's, when it may be kept.

    ``previous`` is the file as the session started. Kept only when both sessions ran on the same
    commit with a clean tree in the same rootdir; then a previous record fills a case this session
    did not run if the notebook's and fixture's sha256 are the same as now. Returns (cases,
    sessions newest first).
    """
    old_git = previous.git
    same_tree = (
        git is not None
        and git.commit is not None
        and not git.dirty
        and old_git is not None
        and old_git.commit == git.commit
        and old_git.dirty is False
        and previous.rootdir == str(rootdir)
    )
    if not same_tree:
        return dict(cases), sessions
    merged = dict(cases)
    ran = {case.key for case in cases.values()}
    hashes: dict[str, tuple[str | None, str | None]] = {}
    used: set[str | None] = set()
    for old in previous.cases:
        if old.outcome is Outcome.NOT_RUN or old.nodeid in merged or old.key in ran:
            continue  # not evidence, or re-run in this session: the new record replaces it
        if old.notebook not in hashes:
            hashes[old.notebook] = (_sha256(rootdir / old.notebook), _sha256(rootdir / old.fixture))
        if hashes[old.notebook] != (old.notebook_sha256, old.fixture_sha256):
            continue  # the files changed since: that evidence is stale
        merged[old.nodeid] = old
        used.add(old.session)
    kept = [s for s in previous.sessions if s.id in used]
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
