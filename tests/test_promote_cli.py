"""nbpromote as a user runs it, against a local directory and a real S3 server (moto over HTTP).

Every test runs on both stores unless it is about S3 itself. Repositories are real git
repositories; results files are written by the plugin's Recorder from hand-made records.
"""

from __future__ import annotations

import contextlib
import difflib
import json
import subprocess
import sys
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

import pytest_notebooks
from pytest_notebooks.errors import Conflict, Refused
from pytest_notebooks.promote.inputs import gather
from pytest_notebooks.promote.models import HIDDEN, POINTER_KEY, Head, Stored
from pytest_notebooks.promote.publish import Outcome, PublishOptions, promote, read_state
from pytest_notebooks.promote.settings import parse_target
from pytest_notebooks.promote.stamp import unstamp
from pytest_notebooks.promote.store import Store, open_store
from tests.promote_repo import (
    REPORT,
    RESULTS,
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


# -- the two kinds of target, seen from outside nbpromote ---------------------------------------------


@dataclass
class Live:
    """A target as the scheduler (and the operator with a console) sees it."""

    url: str
    get: Callable[[str], bytes | None]
    put_by_hand: Callable[[str, bytes], None]
    keys: Callable[[], list[str]]
    written: Callable[[str], object]  # changes whenever the key is written again

    def snapshot(self) -> dict[str, bytes | None]:
        return {key: self.get(key) for key in self.keys()}

    def release(self) -> str:
        pointer = self.get(POINTER_KEY)
        assert pointer is not None
        return str(json.loads(pointer)["release"])


def _local(root: Path) -> Live:
    def get(key: str) -> bytes | None:
        path = root / key
        return path.read_bytes() if path.is_file() else None

    def keys() -> list[str]:
        if not root.exists():
            return []
        lock = root / HIDDEN / "lock"
        return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file() and p != lock)

    def written(key: str) -> object:
        stat = (root / key).stat()
        return (stat.st_ino, stat.st_mtime_ns)

    def put_by_hand(key: str, data: bytes) -> None:
        (root / key).write_bytes(data)

    return Live(str(root), get, put_by_hand, keys, written)


def _s3(s3: S3, prefix: str = "jobs/templates/") -> Live:
    return Live(
        f"s3://{s3.bucket}/{prefix}",
        lambda key: s3.get(prefix + key),
        lambda key, data: s3.put_by_hand(prefix + key, data),
        lambda: [key[len(prefix) :] for key in s3.keys(prefix)],
        lambda key: s3.versions(prefix + key),
    )


@pytest.fixture(params=["local", "s3"])
def live(request: pytest.FixtureRequest, tmp_path: Path) -> Live:
    if request.param == "local":
        return _local(tmp_path / "live")
    return _s3(request.getfixturevalue("s3"))


@pytest.fixture
def repo(tmp_path: Path) -> NotebookRepo:
    """Two tested templates and an untested scratch notebook below notebooks/, all committed."""
    return two_templates(tmp_path / "repo", scratch=True)


def run(repo: NotebookRepo, live: Live, *args: str) -> Run:
    return nbpromote("-C", repo.root, "--target", live.url, *args)


def published(live: Live) -> list[str]:
    """The live template keys, without nbpromote's own records."""
    return [key for key in live.keys() if not key.startswith(".nbpromote/")]  # noqa: SIM118 - keys() lists the store


# -- promotion ------------------------------------------------------------------------------------------


