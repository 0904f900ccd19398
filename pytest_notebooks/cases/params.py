"""Fixture YAML + notebook -> NotebookCase per case. Pure: no pytest, no papermill.

The fixture format is the README's "The fixture file". YAML is read by yamlfile.py, settings checked
by settings.py, parameters by declared.py (against the notebook), values.py and languages.py (text papermill
writes wrong for R, Julia or Scala, ``misread``, for the kernel each case runs with); this module walks
the cases, in file order, refusing ids that would share a file and parameters over the size limits.
"""

from __future__ import annotations

import errno
import hashlib
import keyword
import os
import re
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pytest_notebooks.cases.declared import Owner, check_declared, unknown_key_hint
from pytest_notebooks.cases.languages import misread, translated_as, untranslatable
from pytest_notebooks.cases.naming import DEFAULT_NAMING, FIXTURE_KEYS, FixtureNaming, foreign_keys
from pytest_notebooks.cases.notebook import read_file
from pytest_notebooks.cases.principles import LIMITS, parse_limits
from pytest_notebooks.cases.settings import case_settings, replacements
from pytest_notebooks.cases.values import unusable
from pytest_notebooks.cases.yamlfile import FIXTURE_LIMIT, Locator, kind, load_yaml, suggest, top_level_keys
from pytest_notebooks.errors import FixtureError, NotAFixture
from pytest_notebooks.gitinfo import blob_id
from pytest_notebooks.models import NotebookCase, NotebookInfo

DEFAULT_CASE_ID = "default"
TOP_LEVEL_KEYS = FIXTURE_KEYS
CASE_KEYS = ("parameters", "timeout", "cell_timeout", "kernel", "skip", "xfail", "snapshot", "env")
# A case id names a file (<id>.ipynb, beside its snapshot) and a test: it must be short and portable.
_CASE_ID = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-]*")
MAX_CASE_ID = 100
# The node id of the principles check (``nb.ipynb::principles``, with --notebooks-lint), never a case's.
PRINCIPLES_ID = "principles"
RESERVED_CASE_IDS = (PRINCIPLES_ID,)
REPRO_SUFFIX = ".repro"  # a failure's reproduce command writes <case id>.repro.ipynb beside <case id>.ipynb
# A case's parameters (defaults included) written as JSON, in characters: papermill writes them
# into the executed notebook, and the results file keeps them, for every case.
PARAMETERS_LIMIT = 1_000_000
# All the cases of one fixture together, counted the same way (defaults once per case): what the
# results file and the executed notebooks of a full run hold of parameters. The same bound as the
# whole fixture's alias expansion, which this total can only pass through defaults repeated per case.
CASES_PARAMETERS_LIMIT = FIXTURE_LIMIT
_FIXTURE_HINT = re.compile(rb"^(?:cases|parameters)[ \t]*:", re.MULTILINE)


def looks_like_fixture(raw: bytes) -> bool:
    """Whether a YAML file's bytes read as a fixture: a mapping of fixture keys, with `cases` or
    `parameters`. CI configs (Azure and CircleCI have a top-level `parameters:`) have other keys.
    """
    if not _FIXTURE_HINT.search(raw):
        return False  # the usual YAML file, decided without parsing it
    keys = top_level_keys(raw)
    return keys is not None and any(key in ("cases", "parameters") for key in keys) and set(keys) <= set(TOP_LEVEL_KEYS)


def sibling_fixture(
    notebook: Path,
    label: str | None = None,
    naming: FixtureNaming = DEFAULT_NAMING,
    kind_of: Callable[[str], str] | None = None,
) -> Path | None:
    """The fixture file beside ``notebook``, or None. Raises FixtureError when two exist, or when
    one is a symlink that cannot be followed (it loops, or its target is missing). ``kind_of``
    answers as ``file_kind`` does (collection's answers from a directory listing)."""
    kind_of = kind_of or file_kind
    found = [(path, kind) for path in naming.candidates(notebook) if (kind := kind_of(path))]
    for path, kind in found:
        broken = broken_link(Path(path)) if kind == "link" else None
        if broken:
            name = os.path.basename(path)
            raise FixtureError(
                str(Path(label).with_name(name)) if label else path,
                f"is a symlink that cannot be followed ({broken})",
                f"point {name} at a fixture file, or delete it",
            )
    if len(found) > 1:
        first, second = (os.path.basename(path) for path, _ in found[:2])
        raise FixtureError(
            label or found[0][0], f"{notebook.name} has two fixture files, {first} and {second}", "keep one of them"
        )
    return Path(found[0][0]) if found else None


