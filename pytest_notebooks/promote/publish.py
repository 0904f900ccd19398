"""Plan -> writes in a store: the release algorithm. Also reads state for status and history.

Keys below the target (see ``models``)::

    <key>                                   live templates: what schedulers read
    .nbpromote/objects/<sha256>.ipynb       published bytes, content-addressed, create-only
    .nbpromote/releases/<release>.json      release manifests, create-only, never changed
    .nbpromote/current.json                 the pointer to the current release, compare-and-swap

A release, in order (each step conditional; ``<etag>`` from the step before):

1. read the pointer (and its ETag) and the current manifest; finish a release left "applying";
2. plan against the current manifest; HEAD every live key the plan relies on: a key whose ETag is
   not the one recorded is drift, refused unless --overwrite-drift; nothing changed -> nothing to do;
3. put each new object, create-only (already there with the same bytes is fine);
4. put the new manifest, create-only;
5. claim: swap the pointer to {release, "applying"}, If-Match the ETag read in 1 (If-None-Match: *
   for the first release). Of two promotions racing, exactly one gets here; the other has written
   only objects and an unreferenced manifest, and reports the conflict;
6. replace each changed live key If-Match its recorded ETag (If-None-Match: * for a new key), delete
   pruned ones If-Match; a key found changed by someone else -> drift: every key already replaced is
   put back and the pointer returned to the base release, then refused;
7. commit: swap the pointer to {release, "live", new ETags}, If-Match the claim's ETag.

A run that dies between 5 and 7 leaves the pointer "applying"; the next run finishes that release
first (step 6 is idempotent: a key already holding the release's bytes counts as done).
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, NoReturn, TypeVar

from pytest_notebooks import __version__
from pytest_notebooks.exitcodes import ExitCode
from pytest_notebooks.promote.errors import Conflict, Failed, PreconditionFailed, Refused, TargetError
from pytest_notebooks.promote.models import (
    POINTER_KEY,
    Action,
    Drift,
    Head,
    Inputs,
    Manifest,
    Outputs,
    Plan,
    Pointer,
    PointerState,
    TemplateEntry,
    object_key,
    release_key,
)
from pytest_notebooks.promote.plan import DRIFT_HINT, check_keys, plan_promotion, plan_rollback
from pytest_notebooks.promote.stamp import Provenance, stamp
from pytest_notebooks.promote.store import JSON_TYPE, NOTEBOOK_TYPE, Store

T = TypeVar("T")
TOOL = f"nbpromote (pytest-notebooks {__version__})"
PUTS = (Action.ADD, Action.CHANGE, Action.RESTORE)


@dataclass(frozen=True)
class PublishOptions:
    dry_run: bool = False
    prune: bool = False
    clear_outputs: bool = False
    overwrite_drift: bool = False


@dataclass(frozen=True)
class Outcome:
    """What a promotion or rollback did (or, dry, would do)."""

    code: ExitCode
    plan: Plan
    manifest: Manifest  # the release made (or planned)
    current: Manifest | None  # the release it was planned against
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class State:
    """The pointer (and its ETag) and the manifest it names; all None before the first release."""

    pointer: Pointer | None
    etag: str | None
    manifest: Manifest | None


def promote(
    store: Store, inputs: Inputs, options: PublishOptions, now: Callable[[], datetime] | None = None
) -> Outcome:
    """Publish ``inputs``' candidates to ``store`` as a new release (see the module docstring)."""
    state, notes = _settled(store, options.dry_run)
    current = state.manifest
    created = _now(now)
    sequence = current.sequence + 1 if current else 1
    release = f"{sequence:04d}-{created:%Y%m%dT%H%M%SZ}-{inputs.commit[:7]}"
    outputs = Outputs.CLEARED if options.clear_outputs else Outputs.KEPT
    objects: dict[str, bytes] = {}
    wanted: dict[str, TemplateEntry] = {}
    for candidate in inputs.candidates:
        provenance = Provenance(
            commit=inputs.commit,
            sha256=candidate.sha256,
            release=release,
            promoted_at=_iso(created),
            source_path=candidate.source_path,
            outputs=outputs,
        )
        try:
            published = stamp(candidate.data, provenance)
        except (ValueError, UnicodeDecodeError) as exc:
            raise Refused([f"{candidate.source_path}: cannot stamp it: {exc}"]) from None
        digest = hashlib.sha256(published).hexdigest()
        objects[digest] = published
        wanted[candidate.key] = TemplateEntry(
            source_path=candidate.source_path,
            sha256=candidate.sha256,
            size=candidate.size,
            object=digest,
            object_size=len(published),
            published_in=release,
            commit=inputs.commit,
            cases=candidate.cases,
            fixture=candidate.fixture,
            fixture_sha256=candidate.fixture_sha256,
            outputs=outputs,
        )
    drift = _drift(store, state, check_keys(wanted, current, options.prune))
    plan = plan_promotion(
        wanted, current, inputs.untested, drift, prune=options.prune, overwrite_drift=options.overwrite_drift
    )
    manifest = _manifest(
        plan,
        release=release,
        sequence=sequence,
        kind="promote",
        created=created,
        commit=inputs.commit,
        branch=inputs.branch,
        tested_at=inputs.tested_at,
        previous=current.release if current else None,
        rollback_of=None,
        source_root=inputs.source_root,
    )
    return _execute(store, state, plan, manifest, objects, drift, options, notes)


