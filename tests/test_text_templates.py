"""What nbpromote publishes for a Jupytext text template (``text_templates``): the committed text, the
.ipynb its cases ran (for a scheduler that runs papermill), or both; byte for byte what was tested."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from pytest_notebooks.cases.textnotebook import to_ipynb_bytes
from pytest_notebooks.errors import UsageError
from pytest_notebooks.promote.settings import find_config
from pytest_notebooks.promote.stamp import provenance_of, unstamp
from pytest_notebooks.review.changes import SnapshotUpdate, pull_request_changes
from tests.gitrepo import repo_with_identity
from tests.notebooks import write_notebook
from tests.project import RESULTS, Project

pytest_plugins = ("tests.s3server",)

jupytext = pytest.importorskip("jupytext", reason="text notebooks need the jupytext extra (pytest-notebooks[jupytext])")

REPORT = """\
# %% tags=["parameters"]
region_code = "luna"
rows = 3

# %%
total = rows * 2
print(region_code, total)
assert total > 0
"""
FIXTURE = "cases:\n  luna: {}\n  fr: {region_code: fr, rows: 4}\n"
CONVERTER = f"jupytext {jupytext.__version__}"


def _project(project: Project, text_templates: str, *args: str) -> bytes:
    """etl/report.py (a text template) and etl/plain.ipynb, committed and tested (pytest ``args``); the
    text's notebook, as papermill ran it."""
    (project.root / "etl").mkdir()
    (project.root / "etl" / "report.py").write_text(REPORT)
    (project.root / "etl" / "report.yaml").write_text(FIXTURE)
    project.notebook("etl/plain", "assert region_code", "cases:\n  luna: {}\n")
    project.commit(f'[tool.nbpromote]\ntext_templates = "{text_templates}"\n')
    tested = project.pytest(*args)
    assert tested.returncode == 0, tested.stdout
    return to_ipynb_bytes(REPORT.encode(), "etl/report.py", "etl/report.py")


def _release(live: Path) -> dict[str, Any]:
    current = json.loads((live / ".nbpromote" / "current.json").read_text())
    release: dict[str, Any] = json.loads((live / ".nbpromote" / "releases" / f"{current['release']}.json").read_text())
    return release


def _edit_results(project: Project, **fields: Any) -> None:
    """The results file as another machine's (or an older version's) tests would have written it."""
    path = project.root / RESULTS
    document = json.loads(path.read_text())
    for case in document["cases"]:
        if case["notebook"] == "etl/report.py":
            for name, value in fields.items():
                if value is None:
                    case.pop(name, None)
                else:
                    case[name] = value
    path.write_text(json.dumps(document))


def test_text_templates_takes_text_ipynb_or_both(tmp_path: Path) -> None:
    for value in ("text", "ipynb", "both"):
        (tmp_path / "pyproject.toml").write_text(f'[tool.nbpromote]\ntext_templates = "{value}"\n')
        assert find_config(tmp_path, tmp_path).text_templates == value
    (tmp_path / "pyproject.toml").write_text('[tool.nbpromote]\ntext_templates = "notebook"\n')
    with pytest.raises(UsageError, match="text_templates must be one of 'text', 'ipynb', 'both', got 'notebook'"):
        find_config(tmp_path, tmp_path)


@pytest.mark.kernel
def test_the_results_file_records_the_notebook_a_text_notebook_ran_as(project: Project) -> None:
    ran = _project(project, "text", "-n", "2")  # each record crosses from a worker to the controller
    report = [case for case in project.results()["cases"] if case["notebook"] == "etl/report.py"]
    assert [case["outcome"] for case in report] == ["passed", "passed"]
    for case in report:
        assert case["notebook_sha256"] == hashlib.sha256(REPORT.encode()).hexdigest()  # the committed text
        assert case["converted_sha256"] == hashlib.sha256(ran).hexdigest()  # the notebook papermill ran
        assert case["converted_by"] == CONVERTER
    plain = [case for case in project.results()["cases"] if case["notebook"] == "etl/plain.ipynb"]
    assert plain
    assert all("converted_sha256" not in case for case in plain)
    # the executed notebook is the notebook that ran, parameters injected
    executed = json.loads((project.root / report[0]["output"]).read_text())
    template = json.loads(ran)
    ran_cells = [c for c in executed["cells"] if "injected-parameters" not in c["metadata"].get("tags", [])]
    assert [_text(c["source"]) for c in ran_cells] == [_text(c["source"]) for c in template["cells"]]


def _text(source: str | list[str]) -> str:
    return source if isinstance(source, str) else "".join(source)


