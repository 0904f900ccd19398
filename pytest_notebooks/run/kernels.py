"""Kernel processes for cases: started one case ahead, forwarded and bounded, shut down by us.

Waiting for a fresh kernel is most of a small case's time, so while case N runs, the kernel of
case N+1 (the next item pytest runs on this worker) is already booting. Every case still gets a
kernel of its own, started in its notebook's directory, and no kernel ever runs two cases.
``KernelPool`` keeps that bookkeeping; how a kernel process starts is a ``KernelStarter`` chosen
once (``notebooks_kernel_start``): spawned as jupyter_client does, or forked from a template
process (run/forked.py). Each start returns a ``KernelHandle``, which owns what we keep beside
jupyter_client's manager: the kernel's forwarded output and the processes it leaves.
"""

from __future__ import annotations

import contextlib
import os
import select
import subprocess
import threading
import time
import uuid
import warnings
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from pytest_notebooks.errors import KernelTemplateError, PytestNotebooksWarning
from pytest_notebooks.redact import Redactor, clean_environ
from pytest_notebooks.run.budget import StreamBudget
from pytest_notebooks.run.family import MARKER, SHUTDOWN_WAIT, VOLATILE, Family

# Imported with the plugin, not with the first kernel: pytester's in-process runs drop the modules
# they imported, and a re-imported ipcfiles would make the process another directory each run.
from pytest_notebooks.run.ipcfiles import kernel_paths
from pytest_notebooks.terminal import defuse_command_bytes

if TYPE_CHECKING:
    from pytest_notebooks.run.forked import Templates

__all__ = [
    "FORWARD_LIMIT",
    "FORWARD_TAIL",
    "KERNEL_STARTS",
    "MARKER",
    "SHUTDOWN_WAIT",
    "ForkStarter",
    "KernelHandle",
    "KernelKey",
    "KernelPool",
    "KernelStarter",
    "SpawnStarter",
    "kernel_starter",
    "launch",
    "never_forked",
    "stable_environ",
]

LINE_LIMIT = 65536  # bytes of kernel stdout/stderr forwarded at a time
PID_ANSWER_WAIT = 30.0  # seconds a case waits for a forked kernel's pid (a bound for a stuck machine)
FORWARD_LIMIT = 10_000_000  # bytes of each of a kernel's stdout and stderr forwarded as they come
FORWARD_TAIL = 1_000_000  # bytes past that limit kept (the last ones) and forwarded when the case ends


@dataclass(frozen=True)
class KernelKey:
    """What a kernel must match to serve a case: the kernel spec, the working directory and the
    environment it starts with (a kernel started ahead with another ``env`` serves no case)."""

    name: str
    cwd: str
    clean_env: bool = False  # start without the credential-looking variables
    redact: tuple[str, ...] = ()  # extra names/globs of credential variables (notebooks_redact)
    env: tuple[tuple[str, str], ...] = ()  # the case's fixture `env:`, set over the inherited (or clean) one

    def environ(self) -> dict[str, str]:
        """The environment the kernel starts with: pytest's (less its credentials with ``clean_env``),
        then the fixture's ``env:``, which is added after the cleaning on purpose."""
        env = clean_environ(os.environ, self.redact) if self.clean_env else dict(os.environ)
        env.update(self.env)
        return env

    def redactor(self) -> Redactor:
        """The secrets of pytest's environment and of the fixture's ``env:``."""
        return Redactor.from_environ({**os.environ, **dict(self.env)}, self.redact)


def stable_environ(environ: Mapping[str, str] = os.environ) -> dict[str, str]:
    """The environment a kernel started now starts from, less what differs between the kernels of
    one session anyway (VOLATILE)."""
    return {name: value for name, value in environ.items() if name not in VOLATILE}


