"""The HTML report: written by --notebooks-html, self-contained, and seen in a real browser."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest

from pytest_notebooks.review.html import render_html
from tests.browser import ARTIFACTS, CHROMIUM_FLAGS, PAINT_FRAMES, chromium
from tests.example import copy_example
from tests.notebooks import PARAMS, write_notebook
from tests.records import results_document
from tests.subprocess_pytest import run_pytest


@pytest.mark.kernel
def test_the_report_lists_every_case_and_renders_the_failure(pytester: pytest.Pytester) -> None:
    write_notebook(pytester.path / "nb.ipynb", [PARAMS, "x = 1", "assert region_code != 'us', 'no us data'"])
    (pytester.path / "nb.yaml").write_text("cases:\n  fr: {region_code: fr}\n  us: {region_code: us}\n")
    result = pytester.runpytest("-p", "no:xdist", "--notebooks-html=report/index.html")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["notebooks: 2 cases recorded in *; HTML report in report/index.html"])
    page = (pytester.path / "report" / "index.html").read_text()
    assert "default-src 'none'" in page
    assert not re.search(r"""(?:src|href)=["']?(?:https?:)?//""", page), "an external resource"
    assert page.count('<tr data-outcome="') == 2
    assert re.search(
        r'<h1 class="verdict-failed"><span class="badge bad">failed</span> Notebook tests: 1 \w+, 1 \w+</h1>', page
    )
    assert "cell 3 (In [4]): AssertionError: no us data" in page
    assert '<a href="#case-0">cell 3</a>' in page  # the table links to the rendered failure
    (notebook,) = frames(page)  # the failing case's notebook, a document of its own in a sandboxed frame
    assert notebook["sandbox"] == ""
    assert notebook["title"] == "executed notebook nb.ipynb::us: failed"
    assert 'class="cell border-box-sizing code_cell rendered celltag_pytest-notebooks-failing"' in notebook["srcdoc"]


def frames(page: str) -> list[dict[str, str]]:
    """The attributes of each <iframe> in ``page``, unescaped (``srcdoc`` is the notebook's document)."""
    found: list[dict[str, str]] = []

    class Frames(HTMLParser):
        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            if tag == "iframe":
                found.append({name: value or "" for name, value in attrs})

    Frames().feed(page)
    return found


