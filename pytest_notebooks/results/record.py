"""The results record: what a session leaves as evidence, as typed, frozen records.

results/ owns this shape. The recorder and the merge build it; the review, the HTML report,
nbpromote and the shards read its attributes. JSON exists only at the edges: ``to_json`` /
``from_json`` here (the file, validated by read.py against results.schema.json, and the dict an
xdist worker's report carries to the controller).
"""

from __future__ import annotations

import enum
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pytest_notebooks.cases.naming import DEFAULT_SUFFIXES
from pytest_notebooks.cases.principles import Measures, Violation
from pytest_notebooks.models import CellChange, CellFailure

SCHEMA = "pytest-notebooks/results"
SCHEMA_VERSION = 3  # 3: attempts and flaky per case, declared case ids only per notebook


class Outcome(str, enum.Enum):
    """How a case ended, worst first (the order ``worst`` and the merge use).

    One meaning of each word for every reader:

    - ``passing``: the case ran and passed. Only a passing case is evidence that a template works
      (nbpromote, the notebook's own outcome, a shard's verdict).
    - ``ok``: nothing for a reviewer to act on: passing, or skipped / xfailed as the fixture or
      the test said. ``xpassed`` is not ok: a case expected to fail passed, so its ``xfail`` is stale.
    """

    CRASHED = "crashed"
    INTERRUPTED = "interrupted"
    ERROR = "error"
    FAILED = "failed"
    XPASSED = "xpassed"
    SKIPPED = "skipped"
    XFAILED = "xfailed"
    PASSED = "passed"
    NOT_RUN = "not run"  # declared by the fixture, not run in the sessions the file holds

    @property
    def passing(self) -> bool:
        return self is Outcome.PASSED

    @property
    def ok(self) -> bool:
        return self in (Outcome.PASSED, Outcome.SKIPPED, Outcome.XFAILED)

    @property
    def rank(self) -> int:
        """Worse first: ``crashed`` 0 ... ``passed`` 7, ``not run`` 8 (any real record beats it)."""
        return _ORDER.index(self)

    def __str__(self) -> str:
        return self.value


_ORDER = tuple(Outcome)


def worst(outcomes: Iterable[Outcome]) -> Outcome:
    return min(outcomes, key=lambda outcome: outcome.rank)


class SessionState(str, enum.Enum):
    """How a session ended, worst first; only ``completed`` allows promotion."""

    INTERRUPTED = "interrupted"
    INTERNAL_ERROR = "internal-error"
    WORKER_CRASHED = "worker-crashed"
    STOPPED = "stopped"  # -x or --maxfail
    COMPLETED = "completed"

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class FailureRecord:
    """Why a case did not pass; ``summary`` is the one line every report shows."""

    kind: str
    summary: str
    cell: int | None = None  # 1-based, in the template
    cell_id: str | None = None
    execution_count: int | None = None
    line: int | None = None
    ename: str = ""
    evalue: str = ""

    @classmethod
    def of(cls, failure: CellFailure) -> FailureRecord:
        return cls(
            kind=failure.kind.value,
            summary=failure.summary(),
            cell=failure.cell_number,
            cell_id=failure.cell_id,
            execution_count=failure.exec_count,
            line=failure.line,
            ename=failure.ename,
            evalue=failure.evalue,
        )

    def brief(self) -> FailureRecord:
        return FailureRecord(self.kind, self.summary)

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "cell": self.cell,
            "cell_id": self.cell_id,
            "execution_count": self.execution_count,
            "line": self.line,
            "ename": self.ename,
            "evalue": self.evalue,
            "summary": self.summary,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> FailureRecord | None:
        if data is None:
            return None
        return cls(
            kind=str(data["kind"]),
            summary=str(data["summary"]),
            cell=data.get("cell"),
            cell_id=data.get("cell_id"),
            execution_count=data.get("execution_count"),
            line=data.get("line"),
            ename=str(data.get("ename") or ""),
            evalue=str(data.get("evalue") or ""),
        )