@dataclass
class KernelHandle:
    """A kernel this process started: the jupyter_client manager papermill drives (``manager``),
    the processes the kernel may leave running (``family``), the forwarder of its fds 1 and 2
    (``output``), why a kernel meant to be forked was spawned (``spawned_because``), the
    environment it started from (``environ``, ``stable_environ()``; None: not known), and whether
    a case took it (``taken``)."""

    manager: Any  # run/clients.py's TrackingKernelManager
    family: Family
    output: Forwarder | None = None
    spawned_because: str | None = None
    environ: dict[str, str] | None = None
    taken: bool = False

    @property
    def pid(self) -> int | None:
        """The kernel's pid, while the provisioner knows it (a forked kernel's: once the template said it)."""
        provisioner = getattr(self.manager, "provisioner", None)
        pid = getattr(getattr(provisioner, "process", None), "pid", None) or getattr(provisioner, "pid", None)
        return pid if isinstance(pid, int) else None

    def learn_pid(self) -> None:
        """Learn the kernel's pid before its case runs, while the kernel is surely alive. A forked
        kernel's pid comes with the template's answer, which the start does not wait for: under load
        it had not come then, the case's timeout killed the kernel, it was reaped before its release
        looked, and the daemons it had started were never ended. The answer follows the fork closely."""
        if self.family.pid is not None:
            return
        process = getattr(getattr(self.manager, "provisioner", None), "process", None)
        waiter = getattr(process, "wait_for_pid", None)
        if callable(waiter):
            waiter(PID_ANSWER_WAIT)
        self.family.learn(self.pid)

    def alive(self) -> bool:
        from jupyter_core.utils import run_sync

        try:
            return bool(run_sync(self.manager.is_alive)())
        except KernelTemplateError:  # it never started
            return False

    def request_shutdown(self) -> None:
        """Ask the kernel to shut down (gracefully: atexit handlers run) without waiting for it.

        The clients' channels are stopped first; what the kernel still writes to fds 1 and 2 is
        dropped from now on (it belongs to no case, and would land in the captured output of the
        next one), and what it left running is asked to stop.
        """
        from jupyter_core.utils import run_sync

        self.manager.close_clients()
        if self.output is not None:
            self.output.quiet()
        self.family.learn(self.pid)
        self.family.stop()
        with contextlib.suppress(Exception):  # cannot even ask: it is killed when reaped
            if self.alive():
                run_sync(self.manager.request_shutdown)()

    def finish(self, left: float, *, wait: bool) -> None:
        """End a kernel asked to shut down (killed after ``left`` s), then what it left running; the
        manager's control socket, zmq context and connection files are cleaned up last."""
        from jupyter_core.utils import run_sync

        try:
            self._end(left, wait=wait)
        finally:
            run_sync(self.manager.cleanup_resources)()

    def _end(self, left: float, *, wait: bool) -> None:
        from jupyter_core.utils import run_sync

        try:
            self.family.learn(self.pid)  # before the provisioner forgets its process
            if self.alive():
                run_sync(self.manager.finish_shutdown)(waittime=left)  # kills when it must
        finally:
            self.family.end(wait=wait)
            if self.output is not None:
                self.output.stop()

    def leftovers_gone(self, *, wait: bool) -> bool:
        """Whether every process the kernel left has been killed and reaped (``wait``: the session
        ends, kill what is still in its grace now rather than from a thread)."""
        if wait:
            self.family.end(wait=True)
        return self.family.reap()


