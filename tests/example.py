"""example_repo, copied for a test: its files without what a run leaves behind."""

from __future__ import annotations

import shutil
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parent.parent / "example_repo"
LEFT_BY_RUNS = ("notebook-outputs", "promoted-templates", "*.sqlite", "agg-output", "__pycache__", ".pytest_cache")


def copy_example(target: Path) -> Path:
    """Copy example_repo to ``target`` (which must not exist), leaving out run outputs."""
    shutil.copytree(EXAMPLE, target, ignore=shutil.ignore_patterns(*LEFT_BY_RUNS))
    return target
