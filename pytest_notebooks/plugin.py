"""The pytest11 entry module (``-p no:notebooks`` turns it off): options and hook wiring only.

notebook + fixture   cases/                   -> NotebookCase
cases -> items       collect.py               -> NotebookFile / NotebookItem
items -> execution   run/execute.py           -> ExecutionResult (papermill)
result -> report     run/report.py            -> the failure block
reports -> file      results/recorder.py      -> results.json (controller only)
diff / review        review/                  -> snapshots, the review document
promotion            promote/                 -> nbpromote
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Generator
from pathlib import Path
from typing import Any

import pytest

from pytest_notebooks.collect import (
    NEXT_KEY,
    OPTIONS_KEY,
    POOL_KEY,
    MessageRepr,
    NotebookFile,
    NotebookItem,
    PrinciplesItem,
    has_fixture,
    place_notebook,
    stray_fixture,
)
from pytest_notebooks.errors import PytestNotebooksWarning
from pytest_notebooks.files import atomic_write, is_url, shown_path
from pytest_notebooks.models import Options
from pytest_notebooks.results.recorder import (
    PRINCIPLES_ATTRIBUTE,
    REPORT_ATTRIBUTE,
    Recorder,
    collected_on_worker,
)
from pytest_notebooks.review.normalize import parse_replacement
from pytest_notebooks.run.kernels import KERNEL_STARTS, KernelPool

RECORDER_KEY = pytest.StashKey[Recorder]()
DEFAULT_OUTPUT_DIR = "notebook-outputs"
DEFAULT_CELL_TIMEOUT = 600.0
DEFAULT_MAX_CELL_OUTPUT = 10_000_000  # characters; see the README's "Running a case"
DEFAULT_MAX_OUTPUT = 50_000_000
KERNEL_ENVS = ("inherit", "clean")
DEFAULT_KERNEL_START = "fork"

_SETTINGS: tuple[tuple[str, str, str | None], ...] = (
    # (name, help, default) -> flag --notebooks-<name> and ini notebooks_<name>
    (
        "output-dir",
        "where executed notebooks are saved, one per case: a directory (relative to "
        f"the rootdir) or an s3:// URL. Default: {DEFAULT_OUTPUT_DIR}",
        None,
    ),
    (
        "results",
        "where the JSON results file is written. Default: <output-dir>/results.json "
        "(notebook-results.json in the rootdir when the output dir is a URL)",
        None,
    ),
    (
        "kernel",
        "run every notebook with this kernel, overriding the fixture's `kernel` and the notebook's kernelspec",
        None,
    ),
    (
        "timeout",
        "default whole-notebook limit in seconds for fixtures without `timeout` (default: none)",
        None,
    ),
    (
        "cell-timeout",
        f"default per-cell limit in seconds for fixtures without `cell_timeout` (default: {DEFAULT_CELL_TIMEOUT:g})",
        None,
    ),
    (
        "max-cell-output",
        "most output one cell may produce, in characters, with an optional kB/MB/GB suffix; a cell over "
        f"it is stopped and the case fails (0: no limit). Default: {DEFAULT_MAX_CELL_OUTPUT // 1_000_000}MB",
        None,
    ),
    (
        "max-output",
        "most output a whole notebook may produce, like --notebooks-max-cell-output (0: no limit). "
        f"Default: {DEFAULT_MAX_OUTPUT // 1_000_000}MB",
        None,
    ),
    (
        "kernel-env",
        "inherit: kernels get pytest's whole environment (default); clean: without the credential-looking "
        "variables whose values are masked in outputs (see notebooks_redact)",
        None,
    ),
    (
        "kernel-start",
        "fork: fork each case's kernel from a template process that has imported ipykernel (default; "
        "Linux, kernels of this interpreter); spawn: start a new interpreter for each kernel",
        None,
    ),
)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("notebooks", "notebooks (pytest-notebooks)")
    group.addoption(
        "--notebooks-snapshots",
        action="store_true",
        help="compare every case's outputs with its snapshot (__snapshots__/<notebook>/<case>.ipynb)",
    )
    group.addoption(
        "--notebooks-update-snapshots",
        action="store_true",
        help="write or refresh the snapshots of the cases that compare with one, from this run",
    )
    group.addoption(
        "--notebooks-review",
        metavar="FILE",
        help="write the review Markdown (results table, template changes, snapshot diffs) here at the "
        "end of the session; also appended to $GITHUB_STEP_SUMMARY when that is set",
    )
    group.addoption(
        "--notebooks-html",
        metavar="FILE",
        help="write a self-contained HTML report of the session here (every case; failures rendered "
        "with their failing cell highlighted); also ini notebooks_html",
    )
    parser.addini("notebooks_html", "write a self-contained HTML report of the session to this file", default=None)
    group.addoption(
        "--notebooks-log-output",
        action="store_true",
        help="print `nb.ipynb::case cell 4/12` as each cell starts and its output (masked) as it ends; live with -s",
    )
    group.addoption(
        "--notebooks-lint",
        action="store_true",
        help="also measure every notebook against the three principles (low branching, library functions in "
        "libraries, short and simple): one item per notebook, nb.ipynb::principles; also ini notebooks_lint",
    )
    parser.addini("notebooks_lint", "measure every notebook against the principles (see --notebooks-lint)", type="bool")
    parser.addini(
        "notebooks_principles",
        "the principles' limits for every notebook, one `name = number` a line (max_branches, "
        "max_function_lines, max_functions, max_code_cells, max_lines); a fixture's principles: wins",
        type="linelist",
        default=[],
    )
    group.addoption(
        "--notebooks-review-base",
        metavar="REV",
        help="with --notebooks-review: list the notebooks changed since REV (e.g. origin/main)",
    )
    group.addoption(
        "--notebooks-changed-since",
        metavar="REV",
        help="run only the cases whose notebook or fixture changed since REV, or whose notebook "
        "imports a repository module that changed (see the README for the rule and its limits)",
    )
    group.addoption(
        "--notebooks-shard",
        metavar="I/N",
        help="run only shard I of N (1-based) of the notebook cases; other tests run in shard 1",
    )
    group.addoption(
        "--notebooks-durations",
        metavar="FILE",
        help="a results.json from an earlier run: balance --notebooks-shard by its case durations",
    )
    parser.addini(
        "notebooks_snapshot_replace",
        "extra 'REGEX => REPLACEMENT' lines applied to outputs before snapshot comparison",
        type="linelist",
        default=[],
    )
    parser.addini(
        "notebooks_redact",
        "extra environment variable names or globs (one a line) whose values are masked as *** in executed "
        "notebooks and reports, on top of the built-in *_TOKEN, *_PASSWORD, *_SECRET, *_KEY... list",
        type="linelist",
        default=[],
    )
    preload_help = (
        "modules imported once in the template process that kernels are forked from, so that every "
        "kernel starts with them imported (e.g. pandas, numpy, your library); their import-time state "
        "is shared: see the README"
    )
    group.addoption(
        "--notebooks-preload",
        action="append",
        metavar="MODULE[,MODULE...]",
        help=f"{preload_help}; also ini notebooks_preload (one a line); the flag wins",
    )
    parser.addini("notebooks_preload", preload_help, type="linelist", default=[])
    for name, help_text, default in _SETTINGS:
        group.addoption(
            f"--notebooks-{name}", dest=f"notebooks_{name.replace('-', '_')}", default=default, help=help_text
        )
        parser.addini(f"notebooks_{name.replace('-', '_')}", help_text, default=default)


def _setting(config: pytest.Config, name: str) -> str | None:
    value = config.getoption(name) or config.getini(name)
    return str(value) if value else None


def _seconds(config: pytest.Config, name: str, default: float | None) -> float | None:
    text = _setting(config, name)
    if text is None:
        return default
    try:
        value = float(text)
    except ValueError:
        raise pytest.UsageError(f"--{name.replace('_', '-')} / {name}: expected seconds, got {text!r}") from None
    return value if value > 0 else None


_SIZE_UNITS = {"": 1, "k": 10**3, "kb": 10**3, "m": 10**6, "mb": 10**6, "g": 10**9, "gb": 10**9}


def _size(config: pytest.Config, name: str, default: int) -> int | None:
    """A size setting: ``10MB``, ``500 kB``, ``2000000``; ``0`` means no limit."""
    text = _setting(config, name)
    if text is None:
        return default
    number, unit = text.strip(), ""
    while number and not number[-1].isdigit():
        number, unit = number[:-1], number[-1] + unit
    try:
        value = float(number) * _SIZE_UNITS[unit.strip().lower()]
    except (ValueError, KeyError):
        raise pytest.UsageError(
            f"--{name.replace('_', '-')} / {name}: expected a number of characters such as 10MB, 500kB or "
            f"2000000, got {text!r}"
        ) from None
    return int(value) if value > 0 else None


def _kernel_env(config: pytest.Config) -> str:
    value = _setting(config, "notebooks_kernel_env") or "inherit"
    if value not in KERNEL_ENVS:
        raise pytest.UsageError(
            f"--notebooks-kernel-env / notebooks_kernel_env: expected inherit or clean, got {value!r}"
        )
    return value


def _kernel_start(config: pytest.Config) -> str:
    value = _setting(config, "notebooks_kernel_start") or DEFAULT_KERNEL_START
    if value not in KERNEL_STARTS:
        raise pytest.UsageError(
            f"--notebooks-kernel-start / notebooks_kernel_start: expected fork or spawn, got {value!r}"
        )
    return value


def _preload(config: pytest.Config) -> tuple[str, ...]:
    flags = config.getoption("notebooks_preload")
    names = [n.strip() for flag in flags for n in flag.split(",")] if flags else config.getini("notebooks_preload")
    for name in names:
        if not all(part.isidentifier() for part in name.split(".")):
            raise pytest.UsageError(
                f"--notebooks-preload / notebooks_preload: {name!r} is not a module name (e.g. pandas, mylib.io)"
            )
    return tuple(dict.fromkeys(n for n in names if n))


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "notebook: a notebook case collected by pytest-notebooks")
    rootdir = Path(config.rootpath)
    output_dir = _setting(config, "notebooks_output_dir") or DEFAULT_OUTPUT_DIR
    remote = is_url(output_dir)
    if not remote:
        output_dir = str((rootdir / output_dir).resolve())
    results = _setting(config, "notebooks_results")
    if results:
        results_path = (rootdir / results).resolve()
    else:
        results_path = rootdir / "notebook-results.json" if remote else Path(output_dir, "results.json")
    replacements = []
    for line in config.getini("notebooks_snapshot_replace"):
        try:
            rule = parse_replacement(line)
        except ValueError as exc:
            raise pytest.UsageError(f"notebooks_snapshot_replace: {exc}") from None
        replacements.append((rule.pattern, rule.replacement))
    config.stash[OPTIONS_KEY] = Options(
        rootdir=rootdir,
        output_dir=output_dir,
        results_path=results_path,
        kernel=_setting(config, "notebooks_kernel"),
        timeout=_seconds(config, "notebooks_timeout", None),
        cell_timeout=_seconds(config, "notebooks_cell_timeout", DEFAULT_CELL_TIMEOUT),
        snapshots=bool(config.getoption("notebooks_snapshots")),
        update_snapshots=bool(config.getoption("notebooks_update_snapshots")),
        snapshot_replace=tuple(replacements),
        max_cell_output=_size(config, "notebooks_max_cell_output", DEFAULT_MAX_CELL_OUTPUT),
        max_output=_size(config, "notebooks_max_output", DEFAULT_MAX_OUTPUT),
        redact=tuple(config.getini("notebooks_redact")),
        kernel_env=_kernel_env(config),
    )
    config.stash[POOL_KEY] = KernelPool(_kernel_start(config), _preload(config))  # no process until a kernel starts
    if not config.option.collectonly:
        _register_recorder(config, config.stash[OPTIONS_KEY])


def pytest_report_header(config: pytest.Config) -> list[str]:
    options = config.stash[OPTIONS_KEY]
    outputs, results = _shown(config, options.output_dir), _shown(config, options.results_path)
    pool = config.stash[POOL_KEY]
    if pool.kernel_start == "spawn":
        kernels = "spawned (notebooks_kernel_start = spawn)"
    else:
        preload = f" with {', '.join(pool.preload)} imported" if pool.preload else ""
        kernels = (
            f"forked from a template process{preload}, for speed (a kernel that cannot be forked is spawned, "
            "with a warning; --notebooks-kernel-start=spawn spawns all)"
        )
    return [f"notebooks: outputs in {outputs}, results in {results}", f"notebooks: kernels {kernels}"]


def _shown(config: pytest.Config, path: str | Path) -> str:
    return shown_path(path, config.invocation_params.dir)


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> NotebookFile | None:
    """A notebook with a fixture beside it, once however many paths lead to it; a warning for a
    fixture that nothing runs."""
    if has_fixture(file_path):
        path, alias = place_notebook(file_path, parent.session)
        if alias is not None:
            warnings.warn_explicit(
                alias, PytestNotebooksWarning, shown_path(file_path, parent.config.invocation_params.dir), 0
            )
        return NotebookFile.from_parent(parent, path=path) if path is not None else None
    stray = stray_fixture(file_path)
    if stray is not None:
        shown = shown_path(file_path, parent.config.invocation_params.dir)
        warnings.warn_explicit(stray, PytestNotebooksWarning, shown, 1)
    return None


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Generator[None, Any, Any]:
    """Tell a notebook case which item comes next, so that its kernel can start early."""
    if isinstance(item, NotebookItem):
        item.stash[NEXT_KEY] = nextitem
    return (yield)


def pytest_itemcollected(item: pytest.Item) -> None:
    """Every notebook case collected, before -k, --deselect or shards: the results file lists the
    cases that did not run as ``not run``. Under xdist the workers send the list to the controller."""
    if not isinstance(item, NotebookItem):
        return
    recorder = item.config.stash.get(RECORDER_KEY, None)
    if recorder is not None:
        recorder.collected(item.nodeid, item.record())
    elif hasattr(item.config, "workerinput"):
        collected_on_worker(item.config.workeroutput, item.nodeid, item.record())  # type: ignore[attr-defined]


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, Any]:
    report = yield
    if isinstance(item, NotebookItem):
        setattr(report, REPORT_ATTRIBUTE, item.record())  # travels to the xdist controller
    elif isinstance(item, PrinciplesItem) and call.when == "call":
        setattr(report, PRINCIPLES_ATTRIBUTE, item.record())
    return report


@pytest.hookimpl(wrapper=True)
def pytest_runtest_logreport(report: pytest.TestReport) -> Generator[None, Any, Any]:
    """A record rides on its report until every plugin has seen it: on an xdist worker until the
    report was sent, on the controller until the recorder folded it in. Then it is dropped, since
    the terminal reporter keeps every phase's report to the end (three records a case)."""
    try:
        return (yield)
    finally:
        report.__dict__.pop(REPORT_ATTRIBUTE, None)
        report.__dict__.pop(PRINCIPLES_ATTRIBUTE, None)


