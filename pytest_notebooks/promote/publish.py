"""Plan -> writes in a store: the release algorithm. Also reads state for status and history.

A release (keys as in ``promote/__init__.py``); every write is conditional on an ETag read before it:

1. read the pointer and manifest: "applying" under a live lease is Conflict; a lapsed lease is taken
   over and its release finished first;
2. plan; HEAD each live key relied on: another ETag is drift (Conflict if the pointer moved); a name
   ``store.unstorable`` rejects is refused now, so nothing after the claim can fail on a name;
3. put each new object, create-only; 4. put the manifest, create-only;
5. claim: swap the pointer to "applying", with owner and lease; of racing runs exactly one passes;
6. replace / delete changed live keys If-Match; drift here puts every replaced key back, then refuses;
7. commit: swap the pointer to "live" with the new ETags, If-Match the claim's last ETag.

The lease lasts LEASE_SECONDS from its last write, is renewed before each live write, put-back and the
commit once RENEW_AFTER_SECONDS old, and ends at once on an exception; expiry compares two machines'
clocks, which must agree to within seconds. Step 6 is idempotent, so the next run finishes a release
whose run died between 5 and 7; ``abandon`` undoes one that cannot be finished.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from typing import Any, NoReturn, TypeVar

from pytest_notebooks import __version__
from pytest_notebooks.cases.textnotebook import is_text_suffix
from pytest_notebooks.errors import Conflict, Failed, LockTimeout, PreconditionFailed, Refused, TargetError
from pytest_notebooks.exitcodes import ExitCode
from pytest_notebooks.promote.models import (
    POINTER_KEY,
    Action,
    Drift,
    Head,
    Hold,
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
from pytest_notebooks.promote.plan import (
    DRIFT_HINT,
    check_keys,
    held_by,
    plan_promotion,
    plan_rollback,
    promotion_holds,
    rollback_holds,
)
from pytest_notebooks.promote.stamp import Provenance, stamp
from pytest_notebooks.promote.store import JSON_TYPE, LocalStore, Store, content_type, process_owner, unstorable

T = TypeVar("T")
Clock = Callable[[], datetime]
TOOL = f"nbpromote (pytest-notebooks {__version__})"
PUTS = (Action.ADD, Action.CHANGE, Action.RESTORE)
LEASE_SECONDS = 60  # how long an applying pointer holds off other runs unless renewed (module docstring)
RENEW_AFTER_SECONDS = 10  # renew before a step once the lease is this old: a step may take 50 s
STALE_TEMPORARY_SECONDS = 300  # a local store's temporary file this old is a killed run's


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


@dataclass(frozen=True)
class _Start:
    """Step 1's result: the state to plan against, lines to print, whether a dead run's release was finished."""

    state: State
    notes: tuple[str, ...]
    finished: bool


def promote(
    store: Store,
    inputs: Inputs,
    options: PublishOptions,
    now: Clock | None = None,
    hold_back: Callable[[tuple[Hold, ...]], Inputs] | None = None,
) -> Outcome:
    """Publish ``inputs``' candidates to ``store`` as a new release (see the module docstring).

    ``hold_back`` gets the current release's rollback holds, read in step 1, and returns the inputs with
    the candidates they hold moved to ``held`` (by default: just those candidates).
    """
    clock = now or _utcnow
    start = _settled(store, options.dry_run, clock)
    state = start.state
    current = state.manifest
    holds = current.holds if current else ()
    inputs = hold_back(holds) if hold_back else _hold_back(inputs, holds)
    created = _now(clock)
    sequence = current.sequence + 1 if current else 1
    release = _release_id(sequence, created, inputs.commit)
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
            converted_sha256=candidate.converted_sha256,
            converted_by=candidate.converted_by,
        )
        try:
            published = _published(candidate.data, candidate.key, provenance)
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
            converted_sha256=candidate.converted_sha256,
            converted_by=candidate.converted_by,
        )
    for key in sorted(inputs.held):  # held back: its live version stays as it is
        if current is not None and key in current.templates:
            wanted[key] = current.templates[key]
    drift = _drift(store, state, check_keys(wanted, current, options.prune), clock)
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
        holds=promotion_holds(holds, {c.key: c.sha256 for c in inputs.candidates}, inputs.held, inputs.untested),
    )
    return _execute(store, start, plan, manifest, objects, drift, options, clock, then="commit, test and promote again")


def _published(source: bytes, key: str, provenance: Provenance) -> bytes:
    """The bytes that go live at ``key``: a notebook (a text template's .ipynb too) stamped with its
    provenance; a Jupytext text template published as text (``x.py``) as committed, byte for byte (its
    provenance is in the release)."""
    if is_text_suffix(key):
        return source
    return stamp(source, provenance)


def rollback(store: Store, ref: str, options: PublishOptions, now: Clock | None = None) -> Outcome:
    """Make a new release whose templates are those of release ``ref``, byte for byte."""
    clock = now or _utcnow
    start = _settled(store, options.dry_run, clock)
    state = start.state
    if state.manifest is None:
        raise Refused([f"nothing has been promoted to {store.target.url} yet, so there is nothing to roll back to"])
    current = state.manifest
    target = find_release(store, state, ref)
    created = _now(clock)
    sequence = current.sequence + 1
    drift = _drift(store, state, check_keys(target.templates, current, options.prune), clock)
    plan = plan_rollback(target, current, drift, prune=options.prune, overwrite_drift=options.overwrite_drift)
    release = _release_id(sequence, created, target.commit)
    manifest = _manifest(
        plan,
        release=release,
        sequence=sequence,
        kind="rollback",
        created=created,
        commit=target.commit,
        branch=target.branch,
        tested_at=target.tested_at,
        previous=current.release,
        rollback_of=target.release,
        source_root=target.source_root,
        holds=rollback_holds(plan, current, release),
    )
    return _execute(store, start, plan, manifest, {}, drift, options, clock, then="or roll back to another release")


def _release_id(sequence: int, created: datetime, commit: str | None) -> str:
    """``0003-20261207T151052Z-0e11caf``: the number, the time, and the commit the release is of."""
    return f"{sequence:04d}-{created:%Y%m%dT%H%M%SZ}-{(commit or 'nocommit')[:7]}"


def _names(hold: Hold, ref: str) -> bool:
    """Whether ``ref`` (a live key or a source path, as a user types it) names ``hold``'s template."""
    return ref in (hold.key, hold.source_path)


def release_hold(store: Store, refs: Sequence[str], options: PublishOptions, now: Clock | None = None) -> Outcome:
    """Make a new release that is the current one without the holds on ``refs`` (live keys or source
    paths): the next promotion publishes those templates again. Writes no live key."""
    clock = now or _utcnow
    start = _settled(store, options.dry_run, clock)
    current = start.state.manifest
    holds = current.holds if current else ()
    unknown = [ref for ref in refs if not any(_names(hold, ref) for hold in holds)]
    if current is None or unknown:
        active = ", ".join(sorted({h.source_path for h in holds})) or "none"
        raise Refused(
            [f"{ref}: no rollback holds it back on {store.target.url} (holds: {active})" for ref in unknown or refs],
            "`nbpromote status` lists the holds; name the template by its path, as the held-back line shows it",
        )
    created = _now(clock)
    sequence = current.sequence + 1
    plan = plan_rollback(current, current)  # every template stays as it is
    manifest = _manifest(
        plan,
        release=_release_id(sequence, created, current.commit),
        sequence=sequence,
        kind="release-hold",
        created=created,
        commit=current.commit,
        branch=current.branch,
        tested_at=current.tested_at,
        previous=current.release,
        rollback_of=None,
        source_root=current.source_root,
        holds=tuple(hold for hold in holds if not any(_names(hold, ref) for ref in refs)),
    )
    return _execute(store, start, plan, manifest, {}, {}, options, clock, then="then release the hold again")


def _hold_back(inputs: Inputs, holds: tuple[Hold, ...]) -> Inputs:
    """``inputs`` with each candidate whose source a rollback holds moved to ``held``."""
    stopped = {c.key for c in inputs.candidates if held_by(holds, c.key, c.sha256)}
    if not stopped:
        return inputs
    candidates = tuple(c for c in inputs.candidates if c.key not in stopped)
    return replace(inputs, candidates=candidates, held=inputs.held | stopped)


# -- abandoning a release left half applied ----------------------------------------------------------

UNDO_WRITES = ("deleted", "put back", "restored")  # the Undo actions that write a key


@dataclass(frozen=True)
class Undo:
    """What abandoning a release does to one live key that the release wrote, or was to write."""

    key: str
    action: str  # one of UNDO_WRITES, "untouched" or "left" (as found: drift)
    detail: str
    entry: TemplateEntry | None = None  # put back, restored: the base release's entry
    if_match: str | None = None  # the ETag the key has now; None: absent
    etag: str | None = None  # untouched with the base's bytes: the ETag the base pointer records


@dataclass(frozen=True)
class Abandoned:
    """What ``abandon`` did (or, dry, would do)."""

    code: ExitCode
    release: str | None  # the release abandoned; None when nothing was left half applied
    base: str | None  # the release current afterwards (nothing to abandon: the live one, if any)
    lapsed: str = ""  # why the run that left it counts as stopped
    undo: tuple[Undo, ...] = ()
    notes: tuple[str, ...] = ()

    @property
    def writes(self) -> int:
        return sum(1 for step in self.undo if step.action in UNDO_WRITES)


def abandon(store: Store, options: PublishOptions, now: Clock | None = None) -> Abandoned:
    """Undo the release a stopped run left half applied: each live key it wrote gets the base release's
    bytes back (or is deleted, if the base did not have it), then the pointer names the base, live.

    The way out when the release cannot be finished (a key that cannot be written, a bug). Under a
    lease of its own, like a run that finishes a release; each write conditional on the ETag just
    read. A key holding neither release's bytes was changed by hand: left as found, and drift. The
    release's manifest stays in the store, on no history chain.
    """
    clock = now or _utcnow
    notes = _sweep(store, options.dry_run)
    state = read_state(store)
    pointer = state.pointer
    if pointer is None or pointer.state is PointerState.LIVE:
        return Abandoned(ExitCode.NOTHING_TO_DO, None, pointer.release if pointer else None, notes=notes)
    if pointer.leased(clock()):
        raise _conflict_with(pointer, clock, "nothing was changed by this run")
    assert state.manifest is not None  # read_state reads the manifest the pointer names
    assert state.etag is not None
    base = read_manifest(store, pointer.base) if pointer.base else None
    undo = tuple(sorted(_undo_plan(store, state.manifest, base), key=lambda step: step.key))
    outcome = Abandoned(ExitCode.PROMOTED, pointer.release, pointer.base, _lapsed(pointer), undo, notes)
    if options.dry_run:
        return outcome
    try:
        claim = _Claim.take(store, pointer, state.etag, clock)
    except PreconditionFailed:  # another run took it over first
        raise _conflict(
            store, clock, f"release {pointer.release} is half applied; nothing was changed by this run"
        ) from None
    try:
        _undo(store, claim, undo, base)
    except Conflict:
        raise
    except Failed as exc:
        claim.give_up()
        raise Failed(
            f"abandoning release {pointer.release} failed: {exc}; it stays half applied: remove the cause and "
            "run `nbpromote abandon` again"
        ) from None
    except BaseException:
        claim.give_up()
        raise
    return outcome


def _undo_plan(store: Store, stuck: Manifest, base: Manifest | None) -> list[Undo]:
    """What each live key the stuck release wrote holds now, and what abandoning it does there."""
    steps = [_undo_put(store, key, stuck, base) for action in PUTS for key in stuck.changes.get(action.value, ())]
    for key in stuck.changes.get(Action.PRUNE.value, ()):
        before = _entry(base, key)
        if before is None or store.head(key) is not None:
            steps.append(Undo(key, "untouched", "never deleted"))
        else:
            assert base is not None
            detail = f"pruned by release {stuck.release}; release {base.release}'s bytes again"
            steps.append(Undo(key, "restored", detail, entry=before))
    return steps


def _undo_put(store: Store, key: str, stuck: Manifest, base: Manifest | None) -> Undo:
    before = _entry(base, key)
    live = store.read(key)
    drift = "(drift: `nbpromote status` shows it)"
    if live is None:
        if before is None:
            return Undo(key, "untouched", "never written")
        return Undo(key, "left", f"as found: deleted outside nbpromote {drift}")
    digest = hashlib.sha256(live.data).hexdigest()
    if before is not None and digest == before.object:
        return Undo(key, "untouched", "never replaced", etag=live.etag)
    if digest != stuck.templates[key].object:
        return Undo(key, "left", f"as found: neither release's bytes {drift}")
    if before is None:
        was = f"release {base.release}" if base else "any release before it"
        return Undo(key, "deleted", f"added by release {stuck.release}, not in {was}", if_match=live.etag)
    assert base is not None  # it has an entry for the key
    return Undo(key, "put back", f"release {base.release}'s bytes again", entry=before, if_match=live.etag)


def _entry(manifest: Manifest | None, key: str) -> TemplateEntry | None:
    """The entry ``manifest`` has for ``key``, live or retired (still in the live path)."""
    if manifest is None:
        return None
    return manifest.templates.get(key) or manifest.retired.get(key)


def _undo(store: Store, claim: _Claim, undo: tuple[Undo, ...], base: Manifest | None) -> None:
    """Abandon's writes under ``claim``, then the pointer back to ``base`` (removed when there is none)."""
    etags = dict(claim.pointer.base_etags)
    for step in undo:
        try:
            if step.action == "deleted" and step.if_match is not None:
                claim.keep()
                store.delete(step.key, if_match=step.if_match)
                etags.pop(step.key, None)
            elif step.entry is not None:
                data = _object(store, step.entry.object, {}, step.key)
                claim.keep()
                etags[step.key] = store.put(
                    step.key,
                    data,
                    if_match=step.if_match,
                    content_type=content_type(step.key),
                    metadata=_meta(step.entry),
                )
            elif step.etag is not None:
                etags[step.key] = step.etag
        except PreconditionFailed:
            raise Failed(f"{store.target.show(step.key)} changed while this run was looking at it") from None
    claim.keep()
    try:
        if base is None:
            store.delete(POINTER_KEY, if_match=claim.etag)
            return
        pointer = Pointer(
            release=base.release, state=PointerState.LIVE, etags=etags, updated=_iso(claim.clock()), owner=OWNER
        )
        store.put(POINTER_KEY, _encode(pointer.to_json()), if_match=claim.etag, content_type=JSON_TYPE, metadata={})
    except PreconditionFailed:
        raise _conflict(store, claim.clock, "the pointer moved while this run was abandoning its release") from None


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


def applying_note(pointer: Pointer, now: datetime | None = None) -> str:
    """One line on an "applying" pointer: a promotion at work under its lease, or one that stopped."""
    moment = now or _utcnow()
    if pointer.leased(moment):
        return f"APPLYING: {_running(pointer, moment)}; `nbpromote status` again shows when it has finished"
    return (
        f"INTERRUPTED: the live keys were being replaced when a run stopped (base: release {pointer.base}, "
        f"{_lapsed(pointer)}); run nbpromote without --dry-run to finish it, or {_abandon(pointer.base)}"
    )


# -- the steps -----------------------------------------------------------------------------------


def _settled(store: Store, dry_run: bool, clock: Clock) -> _Start:
    """Step 1: the current state, with a release left "applying" by a dead run finished first."""
    notes = _sweep(store, dry_run)
    state = read_state(store)
    pointer = state.pointer
    if pointer is None or pointer.state is PointerState.LIVE:
        return _Start(state, notes, finished=False)
    release = pointer.release
    if pointer.leased(clock()):
        done = (
            "a dry run now would plan against a release that is about to change"
            if dry_run
            else "nothing was changed by this run"
        )
        raise _conflict_with(pointer, clock, done)
    if dry_run:
        raise Failed(
            f"release {release} was interrupted while its live keys were being replaced ({_lapsed(pointer)}); "
            f"run nbpromote without --dry-run to finish it first, or {_abandon(pointer.base)} "
            "(`nbpromote status` shows it)"
        )
    assert state.manifest is not None  # read_state reads the manifest the pointer names
    assert state.etag is not None
    reasons, _ = _unstorable(store, state.manifest)  # made by an nbpromote that did not check names
    if reasons:
        raise Failed(
            f"release {release}, which an earlier run left half applied, cannot be finished: "
            f"{'; '.join(reasons)}; run {_abandon(pointer.base)}"
        )
    try:
        claim = _Claim.take(store, pointer, state.etag, clock)
    except PreconditionFailed:  # another run took it over first, or it was finished meanwhile
        raise _conflict(
            store, clock, f"release {release} was left half applied; nothing was changed by this run"
        ) from None
    base = read_manifest(store, pointer.base) if pointer.base else None
    finishing = f"finishing release {release}, which an earlier run left half applied ({_lapsed(pointer)}), failed: "
    finished = _apply_and_commit(store, state.manifest, claim, base, {}, finishing)
    note = f"finished release {release}, which an earlier run had left half applied ({_lapsed(pointer)})"
    return _Start(finished, (*notes, note), finished=True)


def _sweep(store: Store, dry_run: bool) -> tuple[str, ...]:
    """The temporary files killed runs left in a local store: removed (dry: listed) in one line."""
    if not isinstance(store, LocalStore):
        return ()  # S3 has none: an upload is whole or absent
    found = store.sweep(STALE_TEMPORARY_SECONDS, remove=not dry_run)
    if not found:
        return ()
    names = ", ".join(found[:3]) + (f" and {len(found) - 3} more" if len(found) > 3 else "")
    what = f"{len(found)} temporary file(s) that killed nbpromote runs left in {store.root}"
    old = f"older than {STALE_TEMPORARY_SECONDS // 60} minutes"
    if dry_run:
        return (f"found {what} ({old}): {names}; a run without --dry-run removes them",)
    return (f"removed {what} ({old}): {names}",)


def _drift(store: Store, state: State, keys: set[str], clock: Clock) -> dict[str, Drift]:
    """Step 2: the keys whose live ETag is not what the current release recorded.

    A key a racing promotion has just replaced looks the same, but that promotion swapped the pointer
    before it wrote any live key: drift is drift only while the pointer is still the one planned on.
    """
    recorded = state.pointer.etags if state.pointer else {}
    drift = {}
    for key in sorted(keys):
        head = store.head(key)
        expected = recorded.get(key)
        if (head.etag if head else None) != expected:
            drift[key] = Drift(key=key, expected=expected, observed=head)
    if drift:
        stored = store.read(POINTER_KEY)
        if (stored.etag if stored else None) != state.etag:
            pointer = _decode(stored.data, Pointer.from_json, store.target.show(POINTER_KEY)) if stored else None
            raise _conflict_with(pointer, clock, "nothing live was changed by this run")
    return drift


def _execute(
    store: Store,
    start: _Start,
    plan: Plan,
    manifest: Manifest,
    objects: Mapping[str, bytes],
    drift: Mapping[str, Drift],
    options: PublishOptions,
    clock: Clock,
    then: str,
) -> Outcome:
    state = start.state
    if plan.refusals:
        hint = DRIFT_HINT if drift and not options.overwrite_drift else ""
        raise Refused(plan.refusals, hint)
    reasons, remedies = _unstorable(store, manifest)
    if reasons:  # before anything is written, so that no write after the claim fails on a name
        raise Refused(reasons, f"{'; '.join(remedies)}, {then}; nothing was written")
    outcome = Outcome(ExitCode.PROMOTED, plan, manifest, state.manifest, start.notes)
    if plan.empty and manifest.holds == (state.manifest.holds if state.manifest else ()):
        # having finished an interrupted release is a promotion of its own
        code = ExitCode.PROMOTED if start.finished else ExitCode.NOTHING_TO_DO
        return Outcome(code, plan, manifest, state.manifest, start.notes)
    if options.dry_run:
        return outcome
    # step 3: objects, create-only
    for change in plan.changes:
        if change.action in PUTS and change.after is not None and change.after.object in objects:
            _put_object(store, change.after.object, objects[change.after.object], change.key)
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
            where = store.target.show(release_key(manifest.release))
            other = _decode(existing.data, Manifest.from_json, where) if existing else None
            by = f" by {other.owner}" if other and other.owner else ""
            done = f"release {manifest.release} was made{by} at the same moment (the same commit in the same second)"
            pointer = store.read(POINTER_KEY)
            if (pointer.etag if pointer else None) == state.etag:  # that run has not claimed the pointer yet
                raise Conflict(
                    f"another promotion is running: {done}; nothing live was changed by this run; "
                    "run nbpromote again when it has finished; `nbpromote status` shows it"
                ) from None
            raise _conflict(store, clock, f"{done}; nothing live was changed by this run") from None
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
        updated="",  # set with the lease
        base=state.manifest.release if state.manifest else None,
        base_etags=recorded,
    )
    try:
        lease = _Claim.take(store, claim, state.etag, clock)
    except PreconditionFailed:
        raise _conflict(store, clock, "nothing live was changed by this run") from None
    # step 6 and 7
    _apply_and_commit(store, manifest, lease, state.manifest, objects)
    return outcome


