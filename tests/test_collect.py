"""Collection rules, ids, fixture errors at collection, and the header. Through pytester."""

from __future__ import annotations

import os
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from pytest_notebooks.collect import stray_fixture
from tests.gitrepo import commit_all, init_repo
from tests.notebooks import PARAMS, TWO_REGIONS, write_notebook

STRAY = "default::pytest_notebooks.errors.PytestNotebooksWarning"  # the outer run's filterwarnings = error


def test_only_notebooks_with_a_sibling_fixture_are_collected(pytester: pytest.Pytester) -> None:
    write_notebook(pytester.path / "notebooks" / "vid_agg.ipynb", [PARAMS, "x = 1"])
    (pytester.path / "notebooks" / "vid_agg.yaml").write_text(TWO_REGIONS)
    write_notebook(pytester.path / "notebooks" / "report.ipynb", [PARAMS])
    (pytester.path / "notebooks" / "report.yml").write_text("")
    write_notebook(pytester.path / "notebooks" / "scratch.ipynb", ["raise SystemExit(1)"])
    result = pytester.runpytest("--collect-only", "-q", "notebooks")
    result.stdout.fnmatch_lines(
        ["notebooks/report.ipynb::default", "notebooks/vid_agg.ipynb::luna", "notebooks/vid_agg.ipynb::fr", ""]
    )
    assert "scratch" not in result.stdout.str()
    assert result.ret == pytest.ExitCode.OK


def test_a_repository_without_fixtures_is_unchanged(pytester: pytest.Pytester) -> None:
    write_notebook(pytester.path / "scratch.ipynb", ["raise SystemExit(1)"])
    pytester.makepyfile(test_plain="def test_plain():\n    pass\n")
    result = pytester.runpytest("-q")
    result.assert_outcomes(passed=1)
    assert not (pytester.path / "notebook-outputs").exists()


def test_plugin_can_be_turned_off(pytester: pytest.Pytester) -> None:
    write_notebook(pytester.path / "vid_agg.ipynb", [PARAMS])
    (pytester.path / "vid_agg.yaml").write_text(TWO_REGIONS)
    result = pytester.runpytest("--collect-only", "-q", "-p", "no:notebooks")
    assert result.ret == pytest.ExitCode.NO_TESTS_COLLECTED
    assert "notebooks:" not in result.stdout.str()


def test_header_names_the_output_dir_and_results_file(pytester: pytest.Pytester) -> None:
    write_notebook(pytester.path / "vid_agg.ipynb", [PARAMS])
    (pytester.path / "vid_agg.yaml").write_text(TWO_REGIONS)
    result = pytester.runpytest("--collect-only")
    result.stdout.fnmatch_lines(["notebooks: outputs in notebook-outputs, results in notebook-outputs/results.json"])
    pytester.makeini("[pytest]\nnotebooks_output_dir = build/nb\n")  # replaces the conftest's ini
    result = pytester.runpytest("--collect-only")
    result.stdout.fnmatch_lines(["notebooks: outputs in build/nb, results in build/nb/results.json"])
    result = pytester.runpytest("--collect-only", "--notebooks-output-dir=out", "--notebooks-results=r.json")
    result.stdout.fnmatch_lines(["notebooks: outputs in out, results in r.json"])


def test_fixture_error_is_one_clean_collection_error(pytester: pytest.Pytester) -> None:
    write_notebook(pytester.path / "notebooks" / "vid_agg.ipynb", [PARAMS])
    (pytester.path / "notebooks" / "vid_agg.yaml").write_text("cases:\n  fr:\n    regoin_code: fr\n")
    write_notebook(pytester.path / "notebooks" / "ok.ipynb", [PARAMS])
    (pytester.path / "notebooks" / "ok.yaml").write_text("")
    result = pytester.runpytest("notebooks")
    result.stdout.fnmatch_lines(
        [
            "*_ ERROR collecting notebooks/vid_agg.ipynb _*",
            "notebooks/vid_agg.yaml:3: case 'fr': parameter 'regoin_code' is not declared in the "
            "parameters cell (cell 1) of vid_agg.ipynb; declared: region_code, run_date",
            "  hint: did you mean 'region_code'? *",
            "*short test summary*",
            "ERROR notebooks/vid_agg.ipynb - notebooks/vid_agg.yaml:3: case 'fr': parameter 'regoin_code' is not "
            "declared in the parameters cell (cell 1) of vid_agg.ipynb; declared: region_code, run_date",
            "  hint: did you mean 'region_code'? *",
        ]
    )
    assert "Traceback" not in result.stdout.str()
    assert "pytest_notebooks" not in result.stdout.str()
    assert result.ret == pytest.ExitCode.INTERRUPTED


