"""What a case's kernel left running, found and ended with the case (Linux: it reads /proc).

jupyter_client signals the kernel's process group, and ipykernel terminates the children in it;
a process in a session of its own (a daemon, a log shipper) is in neither, and one whose parent
exited is nobody's descendant. ``Family`` finds them all and ends them: SIGTERM when the case
ends, SIGKILL SHUTDOWN_WAIT s later, from a thread, so that no case waits for it.
"""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import sys
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass

SHUTDOWN_WAIT = 1.0  # seconds a kernel, and what it left, get to exit when asked before they are killed
MARKER = "PYTEST_NOTEBOOKS_KERNEL"  # in each kernel's environment, one value per kernel: finds its leftovers
# Environment variables that differ between the kernels of one session: pytest's, and the marker.
VOLATILE = frozenset({"PYTEST_CURRENT_TEST", MARKER})


@dataclass(frozen=True)
class _Proc:
    """A process as /proc/PID/stat shows it; the pid and ``start`` together name one process."""

    ppid: int
    pgid: int
    sid: int
    start: int  # clock ticks after boot
    zombie: bool  # exited, not waited for yet


def _read(path: str, *, whole: bool = False) -> bytes | None:
    """A /proc file: its first 4 kB, or all of it (``os.read``, cheaper than ``open``: all of /proc is
    read at every case's end, see bench/README.md). None when it cannot be read."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        data = chunk = os.read(fd, 4096)
        while whole and chunk:
            chunk = os.read(fd, 1 << 16)
            data += chunk
        return data
    except OSError:
        return None
    finally:
        os.close(fd)


def _read_stat(pid: int) -> _Proc | None:
    data = _read(f"/proc/{pid}/stat")
    try:
        fields = (data or b"").rsplit(b")", 1)[1].split()  # the command name may hold anything
        return _Proc(int(fields[1]), int(fields[2]), int(fields[3]), int(fields[19]), fields[0] == b"Z")
    except (IndexError, ValueError):
        return None


def _descends_from(proc: _Proc, ancestor: int, levels: int = 4) -> bool:
    """Whether ``ancestor`` is the parent of ``proc``, or its parent's parent, up to ``levels`` up."""
    for _ in range(levels):
        if proc.ppid == ancestor:
            return True
        parent = _read_stat(proc.ppid) if proc.ppid > 1 else None
        if parent is None:
            return False
        proc = parent
    return False


def _processes() -> dict[int, _Proc]:
    """Every process /proc shows (none where there is no /proc)."""
    found = {}
    with contextlib.suppress(OSError):
        for name in os.listdir("/proc"):
            proc = _read_stat(int(name)) if name.isdigit() else None
            if proc is not None:
                found[int(name)] = proc
    return found


def _with_descendants(pids: Iterable[int], children: dict[int, list[int]]) -> set[int]:
    found, todo = set(), list(pids)
    while todo:
        pid = todo.pop()
        if pid not in found:
            found.add(pid)
            todo.extend(children.get(pid, ()))
    return found


def _running(pid: int, start: int) -> bool:
    proc = _read_stat(pid)
    return proc is not None and proc.start == start and not proc.zombie


def _send(pid: int, start: int, signum: int) -> bool:
    """Signal ``pid`` if it is still the process that started at ``start`` (not a reused pid):
    through a pidfd, checked after it was opened, where Linux has them."""
    pidfd = None
    try:
        pidfd = os.pidfd_open(pid)
    except OSError as exc:
        if exc.errno != errno.ENOSYS:
            return False  # gone
    try:
        proc = _read_stat(pid)
        if proc is None or proc.start != start:
            return False
        if pidfd is None:
            os.kill(pid, signum)
        else:
            signal.pidfd_send_signal(pidfd, signum)
        return True
    except OSError:
        return False
    finally:
        if pidfd is not None:
            os.close(pidfd)


