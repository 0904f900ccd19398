"""``--format json`` (issue 24): nbpromote and nbreview print one strict JSON document, of a shape the
package ships as a JSON Schema, with the exit codes of the text; errors stay one-screen text on stderr.

Through the commands as a user types them: nbpromote's ``main()`` with argv (``tests/promote_repo.nbpromote``),
nbreview and a ``| jq`` pipe as subprocesses of the console scripts, in real git repositories (two tested
templates from ``two_templates()``, pull requests made with ``tests/gitrepo``) against a local directory
and a real S3 server (moto over HTTP). Every document is validated against its shipped schema, and
against a strict copy of it (no property the schema does not name), so the schema documents every field.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import git
import pytest
from jsonschema import Draft202012Validator

from pytest_notebooks.promote import cli as promote_cli
from pytest_notebooks.promote.models import POINTER_KEY
from pytest_notebooks.results.read import dumps
from pytest_notebooks.review import cli as review_cli
from tests.gitrepo import commit_all, init_repo
from tests.notebooks import PARAMS, TWO_REGIONS, write_notebook
from tests.promote_repo import REPORT, VID_AGG, NotebookRepo, change, nbpromote, promoted, two_templates
from tests.records import results_document

if TYPE_CHECKING:
    from tests.s3server import S3

pytest_plugins = ("tests.s3server",)

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
SCHEMAS = {  # name -> (package, file): every JSON Schema the package publishes
    "results": ("pytest_notebooks.results", "results.schema.json"),
    "nbpromote": ("pytest_notebooks.promote", "nbpromote.schema.json"),
    "review": ("pytest_notebooks.review", "review.schema.json"),
}
SECRET = "s3cr3t-Value-9f8e7d"  # noqa: S105 -- a fake secret, in the commands' environment; the results hold it masked


def shipped(name: str) -> dict[str, Any]:
    """The schema as the installed package holds it."""
    package, file = SCHEMAS[name]
    loaded: dict[str, Any] = json.loads(resources.files(package).joinpath(file).read_text(encoding="utf-8"))
    return loaded


def strict(node: Any) -> Any:
    """The schema with every object it describes by its properties closed to other properties."""
    if isinstance(node, list):
        return [strict(item) for item in node]
    if not isinstance(node, dict):
        return node
    closed = {key: strict(value) for key, value in node.items()}
    if "properties" in node and "additionalProperties" not in node:
        closed["additionalProperties"] = False
    return closed


def parsed(text: str, schema: str, shape: str) -> dict[str, Any]:
    """``text`` (what the command printed) as one strict JSON document of ``shape``, version 1."""

    def refuse(constant: str) -> None:
        raise AssertionError(f"not strict JSON: {constant}")

    assert text.endswith("}\n"), text[-200:]
    document: dict[str, Any] = json.loads(text, parse_constant=refuse)  # extra text after it: JSONDecodeError
    Draft202012Validator(shipped(schema)).validate(document)
    Draft202012Validator(strict(shipped(schema))).validate(document)
    assert (document["schema"], document["version"]) == (shape, 1)
    return document


def nbpromote_json(shape: str, *args: str | Path) -> tuple[int, dict[str, Any]]:
    """``nbpromote ARGS --format json``: the exit code and the document (nothing on stderr)."""
    result = nbpromote(*args, "--format", "json")
    assert result.err == "", result.err
    return result.code, parsed(result.out, "nbpromote", f"pytest-notebooks/nbpromote-{shape}")


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def files(root: Path) -> dict[str, bytes]:
    """Every file below ``root`` but the local store's lock: what a target holds."""
    if not root.exists():
        return {}
    found = (p for p in root.rglob("*") if p.is_file() and p.name != "lock")
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in found}


@dataclass(frozen=True)
class Live:
    """A target: its URL, and a hand at the console that replaces a live key."""

    url: str
    put_by_hand: Callable[[str, bytes], object]