class _Claim:
    """This run's lease on the pointer while it applies a release: the pointer as last written, its ETag."""

    def __init__(self, store: Store, pointer: Pointer, etag: str, clock: Clock) -> None:
        self.store = store
        self.pointer = pointer
        self.etag = etag
        self.clock = clock
        self.renewed = clock()

    @classmethod
    def take(cls, store: Store, pointer: Pointer, if_match: str | None, clock: Clock) -> _Claim:
        """Swap the pointer to ``pointer`` under this run's lease; PreconditionFailed when it moved first."""
        now = clock()
        leased = replace(pointer, owner=OWNER, expires=_iso(_lease_end(now)), updated=_iso(now))
        try:
            etag = store.put(
                POINTER_KEY, _encode(leased.to_json()), if_match=if_match, content_type=JSON_TYPE, metadata={}
            )
        except PreconditionFailed:
            stored = store.read(POINTER_KEY)  # equal: our own swap, answered 412 to a retry after its reply was lost
            if stored is None or _decode(stored.data, Pointer.from_json, store.target.show(POINTER_KEY)) != leased:
                raise
            etag = stored.etag
        return cls(store, leased, etag, clock)

    def keep(self, *, check: bool = False) -> None:
        """Before a step: renew the lease once it is RENEW_AFTER_SECONDS old (``check``: at once, which
        also makes sure it is still this run's); Conflict when another run has taken the release over."""
        moment = self.clock()
        if not check and moment - self.renewed < timedelta(seconds=RENEW_AFTER_SECONDS):
            return
        renewed = replace(self.pointer, expires=_iso(_lease_end(moment)), updated=_iso(moment))
        try:
            self.etag = self.store.put(
                POINTER_KEY, _encode(renewed.to_json()), if_match=self.etag, content_type=JSON_TYPE, metadata={}
            )
        except PreconditionFailed:
            raise _conflict(
                self.store,
                self.clock,
                f"this run's lease on release {self.pointer.release} (until {self.pointer.expires}) ran out "
                "before it could renew it, and the pointer moved; this run stopped applying",
            ) from None
        self.pointer, self.renewed = renewed, moment

    def give_up(self) -> None:
        """After an error: end the lease now, so that the next run finishes the release without waiting."""
        moment = self.clock()
        ended = replace(self.pointer, expires=_iso(moment.replace(microsecond=0)), updated=_iso(moment))
        with contextlib.suppress(Exception):  # best effort: otherwise the lease runs out by itself
            self.store.put(
                POINTER_KEY, _encode(ended.to_json()), if_match=self.etag, content_type=JSON_TYPE, metadata={}
            )


