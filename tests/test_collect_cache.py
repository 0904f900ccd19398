"""The collection cache (cases/cache.py): a warm run skips parsing, and no change can hide behind it.

Each test proves a hit the only way a collect-only run shows one: a slot is rewritten by hand with
the digests of the files on disk and a case id the fixture does not have. Used, the forged id is
collected; invalidated, the fixture's own ids are. Collection only: no kernel starts.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from pytest_notebooks.cases.cache import _GIVEN, _TYPES, DERIVING_MODULES, case_from_json, case_to_json
from pytest_notebooks.collect import PrinciplesItem, case_cache
from pytest_notebooks.errors import PytestNotebooksWarning
from pytest_notebooks.models import NotebookCase
from tests.notebooks import PARAMS, TWO_REGIONS, write_notebook

CACHE = Path(".pytest_cache", "d", "notebooks", "cases.json")
WARNING = "default::pytest_notebooks.errors.PytestNotebooksWarning"  # the outer run's filterwarnings = error


@pytest.fixture
def nb(pytester: pytest.Pytester) -> Path:
    """notebooks/vid_agg.ipynb with TWO_REGIONS, collected once: the cache holds its slot."""
    path = write_notebook(pytester.path / "notebooks" / "vid_agg.ipynb", [PARAMS, "x = 1"])
    path.with_suffix(".yaml").write_text(TWO_REGIONS)
    assert collected(pytester) == ["notebooks/vid_agg.ipynb::luna", "notebooks/vid_agg.ipynb::fr"]
    assert slots(pytester) == ["notebooks/vid_agg.ipynb"]
    return path


def collected(pytester: pytest.Pytester, *args: str) -> list[str]:
    result = pytester.runpytest("--collect-only", "-q", *args)
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()
    return [line for line in result.stdout.lines if "::" in line]


def stored(pytester: pytest.Pytester) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((pytester.path / CACHE).read_text())
    return data


def slots(pytester: pytest.Pytester) -> list[str]:
    return sorted(stored(pytester)["notebooks"])


def forge(pytester: pytest.Pytester, case_id: str = "forged", **stamp: str) -> None:
    """Every slot's cases renamed to ``case_id`` (their digests kept), and ``stamp`` fields changed."""
    data = stored(pytester)
    for slot in data["notebooks"].values():
        slot[3] = json.dumps([{**case, "case_id": case_id} for case in json.loads(slot[3])][:1])
    data["stamp"].update(stamp)
    (pytester.path / CACHE).write_text(json.dumps(data))


def cache_warnings(result: pytest.RunResult) -> list[str]:
    return [line for line in result.stdout.lines if "PytestNotebooksWarning: the collection cache" in line]


def edit_keeping_mtime(path: Path, old: str, new: str) -> None:
    """Replace ``old`` with ``new`` in ``path``, then put its mtime (and atime) back to the nanosecond."""
    before = path.stat()
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert path.stat().st_mtime_ns == before.st_mtime_ns


def test_a_warm_run_takes_the_cases_from_the_cache(pytester: pytest.Pytester, nb: Path) -> None:
    forge(pytester)
    assert collected(pytester) == ["notebooks/vid_agg.ipynb::forged"]  # the fixture was not parsed


def test_a_notebook_edited_without_an_mtime_change_is_read_again(pytester: pytest.Pytester, nb: Path) -> None:
    forge(pytester)
    edit_keeping_mtime(nb, "x = 1", "x = 2")
    assert collected(pytester) == ["notebooks/vid_agg.ipynb::luna", "notebooks/vid_agg.ipynb::fr"]
    forge(pytester)  # the slot now holds the new bytes' digests
    assert collected(pytester) == ["notebooks/vid_agg.ipynb::forged"]


def test_a_notebook_edit_that_breaks_the_fixture_is_an_error_at_once(pytester: pytest.Pytester, nb: Path) -> None:
    edit_keeping_mtime(nb, 'region_code = \\"luna\\"', 'region = \\"luna\\"')
    result = pytester.runpytest("--collect-only", "-q")
    result.stdout.fnmatch_lines(["*case 'luna': parameter 'region_code' is not declared in the parameters cell*"])
    assert result.ret == pytest.ExitCode.INTERRUPTED
    assert slots(pytester) == []  # an error is never kept: found again, with its message, next run
    result = pytester.runpytest("--collect-only", "-q")
    result.stdout.fnmatch_lines(["*case 'luna': parameter 'region_code' is not declared in the parameters cell*"])


