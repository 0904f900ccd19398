"""A real S3-compatible server for the tests: moto in server mode on 127.0.0.1, over HTTP.

One server per test session (per xdist worker: each worker is its own session), on a free port,
always stopped. Code under test reaches it exactly as production reaches S3: through boto3's
standard configuration, here ``AWS_ENDPOINT_URL_S3`` and dummy credentials in the environment. No
in-process mocking: requests go over a socket to moto's HTTP server.

Use it with ``pytest_plugins = ("tests.s3server",)`` in a test module; the ``s3`` fixture gives
each test a bucket of its own and the environment that points at the server.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

# Set for every test that uses the server; the values a CI job would set for real S3, except these.
ENV_UNSET = ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_SESSION_TOKEN", "BOTO3_ENDPOINT_URL", "AWS_DEFAULT_PROFILE")


@dataclass(frozen=True)
class S3:
    """A bucket of one test on the session's server, and the environment to reach it."""

    endpoint: str
    bucket: str
    env: dict[str, str]  # what a subprocess (papermill, nbpromote) needs on top of os.environ

    def client(self) -> Any:
        """A boto3 client for looking at the bucket from the test (one per test: they are slow to make)."""
        return _client(self.endpoint)

    def keys(self, prefix: str = "") -> list[str]:
        response = self.client().list_objects_v2(Bucket=self.bucket, Prefix=prefix)
        return sorted(item["Key"] for item in response.get("Contents", []))

    def get(self, key: str) -> bytes | None:
        client = self.client()
        try:
            body: bytes = client.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        except client.exceptions.NoSuchKey:
            return None
        return body

    def put_by_hand(self, key: str, data: bytes) -> None:
        """An unconditional upload, as someone fixing production from the console would do."""
        self.client().put_object(Bucket=self.bucket, Key=key, Body=data)

    def versions(self, key: str) -> int:
        """How many times ``key`` was written (the bucket is versioned)."""
        response = self.client().list_object_versions(Bucket=self.bucket, Prefix=key)
        return sum(1 for version in response.get("Versions", []) if version["Key"] == key)


@functools.lru_cache(maxsize=1)
def _client(endpoint: str) -> Any:
    import boto3  # type: ignore[import-untyped,unused-ignore]

    return boto3.session.Session().client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",  # noqa: S106 -- moto's dummy credentials
    )


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """moto's server on 127.0.0.1 and a free port, for the whole session."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        _require_preconditions(endpoint)
        yield endpoint
    finally:
        server.stop()


def _require_preconditions(endpoint: str) -> None:
    """nbpromote's safety under races rests on S3 refusing conditional writes whose condition
    fails; a server that ignores them would let every racer win. One line, not two dozen failures."""
    import moto

    client = _client(endpoint)
    bucket = f"nbp-preconditions-{uuid.uuid4().hex[:12]}"
    client.create_bucket(Bucket=bucket)
    client.put_object(Bucket=bucket, Key="k", Body=b"1")
    checks: dict[str, Callable[[], object]] = {
        "If-None-Match on PutObject": lambda: client.put_object(Bucket=bucket, Key="k", Body=b"2", IfNoneMatch="*"),
        "If-Match on PutObject": lambda: client.put_object(Bucket=bucket, Key="k", Body=b"2", IfMatch='"0"'),
        "If-Match on DeleteObject": lambda: client.delete_object(Bucket=bucket, Key="k", IfMatch='"0"'),
    }
    ignored = []
    for name, write in checks.items():
        try:
            write()
        except client.exceptions.ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "PreconditionFailed":
                continue
            raise
        ignored.append(name)
    if ignored:
        pytest.fail(f"the S3 test server (moto {moto.__version__}) ignores {', '.join(ignored)}: moto[server]>=5.1.22")


@pytest.fixture
def s3(s3_endpoint: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> S3:
    """A fresh versioned bucket, with this process's environment pointing boto3 at the server."""
    nowhere = str(tmp_path / "no-aws-config")  # never read a developer's ~/.aws
    env = {
        "AWS_ENDPOINT_URL_S3": s3_endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_SHARED_CREDENTIALS_FILE": nowhere,
        "AWS_CONFIG_FILE": nowhere,
    }
    for name in ENV_UNSET:
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    bucket = f"nbp-{uuid.uuid4().hex[:20]}"
    store = S3(endpoint=s3_endpoint, bucket=bucket, env=env)
    client = store.client()
    client.create_bucket(Bucket=bucket)
    client.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    return store
