"""Read what collection needs from a notebook with the standard ``json`` module, never nbformat.

Collection must stay cheap and importing nbformat is slow (bench/README.md), so ``read_notebook``
checks by hand the shape papermill and nbformat need at run time (a version 4 notebook, cells of a
known type with a source and a metadata mapping, code cells with a list of outputs): a file they
cannot read is a collection error rather than a traceback in the middle of a run.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import json
import os
import re
from pathlib import Path
from typing import Any, NoReturn

from pytest_notebooks import pysource
from pytest_notebooks.cases.languages import read_parameters
from pytest_notebooks.cases.textnotebook import is_text_suffix, to_ipynb_bytes
from pytest_notebooks.errors import FixtureError
from pytest_notebooks.gitinfo import blob_id
from pytest_notebooks.models import DeclaredParameter, NotebookInfo

PARAMETERS_TAG = "parameters"
INJECTED_TAG = "injected-parameters"
ERROR_MARKER_TAG = "papermill-error-cell-tag"  # papermill removes cells with this tag on re-runs
KNOWN_MINORS = range(6)  # nbformat 4.0 to 4.5, the versions nbformat 5 reads and writes
_CELL_TYPES = ("code", "markdown", "raw")
_OUTPUT_TYPES = ("stream", "display_data", "execute_result", "error")
_FORMAT_DOC = "https://nbformat.readthedocs.io/en/latest/format_description.html"
# CSI sequences (colours, cursor moves) and OSC sequences (terminal hyperlinks, titles), which end
# in BEL or ST (ESC \\)
_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)")
_LITERAL_TYPES = (str, bool, int, float, list, dict, tuple)
_BOM = b"\xef\xbb\xbf"


def strip_ansi(text: str) -> str:
    """``text`` without terminal colour codes."""
    return _ANSI.sub("", text)


def cell_source(cell: dict[str, Any]) -> str:
    """A cell's source as one string (nbformat allows a list of lines on disk)."""
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else str(source)


def cell_tags(cell: dict[str, Any]) -> list[str]:
    """A cell's tags, or an empty list."""
    tags = cell.get("metadata", {}).get("tags", [])
    return [str(tag) for tag in tags] if isinstance(tags, list) else []


def read_notebook(path: Path, label: str | None = None) -> NotebookInfo:
    """Parse ``path`` and describe its kernel and declared parameters.

    Raises FixtureError (naming the file as ``label``) when papermill could not run the file:
    not JSON, not a version 4 notebook, or a notebook of the wrong shape.
    """
    shown = label or str(path)
    return notebook_info(path, read_notebook_bytes(path, shown), shown)


def read_notebook_bytes(path: Path, shown: str) -> bytes:
    """The notebook's bytes; FixtureError naming it as ``shown`` when it cannot be read."""
    try:
        return read_file(path)
    except OSError as exc:  # a symlink that loops or leads nowhere, a file gone or unreadable
        raise unreadable_notebook(shown, exc) from None


def unreadable_notebook(shown: str, exc: OSError) -> FixtureError:
    """The error for a notebook that cannot be read."""
    return FixtureError(
        shown, f"cannot be read ({exc.strerror or exc})", "point it at a readable notebook, or delete it"
    )


def read_file(path: str | os.PathLike[str]) -> bytes:
    """A file's bytes, as ``Path.read_bytes`` gives them in half its time (collection reads two files a
    notebook): the size first, then one read of it (and on, should the file have grown meanwhile)."""
    fd = os.open(path, _READ_FLAGS)
    try:
        size = os.fstat(fd).st_size
        data = os.read(fd, size + 1)
        if len(data) <= size:
            return data
        chunks = [data]
        while chunk := os.read(fd, 1 << 20):
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


_READ_FLAGS = os.O_RDONLY | getattr(os, "O_BINARY", 0) | getattr(os, "O_CLOEXEC", 0)


