"""Keys in a target -> bytes, with conditional writes only. The only module that imports boto3.

Two stores, one contract: ``put`` creates (fails if the key exists) or replaces If-Match an ETag,
``delete`` is If-Match, a failed condition raises PreconditionFailed; there is no unconditional write.

- ``S3Store``: S3 enforces the conditions, on PutObject and DeleteObject only; CopyObject is never used
  (S3 refuses conditional copies under a policy enforcing conditional writes; moto ignores them).
- ``LocalStore``: the ETag is the file's sha256; each write checks it and renames a whole temporary file
  over the key while holding an flock on ``.nbpromote/lock`` that names its holder (freed if it dies; a
  stopped holder keeps it, so waiting gives up after LOCK_WAIT_SECONDS). A hand edit landing between
  check and rename is the one change it cannot see (S3 can).
- ``unstorable``: one rule for both (a key is UTF-8 without control characters, a plain relative path
  outside ``.nbpromote/``, within S3's size limits), checked before a release claims the pointer; S3
  metadata is ASCII, so ``encode_metadata`` writes any other value as one RFC 2047 encoded word.
"""

from __future__ import annotations

import base64
import contextlib
import getpass
import hashlib
import json
import os
import re
import socket
import sys
import time
import unicodedata
from collections.abc import Iterator, Mapping
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath
from typing import Any, Protocol

from pytest_notebooks.errors import Conflict, LockTimeout, PreconditionFailed, TargetError, UsageError
from pytest_notebooks.files import atomic_write, without_userinfo
from pytest_notebooks.promote.models import HIDDEN, Head, Stored
from pytest_notebooks.promote.settings import Target

NOTEBOOK_TYPE = "application/x-ipynb+json"
JSON_TYPE = "application/json"
TEXT_TYPES = {".py": "text/x-python; charset=utf-8", ".md": "text/markdown; charset=utf-8"}  # Jupytext templates


def content_type(key: str) -> str:
    """The Content-Type of a template published at ``key``: a notebook's, or a text template's."""
    return TEXT_TYPES.get(PurePosixPath(key).suffix, NOTEBOOK_TYPE)


TEMP_PREFIX = ".nbpromote-"  # the local store's temporary files: .nbpromote-<random>.tmp beside the key
_CONFLICT_RETRIES = 3  # S3 answers 409 ConditionalRequestConflict to concurrent conditional writes: retry
KEY_LIMIT = 1024  # bytes of UTF-8 in an S3 key, the target's prefix included
METADATA_LIMIT = 2048  # bytes of UTF-8 in an S3 object's user metadata, names and values together
_ENCODED_WORD = re.compile(r"=\?utf-8\?b\?([A-Za-z0-9+/]*={0,2})\?=", re.IGNORECASE)
_METADATA_NAME = re.compile(r"[a-z0-9][a-z0-9-]*")
LOCK_WAIT_VARIABLE = "NBPROMOTE_LOCK_WAIT"
LOCK_WAIT_SECONDS = 30.0  # a write holds the lock for milliseconds: a holder this long is stuck
LOCK_NOTICE_SECONDS = 5.0  # then a waiting run says who holds the lock
_ACCESS_HINT = (
    "check the credentials, and that they may s3:GetObject, s3:PutObject and s3:DeleteObject below the "
    "prefix and s3:ListBucket on it (without ListBucket a missing key reads as 403)"
)


class Store(Protocol):
    """What promotion needs from a target."""

    target: Target

    def read(self, key: str) -> Stored | None:
        """The key's bytes and ETag; None when absent."""
        ...

    def head(self, key: str) -> Head | None:
        """The key's ETag without its bytes; None when absent."""
        ...

    def put(
        self, key: str, data: bytes, *, if_match: str | None, content_type: str, metadata: Mapping[str, str]
    ) -> str:
        """Create (``if_match=None``) or replace the key conditionally; returns the new ETag."""
        ...

    def delete(self, key: str, *, if_match: str) -> None:
        """Delete the key if its ETag is still ``if_match``."""
        ...


