"""R notebooks (IRkernel): the fixture checked against the R parameters cell, values as papermill
writes them for R, R errors said once, and an R kernel spawned without a warning.

The tests that run a notebook need the `ir` kernelspec (README, "Other languages") and skip
without it; the collection errors, the headline and the header need no kernel.
"""

from __future__ import annotations

import json
import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from jupyter_client.kernelspec import KernelSpec, KernelSpecManager

from pytest_notebooks.cases.principles import not_measured
from pytest_notebooks.run.kernels import never_forked
from pytest_notebooks.run.verdict import restated
from tests.example import copy_example
from tests.subprocess_pytest import run_pytest

IR_INSTALLED = "ir" in KernelSpecManager().find_kernel_specs()
needs_ir = pytest.mark.skipif(
    not IR_INSTALLED,
    reason="the `ir` kernelspec is not installed: apt-get install r-cran-irkernel (README, 'Other languages')",
)
# A run with every warning an error, as a strict project runs; jupyter_core before 5.9 warns about
# its platformdirs migration, which is not the plugin's.
STRICT = ("-W", "error", "-W", "ignore:Jupyter is migrating its paths:DeprecationWarning")

PARAMS = 'n_rows <- 10L\nlabel = "all rows"'
ROWS = "df <- data.frame(a = seq_len(n_rows))"
CHECK = "print(label)\nstopifnot(nrow(df) == 10)"


IR_METADATA = {"kernelspec": {"name": "ir", "display_name": "R", "language": "R"}, "language_info": {"name": "R"}}


def write_r_notebook(
    path: Path, cells: Sequence[str | tuple[str, Sequence[str]]], metadata: dict[str, Any] | None = None
) -> Path:
    """An R notebook as Jupyter saves one with IRkernel (or with ``metadata``): a source, or (source,
    tags), per cell."""
    nb: dict[str, Any] = {
        "nbformat": 4,
        "nbformat_minor": 5,
        "metadata": IR_METADATA if metadata is None else metadata,
        "cells": [
            {
                "cell_type": "code",
                "id": f"cell-{index + 1}",
                "metadata": {"tags": list(spec[1])} if not isinstance(spec, str) else {},
                "source": spec if isinstance(spec, str) else spec[0],
                "outputs": [],
                "execution_count": None,
            }
            for index, spec in enumerate(cells)
        ],
    }
    path.write_text(json.dumps(nb, indent=1), encoding="utf-8")
    return path


def rows_notebook(pytester: pytest.Pytester, fixture: str) -> None:
    write_r_notebook(pytester.path / "rows.ipynb", [(PARAMS, ["parameters"]), ROWS, CHECK])
    (pytester.path / "rows.yaml").write_text(textwrap.dedent(fixture))


# ---------------------------------------------------------------- collection: no kernel needed


def test_a_misspelt_r_parameter_is_a_collection_error(pytester: pytest.Pytester) -> None:
    rows_notebook(pytester, "cases:\n  short:\n    n_rowz: 3\n")
    result = pytester.runpytest("-p", "no:xdist")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [
            "rows.yaml:3: case 'short': parameter 'n_rowz' is not declared in the parameters cell (cell 1) of "
            "rows.ipynb; declared: n_rows, label",
            "  hint: did you mean 'n_rows'? add it to the parameters cell, or set `strict: false` in the fixture "
            "to pass undeclared parameters",
        ]
    )


