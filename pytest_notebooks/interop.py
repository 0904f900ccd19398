"""What the pytest tools people already run get of a notebook case: optional hooks, no hard dependency.

junitxml (pytest's own)  properties on each case's testcase: the executed notebook (relative to the
                         rootdir), the parameters (masked, JSON), the failing cell and its summary
pytest-html              links to the executed notebook (relative to the report's folder) and to the
                         failing cell's text, and a "Failing cell" column
pytest-timeout           its thread method ends the process with ``os._exit``: the case's record, naming
                         the cell that was running, is written to the results file first; on an xdist
                         worker it is sent to the controller first, which records the case as crashed
                         at that cell when the worker's death is reported

pytest-timeout's signal method raises pytest's ``Failed`` in the middle of a cell: run/execute.py saves the
notebook and the result before letting it go on, so that record names the cell without anything here.
``register`` adds each part when its tool is there (pytest-html and pytest-timeout as pytest plugins).
"""

from __future__ import annotations

import dataclasses
import html
import json
import os
import threading
import urllib.parse
import warnings
from collections.abc import Generator
from pathlib import Path
from typing import Any

import pytest

from pytest_notebooks.collect import RESULT_KEY, NotebookItem
from pytest_notebooks.errors import PytestNotebooksWarning
from pytest_notebooks.files import is_url
from pytest_notebooks.models import CellFailure, ExecutionResult

HTML_ATTRIBUTE = "pytest_notebooks_html"  # on a call report: what the pytest-html row shows (travels with xdist)
JUNIT_PROPERTIES = ("notebook_parameters", "notebook_failure_cell", "notebook_failure")
RECORDER_NAME = "notebooks-recorder"  # plugin.py registers the results file's recorder under this name
TIMEOUT_ATTRIBUTE = "pytest_notebooks_timeout"  # on xdist's crash report: a timed-out case's FailureRecord


def register(config: pytest.Config) -> None:
    """Register the part of each tool that is installed, not turned off (``-p no:html``) and in use."""
    manager = config.pluginmanager
    manager.register(JunitProperties(), "notebooks-junit-properties")
    if manager.hasplugin("html") and config.getoption("htmlpath", None):  # --html: on xdist workers too
        manager.register(HtmlReport(config), "notebooks-pytest-html")
    if manager.hasplugin("timeout"):
        manager.register(TimeoutRecord(), "notebooks-pytest-timeout")


def _failure(item: NotebookItem) -> CellFailure | None:
    result = item.stash.get(RESULT_KEY, None)
    return None if result is None else result.failure


class JunitProperties:
    """``record_property`` for every case, as ``--junitxml`` writes them (from the teardown report)."""

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, Any]:
        if isinstance(item, NotebookItem) and call.when == "call":
            set_properties(item.user_properties, junit_properties(item))
        return (yield)


def junit_properties(item: NotebookItem) -> list[tuple[str, str]]:
    """The case's parameters as records show them, and where it failed (none when it passed)."""
    properties = [("notebook_parameters", json.dumps(item.shown_parameters(), ensure_ascii=False))]
    failure = _failure(item)
    if failure is not None:
        if failure.cell_number is not None:
            properties.append(("notebook_failure_cell", str(failure.cell_number)))
        properties.append(("notebook_failure", failure.summary()))
    return properties


def set_properties(target: list[tuple[str, object]], properties: list[tuple[str, str]]) -> None:
    """Replace this plugin's properties in ``target`` (a rerun's attempt replaces the last one's)."""
    target[:] = [(name, value) for name, value in target if name not in JUNIT_PROPERTIES]
    target.extend(properties)