def unstorable(target: Target, key: str, metadata: Mapping[str, str] | None = None) -> tuple[str, str] | None:
    """Why no store could write ``key`` (with ``metadata``): (what is wrong, what to do); None when it can.

    The same rule for S3 and a local directory, so that a repository that promotes to one can promote
    to the other. Pure: nothing is read.
    """
    try:
        size = len((target.prefix + key).encode("utf-8"))
    except UnicodeEncodeError:  # a file name in another encoding, decoded with surrogate escapes
        return "its name is not valid UTF-8, which S3 keys must be", "rename it to a UTF-8 name"
    control = next((c for c in key if unicodedata.category(c) in ("Cc", "Zl", "Zp")), None)
    if control is not None:
        return (
            f"its name has a control character ({control!r}), which S3 keys and metadata cannot carry safely",
            "rename the notebook (git mv) to a name without control characters",
        )
    if not key or key.startswith("/") or any(part in ("", ".", "..") for part in key.split("/")):
        return f"its live key {key!r} is not a plain relative path", "report this as a bug in nbpromote"
    if key.startswith(HIDDEN):
        return f"its live key is below {HIDDEN}, which nbpromote keeps for itself", "rename its directory"
    if size > KEY_LIMIT:
        return (
            f"its key {target.show(key)} is {size} bytes long, and S3 keys hold {KEY_LIMIT} bytes at most",
            "shorten the notebook's path or the target's prefix",
        )
    return _bad_metadata(metadata or {})


def _bad_metadata(metadata: Mapping[str, str]) -> tuple[str, str] | None:
    size = 0
    for name, value in metadata.items():
        if not _METADATA_NAME.fullmatch(name):  # nbpromote's own names: a bug
            return f"metadata name {name!r} is not a lower-case token", "report this as a bug in nbpromote"
        try:
            size += len(name) + len(encode_metadata(value))
        except UnicodeEncodeError:
            return f"its metadata {name} is not valid UTF-8", "rename it to a UTF-8 name"
    if size > METADATA_LIMIT:
        return (
            f"its S3 metadata would be {size} bytes, and S3 allows {METADATA_LIMIT}",
            "shorten the notebook's path",
        )
    return None


def encode_metadata(value: str) -> str:
    """An S3 user-metadata value as an HTTP header can carry it: printable ASCII as it is, anything else
    as one RFC 2047 encoded word, ``=?UTF-8?B?<base64 of the UTF-8>?=`` (S3's own form for such values).

    A value that merely looks like an encoded word is encoded too, so ``decode_metadata`` is exact.
    Raises UnicodeEncodeError for a string that is not valid UTF-8 (``unstorable`` says so first).
    """
    if value.isascii() and value.isprintable() and value == value.strip() and not value.startswith("=?"):
        return value
    return "=?UTF-8?B?" + base64.b64encode(value.encode("utf-8")).decode("ascii") + "?="


def decode_metadata(value: str) -> str:
    """The value ``encode_metadata`` (or S3) encoded; any other value as it is."""
    match = _ENCODED_WORD.fullmatch(value)
    if match is None:
        return value
    try:
        return base64.b64decode(match[1], validate=True).decode("utf-8")
    except (ValueError, UnicodeDecodeError):  # binascii.Error is a ValueError
        return value


def open_store(target: Target) -> Store:
    """The store for ``target``; nothing is read or written yet."""
    if target.is_s3:
        return S3Store(target)
    return LocalStore(target)


