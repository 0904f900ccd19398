"""The sdist is self-sufficient: unpacked in a fresh directory and installed, with its test group, into
a fresh virtualenv, it runs the test suite (a part of it here; the release workflow runs all of it).

To stay fast and offline, the fresh virtualenv sees this environment's packages as a last entry of
its path (a .pth file) and the sdist is installed with --no-deps: pip still reads the sdist's own
pyproject.toml for the test group (already satisfied, so nothing is downloaded) and the package, its
console scripts and its entry points come from the sdist alone.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
import sysconfig
import tarfile
from pathlib import Path

import pytest

import pytest_notebooks

pytestmark = pytest.mark.kernel  # the part of the suite run from the sdist starts a kernel

ROOT = Path(__file__).resolve().parent.parent
VERSION = pytest_notebooks.__version__
# a part of the suite that needs what only a checkout used to have: the test helpers and conftest.py,
# example_repo (its generator check, and its notebooks run in real kernels by the plugin installed
# from the sdist), the workflows, CHANGELOG.md and, with the docs group, the docs build
PART = (
    "tests/test_params.py::test_cases_keep_file_order_and_override_defaults",
    "tests/test_layout.py::test_no_module_in_tests_imports_a_test_module",
    "tests/test_example_repo.py::test_committed_notebooks_match_their_generator",
    "tests/test_example_repo.py::test_example_repo_passes[serial]",
    "tests/test_workflows.py::test_example_repo_calls_the_reusable_workflows_from_source",
    "tests/test_release.py::test_the_release_notes_are_the_changelog_entry",
)
# where the docs group is installed (it is not in ci.yml's minimum-versions job, which has the test group)
DOCS_PART = ("tests/test_docs.py::test_one_version_everywhere",) if importlib.util.find_spec("mkdocs") else ()


def run(*argv: str | Path, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    ran = subprocess.run(
        [str(arg) for arg in argv], cwd=cwd, env=env, capture_output=True, text=True, timeout=600, check=False
    )
    assert ran.returncode == 0, f"{argv}\n{ran.stdout}\n{ran.stderr}"
    return ran


def test_the_sdist_installs_with_its_test_group_and_runs_the_suite(tmp_path: Path) -> None:
    run(sys.executable, "-m", "build", "--sdist", "--no-isolation", "--outdir", tmp_path / "dist", ROOT, cwd=tmp_path)
    (sdist,) = (tmp_path / "dist").glob("*.tar.gz")
    assert sdist.name == f"pytest_notebooks-{VERSION}.tar.gz"
    with tarfile.open(sdist) as archive:
        archive.extractall(tmp_path, filter="data")
    unpacked = tmp_path / f"pytest_notebooks-{VERSION}"

    venv = tmp_path / "venv"
    run(sys.executable, "-m", "venv", "--without-pip", venv, cwd=tmp_path)
    python = venv / "bin" / "python"
    site = Path(
        run(python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))", cwd=tmp_path).stdout.strip()
    )
    (site / "zz-dependencies.pth").write_text(sysconfig.get_path("purelib") + "\n")  # after the venv's own
    pip = (sys.executable, "-m", "pip", "--python", python, "install", "--quiet", "--no-deps", "--no-build-isolation")
    run(*pip, f"{sdist}[s3]", "--group", "test", cwd=unpacked)  # --group: the sdist's pyproject.toml

    where = run(python, "-c", "import pytest_notebooks; print(pytest_notebooks.__file__)", cwd=tmp_path).stdout
    assert Path(where.strip()).is_relative_to(site), where  # the sdist's install, not this checkout
    version = run(venv / "bin" / "nbpromote", "--version", cwd=tmp_path).stdout
    assert version == f"nbpromote (pytest-notebooks {VERSION})\n"

    env = {key: value for key, value in os.environ.items() if not key.startswith(("PYTEST_", "COV_"))}
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env['PATH']}"
    tested = run(
        python, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-n", "0", *PART, *DOCS_PART, cwd=unpacked, env=env
    )
    summary = tested.stdout.strip().splitlines()[-1]
    assert re.fullmatch(r"\d+ passed in .*", summary), tested.stdout  # none failed, errored or skipped