def test_a_fixture_edited_without_an_mtime_change_is_read_again(pytester: pytest.Pytester, nb: Path) -> None:
    forge(pytester)
    edit_keeping_mtime(nb.with_suffix(".yaml"), "luna:", "mars:")
    assert collected(pytester) == ["notebooks/vid_agg.ipynb::mars", "notebooks/vid_agg.ipynb::fr"]


def test_a_fixture_renamed_to_yml_is_read_again(pytester: pytest.Pytester, nb: Path) -> None:
    """The same bytes under another name: a skip reason names the file, so the name is part of the key."""
    forge(pytester)
    nb.with_suffix(".yaml").rename(nb.with_suffix(".yml"))
    assert collected(pytester) == ["notebooks/vid_agg.ipynb::luna", "notebooks/vid_agg.ipynb::fr"]


@pytest.mark.parametrize("field", ["plugin", "code", "python", "yaml", "format"])
def test_a_cache_of_another_plugin_version_or_code_is_not_used(pytester: pytest.Pytester, nb: Path, field: str) -> None:
    """An upgrade of the plugin, an edit of its code in an editable install, another Python or PyYAML."""
    current = stored(pytester)["stamp"][field]
    forge(pytester, **{field: "0.0.1-other"})
    assert collected(pytester) == ["notebooks/vid_agg.ipynb::luna", "notebooks/vid_agg.ipynb::fr"]
    assert stored(pytester)["stamp"][field] == current  # written again by this version
    forge(pytester)
    assert collected(pytester) == ["notebooks/vid_agg.ipynb::forged"]


