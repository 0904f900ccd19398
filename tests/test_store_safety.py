"""Store safety (issue 20): a template name never wedges a target, a stuck release is undone with one
command, and a local store's lock names a holder that stopped.

Real git repositories, a real S3 server (moto over HTTP, ``tests.s3server``) and real ``nbpromote``
runs; nothing of boto3 is patched. Stuck releases are made for real: a file where a directory must
go, and (as in test_promote_cli.py) a Ctrl-C raised by a wrapper around the real store.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from pytest_notebooks.promote import cli
from pytest_notebooks.promote.models import HIDDEN, POINTER_KEY, Head, Stored
from pytest_notebooks.promote.settings import parse_target
from pytest_notebooks.promote.store import Store, open_store
from tests.promote_repo import NotebookRepo, Run, change, live_stamp, nbpromote, promoted

if TYPE_CHECKING:
    from tests.s3server import S3

pytest_plugins = ("tests.s3server",)

VID_AGG = "notebooks/vid_agg.ipynb"
REPORT = "notebooks/report.ipynb"
CAFE = "notebooks/café.ipynb"
PREFIX = "jobs/templates/"


@dataclass
class Live:
    """A target as the scheduler sees it: its URL, and its keys read from outside nbpromote."""

    url: str
    get: Callable[[str], bytes | None]
    keys: Callable[[], list[str]]
    s3: S3 | None = None

    def snapshot(self) -> dict[str, bytes | None]:
        return {key: self.get(key) for key in self.keys()}

    def pointer(self) -> dict[str, object]:
        data = self.get(POINTER_KEY)
        assert data is not None
        document: dict[str, object] = json.loads(data)
        return document


def _local(root: Path) -> Live:
    def get(key: str) -> bytes | None:
        path = root / key
        return path.read_bytes() if path.is_file() else None

    def keys() -> list[str]:
        lock = root / HIDDEN / "lock"
        found = (p for p in root.rglob("*") if p.is_file() and p != lock) if root.exists() else ()
        return sorted(p.relative_to(root).as_posix() for p in found)

    return Live(str(root), get, keys)


def _s3(s3: S3) -> Live:
    return Live(
        f"s3://{s3.bucket}/{PREFIX}",
        lambda key: s3.get(PREFIX + key),
        lambda: [key[len(PREFIX) :] for key in s3.keys(PREFIX)],
        s3,
    )


@pytest.fixture(params=["local", "s3"])
def live(request: pytest.FixtureRequest, tmp_path: Path) -> Live:
    if request.param == "local":
        return _local(tmp_path / "live")
    return _s3(request.getfixturevalue("s3"))


@pytest.fixture
def repo(tmp_path: Path) -> NotebookRepo:
    repo = NotebookRepo(tmp_path / "repo")
    repo.notebook(VID_AGG)
    (repo.root / "pyproject.toml").write_text('[tool.nbpromote]\nsource_root = "notebooks"\n')
    repo.commit("templates")
    repo.results()
    return repo


def run(repo: NotebookRepo, live: Live, *args: str) -> Run:
    return nbpromote(*args, "-C", repo.root, "--target", live.url)


# -- 1. a template name never wedges a target ---------------------------------------------------------


def test_a_non_ascii_name_goes_live_and_the_target_keeps_working(repo: NotebookRepo, live: Live) -> None:
    repo.notebook(CAFE)
    repo.commit("café")
    repo.results()
    first = promoted(run(repo, live))
    assert live_stamp(live.get("café.ipynb"))["source_path"] == CAFE
    if live.s3 is not None:  # S3 metadata is ASCII: the path is RFC 2047-encoded, as S3 itself does
        head = live.s3.client().head_object(Bucket=live.s3.bucket, Key=PREFIX + "café.ipynb")
        assert head["Metadata"]["source-path"] == "=?UTF-8?B?bm90ZWJvb2tzL2NhZsOpLmlweW5i?="
        assert head["Metadata"]["release"] == first
        # and nbpromote's store reads it back decoded
        seen = open_store(parse_target(live.url, repo.root)).head("café.ipynb")
        assert seen is not None
        assert seen.metadata["source-path"] == CAFE
    status = nbpromote("status", "-C", repo.root, "--target", live.url)
    assert status.code == 0, status.text
    assert status.out.count("  ok") == 2, status.out

    change(repo, CAFE, "v2")
    second = promoted(run(repo, live))
    assert live_stamp(live.get("café.ipynb"))["release"] == second
    back = nbpromote("rollback", "1", "-C", repo.root, "--target", live.url)
    promoted(back)
    assert live_stamp(live.get("café.ipynb"))["release"] == first
    assert live.pointer()["state"] == "live"


@pytest.mark.parametrize(
    ("name", "shown"),
    [("notebooks/new\nline.ipynb", "'\\n'"), ("notebooks/tab\there.ipynb", "'\\t'")],
)
def test_a_name_that_cannot_be_stored_is_refused_before_anything_is_written(
    repo: NotebookRepo, live: Live, name: str, shown: str
) -> None:
    first = promoted(run(repo, live))
    before = live.snapshot()
    repo.notebook(name)
    repo.commit("a name with a control character")
    repo.results()

    for argv in ((), ("--dry-run",)):
        result = run(repo, live, *argv)
        assert result.code == 4, result.text
        lines = result.err.splitlines()
        assert lines[0] == (
            f"nbpromote: refused: {name!r}: its name has a control character ({shown}), which S3 keys and "
            "metadata cannot carry safely"
        ), result.err
        assert lines[1] == (
            "  hint: rename the notebook (git mv) to a name without control characters, commit, test and "
            "promote again; nothing was written"
        )
        assert len(lines) == 2
        assert live.snapshot() == before

    repo.repo.git.mv(name, "notebooks/renamed.ipynb")
    repo.repo.git.mv(name[: -len(".ipynb")] + ".yaml", "notebooks/renamed.yaml")
    repo.cases["notebooks/renamed.ipynb"] = repo.cases.pop(name)
    repo.commit("renamed")
    repo.results()
    second = promoted(run(repo, live))
    assert live_stamp(live.get("renamed.ipynb"))["release"] == second
    assert live.pointer()["release"] == second
    assert second != first


# -- 2. a stuck release is undone with one command ----------------------------------------------------


def test_a_release_stuck_on_a_key_that_cannot_be_written_is_abandoned_with_one_command(
    repo: NotebookRepo, tmp_path: Path
) -> None:
    root = tmp_path / "live"
    live = _local(root)
    url = parse_target(live.url, repo.root).url
    first = promoted(run(repo, live))
    nothing = run(repo, live, "abandon")
    assert nothing.code == 3, nothing.text
    assert nothing.out == f"{url}: nothing to abandon: release {first} is live and complete\n"

    repo.notebook("notebooks/a_new.ipynb")
    repo.notebook("notebooks/sub/new.ipynb")
    repo.commit("two new templates")
    repo.results()
    (root / "sub").write_text("a scheduler's log file, where nbpromote needs a directory\n")
    failed = run(repo, live)
    assert failed.code == 1, failed.text
    pointer = live.pointer()
    assert pointer["state"] == "applying"
    stuck = str(pointer["release"])
    assert live.get("a_new.ipynb") is not None  # half applied: one key written, the next one failed
    remedy = (
        f"release {stuck} stays half applied: run `nbpromote abandon` to put release {first} back, or remove "
        "the cause and run nbpromote again to finish it"
    )
    assert failed.err == f"nbpromote: failed: cannot write {root}/sub/new.ipynb: File exists; {remedy}\n"

    # every later run names the way out, instead of failing the same way for good; each run that
    # tries takes the lease over and ends it when it fails, so the lease named is the last run's
    for argv in ((), ("rollback", "1")):
        lapsed = f"the lease of {live.pointer()['owner']} expired at {live.pointer()['expires']}"
        again = run(repo, live, *argv)
        assert again.code == 1, again.text
        assert again.err == (
            f"nbpromote: failed: finishing release {stuck}, which an earlier run left half applied ({lapsed}), "
            f"failed: cannot write {root}/sub/new.ipynb: File exists; {remedy}\n"
        )
    dry = run(repo, live, "--dry-run")
    assert dry.code == 1, dry.text
    assert dry.err.endswith(
        f"; run nbpromote without --dry-run to finish it first, or `nbpromote abandon` to put release {first} "
        "back (`nbpromote status` shows it)\n"
    )
    status = nbpromote("status", "-C", repo.root, "--target", live.url)
    assert f"or `nbpromote abandon` to put release {first} back" in status.out
    history = nbpromote("history", "-C", repo.root, "--target", live.url)
    assert "(current, INTERRUPTED: run nbpromote to finish it, or `nbpromote abandon`)" in history.out

    lapsed = f"the lease of {live.pointer()['owner']} expired at {live.pointer()['expires']}"  # the rollback's
    before = live.snapshot()
    plan = run(repo, live, "abandon", "--dry-run")
    assert plan.code == 0, plan.text
    assert plan.out.endswith(
        f"dry run: would abandon release {stuck} and make release {first} current again (1 key); nothing was written\n"
    )
    assert live.snapshot() == before
    done = run(repo, live, "abandon")
    assert done.code == 0, done.text
    assert done.out == (
        f"{url}: release {stuck} was left half applied (base: release {first}, {lapsed})\n"
        f"  x a_new.ipynb    deleted    added by release {stuck}, not in release {first}\n"
        "  = sub/new.ipynb  untouched  never written\n"
        f"abandoned release {stuck}: release {first} is current again (1 key)\n"
    )
    assert live.get("a_new.ipynb") is None
    assert (live.pointer()["release"], live.pointer()["state"]) == (first, "live")
    status = nbpromote("status", "-C", repo.root, "--target", live.url)
    assert status.code == 0, status.text
    assert "INTERRUPTED" not in status.out
    assert status.out.count("  ok") == 1
    assert nbpromote("history", "-C", repo.root, "--target", live.url).out.startswith(first)

    # the cause removed, the next promotion goes through
    (root / "sub").unlink()
    change(repo, VID_AGG, "v2")
    third = promoted(run(repo, live))
    assert live_stamp(live.get("sub/new.ipynb"))["release"] == third


def test_abandoning_a_stuck_first_release_removes_what_it_wrote(repo: NotebookRepo, tmp_path: Path) -> None:
    root = tmp_path / "live"
    live = _local(root)
    repo.notebook("notebooks/zz/new.ipynb")
    repo.commit("a template in a directory")
    repo.results()
    root.mkdir()
    (root / "zz").write_text("in the way\n")
    failed = run(repo, live)
    assert failed.code == 1, failed.text
    stuck = str(live.pointer()["release"])
    assert failed.err.endswith(
        f"; release {stuck} stays half applied: run `nbpromote abandon` to remove what it wrote, or remove the "
        "cause and run nbpromote again to finish it\n"
    )
    assert live.get("vid_agg.ipynb") is not None

    done = run(repo, live, "abandon")
    assert done.code == 0, done.text
    assert done.out.splitlines()[1:] == [
        f"  x vid_agg.ipynb  deleted    added by release {stuck}, not in any release before it",
        "  = zz/new.ipynb   untouched  never written",
        f"abandoned release {stuck}: no release is current (1 key)",
    ]
    assert live.get("vid_agg.ipynb") is None
    assert live.get(POINTER_KEY) is None
    status = nbpromote("status", "-C", repo.root, "--target", live.url)
    assert status.out.endswith(": nothing has been promoted here yet\n")


class Interrupted:
    """A real store whose run is stopped by Ctrl-C right before it would commit the release."""

    def __init__(self, inner: Store) -> None:
        self.inner = inner
        self.target = inner.target

    def read(self, key: str) -> Stored | None:
        return self.inner.read(key)

    def head(self, key: str) -> Head | None:
        return self.inner.head(key)

    def put(
        self, key: str, data: bytes, *, if_match: str | None, content_type: str, metadata: Mapping[str, str]
    ) -> str:
        if key == POINTER_KEY and json.loads(data)["state"] == "live":
            raise KeyboardInterrupt  # every live key is written; the CI runner cancels the job
        return self.inner.put(key, data, if_match=if_match, content_type=content_type, metadata=metadata)

    def delete(self, key: str, *, if_match: str) -> None:
        self.inner.delete(key, if_match=if_match)


def test_abandon_puts_back_every_key_a_stopped_release_wrote(
    repo: NotebookRepo, live: Live, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo.notebook(REPORT, cases=("daily",))
    repo.commit("report")
    repo.results()
    first = promoted(run(repo, live))
    base = {key: live.get(key) for key in ("vid_agg.ipynb", "report.ipynb")}
    repo.notebook(VID_AGG, "v2", cases=repo.cases[VID_AGG])
    repo.remove(REPORT)
    repo.notebook("notebooks/new.ipynb")
    repo.commit("changed, removed, added")
    repo.results()
    with monkeypatch.context() as patched:
        patched.setattr(cli, "open_store", lambda target: Interrupted(open_store(target)))
        with pytest.raises(KeyboardInterrupt):
            run(repo, live, "--prune")
    stuck = str(live.pointer()["release"])
    assert live.pointer()["state"] == "applying"
    assert live.get("report.ipynb") is None  # pruned
    assert live.get("vid_agg.ipynb") != base["vid_agg.ipynb"]
    assert live.get("new.ipynb") is not None

    done = run(repo, live, "abandon")
    assert done.code == 0, done.text
    lines = done.out.splitlines()
    assert lines[1:] == [
        f"  x new.ipynb      deleted    added by release {stuck}, not in release {first}",
        f"  + report.ipynb   restored   pruned by release {stuck}; release {first}'s bytes again",
        f"  ~ vid_agg.ipynb  put back   release {first}'s bytes again",
        f"abandoned release {stuck}: release {first} is current again (3 keys)",
    ]
    assert {key: live.get(key) for key in base} == base
    assert live.get("new.ipynb") is None
    assert (live.pointer()["release"], live.pointer()["state"]) == (first, "live")
    status = nbpromote("status", "-C", repo.root, "--target", live.url)
    assert status.code == 0, status.text
    assert status.out.count("  ok") == 2, status.out
    assert "DRIFT" not in status.out
    assert run(repo, live, "abandon").code == 3

    change(repo, VID_AGG, "v3")
    third = promoted(run(repo, live, "--prune"))
    assert live_stamp(live.get("new.ipynb"))["release"] == third
    assert live.get("report.ipynb") is None


# -- 3. a local store's lock names a holder that stopped ----------------------------------------------

PATIENCE = 300.0  # seconds before the test gives up waiting for an event: generous, never a timing


def _wait_for(done: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + PATIENCE
    while not done():
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.02)


def _process_state(pid: int) -> str:
    """The state letter Linux shows for a process: "T" when stopped."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]


