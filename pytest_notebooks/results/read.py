"""Reading a results file: the one loader every consumer uses (nbpromote, nbreview, nbresults, shards).

The shape is published as ``results.schema.json`` (JSON Schema 2020-12) in this package and
checked with ``jsonschema``, so a hand-edited or truncated file is refused with one line naming the
first problem and where it is, never with a traceback.
"""

from __future__ import annotations

import functools
import json
from importlib import resources
from pathlib import Path
from typing import Any

SCHEMA = "pytest-notebooks/results"
SCHEMA_VERSION = 2
SCHEMA_FILE = "results.schema.json"
MAX_BYTES = 512 * 1024 * 1024  # a results file larger than this is not one we wrote


class ResultsError(ValueError):
    """A results file that cannot be used; the message is one line naming the file."""


@functools.cache
def schema() -> dict[str, Any]:
    """The published JSON Schema of the results file."""
    text = resources.files("pytest_notebooks.results").joinpath(SCHEMA_FILE).read_text(encoding="utf-8")
    loaded: dict[str, Any] = json.loads(text)
    return loaded


def dumps(document: dict[str, Any]) -> str:
    """The file's text: indented JSON, one trailing newline."""
    return json.dumps(document, indent=2, default=str) + "\n"


def parse_results(text: str, where: str, *, check: bool = True) -> dict[str, Any]:
    """Parse and validate a results document; raise ResultsError with one line.

    ``check=False`` skips the JSON Schema validation (importing jsonschema costs about a second,
    its optional IRI grammar most of it): for the recorder, which only decides whether an earlier
    file may be accumulated and starts afresh on anything unexpected.
    """
    if "\x00" in text:
        raise ResultsError(f"{where}: not a results file (it contains NUL bytes)")
    try:
        document = json.loads(text)
    except RecursionError:
        raise ResultsError(f"{where}: not a results file (JSON nested too deeply)") from None
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
    return document


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


def load_results(path: Path, *, check: bool = True) -> dict[str, Any]:
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
