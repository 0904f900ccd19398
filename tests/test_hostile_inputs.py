"""Hostile and broken inputs at collection: one clean message each, never a traceback (issue 10).

Notebooks of the wrong shape and fixtures that YAML reads lossily are refused at collection with
the file, what is wrong and a hint. Pure modules are called directly; the plugin through pytester
with --collect-only, so no kernel starts.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from pytest_notebooks.cases.notebook import read_notebook
from pytest_notebooks.cases.params import MAX_CASE_ID, PARAMETERS_LIMIT, load_cases
from pytest_notebooks.cases.yamlfile import FIXTURE_LIMIT
from pytest_notebooks.errors import FixtureError
from pytest_notebooks.models import NotebookCase

HINT_FORMAT = (
    "  hint: open and save it in Jupyter; the format is described at "
    "https://nbformat.readthedocs.io/en/latest/format_description.html"
)


def notebook_json() -> dict[str, Any]:
    """A valid nbformat 4.5 notebook: a tagged parameters cell, a markdown cell, a code cell."""
    return {
        "cells": [
            {
                "cell_type": "code",
                "id": "p",
                "metadata": {"tags": ["parameters"]},
                "source": 'region_code = "luna"\nlimit = 3\n',
                "outputs": [],
                "execution_count": None,
            },
            {"cell_type": "markdown", "id": "m", "metadata": {}, "source": ["# title"]},
            {
                "cell_type": "code",
                "id": "c",
                "metadata": {},
                "source": "print(region_code)",
                "outputs": [],
                "execution_count": None,
            },
        ],
        "metadata": {
            "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
            "language_info": {"name": "python"},
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }


def notebook_error(tmp_path: Path, raw: bytes) -> str:
    path = tmp_path / "x.ipynb"
    path.write_bytes(raw)
    with pytest.raises(FixtureError) as excinfo:
        read_notebook(path, "nb/x.ipynb")
    return str(excinfo.value)


def broken(change: Any) -> bytes:
    nb = notebook_json()
    change(nb)
    return json.dumps(nb).encode()


# ---------------------------------------------------------------- notebooks: valid JSON, wrong shape


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        pytest.param(broken(lambda nb: nb.update(cells=5)), "`cells` is a number (5), not a list", id="cells-a-number"),
        pytest.param(
            broken(lambda nb: nb.update(cells={"a": 1})),
            "`cells` is a JSON object ({...}), not a list",
            id="cells-a-mapping",
        ),
        pytest.param(
            broken(lambda nb: nb["cells"].insert(1, "print(1)")),
            'cell 2 is a string ("print(1)"), not a JSON object',
            id="cell-a-string",
        ),
        pytest.param(
            broken(lambda nb: nb.update(metadata=[])),
            "`metadata` is a list ([...]), not a JSON object",
            id="metadata-a-list",
        ),
        pytest.param(
            broken(lambda nb: nb["metadata"].update(kernelspec="python3")),
            '`metadata.kernelspec` is a string ("python3"), not a JSON object',
            id="kernelspec-a-string",
        ),
        pytest.param(b"[" * 200_000 + b"]" * 200_000, "its JSON is nested too deeply to read", id="deep-array"),
        pytest.param(b'{"cells": 5}', "it has no `nbformat` version key", id="bare-cells"),
        pytest.param(b"[1, 2]", "the file holds a list ([...]), not a JSON object", id="top-level-list"),
        pytest.param(broken(lambda nb: nb.pop("nbformat")), "it has no `nbformat` version key", id="no-nbformat"),
        pytest.param(broken(lambda nb: nb["cells"][2].pop("source")), "cell 3 (code) has no `source`", id="no-source"),
        pytest.param(
            broken(lambda nb: nb["cells"][2].update(source=["a", 5])),
            "cell 3 (code): `source` is not a string or a list of strings",
            id="source-list-of-int",
        ),
        pytest.param(
            broken(lambda nb: nb["cells"][2].pop("outputs")), "cell 3 (code) has no `outputs` list", id="no-outputs"
        ),
        pytest.param(
            broken(lambda nb: nb["cells"][2].update(outputs=["x"])),
            "cell 3 (code): output 1 is not a stream, display_data, execute_result or error output",
            id="output-a-string",
        ),
        pytest.param(
            broken(lambda nb: nb["cells"][1].pop("metadata")),
            "cell 2 (markdown) has no `metadata`",
            id="no-cell-metadata",
        ),
        pytest.param(
            broken(lambda nb: nb["cells"][1].update(cell_type="heading")),
            "cell 2 has `cell_type` 'heading'; nbformat 4 cells are code, markdown or raw",
            id="heading-cell",
        ),
        pytest.param(
            broken(lambda nb: nb["cells"][2]["metadata"].update(tags="parameters")),
            "cell 3 (code): `metadata.tags` is not a list of strings",
            id="tags-a-string",
        ),
        pytest.param(
            broken(lambda nb: nb["metadata"].update(language_info="python")),
            '`metadata.language_info` is a string ("python"), not a JSON object',
            id="language-info-a-string",
        ),
    ],
)
def test_a_notebook_of_the_wrong_shape_is_named_with_what_is_wrong(tmp_path: Path, raw: bytes, problem: str) -> None:
    assert notebook_error(tmp_path, raw).splitlines() == [
        f"nb/x.ipynb: is not a readable Jupyter notebook: {problem}",
        HINT_FORMAT,
    ]


def test_a_utf8_bom_is_refused_with_a_hint_to_save_without_it(tmp_path: Path) -> None:
    assert notebook_error(tmp_path, b"\xef\xbb\xbf" + json.dumps(notebook_json()).encode()).splitlines() == [
        "nb/x.ipynb: is not a readable Jupyter notebook: it starts with a UTF-8 byte order mark (BOM), which "
        "nbformat does not accept",
        '  hint: save it again as UTF-8 without a BOM (the editor\'s "UTF-8", not "UTF-8 with BOM")',
    ]


def test_nbformat_5_does_not_exist_yet(tmp_path: Path) -> None:
    assert notebook_error(tmp_path, broken(lambda nb: nb.update(nbformat=5))).splitlines() == [
        "nb/x.ipynb: is not a readable Jupyter notebook: it is nbformat 5; papermill runs version 4 notebooks",
        "  hint: papermill and nbformat read versions 4.0 to 4.5; save x.ipynb from Jupyter",
    ]


def test_nbformat_3_says_how_to_convert(tmp_path: Path) -> None:
    message = notebook_error(tmp_path, json.dumps({"worksheets": [], "metadata": {}, "nbformat": 3}).encode())
    assert message.splitlines() == [
        "nb/x.ipynb: is not a readable Jupyter notebook: it is nbformat 3; papermill runs version 4 notebooks",
        "  hint: convert it with `jupyter nbconvert --to notebook --inplace x.ipynb`",
    ]


@pytest.mark.parametrize(("minor", "shown"), [(9, "9"), ("5", "'5'"), (None, "None")])
def test_an_unknown_nbformat_minor(tmp_path: Path, minor: object, shown: str) -> None:
    message = notebook_error(tmp_path, broken(lambda nb: nb.update(nbformat_minor=minor)))
    assert message.splitlines()[0] == (
        f"nb/x.ipynb: is not a readable Jupyter notebook: `nbformat_minor` is {shown}; nbformat reads "
        "versions 4.0 to 4.5"
    )


@pytest.mark.parametrize("minor", [0, 4, 5])
def test_known_minors_and_optional_keys_are_read(tmp_path: Path, minor: int) -> None:
    nb = notebook_json()
    nb["nbformat_minor"] = minor
    for cell in nb["cells"]:
        cell.pop("id")
        cell.pop("execution_count", None)  # nbclient fills it in
    nb["metadata"] = {}
    path = tmp_path / "x.ipynb"
    path.write_text(json.dumps(nb))
    info = read_notebook(path)
    assert (info.parameters_cell, info.kernel_name, [p.name for p in info.parameters]) == (
        1,
        None,
        ["region_code", "limit"],
    )


def test_a_parameters_cell_too_deep_for_pythons_parser(tmp_path: Path) -> None:
    message = notebook_error(
        tmp_path, broken(lambda nb: nb["cells"][0].update(source="x = " + " + ".join(["1"] * 200_000)))
    )
    assert message.splitlines() == [
        "nb/x.ipynb: the parameters cell (cell 1) is nested too deeply for Python to parse",
        "  hint: keep literal defaults in the parameters cell and compute bigger values in a later cell",
    ]


def test_broken_notebooks_through_pytest_are_one_screen_each(pytester: pytest.Pytester) -> None:
    inputs = {
        "cells": broken(lambda nb: nb.update(cells=5)),
        "bom": b"\xef\xbb\xbf" + json.dumps(notebook_json()).encode(),
        "deep": b"[" * 200_000 + b"]" * 200_000,
        "nosource": broken(lambda nb: nb["cells"][2].pop("source")),
    }
    for name, raw in inputs.items():
        (pytester.path / f"{name}.ipynb").write_bytes(raw)
        (pytester.path / f"{name}.yaml").write_text("cases:\n  a: {}\n")
    result = pytester.runpytest("--collect-only", "-ra")
    result.stdout.fnmatch_lines(
        [
            "*short test summary info*",
            "ERROR bom.ipynb - bom.ipynb: is not a readable Jupyter notebook: it starts with a UTF-8 byte order "
            "mark (BOM), which nbformat does not accept",
            "  hint: save it again as UTF-8 without a BOM *",
            "ERROR cells.ipynb - cells.ipynb: is not a readable Jupyter notebook: `cells` is a number (5), not a list",
            HINT_FORMAT,
            "ERROR deep.ipynb - deep.ipynb: is not a readable Jupyter notebook: its JSON is nested too deeply to read",
            HINT_FORMAT,
            "ERROR nosource.ipynb - nosource.ipynb: is not a readable Jupyter notebook: cell 3 (code) has no `source`",
            HINT_FORMAT,
            "*Interrupted: 4 errors during collection*",
        ]
    )
    assert "Traceback" not in result.stdout.str()
    assert "pytest_notebooks" not in result.stdout.str()
    assert result.ret == pytest.ExitCode.INTERRUPTED


# ---------------------------------------------------------------- fixtures: what YAML drops silently


def cases_for(tmp_path: Path, fixture: str) -> list[NotebookCase]:
    nb = tmp_path / "x.ipynb"
    nb.write_text(json.dumps(notebook_json()))
    (tmp_path / "x.yaml").write_text(fixture)
    return load_cases(tmp_path / "x.yaml", read_notebook(nb), label="x.yaml")


def fixture_error(tmp_path: Path, fixture: str) -> list[str]:
    with pytest.raises(FixtureError) as excinfo:
        cases_for(tmp_path, fixture)
    return str(excinfo.value).splitlines()


def test_a_case_id_written_twice(tmp_path: Path) -> None:
    fixture = "cases:\n  fr:\n    region_code: fr\n  us:\n    region_code: us\n  fr:\n    region_code: de\n"
    assert fixture_error(tmp_path, fixture) == [
        "x.yaml:6: case id 'fr' is written twice (lines 2 and 6); YAML would keep only the second and drop "
        "the first without a word",
        "  hint: rename or remove one of the two cases",
    ]


def test_a_second_cases_block(tmp_path: Path) -> None:
    fixture = "cases:\n  fr: {region_code: fr}\ntimeout: 60\ncases:\n  us: {region_code: us}\n"
    assert fixture_error(tmp_path, fixture) == [
        "x.yaml:4: top-level key `cases` is written twice (lines 1 and 4); YAML would keep only the second and "
        "drop the first without a word",
        "  hint: merge the two `cases:` blocks into one",
    ]


def test_a_parameter_written_twice(tmp_path: Path) -> None:
    fixture = "cases:\n  fr:\n    parameters:\n      region_code: fr\n      region_code: de\n"
    assert fixture_error(tmp_path, fixture) == [
        "x.yaml:5: key 'region_code' is written twice in `cases.fr.parameters` (lines 4 and 5); YAML would keep "
        "only the second and drop the first without a word",
        "  hint: remove one of the two",
    ]


def test_case_ids_1_and_quoted_1_collide(tmp_path: Path) -> None:
    fixture = 'cases:\n  1:\n    region_code: fr\n  "1":\n    region_code: us\n'
    assert fixture_error(tmp_path, fixture) == [
        "x.yaml:4: case ids 1 (line 2) and '1' (line 4) both become the test id '1'",
        "  hint: rename one of them; quote ids that YAML would read as numbers or booleans",
    ]


def test_keys_that_yaml_reads_as_one_value(tmp_path: Path) -> None:
    fixture = "strict: false\nparameters:\n  table: {1: a, 1.0: b}\n"
    assert fixture_error(tmp_path, fixture)[0] == (
        "x.yaml:3: keys 1 and 1.0 are the same YAML key (lines 3 and 3); YAML would keep only the second and "
        "drop the first without a word"
    )


def test_merge_keys_override_without_being_duplicates(tmp_path: Path) -> None:
    fixture = "strict: false\ncases:\n  fr: &fr {region_code: fr, limit: 3}\n  us:\n    <<: *fr\n    region_code: us\n"
    cases = cases_for(tmp_path, fixture)
    assert [(c.case_id, c.parameters) for c in cases] == [
        ("fr", {"region_code": "fr", "limit": 3}),
        ("us", {"region_code": "us", "limit": 3}),
    ]


def test_an_unquoted_yes_as_a_case_id(tmp_path: Path) -> None:
    assert fixture_error(tmp_path, "cases:\n  yes: {}\n") == [
        "x.yaml:2: case id 'True' is how YAML 1.1 reads an unquoted yes/no/on/off/true/false/null key",
        "  hint: quote the id to keep it as written, or choose another name",
    ]


# ---------------------------------------------------------------- fixtures: sizes


def alias_bomb(levels: int) -> str:
    """The probe's 'billion laughs': each level a list of 9 aliases to the one below."""
    lines = ["strict: false", "parameters:", '  l0: &l0 "lol"']
    for level in range(1, levels + 1):
        lines.append(f"  l{level}: &l{level} [{', '.join([f'*l{level - 1}'] * 9)}]")
    return "\n".join([*lines, "cases:", "  a: {}", ""])