def test_a_wrongly_typed_r_parameter_is_a_collection_error(pytester: pytest.Pytester) -> None:
    rows_notebook(pytester, "cases:\n  dated:\n    label: 2017_01_01\n  counted:\n    n_rows: ten\n")
    result = pytester.runpytest("-p", "no:xdist")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [
            "rows.yaml:3: case 'dated': parameter 'label' is int 20170101 here, but its default in rows.ipynb "
            "(cell 1, line 2) is a str",
            '  hint: quote it if you meant the text: label: "2017_01_01" (YAML 1.1 reads unquoted 2017_01_01 as a '
            "number and yes/no/on/off as booleans); or set `strict: false`",
        ]
    )
    (pytester.path / "rows.yaml").write_text("cases:\n  counted:\n    n_rows: ten\n")
    result = pytester.runpytest("-p", "no:xdist")
    result.stdout.fnmatch_lines(
        [
            "rows.yaml:3: case 'counted': parameter 'n_rows' is a string here, but its default in rows.ipynb "
            "(cell 1, line 1) is an int",
            "  hint: give it a value of that kind, change the default in rows.ipynb, or set `strict: false` to pass "
            "it as written",
        ]
    )


def city_notebook(pytester: pytest.Pytester, fixture: str) -> None:
    write_r_notebook(
        pytester.path / "cities.ipynb",
        [('city <- ""\nroute <- list()\nnames <- list()', ["parameters"]), 'stopifnot(identical(city, "Zürich"))'],
    )
    (pytester.path / "cities.yaml").write_text(textwrap.dedent(fixture), encoding="utf-8")


def latin_hint(spelt: str, encoded: str) -> str:
    """The hint's line, as an fnmatch pattern."""
    return (
        "  hint: papermill writes it the same way in production, so a production run gets it wrong too; keep the "
        f'fixture\'s text ASCII and spell the character in R code with a \\u escape ("{spelt}"), or pass it '
        f'percent-encoded and decode it in the notebook (URLdecode("{encoded}")); characters from U+0100 up (€, 日本) '
        "arrive intact"
    )


@pytest.mark.parametrize(
    ("fixture", "expected"),
    [
        (
            "cases:\n  zurich:\n    city: Zürich\n",
            [
                "cities.yaml:3: case 'zurich': parameter 'city' holds 'ü' (U+00FC), which papermill writes into an R "
                "notebook as \\xfc: R reads that as the byte 0xFC, not as 'ü': the notebook would get text that is "
                "not valid UTF-8, and not the text written here (with a character above U+00FF in the same text, R "
                "refuses to parse it)",
                latin_hint("Z\\u00fcrich", "Z%C3%BCrich"),
            ],
        ),
        (  # strict: false passes undeclared parameters, not values papermill writes wrong
            "strict: false\nparameters:\n  city: Geneva\n  route: [Bern, Genève]\n",
            [
                "cities.yaml:4: the defaults: parameter 'route' holds 'è' (U+00E8) at "
                "route[[]1], which papermill writes into an R notebook as \\xe8: R reads that as the byte 0xE8, *",
                latin_hint("Gen\\u00e8ve", "Gen%C3%A8ve"),
            ],
        ),
        (
            "cases:\n  keyed:\n    parameters:\n      names: {fr: {Genève: GE}}\n",
            [
                "cities.yaml:4: case 'keyed': parameter 'names' holds 'è' (U+00E8) in the key 'Genève' of "
                "names[[]'fr'], which papermill writes into an R notebook as \\xe8: *",
            ],
        ),
        (
            'cases:\n  spaced:\n    city: "St.\\u00a0Gallen"\n',
            ["cities.yaml:3: case 'spaced': parameter 'city' holds '\\xa0' (U+00A0), which papermill writes *"],
        ),
    ],
    ids=["value", "list-in-defaults", "mapping-key", "invisible"],
)
def test_a_character_papermill_writes_wrong_for_r_is_a_collection_error(
    pytester: pytest.Pytester, fixture: str, expected: list[str]
) -> None:
    city_notebook(pytester, fixture)
    result = pytester.runpytest("-p", "no:xdist")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(expected)


PYTHON_METADATA = {
    "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
    "language_info": {"name": "python"},
}
# sparkmagic's R kernel: papermill knows it by its name (its language, sparkR, it does not know)
SPARKR_METADATA = {
    "kernelspec": {"name": "sparkrkernel", "display_name": "SparkR", "language": ""},
    "language_info": {"name": "sparkR"},
}
NO_LANGUAGE_METADATA = {"kernelspec": {"name": "sparkrkernel", "display_name": "SparkR"}}


