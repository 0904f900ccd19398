"""What the plugin prints when it has little to say (issue 24): each collection problem once under
xdist, not once per worker. Collection only or plain Python tests: no kernel starts."""

from __future__ import annotations

import pytest

from tests.notebooks import PARAMS, write_notebook

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