@pytest.mark.kernel
def test_the_example_report_in_chromium(tmp_path: Path) -> None:
    browser = chromium()
    root = copy_example(tmp_path / "example_repo")
    with (root / "notebooks" / "vid_agg.yaml").open("a") as fixture:
        fixture.write("  mars:\n    region_code: mars\n")  # a region without data: the case fails
    args = ("-p", "no:cacheprovider", "-n", "2", "--notebooks-html=report.html", "notebooks")
    run = run_pytest(root, *args, timeout=900)
    assert run.returncode == 1, run.stdout
    cases = json.loads((root / "notebook-outputs" / "results.json").read_text())["cases"]
    report = root / "report.html"
    dom = subprocess.run(
        [
            browser,
            *CHROMIUM_FLAGS,
            f"--user-data-dir={tmp_path / 'profile'}",
            "--dump-dom",
            report.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert dom.returncode == 0, dom.stderr
    html = dom.stdout
    assert 'data-ready="yes"' in html  # the page's script ran: sorting and filtering are wired
    assert html.count('<tr data-outcome="') == len(cases) == 11  # 10 cases of example_repo + mars
    assert '<tr data-outcome="failed">' in html
    assert "notebooks/vid_agg.ipynb::mars: failed" in html
    assert "celltag_pytest-notebooks-failing" in html  # the failing cell is highlighted
    assert "no plays in region 'mars' on 2017-01-01" in html
    # nothing fetched, nothing blocked by the page's policy (the browser's own background traffic aside)
    assert 'data-resources="0"' in html
    assert 'data-blocked="0"' in html

    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "example-report.png"
    subprocess.run(
        [
            browser,
            *CHROMIUM_FLAGS,
            f"--user-data-dir={tmp_path / 'profile2'}",
            PAINT_FRAMES,
            "--window-size=1280,1600",
            f"--screenshot={shot}",
            f"{report.as_uri()}#case-0",
        ],
        capture_output=True,
        timeout=300,
        check=True,
    )
    assert shot.stat().st_size > 10_000


@pytest.mark.kernel
def test_nbreview_builds_the_same_report_from_a_results_file(pytester: pytest.Pytester) -> None:
    write_notebook(pytester.path / "nb.ipynb", [PARAMS, "assert region_code != 'us', 'no us data'"])
    (pytester.path / "nb.yaml").write_text("cases:\n  fr: {region_code: fr}\n  us: {region_code: us}\n")
    pytester.runpytest("-p", "no:xdist").assert_outcomes(passed=1, failed=1)
    run = subprocess.run(
        [sys.executable, "-m", "pytest_notebooks.review.cli", "--format", "html", "--output", "from-results.html"],
        cwd=pytester.path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    page = (pytester.path / "from-results.html").read_text()
    assert page.count('<tr data-outcome="') == 2
    assert "celltag_pytest-notebooks-failing" in frames(page)[0]["srcdoc"]
    version = subprocess.run(
        [sys.executable, "-m", "pytest_notebooks.review.cli", "--version"], capture_output=True, text=True, check=True
    )
    assert version.stdout.startswith("nbreview (pytest-notebooks ")


def test_terminal_hyperlinks_and_colours_are_stripped() -> None:
    from pytest_notebooks.cases.notebook import strip_ansi

    text = "a\x1b[31mred\x1b[0m \x1b]8;;http://evil.example\x07link\x1b]8;;\x07 \x1b]8;;u\x1b\\t\x1b]8;;\x1b\\"
    assert strip_ansi(text) == "ared link t"


@pytest.mark.kernel
def test_log_output_prints_each_cell_and_its_masked_output(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SERVICE_TOKEN", "tok-very-secret-42")
    write_notebook(
        pytester.path / "nb.ipynb",
        [PARAMS, "import os\nprint('hello', region_code)", "print(os.environ['SERVICE_TOKEN'])"],
    )
    (pytester.path / "nb.yaml").write_text("cases:\n  fr: {region_code: fr}\n")
    result = pytester.runpytest_subprocess("-p", "no:xdist", "-s", "--notebooks-log-output")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        [
            "[[]nb.ipynb::fr] cell 2/3 started",
            "hello fr",
            "[[]nb.ipynb::fr] cell 3/3 started",
            "***",
        ]
    )
    assert "tok-very-secret-42" not in result.stdout.str()


def test_a_results_file_cannot_make_the_report_embed_another_file(tmp_path: Path) -> None:
    """Outputs named by the results file are read only when they are notebooks of the run's directories."""
    secret = tmp_path / "elsewhere" / "notes.txt"
    secret.parent.mkdir()
    secret.write_text('{"not": "a notebook of this run"} PRIVATE-MARKER')
    stray = tmp_path / "elsewhere" / "other.ipynb"
    stray.write_text("PRIVATE-MARKER")
    root = tmp_path / "repo"
    root.mkdir()
    failure = {"kind": "error", "summary": "cell 1: ValueError: x"}
    cases = [
        {
            "nodeid": f"a.ipynb::{n}",
            "notebook": "a.ipynb",
            "case": n,
            "outcome": "failed",
            "failure": failure,
            "output": out,
        }
        for n, out in (("text", str(secret)), ("outside", str(stray)), ("dotdot", "../elsewhere/other.ipynb"))
    ]
    page = render_html(results_document(cases=cases, output_dir=str(root / "notebook-outputs")), root)
    assert "PRIVATE-MARKER" not in page
    assert page.count("not rendered: the results file names no executed notebook of this run here") == 3


def test_every_executed_notebook_is_a_link_from_the_report_folder(tmp_path: Path) -> None:
    """Passed cases too; relative to the report, so the links open from a CI artifact; never a scheme."""
    root = tmp_path / "repo"
    outputs = root / "notebook-outputs" / "nb"
    outputs.mkdir(parents=True)
    for name in ("ok", "bad", "with space"):
        (outputs / f"{name}.ipynb").write_text("{}")
    (root / "javascript:alert(1).ipynb").write_text("{}")
    cases = [
        {"case": "ok", "outcome": "passed", "output": "notebook-outputs/nb/ok.ipynb"},
        {"case": "bad", "outcome": "failed", "output": "notebook-outputs/nb/bad.ipynb", "failure": {"summary": "x"}},
        {"case": "sp", "outcome": "passed", "output": "notebook-outputs/nb/with space.ipynb"},
        {"case": "js", "outcome": "passed", "output": "javascript:alert(1).ipynb"},
        {"case": "away", "outcome": "passed", "output": "../elsewhere.ipynb"},
        {"case": "s3", "outcome": "passed", "output": "s3://bucket/out/nb/ok.ipynb"},
    ]
    document = results_document(cases=cases, output_dir=str(root / "notebook-outputs"))
    page = render_html(document, root, report_dir=root / "notebook-outputs")
    hrefs = re.findall(r'<a href="([^"#]+)"', page)
    assert sorted(set(hrefs)) == sorted(
        {"./nb/ok.ipynb", "./nb/bad.ipynb", "./nb/with%20space.ipynb", "../javascript%3Aalert%281%29.ipynb"}
    )
    assert page.count('href="./nb/bad.ipynb"') == 2  # the table row and the failure's section
    assert "javascript:" not in "".join(hrefs)
    elsewhere = render_html(document, root, report_dir=tmp_path / "site")
    assert 'href="../repo/notebook-outputs/nb/ok.ipynb"' in elsewhere
    assert re.findall(r'<a href="([^"#]+)"', render_html(document, root)) == []  # no report folder, no links
