"""Library code that only notebooks run is measured by `pytest --cov`, under xdist too."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.example import copy_example
from tests.subprocess_pytest import run_pytest

pytestmark = pytest.mark.kernel  # every test here runs notebooks in real kernels


def test_vidlib_lines_run_only_by_notebooks_are_covered(tmp_path: Path) -> None:
    root = copy_example(tmp_path / "example_repo")
    # the notebooks only: lib/tests, which import vidlib in pytest's process, do not run
    args = ("-p", "no:cacheprovider", "-n", "2", "--cov", "--cov-report=json:cov.json", "notebooks")
    run = run_pytest(root, *args, timeout=900)
    assert run.returncode == 0, run.stdout + run.stderr
    files = json.loads((root / "cov.json").read_text())["files"]
    agg = files["lib/vidlib/agg.py"]["summary"]
    assert agg["percent_covered"] == 100.0, agg  # aggregate_by_device: called by vid_agg.ipynb's kernel only
    assert files["lib/vidlib/report.py"]["summary"]["covered_lines"] > 0