def _apply_and_commit(
    store: Store,
    manifest: Manifest,
    claim: _Claim,
    base: Manifest | None,
    objects: Mapping[str, bytes],
    finishing: str = "",
) -> State:
    """Steps 6 and 7 under ``claim``'s lease; a run that fails on the way ends its lease.

    A failure names the way out: the cause is not always passing (a key that cannot be written fails
    every run that tries to finish the release), so the message names ``nbpromote abandon`` too.
    """
    try:
        etags = _apply(store, manifest, claim, base, objects)
        return _commit(store, manifest, etags, claim)
    except (Refused, Conflict):  # the pointer is not this run's any more: put back, or taken over
        raise
    except Failed as exc:  # an I/O error, a key that cannot be written: the pointer stays "applying"
        if not isinstance(exc, LockTimeout):  # else waiting for the lock again would fail the same way
            claim.give_up()
        raise Failed(f"{finishing}{exc}; {_stuck(manifest.release, claim.pointer.base)}") from None
    except BaseException:  # Ctrl-C, a bug: the pointer stays "applying", with no live lease
        claim.give_up()
        raise


def _stuck(release: str, base: str | None) -> str:
    """What to do about a release left half applied: the end of every message that leaves one."""
    return (
        f"release {release} stays half applied: run {_abandon(base)}, or remove the cause and run nbpromote "
        "again to finish it"
    )


