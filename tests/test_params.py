"""Fixture file -> cases, and its validation against the notebook. Direct calls, no pytest run."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from pytest_notebooks.cases.notebook import parse_parameters, read_notebook
from pytest_notebooks.cases.params import CASES_PARAMETERS_LIMIT, load_cases, sibling_fixture
from pytest_notebooks.errors import FixtureError
from pytest_notebooks.models import NotebookCase
from tests.notebooks import PARAMS, Cell, write_notebook


def cases_for(tmp_path: Path, fixture: str, params_cell: str | None = PARAMS[0]) -> list[NotebookCase]:
    cells: list[Cell] = ["md:# title"]
    if params_cell is not None:
        cells.append((params_cell, ["parameters"]))
    cells.append("print(1)")
    nb = write_notebook(tmp_path / "vid_agg.ipynb", cells)
    yaml_path = tmp_path / "vid_agg.yaml"
    yaml_path.write_text(textwrap.dedent(fixture))
    return load_cases(yaml_path, read_notebook(nb), label="notebooks/vid_agg.yaml")


def error_for(tmp_path: Path, fixture: str, params_cell: str | None = PARAMS[0]) -> str:
    with pytest.raises(FixtureError) as excinfo:
        cases_for(tmp_path, fixture, params_cell)
    return str(excinfo.value)


def test_no_cases_is_one_default_case(tmp_path: Path) -> None:
    (case,) = cases_for(tmp_path, "parameters: {region_code: fr}\n")
    assert case.case_id == "default"
    assert case.parameters == {"region_code": "fr"}


def test_empty_file_is_one_case_with_notebook_defaults(tmp_path: Path) -> None:
    (case,) = cases_for(tmp_path, "")
    assert (case.case_id, case.parameters) == ("default", {})


def test_cases_keep_file_order_and_override_defaults(tmp_path: Path) -> None:
    cases = cases_for(
        tmp_path,
        """
        parameters:
          run_date: "2017-01-01"
          region_code: xx
        cases:
          zz: {region_code: luna}
          aa: {region_code: fr, run_date: "2018-02-02"}
          mm:
        timeout: 600
        cell_timeout: 120
        kernel: python3
        """,
    )
    assert [c.case_id for c in cases] == ["zz", "aa", "mm"]
    assert cases[0].parameters == {"run_date": "2017-01-01", "region_code": "luna"}
    assert cases[1].parameters == {"run_date": "2018-02-02", "region_code": "fr"}
    assert cases[2].parameters == {"run_date": "2017-01-01", "region_code": "xx"}
    assert (cases[0].timeout, cases[0].cell_timeout, cases[0].kernel) == (600.0, 120.0, "python3")
    assert cases[1].line == 7


def test_dates_stay_strings_as_in_papermill(tmp_path: Path) -> None:
    (case,) = cases_for(tmp_path, "parameters: {run_date: 2017-01-01}\n")
    assert case.parameters == {"run_date": "2017-01-01"}


def test_hashes_are_of_the_files_as_read(tmp_path: Path) -> None:
    import hashlib

    (case,) = cases_for(tmp_path, "parameters: {region_code: fr}\n")
    assert case.fixture_sha256 == hashlib.sha256((tmp_path / "vid_agg.yaml").read_bytes()).hexdigest()
    assert case.notebook_sha256 == hashlib.sha256((tmp_path / "vid_agg.ipynb").read_bytes()).hexdigest()


def test_long_form_case_settings(tmp_path: Path) -> None:
    cases = cases_for(
        tmp_path,
        """
        cell_timeout: 30
        cases:
          fr:
            parameters: {region_code: fr}
            skip: no fr data in the dummy inputs yet
          us:
            parameters: {region_code: us}
            xfail: true
            timeout: 1200
            cell_timeout: 300
          luna:
            parameters: {}
        """,
    )
    fr, us, luna = cases
    assert fr.skip == "no fr data in the dummy inputs yet"
    assert fr.cell_timeout == 30.0
    assert us.xfail == "xfail set in vid_agg.yaml"
    assert (us.timeout, us.cell_timeout) == (1200.0, 300.0)
    assert luna.parameters == {}
    assert luna.skip is None


def test_unknown_top_level_key(tmp_path: Path) -> None:
    message = error_for(tmp_path, "parameters: {}\ncase:\n  fr: {region_code: fr}\n")
    assert message.splitlines() == [
        "notebooks/vid_agg.yaml:2: unknown top-level key 'case'",
        "  hint: did you mean 'cases'? allowed keys: parameters, cases, timeout, cell_timeout, "
        "kernel, strict, skip, xfail, snapshot, snapshot_replace, principles, env",
    ]


def test_case_that_is_not_a_mapping(tmp_path: Path) -> None:
    message = error_for(tmp_path, "cases:\n  fr:\n    - region_code\n")
    assert message.startswith("notebooks/vid_agg.yaml:2: case 'fr' must be a mapping, got a list")
    assert "hint: write it as `fr: {parameter: value}`" in message


def test_invalid_yaml_names_the_line(tmp_path: Path) -> None:
    message = error_for(tmp_path, "cases:\n  fr: {region_code: fr\n  us: {}\n")
    assert message.startswith("notebooks/vid_agg.yaml:3: invalid YAML")
    assert "hint:" in message


def test_fixture_that_is_a_list(tmp_path: Path) -> None:
    message = error_for(tmp_path, "- fr\n- us\n")
    assert message.startswith("notebooks/vid_agg.yaml:1: the fixture must be a mapping of settings, got a list")


def test_undeclared_parameter_suggests_the_declared_one(tmp_path: Path) -> None:
    message = error_for(tmp_path, "cases:\n  fr:\n    regoin_code: fr\n")
    assert message.splitlines() == [
        "notebooks/vid_agg.yaml:3: case 'fr': parameter 'regoin_code' is not declared in the "
        "parameters cell (cell 2) of vid_agg.ipynb; declared: region_code, run_date",
        "  hint: did you mean 'region_code'? add it to the parameters cell, or set `strict: false` "
        "in the fixture to pass undeclared parameters",
    ]


def test_undeclared_default_parameter(tmp_path: Path) -> None:
    message = error_for(tmp_path, "parameters:\n  rundate: '2017-01-01'\n")
    assert message.startswith(
        "notebooks/vid_agg.yaml:2: the defaults (top-level `parameters`): parameter 'rundate' is not declared"
    )
    assert "did you mean 'run_date'?" in message


def test_unquoted_underscore_date_is_an_int_against_a_str_default(tmp_path: Path) -> None:
    message = error_for(tmp_path, "cases:\n  fr:\n    region_code: fr\n    run_date: 2017_01_01\n")
    assert message.splitlines()[0] == (
        "notebooks/vid_agg.yaml:4: case 'fr': parameter 'run_date' is int 20170101 here, but its "
        "default in vid_agg.ipynb (cell 2, line 2) is a str"
    )
    assert 'hint: quote it if you meant the text: run_date: "2017_01_01"' in message


def test_a_quoted_string_against_an_int_default_is_not_told_to_quote_it(tmp_path: Path) -> None:
    message = error_for(tmp_path, 'parameters:\n  limit: "two"\n', params_cell="limit = 3")
    assert message.splitlines() == [
        "notebooks/vid_agg.yaml:2: the defaults (top-level `parameters`): parameter 'limit' is a string here, but "
        "its default in vid_agg.ipynb (cell 2, line 1) is an int",
        "  hint: give it a value of that kind, change the default in vid_agg.ipynb, or set `strict: false` to "
        "pass it as written",
    ]


def test_a_plain_number_against_an_int_default_is_fine_and_a_list_is_not_quoted(tmp_path: Path) -> None:
    message = error_for(tmp_path, "parameters:\n  region_code: [fr, us]\n")
    assert "is a list here, but its default" in message
    assert "quote it" not in message


def test_yaml_no_is_a_boolean_against_a_str_default(tmp_path: Path) -> None:
    message = error_for(tmp_path, "cases:\n  norway:\n    region_code: no\n")
    assert "parameter 'region_code' is a boolean here" in message
    assert 'region_code: "no"' in message


@pytest.mark.parametrize(
    ("default", "value"),
    [("1", "2.5"), ("1.5", "2"), ("None", "anything"), ("[1]", "[2, 3]"), ("compute()", "7"), ("True", "false")],
)
def test_compatible_types_pass(tmp_path: Path, default: str, value: str) -> None:
    (case,) = cases_for(tmp_path, f"parameters:\n  x: {value}\n", params_cell=f"x = {default}")
    assert "x" in case.parameters


@pytest.mark.parametrize(("default", "value"), [("1", '"1"'), ("[1]", "{a: 1}"), ("True", "1"), ("1.0", "yes")])
def test_contradicting_types_fail(tmp_path: Path, default: str, value: str) -> None:
    assert "but its default" in error_for(tmp_path, f"parameters:\n  x: {value}\n", params_cell=f"x = {default}")


def test_strict_false_relaxes_names_types_and_the_missing_tag(tmp_path: Path) -> None:
    (case,) = cases_for(tmp_path, "strict: false\nparameters: {regoin_code: fr, run_date: 2017_01_01}\n")
    assert case.parameters == {"regoin_code": "fr", "run_date": 20170101}
    (case,) = cases_for(tmp_path, "strict: false\nparameters: {x: 1}\n", params_cell=None)
    assert case.parameters == {"x": 1}


def test_parameters_without_a_tagged_cell_explain_how_to_tag(tmp_path: Path) -> None:
    message = error_for(tmp_path, "parameters: {region_code: fr}\n", params_cell=None)
    assert message.startswith(
        "notebooks/vid_agg.yaml:1: the defaults (top-level `parameters`) set parameters (region_code) but "
        "vid_agg.ipynb has no cell tagged `parameters`"
    )
    assert "property inspector" in message
    assert '"tags": ["parameters"]' in message


def test_unknown_key_in_a_long_form_case(tmp_path: Path) -> None:
    message = error_for(tmp_path, "cases:\n  fr:\n    parameters: {region_code: fr}\n    skpi: later\n")
    assert message.startswith("notebooks/vid_agg.yaml:4: case 'fr': unknown key 'skpi'")
    assert "did you mean 'skip'?" in message


def test_skip_in_a_short_form_case_is_an_undeclared_parameter(tmp_path: Path) -> None:
    message = error_for(tmp_path, "cases:\n  fr:\n    region_code: fr\n    skip: later\n")
    assert "parameter 'skip' is not declared" in message


@pytest.mark.parametrize(
    ("fixture", "expected"),
    [
        ("timeout: -1\n", "notebooks/vid_agg.yaml:1: `timeout` must be a number of seconds, got int -1"),
        ("cell_timeout: soon\n", "`cell_timeout` must be a number of seconds, got a string"),
        ("kernel: [python3]\n", "`kernel` must be a kernel name, got a list"),
        ("strict: maybe\n", "`strict` must be true or false, got a string"),
        ("snapshot: yes please\n", "`snapshot` must be true or false, got a string"),
        ("snapshot_replace: [a]\n", "`snapshot_replace` must be a mapping, got a list"),
        ("snapshot_replace: {a: 1}\n", "`snapshot_replace` entry 'a': both sides must be strings"),
        ("cases: [fr, us]\n", "`cases` must be a non-empty mapping of case ids to cases, got a list"),
        ("cases:\n", "`cases` is empty"),
        ("cases:\n  fr/1: {}\n", "case id 'fr/1' is not a usable test id"),
        ("parameters: [a]\n", "parameters of the defaults must be a mapping of names to values, got a list"),
        ("parameters: {1x: 1}\n", "parameter name '1x' is not a Python identifier"),
        ("cases:\n  fr: {parameters: {}, skip: 3}\n", "`skip` must be a reason (a string) or true, got int 3"),
    ],
)
def test_bad_settings(tmp_path: Path, fixture: str, expected: str) -> None:
    assert expected in error_for(tmp_path, fixture)


def test_two_fixture_files_are_ambiguous(tmp_path: Path) -> None:
    nb = write_notebook(tmp_path / "a.ipynb", ["1"])
    (tmp_path / "a.yaml").write_text("")
    assert sibling_fixture(nb) == tmp_path / "a.yaml"
    (tmp_path / "a.yml").write_text("")
    with pytest.raises(FixtureError, match=r"a\.ipynb has two fixture files, a\.yaml and a\.yml"):
        sibling_fixture(nb)


def test_not_a_notebook(tmp_path: Path) -> None:
    path = tmp_path / "x.ipynb"
    path.write_text("{not json")
    with pytest.raises(FixtureError, match=r"x.ipynb: is not a readable Jupyter notebook"):
        read_notebook(path)


def test_parse_parameters_reads_assignments_and_literal_types() -> None:
    declared = parse_parameters('a = "x"\nb: int = 3\nc = d = 1.5\ne = f(1)\nimport os\ng = None\n')
    assert declared is not None
    assert [(p.name, p.type_name, p.line) for p in declared] == [
        ("a", "str", 1),
        ("b", "int", 2),
        ("c", "float", 3),
        ("d", "float", 3),
        ("e", None, 4),
        ("g", None, 6),
    ]


def test_a_parameters_cell_with_magics_is_not_checked(tmp_path: Path) -> None:
    (case,) = cases_for(tmp_path, "parameters: {anything: 1}\n", params_cell="%matplotlib inline\nx = 1")
    assert case.parameters == {"anything": 1}


def test_a_case_can_undo_the_files_skip(tmp_path: Path) -> None:
    cases = cases_for(
        tmp_path,
        "skip: data not ready\ncases:\n  fr: {region_code: fr}\n  luna:\n    parameters: {}\n    skip: false\n",
    )
    assert [(c.case_id, bool(c.skip)) for c in cases] == [("fr", True), ("luna", False)]


# ---------------------------------------------------------------- all cases together (issue 20)


def big_default_fixture(cases: int, size: int = 100_000) -> str:
    """A default of ``size`` characters, written into every one of ``cases`` cases."""
    lines = ["parameters:", f"  run_date: {'x' * size}", "cases:"]
    return "\n".join([*lines, *(f"  c{i}: {{region_code: r{i}}}" for i in range(cases)), ""])


def test_a_big_default_times_many_cases_is_refused(tmp_path: Path) -> None:
    """Each case is far under the per-case bound; together they would fill the results file."""
    assert len(cases_for(tmp_path, big_default_fixture(190))) == 190
    message = error_for(tmp_path, big_default_fixture(210)).splitlines()
    default = len('"x"') - 1 + 100_000 + len('"run_date": , ')  # as JSON, about: quotes, key, separators
    own = sum(len(f'"region_code": "r{i}", ') for i in range(210))
    assert message == [
        f"notebooks/vid_agg.yaml:2: the parameters of all its cases come to {210 * default + own:,} characters "
        f"written out (a default once per case, aliases expanded), {210 * default:,} of them from 'run_date' of the "
        f"defaults; the limit is {CASES_PARAMETERS_LIMIT:,} per fixture",
        "  hint: every case's parameters are written into its executed notebook and into the results file; "
        "pass big inputs as a file path and read them in the notebook",
    ]


def test_the_fixture_total_is_a_collection_error_before_any_kernel(pytester: pytest.Pytester) -> None:
    write_notebook(pytester.path / "vid_agg.ipynb", [PARAMS, "print(region_code)"])
    (pytester.path / "vid_agg.yaml").write_text(big_default_fixture(300, 900_000))
    result = pytester.runpytest("-ra")
    result.stdout.fnmatch_lines(
        [
            "*ERROR collecting vid_agg.ipynb*",
            "vid_agg.yaml:2: the parameters of all its cases come to 270,*,* characters written out *; the limit "
            f"is {CASES_PARAMETERS_LIMIT:,} per fixture",
            "  hint: *pass big inputs as a file path and read them in the notebook",
            "*short test summary info*",
            "ERROR vid_agg.ipynb - vid_agg.yaml:2: the parameters of all its cases come to 270,*",
        ]
    )
    assert "Traceback" not in result.stdout.str()
    assert result.ret == pytest.ExitCode.INTERRUPTED
    assert not (pytester.path / "notebook-outputs").exists()  # no case ran, no notebook was written
