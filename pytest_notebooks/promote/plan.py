"""Wanted templates + the current release + drift -> ``Plan``. Pure: no I/O, no clock.

One rule serves promotion and rollback: every wanted key is added, changed or kept; a live key no
longer wanted is retired (left in place) or, with ``prune``, deleted; a key retired earlier stays
retired unless pruned or wanted again. What counts as "the same" differs: promotion compares the
source sha256 (and whether outputs are cleared), rollback compares the published object.

Holds make a rollback stick: a rollback holds each live template it takes away from its bytes
(``rollback_holds``); a promotion keeps a hold while its template is held back or untested, and
drops it once the template's source has changed (``promotion_holds``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping

from pytest_notebooks.promote.models import Action, Change, Drift, Hold, Manifest, Plan, TemplateEntry

Same = Callable[[TemplateEntry, TemplateEntry], bool]
DRIFT_HINT = (
    "look at the live object; to replace it with what git says, run again with --overwrite-drift "
    "(or put the hand edit into git, test and promote it)"
)


def same_source(live: TemplateEntry, wanted: TemplateEntry) -> bool:
    return live.same_source(wanted)


def same_object(live: TemplateEntry, wanted: TemplateEntry) -> bool:
    return live.object == wanted.object


def plan_promotion(
    wanted: Mapping[str, TemplateEntry],
    current: Manifest | None,
    untested: frozenset[str] = frozenset(),
    drift: Mapping[str, Drift] | None = None,
    *,
    prune: bool = False,
    overwrite_drift: bool = False,
) -> Plan:
    """Publish ``wanted`` (live key -> entry as it would be published now) over ``current``.

    ``untested`` are keys of committed notebooks without a fixture: one of them being live refuses
    the plan (it could no longer be tested, yet it is not gone from git either).
    """
    plan = _plan(wanted, current, same_source, drift or {}, prune=prune, overwrite_drift=overwrite_drift)
    refusals = [
        f"{key}: live since release {current.templates[key].published_in}, but its notebook "
        f"{current.templates[key].source_path} has no fixture now, so it was not tested; restore the "
        "fixture, or delete the notebook from git to retire it"
        for key in sorted(untested)
        if current is not None and key in current.templates
    ]
    return dataclasses.replace(plan, refusals=plan.refusals + tuple(refusals))


def plan_rollback(
    target: Manifest,
    current: Manifest,
    drift: Mapping[str, Drift] | None = None,
    *,
    prune: bool = False,
    overwrite_drift: bool = False,
) -> Plan:
    """Make ``target``'s templates live again, byte for byte, over ``current``."""
    return _plan(target.templates, current, same_object, drift or {}, prune=prune, overwrite_drift=overwrite_drift)


LIVE_ACTIONS = (Action.ADD, Action.CHANGE, Action.RESTORE, Action.KEEP, Action.REVIVE)


def rollback_holds(plan: Plan, current: Manifest, release: str) -> tuple[Hold, ...]:
    """The holds after the rollback ``release`` of ``plan``: the current ones, less those on bytes it puts
    live again (rolling back to them is a decision too), plus one on the source of each template that
    was live and that it changes, retires or deletes (unless only the stamp or outputs differ)."""
    holds = {(hold.key, hold.sha256): hold for hold in current.holds}
    for change in plan.changes:
        before, after = change.before, change.after
        if change.action in LIVE_ACTIONS and after is not None:
            holds.pop((change.key, after.sha256), None)
        if change.key not in current.templates or before is None:
            continue
        away = change.action in (Action.RETIRE, Action.PRUNE) or (
            change.action is Action.CHANGE and after is not None and after.sha256 != before.sha256
        )
        if away:
            holds[(change.key, before.sha256)] = Hold(
                key=change.key,
                sha256=before.sha256,
                source_path=before.source_path,
                set_in=release,
                rolled_back_from=before.published_in,
            )
    return tuple(holds[k] for k in sorted(holds))


def promotion_holds(
    holds: tuple[Hold, ...], candidates: Mapping[str, str], held: frozenset[str], untested: frozenset[str]
) -> tuple[Hold, ...]:
    """The holds a promotion carries forward. ``candidates`` maps the live keys promoted to their source
    sha256: a hold on one of them is dropped (its source changed, or the hold would have held it back).
    A template held back or untested keeps its holds; one gone from git loses them."""
    return tuple(h for h in holds if h.key not in candidates and (h.key in held or h.key in untested))


def held_by(holds: tuple[Hold, ...], key: str, sha256: str) -> Hold | None:
    """The hold that keeps ``key`` from going live with source ``sha256``, if any."""
    return next((h for h in holds if h.key == key and h.sha256 == sha256), None)


def check_keys(wanted: Mapping[str, TemplateEntry], current: Manifest | None, prune: bool) -> set[str]:
    """The live keys whose state must be checked for drift before planning with these arguments."""
    keys = set(wanted)
    if current is not None:
        keys |= set(current.templates)
        if prune:
            keys |= set(current.retired)
    return keys


def _plan(
    wanted: Mapping[str, TemplateEntry],
    current: Manifest | None,
    same: Same,
    drift: Mapping[str, Drift],
    *,
    prune: bool,
    overwrite_drift: bool,
) -> Plan:
    live = current.templates if current is not None else {}
    retired = current.retired if current is not None else {}
    changes = []
    for key in sorted(set(wanted) | set(live) | set(retired)):
        before = live.get(key) or retired.get(key)
        if key in wanted:
            after = wanted[key]
            now = live.get(key) or retired.get(key)  # a retired key is still in the live path
            if now is not None and same(now, after):
                # the bytes stay those published earlier; the entry says what was tested this time
                kept = dataclasses.replace(
                    after,
                    object=now.object,
                    object_size=now.object_size,
                    published_in=now.published_in,
                    commit=now.commit,
                )
                if key in drift and overwrite_drift:
                    action = Action.RESTORE
                else:
                    action = Action.KEEP if key in live else Action.REVIVE
                changes.append(Change(key, action, before, kept))
            else:
                changes.append(Change(key, Action.ADD if before is None else Action.CHANGE, before, after))
        elif prune:
            changes.append(Change(key, Action.PRUNE, before, None))
        else:
            changes.append(Change(key, Action.RETIRE if key in live else Action.KEEP_RETIRED, before, before))
    refusals = tuple(
        f"{change.key}: drift: the live object changed outside nbpromote ({drift[change.key].describe()})"
        for change in changes
        if change.key in drift and not overwrite_drift and change.action not in (Action.RETIRE, Action.KEEP_RETIRED)
    )
    return Plan(changes=tuple(changes), refusals=refusals)
