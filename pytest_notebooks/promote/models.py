"""Frozen records that cross nbpromote's module boundaries, and their JSON forms. Standard library only.

The JSON documents kept in a target (schemas ``nbpromote/release`` and ``nbpromote/current``,
version 1) are described in ``pytest_notebooks/promote/__init__.py``. The parts of ``--format json``
output made of these records come from here too (``summary_json`` and the records' ``to_json``); the
documents themselves are put together in cli.py and published in ``nbpromote.schema.json``.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import PurePosixPath
from typing import Any

from pytest_notebooks.cases.textnotebook import is_text_suffix

RELEASE_SCHEMA = "nbpromote/release"
POINTER_SCHEMA = "nbpromote/current"
SCHEMA_VERSION = 1
HIDDEN = ".nbpromote/"  # everything nbpromote owns lives under this prefix of the target
POINTER_KEY = HIDDEN + "current.json"


def object_key(sha256: str, key: str) -> str:
    """Where the published bytes with this sha256 are kept, create-only, named like the live ``key``
    they are published at (``.ipynb``; a Jupytext text template's ``.py`` or ``.md``)."""
    suffix = PurePosixPath(key).suffix if is_text_suffix(key) else ".ipynb"
    return f"{HIDDEN}objects/{sha256}{suffix}"


def release_key(release: str) -> str:
    """Where the manifest of ``release`` is kept, create-only."""
    return f"{HIDDEN}releases/{release}.json"


class Outputs(str, enum.Enum):
    """What happens to the outputs stored in a template when it is published."""

    KEPT = "as committed"
    CLEARED = "cleared"


@dataclass(frozen=True)
class Head:
    """What a store says about a key without reading it."""

    etag: str
    modified: str | None = None  # ISO-8601, when the store knows
    metadata: Mapping[str, str] = field(default_factory=dict, compare=False)  # S3 user metadata, decoded

    def to_json(self) -> dict[str, Any]:
        """What ``--format json`` shows of a live key: its ETag and when it was written (metadata left out)."""
        return {"etag": self.etag, "modified": self.modified}


@dataclass(frozen=True)
class Stored:
    """A key's bytes and the ETag they were read with."""

    data: bytes
    etag: str


@dataclass(frozen=True)
class Drift:
    """A live key that is not what the current release recorded (changed by hand, or a lost race)."""

    key: str
    expected: str | None  # the ETag recorded, None = should be absent
    observed: Head | None  # what is there now, None = absent

    def describe(self) -> str:
        if self.observed is None:
            return "deleted"
        when = f", modified {self.observed.modified}" if self.observed.modified else ""
        if self.expected is None:
            return f"present (ETag {self.observed.etag}{when}) but nbpromote never wrote it"
        return f"ETag {self.observed.etag}{when}; release recorded {self.expected}"


@dataclass(frozen=True)
class Candidate:
    """A notebook that may be published: it passed every case and is unchanged since tested."""

    key: str  # the live key, relative to the target: the path below the source root
    source_path: str  # relative to the repository root, POSIX separators
    sha256: str  # of the source bytes, as recorded in the results file and checked on disk
    size: int
    cases: tuple[str, ...]
    fixture: str | None
    fixture_sha256: str | None
    data: bytes = field(repr=False, compare=False, default=b"")  # what is published (before its stamp)
    converted_sha256: str | None = None  # a text template's .ipynb: sha256 of ``data``, the notebook its cases ran
    converted_by: str | None = None  # what made it from the text (``jupytext 1.19.7``)


@dataclass(frozen=True)
class Inputs:
    """Everything promotion learned from the results file, git and the disk."""

    commit: str
    branch: str | None
    tested_at: str | None  # the results file's ``created``
    source_root: str  # relative to the repository root ("" for the root itself)
    candidates: tuple[Candidate, ...]
    untested: frozenset[str]  # live keys of committed notebooks that have no fixture
    notes: tuple[str, ...]  # "not promoted" lines that do not block the others
    held: frozenset[str] = frozenset()  # live keys held back: whatever is live for them stays live


@dataclass(frozen=True)
class TemplateEntry:
    """One template as a release records it."""

    source_path: str
    sha256: str  # of the source notebook as tested (the results file's sha256)
    size: int
    object: str  # sha256 of the published bytes: the source plus the provenance stamp
    object_size: int
    published_in: str  # the release whose stamp the published bytes carry
    commit: str | None  # the commit stamped into the published bytes
    cases: tuple[str, ...] = ()
    fixture: str | None = None
    fixture_sha256: str | None = None
    outputs: Outputs = Outputs.KEPT
    converted_sha256: str | None = None  # a text template published as .ipynb: that notebook's sha256
    converted_by: str | None = None  # what made it from the text source (``jupytext 1.19.7``)

    def same_source(self, other: TemplateEntry) -> bool:
        """Whether publishing ``other`` would not change what this entry put live."""
        return (self.sha256, self.converted_sha256, self.outputs) == (
            other.sha256,
            other.converted_sha256,
            other.outputs,
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "source_path": self.source_path,
            "sha256": self.sha256,
            "size": self.size,
            "object": self.object,
            "object_size": self.object_size,
            "published_in": self.published_in,
            "commit": self.commit,
            "cases": list(self.cases),
            "fixture": self.fixture,
            "fixture_sha256": self.fixture_sha256,
            "outputs": self.outputs.value,
            **({} if self.converted_sha256 is None else self._converted()),
        }

    def _converted(self) -> dict[str, Any]:
        return {"converted_sha256": self.converted_sha256, "converted_by": self.converted_by}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> TemplateEntry:
        return cls(
            source_path=str(data["source_path"]),
            sha256=str(data["sha256"]),
            size=int(data["size"]),
            object=str(data["object"]),
            object_size=int(data["object_size"]),
            published_in=str(data["published_in"]),
            commit=data.get("commit"),
            cases=tuple(data.get("cases", ())),
            fixture=data.get("fixture"),
            fixture_sha256=data.get("fixture_sha256"),
            outputs=Outputs(data.get("outputs", Outputs.KEPT.value)),
            converted_sha256=data.get("converted_sha256"),
            converted_by=data.get("converted_by"),
        )


@dataclass(frozen=True)
class Hold:
    """A template a rollback took away from its live bytes: not promoted again while its source is those bytes.

    ``sha256`` is the source's as tested (``TemplateEntry.sha256``, the results file's), which is what a
    later promotion of the same source would publish again; stamps and outputs do not count. The hold
    ends when the template's source changes, or by ``nbpromote release-hold``.
    """

    key: str  # the live key
    sha256: str  # of the source bytes rolled back away from
    source_path: str  # the notebook those bytes came from, relative to the repository root
    set_in: str  # the rollback release that set it
    rolled_back_from: str  # the release whose published bytes the rollback replaced

    def to_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "sha256": self.sha256,
            "source_path": self.source_path,
            "set_in": self.set_in,
            "rolled_back_from": self.rolled_back_from,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Hold:
        return cls(
            key=str(data["key"]),
            sha256=str(data["sha256"]),
            source_path=str(data["source_path"]),
            set_in=str(data["set_in"]),
            rolled_back_from=str(data.get("rolled_back_from", "")),
        )


class Action(str, enum.Enum):
    """What a release does to one live key."""

    ADD = "added"  # new live key
    CHANGE = "changed"  # new bytes replace the live ones
    RESTORE = "restored"  # unchanged in git, but the live copy drifted and --overwrite-drift puts it back
    KEEP = "unchanged"  # not rewritten
    REVIVE = "revived"  # retired earlier, wanted again with the bytes still in the live path: not rewritten
    RETIRE = "retired"  # gone from git (or from the rolled-back release): recorded, left in place
    KEEP_RETIRED = "still retired"  # retired earlier and still left in place
    PRUNE = "pruned"  # retired and deleted from the live path (--prune)

    @property
    def writes(self) -> bool:
        """Whether the live key is written (put or deleted)."""
        return self in (Action.ADD, Action.CHANGE, Action.RESTORE, Action.PRUNE)


@dataclass(frozen=True)
class Change:
    """One live key in a plan: before and after (None = absent / deleted)."""

    key: str
    action: Action
    before: TemplateEntry | None
    after: TemplateEntry | None

    def to_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "action": self.action.value,
            "before": None if self.before is None else self.before.to_json(),
            "after": None if self.after is None else self.after.to_json(),
        }