def test_first_promotion_publishes_the_two_templates_stamped(repo: NotebookRepo, live: Live) -> None:
    result = run(repo, live)
    release = promoted(result)
    assert release.startswith("0001-")
    assert release.endswith(repo.head[:7])
    assert "notebooks/scratch.ipynb: not promoted: no fixture" in result.out
    assert "  + report.ipynb   added" in result.out
    assert "  + vid_agg.ipynb  added" in result.out
    keys = live.keys()
    assert [k for k in keys if not k.startswith(HIDDEN)] == ["report.ipynb", "vid_agg.ipynb"]
    assert POINTER_KEY in keys
    assert f"{HIDDEN}releases/{release}.json" in keys
    assert len([k for k in keys if k.startswith(HIDDEN + "objects/")]) == 2

    source = (repo.root / VID_AGG).read_bytes()
    published = live.get("vid_agg.ipynb")
    assert published is not None
    stamp = live_stamp(published)
    assert stamp["commit"] == repo.head
    assert stamp["release"] == release
    assert stamp["source_path"] == VID_AGG
    assert stamp["outputs"] == "as committed"
    results = json.loads((repo.root / RESULTS).read_text())
    assert stamp["sha256"] == next(n["sha256"] for n in results["notebooks"] if n["path"] == VID_AGG)
    # the published document is the tested one plus the stamp; as lines: the stamp's, and one comma
    assert unstamp(json.loads(published)) == json.loads(source)
    diff = list(difflib.ndiff(source.decode().splitlines(), published.decode().splitlines()))
    removed = [line[2:] for line in diff if line.startswith("- ")]
    added = [line[2:] for line in diff if line.startswith("+ ")]
    assert all(line + "," in added for line in removed)
    assert len(removed) <= 1
    assert '"provenance": {' in "\n".join(added)

    manifest = json.loads(live.get(f"{HIDDEN}releases/{release}.json") or b"")
    entry = manifest["templates"]["vid_agg.ipynb"]
    assert entry["cases"] == ["luna", "fr"]
    assert entry["source_path"] == VID_AGG
    assert entry["sha256"] == stamp["sha256"]
    assert live.get(f"{HIDDEN}objects/{entry['object']}.ipynb") == published
    assert manifest["previous"] is None
    assert manifest["commit"] == repo.head


def test_second_promotion_rewrites_only_the_changed_template(repo: NotebookRepo, live: Live) -> None:
    first = promoted(run(repo, live))
    report_before = live.written("report.ipynb")
    vid_before = live.written("vid_agg.ipynb")
    change(repo, VID_AGG, "v2")

    result = run(repo, live)
    second = promoted(result)
    assert second.startswith("0002-")
    assert "  ~ vid_agg.ipynb  changed" in result.out
    assert f"  = report.ipynb   unchanged      live since release {first}" in result.out
    assert live.written("report.ipynb") == report_before  # not rewritten
    assert live.written("vid_agg.ipynb") != vid_before
    assert live_stamp(live.get("report.ipynb"))["release"] == first
    assert live_stamp(live.get("vid_agg.ipynb"))["release"] == second
    manifest = json.loads(live.get(f"{HIDDEN}releases/{second}.json") or b"")
    assert manifest["previous"] == first
    assert manifest["changes"] == {"changed": ["vid_agg.ipynb"], "unchanged": ["report.ipynb"]}


def test_nothing_to_do_writes_nothing(repo: NotebookRepo, live: Live) -> None:
    promoted(run(repo, live))
    before = live.snapshot()
    result = run(repo, live)
    assert result.code == 3, result.text
    assert "nothing to do" in result.out
    assert live.snapshot() == before


def test_dry_run_prints_the_plan_and_writes_nothing(repo: NotebookRepo, live: Live) -> None:
    first = run(repo, live, "--dry-run")
    assert first.code == 0, first.text
    assert "dry run: would make release 0001-" in first.out
    assert "nothing was written" in first.out
    assert live.keys() == []

    promoted(run(repo, live))
    change(repo, VID_AGG, "v2")
    repo.remove(REPORT)
    repo.commit("drop the report")
    repo.results()
    before = live.snapshot()
    result = run(repo, live, "--dry-run", "--prune")
    assert result.code == 0, result.text
    assert "  ~ vid_agg.ipynb  changed" in result.out
    assert "  x report.ipynb   pruned" in result.out
    assert live.snapshot() == before


# -- refusals -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("outcome", "expected"),
    [
        ("failed", "notebooks/vid_agg.ipynb: case 'fr' failed: cell 2 (In [2]): KeyError: 'fr'"),
        ("error", "notebooks/vid_agg.ipynb: case 'fr' error"),
        ("skipped", "notebooks/vid_agg.ipynb: case 'fr' skipped at run time"),
        ("xfailed", "notebooks/vid_agg.ipynb: case 'fr' xfailed (its fixture does not mark it xfail)"),
    ],
)
def test_a_notebook_with_a_case_not_passed_is_held_back(
    repo: NotebookRepo, live: Live, outcome: str, expected: str
) -> None:
    repo.results({VID_AGG: {"fr": outcome}})
    result = run(repo, live)
    assert result.code == 5, result.text
    assert "held back 1 notebook (what is live for it stays live):" in result.out
    assert f"  {expected}" in result.out
    if outcome in ("failed", "error"):  # fixed in a new commit, whose cases must all run
        assert "  hint: fix the failing notebooks (see each failure), commit, then test that commit: pytest\n" in (
            result.out
        )
    else:  # the same commit again: that case
        assert "  hint: run the missing cases (results of the same commit accumulate): " in result.out
        assert "pytest notebooks/vid_agg.ipynb::fr" in result.out
    assert published(live) == ["report.ipynb"]

    everything = run(repo, live, "--all-or-nothing")
    assert everything.code == 4, everything.text
    assert everything.err.startswith(f"nbpromote: refused: {expected}")