class LocalStore:
    """A directory target: atomic renames under a lock file."""

    def __init__(self, target: Target) -> None:
        assert target.path is not None
        self.target = target
        self.root = target.path
        self.lock_wait = _lock_wait()  # read now: a bad value is a usage error before anything is written

    def read(self, key: str) -> Stored | None:
        path = self._path(key)
        try:
            data = path.read_bytes()
        except (FileNotFoundError, NotADirectoryError):
            return None
        except OSError as exc:
            raise TargetError(f"cannot read {path}: {exc.strerror or exc}") from None
        return Stored(data=data, etag=hashlib.sha256(data).hexdigest())

    def head(self, key: str) -> Head | None:
        stored = self.read(key)
        if stored is None:
            return None
        with contextlib.suppress(OSError):
            mtime = self._path(key).stat().st_mtime
            return Head(
                etag=stored.etag, modified=datetime.fromtimestamp(mtime, timezone.utc).isoformat("T", "seconds")
            )
        return Head(etag=stored.etag)

    def put(
        self, key: str, data: bytes, *, if_match: str | None, content_type: str, metadata: Mapping[str, str]
    ) -> str:
        path = self._path(key)
        try:
            with self._locked():
                self._check(key, if_match)
                atomic_write(path, data, prefix=TEMP_PREFIX)
        except OSError as exc:
            raise TargetError(f"cannot write {path}: {exc.strerror or exc}") from None
        return hashlib.sha256(data).hexdigest()

    def delete(self, key: str, *, if_match: str) -> None:
        path = self._path(key)
        try:
            with self._locked():
                self._check(key, if_match)
                path.unlink()
        except OSError as exc:
            raise TargetError(f"cannot delete {path}: {exc.strerror or exc}") from None

    def sweep(self, older_than: float, *, remove: bool = True) -> tuple[str, ...]:
        """The temporary files older than ``older_than`` seconds that killed runs left; removed unless not ``remove``.

        They are removed while holding the lock, under which every write makes and renames its own
        temporary file, so none of them belongs to a write in progress; the age is a second guard, for
        filesystems whose locks are not shared between machines. Returns paths relative to the target.
        """
        found = self._stale_temporaries(older_than)
        if not found or not remove:
            return tuple(p.relative_to(self.root).as_posix() for p in found)
        removed = []
        try:
            with self._locked():
                for path in self._stale_temporaries(older_than):
                    with contextlib.suppress(FileNotFoundError):
                        path.unlink()
                        removed.append(path.relative_to(self.root).as_posix())
        except OSError as exc:
            raise TargetError(f"cannot remove a temporary file below {self.root}: {exc.strerror or exc}") from None
        return tuple(removed)

    def _stale_temporaries(self, older_than: float) -> list[Path]:
        now = time.time()
        found = []
        for directory, _, names in os.walk(self.root):  # symbolic links to directories are not followed
            for name in names:
                if name.startswith(TEMP_PREFIX) and name.endswith(".tmp"):
                    path = Path(directory, name)
                    with contextlib.suppress(FileNotFoundError):  # renamed or removed meanwhile
                        if now - path.lstat().st_mtime > older_than:
                            found.append(path)
        return sorted(found)

    def _check(self, key: str, if_match: str | None) -> None:
        current = self.read(key)
        if (current.etag if current else None) != if_match:
            raise PreconditionFailed(key, if_match)

    def _path(self, key: str) -> Path:
        if key.startswith("/") or ".." in key.split("/"):
            raise ValueError(f"bad key {key!r}")  # keys come from nbpromote itself; this is a bug
        return self.root / key

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """Hold ``.nbpromote/lock``, with this process's name in it (see the module docstring)."""
        lock_dir = self.root / HIDDEN
        lock_dir.mkdir(parents=True, exist_ok=True)  # the target's parent was checked when parsing it
        path = lock_dir / "lock"
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            _acquire(fd, path, self.lock_wait)
            with contextlib.suppress(OSError):  # who holds it is for messages only
                os.ftruncate(fd, 0)
                os.pwrite(fd, _holder_record(), 0)
            try:
                yield
            finally:
                with contextlib.suppress(OSError):
                    os.ftruncate(fd, 0)
        finally:
            os.close(fd)  # closing the descriptor releases the lock


