"""The documentation site: it builds with ``mkdocs build --strict``, its reference is the package's, and
the README stays a front page whose old sections all have a home in the site.

docs/hooks.py generates the reference pages when the site is built and warns about option names
options.py does not declare; --strict makes every warning (and every broken link or anchor) an error.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import unicodedata
from importlib.metadata import version
from pathlib import Path

import pytest
import yaml

import pytest_notebooks
from docs import hooks
from pytest_notebooks.cases.naming import FIXTURE_KEYS
from pytest_notebooks.cases.notebook import read_notebook
from pytest_notebooks.cases.params import load_cases
from pytest_notebooks.options import SETTINGS
from tests.notebooks import write_notebook

if sys.version_info >= (3, 11):
    import tomllib
else:  # pytest depends on tomli below 3.11
    import tomli as tomllib  # type: ignore[import-not-found,unused-ignore]

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
README = ROOT / "README.md"
SITE = "https://pytest-notebooks.github.io/pytest-notebooks/"  # mkdocs.yml's site_url
# The `## ` sections of the README before it became a front page (issue 26, at 1,903 lines); each has a home
# in the site now: a page, or a section of one.
OLD_README_SECTIONS = (
    "Quick start",
    "Install",
    "What gets collected",
    "The fixture file",
    "Running a case",
    "Reporting the failing cell",
    "Other languages",
    "Output snapshots",
    "The review report (PR comments)",
    "The three principles of notebook templates",
    "The HTML report, coverage, and debugging a failing case",
    "Works with",
    "Large repositories: selection by change, shards, speed",
    "Adopting it in your repository",
    "Promoting templates: nbpromote",
    "Options",
    "The results file",
    "Development",
)
FENCE = re.compile(r"^\s*(`{3,}|~{3,})")


def mkdocs_build(config_dir: Path, site: Path) -> subprocess.CompletedProcess[str]:
    pytest.importorskip("mkdocs", reason="the docs group is not installed: pip install --group docs")
    return subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        cwd=config_dir,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1", "NO_COLOR": "1"},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The site, built strictly from this checkout."""
    built = tmp_path_factory.mktemp("site")
    ran = mkdocs_build(ROOT, built)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    return built


def page_text(site: Path, page: str) -> str:
    """A built page's article as text (tags dropped, entities kept as written)."""
    html = (site / page / "index.html").read_text(encoding="utf-8")
    return re.sub(r"<[^>]+>", "", html[html.index("<article") : html.index("</article>")])


def headings(text: str) -> list[str]:
    """The titles of a Markdown text's headings, outside fenced blocks."""
    found, fence = [], ""
    for line in text.splitlines():
        opening = FENCE.match(line)
        if fence:
            if opening and opening.group(1).startswith(fence) and not line.strip()[len(opening.group(1)) :]:
                fence = ""
        elif opening:
            fence = opening.group(1)
        elif heading := re.match(r"^#{1,6} (.+?)(?: \{[^}]*\})?$", line):
            found.append(heading.group(1).strip())
    return found


def slug(title: str) -> str:
    """A heading's anchor, as Python-Markdown's toc extension makes it (mkdocs.yml's `toc`)."""
    text = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode("ascii")
    return re.sub(r"[-\s]+", "-", re.sub(r"[^\w\s-]", "", text).strip().lower())


# --- the build ---------------------------------------------------------------------------------


def test_the_site_builds_and_its_reference_is_generated(site: Path) -> None:
    options = page_text(site, "reference/options")
    for setting in SETTINGS:
        assert setting.help.split(" ", 3)[0] in options
        if setting.flag:
            assert setting.option in options, setting.option
        if setting.ini:
            assert setting.dest in options, setting.dest
    commands = page_text(site, "reference/commands")
    for command in ("nbpromote", "nbpromote status", "nbpromote rollback", "nbreview", "nbresults merge"):
        assert f"$ {command} --help\nusage: {command}" in commands, command
    assert "exit codes:\n  0  " in commands  # nbpromote --help ends with its exit codes
    results = page_text(site, "reference/results-file")
    assert "cases[].attempts" in results
    assert "pytest-notebooks results file, version 3" in results
    json_output = page_text(site, "reference/json-output")
    assert "pytest-notebooks/nbpromote-status" in json_output
    assert "pytest-notebooks/review" in json_output
    keys = page_text(site, "reference/fixture-keys")
    assert "snapshot_replace" in keys
    assert "principles" in keys
    forked = page_text(site, "explanations/forked-kernels")
    assert "Why forking there is safe" in forked