@pytest.fixture(params=["local", "s3"])
def live(request: pytest.FixtureRequest, tmp_path: Path) -> Live:
    if request.param == "local":
        root = tmp_path / "live"
        return Live(str(root), lambda key, data: (root / key).write_bytes(data))
    s3: S3 = request.getfixturevalue("s3")
    return Live(f"s3://{s3.bucket}/jobs/templates/", lambda key, data: s3.put_by_hand("jobs/templates/" + key, data))


@pytest.fixture
def repo(tmp_path: Path) -> NotebookRepo:
    """vid_agg (luna, fr) and report (daily), tested and committed, and a scratch notebook never tested."""
    return two_templates(tmp_path / "repo", scratch=True)


# -- the schemas ------------------------------------------------------------------------------------


def refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        return [*([node["$ref"]] if "$ref" in node else []), *(r for value in node.values() for r in refs(value))]
    if isinstance(node, list):
        return [r for item in node for r in refs(item)]
    return []


def test_the_shipped_schemas_are_json_schemas_of_the_results_files_draft() -> None:
    draft = shipped("results")["$schema"]
    assert draft == "https://json-schema.org/draft/2020-12/schema"
    for name in SCHEMAS:
        schema = shipped(name)
        assert schema["$schema"] == draft, name
        Draft202012Validator.check_schema(schema)
        Draft202012Validator.check_schema(strict(schema))
        for ref in refs(schema):  # every reference points into the same file, at something there
            assert ref.startswith("#/$defs/"), ref
            assert ref.split("/")[-1] in schema["$defs"], ref


def test_each_shape_names_the_schema_and_version_the_commands_write() -> None:
    nbpromote = shipped("nbpromote")
    shapes = [nbpromote["$defs"][one["$ref"].split("/")[-1]]["properties"] for one in nbpromote["oneOf"]]
    assert {shape["schema"]["const"]: shape["version"]["const"] for shape in shapes} == {
        promote_cli.STATUS_SCHEMA: promote_cli.OUTPUT_VERSION,
        promote_cli.HISTORY_SCHEMA: promote_cli.OUTPUT_VERSION,
        promote_cli.PLAN_SCHEMA: promote_cli.OUTPUT_VERSION,
        promote_cli.ABANDON_SCHEMA: promote_cli.OUTPUT_VERSION,
    }
    assert promote_cli.STATUS_SCHEMA == "pytest-notebooks/nbpromote-status"
    assert promote_cli.OUTPUT_VERSION == 1
    review = shipped("review")["properties"]
    assert (review["schema"]["const"], review["version"]["const"]) == ("pytest-notebooks/review", 1)
    assert (review_cli.REVIEW_SCHEMA, review_cli.REVIEW_VERSION) == ("pytest-notebooks/review", 1)
    # the names follow the results file's: "schema" names the shape, "version" counts its versions
    assert shipped("results")["properties"]["schema"]["const"].startswith("pytest-notebooks/")


