"""The ``nbpromote`` console script: arguments and config -> publish.py -> text (or JSON) and an exit code.

Commands: promote (the default), status, history, rollback RELEASE, release-hold TEMPLATE, abandon; see the README's
"Promoting templates" and ``--help``. ``--format json`` prints one JSON document instead of the text, built here
from the records (publish.py's outcomes, models.py's ``to_json``); its shapes are published in
``nbpromote.schema.json`` beside this module. Errors stay one-screen text on stderr, and the exit codes are the same.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath
from typing import Any, TextIO, cast

from pytest_notebooks import __version__
from pytest_notebooks.errors import Conflict, Failed, GitUnusable, Refused, UsageError
from pytest_notebooks.exitcodes import ExitCode
from pytest_notebooks.gitinfo import git_state
from pytest_notebooks.promote.inputs import HeldBack, Policy, gather, hold_back
from pytest_notebooks.promote.models import (
    Action,
    Change,
    Drift,
    Head,
    Hold,
    Inputs,
    Manifest,
    Pointer,
    PointerState,
    TemplateEntry,
)
from pytest_notebooks.promote.publish import (
    Abandoned,
    Outcome,
    PublishOptions,
    State,
    abandon,
    applying_note,
    history,
    live_heads,
    promote,
    read_manifest,
    read_state,
    release_hold,
    rollback,
)
from pytest_notebooks.promote.settings import DEFAULT_RESULTS, Config, Target, find_config, parse_target
from pytest_notebooks.promote.store import Store, open_store
from pytest_notebooks.results.read import find_results
from pytest_notebooks.terminal import InertStream

COMMANDS = ("promote", "status", "history", "rollback", "release-hold", "abandon")
FORMATS = ("text", "json")
# The --format json documents (nbpromote.schema.json; README "JSON output"). A version
# changes when a field is removed, renamed or changes meaning; a new field may appear within one.
STATUS_SCHEMA = "pytest-notebooks/nbpromote-status"
HISTORY_SCHEMA = "pytest-notebooks/nbpromote-history"
PLAN_SCHEMA = "pytest-notebooks/nbpromote-plan"  # promote, rollback and release-hold: done or --dry-run
ABANDON_SCHEMA = "pytest-notebooks/nbpromote-abandon"
OUTPUT_VERSION = 1
SCHEMA_FILE = "nbpromote.schema.json"
EXIT_CODES = f"""\
exit codes:
  {ExitCode.PROMOTED:d}  promoted: a release was made (status, history, abandon: done; --dry-run: would promote)
  {ExitCode.FAILED:d}  failed: bad target URL, credentials, bucket, network, a local lock held too long; a
     failure while live keys were being replaced says so: run nbpromote again, or nbpromote abandon
  {ExitCode.USAGE:d}  usage: bad arguments or [tool.nbpromote] table
  {ExitCode.NOTHING_TO_DO:d}  nothing to do: what is live is what would be promoted (abandon: nothing half applied)
  {ExitCode.REFUSED:d}  refused, nothing changed: no notebook may go live (each has a case that did not pass,
     or all or nothing), a file changed since tested, the results are from another commit or a
     dirty tree, or a live object was changed by hand (drift)
  {ExitCode.PARTIAL:d}  partial: the notebooks whose cases all passed are live (or already were); the others
     were held back (listed)
  {ExitCode.CONFLICT:d}  conflict: another promotion or rollback is running or won the race; nothing changed here
  {ExitCode.DRIFT:d}  status: a live template is not what the release published (changed outside nbpromote)