@dataclass(frozen=True)
class SnapshotRecord:
    """A case's outputs against its committed snapshot: ``matched``, ``mismatch``, ``missing``, ``written``."""

    status: str
    path: str
    changes: tuple[CellChange, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {"status": self.status, "path": self.path, "changes": [c.to_json() for c in self.changes]}

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> SnapshotRecord | None:
        if data is None:
            return None
        changes = tuple(CellChange.from_json(c) for c in data.get("changes") or ())
        return cls(str(data["status"]), str(data["path"]), changes)


@dataclass(frozen=True)
class AttemptRecord:
    """One run of a case in one process; ``superseded`` when pytest-rerunfailures ran it again."""

    outcome: Outcome
    worker: str | None
    duration: float
    failure: FailureRecord | None  # kind and summary only
    superseded: bool

    def to_json(self) -> dict[str, Any]:
        brief = None if self.failure is None else {"kind": self.failure.kind, "summary": self.failure.summary}
        return {
            "outcome": self.outcome.value,
            "worker": self.worker,
            "duration": round(self.duration, 3),
            "failure": brief,
            "superseded": self.superseded,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> AttemptRecord:
        return cls(
            outcome=Outcome(data["outcome"]),
            worker=data.get("worker"),
            duration=float(data.get("duration") or 0),
            failure=FailureRecord.from_json(data.get("failure")),
            superseded=bool(data.get("superseded")),
        )


@dataclass(frozen=True)
class CaseReport:
    """What a case's test report carries from where it ran (an xdist worker) to the recorder.

    The identity and settings are the same in every phase; ``kernel`` to ``snapshot`` come with
    the call phase. ``parameters`` are the values as shown (secrets masked): JSON data, not a record.
    """

    notebook: str
    fixture: str
    case: str
    notebook_sha256: str | None = None
    fixture_sha256: str | None = None
    notebook_blob: str | None = None
    fixture_blob: str | None = None
    parameters: Mapping[str, Any] | None = None
    output: str | None = None
    fixture_skip: str | None = None
    fixture_xfail: str | None = None
    declared_cases: tuple[str, ...] = ()
    kernel: str | None = None
    execution_seconds: float | None = None
    failure: FailureRecord | None = None
    snapshot: SnapshotRecord | None = None
    converted_sha256: str | None = None  # a text notebook's: the .ipynb papermill ran (see CaseRecord)
    converted_by: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "notebook": self.notebook,
            "fixture": self.fixture,
            "case": self.case,
            "notebook_sha256": self.notebook_sha256,
            "fixture_sha256": self.fixture_sha256,
            "notebook_blob": self.notebook_blob,
            "fixture_blob": self.fixture_blob,
            "parameters": None if self.parameters is None else dict(self.parameters),
            "output": self.output,
            "fixture_skip": self.fixture_skip,
            "fixture_xfail": self.fixture_xfail,
            "declared_cases": list(self.declared_cases),
            "kernel": self.kernel,
            "execution_seconds": self.execution_seconds,
            "failure": None if self.failure is None else self.failure.to_json(),
            "snapshot": None if self.snapshot is None else self.snapshot.to_json(),
            "converted_sha256": self.converted_sha256,
            "converted_by": self.converted_by,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> CaseReport:
        return cls(
            notebook=str(data["notebook"]),
            fixture=str(data["fixture"]),
            case=str(data["case"]),
            notebook_sha256=data.get("notebook_sha256"),
            fixture_sha256=data.get("fixture_sha256"),
            notebook_blob=data.get("notebook_blob"),
            fixture_blob=data.get("fixture_blob"),
            parameters=data.get("parameters"),
            output=data.get("output"),
            fixture_skip=data.get("fixture_skip"),
            fixture_xfail=data.get("fixture_xfail"),
            declared_cases=tuple(data.get("declared_cases") or ()),
            kernel=data.get("kernel"),
            execution_seconds=data.get("execution_seconds"),
            failure=FailureRecord.from_json(data.get("failure")),
            snapshot=SnapshotRecord.from_json(data.get("snapshot")),
            converted_sha256=data.get("converted_sha256"),
            converted_by=data.get("converted_by"),
        )

    def identity(self) -> CaseReport:
        """The case as collected: no parameters, nothing from a run (what a worker sends at its end)."""
        return CaseReport(
            self.notebook,
            self.fixture,
            self.case,
            self.notebook_sha256,
            self.fixture_sha256,
            self.notebook_blob,
            self.fixture_blob,
            declared_cases=self.declared_cases,
        )


@dataclass(frozen=True)
class CaseRecord:
    """One declared case of one notebook: its outcome in the session that decided it.

    With reruns, ``outcome`` and ``failure`` are the final attempt's, ``flaky`` says that a rerun
    passed, and ``attempts`` lists every run. A ``not run`` record holds the identity only.

    For a Jupytext text notebook, ``notebook_sha256`` is the text file's (what is committed) and
    ``converted_sha256`` the .ipynb papermill ran, made from it by ``converted_by`` (``jupytext 1.19.7``):
    nbpromote makes that .ipynb again from the committed text and publishes it only if it is those bytes.
    """

    nodeid: str
    notebook: str
    fixture: str
    case: str
    outcome: Outcome
    parameters: Mapping[str, Any] | None = None
    duration: float = 0.0
    execution_seconds: float | None = None
    output: str | None = None
    kernel: str | None = None
    notebook_sha256: str | None = None
    fixture_sha256: str | None = None
    fixture_skip: str | None = None
    fixture_xfail: str | None = None
    session: str | None = None
    failure: FailureRecord | None = None
    snapshot: SnapshotRecord | None = None
    flaky: bool = False
    attempts: tuple[AttemptRecord, ...] = ()
    converted_sha256: str | None = None
    converted_by: str | None = None

    @property
    def key(self) -> tuple[str, str]:
        return self.notebook, self.case

    def flaky_note(self) -> str:
        """``flaky: passed on attempt 2 of 2`` for a case that passed on a rerun, else ``""``."""
        if not self.flaky:
            return ""
        passed = [n for n, attempt in enumerate(self.attempts, 1) if attempt.outcome.passing]
        return f"flaky: passed on attempt {passed[0]} of {len(self.attempts)}" if passed else "flaky"

    def summary(self) -> str:
        """The failure's one line; for a case that passed on a rerun, that it is flaky."""
        return self.failure.summary if self.failure is not None else self.flaky_note()

    def to_json(self) -> dict[str, Any]:
        head = {"nodeid": self.nodeid, "notebook": self.notebook, "fixture": self.fixture, "case": self.case}
        if self.outcome is Outcome.NOT_RUN:
            return {**head, "outcome": self.outcome.value}
        return {
            **head,
            "parameters": None if self.parameters is None else dict(self.parameters),
            "outcome": self.outcome.value,
            "duration": round(self.duration, 3),
            "execution_seconds": self.execution_seconds,
            "output": self.output,
            "kernel": self.kernel,
            "notebook_sha256": self.notebook_sha256,
            "fixture_sha256": self.fixture_sha256,
            "fixture_skip": self.fixture_skip,
            "fixture_xfail": self.fixture_xfail,
            "session": self.session,
            "failure": None if self.failure is None else self.failure.to_json(),
            "snapshot": None if self.snapshot is None else self.snapshot.to_json(),
            "flaky": self.flaky,
            "attempts": [attempt.to_json() for attempt in self.attempts],
            **self._converted(),
        }

    def _converted(self) -> dict[str, str]:
        """The converted notebook's fields, for a text notebook's case only (a notebook's has none)."""
        if self.converted_sha256 is None:
            return {}
        return {"converted_sha256": self.converted_sha256, "converted_by": self.converted_by or ""}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> CaseRecord:
        return cls(
            nodeid=str(data["nodeid"]),
            notebook=str(data["notebook"]),
            fixture=str(data["fixture"]),
            case=str(data["case"]),
            outcome=Outcome(data["outcome"]),
            parameters=data.get("parameters"),
            duration=float(data.get("duration") or 0),
            execution_seconds=data.get("execution_seconds"),
            output=data.get("output"),
            kernel=data.get("kernel"),
            notebook_sha256=data.get("notebook_sha256"),
            fixture_sha256=data.get("fixture_sha256"),
            fixture_skip=data.get("fixture_skip"),
            fixture_xfail=data.get("fixture_xfail"),
            session=data.get("session"),
            failure=FailureRecord.from_json(data.get("failure")),
            snapshot=SnapshotRecord.from_json(data.get("snapshot")),
            flaky=bool(data.get("flaky")),
            attempts=tuple(AttemptRecord.from_json(a) for a in data.get("attempts") or ()),
            converted_sha256=data.get("converted_sha256"),
            converted_by=data.get("converted_by"),
        )


@dataclass(frozen=True)
class PrinciplesRecord:
    """A notebook measured against the principles (``--notebooks-lint``)."""

    notebook: str
    limits: Mapping[str, int]
    measures: Measures | None
    violations: tuple[Violation, ...]
    session: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "notebook": self.notebook,
            "limits": dict(self.limits),
            "measures": None if self.measures is None else self.measures.to_json(),
            "violations": [violation.to_json() for violation in self.violations],
            "session": self.session,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any], notebook: str = "") -> PrinciplesRecord:
        measures = data.get("measures")
        return cls(
            notebook=str(data.get("notebook") or notebook),
            limits={str(k): int(v) for k, v in (data.get("limits") or {}).items()},
            measures=None if not measures else Measures.from_json(measures),
            violations=tuple(Violation.from_json(v) for v in data.get("violations") or ()),
            session=data.get("session"),
        )


