"""Hostile parameter values, case ids and file names (issue 22): a clean error or a clean run, never a
traceback, and no saved notebook written through a link.

Parsing is tested by calling the pure modules; the plugin through pytester, with real kernels where a
case runs.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from pytest_notebooks.cases.notebook import read_notebook
from pytest_notebooks.cases.params import load_cases
from pytest_notebooks.cases.values import MAX_NESTING, unusable
from pytest_notebooks.cases.yamlfile import MAX_INT_DIGITS
from pytest_notebooks.errors import FixtureError
from pytest_notebooks.models import NotebookCase
from tests.notebooks import write_notebook

VALUES_HINT = (
    "  hint: a parameter must be what papermill can pass and JSON can hold: a string, a finite number, "
    "true/false, null, or lists and mappings (with string keys) of those; "
)


def cases_for(tmp_path: Path, fixture: str) -> list[NotebookCase]:
    nb = write_notebook(tmp_path / "x.ipynb", [("x = 1\ny = 'a'", ["parameters"]), "print(x)"])
    (tmp_path / "x.yaml").write_text(fixture)
    return load_cases(tmp_path / "x.yaml", read_notebook(nb), label="x.yaml")


def fixture_error(tmp_path: Path, fixture: str) -> list[str]:
    with pytest.raises(FixtureError) as excinfo:
        cases_for(tmp_path, fixture)
    return str(excinfo.value).splitlines()


# ---------------------------------------------------------------- values papermill and JSON cannot carry


@pytest.mark.parametrize(
    ("value", "what", "tail"),
    [
        pytest.param(
            "!!binary aGVsbG8=",
            "is bytes (a YAML !!binary value)",
            "pass binary data as a file path, or as base64 text that the notebook decodes",
            id="binary",
        ),
        pytest.param("!!set {a, b}", "is a set (a YAML !!set value)", "write it as a list", id="set"),
        pytest.param(
            "!!omap [a: 1, b: 2]",
            "is a list of pairs (a YAML !!omap or !!pairs value)",
            "write it as a mapping",
            id="omap",
        ),
        pytest.param(
            "!!timestamp 2017-01-01",
            "is a date (a YAML !!timestamp value)",
            'quote it: papermill passes dates as text (`run_date: "2017-01-01"`)',
            id="timestamp",
        ),
        pytest.param(
            ".nan",
            "is float nan, which JSON cannot hold (the results file and the saved notebook would not be standard JSON)",
            'use null, or text such as "nan" that the notebook turns into a number',
            id="nan",
        ),
        pytest.param(
            "-.inf",
            "is float -inf, which JSON cannot hold (the results file and the saved notebook would not be "
            "standard JSON)",
            'use null, or text such as "nan" that the notebook turns into a number',
            id="minus-inf",
        ),
        pytest.param(
            "1.0e+999",
            "is float inf, which JSON cannot hold (the results file and the saved notebook would not be standard JSON)",
            'use null, or text such as "nan" that the notebook turns into a number',
            id="overflow-to-inf",
        ),
    ],
)
def test_a_value_papermill_or_json_cannot_carry(tmp_path: Path, value: str, what: str, tail: str) -> None:
    assert fixture_error(tmp_path, f"strict: false\ncases:\n  fr:\n    y: ok\n    x: {value}\n") == [
        f"x.yaml:5: case 'fr': parameter 'x' {what}, which papermill cannot pass to a notebook"
        if "JSON cannot hold" not in what
        else f"x.yaml:5: case 'fr': parameter 'x' {what}",
        VALUES_HINT + tail,
    ]


def test_text_that_is_not_valid_unicode() -> None:
    """libyaml refuses a surrogate escape; PyYAML's pure-Python parser (without libyaml) reads it."""
    assert unusable("x", ["ok", "a\ud800b"]) == (
        "holds text that is not valid Unicode (the lone surrogate \\ud800) at x[1], which papermill cannot "
        "pass to a notebook",
        VALUES_HINT[len("  hint: ") :] + "remove the \\ud800-\\udfff escape",
    )
    assert unusable("x", ["ok", "é", {"k": None}]) is None


def test_a_bad_value_deep_inside_a_parameter_is_named_by_its_place(tmp_path: Path) -> None:
    fixture = "strict: false\nparameters:\n  x: [1, {k: [a, !!binary aGk=]}]\ncases:\n  fr: {}\n"
    assert fixture_error(tmp_path, fixture)[0] == (
        "x.yaml:3: the defaults: parameter 'x' holds bytes (a YAML !!binary value) at x[1]['k'][1], which "
        "papermill cannot pass to a notebook"
    )


