"""The pure parts of nbpromote, called directly: stamping, planning, target URLs and settings."""

from __future__ import annotations

import difflib
import json
from pathlib import Path

import pytest

from pytest_notebooks.errors import TargetError, UsageError
from pytest_notebooks.promote.models import Action, Drift, Head, Manifest, Outputs, TemplateEntry
from pytest_notebooks.promote.plan import plan_promotion, plan_rollback
from pytest_notebooks.promote.settings import find_config, parse_target
from pytest_notebooks.promote.stamp import Provenance, provenance_of, stamp, unstamp
from tests.notebooks import PARAMS, write_notebook

PROVENANCE = Provenance(
    commit="c0ffee" * 6 + "abcd",
    sha256="ab" * 32,
    release="0001-20261126T050000Z-c0ffeec",
    promoted_at="2026-11-26T05:00:00Z",
    source_path="notebooks/vid_agg.ipynb",
)


# -- stamp ---------------------------------------------------------------------------------------------


def test_stamp_adds_only_the_provenance_in_nbformats_layout(tmp_path: Path) -> None:
    source = write_notebook(tmp_path / "n.ipynb", [PARAMS, "print('é')"]).read_bytes()
    published = stamp(source, PROVENANCE)
    assert provenance_of(published) == PROVENANCE.to_json()
    assert unstamp(json.loads(published)) == json.loads(source)
    diff = list(difflib.ndiff(source.decode().splitlines(), published.decode().splitlines()))
    removed = [line[2:] for line in diff if line.startswith("- ")]
    added = [line[2:] for line in diff if line.startswith("+ ")]
    assert removed == []  # a pure insertion: the stamp and the comma that separates it
    assert added[:3] == ["  },", '  "pytest_notebooks": {', '   "provenance": {']
    assert len(added) == 10
    assert "'é'" in published.decode()  # not escaped, as nbformat writes it


@pytest.mark.parametrize("layout", [{"indent": 2}, {"indent": 1, "sort_keys": True, "ensure_ascii": True}])
def test_stamp_keeps_other_json_layouts(layout: dict[str, object]) -> None:
    document = {"cells": [{"cell_type": "code", "source": "x = 'ü'", "outputs": [], "metadata": {}}], "metadata": {}}
    source = json.dumps(document, **layout).encode()  # type: ignore[arg-type]
    published = stamp(source, PROVENANCE)
    assert published.startswith(source[:20])
    assert unstamp(json.loads(published)) == document
    assert json.dumps(json.loads(published), **layout).encode() == published  # type: ignore[arg-type]


def test_stamp_reserialises_an_unknown_layout_and_keeps_other_metadata() -> None:
    source = b'{"cells": [], "metadata": {"pytest_notebooks": {"case": "fr"}, "kernelspec": {"name": "python3"}},' + (
        b'  "nbformat": 4, "nbformat_minor": 5}'
    )
    published = stamp(source, PROVENANCE)
    assert published.startswith(b'{\n "cells": [],\n "metadata": {')
    document = json.loads(published)
    assert document["metadata"]["pytest_notebooks"]["case"] == "fr"
    assert unstamp(document) == json.loads(source)


def test_stamp_clears_outputs_on_request() -> None:
    cell = {"cell_type": "code", "source": "1", "outputs": [{"output_type": "stream"}], "execution_count": 4}
    source = json.dumps({"cells": [cell, {"cell_type": "markdown", "source": "# t"}], "metadata": {}}).encode()
    published = json.loads(stamp(source, Provenance(**{**PROVENANCE.__dict__, "outputs": Outputs.CLEARED})))
    assert published["cells"][0]["outputs"] == []
    assert published["cells"][0]["execution_count"] is None
    assert "outputs" not in published["cells"][1]
    assert published["metadata"]["pytest_notebooks"]["provenance"]["outputs"] == "cleared"


@pytest.mark.parametrize("source", [b"not json", b'{"metadata": {}}', b"[1, 2]"])
def test_stamp_refuses_what_is_not_a_notebook(source: bytes) -> None:
    with pytest.raises(ValueError, match=r"notebook|Expecting value"):
        stamp(source, PROVENANCE)


# -- plan ----------------------------------------------------------------------------------------------