def notebook_info(path: Path, data: bytes, label: str | None = None, sha256: str = "") -> NotebookInfo:
    """``read_notebook`` of the bytes ``data`` read from ``path`` (``sha256``: their digest, when known)."""
    shown = label or str(path)
    nb = parse_any(path, data, shown)
    metadata: dict[str, Any] = nb["metadata"]
    kernelspec = metadata.get("kernelspec") or {}
    language = (metadata.get("language_info") or {}).get("name") or kernelspec.get("language")
    parameters_cell = None
    declared: tuple[DeclaredParameter, ...] = ()
    parsed = False
    for number, cell in enumerate(nb["cells"], start=1):
        if PARAMETERS_TAG in cell_tags(cell):
            parameters_cell = number
            if language in (None, "python"):
                try:
                    parsed_parameters = parse_parameters(cell_source(cell))
                except (RecursionError, MemoryError):
                    raise FixtureError(
                        shown,
                        f"the parameters cell (cell {number}) is nested too deeply for Python to parse",
                        "keep literal defaults in the parameters cell and compute bigger values in a later cell",
                    ) from None
            else:
                parsed_parameters = read_parameters(language, cell_source(cell))  # R, Julia, Scala
            if parsed_parameters is not None:
                declared, parsed = parsed_parameters, True
            break
    return NotebookInfo(
        path=path,
        sha256=sha256 or hashlib.sha256(data).hexdigest(),
        git_blob=blob_id(data),
        kernel_name=kernelspec.get("name"),
        language=language,
        parameters_cell=parameters_cell,
        parameters=declared,
        parameters_parsed=parsed,
    )


def parse_any(path: str | os.PathLike[str], data: bytes, shown: str) -> dict[str, Any]:
    """The notebook ``data`` (the bytes of ``path``) holds: its JSON, or Jupytext's reading of a text
    notebook (cases/textnotebook.py; its digests stay those of the text bytes, what is committed)."""
    if is_text_suffix(path):
        return _parse(to_ipynb_bytes(data, path, shown), shown)
    return _parse(data, shown)