def test_the_version_in_the_stamp_is_the_plugins(
    pytester: pytest.Pytester, nb: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    forge(pytester)
    monkeypatch.setattr("pytest_notebooks.__version__", "99.0")
    items, _ = pytester.inline_genitems("-q")  # in this process, so that the patched version is read
    assert [item.nodeid for item in items] == ["notebooks/vid_agg.ipynb::luna", "notebooks/vid_agg.ipynb::fr"]
    assert stored(pytester)["stamp"]["plugin"] == "99.0"


def test_settings_collection_reads_apply_on_a_warm_run(pytester: pytest.Pytester, nb: Path) -> None:
    """The ini options collection reads (notebooks_lint, notebooks_principles) decide the principles
    item and its limits after the lookup: the cached cases depend on the two files alone."""
    forge(pytester)
    items, _ = pytester.inline_genitems("-o", "notebooks_lint=true", "-o", "notebooks_principles=max_branches = 3")
    assert [item.name for item in items] == ["forged", "principles"]
    principles = items[1]
    assert isinstance(principles, PrinciplesItem)
    assert principles.limits["max_branches"] == 3
    items, _ = pytester.inline_genitems("-o", "notebooks_lint=true", "-o", "notebooks_principles=max_branches = 4")
    assert isinstance(items[1], PrinciplesItem)
    assert items[1].limits["max_branches"] == 4
    assert collected(pytester) == ["notebooks/vid_agg.ipynb::forged"]


def test_the_cached_cases_equal_the_derived_ones(pytester: pytest.Pytester) -> None:
    """Every field, from a fixture that sets them all: a hit builds what a miss built."""
    write_notebook(pytester.path / "nb.ipynb", [PARAMS], kernel="python3")
    (pytester.path / "nb.yaml").write_text(
        "parameters: {run_date: '2018-01-01'}\n"
        "timeout: 60\ncell_timeout: 0\nkernel: python3\nsnapshot: true\nstrict: false\n"
        "snapshot_replace: {'\\d+': N}\nprinciples: {max_branches: 4}\n"
        "cases:\n"
        "  a: {region_code: fr, extra: [1, 2.5, null, {k: true}]}\n"
        "  b:\n    parameters: {region_code: de}\n    skip: true\n    xfail: not yet\n    snapshot: false\n"
    )
    cold, _ = pytester.inline_genitems()
    warm, _ = pytester.inline_genitems()
    assert [item.case for item in warm] == [item.case for item in cold]  # type: ignore[attr-defined]
    assert len(slots(pytester)) == 1


def test_a_corrupt_cache_is_one_warning_and_is_written_again(pytester: pytest.Pytester, nb: Path) -> None:
    (pytester.path / CACHE).write_text('{"stamp": {"format": "1"}, "notebooks": {"notebooks/vid_agg.ipynb": [')
    result = pytester.runpytest("--collect-only", "-q", "-W", WARNING)
    result.stdout.fnmatch_lines(["notebooks/vid_agg.ipynb::luna", "notebooks/vid_agg.ipynb::fr"])
    assert len(cache_warnings(result)) == 1, result.stdout.str()
    result.stdout.fnmatch_lines(
        [
            "*PytestNotebooksWarning: the collection cache .pytest_cache/d/notebooks/cases.json is not JSON (*): "
            "ignored, and written again",
        ]
    )
    assert result.ret == pytest.ExitCode.OK
    assert slots(pytester) == ["notebooks/vid_agg.ipynb"]  # written again
    result = pytester.runpytest("--collect-only", "-q", "-W", WARNING)
    assert cache_warnings(result) == []


def test_a_slot_it_cannot_have_written_is_one_warning(pytester: pytest.Pytester, nb: Path) -> None:
    data = stored(pytester)
    write_notebook(pytester.path / "notebooks" / "other.ipynb", [PARAMS])
    (pytester.path / "notebooks" / "other.yaml").write_text("")
    for key in data["notebooks"]:
        data["notebooks"][key][3] = '[{"case_id": 7, "parameters": {}}]'
    (pytester.path / CACHE).write_text(json.dumps(data))
    result = pytester.runpytest("--collect-only", "-q", "-W", WARNING)
    result.stdout.fnmatch_lines(
        ["notebooks/other.ipynb::default", "notebooks/vid_agg.ipynb::luna", "notebooks/vid_agg.ipynb::fr"]
    )
    assert len(cache_warnings(result)) == 1
    result.stdout.fnmatch_lines(["*cases.json holds a notebook entry it cannot have written (case_id is int)*"])
    assert slots(pytester) == ["notebooks/other.ipynb", "notebooks/vid_agg.ipynb"]


def test_an_unreadable_cache_is_one_warning(pytester: pytest.Pytester, nb: Path) -> None:
    (pytester.path / CACHE).unlink()
    (pytester.path / CACHE).mkdir()  # cannot be read, nor replaced
    result = pytester.runpytest("--collect-only", "-q", "-W", WARNING)
    result.stdout.fnmatch_lines(["notebooks/vid_agg.ipynb::luna", "notebooks/vid_agg.ipynb::fr"])
    assert len(cache_warnings(result)) == 1
    result.stdout.fnmatch_lines(["*cases.json cannot be read (Is a directory)*"])
    assert result.ret == pytest.ExitCode.OK


def test_cache_clear_starts_afresh(pytester: pytest.Pytester, nb: Path) -> None:
    forge(pytester)
    assert collected(pytester, "--cache-clear") == ["notebooks/vid_agg.ipynb::luna", "notebooks/vid_agg.ipynb::fr"]
    assert slots(pytester) == ["notebooks/vid_agg.ipynb"]


def test_without_the_cacheprovider_collection_is_the_same(pytester: pytest.Pytester) -> None:
    write_notebook(pytester.path / "notebooks" / "vid_agg.ipynb", [PARAMS])
    (pytester.path / "notebooks" / "vid_agg.yaml").write_text(TWO_REGIONS)
    for _ in range(2):
        lines = collected(pytester, "-p", "no:cacheprovider")
        assert lines == ["notebooks/vid_agg.ipynb::luna", "notebooks/vid_agg.ipynb::fr"]
    assert not (pytester.path / ".pytest_cache").exists()


def test_a_run_of_one_folder_keeps_the_other_folders_slots(pytester: pytest.Pytester, nb: Path) -> None:
    write_notebook(pytester.path / "other" / "b.ipynb", [PARAMS])
    (pytester.path / "other" / "b.yaml").write_text("")
    assert collected(pytester, "other") == ["other/b.ipynb::default"]
    assert slots(pytester) == ["notebooks/vid_agg.ipynb", "other/b.ipynb"]
    (pytester.path / "other" / "b.ipynb").unlink()  # a deleted notebook's slot goes at the next write
    write_notebook(pytester.path / "other" / "c.ipynb", [PARAMS])
    (pytester.path / "other" / "c.yaml").write_text("")
    assert collected(pytester, "other") == ["other/c.ipynb::default"]
    assert slots(pytester) == ["notebooks/vid_agg.ipynb", "other/c.ipynb"]


def skipped_notebooks(root: Path, count: int) -> None:
    """Notebooks whose one case is skipped by its fixture: an xdist run starts no kernel."""
    for index in range(count):
        write_notebook(root / f"nb{index}.ipynb", [PARAMS])
        (root / f"nb{index}.yaml").write_text("skip: collection only\ncases:\n  one: {}\n")


def test_xdist_workers_use_the_cache_and_one_writes_it(pytester: pytest.Pytester) -> None:
    """Every worker reads the cache; the first writes it (atomically); both collect the same items."""
    skipped_notebooks(pytester.path, 4)
    result = pytester.runpytest_subprocess("-n", "2", "-p", "no:randomly")
    result.assert_outcomes(skipped=4)
    assert slots(pytester) == [f"nb{index}.ipynb" for index in range(4)]
    forge(pytester)
    result = pytester.runpytest_subprocess("-n", "2", "-p", "no:randomly", "-rs", "-v")
    result.assert_outcomes(skipped=4)
    result.stdout.fnmatch_lines(["*nb0.ipynb::forged*"])
    (pytester.path / CACHE).write_text("{ torn")
    result = pytester.runpytest_subprocess("-n", "2", "-p", "no:randomly", "-W", WARNING)
    result.assert_outcomes(skipped=4)
    assert len(cache_warnings(result)) == 1  # both workers warned: one warning in the summary
    result.stdout.fnmatch_lines(["*the collection cache .pytest_cache/d/notebooks/cases.json is not JSON*"])
    assert slots(pytester) == [f"nb{index}.ipynb" for index in range(4)]


# ---------------------------------------------------------------- the slot's JSON, directly


def every_field_case(tmp_path: Path) -> NotebookCase:
    return NotebookCase(
        notebook=tmp_path / "a.ipynb",
        fixture=tmp_path / "a.yml",
        case_id="c.1",
        parameters={"s": "é", "n": 10**30, "f": 0.1, "b": False, "z": None, "l": [1, [2]], "d": {"k": {}}},
        timeout=float("inf"),
        cell_timeout=2.5,
        kernel="ir",
        notebook_kernel="python3",
        skip="",
        xfail="flaky",
        line=7,
        notebook_sha256="a" * 64,
        fixture_sha256="b" * 64,
        notebook_blob="c" * 40,
        fixture_blob="d" * 40,
        snapshot=False,
        snapshot_replace=(("\\d+", "N"),),
        declared_cases=("c.1", "c.2"),
        principles=(("max_branches", 4),),
        env=(("APP_MODE", "batch"),),
    )


def test_every_field_of_a_case_round_trips(tmp_path: Path) -> None:
    case = every_field_case(tmp_path)
    assert all(getattr(case, f.name) != f.default for f in dataclasses.fields(case))  # nothing left at its default
    text = json.dumps(case_to_json(case))
    back = case_from_json(json.loads(text), case.notebook, case.fixture, case.notebook_sha256, case.fixture_sha256)
    assert back == case
    bare = NotebookCase(notebook=case.notebook, fixture=case.fixture, case_id="x", parameters={})
    assert case_to_json(bare) == {"case_id": "x", "parameters": {}}  # defaults are not written


def test_every_field_of_a_case_is_kept_or_given() -> None:
    """A field added to NotebookCase must be added here too (models.py is part of the stamp)."""
    names = {f.name for f in dataclasses.fields(NotebookCase)}
    assert names == set(_TYPES) | set(_GIVEN)


@pytest.mark.parametrize(
    "case",
    [
        [],
        {"case_id": "a"},
        {"case_id": "a", "parameters": {}, "line": True},
        {"case_id": "a", "parameters": {}, "timeout": 5},
        {"case_id": "a", "parameters": {}, "principles": [["max_branches", "4"]]},
        {"case_id": "a", "parameters": {}, "declared_cases": [1]},
        {"case_id": "a", "parameters": {}, "unknown": 1},
    ],
)
def test_a_case_it_cannot_have_written_is_refused(tmp_path: Path, case: Any) -> None:
    with pytest.raises((TypeError, ValueError)):
        case_from_json(case, tmp_path / "a.ipynb", tmp_path / "a.yaml", "", "")


def test_the_stamp_covers_modules_that_exist() -> None:
    import importlib

    for name in DERIVING_MODULES:
        assert Path(str(importlib.import_module(name).__file__)).is_file()


def test_a_cache_directory_that_cannot_be_made_is_one_warning(tmp_path: Path) -> None:
    """A read-only checkout: collection goes on without the cache (the stand-in config has what
    case_cache reads)."""

    class ReadOnly:
        def mkdir(self, name: str) -> Path:
            raise PermissionError(13, "Permission denied")

    config: Any = SimpleNamespace(stash=pytest.Stash(), cache=ReadOnly(), rootpath=tmp_path)
    with pytest.warns(PytestNotebooksWarning, match=r"cannot be kept in pytest's cache directory \(Permission denied"):
        cache = case_cache(config)
    assert cache.path is None
    assert case_cache(config) is cache  # once a session