def _locked_by_someone(lock: Path) -> bool:
    """Whether another process holds the store's lock now (tried without waiting)."""
    fd = os.open(lock, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # also releases it, if this process got it
    return False


@pytest.mark.skipif(sys.platform != "linux", reason="SIGSTOP, and /proc to tell a stopped process")
def test_a_stopped_nbpromote_holding_the_lock_is_named_and_the_next_run_gives_up(
    repo: NotebookRepo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "live"
    lock = root / HIDDEN / "lock"
    # The first run ends up blocked inside the lock whatever the machine's speed: the manifest it
    # writes (create-only, so read under the lock first) is a named pipe, for every second it may be
    # named after, and reading it blocks until the test opens the other end, which it never does.
    releases = root / HIDDEN / "releases"
    releases.mkdir(parents=True)
    now = datetime.now(timezone.utc)
    for offset in range(-5, 900):
        os.mkfifo(releases / f"0001-{now + timedelta(seconds=offset):%Y%m%dT%H%M%SZ}-{repo.head[:7]}.json")
    argv = [sys.executable, "-m", "pytest_notebooks.promote.cli", "-C", str(repo.root), "--target", str(root)]
    log = tmp_path / "holder.log"
    with log.open("wb") as output:
        holder = subprocess.Popen(argv, stdout=output, stderr=subprocess.STDOUT)
    try:

        def stopped_holding_the_lock() -> bool:
            """SIGSTOP it once the lock file names it; if it had let go of the lock by then, let it go on."""
            assert holder.poll() is None, log.read_text()
            if not (lock.exists() and f'"pid": {holder.pid},' in lock.read_text()):
                return False
            os.kill(holder.pid, signal.SIGSTOP)
            _wait_for(lambda: _process_state(holder.pid) == "T", "SIGSTOP to stop it")
            if _locked_by_someone(lock) and f'"pid": {holder.pid},' in lock.read_text():
                return True  # stopped inside the lock: on the named pipe, or in an earlier write
            os.kill(holder.pid, signal.SIGCONT)
            return False

        _wait_for(stopped_holding_the_lock, "the first nbpromote to be stopped holding the lock")
        who = json.loads(lock.read_text())
        owner, since, pid = who["owner"], who["since"], holder.pid
        assert owner.endswith(f" pid {pid}")

        monkeypatch.setenv("NBPROMOTE_LOCK_WAIT", "3")
        started = time.monotonic()
        second = nbpromote("-C", repo.root, "--target", root)
        waited = time.monotonic() - started
        assert second.code == 1, second.text
        assert second.out == ""
        state = "which is stopped (SIGSTOP or Ctrl-Z)"
        assert second.err.splitlines() == [
            f"nbpromote: waiting for {lock}: locked by {owner} since {since}, {state}; giving up after 3 s",
            f"nbpromote: failed: {lock} is still locked by {owner} since {since}, {state}; waited 3 s "
            f"(NBPROMOTE_LOCK_WAIT sets how long); resume it (`kill -CONT {pid}`) or end it (`kill {pid}`), "
            "then run nbpromote again",
        ]
        assert 3 <= waited < PATIENCE
    finally:
        holder.kill()  # SIGKILL ends a stopped process too
        with contextlib.suppress(ProcessLookupError):
            os.kill(holder.pid, signal.SIGCONT)
        holder.wait()

    # the holder is gone: the OS released its lock, and the next run goes through at once
    for fifo in releases.iterdir():
        fifo.unlink()
    third = nbpromote("-C", repo.root, "--target", root)
    assert third.code == 0, third.text
    assert "waiting" not in third.text


def test_a_bad_lock_wait_is_a_usage_error(repo: NotebookRepo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NBPROMOTE_LOCK_WAIT", "soon")
    result = nbpromote("-C", repo.root, "--target", tmp_path / "live")
    assert result.code == 2, result.text
    assert result.err == "nbpromote: error: NBPROMOTE_LOCK_WAIT='soon': expected a number of seconds, such as 30\n"
    assert not (tmp_path / "live").exists()
