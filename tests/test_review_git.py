"""The review of a pull request, read from real git repositories: nothing dropped, every change shown once.

Each test builds a repository with gitpython in tmp_path, commits a base and a head, and reads
the Markdown that nbreview writes (through ``main()``, as the console script runs it).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import git
import pytest

from pytest_notebooks.errors import GitOutputError
from pytest_notebooks.gitinfo import compare, parse_raw_diff
from pytest_notebooks.results.read import dumps
from pytest_notebooks.review import cli
from pytest_notebooks.review.changes import pull_request_changes
from pytest_notebooks.review.render import MARKER, Review, render_markdown
from tests.gitrepo import commit_all, init_repo
from tests.notebooks import PARAMS, write_notebook
from tests.records import results_document
from tests.review_checks import check_document, templates_only

FIXTURE = """\
# two regions
parameters:
  run_date: "2017-01-01"
cases:
  luna:
    region_code: luna
  fr:
    region_code: fr
  fr-next-day:
    parameters:
      region_code: fr
      run_date: "2017-01-02"
    cell_timeout: 30
timeout: 120
"""
SUM = "x = 1\ny = 2\nprint(x + y)"


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> git.Repo:
    """A repository with one commit on main and a branch `feature` checked out; cwd is its root."""
    for name in ("GITHUB_STEP_SUMMARY", "GITHUB_ACTIONS"):
        monkeypatch.delenv(name, raising=False)
    repo = init_repo(tmp_path / "repo")
    root = Path(repo.working_tree_dir or "")
    write_notebook(root / "nb" / "vid_agg.ipynb", [PARAMS, "print(region_code)"])
    (root / "nb" / "vid_agg.yaml").write_text(FIXTURE)
    write_notebook(root / "nb" / "a.ipynb", [SUM])
    write_notebook(root / "nb" / "b.ipynb", [SUM])
    commit_all(repo, "base")
    repo.git.checkout("-b", "feature")
    monkeypatch.chdir(root)
    return repo


def review(*args: str) -> str:
    """nbreview's Markdown for ``args`` (``--base main`` unless given)."""
    out = Path("review.md").resolve()
    argv = ["--output", str(out), *args]
    if "--base" not in args:
        argv += ["--base", "main"]
    assert cli.main(argv) == 0
    markdown = out.read_text(encoding="utf-8")
    out.unlink()
    check_document(markdown)
    return markdown


def section(markdown: str, title: str) -> str:
    """The body of the <details> block whose summary is ``title``: the lines inside its fence."""
    start = markdown.index(f"<details><summary>{title}</summary>\n\n")
    block = markdown[start : markdown.index("</details>", start)]
    return "\n".join(block.splitlines()[3:-2])


def root_of(repo: git.Repo) -> Path:
    return Path(repo.working_tree_dir or "")


# -- defect 4: paths git may hold, newlines and colons included ------------------------------------


def test_a_path_with_a_newline_is_listed_and_nothing_after_it_is_lost(repo: git.Repo) -> None:
    root = root_of(repo)
    write_notebook(root / "nb" / "a.ipynb", [SUM.replace("y = 2", "y = 3")])
    write_notebook(root / "nb" / "b.ipynb", [SUM.replace("y = 2", "y = 4")])
    write_notebook(root / "nb" / "0-notes\nv2: draft.ipynb", ["print('new')"])  # GitPython's parser died here
    write_notebook(root / "nb" / "z\n:100644 100644 abc def M.ipynb", ["print('looks like a record')"])
    commit_all(repo, "head")
    markdown = review()
    summaries = [line for line in markdown.splitlines() if line.startswith("<details>")]
    assert summaries == [
        "<details><summary>nb/0-notes&#92;nv2: draft.ipynb: added, 1 cells</summary>",  # shows as nb/0-notes\\nv2...
        "<details><summary>nb/a.ipynb: modified, 1 cell changed</summary>",
        "<details><summary>nb/b.ipynb: modified, 1 cell changed</summary>",
        "<details><summary>nb/z&#92;n:100644 100644 abc def M.ipynb: added, 1 cells</summary>",
    ]
    assert section(markdown, "nb/b.ipynb: modified, 1 cell changed").splitlines()[-3:-1] == [
        "-y = 2",
        "+y = 4",
    ]