def entry(sha: str, release: str = "r1", object_: str | None = None, outputs: Outputs = Outputs.KEPT) -> TemplateEntry:
    return TemplateEntry(
        source_path=f"notebooks/{sha}.ipynb",
        sha256=sha,
        size=1,
        object=object_ or f"obj-{sha}-{release}",
        object_size=2,
        published_in=release,
        commit=f"commit-{release}",
        outputs=outputs,
    )


def manifest(templates: dict[str, TemplateEntry], retired: dict[str, TemplateEntry] | None = None) -> Manifest:
    return Manifest(
        release="r1",
        sequence=1,
        kind="promote",
        created="t",
        commit="c",
        branch=None,
        tested_at=None,
        previous=None,
        rollback_of=None,
        source_root="notebooks",
        templates=templates,
        retired=retired or {},
        changes={},
    )


def actions(plan: object) -> dict[str, Action]:
    return {change.key: change.action for change in plan.changes}  # type: ignore[attr-defined]


def test_plan_first_promotion_adds_everything() -> None:
    plan = plan_promotion({"a.ipynb": entry("a", "r2"), "b.ipynb": entry("b", "r2")}, None)
    assert actions(plan) == {"a.ipynb": Action.ADD, "b.ipynb": Action.ADD}
    assert not plan.empty
    assert plan.refusals == ()


def test_plan_compares_sources_and_keeps_the_live_bytes_of_unchanged_ones() -> None:
    current = manifest({"a.ipynb": entry("a"), "b.ipynb": entry("b"), "gone.ipynb": entry("g")})
    wanted = {"a.ipynb": entry("a", "r2"), "b.ipynb": entry("b2", "r2"), "new.ipynb": entry("n", "r2")}
    plan = plan_promotion(wanted, current)
    assert actions(plan) == {
        "a.ipynb": Action.KEEP,
        "b.ipynb": Action.CHANGE,
        "gone.ipynb": Action.RETIRE,
        "new.ipynb": Action.ADD,
    }
    kept = next(c.after for c in plan.changes if c.key == "a.ipynb")
    assert kept is not None
    assert (kept.object, kept.published_in, kept.commit) == ("obj-a-r1", "r1", "commit-r1")
    assert plan_promotion(wanted, current, prune=True).changes[2].action is Action.PRUNE


def test_plan_with_nothing_changed_is_empty_and_outputs_mode_counts() -> None:
    current = manifest({"a.ipynb": entry("a")}, retired={"old.ipynb": entry("o")})
    assert plan_promotion({"a.ipynb": entry("a", "r2")}, current).empty
    cleared = plan_promotion({"a.ipynb": entry("a", "r2", outputs=Outputs.CLEARED)}, current)
    assert actions(cleared)["a.ipynb"] is Action.CHANGE
    assert actions(cleared)["old.ipynb"] is Action.KEEP_RETIRED


def test_plan_refuses_drift_unless_told_to_overwrite() -> None:
    current = manifest({"a.ipynb": entry("a"), "b.ipynb": entry("b"), "gone.ipynb": entry("g")})
    wanted = {"a.ipynb": entry("a", "r2"), "b.ipynb": entry("b2", "r2")}
    drift = {
        key: Drift(key, "etag-1", Head("etag-hand", "2026-11-26T05:00:00+00:00"))
        for key in ("a.ipynb", "b.ipynb", "gone.ipynb")
    }
    plan = plan_promotion(wanted, current, drift=drift)
    assert plan.refusals == tuple(
        f"{key}: drift: the live object changed outside nbpromote "
        "(ETag etag-hand, modified 2026-11-26T05:00:00+00:00; release recorded etag-1)"
        for key in ("a.ipynb", "b.ipynb")  # a retired key left in place is not nbpromote's to check
    )
    overwrite = plan_promotion(wanted, current, drift=drift, overwrite_drift=True)
    assert overwrite.refusals == ()
    assert actions(overwrite)["a.ipynb"] is Action.RESTORE
    assert actions(overwrite)["b.ipynb"] is Action.CHANGE


def test_plan_refuses_a_live_template_that_lost_its_fixture() -> None:
    current = manifest({"a.ipynb": entry("a"), "b.ipynb": entry("b")})
    plan = plan_promotion({"a.ipynb": entry("a", "r2")}, current, untested=frozenset({"b.ipynb", "scratch.ipynb"}))
    assert len(plan.refusals) == 1
    assert plan.refusals[0].startswith("b.ipynb: live since release r1, but its notebook notebooks/b.ipynb has no")