@dataclass(frozen=True)
class Plan:
    """What a release would do; ``refusals`` non-empty means it must not be done."""

    changes: tuple[Change, ...]
    refusals: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        """Nothing to write and nothing newly retired: the release would change nothing."""
        return not any(c.action.writes or c.action in (Action.RETIRE, Action.REVIVE) for c in self.changes)

    def keys(self, *actions: Action) -> tuple[str, ...]:
        return tuple(c.key for c in self.changes if c.action in actions)


@dataclass(frozen=True)
class Manifest:
    """An immutable release record (``.nbpromote/releases/<release>.json``)."""

    release: str
    sequence: int
    kind: str  # "promote", "rollback" or "release-hold"
    created: str  # ISO-8601 UTC
    commit: str | None  # the commit promoted (for a rollback: the commit of the release rolled back to)
    branch: str | None
    tested_at: str | None  # when the results file was written
    previous: str | None  # the release that was current when this one was made
    rollback_of: str | None  # for a rollback: the release whose templates it puts back
    source_root: str | None
    templates: Mapping[str, TemplateEntry]  # live key -> entry: what this release makes live
    retired: Mapping[str, TemplateEntry]  # live key -> entry: retired, still in the live path
    changes: Mapping[str, tuple[str, ...]]  # Action value -> keys
    tool: str = ""
    run: str = ""  # a random id of the nbpromote run that made it: two runs never write the same bytes
    owner: str = ""  # who ran it, "user@host pid N" (as on the pointer); "" in older manifests
    holds: tuple[Hold, ...] = ()  # sorted by key, sha256; none in manifests older than holds

    def held(self, key: str) -> tuple[Hold, ...]:
        """The holds on ``key``."""
        return tuple(hold for hold in self.holds if hold.key == key)

    def summary_json(self) -> dict[str, Any]:
        """The release as ``--format json`` shows it: what it is and what it changed, without its
        templates (``status`` lists those) or the run's own bookkeeping (``tool``, ``run``)."""
        return {
            **self._facts(),
            "owner": self.owner or None,
            "changes": {action: list(keys) for action, keys in self.changes.items()},
            "holds": [hold.to_json() for hold in self.holds],
        }

    def _facts(self) -> dict[str, Any]:
        """What the release is, as both the manifest and ``--format json`` write it, in that order."""
        return {
            "release": self.release,
            "sequence": self.sequence,
            "kind": self.kind,
            "created": self.created,
            "commit": self.commit,
            "branch": self.branch,
            "tested_at": self.tested_at,
            "previous": self.previous,
            "rollback_of": self.rollback_of,
            "source_root": self.source_root,
        }

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": RELEASE_SCHEMA,
            "version": SCHEMA_VERSION,
            **self._facts(),
            "tool": self.tool,
            "run": self.run,
            "owner": self.owner,
            "templates": {k: v.to_json() for k, v in sorted(self.templates.items())},
            "retired": {k: v.to_json() for k, v in sorted(self.retired.items())},
            "changes": {k: list(v) for k, v in self.changes.items()},
            "holds": [hold.to_json() for hold in self.holds],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Manifest:
        if data.get("schema") != RELEASE_SCHEMA or data.get("version") != SCHEMA_VERSION:
            raise ValueError(f"not a {RELEASE_SCHEMA} version {SCHEMA_VERSION} document")
        return cls(
            release=str(data["release"]),
            sequence=int(data["sequence"]),
            kind=str(data["kind"]),
            created=str(data["created"]),
            commit=data.get("commit"),
            branch=data.get("branch"),
            tested_at=data.get("tested_at"),
            previous=data.get("previous"),
            rollback_of=data.get("rollback_of"),
            source_root=data.get("source_root"),
            tool=str(data.get("tool", "")),
            run=str(data.get("run", "")),
            owner=str(data.get("owner", "")),
            templates={k: TemplateEntry.from_json(v) for k, v in data.get("templates", {}).items()},
            retired={k: TemplateEntry.from_json(v) for k, v in data.get("retired", {}).items()},
            changes={k: tuple(v) for k, v in data.get("changes", {}).items()},
            holds=tuple(Hold.from_json(h) for h in data.get("holds", ())),
        )