def test_the_walkthrough_page_is_the_example_readme_that_ci_runs(site: Path) -> None:
    """The walk-through is included, not copied: tests/test_walkthrough.py runs the same text."""
    source = (DOCS / "getting-started" / "walkthrough.md").read_text()
    assert source.startswith('--8<-- "example_repo/README.md"\n')
    built = page_text(site, "getting-started/walkthrough")
    assert "$ nbpromote rollback 1" in built
    assert "$ pytest --notebooks-lint -k principles -p no:xdist" in built


def test_one_version_everywhere(site: Path) -> None:
    """pytest_notebooks.__version__ is the one place: metadata, the three --version and the site agree."""
    expected = pytest_notebooks.__version__
    assert version("pytest-notebooks") == expected, "the installed metadata is stale: pip install -e ."
    for command in ("nbpromote", "nbreview", "nbresults"):
        program = shutil.which(command, path=str(Path(sys.executable).parent))
        assert program is not None, command
        ran = subprocess.run([program, "--version"], capture_output=True, text=True, check=False)
        assert (ran.returncode, ran.stdout) == (0, f"{command} (pytest-notebooks {expected})\n"), ran.stderr
    home = (site / "index.html").read_text(encoding="utf-8")
    assert f"pytest-notebooks {expected} · MIT licence" in home  # every page's footer
    assert f"This site documents version {expected}." in page_text(site, ".")


def test_a_broken_link_a_missing_anchor_or_a_stale_option_name_fails_the_build(tmp_path: Path) -> None:
    project = tmp_path / "project"
    shutil.copytree(DOCS, project / "docs", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "mkdocs.yml", project)
    shutil.copy(ROOT / "CHANGELOG.md", project)
    (project / "example_repo").mkdir()
    shutil.copy(ROOT / "example_repo" / "README.md", project / "example_repo")
    page = project / "docs" / "guides" / "kernels.md"
    page.write_text(
        page.read_text()
        + "\nSee [the old page](no-such-page.md) and [a section](fixtures.md#no-such-section).\n"
        + "Run with `--notebooks-kernel-starts spawn`, or set `notebooks_preloads`.\n"
    )
    ran = mkdocs_build(project, tmp_path / "site")
    assert ran.returncode != 0
    log = ran.stdout + ran.stderr
    assert "no-such-page.md" in log
    assert "no-such-section" in log
    assert "--notebooks-kernel-starts is not a flag or ini key of pytest-notebooks" in log
    assert "notebooks_preloads is not a flag or ini key of pytest-notebooks" in log
    assert "Aborted with 4 warnings in strict mode" in log


# --- what the build does not see ----------------------------------------------------------------


def data_blocks(language: str) -> list[tuple[str, str]]:
    """Every ```LANGUAGE block of the docs' pages (indented ones in lists too): (page, text)."""
    found = []
    for path in sorted(DOCS.rglob("*.md")):
        for indent, body in re.findall(
            rf"^( *)```{language}\n(.*?)^ *```", path.read_text(encoding="utf-8"), re.S | re.M
        ):
            text = "\n".join(line.removeprefix(indent) for line in body.splitlines())
            found.append((path.relative_to(DOCS).as_posix(), text))
    return found


def test_every_yaml_toml_and_json_block_of_the_docs_parses() -> None:
    blocks = {language: data_blocks(language) for language in ("yaml", "toml", "json")}
    assert all(blocks.values()), blocks.keys()
    for _page, text in blocks["yaml"]:
        yaml.safe_load(text)
    for _page, text in blocks["toml"]:
        tomllib.loads(text)
    for _page, text in blocks["json"]:  # a fragment ("metadata": {...}) is read inside braces
        json.loads(text if text.lstrip().startswith(("{", "[")) else "{" + text + "}")


def test_the_fixture_examples_of_the_docs_load(tmp_path: Path) -> None:
    """Each fixture shown whole (no `...` in it) loads with the plugin's own loader, against a notebook
    whose parameters cell declares what the fixture sets, with the same kinds of values."""
    fixtures = [
        (page, text)
        for page, text in data_blocks("yaml")
        if "..." not in text
        and isinstance(data := yaml.safe_load(text), dict)
        and {"cases", "parameters"} & set(data)
        and set(data) <= set(FIXTURE_KEYS)
    ]
    assert len(fixtures) >= 2, fixtures
    for index, (page, text) in enumerate(fixtures):
        data = yaml.safe_load(text)
        declared = dict(data.get("parameters") or {})
        for case in (data.get("cases") or {}).values():
            body = case or {}
            declared |= body.get("parameters", body)  # a long-form case, or a short one (all parameters)
        cell = "\n".join(f"{name} = {value!r}" for name, value in declared.items())
        notebook = write_notebook(tmp_path / str(index) / "nb.ipynb", [(cell, ["parameters"])])
        fixture = notebook.with_suffix(".yaml")
        fixture.write_text(text)
        cases = load_cases(fixture, read_notebook(notebook), label=page)
        assert cases, page


