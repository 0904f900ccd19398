"""Notebook + fixture -> pytest items: NotebookFile per notebook, NotebookItem per case."""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import fnmatch
import os
import warnings
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from pytest_notebooks.cases.cache import CACHE_FILE, CaseCache, stamp
from pytest_notebooks.cases.naming import DEFAULT_NAMING, FixtureNaming, not_a_fixture
from pytest_notebooks.cases.params import PRINCIPLES_ID, broken_link, file_kind, looks_like_fixture, sibling_fixture
from pytest_notebooks.cases.principles import (
    Measures,
    Violation,
    check,
    defaults,
    measure,
    not_measured,
    parse_limits,
)
from pytest_notebooks.cases.textnotebook import INSTALL_HINT as TEXT_INSTALL_HINT
from pytest_notebooks.cases.textnotebook import collected_text_notebook, is_text_suffix, text_notebook_beside
from pytest_notebooks.errors import (
    CaseFailed,
    FixtureError,
    NotAFixture,
    NotebookChanged,
    NotebooksError,
    PytestNotebooksWarning,
)
from pytest_notebooks.files import shown_path
from pytest_notebooks.models import ExecutionResult, NotebookCase
from pytest_notebooks.options import Options, first_given, limited
from pytest_notebooks.redact import Redactor
from pytest_notebooks.results.record import CaseReport, FailureRecord, PrinciplesRecord, SnapshotRecord
from pytest_notebooks.run.kernels import KernelPool

if TYPE_CHECKING:
    from pytest_notebooks.run.execute import RunSettings  # papermill: imported when a case runs

OPTIONS_KEY = pytest.StashKey[Options]()
RESULT_KEY = pytest.StashKey[ExecutionResult]()
SNAPSHOT_KEY = pytest.StashKey[SnapshotRecord]()
NEXT_KEY = pytest.StashKey["pytest.Item | None"]()  # the item pytest runs after this one
POOL_KEY = pytest.StashKey[KernelPool]()
LIMITS_KEY = pytest.StashKey[dict[str, int]]()
MEASURES_KEY = pytest.StashKey[tuple[Measures, list[Violation]]]()
# (notebook, fixture) with symlinks resolved -> (the path pytest reached first, the path collected)
PLACED_KEY = pytest.StashKey[dict[tuple[str, ...], tuple[Path, Path]]]()
REAL_DIRS_KEY = pytest.StashKey[dict[str, str]]()  # a directory -> its real path, resolved once a session
CASE_CACHE_KEY = pytest.StashKey[CaseCache]()  # the cases earlier runs derived, by the bytes they came from
CASE_CACHE_DIR = "notebooks"  # in pytest's cache directory (config.cache.mkdir): cases.json
REDACTOR_KEY = pytest.StashKey[Redactor]()  # the session's secrets, for what records show of parameters
SHOWN_PARAMETERS_KEY = pytest.StashKey[dict[str, Any]]()  # a case's parameters, secrets masked
PRINCIPLES_ITEM = PRINCIPLES_ID  # a case id the fixture may not use
NOTEBOOK_MARK_KEY = pytest.StashKey[pytest.MarkDecorator]()  # made once a session: marks are immutable
LISTINGS_KEY = pytest.StashKey["Listings"]()  # each directory's files, scanned once a session (config)
NAMING_KEY = pytest.StashKey[FixtureNaming]()  # which YAML files are fixtures (notebooks_fixture_suffixes)


def fixture_naming(config: pytest.Config) -> FixtureNaming:
    """The session's fixture naming: the ini's suffixes, read when the plugin was configured."""
    return config.stash.get(NAMING_KEY, DEFAULT_NAMING)


class Listings:
    """Each directory's files, read once a session by one ``os.scandir``: ``kind(path)`` is
    ``file_kind(path)`` without an ``lstat`` per name. Collection asks it of every notebook and of
    each of its fixture's possible names: 10,000 notebooks in 100 folders are 100 scandirs, not
    40,000 lstats. A directory that cannot be listed is asked name by name. Kept on the config, so
    that --notebooks-changed-since's look at a folder (``unselected_folder``) is the listing the
    collection of its files reads: each folder is listed once."""

    def __init__(self) -> None:
        self._dirs: dict[str, dict[str, str] | None] = {}

    def entries(self, directory: str) -> dict[str, str] | None:
        """Every name in ``directory``: ``file`` (a regular file), ``link`` (a symlink) or "" (a folder,
        anything else); None when it cannot be listed."""
        try:
            return self._dirs[directory]
        except KeyError:
            found = self._dirs[directory] = _scan(directory)
            return found

    def kind(self, path: str | os.PathLike[str]) -> str:
        directory, name = os.path.split(os.fspath(path))
        entries = self.entries(directory)
        return file_kind(path) if entries is None else entries.get(name, "")