class HtmlReport:
    """pytest-html's documented hooks: ``report.extras`` (links) and the results table's columns."""

    def __init__(self, config: pytest.Config) -> None:
        path = config.getoption("htmlpath")
        # pytest-html writes the report at the path given, from the directory pytest was started in
        self.report_dir = (config.invocation_params.dir / Path(os.path.expandvars(path)).expanduser()).parent

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, Any]:
        report = yield
        if isinstance(item, NotebookItem) and report.when == "call":
            self._extras(item, report)
        return report

    def _extras(self, item: NotebookItem, report: pytest.TestReport) -> None:
        from pytest_html import extras  # type: ignore[import-untyped]

        link = self.link(item.output_path())
        added = [extras.url(link, name="executed notebook")]
        failure = _failure(item)
        if failure is not None:
            added.append(extras.text(failure_text(failure), name="failing cell"))
        report.extras = [*getattr(report, "extras", []), *added]  # type: ignore[attr-defined]
        setattr(report, HTML_ATTRIBUTE, {"cell": failure.summary() if failure else "", "notebook": link})

    def link(self, output: str) -> str:
        """The executed notebook as a link that opens from the report's folder."""
        if is_url(output):
            return output
        return urllib.parse.quote(Path(os.path.relpath(output, self.report_dir)).as_posix())

    @pytest.hookimpl(optionalhook=True)
    def pytest_html_results_table_header(self, cells: list[str]) -> None:
        cells.insert(2, '<th class="sortable" data-column-type="failing-cell">Failing cell</th>')

    @pytest.hookimpl(optionalhook=True)
    def pytest_html_results_table_row(self, report: pytest.TestReport, cells: list[str]) -> None:
        shown = getattr(report, HTML_ATTRIBUTE, None) or {}
        cells.insert(2, f'<td class="col-failing-cell">{html.escape(str(shown.get("cell", "")))}</td>')


def failure_text(failure: CellFailure) -> str:
    """The failing cell as text: its summary, the cell's lines around the failing one, the traceback."""
    from pytest_notebooks.run.report import source_excerpt, traceback_lines

    lines = [failure.summary()]
    if failure.source:
        lines += ["", *source_excerpt(failure.source, failure.line)]
    if failure.traceback:
        lines += ["", *traceback_lines(failure.traceback, colour=False)]
    return "\n".join(lines) + "\n"


class CaseTimedOut(PytestNotebooksWarning):
    """What an xdist worker tells its controller as pytest-timeout's thread method is about to end it:
    the case's failure at the running cell (a FailureRecord's JSON). It travels as a warning because
    xdist forwards every ``pytest_warning_recorded`` to the controller (rebuilt from these args), in
    order with the worker's other events and before the controller hears that the worker died, and a
    warning counts as no test outcome: the crash stays the case's only report. Never raised or warned."""

    def __init__(self, message: str, failure: str = "", worker: str = "") -> None:
        super().__init__(message, failure, worker)
        self.message, self.failure, self.worker = message, failure, worker

    def __str__(self) -> str:
        return self.message


class TimeoutRecord:
    """pytest-timeout's thread method for notebook cases: the same timer and the same end (its stacks
    dumped, ``os._exit(1)``), but the case's record is written to the results file before (on an xdist
    worker: sent to the controller, which adds it to the crash it is told of)."""

    def __init__(self) -> None:
        self.timed_out: dict[tuple[str, str], CaseTimedOut] = {}  # on the controller: (worker, node id) -> its notice

    @pytest.hookimpl(tryfirst=True, optionalhook=True)
    def pytest_timeout_set_timer(self, item: pytest.Item, settings: Any) -> bool | None:
        main = threading.current_thread() is threading.main_thread()
        if not isinstance(item, NotebookItem) or (settings.method == "signal" and main):
            return None  # pytest-timeout's own timer (the signal method's cell is kept by run/execute.py)
        timer = threading.Timer(settings.timeout, _expired, (item, settings))
        timer.name = f"pytest-notebooks timeout {item.nodeid}"
        timer.daemon = True

        def cancel() -> None:
            timer.cancel()
            timer.join()

        item.cancel_timeout = cancel  # type: ignore[attr-defined]  # what pytest-timeout's cancel hook calls
        timer.start()
        return True

    def pytest_warning_recorded(self, warning_message: warnings.WarningMessage, nodeid: str) -> None:
        """On the controller: a worker's notice that pytest-timeout is ending it (see CaseTimedOut)."""
        notice = warning_message.message
        if isinstance(notice, CaseTimedOut) and notice.failure:
            self.timed_out[(notice.worker, nodeid)] = notice

    @pytest.hookimpl(tryfirst=True, optionalhook=True)
    def pytest_handlecrashitem(self, crashitem: str, report: pytest.TestReport) -> None:
        """xdist: the worker running ``crashitem`` died. When pytest-timeout ended it, the crash report
        says so and where, and carries the failure to the recorder (plugin.py's handler, which runs last)."""
        worker = getattr(getattr(getattr(report, "node", None), "gateway", None), "id", None)
        notice = self.timed_out.pop((str(worker), crashitem), None)
        if notice is None:
            return
        from pytest_notebooks.results.record import FailureRecord

        report.longrepr = f"{report.longrepr}: {notice.message}"
        setattr(report, TIMEOUT_ATTRIBUTE, FailureRecord.from_json(json.loads(notice.failure)))


