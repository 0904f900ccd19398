"""What a notebook's subprocesses do to pytest: a daemon that keeps the kernel's stdout open, or
one that ignores SIGTERM, ends with its case; a flood written straight to the kernel's stdout is
cut, so pytest's memory stays bounded. Real kernels, forked and spawned; the bounds asserted are
generous limits against a hang, not the machine's speed."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pytest_notebooks.redact import Redactor
from pytest_notebooks.run import kernels
from pytest_notebooks.run.family import Family
from pytest_notebooks.run.forked import VOLATILE
from pytest_notebooks.run.kernels import FORWARD_LIMIT, FORWARD_TAIL, MARKER
from tests.notebooks import write_notebook
from tests.subprocess_pytest import exited

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="finds the kernel's processes in /proc")

RUN_BOUND = 120.0  # seconds: the run below ends in about 25 (a 20 s limit, a 1 s grace); before, never
FLOOD_RSS_BOUND_KB = 400_000  # pytest's peak RSS after a 400 MB flood: 110 MB measured, 869 MB before

# Started by a cell: ignores SIGTERM, says its pid, writes to the stdout it inherited (the
# kernel's) until killed, shrugging off a closed pipe. With "double" it daemonizes the classic way
# (fork, setsid, fork: the middle process exits, so it is nobody's descendant any more).
DAEMON = """\
import os, signal, sys, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
if sys.argv[2:] == ["double"]:
    if os.fork():
        os.wait()
        sys.exit(0)
    os.setsid()
    if os.fork():
        os._exit(0)
if sys.argv[2:] == ["graceful"]:  # a daemon that stops when asked, and says it was asked
    signal.signal(signal.SIGTERM, lambda *_: (open(sys.argv[1] + ".term", "w").close(), os._exit(0)))
with open(sys.argv[1] + ".tmp", "w") as out:
    out.write(str(os.getpid()))
os.rename(sys.argv[1] + ".tmp", sys.argv[1])
while True:
    try:
        os.write(1, b"DAEMON-TICK\\n")
    except OSError:
        pass
    time.sleep(0.2)
"""
START_DAEMONS = (
    "import os, subprocess, sys, time\n"
    "subprocess.Popen([sys.executable, 'daemon.py', f'{name}-setsid.pid'], start_new_session=True)\n"
    "subprocess.run([sys.executable, 'daemon.py', f'{name}-double.pid', 'double'], check=True)\n"
    "while not (os.path.exists(f'{name}-setsid.pid') and os.path.exists(f'{name}-double.pid')):\n"
    "    time.sleep(0.05)"
)
WAIT_IF_ASKED = "if wait:\n    time.sleep(600)"

# Written into the run's rootdir: the peak RSS of the pytest process, and the size of each
# report's captured output with the lines the plugin added to it.
REPORT = """\
import json

def pytest_runtest_logreport(report):
    if report.when != "call":
        return
    for name, content in report.sections:
        added = [line for line in content.splitlines() if line.startswith("[pytest-notebooks:")]
        with open("sections.jsonl", "a") as out:
            ticks = content.count("DAEMON-TICK")
            record = {"test": report.nodeid, "section": name, "size": len(content), "added": added, "ticks": ticks}
            out.write(json.dumps(record) + "\\n")

def pytest_unconfigure(config):
    with open("/proc/self/status") as status:
        peak = next(line for line in status if line.startswith("VmHWM:"))
    with open("peak-rss.txt", "w") as out:
        out.write(peak.split()[1])
