"""Kernel processes for cases: started one case ahead, shut down by us. Imports jupyter_client.

Waiting for a fresh ipykernel to be ready is most of a small case's time (0.47 of 0.68 s here,
see bench/README.md). So while case N runs, the kernel of case N+1 (the next item pytest will
run on this worker) is already booting in its own process. Every case still gets a kernel of
its own, started in its notebook's directory, and no kernel ever runs two cases.

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
from dataclasses import dataclass
from typing import IO, Any

from pytest_notebooks.redact import Redactor, clean_environ

SHUTDOWN_WAIT = 1.0  # seconds a kernel gets to exit after the shutdown request
LINE_LIMIT = 65536  # bytes of kernel stdout/stderr forwarded at a time


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


def _manager_class() -> Any:
    from jupyter_client.manager import AsyncKernelManager

    class TrackingKernelManager(AsyncKernelManager):
        """Remembers the clients it hands out, so that their sockets can be closed with it."""

        def client(self, **kwargs: Any) -> Any:
            client = super().client(**kwargs)
            self.__dict__.setdefault("_issued_clients", []).append(client)
            return client

    return TrackingKernelManager


def start(key: KernelKey, extra_arguments: list[str]) -> Any:
    """Launch a kernel for ``key`` and return its manager without waiting for it to be ready."""
    from jupyter_core.utils import run_sync

    manager = _manager_class()(kernel_name=key.name, config=_config())
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

    return bool(run_sync(manager.is_alive)())


class KernelPool:
    """Kernels of one process: at most one started ahead for the next case, and the ones asked to
    shut down, which are reaped later so that no case waits for the previous kernel to exit."""

    def __init__(self) -> None:
        self._ahead: tuple[KernelKey, Any] | None = None
        self._stopping: list[tuple[Any, float]] = []  # (manager, when the shutdown was requested)

    def take(self, key: KernelKey, extra_arguments: list[str]) -> Any:
        """The kernel started ahead for ``key``, or a new one; another one started ahead is stopped."""
        self._reap(wait=False)
        ahead, self._ahead = self._ahead, None
        if ahead is not None:
            if ahead[0] == key:
                return ahead[1]
            self.release(ahead[1])
        return start(key, extra_arguments)

    def prepare(self, key: KernelKey | None, extra_arguments: list[str]) -> None:
        """Start the kernel of the next case now (``None``: no notebook case comes next)."""
        if self._ahead is not None and self._ahead[0] != key:
            self.release(self._ahead[1])
            self._ahead = None
        if key is not None and self._ahead is None:
            # A kernel that fails to start ahead is not this case's failure: the next case starts
            # its own and reports what goes wrong then.
            with contextlib.suppress(Exception):
                self._ahead = (key, start(key, extra_arguments))

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
        """Stop every kernel of this pool (end of a case run alone, or of the session)."""
        ahead, self._ahead = self._ahead, None
        if ahead is not None:
            self.release(ahead[1])
        self._reap(wait=True)
