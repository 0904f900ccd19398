"""Collection rules, ids, fixture errors at collection, and the header. Through pytester."""

from __future__ import annotations

import pytest

from tests.notebooks import PARAMS, TWO_REGIONS, write_notebook


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
            "ERROR notebooks/vid_agg.ipynb",
        ]
    )
    assert "Traceback" not in result.stdout.str()
    assert "pytest_notebooks" not in result.stdout.str()
    assert result.ret == pytest.ExitCode.INTERRUPTED


def test_fixture_error_under_xdist(pytester: pytest.Pytester) -> None:
    write_notebook(pytester.path / "vid_agg.ipynb", [PARAMS])
    (pytester.path / "vid_agg.yaml").write_text("case:\n  fr: {}\n")
    result = pytester.runpytest_subprocess("-n", "2")
    result.stdout.fnmatch_lines(["*vid_agg.yaml:1: unknown top-level key 'case'", "  hint: did you mean 'cases'? *"])
    assert "Traceback" not in result.stdout.str()
    assert result.ret != pytest.ExitCode.OK


def test_two_fixture_files_for_one_notebook(pytester: pytest.Pytester) -> None:
    write_notebook(pytester.path / "a.ipynb", ["1"])
    (pytester.path / "a.yaml").write_text("")
    (pytester.path / "a.yml").write_text("")
    result = pytester.runpytest()
    result.stdout.fnmatch_lines(["a.yaml: a.ipynb has two fixture files, a.yaml and a.yml", "  hint: keep one of them"])


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
