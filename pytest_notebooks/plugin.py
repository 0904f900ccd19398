"""The pytest11 entry module (``-p no:notebooks`` turns it off): hook wiring only.

options.py           flags and ini keys       -> Options (checked as pytest parses them)
notebook + fixture   cases/                   -> NotebookCase
cases -> items       collect.py               -> NotebookFile / NotebookItem
items -> execution   run/execute.py           -> ExecutionResult (papermill)
result -> report     run/report.py            -> the failure block
reports -> file      results/recorder.py      -> ResultsDocument -> results.json (controller only)
diff / review        review/                  -> snapshots, the review document
promotion            promote/                 -> nbpromote
"""

from __future__ import annotations

import contextlib
import json
import os
import warnings
from argparse import ArgumentTypeError
from collections.abc import Generator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from pytest_notebooks.cases.naming import FixtureNaming
from pytest_notebooks.collect import (
    NAMING_KEY,
    NEXT_KEY,
    OPTIONS_KEY,
    POOL_KEY,
    MessageRepr,
    NamedLikeTestModule,
    NotebookFile,
    NotebookItem,
    PrinciplesItem,
    fixture_naming,
    has_fixture,
    has_notebook_case,
    lint_enabled,
    lint_limits,
    listings,
    named_like_test_module,
    place_notebook,
    real_path,
    stray_fixture,
    unselected_folder,
)
from pytest_notebooks.errors import PytestNotebooksWarning
from pytest_notebooks.interop import TIMEOUT_ATTRIBUTE
from pytest_notebooks.interop import register as register_interop

if TYPE_CHECKING:
    from pytest_notebooks.cases.selection import ImportFacts, Selection
from pytest_notebooks.files import atomic_write, is_url, shown_path
from pytest_notebooks.options import SETTINGS, Options, Shard
from pytest_notebooks.results.recorder import (
    PRINCIPLES_ATTRIBUTE,
    REPORT_ATTRIBUTE,
    Recorder,
    collected_on_worker,
)
from pytest_notebooks.review.normalize import parse_replacement
from pytest_notebooks.run.kernels import KernelPool

RECORDER_KEY = pytest.StashKey[Recorder]()
DURATIONS_KEY = pytest.StashKey[dict[str, float]]()  # --notebooks-durations, read when pytest is configured
SELECTION_KEY = pytest.StashKey["Selection"]()  # --notebooks-changed-since, decided before collection
ASKED_KEY = pytest.StashKey[tuple[str, ...]]()  # the paths given to pytest, absolute, each ending in a separator
GIT_PROBED_KEY = pytest.StashKey[bool]()  # git was asked for the results file (_probe_git)
SELECTED_KEY = pytest.StashKey[dict[str, int]]()  # why notebooks were selected: reason -> count
IMPORTS_CACHE = "notebooks"  # in pytest's cache directory: imports.json, notebook imports by blob id


def pytest_addoption(parser: pytest.Parser) -> None:
    """Every setting options.py declares: a flag of the notebooks group, an ini key, or both."""
    group = parser.getgroup("notebooks", "notebooks (pytest-notebooks)")
    for setting in SETTINGS:
        if setting.flag:
            group.addoption(setting.option, **setting.flag_attributes())
        if setting.ini:
            parser.addini(setting.dest, setting.help, type=setting.ini, default=setting.ini_default())


def pytest_configure(config: pytest.Config) -> None:
    """Settings read and checked (flags were, by argparse), before anything is collected."""
    config.addinivalue_line("markers", "notebook: a notebook case collected by pytest-notebooks")
    options = config.stash[OPTIONS_KEY] = _read_options(config)
    config.stash[NAMING_KEY] = FixtureNaming.of(options.fixture_suffixes)
    if options.shard is not None and options.durations:
        config.stash[DURATIONS_KEY] = _read_durations(config, options.durations)
    if options.changed_since:
        config.stash[SELECTION_KEY] = _select(config, options.changed_since)
    if lint_enabled(config):
        lint_limits(config)  # a bad notebooks_principles line: a usage error now, not at collection
    config.stash[POOL_KEY] = KernelPool(options.kernel_start, options.preload)  # no process until a kernel starts
    register_interop(config)  # junitxml properties; pytest-html and pytest-timeout when installed
    config.pluginmanager.register(_NotImported(), "notebooks-not-imported")
    if not config.option.collectonly:
        _register_recorder(config, options)


