"""Where a kernel's IPC sockets and connection file go (POSIX), and how those of a killed pytest are removed.

Each process that starts kernels (each xdist worker; not the controller) gets a directory of its
own, made at its first kernel start and removed at its exit::

    <tmpdir>/pytest-notebooks-<pid>-<8 hex>/     mode 0700
        lock                 flock()ed by the process for its whole life
        k<n>.json            kernel n's connection file (its HMAC key inside)
        k<n>-1 .. k<n>-5     kernel n's five sockets (ZMQ ipc://)

jupyter_client removes a kernel's files when the kernel is finished (``cleanup_resources``).
A pytest killed with SIGKILL (a CI timeout, the OOM killer) removes nothing; the operating
system releases its lock, though, whatever killed it. So the first kernel start of every
process first removes the directories in tmpdir whose lock nobody holds (their process is gone:
no pid to reuse, no pid namespace to confuse), unless one of their sockets is still listened on
(an orphaned kernel that has not exited yet: removed by a later session). Only this uid's
directories, and in them only sockets and regular files of the names above, are removed. The
pid in the name is for people reading tmpdir: the lock, not the pid, says whether the owner
lives. (A process killed between making its directory and naming its lock leaves a directory with at
most ``lock.new`` in it, which no sweep removes: the window is three system calls.)

Earlier versions named a kernel's sockets ``<tmpdir>/pytest-notebooks-<12 hex>-<port>`` and
let jupyter_client put its connection file at ``<tmpdir>/tmpXXXXXXXX.json``, with no owner to
ask about. Such a socket is removed when connecting to it is refused (nothing listens on it, so
no kernel does); such a connection file when it names one of those sockets, none of its sockets
is listened on, and it is older than LEGACY_AGE (a kernel may still be starting with it).
"""

from __future__ import annotations

import atexit
import contextlib
import errno
import json
import os
import re
import secrets
import socket
import stat
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

PREFIX = "pytest-notebooks-"
LOCK = "lock"
SOCKET_PATH_MAX = 103  # bytes of an AF_UNIX socket's path: macOS's sun_path holds 104 with the NUL, Linux's 108
LONGEST_DIRECTORY = f"{PREFIX}4194304-ffffffff"  # Linux's largest pid
LONGEST_SOCKET = "k9999999-9"
FALLBACK = "/tmp"  # noqa: S108 - where the directory goes when tmpdir's path is too long for a socket's
LEGACY_AGE = 600.0  # seconds: an old-style connection file younger than this may belong to a kernel starting

_DIRECTORY = re.compile(re.escape(PREFIX) + r"[0-9]+-[0-9a-f]{8}")
_KERNEL_FILE = re.compile(r"k[0-9]+(-[0-9]+|\.json)")
_LEGACY_IP = re.compile(re.escape(PREFIX) + r"[0-9a-f]{12}")
_LEGACY_SOCKET = re.compile(_LEGACY_IP.pattern + r"-[0-9]+")
_LEGACY_CONNECTION = re.compile(r"tmp[a-z0-9_]{8}\.json")
_LEGACY_SIZE = 4096  # bytes: jupyter_client's connection files are about 300


def socket_base(tmp: str) -> str:
    """``tmp``, or FALLBACK when a kernel's socket path under ``tmp`` could pass SOCKET_PATH_MAX
    (ZMQ could not bind it, and the kernel would not start)."""
    longest = os.path.join(tmp, LONGEST_DIRECTORY, LONGEST_SOCKET)
    if len(os.fsencode(longest)) > SOCKET_PATH_MAX and os.path.isdir(FALLBACK):
        return FALLBACK
    return tmp


@dataclass
class KernelFiles:
    """This process's directory for kernel files, and the lock that says the process lives."""

    directory: str
    lock: int  # the open lock file's descriptor
    pid: int
    kernels: int = 0

    def next_kernel(self) -> tuple[str, str]:
        """The next kernel's ``ip`` (its sockets are ``<ip>-<port>``) and connection file."""
        self.kernels += 1
        stem = os.path.join(self.directory, f"k{self.kernels}")
        return stem, f"{stem}.json"

    def remove(self) -> None:
        """The process exits: remove the directory (a kernel still running has no client left)."""
        if os.getpid() != self.pid or self.lock < 0:
            return  # a forked child's copy: the directory is its parent's
        lock, self.lock = self.lock, -1
        try:
            with contextlib.suppress(OSError):  # removed by hand meanwhile: nothing to do
                _remove_directory(self.directory, os.getuid())
        finally:
            os.close(lock)


_current: KernelFiles | None = None
_creating = threading.Lock()


def kernel_paths() -> tuple[str, str]:
    """A new kernel's ``ip`` and connection file, in this process's directory. The first call of a
    process removes the leftovers of dead ones (``sweep``) and makes the directory."""
    global _current
    with _creating:
        if _current is None or _current.pid != os.getpid():
            base = socket_base(tempfile.gettempdir())
            sweep(base)
            _current = _create(base)
            atexit.register(_current.remove)
        return _current.next_kernel()


