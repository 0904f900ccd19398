"""Kernel processes for cases: started one case ahead, shut down by us. Imports jupyter_client.

Waiting for a fresh ipykernel to be ready is most of a small case's time (0.47 of 0.68 s here,
see bench/README.md). So while case N runs, the kernel of case N+1 (the next item pytest will
run on this worker) is already booting in its own process. Every case still gets a kernel of
its own, started in its notebook's directory, and no kernel ever runs two cases.

How a kernel process starts (``notebooks_kernel_start``): ``fork`` (the default) forks it from a
template process of this pytest process that has imported ipykernel and the ``notebooks_preload``
modules already (run/forked.py: a jupyter_client kernel provisioner); ``spawn`` starts a new
interpreter, as jupyter_client does. A kernel that cannot be forked (another language, another
environment, not Linux) is spawned, and the first such kernel of each kind says why in one
warning line.

Clients get ready without jupyter_client's fixed pause: its ``wait_for_ready`` ends by waiting
until IOPub has been silent for 0.2 s, which was a third of a small case. ``QuickReadyClient``
waits for the kernel's ``idle`` status of its own ``kernel_info`` request instead (IOPub is then
connected, and everything that request caused has arrived).

Kernels talk over IPC sockets with a unique prefix (no TCP ports to race for under xdist, no
plaintext-TCP warning from ipykernel), and are shut down gracefully with a short wait: a kernel
that does not exit within a second of the shutdown request is killed. Nobody waits for that:
the next case starts at once and the exited kernels are reaped later.

Closing order: the client's channels are stopped, then the shutdown is requested; the manager's
control socket, zmq context and connection files are cleaned up only after the kernel exited.

A kernel's own stdout and stderr (what a subprocess of a cell writes to fds 1 and 2) reach
pytest through pipes, with secrets masked (see redact.py), and bounded (``_Forwarder``): the
first FORWARD_LIMIT bytes of each are forwarded as they come, then a line says the limit was
passed, and when the case ends a line says how many bytes were left out before the last
FORWARD_TAIL, which follow. pytest holds a test's captured output in memory: 400 MB written to
fd 1 by a subprocess took its peak RSS to 869 MB, 1.5 GB ended in a ``MemoryError``. Once a
kernel has been asked to shut down, what it still writes there is dropped: it belongs to no case,
and would land in the captured output of whichever case runs next. That is where ``ZMQError:
Socket operation on non-socket`` tracebacks came from, about one run in five of thirty cases
here: ipykernel 7.4's control handler flushes stdout after its shutdown handler has closed the
IOPub thread (the race is in the kernel, whatever order the client closes in).

The pipes are read by one thread per kernel that owns them and that nobody waits for. A process
the notebook started may hold their write ends for ever; jupyter_client's provisioner used to
close its reader once the kernel had exited, and closing a buffered reader waits for the thread
blocked reading it: a daemon that kept the kernel's stdout held pytest until it exited.

What a case leaves running is ended with it (Linux, ``_Family``). jupyter_client signals the
kernel's process group, and ipykernel terminates the children in it; a process in a session of
its own (``start_new_session=True``: a daemon, a log shipper) is in neither, and one whose parent
exited is nobody's descendant. When the case ends, every process of the kernel's *family* (its
descendants, its session and group, and whatever carries its MARKER environment variable) gets
SIGTERM, and SIGKILL SHUTDOWN_WAIT later, from a thread: no case waits for that.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import os
import select
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
import warnings
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from pytest_notebooks.errors import PytestNotebooksWarning
from pytest_notebooks.models import format_size
from pytest_notebooks.redact import Redactor, clean_environ
from pytest_notebooks.terminal import defuse_command_bytes

SHUTDOWN_WAIT = 1.0  # seconds a kernel gets to exit after the shutdown request
LINE_LIMIT = 65536  # bytes of kernel stdout/stderr forwarded at a time
PID_ANSWER_WAIT = 30.0  # seconds a case waits for a forked kernel's pid (a bound for a stuck machine)
FORWARD_LIMIT = 10_000_000  # bytes of each of a kernel's stdout and stderr forwarded as they come
FORWARD_TAIL = 1_000_000  # bytes past that limit kept (the last ones) and forwarded when the case ends
MARKER = "PYTEST_NOTEBOOKS_KERNEL"  # in each kernel's environment, one value per kernel: finds its leftovers
KERNEL_STARTS = ("fork", "spawn")  # notebooks_kernel_start
IOPUB_WAIT = 0.2  # seconds to wait for a kernel_info request's idle status before asking again


@dataclass(frozen=True)
class KernelKey:
    """What a kernel must match to serve a case: the kernel spec, the working directory and the
    environment it starts with."""

    name: str
    cwd: str
    clean_env: bool = False  # start without the credential-looking variables
    redact: tuple[str, ...] = ()  # extra names/globs of credential variables (notebooks_redact)


def _config() -> Any:
    from traitlets.config import Config

    settings: dict[str, Any] = {"shutdown_wait_time": SHUTDOWN_WAIT}
    if os.name == "posix":
        # Socket files are named <ip>-<port>: a unique prefix per kernel keeps workers apart.
        settings["transport"] = "ipc"
        settings["ip"] = os.path.join(tempfile.gettempdir(), f"pytest-notebooks-{uuid.uuid4().hex[:12]}")
    return Config({"KernelManager": settings})


def _client_class() -> Any:
    from jupyter_client.asynchronous.client import AsyncKernelClient

    return _quick_ready(AsyncKernelClient)


@functools.cache
def _quick_ready(base: Any) -> Any:
    """The client class, once per base class (pytester's in-process runs re-import jupyter_client)."""
    from queue import Empty

    class QuickReadyClient(base):  # type: ignore[misc]  # a class made from an argument
        """An AsyncKernelClient whose ``wait_for_ready`` returns as soon as the kernel has answered
        a ``kernel_info`` request on shell and published that request's ``idle`` on IOPub."""

        async def wait_for_ready(self, timeout: float | None = None) -> None:
            deadline = time.monotonic() + (timeout if timeout is not None else float("inf"))
            asked: set[str] = set()
            while True:
                asked.add(self.kernel_info())
                try:
                    reply = await self.shell_channel.get_msg(timeout=1)
                except Empty:
                    reply = None
                answered = reply is not None and reply["parent_header"].get("msg_id") in asked
                if answered and await self._iopub_idle(asked):
                    self._handle_kernel_info_reply(reply)
                    await self._drain()
                    return
                if not await self._async_is_alive():
                    raise RuntimeError("Kernel died before replying to kernel_info")
                if time.monotonic() > deadline:
                    raise RuntimeError(f"Kernel didn't respond in {timeout:g} seconds")

        async def _iopub_idle(self, asked: set[str]) -> bool:
            """Wait for the idle status of one of the ``asked`` requests. IOPub may have joined
            after the kernel published it: on ipykernel's welcome (IOPub is connected from then
            on) the kernel is asked again, at most IOPUB_WAIT s after the last sign of life."""
            end = time.monotonic() + IOPUB_WAIT
            while (left := end - time.monotonic()) > 0:
                try:
                    msg = await self.iopub_channel.get_msg(timeout=left)
                except Empty:
                    return False
                if msg["msg_type"] == "iopub_welcome":
                    asked.add(self.kernel_info())
                    end = time.monotonic() + IOPUB_WAIT
                elif (
                    msg["msg_type"] == "status"
                    and msg["content"].get("execution_state") == "idle"
                    and msg["parent_header"].get("msg_id") in asked
                ):
                    return True
            return False

        async def _drain(self) -> None:
            """Drop what is queued already (replies to repeated requests, other statuses)."""
            for channel in (self.shell_channel, self.iopub_channel):
                with contextlib.suppress(Empty):
                    while True:
                        await channel.get_msg(timeout=0)

    return QuickReadyClient


def _manager_class() -> Any:
    from jupyter_client.manager import AsyncKernelManager

    class TrackingKernelManager(AsyncKernelManager):
        """Remembers the clients it hands out, so that their sockets can be closed with it."""

        def __init__(self, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.client_factory = _client_class()

        def client(self, **kwargs: Any) -> Any:
            client = super().client(**kwargs)
            self.__dict__.setdefault("_issued_clients", []).append(client)
            return client

    return TrackingKernelManager


def start(key: KernelKey, extra_arguments: list[str], templates: Any = None) -> Any:
    """Launch a kernel for ``key`` and return its manager without waiting for it to be ready.

    With ``templates`` (run/forked.py's ``Templates``), the kernel is forked from a template
    process when it can be; the manager's ``provisioner.fallback`` says why it was not.
    """
    from jupyter_core.utils import run_sync

    manager = _manager_class()(kernel_name=key.name, config=_config())
    if templates is not None:
        _fork_from(manager, templates)
    arguments = [*extra_arguments, "--HistoryManager.hist_file=:memory:"]
    env = clean_environ(os.environ, key.redact) if key.clean_env else dict(os.environ)
    marker = uuid.uuid4().hex
    env[MARKER] = marker
    run_sync(manager.start_kernel)(
        cwd=key.cwd, extra_arguments=arguments, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    process = getattr(manager.provisioner, "process", None)
    family = _Family(marker)
    family.learn(_kernel_pid(manager))
    manager.__dict__["_pytest_notebooks_family"] = family
    manager.__dict__["_pytest_notebooks_output"] = _take_pipes(process, Redactor.from_environ(os.environ, key.redact))
    return manager


def _learn_pid(manager: Any) -> None:
    """Learn the kernel's pid before its case runs, while the kernel is surely alive. A forked kernel's
    pid comes with the template's answer, which ``_start`` does not wait for: under load it had not
    come then, the case's timeout killed the kernel, it was reaped before ``release`` looked, and the
    daemons it had started were never ended. The answer follows the fork within milliseconds."""
    family = manager.__dict__.get("_pytest_notebooks_family")
    if family is None or family.pid is not None:
        return
    waiter = getattr(getattr(manager.provisioner, "process", None), "wait_for_pid", None)
    if callable(waiter):
        waiter(PID_ANSWER_WAIT)
    family.learn(_kernel_pid(manager))


def _kernel_pid(manager: Any) -> int | None:
    """The kernel's pid, while the provisioner knows it (a forked kernel's: once the template said it)."""
    provisioner = manager.provisioner
    pid = getattr(getattr(provisioner, "process", None), "pid", None) or getattr(provisioner, "pid", None)
    return pid if isinstance(pid, int) else None


def _fork_from(manager: Any, templates: Any) -> None:
    """Give ``manager`` the forking provisioner, unless its kernelspec names a provisioner of its own."""
    from pytest_notebooks.run.forked import PROVISIONER_NAME, ForkedProvisioner

    spec = manager.kernel_spec
    named = (spec.metadata or {}).get("kernel_provisioner", {}).get("provisioner_name")
    if named not in (None, "local-provisioner", PROVISIONER_NAME):
        manager.__dict__["_pytest_notebooks_spawned"] = f"its kernelspec names the kernel provisioner {named!r}"
        return
    manager.kernel_id = str(uuid.uuid4())
    provisioner = ForkedProvisioner(kernel_id=manager.kernel_id, kernel_spec=spec, parent=manager)
    provisioner.templates = templates
    manager.provisioner = provisioner


def spawned_because(manager: Any) -> str | None:
    """Why a kernel started with ``templates`` was spawned after all (None: it was forked)."""
    return manager.__dict__.get("_pytest_notebooks_spawned") or getattr(manager.provisioner, "fallback", None)


@dataclass
class _Sink:
    """Where one of a kernel's streams goes (fd 1 or 2 of this process), and how much of it went."""

    name: str  # stdout, stderr
    fd: int
    carry: bytes = b""  # the start of a line not yet complete
    sent: int = 0  # bytes written to ``fd`` (at most FORWARD_LIMIT)
    past: int = 0  # bytes that came after the limit (the last FORWARD_TAIL of them are kept)
    tail: deque[bytes] = field(default_factory=deque)
    tail_size: int = 0
    at_line_start: bool = True


class _Forwarder:
    """Copies a kernel's stdout and stderr (what its subprocesses write to fds 1 and 2) to this
    process's fds 1 and 2, where pytest captures them: masked, and bounded like cell output.

    One thread per kernel owns the read ends of both pipes. Nobody ever waits for it: a process
    the notebook left running may hold the write ends for ever. It ends at EOF (the kernel and
    every process it started are gone) or when ``stop`` is called, and closes the pipes itself.

    The first FORWARD_LIMIT bytes of each stream are forwarded as they come; past them a marker
    line says so, and only the last FORWARD_TAIL bytes are kept, forwarded when the case ends
    (``quiet``) after a line saying how many were left out. Read in chunks, written line by line
    (a line is masked whole up to LINE_LIMIT bytes).
    """

    def __init__(self, pipes: dict[int, _Sink], redactor: Redactor) -> None:
        self._sinks = pipes  # read end -> where it goes
        self._redactor = redactor
        self._lock = threading.Lock()
        self._quiet = False
        self._wake_read, self._wake = os.pipe()
        self.thread = threading.Thread(target=self._run, name="pytest-notebooks-kernel-output", daemon=True)
        self.thread.start()

    def quiet(self) -> None:
        """The case is over: forward the incomplete line and the kept tail, drop all that follows
        (it belongs to no case, and would land in the captured output of the next one)."""
        with self._lock:
            if self._quiet:
                return
            self._quiet = True
            for sink in self._sinks.values():
                carry, sink.carry = sink.carry, b""
                self._emit(sink, carry)
                if sink.past:
                    tail = b"".join(sink.tail)[-FORWARD_TAIL:]
                    said = (
                        f"[pytest-notebooks: {sink.past - len(tail):,} bytes of the kernel's {sink.name} were left "
                        f"out; its last {len(tail):,} bytes follow]\n"
                    )
                    self._write(sink, said.encode() + tail)

    def stop(self) -> None:
        """Close the pipes without waiting for EOF (the kernel is gone; its leftovers are killed)."""
        wake, self._wake = self._wake, -1
        if wake < 0:
            return
        with contextlib.suppress(OSError):  # the thread ended at EOF already and closed its end
            os.write(wake, b"x")
        os.close(wake)

    def _run(self) -> None:
        poller = select.poll()
        for fd in (*self._sinks, self._wake_read):
            poller.register(fd, select.POLLIN)
        reading = set(self._sinks)
        try:
            while reading:
                events = poller.poll()
                if any(fd == self._wake_read for fd, _event in events):
                    break
                for fd, _event in events:
                    try:
                        data = os.read(fd, LINE_LIMIT)
                    except OSError:
                        data = b""
                    if data:
                        self._take(self._sinks[fd], data)
                    else:  # EOF: every process holding the write end is gone
                        poller.unregister(fd)
                        reading.discard(fd)
                        os.close(fd)
        finally:
            for fd in (*reading, self._wake_read):
                os.close(fd)

    def _take(self, sink: _Sink, data: bytes) -> None:
        with self._lock:
            if self._quiet:
                return
            data = sink.carry + data
            end = data.rfind(b"\n") + 1
            if not end and len(data) < LINE_LIMIT:
                sink.carry = data
                return
            end = end or len(data)
            sink.carry = data[end:]
            self._emit(sink, data[:end])

    def _emit(self, sink: _Sink, data: bytes) -> None:
        """Forward ``data`` within the limit; keep what passes it in the tail."""
        if not data:
            return
        if self._redactor:
            data = self._redactor.text(data.decode(errors="replace")).encode()
        data = defuse_command_bytes(data)  # pytest shows it at column 0: no workflow commands
        room = FORWARD_LIMIT - sink.sent
        if room > 0:
            self._write(sink, data[:room])
            sink.sent += min(room, len(data))
            data = data[room:]
        if not data:
            return
        if not sink.past:
            self._write(sink, _cut_line(sink.name, at_line_start=sink.at_line_start))
        sink.past += len(data)
        sink.tail.append(data)
        sink.tail_size += len(data)
        while sink.tail_size - len(sink.tail[0]) >= FORWARD_TAIL:
            sink.tail_size -= len(sink.tail.popleft())

    @staticmethod
    def _write(sink: _Sink, data: bytes) -> None:
        if data:
            sink.at_line_start = data.endswith(b"\n")
        with contextlib.suppress(OSError):  # our fd 1 or 2 is closed: drop it, keep draining the pipe
            while data:
                data = data[os.write(sink.fd, data) :]


def _cut_line(name: str, *, at_line_start: bool) -> bytes:
    line = (
        f"[pytest-notebooks: the kernel's {name} passed its limit of {format_size(FORWARD_LIMIT)} here; the rest "
        f"is left out but for its last {format_size(FORWARD_TAIL)}, shown when the case ends]\n"
    )
    return ("" if at_line_start else "\n").encode() + line.encode()


def _take_pipes(process: Any, redactor: Redactor) -> _Forwarder:
    """Forward the kernel's stdout and stderr pipes. The forwarder gets its own copy of each read
    end, and the process object none: jupyter_client closes them once the kernel has exited, and
    closing a buffered reader waits for the thread reading it, that is for every process still
    holding the write end (a daemon the notebook started: for ever)."""
    pipes = {}
    for name, fd in (("stdout", 1), ("stderr", 2)):
        stream = getattr(process, name, None)
        if stream is not None:
            pipes[os.dup(stream.fileno())] = _Sink(name, fd)
            stream.close()  # nobody reads it yet: nothing to wait for
            setattr(process, name, None)
    return _Forwarder(pipes, redactor)


@dataclass(frozen=True)
class _Proc:
    """A process as /proc/PID/stat shows it; the pid and ``start`` together name one process."""

    ppid: int
    pgid: int
    sid: int
    start: int  # clock ticks after boot
    zombie: bool  # exited, not waited for yet


def _read(path: str, *, whole: bool = False) -> bytes | None:
    """A /proc file: its first 4 kB, or all of it (``os.read``: twice as fast as ``open``, which
    counts when reading all of /proc). None when it cannot be read."""
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


class _Family:
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


def _close_clients(manager: Any) -> None:
    for client in manager.__dict__.get("_issued_clients", []):
        client.stop_channels()


def _alive(manager: Any) -> bool:
    from jupyter_core.utils import run_sync

    try:
        return bool(run_sync(manager.is_alive)())
    except RuntimeError:  # forked.TemplateError: it never started
        return False


class KernelPool:
    """Kernels of one process: one or two started ahead for the next cases (see ``prepare``), and
    the ones asked to shut down, which are reaped later so that no case waits for the previous
    kernel to exit.

    ``start`` is ``fork`` or ``spawn`` (see the module docstring); ``preload`` names the modules
    the template imports (fork only).
    """

    def __init__(self, start: str = "spawn", preload: tuple[str, ...] = ()) -> None:
        if start not in KERNEL_STARTS:
            raise ValueError(f"kernel start must be one of {', '.join(KERNEL_STARTS)}, not {start!r}")
        self.kernel_start = start
        self.preload = preload
        self._templates: Any = None  # forked.Templates, created with the first forked kernel
        self._said: set[str] = set()  # spawned-instead-of-forked lines already shown
        self._ahead: list[tuple[KernelKey, Any]] = []  # kernels started for the next cases, in order
        self._last: KernelKey | None = None  # the key of the kernel taken last
        self._stopping: list[tuple[Any, float]] = []  # (manager, when the shutdown was requested)
        self._leftovers: list[_Family] = []  # families of kernels gone, with killed members to reap

    def take(self, key: KernelKey, extra_arguments: list[str]) -> Any:
        """The kernel started ahead for ``key``, or a new one; another one started ahead is stopped."""
        self._reap(wait=False)
        self._last = key
        while self._ahead:
            ahead_key, manager = self._ahead.pop(0)
            if ahead_key == key:
                _learn_pid(manager)
                return manager
            self.release(manager)
        manager = self._start(key, extra_arguments)
        _learn_pid(manager)
        return manager

    def _start(self, key: KernelKey, extra_arguments: list[str]) -> Any:
        if self.kernel_start != "fork":
            return start(key, extra_arguments)
        if self._templates is None:
            from pytest_notebooks.run.forked import Templates

            self._templates = Templates(self.preload)
        manager = start(key, extra_arguments, self._templates)
        reason = spawned_because(manager)
        if reason is not None:
            self._say(f"kernel {key.name!r} is spawned, not forked from the template process: {reason}")
        return manager

    def _say(self, line: str) -> None:
        """One warning per distinct line and process; under ``-W error`` it goes to stderr instead,
        because how a kernel starts must not fail a case."""
        if line in self._said:
            return
        self._said.add(line)
        try:
            warnings.warn(line, PytestNotebooksWarning, stacklevel=2)
        except Warning:
            os.write(2, f"pytest-notebooks: {line}\n".encode())

    def prepare(self, key: KernelKey | None, extra_arguments: list[str]) -> None:
        """Start the kernel of the next case now (``None``: no notebook case comes next).

        Forked kernels are cheap to start: when the next case needs the same kind of kernel as
        this one (same kernel, directory and environment), a second one is started for the case
        after it, which most likely needs it too. A kernel's start then overlaps two cases, not
        one; a guess that turns out wrong costs one forked kernel, shut down unused.
        """
        for stale in [entry for entry in self._ahead if entry[0] != key]:
            self._ahead.remove(stale)
            self.release(stale[1])
        if key is None:
            return
        wanted = 2 if self.kernel_start == "fork" and key == self._last else 1
        while len(self._ahead) < wanted:
            # A kernel that fails to start ahead is not this case's failure: the next case starts
            # its own and reports what goes wrong then.
            try:
                self._ahead.append((key, self._start(key, extra_arguments)))
            except Exception:  # noqa: BLE001 - see above
                break

    def release(self, manager: Any) -> None:
        """Ask the kernel to shut down (gracefully: atexit handlers run) without waiting for it."""
        from jupyter_core.utils import run_sync

        _close_clients(manager)
        output = manager.__dict__.get("_pytest_notebooks_output")
        if output is not None:
            output.quiet()
        family = manager.__dict__.get("_pytest_notebooks_family")
        if family is not None:
            family.learn(_kernel_pid(manager))
            family.stop()
        with contextlib.suppress(Exception):  # cannot even ask: it is killed when reaped
            if _alive(manager):
                run_sync(manager.request_shutdown)()
        self._stopping.append((manager, time.monotonic()))

    def _reap(self, *, wait: bool) -> None:
        """Clean up kernels that exited; kill those past SHUTDOWN_WAIT (with ``wait``: all)."""
        from jupyter_core.utils import run_sync

        pending = []
        for manager, asked in self._stopping:
            left = SHUTDOWN_WAIT - (time.monotonic() - asked)
            if _alive(manager) and not wait and left > 0:
                pending.append((manager, asked))
                continue
            try:
                self._finish(manager, max(left, 0.0), wait=wait)
            finally:
                run_sync(manager.cleanup_resources)()
        self._stopping = pending
        if wait:  # the session ends: a family still in its grace is killed now, not left to a daemon thread
            for family in self._leftovers:
                family.end(wait=True)
        self._leftovers = [family for family in self._leftovers if not family.reap()]

    def _finish(self, manager: Any, left: float, *, wait: bool) -> None:
        """End a kernel asked to shut down (killed after ``left`` s), then what it left running."""
        from jupyter_core.utils import run_sync

        family = manager.__dict__.get("_pytest_notebooks_family")
        output = manager.__dict__.get("_pytest_notebooks_output")
        try:
            if family is not None:
                family.learn(_kernel_pid(manager))  # before the provisioner forgets its process
            if _alive(manager):
                run_sync(manager.finish_shutdown)(waittime=left)  # kills when it must
        finally:
            if family is not None:
                family.end(wait=wait)
                self._leftovers.append(family)
            if output is not None:
                output.stop()

    def close(self) -> None:
        """Stop every kernel of this pool (end of a case run alone, or of the session), then the
        template processes."""
        ahead, self._ahead = self._ahead, []
        for _key, manager in ahead:
            self.release(manager)
        try:
            self._reap(wait=True)
        finally:
            templates, self._templates = self._templates, None
            if templates is not None:
                templates.close()