def cities_with(pytester: pytest.Pytester, metadata: dict[str, Any], fixture: str) -> pytest.RunResult:
    """The cities notebook saved with ``metadata``, its ``fixture``, collected."""
    write_r_notebook(pytester.path / "cities.ipynb", [('city = ""', ["parameters"]), "print(city)"], metadata)
    (pytester.path / "cities.yaml").write_text(textwrap.dedent(fixture), encoding="utf-8")
    return pytester.runpytest("-p", "no:xdist", "--collect-only", "-q")


@pytest.mark.parametrize(
    ("metadata", "fixture", "expected"),
    [
        (  # papermill picks its R translator by the name of the kernel the case runs with
            PYTHON_METADATA,
            "cases:\n  spark:\n    parameters: {city: Zürich}\n    kernel: sparkrkernel\n",
            "cities.yaml:3: case 'spark': parameter 'city' holds 'ü' (U+00FC), which papermill writes into an R "
            "notebook as \\xfc (the kernel 'sparkrkernel' gets papermill's R translator): R reads that as the byte "
            "0xFC, *",
        ),
        (  # the file's kernel, for the defaults
            PYTHON_METADATA,
            "kernel: sparkrkernel\nparameters:\n  city: Zürich\n",
            "cities.yaml:3: the defaults: parameter 'city' holds 'ü' (U+00FC), which papermill writes into an R "
            "notebook as \\xfc (the kernel 'sparkrkernel' gets papermill's R translator): *",
        ),
        (  # an R notebook stays R with another R kernel
            IR_METADATA,
            "cases:\n  conda:\n    parameters: {city: Zürich}\n    kernel: ir43\n",
            "cities.yaml:3: case 'conda': parameter 'city' holds 'ü' (U+00FC), which papermill writes into an R "
            "notebook as \\xfc: R reads *",
        ),
    ],
    ids=["case-kernel", "file-kernel", "another-r-kernel"],
)
def test_text_is_checked_for_the_kernel_the_case_runs_with(
    pytester: pytest.Pytester, metadata: dict[str, Any], fixture: str, expected: str
) -> None:
    assert_refused(pytester, metadata, fixture, expected)


def assert_refused(pytester: pytest.Pytester, metadata: dict[str, Any], fixture: str, expected: str) -> None:
    """The cities notebook with ``metadata`` and ``fixture`` is one collection error, ``expected``."""
    result = cities_with(pytester, metadata, fixture)
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines([expected])


@pytest.mark.parametrize("where", ["flag", "ini"])
def test_text_is_checked_for_the_kernel_the_session_runs_every_case_with(pytester: pytest.Pytester, where: str) -> None:
    """``--notebooks-kernel`` (or ``notebooks_kernel``) wins over the fixture's ``kernel:`` and the
    kernelspec: a Python notebook run with ``sparkrkernel`` gets papermill's R translator."""
    fixture = "cases:\n  plain: {city: Zurich}\n  spark:\n    parameters: {city: Zürich}\n    kernel: python3\n"
    assert cities_with(pytester, PYTHON_METADATA, fixture).ret == pytest.ExitCode.OK  # Python text: fine
    if where == "ini":
        pytester.makeini("[pytest]\nnotebooks_kernel = sparkrkernel\n")
    args = ("--notebooks-kernel", "sparkrkernel") if where == "flag" else ()
    result = pytester.runpytest("-p", "no:xdist", "--collect-only", "-q", *args)  # the cache said "fine" first
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(
        [
            "cities.yaml:4: case 'spark': parameter 'city' holds 'ü' (U+00FC), which papermill writes into an R "
            "notebook as \\xfc (the kernel 'sparkrkernel' gets papermill's R translator): *"
        ]
    )