def peak_bytes(read: Callable[[], list[str]]) -> tuple[list[str], int]:
    """What ``read`` returned, and the most memory Python held at once while it ran: a bomb built
    (tens of megabytes for one of level 7) shows there, whatever the machine's speed."""
    import tracemalloc

    tracemalloc.start()
    try:
        return read(), tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_an_alias_bomb_is_refused_at_once(tmp_path: Path) -> None:
    fixture = alias_bomb(7)
    assert len(fixture) < 1_500
    message, peak = peak_bytes(lambda: fixture_error(tmp_path, fixture))
    assert peak < 5_000_000  # 9**7 references to "lol", once expanded: ~40 MB
    assert message == [
        f"x.yaml:10: the fixture expands to more than {FIXTURE_LIMIT:,} characters once its YAML aliases are "
        f"repeated, most of it in `parameters.l7`; the limit is {FIXTURE_LIMIT:,}",
        "  hint: every alias (*name) repeats what it points to, and parameters are written into each executed "
        "notebook and into the results file; pass big inputs as a file path and read them in the notebook",
    ]


def test_a_merge_key_bomb_is_refused_before_it_is_built(tmp_path: Path) -> None:
    keys = ", ".join(f"k{i}: {i}" for i in range(9))
    lines = ["strict: false", "parameters:", f"  m0: &m0 {{{keys}}}"]
    for level in range(1, 9):
        lines.append(f"  m{level}: &m{level} {{<<: [{', '.join([f'*m{level - 1}'] * 9)}]}}")
    message, peak = peak_bytes(lambda: fixture_error(tmp_path, "\n".join(lines) + "\n"))
    assert peak < 5_000_000
    assert message[0].startswith(f"x.yaml:9: the fixture expands to more than {FIXTURE_LIMIT:,} characters")
    assert "most of it in `parameters.m6`" in message[0]  # the first key over the limit


