"""A rollback sticks (issue 24): the next promotion holds back what it rolled back, until the source changes.

Through ``nbpromote`` as a user types it, in real git repositories, against a local directory and a
real S3 server (moto over HTTP).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from pytest_notebooks.promote.models import HIDDEN, Manifest
from tests.promote_repo import (
    REPORT,
    VID_AGG,
    NotebookRepo,
    Run,
    change,
    live_stamp,
    nbpromote,
    promoted,
    two_templates,
)

if TYPE_CHECKING:
    from tests.s3server import S3

pytest_plugins = ("tests.s3server",)

Get = Callable[[str], "bytes | None"]


@pytest.fixture(params=["local", "s3"])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, Get]:
    """A target URL and how to read a key of it, as the scheduler would."""
    if request.param == "local":
        root = tmp_path / "live"
        return str(root), lambda key: (root / key).read_bytes() if (root / key).is_file() else None
    s3: S3 = request.getfixturevalue("s3")
    return f"s3://{s3.bucket}/jobs/templates/", lambda key: s3.get("jobs/templates/" + key)


@pytest.fixture
def repo(tmp_path: Path) -> NotebookRepo:
    return two_templates(tmp_path / "repo")


def manifest(get: Get, release: str) -> Manifest:
    data = get(f"{HIDDEN}releases/{release}.json")
    assert data is not None
    return Manifest.from_json(json.loads(data))


def test_a_rollback_sticks_until_the_template_changes(repo: NotebookRepo, target: tuple[str, Get]) -> None:
    url, get = target

    def run(*args: str) -> Run:
        return nbpromote("-C", repo.root, "--target", url, *args)

    first = promoted(run())
    good = get("vid_agg.ipynb")
    change(repo, VID_AGG, "broken")  # the merge that breaks production
    second = promoted(run())
    broken = manifest(get, second).templates["vid_agg.ipynb"].sha256

    rolled = nbpromote("rollback", "1", "-C", repo.root, "--target", url)
    third = promoted(rolled)
    assert get("vid_agg.ipynb") == good
    assert (
        f"  hold: {VID_AGG}  not promoted while its source is sha256 {broken[:12]} (release {third} rolled it "
        f"back from release {second}): the next promotions hold it back until its source changes, or "
        f"nbpromote release-hold {VID_AGG}"
    ) in rolled.out
    holds = manifest(get, third).holds
    assert [(h.key, h.sha256, h.source_path, h.set_in, h.rolled_back_from) for h in holds] == [
        ("vid_agg.ipynb", broken, VID_AGG, third, second)
    ]

    # an unrelated change is merged, tested and promoted: the rolled-back template stays rolled back
    change(repo, REPORT, "v2")
    line = (
        f"  {VID_AGG}: held back: release {third} rolled it back from these bytes (sha256 {broken[:12]}); "
        f"change the template, or release the hold: nbpromote release-hold {VID_AGG}"
    )
    dry = run("--dry-run")
    assert dry.code == 5, dry.text
    assert line in dry.out.splitlines()
    result = run()
    assert result.code == 5, result.text
    fourth = result.out.split("promoted release ")[1].split()[0]
    assert "  = vid_agg.ipynb  unchanged" in result.out
    assert "  ~ report.ipynb   changed" in result.out
    assert result.out.splitlines()[-2:] == ["held back 1 notebook (what is live for it stays live):", line]
    assert get("vid_agg.ipynb") == good
    assert live_stamp(get("report.ipynb"))["release"] == fourth
    assert manifest(get, fourth).holds == holds  # carried forward
    again = run()
    assert again.code == 5, again.text  # nothing else to do, still held
    assert "nothing to do" in again.out
    assert line in again.out.splitlines()

    status = nbpromote("status", "-C", repo.root, "--target", url)
    assert status.code == 0, status.text
    assert (
        f"  hold: {VID_AGG}  not promoted while its source is sha256 {broken[:12]} (release {third} rolled it "
        f"back from release {second}); nbpromote release-hold {VID_AGG} releases it"
    ) in status.out.splitlines()
    history = nbpromote("history", "-C", repo.root, "--target", url)
    lines = history.out.splitlines()
    assert lines[lines.index(next(x for x in lines if x.startswith(third))) + 1] == (
        f"  hold set: {VID_AGG}  sha256 {broken[:12]}"
    )

    # the template is fixed: new bytes are promoted, and the hold is gone
    change(repo, VID_AGG, "fixed")
    fixed = run()
    fifth = promoted(fixed)
    assert "  ~ vid_agg.ipynb  changed" in fixed.out
    assert live_stamp(get("vid_agg.ipynb"))["release"] == fifth
    assert manifest(get, fifth).holds == ()
    history = nbpromote("history", "-C", repo.root, "--target", url)
    assert (
        f"  hold dropped: its source changed: {VID_AGG}  sha256 {broken[:12]} (set by release {third})"
        in history.out.splitlines()
    )
    assert "hold:" not in nbpromote("status", "-C", repo.root, "--target", url).out
    assert first.startswith("0001-")


def test_release_hold_lets_the_next_promotion_publish_it(repo: NotebookRepo, target: tuple[str, Get]) -> None:
    url, get = target

    def run(*args: str) -> Run:
        return nbpromote("-C", repo.root, "--target", url, *args)

    promoted(run())
    change(repo, VID_AGG, "v2")
    second = promoted(run())
    rolled_back = get("vid_agg.ipynb")
    third = promoted(nbpromote("rollback", "1", "-C", repo.root, "--target", url))
    assert run().code == 5  # vid_agg.ipynb held back, report.ipynb unchanged
    assert get("vid_agg.ipynb") != rolled_back

    unknown = nbpromote("release-hold", REPORT, "-C", repo.root, "--target", url)
    assert unknown.code == 4, unknown.text
    assert f"nbpromote: refused: {REPORT}: no rollback holds it back on " in unknown.err
    assert f"(holds: {VID_AGG})" in unknown.err

    dry = nbpromote("release-hold", VID_AGG, "-C", repo.root, "--target", url, "--dry-run")
    assert dry.code == 0, dry.text
    assert "dry run: would make release 0004-" in dry.out
    assert manifest(get, third).holds  # nothing written: still held
    released = nbpromote("--target", url, "release-hold", VID_AGG, "-C", repo.root)
    assert released.code == 0, released.text
    assert f"  hold: {VID_AGG}  not promoted while its source is sha256" in released.out
    fourth = released.out.split("as release ")[1].split(":")[0]
    assert released.out.endswith(
        f"released 1 hold as release {fourth}: the next promotion publishes these templates again when they pass\n"
    )
    assert manifest(get, fourth).holds == ()
    assert manifest(get, fourth).kind == "release-hold"
    assert get("vid_agg.ipynb") != rolled_back  # no live key written
    history = nbpromote("history", "-C", repo.root, "--target", url)
    assert history.out.startswith(f"{fourth} (hold released, ")
    assert f"  hold released: {VID_AGG}  sha256 " in history.out
    again = nbpromote("release-hold", VID_AGG, "-C", repo.root, "--target", url)
    assert again.code == 4

    result = run()
    fifth = promoted(result)
    assert "  ~ vid_agg.ipynb  changed" in result.out
    stamp = live_stamp(get("vid_agg.ipynb"))
    assert (stamp["release"], stamp["sha256"]) == (fifth, manifest(get, second).templates["vid_agg.ipynb"].sha256)
    assert fifth.startswith("0005-")


def test_holds_survive_a_second_rollback_and_rolling_back_to_held_bytes_releases_them(
    repo: NotebookRepo, target: tuple[str, Get]
) -> None:
    url, get = target

    def run(*args: str) -> Run:
        return nbpromote("-C", repo.root, "--target", url, *args)

    promoted(run())
    change(repo, VID_AGG, "v2")
    second = promoted(run())
    change(repo, VID_AGG, "v3")
    third = promoted(run())
    v2, v3 = (manifest(get, r).templates["vid_agg.ipynb"].sha256 for r in (second, third))
    fourth = promoted(nbpromote("rollback", "2", "-C", repo.root, "--target", url))
    assert [h.sha256 for h in manifest(get, fourth).holds] == [v3]
    fifth = promoted(nbpromote("rollback", "1", "-C", repo.root, "--target", url))
    assert sorted(h.sha256 for h in manifest(get, fifth).holds) == sorted([v2, v3])
    assert run().code == 5  # git still has v3: held
    sixth = promoted(nbpromote("rollback", "2", "-C", repo.root, "--target", url))
    # rolling back to v2 is a decision to run v2: that hold goes, and v1's bytes are held now
    assert sorted(h.sha256 for h in manifest(get, sixth).holds) == sorted(
        [v3, manifest(get, fifth).templates["vid_agg.ipynb"].sha256]
    )


def test_a_manifest_without_holds_reads_as_none(repo: NotebookRepo, target: tuple[str, Get]) -> None:
    url, get = target
    first = promoted(nbpromote("-C", repo.root, "--target", url))
    document = json.loads(get(f"{HIDDEN}releases/{first}.json") or b"")
    assert document["holds"] == []
    del document["holds"]  # as nbpromote wrote it before holds
    assert Manifest.from_json(document).holds == ()


def test_all_or_nothing_refuses_a_run_with_a_held_template(repo: NotebookRepo, target: tuple[str, Get]) -> None:
    url, _ = target
    promoted(nbpromote("-C", repo.root, "--target", url))
    change(repo, VID_AGG, "v2")
    promoted(nbpromote("-C", repo.root, "--target", url))
    promoted(nbpromote("rollback", "1", "-C", repo.root, "--target", url))
    change(repo, REPORT, "v2")
    result = nbpromote("-C", repo.root, "--target", url, "--all-or-nothing")
    assert result.code == 4, result.text
    assert "all or nothing: no notebook goes live while one is held back; a rollback holds these bytes" in result.err


def test_a_held_template_holds_back_its_promotion_group(repo: NotebookRepo, target: tuple[str, Get]) -> None:
    url, _ = target
    (repo.root / "pyproject.toml").write_text(
        '[tool.nbpromote]\nsource_root = "notebooks"\n'
        'groups = {pipeline = ["notebooks/vid_agg.ipynb", "notebooks/report.ipynb"]}\n'
    )
    repo.commit("one group")
    repo.results()
    promoted(nbpromote("-C", repo.root, "--target", url))
    change(repo, VID_AGG, "v2")
    promoted(nbpromote("-C", repo.root, "--target", url))
    promoted(nbpromote("rollback", "1", "-C", repo.root, "--target", url))
    change(repo, REPORT, "v2")
    result = nbpromote("-C", repo.root, "--target", url)
    assert result.code == 4, result.text  # every notebook is held back
    assert (
        f"  {REPORT}: held back with its promotion group 'pipeline': a rollback holds {VID_AGG} back"
        in result.err.splitlines()
    )