def test_refused_when_a_file_changed_since_tested(repo: NotebookRepo, live: Live) -> None:
    (repo.root / VID_AGG).write_text((repo.root / VID_AGG).read_text().replace("v1", "v1-edited"))
    result = run(repo, live)
    assert result.code == 4, result.text
    assert "the working tree has uncommitted changes now (`git status --short`: ' M notebooks/vid_agg.ipynb')" in (
        result.err
    )
    assert live.keys() == []


def test_refused_when_the_recorded_sha256_is_not_the_files(repo: NotebookRepo, live: Live) -> None:
    repo.results(sha256={VID_AGG: "0" * 64})  # tested other bytes, with the same commit and a clean tree
    result = run(repo, live)
    assert result.code == 5, result.text
    assert "  notebooks/vid_agg.ipynb: changed since it was tested (sha256 " in result.out
    assert published(live) == ["report.ipynb"]


def test_refused_for_a_dirty_tree(repo: NotebookRepo, live: Live) -> None:
    (repo.root / "notes.txt").write_text("not committed\n")
    for n in range(6):
        (repo.root / "out" / f"part-{n}.csv").parent.mkdir(exist_ok=True)
        (repo.root / "out" / f"part-{n}.csv").write_text("a notebook's output\n")
    result = run(repo, live)
    assert result.code == 4, result.text
    assert (
        "nbpromote: refused: the working tree has uncommitted changes now (`git status --short`: '?? notes.txt', "
        "'?? out/part-0.csv', '?? out/part-1.csv', '?? out/part-2.csv', '?? out/part-3.csv' and 2 more); commit "
        "them, or list what your notebooks write in .gitignore"
    ) in result.err
    assert "hint: promote what was tested" in result.err
    assert live.keys() == []


def test_refused_when_tested_on_a_dirty_tree(repo: NotebookRepo, live: Live) -> None:
    repo.results(dirty=True)
    result = run(repo, live)
    assert result.code == 4, result.text
    assert "the tests ran on a working tree with uncommitted changes" in result.err


def test_refused_for_results_from_another_commit(repo: NotebookRepo, live: Live) -> None:
    tested = repo.head
    (repo.root / "README.md").write_text("docs\n")
    head = repo.commit("docs only")
    result = run(repo, live)
    assert result.code == 4, result.text
    assert f"the results file is from commit {tested[:12]}, but {head[:12]} is checked out" in result.err
    assert live.keys() == []


def test_a_notebook_missing_from_the_results_is_held_back(repo: NotebookRepo, live: Live) -> None:
    (repo.root / RESULTS).unlink()  # else the earlier run's records of the same commit accumulate
    del repo.cases[REPORT]
    repo.results()
    result = run(repo, live)
    assert result.code == 5, result.text
    assert "  notebooks/report.ipynb: not run: the results file has no case of it" in result.out
    assert "hint: run the missing cases (results of the same commit accumulate): pytest notebooks/report.ipynb" in (
        result.out
    )
    assert published(live) == ["vid_agg.ipynb"]


def test_refused_when_a_live_template_lost_its_fixture(repo: NotebookRepo, live: Live) -> None:
    promoted(run(repo, live))
    (repo.root / "notebooks/report.yaml").unlink()
    del repo.cases[REPORT]
    repo.commit("no more report tests")
    repo.results()
    result = run(repo, live)
    assert result.code == 4, result.text
    assert "report.ipynb: live since release 0001-" in result.err
    assert "has no fixture now" in result.err


def test_missing_results_file_is_refused(repo: NotebookRepo, live: Live) -> None:
    result = run(repo, live, "--results", "nowhere.json")
    assert result.code == 4, result.text
    assert "results file" in result.err
    assert "nowhere.json not found" in result.err


# -- drift, races, interruptions -------------------------------------------------------------------------


