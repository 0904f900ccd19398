"""The three principles: measured from the AST (direct calls), enforced by nb.ipynb::principles."""

from __future__ import annotations

import json
from typing import Any

import pytest

from pytest_notebooks.cases.principles import check, defaults, measure
from tests.notebooks import PARAMS, write_notebook


def code(source: str, tags: tuple[str, ...] = ()) -> dict[str, Any]:
    return {"cell_type": "code", "source": source, "metadata": {"tags": list(tags)}, "outputs": []}


BRANCHY = """\
for row in rows:
    if row > 1:
        pass
    elif row < 0:
        pass
try:
    x = 1 if rows else 2
except KeyError:
    pass
except ValueError:
    pass
y = [r for r in rows if r if r > 2]
while False:
    pass
match rows:
    case []:
        pass
    case [_]:
        pass
    case _:
        pass
"""
CLEAN_ROWS = (
    "def clean_rows(frame):\n" + "".join(f"    frame = frame  # step {i}\n" for i in range(41)) + "    return frame\n"
)


def test_each_measure() -> None:
    cells = [
        code("rows = []", ("parameters",)),
        code("rows = [1]", ("injected-parameters",)),  # papermill's: not the template's
        {"cell_type": "markdown", "source": "# title", "metadata": {}},
        code(BRANCHY),
        code("%matplotlib inline\n!ls\nz = 1\n\n"),
        code(CLEAN_ROWS),
        code("class Thing:\n    pass\n"),
        code("%%bash\necho hi\n"),
    ]
    measures = measure(cells)
    # for 1, if 1, elif 1, ifexp 1, 2 handlers, 2 comprehension ifs, while 1, match: 3 arms -> 2 = 11
    assert measures.branches == 11
    assert measures.paths == 12
    assert measures.branchiest_cell == 4
    assert [(d.name, d.kind, d.cell, d.lines) for d in measures.definitions] == [
        ("clean_rows", "function", 6, 43),
        ("Thing", "class", 7, 2),
    ]
    assert measures.code_cells == 6
    assert measures.lines == 1 + len(BRANCHY.splitlines()) + 1 + 43 + 2


def test_the_failure_names_the_cell_the_limit_and_the_principle() -> None:
    violations = check(measure([code("x = 1"), code(CLEAN_ROWS)]), defaults())
    assert [(v.limit_name, v.cell, v.message) for v in violations] == [
        ("max_function_lines", 2, "function `clean_rows` is 43 lines > max_function_lines 15")
    ]
    assert violations[0].hint == (
        "move `clean_rows` (43 lines, cell 2) into the library package beside the notebooks, with a unit test, "
        "and import it"
    )


def make(pytester: pytest.Pytester, fixture: str = "cases:\n  fr: {region_code: fr}\n") -> None:
    write_notebook(pytester.path / "nb.ipynb", [PARAMS, "x = 1", CLEAN_ROWS])
    (pytester.path / "nb.yaml").write_text(fixture)


@pytest.mark.kernel
def test_without_the_option_cases_run_and_nothing_is_measured(pytester: pytest.Pytester) -> None:
    make(pytester)
    pytester.runpytest("-p", "no:xdist").assert_outcomes(passed=1)
    results = json.loads((pytester.path / "notebook-outputs" / "results.json").read_text())
    assert "principles" not in results["notebooks"][0]


@pytest.mark.parametrize("workers", [["-p", "no:xdist"], ["-n", "2"]], ids=["serial", "xdist"])
@pytest.mark.kernel
def test_lint_fails_the_notebook_with_a_hint(pytester: pytest.Pytester, workers: list[str]) -> None:
    make(pytester)
    result = pytester.runpytest(*workers, "--notebooks-lint", "-rf", "--notebooks-html=report.html")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            "FAILED nb.ipynb::principles - cell 3: function `clean_rows` is 43 lines > max_function_lines 15",
            "*hint: move `clean_rows` (43 lines, cell 3) into the library package beside the notebooks*",
        ]
    )
    results = json.loads((pytester.path / "notebook-outputs" / "results.json").read_text())
    principles = results["notebooks"][0]["principles"]
    assert principles["measures"]["definitions"] == [{"name": "clean_rows", "kind": "function", "cell": 3, "lines": 43}]
    assert principles["violations"][0]["limit"] == "max_function_lines"
    assert principles["limits"]["max_function_lines"] == 15
    page = (pytester.path / "report.html").read_text()
    assert "function `clean_rows` is 43 lines &gt; max_function_lines 15" in page


@pytest.mark.kernel
def test_limits_from_the_ini_then_the_fixture(pytester: pytest.Pytester) -> None:
    make(pytester)
    pytester.makeini(
        "[pytest]\nnotebooks_lint = true\nnotebooks_principles =\n    max_function_lines = 50\n    max_code_cells = 1\n"
        "filterwarnings = ignore::pytest.PytestAssertRewriteWarning\n"
    )
    result = pytester.runpytest("-p", "no:xdist")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*3 code cells > max_code_cells 1*"])
    assert "clean_rows" not in result.stdout.str()

    make(pytester, "principles: {max_code_cells: 3}\ncases:\n  fr: {region_code: fr}\n")
    pytester.runpytest("-p", "no:xdist").assert_outcomes(passed=2)


def test_a_bad_principles_key_is_a_collection_error(pytester: pytest.Pytester) -> None:
    make(pytester, "principles: {max_branchez: 3}\ncases:\n  fr: {region_code: fr}\n")
    result = pytester.runpytest("-p", "no:xdist", "--collect-only")
    result.stdout.fnmatch_lines(
        ["*nb.yaml:1: principles: unknown principle limit 'max_branchez'; known: max_branches*"]
    )