@pytest.mark.kernel
def test_ipynb_publishes_the_notebook_its_cases_ran_and_papermill_runs_it(project: Project) -> None:
    ran = _project(project, "ipynb")
    promoted = project.promote()
    assert promoted.code == 0, promoted.text
    assert f"+ etl/report.ipynb  added          from etl/report.py as the .ipynb its cases ran ({CONVERTER})" in (
        promoted.out
    )
    live = project.root / "live"
    assert not (live / "etl" / "report.py").exists()
    published = (live / "etl" / "report.ipynb").read_bytes()
    assert unstamp(json.loads(published)) == json.loads(ran)  # the notebook that ran, plus the stamp
    stamp = provenance_of(published)
    assert stamp is not None
    assert (stamp["source_path"], stamp["sha256"]) == ("etl/report.py", hashlib.sha256(REPORT.encode()).hexdigest())
    assert (stamp["converted_sha256"], stamp["converted_by"]) == (hashlib.sha256(ran).hexdigest(), CONVERTER)
    entry = _release(live)["templates"]["etl/report.ipynb"]
    assert entry["source_path"] == "etl/report.py"
    assert entry["converted_sha256"] == hashlib.sha256(ran).hexdigest()
    assert (live / ".nbpromote" / "objects" / f"{entry['object']}.ipynb").read_bytes() == published
    # what the scheduler does with it: papermill runs the published template with other parameters
    out = project.root / "scheduled.ipynb"
    command = [sys.executable, "-m", "papermill", str(live / "etl" / "report.ipynb"), str(out), "-p", "rows", "5"]
    scheduled = subprocess.run(command, capture_output=True, text=True, check=False)
    assert scheduled.returncode == 0, scheduled.stderr
    outputs = [_text(o.get("text", "")) for c in json.loads(out.read_text())["cells"] for o in c.get("outputs", [])]
    assert "luna 10\n" in outputs


@pytest.mark.kernel
def test_both_publishes_the_text_and_its_notebook_with_their_content_types(project: Project, s3: Any) -> None:
    ran = _project(project, "both")
    promoted = project.promote("--target", f"s3://{s3.bucket}/jobs/templates/")
    assert promoted.code == 0, promoted.text
    client = s3.client()

    def head(key: str) -> str:
        content_type: str = client.head_object(Bucket=s3.bucket, Key=f"jobs/templates/{key}")["ContentType"]
        return content_type

    assert s3.get("jobs/templates/etl/report.py") == REPORT.encode()  # the committed text, byte for byte
    assert unstamp(json.loads(s3.get("jobs/templates/etl/report.ipynb"))) == json.loads(ran)
    assert head("etl/report.py") == "text/x-python; charset=utf-8"
    assert head("etl/report.ipynb") == head("etl/plain.ipynb") == "application/x-ipynb+json"
    text_object = f"jobs/templates/.nbpromote/objects/{hashlib.sha256(REPORT.encode()).hexdigest()}.py"
    assert s3.get(text_object) == REPORT.encode()


@pytest.mark.kernel
def test_a_notebook_another_jupytext_would_make_is_held_back(project: Project) -> None:
    _project(project, "ipynb")
    _edit_results(project, converted_sha256="0" * 64, converted_by="jupytext 0.9.0")  # tested elsewhere
    promoted = project.promote()
    assert promoted.code == 5, promoted.text  # partial: etl/plain.ipynb went live, the text template did not
    assert "etl/report.py: the .ipynb " + CONVERTER + " makes of it here (sha256 " in promoted.text
    assert "is not the notebook its cases ran (sha256 000000000000 made by jupytext 0.9.0)" in promoted.text
    assert project.published() == []  # nothing at the top level
    live = project.root / "live" / "etl"
    assert sorted(p.name for p in live.iterdir()) == ["plain.ipynb"]


@pytest.mark.kernel
def test_results_that_do_not_say_what_ran_hold_a_text_template_back(project: Project) -> None:
    _project(project, "both")
    _edit_results(project, converted_sha256=None, converted_by=None)  # an older pytest-notebooks wrote it
    promoted = project.promote()
    assert promoted.code == 5, promoted.text  # partial
    assert "etl/report.py: the results file does not say which .ipynb its cases ran" in promoted.text
    live = project.root / "live" / "etl"
    assert sorted(p.name for p in live.iterdir()) == ["plain.ipynb"]  # neither the text nor its notebook


def test_the_review_names_a_text_template_as_the_owner_of_its_snapshots(tmp_path: Path) -> None:
    repo = repo_with_identity(tmp_path)
    (tmp_path / "report.py").write_text(REPORT)
    (tmp_path / "report.yaml").write_text(FIXTURE)
    snapshot = tmp_path / "__snapshots__" / "report" / "luna.ipynb"
    snapshot.parent.mkdir(parents=True)
    write_notebook(snapshot, ["print('luna 6')"])
    repo.git.add("-A")
    repo.index.commit("base")
    repo.git.branch("base")
    write_notebook(snapshot, ["print('luna 8')"])
    repo.git.add("-A")
    repo.index.commit("head: the snapshot refreshed")
    changes = pull_request_changes(tmp_path, "base")
    assert [type(c).__name__ for c in changes] == ["SnapshotUpdate"]
    update = changes[0]
    assert isinstance(update, SnapshotUpdate)
    assert (update.notebook, update.case) == ("report.py", "luna")  # not report.ipynb, which is not there


@pytest.mark.kernel
def test_from_both_to_ipynb_the_text_is_retired_and_said_why(project: Project) -> None:
    _project(project, "both")
    assert project.promote().code == 0
    (project.root / "pyproject.toml").write_text('[tool.nbpromote]\ntext_templates = "ipynb"\n')
    project.commit()
    assert project.pytest().returncode == 0  # the results of the commit checked out
    promoted = project.promote()
    assert promoted.code == 0, promoted.text
    assert "- etl/report.py" in promoted.out
    assert "retired        etl/report.py goes live as etl/report.ipynb only (text_templates); left in the live" in (
        promoted.out
    )
    assert "= etl/report.ipynb" in promoted.out  # the same notebook as before: not rewritten
    assert (project.root / "live" / "etl" / "report.py").exists()  # retired, not deleted: --prune deletes it