def test_plan_rollback_compares_published_objects() -> None:
    old = manifest({"a.ipynb": entry("a"), "b.ipynb": entry("b")})
    current = manifest(
        {"a.ipynb": entry("a", object_="obj-a-r1"), "b.ipynb": entry("b2", "r2"), "c.ipynb": entry("c", "r2")}
    )
    plan = plan_rollback(old, current)
    assert actions(plan) == {"a.ipynb": Action.KEEP, "b.ipynb": Action.CHANGE, "c.ipynb": Action.RETIRE}
    changed = next(c.after for c in plan.changes if c.key == "b.ipynb")
    assert changed == old.templates["b.ipynb"]  # the old bytes, not a new stamp


def test_plan_revives_a_retired_template_without_rewriting_it() -> None:
    current = manifest({}, retired={"a.ipynb": entry("a")})
    plan = plan_promotion({"a.ipynb": entry("a", "r2")}, current)
    assert actions(plan) == {"a.ipynb": Action.REVIVE}
    assert not plan.empty


# -- target URLs and [tool.nbpromote] -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "url", "prefix"),
    [
        ("s3://etlbucket/jobs/templates/", "s3://etlbucket/jobs/templates/", "jobs/templates/"),
        ("s3://etlbucket/jobs/templates", "s3://etlbucket/jobs/templates/", "jobs/templates/"),
        ("s3://etlbucket", "s3://etlbucket/", ""),
        ("S3://etl.bucket-1/x/", "s3://etl.bucket-1/x/", "x/"),
    ],
)
def test_s3_targets(text: str, url: str, prefix: str) -> None:
    target = parse_target(text, Path("/"))
    assert (target.url, target.prefix, target.is_s3) == (url, prefix, True)


@pytest.mark.parametrize(
    "text",
    [
        "s3://",
        "s3:///x",
        "s3://ab/x",
        "s3://UPPER/x",
        "s3://a..b/x",
        "s3://bucket/a//b/",
        "s3://bucket/../x",
        "s3://b-1/x?y",
    ],
)
def test_bad_s3_targets(text: str) -> None:
    with pytest.raises(TargetError, match=r"^bad target"):
        parse_target(text, Path("/"))


def test_local_targets(tmp_path: Path) -> None:
    assert parse_target("live", tmp_path).path == tmp_path / "live"
    assert parse_target("sub/../live", tmp_path).path == tmp_path / "live"
    assert parse_target(f"file://{tmp_path}/live", Path("/elsewhere")).path == tmp_path / "live"
    assert parse_target(f"file://localhost{tmp_path}/live", Path("/")).url == f"{(tmp_path / 'live').as_uri()}/"
    with pytest.raises(TargetError, match=r"the parent directory .* does not exist; create it first"):
        parse_target("no/such/dir", tmp_path)
    (tmp_path / "file").write_text("x")
    with pytest.raises(TargetError, match="exists and is not a directory"):
        parse_target("file", tmp_path)


def test_find_config_takes_the_nearest_table_up_to_the_repository_root(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[tool.nbpromote]\ntarget = "outside"\n')
    repo = tmp_path / "repo"
    (repo / "sub" / "deeper").mkdir(parents=True)
    (repo / "pyproject.toml").write_text(
        '[tool.nbpromote]\ntarget = "s3://b-1/x/"\nsource_root = "notebooks"\nclear_outputs = true\n'
    )
    (repo / "sub" / "pyproject.toml").write_text("[project]\nname = 'no-table-here'\n")
    config = find_config(repo / "sub" / "deeper", repo)
    assert config.path == repo / "pyproject.toml"
    assert (config.target, config.source_root, config.clear_outputs) == ("s3://b-1/x/", repo / "notebooks", True)
    assert find_config(repo / "sub", repo / "sub").path is None  # stops at the repository root


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ("target = 1\n", "target must be a string"),
        ('clear_outputs = "yes"\n', "clear_outputs must be true or false"),
        ("prune = true\n", r"unknown key\(s\) in \[tool.nbpromote\]: prune; known keys: target, source_root"),
    ],
)
def test_bad_config(tmp_path: Path, table: str, message: str) -> None:
    (tmp_path / "pyproject.toml").write_text("[tool.nbpromote]\n" + table)
    with pytest.raises(UsageError, match=message):
        find_config(tmp_path, tmp_path)