def _scan(directory: str) -> dict[str, str] | None:
    """Every entry of ``directory`` by name, as ``Listings.entries`` gives it; None when it cannot be listed."""
    try:
        with os.scandir(directory or os.curdir) as found:
            return {entry.name: _entry_kind(entry) for entry in found}
    except OSError:
        return None


def _entry_kind(entry: os.DirEntry[str]) -> str:
    if entry.is_symlink():
        return "link"
    return "file" if entry.is_file(follow_symlinks=False) else ""


def real_path(session: pytest.Session, path: Path) -> str:
    """``os.path.realpath(path)`` with each directory resolved once a session, as text."""
    real_dirs = session.stash.setdefault(REAL_DIRS_KEY, {})
    text = os.fspath(path)
    return _in_real_dir(text, real_dirs) if listings(session.config).kind(text) == "file" else os.path.realpath(text)


def unselected_folder(
    directory: Path, naming: FixtureNaming, wants: Callable[[str], str], listing: Listings | None = None
) -> int | None:
    """How many notebooks ``directory`` holds when it holds notebooks and their fixtures only (regular
    files, no folder, nothing else) and ``wants`` selects none of them; else None.

    With --notebooks-changed-since such a folder need not be walked at all: nothing in it would be
    collected (an unselected notebook is never read, and every YAML file there is a notebook's fixture).
    The folder is listed through ``listing`` (the session's): a folder that is walked is not listed again.
    """
    entries = (listing or Listings()).entries(os.fspath(directory))
    if entries is None:
        return None
    names = {name for name, kind in entries.items() if kind == "file"}
    if len(names) != len(entries):
        return None  # a folder, a symlink or something else: pytest walks it
    notebooks = [name for name in names if name.endswith(".ipynb")]
    fixtures = [{fixture for fixture in naming.candidates(name) if fixture in names} for name in notebooks]
    if not notebooks or not all(fixtures) or len(notebooks) + len(set().union(*fixtures)) != len(names):
        return None
    real = os.path.join(os.path.realpath(directory), "")
    if any(wants(real + name) for name in notebooks):
        return None
    return len(notebooks)


def listings(config: pytest.Config) -> Listings:
    """The session's Listings (on the config: ``pytest_ignore_collect`` has no session)."""
    return config.stash.setdefault(LISTINGS_KEY, Listings())


def has_fixture(path: Path, naming: FixtureNaming = DEFAULT_NAMING, kind: Callable[[str], str] = file_kind) -> bool:
    """Whether ``path`` is a notebook with a fixture file beside it (the collection rule).

    A fixture that is a symlink leading nowhere (it loops, its target is gone) counts, so that
    collection says so instead of leaving the notebook out without a word.
    """
    if path.suffix != ".ipynb":  # a Jupytext text notebook, or no notebook (cases/textnotebook.py)
        return collected_text_notebook(path, naming.candidates(path), kind)
    return any(kind(p) for p in naming.candidates(path))


def has_notebook_case(nodeids: Iterable[str], rootpath: Path, naming: FixtureNaming = DEFAULT_NAMING) -> bool:
    """Whether any of the node ids (an xdist worker's collection, from the rootdir) is a notebook case's:
    an ``.ipynb`` one, or one of a text notebook with its fixture (a ``test_x.py::test`` is neither)."""
    files = {nodeid.partition("::")[0] for nodeid in nodeids if "::" in nodeid}
    return any(name.endswith(".ipynb") for name in files) or any(
        has_fixture(rootpath / name, naming) for name in files if is_text_suffix(name)
    )