def launch(key: KernelKey, extra_arguments: list[str], templates: Templates | None = None) -> KernelHandle:
    """Start a kernel for ``key`` without waiting for it to be ready.

    With ``templates`` (run/forked.py's), the kernel is forked from a template process when it can
    be; the handle's ``spawned_because`` says why it was not. Its stdout and stderr are pipes to
    this process, and its environment holds MARKER, one value per kernel.
    """
    from jupyter_core.utils import run_sync

    from pytest_notebooks.run.clients import TrackingKernelManager, kernel_config

    ipc = kernel_paths() if os.name == "posix" else None
    manager = TrackingKernelManager(kernel_name=key.name, config=kernel_config(SHUTDOWN_WAIT, ipc))
    refused = None
    if templates is not None and not never_forked(manager.kernel_spec):
        refused = _fork_from(manager, templates)
    arguments = [*extra_arguments, "--HistoryManager.hist_file=:memory:"]
    environ = stable_environ()
    env = key.environ()
    marker = uuid.uuid4().hex
    env[MARKER] = marker
    run_sync(manager.start_kernel)(
        cwd=key.cwd, extra_arguments=arguments, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    process = getattr(manager.provisioner, "process", None)
    output = _take_pipes(process, key.redactor())
    spawned = refused or getattr(manager.provisioner, "fallback", None)  # set by run/forked.py's provisioner
    handle = KernelHandle(manager, Family(marker), output, spawned, environ)
    handle.family.learn(handle.pid)
    return handle


def never_forked(spec: Any) -> bool:
    """Whether a kernelspec is of another language than Python (IRkernel's ``R``, IJulia's ``julia``).

    Only ipykernel can be forked from a Python template, so such a kernel is spawned, as it always
    is, and nothing is said: a warning there said what every R case does, and failed every run
    under ``-W error``. A Python kernel that cannot be forked still gets its warning line.
    """
    language = getattr(spec, "language", None)
    return isinstance(language, str) and language.strip().lower() not in ("", "python")


def _fork_from(manager: Any, templates: Templates) -> str | None:
    """Give ``manager`` the forking provisioner; why not, when its kernelspec names a provisioner
    of its own."""
    from pytest_notebooks.run.forked import PROVISIONER_NAME, ForkedProvisioner

    spec = manager.kernel_spec
    named = (spec.metadata or {}).get("kernel_provisioner", {}).get("provisioner_name")
    if named not in (None, "local-provisioner", PROVISIONER_NAME):
        return f"its kernelspec names the kernel provisioner {named!r}"
    manager.kernel_id = str(uuid.uuid4())
    provisioner = ForkedProvisioner(kernel_id=manager.kernel_id, kernel_spec=spec, parent=manager)
    provisioner.templates = templates
    manager.provisioner = provisioner
    return None


class KernelStarter(Protocol):
    """How the kernels of a pool start (``notebooks_kernel_start``), chosen once per session."""

    name: str  # the notebooks_kernel_start value
    preload: tuple[str, ...]  # modules imported before a kernel starts (the fork template's)
    ahead: int  # kernels started ahead when the next case wants the kind of kernel the last one had

    def start(self, key: KernelKey, extra_arguments: list[str]) -> KernelHandle:
        """A new kernel for ``key``, not waited for."""
        ...

    def close(self) -> None:
        """The session ends: stop what the starter keeps running (the template processes)."""
        ...


class SpawnStarter:
    """Each kernel a new interpreter, as jupyter_client starts it."""

    name = "spawn"
    ahead = 1

    def __init__(self, preload: tuple[str, ...] = ()) -> None:
        self.preload: tuple[str, ...] = ()  # nothing is imported ahead of a spawned kernel

    def start(self, key: KernelKey, extra_arguments: list[str]) -> KernelHandle:
        return launch(key, extra_arguments)

    def close(self) -> None:
        pass


class ForkStarter:
    """Each kernel forked from a template process that has imported ipykernel and ``preload``
    already (run/forked.py). A kernel of another language is spawned (``never_forked``); a Python
    kernel that cannot be forked (another environment, not Linux) is spawned too, and the first such
    kernel of each kind says why in one warning line.

    Forked kernels are cheap to start, so two are started ahead when the next case wants the
    kind of kernel the last one had (the case after it most likely wants it too).
    """

    name = "fork"
    ahead = 2

    def __init__(self, preload: tuple[str, ...] = ()) -> None:
        self.preload = preload
        self._templates: Templates | None = None  # created with the first kernel
        self._said: set[str] = set()  # spawned-instead-of-forked lines already shown

    def start(self, key: KernelKey, extra_arguments: list[str]) -> KernelHandle:
        if self._templates is None:
            from pytest_notebooks.run.forked import Templates

            self._templates = Templates(self.preload)
        handle = launch(key, extra_arguments, self._templates)
        if handle.spawned_because is not None:
            self._say(f"kernel {key.name!r} is spawned, not forked from the template process: {handle.spawned_because}")
        return handle

    def _say(self, line: str) -> None:
        """One warning per distinct line and session; under ``-W error`` it goes to stderr instead,
        because how a kernel starts must not fail a case."""
        if line in self._said:
            return
        self._said.add(line)
        try:
            warnings.warn(line, PytestNotebooksWarning, stacklevel=2)
        except Warning:
            os.write(2, f"pytest-notebooks: {line}\n".encode())

    def close(self) -> None:
        templates, self._templates = self._templates, None
        if templates is not None:
            templates.close()


STARTERS: dict[str, Callable[[tuple[str, ...]], KernelStarter]] = {"fork": ForkStarter, "spawn": SpawnStarter}
KERNEL_STARTS = tuple(STARTERS)  # notebooks_kernel_start


def kernel_starter(name: str, preload: tuple[str, ...] = ()) -> KernelStarter:
    """The starter called ``name`` in ``notebooks_kernel_start``."""
    if name not in STARTERS:
        raise ValueError(f"kernel start must be one of {', '.join(KERNEL_STARTS)}, not {name!r}")
    return STARTERS[name](preload)


def _default_budget() -> StreamBudget:
    return StreamBudget(FORWARD_LIMIT, FORWARD_TAIL)


@dataclass
class Sink:
    """Where one of a kernel's streams goes (fd 1 or 2 of this process), and how much of it went."""

    name: str  # stdout, stderr
    fd: int
    carry: bytes = b""  # the start of a line not yet complete
    budget: StreamBudget = field(default_factory=_default_budget)
    at_line_start: bool = True


class Forwarder:
    """Copies a kernel's stdout and stderr (what its subprocesses write to fds 1 and 2) to this
    process's fds 1 and 2, where pytest captures them: masked, and bounded like cell output
    (pytest holds a test's captured output in memory).

    One thread per kernel owns the read ends of both pipes. Nobody ever waits for it: a process
    the notebook left running may hold the write ends for ever. It ends at EOF (the kernel and
    every process it started are gone) or when ``stop`` is called, and closes the pipes itself.

    The first FORWARD_LIMIT bytes of each stream are forwarded as they come; past them a marker
    line says so, and only the last FORWARD_TAIL bytes are kept, forwarded when the case ends
    (``quiet``) after a line saying how many were left out (run/budget.py's ``StreamBudget``).
    Read in chunks, written line by line (a line is masked whole up to LINE_LIMIT bytes).
    """

    def __init__(self, pipes: dict[int, Sink], redactor: Redactor) -> None:
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
                self._write(sink, sink.budget.summary(sink.name))

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
                    if not self._read(fd):  # EOF: every process holding the write end is gone
                        poller.unregister(fd)
                        reading.discard(fd)
                        os.close(fd)
        finally:
            for fd in (*reading, self._wake_read):
                os.close(fd)

    def _read(self, fd: int) -> bool:
        """Forward what can be read from ``fd`` now; False at its end."""
        try:
            data = os.read(fd, LINE_LIMIT)
        except OSError:
            data = b""
        if data:
            self._take(self._sinks[fd], data)
        return bool(data)

    def _take(self, sink: Sink, data: bytes) -> None:
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

    def _emit(self, sink: Sink, data: bytes) -> None:
        """Forward ``data`` within the limit; keep what passes it in the tail."""
        if not data:
            return
        if self._redactor:
            data = self._redactor.text(data.decode(errors="replace")).encode()
        data = defuse_command_bytes(data)  # pytest shows it at column 0: no workflow commands
        head, passing = sink.budget.take(data)
        self._write(sink, head)
        if passing:
            line = sink.budget.passed_line(sink.name).encode()
            self._write(sink, line if sink.at_line_start else b"\n" + line)

    @staticmethod
    def _write(sink: Sink, data: bytes) -> None:
        if data:
            sink.at_line_start = data.endswith(b"\n")
        with contextlib.suppress(OSError):  # our fd 1 or 2 is closed: drop it, keep draining the pipe
            while data:
                data = data[os.write(sink.fd, data) :]


def _take_pipes(process: Any, redactor: Redactor) -> Forwarder:
    """Forward the kernel's stdout and stderr pipes. The forwarder gets its own copy of each read
    end, and the process object none: jupyter_client closes them once the kernel has exited, and
    closing a buffered reader waits for the thread reading it, that is for every process still
    holding the write end (a daemon the notebook started: for ever)."""
    pipes = {}
    for name, fd in (("stdout", 1), ("stderr", 2)):
        stream = getattr(process, name, None)
        if stream is not None:
            pipes[os.dup(stream.fileno())] = Sink(name, fd)
            stream.close()  # nobody reads it yet: nothing to wait for
            setattr(process, name, None)
    return Forwarder(pipes, redactor)


class KernelPool:
    """Kernels of one process: one or two started ahead for the next cases (see ``prepare``), and
    the ones asked to shut down, which are finished later so that no case waits for the previous
    kernel to exit: a kernel that has not exited SHUTDOWN_WAIT s after the request is killed.

    A kernel started ahead serves a case that wants its key, in the environment it started from
    (a kernel started before something changed ``os.environ`` is stopped, and another started).

    ``start`` is a KernelStarter, or its name (``fork``, ``spawn``) and ``preload`` (fork only).
    """

    def __init__(self, start: str | KernelStarter = "spawn", preload: tuple[str, ...] = ()) -> None:
        self.starter = kernel_starter(start, preload) if isinstance(start, str) else start
        self._ahead: list[tuple[KernelKey, KernelHandle]] = []  # kernels started for the next cases, in order
        self._last: KernelKey | None = None  # the key of the kernel taken last
        self._stopping: list[tuple[KernelHandle, float]] = []  # (kernel, when its shutdown was requested)
        self._leftovers: list[KernelHandle] = []  # kernels gone, whose leftovers are still to be reaped
        self._held: list[warnings.WarningMessage] = []  # given with the next kernel taken (see ``hold``)

    @property
    def kernel_start(self) -> str:
        return self.starter.name

    @property
    def preload(self) -> tuple[str, ...]:
        return self.starter.preload

    def take(self, key: KernelKey, extra_arguments: list[str]) -> KernelHandle:
        """The kernel started ahead for ``key``, or a new one; another one started ahead is stopped.

        A forked kernel's pid may not be known yet (the template answers once it has forked it):
        the case calls ``learn_pid`` before it runs, after the work it can do meanwhile."""
        self._give_held()
        self._reap(wait=False)
        self._last = key
        handle = self._take_ahead(key)
        if handle is None:
            handle = self.starter.start(key, extra_arguments)
        handle.taken = True
        return handle

    def _take_ahead(self, key: KernelKey) -> KernelHandle | None:
        """The first kernel started ahead for ``key`` in this environment; those started ahead of it
        for others are stopped."""
        environ = stable_environ()
        while self._ahead:
            ahead_key, handle = self._ahead.pop(0)
            if ahead_key == key and handle.environ in (None, environ):
                return handle
            self.release(handle)
        return None

    def hold(self, caught: Iterable[warnings.WarningMessage]) -> None:
        """Warnings caught while kernels started before any case ran (run/execute.py's ``warm_up``):
        they are given when the next kernel is taken, inside pytest's capture of that case's
        warnings, where they came before kernels were started that early."""
        self._held.extend(caught)

    def _give_held(self) -> None:
        held, self._held = self._held, []
        for message in held:
            try:
                warnings.warn_explicit(
                    message.message, message.category, message.filename, message.lineno, source=message.source
                )
            except Warning:  # -W error: ours go to stderr, as ForkStarter._say does; others fail the case as before
                if not issubclass(message.category, PytestNotebooksWarning):
                    raise
                os.write(2, f"pytest-notebooks: {message.message}\n".encode())

    def prepare(self, key: KernelKey | None, extra_arguments: list[str]) -> None:
        """Start the kernel of the next case now (``None``: no notebook case comes next).

        When the next case wants the kind of kernel the last one had (same kernel, directory and
        environment), the starter may start more than one (its ``ahead``): a kernel's start then
        overlaps two cases, not one; a guess that turns out wrong costs one kernel, shut down unused.
        """
        for stale in [entry for entry in self._ahead if entry[0] != key]:
            self._ahead.remove(stale)
            self.release(stale[1])
        if key is None:
            return
        wanted = self.starter.ahead if key == self._last else 1
        while len(self._ahead) < wanted:
            # A kernel that fails to start ahead is not this case's failure: the next case starts
            # its own and reports what goes wrong then.
            try:
                self._ahead.append((key, self.starter.start(key, extra_arguments)))
            except Exception:  # noqa: BLE001 - see above
                break

    def release(self, handle: KernelHandle) -> None:
        """Ask the kernel to shut down without waiting for it; it is finished later."""
        handle.request_shutdown()
        self._stopping.append((handle, time.monotonic()))

    def _reap(self, *, wait: bool) -> None:
        """Finish the kernels that exited; kill those past SHUTDOWN_WAIT. With ``wait`` (the pool
        closes) all of them: a kernel no case took is killed at once (nothing of a case ran in it,
        and it may still be starting, so its graceful exit would be the session's last wait)."""
        pending = []
        for handle, asked in self._stopping:
            left = SHUTDOWN_WAIT - (time.monotonic() - asked)
            if wait and not handle.taken:
                left = 0.0
            if not wait and left > 0 and handle.alive():
                pending.append((handle, asked))
                continue
            try:
                handle.finish(max(left, 0.0), wait=wait)
            finally:
                self._leftovers.append(handle)
        self._stopping = pending
        self._leftovers = [handle for handle in self._leftovers if not handle.leftovers_gone(wait=wait)]

    def close(self) -> None:
        """Stop every kernel of this pool (end of a case run alone, or of the session) and what the
        starter keeps running: the template processes exit while the kernels do (a forked kernel
        is this process's child, not its template's), and the session's end waits for the longer."""
        ahead, self._ahead = self._ahead, []
        for _key, handle in ahead:
            self.release(handle)
        try:
            self.starter.close()
        finally:
            self._reap(wait=True)