MESSAGE_REPR_FIELD = "pytest_notebooks_message_repr"  # in a serialized report: the path of a MessageRepr


@pytest.hookimpl(wrapper=True)
def pytest_report_to_serializable(report: pytest.CollectReport | pytest.TestReport) -> Generator[None, Any, Any]:
    """On an xdist worker: a message-only failure (a fixture error, a principles failure) travels
    as its text (pytest sends a repr without a traceback that way); mark it, so that the
    controller rebuilds it (below)."""
    data = yield
    if isinstance(data, dict) and isinstance(report.longrepr, MessageRepr):
        data[MESSAGE_REPR_FIELD] = report.longrepr.reprcrash.path
    return data


@pytest.hookimpl(wrapper=True)
def pytest_report_from_serializable(data: dict[str, Any]) -> Generator[None, Any, Any]:
    """On the controller: a message-only failure comes back as it was on the worker, so that
    ``-ra``'s line carries its message with any pytest (before pytest 9 a text repr gave a bare
    ``ERROR x`` or ``FAILED x``)."""
    report = yield
    path = data.get(MESSAGE_REPR_FIELD) if isinstance(data, dict) else None
    if isinstance(path, str) and report is not None and isinstance(report.longrepr, str):
        report.longrepr = MessageRepr(report.longrepr, path)
    return report


