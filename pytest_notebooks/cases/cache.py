"""What collection derived from a notebook and its fixture, kept between runs, keyed by their bytes. Pure.

Every run reads both files and hashes them (the sha256 recorded with each case is of the bytes this
run read); the JSON, the YAML and every check against the parameters cell are skipped when an
earlier run derived the cases from bytes with the same sha256. The file, in pytest's cache directory
(``.pytest_cache/d/notebooks/cases.json``; ``pytest --cache-clear`` or deleting it starts afresh)::

    {"stamp": {...},
     "notebooks": {"<notebook path, from the rootdir>":
                   ["<notebook sha256>", "<fixture name>", "<fixture sha256>", "<the cases, as JSON text>"]}}

One slot per notebook path, used only when both digests and the fixture's name match this run's:
never a time stamp, so an edit that keeps the mtime is seen. The stamp names what else the cases
depend on: the plugin's version, the source of the modules that derive them (an editable install
changes without a new version), Python's and PyYAML's versions. Another stamp: the whole file is
ignored, silently, and written again. No ini option or flag is among them: the cases depend on the
two files alone, and what the session's settings add (the principles item, its limits) is applied
after the lookup, every run. A fixture or notebook error is never kept: it is found again each run,
with its message. A file that cannot be read or parsed is ignored with one warning (``warn``).
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import json
import os
import sys
from collections.abc import Callable
from dataclasses import fields
from pathlib import Path
from typing import Any

from pytest_notebooks.cases.notebook import notebook_info, read_file, unreadable_notebook
from pytest_notebooks.cases.params import fixture_cases, unreadable_fixture
from pytest_notebooks.errors import FixtureError
from pytest_notebooks.files import atomic_write
from pytest_notebooks.models import NotebookCase

CACHE_FILE = "cases.json"
FORMAT = 1  # of the file; a new one is another stamp
# The modules whose code decides what a fixture and its notebook become: part of the stamp.
DERIVING_MODULES = (
    "pytest_notebooks.cases.cache",
    "pytest_notebooks.cases.declared",
    "pytest_notebooks.cases.languages",
    "pytest_notebooks.cases.naming",
    "pytest_notebooks.cases.notebook",
    "pytest_notebooks.cases.params",
    "pytest_notebooks.cases.principles",
    "pytest_notebooks.cases.settings",
    "pytest_notebooks.cases.textnotebook",
    "pytest_notebooks.cases.values",
    "pytest_notebooks.cases.yamlfile",
    "pytest_notebooks.gitinfo",
    "pytest_notebooks.models",
    "pytest_notebooks.options",
    "pytest_notebooks.pysource",
)
# Cases whose JSON is longer are derived every run rather than kept: every run reads the whole file.
MAX_KEPT = 100_000
# The fields of a case that its slot's digests and the session give back, rather than its JSON.
_GIVEN = ("notebook", "fixture", "notebook_sha256", "fixture_sha256")
_PAIRS: dict[str, tuple[type, ...]] = {
    "snapshot_replace": (str, str),
    "principles": (str, int),
    "env": (str, str),
}  # lists in JSON
_TUPLES = ("declared_cases",)
_DEFAULTS = {f.name: f.default for f in fields(NotebookCase) if f.name not in _GIVEN and f.name != "parameters"}
_TYPES: dict[str, tuple[type, ...]] = {
    "case_id": (str,),
    "parameters": (dict,),
    "timeout": (float, type(None)),
    "cell_timeout": (float, type(None)),
    "kernel": (str, type(None)),
    "notebook_kernel": (str, type(None)),
    "skip": (str, type(None)),
    "xfail": (str, type(None)),
    "line": (int, type(None)),
    "notebook_blob": (str,),
    "fixture_blob": (str,),
    "snapshot": (bool, type(None)),
    "snapshot_replace": (list,),
    "declared_cases": (list,),
    "principles": (list,),
    "env": (list,),
}


def stamp(version: str, kernel: str | None = None) -> dict[str, str]:
    """What the cases depend on besides the two files: a file with another stamp is not used.
    ``kernel``: the session's (``--notebooks-kernel``), which decides what text is refused (languages.misread)."""
    import yaml

    code = hashlib.sha256()
    for name in DERIVING_MODULES:
        origin = _origin(name)
        try:
            code.update(read_file(Path(origin)) if origin else name.encode())
        except OSError:  # an installation without sources: the version stands for them
            code.update(name.encode())
    return {
        "format": str(FORMAT),
        "plugin": version,
        "code": code.hexdigest(),
        "python": f"{sys.version_info[0]}.{sys.version_info[1]}",
        "yaml": f"{yaml.__version__}{'+libyaml' if hasattr(yaml, 'CSafeLoader') else ''}",
        "jupytext": _version("jupytext"),  # a text notebook's cases come from what it reads
        "kernel": kernel or "",
    }