@dataclass(frozen=True)
class NotebookRecord:
    """One notebook: the bytes tested (sha256 and git blob ids), its declared cases, whether all passed."""

    path: str
    fixture: str
    sha256: str | None
    fixture_sha256: str | None
    blob: str | None = None
    fixture_blob: str | None = None
    declared_cases: tuple[str, ...] = ()
    cases: tuple[str, ...] = ()  # the cases the file holds a record of
    passed: bool = False  # every declared case has a record, and every one passed
    principles: PrinciplesRecord | None = None

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "path": self.path,
            "fixture": self.fixture,
            "sha256": self.sha256,
            "fixture_sha256": self.fixture_sha256,
            "blob": self.blob,
            "fixture_blob": self.fixture_blob,
            "declared_cases": list(self.declared_cases),
            "cases": list(self.cases),
            "outcome": "passed" if self.passed else "not passed",
        }
        if self.principles is not None:
            data["principles"] = self.principles.to_json()
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> NotebookRecord:
        principles = data.get("principles")
        path = str(data["path"])
        return cls(
            path=path,
            fixture=str(data["fixture"]),
            sha256=data.get("sha256"),
            fixture_sha256=data.get("fixture_sha256"),
            blob=data.get("blob"),
            fixture_blob=data.get("fixture_blob"),
            declared_cases=tuple(data.get("declared_cases") or ()),
            cases=tuple(data.get("cases") or ()),
            passed=data.get("outcome") == "passed",
            principles=None if principles is None else PrinciplesRecord.from_json(principles, path),
        )