def fixture_candidates(notebook: str | os.PathLike[str], naming: FixtureNaming = DEFAULT_NAMING) -> tuple[str, ...]:
    """Where a fixture of ``notebook`` can be, as text (cases/naming.py: ``x.yaml`` and ``x.yml`` by default)."""
    return naming.candidates(notebook)


def file_kind(path: str | os.PathLike[str]) -> str:
    """``"file"`` for a regular file, ``"link"`` for a symlink (whether it leads anywhere or not), ""
    for anything else or nothing: ``is_file() or is_symlink()`` in one ``lstat``, raising what
    ``Path.is_file`` raises."""
    try:
        mode = os.lstat(path).st_mode
    except OSError as exc:
        if exc.errno in _MISSING:
            return ""
        raise
    if stat.S_ISREG(mode):
        return "file"
    return "link" if stat.S_ISLNK(mode) else ""


_MISSING = (errno.ENOENT, errno.ENOTDIR, errno.EBADF, errno.ELOOP)  # what pathlib's is_file() reads as "no"


def broken_link(path: Path) -> str | None:
    """Why ``path``, a symlink, leads to no file (``Too many levels of symbolic links``), or None."""
    if not path.is_symlink() or path.is_file():
        return None
    try:
        os.stat(path)
    except OSError as exc:
        return exc.strerror or str(exc)
    return "it leads to a directory, not a file"


def load_cases(
    fixture: Path, notebook: NotebookInfo, label: str | None = None, kernel: str | None = None
) -> list[NotebookCase]:
    """Read ``fixture`` and return one NotebookCase per case, in file order.

    ``label`` is how messages name the fixture file (a path relative to the rootdir, say). The
    cases' parameters and the sha256 recorded with them come from the same bytes, read once.
    ``kernel``: the kernel the session runs every case with (``--notebooks-kernel``, the
    ``notebooks_kernel`` ini key), which wins over the fixture's; None when it names none.
    """
    shown = label or str(fixture)
    return fixture_cases(fixture, read_fixture_bytes(fixture, shown), notebook, shown, kernel=kernel)


def read_fixture_bytes(fixture: Path, shown: str) -> bytes:
    """The fixture's bytes; FixtureError naming it as ``shown`` when it cannot be read."""
    try:
        return read_file(fixture)
    except OSError as exc:
        raise unreadable_fixture(shown, exc) from None


def unreadable_fixture(shown: str, exc: OSError) -> FixtureError:
    """The error for a fixture that cannot be read."""
    return FixtureError(shown, f"cannot be read ({exc.strerror or exc})", "check that it is a readable file")


def fixture_cases(
    fixture: Path,
    raw: bytes,
    notebook: NotebookInfo,
    label: str | None = None,
    sha256: str = "",
    kernel: str | None = None,
) -> list[NotebookCase]:
    """``load_cases`` of the bytes ``raw`` read from ``fixture`` (``sha256``: their digest, when known)."""
    shown = label or str(fixture)
    data, spots = load_yaml(shown, raw)
    keys = foreign_keys(data)
    if keys:
        raise NotAFixture(shown, keys)
    digest = sha256 or hashlib.sha256(raw).hexdigest()
    return _Builder(fixture, Locator(shown, spots), notebook, digest, blob_id(raw), kernel).build(data)


def merged_env(
    file: tuple[tuple[str, str], ...] | None, case: tuple[tuple[str, str], ...] | None
) -> tuple[tuple[str, str], ...] | None:
    """A case's ``env:`` merged over the file's, variable by variable, sorted by name."""
    if file is None or case is None or case is file:
        return case if case is not None else file
    return tuple(sorted({**dict(file), **dict(case)}.items()))


