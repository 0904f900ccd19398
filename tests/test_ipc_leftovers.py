"""The files a kernel talks through (IPC sockets, connection file) outlive a pytest killed with
SIGKILL; the next session that starts a kernel removes them, and never those of a live session.

Every session here runs with TMPDIR set to a private directory (short, so that no kernel socket
path reaches the AF_UNIX limit and falls back to /tmp): nothing of another session on this
machine is looked at, let alone removed.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pytest_notebooks.run.ipcfiles import FALLBACK, socket_base
from tests.notebooks import write_notebook
from tests.subprocess_pytest import exited, run_pytest, start_pytest

WAIT = 240.0  # seconds for a marker file or an exit: a bound for a stuck machine, not a speed goal
PREFIX = "pytest-notebooks-"


@pytest.fixture
def tmpdir_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A private, short TMPDIR for the pytest subprocesses of the test (removed after it)."""
    private = Path(tempfile.mkdtemp(prefix="pn-ipc-", dir="/tmp"))
    monkeypatch.setenv("TMPDIR", str(private))
    assert socket_base(str(private)) == str(private)  # no fallback to /tmp: the test stays in its own
    yield private
    shutil.rmtree(private, ignore_errors=True)


def session_dir(root: Path, name: str, body: str) -> Path:
    """A directory with one notebook (``body`` its one cell) and its fixture, tested on its own."""
    where = root / name
    write_notebook(where / "nb.ipynb", [body])
    (where / "nb.yaml").write_text("")
    (where / "pytest.ini").write_text("[pytest]\naddopts = -p no:cacheprovider\n")
    return where


def held(marker: str, release: str) -> str:
    """A cell that writes its pytest's pid and its own to ``marker``, then waits for ``release``."""
    return (
        "import os, pathlib, time\n"
        f"pathlib.Path({marker!r}).write_text(os.environ['JPY_PARENT_PID'] + ' ' + str(os.getpid()))\n"
        f"while not pathlib.Path({release!r}).exists():\n"
        "    time.sleep(0.05)\n"
    )


def wait_for(path: Path) -> None:
    deadline = time.monotonic() + WAIT
    while not path.exists() or not path.read_text():
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.05)


def ours(tmp: Path) -> list[str]:
    """What the plugin has in ``tmp``: its directories, old-style sockets, connection files."""
    return sorted(p.name for p in tmp.iterdir() if p.name.startswith(PREFIX) or p.name.endswith(".json"))


def owned_by(tmp: Path, pid: int) -> Path:
    [found] = [p for p in tmp.iterdir() if p.name.startswith(f"{PREFIX}{pid}-")]
    return found


def kernel_files(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name != "lock")


@pytest.mark.kernel
@pytest.mark.parametrize("start", ["fork", "spawn"])
def test_a_killed_sessions_files_are_removed_by_the_next_and_a_live_ones_kept(
    tmpdir_env: Path, tmp_path: Path, start: str
) -> None:
    release = tmp_path / "release"
    live_dir = session_dir(tmp_path, "live", held(str(tmp_path / "live.started"), str(release)))
    doomed_dir = session_dir(tmp_path, "doomed", held(str(tmp_path / "doomed.started"), str(release)))
    args = ("-p", "no:xdist", f"--notebooks-kernel-start={start}")
    live = start_pytest(live_dir, *args, output=False)
    doomed = start_pytest(doomed_dir, *args, output=False)
    try:
        wait_for(tmp_path / "live.started")
        wait_for(tmp_path / "doomed.started")
        doomed_pytest, doomed_kernel = map(int, (tmp_path / "doomed.started").read_text().split())
        live_pytest, live_kernel = map(int, (tmp_path / "live.started").read_text().split())
        assert doomed_pytest == doomed.pid
        for pid in (doomed_pytest, doomed_kernel):  # CI's timeout, the OOM killer: nothing of it runs
            os.kill(pid, signal.SIGKILL)
        assert doomed.wait(WAIT) == -signal.SIGKILL
        assert exited(doomed_kernel, WAIT)

        left = owned_by(tmpdir_env, doomed_pytest)
        live_files = owned_by(tmpdir_env, live_pytest)
        assert "k1.json" in kernel_files(left)  # the connection file of the killed session's kernel
        assert any(stat.S_ISSOCK((left / name).lstat().st_mode) for name in kernel_files(left))
        before = kernel_files(live_files)

        quick = session_dir(tmp_path, "next", "1 + 1")
        result = run_pytest(quick, *args, timeout=WAIT)
        assert result.returncode == 0, result.stdout + result.stderr

        assert not left.exists()  # the killed session's files are gone
        assert kernel_files(live_files) == before  # the live one's are all there, its kernel still runs
        assert live.poll() is None
        assert Path(f"/proc/{live_kernel}").exists()
    finally:
        release.touch()
        for process in (live, doomed):
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(WAIT)
            if process.poll() is None:
                process.kill()
                process.wait()
    assert live.returncode == 0
    assert ours(tmpdir_env) == []  # sessions that end remove what they made