def _abandon(base: str | None) -> str:
    """``nbpromote abandon``, and what it does to a release whose base is ``base``."""
    return f"`nbpromote abandon` to {f'put release {base} back' if base else 'remove what it wrote'}"


def _put_object(store: Store, digest: str, data: bytes, live: str) -> None:
    """The object of the bytes published at the live key ``live``, named and typed like it."""
    key = object_key(digest, live)
    try:
        store.put(key, data, if_match=None, content_type=content_type(live), metadata={"sha256": digest})
    except PreconditionFailed:  # content-addressed: already there is fine, if it holds these bytes
        _object(store, digest, {}, live)


def _object(store: Store, digest: str, cache: Mapping[str, bytes], live: str) -> bytes:
    """The bytes of object ``digest``, published at the live key ``live``: from ``cache``, or the store."""
    if digest in cache:
        return cache[digest]
    key = object_key(digest, live)
    stored = store.read(key)
    if stored is None:
        raise Failed(f"the object {store.target.show(key)} is missing; the target was tampered with")
    if hashlib.sha256(stored.data).hexdigest() != digest:
        raise Failed(f"the object {store.target.show(key)} does not hold the bytes its name says")
    return stored.data


def _unstorable(store: Store, manifest: Manifest) -> tuple[list[str], list[str]]:
    """Every live key the release writes or deletes, with its metadata, that no store can hold: one
    line each naming the file, and the distinct remedies (``store.unstorable``)."""
    reasons: list[str] = []
    remedies: list[str] = []
    for action in (*PUTS, Action.PRUNE):
        for key in manifest.changes.get(action.value, ()):
            entry = manifest.templates.get(key)
            found = unstorable(store.target, key, _meta(entry) if entry else None)
            if found is not None:
                reasons.append(f"{_shown(entry.source_path if entry else key)}: {found[0]}")
                remedies += [found[1]] if found[1] not in remedies else []
    return reasons, remedies


