"""As a reviewer reads it: a pull request on a copy of example_repo, through pytest's review option.

The PR changes a template (the report shouts), a fixture (a new region, a longer limit, a case's
cell limit) and accepts the report's new outputs (``--notebooks-update-snapshots``, committed).
The comment must show each change once, in its own section, and hold every promise of
``check_document``. The README's example comment is this document.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.example import example_repository
from tests.gitrepo import commit_all
from tests.review_checks import check_document
from tests.subprocess_pytest import run_pytest

pytestmark = pytest.mark.kernel  # every test here runs notebooks in real kernels


def pytest_in(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env_drop = ("GITHUB_STEP_SUMMARY", "GITHUB_ACTIONS", "GITHUB_WORKSPACE")
    env = {k: v for k, v in os.environ.items() if k not in env_drop}
    return run_pytest(root, "-p", "no:cacheprovider", *args, env=env)


def test_a_pull_request_reads_correctly_in_the_comment(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    repo = example_repository(root)
    repo.git.checkout("-b", "feature")
    report = root / "notebooks" / "report.ipynb"
    report.write_text(report.read_text().replace("print(text)", "print(text.upper())"))
    fixture = root / "notebooks" / "vid_agg.yaml"
    fixture.write_text(
        fixture.read_text()
        .replace("  us:\n    region_code: us\n", "  us:\n    region_code: us\n  de:\n    region_code: de\n")
        .replace("cell_timeout: 30", "cell_timeout: 45")
        .replace("timeout: 120\ncell_timeout: 60", "timeout: 300\ncell_timeout: 60")
    )
    accepted = pytest_in(root, "-p", "no:xdist", "-q", "notebooks/report.ipynb", "--notebooks-update-snapshots")
    assert accepted.returncode == 0, accepted.stdout + accepted.stderr
    commit_all(repo, "Shout the report (snapshots accepted); vid_agg: Germany, longer limits")

    gate = pytest_in(
        root, "-n", "2", "-q", "--notebooks-review=notebook-outputs/review.md", "--notebooks-review-base=main"
    )
    assert gate.returncode == 0, gate.stdout + gate.stderr
    comment = (root / "notebook-outputs" / "review.md").read_text(encoding="utf-8")
    (tmp_path / "comment.md").write_text(comment, encoding="utf-8")  # kept for a look: pytest --basetemp
    checked = check_document(comment)
    assert checked.counted == checked.rows == 11  # 10 cases of example_repo + the new one

    lines = comment.splitlines()
    assert lines[1] == "### ✅ Notebook tests: 11 passed"
    assert "| ✅ passed | notebooks/vid_agg.ipynb | de |" in comment
    headings = [line for line in lines if line.startswith("#### ")]
    assert headings == [
        "#### Template changes (main...HEAD)",
        "#### Fixture changes",
        "#### Output changes (snapshots)",
    ]
    summaries = [line for line in lines if line.startswith("<details>")]
    assert summaries == [
        "<details><summary>notebooks/report.ipynb: modified, 1 cell changed</summary>",
        "<details><summary>notebooks/vid_agg.ipynb (fixture notebooks/vid_agg.yaml): cases: 1 added, 1 changed, "
        "settings changed</summary>",
        "<details><summary>notebooks/report.ipynb::luna: snapshot updated, outputs of 1 cell changed "
        "(notebooks/__snapshots__/report/luna.ipynb)</summary>",
        "<details><summary>notebooks/report.ipynb::us: snapshot updated, outputs of 1 cell changed "
        "(notebooks/__snapshots__/report/us.ipynb)</summary>",
    ]
    assert "\n-print(text)\n+print(text.upper())\n" in comment
    assert (
        "  settings of the file:\n-   timeout: 120\n+   timeout: 300\n"
        "~ case fr-next-day\n    settings:\n-     cell_timeout: 30\n+     cell_timeout: 45\n"
        '+ new case de\n+     region_code: "de"\n'
    ) in comment
    assert "\n-[stdout] # Video plays in luna, 2017-01-01\n+[stdout] # VIDEO PLAYS IN LUNA, 2017-01-01\n" in comment
    assert "\n-[stdout] | mobile | 138 | 21.8 | 117 |\n" in comment
    assert "\n+[stdout] | MOBILE | 138 | 21.8 | 117 |\n" in comment
