"""The review Markdown holds its promises for any content: a property test with hypothesis.

Hostile names and contents (newlines, backticks, ``<details>``, the marker, mentions, links,
terminal escapes, long lines) and table sizes go in; the document is parsed with markdown-it-py
(CommonMark + tables, as GitHub's parser is) and checked by ``check_document``
(tests/review_checks.py), which the other review tests use too.
"""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from pytest_notebooks.models import CellChange
from pytest_notebooks.review.changes import Change, SnapshotUpdate, TemplateChange
from pytest_notebooks.review.diff import NotebookDiff
from pytest_notebooks.review.fixturediff import CaseChange, FixtureChange, ValueChange
from pytest_notebooks.review.render import MARKER, MIN_BUDGET, Review, render_markdown
from tests.records import results_document
from tests.review_checks import check_document

# -- the property ----------------------------------------------------------------------------------

HOSTILE = [
    "\n",
    "\r\n",
    "`",
    "```",
    "````` fence",
    "<details>",
    "</details>",
    "<summary>",
    "</summary></details><img src=x onerror=alert(1)>",
    "<script>alert(1)</script>",
    MARKER,
    "<!--",
    "-->",
    "@octocat",
    " @team/reviewers ",
    "[click](https://evil.example)",
    "![img](https://evil.example/x.png)",
    "https://evil.example/path",
    "www.evil.example",
    "#123",
    "GH-77",
    "\x1b]8;;https://evil.example\x07link\x1b]8;;\x07",
    "\x1b[31mred\x1b[0m",
    "|",
    "\\|",
    "&#124;",
    "&amp;",
    "\u202e",
    "\x00",
    "# heading",
    "x" * 3000,
]
hostile_text = st.lists(st.one_of(st.sampled_from(HOSTILE), st.text(max_size=20)), max_size=8).map("".join)
OUTCOMES = ["passed", "failed", "error", "skipped", "xfailed", "xpassed", "interrupted", "crashed", "not run"]


@st.composite
def cases(draw: st.DrawFn) -> dict[str, Any]:
    long = draw(st.sampled_from([0, 0, 0, 72_000]))
    return {
        "notebook": draw(hostile_text),
        "case": draw(hostile_text),
        "outcome": draw(st.sampled_from(OUTCOMES)),
        "duration": draw(st.floats(0, 1000)),
        "failure": {"summary": draw(hostile_text) + "y" * long},
    }


@st.composite
def changes(draw: st.DrawFn) -> list[Change]:
    line = hostile_text
    lines = st.lists(line, max_size=6).map(tuple)
    cell = st.builds(CellChange, st.just("modified"), st.just("code"), st.just(1), st.just(1), lines, lines)
    diff = st.lists(cell, max_size=3).map(lambda c: NotebookDiff(tuple(c)))
    template = st.builds(TemplateChange, st.just("modified"), hostile_text, st.none(), diff, st.just(3))
    value = st.builds(ValueChange, hostile_text, hostile_text, hostile_text)
    case = st.builds(CaseChange, hostile_text, st.just("changed"), st.lists(value, max_size=2).map(tuple), st.just(()))
    fixture = st.builds(
        FixtureChange,
        st.just("modified"),
        hostile_text,
        st.none(),
        hostile_text,
        st.lists(value, max_size=2).map(tuple),
        st.just(()),
        st.lists(case, max_size=2).map(tuple),
    )
    update = st.builds(SnapshotUpdate, st.just("modified"), hostile_text, hostile_text, hostile_text, diff)
    found: list[Change] = draw(st.lists(st.one_of(template, fixture, update), max_size=4))
    copies = draw(st.sampled_from([1, 1, 1, 40, 2000]))  # 2,000 changed notebooks, as in the probe's sweep
    return found * copies


@settings(max_examples=60, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(
    table=st.lists(cases(), max_size=12),
    table_copies=st.sampled_from([1, 1, 9, 150]),
    found=changes(),
    commit=st.one_of(st.just("0123456789abcdef0123456789abcdef01234567"), hostile_text),
    dirty=st.booleans(),
    base=st.one_of(st.none(), hostile_text),
    budget=st.sampled_from([MIN_BUDGET, 9_999, 60_000]),
)
def test_every_document_holds_its_promises(
    table: list[dict[str, Any]],
    table_copies: int,
    found: list[Change],
    commit: str,
    dirty: bool,
    base: str | None,
    budget: int,
) -> None:
    all_cases = table * table_copies
    results = {"git": {"commit": commit, "dirty": dirty}, "cases": all_cases}
    markdown = render_markdown(Review(results_document(results), tuple(found), base, "HEAD"), budget=budget)
    checked = check_document(markdown, budget)
    event("shortened" if "This review was shortened" in markdown else "whole")  # --hypothesis-show-statistics
    event("table cut" if "more cases |" in markdown else "table whole")
    assert checked.counted == len(all_cases)
    if all_cases:
        assert checked.rows == len(all_cases)
    if dirty:
        assert "uncommitted changes" in markdown


def test_the_checker_catches_what_it_should() -> None:
    """The checker itself: each broken document is refused."""
    good = render_markdown(Review(results_document(cases=[]), (), "main", "HEAD"))
    check_document(good)
    broken = [
        good + "\n```diff\nopen",  # an open fence
        good + "\n<details><summary>x</summary>\n\n",  # an open <details>
        good + MARKER,  # a second marker
        good + "\nping @octocat\n",  # a live mention
        good + "\n[x](https://evil.example)\n",  # a link
        good + "\n<img src=x>\n",  # raw HTML
    ]
    for document in broken:
        try:
            check_document(document)
        except AssertionError:
            continue
        raise AssertionError(f"not caught: {document[-40:]!r}")