def test_drift_is_refused_then_overwritten_on_request(repo: NotebookRepo, live: Live) -> None:
    promoted(run(repo, live))
    live.put_by_hand("vid_agg.ipynb", b'{"hand": "edit"}')
    change(repo, REPORT, "v2")
    before = live.snapshot()

    result = run(repo, live)
    assert result.code == 4, result.text
    assert "nbpromote: refused: vid_agg.ipynb: drift: the live object changed outside nbpromote (ETag" in result.err
    assert "--overwrite-drift" in result.err
    assert live.snapshot() == before  # nothing written, not even the changed report

    status = nbpromote("-C", repo.root, "status", "--target", live.url)  # -C before the command, as in git
    assert status.code == 7, status.text  # a monitoring job can alert on drift
    assert "vid_agg.ipynb" in status.out
    assert "DRIFT: ETag" in status.out
    assert status.out.splitlines()[-1] == "  1 live template drifted: exit 7"
    before_command = nbpromote("-C", repo.root, "--target", live.url, "status")  # options on either side
    assert (before_command.code, before_command.out) == (status.code, status.out)

    result = run(repo, live, "--overwrite-drift")
    second = promoted(result)
    assert "  ! vid_agg.ipynb  restored" in result.out
    assert "  ~ report.ipynb   changed" in result.out
    assert live_stamp(live.get("vid_agg.ipynb"))["release"].startswith("0001-")  # release 1's bytes again
    assert live_stamp(live.get("report.ipynb"))["release"] == second
    status = nbpromote("status", "-C", repo.root, "--target", live.url)
    assert "DRIFT" not in status.out
    assert status.out.count("  ok") == 2
    assert status.code == 0


def test_a_template_deleted_by_hand_is_drift(repo: NotebookRepo, live: Live, tmp_path: Path) -> None:
    promoted(run(repo, live))
    store = open_store(parse_target(live.url, tmp_path))
    stored = store.read("report.ipynb")
    assert stored is not None
    store.delete("report.ipynb", if_match=stored.etag)
    result = run(repo, live)
    assert result.code == 4, result.text
    assert "report.ipynb: drift: the live object changed outside nbpromote (deleted)" in result.err


class Wrapped:
    """A real store with a hook before each write; the hook can wait, crash or act as a human."""

    def __init__(self, inner: Store, before_put: Callable[[str], None]) -> None:
        self.inner = inner
        self.target = inner.target
        self.before_put = before_put

    def read(self, key: str) -> Stored | None:
        return self.inner.read(key)

    def head(self, key: str) -> Head | None:
        return self.inner.head(key)

    def put(
        self, key: str, data: bytes, *, if_match: str | None, content_type: str, metadata: Mapping[str, str]
    ) -> str:
        self.before_put(key)
        return self.inner.put(key, data, if_match=if_match, content_type=content_type, metadata=metadata)

    def delete(self, key: str, *, if_match: str) -> None:
        self.inner.delete(key, if_match=if_match)


def _inputs(repo: NotebookRepo) -> Any:
    return gather(repo.root / RESULTS, repo.root, repo.root / "notebooks").inputs


