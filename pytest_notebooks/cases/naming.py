"""Which YAML files are fixtures, and whose: a notebook's name with ``.ipynb`` replaced by one of the
fixture suffixes (``.yaml`` and ``.yml`` unless the ini key ``notebooks_fixture_suffixes`` says
otherwise, for a repository whose ``job.yaml`` beside ``job.ipynb`` is a scheduler's file). Pure.

Every stage that pairs a fixture with its notebook asks this module: collection, change selection,
the review of a pull request and promotion (which read the suffixes the results file recorded).
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

INI_KEY = "notebooks_fixture_suffixes"
DEFAULT_SUFFIXES = (".yaml", ".yml")
NOTEBOOK_SUFFIX = ".ipynb"
# What a fixture's top level may hold (cases/params.py checks each); a YAML file with none of them,
# and no key a misspelling of one, is some other tool's file.
FIXTURE_KEYS = (
    "parameters",
    "cases",
    "timeout",
    "cell_timeout",
    "kernel",
    "strict",
    "skip",
    "xfail",
    "snapshot",
    "snapshot_replace",
    "principles",
    "env",
)
MISSPELLING_CUTOFF = 0.75
MAX_SHOWN = (
    60  # characters of a key shown in a warning  # difflib's ratio from which a key reads as a fixture key misspelt
)


def with_suffix(path: str | os.PathLike[str], suffix: str) -> str:
    """``str(Path(path).with_suffix(suffix))`` without building a Path (collection does it for every file)."""
    text = os.fspath(path)
    if text.endswith(NOTEBOOK_SUFFIX) and text[-7:-6] not in ("", os.sep, "/"):  # x.ipynb: the common case
        return text[:-6] + suffix
    name = os.path.basename(text)
    dot = name.rfind(".")
    base = text[: len(text) - len(name) + dot] if 0 < dot < len(name) - 1 else text  # pathlib's suffix rule
    return base + suffix


@dataclass(frozen=True)
class FixtureNaming:
    """The suffixes that make a notebook's fixture from its name, in the order they are looked for."""

    suffixes: tuple[str, ...] = DEFAULT_SUFFIXES

    @classmethod
    def of(cls, suffixes: Iterable[str] | None) -> FixtureNaming:
        """The naming of the ini's suffixes (options.py checked them), each once, in order; the default for none."""
        chosen = tuple(dict.fromkeys(suffixes or ()))
        return cls(chosen) if chosen else DEFAULT_NAMING

    @property
    def is_default(self) -> bool:
        return self.suffixes == DEFAULT_SUFFIXES

    def candidates(self, notebook: str | os.PathLike[str]) -> tuple[str, ...]:
        """Where a fixture of ``notebook`` can be, as text, in the order of the suffixes."""
        return tuple(with_suffix(notebook, suffix) for suffix in self.suffixes)

    def is_fixture_name(self, name: str) -> bool:
        return name.endswith(self.suffixes)

    def notebook_of(self, path: str) -> str | None:
        """The notebook whose fixture ``path`` would be (the longest suffix that ends it), or None."""
        ending = max((suffix for suffix in self.suffixes if path.endswith(suffix)), key=len, default=None)
        if ending is None or len(path) == len(ending) or path[-len(ending) - 1] in ("/", os.sep):
            return None
        return path[: -len(ending)] + NOTEBOOK_SUFFIX

    def shown(self) -> str:
        return " ".join(self.suffixes)


DEFAULT_NAMING = FixtureNaming()


def foreign_keys(data: Any) -> tuple[str, ...]:
    """The top-level keys of a YAML mapping that is some other tool's file, not a fixture: none of
    them a fixture key or a misspelling of one (a scheduler's ``schedule:``, ``owner:``, ``retries:``).
    Empty when ``data`` reads as a fixture, however broken (cases/params.py then says what is wrong)."""
    if not isinstance(data, Mapping) or not data:
        return ()
    keys = [str(key) for key in data]
    for key in keys:
        if key in FIXTURE_KEYS or difflib.get_close_matches(key, FIXTURE_KEYS, n=1, cutoff=MISSPELLING_CUTOFF):
            return ()
    return tuple(keys)


def _quoted(text: str, limit: int | None = None) -> str:
    """A key or file name the YAML's author chose, for a warning line: as it is when printable (and
    within ``limit``), else quoted with escapes (an escape sequence, or a newline then ``::error``,
    would act on a terminal or a CI log) and cut."""
    if text.isprintable() and (limit is None or len(text) <= limit):
        return text
    return repr(text[:limit]) + ("..." if limit is not None and len(text) > limit else "")


def not_a_fixture(fixture: str, notebook: str, keys: tuple[str, ...], naming: FixtureNaming) -> str:
    """The warning for a YAML file beside a notebook that is another tool's file."""
    shown = ", ".join(_quoted(key, MAX_SHOWN) for key in keys[:5]) + (", ..." if len(keys) > 5 else "")
    fixture, notebook = _quoted(fixture), _quoted(notebook)
    return (
        f"{fixture} is beside {notebook} but is not a notebook fixture (its keys: {shown}), so {notebook} is "
        f"not collected. Hint: if your fixtures are named differently, say so with the ini key {INI_KEY} "
        f"(now: {naming.shown()}), e.g. `{INI_KEY} = .test.yaml`; to test {notebook}, give it a fixture"
    )
