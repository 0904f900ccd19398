"""Text notebooks (Jupytext py:percent, py:light, MyST Markdown) with a fixture beside them: collected,
run through papermill, reported at the line of the text file, recorded, reviewed and promoted."""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import pytest

from pytest_notebooks.cases.textnotebook import cell_lines, reads_as_text_notebook
from pytest_notebooks.review.changes import TextTemplateChange, pull_request_changes
from pytest_notebooks.review.fixturediff import FixtureChange
from tests.gitrepo import repo_with_identity
from tests.notebooks import write_notebook
from tests.project import Project

jupytext = pytest.importorskip("jupytext", reason="text notebooks need the jupytext extra (pytest-notebooks[jupytext])")

PERCENT = """\
# %% [markdown]
# # Rows per region

# %% tags=["parameters"]
region_code = "luna"
rows = 3

# %%
total = rows * 2
print(region_code, total)

# %%
assert total == 6, f"{region_code}: {total} rows"
"""
PERCENT_FIXTURE = "cases:\n  luna: {}\n  fr: {region_code: fr, rows: 4}\n"
FAILING_LINE = 13  # the assert, in PERCENT

LIGHT = """\
# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: light
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# + tags=["parameters"]
rows = 1
# -

print(rows + 1)
"""

MYST = """\
---
jupytext:
  text_representation:
    extension: .md
    format_name: myst
kernelspec:
  display_name: Python 3
  language: python
  name: python3
---

# Rows

```{code-cell} ipython3
:tags: [parameters]

rows = 1
```

```{code-cell} ipython3
assert rows == 5
```
"""
STRAY = "default::pytest_notebooks.errors.PytestNotebooksWarning"  # the outer run's filterwarnings = error


def test_which_text_files_read_as_notebooks() -> None:
    assert reads_as_text_notebook(PERCENT.encode(), ".py")
    assert reads_as_text_notebook(LIGHT.encode(), ".py")
    assert reads_as_text_notebook(b"#!/usr/bin/env python\n# ---\n# jupyter:\n#   jupytext: {}\n# ---\n", ".py")
    assert not reads_as_text_notebook(b"import os\n\nrows = 3  # a module, not a notebook\n", ".py")
    assert not reads_as_text_notebook(b"def test_x() -> None:\n    pass\n", ".py")
    assert reads_as_text_notebook(MYST.encode(), ".md")
    assert reads_as_text_notebook(b"---\nkernelspec:\n  name: python3\n---\n\n# Title\n", ".md")
    assert not reads_as_text_notebook(b"---\ntitle: a blog post\n---\n\n```python\nx = 1\n```\n", ".md")
    assert not reads_as_text_notebook(b"# README\n\njupytext: is mentioned, not front matter\n", ".md")


def test_each_cell_is_placed_at_its_line_in_the_text() -> None:
    cells = jupytext.reads(PERCENT, fmt="py:percent")["cells"]
    assert cell_lines(PERCENT, cells) == [2, 5, 9, 13]  # the markdown is placed through its comment marks
    myst = jupytext.reads(MYST, fmt="md")["cells"]
    assert cell_lines(MYST, myst) == [12, 17, 21]
    light = jupytext.reads(LIGHT, fmt="py")["cells"]
    assert cell_lines(LIGHT, light) == [14, 17]


def _write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)


@pytest.mark.kernel
def test_percent_light_and_myst_notebooks_run_and_are_saved_as_ipynb(pytester: pytest.Pytester) -> None:
    _write(
        pytester.path,
        {
            "nb/percent.py": PERCENT,
            "nb/percent.yaml": "cases:\n  luna: {}\n",
            "nb/light.py": LIGHT,
            "nb/light.yaml": "parameters: {rows: 2}\n",
            "nb/myst.md": MYST,
            "nb/myst.yaml": "parameters: {rows: 5}\n",
        },
    )
    result = pytester.runpytest("-v")
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(["*nb/light.py::default PASSED*", "*nb/myst.md::default PASSED*"])
    outputs = pytester.path / "notebook-outputs" / "nb"
    executed = json.loads((outputs / "light" / "default.ipynb").read_text())
    assert ["".join(output["text"]) for output in executed["cells"][-1]["outputs"]] == ["3\n"]  # rows=2, injected
    assert (outputs / "percent" / "luna.ipynb").is_file()
    results = json.loads((pytester.path / "notebook-outputs" / "results.json").read_text())
    record = next(n for n in results["notebooks"] if n["path"] == "nb/percent.py")
    committed = (pytester.path / "nb" / "percent.py").read_bytes()
    assert record["sha256"] == hashlib.sha256(committed).hexdigest()  # the text file's bytes: what is committed
    assert record["blob"] == hashlib.sha1(b"blob %d\0" % len(committed) + committed).hexdigest()  # noqa: S324 - git's