@pytest.mark.parametrize(
    ("metadata", "fixture", "expected"),
    [
        (  # no translator for the kernel ir nor for the language sparkR
            SPARKR_METADATA,
            "kernel: ir\nparameters:\n  city: Zürich\n",
            "cities.yaml:2: case 'default': papermill has no translator for the kernel 'ir' nor for the language "
            "'sparkR', so it cannot write parameters into the notebook",
        ),
        (  # no language: papermill writes no parameters, whatever the kernel
            NO_LANGUAGE_METADATA,
            "parameters:\n  city: Zurich\n",
            "cities.yaml:1: case 'default': the notebook names no language (metadata.language_info.name, "
            "metadata.kernelspec.language), so papermill cannot write parameters into it *",
        ),
        (  # still R: its text is refused as R's
            IR_METADATA,
            "kernel: python3\nparameters:\n  city: Zürich\n",
            "cities.yaml:3: the defaults: parameter 'city' holds 'ü' (U+00FC), *",
        ),
    ],
    ids=["sparkr-run-with-ir", "no-language", "r-run-with-python3"],
)
def test_a_case_papermill_cannot_write_parameters_into_is_refused(
    pytester: pytest.Pytester, metadata: dict[str, Any], fixture: str, expected: str
) -> None:
    """papermill -p fails on these in production too: said at collection, with how to mend it."""
    assert_refused(pytester, metadata, fixture, expected)


def test_a_notebook_papermill_cannot_write_parameters_into_runs_without_any(pytester: pytest.Pytester) -> None:
    """papermill asks for a translator only when there are parameters to write."""
    result = cities_with(pytester, NO_LANGUAGE_METADATA, "cases:\n  plain: {}\n")
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(["cities.ipynb::plain"])


def test_r_text_papermill_writes_as_it_is_written_is_collected(pytester: pytest.Pytester) -> None:
    city_notebook(pytester, 'cases:\n  euro:\n    city: 10 € 日本 😀\n    route: [Bern, "tab\\there\\x7f"]\n')
    result = pytester.runpytest("-p", "no:xdist", "--collect-only", "-q")
    result.stdout.fnmatch_lines(["cities.ipynb::euro"])


def test_strict_false_passes_r_parameters_unchecked(pytester: pytest.Pytester) -> None:
    rows_notebook(pytester, "strict: false\ncases:\n  short:\n    n_rowz: 3\n")
    result = pytester.runpytest("-p", "no:xdist", "--collect-only", "-q")
    result.stdout.fnmatch_lines(["rows.ipynb::short"])


def test_the_header_says_which_kernels_are_forked(pytester: pytest.Pytester) -> None:
    rows_notebook(pytester, "cases:\n  short:\n    n_rows: 3\n")
    result = pytester.runpytest("-p", "no:xdist", "--collect-only")
    result.stdout.fnmatch_lines(
        [
            "notebooks: kernels forked from a template process, for speed (kernels of other languages are spawned; "
            "a Python kernel that cannot be forked is spawned with a warning; --notebooks-kernel-start=spawn spawns "
            "all)",
        ]
    )
    assert "parameters checked" not in result.stdout.str()  # the README says which languages are read


@pytest.mark.parametrize(
    ("language", "forked"),
    [("R", False), ("julia", False), ("scala", False), ("python", True), ("Python", True), ("", True)],
)
def test_only_a_kernel_of_another_language_is_never_forked(language: str, forked: bool) -> None:
    spec = KernelSpec(argv=["R", "--slave"], display_name="x", language=language)
    assert never_forked(spec) is not forked