@pytest.mark.parametrize("same_commit", [False, True], ids=["two-commits", "one-commit-twice"])
def test_two_promotions_racing_exactly_one_wins(
    repo: NotebookRepo, live: Live, tmp_path: Path, same_commit: bool
) -> None:
    first = promoted(run(repo, live))
    if same_commit:  # two CI jobs promoting the same merge: same commit, same plan, same second
        change(repo, VID_AGG, "v2")
        a, b = (NotebookRepo.clone(repo, tmp_path / name) for name in "ab")
    else:
        a = NotebookRepo.clone(repo, tmp_path / "a")
        change(a, VID_AGG, "from-a")
        b = NotebookRepo.clone(repo, tmp_path / "b")
        change(b, REPORT, "from-b")

    # both hold at the pointer swap and then go at once; one that fails earlier releases the other
    barrier = threading.Barrier(2, timeout=60)

    def racing() -> Store:
        claimed: list[bool] = []

        def before_put(key: str) -> None:
            if key == POINTER_KEY and not claimed:
                claimed.append(True)
                with contextlib.suppress(threading.BrokenBarrierError):
                    barrier.wait()

        return Wrapped(open_store(parse_target(live.url, tmp_path)), before_put)

    ends: dict[str, object] = {}

    def promote_from(name: str, clone: NotebookRepo) -> None:
        try:
            ends[name] = promote(racing(), _inputs(clone), PublishOptions())
        except Conflict as exc:
            ends[name] = exc
        finally:
            barrier.abort()

    threads = [threading.Thread(target=promote_from, args=args) for args in (("a", a), ("b", b))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    winners = [name for name, end in ends.items() if isinstance(end, Outcome)]
    losers = [name for name, end in ends.items() if isinstance(end, Conflict)]
    assert (len(winners), len(losers)) == (1, 1), ends
    assert "nothing live was changed" in str(ends[losers[0]])
    winner = ends[winners[0]]
    assert isinstance(winner, Outcome)
    assert live.release() == winner.manifest.release
    if not same_commit:
        won, lost = ("vid_agg.ipynb", "report.ipynb") if winners == ["a"] else ("report.ipynb", "vid_agg.ipynb")
        assert live_stamp(live.get(won))["release"] == winner.manifest.release
        assert live_stamp(live.get(lost))["release"] == first  # the loser touched no live key
    status = nbpromote("status", "-C", repo.root, "--target", live.url)
    assert status.out.count("  ok") == 2
    assert "DRIFT" not in status.out
    history = nbpromote("history", "-C", repo.root, "--target", live.url)
    assert [line.split(" ")[0] for line in history.out.splitlines()] == [winner.manifest.release, first]


def test_an_interrupted_release_is_finished_by_the_next_run(repo: NotebookRepo, live: Live, tmp_path: Path) -> None:
    promoted(run(repo, live))
    repo.notebook(VID_AGG, "v2", cases=repo.cases[VID_AGG])
    repo.notebook(REPORT, "v2", cases=repo.cases[REPORT])
    repo.commit("both")
    repo.results()
    live_writes: list[str] = []

    def crash_on_second_live_write(key: str) -> None:
        if not key.startswith(HIDDEN):
            live_writes.append(key)
            if len(live_writes) == 2:
                raise KeyboardInterrupt  # the CI runner killed the job

    store = Wrapped(open_store(parse_target(live.url, tmp_path)), crash_on_second_live_write)
    with pytest.raises(KeyboardInterrupt):
        promote(store, _inputs(repo), PublishOptions())
    pointer = json.loads(live.get(POINTER_KEY) or b"")
    assert pointer["state"] == "applying"
    half = pointer["release"]
    assert live_stamp(live.get("report.ipynb"))["release"] == half  # one key replaced, one not
    assert live_stamp(live.get("vid_agg.ipynb"))["release"] != half

    status = nbpromote("status", "-C", repo.root, "--target", live.url)
    assert "INTERRUPTED" in status.out
    dry = run(repo, live, "--dry-run")
    assert dry.code == 1
    assert f"release {half} was interrupted" in dry.err
    result = run(repo, live)
    assert result.code == 0, result.text
    assert f"finished release {half}, which an earlier run had left half applied" in result.out
    assert "nothing to do" not in result.out  # it did something: exit code 0
    assert "nothing more to do: with that release finished, what is live is what would be promoted" in result.out
    assert live_stamp(live.get("vid_agg.ipynb"))["release"] == half
    assert json.loads(live.get(POINTER_KEY) or b"")["state"] == "live"
    assert run(repo, live).code == 3


def test_drift_while_applying_puts_everything_back(repo: NotebookRepo, live: Live, tmp_path: Path) -> None:
    first = promoted(run(repo, live))
    repo.notebook(VID_AGG, "v2", cases=repo.cases[VID_AGG])
    repo.notebook(REPORT, "v2", cases=repo.cases[REPORT])
    repo.commit("both")
    repo.results()
    report_before = live.get("report.ipynb")

    def human_edits_vid_agg(key: str) -> None:
        if key == "vid_agg.ipynb":  # report.ipynb has just been replaced
            live.put_by_hand("vid_agg.ipynb", b'{"hotfix": true}')

    store = Wrapped(open_store(parse_target(live.url, tmp_path)), human_edits_vid_agg)
    with pytest.raises(Refused) as refused:
        promote(store, _inputs(repo), PublishOptions())
    assert "vid_agg.ipynb: drift" in refused.value.reasons[0]
    assert "were put back" in refused.value.reasons[0]
    assert live.get("vid_agg.ipynb") == b'{"hotfix": true}'  # the hand edit is not overwritten
    assert live.get("report.ipynb") == report_before  # the key already replaced is back
    pointer = json.loads(live.get(POINTER_KEY) or b"")
    assert (pointer["release"], pointer["state"]) == (first, "live")
    status = nbpromote("status", "-C", repo.root, "--target", live.url)
    lines = {line.split()[0]: line for line in status.out.splitlines() if line.startswith("  ")}
    assert "DRIFT: ETag" in lines["vid_agg.ipynb"]
    assert lines["report.ipynb"].endswith("  ok")


# -- rollback, retire, prune ----------------------------------------------------------------------------


def test_rollback_makes_a_new_release_with_the_old_bytes(repo: NotebookRepo, live: Live) -> None:
    first = promoted(run(repo, live))
    original = live.get("vid_agg.ipynb")
    change(repo, VID_AGG, "v2")
    second = promoted(run(repo, live))
    assert live.get("vid_agg.ipynb") != original

    dry = nbpromote("rollback", "1", "-C", repo.root, "--target", live.url, "--dry-run")
    assert dry.code == 0
    assert "dry run: would make release 0003-" in dry.out
    assert live.release() == second
    result = nbpromote("rollback", first, "-C", repo.root, "--target", live.url)
    third = promoted(result)
    assert third.startswith("0003-")
    assert f"rolled back to release {first} as release {third}" in result.out
    assert live.get("vid_agg.ipynb") == original  # byte for byte, stamp included
    manifest = json.loads(live.get(f"{HIDDEN}releases/{third}.json") or b"")
    assert (manifest["kind"], manifest["rollback_of"], manifest["previous"]) == ("rollback", first, second)

    history = nbpromote("history", "-C", repo.root, "--target", live.url)
    lines = [line for line in history.out.splitlines() if not line.startswith("  ")]  # less the hold lines
    assert [line.split(" ")[0] for line in lines] == [third, second, first]
    assert f"(rollback to {first}," in lines[0]
    assert lines[0].endswith("(current)")
    again = nbpromote("rollback", "1", "-C", repo.root, "--target", live.url)
    assert again.code == 3, again.text
    unknown = nbpromote("rollback", "42", "-C", repo.root, "--target", live.url)
    assert unknown.code == 4
    assert "release '42' is not in the history" in unknown.err


def test_removed_templates_are_retired_then_pruned(repo: NotebookRepo, live: Live) -> None:
    promoted(run(repo, live))
    repo.remove(REPORT)
    repo.commit("drop the report")
    repo.results()

    result = run(repo, live)
    second = promoted(result)
    assert "  - report.ipynb   retired        gone from git; left in the live path (--prune deletes it)" in result.out
    assert live.get("report.ipynb") is not None  # running schedules keep working
    manifest = json.loads(live.get(f"{HIDDEN}releases/{second}.json") or b"")
    assert list(manifest["retired"]) == ["report.ipynb"]
    assert list(manifest["templates"]) == ["vid_agg.ipynb"]
    status = nbpromote("status", "-C", repo.root, "--target", live.url)
    assert "report.ipynb   retired, still in the live path" in status.out

    assert run(repo, live).code == 3  # a retired template left in place is not a change
    result = run(repo, live, "--prune")
    third = promoted(result)
    assert "  x report.ipynb   pruned" in result.out
    assert live.get("report.ipynb") is None
    manifest = json.loads(live.get(f"{HIDDEN}releases/{third}.json") or b"")
    assert manifest["retired"] == {}
    assert manifest["changes"]["pruned"] == ["report.ipynb"]
    assert run(repo, live, "--prune").code == 3

    result = nbpromote("rollback", "1", "-C", repo.root, "--target", live.url)  # brings it back
    promoted(result)
    assert "  + report.ipynb   added" in result.out
    assert live.get("report.ipynb") is not None


# -- settings ---------------------------------------------------------------------------------------------


def test_target_and_source_root_from_pyproject(repo: NotebookRepo, tmp_path: Path) -> None:
    (repo.root / "pyproject.toml").write_text('[tool.nbpromote]\ntarget = "../published"\nsource_root = "notebooks"\n')
    repo.commit("configure nbpromote")
    repo.results()
    result = nbpromote("-C", repo.root / "notebooks")
    promoted(result)
    assert (tmp_path / "published" / "vid_agg.ipynb").is_file()
    status = nbpromote("status", "-C", repo.root)
    assert status.out.startswith(f"{(tmp_path / 'published').as_uri()}/: release 0001-")


def test_file_url_target_and_clear_outputs(repo: NotebookRepo, tmp_path: Path) -> None:
    notebook = json.loads((repo.root / VID_AGG).read_text())
    notebook["cells"][1]["outputs"] = [{"output_type": "stream", "name": "stdout", "text": ["v1 fr\n"]}]
    notebook["cells"][1]["execution_count"] = 3
    (repo.root / VID_AGG).write_text(json.dumps(notebook, indent=1, sort_keys=True, ensure_ascii=False) + "\n")
    repo.commit("outputs committed")
    repo.results()
    target = (tmp_path / "out").as_uri()
    promoted(nbpromote("-C", repo.root, "--target", target, "--clear-outputs"))
    published = json.loads((tmp_path / "out" / "vid_agg.ipynb").read_text())
    assert published["cells"][1]["outputs"] == []
    assert published["cells"][1]["execution_count"] is None
    assert published["metadata"]["pytest_notebooks"]["provenance"]["outputs"] == "cleared"
    # a different publication of the same source is a change
    result = nbpromote("-C", repo.root, "--target", target)
    assert result.code == 0
    assert "  ~ vid_agg.ipynb" in result.out


def test_no_target_and_bad_config_are_usage_errors(repo: NotebookRepo) -> None:
    result = nbpromote("-C", repo.root)
    assert result.code == 2
    assert result.err == (
        "nbpromote: error: no target: pass --target URL, or set target in [tool.nbpromote] of pyproject.toml\n"
    )
    (repo.root / "pyproject.toml").write_text('[tool.nbpromote]\ntarget = "x"\ntargte = "y"\n')
    result = nbpromote("-C", repo.root)
    assert result.code == 2
    assert "unknown key(s) in [tool.nbpromote]: targte" in result.err
    assert nbpromote("--no-such-flag").code == 2
    assert nbpromote("-C").code == 2
    typo = nbpromote("-C", repo.root, "statsu")  # was "unrecognized arguments: statsu" from promote
    assert typo.code == 2
    assert typo.err.splitlines()[-1] == (
        "nbpromote: error: invalid choice: 'statsu' (choose from promote, status, history, rollback, release-hold, "
        "abandon)"
    )


# -- S3 failures: one line, exit code 1, nothing written ------------------------------------------------


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("s3://", "no bucket name"),
        ("s3://Bad_Bucket/jobs/", "'Bad_Bucket' is not a valid S3 bucket name"),
        ("gs://bucket/jobs/", "unsupported scheme 'gs://'"),
        ("file://host/x", "file:// URLs must name a local path"),
    ],
)
def test_bad_target_url_fails_in_one_line(repo: NotebookRepo, url: str, message: str) -> None:
    result = nbpromote("-C", repo.root, "--target", url)
    assert result.code == 1
    assert result.err.startswith(f"nbpromote: failed: bad target {url!r}: {message}")
    assert result.err.count("\n") == 1
    assert result.out == ""


