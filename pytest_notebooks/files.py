"""Chores every step shares: writing a file atomically, telling a URL from a path, showing a path.

Standard library only, so that every module (core, CLIs, promote) may import it.
"""

from __future__ import annotations

import contextlib
import errno
import os
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


def atomic_write(path: Path, data: bytes | str, *, mode: int = FILE_MODE, prefix: str = ".pytest-notebooks-") -> None:
    """Write ``data`` to ``path`` so that a reader sees the old file or the whole new one.

    The temporary file sits beside ``path`` (same filesystem, so the rename is atomic), is flushed to
    disk before the rename and removed on any failure; the new file gets ``mode`` (0644).
    """
    payload = data.encode("utf-8") if isinstance(data, str) else data
    if path.is_dir():  # else the rename fails after the temporary file was written, with a puzzling message
        raise IsADirectoryError(errno.EISDIR, "it is a directory; give a file name", str(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=prefix, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


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
