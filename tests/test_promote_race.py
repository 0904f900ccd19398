"""Promotions racing for one target: exactly one wins, every other one says so and exits CONFLICT (6).

Eight ``nbpromote`` processes race, five rounds each, on a local directory and on S3 (moto's server
over HTTP). A racer is a process of its own that runs the console script's ``main`` once a round
(as a CI job would run ``nbpromote``), with its store wrapped by a gate (``RACER``) so that the
rounds do not depend on machine speed:

- every racer imports first and then waits for the round's start file, so they set off together;
- "read" rounds: each racer, having read the pointer, waits until every racer has read it, so all
  of them plan on the same release and race for the claim while the winner writes live keys;
- "apply" rounds: the racer that won the claim stops after its first live write until every other
  racer has finished, so the others meet a live "applying" lease, or the pointer moving under them;
- "late" rounds: as "read", but one racer looks at the live keys only after the winner has replaced
  one: what the probe saw as drift, which must be a conflict.

The racers get a lease of 10 minutes instead of 60 s, so that a paused winner's lease cannot run
out on a slow machine. Everything else is the code a user runs.
"""

from __future__ import annotations

import collections
import hashlib
import json
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from pytest_notebooks.errors import Conflict
from pytest_notebooks.promote.models import HIDDEN, POINTER_KEY, Candidate, Head, Inputs, Pointer, PointerState, Stored
from pytest_notebooks.promote.publish import PublishOptions, history, promote, read_state
from pytest_notebooks.promote.settings import parse_target
from pytest_notebooks.promote.store import Store, open_store
from tests.notebooks import PARAMS, write_notebook
from tests.promote_repo import REPORT, VID_AGG, NotebookRepo, Run, change, nbpromote, two_templates

if TYPE_CHECKING:
    from tests.s3server import S3

pytest_plugins = ("tests.s3server",)
pytestmark = pytest.mark.race  # processes racing, seconds a test: not in make quick

ROOT = Path(__file__).resolve().parent.parent  # the racers import the code under test from here
RACERS = 8
ROUNDS = 5
PATIENCE = 300.0  # seconds before any wait gives up: a broken race fails instead of hanging CI

RACER = textwrap.dedent(
    """
    import io, json, sys, time, traceback
    from contextlib import redirect_stderr
    from pathlib import Path
    from pytest_notebooks.promote import cli, publish
    from pytest_notebooks.promote.models import HIDDEN, POINTER_KEY

    gate, name, count, rounds, argv = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5:]
    publish.LEASE_SECONDS = 600  # a winner paused below must not lose its lease on a slow machine


    def wait(done, what):
        deadline = time.monotonic() + 300
        while not done():
            if time.monotonic() > deadline:
                sys.exit(f"racer {name}: gave up waiting for {what}")
            time.sleep(0.01)


    class Gated:
        def __init__(self, inner, here, mode):
            self.inner, self.target, self.here, self.mode = inner, inner.target, here, mode
            self.has_read = self.has_written = False

        def read(self, key):
            stored = self.inner.read(key)
            if key == POINTER_KEY and self.mode in ("read", "late") and not self.has_read:
                self.has_read = True
                (self.here / f"read-{name}").touch()
                wait(lambda: len(list(self.here.glob("read-*"))) >= count, "every racer to read the pointer")
            return stored

        def head(self, key):
            if self.mode == "late" and name == "racer0":  # looks at the live keys after the winner wrote one
                wait((self.here / "winner").exists, "another racer to write a live key")
            return self.inner.head(key)

        def put(self, key, data, **kwargs):
            etag = self.inner.put(key, data, **kwargs)
            if self.mode in ("apply", "late") and not key.startswith(HIDDEN) and not self.has_written:
                self.has_written = True
                (self.here / "winner").write_text(name)
                if self.mode == "apply":
                    wait((self.here / "go").exists, "the other racers to finish")
            return etag

        def delete(self, key, **kwargs):
            self.inner.delete(key, **kwargs)


    opened = cli.open_store
    (gate / f"ready-{name}").touch()
    for round_ in range(rounds):
        here = gate / f"round-{round_}"
        wait((here / "start").exists, f"round {round_}")
        mode = (here / "start").read_text()
        cli.open_store = lambda target: Gated(opened(target), here, mode)
        out, err = io.StringIO(), io.StringIO()
        try:
            with redirect_stderr(err):
                code = cli.main(argv, stdout=out, stderr=err)
        except Exception:  # a bug: the round fails with the traceback
            code, err = 1, io.StringIO(traceback.format_exc())
        (here / f"{name}.tmp").write_text(json.dumps({"code": code, "out": out.getvalue(), "err": err.getvalue()}))
        (here / f"{name}.tmp").rename(here / f"{name}.json")
    """
)