def _read_options(config: pytest.Config) -> Options:
    """The flags as argparse parsed them; each ini value through its flag's callable, a bad one a
    usage error naming its key."""
    flags = {setting.dest: config.getoption(setting.dest) for setting in SETTINGS if setting.flag}
    ini = {}
    for setting in SETTINGS:
        if setting.ini:
            try:
                ini[setting.dest] = setting.from_ini(config.getini(setting.dest))
            except ArgumentTypeError as exc:
                raise pytest.UsageError(f"{setting.dest}: {exc}") from None
    replacements = []
    for line in ini["notebooks_snapshot_replace"] or ():
        try:
            rule = parse_replacement(line)
        except ValueError as exc:
            raise pytest.UsageError(f"notebooks_snapshot_replace: {exc}") from None
        replacements.append((rule.pattern, rule.replacement))
    return Options.read(config.rootpath, flags, ini, replacements)


def _read_durations(config: pytest.Config, name: str) -> dict[str, float]:
    """The case durations --notebooks-shard balances by: a file that cannot be read is that flag's
    usage error, before collection."""
    from pytest_notebooks.errors import ResultsError
    from pytest_notebooks.results.read import load_results
    from pytest_notebooks.results.select import durations_from_results

    try:
        return durations_from_results(load_results(Path(config.invocation_params.dir, name)))
    except ResultsError as exc:
        raise pytest.UsageError(f"--notebooks-durations: cannot read {name}: {exc}") from None


def _header(config: pytest.Config) -> list[str]:
    """Where outputs and results go and how kernels start: said once notebooks are collected
    (``pytest_report_collectionfinish``; under xdist when the first worker collected one), so that
    a run with no notebook prints nothing of the plugin's."""
    if config.option.no_header or config.get_verbosity() < 0:  # as pytest's own header
        return []
    options = config.stash[OPTIONS_KEY]
    outputs, results = _shown(config, options.output_dir), _shown(config, options.results_path)
    pool = config.stash[POOL_KEY]
    if pool.kernel_start == "spawn":
        kernels = "spawned (notebooks_kernel_start = spawn)"
    else:
        preload = f" with {', '.join(pool.preload)} imported" if pool.preload else ""
        kernels = (
            f"forked from a template process{preload}, for speed (kernels of other languages are spawned; a Python "
            "kernel that cannot be forked is spawned with a warning; --notebooks-kernel-start=spawn spawns all)"
        )
    return [f"notebooks: outputs in {outputs}, results in {results}", f"notebooks: kernels {kernels}"]


def _asked_for(config: pytest.Config, path: Path) -> bool:
    """Whether ``path`` is, or lies below, a path given to pytest (its arguments, or testpaths):
    pytest lists every file of a folder that holds a path asked for, and a stray fixture beside
    ``test_x.py`` in ``pytest test_x.py`` was not asked about."""
    asked = config.stash.get(ASKED_KEY, None)
    if asked is None:
        here = config.invocation_params.dir
        asked = config.stash[ASKED_KEY] = tuple(
            os.path.join(os.path.abspath(os.path.join(here, arg.split("::")[0])), "") for arg in config.args
        )
    text = os.path.join(os.fspath(path), "")
    return any(text.startswith(prefix) for prefix in asked)


def _shown(config: pytest.Config, path: str | Path) -> str:
    return shown_path(path, config.invocation_params.dir)


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """With --notebooks-changed-since, a folder of notebooks and fixtures only, none of them
    selected, is not walked: 10,000 notebooks in 100 folders are 100 scandirs, not 20,000 files
    through pytest's hooks. Anything else in a folder (a test file, a subfolder) and pytest walks it."""
    selection = config.stash.get(SELECTION_KEY, None)
    if selection is None or collection_path.suffix:
        return None  # without a selection, or a file (a folder named like x.d is walked, which is safe)
    count = unselected_folder(collection_path, fixture_naming(config), selection.wants, listings(config))
    if count is None:
        return None
    counts = config.stash.setdefault(SELECTED_KEY, {})
    counts["not selected"] = counts.get("not selected", 0) + count
    return True


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> NotebookFile | None:
    """A notebook with a fixture beside it, once however many paths lead to it; a warning for a
    fixture that nothing runs. With --notebooks-changed-since, only a selected notebook is read."""
    naming, kind = fixture_naming(parent.config), listings(parent.config).kind
    if has_fixture(file_path, naming, kind):
        if named_like_test_module(file_path, parent.config.getini("python_files")):
            return NamedLikeTestModule.from_parent(parent, path=file_path)  # an error: a notebook, or tests?
        if not _selected(parent.session, file_path):
            return None
        path, alias = place_notebook(file_path, parent.session)
        if alias is not None:
            warnings.warn_explicit(
                alias, PytestNotebooksWarning, shown_path(file_path, parent.config.invocation_params.dir), 0
            )
        return NotebookFile.from_parent(parent, path=path) if path is not None else None
    if not naming.is_fixture_name(file_path.name) or not _asked_for(parent.config, file_path):
        return None  # a YAML file pytest lists only because it sits beside a path that was asked for
    stray = stray_fixture(file_path, naming, kind)
    if stray is not None:
        shown = shown_path(file_path, parent.config.invocation_params.dir)
        warnings.warn_explicit(stray, PytestNotebooksWarning, shown, 0)  # 0: pytest echoes no line of it
    return None