@pytest.mark.parametrize("mode", [["-p", "no:xdist"], ["-n", "2"]], ids=["serial", "xdist"])
def test_fixture_error_reads_the_same_serially_and_under_xdist(pytester: pytest.Pytester, mode: list[str]) -> None:
    """The short summary carries the message in both modes (pytest's own repr has none serially)."""
    write_notebook(pytester.path / "vid_agg.ipynb", [PARAMS])
    (pytester.path / "vid_agg.yaml").write_text("case:\n  fr: {}\n")
    result = pytester.runpytest_subprocess("-ra", *mode)
    result.stdout.fnmatch_lines(
        [
            "*_ ERROR collecting vid_agg.ipynb _*",
            "vid_agg.yaml:1: unknown top-level key 'case'",
            "  hint: did you mean 'cases'? *",
            "*short test summary info*",
            "ERROR vid_agg.ipynb - vid_agg.yaml:1: unknown top-level key 'case'",
            "  hint: did you mean 'cases'? *",
        ]
    )
    assert "Traceback" not in result.stdout.str()
    assert result.ret != pytest.ExitCode.OK  # 2 serially (collection interrupted), 1 under xdist


def test_two_fixture_files_for_one_notebook(pytester: pytest.Pytester) -> None:
    write_notebook(pytester.path / "a.ipynb", ["1"])
    (pytester.path / "a.yaml").write_text("")
    (pytester.path / "a.yml").write_text("")
    result = pytester.runpytest()
    result.stdout.fnmatch_lines(["a.yaml: a.ipynb has two fixture files, a.yaml and a.yml", "  hint: keep one of them"])


@pytest.mark.kernel
def test_fixture_skip_and_xfail_become_pytest_outcomes(pytester: pytest.Pytester) -> None:
    write_notebook(pytester.path / "nb.ipynb", [PARAMS, "assert region_code != 'fr'"])
    (pytester.path / "nb.yaml").write_text(
        "cases:\n"
        "  luna: {}\n"
        "  dark:\n    parameters: {region_code: dark}\n    skip: no dummy data yet\n"
        "  fr:\n    parameters: {region_code: fr}\n    xfail: fr is broken, see ticket 12\n"
    )
    result = pytester.runpytest("-rsx")
    result.assert_outcomes(passed=1, skipped=1, xfailed=1)
    result.stdout.fnmatch_lines(
        ["SKIPPED [1] nb.yaml: no dummy data yet", "XFAIL nb.ipynb::fr - fr is broken, see ticket 12"]
    )


def test_cases_select_with_k_and_the_notebook_marker(pytester: pytest.Pytester) -> None:
    write_notebook(pytester.path / "nb.ipynb", [PARAMS])
    (pytester.path / "nb.yaml").write_text(TWO_REGIONS)
    pytester.makepyfile(test_plain="def test_plain():\n    pass\n")
    result = pytester.runpytest("--collect-only", "-q", "-k", "fr", "--strict-markers")
    result.stdout.fnmatch_lines(["nb.ipynb::fr", "", "1/3 tests collected (2 deselected)*"])
    result = pytester.runpytest("--collect-only", "-q", "-m", "notebook", "--strict-markers")
    result.stdout.fnmatch_lines(["nb.ipynb::luna", "nb.ipynb::fr", "", "2/3 tests collected (1 deselected)*"])


def test_stray_fixture_predicate(tmp_path: Path) -> None:
    write_notebook(tmp_path / "kept.ipynb", [PARAMS])
    files = {
        "kept.yaml": TWO_REGIONS,  # has its notebook: not even read
        "orphan.yaml": TWO_REGIONS,
        "orphan2.yml": "parameters: {region_code: fr}\ntimeout: 60\n",
        "light.yaml": "cases:\n  a: {}\n",
        "light.py": "region_code = 'luna'\n",  # no `# %%` cell and no jupytext header: not a notebook
        ".pre-commit-config.yaml": "repos:\n  - repo: local\n",
        "azure-pipelines.yml": "trigger: [main]\nparameters:\n  - name: region\n",
        "data.yaml": "cases: 3\nrows: [1, 2]\n",
        "broken.yaml": "cases: [\n",
        "notes.txt": "cases:\n",
    }
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    found = {name: stray_fixture(tmp_path / name) for name in files}
    assert {name for name, why in found.items() if why} == {"orphan.yaml", "orphan2.yml", "light.yaml"}
    assert found["orphan.yaml"] == (
        "orphan.yaml reads as a notebook fixture, but there is no orphan.ipynb beside it: no case in it runs. "
        "Hint: rename it to match its notebook, or delete it"
    )
    assert found["light.yaml"] == (
        "light.yaml reads as a notebook fixture, but it sits beside light.py, which is not a notebook (collected: "
        ".ipynb, Jupytext .py with `# %%` cells or a jupytext header, .md with jupytext front matter): no case in it "
        "runs. Hint: write light.ipynb (`jupytext --to ipynb light.py`), mark the cells of a .py with `# %%` (pip "
        "install 'pytest-notebooks[jupytext]'), or delete the fixture"
    )