@pytest.mark.kernel
@pytest.mark.parametrize("workers", [[], ["-n", "2"]])
def test_a_failure_points_at_the_line_of_the_text_file(pytester: pytest.Pytester, workers: list[str]) -> None:
    _write(pytester.path, {"percent.py": PERCENT, "percent.yaml": PERCENT_FIXTURE})
    result = pytester.runpytest_subprocess(*workers)
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            "percent.py::fr failed at cell 4 (In [4]), id cell-4: AssertionError: fr: 8 rows",
            f"percent.py:{FAILING_LINE}: AssertionError: fr: 8 rows",
            "",
            '--> 1 | assert total == 6, f"{region_code}: {total} rows"',
            "*",
            "reproduce: jupytext --to ipynb --output - percent.py | papermill - "
            "notebook-outputs/percent/fr.repro.ipynb --cwd . -k python3 -p region_code fr -p rows 4 *",
            "FAILED percent.py::fr - cell 4 (In [4]): AssertionError: fr: 8 rows",
        ]
    )
    assert PERCENT.splitlines()[FAILING_LINE - 1].startswith("assert total == 6")
    results = json.loads((pytester.path / "notebook-outputs" / "results.json").read_text())
    assert results["git"] is None or isinstance(results["git"], dict)


@pytest.mark.kernel
def test_a_text_notebook_has_output_snapshots(pytester: pytest.Pytester) -> None:
    _write(pytester.path, {"percent.py": PERCENT, "percent.yaml": "snapshot: true\ncases:\n  luna: {}\n"})
    pytester.runpytest("--notebooks-update-snapshots").assert_outcomes(passed=1)
    assert (pytester.path / "__snapshots__" / "percent" / "luna.ipynb").is_file()
    pytester.runpytest().assert_outcomes(passed=1)
    (pytester.path / "percent.py").write_text(PERCENT.replace("print(region_code, total)", "print(total)"))
    changed = pytester.runpytest()
    changed.assert_outcomes(failed=1)
    changed.stdout.fnmatch_lines(["*outputs differ from the snapshot __snapshots__/percent/luna.ipynb*"])


def test_a_misspelt_parameter_is_a_collection_error(pytester: pytest.Pytester) -> None:
    _write(pytester.path, {"percent.py": PERCENT, "percent.yaml": "parameters: {rowz: 4}\n"})
    result = pytester.runpytest("--collect-only", "-q")
    result.stdout.fnmatch_lines(
        [
            "*ERROR collecting percent.py*",
            "percent.yaml:1: the defaults (top-level `parameters`): parameter 'rowz' is not declared in the "
            "parameters cell (cell 2) of percent.py; declared: region_code, rows",
            "  hint: did you mean 'rows'? *",
        ]
    )
    assert result.ret == pytest.ExitCode.INTERRUPTED


def test_a_paired_notebook_is_collected_once_as_its_ipynb(pytester: pytest.Pytester) -> None:
    paired = "# ---\n# jupyter:\n#   jupytext:\n#     formats: ipynb,py:percent\n# ---\n\n" + PERCENT
    _write(pytester.path, {"report.py": paired, "report.yaml": "cases:\n  luna: {}\n"})
    write_notebook(pytester.path / "report.ipynb", [('region_code = "luna"\nrows = 3', ["parameters"]), "print(rows)"])
    result = pytester.runpytest("--collect-only", "-q", "-W", "error::pytest_notebooks.errors.PytestNotebooksWarning")
    assert result.ret == pytest.ExitCode.OK
    assert [line for line in result.stdout.lines if "::" in line] == ["report.ipynb::luna"]
    assert "warning" not in result.stdout.str()