class _NotImported:
    """What pytest and other plugins make of a text notebook with a fixture to import it is dropped:
    pytest's module (it imports every ``.py`` file it is given, and those ``python_files`` matches)
    and ``--doctest-modules``' (it imports every ``.py`` file to find doctests). Its code runs in a
    kernel, as a case (``NotebookFile``), never in pytest's process."""

    @pytest.hookimpl(wrapper=True)
    def pytest_collect_file(
        self, file_path: Path, parent: pytest.Collector
    ) -> Generator[None, list[pytest.Collector | None], list[pytest.Collector | None]]:
        collected = yield
        if file_path.suffix != ".py" or not any(isinstance(node, pytest.Module) for node in collected):
            return collected
        if not has_fixture(file_path, fixture_naming(parent.config), listings(parent.config).kind):
            return collected  # a module
        return [node for node in collected if not isinstance(node, pytest.Module)]


@pytest.hookimpl(tryfirst=True)
def pytest_runtestloop(session: pytest.Session) -> None:
    """When the run begins with a notebook case, its kernel (and the fork template) starts now:
    under xdist while the controller hands out the cases (run/execute.py's ``warm_up``)."""
    first = session.items[0] if session.items else None
    option = session.config.option
    if not isinstance(first, NotebookItem) or first.case.skip is not None or session.testsfailed:
        return
    if option.collectonly or getattr(option, "setuponly", False) or getattr(option, "setupplan", False):
        return
    from pytest_notebooks.run.execute import NextCase, warm_up

    warm_up(session.config.stash[POOL_KEY], NextCase(first.case, first.run_settings()))


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
        setattr(report, REPORT_ATTRIBUTE, item.record().to_json())  # travels to the xdist controller
    elif isinstance(item, PrinciplesItem) and call.when == "call":
        setattr(report, PRINCIPLES_ATTRIBUTE, item.record().to_json())
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
    recorder = Recorder(
        path=options.results_path,
        rootdir=options.rootdir,
        output_dir=options.output_dir,
        git=None,  # asked of git once a notebook is collected (_probe_git): a run without one costs nothing
        shown_path=_shown(config, options.results_path),
        write_empty=options.shard is not None,
        fixture_suffixes=fixture_naming(config).suffixes,
    )
    recorder.read_previous()  # once, before any case runs: the file belongs to this session
    config.stash[RECORDER_KEY] = recorder
    if options.shard is not None:  # a shard writes its file even with no case: with its commit
        _probe_git(config)
    config.pluginmanager.register(recorder, "notebooks-recorder")
    config.pluginmanager.register(_XdistBridge(recorder, config), "notebooks-recorder-xdist")
    _interrupt_on_sigterm(config)


def _probe_git(config: pytest.Config) -> None:
    """The repository's commit and state, for the results file: once, on the controller, when the
    first notebook is collected and before any case runs."""
    recorder = config.stash.get(RECORDER_KEY, None)
    if recorder is None or config.stash.get(GIT_PROBED_KEY, False):
        return
    config.stash[GIT_PROBED_KEY] = True
    from pytest_notebooks.errors import GitUnusable
    from pytest_notebooks.gitinfo import git_state

    options = config.stash[OPTIONS_KEY]
    ignore = [options.results_path]  # the file only: with an s3:// output dir it sits in the rootdir
    if not is_url(options.output_dir):
        ignore.append(Path(options.output_dir))
    try:
        recorder.git = git_state(options.rootdir, ignore=tuple(ignore))
    except GitUnusable as exc:  # recorded without a commit: nbpromote will refuse it, and says why
        config.issue_config_time_warning(PytestNotebooksWarning(str(exc)), stacklevel=2)


