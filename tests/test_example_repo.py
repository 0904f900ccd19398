"""example_repo/ is the acceptance fixture: a copy of it passes serially and under xdist."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.example import EXAMPLE, copy_example
from tests.subprocess_pytest import run_pytest


@pytest.fixture
def example(tmp_path: Path) -> Path:
    return copy_example(tmp_path / "example_repo")


@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["serial", "xdist"])
@pytest.mark.kernel
def test_example_repo_passes(example: Path, workers: list[str]) -> None:
    run = run_pytest(example, "-p", "no:cacheprovider", "-q", *workers)
    assert run.returncode == 0, run.stdout + run.stderr
    results = json.loads((example / "notebook-outputs" / "results.json").read_text())
    assert results["summary"] == {"passed": len(results["cases"])}
    cases = {(c["notebook"], c["case"]) for c in results["cases"]}
    assert {("notebooks/vid_agg.ipynb", "luna"), ("notebooks/vid_agg.ipynb", "fr")} <= cases
    for case in results["cases"]:
        assert (example / case["output"]).is_file()


def test_committed_notebooks_match_their_generator() -> None:
    run = subprocess.run(
        [sys.executable, str(EXAMPLE / "scripts" / "make_notebooks.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 0, run.stdout + run.stderr