class PointerState(str, enum.Enum):
    LIVE = "live"  # the release is complete: every live key holds its bytes
    APPLYING = "applying"  # claimed; live keys are being replaced (or a run was interrupted doing so)


@dataclass(frozen=True)
class Pointer:
    """The mutable pointer to the current release (``.nbpromote/current.json``), swapped by CAS.

    ``etags`` maps each live key nbpromote manages (templates and retired ones left in place) to its
    ETag: once ``live``, the ETags as the release left them, which the next release's conditional
    writes expect. While ``applying`` they are the ETags each key must have *before* it is replaced
    (the base release's, or those found with --overwrite-drift); ``base`` and ``base_etags`` say how to
    put the base release back.

    While ``applying`` the pointer is also a lease: ``owner`` is applying it until ``expires`` and
    renews that while it works. An applying pointer whose lease has expired, or that has none (written
    by nbpromote before leases), was left by a run that stopped. ``owner`` stays on a live pointer to
    say who made it current.
    """

    release: str
    state: PointerState
    etags: Mapping[str, str]
    updated: str
    base: str | None = None  # while applying: the release being replaced
    base_etags: Mapping[str, str] = field(default_factory=dict)  # while applying: what ``base`` recorded
    owner: str | None = None  # the run that wrote it, "user@host pid N"; None in older pointers
    expires: str | None = None  # while applying: when the owner's lease ends (ISO-8601 UTC)

    def lease_end(self) -> datetime | None:
        """When the lease of an applying pointer ends; None when there is no (readable) lease."""
        if self.state is not PointerState.APPLYING or not self.expires:
            return None
        try:
            end = datetime.fromisoformat(self.expires.replace("Z", "+00:00"))
        except ValueError:
            return None
        return end if end.tzinfo else end.replace(tzinfo=timezone.utc)

    def leased(self, now: datetime) -> bool:
        """Whether another run is applying this release now (an applying pointer with a lease not expired)."""
        end = self.lease_end()
        return end is not None and now < end

    def to_json(self) -> dict[str, Any]:
        document: dict[str, Any] = {
            "schema": POINTER_SCHEMA,
            "version": SCHEMA_VERSION,
            "release": self.release,
            "state": self.state.value,
            "updated": self.updated,
            "etags": dict(sorted(self.etags.items())),
        }
        if self.owner is not None:
            document["owner"] = self.owner
        if self.state is PointerState.APPLYING:
            document["base"] = self.base
            document["base_etags"] = dict(sorted(self.base_etags.items()))
            document["expires"] = self.expires
        return document

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Pointer:
        if data.get("schema") != POINTER_SCHEMA or data.get("version") != SCHEMA_VERSION:
            raise ValueError(f"not a {POINTER_SCHEMA} version {SCHEMA_VERSION} document")
        owner, expires = data.get("owner"), data.get("expires")
        return cls(
            release=str(data["release"]),
            state=PointerState(data["state"]),
            etags={str(k): str(v) for k, v in data.get("etags", {}).items()},
            updated=str(data.get("updated", "")),
            base=data.get("base"),
            base_etags={str(k): str(v) for k, v in data.get("base_etags", {}).items()},
            owner=None if owner is None else str(owner),
            expires=None if expires is None else str(expires),
        )