def process_owner() -> str:
    """Who this process is, for people reading a lease or a lock: user@host pid N."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError, ImportError):  # no name for this uid (containers), no pwd module
        user = "?"
    return f"{user}@{socket.gethostname()} pid {os.getpid()}"


def _holder_record() -> bytes:
    since = datetime.now(timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")
    record = {"owner": process_owner(), "pid": os.getpid(), "host": socket.gethostname(), "since": since}
    return (json.dumps(record) + "\n").encode("utf-8")


def _try_lock(fd: int) -> bool:
    """Take the exclusive lock on ``fd`` if it is free; False when another process holds it."""
    try:
        if sys.platform == "win32":
            import msvcrt

            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        else:
            import fcntl

            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    except OSError:
        if sys.platform == "win32":  # LK_NBLCK's "locked" is a plain OSError
            return False
        raise
    return True


def _acquire(fd: int, path: Path, bound: float) -> None:
    """Wait for the lock on ``fd``, polling: say who holds it after a while, give up after ``bound`` seconds."""
    started = time.monotonic()
    delay, noticed = 0.001, False
    holder: dict[str, Any] | None = None
    while not _try_lock(fd):
        holder = _read_holder(path) or holder  # empty between two holders: keep the last one seen
        waited = time.monotonic() - started
        if waited >= bound:
            who, state, remedy = _describe_holder(holder, path)
            raise LockTimeout(
                f"{path} is still locked by {who}, {state}; waited {bound:g} s ({LOCK_WAIT_VARIABLE} sets how "
                f"long); {remedy}, then run nbpromote again"
            )
        if not noticed and waited >= min(LOCK_NOTICE_SECONDS, bound / 2):
            who, state, _ = _describe_holder(holder, path)
            print(
                f"nbpromote: waiting for {path}: locked by {who}, {state}; giving up after {bound:g} s",
                file=sys.stderr,
                flush=True,
            )
            noticed = True
        time.sleep(delay)
        if waited > 0.05:  # a write holds the lock for milliseconds: poll often while that is likely
            delay = min(delay * 2, 0.02)


def _lock_wait() -> float:
    text = os.environ.get(LOCK_WAIT_VARIABLE, "").strip()
    if not text:
        return LOCK_WAIT_SECONDS
    try:
        seconds = float(text)
    except ValueError:
        seconds = -1.0
    if not 0 <= seconds < float("inf"):
        raise UsageError(f"{LOCK_WAIT_VARIABLE}={text!r}: expected a number of seconds, such as 30")
    return seconds


def _read_holder(path: Path) -> dict[str, Any] | None:
    """What the lock's holder wrote about itself; None when it is not (yet) there."""
    try:
        record = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return None
    keys = ("owner", "pid", "host", "since")
    return record if isinstance(record, dict) and all(k in record for k in keys) else None


def _describe_holder(holder: Mapping[str, Any] | None, path: Path) -> tuple[str, str, str]:
    """(who holds the lock since when, what that process is doing, what to do about it)."""
    if holder is None:
        return (
            "a process that does not say who it is",
            "perhaps an nbpromote older than this one",
            f"`fuser -v {path}` shows who holds it",
        )
    who, pid = f"{holder['owner']} since {holder['since']}", holder["pid"]
    if holder["host"] != socket.gethostname():
        return who, f"on {holder['host']}", f"end it there (`kill {pid}` on {holder['host']}) if it hangs"
    state = _process_state(int(pid))
    if state == "gone":
        return who, "which has exited, yet the lock is held", f"`fuser -v {path}` shows who holds it"
    if state in ("T", "t"):
        return who, "which is stopped (SIGSTOP or Ctrl-Z)", f"resume it (`kill -CONT {pid}`) or end it (`kill {pid}`)"
    if state == "?":  # no /proc: it may be stopped or hang
        return who, "which is still there", f"resume it if it is stopped (`kill -CONT {pid}`), or end it (`kill {pid}`)"
    return who, "which is still running", f"end it if it hangs (`kill {pid}`)"