def _expired(item: NotebookItem, settings: Any) -> None:
    """The timer ran out: record the case, then end as pytest-timeout's thread method does."""
    import pytest_timeout  # type: ignore[import-untyped]

    if not getattr(settings, "disable_debugger_detection", False) and pytest_timeout.is_debugging():
        return
    try:
        line = record_timeout(item, float(settings.timeout))
        capture = item.config.pluginmanager.getplugin("capturemanager")
        if capture is not None:  # said on the terminal, not into the case's captured output
            capture.suspend_global_capture(in_=True)
        reporter = item.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_line(f"notebooks: {line}")  # on a line of its own, after the progress dots
    finally:
        pytest_timeout.timeout_timer(item, settings)  # dumps every thread's stack, then os._exit(1)


def record_timeout(item: NotebookItem, seconds: float) -> str:
    """The case as failed at the cell the saved copy marks running, in the results file (written now,
    the session marked interrupted); on an xdist worker, where only the controller writes, sent to the
    controller. The line that says what was done."""
    from pytest_notebooks.errors import ResultsError
    from pytest_notebooks.results.recorder import Recorder
    from pytest_notebooks.run.execute import running_cell

    output = item.output_path()
    worker = getattr(item.config, "workerinput", {}).get("workerid")
    ended = "pytest" if worker is None else f"xdist worker {worker}"
    failure = running_cell(
        item.case, output, "Timeout", f"pytest-timeout (thread method) ended {ended} after {seconds:g} s"
    )
    item.stash[RESULT_KEY] = ExecutionResult(item.case.case_id, False, seconds, output, None, failure)
    if worker is not None:
        return tell_controller(item, failure, str(worker), seconds)
    recorder = item.config.pluginmanager.get_plugin(RECORDER_NAME)
    if not isinstance(recorder, Recorder):
        return f"{item.nodeid} timed out at {failure.where()}; no results file is written in this session"
    recorder.add(item.nodeid, "call", "failed", seconds, item.record(), wasxfail=False)
    recorder.session_ended(2, stopped_early=False)  # pytest's exit status for an interrupted session
    try:
        recorder.write()
    except (OSError, ResultsError) as exc:
        return f"could not write the results file {recorder.shown_path}: {exc}"
    return f"{item.nodeid} timed out at {failure.where()}: recorded in {recorder.shown_path} (session interrupted)"


def tell_controller(item: NotebookItem, failure: CellFailure, worker: str, seconds: float) -> str:
    """On an xdist worker: the failure to the controller, through the hook xdist forwards (its channel
    writes before this returns, so it is sent before ``os._exit``). The line that says so."""
    from pytest_notebooks.results.record import FailureRecord

    at = f"at {failure.where()}" if failure.cell_number is not None else "with no cell running"
    message = f"pytest-timeout (thread method) ended it after {seconds:g} s {at}"
    headline = f"{failure.ename}: {failure.evalue}"  # what ended it, not only "interrupted"
    summary = headline if failure.cell_number is None else f"{failure.where()}: {headline}"
    record = dataclasses.replace(FailureRecord.of(failure), summary=summary)
    notice = CaseTimedOut(message, json.dumps(record.to_json()), worker)
    recorded = warnings.WarningMessage(notice, CaseTimedOut, item.nodeid.split("::")[0], 0, line="")
    kwargs = {"warning_message": recorded, "when": "runtest", "nodeid": item.nodeid, "location": None}
    item.config.hook.pytest_warning_recorded.call_historic(kwargs=kwargs)
    return f"{item.nodeid} timed out at {failure.where()}: sent to the xdist controller, which records it as crashed"