"""


@pytest.fixture
def daemons(pytester: pytest.Pytester) -> Iterator[list[int]]:
    """The pids of the daemons the run started (read after the run); killed whatever happened."""
    found: list[int] = []
    yield found
    for path in pytester.path.glob("*.pid"):
        with contextlib.suppress(ValueError, ProcessLookupError):
            os.kill(int(path.read_text()), signal.SIGKILL)
            exited(int(path.read_text()), 10.0)


@pytest.mark.parametrize("start", ["fork", "spawn"])
@pytest.mark.kernel
def test_a_daemon_holding_the_kernels_stdout_ends_with_its_case(
    pytester: pytest.Pytester, daemons: list[int], start: str
) -> None:
    """Two cases start a setsid'd daemon and a double-forked one, each ignoring SIGTERM and
    holding the kernel's stdout: one passes, one waits for ever and hits its 20 s limit. pytest
    returns after about that limit and both daemons are gone (they lived for ever before)."""
    (pytester.path / "daemon.py").write_text(DAEMON)
    write_notebook(
        pytester.path / "nb.ipynb", [("name = 'x'\nwait = False", ["parameters"]), START_DAEMONS, WAIT_IF_ASKED]
    )
    (pytester.path / "nb.yaml").write_text(
        "cases:\n  quick: {name: quick}\n  stuck:\n    parameters: {name: stuck, wait: true}\n"
        "    timeout: 20\n    xfail: waits for ever\n"  # the limit on the stuck case only: a slow machine passes quick
    )
    write_notebook(pytester.path / "then.ipynb", ["print('the next case')"])
    (pytester.path / "then.yaml").write_text("")
    pytester.makeconftest(REPORT)
    began = time.monotonic()
    result = pytester.runpytest_subprocess("-p", "no:xdist", f"--notebooks-kernel-start={start}", timeout=RUN_BOUND)
    took = time.monotonic() - began
    daemons.extend(int(path.read_text()) for path in sorted(pytester.path.glob("*.pid")))
    result.assert_outcomes(passed=2, xfailed=1)
    assert len(daemons) == 4
    left = [pid for pid in daemons if not exited(pid, 10.0)]
    assert not left, f"daemons {left} outlived their case"
    cases = json.loads((pytester.path / "notebook-outputs" / "results.json").read_text())["cases"]
    stuck = next(case for case in cases if case["case"] == "stuck")
    assert stuck["failure"]["kind"] == "notebook-timeout"
    assert took < RUN_BOUND
    sections = [json.loads(line) for line in (pytester.path / "sections.jsonl").read_text().splitlines()]
    # The daemons tick for a second after their case: none of that reaches the next case's output.
    assert [section for section in sections if section["test"] == "then.ipynb::default" and section["ticks"]] == []


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads the peak RSS from /proc")
@pytest.mark.kernel
def test_a_flood_on_the_kernels_stdout_is_cut_and_memory_stays_bounded(pytester: pytest.Pytester) -> None:
    """400 MB written straight to fd 1 by a subprocess (past the cell's output limit: it is not
    cell output) reach pytest's captured output as the head, a line saying how much was left
    out, and the tail."""
    flood = (
        "import subprocess, sys\n"
        'code = \'import os\\nfor _ in range(400): os.write(1, b"x" * 999_999 + b"\\\\n")\'\n'
        "subprocess.run([sys.executable, '-c', code], check=True)\n"
        "print('flood done')"
    )
    write_notebook(pytester.path / "flood.ipynb", [flood])
    (pytester.path / "flood.yaml").write_text("")
    pytester.makeconftest(REPORT)
    result = pytester.runpytest_subprocess("-p", "no:xdist", timeout=RUN_BOUND)
    result.assert_outcomes(passed=1)
    peak_kb = int((pytester.path / "peak-rss.txt").read_text())
    assert peak_kb < FLOOD_RSS_BOUND_KB, f"pytest's peak RSS was {peak_kb / 1000:.0f} MB"
    sections = [json.loads(line) for line in (pytester.path / "sections.jsonl").read_text().splitlines()]
    stdout = next(section for section in sections if section["section"] == "Captured stdout call")
    assert stdout["size"] <= FORWARD_LIMIT + FORWARD_TAIL + 1000
    assert len(stdout["added"]) == 2
    cut, summary = stdout["added"]
    assert cut.startswith("[pytest-notebooks: the kernel's stdout passed its limit of 10 MB here")
    left_out = 400_000_000 - FORWARD_LIMIT - FORWARD_TAIL
    assert summary.startswith(f"[pytest-notebooks: {left_out:,} bytes of the kernel's stdout were left out")


# A stand-in for a forked kernel (a session of its own; MARKER set in os.environ after it started,
# so its /proc/PID/environ and that of its forked children lack it), which leaves processes every
# way it can: a daemon in a session of its own, one that stops on SIGTERM, a double-forked one
# that is nobody's descendant, and a forked orphan still in its session.
FAKE_KERNEL = """\
import os, signal, subprocess, sys, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
os.environ[sys.argv[1]] = sys.argv[2]
subprocess.Popen([sys.executable, "daemon.py", "setsid.pid"], start_new_session=True)
subprocess.Popen([sys.executable, "daemon.py", "graceful.pid", "graceful"], start_new_session=True)
subprocess.run([sys.executable, "daemon.py", "double.pid", "double"], check=True)
middle = os.fork()
if middle == 0:
    if os.fork() == 0:
        with open("orphan.pid.tmp", "w") as out:
            out.write(str(os.getpid()))
        os.rename("orphan.pid.tmp", "orphan.pid")
        time.sleep(600)
    os._exit(0)