def test_a_case_over_the_parameters_limit(tmp_path: Path) -> None:
    message = fixture_error(tmp_path, alias_bomb(6))  # about 9**6 * 7 characters: over 1 MB, under the file limit
    assert message == [
        f"x.yaml:9: case 'a': its parameters come to more than {PARAMETERS_LIMIT:,} characters written out "
        f"(aliases expanded), 3,985,805 of them in 'l6'; the limit is {PARAMETERS_LIMIT:,} per case",
        "  hint: parameters are written into each executed notebook and into the results file; pass big inputs "
        "as a file path and read them in the notebook",
    ]


def test_one_long_string_over_the_parameters_limit(tmp_path: Path) -> None:
    fixture = f"cases:\n  fr:\n    region_code: fr\n  big:\n    region_code: {'x' * PARAMETERS_LIMIT}\n"
    message = fixture_error(tmp_path, fixture)
    assert message[0].startswith(f"x.yaml:5: case 'big': its parameters come to more than {PARAMETERS_LIMIT:,}")


def test_shared_defaults_through_an_alias_are_fine(tmp_path: Path) -> None:
    fixture = "strict: false\ncases:\n  c0: &base {limit: 3, region_code: r0}\n" + "".join(
        f"  c{i}: {{<<: *base, region_code: r{i}}}\n" for i in range(1, 200)
    )
    cases = cases_for(tmp_path, fixture)
    assert len(cases) == 200
    assert cases[5].parameters == {"limit": 3, "region_code": "r5"}


