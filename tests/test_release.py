"""The release: .github/workflows/release.yml's build and check steps, run here as the runner runs them
(read from the YAML, tests/workflow_steps.py), its release notes taken from CHANGELOG.md, and the
changelog kept per change with towncrier, naming the schema versions the code writes.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Mapping
from pathlib import Path

import pytest

import pytest_notebooks
from pytest_notebooks.promote import models as promote_models
from pytest_notebooks.results import record
from tests.workflow_steps import ROOT, StepRun, load, render, steps, with_path

VERSION = pytest_notebooks.__version__
CHANGELOG = ROOT / "CHANGELOG.md"
FRAGMENTS = ROOT / "changelog.d"
NOTES_STEP = "Extract the release notes from CHANGELOG.md"
LEFT_BEHIND = (".venv", "venv", "dist", "build", "site", "*.egg-info", "__pycache__", ".pytest_cache", ".mypy_cache")


def checkout_copy(target: Path) -> Path:
    """The files a fresh checkout of this working tree would have (tracked, or new and not ignored)."""
    if (ROOT / ".git").exists():
        listed = subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=ROOT,
            capture_output=True,
            check=True,
        ).stdout.decode()
        for name in filter(None, listed.split("\0")):
            source = ROOT / name
            if source.is_file():  # a deleted file stays listed until the deletion is staged
                (target / name).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, target / name)
    else:  # an unpacked sdist: no git, nothing to ignore but what runs leave
        shutil.copytree(ROOT, target, ignore=shutil.ignore_patterns(*LEFT_BEHIND, "notebook-outputs", "*.sqlite"))
    return target


def run_step(
    job: str, name: str, workspace: Path, values: Mapping[str, str], env: Mapping[str, str] | None = None
) -> StepRun:
    """One `run:` step of release.yml as the runner runs it (``bash -e``, the step's env rendered).

    tests/workflow_steps.run_step does this for the reusable workflows, whose inputs it fills in;
    release.yml has no inputs, only the ``github`` and ``runner`` values given here."""
    step = steps("release.yml", job)[name]
    with tempfile.TemporaryDirectory() as files:
        full_env = {**(os.environ if env is None else env), "GITHUB_WORKSPACE": str(workspace)}
        full_env |= {"GITHUB_OUTPUT": str(Path(files, "output")), "GITHUB_STEP_SUMMARY": str(Path(files, "summary"))}
        full_env |= {key: render(str(value), values) for key, value in step.get("env", {}).items()}
        ran = subprocess.run(
            ["bash", "-e", "-c", step["run"]],
            cwd=workspace / step.get("working-directory", "."),
            env=full_env,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
    return StepRun(ran.returncode, ran.stdout, ran.stderr, {}, "")


def newest_entry(text: str) -> str:
    """The first `## ` entry of CHANGELOG.md after towncrier's marker."""
    after = text.split("<!-- towncrier release notes start -->", 1)[1]
    return re.split(r"^## ", after, flags=re.MULTILINE)[1]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A checkout in which the release workflow's build step ran: its dist/ holds the sdist and wheel."""
    pytest.importorskip("build", reason="the release group is not installed: pip install --group release")
    workspace = checkout_copy(tmp_path_factory.mktemp("release") / "checkout")
    ran = run_step("build", "Build the sdist and the wheel", workspace, {}, with_path(Path(sys.executable).parent))
    assert ran.code == 0, ran.text
    return workspace


def check(workspace: Path, tag: str) -> tuple[int, str]:
    pytest.importorskip("twine", reason="the release group is not installed: pip install --group release")
    env = with_path(Path(sys.executable).parent)
    ran = run_step("build", "Check the sdist and the wheel", workspace, {"github.ref_name": tag}, env)
    return ran.code, ran.text


def test_the_release_build_and_check_steps_pass(built: Path) -> None:
    names = sorted(path.name for path in (built / "dist").iterdir())
    assert names == [f"pytest_notebooks-{VERSION}-py3-none-any.whl", f"pytest_notebooks-{VERSION}.tar.gz"]
    code, text = check(built, f"v{VERSION}")
    assert code == 0, text
    assert "PASSED" in text  # twine check --strict, for both files
    assert "their contents are as expected" in text


def test_the_check_step_refuses_another_tag_and_a_wheel_with_tests(built: Path, tmp_path: Path) -> None:
    code, text = check(built, "v99.0.0")
    assert code == 1
    assert f"the tag v99.0.0 is not v{VERSION}, the version built" in text
    workspace = tmp_path / "doctored"
    shutil.copytree(built, workspace)
    (wheel,) = (workspace / "dist").glob("*.whl")
    with zipfile.ZipFile(wheel, "a") as archive:
        archive.writestr("tests/test_params.py", "")
        archive.writestr("pytest_notebooks/py.typed.orig", "")
    code, text = check(workspace, f"v{VERSION}")
    assert code == 1
    assert f"{wheel.name} holds tests/test_params.py, which is not the package" in text


def test_the_release_notes_are_the_changelog_entry(tmp_path: Path) -> None:
    notes = tmp_path / "notes.md"
    values = {"github.ref_name": f"v{VERSION}", "runner.temp": str(tmp_path)}
    ran = run_step("github-release", NOTES_STEP, ROOT, values)
    assert ran.code == 0, ran.text
    entry = CHANGELOG.read_text(encoding="utf-8").split(f"\n## {VERSION} ", 1)[1].split("\n", 1)[1]
    assert notes.read_text(encoding="utf-8") == entry.split("\n## ", 1)[0].strip() + "\n"
    assert notes.read_text(encoding="utf-8").startswith(("The first version", "### "))
    values["github.ref_name"] = "v99.0.0"
    missing = run_step("github-release", NOTES_STEP, ROOT, values)
    assert missing.code == 1
    assert "CHANGELOG.md has no entry for 99.0.0: towncrier build --version 99.0.0" in missing.text


def test_the_changelog_fragments_build() -> None:
    pytest.importorskip("towncrier", reason="the docs group is not installed: pip install --group docs")
    ran = subprocess.run(
        [sys.executable, "-m", "towncrier", "build", "--draft", "--version", "99.0.0"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert "## 99.0.0 (" in ran.stdout


@pytest.mark.parametrize(
    ("schema", "version"),
    [
        ("pytest-notebooks/results", record.SCHEMA_VERSION),
        (promote_models.RELEASE_SCHEMA, promote_models.SCHEMA_VERSION),
    ],
)
def test_the_changelog_names_the_schema_versions_the_code_writes(schema: str, version: int) -> None:
    """A schema version the code writes is called out in the newest entry, or in a `schema` fragment
    for the next one: a change of version cannot reach a release unannounced."""
    said = [newest_entry(CHANGELOG.read_text(encoding="utf-8"))]
    said += [path.read_text(encoding="utf-8") for path in FRAGMENTS.glob("*.schema.md")]
    pattern = re.compile(rf"{re.escape(schema)}\W+version {version}\b")
    assert any(pattern.search(text) for text in said), (
        f"write changelog.d/<issue>.schema.md saying `{schema}` **version {version}** and what readers must do"
    )


def test_the_changelog_has_an_entry_for_this_version() -> None:
    assert re.search(rf"^## {re.escape(VERSION)} \(", CHANGELOG.read_text(encoding="utf-8"), re.MULTILINE)


def test_only_the_publish_job_may_mint_an_oidc_token() -> None:
    """Least privilege: nothing at the workflow level; id-token on the job that uploads to PyPI (in the
    `pypi` environment, which PyPI's trusted publisher names) and nowhere else."""
    workflow = load("release.yml")
    assert workflow["permissions"] == {}
    assert workflow["on"] == {"push": {"tags": ["v*"]}}
    jobs = workflow["jobs"]
    minting = sorted(job_id for job_id, job in jobs.items() if job["permissions"].get("id-token"))
    assert minting == ["publish"]
    assert jobs["publish"]["permissions"] == {"id-token": "write", "attestations": "write"}
    assert jobs["publish"]["environment"]["name"] == "pypi"
    assert jobs["publish"]["needs"] == ["build", "test-sdist"]
    uses = [step.get("uses", "").split("@")[0] for step in jobs["publish"]["steps"]]
    assert uses == ["actions/download-artifact", "actions/attest-build-provenance", "pypa/gh-action-pypi-publish"]
    assert "password" not in str(jobs["publish"])  # no stored token
    assert jobs["github-release"]["permissions"] == {"contents": "write"}
    assert jobs["build"]["permissions"] == {"contents": "read"}
    assert jobs["test-sdist"]["permissions"] == {}


def test_the_docs_workflow_builds_every_pull_request_and_deploys_main_only() -> None:
    workflow = load("docs.yml")
    assert workflow["permissions"] == {}
    assert set(workflow["on"]) == {"pull_request", "push"}
    build, deploy = workflow["jobs"]["build"], workflow["jobs"]["deploy"]
    assert build["permissions"] == {"contents": "read"}
    assert "if" not in build  # every pull request
    assert steps("docs.yml", "build")["Build the site"]["run"] == "mkdocs build --strict --site-dir _site"
    main_only = "github.event_name == 'push' && github.ref == 'refs/heads/main'"
    assert steps("docs.yml", "build")["Upload the site for GitHub Pages"]["if"] == main_only
    assert deploy["if"] == main_only
    assert deploy["permissions"] == {"pages": "write", "id-token": "write"}
    assert deploy["environment"]["name"] == "github-pages"
