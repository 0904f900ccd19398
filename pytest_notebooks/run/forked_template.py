"""The kernel template process: ``python -m pytest_notebooks.run.forked_template CONTROL_FD PRELOAD_JSON``.

Everything here runs outside pytest, in the template run/forked.py starts: it imports what a
kernel needs (and the ``notebooks_preload`` modules) once, then forks a kernel per request, each
of which becomes the process a spawned ``python -m ipykernel_launcher`` would be. Why that is
safe, and where it differs from a spawned kernel, is told in run/forked.py.
"""

from __future__ import annotations

import atexit
import contextlib
import gc
import importlib
import importlib.util
import inspect
import json
import os
import socket
import sys
import threading
import time
from dataclasses import dataclass
from typing import NoReturn

from pytest_notebooks.run.forkwire import REQUEST_FDS, ForkAnswer, ForkRequest, WireError, read_line


@dataclass(frozen=True)
class _Job:
    """What a freshly forked kernel runs: ipykernel with the request's arguments, on these fds."""

    request: ForkRequest
    stdout: int
    stderr: int


def _preload(modules: list[str]) -> str | None:
    """Import ``modules`` as a kernel started in this directory would; why one is refused, or None.

    A module is refused when importing it starts a Python thread or opens a socket: a kernel
    forked after it would get the module's state without the thread, or a socket shared with
    every other kernel. What the imports print goes to /dev/null: it belongs to no case (debugpy,
    which ipykernel.debugger imports, warns about frozen modules; a spawned kernel does not).
    """
    sys.path.insert(_cwd_position(), "")
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    os.close(devnull)
    try:
        for name in modules:
            problem = _import(name)
            if problem is not None:
                return problem
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
        sys.path.remove("")
    return None


def _import(name: str) -> str | None:
    """Import one preloaded module; why it cannot be forked after, or None."""
    sockets = _open_sockets()
    try:
        importlib.import_module(name)
    except BaseException as exc:  # noqa: BLE001 - reported to every case, never raised here
        failed = f"{type(exc).__name__}: {exc}"
        return f"notebooks_preload: importing {name!r} in the kernel template process failed: {failed}"
    threads = [thread.name for thread in threading.enumerate() if thread is not threading.main_thread()]
    if threads:
        return (
            f"notebooks_preload: importing {name!r} started {len(threads)} thread(s) ({', '.join(threads)}): "
            "a kernel forked after it would get the module's state without the thread. "
            f"Leave {name!r} out of notebooks_preload / --notebooks-preload (notebooks import it as usual)"
        )
    opened = _open_sockets() - sockets
    if opened:
        return (
            f"notebooks_preload: importing {name!r} opened {len(opened)} socket(s): every forked kernel "
            f"would share them. Leave {name!r} out of notebooks_preload / --notebooks-preload"
        )
    return None


def _cwd_position() -> int:
    """Where IPython puts ``''`` on sys.path: before the first site-packages directory."""
    for index, path in enumerate(sys.path):
        if os.path.basename(path) in ("site-packages", "dist-packages"):
            return index
    return 0


def _open_sockets() -> set[str]:
    found = set()
    with contextlib.suppress(OSError):
        for fd in os.listdir("/proc/self/fd"):
            with contextlib.suppress(OSError):
                target = os.readlink(f"/proc/self/fd/{fd}")
                if target.startswith("socket:"):
                    found.add(target)
    return found


def _answer(sock: socket.socket, answer: ForkAnswer) -> None:
    with contextlib.suppress(OSError):  # the pytest side is gone: nobody to tell
        sock.settimeout(5.0)
        sock.sendall(answer.encode())


def _serve(control_fd: int, preload: list[str]) -> _Job | None:
    """The template's loop: one fork request at a time. Returns a job in a forked kernel only; in
    the template it returns None once the pytest process has closed the control socket."""
    if sys.path and sys.path[0] in ("", os.getcwd()):
        del sys.path[0]  # `-m` put the working directory first; ipykernel_launcher removes it too
    control = socket.socket(fileno=control_fd)
    problem = _preload(preload)
    while True:
        try:
            message, fds, _flags, _address = socket.recv_fds(control, 1, REQUEST_FDS)
        except OSError:
            message, fds = b"", []
        if not message or len(fds) != REQUEST_FDS:
            for fd in fds:
                os.close(fd)
            if not message:
                return None  # the pytest process is done, or gone
            continue
        sock, out, err = socket.socket(fileno=fds[0]), fds[1], fds[2]
        job = _fork(control, sock, out, err, problem)
        if job is not None:
            return job  # in the kernel, which keeps its two streams
        sock.close()
        os.close(out)
        os.close(err)