def _shown(name: str) -> str:
    """A file name for a one-line message: as it is, or quoted with escapes when it holds control characters."""
    return name if name.isprintable() else repr(name)


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
    store: Store, manifest: Manifest, claim: _Claim, base: Manifest | None, objects: Mapping[str, bytes]
) -> dict[str, str]:
    """Step 6: replace the release's changed live keys; returns the ETags to commit."""
    before = claim.pointer.etags  # what each key held before the release, as the claim recorded it
    etags = dict(before)
    done: list[tuple[str, Action]] = []
    for action in PUTS:
        for key in manifest.changes.get(action.value, ()):
            entry = manifest.templates[key]
            data = _object(store, entry.object, objects, key)
            claim.keep()
            try:
                etags[key] = store.put(
                    key, data, if_match=before.get(key), content_type=content_type(key), metadata=_meta(entry)
                )
            except PreconditionFailed:
                live = store.read(key)
                if live is None or hashlib.sha256(live.data).hexdigest() != entry.object:
                    claim.keep(check=True)  # another run that took this release over is not drift
                    _revert(store, manifest, claim, base, etags, done, key, objects)
                etags[key] = live.etag  # a run before this one had already put it there
            done.append((key, action))
    for key in manifest.changes.get(Action.PRUNE.value, ()):
        expected = before.get(key)
        if expected is not None:
            claim.keep()
            try:
                store.delete(key, if_match=expected)
            except PreconditionFailed:
                if store.head(key) is not None:
                    claim.keep(check=True)
                    _revert(store, manifest, claim, base, etags, done, key, objects)
            done.append((key, Action.PRUNE))
        etags.pop(key, None)
    return etags