def rollback(store: Store, ref: str, options: PublishOptions, now: Callable[[], datetime] | None = None) -> Outcome:
    """Make a new release whose templates are those of release ``ref``, byte for byte."""
    state, notes = _settled(store, options.dry_run)
    if state.manifest is None:
        raise Refused([f"nothing has been promoted to {store.target.url} yet, so there is nothing to roll back to"])
    current = state.manifest
    target = find_release(store, state, ref)
    created = _now(now)
    sequence = current.sequence + 1
    drift = _drift(store, state, check_keys(target.templates, current, options.prune))
    plan = plan_rollback(target, current, drift, prune=options.prune, overwrite_drift=options.overwrite_drift)
    manifest = _manifest(
        plan,
        release=f"{sequence:04d}-{created:%Y%m%dT%H%M%SZ}-{(target.commit or 'nocommit')[:7]}",
        sequence=sequence,
        kind="rollback",
        created=created,
        commit=target.commit,
        branch=target.branch,
        tested_at=target.tested_at,
        previous=current.release,
        rollback_of=target.release,
        source_root=target.source_root,
    )
    return _execute(store, state, plan, manifest, {}, drift, options, notes)


def read_state(store: Store) -> State:
    """The pointer and the current manifest, as they are (an "applying" pointer is not finished)."""
    stored = store.read(POINTER_KEY)
    if stored is None:
        return State(None, None, None)
    pointer = _decode(stored.data, Pointer.from_json, store.target.show(POINTER_KEY))
    return State(pointer, stored.etag, read_manifest(store, pointer.release))


def read_manifest(store: Store, release: str) -> Manifest:
    stored = store.read(release_key(release))
    if stored is None:
        raise Failed(
            f"the manifest of release {release} ({store.target.show(release_key(release))}) is missing; "
            "it was deleted by hand?"
        )
    return _decode(stored.data, Manifest.from_json, store.target.show(release_key(release)))


def history(store: Store, state: State | None = None, limit: int | None = None) -> list[Manifest]:
    """The releases, newest first: the current one and its ``previous`` chain.

    A manifest that lost a race, or whose release was put back after drift, is on no chain and
    is not listed (it stays in the store: history only grows).
    """
    state = state or read_state(store)
    releases: list[Manifest] = []
    manifest = state.manifest
    while manifest is not None and (limit is None or len(releases) < limit):
        releases.append(manifest)
        manifest = read_manifest(store, manifest.previous) if manifest.previous else None
    return releases


