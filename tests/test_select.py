"""Selection by change, shards, and merging the shards' results files."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import git
import pytest

from pytest_notebooks.cases.selection import affected_modules, imports_of, is_affected, module_names
from pytest_notebooks.errors import MergeError
from pytest_notebooks.results.merge import merge_documents
from pytest_notebooks.results.read import dumps
from pytest_notebooks.results.select import assign_shards
from tests.gitrepo import AUTHOR, init_repo
from tests.notebooks import PARAMS, write_notebook
from tests.records import results_document


def test_module_names_and_imports() -> None:
    assert module_names("lib/vidlib/agg.py") == {"lib.vidlib.agg", "vidlib.agg", "agg"}
    assert module_names("lib/vidlib/__init__.py") == {"lib.vidlib", "vidlib"}
    source = "%matplotlib inline\nimport os, vidlib.geo\nfrom vidlib import agg\nfrom . import local\n!ls"
    assert imports_of(source) == {"os", "vidlib.geo", "vidlib", "vidlib.agg"}
    assert imports_of("this is not python") == set()


def test_affected_modules_follow_imports_inside_the_repository() -> None:
    files = {
        "lib/vidlib/__init__.py": "",
        "lib/vidlib/data.py": "import sqlite3\n",
        "lib/vidlib/agg.py": "from vidlib import data\n",
        "lib/vidlib/report.py": "import csv\n",
    }
    affected = affected_modules(["lib/vidlib/data.py"], files)
    assert "vidlib.data" in affected
    assert "vidlib.agg" in affected  # imports data
    assert "vidlib.report" not in affected
    assert is_affected({"vidlib.agg"}, affected)
    assert is_affected({"vidlib"}, affected)  # the package: conservative
    assert not is_affected({"vidlib.report", "pandas"}, affected)
    assert affected_modules([], files) == set()


def test_shards_cover_every_case_exactly_once_and_are_stable() -> None:
    ids = [f"notebooks/nb{i}.ipynb::case{j}" for i in range(50) for j in range(3)]
    for durations in (None, {nodeid: float(len(nodeid) % 7) for nodeid in ids[:100]}):
        shards = assign_shards(ids, 4, durations)
        assert set(shards) == set(ids)
        assert set(shards.values()) == {1, 2, 3, 4}
        assert assign_shards(list(reversed(ids)), 4, durations) == shards
    timed = assign_shards(["a", "b", "c", "d"], 2, {"a": 10.0, "b": 6.0, "c": 5.0, "d": 1.0})
    assert timed == {"a": 1, "b": 2, "c": 2, "d": 1}  # longest first onto the least-loaded shard


def make_repo(pytester: pytest.Pytester) -> git.Repo:
    repo = init_repo(pytester.path)
    lib = pytester.path / "lib" / "vidlib"
    lib.mkdir(parents=True)
    (lib / "__init__.py").write_text("")
    (lib / "data.py").write_text("ROWS = 3\n")
    (lib / "agg.py").write_text("from vidlib import data\n\ndef total():\n    return data.ROWS\n")
    (lib / "report.py").write_text("TITLE = 'plays'\n")
    path_cell = "import sys\nsys.path.insert(0, '../lib')"
    write_notebook(pytester.path / "nb" / "agg.ipynb", [path_cell, PARAMS, "from vidlib import agg\nagg.total()"])
    write_notebook(pytester.path / "nb" / "report.ipynb", [path_cell, "import vidlib.report"])
    write_notebook(pytester.path / "nb" / "plain.ipynb", [PARAMS, "x = 1"])
    (pytester.path / "nb" / "agg.yaml").write_text("cases:\n  luna: {}\n  fr: {region_code: fr}\n")
    (pytester.path / "nb" / "report.yaml").write_text("")
    (pytester.path / "nb" / "plain.yaml").write_text("")
    (pytester.path / ".gitignore").write_text("notebook-outputs/\n__pycache__/\n")
    repo.git.add(A=True)
    repo.git.commit("-m", "base", env=AUTHOR)
    return repo


def collected(pytester: pytest.Pytester, *args: str) -> list[str]:
    result = pytester.runpytest("--collect-only", "-q", *args)
    assert result.ret in (pytest.ExitCode.OK, pytest.ExitCode.NO_TESTS_COLLECTED), result.stdout.str()
    return [line for line in result.stdout.lines if "::" in line]


def test_changed_since_selects_by_notebook_fixture_and_imported_module(pytester: pytest.Pytester) -> None:
    make_repo(pytester)
    assert collected(pytester, "--notebooks-changed-since", "HEAD") == []
    (pytester.path / "lib" / "vidlib" / "data.py").write_text("ROWS = 4\n")  # imported by agg.py
    assert collected(pytester, "--notebooks-changed-since", "HEAD") == ["nb/agg.ipynb::luna", "nb/agg.ipynb::fr"]
    (pytester.path / "nb" / "plain.yaml").write_text("cases:\n  only: {}\n")  # a fixture edit
    assert collected(pytester, "--notebooks-changed-since", "HEAD") == [
        "nb/agg.ipynb::luna",
        "nb/agg.ipynb::fr",
        "nb/plain.ipynb::only",
    ]
    (pytester.path / "lib" / "vidlib" / "report.py").write_text("TITLE = 'views'\n")
    assert "nb/report.ipynb::default" in collected(pytester, "--notebooks-changed-since", "HEAD")
    result = pytester.runpytest("--collect-only", "--notebooks-changed-since", "origin/main")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: --notebooks-changed-since: unknown revision 'origin/main'; fetch it first*"])


@pytest.mark.kernel
def test_shards_under_xdist_and_merged_results(pytester: pytest.Pytester) -> None:
    make_repo(pytester)
    pytester.makepyfile(test_unit="def test_unit():\n    pass\n")
    runs = {}
    for index in (1, 2):
        out = f"shard-{index}.json"
        result = pytester.runpytest_subprocess(
            "-n", "2", "--notebooks-shard", f"{index}/2", f"--notebooks-results={out}"
        )
        assert result.ret == 0, result.stdout.str()
        runs[index] = json.loads((pytester.path / out).read_text())
    ids = [{c["nodeid"] for c in runs[i]["cases"] if c["outcome"] != "not run"} for i in (1, 2)]
    assert not ids[0] & ids[1]
    for i in (1, 2):  # each shard's file lists the other shard's cases as not run
        assert {c["nodeid"] for c in runs[i]["cases"] if c["outcome"] == "not run"} == ids[2 - i]
    assert ids[0] | ids[1] == {
        "nb/agg.ipynb::luna",
        "nb/agg.ipynb::fr",
        "nb/report.ipynb::default",
        "nb/plain.ipynb::default",
    }
    merged = pytester.path / "merged.json"
    merge = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest_notebooks.results.cli",
            "merge",
            "-o",
            str(merged),
            "shard-1.json",
            "shard-2.json",
        ],
        cwd=pytester.path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert merge.returncode == 0, merge.stderr
    assert merge.stdout == f"nbresults: merged 2 files into {merged}: 4 passed\n"
    document = json.loads(merged.read_text())
    assert {c["nodeid"] for c in document["cases"]} == ids[0] | ids[1]
    agg = next(nb for nb in document["notebooks"] if nb["path"] == "nb/agg.ipynb")
    assert sorted(agg["cases"]) == ["fr", "luna"]
    assert agg["outcome"] == "passed"


def test_merge_refuses_results_of_different_commits() -> None:
    with pytest.raises(MergeError, match="different commits"):
        merge_documents([results_document(git={"commit": "a"}), results_document(git={"commit": "b"})])
    with pytest.raises(MergeError, match="no results files"):
        merge_documents([])


def test_durations_balance_shards(pytester: pytest.Pytester, tmp_path: Path) -> None:
    make_repo(pytester)
    durations = tmp_path / "results.json"
    session = {"id": "s", "state": "completed"}
    timings = {"nb/agg.ipynb::luna": 30.0, "nb/agg.ipynb::fr": 20.0, "nb/report.ipynb::default": 15.0}
    timings["nb/plain.ipynb::default"] = 1.0
    cases = [
        {
            "nodeid": n,
            "notebook": n.split("::")[0],
            "fixture": "f.yaml",
            "case": n.split("::")[1],
            "outcome": "passed",
            "duration": d,
            "notebook_sha256": "0" * 64,
            "fixture_sha256": "0" * 64,
        }
        for n, d in timings.items()
    ]
    durations.write_text(dumps(results_document(cases=cases, session=session)))
    first = collected(pytester, "--notebooks-shard", "1/2", f"--notebooks-durations={durations}")
    second = collected(pytester, "--notebooks-shard", "2/2", f"--notebooks-durations={durations}")
    assert first == ["nb/agg.ipynb::luna", "nb/plain.ipynb::default"]
    assert second == ["nb/agg.ipynb::fr", "nb/report.ipynb::default"]