def _parse(data: bytes, shown: str) -> dict[str, Any]:
    """The notebook's JSON, checked to have the shape papermill and nbformat need."""

    def fail(
        problem: str, hint: str = f"open and save it in Jupyter; the format is described at {_FORMAT_DOC}"
    ) -> NoReturn:
        raise FixtureError(shown, f"is not a readable Jupyter notebook: {problem}", hint)

    if data.startswith(_BOM):
        fail(
            "it starts with a UTF-8 byte order mark (BOM), which nbformat does not accept",
            'save it again as UTF-8 without a BOM (the editor\'s "UTF-8", not "UTF-8 with BOM")',
        )
    try:
        nb = json.loads(data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        fail(f"it is not UTF-8 text ({exc})")
    except ValueError as exc:
        fail(f"it is not JSON ({exc})")
    except RecursionError:
        fail("its JSON is nested too deeply to read")
    if not isinstance(nb, dict):
        fail(f"the file holds {_json_kind(nb)}, not a JSON object")
    if "nbformat" not in nb:
        fail("it has no `nbformat` version key")
    version, minor = nb["nbformat"], nb.get("nbformat_minor")
    if type(version) is not int or version != 4:
        old = type(version) is int and version in (1, 2, 3)
        name = Path(shown).name
        fail(
            f"it is nbformat {version!r}; papermill runs version 4 notebooks",
            f"convert it with `jupyter nbconvert --to notebook --inplace {name}`"
            if old
            else f"papermill and nbformat read versions 4.0 to 4.{KNOWN_MINORS[-1]}; save {name} from Jupyter",
        )
    if type(minor) is not int or minor not in KNOWN_MINORS:
        written = f"`nbformat_minor` is {minor!r}" if "nbformat_minor" in nb else "it has no `nbformat_minor`"
        fail(
            f"{written}; nbformat reads versions 4.0 to 4.{KNOWN_MINORS[-1]}",
            "save it from a Jupyter whose nbformat matches the one papermill uses",
        )
    problem = _metadata_problem(nb)
    if problem:
        fail(problem)
    cells = nb.get("cells")
    if not isinstance(cells, list):
        fail(f"`cells` is {_json_kind(cells)}, not a list" if "cells" in nb else "it has no `cells` list")
    for number, cell in enumerate(cells, start=1):
        problem = _cell_problem(cell)
        if problem:
            fail(f"cell {number} {problem}")
    return nb


def _metadata_problem(nb: dict[str, Any]) -> str:
    """What is wrong with the notebook's ``metadata`` (its kernelspec and language_info), or ""."""
    metadata = nb.get("metadata")
    if "metadata" not in nb:
        return "it has no `metadata`"
    if not isinstance(metadata, dict):
        return f"`metadata` is {_json_kind(metadata)}, not a JSON object"
    for key in ("kernelspec", "language_info"):
        if key in metadata:
            value = metadata[key]
            if not isinstance(value, dict):
                return f"`metadata.{key}` is {_json_kind(value)}, not a JSON object"
            if not isinstance(value.get("name", ""), str):
                return f"`metadata.{key}.name` is {_json_kind(value['name'])}, not a string"
    return ""


def _cell_problem(cell: Any) -> str:
    """What is wrong with one cell for nbformat 4, or "".

    Runs for every cell of every notebook at collection, so it tests exact types (``json`` builds
    plain dicts, lists and strs) and checks a list of strings with ``"".join``, which is in C.
    """
    if type(cell) is not dict:
        return f"is {_json_kind(cell)}, not a JSON object"
    cell_type = cell.get("cell_type")
    if cell_type not in _CELL_TYPES:
        return f"has `cell_type` {cell_type!r}; nbformat 4 cells are code, markdown or raw"
    source = cell.get("source")
    if type(source) is not str and not _strings(source):
        if "source" not in cell:
            return f"({cell_type}) has no `source`"
        return f"({cell_type}): `source` is not a string or a list of strings"
    metadata = cell.get("metadata")
    if type(metadata) is not dict:
        if "metadata" not in cell:
            return f"({cell_type}) has no `metadata`"
        return f"({cell_type}): `metadata` is {_json_kind(metadata)}, not a JSON object"
    tags = metadata.get("tags")
    if tags is not None and not _strings(tags):
        return f"({cell_type}): `metadata.tags` is not a list of strings"
    if type(cell.get("id", "")) is not str:
        return f"({cell_type}): `id` is {_json_kind(cell['id'])}, not a string"
    if cell_type != "code":
        return ""
    outputs = cell.get("outputs")
    if type(outputs) is not list:
        if "outputs" not in cell:
            return "(code) has no `outputs` list"
        return f"(code): `outputs` is {_json_kind(outputs)}, not a list"
    for index, output in enumerate(outputs, start=1):
        if type(output) is not dict or output.get("output_type") not in _OUTPUT_TYPES:
            return f"(code): output {index} is not a stream, display_data, execute_result or error output"
    count = cell.get("execution_count")
    if count is not None and type(count) is not int:
        return f"(code): `execution_count` is {_json_kind(count)}, not a number or null"
    return ""


def _strings(value: Any) -> bool:
    """Whether ``value`` is a list of strings."""
    if type(value) is not list:
        return False
    try:
        "".join(value)
    except TypeError:
        return False
    return True


def _json_kind(value: Any) -> str:
    """``value`` named the JSON way, for messages: ``a list ([...])``, ``a number (5)``."""
    if value is None:
        return "null"
    names = {
        dict: "a JSON object",
        list: "a list",
        str: "a string",
        bool: "a boolean",
        int: "a number",
        float: "a number",
    }
    return f"{names.get(type(value), type(value).__name__)} ({_short(value)})"


def _short(value: Any) -> str:
    text = (
        json.dumps(value) if not isinstance(value, (dict, list)) else ("{...}" if isinstance(value, dict) else "[...]")
    )
    return text if len(text) <= 40 else text[:37] + "..."


def parse_parameters(source: str) -> tuple[DeclaredParameter, ...] | None:
    """The names assigned at top level of a Python parameters cell, with their literal types.

    Returns None when the cell does not parse (IPython magics, another language).
    """
    if len(source) <= _REMEMBERED_SOURCE:
        return _remembered_parameters(source)
    return _parse_parameters(source)


# Notebooks made from one template share their parameters cell: a repository of thousands parses a
# few distinct cells. The answer is a tuple of frozen records, so one object can serve every notebook.
_REMEMBERED_SOURCE = 4096  # characters: a bigger cell is parsed each time rather than kept


@functools.lru_cache(maxsize=512)
def _remembered_parameters(source: str) -> tuple[DeclaredParameter, ...] | None:
    return _parse_parameters(source)


def _parse_parameters(source: str) -> tuple[DeclaredParameter, ...] | None:
    try:
        tree = pysource.parse(source)
    except SyntaxError:
        return None
    found: dict[str, DeclaredParameter] = {}
    for node in tree.body:
        targets: list[ast.expr]
        if isinstance(node, ast.Assign):
            targets, value = node.targets, node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            targets, value = [node.target], node.value
        else:
            continue
        for target in targets:
            if isinstance(target, ast.Name):
                found[target.id] = DeclaredParameter(target.id, _literal_type(value), node.lineno)
    return tuple(found.values())


def _literal_type(value: ast.expr) -> str | None:
    try:
        literal = ast.literal_eval(value)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return None
    if isinstance(literal, _LITERAL_TYPES):
        return "list" if isinstance(literal, tuple) else type(literal).__name__
    return None