def find_release(store: Store, state: State, ref: str) -> Manifest:
    """The release in the history named by ``ref``: its id, a prefix of it up to a "-", or its number."""
    for manifest in history(store, state):
        number = ref.isdigit() and manifest.sequence == int(ref)
        if number or manifest.release == ref or manifest.release.startswith(ref + "-"):
            return manifest
    raise Refused(
        [f"release {ref!r} is not in the history of {store.target.url}"], "`nbpromote history` lists the releases"
    )


def live_heads(store: Store, manifest: Manifest) -> dict[str, Head | None]:
    """What is in the live path now for every key ``manifest`` makes live or left retired."""
    return {key: store.head(key) for key in sorted({*manifest.templates, *manifest.retired})}


# -- the steps -----------------------------------------------------------------------------------


def _settled(store: Store, dry_run: bool) -> tuple[State, tuple[str, ...]]:
    """Step 1: the current state, with a release left "applying" by a dead run finished first."""
    state = read_state(store)
    if state.pointer is None or state.pointer.state is PointerState.LIVE:
        return state, ()
    release = state.pointer.release
    if dry_run:
        raise Failed(
            f"release {release} was interrupted while its live keys were being replaced; "
            "run nbpromote without --dry-run to finish it first (`nbpromote status` shows it)"
        )
    assert state.manifest is not None  # read_state reads the manifest the pointer names
    assert state.etag is not None
    base = read_manifest(store, state.pointer.base) if state.pointer.base else None
    etags = _apply(store, state.manifest, state.pointer, state.etag, base, {})
    _commit(store, state.manifest, etags, state.etag)
    return read_state(store), (f"finished release {release}, which an earlier run had left half applied",)


def _drift(store: Store, state: State, keys: set[str]) -> dict[str, Drift]:
    """Step 2: the keys whose live ETag is not what the current release recorded."""
    recorded = state.pointer.etags if state.pointer else {}
    drift = {}
    for key in sorted(keys):
        head = store.head(key)
        expected = recorded.get(key)
        if (head.etag if head else None) != expected:
            drift[key] = Drift(key=key, expected=expected, observed=head)
    return drift


def _execute(
    store: Store,
    state: State,
    plan: Plan,
    manifest: Manifest,
    objects: Mapping[str, bytes],
    drift: Mapping[str, Drift],
    options: PublishOptions,
    notes: tuple[str, ...],
) -> Outcome:
    if plan.refusals:
        hint = DRIFT_HINT if drift and not options.overwrite_drift else ""
        raise Refused(plan.refusals, hint)
    outcome = Outcome(ExitCode.PROMOTED, plan, manifest, state.manifest, notes)
    if plan.empty:  # having finished an interrupted release is a promotion of its own
        code = ExitCode.PROMOTED if notes else ExitCode.NOTHING_TO_DO
        return Outcome(code, plan, manifest, state.manifest, notes)
    if options.dry_run:
        return outcome
    # step 3: objects, create-only
    for change in plan.changes:
        if change.action in PUTS and change.after is not None and change.after.object in objects:
            _put_object(store, change.after.object, objects[change.after.object])
    # step 4: the manifest, create-only
    document = _encode(manifest.to_json())
    try:
        store.put(
            release_key(manifest.release),
            document,
            if_match=None,
            content_type=JSON_TYPE,
            metadata={"release": manifest.release},
        )
    except PreconditionFailed:
        existing = store.read(release_key(manifest.release))
        if existing is None or existing.data != document:  # equal: a retried request of ours
            raise Conflict(
                f"release {manifest.release} was created by another promotion at the same moment; "
                "nothing live was changed by this run; run nbpromote again"
            ) from None
    # step 5: claim
    recorded = dict(state.pointer.etags) if state.pointer else {}
    expected = dict(recorded)
    for key, found in drift.items():  # only with --overwrite-drift (otherwise refused above)
        if found.observed is None:
            expected.pop(key, None)
        else:
            expected[key] = found.observed.etag
    claim = Pointer(
        release=manifest.release,
        state=PointerState.APPLYING,
        etags=expected,
        updated=_iso(_now(None)),
        base=state.manifest.release if state.manifest else None,
        base_etags=recorded,
    )
    try:
        claim_etag = store.put(
            POINTER_KEY, _encode(claim.to_json()), if_match=state.etag, content_type=JSON_TYPE, metadata={}
        )
    except PreconditionFailed:
        now = read_state(store)
        if now.pointer is None or now.pointer.release != manifest.release or now.etag is None:
            where = f"release {now.pointer.release} ({now.pointer.state.value})" if now.pointer else "no release"
            raise Conflict(
                f"another promotion moved {store.target.show(POINTER_KEY)} first (it now names {where}); "
                f"nothing live was changed by this run; run nbpromote again to promote on top of it"
            ) from None
        claim_etag = now.etag  # our own claim, answered 412 to a retry after its first reply was lost
    # step 6 and 7
    etags = _apply(store, manifest, claim, claim_etag, state.manifest, objects)
    _commit(store, manifest, etags, claim_etag)
    return outcome


