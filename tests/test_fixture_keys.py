"""Misspelt fixture keys and the shared `parameters` block, as collection reports them (issue 24).

Through pytester, as a user meets them: ``pytest`` on a notebook and its fixture; no kernel starts.
"""

from __future__ import annotations

import pytest

from tests.notebooks import PARAMS, Cell, write_notebook

NOTEBOOK: list[Cell] = ["md:# Plays by region", PARAMS, "print(region_code)"]  # parameters cell: cell 2


def collect(pytester: pytest.Pytester, fixture: str, cells: list[Cell] = NOTEBOOK) -> pytest.RunResult:
    write_notebook(pytester.path / "nb.ipynb", cells)
    (pytester.path / "nb.yaml").write_text(fixture)
    return pytester.runpytest("--collect-only", "-q")


def error_block(pytester: pytest.Pytester, fixture: str, cells: list[Cell] = NOTEBOOK) -> list[str]:
    """The collection error's two lines (problem, hint), as the error section prints them."""
    result = collect(pytester, fixture, cells)
    assert result.ret == pytest.ExitCode.INTERRUPTED, result.stdout.str()
    lines = result.stdout.lines
    start = next(i for i, line in enumerate(lines) if "ERROR collecting nb.ipynb" in line)
    assert "Traceback" not in result.stdout.str()
    return lines[start + 1 : start + 3]


# ---------------------------------------------------------------- did you mean: a case's misspelt key


@pytest.mark.parametrize(
    "fixture",
    [
        "cases:\n  fr:\n    paramters: {region_code: fr}\n    timeout: 30\n",
        "cases:\n  fr:\n    paramters: {region_code: fr}\n",
    ],
    ids=["with-a-setting", "alone"],
)
def test_a_misspelt_parameters_key_in_a_case_suggests_parameters(pytester: pytest.Pytester, fixture: str) -> None:
    problem, hint = error_block(pytester, fixture)
    assert problem == (
        "nb.yaml:3: case 'fr': unknown key 'paramters': neither a case setting nor a parameter declared in the "
        "parameters cell (cell 2) of nb.ipynb"
    )
    assert hint == (
        "  hint: did you mean 'parameters'? a case's parameters go under its `parameters:`, beside its settings "
        "(timeout, cell_timeout, kernel, skip, xfail, snapshot, env)"
    )


def test_a_misspelt_setting_in_a_short_form_case_suggests_it_and_the_long_form(pytester: pytest.Pytester) -> None:
    problem, hint = error_block(pytester, "cases:\n  fr:\n    region_code: fr\n    timout: 30\n")
    assert problem == (
        "nb.yaml:4: case 'fr': unknown key 'timout': neither a case setting nor a parameter declared in the "
        "parameters cell (cell 2) of nb.ipynb"
    )
    assert hint == (
        "  hint: did you mean 'timeout'? a case's settings need the long form, its parameters under "
        "`parameters:`: `fr: {parameters: {...}, timeout: ...}`; if 'timout' is a parameter, add it to the "
        "parameters cell"
    )


def test_a_setting_in_a_short_form_case_is_told_about_the_long_form(pytester: pytest.Pytester) -> None:
    problem, hint = error_block(pytester, "cases:\n  fr:\n    region_code: fr\n    skip: later\n")
    assert problem == (
        "nb.yaml:4: case 'fr': parameter 'skip' is not declared in the parameters cell (cell 2) of nb.ipynb; "
        "declared: region_code, run_date"
    )
    assert hint == (
        "  hint: `skip` is a case setting only in the long form, its parameters under `parameters:`: "
        "`fr: {parameters: {...}, skip: ...}`; if 'skip' is a parameter, add it to the parameters cell"
    )


def test_a_misspelt_parameters_key_is_named_before_the_missing_parameters_tag(pytester: pytest.Pytester) -> None:
    problem, hint = error_block(pytester, "cases:\n  fr:\n    paramters: {x: 1}\n", ["x = 1", "print(x)"])
    assert problem == (
        "nb.yaml:3: case 'fr': unknown key 'paramters': neither a case setting nor a parameter declared in nb.ipynb "
        "(it has no cell tagged `parameters`)"
    )
    assert hint.startswith("  hint: did you mean 'parameters'? ")


def test_a_misspelt_key_is_never_told_to_set_strict_false(pytester: pytest.Pytester) -> None:
    for fixture in ("cases:\n  fr:\n    paramters: {region_code: fr}\n", "cases:\n  fr:\n    kernal: python3\n"):
        result = collect(pytester, fixture)
        assert "strict: false" not in result.stdout.str()
        result.stdout.fnmatch_lines(["  hint: did you mean *"])


def test_a_key_closer_to_a_declared_parameter_is_still_a_parameter_typo(pytester: pytest.Pytester) -> None:
    problem, hint = error_block(pytester, "cases:\n  fr:\n    regoin_code: fr\n")
    assert problem.startswith("nb.yaml:3: case 'fr': parameter 'regoin_code' is not declared")
    assert hint.startswith("  hint: did you mean 'region_code'? add it to the parameters cell, or set `strict: false`")


