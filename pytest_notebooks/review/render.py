"""Results + the PR's changes -> the review document (Markdown or text). Pure.

The Markdown is made for a GitHub PR comment and the job summary::

    <!-- pytest-notebooks:review -->         the marker: exactly once, first
    ### ❌ Notebook tests: 1 failed, 4 passed
    notes: tested commit, uncommitted changes, session, shortened, missing results
    | outcome | notebook | case | duration | failing cell |     every case, or "N more cases"
    #### Template changes (base...head)      a <details> per notebook: per-cell source diffs
    #### Fixture changes                     a <details> per fixture: cases and settings
    #### Output changes (snapshots)          a <details> per snapshot updated in the PR (old and
                                             new outputs) and per case that differed from its snapshot

Once a base is given every heading is there, with "none" when nothing changed.

Size: never more than the budget (60,000 by default, under GitHub's 65,536-character limit),
counted in UTF-8 bytes, so it also survives the comment workflow's ``head -c 60000``. Table
cells and diff lines are capped; the table gets at most half the room when there are diffs;
every section keeps at least its title, and the rest is shared. A section cut short says so in
its title and in the fence; sections that do not fit are counted ("12 more not shown"); and a
note under the verdict says the review was shortened. The cut is never inside a block: every
fence and every ``<details>`` is closed, whatever the size.

Safety: notebook content cannot break the Markdown, ping people or inject markup. Diffs sit in
fences longer than any backtick run inside them; every other piece of text is HTML-escaped,
with ``| ` \\`` and the ``(`` of ``](`` as entities, ``@`` mentions, ``#123`` references and bare URLs broken with a
zero-width space; terminal escape sequences (CSI colours, OSC-8 links) are removed and control
characters shown as escapes. Content repeating the marker is defused, so the marker appears once.
"""

from __future__ import annotations

import html
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pytest_notebooks.results.record import CaseRecord, Outcome, ResultsDocument, SessionState
from pytest_notebooks.review.changes import Change, SnapshotUpdate, TemplateChange
from pytest_notebooks.review.fixturediff import FixtureChange
from pytest_notebooks.review.normalize import strip_terminal

MARKER = "<!-- pytest-notebooks:review -->"
DEFAULT_BUDGET = 60_000
MIN_BUDGET = 4_000
MAX_TABLE_ROWS = 100
MAX_LINE = 1_000  # characters of one diff line
MAX_NAME = 200  # characters of a path, case id or title
MAX_MESSAGE = 300  # characters of a failure in the table
TRUNCATED = "… truncated to fit the comment; `nbreview --format text` prints everything"
_ORDER = tuple(  # as pytest lists them in its summary line
    Outcome(name)
    for name in ("failed", "error", "crashed", "interrupted", "not run", "passed", "skipped", "xfailed", "xpassed")
)
_ICONS = {
    Outcome.PASSED: "✅",
    Outcome.FAILED: "❌",
    Outcome.ERROR: "❌",
    Outcome.CRASHED: "❌",
    Outcome.INTERRUPTED: "❌",
    Outcome.SKIPPED: "⏭️",
    Outcome.XFAILED: "⚠️",
    Outcome.XPASSED: "⚠️",
    Outcome.NOT_RUN: "❗",
}
_BACKTICKS = re.compile(r"`+")
_HEX = re.compile(r"[0-9a-f]{7,64}")
# C0/C1 controls, line and paragraph separators, bidirectional overrides ("Trojan Source")
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_ZWSP = "\u200b"
_DEFUSED_MARKER = MARKER.replace("<!--", f"<!-{_ZWSP}-")
# GitHub turns these into mentions, issue links and links after rendering (entities decoded)
_LIVE = re.compile(r"@|#(?=\d)|\bGH-(?=\d)|:(?=//)|\bwww(?=\.)", re.IGNORECASE)


@dataclass(frozen=True)
class Section:
    """A collapsible part of the report: a title and the diff lines inside it."""

    title: str
    lines: tuple[str, ...]


@dataclass(frozen=True)
class Part:
    """A heading, its sections, and what to say when it has none."""

    heading: str
    sections: tuple[Section, ...]
    empty: str


