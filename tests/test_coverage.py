"""Library code that only notebooks run is measured by `pytest --cov`, under xdist too."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.example import copy_example


def test_vidlib_lines_run_only_by_notebooks_are_covered(tmp_path: Path) -> None:
    root = copy_example(tmp_path / "example_repo")
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "no:cacheprovider",
            "-n",
            "2",
            "--cov",
            "--cov-report=json:cov.json",
            "notebooks",
        ],  # the notebooks only: lib/tests, which import vidlib in pytest's process, do not run
        cwd=root,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    files = json.loads((root / "cov.json").read_text())["files"]
    agg = files["lib/vidlib/agg.py"]["summary"]
    assert agg["percent_covered"] == 100.0, agg  # aggregate_by_device: called by vid_agg.ipynb's kernel only
    assert files["lib/vidlib/report.py"]["summary"]["covered_lines"] > 0