@pytest.mark.filterwarnings(STRAY)
def test_a_module_with_a_same_named_yaml_is_not_a_notebook(pytester: pytest.Pytester) -> None:
    _write(pytester.path, {"nb/settings.py": "rows = 3\n", "nb/settings.yaml": "parameters: {rows: 4}\n"})
    _write(pytester.path, {"nb/percent.py": PERCENT, "nb/percent.yaml": PERCENT_FIXTURE})
    result = pytester.runpytest("--collect-only", "-q")
    assert "settings.py::" not in result.stdout.str()
    result.stdout.fnmatch_lines(
        [
            "  nb/settings.yaml:0: PytestNotebooksWarning: settings.yaml reads as a notebook fixture, but it sits "
            "beside settings.py, which is not a notebook (collected: .ipynb, Jupytext .py with `# %%` cells or a "
            "jupytext header, .md with jupytext front matter): no case in it runs. Hint: write settings.ipynb "
            "(`jupytext --to ipynb settings.py`), mark the cells of a .py with `# %%` (pip install "
            "'pytest-notebooks[jupytext]'), or delete the fixture",
        ]
    )
    assert [line for line in result.stdout.lines if "::" in line] == ["nb/percent.py::luna", "nb/percent.py::fr"]
    assert result.ret == pytest.ExitCode.OK


# A notebook that leaves a mark when pytest imports it as a module (no kernel starts with --collect-only)
IMPORTED = '# %%\nimport pathlib\npathlib.Path("imported-" + __name__).write_text("")\n\n' + PERCENT


def _collected(result: pytest.RunResult) -> list[str]:
    return [line for line in result.stdout.lines if "::" in line and not line.startswith(("ERROR", "  "))]


def test_a_text_notebook_named_like_a_test_module_is_one_error_and_not_imported(pytester: pytest.Pytester) -> None:
    """``test_report.py`` with a fixture is a notebook and, by pytest's ``python_files``, a module of tests:
    pytest would import it (running the notebook's code in pytest's process) and the plugin run it too.
    Neither happens: one collection error says how to make it one or the other."""
    _write(
        pytester.path,
        {
            "nb/test_report.py": IMPORTED,
            "nb/test_report.yaml": PERCENT_FIXTURE,
            "nb/report.py": IMPORTED,
            "nb/report.yaml": PERCENT_FIXTURE,
            "test_cells.py": IMPORTED.split("\n\n")[0] + "\n\n\n# %%\ndef test_cells():\n    pass\n",  # no fixture
        },
    )
    result = pytester.runpytest("--collect-only", "-q")
    result.stdout.fnmatch_lines(
        [
            "*ERROR collecting nb/test_report.py*",
            "nb/test_report.py: is a Jupytext notebook with test_report.yaml beside it, and named like a module of "
            "tests (python_files: test_*.py *_test.py): neither run as a notebook nor imported by pytest",
            "  hint: to test it as a notebook, rename it and test_report.yaml to a name python_files does not "
            "match; to keep it a module of tests, rename test_report.yaml",
        ]
    )
    assert _collected(result) == ["nb/report.py::luna", "nb/report.py::fr", "test_cells.py::test_cells"]
    assert result.stdout.str().count("ERROR collecting") == 1
    assert sorted(path.name for path in pytester.path.glob("imported-*")) == ["imported-test_cells"]
    assert result.ret == pytest.ExitCode.INTERRUPTED

    ini = "[pytest]\nfilterwarnings = ignore::pytest.PytestAssertRewriteWarning\npython_files = check_*.py\n"
    pytester.makeini(ini)  # test_report.py is no longer named like a module of tests: a notebook
    _write(pytester.path, {"nb/check_report.py": IMPORTED, "nb/check_report.yaml": PERCENT_FIXTURE})
    result = pytester.runpytest("--collect-only", "-q")
    result.stdout.fnmatch_lines(["nb/check_report.py: is a Jupytext notebook *(python_files: check_*.py)*"])
    assert _collected(result) == [
        "nb/report.py::luna",
        "nb/report.py::fr",
        "nb/test_report.py::luna",
        "nb/test_report.py::fr",
    ]
    assert sorted(path.name for path in pytester.path.glob("imported-*")) == ["imported-test_cells"]


