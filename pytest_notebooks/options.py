"""The plugin's settings: every flag and ini key declared once, checked when pytest parses them, and
one precedence rule. Pure: plugin.py hands the declarations to pytest's parser.

A flag's value goes through its ``parse`` callable as argparse's ``type=`` (a bad value is pytest's
usage error naming the flag, before anything is collected); an ini value goes through the same
callable when the plugin is configured. Which value a case gets, the first that says something:

    timeout, cell_timeout   the case > its fixture file > the flag > the ini > the default
    kernel                  the flag > the ini > the case > its fixture file > the notebook's kernelspec
    everything else         the flag > the ini > the default

No limit: a limit of 0 is no limit, for every limit, on the command line, in the ini and in a
fixture; an infinite one (``inf``; ``.inf`` in YAML) means the same.
"""

from __future__ import annotations

import math
from argparse import ArgumentTypeError
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, Literal, TypeVar

from pytest_notebooks.files import is_url

T = TypeVar("T")

DEFAULT_OUTPUT_DIR = "notebook-outputs"
DEFAULT_CELL_TIMEOUT = 600.0
DEFAULT_MAX_CELL_OUTPUT = 10_000_000  # characters; see the README's "Running a case"
DEFAULT_MAX_OUTPUT = 50_000_000
KERNEL_ENVS = ("inherit", "clean")
KERNEL_STARTS = ("fork", "spawn")  # run/kernels.py's KernelPool takes these
NO_LIMIT = math.inf  # what a limit of 0 (or inf) is parsed to; None stays "not given"


# ---------------------------------------------------------------- values: argparse's type= callables


def limit(value: float, text: object, expected: str) -> float:
    """A limit as a number: itself, or NO_LIMIT for 0 and inf; ArgumentTypeError for NaN or below 0."""
    if math.isnan(value) or value < 0:
        raise ArgumentTypeError(f"expected {expected} (0: no limit), got {text!r}")
    return NO_LIMIT if value in (0, math.inf) else value


