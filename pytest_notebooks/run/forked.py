"""Kernels forked from a warm template process: a jupyter_client kernel provisioner (the pytest side).

Starting a fresh ipykernel is mostly importing IPython, ipykernel, zmq, tornado and debugpy, and
a notebook's first ``import pandas`` costs as much again. A template process
(run/forked_template.py) pays for the imports once per pytest process, and each case's kernel is
forked from it. ``ForkedProvisioner`` asks the template where ``LocalProvisioner`` calls ``Popen``,
so papermill, nbclient and the KernelManager are unchanged; its docstring tells why forking
there is safe, and where a forked kernel differs from a spawned one.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import IO, Any

from jupyter_client.provisioning.local_provisioner import LocalProvisioner

from pytest_notebooks.errors import KernelTemplateError
from pytest_notebooks.run.family import VOLATILE as VOLATILE  # what a template need not match
from pytest_notebooks.run.forkwire import KNOCK, REQUEST_TIMEOUT, ForkAnswer, ForkRequest

PROVISIONER_NAME = "pytest-notebooks-forked"
TEMPLATE_MODULE = "pytest_notebooks.run.forked_template"
KERNEL_MODULES = ("ipykernel_launcher", "ipykernel")  # what `python -m X` may run to be forked
# What a kernel imports on its way to ready, imported once in the template (IPython, zmq and
# tornado come with them). ipykernel.debugger brings debugpy, a quarter of a kernel's start.
BASE_PRELOAD = (
    "ipykernel.kernelapp",
    "ipykernel.ipkernel",
    "ipykernel.zmqshell",
    "ipykernel.debugger",
    "IPython.core.debugger",
    "IPython.core.oinspect",
    "IPython.core.completerlib",
    "IPython.extensions.storemagic",
    "sqlite3",
    "tornado.platform.asyncio",
    "faulthandler",
)
PR_SET_CHILD_SUBREAPER = 36  # <linux/prctl.h>
KEEP = 2  # template processes kept running at most (one per environment)


def fork_refusal(cmd: list[str]) -> str | None:
    """Why the kernel command ``cmd`` (formatted, as a KernelManager would run it) cannot be
    forked from a template of this interpreter, or None when it can."""
    if sys.platform != "linux":
        return f"kernels are forked on Linux only (this is {sys.platform})"
    if split_kernel_command(cmd) is None:
        shown = " ".join(cmd[:3])
        return f"its kernelspec does not run `python -m ipykernel_launcher` ({shown} ...)"
    if not same_interpreter(cmd[0], sys.executable):
        return f"its kernelspec runs another Python environment ({cmd[0]}, not {sys.executable})"
    return _subreaper()


def same_interpreter(a: str, b: str) -> bool:
    """The two paths run one Python in one environment: the same file, in the same directory (a
    venv's ``python`` links to its base interpreter, but is not the same environment)."""
    if os.path.abspath(a) == os.path.abspath(b):
        return True
    try:
        return os.path.dirname(os.path.abspath(a)) == os.path.dirname(os.path.abspath(b)) and os.path.samefile(a, b)
    except OSError:
        return False


def split_kernel_command(cmd: list[str]) -> tuple[list[str], list[str]] | None:
    """``[python, *options, -m, ipykernel_launcher, *args]`` -> (``[python, *options]``, args)."""
    for index in range(1, len(cmd) - 1):
        if cmd[index] == "-m":
            if cmd[index + 1] not in KERNEL_MODULES:
                return None
            return cmd[:index], cmd[index + 2 :]
        if not cmd[index].startswith("-") or cmd[index] in ("-c", "-"):
            return None  # a script, or options we cannot give the template
    return None


_SUBREAPER: list[str | None] = []  # the outcome of making this process a child subreaper, once


def _subreaper() -> str | None:
    """Make this process the reaper of orphans below it (so forked kernels become its children);
    why that failed, or None."""
    if not _SUBREAPER:
        problem = None
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
                problem = os.strerror(ctypes.get_errno())
        except (OSError, AttributeError) as exc:
            problem = str(exc)
        _SUBREAPER.append(f"pytest cannot become the kernels' parent (prctl: {problem})" if problem else None)
    return _SUBREAPER[0]


@dataclass
class _Stream:
    """A stream the kernel writes to: the fd to send, the reader we keep (when it is a pipe)."""

    fd: int
    reader: IO[bytes] | None = None
    owned: bool = False  # close ``fd`` once it has been sent

    @classmethod
    def of(cls, target: Any, default_fd: int) -> _Stream:
        if target == subprocess.PIPE:
            read, write = os.pipe()
            return cls(write, open(read, "rb"), owned=True)  # taken over by run/kernels.py's forwarder
        if target is None:
            return cls(default_fd)
        if target == subprocess.DEVNULL:
            return cls(os.open(os.devnull, os.O_WRONLY), owned=True)
        if isinstance(target, int):
            return cls(target)
        return cls(target.fileno())


class ForkedProcess:
    """A forked kernel as ``subprocess.Popen`` shows a process: ``pid``, ``poll``, ``wait``,
    ``send_signal``, ``kill``, ``terminate``, ``stdout``, ``stderr``, ``returncode``.

    The template answers (run/forkwire.py) with the kernel's pid, or why it has none, once the kernel is
    this process's child; the answer is read when first needed, so launching does not wait for
    the template to finish its imports. From then on the kernel is waited for like any child.
    """

    def __init__(self, sock: socket.socket, stdout: IO[bytes] | None, stderr: IO[bytes] | None) -> None:
        self._sock = sock
        self._reply = b""
        self.stdin: IO[bytes] | None = None
        self.stdout = stdout
        self.stderr = stderr
        self._pid: int | None = None
        self.returncode: int | None = None
        self.error: str | None = None
        self._error_raised = False

    @property
    def pid(self) -> int | None:
        """The kernel's pid; None while the template has not answered (it is not waited for)."""
        if self._pid is None:
            self._answered(0.0)
        return self._pid

    def wait_for_pid(self, timeout: float) -> int | None:
        """The kernel's pid, waiting at most ``timeout`` s for the template's answer."""
        self._answered(timeout)
        return self._pid

    def _answered(self, timeout: float | None) -> bool:
        """Whether the template has answered, waiting at most ``timeout`` s for the answer."""
        if self._pid is not None or self.error is not None:
            return True
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self._reply.endswith(b"\n"):
            left = None if deadline is None else max(deadline - time.monotonic(), 0.0)
            self._sock.settimeout(left)
            try:
                data = self._sock.recv(4096)
            except (BlockingIOError, TimeoutError):
                return False
            except OSError:
                data = b""
            if not data:
                self._take(ForkAnswer(error="the kernel template process exited before it forked this kernel"))
                return True
            self._reply += data
        self._take(ForkAnswer.decode(self._reply))
        return True

    def _take(self, answer: ForkAnswer) -> None:
        self._sock.close()
        if answer.pid is not None:
            self._pid = answer.pid
        else:
            self.error, self.returncode = str(answer.error), 1

    def started(self, timeout: float) -> int:
        """The kernel's pid, waiting up to ``timeout`` s for the template to fork it."""
        if not self._answered(timeout):
            raise KernelTemplateError(f"the kernel template process did not fork a kernel within {timeout:g} s")
        if self.pid is None:
            raise KernelTemplateError(str(self.error))
        return self.pid

    def poll(self) -> int | None:
        """The exit status, or None while the kernel runs (or is being forked). Raises
        KernelTemplateError once when the template could not fork it: the manager polls while it waits
        for the kernel, and the case then fails with the template's reason, not "kernel died"."""
        if self.returncode is None and self._answered(0.0) and self.pid is not None:
            self._waitpid(os.WNOHANG)
        if self.error is not None and not self._error_raised:
            self._error_raised = True  # once: the manager's cleanup polls again
            raise KernelTemplateError(self.error)
        return self.returncode

    def _waitpid(self, options: int) -> None:
        assert self.pid is not None
        try:
            pid, status = os.waitpid(self.pid, options)
        except ChildProcessError:  # reaped by someone else: the status is lost
            self.returncode = 255
            return
        if pid:
            self.returncode = os.waitstatus_to_exitcode(status)

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        if not self._answered(timeout):
            raise subprocess.TimeoutExpired("forked kernel", timeout or 0)
        while self.returncode is None and self.pid is not None:
            if deadline is None:
                self._waitpid(0)
                break
            self._waitpid(os.WNOHANG)
            if self.returncode is None:
                if time.monotonic() >= deadline:
                    raise subprocess.TimeoutExpired("forked kernel", timeout or 0)
                time.sleep(0.01)
        return self.returncode if self.returncode is not None else 1

    def send_signal(self, signum: int) -> None:
        """Signal the kernel; one that exited (and was waited for) is left alone, as Popen does."""
        with contextlib.suppress(KernelTemplateError):
            self.started(REQUEST_TIMEOUT)
        if self.pid is not None and self.returncode is None:
            os.kill(self.pid, signum)  # a child that exited stays a zombie until waited for: no pid reuse

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def close(self) -> None:
        self._sock.close()
        for stream in (self.stdout, self.stderr):
            if stream is not None:
                stream.close()


@dataclass
class Template:
    """One template process, forking kernels on request over a Unix socket pair."""

    process: subprocess.Popen[bytes]
    control: socket.socket

    @classmethod
    def start(cls, python: list[str], env: Mapping[str, str], preload: Iterable[str]) -> Template:
        mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            process = subprocess.Popen(
                [*python, "-m", TEMPLATE_MODULE, str(theirs.fileno()), json.dumps([*BASE_PRELOAD, *preload])],
                env=dict(env),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                pass_fds=(theirs.fileno(),),
                start_new_session=True,  # Ctrl-C in the terminal is pytest's to handle, not the template's
            )
        except BaseException:
            mine.close()
            raise
        finally:
            theirs.close()
        return cls(process, mine)

    def fork(
        self, argv: list[str], cwd: str, env: Mapping[str, str], stdout: _Stream, stderr: _Stream
    ) -> ForkedProcess:
        """Ask for a kernel running ``argv`` (ipykernel's arguments) in ``cwd`` with ``env``."""
        mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            try:
                socket.send_fds(self.control, [KNOCK], [theirs.fileno(), stdout.fd, stderr.fd])
            except OSError as exc:
                raise KernelTemplateError(f"the kernel template process is gone ({exc})") from exc
            mine.sendall(ForkRequest(tuple(argv), cwd, dict(env)).encode())
        except BaseException:
            mine.close()
            raise
        finally:
            theirs.close()
        return ForkedProcess(mine, stdout.reader, stderr.reader)

    def close(self, timeout: float = 5.0) -> None:
        """Stop the template: it exits when its control socket closes (its kernels are not its own)."""
        self.control.close()
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@dataclass
class Templates:
    """The template processes of one pytest process, one per interpreter, options and
    environment (in practice one), each started on first use; and the process groups of the
    kernels forked, whose leftover processes are reaped as they exit.

    The environment is compared without the variables pytest changes for every test
    (VOLATILE); a session whose environment keeps changing (a fixture setting a variable per
    test) gets a template per environment, at most KEEP of them running at once.
    """

    preload: tuple[str, ...] = ()
    _running: dict[tuple[Any, ...], Template] = field(default_factory=dict)  # least recently used first
    _groups: set[int] = field(default_factory=set)

    def get(self, python: list[str], env: Mapping[str, str]) -> Template:
        stable = {name: value for name, value in env.items() if name not in VOLATILE}
        key = (tuple(python), tuple(sorted(stable.items())))
        template = self._running.pop(key, None)
        if template is not None and template.process.poll() is not None:
            template.control.close()
            template = None  # it died (killed from outside): start another
        if template is None:
            while len(self._running) >= KEEP:
                self._running.pop(next(iter(self._running))).close()  # its kernels are not its own
            template = Template.start(python, stable, self.preload)
        self._running[key] = template
        return template

    def forked(self, process: ForkedProcess) -> None:
        """``process`` has been waited for: reap what it leaves in its process group from now on."""
        if process.pid is not None:
            self._groups.add(process.pid)  # the kernel called setsid: its group is its pid
        self.reap()

    def reap(self) -> None:
        """Reap processes of finished kernels' groups that exited (they were re-parented to us)."""
        for group in list(self._groups):
            try:
                while os.waitpid(-group, os.WNOHANG)[0]:
                    pass
            except ChildProcessError:  # none left in that group
                self._groups.discard(group)

    def close(self) -> None:
        running, self._running = list(self._running.values()), {}
        for template in running:
            template.control.close()  # every one first, so that they exit side by side
        for template in running:
            template.close()
        self.reap()


_DEFAULT: list[Templates] = []  # for kernelspecs naming the provisioner outside pytest-notebooks


def _default_templates() -> Templates:
    if not _DEFAULT:
        import atexit

        _DEFAULT.append(Templates())
        atexit.register(_DEFAULT[0].close)
    return _DEFAULT[0]


class ForkedProvisioner(LocalProvisioner):
    """A LocalProvisioner whose kernels are forked from a template process when they can be.

    It is registered as the ``pytest-notebooks-forked`` entry point of
    ``jupyter_client.kernel_provisioners`` (a kernelspec can name it, and then gets a template per
    process); run/kernels.py gives it to the managers it creates, with their ``templates``. When
    the command cannot be forked (see ``fork_refusal``) the kernel is spawned as LocalProvisioner
    would, and ``fallback`` says why. How a kernel is forked::

        pytest process (a child subreaper)   template: python -m pytest_notebooks.run.forked_template
        KernelManager + ForkedProvisioner    imports ipykernel (+ preload), then for each request:
          launch_kernel: socketpair + pipes --->  fork -> fork -> kernel: setsid, dup2, chdir, environ,
                                                    |              IPKernelApp.launch_instance()
                                                    +-> exits: the kernel is re-parented to pytest
          <--- {"pid": N}                       (after the middle process has exited)

    The kernel ends up a child of the pytest process, as a spawned kernel is: the middle process
    exits at once, and the pytest process made itself a *child subreaper* (Linux's
    ``PR_SET_CHILD_SUBREAPER``) before starting the template, so orphans below it come to it
    instead of to init. So ``os.getppid()`` in a notebook is pytest's pid, ipykernel's parent
    poller watches pytest, and the kernel is waited for with ``waitpid`` as ``Popen`` does.

    Why forking there is safe:

    * The template never runs a thread, a zmq context, an event loop or a socket of its own before
      it forks: it imports modules and blocks reading its control socket. ``fork()`` copies only
      the calling thread, so a process with more threads could hand a child a lock held by a
      thread that does not exist there; with one thread there is no such lock. Every kernel thread
      and the kernel's zmq context are created in the child, after the fork, by ipykernel's start.
    * A preloaded module is refused when importing it starts a Python thread or opens a socket:
      the child would get the module's state without the thread, or a socket shared with every
      other kernel.
    * The child gets what a spawned kernel gets: a new session (``setsid``: an interrupt reaches
      the kernel and its subprocesses), stdin on /dev/null, stdout and stderr on pipes to the
      pytest process, its working directory, ``os.environ`` set to the case's environment,
      ``sys.argv`` as ``ipykernel_launcher`` would have it, reseeded ``random`` (Python does that
      at fork) and ``numpy.random`` when numpy was preloaded. It leaves through the interpreter's
      normal exit (non-daemon threads joined, every atexit handler run), then ends before the
      modules are torn down.
    * A template is started per interpreter, interpreter options and environment (less VOLATILE),
      so what a module reads from the environment at import time is what the kernel's environment
      says, and with ``notebooks_kernel_env = clean`` not even the template holds the credentials.
      The template runs in pytest's working directory and imports the preloaded modules with
      ``''`` on ``sys.path``, as a kernel started there would.

    Where it is not safe, or not the same as a spawned kernel:

    * Module state at import time is shared copy-on-write: whatever a preloaded module computed
      at import (a cache, a configuration read from a file, a random seed other than numpy's
      global one) is the same in every kernel. A module that starts a native thread at import
      (invisible to ``threading``) is not caught; OpenBLAS, which numpy loads, shuts its thread
      pool down at fork and restarts it.
    * ``hash()`` of strings uses one seed per interpreter: set iteration order is the same in
      every forked kernel of a session.
    * No module teardown at exit: a ``__del__`` that only teardown would call does not run, and
      a file left open in a module's globals is not flushed, as in a ``multiprocessing`` child.
    * The objects a kernel inherits from the template are frozen (``gc.freeze()``): a reference
      cycle among a preloaded module's objects that a notebook drops lives until the kernel exits.
    * ``ps`` and ``/proc/self/cmdline`` show the template's command line, and
      ``pytest_notebooks`` is in ``sys.modules``.
    * The pytest process stays a child subreaper: a process a notebook leaves running becomes its
      child when its parent exits; it is ended with its case and reaped (run/family.py). A process
      forked without exec from a forked kernel shows the template's environment in
      ``/proc/PID/environ``, without the kernel's marker: one that also left the kernel's session
      and lost its parent (a double fork without exec) is not found.
    * Only Linux: macOS forbids most system frameworks after fork without exec, others lack fork
      or the subreaper. Kernels of another interpreter, environment or language, or of a
      kernelspec naming its own provisioner, are spawned as before.
    """

    templates: Templates | None = None
    fallback: str | None = None

    async def launch_kernel(self, cmd: list[str], **kwargs: Any) -> Any:
        split = split_kernel_command(cmd)
        reason = fork_refusal(cmd)
        if reason is not None or split is None:
            self.fallback = reason
            return await super().launch_kernel(cmd, **kwargs)
        python, arguments = split
        env = dict(kwargs.get("env") or os.environ)
        cwd = str(kwargs.get("cwd") or os.getcwd())
        if not os.path.isdir(cwd):  # Popen would raise this in the pytest process
            raise FileNotFoundError(errno.ENOENT, "the kernel's working directory does not exist", cwd)
        templates = self.templates or _default_templates()
        template = templates.get(python, env)
        env["JPY_PARENT_PID"] = str(os.getpid())  # as jupyter_client's launcher sets it
        stdout = _Stream.of(kwargs.get("stdout"), 1)
        stderr = _Stream.of(kwargs.get("stderr"), 2)
        try:
            # Popen's interface, not its type: LocalProvisioner uses poll, wait, send_signal, kill, pid.
            self.process = template.fork(arguments, cwd, env, stdout, stderr)  # type: ignore[assignment]
        finally:
            for stream in (stdout, stderr):
                if stream.owned:
                    os.close(stream.fd)
        self.pid = self.pgid = None  # known with the template's answer; the group is the pid (setsid)
        self.cwd = cwd
        return self.connection_info

    def _forked(self) -> ForkedProcess | None:
        process = self.process
        return process if isinstance(process, ForkedProcess) else None

    async def send_signal(self, signum: int) -> None:
        """Signal the kernel's process group, as LocalProvisioner does (first learning its pid)."""
        process = self._forked()
        if process is not None and self.pgid is None:
            with contextlib.suppress(KernelTemplateError):
                self.pid = self.pgid = process.started(REQUEST_TIMEOUT)
        await super().send_signal(signum)

    async def wait(self) -> int | None:
        process = self._forked()
        status = await super().wait()
        if process is not None:
            (self.templates or _default_templates()).forked(process)
        return status

    async def cleanup(self, restart: bool = False) -> None:
        process = self._forked()
        if process is not None:  # a kernel nobody waited for (its start failed): kill it, wait for it
            with contextlib.suppress(KernelTemplateError, subprocess.TimeoutExpired):
                if process.poll() is None:
                    process.kill()
                    process.wait(5.0)
            process.close()
            (self.templates or _default_templates()).forked(process)
            self.process = None
        await super().cleanup(restart=restart)