@dataclass(frozen=True)
class GitRecord:
    """The commit the session tested and whether the working tree had uncommitted changes."""

    commit: str | None
    dirty: bool
    branch: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"commit": self.commit, "dirty": self.dirty, "branch": self.branch}

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> GitRecord | None:
        return None if data is None else cls(data.get("commit"), bool(data.get("dirty")), data.get("branch"))


@dataclass(frozen=True)
class SessionRecord:
    """One pytest session that wrote records into the file."""

    id: str
    state: SessionState
    started: str | None = None
    finished: str | None = None
    crashed_workers: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"id": self.id}
        if self.started is not None:
            data["started"] = self.started
        if self.finished is not None:
            data["finished"] = self.finished
        return {**data, "state": self.state.value, "crashed_workers": list(self.crashed_workers)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> SessionRecord:
        return cls(
            id=str(data["id"]),
            state=SessionState(data["state"]),
            started=data.get("started"),
            finished=data.get("finished"),
            crashed_workers=tuple(data.get("crashed_workers") or ()),
        )


@dataclass(frozen=True)
class ResultsDocument:
    """The whole results file: the session(s), every notebook, every declared case."""

    created: str
    rootdir: str
    output_dir: str
    git: GitRecord | None
    session: SessionRecord
    sessions: tuple[SessionRecord, ...]
    notebooks: tuple[NotebookRecord, ...]
    cases: tuple[CaseRecord, ...]
    versions: Mapping[str, str | None] = field(default_factory=dict)
    merged_from: int | None = None
    fixture_suffixes: tuple[str, ...] = DEFAULT_SUFFIXES  # which YAML file is a notebook's fixture (cases/naming.py)

    def summary(self) -> dict[str, int]:
        """Cases by outcome."""
        return dict(Counter(case.outcome.value for case in self.cases))

    def notebook(self, path: str) -> NotebookRecord | None:
        return next((nb for nb in self.notebooks if nb.path == path), None)

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "schema": SCHEMA,
            "version": SCHEMA_VERSION,
            "created": self.created,
            "rootdir": self.rootdir,
            "output_dir": self.output_dir,
            "git": None if self.git is None else self.git.to_json(),
            "versions": dict(self.versions),
            "session": self.session.to_json(),
            "sessions": [s.to_json() for s in self.sessions],
            "summary": self.summary(),
            "notebooks": [nb.to_json() for nb in self.notebooks],
            "cases": [case.to_json() for case in self.cases],
        }
        if self.merged_from is not None:
            data["merged_from"] = self.merged_from
        if self.fixture_suffixes != DEFAULT_SUFFIXES:
            data["fixture_suffixes"] = list(self.fixture_suffixes)
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ResultsDocument:
        """The document from parsed JSON of the published schema (KeyError, TypeError or ValueError otherwise)."""
        session = SessionRecord.from_json(data["session"])
        return cls(
            created=str(data["created"]),
            rootdir=str(data["rootdir"]),
            output_dir=str(data["output_dir"]),
            git=GitRecord.from_json(data.get("git")),
            session=session,
            sessions=tuple(SessionRecord.from_json(s) for s in data.get("sessions") or [data["session"]]),
            notebooks=tuple(NotebookRecord.from_json(nb) for nb in data["notebooks"]),
            cases=tuple(CaseRecord.from_json(case) for case in data["cases"]),
            versions=dict(data.get("versions") or {}),
            merged_from=data.get("merged_from"),
            fixture_suffixes=tuple(data.get("fixture_suffixes") or DEFAULT_SUFFIXES),
        )
