"""rfc3987_syntax, imported when first used instead of when jsonschema is imported.

jsonschema imports ``rfc3987_syntax`` (installed by nbdime's dependencies) for its ``iri`` formats,
and that import is costly (bench/README.md) in every process that imports jsonschema: each xdist
worker, the controller and every console script, none of which checks an IRI. ``defer()`` puts a
stand-in under that name that imports the real module on first use and then replaces itself in
``sys.modules``, so an ``iri`` check in a user's own test behaves as before.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import types
from typing import Any

NAME = "rfc3987_syntax"
_REAL: list[types.ModuleType] = []


class _StandIn(types.ModuleType):
    def __getattr__(self, name: str) -> Any:
        return getattr(_real(), name)


def _real() -> types.ModuleType:
    if not _REAL:
        if isinstance(sys.modules.get(NAME), _StandIn):
            del sys.modules[NAME]
        _REAL.append(importlib.import_module(NAME))
    return _REAL[0]


def _is_valid_syntax(term: str, value: str) -> bool:
    return bool(_real().is_valid_syntax(term, value))


def defer() -> None:
    """Put the stand-in in place, unless jsonschema or rfc3987_syntax is already imported, or
    rfc3987_syntax is not installed."""
    if NAME in sys.modules or "jsonschema" in sys.modules:
        return
    try:
        spec = importlib.util.find_spec(NAME)
    except (ImportError, ValueError):
        return
    if spec is None:
        return
    stand_in = _StandIn(NAME, "stand-in for rfc3987_syntax until it is used (pytest_notebooks.deferred)")
    # What the import system and tools that walk sys.modules look up, so that they do not load it
    stand_in.__spec__ = spec
    stand_in.__loader__ = spec.loader
    stand_in.__package__ = NAME
    stand_in.__file__ = spec.origin
    stand_in.__path__ = list(spec.submodule_search_locations or [])
    stand_in.is_valid_syntax = _is_valid_syntax  # type: ignore[attr-defined]
    sys.modules[NAME] = stand_in