def _fork(control: socket.socket, sock: socket.socket, out: int, err: int, problem: str | None) -> _Job | None:
    """Fork a kernel for the request on ``sock`` and answer with its pid once it is the pytest
    process's child: fork a middle process, which forks the kernel, says its pid and exits."""
    try:
        request = ForkRequest.decode(read_line(sock))
    except (OSError, WireError):
        return None
    if problem is None and threading.active_count() != 1:
        problem = f"the kernel template process runs {threading.active_count()} threads; it forks with one only"
    if problem is not None:
        _answer(sock, ForkAnswer(error=problem))
        return None
    sys.stdout.flush()
    sys.stderr.flush()
    # Everything the template holds now is moved out of the collector's reach, so that a kernel's
    # collections (IPython's exit runs one) neither walk nor write to the inherited objects, each
    # write copying the page it sits on (see bench/README.md).
    gc.freeze()
    read, write = os.pipe()
    middle = os.fork()
    if middle == 0:
        kernel = -1
        try:
            os.close(read)
            kernel = os.fork()
            if kernel == 0:
                os.close(write)
                control.close()
                sock.close()
                return _Job(request, out, err)
            os.write(write, str(kernel).encode())
        finally:
            if kernel != 0:
                os._exit(0)  # the middle process: nothing of Python's to clean up, or it would run twice
    os.close(write)
    with os.fdopen(read, "rb") as said:
        pid = said.read()
    os.waitpid(middle, 0)  # once it is gone, the kernel is the pytest process's child
    _answer(sock, ForkAnswer(pid=int(pid)) if pid else ForkAnswer(error="the kernel template process could not fork"))
    return None


def _become_kernel(job: _Job) -> None:
    """In the forked kernel: the process a spawned ``python -m ipykernel_launcher`` would be."""
    request = job.request
    os.setsid()
    stdin = os.open(os.devnull, os.O_RDONLY)
    for fd, target in ((stdin, 0), (job.stdout, 1), (job.stderr, 2)):
        if fd != target:
            os.dup2(fd, target)
    for fd in {stdin, job.stdout, job.stderr} - {0, 1, 2}:
        os.close(fd)
    os.chdir(request.cwd)
    os.environ.clear()
    os.environ.update(request.env)
    argv = list(request.argv)
    launcher = importlib.util.find_spec("ipykernel_launcher")
    sys.argv = [(launcher.origin if launcher and launcher.origin else "ipykernel_launcher"), *argv]
    if "numpy.random" in sys.modules:  # its global generator was seeded once, in the template
        sys.modules["numpy.random"].seed()
    from ipykernel.kernelapp import IPKernelApp

    parent = int(request.env.get("JPY_PARENT_PID") or 0)
    _watch_parent(parent)
    # ipykernel read JPY_PARENT_PID when the template imported it: give it pytest's pid now.
    IPKernelApp.launch_instance(argv=argv, parent_handle=parent)


def _watch_parent(parent: int) -> None:
    """End this kernel when the pytest process ``parent`` is gone (killed: its kernels are
    orphans). ipykernel 7 watches for any change of parent itself; 6.x only for a parent that
    became init, but an orphan goes to the nearest child subreaper above it, which is often not
    init (an outer pytest running forked kernels, a service manager): such a kernel lived on."""
    from ipykernel.parentpoller import ParentPollerUnix

    if parent <= 1 or "parent_pid" in inspect.signature(ParentPollerUnix).parameters:
        return  # no parent to watch, or ipykernel watches it
    threading.Thread(
        target=_end_with_parent, args=(parent, os.getppid()), name="pytest-notebooks-parent", daemon=True
    ).start()


def _end_with_parent(parent: int, first: int) -> None:
    """Exit once this process's parent is neither ``parent`` (pytest) nor ``first`` (the middle
    process, until it has exited), as ipykernel's poller ends a kernel whose parent is gone."""
    while os.getppid() in (parent, first):
        time.sleep(1.0)
    os._exit(1)


def _end_without_teardown(status: int) -> NoReturn:
    """End a kernel as the interpreter would, minus the modules' teardown: join the non-daemon
    threads, run every atexit handler (last registered first: IPython's clears the notebook's
    namespace, which closes the files a notebook left open; coverage's saves its data, including
    handlers registered before this module ran, such as a ``.pth`` file's), flush, exit. Teardown
    would write to every page the template's imports filled, each one copied for this process
    first, at several times the cost of the kernel's start (see bench/README.md). What teardown
    alone would still do (a ``__del__`` only it calls) is lost, as in a ``multiprocessing`` child."""
    with contextlib.suppress(Exception):
        threading._shutdown()  # type: ignore[attr-defined]  # what Py_FinalizeEx does first
    atexit._run_exitfuncs()  # then this, which also empties the list
    for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
        with contextlib.suppress(Exception):
            if stream is not None:
                stream.flush()
    os._exit(status)


def _exit_status(exc: SystemExit) -> int:
    """The status the interpreter gives a process ended by ``exc`` (printing a non-int code)."""
    code = exc.code
    if code is not None and not isinstance(code, int):
        print(code, file=sys.stderr)
    return code if isinstance(code, int) else (0 if code is None else 1)


def main() -> None:
    """Run a template: serve fork requests until the pytest process closes the control socket."""
    job = _serve(int(sys.argv[1]), list(json.loads(sys.argv[2])))
    if job is None:
        return  # the template ends as any process does
    status = 0
    try:
        _become_kernel(job)
    except SystemExit as exc:
        status = _exit_status(exc)
    except BaseException:  # noqa: BLE001 - printed as the interpreter prints an uncaught exception
        sys.excepthook(*sys.exc_info())
        status = 1
    _end_without_teardown(status)


if __name__ == "__main__":
    main()