def pytest_collection_finish(session: pytest.Session) -> None:
    """Without xdist: git is asked once notebooks are known to be collected."""
    if any(isinstance(item, (NotebookItem, PrinciplesItem)) for item in session.items):
        _probe_git(session.config)


class _XdistBridge:
    """pytest-xdist's hooks for the recorder (optional: unknown without xdist)."""

    def __init__(self, recorder: Recorder, config: pytest.Config) -> None:
        self.recorder = recorder
        self.config = config
        self.header_written = False

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_node_collection_finished(self, node: Any, ids: Any) -> None:
        """A worker collected: before any case is handed out, git is asked when a notebook was, and
        the first time the plugin's header is written."""
        naming = fixture_naming(self.config)
        if self.header_written or not has_notebook_case(map(str, ids), self.config.rootpath, naming):
            return
        self.header_written = True
        _probe_git(self.config)
        reporter = self.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.ensure_newline()
            for line in _header(self.config):
                reporter.write_line(line)

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: Any, error: Any) -> None:
        self.recorder.worker_down(node, error)

    @pytest.hookimpl(optionalhook=True, trylast=True)
    def pytest_handlecrashitem(self, crashitem: str, report: pytest.TestReport, sched: Any) -> None:
        """xdist: the worker running ``crashitem`` died. Last, so that pytest-rerunfailures has said
        whether it runs the case again (the report's outcome ``rerun``)."""
        worker = getattr(getattr(getattr(report, "node", None), "gateway", None), "id", None)
        failure = report.__dict__.pop(TIMEOUT_ATTRIBUTE, None)  # interop.py: pytest-timeout ended it, at this cell
        self.recorder.crashed(crashitem, worker, rescheduled=str(report.outcome) == "rerun", failure=failure)


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
    _save_imports(session.config)
    _once_per_problem(session.config)
    recorder = session.config.stash.get(RECORDER_KEY, None)
    if recorder is None:
        return
    _write_html(session.config, recorder)
    options = session.config.stash[OPTIONS_KEY]
    target = options.review
    if not target:
        return
    from pytest_notebooks.errors import GitError
    from pytest_notebooks.review.changes import template_changes
    from pytest_notebooks.review.github import append_step_summary
    from pytest_notebooks.review.render import Review, render_markdown

    base = options.review_base
    templates, problem = [], ""
    try:
        templates = template_changes(recorder.rootdir, base, naming=fixture_naming(session.config)) if base else []
    except GitError as exc:
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


def _once_per_problem(config: pytest.Config) -> None:
    """Each collection error and warning of this plugin once in the summaries, not once per xdist
    worker: every worker collects the same notebooks and reports the same problems. Before the
    terminal reporter writes its summaries (after this hook), from its ``stats``."""
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    stats = getattr(reporter, "stats", None)
    if hasattr(config, "workerinput") or not isinstance(stats, dict):
        return
    seen: set[tuple[Any, ...]] = set()

    def first(report: Any) -> bool:
        if isinstance(report, pytest.CollectReport) and isinstance(report.longrepr, MessageRepr):
            key: tuple[Any, ...] = ("error", report.nodeid, str(report.longrepr))
        elif "PytestNotebooksWarning" in str(getattr(report, "message", "")):
            key = ("warning", report.nodeid, report.message, report.fslocation)
        else:
            return True
        if key in seen:
            return False
        seen.add(key)
        return True

    for name in ("error", "warnings"):
        if stats.get(name):
            stats[name] = [report for report in stats[name] if first(report)]


def _write_html(config: pytest.Config, recorder: Recorder) -> None:
    """--notebooks-html: the report of what the results file says, written on the controller."""
    target = config.stash[OPTIONS_KEY].html
    document = recorder.written
    if not target or document is None:
        return
    from pytest_notebooks.review.html import render_html

    path = Path(config.invocation_params.dir, target)
    try:
        atomic_write(path, render_html(document, recorder.rootdir, report_dir=path.parent))
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
    """--notebooks-shard: the same shard on every xdist worker."""
    shard = config.stash[OPTIONS_KEY].shard
    if shard is None:
        return
    keep = _one_shard(config, items, shard)
    kept = set(map(id, keep))
    deselected = [item for item in items if id(item) not in kept]
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = keep


def _select(config: pytest.Config, rev: str) -> Selection:
    """What changed since ``rev`` (git only; notebooks are read as collection reaches them), with the
    notebook imports pytest's cache holds. A usage error when git cannot say."""
    from pytest_notebooks.cases.selection import select_changed
    from pytest_notebooks.errors import SelectionError

    try:
        return select_changed(config.rootpath, rev, _cached_imports(config), fixture_naming(config))
    except SelectionError as exc:
        raise pytest.UsageError(f"--notebooks-changed-since: {exc}") from None