def seconds(text: str) -> float:
    """A time limit: ``30``, ``2.5``; ``0`` or ``inf``: no limit (NO_LIMIT)."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    return limit(value, text, "a number of seconds such as 30 or 2.5")


_SIZE_UNITS = {"": 1, "k": 10**3, "kb": 10**3, "m": 10**6, "mb": 10**6, "g": 10**9, "gb": 10**9}


def size(text: str) -> float:
    """An output limit in characters: ``10MB``, ``500 kB``, ``2000000`` (decimal units); ``0`` or
    ``inf``: no limit (NO_LIMIT)."""
    number, unit = text.strip(), ""
    if number.lower() not in ("inf", "infinity"):
        while number and not number[-1].isdigit():
            number, unit = number[:-1], number[-1] + unit
    try:
        value = float(number) * _SIZE_UNITS[unit.strip().lower()]
    except (ValueError, KeyError):
        value = math.nan
    checked = limit(value, text, "a number of characters such as 10MB, 500kB or 2000000")
    return checked if checked == NO_LIMIT else math.ceil(checked)  # 0.5 characters: 1, not 0 (no limit)


def kernel_name(text: str) -> str:
    """A kernel name, as `jupyter kernelspec list` shows them."""
    if not text.strip():
        raise ArgumentTypeError("expected a kernel name (`jupyter kernelspec list` shows them), got ''")
    return text.strip()


def module_names(text: str) -> tuple[str, ...]:
    """``pandas,mylib.io``: module names, comma separated."""
    names = tuple(name.strip() for name in text.split(",") if name.strip())
    for name in names:
        if not all(part.isidentifier() for part in name.split(".")):
            raise ArgumentTypeError(f"{name!r} is not a module name (e.g. pandas, mylib.io)")
    return names


@dataclass(frozen=True)
class Shard:
    """``--notebooks-shard 2/4``: run the 2nd of 4 shards."""

    index: int  # 1-based
    total: int


def shard(text: str) -> Shard:
    """``"2/4"`` -> Shard(2, 4)."""
    index, sep, count = text.partition("/")
    try:
        chosen = Shard(int(index), int(count))
    except ValueError:
        chosen = Shard(0, 0)
    if not sep or chosen.total < 1 or not 1 <= chosen.index <= chosen.total:
        raise ArgumentTypeError(f"expected I/N with 1 <= I <= N (like 2/4), got {text!r}")
    return chosen


def fixture_suffixes(text: str) -> tuple[str, ...]:
    """``".test.yaml .cases.yml"`` -> the fixture suffixes (cases/naming.py); each starts with a dot and
    ends with .yaml or .yml, and names no folder."""
    suffixes = tuple(text.replace(",", " ").split())
    for suffix in suffixes:
        if not suffix.startswith(".") or not suffix.endswith((".yaml", ".yml")) or "/" in suffix or "\\" in suffix:
            raise ArgumentTypeError(
                f"a fixture suffix starts with a dot and ends with .yaml or .yml (like .test.yaml), got {suffix!r}"
            )
    return suffixes


# ---------------------------------------------------------------- the declarations


@dataclass(frozen=True)
class Declared:
    """One setting as pytest's parser takes it: the flag ``--notebooks-<name>`` and the ini key
    ``notebooks_<name>``, sharing one help text (either may be left out)."""

    name: str  # "cell-timeout"
    help: str
    parse: Callable[[str], Any] | None = None  # the flag's type=; each ini value goes through it too
    choices: tuple[str, ...] = ()
    metavar: str | None = None
    action: str = "store"  # or "store_true", "append"
    flag: bool = True
    ini: Literal["string", "linelist", "bool"] | None = "string"  # pytest's ini type; None: no ini key

    @property
    def dest(self) -> str:
        """Where pytest keeps the flag (``config.getoption``), and the ini key's name."""
        return "notebooks_" + self.name.replace("-", "_")

    @property
    def option(self) -> str:
        return f"--notebooks-{self.name}"

    def flag_attributes(self) -> dict[str, Any]:
        """The keyword arguments of ``group.addoption``."""
        also = f"; also ini {self.dest}" if self.ini else ""
        attributes: dict[str, Any] = {"dest": self.dest, "action": self.action, "help": self.help + also}
        for key, value in (("type", self.parse), ("metavar", self.metavar), ("choices", self.choices)):
            if value:
                attributes[key] = value
        return attributes

    def ini_default(self) -> Any:
        return {"linelist": [], "bool": False}.get(str(self.ini))

    def from_ini(self, value: Any) -> Any:
        """The ini's value checked as the flag's is: None when not set; ArgumentTypeError when unusable."""
        if self.ini == "bool":
            return bool(value)
        if self.ini == "linelist":
            lines = [str(line) for line in value or () if str(line).strip()]
            return self._lines(lines) if lines else None
        return self.checked(str(value).strip()) if value is not None and str(value).strip() else None

    def _lines(self, lines: list[str]) -> tuple[Any, ...]:
        if self.parse is None:
            return tuple(line.strip() for line in lines)
        return tuple(item for line in lines for item in self.parse(line))

    def checked(self, text: str) -> Any:
        if self.choices and text not in self.choices:
            raise ArgumentTypeError(f"expected {' or '.join(self.choices)}, got {text!r}")
        return self.parse(text) if self.parse is not None else text


_PRELOAD = (
    "modules imported once in the template process that kernels are forked from, so that every kernel "
    "starts with them imported (e.g. pandas, numpy, your library); their import-time state is shared: "
    "see the docs: guides/kernels"
)