@dataclass(frozen=True)
class Racer:
    name: str
    code: int
    out: str
    err: str

    @property
    def text(self) -> str:
        return self.out + self.err


@dataclass(frozen=True)
class Target:
    """Where the racers promote to; ``root`` for a local directory, None for S3."""

    url: str
    root: Path | None

    def store(self) -> Store:
        return open_store(parse_target(self.url, Path.cwd()))


@pytest.fixture(params=["local", "s3"])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> Target:
    if request.param == "local":
        return Target(str(tmp_path / "live"), tmp_path / "live")
    s3: S3 = request.getfixturevalue("s3")  # also points this process's (and the racers') boto3 at it
    return Target(f"s3://{s3.bucket}/jobs/templates/", None)


@pytest.fixture
def repo(tmp_path: Path) -> NotebookRepo:
    return two_templates(tmp_path / "repo")


def released(run: Run | Racer) -> str:
    assert run.code == 0, run.text
    return run.out.split("promoted release ")[1].split()[0]


class Race:
    """``count`` racer processes, the i-th promoting ``repos[i % len(repos)]`` each round."""

    def __init__(
        self, repos: Sequence[NotebookRepo], target: Target, gate: Path, rounds: int, count: int = RACERS
    ) -> None:
        self.gate, self.count, self.round = gate, count, 0
        gate.mkdir()
        self.names = [f"racer{index}" for index in range(count)]
        self.processes = {}
        for index, name in enumerate(self.names):
            argv = ["-C", str(repos[index % len(repos)].root), "--target", target.url]
            with (gate / f"{name}.log").open("wb") as log:
                self.processes[name] = subprocess.Popen(
                    [sys.executable, "-c", RACER, str(gate), name, str(count), str(rounds), *argv],
                    cwd=ROOT,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
        try:
            _wait(lambda: len(list(gate.glob("ready-*"))) == count or bool(self.dead()), "the racers to start")
        except BaseException:
            self.__exit__()
            raise

    def __enter__(self) -> Race:
        return self

    def __exit__(self, *exc: object) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.kill()
            process.wait()

    def dead(self) -> list[str]:
        return [name for name, process in self.processes.items() if process.poll() is not None]

    def begin(self, mode: str) -> Path:
        """Start the next round, gated by ``mode`` ("read", "apply", see the docstring); its directory."""
        here = self.gate / f"round-{self.round}"
        self.round += 1
        here.mkdir()
        (here / "start.tmp").write_text(mode)
        (here / "start.tmp").rename(here / "start")
        return here

    def run(self, mode: str) -> list[Racer]:
        """One round: what each racer did."""
        here = self.begin(mode)

        def finished() -> int:
            return len({p.stem for p in here.glob("*.json")} | set(self.dead()))

        if mode == "apply":  # the winner waits for the others (or, if something is broken, for nothing)
            _wait(
                lambda: finished() >= self.count or ((here / "winner").exists() and finished() >= self.count - 1),
                "every racer but the winner to finish",
            )
            (here / "go").touch()
        _wait(lambda: finished() >= self.count, "the racers to finish")
        racers = []
        for name in self.names:
            result = here / f"{name}.json"
            if result.exists():
                done = json.loads(result.read_text())
                racers.append(Racer(name, done["code"], done["out"], done["err"]))
            else:  # the process died: its log says why
                racers.append(Racer(name, -1, "", (self.gate / f"{name}.log").read_text()))
        return racers


def _wait(done: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + PATIENCE
    while not done():
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.02)


def _show(racers: Sequence[Racer]) -> str:
    return "\n".join(f"--- {r.name}: exit {r.code}\n{r.out}{r.err}" for r in racers)


def assert_consistent(repo: NotebookRepo, target: Target, releases: Sequence[str]) -> None:
    """The pointer names the newest release, live; history is exactly ``releases``; no drift, no litter."""
    store = target.store()
    state = read_state(store)
    assert state.pointer is not None
    assert (state.pointer.release, state.pointer.state) == (releases[0], PointerState.LIVE)
    assert [m.release for m in history(store, state)] == list(releases)
    status = nbpromote("status", "-C", repo.root, "--target", target.url)
    assert status.code == 0, status.text
    assert status.out.count("  ok") == 2, status.out
    assert "DRIFT" not in status.out
    assert "INTERRUPTED" not in status.out
    if target.root is not None:
        assert not list(target.root.rglob(".nbpromote-*.tmp"))


# -- eight racers, five rounds --------------------------------------------------------------------------


def test_racing_promotions_one_wins_the_others_report_a_conflict(
    repo: NotebookRepo, target: Target, tmp_path: Path
) -> None:
    first = released(nbpromote("-C", repo.root, "--target", target.url))
    # four CI jobs' checkouts, two racers each: a commit promoted twice in the same second also
    # collides on the release's name, another way of losing
    clones = [NotebookRepo.clone(repo, tmp_path / f"job{index}") for index in range(RACERS // 2)]
    releases = [first]
    kinds: collections.Counter[str] = collections.Counter()
    with Race(clones, target, tmp_path / "gate", ROUNDS) as race:
        for round_ in range(ROUNDS):
            for index, clone in enumerate(clones):
                change(clone, (VID_AGG, REPORT)[index % 2], f"job{index}-round{round_}")
            mode = ("read", "apply", "late", "apply", "late")[round_]
            racers = race.run(mode)
            shown = f"round {round_} ({mode}):\n{_show(racers)}"

            assert sorted(r.code for r in racers) == [0] + [6] * (RACERS - 1), shown
            winner = next(r for r in racers if r.code == 0)
            release = released(winner)
            assert release.startswith(f"{round_ + 2:04d}-")
            for racer in racers:
                assert "finished release" not in racer.text, shown  # nobody finishes a live run's release
                assert "refused" not in racer.text, shown
                assert "drift" not in racer.text.lower(), shown
            for loser in (r for r in racers if r is not winner):
                assert loser.out == "", shown
                message = loser.err.strip()
                assert message.startswith("nbpromote: conflict: another promotion "), shown
                assert "\n" not in message, shown
                assert f"release {round_ + 2:04d}-" in message, shown  # names the release of this round it lost to
                assert "nothing live was changed by this run" in message or "nothing was changed by this run" in message
                assert "run nbpromote again" in message, shown
                assert "`nbpromote status` shows it" in message, shown
                if "is running" in message and "same moment" not in message:
                    assert f"release {release} is being applied by " in message, shown
                    assert "whose lease expires at " in message, shown
                if mode == "late" and loser.name == "racer0":  # the drift it saw was the winner's writes
                    assert "another promotion won" in message or "another promotion is running" in message, shown
                    assert "same moment" not in message, shown
                    kinds["saw the winner's writes as drift"] += 1
                elif "same moment" in message:
                    kinds["lost the release's name"] += 1
                elif "is running" in message:
                    kinds["met a live lease"] += 1
                else:
                    kinds["saw the winner's release live"] += 1
            releases.insert(0, release)
            assert_consistent(clones[0], target, releases)
    print(f"\n{target.url}: {ROUNDS} rounds x {RACERS} racers, one exit 0 and 7 exit 6 a round; losers: {dict(kinds)}")


# -- a run holding the target, a run that died -------------------------------------------------------


@pytest.mark.parametrize(
    ("target", "lapse"), [("local", "expired"), ("s3", "expired"), ("local", "no lease")], indirect=["target"]
)
def test_a_killed_run_holds_the_target_until_its_lease_expires(
    repo: NotebookRepo, target: Target, tmp_path: Path, lapse: str
) -> None:
    first = released(nbpromote("-C", repo.root, "--target", target.url))
    change(repo, VID_AGG, "v2")
    change(repo, REPORT, "v2")
    killed = kill_while_applying(repo, target, tmp_path / "gate")
    store = target.store()
    state = read_state(store)
    assert state.pointer is not None
    assert state.etag is not None
    pointer = state.pointer
    assert pointer.state is PointerState.APPLYING
    assert pointer.owner is not None
    assert pointer.owner.endswith(f" pid {killed}")
    assert pointer.leased(datetime.now(timezone.utc))  # a 10-minute lease: nobody can tell it died
    half = pointer.release
    before = snapshot(store)

    for argv in ([], ["--dry-run"], ["rollback", "1"]):
        result = nbpromote(*argv, "-C", repo.root, "--target", target.url)
        assert result.code == 6, result.text
        assert result.out == ""
        message = result.err.strip()
        assert message.startswith(
            f"nbpromote: conflict: another promotion is running: release {half} is being applied by "
            f"{pointer.owner}, whose lease expires at {pointer.expires} (in "
        )
        done = "a dry run now would plan against a release that is about to change" if argv else ""
        assert message.endswith(
            f" s); {done or 'nothing was changed by this run'}; "
            "run nbpromote again when it has finished; `nbpromote status` shows it"
        ) or (argv == ["rollback", "1"] and "nothing was changed by this run; run nbpromote again" in message)
    assert snapshot(store) == before

    # its lease runs out (or it is a pointer from an nbpromote without leases): the next run finishes it
    if lapse == "expired":
        dead = replace(pointer, expires=_iso(datetime.now(timezone.utc) - timedelta(seconds=1)))
        why = f"the lease of {pointer.owner} expired at {dead.expires}"
    else:
        dead = replace(pointer, owner=None, expires=None)
        why = "written by an nbpromote without leases"
    rewrite_pointer(store, dead, state.etag)
    dry = nbpromote("--dry-run", "-C", repo.root, "--target", target.url)
    assert dry.code == 1, dry.text
    assert f"release {half} was interrupted while its live keys were being replaced ({why})" in dry.err
    result = nbpromote("-C", repo.root, "--target", target.url)
    assert result.code == 0, result.text
    assert f"finished release {half}, which an earlier run had left half applied ({why})" in result.out
    assert_consistent(repo, target, [half, first])


def test_racers_finish_a_dead_run_once(repo: NotebookRepo, target: Target, tmp_path: Path) -> None:
    first = released(nbpromote("-C", repo.root, "--target", target.url))
    change(repo, VID_AGG, "v2")
    change(repo, REPORT, "v2")
    kill_while_applying(repo, target, tmp_path / "killed")
    store = target.store()
    state = read_state(store)
    assert state.pointer is not None
    assert state.etag is not None
    half = state.pointer.release
    rewrite_pointer(store, replace(state.pointer, expires=state.pointer.updated), state.etag)  # its lease ran out

    with Race([repo], target, tmp_path / "gate", rounds=1, count=4) as race:
        racers = race.run("read")
    shown = _show(racers)
    assert sorted(r.code for r in racers) == [0, 6, 6, 6], shown
    winner = next(r for r in racers if r.code == 0)
    assert f"finished release {half}, which an earlier run had left half applied" in winner.out
    for loser in (r for r in racers if r is not winner):
        assert "finished release" not in loser.text, shown
        assert loser.err.startswith("nbpromote: conflict: another promotion "), shown
        assert f"release {half}" in loser.err, shown
        assert "nothing was changed by this run" in loser.err, shown
    assert_consistent(repo, target, [half, first])


def kill_while_applying(repo: NotebookRepo, target: Target, gate: Path) -> int:
    """A run that claims, replaces one live key and is killed there (SIGKILL); returns its process id."""
    with Race([repo], target, gate, rounds=1, count=1) as race:
        here = race.begin("apply")
        _wait(lambda: (here / "winner").exists() or bool(race.dead()), "the run to write a live key")
        assert not race.dead(), (gate / "racer0.log").read_text()
        process = race.processes["racer0"]
        process.kill()
        process.wait()
    return process.pid


def rewrite_pointer(store: Store, pointer: Pointer, etag: str) -> str:
    """Swap the pointer as another nbpromote would (If-Match), through the store API."""
    data = (json.dumps(pointer.to_json(), indent=2) + "\n").encode()
    return store.put(POINTER_KEY, data, if_match=etag, content_type="application/json", metadata={})


def snapshot(store: Store) -> dict[str, bytes | None]:
    return {key: (s.data if (s := store.read(key)) else None) for key in ("vid_agg.ipynb", "report.ipynb", POINTER_KEY)}


def _iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")


# -- a local store's temporary files -----------------------------------------------------------------


def test_temporary_files_of_killed_runs_are_removed(repo: NotebookRepo, tmp_path: Path) -> None:
    live = tmp_path / "live"
    released(nbpromote("-C", repo.root, "--target", live))
    stale = [live / ".nbpromote-k1lled.tmp", live / HIDDEN / "objects/.nbpromote-x7.tmp", live / "sub/.nbpromote-q.tmp"]
    fresh = live / ".nbpromote-writing.tmp"  # may be a write in progress on a machine whose lock we cannot see
    other = live / ".other-tool.tmp"  # not ours
    long_ago = time.time() - 600
    for path in (*stale, fresh, other):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b'{"cells": [')
        if path is not fresh:
            os.utime(path, (long_ago, long_ago))
    names = ".nbpromote/objects/.nbpromote-x7.tmp, .nbpromote-k1lled.tmp, sub/.nbpromote-q.tmp"
    what = f"3 temporary file(s) that killed nbpromote runs left in {live} (older than 5 minutes): {names}"

    dry = nbpromote("-C", repo.root, "--target", live, "--dry-run")
    assert dry.code == 3, dry.text
    assert f"found {what}; a run without --dry-run removes them\n" in dry.out
    assert all(path.exists() for path in stale)
    result = nbpromote("-C", repo.root, "--target", live)
    assert result.code == 3, result.text
    assert [line for line in result.out.splitlines() if "temporary file" in line] == [f"removed {what}"]
    assert not any(path.exists() for path in stale)
    assert fresh.exists()
    assert other.exists()
    assert "temporary file" not in nbpromote("-C", repo.root, "--target", live).out


# -- the lease is renewed while applying; a run that lost it stops -----------------------------------


class Clock:
    """A clock the test moves: the lease's time, without sleeping."""

    def __init__(self) -> None:
        self.now = datetime(2026, 1, 1, tzinfo=timezone.utc)

    def __call__(self) -> datetime:
        return self.now


class Hooked:
    """A real store that calls ``after_put(key)`` after each write and keeps each pointer written."""

    def __init__(self, inner: Store, after_put: Callable[[str], None]) -> None:
        self.inner = inner
        self.target = inner.target
        self.after_put = after_put
        self.pointers: list[Pointer] = []

    def read(self, key: str) -> Stored | None:
        return self.inner.read(key)

    def head(self, key: str) -> Head | None:
        return self.inner.head(key)

    def put(
        self, key: str, data: bytes, *, if_match: str | None, content_type: str, metadata: Mapping[str, str]
    ) -> str:
        etag = self.inner.put(key, data, if_match=if_match, content_type=content_type, metadata=metadata)
        if key == POINTER_KEY:
            self.pointers.append(Pointer.from_json(json.loads(data)))
        self.after_put(key)
        return etag

    def delete(self, key: str, *, if_match: str) -> None:
        self.inner.delete(key, if_match=if_match)


def templates(directory: Path, marker: str, count: int = 4) -> Inputs:
    """``count`` tested templates, built here rather than gathered: these tests are about the store."""
    candidates = []
    for index in range(count):
        data = write_notebook(directory / f"t{index}.ipynb", [PARAMS, f"print({marker!r})"]).read_bytes()
        sha256 = hashlib.sha256(data).hexdigest()
        candidates.append(Candidate(f"t{index}.ipynb", f"t{index}.ipynb", sha256, len(data), ("a",), None, None, data))
    commit = hashlib.sha1(marker.encode()).hexdigest()  # noqa: S324 -- a made-up commit id
    return Inputs(commit, "main", None, "", tuple(candidates), frozenset(), ())


def test_a_long_apply_renews_its_lease(tmp_path: Path) -> None:
    clock = Clock()
    store = open_store(parse_target(str(tmp_path / "live"), tmp_path))
    promote(store, templates(tmp_path / "v1", "v1"), PublishOptions(), clock)
    start = clock.now

    def slow(key: str) -> None:  # each live write takes 25 s, longer than the 60 s lease over four keys
        if not key.startswith(HIDDEN):
            clock.now += timedelta(seconds=25)

    hooked = Hooked(store, slow)
    promote(hooked, templates(tmp_path / "v2", "v2"), PublishOptions(), clock)
    # the claim, a renewal before the 2nd, 3rd and 4th write and before the commit, then the commit
    states = [p.state for p in hooked.pointers]
    assert states == [PointerState.APPLYING] * 5 + [PointerState.LIVE]
    assert [p.expires for p in hooked.pointers[:5]] == [_iso(start + timedelta(seconds=60 + 25 * i)) for i in range(5)]
    assert hooked.pointers[-1].expires is None


def test_a_run_whose_lease_ran_out_and_was_taken_over_stops(tmp_path: Path) -> None:
    clock = Clock()
    store = open_store(parse_target(str(tmp_path / "live"), tmp_path))
    promote(store, templates(tmp_path / "v1", "v1"), PublishOptions(), clock)
    live_writes: list[str] = []

    def stalls_then_is_taken_over(key: str) -> None:
        if key.startswith(HIDDEN):
            return
        live_writes.append(key)
        if len(live_writes) == 1:  # this run stalls for two minutes; another run finds its lease expired
            clock.now += timedelta(seconds=120)
            stored = store.read(POINTER_KEY)
            assert stored is not None
            other = replace(
                Pointer.from_json(json.loads(stored.data)), owner="ci@elsewhere pid 7", expires="2999-01-01T00:00:00Z"
            )
            rewrite_pointer(store, other, stored.etag)

    with pytest.raises(Conflict) as conflict:
        promote(Hooked(store, stalls_then_is_taken_over), templates(tmp_path / "v2", "v2"), PublishOptions(), clock)
    message = str(conflict.value)
    assert message.startswith("another promotion is running: release 0002-")
    assert "is being applied by ci@elsewhere pid 7, whose lease expires at 2999-01-01T00:00:00Z" in message
    assert "this run's lease on release 0002-" in message
    assert "ran out before it could renew it, and the pointer moved; this run stopped applying" in message
    assert live_writes == ["t0.ipynb"]  # it wrote no other live key
    state = read_state(store)
    assert state.pointer is not None
    assert state.pointer.owner == "ci@elsewhere pid 7"  # and did not touch the other run's pointer