class Family:
    """The processes a kernel started, wherever they went: asked to stop (SIGTERM) when its
    case ends, killed (SIGKILL) SHUTDOWN_WAIT s later. Linux only (it reads /proc).

    A member is: a descendant of the kernel; a process of the kernel's session or process group
    (both are the kernel's pid: it starts with ``setsid``); a process whose environment holds the
    kernel's MARKER value (inherited through fork and exec: a daemon that left the session and
    whose parent exited, so that it is nobody's descendant any more); a process found before;
    and the descendants of all of these. Processes started before the kernel are never members,
    and a process is signalled only while its pid still names it (pid and start time).

    The signals are sent by a thread of its own, so no case waits for them; ``end`` runs once
    the kernel is gone, for what it started after that thread looked.
    """

    def __init__(self, marker: str) -> None:
        self.marker = f"\0{MARKER}={marker}\0".encode()
        self.pid: int | None = None
        self.start = 0
        self._members: dict[int, int] = {}  # pid -> start of every member found so far
        self._killed: dict[int, int] = {}  # members killed and not reaped yet
        self._deadline = 0.0  # when the grace given by ``stop`` ends
        self._stopped = threading.Event()  # set: no signalling thread is running
        self._stopped.set()
        self._settled = False  # killed all after the kernel had exited: nothing can start any more
        self._lock = threading.Lock()

    def learn(self, pid: int | None) -> None:
        """The kernel's pid, once known (read while the kernel has not been reaped). Only a process
        this one started counts: a provisioner of another kind may name a process on another machine.
        A forked kernel becomes this process's child only when the process that forked it has exited
        (this process is a child subreaper); until then its parent is that one, whose parent is the
        template: an ancestor a few levels up is enough (under load the kernel was not learned at its
        start, was reaped before its release, and what it left ran on)."""
        proc = _read_stat(pid) if self.pid is None and pid is not None else None
        if proc is not None and _descends_from(proc, os.getpid()):
            self.pid, self.start = pid, proc.start

    def stop(self) -> None:
        """The case is over: SIGTERM now, SIGKILL after SHUTDOWN_WAIT s, from a thread."""
        if self.pid is None or sys.platform != "linux":
            return
        self._deadline = time.monotonic() + SHUTDOWN_WAIT
        self._stopped.clear()
        threading.Thread(target=self._stop, name="pytest-notebooks-kernel-leftovers", daemon=True).start()

    def _stop(self) -> None:
        try:
            waiting = self.signal(signal.SIGTERM)
            if self.pid is not None:
                waiting[self.pid] = self.start
            # Until the kernel and those asked have exited, or the grace is over: then no later
            # look is needed (the kernel can start nothing any more).
            while time.monotonic() < self._deadline and any(_running(pid, start) for pid, start in waiting.items()):
                time.sleep(0.05)
            self.signal(signal.SIGKILL)
        finally:
            self._stopped.set()

    def end(self, *, wait: bool) -> None:
        """The kernel is gone: kill what it left, unless the thread still runs (it does that when it
        sees the kernel gone, at the latest when the grace is over; ``wait``: wait for it) or did
        so after the kernel had exited."""
        if not self._stopped.is_set():
            if not wait and time.monotonic() < self._deadline:
                return
            self._stopped.wait(SHUTDOWN_WAIT + 10.0)  # the grace, then one look at /proc
        if not self._settled:
            self.signal(signal.SIGKILL)

    def signal(self, signum: int) -> dict[int, int]:
        """Send ``signum`` to every member now alive but the kernel (jupyter_client ends that);
        the members signalled (pid -> start)."""
        if self.pid is None or sys.platform != "linux":
            return {}
        with self._lock:
            procs = _processes()
            found = {pid: procs[pid].start for pid in self._find(procs) - {self.pid, os.getpid()}}
            self._members.update(found)
            sent = {pid: start for pid, start in found.items() if not procs[pid].zombie and _send(pid, start, signum)}
            if signum == signal.SIGKILL:
                self._killed.update(found)  # to be reaped, zombies included
                kernel = procs.get(self.pid)
                self._settled = kernel is None or kernel.start != self.start or kernel.zombie
        return sent

    def _find(self, procs: dict[int, _Proc]) -> set[int]:
        # The kernel's session and group outlive it while a member is left; once its pid names
        # another process, a session or group of that number is the newcomer's.
        kernel = procs.get(self.pid) if self.pid is not None else None
        reused = kernel is not None and kernel.start != self.start

        def known(pid: int, proc: _Proc) -> bool:
            if self._members.get(pid) == proc.start:
                return True
            if pid == self.pid:
                return not reused
            return not reused and proc.start >= self.start and self.pid in (proc.sid, proc.pgid)

        children: dict[int, list[int]] = {}
        for pid, proc in procs.items():
            children.setdefault(proc.ppid, []).append(pid)
        found = _with_descendants([pid for pid, proc in procs.items() if known(pid, proc)], children)
        newer = [pid for pid, proc in procs.items() if pid not in found and proc.start >= self.start]
        return found | _with_descendants([pid for pid in newer if self._marked(pid)], children)

    def _marked(self, pid: int) -> bool:
        environ = _read(f"/proc/{pid}/environ", whole=True)  # None: gone, or another user's
        return environ is not None and self.marker in b"\0" + environ

    def reap(self) -> bool:
        """Reap the killed members that are this process's children (under a child subreaper,
        orphans come to it); True when none is left to wait for. Not while the signalling thread
        still runs: its SIGKILL is still to come (a family dropped then was never killed at the
        session's end, and its daemons ran on)."""
        if not self._stopped.is_set():
            return False
        with self._lock:
            for pid, start in list(self._killed.items()):
                proc = _read_stat(pid)
                if proc is None or proc.start != start:  # reaped by its parent
                    del self._killed[pid]
                    continue
                with contextlib.suppress(ChildProcessError):  # not ours (yet)
                    if os.waitpid(pid, os.WNOHANG)[0]:
                        del self._killed[pid]
            return not self._killed