def test_a_value_that_contains_itself(tmp_path: Path) -> None:
    assert fixture_error(tmp_path, "strict: false\nparameters:\n  loop: &loop [1, *loop]\n") == [
        "x.yaml:3: `parameters.loop[1]` contains itself through a YAML alias",
        "  hint: a recursive value cannot be passed to a notebook; remove the alias",
    ]


# ---------------------------------------------------------------- case ids and limits


def test_a_keyword_as_a_parameter_name(tmp_path: Path) -> None:
    """papermill would write `class = 'x'` into the notebook: a SyntaxError at run time."""
    assert fixture_error(tmp_path, "strict: false\nparameters:\n  class: x\n") == [
        "x.yaml:3: the defaults: parameter name 'class' is a Python keyword",
        "  hint: papermill assigns each parameter as a variable; rename it",
    ]


def test_a_case_id_with_a_trailing_newline(tmp_path: Path) -> None:
    assert fixture_error(tmp_path, 'cases:\n  "fr\\n": {}\n')[0] == "x.yaml:2: case id 'fr\\n' is not a usable test id"


def test_a_case_id_over_the_length_limit(tmp_path: Path) -> None:
    assert [c.case_id for c in cases_for(tmp_path, f"cases:\n  {'a' * MAX_CASE_ID}: {{}}\n")] == ["a" * MAX_CASE_ID]
    assert fixture_error(tmp_path, f"cases:\n  {'a' * 300}: {{}}\n") == [
        f"x.yaml:2: case id 'aaaaaaaaaaaaaaaaaaaa'... is 300 characters long; the limit is {MAX_CASE_ID}",
        "  hint: shorten it: it becomes a file name (<id>.ipynb) and a pytest id",
    ]