def test_python_files_patterns_match_as_pytest_matches_them(tmp_path: Path) -> None:
    from _pytest.pathlib import fnmatch_ex

    from pytest_notebooks.collect import named_like_test_module

    patterns = ["test_*.py", "*_test.py", "nb/check_*.py", "*.py"]
    paths = [Path("test_a.py"), Path("nb/a_test.py"), Path("nb/check_a.py"), Path("x/nb/check_a.py"), Path("a.md")]
    for path in [*paths, *(tmp_path / path for path in paths)]:
        for pattern in patterns:
            expected = path.suffix == ".py" and fnmatch_ex(pattern, path)
            assert named_like_test_module(path, [pattern]) == expected, (pattern, path)


def test_a_text_notebook_given_by_its_path_is_not_imported(pytester: pytest.Pytester) -> None:
    """pytest imports every ``.py`` file it is given; a text notebook given is the plugin's alone."""
    _write(pytester.path, {"nb/report.py": IMPORTED, "nb/report.yaml": PERCENT_FIXTURE})
    result = pytester.runpytest("--collect-only", "-q", "nb/report.py")
    assert _collected(result) == ["nb/report.py::luna", "nb/report.py::fr"]
    result = pytester.runpytest("--collect-only", "-q", "nb/report.py::fr")
    assert _collected(result) == ["nb/report.py::fr"]
    assert result.ret == pytest.ExitCode.OK
    assert not list(pytester.path.glob("imported-*"))


def test_doctest_modules_does_not_import_a_text_notebook(pytester: pytest.Pytester) -> None:
    """``--doctest-modules`` imports every ``.py`` file to find its doctests: not a text notebook with a
    fixture (its code would run in pytest's process); a module's doctests are still collected."""
    _write(
        pytester.path,
        {
            "nb/report.py": IMPORTED,
            "nb/report.yaml": PERCENT_FIXTURE,
            "nb/helper.py": 'def double(x):\n    """\n    >>> double(2)\n    4\n    """\n    return 2 * x\n',
        },
    )
    result = pytester.runpytest("--collect-only", "-q", "--doctest-modules")
    assert _collected(result) == ["nb/helper.py::helper.double", "nb/report.py::luna", "nb/report.py::fr"]
    assert not list(pytester.path.glob("imported-*"))
    assert result.ret == pytest.ExitCode.OK


def test_collecting_ipynb_notebooks_does_not_import_jupytext(pytester: pytest.Pytester) -> None:
    write_notebook(pytester.path / "nb.ipynb", [("rows = 1", ["parameters"])])
    (pytester.path / "nb.yaml").write_text("parameters: {rows: 2}\n")
    (pytester.path / "helper.py").write_text("rows = 1\n")
    (pytester.path / "conftest.py").write_text(
        "import sys\n\n\ndef pytest_collection_finish(session):\n"
        "    print('jupytext imported:', 'jupytext' in sys.modules)\n"
    )
    result = pytester.runpytest_subprocess("--collect-only", "-q", "-s")
    result.stdout.fnmatch_lines(["nb.ipynb::default", "jupytext imported: False"])