def place_notebook(path: Path, session: pytest.Session) -> tuple[Path | None, str | None]:
    """Where the notebook pytest reached at ``path`` is collected (None: not again), and a warning.

    A notebook and fixture reached through two paths (a committed ``alias -> notebooks``, or a
    symlink to ``.``) are one notebook: one item per case, one run, one record. It is collected
    once, named by its real path when that lies in the rootdir, else by the first path pytest
    reaches; pytest walks directories in sorted order, so every xdist worker makes the same choice.
    A path given on the command line keeps its spelling, since pytest matches its arguments by
    path. The other paths are left out with a warning. A notebook symlinked beside a fixture of
    its own (``b.ipynb -> a.ipynb`` with ``b.yaml``) is another notebook.
    """
    real_dirs = session.stash.setdefault(REAL_DIRS_KEY, {})
    naming, kind = fixture_naming(session.config), listings(session.config).kind
    try:
        key = _identity(path, real_dirs, naming, kind)
        named = path if session.isinitpath(path) else _real_path(path, key, session.config.rootpath, real_dirs, naming)
    except (OSError, RuntimeError):  # a symlink that loops on the way (RuntimeError before Python 3.13)
        return path, None  # collected as it is; reading the fixture says what is wrong
    placed = session.stash.setdefault(PLACED_KEY, {})
    first, kept = placed.setdefault(key, (path, named))
    if first == path:  # the first path reached, or that same path again (an argument given twice)
        return kept, _alias_warning(path, kept, session) if kept != path else None
    return None, _alias_warning(path, kept, session) if path != kept else None


def _identity(
    path: Path, real_dirs: dict[str, str], naming: FixtureNaming, kind: Callable[[str], str] = file_kind
) -> tuple[str, ...]:
    """The notebook and its fixture files, every symlink resolved: one notebook, however reached.

    A file that is not a symlink is its directory's real path and its name; ``real_dirs`` keeps each
    directory's, so that thousands of notebooks in one folder resolve it once.
    """
    found = []
    for name in (os.fspath(path), *naming.candidates(path)):
        found_kind = kind(name)
        if found_kind == "file":
            found.append(_in_real_dir(name, real_dirs))
        elif found_kind:
            found.append(str(Path(name).resolve()))
    return tuple(found)


def _in_real_dir(name: str, real_dirs: dict[str, str]) -> str:
    """``Path(name).resolve()`` of a file that is not a symlink: its directory's real path, and its name."""
    directory, base = os.path.split(name)
    return os.path.join(_real_dir(directory, real_dirs), base)


def _real_dir(directory: str, real_dirs: dict[str, str]) -> str:
    real = real_dirs.get(directory)
    if real is None:
        real = real_dirs[directory] = str(Path(directory).resolve())
    return real


def _real_path(
    path: Path, key: tuple[str, ...], rootpath: Path, real_dirs: dict[str, str], naming: FixtureNaming
) -> Path:
    """The notebook's real path spelled from the rootdir: the file's own target when its fixture
    comes along (the same identity there), else ``path`` with its directory's symlinks resolved;
    ``path`` itself when neither lies in the rootdir."""
    text, spelled = os.fspath(path), os.fspath(rootpath)
    root = os.path.join(_real_dir(spelled, real_dirs), "")  # ends with the separator
    in_real_dir = _in_real_dir(text, real_dirs)
    if key[0] == in_real_dir == text and root == os.path.join(spelled, "") and text.startswith(root):
        return path  # no symlink on the way: the path is the real one, below the rootdir (most notebooks)
    # A notebook that is not a symlink is its own target, found in the same folder with the same fixtures
    candidates = [key[0]] if key[0] == in_real_dir or _identity(Path(key[0]), real_dirs, naming) == key else []
    for real in (*candidates, in_real_dir):
        if real.startswith(root) and len(real) > len(root):
            return rootpath / real[len(root) :]
    return path


def _alias_warning(path: Path, kept: Path, session: pytest.Session) -> str:
    here = session.config.invocation_params.dir
    shown, other = shown_path(path, here), shown_path(kept, here)
    return (
        f"{shown} is {other} reached through a symlink: collected once, as {other}. Hint: to stop pytest "
        "walking into the symlink, add it to `norecursedirs` or pass --ignore"
    )


