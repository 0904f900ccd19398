"""Reading a results file: the one loader every consumer uses (nbpromote, nbreview, nbresults, shards).

The shape is published as ``results.schema.json`` (JSON Schema 2020-12) in this package and
checked with ``jsonschema``, so a hand-edited or truncated file is refused with one line naming the
first problem and where it is, never with a traceback. What the schema cannot say is checked here
too (``check_entries``): every notebook and fixture path has its one normal spelling, and no case or
notebook has two entries, so that ``a.ipynb`` failed and ``./a.ipynb`` passed cannot both stand.
"""

from __future__ import annotations

import functools
import json
import math
from importlib import resources
from pathlib import Path
from typing import Any

from pytest_notebooks.errors import ResultsError
from pytest_notebooks.results.record import SCHEMA, SCHEMA_VERSION, CaseRecord, NotebookRecord, ResultsDocument

SCHEMA_FILE = "results.schema.json"
DEFAULT_RESULTS = Path("notebook-outputs/results.json")  # where the plugin writes it, below its rootdir
MAX_BYTES = 512 * 1024 * 1024  # a results file larger than this is not one we wrote


@functools.cache
def schema() -> dict[str, Any]:
    """The published JSON Schema of the results file."""
    text = resources.files("pytest_notebooks.results").joinpath(SCHEMA_FILE).read_text(encoding="utf-8")
    loaded: dict[str, Any] = json.loads(text)
    return loaded


def dumps(document: ResultsDocument) -> str:
    """The file's text: indented, strict JSON (a NaN or infinite parameter is written as a string, as
    is a YAML date), one trailing newline."""
    return json.dumps(_strict(document.to_json()), indent=2, allow_nan=False, default=str) + "\n"


def _strict(value: Any) -> Any:
    """``value`` with every float that JSON cannot hold (NaN, infinities) as its text."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {key: _strict(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_strict(item) for item in value]
    return value


class _NotJSON(ValueError):
    """``NaN``, ``Infinity`` or ``-Infinity`` in a results file: Python's json reads them, JSON has none."""

    def __init__(self, token: str) -> None:
        super().__init__(token)
        self.token = token


def _no_constant(token: str) -> Any:
    """``json.loads``'s ``parse_constant``: the plugin writes a NaN as text (``dumps``), so a bare one
    was written by hand or by another tool, and the schema's ``minimum: 0`` would let it through."""
    raise _NotJSON(token)


def parse_results(text: str, where: str, *, check: bool = True) -> ResultsDocument:
    """Parse and validate a results document; raise ResultsError with one line.

    ``check=False`` skips the JSON Schema validation (importing jsonschema costs about a second,
    its optional IRI grammar most of it): for the recorder, which only decides whether an earlier
    file may be accumulated and starts afresh on anything unexpected.
    """
    if "\x00" in text:
        raise ResultsError(f"{where}: not a results file (it contains NUL bytes)")
    try:
        document = json.loads(text, parse_constant=_no_constant)
    except RecursionError:
        raise ResultsError(f"{where}: not a results file (JSON nested too deeply)") from None
    except _NotJSON as exc:
        raise ResultsError(
            f"{where}: not valid JSON ({exc.token} is not a JSON number: a results file holds no NaN or infinity; "
            "was it edited by hand?)"
        ) from None
    except ValueError as exc:
        raise ResultsError(f"{where}: not valid JSON ({exc})") from None
    if not isinstance(document, dict) or document.get("schema") != SCHEMA:
        raise ResultsError(f'{where}: not a pytest-notebooks results file (no "schema": "{SCHEMA}")')
    if document.get("version") != SCHEMA_VERSION:
        raise ResultsError(
            f"{where}: results schema version {document.get('version')!r}, this pytest-notebooks reads "
            f"{SCHEMA_VERSION}: run pytest again with this version to write a new file"
        )
    if check:
        validate(document, where)
    try:
        results = ResultsDocument.from_json(document)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:  # only without the schema check
        raise ResultsError(f"{where}: not a results file of this version ({type(exc).__name__}: {exc})") from None
    check_entries(results, where)
    return results