@pytest.mark.parametrize(
    ("ename", "evalue", "expected"),
    [
        ("ERROR", "Error: nrow(df) == 10 is not TRUE\n", ("Error", "nrow(df) == 10 is not TRUE\n")),
        ("ERROR", "Error in eval(expr, envir, enclos): boom\n", ("Error", "boom\n")),  # a top-level stop()
        ("ERROR", 'Error in f("a: b"): bad x: a: b\n', ('Error in f("a: b")', "bad x: a: b\n")),
        ("ERROR", "Error in library(x): no package called 'x'\n", ("Error in library(x)", "no package called 'x'\n")),
        ("UndefVarError", "UndefVarError: `x` not defined", ("UndefVarError", "`x` not defined")),  # IJulia
        ("KeyError", "'fr'", ("KeyError", "'fr'")),
        ("ERROR", "Errors were found", ("ERROR", "Errors were found")),
    ],
)
def test_an_error_that_names_itself_in_its_message_is_named_once(
    ename: str, evalue: str, expected: tuple[str, str]
) -> None:
    assert restated(ename, evalue) == expected


def r_notebook_json(language: Any) -> dict[str, Any]:
    return {"metadata": {"language_info": {"name": language}}, "cells": []}


def test_principles_say_why_a_non_python_notebook_is_not_measured() -> None:
    assert not_measured(r_notebook_json("python")) is None
    assert not_measured({"metadata": {}, "cells": []}) is None  # no language said: read as Python
    assert not_measured(r_notebook_json("R")) == (
        "the principles are measured in Python notebooks only; this notebook is in R (its language_info / "
        "kernelspec), whose code cannot be read as Python"
    )
    assert not_measured({"metadata": {"kernelspec": {"language": "julia"}}}) is not None


def test_lint_skips_an_r_notebook_with_the_reason(pytester: pytest.Pytester) -> None:
    rows_notebook(pytester, "")
    result = pytester.runpytest("-p", "no:xdist", "--notebooks-lint", "-k", "principles", "-rs")
    result.assert_outcomes(skipped=1, deselected=1)
    result.stdout.fnmatch_lines(["SKIPPED *the principles are measured in Python notebooks only; *in R*"])


# ---------------------------------------------------------------- runs: the `ir` kernel


@pytest.mark.kernel
@needs_ir
def test_an_r_case_passes_and_another_fails_at_its_cell_without_a_warning(pytester: pytest.Pytester) -> None:
    rows_notebook(pytester, "cases:\n  all:\n    n_rows: 10\n  short:\n    n_rows: 3\n")
    result = pytester.runpytest_subprocess("-p", "no:xdist", *STRICT)
    result.assert_outcomes(passed=1, failed=1, warnings=0)
    result.stdout.fnmatch_lines(
        [
            "rows.ipynb::short failed at cell 3 (In [4]), id cell-3: Error: nrow(df) == 10 is not TRUE",
            "",
            "    1 | print(label)",
            "    2 | stopifnot(nrow(df) == 10)",
            "",
            "Error: nrow(df) == 10 is not TRUE",
            "Traceback:",
            "",
            "1. stopifnot(nrow(df) == 10)",
            "",
            "parameters: n_rows=3",
            "output notebook: notebook-outputs/rows/short.ipynb",
            "reproduce: papermill rows.ipynb notebook-outputs/rows/short.repro.ipynb --cwd . -k ir -p n_rows 3*",
        ]
    )
    result.stdout.fnmatch_lines(["FAILED rows.ipynb::short - cell 3 (In [4]): Error: nrow(df) == 10 is not TRUE"])
    output = result.stdout.str() + result.stderr.str()
    assert "ERROR: Error" not in output
    assert "is spawned, not forked" not in output  # neither a warning nor the line said instead under -W error
    assert "Passed unknown parameter" not in output  # papermill's captured log: it cannot read R's cell
    assert "does not support parameter introspection" not in output


@pytest.mark.kernel
@needs_ir
def test_r_cases_report_the_same_under_xdist(pytester: pytest.Pytester) -> None:
    rows_notebook(pytester, "cases:\n  all:\n    n_rows: 10\n  short:\n    n_rows: 3\n")
    result = pytester.runpytest_subprocess("-n", "2", *STRICT)
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            "rows.ipynb::short failed at cell 3 (In [4]), id cell-3: Error: nrow(df) == 10 is not TRUE",
            "FAILED rows.ipynb::short - cell 3 (In [4]): Error: nrow(df) == 10 is not TRUE",
        ]
    )
    assert "is spawned, not forked" not in result.stdout.str() + result.stderr.str()