"""
UNDO_SYMBOLS = {"deleted": "x", "put back": "~", "restored": "+", "untouched": "=", "left": "!"}
SYMBOLS = {
    Action.ADD: "+",
    Action.CHANGE: "~",
    Action.RESTORE: "!",
    Action.KEEP: "=",
    Action.REVIVE: "+",
    Action.RETIRE: "-",
    Action.KEEP_RETIRED: "-",
    Action.PRUNE: "x",
}


def main(argv: Sequence[str] | None = None, stdout: TextIO | None = None, stderr: TextIO | None = None) -> int:
    """Run nbpromote with ``argv`` (default: the command line); returns the exit code."""
    # Results files, manifests and stores hold text someone else may have written: shown, never obeyed
    out = cast(TextIO, InertStream(stdout or sys.stdout))
    err = cast(TextIO, InertStream(stderr or sys.stderr))
    args = list(sys.argv[1:] if argv is None else argv)
    parser = _parser()
    first = _command_index(args)
    if first < len(args) and not args[first].startswith("-") and args[first] not in COMMANDS:
        choices = ", ".join(COMMANDS)
        print(parser.format_usage().rstrip(), file=err)
        print(f"nbpromote: error: invalid choice: {args[first]!r} (choose from {choices})", file=err)
        return ExitCode.USAGE
    if first >= len(args) or args[first] not in (*COMMANDS, "-h", "--help", "--version"):
        args.insert(first, "promote")
    try:
        namespace = parser.parse_args(args)
    except SystemExit as exc:  # argparse has printed the usage or the help
        return exc.code if isinstance(exc.code, int) else ExitCode.USAGE
    try:
        code: int = namespace.run(namespace, out)
    except UsageError as exc:
        print(f"nbpromote: error: {exc}", file=err)
        return ExitCode.USAGE
    except Refused as exc:
        if len(exc.reasons) == 1:
            print(f"nbpromote: refused: {exc.reasons[0]}", file=err)
        else:
            print(f"nbpromote: refused, {len(exc.reasons)} reasons:", file=err)
            for reason in exc.reasons:
                print(f"  {reason}", file=err)
        if exc.hint:
            print(f"  hint: {exc.hint}", file=err)
        return ExitCode.REFUSED
    except Conflict as exc:
        print(f"nbpromote: conflict: {exc}", file=err)
        return ExitCode.CONFLICT
    except Failed as exc:
        print(f"nbpromote: failed: {exc}", file=err)
        return ExitCode.FAILED
    except BrokenPipeError:  # `nbpromote history | head`: the reader left; no traceback
        if (stdout or sys.stdout) is sys.stdout:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # as the Python docs advise
        return ExitCode.FAILED
    return code


GLOBAL_OPTIONS = ("-C", "--target", "--format")  # accepted before the command too, as git -C DIR status


def _command_index(args: Sequence[str]) -> int:
    """Where the command is (or goes): after the global options given before it."""
    index = 0
    while index < len(args):
        word = args[index]
        if word in GLOBAL_OPTIONS:
            index += 2
        elif word.startswith(("--target=", "--format=")):
            index += 1
        else:
            break
    return min(index, len(args))


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="nbpromote",
        description="Publish the notebook templates that passed their tests, byte for byte, to where "
        "the scheduler reads them.\nWithout a command: promote, whose options (--target, --dry-run, "
        "--source-root, ...) `nbpromote promote --help` lists.",
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"nbpromote (pytest-notebooks {__version__})")
    parser.add_argument("-C", dest="directory", metavar="DIR", help="run as if started in DIR")
    parser.add_argument("--target", metavar="URL", help="as the commands' --target; before or after the command")
    parser.add_argument(
        "--format", choices=FORMATS, default="text", help="as the commands' --format; before or after the command"
    )
    commands = parser.add_subparsers(
        title="commands", metavar="{" + ",".join(COMMANDS) + "}", dest="command", required=True
    )

    def command(name: str, help_text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(
            name,
            help=help_text,
            description=help_text,
            epilog=EXIT_CODES,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        # SUPPRESS: a -C given before the command is not reset by the command's default
        sub.add_argument(
            "-C", dest="directory", metavar="DIR", default=argparse.SUPPRESS, help="run as if started in DIR"
        )
        sub.add_argument(
            "--target",
            metavar="URL",
            default=argparse.SUPPRESS,  # a --target given before the command is not reset either
            help="s3://bucket/prefix/, file:///path or a directory. Default: target in [tool.nbpromote]",
        )
        sub.add_argument(
            "--format",
            choices=FORMATS,
            default=argparse.SUPPRESS,  # nor a --format given before it
            help=f"text (default) or json: one JSON document on stdout (schema: {SCHEMA_FILE} in the package); "
            "errors stay text on stderr, exit codes are the same",
        )
        return sub

    sub = command("promote", "publish the templates that passed (the default command)")
    sub.add_argument(
        "--results",
        metavar="FILE",
        help=f"the results file. Default: results in [tool.nbpromote], else {DEFAULT_RESULTS} here or in the "
        "nearest directory above, up to the repository root",
    )
    sub.add_argument(
        "--source-root",
        metavar="DIR",
        help="live keys are paths below this directory. Default: source_root in [tool.nbpromote], else the "
        "repository root",
    )
    sub.add_argument(
        "--clear-outputs", action="store_true", help="publish with outputs cleared (default: as committed)"
    )
    sub.add_argument(
        "--all-or-nothing",
        action="store_true",
        help="refuse the whole promotion when any notebook is held back (default: all_or_nothing in "
        "[tool.nbpromote], else promote the notebooks that passed and hold back the others)",
    )
    _writing_options(sub)
    sub.set_defaults(run=_promote)

    sub = command("status", "what is live, from which commit, tested when; drift")
    sub.set_defaults(run=_status)

    sub = command("history", "the releases, newest first")
    sub.add_argument("--limit", type=int, metavar="N", help="show the newest N only")
    sub.set_defaults(run=_history)

    sub = command("rollback", "make a new release with the templates of an earlier one, byte for byte")
    sub.add_argument("release", help="a release id from `nbpromote history`, or its number")
    _writing_options(sub)
    sub.set_defaults(run=_rollback)

    sub = command(
        "release-hold",
        "let the next promotion publish a template that a rollback holds back while its source is the bytes "
        "rolled back away from (a new release; no live key is written)",
    )
    sub.add_argument("template", nargs="+", help="the notebook's path (as the held-back line names it) or its live key")
    sub.add_argument("--dry-run", action="store_true", help="print what would be released, write nothing")
    sub.set_defaults(run=_release_hold)

    sub = command(
        "abandon",
        "undo a release that a stopped run left half applied (one it cannot finish): put back the live keys "
        "it wrote and make the release before it current again",
    )
    sub.add_argument("--dry-run", action="store_true", help="print what would be put back, write nothing")
    sub.set_defaults(run=_abandon)
    return parser


def _writing_options(sub: argparse.ArgumentParser) -> None:
    sub.add_argument("--dry-run", action="store_true", help="print the plan, write nothing")
    sub.add_argument(
        "--prune", action="store_true", help="delete retired templates from the live path (default: left in place)"
    )
    sub.add_argument(
        "--overwrite-drift",
        action="store_true",
        help="replace live templates changed outside nbpromote (each still conditional on the ETag just read)",
    )


# -- commands --------------------------------------------------------------------------------------


def _promote(namespace: argparse.Namespace, out: TextIO) -> int:
    base, root, config = _context(namespace)
    target = _target(namespace, base, config)
    project = config.path.parent if config.path else root or base  # where pytest ran, as a rule
    found = config.results or find_results(base, root)  # the nearest, up to the repository root, as nbreview
    results = base / namespace.results if namespace.results else found or project / DEFAULT_RESULTS
    source_root = base / namespace.source_root if namespace.source_root else config.source_root
    ignore = (target.path,) if target.path is not None else ()
    policy = Policy(
        accept_fixture_skips=config.accept_fixture_skips is not False,
        accept_fixture_xfails=config.accept_fixture_xfails is not False,
        accept_flaky=config.accept_flaky is True,
        all_or_nothing=namespace.all_or_nothing or bool(config.all_or_nothing),
        groups=config.groups or {},
        text_templates=config.text_templates or "text",
    )
    gathered = gather(results, base, source_root, ignore, project, policy)
    inputs = gathered.inputs
    if namespace.format == "text":  # before the store is read: a refusal there still shows them
        for note in inputs.notes:
            print(note, file=out)
    options = PublishOptions(
        dry_run=namespace.dry_run,
        prune=namespace.prune,
        clear_outputs=namespace.clear_outputs or bool(config.clear_outputs),
        overwrite_drift=namespace.overwrite_drift,
    )

    def apply_holds(holds: tuple[Hold, ...]) -> Inputs:  # the release's rollback holds, read when planning
        nonlocal gathered
        gathered = hold_back(gathered, holds, policy)
        return gathered.inputs

    outcome = promote(open_store(target), inputs, options, hold_back=apply_holds)
    partial = bool(gathered.held_back) and outcome.code in (ExitCode.PROMOTED, ExitCode.NOTHING_TO_DO)
    code = ExitCode.PARTIAL if partial else outcome.code
    if namespace.format == "json":
        notes = (*inputs.notes, *outcome.notes)
        _emit(_plan_document("promote", outcome, target, options, notes, gathered.held_back, gathered.command), out)
        return code
    _report(outcome, target, options, out)
    if partial:
        count = len(gathered.held_back)
        them = "notebooks (what is live for them" if count > 1 else "notebook (what is live for it"
        print(f"held back {count} {them} stays live):", file=out)
        for held in gathered.held_back:
            for reason in held.reasons:
                print(f"  {held.source_path}: {reason}", file=out)
        if gathered.command:
            print(f"  hint: {gathered.command}", file=out)
    return code


def _rollback(namespace: argparse.Namespace, out: TextIO) -> int:
    base, _, config = _context(namespace)
    target = _target(namespace, base, config)
    options = PublishOptions(
        dry_run=namespace.dry_run, prune=namespace.prune, overwrite_drift=namespace.overwrite_drift
    )
    outcome = rollback(open_store(target), namespace.release, options)
    if namespace.format == "json":
        _emit(_plan_document("rollback", outcome, target, options, outcome.notes), out)
        return outcome.code
    return _report(outcome, target, options, out)


def _release_hold(namespace: argparse.Namespace, out: TextIO) -> int:
    base, _, config = _context(namespace)
    target = _target(namespace, base, config)
    options = PublishOptions(dry_run=namespace.dry_run)
    outcome = release_hold(open_store(target), namespace.template, options)
    if namespace.format == "json":
        _emit(_plan_document("release-hold", outcome, target, options, outcome.notes), out)
        return outcome.code
    for note in outcome.notes:
        print(note, file=out)
    before = outcome.current.holds if outcome.current else ()
    for hold in (h for h in before if h not in outcome.manifest.holds):
        print(f"  {_hold_line(hold)}", file=out)
    count = len(before) - len(outcome.manifest.holds)
    holds = f"{count} hold{'' if count == 1 else 's'}"
    if namespace.dry_run:
        print(f"dry run: would make release {outcome.manifest.release} without {holds}; nothing was written", file=out)
    else:
        print(
            f"released {holds} as release {outcome.manifest.release}: the next promotion publishes "
            "these templates again when they pass",
            file=out,
        )
    return outcome.code


def _hold_line(hold: Hold) -> str:
    return (
        f"hold: {hold.source_path}  not promoted while its source is sha256 {hold.sha256[:12]} (release "
        f"{hold.set_in} rolled it back from release {hold.rolled_back_from})"
    )


def _abandon(namespace: argparse.Namespace, out: TextIO) -> int:
    base, _, config = _context(namespace)
    target = _target(namespace, base, config)
    done = abandon(open_store(target), PublishOptions(dry_run=namespace.dry_run))
    if namespace.format == "json":
        _emit(_abandon_document(done, target, namespace.dry_run), out)
        return done.code
    for note in done.notes:
        print(note, file=out)
    if done.release is None:
        live = f"release {done.base} is live and complete" if done.base else "nothing has been promoted here yet"
        print(f"{target.url}: nothing to abandon: {live}", file=out)
        return done.code
    before = f"base: release {done.base}" if done.base else "no release before it"
    print(f"{target.url}: release {done.release} was left half applied ({before}, {done.lapsed})", file=out)
    width = max((len(step.key) for step in done.undo), default=0)
    for step in done.undo:
        print(f"  {UNDO_SYMBOLS[step.action]} {step.key:<{width}}  {step.action:<9}  {step.detail}", file=out)
    count = f"{done.writes} key{'' if done.writes == 1 else 's'}"
    if namespace.dry_run:
        after = f"make release {done.base} current again" if done.base else "leave no release current"
        print(f"dry run: would abandon release {done.release} and {after} ({count}); nothing was written", file=out)
    else:
        after = f"release {done.base} is current again" if done.base else "no release is current"
        print(f"abandoned release {done.release}: {after} ({count})", file=out)
    return done.code


@dataclass(frozen=True)
class _LiveKey:
    """One live key of the current release as ``status`` finds it."""

    key: str
    entry: TemplateEntry
    retired: bool  # retired, left in the live path
    expected: str | None  # the ETag the pointer records
    head: Head | None  # what is there now; None: absent
    checked: bool  # False while a release is being applied: the ETags are in flux

    @property
    def drift(self) -> Drift | None:
        """The drift found, or None when the key is what the release left (or was not checked)."""
        if not self.checked or (self.head.etag if self.head else None) == self.expected:
            return None
        return Drift(self.key, self.expected, self.head)

    def to_json(self) -> dict[str, Any]:
        drift = self.drift
        return {
            "key": self.key,
            "retired": self.retired,
            "entry": self.entry.to_json(),
            "etag": self.expected,
            "live": None if self.head is None else self.head.to_json(),
            "check": "drift" if drift else "ok" if self.checked else "unchecked",
            "drift": None if drift is None else drift.describe(),
        }


def _live_keys(store: Store, manifest: Manifest, pointer: Pointer) -> list[_LiveKey]:
    checked = pointer.state is not PointerState.APPLYING
    keys = []
    for key, head in live_heads(store, manifest).items():
        entry = manifest.templates.get(key) or manifest.retired[key]
        retired = key not in manifest.templates
        keys.append(_LiveKey(key, entry, retired, pointer.etags.get(key), head, checked))
    return keys


def _status(namespace: argparse.Namespace, out: TextIO) -> int:
    base, _, config = _context(namespace)
    target = _target(namespace, base, config)
    store = open_store(target)
    state = read_state(store)
    manifest, pointer = state.manifest, state.pointer
    keys = _live_keys(store, manifest, pointer) if manifest is not None and pointer is not None else []
    drifted = sum(1 for key in keys if key.drift)
    if namespace.format == "json":
        _emit(_status_document(target, state, keys), out)
    elif manifest is None or pointer is None:
        print(f"{target.url}: nothing has been promoted here yet", file=out)
    else:
        _status_text(target, manifest, pointer, keys, out)
    return ExitCode.DRIFT if drifted else ExitCode.PROMOTED


def _status_text(target: Target, manifest: Manifest, pointer: Pointer, keys: Sequence[_LiveKey], out: TextIO) -> None:
    print(f"{target.url}: release {_describe(manifest)}", file=out)
    if pointer.state is PointerState.APPLYING:
        print(f"  {applying_note(pointer)}", file=out)
    print(f"  commit {manifest.commit or '-'}{_on(manifest.branch)}, tested {manifest.tested_at or '-'}", file=out)
    width = max((len(key.key) for key in keys), default=0)
    for key in keys:
        entry = key.entry
        if key.retired:
            what = f"retired, still in the live path (--prune deletes it); was {entry.source_path}"
        else:
            what = (
                f"sha256 {entry.sha256[:12]}  from {entry.source_path}{_made(entry)}, published in {entry.published_in}"
            )
        drift = key.drift
        check = f"  DRIFT: {drift.describe()}" if drift else "  ok" if key.checked else ""
        print(f"  {key.key:<{width}}  {what}{check}", file=out)
    for hold in manifest.holds:
        print(f"  {_hold_line(hold)}; nbpromote release-hold {hold.source_path} releases it", file=out)
    drifted = sum(1 for key in keys if key.drift)
    if drifted:
        print(f"  {drifted} live template{'s' if drifted > 1 else ''} drifted: exit {ExitCode.DRIFT:d}", file=out)


def _history(namespace: argparse.Namespace, out: TextIO) -> int:
    base, _, config = _context(namespace)
    target = _target(namespace, base, config)
    store = open_store(target)
    state = read_state(store)
    releases = history(store, state, namespace.limit)
    changes = []
    for index, manifest in enumerate(releases):
        older = releases[index + 1] if index + 1 < len(releases) else None
        if older is None and manifest.previous:
            older = read_manifest(store, manifest.previous)
        changes.append(_hold_changes(manifest, older))
    current = _pointer_state(state.pointer)
    if namespace.format == "json":
        _emit(_history_document(target, releases, changes, current), out)
        return ExitCode.PROMOTED
    if not releases:
        print(f"{target.url}: nothing has been promoted here yet", file=out)
    marks = {
        "live": "  (current)",
        "applying": "  (current, APPLYING: another run is applying it)",
        "interrupted": "  (current, INTERRUPTED: run nbpromote to finish it, or `nbpromote abandon`)",
    }
    for index, (manifest, held) in enumerate(zip(releases, changes, strict=True)):
        mark = marks[current] if index == 0 and current else ""
        print(f"{_describe(manifest)}: {_counts(manifest.changes)}{mark}", file=out)
        for change in held:
            print(f"  {change.line()}", file=out)
    return ExitCode.PROMOTED


def _pointer_state(pointer: Pointer | None) -> str | None:
    """``live``; ``applying`` under a live lease; ``interrupted`` when the run applying it stopped; None: no release."""
    if pointer is None:
        return None
    if pointer.state is PointerState.LIVE:
        return "live"
    return "applying" if pointer.leased(datetime.now(timezone.utc)) else "interrupted"


@dataclass(frozen=True)
class _HoldChange:
    """A hold that a release set, released or dropped, compared with the release before it."""

    change: str  # "set", "released" or "dropped"
    hold: Hold
    reason: str = ""  # why a hold was dropped

    def line(self) -> str:
        hold = self.hold
        if self.change == "set":
            return f"hold set: {hold.source_path}  sha256 {hold.sha256[:12]}"
        why = f"{self.change}: {self.reason}" if self.reason else self.change
        return f"hold {why}: {hold.source_path}  sha256 {hold.sha256[:12]} (set by release {hold.set_in})"

    def to_json(self) -> dict[str, Any]:
        return {"change": self.change, "reason": self.reason or None, "hold": self.hold.to_json()}


def _hold_changes(manifest: Manifest, older: Manifest | None) -> list[_HoldChange]:
    """The holds ``manifest`` set, released or dropped, compared with the release before it."""
    before = older.holds if older else ()
    changes = [_HoldChange("set", hold) for hold in manifest.holds if hold not in before]
    for hold in (h for h in before if h not in manifest.holds):
        if manifest.kind == "release-hold":
            changes.append(_HoldChange("released", hold))
        elif hold.key in manifest.retired or hold.key not in manifest.templates:
            changes.append(_HoldChange("dropped", hold, "gone from git"))
        else:
            why = "its source changed" if manifest.kind == "promote" else "rolled back to these bytes"
            changes.append(_HoldChange("dropped", hold, why))
    return changes


# -- --format json: one document on stdout, from the records --------------------------------------------


def _emit(document: Mapping[str, Any], out: TextIO) -> None:
    """Strict JSON (no NaN), ASCII (any terminal encoding carries it), one document, one trailing newline."""
    try:
        text = json.dumps(document, indent=2, allow_nan=False)
    except ValueError as exc:  # a NaN in a manifest edited by hand: nothing on stdout, one line on stderr
        problem = f"cannot write the answer as strict JSON ({exc}); a record in the target was edited by hand?"
        raise Failed(problem) from None
    out.write(text + "\n")


def _head(schema: str, target: Target) -> dict[str, Any]:
    return {"schema": schema, "version": OUTPUT_VERSION, "target": target.url}


def _status_document(target: Target, state: State, keys: Sequence[_LiveKey]) -> dict[str, Any]:
    manifest, pointer = state.manifest, state.pointer
    applying = pointer is not None and pointer.state is PointerState.APPLYING
    return {
        **_head(STATUS_SCHEMA, target),
        "release": None if manifest is None else manifest.summary_json(),
        "state": _pointer_state(pointer),
        "note": applying_note(pointer) if applying and pointer is not None else None,
        "templates": [key.to_json() for key in keys],
        "holds": [hold.to_json() for hold in manifest.holds] if manifest is not None else [],
        "drifted": sum(1 for key in keys if key.drift),
    }


def _history_document(
    target: Target, releases: Sequence[Manifest], changes: Sequence[Sequence[_HoldChange]], current: str | None
) -> dict[str, Any]:
    entries = [
        {
            **manifest.summary_json(),
            "state": (current or "live") if index == 0 else "superseded",
            "hold_changes": [change.to_json() for change in held],
        }
        for index, (manifest, held) in enumerate(zip(releases, changes, strict=True))
    ]
    return {**_head(HISTORY_SCHEMA, target), "releases": entries}


def _plan_document(
    command: str,
    outcome: Outcome,
    target: Target,
    options: PublishOptions,
    notes: Sequence[str],
    held_back: Sequence[HeldBack] = (),
    hint: str = "",
) -> dict[str, Any]:
    """What promote, rollback or release-hold did, or (``--dry-run``) would do."""
    manifest, current = outcome.manifest, outcome.current
    nothing = outcome.code == ExitCode.NOTHING_TO_DO
    return {
        **_head(PLAN_SCHEMA, target),
        "command": command,
        "dry_run": options.dry_run,
        "nothing_to_do": nothing,
        "release": None if nothing else manifest.summary_json(),
        "current": None if current is None else current.summary_json(),
        "changes": [{**change.to_json(), "detail": _detail(change, manifest)} for change in outcome.plan.changes],
        "hold_changes": [] if nothing else [change.to_json() for change in _hold_changes(manifest, current)],
        "held_back": [_held_back_json(held) for held in held_back],
        "hint": hint or None,
        "notes": list(notes),
    }


def _held_back_json(held: HeldBack) -> dict[str, Any]:
    return {
        "source_path": held.source_path,
        "key": held.key,
        "reasons": list(held.reasons),
        "rerun": list(held.rerun),
        "hold": held.hold,
    }


def _abandon_document(done: Abandoned, target: Target, dry_run: bool) -> dict[str, Any]:
    return {
        **_head(ABANDON_SCHEMA, target),
        "dry_run": dry_run,
        "release": done.release,
        "base": done.base,
        "lapsed": done.lapsed or None,
        "undo": [{"key": step.key, "action": step.action, "detail": step.detail} for step in done.undo],
        "writes": done.writes,
        "notes": list(done.notes),
    }


# -- helpers -----------------------------------------------------------------------------------------


def _context(namespace: argparse.Namespace) -> tuple[Path, Path | None, Config]:
    """The directory to work from, the repository root (None outside git) and the config."""
    base = Path(namespace.directory or ".").absolute()
    if not base.is_dir():
        raise UsageError(f"-C {namespace.directory}: not a directory")
    try:
        state = git_state(base)
    except GitUnusable as exc:
        raise UsageError(str(exc)) from None
    root = state.root if state else None
    return base, root, find_config(base, root)


def _target(namespace: argparse.Namespace, base: Path, config: Config) -> Target:
    if namespace.target:
        return parse_target(namespace.target, base)
    if config.target and config.target_base is not None:
        return parse_target(config.target, config.target_base)
    raise UsageError("no target: pass --target URL, or set target in [tool.nbpromote] of pyproject.toml")


def _report(outcome: Outcome, target: Target, options: PublishOptions, out: TextIO) -> int:
    current = outcome.current
    manifest = outcome.manifest
    for note in outcome.notes:
        print(note, file=out)
    print(f"{target.url}: {'release ' + _describe(current) if current else 'no release yet'}", file=out)
    changes = outcome.plan.changes
    width = max((len(c.key) for c in changes), default=0)
    for change in changes:
        print(
            f"  {SYMBOLS[change.action]} {change.key:<{width}}  {change.action.value:<13}  {_detail(change, manifest)}",
            file=out,
        )
    counts = _counts(manifest.changes)
    if outcome.plan.empty:
        what = "rolled back to" if manifest.rollback_of else "promoted"
        if outcome.code is ExitCode.PROMOTED:  # it finished a release a stopped run left half applied
            print(f"nothing more to do: with that release finished, what is live is what would be {what}", file=out)
        else:
            print(f"nothing to do: what is live is what would be {what}", file=out)
    elif options.dry_run:
        print(f"dry run: would make release {manifest.release} ({counts}); nothing was written", file=out)
    elif manifest.rollback_of:
        print(f"rolled back to release {manifest.rollback_of} as release {manifest.release} ({counts})", file=out)
    else:
        print(f"promoted release {manifest.release} ({counts})", file=out)
    if manifest.kind == "rollback":
        for hold in (h for h in manifest.holds if h.set_in == manifest.release):
            print(
                f"  {_hold_line(hold)}: the next promotions hold it back until its source changes, or "
                f"nbpromote release-hold {hold.source_path}",
                file=out,
            )
    return outcome.code


def _made(entry: TemplateEntry) -> str:
    """`` as the .ipynb its cases ran (jupytext 1.19.7)`` for a text template published as a notebook."""
    return f" as the .ipynb its cases ran ({entry.converted_by})" if entry.converted_sha256 else ""


def _detail(change: Change, manifest: Manifest) -> str:
    after, before = change.after, change.before
    if change.action is Action.ADD and after is not None:
        made = _made(after)
        return f"from {after.source_path}{made}, sha256 {after.sha256[:12]}, cases {', '.join(after.cases) or '-'}"
    if change.action is Action.CHANGE and after is not None and before is not None:
        again = f", back to the bytes of release {after.published_in}" if after.published_in != manifest.release else ""
        return f"sha256 {before.sha256[:12]} -> {after.sha256[:12]}{again}"
    if change.action is Action.RESTORE and after is not None:
        return f"drifted; put back to the bytes of release {after.published_in}"
    if change.action is Action.KEEP and after is not None:
        return f"live since release {after.published_in}"
    if change.action is Action.REVIVE and after is not None:
        return f"retired earlier, live again with the bytes of release {after.published_in} (not rewritten)"
    if change.action is Action.RETIRE:
        source = before.source_path if before is not None else None
        moved = next((key for key, entry in manifest.templates.items() if entry.source_path == source), None)
        if manifest.rollback_of:
            why = f"not in release {manifest.rollback_of}"
        elif moved is not None and PurePosixPath(moved).with_suffix("") == PurePosixPath(change.key).with_suffix(""):
            why = f"{source} goes live as {moved} only (text_templates)"  # a text template: "both" became one
        elif moved is not None:  # the same notebook under another key: the source root is not what it was
            why = f"{source} is now {moved} (source root {manifest.source_root or '.'}/)"
        else:
            why = "gone from git"
        return f"{why}; left in the live path (--prune deletes it)"
    if change.action is Action.KEEP_RETIRED:
        return "left in the live path (--prune deletes it)"
    return "deleted from the live path"


def _describe(manifest: Manifest) -> str:
    kind = f"rollback to {manifest.rollback_of}" if manifest.rollback_of else f"commit {(manifest.commit or '-')[:7]}"
    if manifest.kind == "release-hold":
        kind = "hold released"
    return f"{manifest.release} ({kind}, {manifest.created})"


def _counts(changes: Mapping[str, tuple[str, ...]]) -> str:
    parts = [
        f"{len(changes[a.value])} {a.value}" for a in Action if a is not Action.KEEP_RETIRED and changes.get(a.value)
    ]
    return ", ".join(parts) or "no changes"


def _on(branch: str | None) -> str:
    return f" on {branch}" if branch else ""


if __name__ == "__main__":
    sys.exit(main())