def test_a_mapping_key_that_is_not_a_string(tmp_path: Path) -> None:
    fixture = "strict: false\ncases:\n  fr:\n    parameters:\n      x: {a: 1, 2: b}\n"
    assert fixture_error(tmp_path, fixture) == [
        "x.yaml:5: case 'fr': parameter 'x' holds the mapping key 2 (int, not a string) at x, which papermill "
        "cannot pass to a notebook",
        VALUES_HINT + "quote the key ('2': ...): papermill and JSON would turn it into the string '2' anyway",
    ]


def test_values_json_can_hold_pass(tmp_path: Path) -> None:
    fixture = "strict: false\ncases:\n  fr: {x: [1, 2.5, -0.0, true, null, 'é', {a: {b: []}}], y: 'x'}\n"
    (case,) = cases_for(tmp_path, fixture)
    assert case.parameters["x"][-1] == {"a": {"b": []}}
    json.dumps(case.parameters, allow_nan=False)


# ---------------------------------------------------------------- sizes Python cannot write as text


def test_an_integer_too_long_to_write_as_text(tmp_path: Path) -> None:
    fixture = f"cases:\n  fr:\n    y: a\n    x: {'7' * 5000}\n"
    assert fixture_error(tmp_path, fixture) == [
        f"x.yaml:4: `cases.fr.x` is an integer of more than {MAX_INT_DIGITS:,} digits; the limit is {MAX_INT_DIGITS:,}",
        "  hint: Python refuses to turn longer integers into text, and papermill writes every parameter into "
        "the notebook as text; quote it to pass a string",
    ]


@pytest.mark.parametrize(
    ("fixture", "first"),
    [
        pytest.param(
            f"strict: false\nparameters:\n  x: 0x{'f' * 4000}\n",
            f"x.yaml:3: `parameters.x` is an integer of more than {MAX_INT_DIGITS:,} digits",
            id="hex",
        ),
        pytest.param(
            f"cases:\n  ? {'1' * 5000}\n  : {{}}\n",  # an explicit key: YAML's implicit ones stop at 1,024
            f"x.yaml:2: `cases` has a key that is an integer of more than {MAX_INT_DIGITS:,} digits",
            id="case-id",
        ),
        pytest.param(
            f"timeout: {'9' * 5000}\n",
            f"x.yaml:1: `timeout` is an integer of more than {MAX_INT_DIGITS:,} digits",
            id="setting",
        ),
        pytest.param(
            f"strict: false\nparameters:\n  x:\n    ? {'1' * 5000}\n    : a\n",
            f"x.yaml:4: `parameters.x` has a key that is an integer of more than {MAX_INT_DIGITS:,} digits",
            id="key",
        ),
        pytest.param(
            f"strict: false\nparameters:\n  x: [1, {'5' * 5000}:00]\n",
            f"x.yaml:3: `parameters.x[1]` is an integer of more than {MAX_INT_DIGITS:,} digits",
            id="base-60-part",
        ),
        pytest.param(
            f"strict: false\nparameters:\n  x: 1{':00' * 2450}\n",
            f"x.yaml:3: `parameters.x` is an integer of more than {MAX_INT_DIGITS:,} digits",
            id="base-60-value",
        ),
    ],
)
def test_long_integers_anywhere_are_refused_before_they_are_built(tmp_path: Path, fixture: str, first: str) -> None:
    assert fixture_error(tmp_path, fixture)[0] == f"{first}; the limit is {MAX_INT_DIGITS:,}"


def test_the_longest_integer_allowed(tmp_path: Path) -> None:
    (case,) = cases_for(tmp_path, f"cases:\n  fr: {{x: {'9' * MAX_INT_DIGITS}}}\n")
    assert case.parameters["x"] == int("9" * MAX_INT_DIGITS)


@pytest.mark.parametrize("depth", [MAX_NESTING + 1, 300, 900])
def test_a_value_nested_too_deeply(tmp_path: Path, depth: int) -> None:
    fixture = f"cases:\n  fr:\n    x: {'[' * depth}1{']' * depth}\n"
    assert fixture_error(tmp_path.joinpath(str(depth)), fixture) == [
        f"x.yaml:3: case 'fr': parameter 'x' is nested more than {MAX_NESTING} levels deep",
        "  hint: papermill writes it into the notebook as one Python literal, and Python's parser stops at 200 "
        "nested brackets; flatten it, or pass it as a file path and read it in the notebook",
    ]


def test_nesting_through_aliases_counts_where_it_is_used(tmp_path: Path) -> None:
    half = MAX_NESTING // 2 + 1
    fixture = (
        f"strict: false\nparameters:\n  a: &a {'[' * half}1{']' * half}\n"
        f"cases:\n  fr:\n    b: {'[' * half}*a{']' * half}\n"
    )
    assert fixture_error(tmp_path, fixture)[0] == (
        f"x.yaml:6: case 'fr': parameter 'b' is nested more than {MAX_NESTING} levels deep"
    )