SETTINGS: tuple[Declared, ...] = (
    Declared(
        "output-dir",
        "where executed notebooks are saved, one per case: a directory (relative to the rootdir) or an "
        f"s3:// URL. Default: {DEFAULT_OUTPUT_DIR}",
        metavar="DIR",
    ),
    Declared(
        "results",
        "where the JSON results file is written. Default: <output-dir>/results.json "
        "(notebook-results.json in the rootdir when the output dir is a URL)",
        metavar="FILE",
    ),
    Declared(
        "kernel",
        "run every notebook with this kernel, overriding the fixture's `kernel` and the notebook's kernelspec",
        parse=kernel_name,
        metavar="NAME",
    ),
    Declared(
        "timeout",
        "whole-notebook limit in seconds for fixtures without `timeout` (0: no limit). Default: none",
        parse=seconds,
        metavar="SECONDS",
    ),
    Declared(
        "cell-timeout",
        "per-cell limit in seconds for fixtures without `cell_timeout` (0: no limit). "
        f"Default: {DEFAULT_CELL_TIMEOUT:g}",
        parse=seconds,
        metavar="SECONDS",
    ),
    Declared(
        "max-cell-output",
        "most output one cell may produce, in characters, with an optional kB/MB/GB suffix; a cell over it "
        f"is stopped and the case fails (0: no limit). Default: {DEFAULT_MAX_CELL_OUTPUT // 1_000_000}MB",
        parse=size,
        metavar="SIZE",
    ),
    Declared(
        "max-output",
        "most output a whole notebook may produce, like --notebooks-max-cell-output (0: no limit). "
        f"Default: {DEFAULT_MAX_OUTPUT // 1_000_000}MB",
        parse=size,
        metavar="SIZE",
    ),
    Declared(
        "kernel-env",
        "inherit: kernels get pytest's whole environment (default); clean: without the credential-looking "
        "variables whose values are masked in outputs (see notebooks_redact)",
        choices=KERNEL_ENVS,
    ),
    Declared(
        "kernel-start",
        "fork: fork each case's kernel from a template process that has imported ipykernel (default; "
        "Linux, kernels of this interpreter); spawn: start a new interpreter for each kernel",
        choices=KERNEL_STARTS,
    ),
    Declared(
        "preload",
        f"{_PRELOAD}. The ini takes one a line",
        parse=module_names,
        metavar="MODULE[,MODULE...]",
        action="append",
        ini="linelist",
    ),
    Declared(
        "redact",
        "extra environment variable names or globs (one a line) whose values are masked as *** in executed "
        "notebooks and reports, on top of the built-in *_TOKEN, *_PASSWORD, *_SECRET, *_KEY... list",
        flag=False,
        ini="linelist",
    ),
    Declared(
        "log-output",
        "print `nb.ipynb::case cell 4/12` as each cell starts and its output (masked) as it ends; live with -s",
        action="store_true",
        ini=None,
    ),
    Declared(
        "snapshots",
        "compare every case's outputs with its snapshot (__snapshots__/<notebook>/<case>.ipynb)",
        action="store_true",
        ini=None,
    ),
    Declared(
        "update-snapshots",
        "write or refresh the snapshots of the cases that compare with one, from this run",
        action="store_true",
        ini=None,
    ),
    Declared(
        "snapshot-replace",
        "extra 'REGEX => REPLACEMENT' lines applied to outputs before snapshot comparison",
        flag=False,
        ini="linelist",
    ),
    Declared(
        "review",
        "write the review Markdown (results table, template changes, snapshot diffs) here at the end of the "
        "session; also appended to $GITHUB_STEP_SUMMARY when that is set",
        metavar="FILE",
        ini=None,
    ),
    Declared(
        "review-base",
        "with --notebooks-review: list the notebooks changed since REV (e.g. origin/main)",
        metavar="REV",
        ini=None,
    ),
    Declared(
        "html",
        "write a self-contained HTML report of the session here (every case; failures rendered with their "
        "failing cell highlighted)",
        metavar="FILE",
    ),
    Declared(
        "changed-since",
        "run only the cases whose notebook or fixture changed since REV, or whose notebook imports a "
        "repository module that changed (see the docs, guides/large-repositories, for the rule and its limits)",
        metavar="REV",
        ini=None,
    ),
    Declared(
        "shard",
        "run only shard I of N (1-based) of the notebook cases; other tests run in shard 1",
        parse=shard,
        metavar="I/N",
        ini=None,
    ),
    Declared(
        "durations",
        "a results.json from an earlier run: balance --notebooks-shard by its case durations",
        metavar="FILE",
        ini=None,
    ),
    Declared(
        "lint",
        "also measure every notebook against the three principles (low branching, library functions in "
        "libraries, short and simple): one item per notebook, nb.ipynb::principles",
        action="store_true",
        ini="bool",
    ),
    Declared(
        "fixture-suffixes",
        "what turns a notebook's name into its fixture's: `x.ipynb` is tested with `x<suffix>`, the first "
        "suffix found (default: .yaml .yml). Set it when YAML files beside notebooks belong to another tool, "
        "e.g. `.test.yaml`",
        parse=fixture_suffixes,
        flag=False,
        ini="linelist",
    ),
    Declared(
        "principles",
        "the principles' limits for every notebook, one `name = number` a line (max_branches, "
        "max_function_lines, max_functions, max_code_cells, max_lines); a fixture's principles: wins",
        flag=False,
        ini="linelist",
    ),
)