def _commit(store: Store, manifest: Manifest, etags: Mapping[str, str], claim: _Claim) -> State:
    """Step 7: the pointer goes from "applying" to "live" with the ETags just written; the state after."""
    claim.keep()
    final = Pointer(
        release=manifest.release, state=PointerState.LIVE, etags=etags, updated=_iso(claim.clock()), owner=OWNER
    )
    try:
        etag = store.put(
            POINTER_KEY, _encode(final.to_json()), if_match=claim.etag, content_type=JSON_TYPE, metadata={}
        )
    except PreconditionFailed:
        now = read_state(store)
        if now.pointer is None or now.pointer.release != manifest.release or now.pointer.state is not PointerState.LIVE:
            raise _conflict_with(
                now.pointer,
                claim.clock,
                f"the pointer changed while release {manifest.release} was being applied by this run",
            ) from None
        return now  # another run that took this release over committed it first: the same outcome
    return State(final, etag, manifest)


def _revert(
    store: Store,
    manifest: Manifest,
    claim: _Claim,
    base: Manifest | None,
    etags: Mapping[str, str],
    done: list[tuple[str, Action]],
    drifted: str,
    objects: Mapping[str, bytes],
) -> NoReturn:
    """Drift found half way: put every key already replaced back to the base release; raise Refused."""
    restored = dict(claim.pointer.base_etags)
    try:
        for key, action in reversed(done):
            before = (base.templates.get(key) or base.retired.get(key)) if base else None
            claim.keep()
            if before is not None:
                data = _object(store, before.object, objects, key)
                restored[key] = store.put(
                    key,
                    data,
                    if_match=None if action is Action.PRUNE else etags[key],
                    content_type=content_type(key),
                    metadata=_meta(before),
                )
            else:
                store.delete(key, if_match=etags[key])
                restored.pop(key, None)
        if base is not None:
            pointer = Pointer(
                release=base.release, state=PointerState.LIVE, etags=restored, updated=_iso(claim.clock()), owner=OWNER
            )
            store.put(POINTER_KEY, _encode(pointer.to_json()), if_match=claim.etag, content_type=JSON_TYPE, metadata={})
        else:
            store.delete(POINTER_KEY, if_match=claim.etag)
    except (PreconditionFailed, TargetError) as exc:
        raise Failed(
            f"{drifted} changed outside nbpromote while release {manifest.release} was being applied, and "
            f"putting the keys already replaced back failed ({exc})"
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


def _conflict(store: Store, clock: Clock, done: str) -> Conflict:
    """A Conflict that says which promotion holds or moved the pointer (read now), ``done`` and what to do."""
    stored = store.read(POINTER_KEY)
    pointer = _decode(stored.data, Pointer.from_json, store.target.show(POINTER_KEY)) if stored else None
    return _conflict_with(pointer, clock, done)


def _conflict_with(pointer: Pointer | None, clock: Clock, done: str) -> Conflict:
    now = clock()
    if pointer is None:
        other = "another run removed the release pointer"
        hint = "`nbpromote status` shows the state"
    elif pointer.leased(now):
        other = f"another promotion is running: {_running(pointer, now)}"
        hint = "run nbpromote again when it has finished; `nbpromote status` shows it"
    elif pointer.state is PointerState.APPLYING:
        other = f"another promotion stopped half way: release {pointer.release} is half applied ({_lapsed(pointer)})"
        hint = f"run nbpromote again to finish it, or {_abandon(pointer.base)}; `nbpromote status` shows it"
    else:
        by = f" by {pointer.owner}" if pointer.owner else ""
        other = f"another promotion won: release {pointer.release}, made current{by} at {pointer.updated}, is live"
        hint = "run nbpromote again to promote on top of it; `nbpromote status` shows it"
    return Conflict(f"{other}; {done}; {hint}")


def _running(pointer: Pointer, now: datetime) -> str:
    end = pointer.lease_end()
    left = f" (in {max(0, round((end - now).total_seconds()))} s)" if end else ""
    owner = pointer.owner or "?"
    return f"release {pointer.release} is being applied by {owner}, whose lease expires at {pointer.expires}{left}"


def _lapsed(pointer: Pointer) -> str:
    """Why an applying pointer counts as a stopped run."""
    if pointer.expires is None:
        return "written by an nbpromote without leases"
    return f"the lease of {pointer.owner or '?'} expired at {pointer.expires}"


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
    holds: tuple[Hold, ...] = (),
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
        owner=OWNER,
        holds=holds,
    )


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


def _now(clock: Clock) -> datetime:
    return clock().replace(microsecond=0)


def _lease_end(now: datetime) -> datetime:
    return now.replace(microsecond=0) + timedelta(seconds=LEASE_SECONDS)


OWNER = process_owner()  # who holds a lease: user@host pid N


def _iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def _encode(document: Mapping[str, object]) -> bytes:
    return (json.dumps(document, indent=2) + "\n").encode("utf-8")


def _decode(data: bytes, parse: Callable[[Any], T], where: str) -> T:
    try:
        return parse(json.loads(data))
    except (ValueError, KeyError, TypeError) as exc:
        raise Failed(f"{where} is not a valid nbpromote document ({exc}); it was changed by hand?") from None