@pytest.mark.kernel
def test_a_parallel_session_leaves_nothing_in_tmpdir(tmpdir_env: Path, tmp_path: Path) -> None:
    where = session_dir(tmp_path, "nbs", "1 + 1")
    write_notebook(where / "other.ipynb", ["2 + 2"])
    (where / "other.yaml").write_text("")
    result = run_pytest(where, "-n", "2", timeout=WAIT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert ours(tmpdir_env) == []


INLINE_RUNS = """\
import os, tempfile
from tests.notebooks import write_notebook
from tests.subprocess_pytest import exited

def test_inline_runs(pytester):
    pytester.makeini("[pytest]\\nfilterwarnings = ignore::pytest.PytestAssertRewriteWarning\\n")
    write_notebook(pytester.path / "nb.ipynb", ["1 + 1"])
    (pytester.path / "nb.yaml").write_text("")
    for _ in range(3):
        pytester.runpytest("-p", "no:xdist").assert_outcomes(passed=1)
    made = [name for name in os.listdir(tempfile.gettempdir()) if name.startswith("pytest-notebooks-")]
    assert len(made) == 1, made
"""


@pytest.mark.kernel
def test_in_process_runs_share_one_directory_removed_at_exit(tmpdir_env: Path, tmp_path: Path) -> None:
    """pytester's in-process runs (a plugin's own test suite) re-import what they imported: the
    process still keeps one directory, not one a run, and removes it when it exits."""
    where = tmp_path / "suite"
    where.mkdir()
    (where / "test_inline.py").write_text(INLINE_RUNS)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])}
    result = run_pytest(where, "-p", "pytester", "-p", "no:cacheprovider", "-p", "no:xdist", env=env, timeout=WAIT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert ours(tmpdir_env) == []


def stale_socket(path: Path) -> None:
    """A socket file nobody listens on any more (its process died: connecting is refused)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.bind(str(path))


def connection_file(path: Path, ip: Path, age: float) -> None:
    info = {"shell_port": 1, "iopub_port": 2, "stdin_port": 3, "control_port": 4, "hb_port": 5}
    path.write_text(json.dumps({**info, "ip": str(ip), "key": "k", "transport": "ipc"}))
    path.chmod(0o600)
    then = time.time() - age
    os.utime(path, (then, then))


@pytest.mark.kernel
def test_old_style_leftovers_go_only_when_provably_stale(tmpdir_env: Path, tmp_path: Path) -> None:
    """Names of earlier versions (``pytest-notebooks-<12 hex>-<port>``, ``tmpXXXXXXXX.json``) carry
    no owner: a socket goes when connecting to it is refused, a connection file when none of its
    sockets is listened on and it is older than any kernel start."""
    dead, live = tmpdir_env / f"{PREFIX}0123456789ab", tmpdir_env / f"{PREFIX}ba9876543210"
    for port in range(1, 6):
        stale_socket(Path(f"{dead}-{port}"))
    connection_file(tmpdir_env / "tmpdead0001.json", dead, age=3600)
    connection_file(tmpdir_env / "tmpyoung001.json", dead, age=0)  # a kernel may be starting with it
    connection_file(tmpdir_env / "tmplive0001.json", live, age=3600)
    not_a_socket = Path(f"{live}-2")
    not_a_socket.write_text("a regular file with a socket's name")
    unrelated = [tmpdir_env / f"{PREFIX}notes", tmpdir_env / "tmpother001.json"]
    unrelated[0].write_text("someone's")
    unrelated[1].write_text("{}")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as listening:
        listening.bind(f"{live}-1")
        listening.listen()
        result = run_pytest(session_dir(tmp_path, "next", "1 + 1"), "-p", "no:xdist", timeout=WAIT)
        assert result.returncode == 0, result.stdout + result.stderr
        kept = [f"{live.name}-1", f"{live.name}-2", f"{PREFIX}notes"]
        assert ours(tmpdir_env) == sorted([*kept, "tmplive0001.json", "tmpyoung001.json", "tmpother001.json"])


@pytest.mark.kernel
def test_a_dead_sessions_directory_keeps_a_socket_still_listened_on(tmpdir_env: Path, tmp_path: Path) -> None:
    """The owner is gone (no lock held) but a socket of its directory is still listened on (an
    orphaned kernel not yet exited): nothing of that directory is removed, until it stops."""
    left = tmpdir_env / f"{PREFIX}999999-0123abcd"
    left.mkdir(mode=0o700)
    (left / "lock").write_text("")
    (left / "k1.json").write_text("{}")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as listening:
        listening.bind(str(left / "k1-1"))
        listening.listen()
        result = run_pytest(session_dir(tmp_path, "next", "1 + 1"), "-p", "no:xdist", timeout=WAIT)
        assert result.returncode == 0, result.stdout + result.stderr
        assert kernel_files(left) == ["k1-1", "k1.json"]
    result = run_pytest(session_dir(tmp_path, "again", "1 + 1"), "-p", "no:xdist", timeout=WAIT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert ours(tmpdir_env) == []


def test_socket_paths_past_the_af_unix_limit_fall_back_to_tmp() -> None:
    assert socket_base("/tmp/short") == "/tmp/short"
    assert socket_base("/var/folders/zz/zyxvpxvq6csfxvn_n0000000000000/T") == (
        "/var/folders/zz/zyxvpxvq6csfxvn_n0000000000000/T"
    )  # macOS's usual TMPDIR
    assert socket_base("/" + "d" * 80) == FALLBACK
