"""Template changes between commits, the review Markdown, nbreview, and the plugin's review option.

Real git repositories made with gitpython, real notebooks written with nbformat, real nbdime.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import git
import pytest

from pytest_notebooks.review.changes import template_changes
from pytest_notebooks.review.diff import diff_notebooks
from pytest_notebooks.review.normalize import normalize
from pytest_notebooks.review.render import MARKER, TRUNCATED, Review, render_markdown, render_text
from tests.gitrepo import commit_all, init_repo
from tests.notebooks import PARAMS, Cell, write_notebook
from tests.records import results_document
from tests.review_checks import check_document, templates_only

BASE_CELLS: list[Cell] = [
    "md:# Aggregate",
    PARAMS,
    "total = 1 + 1\nprint(total)",
    "print('done')",
]


@pytest.fixture
def repo(tmp_path: Path) -> git.Repo:
    repo = init_repo(tmp_path / "repo")
    root = Path(repo.working_tree_dir or "")
    write_notebook(root / "notebooks" / "vid_agg.ipynb", BASE_CELLS)
    write_notebook(root / "notebooks" / "gone.ipynb", ["print('bye')"])
    write_notebook(root / "notebooks" / "old_name.ipynb", ["x = 1", "y = 2"])
    write_notebook(root / "notebooks" / "outputs_only.ipynb", ["print(1)"])
    (root / "README.md").write_text("not a notebook\n")
    commit_all(repo, "base")
    repo.git.checkout("-b", "feature")
    return repo


def edit_head(repo: git.Repo) -> None:
    root = Path(repo.working_tree_dir or "")
    changed = [*BASE_CELLS]
    changed[2] = "total = 1 + 2\nprint(total)"  # a changed source line
    changed.insert(3, "print('a new cell')")  # an added cell
    write_notebook(root / "notebooks" / "vid_agg.ipynb", changed)
    (root / "notebooks" / "gone.ipynb").unlink()  # a removed notebook
    (root / "notebooks" / "old_name.ipynb").rename(root / "notebooks" / "new_name.ipynb")  # renamed
    write_notebook(root / "notebooks" / "brand_new.ipynb", ["import os", "print(os.getcwd())"])
    nb = json.loads((root / "notebooks" / "outputs_only.ipynb").read_text())
    nb["cells"][0]["outputs"] = [{"output_type": "stream", "name": "stdout", "text": ["1\n"]}]
    nb["cells"][0]["execution_count"] = 1
    (root / "notebooks" / "outputs_only.ipynb").write_text(json.dumps(nb))  # executed, same source
    (root / "README.md").write_text("changed\n")
    commit_all(repo, "head")


def test_template_changes_between_two_commits(repo: git.Repo) -> None:
    edit_head(repo)
    changes = templates_only(Path(repo.working_tree_dir or ""), "main", "feature")
    assert set(changes) == {
        "notebooks/vid_agg.ipynb",
        "notebooks/gone.ipynb",
        "notebooks/new_name.ipynb",
        "notebooks/brand_new.ipynb",
        "notebooks/outputs_only.ipynb",
    }
    agg = changes["notebooks/vid_agg.ipynb"]
    assert agg.summary() == "modified, 2 cells changed"
    assert agg.diff.lines() == [
        "~ cell 3 (code)",
        "  source:",
        "    @@ -1,2 +1,2 @@",
        "    -total = 1 + 1",
        "    +total = 1 + 2",
        "     print(total)",
        "+ cell 4 (code), new",
        "  source:",
        "    +print('a new cell')",
    ]
    assert changes["notebooks/gone.ipynb"].summary() == "removed (1 cells)"
    assert (
        changes["notebooks/new_name.ipynb"].summary() == "renamed from notebooks/old_name.ipynb, no cell source changed"
    )
    assert changes["notebooks/brand_new.ipynb"].summary() == "added, 2 cells"
    assert changes["notebooks/outputs_only.ipynb"].summary() == "modified, no cell source changed"


def test_review_markdown_for_a_pull_request(repo: git.Repo) -> None:
    edit_head(repo)
    results = {
        "schema": "pytest-notebooks/results",
        "git": {"commit": repo.head.commit.hexsha},
        "summary": {"passed": 1, "failed": 1},
        "cases": [
            {"notebook": "notebooks/vid_agg.ipynb", "case": "luna", "outcome": "passed", "duration": 1.234},
            {
                "notebook": "notebooks/vid_agg.ipynb",
                "case": "fr",
                "outcome": "failed",
                "duration": 2.0,
                "failure": {"summary": "cell 3 (In [3]): KeyError: 'fr'"},
            },
        ],
    }
    templates = tuple(template_changes(Path(repo.working_tree_dir or ""), "main", "feature"))
    markdown = render_markdown(Review(results_document(results), templates, "main", "feature"))
    lines = markdown.splitlines()
    assert lines[0] == MARKER
    assert lines[1] == "### ❌ Notebook tests: 1 failed, 1 passed"
    assert f"Tested commit `{repo.head.commit.hexsha[:12]}`." in lines
    table = lines[lines.index("| outcome | notebook | case | duration | failing cell |") :][:4]
    assert (
        table[2] == "| ❌ failed | notebooks/vid_agg.ipynb | fr | 2.0 s | cell 3 (In [3]): KeyError: &#x27;fr&#x27; |"
    )
    assert table[3] == "| ✅ passed | notebooks/vid_agg.ipynb | luna | 1.2 s |  |"
    assert "#### Template changes (main...feature)" in lines
    assert lines[lines.index("#### Fixture changes") + 2] == "No fixture changed."
    block = markdown.split("<details><summary>notebooks/vid_agg.ipynb: modified, 2 cells changed</summary>")[1]
    assert block.split("</details>")[0] == (
        "\n\n```diff\n"
        "~ cell 3 (code)\n  source:\n@@ -1,2 +1,2 @@\n-total = 1 + 1\n+total = 1 + 2\n print(total)\n"
        "+ cell 4 (code), new\n  source:\n+print('a new cell')\n```\n\n"
    )
    assert "<details><summary>notebooks/gone.ipynb: removed (1 cells)</summary>" in markdown
    no_snapshot = "No case has an output snapshot to compare with."
    assert f"No snapshot changed in this pull request. {no_snapshot}" in lines
    check_document(markdown)
    text = render_text(Review(results_document(results), templates, "main", "feature"))
    assert text.splitlines()[:4] == [
        "Notebook tests FAILED: 1 failed, 1 passed",
        f"Tested commit {repo.head.commit.hexsha}",
        "  failed   notebooks/vid_agg.ipynb::fr  cell 3 (In [3]): KeyError: 'fr'",
        "  passed   notebooks/vid_agg.ipynb::luna",
    ]


def big_output_changes() -> list[dict[str, Any]]:
    base = normalize({"cells": [{"cell_type": "code", "source": "print(data)", "outputs": []}]})
    head = json.loads(json.dumps(base))
    head["cells"][0]["outputs"] = [
        {"output_type": "stream", "name": "stdout", "text": "".join(f"row {i:06d} {'x' * 40}\n" for i in range(4000))}
    ]
    found = diff_notebooks(base, normalize(head), sources=False)
    return [c.to_json() for c in found.changes]


def results_with_snapshot_mismatches(names: list[str], changes: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "summary": {"failed": len(names)},
        "cases": [
            {
                "notebook": name,
                "case": "default",
                "outcome": "failed",
                "duration": 1.0,
                "failure": {"summary": "cell 1: outputs differ from the snapshot"},
                "snapshot": {"status": "mismatch", "path": f"__snapshots__/{name}/default.ipynb", "changes": changes},
            }
            for name in names
        ],
    }


def test_a_200kb_output_is_truncated_under_the_cap() -> None:
    changes = big_output_changes()
    assert sum(len(line) for line in changes[0]["output_diff"]) > 200_000
    results = results_with_snapshot_mismatches(["a.ipynb", "b.ipynb"], changes)
    markdown = render_markdown(Review(results_document(results), (), None, None))
    assert len(markdown) <= 60_000
    assert markdown.count(TRUNCATED) == 2  # each notebook got its share
    assert markdown.count("<details>") == markdown.count("</details>") == 2
    assert markdown.count(" (truncated)</summary>") == 2  # said outside the collapsed block too
    assert "⚠️ This review was shortened to fit a PR comment: 2 diff(s) cut, 0 left out" in markdown
    check_document(markdown)
    small = render_markdown(Review(results_document(results), (), None, None), budget=10_000)
    check_document(small, 10_000)


def test_hostile_content_cannot_escape_its_fence_or_summary(tmp_path: Path) -> None:
    repo = init_repo(tmp_path / "repo")
    root = Path(repo.working_tree_dir or "")
    name = "notebooks/<script>alert(1)</script>`x`.ipynb"
    write_notebook(root / name, ["print('safe')"])
    commit_all(repo, "base")
    hostile = "s = '''\n````` fence ```` here\n</details><script>alert(2)</script>\n'''\n# \x1b[31mred\x1b[0m"
    write_notebook(root / name, [hostile])
    commit_all(repo, "head")
    markdown = render_markdown(Review(None, tuple(template_changes(root, "HEAD~1", "HEAD")), "HEAD~1", "HEAD"))
    check_document(markdown)
    assert "<script>" not in markdown.split("```")[0]  # nothing before the first fence is raw HTML
    summary = re.findall(r"<summary>(.*?)</summary>", markdown)
    assert summary == [
        "notebooks/&lt;script&gt;alert(1)&lt;/script&gt;&#96;x&#96;.ipynb: modified, 2 cells changed",
    ]
    fences = [line for line in markdown.splitlines() if re.fullmatch(r"`{3,}(diff)?", line)]
    assert fences == ["``````diff", "``````"]  # longer than the five-backtick run inside
    body = markdown.split("``````diff\n")[1].split("\n``````")[0]
    assert "</details><script>alert(2)</script>" in body  # inert: inside the fence
    assert "\x1b" not in markdown


def test_nbreview_cli_on_papermills_own_notebook(tmp_path: Path) -> None:
    """As a new user would: edit one of papermill's test notebooks between two commits."""
    import papermill

    source = Path(papermill.__file__).parent / "tests" / "notebooks" / "simple_execute.ipynb"
    if not source.is_file():
        pytest.skip("this papermill wheel ships no test notebooks")
    repo = init_repo(tmp_path / "repo")
    root = Path(repo.working_tree_dir or "")
    target = root / "simple_execute.ipynb"
    target.write_bytes(source.read_bytes())
    commit_all(repo, "add papermill's notebook")
    nb = json.loads(target.read_text())
    nb["cells"][1]["source"] = ["#papermill_description=DESC\n", "print(msg.upper())"]
    target.write_text(json.dumps(nb, indent=1))
    commit_all(repo, "shout")
    out = tmp_path / "review.md"
    summary = tmp_path / "summary.md"
    run = subprocess.run(
        [sys.executable, "-m", "pytest_notebooks.review.cli", "--base", "HEAD~1", "--output", str(out)],
        cwd=root,
        capture_output=True,
        text=True,
        check=False,
        env={**_env(), "GITHUB_STEP_SUMMARY": str(summary)},
    )
    assert run.returncode == 0, run.stderr
    markdown = out.read_text()
    assert summary.read_text() == markdown
    assert "<details><summary>simple_execute.ipynb: modified, 1 cell changed</summary>" in markdown
    assert "\n-print(msg)\n+print(msg.upper())\n" in markdown
    text = subprocess.run(
        [sys.executable, "-m", "pytest_notebooks.review.cli", "--base", "HEAD~1", "--format", "text"],
        cwd=root,
        capture_output=True,
        text=True,
        check=False,
        env=_env(),
    )
    assert "  simple_execute.ipynb: modified, 1 cell changed" in text.stdout.splitlines()
    bad = subprocess.run(
        [sys.executable, "-m", "pytest_notebooks.review.cli", "--base", "origin/main"],
        cwd=root,
        capture_output=True,
        text=True,
        check=False,
        env=_env(),
    )
    assert bad.returncode == 2
    assert bad.stderr.splitlines() == [
        "nbreview: unknown revision 'origin/main'; fetch it first (in GitHub Actions: actions/checkout with "
        "fetch-depth: 0)"
    ]