def test_the_schemas_are_in_the_wheel(tmp_path: Path) -> None:
    """As results.schema.json: package data of the built wheel, next to the module that writes the shape."""
    if int(importlib.metadata.version("setuptools").split(".")[0]) < 77:  # pyproject.toml's build requirement
        pytest.skip("building offline needs setuptools>=77 (the test dependency group has it)")
    source = tmp_path / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy2(ROOT / name, source / name)
    shutil.copytree(
        ROOT / "pytest_notebooks", source / "pytest_notebooks", ignore=shutil.ignore_patterns("__pycache__")
    )
    command = [
        sys.executable,
        "-m",
        "build",
        "--wheel",
        "--no-isolation",
        "--outdir",
        str(tmp_path / "dist"),
        str(source),
    ]
    built = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
    assert built.returncode == 0, built.stdout + built.stderr
    (wheel,) = (tmp_path / "dist").glob("*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    for package, file in SCHEMAS.values():
        path = f"{package.replace('.', '/')}/{file}"
        assert path in names
        assert json.loads(zipfile.ZipFile(wheel).read(path)) == json.loads((ROOT / path).read_text())


# -- nbpromote status and history -------------------------------------------------------------------


def test_status_and_history_before_and_after_a_promotion_and_on_drift(repo: NotebookRepo, live: Live) -> None:
    args = ("-C", repo.root, "--target", live.url)
    code, status = nbpromote_json("status", "status", *args)
    assert code == 0
    assert status["target"].endswith("/")
    assert (status["release"], status["state"], status["templates"], status["holds"], status["drifted"]) == (
        None,
        None,
        [],
        [],
        0,
    )
    code, history = nbpromote_json("history", "history", *args)
    assert (code, history["releases"]) == (0, [])

    release = promoted(nbpromote(*args))
    code, status = nbpromote_json("status", "status", *args)
    assert code == 0
    assert status["target"] == history["target"]
    shown = status["release"]
    assert (shown["release"], shown["sequence"], shown["kind"], shown["commit"]) == (release, 1, "promote", repo.head)
    assert (shown["source_root"], shown["previous"], shown["rollback_of"]) == ("notebooks", None, None)
    assert shown["changes"] == {"added": ["report.ipynb", "vid_agg.ipynb"]}
    assert (status["state"], status["note"], status["drifted"]) == ("live", None, 0)
    rows = [(t["key"], t["retired"], t["entry"]["source_path"], t["check"], t["drift"]) for t in status["templates"]]
    assert rows == [("report.ipynb", False, REPORT, "ok", None), ("vid_agg.ipynb", False, VID_AGG, "ok", None)]
    vid_agg = status["templates"][1]
    assert vid_agg["entry"]["sha256"] == sha256(repo.root / VID_AGG)
    assert (vid_agg["entry"]["cases"], vid_agg["entry"]["published_in"]) == (["luna", "fr"], release)
    assert vid_agg["live"]["etag"] == vid_agg["etag"]

    live.put_by_hand("vid_agg.ipynb", b'{"edited": "in the console"}')
    text = nbpromote("status", *args)
    code, drifted = nbpromote_json("status", "status", *args)
    assert (text.code, code) == (7, 7)  # the exit code a monitoring job alerts on, in either format
    assert drifted["drifted"] == 1
    report, vid_agg = drifted["templates"]
    assert (report["check"], vid_agg["check"]) == ("ok", "drift")
    assert vid_agg["live"]["etag"] != vid_agg["etag"]
    assert f"vid_agg.ipynb  sha256 {vid_agg['entry']['sha256'][:12]}" in text.out
    assert f"  DRIFT: {vid_agg['drift']}\n" in text.out  # the same words as the text

    code, history = nbpromote_json("history", "history", *args)
    assert code == 0
    assert [(r["release"], r["state"], r["hold_changes"]) for r in history["releases"]] == [(release, "live", [])]


def test_status_and_history_take_format_before_the_command_too(repo: NotebookRepo, tmp_path: Path) -> None:
    url = str(tmp_path / "live")
    promoted(nbpromote("-C", repo.root, "--target", url))
    for argv in (("--format", "json", "status"), ("--format=json", "status"), ("status", "--format=json")):
        result = nbpromote(*argv, "-C", repo.root, "--target", url)
        assert (result.code, result.err) == (0, "")
        parsed(result.out, "nbpromote", "pytest-notebooks/nbpromote-status")
    default = nbpromote("--format", "json", "-C", repo.root, "--target", url, "--dry-run")  # promote, the default
    assert default.code == 3, default.text
    assert parsed(default.out, "nbpromote", "pytest-notebooks/nbpromote-plan")["nothing_to_do"] is True
    text = nbpromote("status", "--format", "text", "-C", repo.root, "--target", url)
    assert text.out.startswith(f"{Path(url).as_uri()}/: release 0001-")


# -- nbpromote promote, rollback and release-hold, --dry-run ------------------------------------------


def test_promote_dry_run_plans_writes_nothing_and_keeps_its_exit_codes(repo: NotebookRepo, tmp_path: Path) -> None:
    root = tmp_path / "live"
    args = ("-C", repo.root, "--target", root)
    code, plan = nbpromote_json("plan", *args, "--dry-run")
    assert code == 0
    assert files(root) == {}
    assert (plan["command"], plan["dry_run"], plan["nothing_to_do"], plan["current"]) == ("promote", True, False, None)
    release = plan["release"]
    assert release["release"].startswith("0001-")
    assert release["release"].endswith(repo.head[:7])
    assert (release["kind"], release["commit"], release["holds"]) == ("promote", repo.head, [])
    changes = [(c["key"], c["action"], c["before"], c["after"]["source_path"]) for c in plan["changes"]]
    assert changes == [("report.ipynb", "added", None, REPORT), ("vid_agg.ipynb", "added", None, VID_AGG)]
    assert plan["changes"][1]["after"]["cases"] == ["luna", "fr"]
    assert plan["changes"][1]["detail"].startswith("from notebooks/vid_agg.ipynb, sha256 ")
    assert (plan["held_back"], plan["hint"], plan["hold_changes"]) == ([], None, [])
    assert plan["notes"] == ["notebooks/scratch.ipynb: not promoted: no fixture (scratch.yaml), so never tested"]

    first = promoted(nbpromote(*args))
    live = files(root)
    change(repo, VID_AGG, "v2")
    repo.results({REPORT: {"daily": "failed"}})
    text = nbpromote(*args, "--dry-run")
    code, plan = nbpromote_json("plan", *args, "--dry-run")
    assert (text.code, code) == (5, 5)  # partial: the report is held back
    assert files(root) == live
    assert plan["current"]["release"] == first
    assert [(c["key"], c["action"]) for c in plan["changes"]] == [
        ("report.ipynb", "unchanged"),
        ("vid_agg.ipynb", "changed"),
    ]
    changed = plan["changes"][1]
    assert changed["after"]["sha256"] == sha256(repo.root / VID_AGG) != changed["before"]["sha256"]
    assert changed["before"]["published_in"] == first
    assert plan["release"]["changes"] == {"changed": ["vid_agg.ipynb"], "unchanged": ["report.ipynb"]}
    assert plan["held_back"] == [
        {
            "source_path": REPORT,
            "key": "report.ipynb",
            "reasons": ["case 'daily' failed: cell 2 (In [2]): KeyError: 'daily'"],
            "rerun": [f"{REPORT}::daily"],
            "hold": False,
        }
    ]
    assert f"  hint: {plan['hint']}\n" in text.out
    assert f"dry run: would make release {plan['release']['release']} (" in text.out

    repo.results()
    promoted(nbpromote(*args))
    code, plan = nbpromote_json("plan", *args, "--dry-run")
    assert code == 3  # nothing to do
    assert (plan["nothing_to_do"], plan["release"]) == (True, None)
    assert {c["action"] for c in plan["changes"]} == {"unchanged"}


def test_rollback_and_release_hold_dry_runs_and_the_history(repo: NotebookRepo, tmp_path: Path) -> None:
    root = tmp_path / "live"
    args = ("-C", repo.root, "--target", root)
    first = promoted(nbpromote(*args))
    change(repo, VID_AGG, "broken")
    broken = sha256(repo.root / VID_AGG)
    second = promoted(nbpromote(*args))
    live = files(root)

    code, plan = nbpromote_json("plan", "rollback", "1", *args, "--dry-run")
    assert code == 0
    assert files(root) == live
    release = plan["release"]
    assert (plan["command"], plan["dry_run"], plan["nothing_to_do"]) == ("rollback", True, False)
    assert (release["kind"], release["rollback_of"], release["previous"]) == ("rollback", first, second)
    assert [(c["key"], c["action"]) for c in plan["changes"]] == [
        ("report.ipynb", "unchanged"),
        ("vid_agg.ipynb", "changed"),
    ]
    hold = {
        "key": "vid_agg.ipynb",
        "sha256": broken,
        "source_path": VID_AGG,
        "set_in": release["release"],
        "rolled_back_from": second,
    }
    assert plan["hold_changes"] == [{"change": "set", "reason": None, "hold": hold}]
    assert release["holds"] == [hold]

    third = promoted(nbpromote("rollback", "1", *args))
    code, status = nbpromote_json("status", "status", *args)
    assert code == 0
    assert status["holds"] == [{**hold, "set_in": third}]

    live = files(root)
    code, plan = nbpromote_json("plan", "release-hold", VID_AGG, *args, "--dry-run")
    assert code == 0
    assert files(root) == live
    assert (plan["command"], plan["nothing_to_do"], plan["release"]["kind"]) == ("release-hold", False, "release-hold")
    assert plan["release"]["holds"] == []
    assert plan["hold_changes"] == [{"change": "released", "reason": None, "hold": {**hold, "set_in": third}}]
    assert {c["action"] for c in plan["changes"]} == {"unchanged"}  # no live key is written

    code, history = nbpromote_json("history", "history", *args)
    assert code == 0
    releases = [(r["release"], r["kind"], r["state"], r["rollback_of"]) for r in history["releases"]]
    assert releases == [
        (third, "rollback", "live", first),
        (second, "promote", "superseded", None),
        (first, "promote", "superseded", None),
    ]
    assert [[c["change"] for c in r["hold_changes"]] for r in history["releases"]] == [["set"], [], []]
    assert history["releases"][0]["changes"] == {"changed": ["vid_agg.ipynb"], "unchanged": ["report.ipynb"]}
    code, newest = nbpromote_json("history", "history", "--limit", "1", *args)
    assert [r["release"] for r in newest["releases"]] == [third]


def test_an_interrupted_release_in_status_history_and_abandon(repo: NotebookRepo, tmp_path: Path) -> None:
    root = tmp_path / "live"
    args = ("-C", repo.root, "--target", root)
    first = promoted(nbpromote(*args))
    repo.notebook("notebooks/a_new.ipynb")
    repo.notebook("notebooks/sub/new.ipynb")
    repo.commit("two new templates")
    repo.results()
    (root / "sub").write_text("a scheduler's log file, where nbpromote needs a directory\n")
    failed = nbpromote(*args, "--format", "json")
    assert (failed.code, failed.out) == (1, "")  # the failure is text on stderr, as without --format json
    assert failed.err.startswith(f"nbpromote: failed: cannot write {root}/sub/new.ipynb: File exists; release ")
    stuck = json.loads((root / POINTER_KEY).read_text())["release"]

    code, status = nbpromote_json("status", "status", *args)
    assert code == 0
    assert (status["release"]["release"], status["state"]) == (stuck, "interrupted")
    assert status["note"].startswith("INTERRUPTED: the live keys were being replaced when a run stopped")
    assert {t["check"] for t in status["templates"]} == {"unchecked"}
    code, history = nbpromote_json("history", "history", *args)
    assert [(r["release"], r["state"]) for r in history["releases"]] == [(stuck, "interrupted"), (first, "superseded")]

    live = files(root)
    code, plan = nbpromote_json("abandon", "abandon", *args, "--dry-run")
    assert code == 0
    assert files(root) == live
    assert (plan["dry_run"], plan["release"], plan["base"], plan["writes"]) == (True, stuck, first, 1)
    assert plan["lapsed"].startswith("the lease of ")
    assert plan["undo"] == [
        {"key": "a_new.ipynb", "action": "deleted", "detail": f"added by release {stuck}, not in release {first}"},
        {"key": "sub/new.ipynb", "action": "untouched", "detail": "never written"},
    ]
    code, done = nbpromote_json("abandon", "abandon", *args)
    assert (code, done["dry_run"], done["writes"]) == (0, False, 1)
    assert not (root / "a_new.ipynb").exists()
    code, nothing = nbpromote_json("abandon", "abandon", *args)
    assert code == 3  # nothing is half applied
    assert (nothing["release"], nothing["base"], nothing["undo"], nothing["lapsed"]) == (None, first, [], None)


# -- errors, secrets and pipes ----------------------------------------------------------------------


def test_errors_stay_text_on_stderr_with_nothing_on_stdout(repo: NotebookRepo, tmp_path: Path) -> None:
    url = str(tmp_path / "live")
    (repo.root / "notes.txt").write_text("an untracked file: the tree is not what was tested\n")
    for argv in ((), ("--dry-run",), ("rollback", "1")):
        result = nbpromote(*argv, "-C", repo.root, "--target", url, "--format", "json")
        assert (result.code, result.out) == (4, ""), result.text
        assert result.err.startswith("nbpromote: refused")
    no_target = nbpromote("status", "-C", repo.root, "--format", "json")
    assert (no_target.code, no_target.out) == (2, "")
    assert no_target.err == (
        "nbpromote: error: no target: pass --target URL, or set target in [tool.nbpromote] of pyproject.toml\n"
    )
    unknown = nbpromote("status", "-C", repo.root, "--target", url, "--format", "yaml")
    assert (unknown.code, unknown.out) == (2, "")
    assert "argument --format: invalid choice: 'yaml' (choose from " in unknown.err


def test_credentials_in_the_endpoint_url_stay_masked(
    repo: NotebookRepo, s3: S3, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", "http://alice:hunter2@qz9x@127.0.0.1:9")
    for argv in (("status",), ("--dry-run",)):
        result = nbpromote(*argv, "-C", repo.root, "--target", f"s3://{s3.bucket}/jobs/", "--format", "json")
        assert (result.code, result.out) == (1, ""), result.text
        assert not any(word in result.err for word in ("hunter2", "qz9x", "alice"))
        assert "http://***@127.0.0.1:9" in result.err


def docs_jq_example() -> str:
    """The one ``| jq`` line of the documentation's JSON output page (docs/reference/json-output.md)."""
    section = (ROOT / "docs" / "reference" / "json-output.md").read_text(encoding="utf-8")
    (line,) = [line for line in section.splitlines() if "| jq " in line]
    return line.removeprefix("$ ").split("  #")[0].strip()


@pytest.mark.skipif(shutil.which("jq") is None, reason="jq is not installed")
def test_the_documented_jq_line_lists_the_drifted_templates(repo: NotebookRepo, tmp_path: Path) -> None:
    url = str(tmp_path / "live")
    promoted(nbpromote("-C", repo.root, "--target", url))
    (tmp_path / "live" / "report.ipynb").write_text('{"edited": "by hand"}')
    with (repo.root / "pyproject.toml").open("a") as pyproject:
        pyproject.write(f'target = "{url}"\n')
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
    command = docs_jq_example()
    assert command.startswith("nbpromote status --format json | jq ")
    run = subprocess.run(["bash", "-c", command], cwd=repo.root, env=env, capture_output=True, text=True, timeout=120)
    assert (run.returncode, run.stdout, run.stderr) == (0, "report.ipynb\n", "")
    failed = subprocess.run(
        ["bash", "-c", f"set -o pipefail; {command}"], cwd=repo.root, env=env, capture_output=True, timeout=120
    )
    assert failed.returncode == 7  # nbpromote's own exit code survives the pipe


# -- nbreview ------------------------------------------------------------------------------------------


def snapshot(printed: str) -> str:
    """A snapshot file: one code cell that printed ``printed``."""
    cell: dict[str, Any] = {
        "cell_type": "code",
        "execution_count": None,
        "id": "cell-1",
        "metadata": {},
        "source": "print(plays)",
        "outputs": [{"output_type": "stream", "name": "stdout", "text": printed}],
    }
    return json.dumps({"cells": [cell], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}, indent=1) + "\n"


@pytest.fixture
def pull_request(tmp_path: Path) -> git.Repo:
    """main and a branch `feature` checked out that edits a template, adds a case and accepts a new output."""
    repo = init_repo(tmp_path / "repo")
    root = Path(repo.working_tree_dir or "")
    write_notebook(root / "nb" / "vid_agg.ipynb", [PARAMS, "print(region_code)"])
    (root / "nb" / "vid_agg.yaml").write_text(TWO_REGIONS)
    (root / "nb" / "__snapshots__" / "vid_agg").mkdir(parents=True)
    (root / "nb" / "__snapshots__" / "vid_agg" / "fr.ipynb").write_text(snapshot("7\n"))
    commit_all(repo, "base")
    repo.git.checkout("-b", "feature")
    write_notebook(root / "nb" / "vid_agg.ipynb", [PARAMS, "print(region_code.upper())"])
    (root / "nb" / "vid_agg.yaml").write_text(TWO_REGIONS + "  de:\n    region_code: de\n")
    (root / "nb" / "__snapshots__" / "vid_agg" / "fr.ipynb").write_text(snapshot("8\n"))
    commit_all(repo, "shout, add de, accept 8 plays")
    return repo


def results_file(path: Path, commit: str, duration: float = 1.5) -> Path:
    """What a test run of the PR left: luna failed (its message masked), fr differed from its snapshot, de not run."""
    sha = {"notebook_sha256": "0" * 64, "fixture_sha256": "1" * 64}
    output_change = {
        "kind": "modified",
        "cell_type": "code",
        "base_number": 2,
        "head_number": 2,
        "source_diff": [],
        "output_diff": ["-[stdout] 8", "+[stdout] 9"],
    }
    cases = [
        {
            **sha,
            "notebook": "nb/vid_agg.ipynb",
            "case": "luna",
            "outcome": "failed",
            "duration": duration,
            "parameters": {"region_code": "luna", "api_token": "***"},
            "failure": {
                "kind": "error",
                "summary": "cell 2 (In [2]): PermissionError: token *** refused",
                "cell": 2,
                "ename": "PermissionError",
                "evalue": "token *** refused",
            },
        },
        {
            **sha,
            "notebook": "nb/vid_agg.ipynb",
            "case": "fr",
            "outcome": "failed",
            "duration": 0.5,
            "failure": {"kind": "snapshot-mismatch", "summary": "outputs differ from the snapshot"},
            "snapshot": {"status": "mismatch", "path": "nb/__snapshots__/vid_agg/fr.ipynb", "changes": [output_change]},
        },
        {"notebook": "nb/vid_agg.ipynb", "case": "de", "outcome": "not run"},
    ]
    document = results_document(cases=cases, git={"commit": commit, "branch": "feature"})
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(dumps(document))
    return path


def nbreview(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The nbreview console script in ``root``, with a secret in its environment and no GitHub job summary."""
    env = {k: v for k, v in os.environ.items() if k not in ("GITHUB_STEP_SUMMARY", "GITHUB_ACTIONS")}
    env["API_TOKEN"] = SECRET
    command = [str(BIN / "nbreview"), *args]
    return subprocess.run(command, cwd=root, env=env, capture_output=True, text=True, check=False, timeout=300)


def test_nbreview_json_for_a_pull_request(pull_request: git.Repo) -> None:
    root = Path(pull_request.working_tree_dir or "")
    head = pull_request.head.commit.hexsha
    results_file(root / "notebook-outputs" / "results.json", head)
    run = nbreview(root, "--base", "main", "--format", "json")
    assert (run.returncode, run.stderr) == (0, "")
    review = parsed(run.stdout, "review", "pytest-notebooks/review")
    assert (review["base"], review["head"], review["verdict"]) == ("main", "HEAD", "failed")
    assert (review["summary"], review["counts"]) == ("2 failed, 1 not run", {"failed": 2, "not run": 1})
    assert review["results"]["git"] == {"commit": head, "dirty": False, "branch": "feature"}
    assert review["results"]["session"]["state"] == "completed"
    assert review["results_note"] is None
    cases = {case["case"]: case for case in review["cases"]}
    assert [c["nodeid"] for c in review["cases"]] == [
        "nb/vid_agg.ipynb::luna",
        "nb/vid_agg.ipynb::fr",
        "nb/vid_agg.ipynb::de",
    ]
    luna, fr, de = cases["luna"], cases["fr"], cases["de"]
    assert (luna["outcome"], luna["ok"], luna["duration"], luna["flaky"]) == ("failed", False, 1.5, False)
    assert luna["summary"] == "cell 2 (In [2]): PermissionError: token *** refused"
    assert (luna["failure"]["ename"], luna["failure"]["cell"], luna["snapshot"]) == ("PermissionError", 2, None)
    assert (fr["snapshot"]["status"], fr["snapshot"]["changes"][0]["output_diff"]) == (
        "mismatch",
        ["-[stdout] 8", "+[stdout] 9"],
    )
    assert (de["outcome"], de["duration"], de["failure"], de["summary"]) == ("not run", None, None, None)
    assert "parameters" not in luna  # the review never shows them

    changes = review["changes"]
    (template,) = changes["templates"]
    assert (template["path"], template["status"], template["old_path"]) == (
        "nb/vid_agg.ipynb",
        "modified",
        "nb/vid_agg.ipynb",
    )
    assert (template["summary"], template["cells"], template["problem"]) == ("modified, 1 cell changed", 2, None)
    assert template["changes"][0]["source_diff"] == [
        "@@ -1 +1 @@",
        "-print(region_code)",
        "+print(region_code.upper())",
    ]
    (fixture,) = changes["fixtures"]
    assert (fixture["path"], fixture["notebook"], fixture["status"]) == (
        "nb/vid_agg.yaml",
        "nb/vid_agg.ipynb",
        "modified",
    )
    assert fixture["summary"] == "cases: 1 added"
    assert fixture["cases"] == [
        {
            "case": "de",
            "kind": "added",
            "parameters": [{"name": "region_code", "before": None, "after": '"de"'}],
            "settings": [],
        }
    ]
    (update,) = changes["snapshots"]
    assert (update["path"], update["notebook"], update["case"]) == (
        "nb/__snapshots__/vid_agg/fr.ipynb",
        "nb/vid_agg.ipynb",
        "fr",
    )
    assert update["summary"] == "snapshot updated, outputs of 1 cell changed"
    assert update["changes"][0]["output_diff"] == ["@@ -1 +1 @@", "-[stdout] 7", "+[stdout] 8"]

    text = nbreview(root, "--base", "main", "--format", "text")
    assert text.returncode == 0
    assert f"  failed   nb/vid_agg.ipynb::luna  {luna['summary']}" in text.stdout.splitlines()
    for output in (run.stdout, text.stdout):  # what the text masks, the JSON masks: the records are masked
        assert SECRET not in output
        assert "token *** refused" in output


def test_nbreview_json_without_results_or_base_and_its_errors(pull_request: git.Repo, tmp_path: Path) -> None:
    root = Path(pull_request.working_tree_dir or "")
    run = nbreview(root, "--format", "json")
    assert (run.returncode, run.stderr) == (0, "")
    review = parsed(run.stdout, "review", "pytest-notebooks/review")
    assert (review["verdict"], review["summary"], review["counts"]) == (
        "not reported",
        "no test results in this report",
        {},
    )
    assert (review["results"], review["cases"], review["changes"], review["base"]) == (None, [], None, None)
    assert review["results_note"].startswith("No test results: there is no notebook-outputs/results.json here")

    out = tmp_path / "review.json"
    written = nbreview(root, "--base", "main", "--format", "json", "--output", str(out))
    assert (written.returncode, written.stdout, written.stderr) == (0, "", "")
    assert (
        parsed(out.read_text(), "review", "pytest-notebooks/review")["changes"]["templates"][0]["status"] == "modified"
    )

    unknown = nbreview(root, "--base", "origin/main", "--format", "json")
    assert (unknown.returncode, unknown.stdout) == (2, "")
    assert unknown.stderr.splitlines() == [
        "nbreview: unknown revision 'origin/main'; fetch it first (in GitHub Actions: actions/checkout with "
        "fetch-depth: 0)"
    ]


def test_nbreview_json_stays_strict_for_a_duration_json_cannot_hold(pull_request: git.Repo) -> None:
    """A hand-edited ``NaN`` duration is refused by the results reader: no review, and no ``NaN`` in one."""
    root = Path(pull_request.working_tree_dir or "")
    path = results_file(root / "notebook-outputs" / "results.json", pull_request.head.commit.hexsha, duration=1234.5)
    path.write_text(path.read_text().replace("1234.5", "NaN"))
    run = nbreview(root, "--format", "json")
    assert (run.returncode, run.stdout) == (2, "")
    assert "notebook-outputs/results.json: not valid JSON (NaN is not a JSON number" in run.stderr