def _origin(name: str) -> str | None:
    """The file of a module, imported or not (cases/textnotebook.py is imported with a text notebook only)."""
    module = sys.modules.get(name)
    if module is not None:
        return getattr(module, "__file__", None)
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
    return spec.origin if spec is not None else None


def _version(distribution: str) -> str:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "none"


class CaseCache:
    """The cases of each notebook an earlier run collected, with what they were derived from.

    ``path`` None: nothing is read or kept (``-p no:cacheprovider``); ``cases`` derives every time.
    ``root`` is the directory slots are named from; ``warn`` is called once, with one line, for a
    file that cannot be used, named as ``shown``.
    """

    def __init__(
        self,
        path: Path | None,
        root: Path,
        stamp: dict[str, str],
        warn: Callable[[str], None] | None = None,
        shown: str = "",
        kernel: str | None = None,
    ) -> None:
        self.path = path
        self.kernel = kernel  # the session's kernel (--notebooks-kernel, notebooks_kernel): in the stamp too
        self.shown = shown or str(path)
        self.stamp = stamp
        self.warn = warn
        self.slots: dict[str, list[str]] = {}
        self.seen: set[str] = set()
        self.trusted: set[str] = set()  # slots this run wrote, or read and found whole
        self.changed = False  # a slot added, replaced or dropped: the file is written again
        self.warned = False
        self._root = os.fspath(root).rstrip(os.sep) + os.sep

    def load(self) -> None:
        """Read the file an earlier run wrote (nothing when there is none); ``warn`` when it is unusable."""
        path = self.path
        if path is None:
            return
        try:
            text = read_file(path)
        except FileNotFoundError:
            return
        except OSError as exc:
            self._unusable(f"cannot be read ({exc.strerror or exc})")
            return
        try:
            stored = json.loads(text)
        except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
            self._unusable(f"is not JSON ({exc})")
            return
        if not isinstance(stored, dict) or not isinstance(stored.get("notebooks"), dict):
            self._unusable("does not hold a map of notebooks")
            return
        if stored.get("stamp") != self.stamp:  # another version of the plugin or of its code: not a fault
            self.changed = True
            return
        self.slots = stored["notebooks"]

    def _unusable(self, problem: str) -> None:
        """Forget every slot but this run's and say so, once: a file this class did not write cannot be trusted."""
        self.slots = {key: slot for key, slot in self.slots.items() if key in self.trusted}
        self.changed = True
        if self.warn is not None and not self.warned:
            self.warned = True
            self.warn(f"the collection cache {self.shown} {problem}: ignored, and written again")

    def key(self, notebook: Path) -> str:
        """A notebook's slot: its path from the root when it lies below, else the absolute path."""
        text = os.fspath(notebook)
        return text[len(self._root) :] if text.startswith(self._root) else text

    def cases(self, notebook: Path, fixture: Path, shown: Callable[[Path], str]) -> list[NotebookCase]:
        """The cases of ``notebook`` and its ``fixture``, read and hashed now, derived again unless a
        slot holds cases derived from the same bytes. Raises FixtureError as ``read_notebook`` and
        ``load_cases`` do, naming each file as ``shown`` gives it, in the same order."""
        try:
            data = read_file(notebook)
        except OSError as exc:
            raise unreadable_notebook(shown(notebook), exc) from None
        notebook_sha = hashlib.sha256(data).hexdigest()
        raw: bytes | None = None
        problem: FixtureError | None = None
        try:
            raw = read_file(fixture)
        except OSError as exc:  # said after the notebook's own problems, as load_cases comes after read_notebook
            problem = unreadable_fixture(shown(fixture), exc)
        key = self.key(notebook)
        self.seen.add(key)
        fixture_sha = hashlib.sha256(raw).hexdigest() if raw is not None else ""
        slot = self.slots.get(key)
        if slot is not None and raw is not None:
            found = self._kept(slot, notebook, fixture, notebook_sha, fixture_sha)
            if found is not None:
                return found
        try:
            info = notebook_info(notebook, data, shown(notebook), notebook_sha)
            if problem is not None or raw is None:
                raise problem or FixtureError(shown(fixture), "cannot be read")
            cases = fixture_cases(fixture, raw, info, shown(fixture), fixture_sha, kernel=self.kernel)
        except FixtureError:
            self._drop(key)  # an error is found again, with its message, next run
            raise
        self._keep(key, fixture.name, notebook_sha, fixture_sha, cases)
        return cases

    def _kept(
        self, slot: Any, notebook: Path, fixture: Path, notebook_sha: str, fixture_sha: str
    ) -> list[NotebookCase] | None:
        """The cases a slot holds, when it was derived from these bytes; else None."""
        if type(slot) is not list or len(slot) != 4:
            self._unusable("holds a notebook entry it cannot have written")
            return None
        if slot[0] != notebook_sha or slot[2] != fixture_sha or slot[1] != fixture.name:
            return None
        try:
            stored = json.loads(slot[3])
            cases = [case_from_json(case, notebook, fixture, notebook_sha, fixture_sha) for case in stored]
        except (TypeError, ValueError, RecursionError) as exc:
            self._unusable(f"holds a notebook entry it cannot have written ({exc})")
            return None
        self.trusted.add(self.key(notebook))
        return cases

    def _keep(
        self, key: str, fixture_name: str, notebook_sha: str, fixture_sha: str, cases: list[NotebookCase]
    ) -> None:
        if self.path is None:
            return
        try:
            text = json.dumps([case_to_json(case) for case in cases], separators=(",", ":"))
        except (TypeError, ValueError):  # values.py lets through only what JSON holds; should one slip by,
            text = ""  # the notebook is derived every run rather than kept wrongly
        if not text or len(text) > MAX_KEPT:
            self._drop(key)
            return
        self.slots[key] = [notebook_sha, fixture_name, fixture_sha, text]
        self.trusted.add(key)
        self.changed = True

    def _drop(self, key: str) -> None:
        if self.slots.pop(key, None) is not None:
            self.changed = True

    def save(self) -> None:
        """Write the slots when any changed: this run's, and an earlier run's for a notebook that
        still exists (a run of one folder keeps the others'). Raises OSError."""
        if self.path is None or not self.changed:
            return
        slots = {
            key: slot
            for key, slot in self.slots.items()
            if key in self.seen or os.path.lexists(os.path.join(self._root, key))
        }
        text = json.dumps({"stamp": self.stamp, "notebooks": slots}, separators=(",", ":"))
        atomic_write(self.path, text, sync=False)  # a torn file is a warning and a rebuild, not a wrong answer
        self.changed = False

    def close(self) -> None:
        """Let go of every slot (the file stays as written): collection is over."""
        self.slots, self.seen, self.trusted, self.changed = {}, set(), set(), False