def _register_recorder(config: pytest.Config, options: Options) -> None:
    """On the controller (or a run without xdist), record every case into the results file."""
    if hasattr(config, "workerinput"):
        return  # xdist worker: its reports reach the controller, which writes the file
    from pytest_notebooks.gitinfo import GitUnusable, git_state

    ignore = [options.results_path]  # the file only: with an s3:// output dir it sits in the rootdir
    if not is_url(options.output_dir):
        ignore.append(Path(options.output_dir))
    try:
        git = git_state(options.rootdir, ignore=tuple(ignore))
    except GitUnusable as exc:  # recorded without a commit: nbpromote will refuse it, and says why
        config.issue_config_time_warning(PytestNotebooksWarning(str(exc)), stacklevel=2)
        git = None
    recorder = Recorder(
        path=options.results_path,
        rootdir=options.rootdir,
        output_dir=options.output_dir,
        git=git,
        shown_path=_shown(config, options.results_path),
        write_empty=bool(config.getoption("notebooks_shard")),
    )
    recorder.read_previous()  # once, before any case runs: the file belongs to this session
    config.stash[RECORDER_KEY] = recorder
    config.pluginmanager.register(recorder, "notebooks-recorder")
    config.pluginmanager.register(_XdistBridge(recorder), "notebooks-recorder-xdist")
    _interrupt_on_sigterm(config)