def test_missing_credentials_fail_in_one_line(repo: NotebookRepo, s3: S3, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    result = nbpromote("-C", repo.root, "--target", f"s3://{s3.bucket}/jobs/")
    assert result.code == 1
    assert result.err.startswith(f"nbpromote: failed: no AWS credentials for s3://{s3.bucket}/jobs/: set AWS_PROFILE")
    assert result.err.count("\n") == 1
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    assert s3.keys() == []


def test_missing_bucket_fails_in_one_line_as_a_user_sees_it(repo: NotebookRepo, s3: S3) -> None:
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest_notebooks.promote.cli",
            "-C",
            str(repo.root),
            "--target",
            "s3://no-such-bucket-here/jobs/",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 1, run.stdout + run.stderr
    assert run.stderr == (
        f"nbpromote: failed: bucket 'no-such-bucket-here' does not exist (endpoint {s3.endpoint}); "
        "create it or fix the target URL\n"
    )
    names = [b["Name"] for b in s3.client().list_buckets()["Buckets"]]
    assert "no-such-bucket-here" not in names
    assert s3.keys() == []


def test_unreachable_endpoint_fails_in_one_line(repo: NotebookRepo, s3: S3, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", "http://127.0.0.1:9")
    result = nbpromote("-C", repo.root, "--target", f"s3://{s3.bucket}/jobs/")
    assert result.code == 1
    assert (
        result.err
        == f"nbpromote: failed: cannot reach the S3 endpoint http://127.0.0.1:9 for s3://{s3.bucket}/jobs/.nbpromote/current.json\n"
    )


def test_status_and_history_before_anything_was_promoted(live: Live, tmp_path: Path) -> None:
    for command in ("status", "history"):
        result = nbpromote(command, "-C", tmp_path, "--target", live.url)
        assert result.code == 0, result.text
        assert result.out.endswith(": nothing has been promoted here yet\n")
    assert read_state(open_store(parse_target(live.url, tmp_path))).pointer is None


def test_a_retired_template_wanted_again_is_not_rewritten(repo: NotebookRepo, live: Live) -> None:
    first = promoted(run(repo, live))
    written = live.written("report.ipynb")
    repo.remove(REPORT)
    repo.commit("drop the report")
    repo.results()
    promoted(run(repo, live))
    repo.notebook(REPORT, cases=("daily",))  # the same bytes as before
    repo.commit("bring the report back")
    repo.results()
    result = run(repo, live)
    third = promoted(result)
    assert f"  + report.ipynb   revived        retired earlier, live again with the bytes of release {first}" in (
        result.out
    )
    assert live.written("report.ipynb") == written
    manifest = json.loads(live.get(f"{HIDDEN}releases/{third}.json") or b"")
    assert manifest["retired"] == {}
    assert manifest["templates"]["report.ipynb"]["published_in"] == first


@pytest.mark.parametrize("script", ["nbpromote", "nbreview", "nbresults"])
def test_each_console_script_has_help_and_version(script: str) -> None:
    command = str(Path(sys.executable).parent / script)
    version = subprocess.run([command, "--version"], capture_output=True, text=True, check=False, timeout=120)
    assert (version.returncode, version.stdout) == (0, f"{script} (pytest-notebooks {pytest_notebooks.__version__})\n")
    shown = subprocess.run([command, "--help"], capture_output=True, text=True, check=False, timeout=120)
    assert shown.returncode == 0
    assert shown.stdout.startswith(f"usage: {script} ")
    if script == "nbpromote":  # the default command's options are one command away
        assert "`nbpromote promote --help` lists" in shown.stdout
        assert "  4  refused, nothing changed: no notebook may go live" in shown.stdout
        promote = subprocess.run([command, "promote", "--help"], capture_output=True, text=True, timeout=120)
        assert all(option in promote.stdout for option in ("--target", "--dry-run", "--source-root"))


def test_a_changed_source_root_says_where_each_template_moved(repo: NotebookRepo, live: Live) -> None:
    promoted(run(repo, live))  # source_root = "notebooks": keys vid_agg.ipynb, report.ipynb
    moved = run(repo, live, "--source-root", ".", "--dry-run")
    assert moved.code == 0, moved.text
    assert "  + notebooks/vid_agg.ipynb" in moved.out
    retired = next(line for line in moved.out.splitlines() if line.startswith("  - vid_agg.ipynb"))
    assert retired.endswith(
        "notebooks/vid_agg.ipynb is now notebooks/vid_agg.ipynb (source root ./); "
        "left in the live path (--prune deletes it)"
    )


def test_credentials_in_the_endpoint_url_are_never_printed(
    repo: NotebookRepo, s3: S3, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", "http://alice:hunter2@qz9x@127.0.0.1:9")  # an @ in the password
    result = nbpromote("-C", repo.root, "--target", f"s3://{s3.bucket}/jobs/")
    assert result.code == 1, result.text
    assert "hunter2" not in result.text
    assert "qz9x" not in result.text
    assert "alice" not in result.text
    assert "http://***@127.0.0.1:9" in result.err


def test_hostile_text_in_the_results_file_acts_on_no_terminal_and_no_ci_log(repo: NotebookRepo, tmp_path: Path) -> None:
    """A results file's strings (a failure's summary; a case's converted_by) are shown in held-back and
    refused lines: a newline then ``::error``, or an escape sequence, is shown but does nothing."""
    repo.results({VID_AGG: {"fr": "failed"}})
    document = json.loads((repo.root / RESULTS).read_text())
    for case in document["cases"]:
        if case["failure"]:
            case["failure"]["summary"] = "boom\n::error title=x::pwned \x1b]52;c;cHduZWQ=\x07\x1b[2J"
    (repo.root / RESULTS).write_text(json.dumps(document))
    live = _local(tmp_path / "live")
    for result in (run(repo, live), run(repo, live, "--all-or-nothing")):  # held back; refused
        assert result.code in (5, 4), result.text
        assert "boom" in result.text
        assert "pwned" in result.text  # shown, as text
        assert not [line for line in result.text.splitlines() if line.lstrip().startswith("::")], result.text
        assert "\x1b" not in result.text