def validate(document: dict[str, Any], where: str) -> None:
    """Check ``document`` against the published schema; raise ResultsError naming the first problem."""
    import jsonschema

    validator = jsonschema.Draft202012Validator(schema())
    try:
        error = jsonschema.exceptions.best_match(validator.iter_errors(document))
    except RecursionError:
        raise ResultsError(f"{where}: not a results file (nested too deeply)") from None
    if error is not None:
        location = "/".join(str(part) for part in error.absolute_path) or "(top level)"
        message = error.message if len(error.message) <= 200 else error.message[:200] + "..."
        raise ResultsError(f"{where}: invalid results file at {location}: {message}")


def normal_path(path: str) -> bool:
    """Whether ``path`` is spelled as the plugin writes paths: relative, ``/``-separated, and without
    empty, ``.`` or ``..`` parts (so not absolute, no ``//``, no trailing ``/``)."""
    return all(part not in ("", ".", "..") for part in path.split("/"))


def check_entries(document: ResultsDocument, where: str) -> None:
    """One spelling of every notebook and fixture path, one entry per notebook and per case.

    Raise ResultsError naming the file and the first entry that breaks it.
    """
    problem = entries_problem(document)
    if problem:
        raise ResultsError(f"{where}: invalid results file: {problem}")


def entries_problem(document: ResultsDocument) -> str:
    """What ``check_entries`` refuses, in words naming the entry; ``""`` when nothing."""
    return _notebooks_problem(document.notebooks) or _cases_problem(document.cases)


def _path_problem(value: str, name: str) -> str:
    if normal_path(value):
        return ""
    if value.startswith("/"):
        return (
            f"{name} path {value!r} is absolute, not relative to the rootdir (a notebook outside the rootdir: "
            "run pytest from a directory above it, or give --rootdir)"
        )
    return (
        f"{name} path {value!r} is not in normal form (relative to the rootdir, no '.', '..' or empty parts): "
        "one file spelled two ways would count as two"
    )


def _notebooks_problem(notebooks: tuple[NotebookRecord, ...]) -> str:
    first: dict[str, int] = {}
    for index, notebook in enumerate(notebooks):
        path = notebook.path
        problem = _path_problem(path, "notebook") or _path_problem(notebook.fixture, "fixture")
        if not problem and first.setdefault(path, index) != index:
            problem = (
                f"a second entry of notebook {path!r} (the first is notebooks[{first[path]}]): one notebook, one entry"
            )
        if problem:
            return f"notebooks[{index}] ({path!r}): {problem}"
    return ""


def _cases_problem(cases: tuple[CaseRecord, ...]) -> str:
    nodeids: dict[str, int] = {}
    names: dict[tuple[str, str], int] = {}
    for index, case in enumerate(cases):
        nodeid, name = case.nodeid, case.key
        problem = _path_problem(case.notebook, "notebook") or _path_problem(case.fixture, "fixture")
        if not problem and nodeids.setdefault(nodeid, index) != index:
            problem = (
                f"a second record of node id {nodeid!r} (the first is cases[{nodeids[nodeid]}]): one case, one record"
            )
        if not problem and names.setdefault(name, index) != index:
            problem = (
                f"a second record of {name[0]} case {name[1]!r} (the first is cases[{names[name]}]): one case, "
                "one record (a notebook reached by two paths?)"
            )
        if problem:
            return f"cases[{index}] (node id {nodeid!r}): {problem}"
    return ""


def load_results(path: Path, *, check: bool = True) -> ResultsDocument:
    """Read and validate the results file at ``path``; raise ResultsError with one line."""
    try:
        size = path.stat().st_size
        if size > MAX_BYTES:
            raise ResultsError(f"{path}: {size} bytes is not a results file this tool wrote")
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ResultsError(f"results file {path} not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ResultsError(f"cannot read the results file {path}: {exc}") from None
    return parse_results(text, str(path), check=check)


def find_results(start: Path, stop: Path | None) -> Path | None:
    """The default results file: ``notebook-outputs/results.json`` in ``start`` or the nearest
    directory above it, up to ``stop`` (the repository root); None when there is none. nbreview and
    nbpromote both look for it this way, so either finds it from any directory of the repository."""
    absolute = start.absolute()
    for hops, directory in enumerate((absolute, *absolute.parents)):
        if (directory / DEFAULT_RESULTS).is_file():
            if start.is_absolute():
                return directory / DEFAULT_RESULTS
            return start.joinpath(*[".."] * hops, DEFAULT_RESULTS)  # relative as given: "../notebook-outputs/..."
        if stop is None or directory == stop:
            break
    return None
