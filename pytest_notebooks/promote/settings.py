"""``[tool.nbpromote]`` and target URLs -> ``Config`` and ``Target``. Pure apart from reading the TOML file.

A relative path in the table is relative to the directory of that pyproject.toml; a relative path
on the command line is relative to the current directory (or ``-C DIR``).
"""

from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from pytest_notebooks.errors import TargetError, UsageError
from pytest_notebooks.files import without_userinfo

if sys.version_info >= (3, 11):
    import tomllib
else:  # pytest depends on tomli below 3.11, so it is installed wherever the plugin is
    import tomli as tomllib  # type: ignore[import-not-found,unused-ignore]

TABLE = "nbpromote"
KEYS = {
    "target": "where templates go live: s3://bucket/prefix/, file:///path or a directory",
    "source_root": "the directory whose layout the live keys mirror (default: the repository root)",
    "results": "the results file (default: notebook-outputs/results.json)",
    "clear_outputs": "publish templates with their outputs cleared (default: false, outputs as committed)",
    "all_or_nothing": "refuse the whole promotion when any notebook is held back (default: false)",
    "groups": "promotion groups: {name = [notebook paths or globs, relative to this file]}; a group goes live "
    "whole or not at all",
    "accept_fixture_skips": "a case its fixture skips does not hold its notebook back (default: true)",
    "accept_fixture_xfails": "a case its fixture marks xfail that fails does not hold it back (default: true)",
    "accept_flaky": "a case that passed only on a pytest-rerunfailures rerun does not hold it back (default: false)",
    "text_templates": 'what is published for a Jupytext text template (x.py, x.md): "text" (the default), the '
    'committed file byte for byte; "ipynb", the notebook its cases ran (made from the committed text again and '
    'published only if it is those bytes) as x.ipynb, for a scheduler that runs papermill; "both"',
}
TEXT_TEMPLATES = ("text", "ipynb", "both")  # the values text_templates names
DEFAULT_RESULTS = "notebook-outputs/results.json"
# AWS's rules for new bucket names: 3-63 of lower-case letters, digits, dots and hyphens.
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")


@dataclass(frozen=True)
class Target:
    """Where templates go live."""

    url: str  # normalised, for messages: s3://bucket/prefix/ or file:///abs/path/
    bucket: str | None  # S3 only
    prefix: str  # S3 key prefix, "" or ending in "/"
    path: Path | None  # local directory only

    @property
    def is_s3(self) -> bool:
        return self.bucket is not None

    def show(self, key: str) -> str:
        """The URL of one key in this target."""
        return self.url + key


@dataclass(frozen=True)
class Config:
    """The ``[tool.nbpromote]`` table, paths resolved; every value None when not set."""

    path: Path | None  # the pyproject.toml it came from
    target: str | None
    target_base: Path | None  # the directory a relative local target is resolved against
    source_root: Path | None
    results: Path | None
    clear_outputs: bool | None
    all_or_nothing: bool | None = None
    groups: dict[str, tuple[str, ...]] | None = None  # name -> globs relative to the repository root
    accept_fixture_skips: bool | None = None
    accept_fixture_xfails: bool | None = None
    accept_flaky: bool | None = None
    text_templates: str | None = None  # "text", "ipynb" or "both" (None: the default, "text")


def parse_target(text: str, base: Path) -> Target:
    """``s3://bucket/prefix/``, ``file:///path`` or a directory (relative to ``base``) -> Target.

    Raises TargetError with a one-line message for anything else.
    """
    parts = urlsplit(text)
    scheme = parts.scheme.lower()
    if "@" in parts.netloc:  # user:password@ never belongs in a target, and is never echoed
        raise TargetError(
            f"bad target {without_userinfo(text)!r}: credentials in the URL are not supported; use the AWS "
            "credential chain (AWS_PROFILE, a role, or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY in the environment)"
        )
    if scheme == "s3":
        bucket = parts.netloc
        if not bucket:
            raise TargetError(f"bad target {text!r}: no bucket name; write s3://bucket/prefix/")
        if not _BUCKET.fullmatch(bucket) or ".." in bucket:
            raise TargetError(
                f"bad target {text!r}: {bucket!r} is not a valid S3 bucket name "
                "(3-63 lower-case letters, digits, dots and hyphens)"
            )
        if parts.query or parts.fragment:
            raise TargetError(f"bad target {text!r}: an S3 target takes no '?' or '#' part")
        prefix = parts.path.lstrip("/")
        if prefix and not prefix.endswith("/"):
            prefix += "/"
        if "//" in prefix or any(p in (".", "..") for p in prefix.split("/")[:-1]):
            raise TargetError(f"bad target {text!r}: empty, '.' or '..' path segments in the prefix")
        return Target(url=f"s3://{bucket}/{prefix}", bucket=bucket, prefix=prefix, path=None)
    if scheme == "file":
        if parts.netloc not in ("", "localhost"):
            raise TargetError(f"bad target {text!r}: file:// URLs must name a local path (file:///path)")
        return _local(Path(unquote(parts.path)), text)
    if scheme and len(scheme) > 1:  # one letter is a Windows drive, not a scheme
        raise TargetError(
            f"bad target {text!r}: unsupported scheme {scheme + '://'!r}; "
            "use s3://bucket/prefix/, file:///path or a directory"
        )
    if not text.strip():
        raise TargetError("bad target '': give s3://bucket/prefix/, file:///path or a directory")
    return _local(base / text, text)