def test_the_deepest_value_allowed(tmp_path: Path) -> None:
    fixture = f"strict: false\ncases:\n  fr:\n    x: {'[' * MAX_NESTING}1{']' * MAX_NESTING}\n"
    (case,) = cases_for(tmp_path, fixture)
    assert case.parameters["x"] is not None


# ---------------------------------------------------------------- case ids that share a file or a node id


def test_a_case_and_its_reproduce_copy(tmp_path: Path) -> None:
    fixture = "cases:\n  a: {}\n  b: {}\n  A.Repro: {}\n"
    assert fixture_error(tmp_path, fixture) == [
        "x.yaml:4: case id 'A.Repro' (line 4) names the file a failure of case 'a' (line 2) writes its reproduce "
        "copy to (a.repro.ipynb): the reproduce command would overwrite this case's executed notebook",
        "  hint: rename 'A.Repro': <case id>.repro.ipynb is where the reproduce command of <case id> writes",
    ]


def test_case_ids_equal_under_casefold(tmp_path: Path) -> None:
    assert fixture_error(tmp_path, "cases:\n  Fr: {}\n  de: {}\n  fr: {}\n") == [
        "x.yaml:4: case ids 'Fr' (line 2) and 'fr' (line 4) differ only in case: on a case-insensitive file "
        "system (macOS, Windows) their executed notebooks and snapshots are one file",
        "  hint: rename one of them",
    ]


def test_principles_is_a_reserved_case_id(tmp_path: Path) -> None:
    assert fixture_error(tmp_path, "cases:\n  fr: {}\n  principles: {}\n") == [
        "x.yaml:3: case id 'principles' is reserved: it is the node id of the notebook's principles check "
        "(x.ipynb::principles, with --notebooks-lint)",
        "  hint: rename the case",
    ]


def test_reserved_and_colliding_ids_through_pytest(pytester: pytest.Pytester) -> None:
    write_notebook(pytester.path / "x.ipynb", ["print(1)"])
    (pytester.path / "x.yaml").write_text("cases:\n  fr: {}\n  principles: {}\n")
    result = pytester.runpytest("--collect-only", "-ra", "--notebooks-lint")
    result.stdout.fnmatch_lines(["ERROR x.ipynb - x.yaml:3: case id 'principles' is reserved*"])
    assert "Traceback" not in result.stdout.str()
    assert "duplicate" not in result.stdout.str().lower()


# ---------------------------------------------------------------- through pytest: no INTERNALERROR, no NaN


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("!!binary aGVsbG8=", "is bytes (a YAML !!binary value)"),
        ("!!set {a, b}", "is a set (a YAML !!set value)"),
        (".nan", "is float nan, which JSON cannot hold*"),
        ("7" * 5000, f"*`cases.bad.x` is an integer of more than {MAX_INT_DIGITS:,} digits*"),
        ("[" * 300 + "1" + "]" * 300, f"is nested more than {MAX_NESTING} levels deep"),
    ],
    ids=["binary", "set", "nan", "long-int", "deep"],
)
def test_hostile_values_are_collection_errors(pytester: pytest.Pytester, value: str, problem: str) -> None:
    write_notebook(pytester.path / "x.ipynb", [("x = 1", ["parameters"]), "assert False, 'boom'"])
    (pytester.path / "x.yaml").write_text(f"strict: false\ncases:\n  bad:\n    x: {value}\n")
    result = pytester.runpytest("-p", "no:xdist", "-ra")
    result.stdout.fnmatch_lines(["*_ ERROR collecting x.ipynb _*", f"x.yaml:4: *{problem}*", "  hint: *"])
    text = result.stdout.str() + result.stderr.str()
    assert "INTERNALERROR" not in text
    assert "Traceback" not in text
    assert result.ret == pytest.ExitCode.INTERRUPTED
    results = pytester.path / "notebook-outputs" / "results.json"
    assert not results.exists() or "NaN" not in results.read_text()


# ---------------------------------------------------------------- links at the output path


SYMLINKER = (
    "import os, pathlib\n"
    "out = pathlib.Path(os.environ['PN_OUT'])\n"
    "for path in (out / 'a.ipynb', out / 'a.repro.ipynb'):\n"
    "    path.unlink(missing_ok=True)\n"
    "    os.symlink(os.environ['PN_TARGET'], path)"
)


