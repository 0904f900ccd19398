"""nbpromote publishes the committed bytes that were tested, never the working copy.

Each scenario is one where ``git status`` is clean but the bytes on disk (which pytest ran) are not
the bytes in git: a clean filter (nbstripout's set-up), ``--skip-worktree``, ``--assume-unchanged``.
And the policy: a template needs a passing case, and a decision to skip or xfail counts only when
its fixture is in git. Real pytest runs (real kernels), real git repositories, a local target.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.notebooks import write_notebook
from tests.project import Project

pytestmark = pytest.mark.kernel  # every test here runs notebooks in real kernels

ONE = "cases:\n  fr: {region_code: fr}\n"
SECRET = "customer rows: alice@example.com"  # noqa: S105 -- customer data in an output, not a password
# A clean filter of the test's own, as nbstripout installs one: outputs are dropped on `git add`.
STRIP = (
    "import json, sys\n"
    "nb = json.load(sys.stdin)\n"
    "for cell in nb['cells']:\n"
    "    if cell['cell_type'] == 'code':\n"
    "        cell['outputs'] = []\n"
    "        cell['execution_count'] = None\n"
    "json.dump(nb, sys.stdout, indent=1, sort_keys=True)\n"
    "sys.stdout.write('\\n')\n"
)


def with_outputs(path: Path, text: str) -> None:
    """Give the notebook's code cells an output, as a local run in Jupyter leaves them."""
    nb = json.loads(path.read_text())
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            cell["outputs"] = [{"output_type": "stream", "name": "stdout", "text": [text + "\n"]}]
            cell["execution_count"] = 1
    path.write_text(json.dumps(nb, indent=1, sort_keys=True) + "\n")


def published_bytes(project: Project, name: str) -> bytes | None:
    path = project.root / "live" / name
    return path.read_bytes() if path.exists() else None


def test_a_clean_filter_never_publishes_the_working_copys_outputs(project: Project, tmp_path: Path) -> None:
    strip = tmp_path / "strip.py"
    strip.write_text(STRIP)
    with project.repo.config_writer() as config:
        config.set_value('filter "strip"', "clean", f"{sys.executable} {strip}")
    (project.root / ".gitattributes").write_text("*.ipynb filter=strip\n")
    project.notebook("etl", "print(region_code)", ONE)
    with_outputs(project.root / "etl.ipynb", SECRET)
    project.commit()
    assert project.repo.git.status("--porcelain") == ""  # git sees no change: the filter hides it
    assert SECRET not in project.repo.git.show("HEAD:etl.ipynb")
    assert SECRET in (project.root / "etl.ipynb").read_text()

    assert project.pytest("-p", "no:xdist").returncode == 0
    refused = project.promote()
    assert refused.code == 4, refused.text
    assert published_bytes(project, "etl.ipynb") is None
    assert "etl.ipynb: the bytes tested (the working copy) are not the committed file" in refused.err
    assert "clean filter 'strip'" in refused.err
    tested_blob = project.results()["notebooks"][0]["blob"]
    assert tested_blob == project.repo.git.hash_object("--no-filters", "etl.ipynb")  # the bytes that ran
    assert (
        f"[blob {tested_blob[:12]} tested, {project.repo.git.rev_parse('HEAD:etl.ipynb')[:12]} in HEAD]" in refused.err
    )
    assert "Traceback" not in refused.text

    # the working copy made the committed bytes (what the filter gives), tested again: published as committed
    (project.root / "etl.ipynb").write_bytes(project.repo.git.show("HEAD:etl.ipynb").encode() + b"\n")
    project.repo.git.add("etl.ipynb")  # git trusts the size in its index until the file is added again
    assert project.repo.git.status("--porcelain") == ""
    assert project.pytest("-p", "no:xdist").returncode == 0
    promoted = project.promote()
    assert promoted.code == 0, promoted.text
    live = published_bytes(project, "etl.ipynb")
    assert live is not None
    assert SECRET not in live.decode()


@pytest.mark.parametrize("bit", ["--skip-worktree", "--assume-unchanged"])
def test_a_change_hidden_from_git_status_is_never_published(project: Project, bit: str) -> None:
    project.notebook("etl", "raise ValueError('the committed template raises')", ONE)
    project.commit()
    project.notebook("etl", "print('edited, never committed', region_code)", ONE)
    project.repo.git.update_index(bit, "etl.ipynb")
    assert project.repo.git.status("--porcelain") == ""

    assert project.pytest("-p", "no:xdist").returncode == 0  # the edited copy passes
    refused = project.promote()
    assert refused.code == 4, refused.text
    assert published_bytes(project, "etl.ipynb") is None
    expected = "skip-worktree" if bit == "--skip-worktree" else "assume-unchanged"
    assert f"etl.ipynb: the bytes tested (the working copy) are not the committed file ({expected}" in refused.err
    assert f"git update-index --no-{bit[2:]} etl.ipynb" in refused.err


@pytest.mark.parametrize("decision", ["xfail", "skip"])
def test_a_template_with_no_passing_case_is_held_back(project: Project, decision: str) -> None:
    fixture = f"cases:\n  fr:\n    parameters: {{region_code: fr}}\n    {decision}: upstream is late\n"
    project.notebook("raises", "raise ValueError('broken')", fixture)
    project.notebook("fine", "print(region_code)", ONE)
    project.commit()
    project.pytest("-p", "no:xdist")
    result = project.promote()
    assert result.code == 5, result.text
    assert project.published() == ["fine.ipynb"]
    assert "raises.ipynb: no case passed (every case was skipped or xfailed by its fixture)" in result.out
    assert "a template needs at least one passing case" in result.out


