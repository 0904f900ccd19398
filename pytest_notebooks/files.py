"""Chores every step shares: writing a file atomically or in place (never through a link), telling a
URL from a path, showing a path.

Standard library only, so that every module (core, CLIs, promote) may import it.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import stat
import tempfile
from pathlib import Path
from urllib.parse import urlsplit

FILE_MODE = 0o644  # mkstemp makes 0600; schedulers and CI artifact steps often read as another user


def is_url(location: str | os.PathLike[str]) -> bool:
    """Whether ``location`` is a URL (``s3://bucket/x``, ``file:///x``) rather than a local path.

    A one-letter scheme is a Windows drive (``C:\\x``), not a URL.
    """
    text = os.fspath(location)
    return "://" in text and len(urlsplit(text).scheme) > 1


def atomic_write(
    path: Path, data: bytes | str, *, mode: int = FILE_MODE, prefix: str = ".pytest-notebooks-", sync: bool = True
) -> None:
    """Write ``data`` to ``path`` so that a reader sees the old file or the whole new one.

    The temporary file sits beside ``path`` (same filesystem, so the rename is atomic), is flushed to
    disk before the rename (unless not ``sync``) and removed on any failure; the new file gets ``mode``
    (0644). The rename replaces a link at ``path`` (symbolic or hard) and never writes through it.
    """
    payload = data.encode("utf-8") if isinstance(data, str) else data
    if path.is_dir():  # else the rename fails after the temporary file was written, with a puzzling message
        raise IsADirectoryError(errno.EISDIR, "it is a directory; give a file name", str(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=prefix, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
            if sync:
                handle.flush()
                os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def overwrite(path: str, data: bytes) -> None:
    """Write ``data`` over the file at ``path`` from its start, then cut it to that length.

    In place, so that a file saved again and again is not flushed to disk at each save as a rename
    would make it (ext4). Never through a link: a symbolic link at ``path``, or a file with a second
    hard link, is removed and a new file written in its place, so that a link planted at an output
    path (by the notebook being run, say) cannot make this write over the file it points to.
    """
    flags = os.O_WRONLY | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(path, flags, 0o666)
    except OSError:
        if not os.path.islink(path):
            raise
        os.unlink(path)  # a symlink: O_NOFOLLOW refused it (ELOOP; EMLINK on FreeBSD)
        fd = os.open(path, flags | os.O_EXCL, 0o666)
    try:
        if os.fstat(fd).st_nlink > 1:  # a hard link to a file elsewhere: leave that file alone
            os.close(fd)
            fd = -1
            os.unlink(path)
            fd = os.open(path, flags | os.O_EXCL, 0o666)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.ftruncate(fd, len(data))
    finally:
        if fd >= 0:
            os.close(fd)


def remove_link(path: str | os.PathLike[str]) -> None:
    """Remove ``path`` when it is a symbolic link, or a file with a second hard link; leave anything else.

    For a path something else writes to later without care (papermill's CLI follows a link at its
    output path): whatever the link points to is left alone.
    """
    with contextlib.suppress(OSError):
        info = os.lstat(path)
        if stat.S_ISLNK(info.st_mode) or (stat.S_ISREG(info.st_mode) and info.st_nlink > 1):
            os.unlink(path)


def printable(text: str) -> str:
    """``text`` as UTF-8 can carry it: a file name's undecodable byte (``caf\\udcff``, the surrogate
    Python reads it as) becomes ``caf\\xff``, as ``ls -b`` shows it; other lone surrogates ``\\udXXX``."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "".join(_printable_char(char) for char in text)
    return text


def _printable_char(char: str) -> str:
    code = ord(char)
    if 0xDC80 <= code <= 0xDCFF:  # an undecodable byte, as os.fsdecode reads it
        return f"\\x{code - 0xDC00:02x}"
    if 0xD800 <= code <= 0xDFFF:
        return f"\\u{code:04x}"
    return char


_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/\s]*@")


def without_userinfo(text: str) -> str:
    """``text`` with the user and password of every URL in it replaced by ``***``, up to the last ``@``
    before the path (a password may hold ``@``): a target URL or an endpoint such as
    ``http://user:password@host/`` from ``AWS_ENDPOINT_URL_S3`` is printed in errors."""
    return _USERINFO.sub(r"\1***@", text)


def shown_path(location: str | os.PathLike[str], base: Path) -> str:
    """How a report prints ``location``: relative to ``base`` when below it, else absolute.

    URLs print as they are. ``../../../tmp/x`` helps nobody, so paths outside ``base`` stay absolute.
    """
    text = os.fspath(location)
    if is_url(text):
        return text
    path = Path(text)
    if not path.is_absolute():
        return text
    try:
        return path.relative_to(base).as_posix() if path.is_relative_to(base) else str(path)
    except ValueError:
        return str(path)
