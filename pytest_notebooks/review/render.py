"""Results + template changes + snapshot diffs -> the review document (Markdown or text). Pure.

The Markdown is made for a GitHub PR comment and the job summary:

- a hidden marker line, so a workflow finds and updates its own comment;
- a verdict and a table, one row per (notebook, case);
- "Template changes": a <details> section per changed notebook with its per-cell source diffs;
- "Output changes": a <details> section per snapshot mismatch with its per-cell output diffs.

It never exceeds the budget (60,000 characters by default, under GitHub's 65,536 limit for a
comment): sections share what is left after the table, each cut at a line boundary with a
"truncated" line. Notebook content cannot break the Markdown: every diff sits in a fence longer
than any backtick run inside it, names are HTML-escaped, and ANSI codes are stripped.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pytest_notebooks.cases.notebook import strip_ansi
from pytest_notebooks.review.changes import TemplateChange
from pytest_notebooks.review.diff import CellChange

MARKER = "<!-- pytest-notebooks:review -->"
DEFAULT_BUDGET = 60_000
MAX_TABLE_ROWS = 100
TRUNCATED = "… truncated, see the artifact for the full diff"
_ICONS = {"passed": "✅", "failed": "❌", "error": "❌", "skipped": "⏭️", "xfailed": "⚠️", "xpassed": "⚠️"}
_BACKTICKS = re.compile(r"`+")


@dataclass(frozen=True)
class Section:
    """A collapsible part of the report: a title and the diff lines inside it."""

    title: str
    lines: tuple[str, ...]


@dataclass(frozen=True)
class Review:
    """Everything the report shows, gathered before rendering."""

    results: dict[str, Any] | None
    templates: tuple[TemplateChange, ...]
    base: str | None
    head: str | None
    problem: str = ""  # why template changes could not be listed

    def verdict(self) -> tuple[bool, str]:
        """(ok, one line): ``1 failed, 4 passed`` or ``no test results``."""
        if not self.results:
            return True, "no test results in this report"
        summary: dict[str, int] = self.results.get("summary", {})
        order = ["failed", "error", "passed", "skipped", "xfailed", "xpassed"]
        parts = [f"{summary[k]} {k}" for k in order if summary.get(k)]
        ok = not summary.get("failed") and not summary.get("error")
        return ok, ", ".join(parts) or "no cases ran"

    def template_sections(self, indent: str = "") -> list[Section]:
        sections = []
        for change in self.templates:
            lines = tuple(strip_ansi(line) for line in change.diff.lines(indent))
            sections.append(Section(f"{change.path}: {change.summary()}", lines))
        return sections

    def output_sections(self, indent: str = "") -> list[Section]:
        sections = []
        for case in (self.results or {}).get("cases", []):
            snapshot = case.get("snapshot") or {}
            if snapshot.get("status") != "mismatch":
                continue
            changes = [CellChange.from_json(c) for c in snapshot.get("changes", [])]
            lines = tuple(strip_ansi(line) for change in changes for line in change.lines(indent))
            title = f"{case['notebook']}::{case['case']}: outputs differ from {snapshot.get('path')}"
            sections.append(Section(title, lines))
        return sections


def render_markdown(review: Review, budget: int = DEFAULT_BUDGET) -> str:
    """The review as GitHub Markdown, at most ``budget`` characters."""
    ok, verdict = review.verdict()
    title = f"{'✅' if ok else '❌'} Notebook tests: {_cell(verdict)}" if review.results else "Notebook review"
    head = [MARKER, f"### {title}", ""]
    if not review.results:
        head += ["No test results in this report (nbreview --results names the file).", ""]
    commit = ((review.results or {}).get("git") or {}).get("commit")
    if commit:
        head += [f"Tested commit `{commit[:12]}`.", ""]
    head += _table(review.results)
    parts: list[tuple[str, list[Section]]] = [
        (f"#### Template changes ({_cell(_range(review))})", review.template_sections()),
        ("#### Output changes (snapshots)", review.output_sections()),
    ]
    if review.problem:
        head += [f"Template changes could not be listed: {_cell(review.problem)}", ""]
    text = "\n".join(head) + "\n"
    headings = "".join(f"\n{title}\n\n" for title, sections in parts if sections)
    remaining = budget - len(text) - len(headings) - 200
    all_sections = [s for _, sections in parts for s in sections]
    shares = _shares([_markdown_section(s, None) for s in all_sections], max(remaining, 0))
    rendered = iter(_markdown_section(s, share) for s, share in zip(all_sections, shares, strict=True))
    for title, sections in parts:
        if sections:
            text += f"\n{title}\n\n" + "".join(next(rendered) for _ in sections)
    if len(text) > budget:  # only when the table alone is larger than the budget
        text = text[: budget - len(TRUNCATED) - 2].rsplit("\n", 1)[0] + "\n" + TRUNCATED + "\n"
    return text


def render_text(review: Review) -> str:
    """The review for a terminal: the same content, no HTML, no budget."""
    ok, verdict = review.verdict()
    lines = [f"Notebook tests {'passed' if ok else 'FAILED'}: {verdict}"]
    if review.problem:
        lines.append(f"Template changes could not be listed: {review.problem}")
    for case in _ordered((review.results or {}).get("cases", [])):
        failure = (case.get("failure") or {}).get("summary", "")
        lines.append(f"  {case['outcome']:<8} {case['notebook']}::{case['case']}  {failure}".rstrip())
    for title, sections in (
        (f"Template changes ({_range(review)})", review.template_sections("    ")),
        ("Output changes (snapshots)", review.output_sections("    ")),
    ):
        if sections:
            lines += ["", title]
            for section in sections:
                lines += ["", f"  {section.title}", *(f"    {line}" for line in section.lines)]
    return "\n".join(lines) + "\n"


def _range(review: Review) -> str:
    if review.base is None:
        return "not compared"
    return f"{review.base}...{review.head or 'HEAD'}"


def _cell(text: str) -> str:
    """Text safe inside a Markdown table cell or heading: no HTML, pipes, backticks or newlines."""
    escaped = html.escape(strip_ansi(text)).replace("|", "&#124;").replace("`", "&#96;")
    return " ".join(escaped.split())


def _table(results: dict[str, Any] | None) -> list[str]:
    cases = (results or {}).get("cases", [])
    if not cases:
        return []
    rows = ["| | notebook | case | duration | failing cell |", "|---|---|---|---|---|"]
    ordered = _ordered(cases)
    for case in ordered[:MAX_TABLE_ROWS]:
        failure = (case.get("failure") or {}).get("summary", "")
        rows.append(
            f"| {_ICONS.get(case['outcome'], case['outcome'])} | {_cell(case['notebook'])} | {_cell(case['case'])} "
            f"| {case.get('duration', 0):.1f} s | {_cell(failure)} |"
        )
    if len(ordered) > MAX_TABLE_ROWS:
        rows.append(f"| | {len(ordered) - MAX_TABLE_ROWS} more cases | | | see the artifact |")
    return [*rows, ""]


def _ordered(cases: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Cases that did not pass first, then by notebook and case: the same in every run."""
    return sorted(cases, key=lambda c: (c["outcome"] == "passed", c["notebook"], c["case"]))