def test_raw_diff_records_are_read_whole_or_refused() -> None:
    blob = "1" * 40
    output = (
        f":100644 100644 {blob} {blob} M\0a\nb.ipynb\0"
        f":100644 100644 {blob} {blob} R095\0old.ipynb\0new\n:name.ipynb\0"
        f":000000 100644 {'0' * 40} {blob} A\0c.ipynb\0"
    ).encode()
    records = parse_raw_diff(output)
    assert [(r.status, r.old_path, r.new_path) for r in records] == [
        ("M", "a\nb.ipynb", "a\nb.ipynb"),
        ("R", "old.ipynb", "new\n:name.ipynb"),
        ("A", "c.ipynb", "c.ipynb"),
    ]
    with pytest.raises(GitOutputError, match="ends inside the record"):
        parse_raw_diff(output[: output.index(b"new\n")])  # a rename that lost its second path
    with pytest.raises(GitOutputError, match="unexpected record"):
        parse_raw_diff(b"a.ipynb\0")
    with pytest.raises(GitOutputError, match="unexpected record"):
        parse_raw_diff(f":100644 100644 {blob} {blob} U\0a.ipynb\0".encode())  # an unmerged entry


def test_help_ends_with_the_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.main(["--help"])
    assert exited.value.code == 0
    shown = capsys.readouterr().out
    assert shown.endswith(
        "exit codes:\n"
        "  0  written: the review is on stdout or in --output; failing tests do not change it (pytest gates)\n"
        "  1  failed: git's answer could not be read whole; nothing is written, so that a review never\n"
        "     silently misses a change\n"
        "  2  usage: bad arguments, an unknown revision, an unreadable results file or repository, or an\n"
        "     --output that cannot be written; one line on stderr\n"
    )