def test_a_declared_parameter_that_looks_like_a_setting_is_a_parameter(pytester: pytest.Pytester) -> None:
    cells: list[Cell] = [("kernel_size = 3\ntimeouts = 1", ["parameters"]), "print(kernel_size)"]
    result = collect(pytester, "cases:\n  fr:\n    kernel_size: 5\n    timeouts: 2\n", cells)
    result.stdout.fnmatch_lines(["nb.ipynb::fr"])
    assert result.ret == pytest.ExitCode.OK


def test_with_strict_false_a_short_form_case_is_all_parameters(pytester: pytest.Pytester) -> None:
    """strict: false turns the name checks off: a case's keys pass as written (README)."""
    result = collect(pytester, "strict: false\ncases:\n  fr:\n    paramters: {region_code: fr}\n")
    result.stdout.fnmatch_lines(["nb.ipynb::fr"])
    assert result.ret == pytest.ExitCode.OK


def test_a_parameter_beside_parameters_in_a_long_form_case_is_told_to_move(pytester: pytest.Pytester) -> None:
    problem, hint = error_block(pytester, "cases:\n  fr:\n    parameters: {run_date: x}\n    region_code: fr\n")
    assert problem == "nb.yaml:4: case 'fr': unknown key 'region_code' in a case that has `parameters:`"
    assert hint == "  hint: 'region_code' is a parameter: move it under the case's `parameters:`"


def test_a_misspelt_key_in_a_long_form_case_suggests_the_setting(pytester: pytest.Pytester) -> None:
    problem, hint = error_block(pytester, "cases:\n  fr:\n    parameters: {region_code: fr}\n    skpi: later\n")
    assert problem == "nb.yaml:4: case 'fr': unknown key 'skpi' in a case that has `parameters:`"
    assert hint.startswith("  hint: did you mean 'skip'? a case with `parameters:` takes only parameters, ")


def test_a_misspelt_top_level_key_suggests_the_fixture_key(pytester: pytest.Pytester) -> None:
    problem, hint = error_block(pytester, "paramters:\n  region_code: fr\n")
    assert problem == "nb.yaml:1: unknown top-level key 'paramters'"
    assert hint.startswith("  hint: did you mean 'parameters'? allowed keys: parameters, cases, ")


# ---------------------------------------------------------------- the shared `parameters` block


def test_a_wrong_shared_value_names_the_shared_block_not_a_case_that_overrides_it(pytester: pytest.Pytester) -> None:
    fixture = "parameters:\n  region_code: 3\ncases:\n  fr:\n    region_code: fr\n  us: {}\n  de:\n"
    problem, hint = error_block(pytester, fixture)
    assert problem == (
        "nb.yaml:2: the defaults (top-level `parameters`): parameter 'region_code' is int 3 here, but its default "
        "in nb.ipynb (cell 2, line 1) is a str; cases 'us' and 'de' use it"
    )
    assert hint.startswith('  hint: quote it if you meant the text: region_code: "3"')


def test_a_wrong_shared_value_is_reported_at_the_line_of_the_value(pytester: pytest.Pytester) -> None:
    fixture = "parameters:\n  run_date: x\n  region_code:\n    - fr\ncases:\n  fr: {region_code: fr}\n  us: {}\n"
    problem, _ = error_block(pytester, fixture)
    assert problem == (
        "nb.yaml:4: the defaults (top-level `parameters`): parameter 'region_code' is a list here, but its "
        "default in nb.ipynb (cell 2, line 1) is a str; case 'us' uses it"
    )


def test_a_wrong_shared_value_every_case_overrides_is_still_an_error(pytester: pytest.Pytester) -> None:
    fixture = "parameters:\n  region_code: 3\ncases:\n  fr: {region_code: fr}\n  us: {region_code: us}\n"
    problem, hint = error_block(pytester, fixture)
    assert problem == (
        "nb.yaml:2: the defaults (top-level `parameters`): parameter 'region_code' is int 3 here, but its default "
        "in nb.ipynb (cell 2, line 1) is a str; every case sets its own, so no case uses it"
    )
    assert hint.endswith("or remove it from the defaults, since no case uses it")


def test_an_undeclared_shared_parameter_names_the_shared_block(pytester: pytest.Pytester) -> None:
    problem, hint = error_block(pytester, "parameters:\n  rundate: x\ncases:\n  fr: {region_code: fr}\n")
    assert problem == (
        "nb.yaml:2: the defaults (top-level `parameters`): parameter 'rundate' is not declared in the parameters "
        "cell (cell 2) of nb.ipynb; declared: region_code, run_date"
    )
    assert hint.startswith("  hint: did you mean 'run_date'? ")


def test_many_cases_using_a_shared_value_stay_on_one_line(pytester: pytest.Pytester) -> None:
    cases = "  c0: {region_code: c}\n" + "".join(f"  c{n}: {{}}\n" for n in range(1, 50))
    problem, _ = error_block(pytester, f"parameters:\n  region_code: 3\ncases:\n{cases}")
    assert problem.endswith("is a str; cases 'c1', 'c2', 'c3' and 46 more use it")
