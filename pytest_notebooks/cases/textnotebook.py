"""Text notebooks (Jupytext ``py:percent``, ``py:light``, MyST Markdown) -> the notebook papermill runs.
The only module that imports jupytext (the ``jupytext`` extra), and only once a text notebook is read.

Which text file is a notebook is decided from its bytes, without jupytext (so that a missing
install is one clear error rather than a silently skipped notebook):

- ``x.py`` with a percent cell marker (a line starting ``# %%``) or a Jupytext header (the file
  starts with ``# ---`` then ``# jupyter:``, after an optional shebang and coding line). A module or
  ``conftest.py`` with neither is not a notebook, whatever YAML file sits beside it.
- ``x.md`` whose YAML front matter (between ``---`` lines at the top) has a ``jupytext:`` or a
  ``kernelspec:`` key: what Jupytext writes for MyST and its own Markdown format.

The notebook is Jupytext's reading of the bytes collected, made deterministic (cell ids ``cell-1``,
``cell-2``... rather than random ones; a Python kernelspec when the file names none), so that the
same bytes always run, and convert, the same way.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

from pytest_notebooks.cases.naming import NOTEBOOK_SUFFIX, with_suffix
from pytest_notebooks.errors import FixtureError

TEXT_SUFFIXES = (".py", ".md")
INSTALL_HINT = "pip install 'pytest-notebooks[jupytext]'"
_PERCENT = re.compile(rb"^#[ \t]?%%", re.MULTILINE)
_PY_HEADER = re.compile(rb"\A(?:#!.*\r?\n)?(?:#.*coding[:=].*\r?\n)?# ---[ \t]*\r?\n# jupyter:")
_FRONT_MATTER_KEY = re.compile(r"^(?:jupytext|kernelspec)[ \t]*:", re.MULTILINE)
_PYTHON_KERNELSPEC = {"display_name": "Python 3", "language": "python", "name": "python3"}


def is_text_suffix(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` ends like a text notebook (``.py``, ``.md``): a candidate, not yet a notebook."""
    return os.fspath(path).endswith(TEXT_SUFFIXES)


def reads_as_text_notebook(data: bytes, suffix: str) -> bool:
    """Whether the bytes of a ``suffix`` file are a Jupytext notebook (the module docstring's rule)."""
    if suffix == ".py":
        return bool(_PERCENT.search(data) or _PY_HEADER.match(data))
    if suffix == ".md":
        return _front_matter_names_jupyter(data)
    return False


def _front_matter_names_jupyter(data: bytes) -> bool:
    text = data.decode("utf-8", "replace")
    lines = text.splitlines()
    if not lines or lines[0].rstrip() != "---":
        return False
    for number, line in enumerate(lines[1:], start=1):
        if line.rstrip() in ("---", "..."):
            return bool(_FRONT_MATTER_KEY.search("\n".join(lines[1:number])))
    return False


def is_text_notebook(path: str | os.PathLike[str]) -> bool:
    """Whether the file at ``path`` is a text notebook; False when it cannot be read."""
    suffix = os.path.splitext(os.fspath(path))[1]
    if suffix not in TEXT_SUFFIXES:
        return False
    try:
        with open(path, "rb") as file:
            data = file.read()
    except OSError:
        return False
    return reads_as_text_notebook(data, suffix)


def collected_text_notebook(path: str | os.PathLike[str], fixtures: Sequence[str], kind: Callable[[str], str]) -> bool:
    """Whether ``path`` is a text notebook collection takes: one of ``fixtures`` (its fixture's possible
    names) is there, it reads as a notebook, and no notebook of the same name comes first. ``x.ipynb``
    comes first (a notebook paired with ``x.py`` by Jupytext is tested once, as the ``.ipynb`` papermill
    runs), then ``x.py``, then ``x.md``. ``kind`` answers as params.file_kind does."""
    if not is_text_suffix(path) or not any(kind(fixture) for fixture in fixtures):
        return False
    if kind(with_suffix(path, NOTEBOOK_SUFFIX)):
        return False
    if (
        os.fspath(path).endswith(".md")
        and kind(with_suffix(path, ".py"))
        and is_text_notebook(with_suffix(path, ".py"))
    ):
        return False
    return is_text_notebook(path)


def text_notebook_beside(fixture_owner: str, kind: Callable[[str], str]) -> bool:
    """Whether a text notebook with the name of ``fixture_owner`` (``x.ipynb``, a fixture's notebook
    that is not there) sits beside it: the fixture is then that notebook's, and not a stray."""
    return any(
        kind(candidate) and is_text_notebook(candidate)
        for candidate in (with_suffix(fixture_owner, suffix) for suffix in TEXT_SUFFIXES)
    )