os.waitpid(middle, 0)
time.sleep(600)
"""


def wait_for(*paths: Path, within: float = 60.0) -> None:
    deadline = time.monotonic() + within
    while not all(path.exists() for path in paths):
        assert time.monotonic() < deadline, f"not written: {[str(path) for path in paths if not path.exists()]}"
        time.sleep(0.05)


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc")
def test_a_kernels_family_is_every_process_it_left_and_nothing_else(tmp_path: Path) -> None:
    """Called directly: SIGTERM first (the graceful daemon stops), SIGKILL after the grace (the
    others ignore SIGTERM); a process started meanwhile outside the kernel's tree is untouched."""
    import subprocess

    (tmp_path / "daemon.py").write_text(DAEMON)
    marker = "0123456789abcdef"
    kernel = subprocess.Popen([sys.executable, "-c", FAKE_KERNEL, MARKER, marker], cwd=tmp_path, start_new_session=True)
    bystander = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"], start_new_session=True)
    pidfiles = [tmp_path / f"{name}.pid" for name in ("setsid", "graceful", "double", "orphan")]
    try:
        wait_for(*pidfiles)
        family = Family(marker)
        family.learn(kernel.pid)
        family.stop()
        kernel.kill()  # what jupyter_client does to a kernel that does not shut down
        kernel.wait()
        family.end(wait=True)
        left = [path.name for path in pidfiles if not exited(int(path.read_text()), 10.0)]
        assert not left, f"{left} outlived their kernel"
        assert (tmp_path / "graceful.pid.term").exists()  # asked first
        assert bystander.poll() is None
    finally:
        for proc in (kernel, bystander):
            proc.kill()
            proc.wait()
        for path in pidfiles:
            with contextlib.suppress(OSError, ValueError, ProcessLookupError):
                os.kill(int(path.read_text()), signal.SIGKILL)


def test_the_marker_does_not_start_a_template_per_kernel() -> None:
    assert MARKER in VOLATILE


def test_the_forwarder_keeps_the_head_the_tail_and_says_what_it_left_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(kernels, "FORWARD_LIMIT", 1_000_000)
    monkeypatch.setattr(kernels, "FORWARD_TAIL", 100_000)
    captured = tmp_path / "captured"
    sink = os.open(captured, os.O_WRONLY | os.O_CREAT)
    read, write = os.pipe()
    forwarder = kernels.Forwarder({read: kernels.Sink("stderr", sink)}, Redactor(("hunter22-secret",)))
    line = b"y" * 999 + b"\n"
    os.write(write, b"the password is hunter22-secret\n" + line * 1999 + b"no newline yet")
    os.close(write)
    forwarder.thread.join(RUN_BOUND)  # it read all, to EOF
    forwarder.quiet()
    forwarder.stop()
    os.close(sink)
    text = captured.read_bytes().decode()
    head, rest = text.split("\n[pytest-notebooks: the kernel's stderr passed its limit of 1 MB here; the rest is ", 1)
    assert head.startswith("the password is ***\ny")
    assert len(head) == 1_000_000  # cut in the middle of a line: the marker starts on a line of its own
    said, tail = rest.split("\n", 1)[1].split("\n", 1)
    total = len("the password is ***\n") + 1999 * 1000 + len("no newline yet")
    left_out = total - 1_000_000 - 100_000
    assert said == (
        f"[pytest-notebooks: {left_out:,} bytes of the kernel's stderr were left out; its last 100,000 bytes follow]"
    )
    assert len(tail) == 100_000
    assert tail.endswith("y\nno newline yet")