def _local(path: Path, text: str) -> Target:
    path = Path(os.path.abspath(path.expanduser()))  # normalises "..", unlike Path.absolute()
    if path.exists() and not path.is_dir():
        raise TargetError(f"bad target {text!r}: {path} exists and is not a directory")
    if not path.exists() and not path.parent.is_dir():
        raise TargetError(f"bad target {text!r}: the parent directory {path.parent} does not exist; create it first")
    return Target(url=path.as_uri().rstrip("/") + "/", bucket=None, prefix="", path=path)


def find_config(start: Path, stop: Path | None) -> Config:
    """The first pyproject.toml with a ``[tool.nbpromote]`` table from ``start`` up to ``stop``.

    ``stop`` is the repository root (None outside git: search up to the filesystem root).
    """
    start = start.absolute()
    for directory in (start, *start.parents):
        candidate = directory / "pyproject.toml"
        if candidate.is_file():
            table = _table(candidate)
            if table is not None:
                return _config(candidate, table)
        if stop is not None and directory == stop:
            break
    return Config(path=None, target=None, target_base=None, source_root=None, results=None, clear_outputs=None)


def _table(path: Path) -> dict[str, Any] | None:
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise UsageError(f"cannot read {path}: {exc}") from None
    table = document.get("tool", {}).get(TABLE)
    if table is None:
        return None
    if not isinstance(table, dict):
        raise UsageError(f"{path}: [tool.{TABLE}] must be a table")
    return table


def _config(path: Path, table: dict[str, Any]) -> Config:
    unknown = sorted(set(table) - set(KEYS))
    if unknown:
        raise UsageError(
            f"{path}: unknown key(s) in [tool.{TABLE}]: {', '.join(unknown)}; known keys: {', '.join(KEYS)}"
        )
    for key in ("target", "source_root", "results"):
        if key in table and not isinstance(table[key], str):
            raise UsageError(f"{path}: [tool.{TABLE}] {key} must be a string, got {table[key]!r}")
    for key in ("clear_outputs", "all_or_nothing", "accept_fixture_skips", "accept_fixture_xfails", "accept_flaky"):
        if key in table and not isinstance(table[key], bool):
            raise UsageError(f"{path}: [tool.{TABLE}] {key} must be true or false, got {table[key]!r}")
    _check_text_templates(path, table.get("text_templates"))
    base = path.parent
    groups = _groups(path, table.get("groups"))
    return Config(
        path=path,
        target=table.get("target"),
        target_base=base,
        source_root=base / table["source_root"] if "source_root" in table else None,
        results=base / table["results"] if "results" in table else None,
        clear_outputs=table.get("clear_outputs"),
        all_or_nothing=table.get("all_or_nothing"),
        groups=groups,
        accept_fixture_skips=table.get("accept_fixture_skips"),
        accept_fixture_xfails=table.get("accept_fixture_xfails"),
        accept_flaky=table.get("accept_flaky"),
        text_templates=table.get("text_templates"),
    )


def _check_text_templates(path: Path, value: Any) -> None:
    """``text_templates``: one of TEXT_TEMPLATES, or a usage error."""
    if value is None or value in TEXT_TEMPLATES:
        return
    raise UsageError(
        f"{path}: [tool.{TABLE}] text_templates must be one of {', '.join(map(repr, TEXT_TEMPLATES))}, got {value!r}"
    )


def _groups(path: Path, value: Any) -> dict[str, tuple[str, ...]] | None:
    """``groups = {pipeline = ["notebooks/a.ipynb", "notebooks/etl_*.ipynb"]}``, paths relative to
    the pyproject.toml's directory, returned relative to the repository root holding it."""
    if value is None:
        return None
    shape = f"{path}: [tool.{TABLE}] groups must be a table of names to lists of notebook paths"
    if not isinstance(value, dict):
        raise UsageError(shape)
    from pytest_notebooks.gitinfo import git_state

    state = git_state(path.parent)
    base = path.parent.resolve()
    prefix = base.relative_to(state.root).as_posix() if state is not None and base != state.root else ""
    groups = {}
    for name, members in value.items():
        if not isinstance(members, list) or not members or not all(isinstance(m, str) and m for m in members):
            raise UsageError(f"{shape}; {name!r} is {members!r}")
        groups[str(name)] = tuple(f"{prefix}/{m}" if prefix else m for m in members)
    return groups