def _env() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if k not in ("GITHUB_STEP_SUMMARY", "GITHUB_ACTIONS")}


@pytest.mark.kernel
def test_plugin_writes_the_review_summary_and_annotations(pytester: pytest.Pytester) -> None:
    repo = init_repo(pytester.path)
    write_notebook(pytester.path / "nb.ipynb", [PARAMS, "x = {'luna': 1}[region_code]"])
    (pytester.path / "nb.yaml").write_text("cases:\n  luna: {}\n  fr: {region_code: fr}\n")
    (pytester.path / ".gitignore").write_text("notebook-outputs/\n")
    commit_all(repo, "base")
    write_notebook(pytester.path / "nb.ipynb", [PARAMS, "x = {'luna': 1}[region_code]\nprint(x)"])
    commit_all(repo, "head")
    summary = pytester.path / "summary.md"
    pytester._monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    pytester._monkeypatch.setenv("GITHUB_ACTIONS", "true")
    result = pytester.runpytest_subprocess("-n", "2", "--notebooks-review=review.md", "--notebooks-review-base=HEAD~1")
    result.assert_outcomes(passed=1, failed=1)
    markdown = (pytester.path / "review.md").read_text()
    assert summary.read_text() == markdown
    assert "| ❌ failed | nb.ipynb | fr |" in markdown
    assert "<details><summary>nb.ipynb: modified, 1 cell changed</summary>" in markdown
    assert "<details><summary>nb.ipynb (fixture nb.yaml)" not in markdown  # the fixture did not change
    nb_lines = (pytester.path / "nb.ipynb").read_text().splitlines()
    line = nb_lines.index("    \"x = {'luna': 1}[region_code]\\n\",") + 1  # the failing source line itself
    result.stdout.fnmatch_lines(
        [f"::error file=nb.ipynb,line={line},title=nb.ipynb%3A%3Afr failed::cell 2 (In [[]3]): KeyError: 'fr'"]
    )


