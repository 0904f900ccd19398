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

A kernel's own stdout and stderr (what a subprocess of a cell writes, which ipykernel also echoes
there) reach pytest through a pipe, with secrets masked (see redact.py). Once a kernel has been
asked to shut down, what it still writes there is dropped: it belongs to no case, and would land
in the captured output of whichever case runs next. That is where ``ZMQError: Socket operation on
non-socket`` tracebacks came from, about one run in five of thirty cases here: ipykernel 7.4's
control handler flushes stdout after its shutdown handler has closed the IOPub thread (the race
is in the kernel, whatever order the client closes in).
"""

from __future__ import annotations

import contextlib
import functools
import os
import subprocess
import tempfile
import threading
import time
import uuid
import warnings
from dataclasses import dataclass
from typing import IO, Any

from pytest_notebooks.errors import PytestNotebooksWarning
from pytest_notebooks.redact import Redactor, clean_environ

SHUTDOWN_WAIT = 1.0  # seconds a kernel gets to exit after the shutdown request
LINE_LIMIT = 65536  # bytes of kernel stdout/stderr forwarded at a time
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
    run_sync(manager.start_kernel)(
        cwd=key.cwd, extra_arguments=arguments, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    quiet = threading.Event()
    manager.__dict__["_pytest_notebooks_quiet"] = quiet
    process = getattr(manager.provisioner, "process", None)
    redactor = Redactor.from_environ(os.environ, key.redact)
    for name, fd in (("stdout", 1), ("stderr", 2)):
        stream = getattr(process, name, None)
        if stream is not None:
            threading.Thread(
                target=_forward,
                args=(stream, fd, redactor, quiet),
                name=f"pytest-notebooks-kernel-{name}",
                daemon=True,  # a daemon the notebook left behind may hold the pipe open
            ).start()
    return manager


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


def _forward(stream: IO[bytes], fd: int, redactor: Redactor, quiet: threading.Event) -> None:
    """Copy a kernel's stdout or stderr to ours (fd ``fd``, where pytest captures it), masked."""
    with contextlib.suppress(OSError, ValueError), stream:
        for chunk in iter(functools.partial(stream.readline, LINE_LIMIT), b""):
            if quiet.is_set():
                continue
            if redactor:
                chunk = redactor.text(chunk.decode(errors="replace")).encode()
            while chunk:
                chunk = chunk[os.write(fd, chunk) :]


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

    def take(self, key: KernelKey, extra_arguments: list[str]) -> Any:
        """The kernel started ahead for ``key``, or a new one; another one started ahead is stopped."""
        self._reap(wait=False)
        self._last = key
        while self._ahead:
            ahead_key, manager = self._ahead.pop(0)
            if ahead_key == key:
                return manager
            self.release(manager)
        return self._start(key, extra_arguments)

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
        quiet = manager.__dict__.get("_pytest_notebooks_quiet")
        if quiet is not None:
            quiet.set()
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
                if _alive(manager):
                    run_sync(manager.finish_shutdown)(waittime=max(left, 0.0))  # kills when it must
            finally:
                run_sync(manager.cleanup_resources)()
        self._stopping = pending

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