def stray_fixture(
    path: Path, naming: FixtureNaming = DEFAULT_NAMING, kind: Callable[[str], str] = file_kind
) -> str | None:
    """Why ``path``, a YAML file that reads as a fixture, runs nothing; None for every other file.

    A fixture whose notebook was renamed away, or one beside a notebook in another format (a
    Jupytext ``light.py``), would otherwise be ignored without a word. A YAML file with a notebook
    beside it is decided without reading it; other YAML files (CI configs) are read, and only those
    with fixture keys alone count.
    """
    owner = naming.notebook_of(os.fspath(path))
    if owner is None:
        return None
    owner_kind = kind(owner)
    if owner_kind == "file" or (owner_kind == "link" and os.path.exists(owner)):
        return None
    notebook = os.path.basename(owner)
    if text_notebook_beside(owner, kind):
        return None  # collected as a text notebook (or an error says how to install jupytext)
    try:
        if not looks_like_fixture(path.read_bytes()):
            return None
        broken = broken_link(Path(owner))
        if broken:
            return (
                f"{path.name} reads as a notebook fixture, but {notebook} beside it is a symlink that cannot be "
                f"followed ({broken}): no case in it runs. Hint: point {notebook} at a notebook, or delete it"
            )
        stem = notebook[: -len(".ipynb")]
        others = sorted(p.name for p in path.parent.iterdir() if p.stem == stem and p.suffix not in (".yaml", ".yml"))
    except OSError:
        return None
    if others:
        return (
            f"{path.name} reads as a notebook fixture, but it sits beside {others[0]}, which is not a notebook "
            "(collected: .ipynb, Jupytext .py with `# %%` cells or a jupytext header, .md with jupytext front "
            f"matter): no case in it runs. Hint: write {notebook} (`jupytext --to ipynb {others[0]}`), mark the "
            f"cells of a .py with `# %%` ({TEXT_INSTALL_HINT}), or delete the fixture"
        )
    return (
        f"{path.name} reads as a notebook fixture, but there is no {notebook} beside it: no case in it "
        "runs. Hint: rename it to match its notebook, or delete it"
    )


@dataclass(frozen=True)
class _Crash:
    """The part of a failure pytest's short summary reads: ``ERROR <nodeid> - <message>``."""

    path: str
    lineno: int | None
    message: str


class MessageRepr:
    """A collection error (or a principles failure) shown as its message only, as pytest shows
    its own CollectError.

    pytest's own repr has no ``reprcrash``, so ``-ra`` printed a bare ``ERROR x.ipynb`` serially,
    while under xdist the controller gets the text as a string and prints it. This one carries the
    text as its ``reprcrash`` message too, so the summary line is the same in both modes.
    """

    def __init__(self, text: str, path: str) -> None:
        self.text = text
        self.reprcrash = _Crash(path, None, text)

    def toterminal(self, out: Any) -> None:
        out.line(self.text, red=True)

    def __str__(self) -> str:  # what xdist sends to the controller
        return self.text


class NotebookFile(pytest.File):
    """A notebook with a sibling fixture file; yields one NotebookItem per case."""

    def collect(self) -> Iterator[pytest.Item]:
        label, naming = self._label, fixture_naming(self.config)
        try:
            cache = case_cache(self.config)
            kind = listings(self.config).kind
            fixture = sibling_fixture(self.path, label(naming.candidates(self.path)[0]), naming, kind)
            if fixture is None:  # has_fixture() chose this file; its fixture went away since
                return
            cases = cache.cases(self.path, fixture, label)
        except NotAFixture as exc:  # another tool's YAML file: this notebook is not for this plugin
            warning = not_a_fixture(exc.location, label(self.path), exc.keys, naming)
            warnings.warn_explicit(warning, PytestNotebooksWarning, exc.location, 0)  # 0: pytest echoes no line of it
            return
        except (FixtureError, PytestNotebooksWarning) as exc:  # the warning: a cache's, with -W error
            raise self.CollectError(str(exc)) from None
        for case in cases:
            item = NotebookItem.from_parent(self, name=case.case_id, case=case)
            if case.skip:
                item.add_marker(pytest.mark.skip(reason=case.skip))
            if case.xfail:
                item.add_marker(pytest.mark.xfail(reason=case.xfail, raises=CaseFailed))
            yield item
        if cases and lint_enabled(self.config):
            limits = {**lint_limits(self.config), **dict(cases[0].principles)}
            yield PrinciplesItem.from_parent(
                self, name=PRINCIPLES_ITEM, fixture=fixture, limits=limits, sha256=cases[0].notebook_sha256
            )

    def _label(self, path: str | os.PathLike[str]) -> str:
        """``path`` as the user typed it: relative to the invocation directory when below it."""
        text, here = os.fspath(path), os.fspath(self.config.invocation_params.dir)
        below = here.rstrip("/") + "/"
        if os.sep == "/" and text.startswith(below) and len(text) > len(below) and "://" not in text:
            return text[len(below) :]  # shown_path's answer for a normalised absolute path, without pathlib
        return shown_path(path, self.config.invocation_params.dir)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException]) -> Any:  # type: ignore[override]
        """A fixture or notebook problem: its message alone; anything else (a bug): a traceback."""
        if isinstance(excinfo.value, self.CollectError) and excinfo.value.args:
            return MessageRepr(str(excinfo.value.args[0]), str(self.path))
        return super().repr_failure(excinfo)