def fence_for(lines: Sequence[str]) -> str:
    """A backtick fence longer than any run of backticks in ``lines`` (at least three)."""
    longest = max((len(m.group()) for line in lines for m in _BACKTICKS.finditer(line)), default=0)
    return "`" * max(3, longest + 1)


def _markdown_section(section: Section, share: int | None) -> str:
    """One <details> block; with a ``share``, its lines are cut to fit in that many characters."""
    summary = f"<details><summary>{html.escape(strip_ansi(section.title))}</summary>\n\n"
    lines = list(section.lines) or ["(no cell changes)"]
    fence = fence_for(lines)
    start, end = f"{fence}diff\n", f"{fence}\n\n</details>\n\n"
    full = summary + start + "\n".join(lines) + "\n" + end
    if share is not None and len(full) > share:
        room = share - len(summary) - len(start) - len(end) - len(TRUNCATED) - 1
        kept, used = [], 0
        for line in lines:
            if used + len(line) + 1 > room:
                kept.append(TRUNCATED)
                break
            kept.append(line)
            used += len(line) + 1
        return summary + start + "\n".join(kept) + "\n" + end
    return full


def _shares(sizes: list[str], budget: int) -> list[int]:
    """Split ``budget`` over sections: small ones get what they need, the rest share evenly."""
    shares = [0] * len(sizes)
    remaining, pending = budget, sorted(range(len(sizes)), key=lambda i: len(sizes[i]))
    while pending:
        fair = remaining // len(pending)
        index = pending.pop(0)
        shares[index] = min(len(sizes[index]), fair)
        remaining -= shares[index]
    return shares