def test_a_document_whose_notes_alone_overflow_is_still_whole() -> None:
    results = {"cases": [{"notebook": "a.ipynb", "case": "x", "outcome": "failed"}]}
    review = Review(None, (), "main", "HEAD", results_note='"' * 5_000)  # escapes to 6 bytes a character
    markdown = render_markdown(review, budget=4_000)
    check_document(markdown, 4_000)
    assert "does not fit in 4000 bytes" in markdown
    assert (
        render_markdown(Review(results_document(results), (), "main", "HEAD", problem="x" * 9_000), budget=4_000).count(
            MARKER
        )
        == 1
    )
    with pytest.raises(ValueError, match="too small"):
        render_markdown(review, budget=100)


def test_the_snapshot_line_says_whether_anything_was_compared() -> None:
    def case(snapshot: dict[str, Any] | None) -> dict[str, Any]:
        return {"notebook": "a.ipynb", "case": "fr", "outcome": "passed", "snapshot": snapshot}

    def line(cases: list[dict[str, Any]]) -> str:
        results = {"schema": "pytest-notebooks/results", "summary": {"passed": 1}, "cases": cases}
        text = render_markdown(Review(results_document(results), (), None, None))
        return next(x for x in text.splitlines() if x.startswith("Not compared") and "snapshot" in x)

    assert line([case({"status": "matched", "path": "__snapshots__/a/fr.ipynb"})]).endswith(
        " No case differed from its snapshot."
    )
    assert line([case(None)]).endswith(" No case has an output snapshot to compare with.")