class NamedLikeTestModule(NotebookFile):
    """A text notebook with a fixture beside it whose name pytest's ``python_files`` matches too
    (``test_report.py``): a notebook, or a module of tests with ``# %%`` cells and a YAML file of its
    own? Run as neither (plugin.py's ``_NotImported`` keeps pytest from importing it): one collection error says
    how to make it one or the other."""

    def collect(self) -> Iterator[pytest.Item]:
        kind = listings(self.config).kind
        fixture = next((name for name in fixture_naming(self.config).candidates(self.path) if kind(name)), "")
        patterns = " ".join(map(str, self.config.getini("python_files")))
        name = os.path.basename(fixture)
        error = FixtureError(
            self._label(self.path),
            f"is a Jupytext notebook with {name} beside it, and named like a module of tests (python_files: "
            f"{patterns}): neither run as a notebook nor imported by pytest",
            f"to test it as a notebook, rename it and {name} to a name python_files does not match; to keep it a "
            f"module of tests, rename {name}",
        )
        raise self.CollectError(str(error))


def named_like_test_module(path: Path, patterns: Iterable[str]) -> bool:
    """Whether ``path`` is a ``.py`` file that pytest's ``python_files`` patterns match, as pytest matches
    them (``_pytest.pathlib.fnmatch_ex``): a pattern without a separator against the name, else the path."""
    if path.suffix != ".py":
        return False
    return any(_fnmatch_ex(str(pattern), path) for pattern in patterns)


def _fnmatch_ex(pattern: str, path: Path) -> bool:
    if os.sep not in pattern:
        return fnmatch.fnmatch(path.name, pattern)
    if path.is_absolute() and not os.path.isabs(pattern):
        pattern = f"*{os.sep}{pattern}"
    return fnmatch.fnmatch(os.fspath(path), pattern)


def case_cache(config: pytest.Config) -> CaseCache:
    """The session's CaseCache, opened when the first notebook is collected: in pytest's cache
    directory, or none with ``-p no:cacheprovider``. One process writes it after collection: the
    only one, or xdist's first worker (every worker collects the same notebooks)."""
    cache = config.stash.get(CASE_CACHE_KEY, None)
    if cache is not None:
        return cache
    store, problem = getattr(config, "cache", None), ""
    try:
        directory = None if store is None else Path(store.mkdir(CASE_CACHE_DIR))
    except OSError as exc:  # a read-only checkout: collected as without the cache, and said once
        directory, problem = None, exc.strerror or str(exc)
    options = config.stash.get(OPTIONS_KEY, None)
    kernel = first_given(options.kernel.flag, options.kernel.ini) if options else None  # wins over the fixture's
    if directory is None:
        cache = config.stash[CASE_CACHE_KEY] = CaseCache(None, config.rootpath, {}, kernel=kernel)
        if problem:  # after the stash: a warning turned into an error fails one notebook, not each
            text = (
                f"the collection cache cannot be kept in pytest's cache directory ({problem}): every notebook is parsed"
            )
            warnings.warn_explicit(text, PytestNotebooksWarning, CACHE_FILE, 0)
        return cache
    from pytest_notebooks import __version__

    path = directory / CACHE_FILE
    shown = shown_path(path, config.invocation_params.dir)
    cache = config.stash[CASE_CACHE_KEY] = CaseCache(
        path,
        config.rootpath,
        stamp(__version__, kernel),
        warn=lambda text: warnings.warn_explicit(text, PytestNotebooksWarning, shown, 0),
        shown=shown,
        kernel=kernel,
    )
    writer = getattr(config, "workerinput", {}).get("workerid", "gw0") == "gw0"
    config.pluginmanager.register(_CaseCacheWriter(cache, writer), "notebooks-case-cache")
    cache.load()  # after it is in the stash: a warning turned into an error fails one notebook, not each
    return cache


