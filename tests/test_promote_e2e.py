"""End to end, as the scheduler runs it: promote example_repo's templates to S3, then run one with
the real papermill CLI straight from the bucket, and find the provenance stamp in its output.

papermill's S3 handler builds its boto3 client without an endpoint and its resource with
``BOTO3_ENDPOINT_URL`` only; botocore itself honours ``AWS_ENDPOINT_URL_S3`` for both, so that one
variable (as for nbpromote) is all a scheduler pointed at an S3-compatible store needs. This test
sets exactly that, and unsets ``BOTO3_ENDPOINT_URL``.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import yaml

from tests.example import copy_example
from tests.promote_repo import NotebookRepo, nbpromote

if TYPE_CHECKING:
    from tests.s3server import S3

pytest_plugins = ("tests.s3server",)
pytestmark = pytest.mark.kernel  # every test here runs notebooks in real kernels


def test_papermill_runs_the_promoted_template_from_s3(s3: S3, tmp_path: Path) -> None:
    root = copy_example(tmp_path / "example_repo")
    (root / ".gitignore").write_text("notebook-outputs/\nagg-output/\n*.sqlite\n__pycache__/\n")
    repo = NotebookRepo(root)
    for fixture in sorted((root / "notebooks").glob("*.yaml")):
        cases = yaml.safe_load(fixture.read_text()).get("cases") or {"default": None}
        notebook = next(p for p in (fixture.with_suffix(".ipynb"), fixture.with_suffix(".py")) if p.exists())
        repo.cases[f"notebooks/{notebook.name}"] = tuple(cases)  # device_share.py: a text notebook
    commit = repo.commit("example repository")
    repo.results()  # as `pytest` in example_repo would write it, all passed

    # example_repo's [tool.nbpromote] sets source_root = "notebooks"; the target is the bucket
    target = f"s3://{s3.bucket}/jobs/templates/"
    result = nbpromote("-C", root, "--target", target)
    assert result.code == 0, result.text
    release = result.out.split("promoted release ")[1].split()[0]
    assert s3.get("jobs/templates/vid_agg.ipynb") is not None

    output = tmp_path / "out.ipynb"
    env = {key: value for key, value in os.environ.items() if key != "BOTO3_ENDPOINT_URL"}
    papermill = subprocess.run(
        [sys.executable, "-m", "papermill", f"{target}vid_agg.ipynb", str(output), "-p", "region_code", "fr"],
        cwd=root / "notebooks",  # where the scheduler runs it: the notebook imports lib/ from there
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert papermill.returncode == 0, papermill.stdout + papermill.stderr
    executed = json.loads(output.read_text())
    provenance = executed["metadata"]["pytest_notebooks"]["provenance"]
    assert provenance == {
        "commit": commit,
        "sha256": hashlib.sha256((root / "notebooks/vid_agg.ipynb").read_bytes()).hexdigest(),
        "release": release,
        "promoted_at": provenance["promoted_at"],
        "source_path": "notebooks/vid_agg.ipynb",
        "outputs": "as committed",
    }
    assert executed["metadata"]["papermill"]["parameters"]["region_code"] == "fr"
    assert executed["metadata"]["papermill"]["input_path"] == f"{target}vid_agg.ipynb"
    printed = "".join("".join(o.get("text", "")) for c in executed["cells"] for o in c.get("outputs", []))
    assert "wrote" in printed
    assert list((root / "notebooks" / "agg-output").glob("*fr*"))