@dataclass(frozen=True)
class Review:
    """Everything the report shows, gathered before rendering.

    ``templates`` holds every change of the PR that the review shows (templates, fixtures and
    snapshots, from ``changes.pull_request_changes``); the name is the one the plugin passes.
    """

    results: ResultsDocument | None
    templates: tuple[Change, ...]
    base: str | None
    head: str | None
    problem: str = ""  # why the PR's changes could not be listed
    results_note: str = ""  # why there are no results, when known

    def cases(self) -> tuple[CaseRecord, ...]:
        return () if self.results is None else self.results.cases

    def counts(self) -> Counter[Outcome]:
        """Cases by outcome, counted from the cases themselves."""
        return Counter(case.outcome for case in self.cases())

    def verdict(self) -> tuple[bool, str]:
        """(ok, one line): ``1 failed, 4 passed`` or ``no test results``."""
        if not self.results:
            return True, "no test results in this report"
        counts = self.counts()
        parts = [f"{counts[k]} {k}" for k in _ORDER if counts[k]]
        ok = all(outcome.ok for outcome in counts)
        return ok, ", ".join(parts) or "no cases ran"

    def parts(self, indent: str = "") -> list[Part]:
        """The three change headings with their sections, in the order they are shown."""
        templates = [c for c in self.templates if isinstance(c, TemplateChange)]
        fixtures = [c for c in self.templates if isinstance(c, FixtureChange)]
        updates = [c for c in self.templates if isinstance(c, SnapshotUpdate)]
        if self.base is None:
            not_compared = "Not compared: no base revision was given (`nbreview --base origin/main`)."
            empty = (not_compared,) * 3
        elif self.problem:
            empty = (f"Could not be listed: {self.problem[:MAX_MESSAGE]}",) + ("Could not be listed (see above).",) * 2
        else:
            empty = ("No template changed.", "No fixture changed.", "No snapshot changed in this pull request.")
        mismatches = self.mismatch_sections(indent)
        output_empty = empty[2]
        if not mismatches and self.results:
            if any(case.snapshot is not None for case in self.cases()):
                output_empty += " No case differed from its snapshot."
            else:  # nothing was compared: saying none differed would claim a check that did not run
                output_empty += " No case has an output snapshot to compare with."
        return [
            Part(
                f"Template changes ({_range(self)})",
                tuple(Section(f"{c.path}: {c.summary()}", tuple(c.diff.lines(indent))) for c in templates),
                empty[0],
            ),
            Part(
                "Fixture changes",
                tuple(Section(f"{c.notebook} (fixture {c.path}): {c.summary()}", tuple(c.lines())) for c in fixtures),
                empty[1],
            ),
            Part(
                "Output changes (snapshots)",
                tuple(
                    Section(f"{c.notebook}::{c.case}: {c.summary()} ({c.path})", tuple(c.diff.lines(indent)))
                    for c in updates
                )
                + tuple(mismatches),
                output_empty,
            ),
        ]

    def mismatch_sections(self, indent: str = "") -> list[Section]:
        """One section per case whose run differed from its committed snapshot."""
        sections = []
        for case in self.cases():
            snapshot = case.snapshot
            if snapshot is None or snapshot.status != "mismatch":
                continue
            lines = tuple(line for change in snapshot.changes for line in change.lines(indent))
            title = f"{case.notebook}::{case.case}: this run's outputs differ from the snapshot {snapshot.path}"
            sections.append(Section(title, lines))
        return sections


# -- Markdown ------------------------------------------------------------------------------------