def _process_state(pid: int) -> str:
    """The state letter of process ``pid`` on this host (Linux's /proc: "T" stopped), "gone", or "?"."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return "gone"
    except OSError:  # alive, but another user's
        pass
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return "?"


class S3Store:
    """An ``s3://bucket/prefix/`` target through boto3."""

    def __init__(self, target: Target) -> None:
        try:
            import boto3  # type: ignore[import-untyped,unused-ignore]
            import botocore.config  # type: ignore[import-untyped,unused-ignore]
            import botocore.exceptions  # type: ignore[import-untyped,unused-ignore]
        except ImportError:
            raise TargetError(
                f"{target.url}: S3 targets need boto3, which is not installed: pip install 'pytest-notebooks[s3]'"
            ) from None

        assert target.bucket is not None
        self.target = target
        self.bucket: str = target.bucket
        self._errors: Any = botocore.exceptions
        try:
            session = boto3.session.Session()
            self._client: Any = session.client(
                "s3",
                config=botocore.config.Config(
                    retries={"mode": "standard", "max_attempts": 3},
                    connect_timeout=10,
                    read_timeout=60,
                    user_agent_extra="nbpromote",
                ),
            )
        except (botocore.exceptions.BotoCoreError, ValueError) as exc:  # a bad AWS_PROFILE, endpoint URL...
            raise TargetError(f"cannot set up S3 access for {target.url}: {without_userinfo(str(exc))}") from None
        self.endpoint: str = without_userinfo(self._client.meta.endpoint_url)  # it is printed in errors

    def read(self, key: str) -> Stored | None:
        response = self._call("get_object", key, missing_ok=True)
        if response is None:
            return None
        body = response["Body"]
        try:
            data: bytes = body.read()
        except self._errors.BotoCoreError as exc:
            raise TargetError(f"reading {self.target.show(key)} failed: {exc}") from None
        finally:
            body.close()
        return Stored(data=data, etag=response["ETag"])

    def head(self, key: str) -> Head | None:
        response = self._call("head_object", key, missing_ok=True)
        if response is None:
            return None
        modified = response.get("LastModified")
        metadata = {name: decode_metadata(value) for name, value in response.get("Metadata", {}).items()}
        return Head(etag=response["ETag"], modified=modified.isoformat() if modified else None, metadata=metadata)

    def put(
        self, key: str, data: bytes, *, if_match: str | None, content_type: str, metadata: Mapping[str, str]
    ) -> str:
        condition: dict[str, Any] = {"IfNoneMatch": "*"} if if_match is None else {"IfMatch": if_match}
        response = self._call(
            "put_object",
            key,
            condition=if_match,
            Body=data,
            ContentType=content_type,
            Metadata={name: encode_metadata(value) for name, value in metadata.items()},
            # S3 checks the upload against it (moto stores it without checking)
            ChecksumSHA256=base64.b64encode(hashlib.sha256(data).digest()).decode("ascii"),
            **condition,
        )
        return str(response["ETag"])

    def delete(self, key: str, *, if_match: str) -> None:
        self._call("delete_object", key, condition=if_match, IfMatch=if_match)

    def _call(
        self, operation: str, key: str, *, missing_ok: bool = False, condition: str | None = None, **kwargs: Any
    ) -> Any:
        """One S3 call, its errors mapped to nbpromote's: None for a missing key when ``missing_ok``."""
        url = self.target.show(key)
        for attempt in range(_CONFLICT_RETRIES):
            try:
                return getattr(self._client, operation)(Bucket=self.bucket, Key=self.target.prefix + key, **kwargs)
            except self._errors.ClientError as exc:
                error = exc.response.get("Error", {})
                code = str(error.get("Code", ""))
                status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
                message = error.get("Message") or code
                if code == "NoSuchBucket":
                    raise TargetError(
                        f"bucket {self.bucket!r} does not exist (endpoint {self.endpoint}); "
                        "create it or fix the target URL"
                    ) from None
                if code in ("NoSuchKey", "404", "NotFound") or status == 404:
                    if missing_ok:
                        return None
                    if operation in ("put_object", "delete_object"):  # If-Match on an absent key
                        raise PreconditionFailed(key, condition) from None
                if code in ("PreconditionFailed", "412") or status == 412:
                    raise PreconditionFailed(key, condition) from None
                if code == "ConditionalRequestConflict" or status == 409:
                    if attempt + 1 < _CONFLICT_RETRIES:
                        continue
                    raise Conflict(f"S3 kept answering 409 ConditionalRequestConflict for {url}; try again") from None
                if code in ("AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken") or (
                    status == 403
                ):
                    raise TargetError(f"access denied to {url} ({code}: {message}); {_ACCESS_HINT}") from None
                raise TargetError(f"S3 {operation} {url} failed: {code}: {message}") from None
            except (self._errors.NoCredentialsError, self._errors.PartialCredentialsError):
                raise TargetError(
                    f"no AWS credentials for {self.target.url}: set AWS_PROFILE or AWS_ACCESS_KEY_ID and "
                    "AWS_SECRET_ACCESS_KEY, or run where a role provides them"
                ) from None
            except self._errors.EndpointConnectionError:
                raise TargetError(f"cannot reach the S3 endpoint {self.endpoint} for {url}") from None
            except self._errors.BotoCoreError as exc:
                raise TargetError(f"S3 {operation} {url} failed: {without_userinfo(str(exc))}") from None
        raise AssertionError("unreachable")  # the loop returns or raises