def case_to_json(case: NotebookCase) -> dict[str, Any]:
    """A case as its slot keeps it: the fields that differ from their defaults, without the paths
    and digests the slot and the session give back."""
    out: dict[str, Any] = {"case_id": case.case_id, "parameters": case.parameters}
    for name, default in _DEFAULTS.items():
        value = getattr(case, name)
        if value != default:
            out[name] = value
    return out


def case_from_json(data: Any, notebook: Path, fixture: Path, notebook_sha: str, fixture_sha: str) -> NotebookCase:
    """The case ``case_to_json`` wrote; TypeError or ValueError for anything it could not have written."""
    if type(data) is not dict:
        raise TypeError("a case is not a JSON object")
    values: dict[str, Any] = {}
    for name, value in data.items():
        kinds = _TYPES.get(name)
        if kinds is None:
            raise ValueError(f"unknown field {name!r}")
        if type(value) not in kinds:  # exact types: json.loads makes no subclass, and True is no line number
            raise TypeError(f"{name} is {type(value).__name__}")
        if name in _PAIRS:
            values[name] = tuple(_pair(item, _PAIRS[name]) for item in value)
        elif name in _TUPLES:
            values[name] = tuple(_pair([item], (str,))[0] for item in value)
        else:
            values[name] = value
    if "case_id" not in values or "parameters" not in values:
        raise ValueError("a case without its id or parameters")
    return NotebookCase(
        notebook=notebook, fixture=fixture, notebook_sha256=notebook_sha, fixture_sha256=fixture_sha, **values
    )


def _pair(item: Any, kinds: tuple[type, ...]) -> tuple[Any, ...]:
    """A list of JSON as a tuple of the types ``kinds``; TypeError for anything else."""
    if (
        type(item) is not list
        or len(item) != len(kinds)
        or not all(type(v) is k for v, k in zip(item, kinds, strict=True))
    ):
        raise TypeError(f"expected {len(kinds)} of {', '.join(k.__name__ for k in kinds)}, got {item!r}")
    return tuple(item)