def render_markdown(review: Review, budget: int = DEFAULT_BUDGET) -> str:
    """The review as GitHub Markdown, at most ``budget`` bytes of UTF-8, every block closed."""
    if budget < MIN_BUDGET:
        raise ValueError(f"a budget of {budget} is too small for a review; give at least {MIN_BUDGET}")
    parts = review.parts()
    notes = _notes(review)
    fixed = _size(_header(review, notes)) + _size(_shortened_note(99_999, 99_999)) + 2
    fixed += sum(_size(_heading(p)) + _size(_omitted_line(99_999)) for p in parts)
    fixed += sum(_size(_empty_line(p)) for p in parts if not p.sections)
    room = budget - fixed
    if room < budget // 4:  # only with pathological notes or names: still a whole, honest document
        return _minimal(review, budget)
    blocks = [[_Block.of(s) for s in p.sections] for p in parts]
    wanted = sum(block.full for part in blocks for block in part)
    table = _table(review, room - min(wanted, room // 2))
    room -= _size(table)

    # Each part shows its first sections; round-robin so one long part does not starve the others.
    chosen: list[tuple[int, int]] = []
    used = 0
    for index in range(max((len(prepared) for prepared in blocks), default=0)):
        for number, prepared in enumerate(blocks):
            if index < len(prepared) and used + prepared[index].minimum <= room:
                chosen.append((number, index))
                used += prepared[index].minimum
    chosen.sort()
    shares = _shares([blocks[n][i].minimum for n, i in chosen], [blocks[n][i].full for n, i in chosen], room)
    share = dict(zip(chosen, shares, strict=True))

    body, cut, omitted = "", 0, 0
    for number, part in enumerate(parts):
        body += _heading(part)
        if not part.sections:
            body += _empty_line(part)
        left_out = 0
        for index, block in enumerate(blocks[number]):
            if (number, index) not in share:
                left_out += 1
                continue
            text, was_cut = block.render(share[(number, index)])
            body += text
            cut += was_cut
        if left_out:
            body += _omitted_line(left_out)
            omitted += left_out
    header = _header(review, [*notes, _shortened_note(cut, omitted)] if cut or omitted else notes)
    document = header + table + body
    assert _size(document) <= budget, (_size(document), budget)  # guaranteed by the reservations above
    return document


@dataclass(frozen=True)
class _Block:
    """A section prepared for the budget: its lines made safe, its fence, its full and least sizes."""

    title: str
    lines: tuple[str, ...]
    fence: str
    full: int
    minimum: int

    @classmethod
    def of(cls, section: Section) -> _Block:
        lines = tuple(_fence_line(line) for line in section.lines) or ("(no changes to show)",)
        fence = fence_for(lines)
        title = _inline(section.title, MAX_NAME * 2, name=True)
        full = _size(_block(title, lines, fence))
        return cls(title, lines, fence, full, _size(_block(title + " (truncated)", (TRUNCATED,), fence)))

    def render(self, room: int) -> tuple[str, bool]:
        """The <details> block in at most ``max(room, minimum)`` bytes; (text, whether cut)."""
        if self.full <= room:
            return _block(self.title, self.lines, self.fence), False
        left = room - self.minimum
        kept = []
        for line in self.lines:
            left -= _size(line) + 1
            if left < 0:
                break
            kept.append(line)
        return _block(self.title + " (truncated)", (*kept, TRUNCATED), self.fence), True


def _block(title: str, lines: Sequence[str], fence: str) -> str:
    """``title`` is escaped already; ``lines`` are fence-safe and ``fence`` is longer than their backtick runs."""
    return (
        f"<details><summary>{title}</summary>\n\n{fence}diff\n"
        + "".join(f"{line}\n" for line in lines)
        + f"{fence}\n\n</details>\n\n"
    )


def _minimal(review: Review, budget: int) -> str:
    """The verdict as counts only, for when even the notes and headings do not fit."""
    counts = review.counts()
    passing = sum(n for outcome, n in counts.items() if outcome.ok)
    verdict = f"{sum(counts.values()) - passing} not passed, {passing} passed (or skipped, xfailed)"
    title = f"{'✅' if passing == sum(counts.values()) else '❌'} Notebook tests: {verdict}"
    note = f"The review does not fit in {budget} bytes; `nbreview --format text` prints it all."
    return f"{MARKER}\n### {title if review.results else 'Notebook review'}\n\n{note}\n"


def _size(text: str) -> int:
    return len(text.encode("utf-8"))


def _header(review: Review, notes: Sequence[str]) -> str:
    ok, verdict = review.verdict()
    title = (
        f"{'✅' if ok else '❌'} Notebook tests: {_inline(verdict, 2 * MAX_MESSAGE)}"
        if review.results
        else "Notebook review"
    )
    lines = [MARKER, f"### {title}", ""]
    for note in notes:
        lines += [note, ""]
    return "\n".join(lines) + "\n"


def _notes(review: Review) -> list[str]:
    """The lines under the verdict: where the results come from and how far to trust them."""
    notes = []
    if not review.results:
        note = review.results_note or "No test results in this report (nbreview --results names the file)."
        notes.append(_inline(note, 2 * MAX_MESSAGE))
        return notes
    git = review.results.git
    commit = None if git is None else git.commit
    if commit is not None and _HEX.fullmatch(commit):
        notes.append(f"Tested commit `{commit[:12]}`.")
    elif commit:
        notes.append(f"Tested commit (not a commit id): {_inline(commit, 80)}.")
    if git is not None and git.dirty:
        notes.append(
            "⚠️ **The tested working tree had uncommitted changes** (results file `git.dirty`): "
            "the results below are for those files, not exactly for the commit."
        )
    session = review.results.session
    if session.state is not SessionState.COMPLETED:
        workers = session.crashed_workers
        crashed = f"; crashed workers: {', '.join(workers)}" if workers else ""
        notes.append(f"⚠️ **The test session did not complete**: {_inline(session.state.value + crashed, MAX_MESSAGE)}.")
    sessions = review.results.sessions
    if len(sessions) > 1:
        notes.append(f"These results were gathered over {len(sessions)} test sessions of the same commit.")
    return notes


def _shortened_note(cut: int, omitted: int) -> str:
    return (
        f"⚠️ This review was shortened to fit a PR comment: {cut} diff(s) cut, {omitted} left out "
        "(marked below). `nbreview --format text` prints everything."
    )


def _heading(part: Part) -> str:
    return f"#### {_inline(part.heading, 2 * MAX_NAME)}\n\n"


def _empty_line(part: Part) -> str:
    return f"{_inline(part.empty, MAX_MESSAGE + 100)}\n\n"


def _omitted_line(count: int) -> str:
    return f"… and {count} more not shown here, to fit the comment (`nbreview --format text` lists them).\n\n"


def _range(review: Review) -> str:
    if review.base is None:
        return "not compared"
    return f"{_text(review.base)[:100]}...{_text(review.head or 'HEAD')[:100]}"


def _table(review: Review, room: int) -> str:
    """Every case, in order, as many rows as ``room`` bytes and MAX_TABLE_ROWS allow, then a count of the rest."""
    cases = _ordered(review.cases())
    if not cases:
        return ""
    lines = ["| outcome | notebook | case | duration | failing cell |", "|---|---|---|--:|---|"]
    used = sum(_size(line) + 1 for line in lines) + 1 + _size(_more_row(cases)) + 1
    shown = 0
    for case in cases[:MAX_TABLE_ROWS]:
        row = _row(case)
        if used + _size(row) + 1 > room:
            break
        lines.append(row)
        used += _size(row) + 1
        shown += 1
    if shown < len(cases):
        lines.append(_more_row(cases[shown:]))
    if shown == 0 and _size("\n".join(lines)) + 2 > room:
        return ""  # not even the count fits; the verdict line above still counts every case
    return "\n".join(lines) + "\n\n"


def _row(case: CaseRecord) -> str:
    seconds = "" if case.outcome is Outcome.NOT_RUN else f"{case.duration:.1f} s"
    notebook = _inline(case.notebook, MAX_NAME, name=True)
    name = _inline(case.case, MAX_NAME, name=True)
    icon = _ICONS[case.outcome]
    return f"| {icon} {case.outcome} | {notebook} | {name} | {seconds} | {_inline(case.summary(), MAX_MESSAGE)} |"


def _more_row(rest: Sequence[CaseRecord]) -> str:
    counts = Counter(case.outcome for case in rest)
    what = ", ".join(f"{counts[k]} {k}" for k in _ORDER if counts[k])
    return f"| … | {len(rest)} more cases | | | {_inline(what, MAX_MESSAGE)}: see results.json |"


def _shares(minimums: list[int], sizes: list[int], room: int) -> list[int]:
    """Each section its minimum, then the rest of ``room``: small ones get what they need, others share evenly."""
    shares = list(minimums)
    remaining = room - sum(minimums)
    pending = sorted(range(len(sizes)), key=lambda i: sizes[i] - minimums[i])
    while pending and remaining > 0:
        fair = remaining // len(pending)
        index = pending.pop(0)
        extra = min(max(sizes[index] - minimums[index], 0), fair)
        shares[index] += extra
        remaining -= extra
    return shares


def fence_for(lines: Sequence[str]) -> str:
    """A backtick fence longer than any run of backticks in ``lines`` (at least three)."""
    longest = max((len(m.group()) for line in lines for m in _BACKTICKS.finditer(line)), default=0)
    return "`" * max(3, longest + 1)


def _fence_line(line: str) -> str:
    """A diff line as it may sit in a fence: no escapes or controls, not the marker, capped."""
    text = _visible(line).replace(MARKER, _DEFUSED_MARKER)
    if len(text) > MAX_LINE:
        text = f"{text[:MAX_LINE]}… ({len(text) - MAX_LINE} more characters)"
    return text


def _inline(text: str, limit: int = MAX_NAME, *, name: bool = False) -> str:
    """Text for a table cell, heading or <summary>: one line, capped, escaped, inert.

    Names keep their characters (a newline shows as ``\\n``); messages have their whitespace collapsed.
    """
    text = strip_terminal(text)
    if not name:
        text = " ".join(text.split())
    text = _visible(text)
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    escaped = html.escape(_LIVE.sub(lambda m: m.group() + _ZWSP, text), quote=True)
    # `](` is the only way into a link here: reference links need a definition at a line start
    for char, entity in (("|", "&#124;"), ("`", "&#96;"), ("](", "]&#40;"), ("\\", "&#92;")):
        escaped = escaped.replace(char, entity)
    return escaped


def _visible(text: str) -> str:
    """Terminal sequences removed; control and bidi characters as escapes (``\\n``, ``\\x1b``, ``\\u202e``)."""
    return _CONTROL.sub(_escape, strip_terminal(text))


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    named = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
    if char in named:
        return named[char]
    return f"\\x{ord(char):02x}" if ord(char) < 0x100 else f"\\u{ord(char):04x}"


# -- shared --------------------------------------------------------------------------------------


def _text(value: Any) -> str:
    return value if isinstance(value, str) else "" if value is None else str(value)


def _ordered(cases: Sequence[CaseRecord]) -> list[CaseRecord]:
    """Cases to look at first, then by notebook and case: the same in every run."""
    return sorted(cases, key=lambda c: (c.outcome.ok, _ORDER.index(c.outcome), c.notebook, c.case))


# -- text ----------------------------------------------------------------------------------------


def render_text(review: Review) -> str:
    """The review for a terminal: the same content, every case and every diff line, no budget."""
    ok, verdict = review.verdict()
    outcome = ("passed" if ok else "FAILED") if review.results else "not reported"  # no "passed" without results
    lines = [f"Notebook tests {outcome}: {verdict}"]
    if not review.results:
        lines.append(_visible(review.results_note or "No test results in this report."))
    else:
        lines += [_visible(note) for note in _text_notes(review)]
    for case in _ordered(review.cases()):
        name = f"{case.notebook}::{case.case}"
        lines.append(_visible(f"  {case.outcome.value:<8} {name}  {' '.join(case.summary().split())}".rstrip()))
    for part in review.parts("    "):
        lines += ["", _visible(part.heading)]
        if not part.sections:
            lines.append(f"  {_visible(part.empty)}")
        for section in part.sections:
            lines += ["", f"  {_visible(section.title)}", *(f"    {_visible(line)}" for line in section.lines)]
    return "\n".join(lines) + "\n"


def _text_notes(review: Review) -> list[str]:
    if review.results is None:
        return []
    git, session = review.results.git, review.results.session
    notes = []
    if git is not None and git.commit:
        notes.append(f"Tested commit {git.commit[:64]}")
    if git is not None and git.dirty:
        notes.append("The tested working tree had uncommitted changes (git.dirty).")
    if session.state is not SessionState.COMPLETED:
        notes.append(f"The test session did not complete: {session.state}")
    return notes