@pytest.mark.kernel
def test_a_summary_or_output_that_cannot_be_written_is_one_line(tmp_path: Path, pytester: pytest.Pytester) -> None:
    """$GITHUB_STEP_SUMMARY on a full disk and --output naming a directory: a line each, no traceback."""
    full = subprocess.run(
        [sys.executable, "-m", "pytest_notebooks.review.cli", "--output", str(tmp_path / "review.md")],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
        env={**_env(), "GITHUB_STEP_SUMMARY": "/dev/full"},
    )
    assert full.returncode == 0, full.stderr
    assert "### Notebook review" in (tmp_path / "review.md").read_text()  # the review itself was written
    assert full.stderr.splitlines() == [
        "nbreview: warning: could not append the review to $GITHUB_STEP_SUMMARY (/dev/full): No space left on device"
    ]
    directory = subprocess.run(
        [sys.executable, "-m", "pytest_notebooks.review.cli", "--output", str(tmp_path)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
        env=_env(),
    )
    assert directory.returncode == 2
    assert directory.stderr.splitlines() == [
        f"nbreview: could not write --output {tmp_path}: it is a directory; give a file name"
    ]
    write_notebook(pytester.path / "nb.ipynb", [PARAMS, "print(region_code)"])
    (pytester.path / "nb.yaml").write_text("cases:\n  luna: {}\n")
    pytester._monkeypatch.setenv("GITHUB_STEP_SUMMARY", "/dev/full")
    result = pytester.runpytest_subprocess("-p", "no:xdist", "--notebooks-review=review.md")
    result.assert_outcomes(passed=1)
    assert "Traceback" not in result.stdout.str() + result.stderr.str()
    result.stdout.fnmatch_lines(
        ["notebooks: 1 case recorded in *; could not append the review to $GITHUB_STEP_SUMMARY (/dev/full): *"]
    )
    assert (pytester.path / "review.md").is_file()