@pytest.mark.filterwarnings(STRAY)
def test_stray_fixtures_warn_and_other_yaml_files_do_not(pytester: pytest.Pytester) -> None:
    write_notebook(pytester.path / "nb" / "kept.ipynb", [PARAMS])
    (pytester.path / "nb" / "kept.yaml").write_text(TWO_REGIONS)
    (pytester.path / "nb" / "renamed.yaml").write_text(TWO_REGIONS)
    (pytester.path / "nb" / "light.py").write_text("region_code = 'luna'\n")
    (pytester.path / "nb" / "light.yaml").write_text("cases:\n  a: {}\n")
    (pytester.path / ".pre-commit-config.yaml").write_text("repos:\n  - repo: local\n")
    (pytester.path / "azure-pipelines.yml").write_text("trigger: [main]\nparameters:\n  - name: region\n")
    result = pytester.runpytest("--collect-only", "-q")
    result.stdout.fnmatch_lines(
        [
            "nb/kept.ipynb::luna",
            "nb/kept.ipynb::fr",
            "*warnings summary*",
            "nb/light.yaml:0",
            "  nb/light.yaml:0: PytestNotebooksWarning: light.yaml reads as a notebook fixture, but it sits beside "
            "light.py, which is not a notebook (collected: .ipynb, Jupytext .py *): no case in it runs. Hint: *",
            "*",
            "nb/renamed.yaml:0",
            "  nb/renamed.yaml:0: PytestNotebooksWarning: renamed.yaml reads as a notebook fixture, but there is no "
            "renamed.ipynb beside it: no case in it runs. Hint: rename it to match its notebook, or delete it",
        ]
    )
    assert "pre-commit" not in result.stdout.str()
    assert "azure" not in result.stdout.str()
    assert result.ret == pytest.ExitCode.OK


@pytest.mark.filterwarnings(STRAY)
def test_a_stray_fixtures_warning_does_not_echo_its_first_line(pytester: pytest.Pytester) -> None:
    """pytest's warning summary prints the line a warning points at, and the warning is about the file,
    not a line of it: it points at line 0, so that none of the file reaches the CI log. A fixture's first
    line holds a fixture key, but a U+2028 in a string breaks the line for a log viewer (Python's
    ``splitlines`` too), and a workflow command (``::error ...``) would start the next one."""
    (pytester.path / "renamed.yaml").write_text('cases: {a: {note: "x\u2028::error title=x::pwned"}}\n')
    result = pytester.runpytest("--collect-only", "-q")
    result.stdout.fnmatch_lines(
        [
            "renamed.yaml:0",
            "  renamed.yaml:0: PytestNotebooksWarning: renamed.yaml reads as a notebook fixture, but there is no "
            "renamed.ipynb beside it: no case in it runs. Hint: rename it to match its notebook, or delete it",
        ]
    )
    assert "pwned" not in result.stdout.str()
    assert not [line for line in result.stdout.lines if line.lstrip().startswith("::")]


@pytest.mark.filterwarnings(STRAY)
def test_a_stray_fixture_can_be_made_an_error(pytester: pytest.Pytester) -> None:
    (pytester.path / "renamed.yaml").write_text(TWO_REGIONS)
    result = pytester.runpytest("--collect-only", "-W", "error::pytest_notebooks.errors.PytestNotebooksWarning")
    result.stdout.fnmatch_lines(["*PytestNotebooksWarning: renamed.yaml reads as a notebook fixture*"])
    assert result.ret != pytest.ExitCode.OK


def test_with_changed_since_each_folder_is_listed_once(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--notebooks-changed-since lists a folder to decide whether to walk it; the files of a folder
    it walks are then known from that listing, not listed again (one scandir a folder, of 10,000)."""
    repo = init_repo(pytester.path)
    for folder, name in (("walked", "a"), ("skipped", "b"), ("changed", "c")):
        write_notebook(pytester.path / folder / f"{name}.ipynb", [PARAMS])
        (pytester.path / folder / f"{name}.yaml").write_text(TWO_REGIONS)
    (pytester.path / "walked" / "test_lib.py").write_text("def test_lib():\n    pass\n")  # so it is walked
    (pytester.path / ".gitignore").write_text(".pytest_cache/\n__pycache__/\n")
    commit_all(repo, "notebooks")
    (pytester.path / "changed" / "c.yaml").write_text("cases:\n  de: {region_code: de}\n")
    listed: list[str] = []
    scandir = os.scandir

    def counted(path: Any = None) -> Any:  # the plugin's listings counted; pytest's own walk is not
        if sys._getframe(1).f_globals.get("__name__", "").startswith("pytest_notebooks"):
            listed.append(os.path.relpath(os.fspath(path or "."), pytester.path))
        return scandir(path or ".")

    monkeypatch.setattr(os, "scandir", counted)
    result = pytester.runpytest("--collect-only", "-q", "--notebooks-changed-since", "HEAD", "-p", "no:randomly")
    assert [line for line in result.stdout.lines if "::" in line] == [
        "changed/c.ipynb::de",
        "walked/test_lib.py::test_lib",
    ]
    counts = Counter(listed)
    assert {folder: counts[folder] for folder in ("walked", "skipped", "changed")} == {
        "walked": 1,
        "skipped": 1,
        "changed": 1,
    }
    assert max(counts.values()) == 1, counts