def _put_object(store: Store, digest: str, data: bytes) -> None:
    key = object_key(digest)
    try:
        store.put(key, data, if_match=None, content_type=NOTEBOOK_TYPE, metadata={"sha256": digest})
    except PreconditionFailed:  # content-addressed: already there is fine, if it holds these bytes
        _object(store, digest, {})


def _object(store: Store, digest: str, cache: Mapping[str, bytes]) -> bytes:
    if digest in cache:
        return cache[digest]
    stored = store.read(object_key(digest))
    if stored is None:
        raise Failed(f"the object {store.target.show(object_key(digest))} is missing; the target was tampered with")
    if hashlib.sha256(stored.data).hexdigest() != digest:
        raise Failed(f"the object {store.target.show(object_key(digest))} does not hold the bytes its name says")
    return stored.data


def _meta(entry: TemplateEntry) -> dict[str, str]:
    """S3 user metadata on live keys (x-amz-meta-*): the same facts as the stamp."""
    return {
        "sha256": entry.object,
        "source-sha256": entry.sha256,
        "source-path": entry.source_path,
        "release": entry.published_in,
        "git-commit": entry.commit or "",
    }


def _apply(
    store: Store,
    manifest: Manifest,
    claim: Pointer,
    claim_etag: str,
    base: Manifest | None,
    objects: Mapping[str, bytes],
) -> dict[str, str]:
    """Step 6: replace the release's changed live keys; returns the ETags to commit."""
    etags = dict(claim.etags)
    done: list[tuple[str, Action]] = []
    for action in PUTS:
        for key in manifest.changes.get(action.value, ()):
            entry = manifest.templates[key]
            data = _object(store, entry.object, objects)
            try:
                etags[key] = store.put(
                    key, data, if_match=claim.etags.get(key), content_type=NOTEBOOK_TYPE, metadata=_meta(entry)
                )
            except PreconditionFailed:
                live = store.read(key)
                if live is None or hashlib.sha256(live.data).hexdigest() != entry.object:
                    _revert(store, manifest, claim, claim_etag, base, etags, done, key, objects)
                etags[key] = live.etag  # a run before this one had already put it there
            done.append((key, action))
    for key in manifest.changes.get(Action.PRUNE.value, ()):
        expected = claim.etags.get(key)
        if expected is not None:
            try:
                store.delete(key, if_match=expected)
            except PreconditionFailed:
                if store.head(key) is not None:
                    _revert(store, manifest, claim, claim_etag, base, etags, done, key, objects)
            done.append((key, Action.PRUNE))
        etags.pop(key, None)
    return etags


def _commit(store: Store, manifest: Manifest, etags: Mapping[str, str], claim_etag: str) -> None:
    """Step 7: the pointer goes from "applying" to "live" with the ETags just written."""
    final = Pointer(release=manifest.release, state=PointerState.LIVE, etags=etags, updated=_iso(_now(None)))
    try:
        store.put(POINTER_KEY, _encode(final.to_json()), if_match=claim_etag, content_type=JSON_TYPE, metadata={})
    except PreconditionFailed:
        now = read_state(store)
        if now.pointer is None or now.pointer.release != manifest.release or now.pointer.state is not PointerState.LIVE:
            raise Conflict(
                f"the pointer changed while release {manifest.release} was being applied; "
                "`nbpromote status` shows the state"
            ) from None
        # another run finishing this same release committed it first: the same outcome