def _jupytext(shown: str) -> ModuleType:
    """jupytext, or the collection error that says how to install it."""
    try:
        import jupytext as module
    except ImportError as exc:
        raise FixtureError(
            shown,
            f"is a Jupytext text notebook with a fixture beside it, but jupytext cannot be imported ({exc})",
            f"{INSTALL_HINT}, or convert it: `jupytext --to ipynb {Path(shown).name}`",
        ) from None
    found: ModuleType = module
    return found


def to_notebook(data: bytes, path: str | os.PathLike[str], shown: str) -> dict[str, Any]:
    """The notebook Jupytext reads from ``data`` (the bytes of ``path``), as plain JSON data.

    Raises FixtureError naming the file as ``shown`` when jupytext is missing or cannot read it.
    """
    jupytext = _jupytext(shown)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise FixtureError(shown, f"is not UTF-8 text ({exc})", "save it as UTF-8") from None
    try:
        node = jupytext.reads(text, fmt=os.path.splitext(os.fspath(path))[1].lstrip("."))
    except Exception as exc:  # noqa: BLE001 - jupytext raises many kinds; each is this file's problem
        raise FixtureError(
            shown, f"Jupytext cannot read it ({type(exc).__name__}: {exc})", "open it with `jupytext --to ipynb`"
        ) from None
    document: dict[str, Any] = json.loads(json.dumps(node))
    for number, cell in enumerate(document.get("cells", []), start=1):
        cell["id"] = f"cell-{number}"  # jupytext's are random: the same bytes must make the same notebook
    metadata = document.setdefault("metadata", {})
    language = (metadata.get("jupytext") or {}).get("main_language", "python")
    if "kernelspec" not in metadata and language == "python":
        metadata["kernelspec"] = dict(_PYTHON_KERNELSPEC)
    return document


def to_ipynb_bytes(data: bytes, path: str | os.PathLike[str], shown: str) -> bytes:
    """``to_notebook`` written as nbformat writes a notebook (one layout, so the same bytes each time).

    These bytes are what papermill runs for a text notebook, what the results file records the sha256
    of (a case's ``converted_sha256``) and what nbpromote publishes as ``x.ipynb`` (``text_templates``
    "ipynb" or "both") once it has made them again from the committed text and found that sha256.
    """
    document = to_notebook(data, path, shown)
    return (json.dumps(document, indent=1, sort_keys=True, ensure_ascii=False) + "\n").encode("utf-8")


def converter() -> str:
    """What makes the notebook of a text notebook, as the results file and a release name it:
    ``jupytext 1.19.7`` (the same version makes the same bytes; another may not)."""
    return f"jupytext {_jupytext('jupytext').__version__}"


def ipynb_name(path: str) -> str:
    """``etl/report.ipynb`` for the text notebook ``etl/report.py`` (or ``.md``): its converted notebook's name."""
    return with_suffix(path, NOTEBOOK_SUFFIX)


def cell_lines(text: str, cells: Sequence[Mapping[str, Any]]) -> list[int | None]:
    """Where each cell's source starts in the text file (1-based), None for a cell not found there.

    The cells are Jupytext's reading of ``text``, in order: each one's source lines are looked for
    after the previous cell's, as written (MyST, and code in the Python formats) or commented out
    (markdown cells and escaped magics in the Python formats: ``# %time``).
    """
    lines = [line.rstrip() for line in text.splitlines()]
    starts: list[int | None] = []
    cursor = 0
    for cell in cells:
        raw = cell.get("source", "")
        source = [line.rstrip() for line in ("".join(raw) if isinstance(raw, list) else str(raw)).splitlines()]
        found = _find(lines, source, cursor)
        starts.append(None if found is None else found + 1)
        if found is not None:
            cursor = found + len(source)
    return starts


def _find(lines: list[str], source: list[str], start: int) -> int | None:
    """The first index from ``start`` where ``source`` appears in ``lines``, line for line."""
    if not any(source):
        return None
    for index in range(start, len(lines) - len(source) + 1):
        if all(_same(lines[index + k], line) for k, line in enumerate(source)):
            return index
    return None


def _same(written: str, line: str) -> bool:
    return written in (line, f"# {line}") or (not line and written == "#")


def text_line(path: Path, sha256: str, cell_number: int, line: int | None) -> int | None:
    """The line of the text notebook at ``path`` where cell ``cell_number`` failed (at ``line`` of the
    cell when known, else where the cell starts); None when the file is no longer the bytes collected
    (``sha256``) or the cell cannot be placed."""
    import hashlib

    try:
        data = path.read_bytes()
        if sha256 and hashlib.sha256(data).hexdigest() != sha256:
            return None
        cells = to_notebook(data, path, str(path))["cells"]
    except (OSError, FixtureError):
        return None
    starts = cell_lines(data.decode("utf-8"), cells)
    start = starts[cell_number - 1] if 0 < cell_number <= len(starts) else None
    if start is None:
        return None
    return start + (line - 1 if line and line > 0 else 0)