# ---------------------------------------------------------------- precedence


def first_given(*values: T | None) -> T | None:
    """The first value that is not None: the layers in the order they win."""
    return next((value for value in values if value is not None), None)


@dataclass(frozen=True)
class Layers(Generic[T]):
    """A setting that a fixture may give too, as the flag, the ini and the plugin give it (None: says nothing)."""

    flag: T | None = None
    ini: T | None = None
    default: T | None = None
    fixture_wins: bool = True  # False for the kernel: the flag is there for machines that name kernels differently

    def for_case(self, fixture: T | None, notebook: T | None = None) -> T | None:
        """The value a case runs with. ``fixture`` is the case's own value, else its fixture file's
        (cases/params.py fills one from the other); ``notebook`` is what the notebook says (its kernelspec)."""
        given = (fixture, self.flag, self.ini) if self.fixture_wins else (self.flag, self.ini, fixture)
        return first_given(*given, self.default, notebook)


def limited(value: float | None) -> float | None:
    """A limit as the runner takes it: None when there is none."""
    return None if value is None or value == NO_LIMIT else value


def characters(value: float | None) -> int | None:
    """An output limit as the runner takes it: a whole number of characters, None when there is none."""
    return None if value is None or value == NO_LIMIT else int(value)


# ---------------------------------------------------------------- the settings of a session


