"""Which YAML file is a notebook's fixture (issue 24): another tool's YAML beside a notebook, and the
ini key notebooks_fixture_suffixes, through collection, change selection, the results file, the
review and promotion. No kernel starts: collection only, and results files written by hand."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pytest_notebooks.cases.naming import DEFAULT_NAMING, FixtureNaming, foreign_keys
from pytest_notebooks.review.changes import pull_request_changes
from pytest_notebooks.review.fixturediff import FixtureChange
from tests.gitrepo import commit_all, init_repo
from tests.notebooks import PARAMS, write_notebook

SCHEDULER = "schedule: '0 3 * * *'\nowner: data-eng\nretries: 3\n"  # a scheduler's job file, not a fixture
QUIET = "filterwarnings = ignore::pytest.PytestAssertRewriteWarning\n"  # as tests/conftest.py's ini
SUFFIX_INI = f"[pytest]\n{QUIET}notebooks_fixture_suffixes = .test.yaml\n"
WARNINGS_SHOWN = ("-W", "default::pytest_notebooks.errors.PytestNotebooksWarning")  # the outer run's: error


def collected(result: pytest.RunResult) -> list[str]:
    return [line for line in result.stdout.lines if "::" in line and " " not in line]


def test_another_tools_yaml_beside_a_notebook_is_left_alone_with_a_hint(pytester: pytest.Pytester) -> None:
    write_notebook(pytester.path / "jobs" / "legacy_job.ipynb", [PARAMS, "raise SystemExit(1)"])
    (pytester.path / "jobs" / "legacy_job.yaml").write_text(SCHEDULER)
    write_notebook(pytester.path / "jobs" / "vid_agg.ipynb", [PARAMS])
    (pytester.path / "jobs" / "vid_agg.yaml").write_text("cases:\n  fr: {region_code: fr}\n")
    result = pytester.runpytest("--collect-only", "-q", *WARNINGS_SHOWN, "jobs")
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()
    assert collected(result) == ["jobs/vid_agg.ipynb::fr"]
    text = result.stdout.str()
    assert "jobs/legacy_job.yaml is beside jobs/legacy_job.ipynb but is not a notebook fixture" in text
    assert "(its keys: schedule, owner, retries)" in text
    assert "notebooks_fixture_suffixes" in text
    assert "error" not in text.lower()


def test_with_warnings_as_errors_the_other_tools_yaml_is_a_collection_error_naming_the_option(
    pytester: pytest.Pytester,
) -> None:
    write_notebook(pytester.path / "legacy_job.ipynb", [PARAMS])
    (pytester.path / "legacy_job.yaml").write_text(SCHEDULER)
    result = pytester.runpytest("-q", "-W", "error::pytest_notebooks.errors.PytestNotebooksWarning")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(["*legacy_job.yaml is beside legacy_job.ipynb but is not a notebook fixture*"])
    assert "notebooks_fixture_suffixes" in result.stdout.str()
    assert "Traceback" not in result.stdout.str()


def test_a_misspelt_fixture_is_still_a_fixture_error_not_another_tools_file(pytester: pytest.Pytester) -> None:
    write_notebook(pytester.path / "vid_agg.ipynb", [PARAMS])
    (pytester.path / "vid_agg.yaml").write_text("case:\n  fr: {region_code: fr}\n")  # `cases` misspelt
    result = pytester.runpytest("--collect-only", "-q", *WARNINGS_SHOWN)
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(["*vid_agg.yaml*case*"])
    assert "not a notebook fixture" not in result.stdout.str()


def test_configured_suffixes_name_the_fixtures_and_leave_other_yaml_alone(pytester: pytest.Pytester) -> None:
    pytester.makeini(SUFFIX_INI)
    nb = pytester.path / "notebooks"
    write_notebook(nb / "vid_agg.ipynb", [PARAMS])
    (nb / "vid_agg.test.yaml").write_text("cases:\n  fr: {region_code: fr}\n  de: {region_code: de}\n")
    (nb / "vid_agg.yaml").write_text(SCHEDULER)  # the scheduler's file: not read, not warned about
    write_notebook(nb / "untested.ipynb", [PARAMS])
    (nb / "untested.yaml").write_text("cases:\n  fr: {region_code: fr}\n")  # the old naming: not a fixture now
    (nb / "gone.test.yaml").write_text("cases:\n  fr: {region_code: fr}\n")  # its notebook was renamed away
    result = pytester.runpytest("--collect-only", "-q", *WARNINGS_SHOWN, "notebooks")
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()
    assert collected(result) == ["notebooks/vid_agg.ipynb::fr", "notebooks/vid_agg.ipynb::de"]
    text = result.stdout.str()
    assert "gone.test.yaml reads as a notebook fixture, but there is no gone.ipynb beside it" in text
    assert "not a notebook fixture" not in text
    assert "untested" not in text


def test_two_configured_fixtures_of_one_notebook_are_an_error(pytester: pytest.Pytester) -> None:
    pytester.makeini(f"[pytest]\n{QUIET}notebooks_fixture_suffixes =\n    .test.yaml\n    .cases.yml\n")
    write_notebook(pytester.path / "vid_agg.ipynb", [PARAMS])
    (pytester.path / "vid_agg.test.yaml").write_text("cases:\n  fr: {region_code: fr}\n")
    (pytester.path / "vid_agg.cases.yml").write_text("cases:\n  de: {region_code: de}\n")
    result = pytester.runpytest("--collect-only", "-q")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(["*vid_agg.ipynb has two fixture files, vid_agg.test.yaml and vid_agg.cases.yml*"])


@pytest.mark.parametrize("value", ["test.yaml", ".test.json", "sub/.yaml", ".x/y.yaml"])
def test_a_bad_suffix_is_a_usage_error_naming_the_key(pytester: pytest.Pytester, value: str) -> None:
    pytester.makeini(f"[pytest]\n{QUIET}notebooks_fixture_suffixes = {value}\n")
    result = pytester.runpytest("--collect-only")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*notebooks_fixture_suffixes: a fixture suffix starts with a dot*"])


def test_change_selection_follows_the_configured_fixture(pytester: pytest.Pytester) -> None:
    pytester.makeini(SUFFIX_INI)
    repo = init_repo(pytester.path)
    for name in ("a", "b"):
        write_notebook(pytester.path / f"{name}.ipynb", [PARAMS])
        (pytester.path / f"{name}.test.yaml").write_text("cases:\n  fr: {region_code: fr}\n")
        (pytester.path / f"{name}.yaml").write_text(SCHEDULER)
    (pytester.path / ".gitignore").write_text(".pytest_cache/\nnotebook-outputs/\n")
    commit_all(repo, "base")
    (pytester.path / "a.yaml").write_text(SCHEDULER + "timeout: 5\n")  # the scheduler's file: selects nothing
    (pytester.path / "b.test.yaml").write_text("cases:\n  de: {region_code: de}\n")
    result = pytester.runpytest("--collect-only", "-q", "--notebooks-changed-since", "HEAD")
    assert collected(result) == ["b.ipynb::de"], result.stdout.str()


def test_the_results_file_records_the_suffixes_and_the_review_pairs_by_them(pytester: pytest.Pytester) -> None:
    pytester.makeini(SUFFIX_INI)
    repo = init_repo(pytester.path)
    write_notebook(pytester.path / "a.ipynb", [PARAMS])
    (pytester.path / "a.test.yaml").write_text("cases:\n  fr: {region_code: fr}\n")
    commit_all(repo, "base")
    repo.git.checkout("-b", "change")
    (pytester.path / "a.test.yaml").write_text("cases:\n  de: {region_code: de}\n")
    commit_all(repo, "change the fixture")
    result = pytester.runpytest("--collect-only", "-q", "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.OK
    naming = FixtureNaming.of([".test.yaml"])
    changes = pull_request_changes(pytester.path, "main", naming=naming)
    assert [(c.path, c.notebook) for c in changes if isinstance(c, FixtureChange)] == [("a.test.yaml", "a.ipynb")]
    assert pull_request_changes(pytester.path, "main") == []  # by the default naming, a.test.yaml is a.test's


def test_a_session_records_its_naming_in_the_results_file(pytester: pytest.Pytester) -> None:
    pytester.makeini(SUFFIX_INI)
    write_notebook(pytester.path / "a.ipynb", [PARAMS])
    skipped = "  de: {parameters: {region_code: de}, skip: later}\n"
    (pytester.path / "a.test.yaml").write_text("cases:\n  fr: {region_code: fr}\n" + skipped)
    result = pytester.runpytest("-q", "-k", "de")  # the skipped case: the file is written, no kernel starts
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()
    document = json.loads((pytester.path / "notebook-outputs" / "results.json").read_text())
    assert document["fixture_suffixes"] == [".test.yaml"]
    assert document["notebooks"][0]["fixture"] == "a.test.yaml"


def test_naming_rules() -> None:
    naming = FixtureNaming.of([".test.yaml", ".yaml"])
    assert naming.candidates("dir/x.ipynb") == ("dir/x.test.yaml", "dir/x.yaml")
    assert naming.notebook_of("dir/x.test.yaml") == "dir/x.ipynb"  # the longest suffix wins
    assert naming.notebook_of("dir/x.yml") is None
    assert naming.notebook_of("dir/.test.yaml") is None
    assert FixtureNaming.of([]) is DEFAULT_NAMING
    assert FixtureNaming.of(None).is_default
    assert DEFAULT_NAMING.candidates(Path("x.ipynb")) == ("x.yaml", "x.yml")
    assert foreign_keys({"schedule": 1, "owner": 2}) == ("schedule", "owner")
    assert foreign_keys({"schedule": 1, "paramters": {}}) == ()  # a misspelt fixture key: a fixture
    assert foreign_keys({"schedule": 1, "cases": {}}) == ()
    assert foreign_keys(["a"]) == ()
    assert foreign_keys({}) == ()
    assert foreign_keys(None) == ()


def test_another_tools_yaml_with_hostile_keys_is_named_inertly(pytester: pytest.Pytester) -> None:
    write_notebook(pytester.path / "job.ipynb", [PARAMS])
    keys = '"\\e[31mRED": 1\n"\\n::error title=pwned::owned": 2\n"' + "k" * 500 + '": 3\n'
    (pytester.path / "job.yaml").write_text(keys)
    result = pytester.runpytest("--collect-only", "-q", *WARNINGS_SHOWN)
    text = result.stdout.str()
    assert "is not a notebook fixture (its keys: '\\x1b[31mRED', '\\n::error title=pwned::owned', 'kkk" in text
    assert "\x1b[31m" not in text
    assert not [line for line in result.stdout.lines if line.lstrip().startswith("::")]
    assert "k" * 61 not in text


def test_the_warning_does_not_echo_a_line_of_the_other_tools_yaml(pytester: pytest.Pytester) -> None:
    write_notebook(pytester.path / "job.ipynb", [PARAMS])
    (pytester.path / "job.yaml").write_text("::error title=x::pwned: 1\nowner: me\n")  # a plain YAML key
    result = pytester.runpytest("--collect-only", "-q", *WARNINGS_SHOWN)
    assert "job.yaml is beside job.ipynb but is not a notebook fixture" in result.stdout.str()
    assert not [line for line in result.stdout.lines if line.lstrip().startswith("::")]
