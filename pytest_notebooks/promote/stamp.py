"""Source notebook bytes + provenance -> the bytes published. Pure; reads JSON without nbformat.

The published bytes differ from the tested source only by:

- ``metadata.pytest_notebooks.provenance`` (replaced if present), whose ``sha256`` is the source's as
  tested, the value in the results file, not the published bytes';
- with ``clear_outputs``, every code cell's ``outputs`` and ``execution_count``;
- the layout, only when the source's is not one some ``json.dumps`` call writes: then nbformat's
  (``indent=1, sort_keys=True, ensure_ascii=False`` + newline); otherwise the source's is kept, so a
  line diff shows only the stamp. ``unstamp`` undoes the stamp, so a test can check the rest.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from pytest_notebooks.promote.models import Outputs

METADATA_KEY = "pytest_notebooks"
STAMP_KEY = "provenance"
# (indent, sort_keys, ensure_ascii), nbformat's first
_LAYOUTS = [(i, s, a) for i in (1, 2, 4) for s in (True, False) for a in (False, True)]


@dataclass(frozen=True)
class Provenance:
    """What every published template says about where it came from."""

    commit: str | None
    sha256: str  # of the source as tested
    release: str
    promoted_at: str
    source_path: str
    outputs: Outputs = Outputs.KEPT
    converted_sha256: str | None = None  # a text template's .ipynb: the notebook its cases ran
    converted_by: str | None = None  # and what made it from the text (``jupytext 1.19.7``)

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "commit": self.commit,
            "sha256": self.sha256,
            "release": self.release,
            "promoted_at": self.promoted_at,
            "source_path": self.source_path,
            "outputs": self.outputs.value,
        }
        if self.converted_sha256 is not None:
            data["converted_sha256"] = self.converted_sha256
            data["converted_by"] = self.converted_by
        return data


def stamp(source: bytes, provenance: Provenance) -> bytes:
    """The published bytes for ``source`` (see the module docstring for exactly what changes).

    Raises ValueError when ``source`` is not a JSON notebook.
    """
    text = source.decode("utf-8")
    document = json.loads(text)
    if not isinstance(document, dict) or not isinstance(document.get("cells"), list):
        raise ValueError("not a Jupyter notebook (no 'cells' list)")
    layout = _layout(document, text)
    metadata = document.setdefault("metadata", {})
    section = metadata.get(METADATA_KEY)
    if not isinstance(section, dict):
        section = metadata[METADATA_KEY] = {}
    section[STAMP_KEY] = provenance.to_json()
    if provenance.outputs is Outputs.CLEARED:
        for cell in document["cells"]:
            if isinstance(cell, dict) and cell.get("cell_type") == "code":
                cell["outputs"] = []
                cell["execution_count"] = None
    indent, sort_keys, ensure_ascii, newline = layout
    return (json.dumps(document, indent=indent, sort_keys=sort_keys, ensure_ascii=ensure_ascii) + newline).encode(
        "utf-8"
    )


def provenance_of(published: bytes) -> dict[str, Any] | None:
    """The provenance stamp in a published (or executed) notebook, if any."""
    try:
        document = json.loads(published)
        value = document["metadata"][METADATA_KEY][STAMP_KEY]
    except (ValueError, KeyError, TypeError):
        return None
    return value if isinstance(value, dict) else None


def unstamp(document: dict[str, Any]) -> dict[str, Any]:
    """``document`` without the stamp (and without an emptied ``pytest_notebooks`` section)."""
    metadata = document.get("metadata", {})
    section = metadata.get(METADATA_KEY)
    if isinstance(section, dict):
        section.pop(STAMP_KEY, None)
        if not section:
            del metadata[METADATA_KEY]
    return document


def _layout(document: dict[str, Any], text: str) -> tuple[int, bool, bool, str]:
    newline = "\n" if text.endswith("\n") else ""
    for indent, sort_keys, ensure_ascii in _LAYOUTS:
        if json.dumps(document, indent=indent, sort_keys=sort_keys, ensure_ascii=ensure_ascii) + newline == text:
            return indent, sort_keys, ensure_ascii, newline
    return 1, True, False, "\n"  # nbformat's layout