def _revert(
    store: Store,
    manifest: Manifest,
    claim: Pointer,
    claim_etag: str,
    base: Manifest | None,
    etags: Mapping[str, str],
    done: list[tuple[str, Action]],
    drifted: str,
    objects: Mapping[str, bytes],
) -> NoReturn:
    """Drift found half way: put every key already replaced back to the base release; raise Refused."""
    restored = dict(claim.base_etags)
    try:
        for key, action in reversed(done):
            before = (base.templates.get(key) or base.retired.get(key)) if base else None
            if before is not None:
                data = _object(store, before.object, objects)
                restored[key] = store.put(
                    key,
                    data,
                    if_match=None if action is Action.PRUNE else etags[key],
                    content_type=NOTEBOOK_TYPE,
                    metadata=_meta(before),
                )
            else:
                store.delete(key, if_match=etags[key])
                restored.pop(key, None)
        if base is not None:
            pointer = Pointer(release=base.release, state=PointerState.LIVE, etags=restored, updated=_iso(_now(None)))
            store.put(POINTER_KEY, _encode(pointer.to_json()), if_match=claim_etag, content_type=JSON_TYPE, metadata={})
        else:
            store.delete(POINTER_KEY, if_match=claim_etag)
    except (PreconditionFailed, TargetError) as exc:
        raise Failed(
            f"{drifted} changed outside nbpromote while release {manifest.release} was being applied, and "
            f"putting the keys already replaced back failed ({exc}); `nbpromote status` shows the state, and "
            f"a run without --dry-run finishes release {manifest.release}"
        ) from None
    back = f"release {base.release} is current again" if base else "no release is current"
    raise Refused(
        [
            f"{drifted}: drift: the live object changed outside nbpromote while release "
            f"{manifest.release} was being applied; the {len(done)} key(s) already replaced were put back "
            f"and {back}"
        ],
        DRIFT_HINT,
    )


# -- small helpers -------------------------------------------------------------------------------


def _manifest(
    plan: Plan,
    *,
    release: str,
    sequence: int,
    kind: str,
    created: datetime,
    commit: str | None,
    branch: str | None,
    tested_at: str | None,
    previous: str | None,
    rollback_of: str | None,
    source_root: str | None,
) -> Manifest:
    live = (Action.ADD, Action.CHANGE, Action.RESTORE, Action.KEEP, Action.REVIVE)
    return Manifest(
        release=release,
        sequence=sequence,
        kind=kind,
        created=_iso(created),
        commit=commit,
        branch=branch,
        tested_at=tested_at,
        previous=previous,
        rollback_of=rollback_of,
        source_root=source_root,
        templates={c.key: c.after for c in plan.changes if c.action in live and c.after is not None},
        retired={
            c.key: c.after
            for c in plan.changes
            if c.action in (Action.RETIRE, Action.KEEP_RETIRED) and c.after is not None
        },
        changes={a.value: plan.keys(a) for a in Action if plan.keys(a)},
        tool=TOOL,
        run=uuid.uuid4().hex,
    )


def _now(now: Callable[[], datetime] | None) -> datetime:
    return (now or (lambda: datetime.now(timezone.utc)))().replace(microsecond=0)


def _iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def _encode(document: Mapping[str, object]) -> bytes:
    return (json.dumps(document, indent=2) + "\n").encode("utf-8")


def _decode(data: bytes, parse: Callable[[Any], T], where: str) -> T:
    try:
        return parse(json.loads(data))
    except (ValueError, KeyError, TypeError) as exc:
        raise Failed(f"{where} is not a valid nbpromote document ({exc}); it was changed by hand?") from None