def _imports_file(config: pytest.Config) -> Path | None:
    """notebooks/imports.json in pytest's cache directory; None with -p no:cacheprovider."""
    cache = getattr(config, "cache", None)
    return None if cache is None else Path(cache.mkdir(IMPORTS_CACHE)) / "imports.json"


def _cached_imports(config: pytest.Config) -> ImportFacts:
    """The notebook imports an earlier run learnt; none when the file is missing or was written by
    another version of the plugin, and one warning when it cannot be read."""
    from pytest_notebooks import __version__
    from pytest_notebooks.cases.selection import ImportFacts

    try:
        path = _imports_file(config)
    except OSError as exc:  # pytest's cache directory cannot be made: run without it
        warning = f"pytest's cache directory cannot be used ({exc}); notebook imports are parsed on every run"
        config.issue_config_time_warning(PytestNotebooksWarning(warning), stacklevel=2)
        return ImportFacts()
    if path is None or not path.exists():
        return ImportFacts()
    try:
        stored = json.loads(path.read_bytes())
        if isinstance(stored, dict) and stored.get("version") != __version__:
            return ImportFacts(stale=True)
        return ImportFacts.from_json(stored.get("imports") if isinstance(stored, dict) else None)
    except (OSError, ValueError, RecursionError) as exc:
        warning = f"ignored {path} ({type(exc).__name__}: {exc}); it is written again"
        config.issue_config_time_warning(PytestNotebooksWarning(warning), stacklevel=2)
        return ImportFacts(stale=True)


def _selected(session: pytest.Session, path: Path) -> bool:
    """Whether --notebooks-changed-since (when given) selects the notebook at ``path``."""
    config = session.config
    selection = config.stash.get(SELECTION_KEY, None)
    if selection is None:
        return True
    real, text = real_path(session, path), os.fspath(path)
    why = selection.wants(real) or (selection.wants(text) if real != text else "")  # a link: either path
    counts = config.stash.setdefault(SELECTED_KEY, {})
    counts[why or "not selected"] = counts.get(why or "not selected", 0) + 1
    return bool(why)


def _save_imports(config: pytest.Config) -> None:
    """Keep what this process learnt of notebook imports for the next run (one writer under xdist)."""
    from pytest_notebooks import __version__

    selection = config.stash.get(SELECTION_KEY, None)
    worker = getattr(config, "workerinput", {}).get("workerid")
    if selection is None or not selection.facts.stale or worker not in (None, "gw0"):
        return  # nothing to keep: and no cache directory made for it
    with contextlib.suppress(OSError):  # a cache: the next run parses again
        path = _imports_file(config)
        if path is not None:
            atomic_write(path, json.dumps({"version": __version__, "imports": selection.facts.to_json()}))


def pytest_report_collectionfinish(config: pytest.Config, items: Sequence[pytest.Item]) -> list[str]:
    """When notebooks were collected: the plugin's header, and with --notebooks-changed-since how
    many notebooks were selected, and why."""
    if not any(isinstance(item, (NotebookItem, PrinciplesItem)) for item in items):
        return []
    return [*_header(config), *_selection_line(config)]


def _selection_line(config: pytest.Config) -> list[str]:
    counts = config.stash.get(SELECTED_KEY, None)
    selection = config.stash.get(SELECTION_KEY, None)
    if counts is None or selection is None:
        return []
    chosen = {why: n for why, n in counts.items() if why != "not selected"}
    reasons = ", ".join(f"{n} {why}" for why, n in sorted(chosen.items()))
    total = sum(counts.values())
    return [
        f"notebooks: changed since {selection.rev}: {sum(chosen.values())} of {total} notebooks selected"
        + (f" ({reasons})" if reasons else "")
        + "; the others were not read"
    ]


def _one_shard(config: pytest.Config, items: list[pytest.Item], shard: Shard) -> list[pytest.Item]:
    from pytest_notebooks.results.select import assign_shards

    notebook_ids = [item.nodeid for item in items if isinstance(item, NotebookItem)]
    shards = assign_shards(notebook_ids, shard.total, config.stash.get(DURATIONS_KEY, None))
    return [
        item
        for item in items
        if (shards[item.nodeid] == shard.index if isinstance(item, NotebookItem) else shard.index == 1)
    ]