@pytest.mark.parametrize("key", ["timeout", "cell_timeout"])
def test_a_nan_limit(tmp_path: Path, key: str) -> None:
    assert fixture_error(tmp_path, f"{key}: .nan\n") == [
        f"x.yaml:1: `{key}` must be a number of seconds, got float nan",
        "  hint: write seconds; 0 or .inf: no limit",
    ]
    (case,) = cases_for(tmp_path, f"{key}: .inf\n")
    assert getattr(case, key) == float("inf")


# ---------------------------------------------------------------- the plugin, end to end


def test_duplicate_case_ids_through_pytest(pytester: pytest.Pytester) -> None:
    (pytester.path / "x.ipynb").write_text(json.dumps(notebook_json()))
    (pytester.path / "x.yaml").write_text('cases:\n  1:\n    region_code: fr\n  "1":\n    region_code: us\n')
    result = pytester.runpytest("--collect-only", "-ra")
    result.stdout.fnmatch_lines(
        [
            "*_ ERROR collecting x.ipynb _*",
            "x.yaml:4: case ids 1 (line 2) and '1' (line 4) both become the test id '1'",
            "  hint: rename one of them; *",
            "*short test summary info*",
            "ERROR x.ipynb - x.yaml:4: case ids 1 (line 2) and '1' (line 4) both become the test id '1'",
        ]
    )
    assert "Traceback" not in result.stdout.str()
    assert result.ret == pytest.ExitCode.INTERRUPTED


def test_an_alias_bomb_through_pytest(pytester: pytest.Pytester) -> None:
    (pytester.path / "x.ipynb").write_text(json.dumps(notebook_json()))
    (pytester.path / "x.yaml").write_text(alias_bomb(7))
    result = pytester.runpytest("--collect-only", "-ra")
    result.stdout.fnmatch_lines(
        [f"ERROR x.ipynb - x.yaml:10: the fixture expands to more than {FIXTURE_LIMIT:,} characters *"]
    )
    assert "Traceback" not in result.stdout.str()


def test_the_notebook_json_helper_is_valid(tmp_path: Path) -> None:
    """The helper above is a notebook that nbformat itself accepts, so the mutations are the only fault."""
    import nbformat

    nbformat.validate(copy.deepcopy(notebook_json()))