class _XdistBridge:
    """pytest-xdist's hooks for the recorder (optional: unknown without xdist)."""

    def __init__(self, recorder: Recorder) -> None:
        self.recorder = recorder

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: Any, error: Any) -> None:
        self.recorder.worker_down(node, error)


def _interrupt_on_sigterm(config: pytest.Config) -> None:
    """SIGTERM (CI cancelling the job) ends the session like Ctrl-C, so the results file is
    written and marked interrupted instead of the process dying with the old file in place."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        return
    if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        return  # someone else handles it

    def interrupt(signum: int, frame: object) -> None:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)  # a second SIGTERM kills as usual
        raise KeyboardInterrupt("SIGTERM")

    signal.signal(signal.SIGTERM, interrupt)

    def restore() -> None:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)

    config.add_cleanup(restore)


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Stop a kernel started ahead for a case that did not run; then, on the controller, the
    review document when asked for."""
    pool = session.config.stash.get(POOL_KEY, None)
    if pool is not None:
        pool.close()
    recorder = session.config.stash.get(RECORDER_KEY, None)
    if recorder is None:
        return
    _write_html(session.config, recorder)
    target = session.config.getoption("notebooks_review")
    if not target:
        return
    from pytest_notebooks.gitinfo import RevisionError
    from pytest_notebooks.review.changes import template_changes
    from pytest_notebooks.review.github import append_step_summary
    from pytest_notebooks.review.render import Review, render_markdown

    base = session.config.getoption("notebooks_review_base")
    templates, problem = [], ""
    try:
        templates = template_changes(recorder.rootdir, base) if base else []
    except (RevisionError, ValueError) as exc:
        problem = str(exc)
    review = Review(
        results=recorder.written or (recorder.document() if recorder.cases else None),
        templates=tuple(templates),
        base=base,
        head="HEAD",
        problem=problem,
    )
    markdown = render_markdown(review)
    path = Path(session.config.invocation_params.dir, target)
    try:
        atomic_write(path, markdown)
    except OSError as exc:
        shown = shown_path(path, session.config.invocation_params.dir)
        recorder.outcome += f"; could not write the review {shown}: {exc.strerror or exc}"
    problem = append_step_summary(markdown)
    if problem:
        recorder.outcome += f"; {problem}"