@pytest.mark.kernel
def test_a_symlink_planted_at_the_output_path_is_replaced_not_followed(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = pytester.path / "precious.txt"
    target.write_text("keep me\n")
    monkeypatch.setenv("PN_TARGET", str(target))
    monkeypatch.setenv("PN_OUT", str(pytester.path / "notebook-outputs" / "evil"))
    write_notebook(pytester.path / "evil.ipynb", [SYMLINKER, "print('after the link')", "assert False, 'boom'"])
    (pytester.path / "evil.yaml").write_text("cases:\n  a: {}\n")
    result = pytester.runpytest("-p", "no:xdist")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["FAILED evil.ipynb::a - cell 3 (In [[]3]): AssertionError: boom"])
    assert target.read_text() == "keep me\n"
    saved = pytester.path / "notebook-outputs" / "evil" / "a.ipynb"
    assert not saved.is_symlink()
    assert "after the link" in saved.read_text()
    assert not (saved.parent / "a.repro.ipynb").is_symlink()  # the reproduce command would have followed it


def test_a_symlink_left_at_the_output_path_is_not_followed(pytester: pytest.Pytester) -> None:
    target = pytester.path / "precious.txt"
    target.write_text("keep me\n")
    out = pytester.path / "notebook-outputs" / "plain"
    out.mkdir(parents=True)
    (out / "a.ipynb").symlink_to(target)
    (out / "a.repro.ipynb").symlink_to(target)
    write_notebook(pytester.path / "plain.ipynb", ["print('ran')"], kernel="no-such-kernel")
    (pytester.path / "plain.yaml").write_text("cases:\n  a: {}\n")
    pytester.runpytest("-p", "no:xdist").assert_outcomes(failed=1)  # saved without running, stamped
    assert target.read_text() == "keep me\n"
    assert not (out / "a.ipynb").is_symlink()
    assert json.loads((out / "a.ipynb").read_text())["metadata"]["pytest_notebooks"]["outcome"] == "failed"
    assert not (out / "a.repro.ipynb").is_symlink()


def test_a_hard_link_at_the_output_path_is_not_written_through(tmp_path: Path) -> None:
    from pytest_notebooks.files import overwrite

    target = tmp_path / "precious.txt"
    target.write_text("keep me\n")
    os.link(target, tmp_path / "a.ipynb")
    overwrite(str(tmp_path / "a.ipynb"), b"{}")
    assert target.read_text() == "keep me\n"
    assert (tmp_path / "a.ipynb").read_bytes() == b"{}"


# ---------------------------------------------------------------- file names that are not UTF-8


@pytest.mark.kernel
def test_a_notebook_whose_name_is_not_utf8(pytester: pytest.Pytester) -> None:
    name = os.fsdecode(b"caf\xff")
    write_notebook(pytester.path / f"{name}.ipynb", [("x = 1", ["parameters"]), "assert x == 1, 'x is 2'"])
    (pytester.path / f"{name}.yaml").write_text("cases:\n  a: {x: 1}\n  b: {x: 2}\n")
    # pytest's own cache provider and junitxml write node ids as strict UTF-8: both fail on this name
    result = pytester.runpytest("-p", "no:xdist", "-p", "no:cacheprovider", "-ra")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            "caf\\xff.ipynb::b failed at cell 2 (In [[]3]), id cell-2: AssertionError: x is 2",
            "output notebook: notebook-outputs/caf\\xff/b.ipynb",
            "reproduce: papermill $'caf\\xff.ipynb' $'notebook-outputs/caf\\xff/b.repro.ipynb' --cwd . *",
            "FAILED *::b - cell 2 (In [[]3]): AssertionError: x is 2",
        ]
    )
    assert "UnicodeEncodeError" not in result.stdout.str()
    out = pytester.path / "notebook-outputs" / name
    for case in ("a", "b"):
        saved = json.loads((out / f"{case}.ipynb").read_bytes().decode("utf-8"))
        assert saved["metadata"]["papermill"]["input_path"].endswith("caf\\xff.ipynb")
    records = json.loads((pytester.path / "notebook-outputs" / "results.json").read_bytes().decode("utf-8"))
    assert sorted(record["outcome"] for record in records["cases"]) == ["failed", "passed"]


@pytest.mark.skipif(shutil.which("bash") is None, reason="bash quoting")
def test_the_reproduce_command_quotes_an_undecodable_name_so_bash_writes_the_byte() -> None:
    from pytest_notebooks.run.report import shell_word

    for name in (os.fsdecode(b"caf\xff it's \\ x.ipynb"), "plain.ipynb", "it's *.ipynb"):
        printed = subprocess.run(
            ["bash", "-c", f"printf %s {shell_word(name)}"], capture_output=True, check=True
        ).stdout
        assert printed == os.fsencode(name)