class _Builder:
    """Validates one fixture file against its notebook; raises FixtureError on the first problem."""

    def __init__(
        self, fixture: Path, where: Locator, notebook: NotebookInfo, sha: str, blob: str = "", kernel: str | None = None
    ) -> None:
        self.fixture = fixture
        self.where = where
        self.notebook = notebook
        self.sha = sha
        self.blob = blob
        self.session_kernel = kernel  # --notebooks-kernel / notebooks_kernel: every case runs with it
        self.file_kernel = notebook.kernel_name  # what a case runs with unless it names its own (build)
        self.written: dict[tuple[str, ...], int] = {}  # parameter path -> characters written, all cases
        self.own: dict[str, tuple[str, ...]] = {}  # case id -> the parameters it sets itself, not from the defaults

    def fail(self, path: tuple[str, ...], problem: str, hint: str = "") -> FixtureError:
        return self.where.fail(path, problem, hint)

    def settings(self, data: dict[str, Any], path: tuple[str, ...]) -> dict[str, Any]:
        return case_settings(data, path, self.where, self.fixture.name)

    def build(self, data: dict[str, Any]) -> list[NotebookCase]:
        for key in data:
            if key not in TOP_LEVEL_KEYS:
                raise self.fail(
                    (str(key),),
                    f"unknown top-level key {key!r}",
                    f"{suggest(str(key), TOP_LEVEL_KEYS)}allowed keys: {', '.join(TOP_LEVEL_KEYS)}",
                )
        strict = data.get("strict", True)
        if not isinstance(strict, bool):
            raise self.fail(("strict",), f"`strict` must be true or false, got {kind(strict)}")
        defaults = self.parameters(data.get("parameters"), ("parameters",), "the defaults")
        settings = self.settings(data, ())
        self.file_kernel = self.running(settings["kernel"])
        self.check_misread(defaults, ("parameters",), "the defaults", self.file_kernel)
        settings["snapshot_replace"] = replacements(data.get("snapshot_replace"), self.where)
        limits = self.principles(data.get("principles"))
        cases = data.get("cases")
        if cases is None:
            if "cases" in data:
                raise self.fail(("cases",), "`cases` is empty", "list cases under it, or remove it")
            entries: list[tuple[str, Any]] = [(DEFAULT_CASE_ID, {})]
        elif isinstance(cases, dict) and cases:
            entries = [(self.case_id(key), value) for key, value in cases.items()]
            self.check_files([case_id for case_id, _ in entries])
        else:
            raise self.fail(
                ("cases",),
                f"`cases` must be a non-empty mapping of case ids to cases, got {kind(cases)}",
                "write `cases:` then one indented `case_id: {parameter: value}` per case",
            )
        cases = [self.case(case_id, body, defaults, settings, strict) for case_id, body in entries]
        if strict:
            self.check_defaults(defaults)
        self.check_total()
        declared = tuple(case_id for case_id, _ in entries)
        return [NotebookCase(**case, declared_cases=declared, principles=limits) for case in cases]

    def principles(self, value: Any) -> tuple[tuple[str, int], ...]:
        """The fixture's ``principles:`` limits (the notebook's, raised or lowered), validated."""
        if value is None:
            return ()
        if not isinstance(value, dict):
            raise self.fail(
                ("principles",),
                f"`principles` must be a mapping of limits, got {kind(value)}",
                f"for example `principles: {{max_branches: 15}}`; limits: {', '.join(LIMITS)}",
            )
        try:
            limits = parse_limits(value, "principles")
        except ValueError as exc:
            key = next((str(k) for k in value if k not in LIMITS), "")
            raise self.fail(("principles", key) if key else ("principles",), str(exc)) from None
        return tuple(sorted(limits.items()))

    def case(
        self,
        case_id: str,
        body: Any,
        defaults: dict[str, Any],
        top: dict[str, Any],
        strict: bool,
    ) -> dict[str, Any]:
        """The fields of one case's NotebookCase, all but those the whole file decides."""
        path: tuple[str, ...] = ("cases", case_id)
        if body is None:
            body = {}
        if not isinstance(body, dict):
            raise self.fail(
                path,
                f"case {case_id!r} must be a mapping, got {kind(body)}",
                f"write it as `{case_id}: {{parameter: value}}`, or `{case_id}: {{}}` for the defaults",
            )
        if "parameters" in body:  # the long form: parameters plus settings
            for key in body:
                if key not in CASE_KEYS:
                    raise self.fail(
                        (*path, str(key)),
                        f"case {case_id!r}: unknown key {key!r} in a case that has `parameters:`",
                        unknown_key_hint(str(key), self.notebook, CASE_KEYS),
                    )
            own = self.parameters(body["parameters"], (*path, "parameters"), f"case {case_id!r}")
            settings = {**top, **{k: v for k, v in self.settings(body, path).items() if v is not None}}
            settings["env"] = merged_env(top["env"], settings["env"])  # per variable, the case's value wins
            param_path, owner = (*path, "parameters"), Owner(case_id)
        else:
            own = self.parameters(body, path, f"case {case_id!r}")
            settings = top
            param_path, owner = path, Owner(case_id, settings=CASE_KEYS)  # a short form's keys may be misspelt settings
        self.check_kernel(case_id, own, param_path, defaults, self.running(settings["kernel"]))
        if strict:
            check_declared(own, param_path, owner, self.notebook, self.where)
        self.own[case_id] = tuple(own)
        self.check_size(
            case_id, [(*param_path, name) if name in own else ("parameters", name) for name in defaults | own]
        )
        settings = {**settings, "env": settings["env"] or ()}  # None: the fixture sets none
        return dict(
            notebook=self.notebook.path,
            fixture=self.fixture,
            case_id=case_id,
            parameters={**defaults, **own},
            line=self.where.line(*path),
            notebook_sha256=self.notebook.sha256,
            notebook_blob=self.notebook.git_blob,
            fixture_blob=self.blob,
            notebook_kernel=self.notebook.kernel_name,
            fixture_sha256=self.sha,
            **settings,
        )

    def check_defaults(self, defaults: dict[str, Any]) -> None:
        """The defaults against the notebook, once, named as the defaults: never as the first case, which
        may set its own value. A wrong default that every case overrides is still an error (saying that no
        case uses it): a default is a statement about every case, one added later included, and a value
        is checked where it is written, not according to which cases happen to exist."""
        users = {name: tuple(case_id for case_id, own in self.own.items() if name not in own) for name in defaults}
        owner = Owner(None, users=users, cases=len(self.own))
        check_declared(defaults, ("parameters",), owner, self.notebook, self.where)

    def case_id(self, key: Any) -> str:
        """A key of `cases` as a test id, checked: it names a file and a test."""
        case_id = str(key)
        path = ("cases", case_id)
        if isinstance(key, bool) or key is None:
            raise self.fail(
                path,
                f"case id {case_id!r} is how YAML 1.1 reads an unquoted yes/no/on/off/true/false/null key",
                "quote the id to keep it as written, or choose another name",
            )
        if not _CASE_ID.fullmatch(case_id):
            raise self.fail(
                path,
                f"case id {case_id!r} is not a usable test id",
                "use letters, digits, '_', '.' and '-' only, starting with a letter, digit or '_' "
                "(it becomes a file name and a pytest id)",
            )
        if len(case_id) > MAX_CASE_ID:
            raise self.fail(
                path,
                f"case id {case_id[:20]!r}... is {len(case_id)} characters long; the limit is {MAX_CASE_ID}",
                "shorten it: it becomes a file name (<id>.ipynb) and a pytest id",
            )
        if case_id in RESERVED_CASE_IDS:
            raise self.fail(
                path,
                f"case id {case_id!r} is reserved: it is the node id of the notebook's principles check "
                f"({self.notebook.path.name}::{case_id}, with --notebooks-lint)",
                "rename the case",
            )
        return case_id

    def check_files(self, case_ids: list[str]) -> None:
        """No two cases share a file: ids equal under casefold are one file on a case-insensitive
        file system (macOS, Windows), and ``a.repro`` is where the reproduce command of ``a`` writes."""
        seen: dict[str, str] = {}
        for case_id in case_ids:
            folded = case_id.casefold()
            first = seen.setdefault(folded, case_id)
            if first != case_id:
                raise self.fail(
                    ("cases", case_id),
                    f"case ids {first!r} (line {self.where.line('cases', first)}) and {case_id!r} (line "
                    f"{self.where.line('cases', case_id)}) differ only in case: on a case-insensitive file system "
                    "(macOS, Windows) their executed notebooks and snapshots are one file",
                    "rename one of them",
                )
        for case_id in case_ids:
            copy = seen.get(f"{case_id}{REPRO_SUFFIX}".casefold())
            if copy is not None:
                raise self.fail(
                    ("cases", max(case_id, copy, key=case_ids.index)),  # the later of the two in the file
                    f"case id {copy!r} (line {self.where.line('cases', copy)}) names the file a failure of case "
                    f"{case_id!r} (line {self.where.line('cases', case_id)}) writes its reproduce copy to "
                    f"({case_id.casefold()}{REPRO_SUFFIX}.ipynb): the reproduce command would overwrite this "
                    "case's executed notebook",
                    f"rename {copy!r}: <case id>{REPRO_SUFFIX}.ipynb is where the reproduce command of <case id> "
                    "writes",
                )

    def check_size(self, case_id: str, paths: list[tuple[str, ...]]) -> None:
        """The case's parameters stay under PARAMETERS_LIMIT, written as JSON (sizes from the YAML tree)."""
        sizes = {path: self.where.size(*path) for path in paths}
        for path, size in sizes.items():
            self.written[path] = self.written.get(path, 0) + size + len(path[-1]) + 6
        total = 2 + sum(size + len(path[-1]) + 6 for path, size in sizes.items())
        if total <= PARAMETERS_LIMIT:
            return
        biggest = max(sizes, key=lambda path: sizes[path])
        raise self.fail(
            biggest,
            f"case {case_id!r}: its parameters come to more than {PARAMETERS_LIMIT:,} characters written out "
            f"(aliases expanded), {sizes[biggest]:,} of them in {biggest[-1]!r}; the limit is "
            f"{PARAMETERS_LIMIT:,} per case",
            "parameters are written into each executed notebook and into the results file; pass big "
            "inputs as a file path and read them in the notebook",
        )

    def check_total(self) -> None:
        """All cases' parameters together stay under CASES_PARAMETERS_LIMIT: a default is written
        once per case, so a big one times many cases fills the results file and the outputs."""
        total = sum(self.written.values())
        if total <= CASES_PARAMETERS_LIMIT:
            return
        biggest = max(self.written, key=lambda path: self.written[path])
        owner = "the defaults" if biggest[0] == "parameters" else f"case {biggest[1]!r}"
        raise self.fail(
            biggest,
            f"the parameters of all its cases come to {total:,} characters written out (a default once per "
            f"case, aliases expanded), {self.written[biggest]:,} of them from {biggest[-1]!r} of {owner}; the "
            f"limit is {CASES_PARAMETERS_LIMIT:,} per fixture",
            "every case's parameters are written into its executed notebook and into the results file; pass "
            "big inputs as a file path and read them in the notebook",
        )

    def parameters(self, value: Any, path: tuple[str, ...], owner: str) -> dict[str, Any]:
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise self.fail(
                path,
                f"parameters of {owner} must be a mapping of names to values, got {kind(value)}",
                "write one `name: value` per line, indented under it",
            )
        for name in value:
            if not isinstance(name, str) or not name.isidentifier() or keyword.iskeyword(name):
                what = (
                    "a Python keyword" if isinstance(name, str) and name.isidentifier() else "not a Python identifier"
                )
                raise self.fail(
                    (*path, str(name)),
                    f"{owner}: parameter name {name!r} is {what}",
                    "papermill assigns each parameter as a variable; rename it",
                )
            problem = unusable(name, value[name])
            if problem is not None:
                raise self.fail((*path, name), f"{owner}: parameter {name!r} {problem[0]}", problem[1])
        return dict(value)

    def running(self, kernel: str | None) -> str | None:
        """The kernel a case whose fixture says ``kernel`` (its own, else the file's) runs with, as
        options.py's ``Layers.for_case`` picks it: the session's, the fixture's, the kernelspec's."""
        return self.session_kernel or kernel or self.notebook.kernel_name

    def check_kernel(
        self,
        case_id: str,
        own: dict[str, Any],
        path: tuple[str, ...],
        defaults: dict[str, Any],
        kernel: str | None,
    ) -> None:
        """A case's parameters as papermill writes them for the kernel it runs with: that it can write
        them at all, its own, and the defaults it uses when that kernel gets another translator than the
        file's (checked in build)."""
        language = self.notebook.language
        problem = untranslatable(kernel, language) if own or defaults else None  # none to write: papermill asks not
        if problem is not None:  # at its parameters, else at the defaults it takes
            raise self.fail(path if own else ("parameters",), f"case {case_id!r}: {problem[0]}", problem[1])
        self.check_misread(own, path, f"case {case_id!r}", kernel)
        if translated_as(kernel, language) != translated_as(self.file_kernel, language):
            used = {name: value for name, value in defaults.items() if name not in own}
            self.check_misread(used, ("parameters",), f"the defaults, as case {case_id!r} runs with them", kernel)

    def check_misread(self, values: dict[str, Any], path: tuple[str, ...], owner: str, kernel: str | None) -> None:
        """No text that papermill writes wrong for ``kernel`` and the notebook's language (``misread``)."""
        for name, value in values.items():
            problem = misread(name, value, kernel, self.notebook.language)
            if problem is not None:
                raise self.fail((*path, name), f"{owner}: parameter {name!r} {problem[0]}", problem[1])
