"""Bad targets and a missing boto3: one line each, and a password in a URL is never echoed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.promote_repo import nbpromote


def test_a_password_in_the_target_url_is_never_echoed(tmp_path: Path) -> None:
    result = nbpromote("-C", tmp_path, "status", "--target", "s3://user:hunter2@bucket/x/")
    assert result.code == 1, result.text
    assert "hunter2" not in result.text
    assert result.err == (
        "nbpromote: failed: bad target 's3://***@bucket/x/': credentials in the URL are not supported; use the "
        "AWS credential chain (AWS_PROFILE, a role, or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY in the environment)\n"
    )


def test_a_junk_endpoint_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", "not a url")
    result = nbpromote("-C", tmp_path, "status", "--target", "s3://bucket/x/")
    assert result.code == 1, result.text
    assert result.err == "nbpromote: failed: cannot set up S3 access for s3://bucket/x/: Invalid endpoint: not a url\n"


def test_without_boto3_an_s3_target_names_the_extra(tmp_path: Path) -> None:
    # boto3 made unimportable in a fresh interpreter, as in an install without the s3 extra
    code = (
        "import sys; sys.modules['boto3'] = None; "
        "from pytest_notebooks.promote.cli import main; sys.exit(main(['status', '--target', 's3://bucket/x/']))"
    )
    run = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=False)
    assert run.returncode == 1, run.stderr
    assert run.stderr == (
        "nbpromote: failed: s3://bucket/x/: S3 targets need boto3, which is not installed: "
        "pip install 'pytest-notebooks[s3]'\n"
    )
