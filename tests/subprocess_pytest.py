"""A real pytest in a subprocess, in a directory of the test's: what a user's terminal or CI would run.

pytester's ``runpytest_subprocess`` runs in ``pytester.path`` with pytester's own arguments; these run
anywhere (a copy of example_repo, a git repository of notebooks) with exactly the arguments given.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

TIMEOUT = 600.0  # seconds: against a hang, not a speed goal


def run_pytest(
    cwd: Path, *args: str, env: Mapping[str, str] | None = None, timeout: float = TIMEOUT
) -> subprocess.CompletedProcess[str]:
    """``python -m pytest *args`` in ``cwd`` with this interpreter, to its end; its output captured as text.

    ``env`` replaces this process's environment when given. A non-zero exit is the caller's to assert on.
    """
    return subprocess.run(
        [sys.executable, "-m", "pytest", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def start_pytest(cwd: Path, *args: str, output: bool = True) -> subprocess.Popen[str]:
    """``python -m pytest *args`` in ``cwd``, started and left running, in its own process group (so
    that a test can signal the group or the leader, and Ctrl-C in the terminal is the outer run's).

    Its stdout and stderr are one text pipe, ``process.stdout``; or discarded, without ``output``.
    Ctrl-C is a Ctrl-C in it even when this suite was started with SIGINT ignored (``nohup make
    test &``): an ignored signal is inherited through exec, and the tests that interrupt a run
    would wait for an interrupt that never lands.
    """
    return subprocess.Popen(
        [sys.executable, "-m", "pytest", *args],
        cwd=cwd,
        stdout=subprocess.PIPE if output else subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
        preexec_fn=_default_sigint,  # only resets a signal disposition before exec
    )


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def exited(pid: int, within: float = 120.0) -> bool:
    """``pid`` has exited within ``within`` seconds (a bound against a hang, far above what it takes):
    it is gone, or a zombie (its sockets and files are closed), reaped here when it became this
    process's child (an orphan comes to a subreaper)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            return True
        if state == "Z":
            return True
        time.sleep(0.05)
    return False