def _create(base: str) -> KernelFiles:
    """Make this process's directory. The lock file is locked before it is named ``lock``, so no
    other process's sweep ever finds it unlocked (a directory without it is never swept)."""
    while True:
        directory = os.path.join(base, f"{PREFIX}{os.getpid()}-{secrets.token_hex(4)}")
        try:
            os.mkdir(directory, 0o700)
        except FileExistsError:
            continue
        break
    import fcntl  # POSIX only, as the IPC transport

    fresh = os.path.join(directory, f"{LOCK}.new")
    lock = os.open(fresh, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    fcntl.flock(lock, fcntl.LOCK_EX)
    os.rename(fresh, os.path.join(directory, LOCK))
    return KernelFiles(directory, lock, os.getpid())


def sweep(base: str) -> None:
    """Remove from ``base`` what killed processes left: directories no process holds the lock of,
    old-style sockets and connection files that are provably stale. Never raises."""
    try:
        names = os.listdir(base)
    except OSError:
        return
    uid = os.getuid()
    for name in names:
        path = os.path.join(base, name)
        with contextlib.suppress(OSError):
            if _DIRECTORY.fullmatch(name):
                _sweep_directory(path, uid)
            elif _LEGACY_SOCKET.fullmatch(name) and _owned(path, uid, stat.S_ISSOCK) and _refused(path):
                os.unlink(path)
    now = time.time()
    for name in names:
        if _LEGACY_CONNECTION.fullmatch(name):
            with contextlib.suppress(OSError, ValueError):
                _sweep_legacy_connection(os.path.join(base, name), uid, now)


def _sweep_directory(directory: str, uid: int) -> None:
    """Remove a dead process's directory: its lock is free and none of its sockets is listened on."""
    import fcntl

    if not _owned(directory, uid, stat.S_ISDIR):
        return
    lock = os.open(os.path.join(directory, LOCK), os.O_RDWR | os.O_NOFOLLOW)
    try:
        if os.fstat(lock).st_uid != uid:
            return
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                return  # its process lives
            raise
        sockets = [os.path.join(directory, name) for name in os.listdir(directory) if _KERNEL_FILE.fullmatch(name)]
        if any(_owned(path, uid, stat.S_ISSOCK) and not _refused(path) for path in sockets):
            return  # an orphaned kernel still runs: a later session removes it
        _remove_directory(directory, uid)
    finally:
        os.close(lock)


def _remove_directory(directory: str, uid: int) -> None:
    """Remove a kernel-files directory: its kernels' sockets and connection files, then its lock
    and itself. A file of another name stays, and so does the directory then."""
    for name in os.listdir(directory):
        path = os.path.join(directory, name)
        if (_KERNEL_FILE.fullmatch(name) or name == LOCK) and _owned(path, uid, _socket_or_file):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
    with contextlib.suppress(OSError):
        os.rmdir(directory)


def _sweep_legacy_connection(path: str, uid: int, now: float) -> None:
    """Remove an old-style connection file whose kernel is provably gone (see the module's doc)."""
    info = os.lstat(path)
    if not stat.S_ISREG(info.st_mode) or info.st_uid != uid or info.st_size > _LEGACY_SIZE:
        return
    if now - info.st_mtime < LEGACY_AGE:
        return
    descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)  # replaced by a FIFO since: no wait
    with os.fdopen(descriptor, encoding="utf-8") as file:
        connection = json.loads(file.read(_LEGACY_SIZE))
    if not isinstance(connection, dict) or connection.get("transport") != "ipc":
        return
    ip = connection.get("ip")
    if not isinstance(ip, str):
        return
    if os.path.dirname(ip) != os.path.dirname(path) or not _LEGACY_IP.fullmatch(os.path.basename(ip)):
        return
    ports = [value for key, value in connection.items() if key.endswith("_port")]
    if not all(isinstance(port, int) and _stale(f"{ip}-{port}") for port in ports):
        return
    os.unlink(path)


def _stale(path: str) -> bool:
    """Whether nothing can listen on ``path``: it is gone, or a socket connecting to which is refused."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return True
    return stat.S_ISSOCK(info.st_mode) and _refused(path)


def _refused(path: str) -> bool:
    """Whether connecting to the socket at ``path`` is refused: no process listens on it."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        probe.setblocking(False)
        try:
            probe.connect(path)
        except ConnectionRefusedError:
            return True
        except OSError:  # busy (EAGAIN), too long a path, ...: not provably stale
            return False
    return False


def _socket_or_file(mode: int) -> bool:
    return stat.S_ISSOCK(mode) or stat.S_ISREG(mode)


def _owned(path: str, uid: int, kind: Callable[[int], bool]) -> bool:
    """Whether ``path`` itself (not a symlink's target) is of ``kind`` and this uid's."""
    try:
        info = os.lstat(path)
    except OSError:
        return False
    return info.st_uid == uid and kind(info.st_mode)
