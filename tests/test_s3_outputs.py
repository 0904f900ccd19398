"""An s3:// output directory: papermill writes the executed notebooks there, we stamp them there.

Against moto's S3 server on 127.0.0.1 (tests/s3server.py), reached through boto3's standard
configuration, as in production.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest

from tests.notebooks import PARAMS, TWO_REGIONS, write_notebook

if TYPE_CHECKING:  # imported for real by pytest_plugins, which lets pytest rewrite its asserts
    from tests.s3server import S3

pytest_plugins = ("tests.s3server",)
pytestmark = pytest.mark.kernel  # every test here runs notebooks in real kernels


def test_outputs_go_to_s3_on_every_outcome(pytester: pytest.Pytester, s3: S3) -> None:
    write_notebook(pytester.path / "notebooks" / "vid_agg.ipynb", [PARAMS, "x = {'luna': 1}[region_code]"])
    (pytester.path / "notebooks" / "vid_agg.yaml").write_text(TWO_REGIONS)
    target = f"s3://{s3.bucket}/runs/pr-7"
    result = pytester.runpytest_subprocess("-n", "2", f"--notebooks-output-dir={target}")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            f"notebooks: outputs in {target}, results in notebook-results.json",
            f"output notebook: {target}/notebooks/vid_agg/fr.ipynb",
        ]
    )
    assert s3.keys("runs/") == ["runs/pr-7/notebooks/vid_agg/fr.ipynb", "runs/pr-7/notebooks/vid_agg/luna.ipynb"]
    failed = json.loads(s3.get("runs/pr-7/notebooks/vid_agg/fr.ipynb") or b"{}")
    assert failed["metadata"]["pytest_notebooks"]["failure"]["summary"] == "cell 2 (In [3]): KeyError: 'fr'"
    passed = json.loads(s3.get("runs/pr-7/notebooks/vid_agg/luna.ipynb") or b"{}")
    assert passed["metadata"]["pytest_notebooks"]["outcome"] == "passed"
    results = json.loads((pytester.path / "notebook-results.json").read_text())
    assert {c["case"]: c["output"] for c in results["cases"]} == {
        "luna": f"{target}/notebooks/vid_agg/luna.ipynb",
        "fr": f"{target}/notebooks/vid_agg/fr.ipynb",
    }