@dataclass(frozen=True)
class Options:
    """The plugin's settings for a session, flags and ini read (``Options.read``)."""

    rootdir: Path
    output_dir: str  # a local directory (absolute) or an s3:// URL
    results_path: Path
    kernel: Layers[str] = Layers(fixture_wins=False)
    timeout: Layers[float] = Layers()  # whole notebook, seconds
    cell_timeout: Layers[float] = Layers(default=DEFAULT_CELL_TIMEOUT)
    max_cell_output: int | None = DEFAULT_MAX_CELL_OUTPUT  # characters a cell may output (None: no limit)
    max_output: int | None = DEFAULT_MAX_OUTPUT  # characters the whole notebook may output (None: no limit)
    redact: tuple[str, ...] = ()  # extra environment variable names/globs whose values are masked
    kernel_env: str = KERNEL_ENVS[0]  # inherit; "clean": kernels start without credential-looking variables
    kernel_start: str = KERNEL_STARTS[0]  # fork
    preload: tuple[str, ...] = ()
    log_output: bool = False
    snapshots: bool = False  # --notebooks-snapshots: every case compares with its snapshot
    update_snapshots: bool = False  # --notebooks-update-snapshots: write them instead
    snapshot_replace: tuple[tuple[str, str], ...] = ()  # (regex, replacement) from the ini
    review: str | None = None  # the review, the report, the selection: paths and revisions as given
    review_base: str | None = None
    html: str | None = None
    changed_since: str | None = None
    shard: Shard | None = None
    durations: str | None = None
    fixture_suffixes: tuple[str, ...] = ()  # the ini's, in order (none: cases/naming.py's default)

    @classmethod
    def read(
        cls,
        rootdir: Path,
        flags: Mapping[str, Any],
        ini: Mapping[str, Any],
        snapshot_replace: Iterable[tuple[str, str]] = (),
    ) -> Options:
        """The settings from the flags' parsed values and the ini's checked ones (``Declared.from_ini``),
        both by ``dest``; a missing or None value says nothing."""

        def layers(dest: str, default: Any = None, fixture_wins: bool = True) -> Layers[Any]:
            return Layers(flags.get(dest), ini.get(dest), default, fixture_wins)

        def given(dest: str, default: Any = None) -> Any:
            return first_given(flags.get(dest), ini.get(dest), default)

        output_dir, results_path = _places(rootdir, given("notebooks_output_dir"), given("notebooks_results"))
        return cls(
            rootdir=rootdir,
            output_dir=output_dir,
            results_path=results_path,
            kernel=layers("notebooks_kernel", fixture_wins=False),
            timeout=layers("notebooks_timeout"),
            cell_timeout=layers("notebooks_cell_timeout", DEFAULT_CELL_TIMEOUT),
            max_cell_output=characters(given("notebooks_max_cell_output", DEFAULT_MAX_CELL_OUTPUT)),
            max_output=characters(given("notebooks_max_output", DEFAULT_MAX_OUTPUT)),
            redact=given("notebooks_redact", ()),
            kernel_env=given("notebooks_kernel_env", KERNEL_ENVS[0]),
            kernel_start=given("notebooks_kernel_start", KERNEL_STARTS[0]),
            preload=_preload(flags.get("notebooks_preload"), ini.get("notebooks_preload")),
            log_output=bool(given("notebooks_log_output")),
            snapshots=bool(given("notebooks_snapshots")),
            update_snapshots=bool(given("notebooks_update_snapshots")),
            snapshot_replace=tuple(snapshot_replace),
            review=given("notebooks_review"),
            review_base=given("notebooks_review_base"),
            html=given("notebooks_html"),
            changed_since=given("notebooks_changed_since"),
            shard=given("notebooks_shard"),
            durations=given("notebooks_durations"),
            fixture_suffixes=tuple(dict.fromkeys(given("notebooks_fixture_suffixes", ()))),
        )

    def output_path(self, notebook: Path, case_id: str) -> str:
        """Where the executed copy of ``case_id`` of ``notebook`` is saved: one file per case."""
        try:
            relative = notebook.with_suffix("").relative_to(self.rootdir)
        except ValueError:  # outside the rootdir: keep the whole path, minus its anchor
            relative = Path(*notebook.with_suffix("").parts[1:])
        if is_url(self.output_dir):
            return f"{self.output_dir.rstrip('/')}/{relative.as_posix()}/{case_id}.ipynb"
        return str(Path(self.output_dir, relative, f"{case_id}.ipynb"))


def _places(rootdir: Path, output_dir: str | None, results: str | None) -> tuple[str, Path]:
    """The output dir (absolute, or a URL) and the results file, from the rootdir."""
    output_dir = output_dir or DEFAULT_OUTPUT_DIR
    remote = is_url(output_dir)
    if not remote:
        output_dir = str((rootdir / output_dir).resolve())
    if results:
        return output_dir, (rootdir / results).resolve()
    return output_dir, rootdir / "notebook-results.json" if remote else Path(output_dir, "results.json")


def _preload(flags: list[tuple[str, ...]] | None, ini: tuple[str, ...] | None) -> tuple[str, ...]:
    """Every --notebooks-preload flag's names, else the ini's; each once, in order."""
    names = [name for names in flags for name in names] if flags else list(ini or ())
    return tuple(dict.fromkeys(names))