def test_git_output_that_cannot_be_read_is_an_error_not_a_partial_review(
    repo: git.Repo, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def broken(*args: Any) -> list[Any]:
        raise GitOutputError("unexpected record in git diff --raw output: 'x'")

    monkeypatch.setattr(cli, "pull_request_changes", broken)
    assert cli.main(["--base", "main", "--output", "review.md"]) == 1
    assert not Path("review.md").exists()
    assert capsys.readouterr().err == ("nbreview: unexpected record in git diff --raw output: 'x'; no review written\n")


# -- fixtures ----------------------------------------------------------------------------------------


def test_fixture_changes_case_by_case_and_parameter_by_parameter(repo: git.Repo) -> None:
    root = root_of(repo)
    changed = """\
# two regions, and Germany
parameters:
  run_date: "2017-01-01"
  db_path: demo.sqlite
cases:
  de: {region_code: de}
  fr:
    region_code: fr
  fr-next-day:
    parameters:
      region_code: fr
      run_date: "2017-01-03"
    cell_timeout: 45
    kernel: python3
timeout: 600
"""
    (root / "nb" / "vid_agg.yaml").write_text(changed)
    commit_all(repo, "head")
    markdown = review()
    title = (
        "nb/vid_agg.ipynb (fixture nb/vid_agg.yaml): cases: 1 added, 1 removed, 1 changed, "
        "parameters of every case changed, settings changed"
    )
    assert section(markdown, title).splitlines() == [
        "  settings of the file:",
        "-   timeout: 120",
        "+   timeout: 600",
        "  parameters of every case:",
        '+   db_path: "demo.sqlite"',
        "- removed case luna",
        '-     region_code: "luna"',
        "~ case fr-next-day",
        "    settings:",
        "-     cell_timeout: 30",
        "+     cell_timeout: 45",
        '+     kernel: "python3"',
        "    parameters:",
        '-     run_date: "2017-01-02"',
        '+     run_date: "2017-01-03"',
        "+ new case de",
        '+     region_code: "de"',
    ]
    assert "#### Template changes (main...HEAD)\n\nNo template changed.\n" in markdown


def test_a_fixture_rewritten_without_changing_its_meaning_says_so(repo: git.Repo) -> None:
    root = root_of(repo)
    rewritten = (
        "timeout: 120  # moved up\ncases:\n  fr: {region_code: fr}\n  luna: {parameters: {region_code: luna}}\n"
        "  fr-next-day:\n    cell_timeout: 30\n    parameters: {region_code: fr, run_date: '2017-01-02'}\n"
        "parameters: {run_date: '2017-01-01'}\n"
    )
    (root / "nb" / "vid_agg.yaml").write_text(rewritten)
    commit_all(repo, "head")
    markdown = review()
    assert (
        "<details><summary>nb/vid_agg.ipynb (fixture nb/vid_agg.yaml): "
        "no change to its cases or settings (layout or comments only)</summary>"
    ) in markdown


def test_fixtures_added_removed_and_unreadable(repo: git.Repo) -> None:
    root = root_of(repo)
    (root / "nb" / "a.yaml").write_text("cases:\n  x: {}\n  y: {}\n")  # a.ipynb is now tested
    (root / "nb" / "vid_agg.yaml").unlink()  # vid_agg.ipynb no longer is
    (root / "config.yaml").write_text("not: a fixture\n")  # no notebook beside it
    commit_all(repo, "fixtures")
    markdown = review()
    assert section(markdown, "nb/a.ipynb (fixture nb/a.yaml): new fixture: the notebook is tested, 2 cases") == (
        "+ new case x\n+    (no parameters of its own)\n+ new case y\n+    (no parameters of its own)"
    )
    removed = section(markdown, "nb/vid_agg.ipynb (fixture nb/vid_agg.yaml): removed: the notebook is no longer tested")
    assert "- removed case fr-next-day" in removed.splitlines()
    assert "config.yaml" not in markdown
    (root / "nb" / "a.yaml").write_text("cases:\n  x: [\n")
    commit_all(repo, "broken")
    markdown = review("--base", "HEAD~1")
    assert section(
        markdown, "nb/a.ipynb (fixture nb/a.yaml): modified: invalid YAML: did not find expected node content"
    )
    assert "-  y: {}" in markdown


def test_env_values_of_credential_looking_names_are_masked_in_the_fixture_diff(repo: git.Repo) -> None:
    """As everywhere else (collect.py shown_parameters, redact.py): the value of a credential-looking
    variable is `***` whatever its length, and a parameter holding one (of length MIN_LENGTH or more)
    is masked where it holds it."""
    root = root_of(repo)
    (root / "nb" / "vid_agg.yaml").write_text(
        FIXTURE
        + "env:\n  DB_HOST: db.staging.internal\n  DB_PASSWORD: hunter2-staging\n  API_TOKEN: abc\n"
        + "  db_url: postgresql://app:hunter2-staging@db\n"
    )
    commit_all(repo, "base env")
    changed = FIXTURE.replace(
        "    cell_timeout: 30\n",
        "    cell_timeout: 30\n    env: {GH_TOKEN: ghp-0123456789, REGION: fr}\n",
    ).replace("  fr:\n    region_code: fr\n", "  fr:\n    region_code: 'fr;hunter2-staging;ghp-0123456789'\n")
    (root / "nb" / "vid_agg.yaml").write_text(
        changed + "env:\n  DB_HOST: db.prod.internal\n  DB_PASSWORD: hunter3-prod\n  API_TOKEN: xyz\n"
    )
    commit_all(repo, "head env")
    markdown = review("--base", "HEAD~1")
    title = "nb/vid_agg.ipynb (fixture nb/vid_agg.yaml): cases: 2 changed, settings changed"
    assert section(markdown, title).splitlines() == [
        "  settings of the file:",
        '-   env: {"DB_HOST": "db.staging.internal", "DB_PASSWORD": "***", "API_TOKEN": "***", "db_url": '
        '"postgresql://app:***@db"}',
        '+   env: {"DB_HOST": "db.prod.internal", "DB_PASSWORD": "***", "API_TOKEN": "***"}',
        "~ case fr",
        '-     region_code: "fr"',
        '+     region_code: "fr;***;***"',
        "~ case fr-next-day",
        "    settings:",
        '+     env: {"GH_TOKEN": "***", "REGION": "fr"}',
    ]
    for secret in ("hunter2", "hunter3", "abc", "xyz", "ghp-"):
        assert secret not in markdown
    document = cli.main(["--base", "HEAD~1", "--format", "json", "--output", "review.json"])
    assert document == 0
    text = Path("review.json").read_text(encoding="utf-8")
    assert "***" in text
    assert "hunter" not in text
    assert "ghp-" not in text


def test_env_values_are_masked_in_the_line_diff_of_an_unreadable_fixture(repo: git.Repo) -> None:
    root = root_of(repo)
    (root / "nb" / "vid_agg.yaml").write_text(FIXTURE + "env:\n  DB_PASSWORD: hunter2-staging\n")
    commit_all(repo, "base env")
    (root / "nb" / "vid_agg.yaml").write_text(
        FIXTURE + "env:\n  DB_PASSWORD: 'hunter3-prod'\n  REGION: fr\n  secret: [\n"
        'cases:\n  x: {env: {GH_TOKEN: "ghp-0123", A: b}}\n'
    )
    commit_all(repo, "broken")
    markdown = review("--base", "HEAD~1")
    assert "-  DB_PASSWORD: ***" in markdown
    assert "+  DB_PASSWORD: ***" in markdown
    assert "+  REGION: fr" in markdown
    assert "+  x: {env: {GH_TOKEN: ***, A: b}}" in markdown
    for secret in ("hunter", "ghp-"):
        assert secret not in markdown


# -- snapshots ---------------------------------------------------------------------------------------


def snapshot(plain: str, html: str) -> str:
    """A committed snapshot: one cell whose output is a pandas-like frame (text/plain and text/html)."""
    cell: dict[str, Any] = {
        "cell_type": "code",
        "execution_count": None,
        "metadata": {},
        "source": "frame",
        "outputs": [{"output_type": "display_data", "metadata": {}, "data": {"text/html": html, "text/plain": plain}}],
    }
    return json.dumps({"cells": [cell], "metadata": {}, "nbformat": 4, "nbformat_minor": 4}, indent=1) + "\n"


def test_an_accepted_snapshot_update_is_an_output_change_shown_once(repo: git.Repo) -> None:
    root = root_of(repo)
    snapshots = root / "nb" / "__snapshots__" / "vid_agg"
    snapshots.mkdir(parents=True)
    (snapshots / "fr.ipynb").write_text(snapshot("   plays\n0     7", "<table><td>7</td></table>"))
    (snapshots / "luna.ipynb").write_text(snapshot("   plays\n0     1", "<table><td>1</td></table>"))
    commit_all(repo, "snapshots")
    (snapshots / "fr.ipynb").write_text(snapshot("   plays\n0     8", "<table><td>8</td></table>"))
    (snapshots / "luna.ipynb").write_text(snapshot("   plays\n0     1", "<table class='x'><td>1</td></table>"))
    (snapshots / "de.ipynb").write_text(snapshot("   plays\n0     3", "<table><td>3</td></table>"))
    commit_all(repo, "accept the new outputs")
    markdown = review("--base", "HEAD~1")
    assert "No template changed." in markdown  # snapshots are not templates
    assert markdown.count("__snapshots__/vid_agg/fr.ipynb") == 1  # one change, shown once
    fr = section(
        markdown,
        "nb/vid_agg.ipynb::fr: snapshot updated, outputs of 1 cell changed (nb/__snapshots__/vid_agg/fr.ipynb)",
    )
    assert [line[:22] for line in fr.splitlines()] == [
        "~ cell 1 (code)",
        "  outputs:",
        "@@ -1,3 +1,3 @@",
        " [text/plain]    plays",
        "-[text/plain] 0     7",
        "-[also: text/html] sha",  # the frame's HTML is not diffed line by line: its digest shows it changed
        "+[text/plain] 0     8",
        "+[also: text/html] sha",
    ]
    luna = section(
        markdown,
        "nb/vid_agg.ipynb::luna: snapshot updated, outputs of 1 cell changed (nb/__snapshots__/vid_agg/luna.ipynb)",
    )
    assert [line[:18] for line in luna.splitlines()[2:]] == [
        "@@ -1,3 +1,3 @@",
        " [text/plain]    p",
        " [text/plain] 0   ",
        "-[also: text/html]",  # only the HTML changed: its digest says so
        "+[also: text/html]",
    ]
    de = section(markdown, "nb/vid_agg.ipynb::de: new snapshot, outputs of 1 cell (nb/__snapshots__/vid_agg/de.ipynb)")
    assert de.splitlines()[2:4] == ["+[text/plain]    plays", "+[text/plain] 0     3"]


# -- always say what was compared --------------------------------------------------------------------


def test_base_equal_to_head_says_nothing_changed(repo: git.Repo) -> None:
    repo.git.checkout("main")
    markdown = review()
    assert markdown.splitlines() == [
        MARKER,
        "### Notebook review",
        "",
        "No test results: there is no notebook-outputs/results.json here or above, up to the repository root "
        "(nbreview --results names the file).",
        "",
        "#### Template changes (main...HEAD)",
        "",
        "No template changed.",
        "",
        "#### Fixture changes",
        "",
        "No fixture changed.",
        "",
        "#### Output changes (snapshots)",
        "",
        "No snapshot changed in this pull request.",
        "",
    ]


def test_the_results_are_found_from_any_directory_of_the_repository(
    repo: git.Repo, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """As nbpromote finds them: from nb/, nbreview said "Notebook tests passed: no test results"."""
    results_file(Path("notebook-outputs/results.json"), [case("fr", "failed", "cell 2: KeyError: 'fr'")])
    monkeypatch.chdir(Path("nb"))
    assert cli.main(["--format", "text"]) == 0
    text = capsys.readouterr().out
    assert text.splitlines()[0] == "Notebook tests FAILED: 1 failed"
    Path("../notebook-outputs/results.json").unlink()
    assert cli.main(["--format", "text"]) == 0
    assert capsys.readouterr().out.splitlines()[0] == "Notebook tests not reported: no test results in this report"


def results_file(path: Path, cases: list[dict[str, Any]], **top: Any) -> Path:
    """A results file as the recorder writes it (valid against the schema nbreview checks)."""
    session = {"id": "s1", "state": "completed", "crashed_workers": [], **top.pop("session", {})}
    full = [
        {
            "nodeid": f"{c['notebook']}::{c['case']}",
            "fixture": c["notebook"].replace(".ipynb", ".yaml"),
            "notebook_sha256": "0" * 64,
            "fixture_sha256": "1" * 64,
            **c,
        }
        for c in cases
    ]
    document = results_document(cases=full, session=session, git=top.pop("git", None), **top)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(dumps(document))
    return path


def case(name: str, outcome: str, summary: str = "", notebook: str = "nb/vid_agg.ipynb") -> dict[str, Any]:
    failure = {"kind": "error", "summary": summary} if summary else None
    return {"notebook": notebook, "case": name, "outcome": outcome, "duration": 1.0, "failure": failure}


def test_results_default_to_the_file_nbpromote_reads(repo: git.Repo, capsys: pytest.CaptureFixture[str]) -> None:
    results_file(Path("notebook-outputs/results.json"), [case("fr", "passed")])
    markdown = review()
    assert "| ✅ passed | nb/vid_agg.ipynb | fr | 1.0 s |  |" in markdown
    assert cli.main(["--results", "elsewhere.json"]) == 2  # named, so it must exist
    assert capsys.readouterr().err == "nbreview: results file elsewhere.json not found\n"


def test_uncommitted_changes_and_every_outcome_are_said(repo: git.Repo) -> None:
    outcomes = ["passed", "failed", "error", "skipped", "xfailed", "xpassed", "interrupted", "crashed", "not run"]
    cases = [case(f"c{i}", outcome) for i, outcome in enumerate(outcomes)]
    results_file(
        Path("notebook-outputs/results.json"),
        cases,
        git={"commit": repo.head.commit.hexsha, "dirty": True, "branch": "feature"},
        session={"state": "worker-crashed", "crashed_workers": ["gw1"]},
    )
    markdown = review()
    lines = markdown.splitlines()
    assert lines[1] == (
        "### ❌ Notebook tests: 1 failed, 1 error, 1 crashed, 1 interrupted, 1 not run, 1 passed, 1 skipped, "
        "1 xfailed, 1 xpassed"
    )
    assert (
        "⚠️ **The tested working tree had uncommitted changes** (results file `git.dirty`): "
        "the results below are for those files, not exactly for the commit."
    ) in lines
    assert "⚠️ **The test session did not complete**: worker-crashed; crashed workers: gw1." in lines
    assert "| ❗ not run | nb/vid_agg.ipynb | c8 |  |  |" in lines  # a case that did not run has no duration
    assert "| ❌ crashed | nb/vid_agg.ipynb | c7 | 1.0 s |  |" in lines


# -- defect 10 and 13: long messages, many notebooks ----------------------------------------------------


def test_long_failure_messages_leave_every_row_in_the_table(repo: git.Repo) -> None:
    long = "cell 2 (In [3]): AssertionError: frames differ: " + "row 1234  0.123 0.456 | " * 3000  # 72 KB
    huge = "cell 2 (In [3]): AssertionError: " + "x" * 200_000
    cases = [
        case("us", "failed", long),
        case("zz", "failed", huge),
        case("de", "failed", "short"),
        case("fr", "passed"),
    ]
    results_file(Path("notebook-outputs/results.json"), cases)
    markdown = review()
    rows = [line for line in markdown.splitlines() if line.startswith("| ")]
    assert [row.split(" | ")[2] for row in rows[1:]] == ["de", "us", "zz", "fr"]
    assert all(len(row) < 2_000 for row in rows)
    assert rows[2].endswith(
        " | 1.0 s | cell 2 (In [3]): AssertionError: frames differ: row 1234 0.123 0.456 &#124; " * 0 + "… |"
    )
    assert rows[2].startswith(
        "| ❌ failed | nb/vid_agg.ipynb | us | 1.0 s | cell 2 (In [3]): AssertionError: frames differ: "
    )


def test_two_thousand_changed_notebooks_at_every_table_size(repo: git.Repo) -> None:
    root = root_of(repo)
    for number in range(2_000):
        notebook = root / "many" / f"n{number:04d}.ipynb"
        notebook.parent.mkdir(exist_ok=True)
        body = {"cells": [{"cell_type": "code", "source": f"print({number})\n" * 40, "metadata": {}}]}
        notebook.write_text(json.dumps({**body, "metadata": {}, "nbformat": 4, "nbformat_minor": 4}))
    commit_all(repo, "many")
    changes = tuple(pull_request_changes(root, "main", "HEAD"))
    assert len(changes) == 2_000
    failing = [case(f"c{i:03d}", "failed", "cell 1: boom " + "x" * 400) for i in range(150)]
    for rows in range(0, 150, 11):
        markdown = render_markdown(Review(results_document(cases=failing[:rows]), changes, "main", "HEAD"))
        checked = check_document(markdown)
        assert checked.counted == checked.rows == rows
        assert "⚠️ This review was shortened to fit a PR comment:" in markdown
        assert "more not shown here, to fit the comment" in markdown


# -- markup that content must not produce -------------------------------------------------------------


def test_content_cannot_repeat_the_marker_ping_people_or_inject_markup(repo: git.Repo) -> None:
    root = root_of(repo)
    hostile = (
        f"# {MARKER}\n# ping @octocat, see [this](https://evil.example) and #12\n"
        "print('\x1b]8;;https://evil.example\x07click\x1b]8;;\x07 \x1b[31mred\x1b[0m')"
    )
    write_notebook(root / "nb" / f"{MARKER} @octocat.ipynb", [hostile])
    commit_all(repo, "head")
    results_file(
        Path("notebook-outputs/results.json"),
        [case("fr", "failed", f"cell 1: ValueError: {MARKER} @octocat [x](https://evil.example) #12")],
        git={"commit": "a" * 40, "dirty": False},
    )
    markdown = review()
    assert markdown.count(MARKER) == 1
    assert "| ❌ failed | nb/vid_agg.ipynb | fr | 1.0 s | cell 1: ValueError: &lt;!-- " in markdown
    assert "@\u200boctocat ]" not in markdown
    assert "@\u200boctocat &#91;" not in markdown
    assert "@\u200boctocat [x]&#40;https:\u200b//evil.example) #\u200b12 |" in markdown
    body = section(markdown, "nb/&lt;!-- pytest-notebooks:review --&gt; @\u200boctocat.ipynb: added, 1 cells")
    assert "\x1b" not in markdown
    assert body.splitlines()[2:] == [
        "+# <!-\u200b- pytest-notebooks:review -->",
        "+# ping @octocat, see [this](https://evil.example) and #12",  # inert: inside the fence
        "+print('click red')",
    ]


def test_compare_lists_the_trees_for_pairing_fixtures(repo: git.Repo) -> None:
    (root_of(repo) / "nb" / "vid_agg.yaml").write_text(FIXTURE + "cell_timeout: 60\n")
    commit_all(repo, "head")
    found = compare(root_of(repo), "main", "HEAD", (".yaml",))
    assert [f.path for f in found.files] == ["nb/vid_agg.yaml"]
    assert "nb/vid_agg.ipynb" in found.head_paths
    assert "nb/vid_agg.ipynb" in found.start_paths
    assert templates_only(root_of(repo), "main", "HEAD") == {}


def test_a_one_megabyte_line_shows_its_start_when_there_is_room(repo: git.Repo) -> None:
    write_notebook(root_of(repo) / "nb" / "a.ipynb", [SUM, "data = '" + "d" * 1_000_000 + "'"])
    commit_all(repo, "head")
    body = section(review(), "nb/a.ipynb: modified, 1 cell changed")
    assert body.splitlines()[-1] == "+data = '" + "d" * 991 + "… (999010 more characters)"


def test_a_results_file_with_an_injected_commit_is_refused(repo: git.Repo, capsys: pytest.CaptureFixture[str]) -> None:
    results_file(
        Path("notebook-outputs/results.json"),
        [case("fr", "passed")],
        git={"commit": "abc`def\n\n# I own this comment", "dirty": False},
    )
    assert cli.main(["--base", "main"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("nbreview: notebook-outputs/results.json: invalid results file at git")
    assert len(err.splitlines()) == 1


def test_a_change_that_raises_the_branching_is_called_out(repo: git.Repo) -> None:
    root = root_of(repo)
    branchy = "for r in [1, 2]:\n    if r > 1:\n        print(r)\n    elif r < 0:\n        print(-r)\n"
    write_notebook(root / "nb" / "vid_agg.ipynb", [PARAMS, "print(region_code)", branchy])
    commit_all(repo, "more branches")
    markdown = review()
    assert (
        "nb/vid_agg.ipynb: modified, 1 cell changed; ⚠️ branching up from 0 to 3 decision points (keep it linear)"
        in markdown
    )