def test_without_jupytext_a_text_notebook_is_one_collection_error(
    pytester: pytest.Pytester, tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    shadow = tmp_path_factory.mktemp("no-jupytext")
    (shadow / "jupytext.py").write_text("raise ImportError('No module named jupytext (simulated)')\n")
    monkeypatch.setenv("PYTHONPATH", str(shadow))
    _write(pytester.path, {"percent.py": PERCENT, "percent.yaml": PERCENT_FIXTURE})
    result = pytester.runpytest_subprocess("--collect-only", "-q")
    result.stdout.fnmatch_lines(
        [
            "*ERROR collecting percent.py*",
            "percent.py: is a Jupytext text notebook with a fixture beside it, but jupytext cannot be imported "
            "(No module named jupytext (simulated))",
            "  hint: pip install 'pytest-notebooks[jupytext]', or convert it: `jupytext --to ipynb percent.py`",
            "*1 error*",
        ]
    )
    assert "warning" not in result.stdout.str().lower()
    assert result.stdout.str().count("ERROR collecting") == 1


def test_the_review_shows_a_text_diff_of_a_changed_text_template(tmp_path: Path) -> None:
    repo = repo_with_identity(tmp_path)
    _write(tmp_path, {"report.py": PERCENT, "report.yaml": PERCENT_FIXTURE, "helper.py": "x = 1\n"})
    repo.git.add("-A")
    repo.index.commit("base")
    repo.git.branch("base")
    _write(tmp_path, {"report.py": PERCENT.replace("rows * 2", "rows * 3"), "helper.py": "x = 2\n"})
    _write(tmp_path, {"report.yaml": PERCENT_FIXTURE.replace("rows: 4", "rows: 5")})
    repo.git.add("-A")
    repo.index.commit("head")
    changes = pull_request_changes(tmp_path, "base")
    assert [type(c).__name__ for c in changes] == ["TextTemplateChange", "FixtureChange"]  # helper.py: no fixture
    fixture = changes[1]
    assert isinstance(fixture, FixtureChange)
    assert fixture.notebook == "report.py"
    change = changes[0]
    assert isinstance(change, TextTemplateChange)
    assert change.summary() == "modified, 1 line added, 1 removed (text notebook)"
    assert change.diff.lines("") == [
        "--- a/report.py",
        "+++ b/report.py",
        "@@ -7,5 +7,5 @@",
        " ",
        " # %%",
        "-total = rows * 2",
        "+total = rows * 3",
        " print(region_code, total)",
        " ",
    ]


@pytest.mark.kernel
def test_a_text_template_is_promoted_byte_for_byte(project: Project) -> None:
    _write(project.root, {"etl/report.py": PERCENT, "etl/report.yaml": "cases:\n  luna: {}\n"})
    project.commit('[tool.nbpromote]\ntext_templates = "text"\n')
    tested = project.pytest("-n", "2")  # under xdist the results file still gets the commit
    assert tested.returncode == 0, tested.stdout
    assert project.results()["git"]["commit"] == project.repo.head.commit.hexsha
    promoted = project.promote()
    assert promoted.code == 0, promoted.text
    live = project.root / "live"
    committed = project.repo.git.show("HEAD:etl/report.py").encode() + b"\n"
    assert (live / "etl" / "report.py").read_bytes() == committed == PERCENT.encode()
    digest = hashlib.sha256(committed).hexdigest()
    assert (live / ".nbpromote" / "objects" / f"{digest}.py").read_bytes() == committed  # named as it is live
    current = json.loads((live / ".nbpromote" / "current.json").read_text())
    release = json.loads((live / ".nbpromote" / "releases" / f"{current['release']}.json").read_text())
    entry = release["templates"]["etl/report.py"]
    assert (entry["sha256"], entry["object"], entry["cases"]) == (digest, digest, ["luna"])
    assert sys.executable  # the promotion ran in this process (nbpromote's main), the tests in a subprocess


def test_which_notebook_of_a_name_is_collected(tmp_path: Path) -> None:
    from pytest_notebooks.cases.textnotebook import collected_text_notebook

    files = {"x.py": PERCENT, "x.md": MYST, "x.yaml": "parameters: {rows: 2}\n", "y.md": MYST, "y.yaml": ""}
    _write(tmp_path, files)

    def kind(name: str) -> str:
        return "file" if Path(name).name in files else ""

    def collected(name: str) -> bool:
        path = str(tmp_path / name)
        return collected_text_notebook(path, (path.rsplit(".", 1)[0] + ".yaml",), kind)

    assert collected("x.py")
    assert not collected("x.md")  # x.py comes first
    assert collected("y.md")
    files["x.ipynb"] = "{}"
    assert not collected("x.py")  # x.ipynb comes first: a paired notebook is tested once, as its .ipynb