RENDERED_PARAMS = """\
s <- "default"
n <- 0L
x <- 0.5
b <- FALSE
nothing <- "set"
l <- list()
d <- list(k = 1)
quoted <- ""
euro <- ""
encoded <- ""
"""
# Each value as papermill's R translator writes it: an int as an R double (`3`, not `3L`), a list
# and a mapping as R lists, null as NULL.
RENDERED_CHECK = r"""
stopifnot(
  identical(s, "fr"),
  identical(n, 3),
  identical(x, 1.5),
  isTRUE(b),
  is.null(nothing),
  identical(l, list(1, "two", list(3))),
  identical(d, list(a = 1, b = list(c = "x"))),
  identical(quoted, "say \"hi\" \\ there\nnext\ttab $HOME"),
  identical(euro, "\u20ac"),
  identical(URLdecode(encoded), "Z\u00fcrich")  # the collection error's hint for U+0080 to U+00FF
)
"""
RENDERED_FIXTURE = r"""
cases:
  rendered:
    s: fr
    n: 3
    x: 1.5
    b: true
    nothing: null
    l: [1, two, [3]]
    d: {a: 1, b: {c: x}}
    quoted: "say \"hi\" \\ there\nnext\ttab $HOME"
    euro: "€"
    encoded: Z%C3%BCrich
"""


@pytest.mark.kernel
@needs_ir
def test_parameters_arrive_in_r_as_papermill_writes_them(pytester: pytest.Pytester) -> None:
    write_r_notebook(pytester.path / "values.ipynb", [(RENDERED_PARAMS, ["parameters"]), RENDERED_CHECK])
    (pytester.path / "values.yaml").write_text(RENDERED_FIXTURE, encoding="utf-8")
    result = pytester.runpytest("-p", "no:xdist")
    result.assert_outcomes(passed=1)


@pytest.mark.kernel
@needs_ir
def test_r_gets_u0080_to_u00ff_wrong_as_papermill_writes_them(tmp_path: Path) -> None:
    """Why they are a collection error, shown with papermill and IRkernel as production runs them:
    `ü` is written as `"\\xfc"`, which R reads as the one byte 0xFC, not as the character; with a
    character above U+00FF in the same text, R refuses the cell. Should this test fail, papermill or R
    changed: lift the refusal (cases/languages.py)."""
    import papermill

    check = (
        "stopifnot(identical(charToRaw(city), as.raw(c(0x5a, 0xfc, 0x72, 0x69, 0x63, 0x68))), !validUTF8(city),"
        ' !identical(city, "Z\\u00fcrich"))'
    )
    notebook = write_r_notebook(tmp_path / "latin.ipynb", [('city <- ""', ["parameters"]), check])
    papermill.execute_notebook(
        str(notebook), str(tmp_path / "out.ipynb"), parameters={"city": "Zürich"}, progress_bar=False
    )
    with pytest.raises(papermill.PapermillExecutionError, match="mixing Unicode and octal/hex escapes"):
        papermill.execute_notebook(
            str(notebook), str(tmp_path / "mixed.ipynb"), parameters={"city": "Zürich €"}, progress_bar=False
        )


@pytest.mark.kernel
@needs_ir
def test_example_repos_r_template_passes_where_r_is_installed(tmp_path: Path) -> None:
    """example_repo/r: outside testpaths and the promotion's source root, run with `pytest r`."""
    example = copy_example(tmp_path / "example_repo")
    done = run_pytest(example, "-p", "no:randomly", "-p", "no:cacheprovider", *STRICT, "r")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "2 passed" in done.stdout
    results = json.loads((example / "notebook-outputs" / "results.json").read_text())
    assert [(case["case"], case["outcome"]) for case in results["cases"]] == [("fr", "passed"), ("luna", "passed")]
