"""Results -> GitHub Actions workflow commands and the job summary. Pure text, no network.

Annotations: ``::error file=PATH,line=N,title=T::message``. GitHub shows 10 errors per step, so
at most 10 are emitted, one per failing case, each pointing at the failing cell's line in the raw
.ipynb (the line holding its ``"id"``, or its ``"cell_type"`` for notebooks without ids).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

MAX_ANNOTATIONS = 10


def escape_data(text: str) -> str:
    """Escape a workflow command's message."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    """Escape a workflow command's property value."""
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def cell_line(notebook_text: str, cell_number: int | None, cell_id: str | None) -> int:
    """The 1-based line of the raw notebook where cell ``cell_number`` starts (1 when unknown)."""
    lines = notebook_text.splitlines()
    if cell_id:
        wanted = f'"id": "{cell_id}"'
        for number, line in enumerate(lines, start=1):
            if line.strip().rstrip(",") == wanted:
                return number
    if cell_number:
        seen = 0
        for number, line in enumerate(lines, start=1):
            if re.match(r'\s*"cell_type":', line):
                seen += 1
                if seen == cell_number:
                    return number
    return 1


def error_annotations(results: dict[str, Any], rootdir: Path) -> list[str]:
    """``::error`` lines for the first ``MAX_ANNOTATIONS`` failing cases."""
    out = []
    for case in results.get("cases", []):
        failure = case.get("failure")
        if case.get("outcome") not in ("failed", "error") or not failure:
            continue
        path = rootdir / case["notebook"]
        try:
            text = path.read_text(encoding="utf-8")
        except OSError:
            text = ""
        line = cell_line(text, failure.get("cell"), failure.get("cell_id"))
        title = f"{case['notebook']}::{case['case']} failed"
        out.append(
            f"::error file={escape_property(case['notebook'])},line={line},title={escape_property(title)}"
            f"::{escape_data(failure.get('summary', ''))}"
        )
        if len(out) == MAX_ANNOTATIONS:
            break
    return out


def append_step_summary(markdown: str) -> bool:
    """Append to ``$GITHUB_STEP_SUMMARY`` when it is set; True when written."""
    target = os.environ.get("GITHUB_STEP_SUMMARY")
    if not target:
        return False
    with open(target, "a", encoding="utf-8") as handle:
        handle.write(markdown if markdown.endswith("\n") else markdown + "\n")
    return True
