"""Keys in a target -> bytes, with conditional writes only. The only module that imports boto3.

Two stores with the same guarantees, keyed by paths relative to the target:

- ``put(key, data, if_match=None)`` creates the key and fails if it exists (S3 ``If-None-Match: *``);
  ``put(key, data, if_match=etag)`` replaces it only if its ETag is still ``etag`` (S3 ``If-Match``);
  ``delete(key, if_match=etag)`` likewise. A failed condition raises PreconditionFailed. There is no
  unconditional write.
- ``S3Store``: one boto3 client from a fresh session, so the standard credential chain and
  ``AWS_ENDPOINT_URL_S3`` / ``AWS_ENDPOINT_URL`` apply as everywhere else. Conditions are enforced by
  S3 itself, on PutObject and DeleteObject only: CopyObject is never used, because S3 refuses
  conditional copies under a bucket policy that enforces conditional writes, and moto ignores the
  conditions on copies altogether.
- ``LocalStore``: a directory. The ETag is the sha256 of the file's bytes; each conditional write
  checks it and renames a fully written temporary file over the key while holding an exclusive lock
  on ``.nbpromote/lock`` (flock; released by the OS if the process dies), so readers see the old or
  the new file, never half of one. Editors and schedulers do not take that lock: a hand edit landing
  between the check and the rename is the one case the local store cannot see, where S3 can.
  A run killed during a write leaves its temporary file (``.nbpromote-*.tmp``) beside the key;
  ``LocalStore.sweep`` removes such files once they are old (S3 has no temporary files).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import sys
import time
from collections.abc import Iterator, Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Protocol

from pytest_notebooks.files import atomic_write
from pytest_notebooks.promote.errors import Conflict, PreconditionFailed, TargetError
from pytest_notebooks.promote.models import HIDDEN, Head, Stored
from pytest_notebooks.promote.settings import Target

NOTEBOOK_TYPE = "application/x-ipynb+json"
JSON_TYPE = "application/json"
TEMP_PREFIX = ".nbpromote-"  # the local store's temporary files: .nbpromote-<random>.tmp beside the key
_CONFLICT_RETRIES = 3  # S3 answers 409 ConditionalRequestConflict to concurrent conditional writes: retry
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
        lock_dir = self.root / HIDDEN
        lock_dir.mkdir(parents=True, exist_ok=True)  # the target's parent was checked when parsing it
        fd = os.open(lock_dir / "lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            if sys.platform == "win32":
                import msvcrt

                msvcrt.locking(fd, msvcrt.LK_LOCK, 1)
            else:
                import fcntl

                fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing the descriptor releases the lock


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
            raise TargetError(f"cannot set up S3 access for {target.url}: {exc}") from None
        self.endpoint: str = self._client.meta.endpoint_url

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
        return Head(etag=response["ETag"], modified=modified.isoformat() if modified else None)

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
            Metadata=dict(metadata),
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
                raise TargetError(f"S3 {operation} {url} failed: {exc}") from None
        raise AssertionError("unreachable")  # the loop returns or raises