def test_the_name_check_knows_every_declared_option() -> None:
    declared = hooks.declared_names()
    assert "--notebooks-kernel-start" in declared
    assert "notebooks_fixture_suffixes" in declared
    text = "`--notebooks-timeout=30`, --notebooks-preload pandas, `notebooks_redact`, pytest_notebooks/, --notebooks-"
    assert hooks.unknown_option_names(text) == []
    assert hooks.unknown_option_names("--notebooks-timeouts and notebooks_kernel_starts") == [
        "--notebooks-timeouts",
        "notebooks_kernel_starts",
    ]


@pytest.mark.parametrize("path", ["README.md", "CHANGELOG.md", "example_repo/README.md", "bench/README.md"])
def test_markdown_outside_the_site_names_only_declared_options(path: str) -> None:
    assert hooks.unknown_option_names((ROOT / path).read_text(encoding="utf-8")) == []


def test_no_console_block_in_the_docs_goes_unrun() -> None:
    """Console blocks run only from example_repo/README.md (tests/test_walkthrough.py), which the
    walk-through page includes; one written into a page under docs/ would be shown and never run."""
    pages = sorted(path.relative_to(ROOT).as_posix() for path in DOCS.rglob("*.md") if "```console" in path.read_text())
    assert pages == []


# --- the README, a front page -------------------------------------------------------------------


def test_the_readme_is_a_front_page() -> None:
    text = README.read_text(encoding="utf-8")
    assert len(text.splitlines()) < 200
    quick_start = text.split("## Quick start\n", 1)[1].split("\n## ", 1)[0]
    assert "make demo    # " in quick_start  # the two commands CI runs (.ci/run): the contract
    assert "make test    # " in quick_start
    assert SITE in text
    assert f"site_url: {SITE}\n" in (ROOT / "mkdocs.yml").read_text()


def test_the_readme_links_into_pages_that_exist() -> None:
    """The README is PyPI's page too, so it links into the site by URL: each URL must be a page."""
    linked = re.findall(re.escape(SITE) + r"([\w/.-]*)(?:#([\w-]+))?", README.read_text(encoding="utf-8"))
    assert len(linked) > 10
    missing = []
    for path, anchor in linked:
        page = (DOCS / (path.rstrip("/") or "index")).with_suffix(".md")
        if not page.is_file():
            missing.append(path)
        elif anchor and anchor not in {slug(title) for title in headings(page.read_text(encoding="utf-8"))}:
            missing.append(f"{path}#{anchor}")
    assert missing == []


def test_the_readme_example_is_what_ci_runs() -> None:
    """The example's fixture is example_repo's, and its console lines are the walk-through's, which
    tests/test_walkthrough.py runs: the front page cannot show output the code no longer gives."""
    text = README.read_text(encoding="utf-8")
    (fixture,) = re.findall(r"```yaml\n(.*?)```", text, re.DOTALL)
    assert fixture == (ROOT / "example_repo" / "notebooks" / "vid_agg.yaml").read_text(encoding="utf-8")
    walkthrough = (ROOT / "example_repo" / "README.md").read_text(encoding="utf-8").splitlines()
    shown = [line for block in re.findall(r"```console\n(.*?)```", text, re.DOTALL) for line in block.splitlines()]
    assert len(shown) > 5
    assert [line for line in shown if line != "..." and line not in walkthrough] == []


def test_every_old_readme_section_has_a_home_in_the_site() -> None:
    found = {title for path in DOCS.rglob("*.md") for title in headings(path.read_text(encoding="utf-8"))}
    assert [title for title in OLD_README_SECTIONS if title not in found] == []


def test_the_heading_reader_skips_fenced_blocks() -> None:
    text = "# Page\n`````markdown\n### not a heading\n```diff\n```\n`````\n## Section {#anchor}\n"
    assert headings(text) == ["Page", "Section"]