def test_a_fixture_outside_the_repository_decides_nothing(project: Project, tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere" / "etl.yaml"
    outside.parent.mkdir()
    outside.write_text(
        "cases:\n  fr: {region_code: fr}\n  us:\n    parameters: {region_code: us}\n    skip: decided outside git\n"
    )
    project.notebook("etl", "assert region_code != 'us'", ONE)
    (project.root / "etl.yaml").unlink()
    (project.root / "etl.yaml").symlink_to(outside)
    project.commit()
    project.pytest("-p", "no:xdist")
    result = project.promote()
    assert result.code == 4, result.text
    assert project.published() == []
    assert f"etl.ipynb: its fixture etl.yaml is a link to {outside}, outside the repository" in result.err


def test_an_untracked_symlink_loop_breaks_neither_pytest_nor_nbpromote(project: Project) -> None:
    project.notebook("etl", "print(region_code)", ONE)
    project.commit()
    os.symlink("loop", project.root / "loop")  # untracked, points at itself
    tested = project.pytest("-p", "no:xdist")
    assert tested.returncode == 0, tested.stdout + tested.stderr
    result = project.promote()
    assert "Traceback" not in result.text
    assert result.code == 4, result.text  # the untracked link makes the tree dirty, said so in one line
    assert "'?? loop'" in result.err


@pytest.mark.skipif(os.geteuid() != 0, reason="giving the repository to another user needs root")
def test_a_repository_owned_by_another_user_gives_gits_hint(project: Project) -> None:
    project.notebook("etl", "print(region_code)", ONE)
    project.commit()
    subprocess.run(["chown", "-R", "65534", str(project.root)], check=True)
    result = project.promote()
    assert result.code == 2, result.text
    assert "Traceback" not in result.text
    assert f"git config --global --add safe.directory {project.root}" in result.err
    tested = project.pytest("-p", "no:xdist")
    assert "Traceback" not in tested.stdout + tested.stderr
    assert f"safe.directory {project.root}" in tested.stdout + tested.stderr


def test_what_is_published_is_the_committed_blob(project: Project) -> None:
    """The ordinary case: the working copy is the blob, and the blob's bytes are what goes live."""
    write_notebook(project.root / "etl.ipynb", [('region_code = "luna"', ["parameters"]), "print(region_code)"])
    (project.root / "etl.yaml").write_text(ONE)
    project.commit()
    assert project.pytest("-p", "no:xdist").returncode == 0
    promoted = project.promote()
    assert promoted.code == 0, promoted.text
    live = json.loads(published_bytes(project, "etl.ipynb") or b"{}")
    committed = json.loads(project.repo.git.show("HEAD:etl.ipynb"))
    assert live["cells"] == committed["cells"]
    entry = project.results()["notebooks"][0]
    assert entry["blob"] == project.repo.git.rev_parse("HEAD:etl.ipynb")
    assert entry["fixture_blob"] == project.repo.git.rev_parse("HEAD:etl.yaml")


FLAKY = (
    "import pathlib\n"
    "marker = pathlib.Path('first-attempt.done')\n"
    "if not marker.exists():\n"
    "    marker.write_text('x')\n"
    "    raise RuntimeError('fails on its first attempt only')"
)


def test_a_flaky_case_holds_its_notebook_back_unless_accepted(project: Project) -> None:
    project.notebook("etl", FLAKY, ONE)
    (project.root / ".gitignore").write_text("notebook-outputs/\nlive/\n*.done\n")
    project.commit()
    tested = project.pytest("-p", "no:xdist", "--reruns", "1")
    assert tested.returncode == 0, tested.stdout
    record = project.results()["cases"][0]
    assert (record["outcome"], record["flaky"], record["failure"]) == ("passed", True, None)
    held = project.promote()
    assert held.code == 4, held.text
    assert "etl.ipynb: case 'fr' is flaky: it passed only when run again (attempt 2 of 2)" in held.err
    assert project.published() == []

    project.commit("[tool.nbpromote]\naccept_flaky = true\n")
    (project.root / "first-attempt.done").unlink()
    assert project.pytest("-p", "no:xdist", "--reruns", "1").returncode == 0
    promoted = project.promote()
    assert promoted.code == 0, promoted.text
    assert project.published() == ["etl.ipynb"]


def test_templates_that_differ_only_in_case_are_refused(project: Project) -> None:
    project.notebook("Report", "print(region_code)", ONE)
    project.notebook("report", "print(region_code, 2)", ONE)
    cafe_nfd, cafe_nfc = "cafe\u0301", "caf\u00e9"
    project.notebook(cafe_nfd, "print(region_code)", ONE)
    project.notebook(cafe_nfc, "print(region_code, 3)", ONE)
    project.commit()
    project.pytest("-p", "no:xdist")
    result = project.promote()
    assert result.code == 4, result.text
    assert "Report.ipynb and report.ipynb differ only in case or Unicode normalization" in result.err
    assert f"{cafe_nfc}.ipynb" in result.err
    assert "rename one of each pair (git mv)" in result.err
    assert project.published() == []