def _write_html(config: pytest.Config, recorder: Recorder) -> None:
    """--notebooks-html: the report of what the results file says, written on the controller."""
    target = _setting(config, "notebooks_html")
    document = recorder.written
    if not target or document is None:
        return
    from pytest_notebooks.review.html import render_html

    path = Path(config.invocation_params.dir, target)
    try:
        atomic_write(path, render_html(document, recorder.rootdir))
    except OSError as exc:
        recorder.outcome += f"; could not write the HTML report {shown_path(path, config.invocation_params.dir)}: {exc}"
    else:
        recorder.outcome += f"; HTML report in {shown_path(path, config.invocation_params.dir)}"


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    """Under GitHub Actions, one ::error annotation per failing case (at most 10)."""
    recorder = config.stash.get(RECORDER_KEY, None)
    if recorder is None or not recorder.cases or os.environ.get("GITHUB_ACTIONS") != "true":
        return
    from pytest_notebooks.review.github import error_annotations

    for line in error_annotations(recorder.written or recorder.document(), recorder.rootdir):
        terminalreporter.write_line(line)


def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    """--notebooks-changed-since and --notebooks-shard: the same selection on every xdist worker."""
    rev, shard = config.getoption("notebooks_changed_since"), config.getoption("notebooks_shard")
    if not rev and not shard:
        return
    keep = list(items)
    if rev:
        keep = _changed_only(config, keep, rev)
    if shard:
        keep = _one_shard(config, keep, shard)
    kept = set(map(id, keep))
    deselected = [item for item in items if id(item) not in kept]
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = keep


def _changed_only(config: pytest.Config, items: list[pytest.Item], rev: str) -> list[pytest.Item]:
    from pytest_notebooks.results.select import SelectionError, changed_cases

    cases = {item.nodeid: (item.case.notebook, item.case.fixture) for item in items if isinstance(item, NotebookItem)}
    try:
        keep = changed_cases(config.rootpath, cases, rev)
    except SelectionError as exc:
        raise pytest.UsageError(f"--notebooks-changed-since: {exc}") from None
    return [item for item in items if not isinstance(item, NotebookItem) or item.nodeid in keep]


def _one_shard(config: pytest.Config, items: list[pytest.Item], text: str) -> list[pytest.Item]:
    from pytest_notebooks.results.select import SelectionError, shard_cases

    notebook_ids = [item.nodeid for item in items if isinstance(item, NotebookItem)]
    try:
        index, shards = shard_cases(notebook_ids, text, config.getoption("notebooks_durations"))
    except SelectionError as exc:
        name = "--notebooks-durations" if "cannot read" in str(exc) else "--notebooks-shard"
        raise pytest.UsageError(f"{name}: {exc}") from None
    return [item for item in items if (shards[item.nodeid] == index if isinstance(item, NotebookItem) else index == 1)]
