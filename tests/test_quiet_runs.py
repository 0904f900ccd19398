"""What the plugin prints and does when it has little to say (issue 24): each collection problem once
under xdist, not once per worker; no git probe without a notebook. No kernel starts."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from tests.gitrepo import commit_all, init_repo
from tests.notebooks import PARAMS, write_notebook
from tests.subprocess_pytest import run_pytest

WARNINGS_SHOWN = ("-W", "default::pytest_notebooks.errors.PytestNotebooksWarning")  # the outer run's: error


def test_each_collection_error_and_warning_is_reported_once_under_xdist(pytester: pytest.Pytester) -> None:
    write_notebook(pytester.path / "bad.ipynb", [PARAMS])
    (pytester.path / "bad.yaml").write_text("cases:\n  fr: {regoin_code: fr}\n")
    write_notebook(pytester.path / "legacy.ipynb", [PARAMS])
    (pytester.path / "legacy.yaml").write_text("schedule: daily\nowner: data-eng\n")
    (pytester.path / "stray.yaml").write_text("cases:\n  fr: {region_code: fr}\n")
    pytester.makepyfile(test_plain="def test_plain():\n    pass\n")
    result = pytester.runpytest_subprocess("-n", "2", "-p", "no:randomly", *WARNINGS_SHOWN)
    text = result.stdout.str()
    assert result.ret == pytest.ExitCode.TESTS_FAILED, text
    assert text.count("ERROR collecting bad.ipynb") == 1
    assert text.count("ERROR bad.ipynb - ") == 1  # the short summary
    assert text.count("PytestNotebooksWarning: stray.yaml reads as a notebook fixture") == 1
    assert text.count("PytestNotebooksWarning: legacy.yaml is beside legacy.ipynb") == 1
    result.stdout.fnmatch_lines(["*1 passed, 2 warnings, 1 error*"])


def logging_git(tmp_path: Path) -> dict[str, str]:
    """An environment whose `git` is the real one, logging each call to tmp_path/git.log."""
    real = shutil.which("git")
    assert real is not None
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    wrapper = bin_dir / "git"
    wrapper.write_text(f'#!/bin/sh\necho "$@" >> {tmp_path / "git.log"}\nexec {real} "$@"\n')
    wrapper.chmod(0o755)
    return {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}


def test_a_run_without_notebooks_does_not_ask_git(pytester: pytest.Pytester, tmp_path: Path) -> None:
    repo = init_repo(pytester.path)
    pytester.makepyfile(test_plain="def test_plain():\n    pass\n")
    commit_all(repo, "base")
    env = logging_git(tmp_path)
    log = tmp_path / "git.log"
    for args in ((), ("-n", "2")):
        done = run_pytest(pytester.path, "-p", "no:randomly", "-p", "no:cacheprovider", *args, env=env)
        assert done.returncode == 0, done.stdout + done.stderr
        assert not log.exists(), log.read_text()
    write_notebook(pytester.path / "a.ipynb", [PARAMS])
    (pytester.path / "a.yaml").write_text("cases:\n  later: {parameters: {region_code: fr}, skip: not now}\n")
    done = run_pytest(pytester.path, "-p", "no:randomly", "-p", "no:cacheprovider", "-n", "2", env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "rev-parse" in log.read_text() or "status" in log.read_text()  # the results file's commit
    recorded = json.loads((pytester.path / "notebook-outputs" / "results.json").read_text())
    assert recorded["git"]["commit"] == repo.head.commit.hexsha


def test_a_run_without_notebooks_prints_nothing_of_the_plugins(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_plain="def test_plain():\n    pass\n")
    write_notebook(pytester.path / "scratch.ipynb", ["x = 1"])  # no fixture: not a test
    for args in ((), ("-n", "2")):
        result = pytester.runpytest_subprocess("-p", "no:randomly", *args)
        assert result.ret == pytest.ExitCode.OK
        assert "notebooks:" not in result.stdout.str() + result.stderr.str()
        assert not (pytester.path / "notebook-outputs").exists()


def test_the_header_comes_with_the_first_notebook_serially_and_under_xdist(pytester: pytest.Pytester) -> None:
    write_notebook(pytester.path / "a.ipynb", [PARAMS])
    (pytester.path / "a.yaml").write_text("cases:\n  later: {parameters: {region_code: fr}, skip: not now}\n")
    header = "notebooks: outputs in notebook-outputs, results in notebook-outputs/results.json"
    for args in ((), ("-n", "2")):
        result = pytester.runpytest_subprocess("-p", "no:randomly", *args)
        assert result.ret == pytest.ExitCode.OK
        assert result.stdout.lines.count(header) == 1, result.stdout.str()
        quiet = pytester.runpytest_subprocess("-p", "no:randomly", "-q", *args)
        assert header not in quiet.stdout.str()  # -q hides the plugin's header as it hides pytest's


def test_a_stray_fixture_beside_a_test_file_that_was_asked_for_is_not_reported(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_plain="def test_plain():\n    pass\n")
    (pytester.path / "stray.yaml").write_text("cases:\n  fr: {region_code: fr}\n")
    asked = pytester.runpytest("-p", "no:randomly", *WARNINGS_SHOWN, "test_plain.py")
    assert "stray.yaml" not in asked.stdout.str()
    everything = pytester.runpytest("-p", "no:randomly", *WARNINGS_SHOWN)
    assert "stray.yaml reads as a notebook fixture" in everything.stdout.str()