class _CaseCacheWriter:
    """Once collection is done, writes the session's CaseCache (``write``: the process that does)
    and lets go of it (a plugin registered by case_cache): the run does not hold every slot."""

    def __init__(self, cache: CaseCache, write: bool) -> None:
        self.cache = cache
        self.write = write

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        if self.write:
            with contextlib.suppress(OSError):  # a cache: the next run derives the cases again
                self.cache.save()
        self.cache.close()


def notebook_mark(config: pytest.Config) -> pytest.MarkDecorator:
    """The ``notebook`` mark every item carries, one object for all (10,000 items made one each)."""
    mark = config.stash.get(NOTEBOOK_MARK_KEY, None)
    if mark is None:
        mark = config.stash[NOTEBOOK_MARK_KEY] = pytest.mark.notebook
    return mark


def lint_enabled(config: pytest.Config) -> bool:
    """--notebooks-lint or ``notebooks_lint = true``: one principles item per notebook."""
    return bool(config.getoption("notebooks_lint", False) or config.getini("notebooks_lint"))


def lint_limits(config: pytest.Config) -> dict[str, int]:
    """The principles' limits: the defaults, then ``notebooks_principles`` lines of the ini."""
    cached = config.stash.get(LIMITS_KEY, None)
    if cached is not None:
        return cached
    pairs: dict[str, Any] = {}
    for line in config.getini("notebooks_principles"):
        name, _, value = str(line).partition("=")
        try:
            pairs[name.strip()] = int(value.strip())
        except ValueError:
            raise pytest.UsageError(f"notebooks_principles: expected `name = number`, got {line!r}") from None
    try:
        limits = {**defaults(), **parse_limits(pairs, "notebooks_principles")}
    except ValueError as exc:
        raise pytest.UsageError(str(exc)) from None
    config.stash[LIMITS_KEY] = limits
    return limits


class PrinciplesFailed(NotebooksError):
    """A notebook over one of the principles' limits."""

    def __init__(self, violations: list[Violation]) -> None:
        self.violations = violations
        super().__init__(violations[0].message)


