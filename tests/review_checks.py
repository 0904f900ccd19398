"""What every review document must hold, checked the way GitHub would read it.

``check_document`` parses the Markdown with markdown-it-py (CommonMark + tables, as GitHub's
parser is) and asserts the review's promises; every review test calls it on what it renders.
``templates_only`` reads the template changes between two revisions, by path.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from pathlib import Path

from markdown_it import MarkdownIt

from pytest_notebooks.review.changes import TemplateChange, template_changes
from pytest_notebooks.review.render import MARKER

_PARSER = MarkdownIt("commonmark").enable("table")
_FENCE = re.compile(r" {0,3}(`{3,}|~{3,})(.*)")
_ALLOWED_HTML = re.compile(r"<details><summary>[^<>]*</summary>|</details>|" + re.escape(MARKER))
# what GitHub would turn into a mention, an issue/PR link or a link, in text it renders
_LIVE = re.compile(r"(?<![\w`])@[A-Za-z0-9]|https?://|\bwww\.|(?<![&\w])#\d|\bGH-\d", re.IGNORECASE)
_VERDICT = re.compile(r"### [✅❌] Notebook tests: (.*)")
_MORE = re.compile(r"\| … \| (\d+) more cases \|")


@dataclass(frozen=True)
class Checked:
    """What ``check_document`` read from a document that passed every check."""

    counted: int  # cases counted in the verdict line
    rows: int  # table rows, plus the cases the "N more cases" row stands for
    details: int  # <details> blocks
    text: str  # the rendered text outside code, entities decoded (what a reader sees)


def check_document(markdown: str, budget: int = 60_000) -> Checked:
    """Assert the invariants of a review document; return what it counted."""
    assert len(markdown.encode("utf-8")) <= budget
    assert markdown.startswith(MARKER + "\n")
    assert markdown.count(MARKER) == 1
    # fences and <details> are balanced, and every <details> opens and closes outside a fence
    fence: str | None = None
    open_details = details = 0
    for line in markdown.splitlines():
        match = _FENCE.fullmatch(line)
        if fence is None:
            if match:
                fence = match.group(1)
                assert open_details == 1, "every fence sits inside a <details> block"
            elif line.startswith("<details>"):
                assert open_details == 0, line
                open_details, details = 1, details + 1
            elif line == "</details>":
                assert open_details == 1
                open_details = 0
        elif match and match.group(1)[0] == fence[0] and len(match.group(1)) >= len(fence) and not match.group(2):
            fence = None
    assert fence is None, "a fence is left open"
    assert open_details == 0, "a <details> is left open"
    # what markdown-it makes of it: no HTML but ours, no links, no live mentions
    tokens = _PARSER.parse(markdown)
    seen: list[str] = []
    for token in tokens:
        if token.type in ("html_block", "html_inline"):
            for piece in re.split(r"\n+", token.content.strip()):
                assert _ALLOWED_HTML.fullmatch(piece), piece
                seen.append(html.unescape(re.sub(r"</?(details|summary)>", " ", piece)))
        for child in token.children or []:
            assert child.type not in ("link_open", "image", "html_inline"), child
            if child.type == "text":
                seen.append(child.content)
    text = "\n".join(seen).replace(MARKER, "")
    assert not _LIVE.search(text), _LIVE.search(text)
    # every case counted: in the verdict, and in the table (listed, or counted in its last row)
    verdict = next((m.group(1) for m in map(_VERDICT.fullmatch, markdown.splitlines()) if m), "")
    counted = sum(int(n) for n in re.findall(r"(\d+) [^,]+", verdict)) if "no cases ran" not in verdict else 0
    rows = len(re.findall(r"^\| [^|]+ \| .* \|$", markdown, re.MULTILINE)) - 1  # minus the header row
    more = [int(n) for n in _MORE.findall(markdown)]
    if more:
        rows += sum(more) - len(more)
    return Checked(counted, max(rows, 0), details, text)


def templates_only(root: Path, base: str, head: str) -> dict[str, TemplateChange]:
    """The template changes between two revisions, by path (the fixture and snapshot changes left out)."""
    return {c.path: c for c in template_changes(root, base, head) if isinstance(c, TemplateChange)}