class PrinciplesItem(pytest.Item):
    """``notebook.ipynb::principles``: the notebook measured against the three principles."""

    def __init__(self, *, fixture: Path, limits: dict[str, int], sha256: str = "", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.fixture = fixture
        self.limits = limits
        self.sha256 = sha256  # of the bytes collected: the ones measured, or none
        self.add_marker(notebook_mark(self.config))

    def runtest(self) -> None:
        import hashlib

        from pytest_notebooks.cases.notebook import parse_any

        try:
            data = self.path.read_bytes()
        except OSError as exc:
            raise NotebookChanged(f"{self.path.name} cannot be read since it was collected ({exc.strerror})") from None
        now = hashlib.sha256(data).hexdigest()
        if self.sha256 and now != self.sha256:
            raise NotebookChanged(
                f"{self.path.name} changed on disk after it was collected (sha256 {self.sha256[:12]} at collection, "
                f"{now[:12]} now): not measured"
            )
        notebook = parse_any(self.path, data, str(self.path))  # collection checked these bytes (text: converted)
        reason = not_measured(notebook)
        if reason is not None:
            pytest.skip(reason)
        measures = measure(notebook["cells"])
        violations = check(measures, self.limits)
        self.stash[MEASURES_KEY] = (measures, violations)
        if violations:
            raise PrinciplesFailed(violations)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> Any:
        if isinstance(excinfo.value, NotebookChanged):
            from pytest_notebooks.run.execute import CHANGED_HINT

            return MessageRepr(f"{excinfo.value}\n{CHANGED_HINT}", str(self.path))
        if not isinstance(excinfo.value, PrinciplesFailed):
            return super().repr_failure(excinfo, style)
        relpath = self.config.invocation_params.dir
        fixture = shown_path(self.fixture, relpath)
        lines = []
        for violation in excinfo.value.violations:
            where = f"cell {violation.cell}: " if violation.cell else ""
            lines += [f"{where}{violation.message}", f"  hint: {violation.hint}"]
        first = excinfo.value.violations[0]
        lines.append(
            f"{shown_path(self.path, relpath)}: to accept it, raise the limit for this notebook in {fixture}: "
            f"`principles: {{{first.limit_name}: {first.value}}}` (a decision recorded in git)"
        )
        # With a reprcrash, so that pytest < 9 prints ``FAILED x::principles - <first line>`` too
        return MessageRepr("\n".join(lines), str(self.path))

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.path, 0, f"[principles] {self.nodeid}"

    def record(self) -> PrinciplesRecord:
        """The measures as the results file keeps them (sent to the xdist controller as JSON)."""
        found = self.stash.get(MEASURES_KEY, None)
        return PrinciplesRecord(
            notebook=_rel(self.path, self.config.stash[OPTIONS_KEY].rootdir),
            limits=self.limits,
            measures=found[0] if found else None,
            violations=tuple(found[1]) if found else (),
        )


class NotebookItem(pytest.Item):
    """One case of a notebook, run through papermill in its own kernel."""

    def __init__(self, *, case: NotebookCase, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.case = case
        self.add_marker(notebook_mark(self.config))

    @property
    def options(self) -> Options:
        return self.config.stash[OPTIONS_KEY]

    def run_settings(self) -> RunSettings:
        """The case's kernel and limits after options.py's precedence; the rest is the session's."""
        from pytest_notebooks.run.execute import RunSettings

        options, case = self.options, self.case
        return RunSettings(
            kernel=options.kernel.for_case(case.kernel, notebook=case.notebook_kernel),
            timeout=limited(options.timeout.for_case(case.timeout)),
            cell_timeout=limited(options.cell_timeout.for_case(case.cell_timeout)),
            max_cell_output=options.max_cell_output,
            max_output=options.max_output,
            redact=options.redact,
            clean_kernel_env=options.kernel_env == "clean",
            log_output=options.log_output,
        )

    def output_path(self) -> str:
        return self.options.output_path(self.case.notebook, self.case.case_id)

    def runtest(self) -> None:
        from pytest_notebooks.run.execute import NextCase, run_case

        output = self.output_path()
        shown = shown_path(output, self.options.rootdir)  # junit: relative to the rootdir, as the results file
        if ("notebook_output", shown) not in self.user_properties:  # once, however many attempts (reruns)
            self.user_properties.append(("notebook_output", shown))
        following = self.stash.get(NEXT_KEY, None)
        next_case = None
        if isinstance(following, NotebookItem) and following.case.skip is None:
            next_case = NextCase(following.case, following.run_settings())
        pool = self.config.stash.setdefault(POOL_KEY, KernelPool())
        try:
            result = run_case(self.case, output, self.run_settings(), pool, next_case)
        except BaseException as exc:  # stopped (pytest-timeout's signal method): its record names the cell
            self._keep_stopped(exc)
            raise
        # Items live until the session ends: the executed notebook (tens of kB even for a tiny
        # one) is only needed here, for the snapshot, and is not kept with the result.
        notebook, result = result.notebook, dataclasses.replace(result, notebook=None)
        self.stash[RESULT_KEY] = result
        if not result.passed:
            from pytest_notebooks.run.report import post_mortem, relative_to

            relpath = relative_to(self.config.invocation_params.dir)
            where_to_look = post_mortem(self.case, result, self.run_settings(), relpath=relpath)  # noqa: F841 - for (Pdb)
            raise CaseFailed(result)  # --pdb stops here, not in the notebook's kernel: type where_to_look
        if self.compares_snapshot():
            self._check_snapshot(result, notebook)

    def _keep_stopped(self, exc: BaseException) -> None:
        from pytest_notebooks.run.execute import stopped_result

        stopped = stopped_result(exc)
        if stopped is not None:
            self.stash[RESULT_KEY] = stopped

    def compares_snapshot(self) -> bool:
        """The fixture's `snapshot` (case, then file) decides; else --notebooks-snapshots."""
        return self.case.snapshot if self.case.snapshot is not None else self.options.snapshots

    def _check_snapshot(self, result: ExecutionResult, notebook: dict[str, Any] | None) -> None:
        from pytest_notebooks.models import CellFailure, FailureKind
        from pytest_notebooks.review.normalize import Replacement
        from pytest_notebooks.review.snapshot import check_snapshot, snapshot_path

        assert notebook is not None
        rules = [Replacement(p, r) for p, r in (*self.options.snapshot_replace, *self.case.snapshot_replace)]
        path = snapshot_path(self.case.notebook, self.case.case_id)
        check = check_snapshot(notebook, path, rules, update=self.options.update_snapshots)
        shown = _rel(path, self.options.rootdir)
        self.stash[SNAPSHOT_KEY] = SnapshotRecord(check.status, shown, check.diff.changes)
        if check.status == "missing":
            failure = CellFailure(
                FailureKind.SNAPSHOT_MISSING,
                evalue=shown,
                detail="run once with --notebooks-update-snapshots to write it from this run, then commit it",
            )
        elif check.status == "mismatch":
            first = check.diff.changes[0]
            failure = CellFailure(
                FailureKind.SNAPSHOT_MISMATCH,
                cell_number=first.head_number or first.base_number,
                evalue=shown,
                detail="\n".join(
                    [
                        "- snapshot, + this run (outputs normalised; see the docs: guides/snapshots-and-review):",
                        *check.diff.lines(),
                        "",
                        "if the change is intended: pytest --notebooks-update-snapshots, then commit the snapshot",
                    ]
                ),
            )
        else:
            return
        failed = dataclasses.replace(result, passed=False, failure=failure)
        self.stash[RESULT_KEY] = failed  # the record's failure is the snapshot's, not the passing run's None
        raise CaseFailed(failed)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> Any:
        if isinstance(excinfo.value, CaseFailed):
            from pytest_notebooks.run.report import failure_repr, relative_to

            return failure_repr(
                self.case,
                excinfo.value.result,
                self.run_settings(),
                relpath=relative_to(self.config.invocation_params.dir),
            )
        return super().repr_failure(excinfo, style)

    def reportinfo(self) -> tuple[Path, int, str]:
        """Points at the case in the fixture file: a skip reads ``nb.yaml:7: reason``.

        The domain heads the failure section. Like doctest's ``[doctest] name`` it starts with a
        bracket, so pytest's verbose line keeps the node id as it is.
        """
        line = self.case.line - 1 if self.case.line else 0
        return self.case.fixture, line, f"[notebook] {self.nodeid}"

    def shown_parameters(self) -> dict[str, Any]:
        """The case's parameters as records show them: a value that holds a secret of the environment
        (a password passed as a parameter) masked as the notebook's outputs are. The kernel gets them
        as they are."""
        shown = self.stash.get(SHOWN_PARAMETERS_KEY, None)
        if shown is None:
            redactor = self.config.stash.get(REDACTOR_KEY, None)
            if redactor is None:
                redactor = Redactor.from_environ(os.environ, self.options.redact)
                self.config.stash[REDACTOR_KEY] = redactor
            if self.case.env:  # the secrets of the fixture's env: too
                redactor = Redactor.from_environ({**os.environ, **dict(self.case.env)}, self.options.redact)
            parameters = self.case.parameters
            shown = redactor.data(copy.deepcopy(parameters)) if redactor else parameters
            self.stash[SHOWN_PARAMETERS_KEY] = shown
        return shown

    def record(self) -> CaseReport:
        """What the results file keeps of this case (sent to the xdist controller as JSON)."""
        options, case = self.options, self.case
        result = self.stash.get(RESULT_KEY, None)
        return CaseReport(
            notebook=_rel(case.notebook, options.rootdir),
            fixture=_rel(case.fixture, options.rootdir),
            case=case.case_id,
            notebook_sha256=case.notebook_sha256,
            fixture_sha256=case.fixture_sha256,
            notebook_blob=case.notebook_blob or None,
            fixture_blob=case.fixture_blob or None,
            parameters=self.shown_parameters(),
            output=shown_path(self.output_path(), options.rootdir),
            fixture_skip=case.skip or None,
            fixture_xfail=case.xfail or None,
            declared_cases=case.declared_cases,
            kernel=result.kernel_name if result else None,
            execution_seconds=round(result.duration, 3) if result else None,
            failure=FailureRecord.of(result.failure) if result and result.failure else None,
            snapshot=self.stash.get(SNAPSHOT_KEY, None),
            converted_sha256=result.converted_sha256 if result else None,
            converted_by=result.converted_by if result else None,
        )


def _rel(path: Path, root: Path) -> str:
    """A path as the results file keeps it: relative to the rootdir when below it."""
    return shown_path(path, root)
