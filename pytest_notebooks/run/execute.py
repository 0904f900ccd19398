"""NotebookCase -> ExecutionResult, one step a line. The papermill / nbformat boundary (with run/engine.py).

``run_case`` reads as a case runs: the output's place prepared, the notebook's bytes read once
and checked against the hash taken at collection, its kernel looked up, the bytes executed by
papermill in a kernel of the pool, and the notebook the run left masked, judged, stamped and
saved, whatever happened (pass, cell error, timeout, dead kernel, missing kernel, Ctrl-C). Each
step hands the next a small record (``Source``, ``KernelChoice``, ``Run``, ``Verdict``).
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import hashlib
import importlib
import json
import logging
import os
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_notebooks.cases.notebook import ERROR_MARKER_TAG, cell_source, cell_tags
from pytest_notebooks.cases.textnotebook import converter, is_text_suffix, to_ipynb_bytes
from pytest_notebooks.errors import FixtureError
from pytest_notebooks.files import atomic_write, is_url, printable, remove_link
from pytest_notebooks.models import CellFailure, ExecutionResult, FailureKind, NotebookCase
from pytest_notebooks.redact import Redactor
from pytest_notebooks.run.kernels import KernelHandle, KernelKey, KernelPool
from pytest_notebooks.run.kernelspec import KernelChoice, missing_kernel
from pytest_notebooks.run.verdict import TemplateNumbering, failing_line, judge
from pytest_notebooks.run.watch import TIMEOUT_ENAME, CellWatch, Progress

if TYPE_CHECKING:
    from pytest_notebooks.run.engine import Guard

SKIP_TAG = "skip-execution"
CHANGED_HINT = (
    "hint: run pytest again, so that it collects and runs the notebook as it is now. Something rewrote it "
    "during this run (another notebook, a script, an editor saving it): what would run now is not what "
    "was collected, hashed and recorded"
)


@dataclass(frozen=True)
class RunSettings:
    """The limits and kernel a case runs with, after fixture, ini and flags are merged."""

    kernel: str | None  # flag, else fixture, else the notebook's kernelspec (None: it names none)
    timeout: float | None
    cell_timeout: float | None
    max_cell_output: int | None = None  # characters of output a cell may keep (None: no limit)
    max_output: int | None = None  # characters of output the whole notebook may keep
    redact: tuple[str, ...] = ()  # extra credential variable names/globs (notebooks_redact)
    clean_kernel_env: bool = False  # start kernels without the credential-looking variables
    log_output: bool = False  # --notebooks-log-output: print each cell's start and (masked) output

    def kernel_key(self, name: str, cwd: str, env: tuple[tuple[str, str], ...] = ()) -> KernelKey:
        """What a kernel must match to run a case with these settings and the fixture's ``env``."""
        return KernelKey(name, cwd, self.clean_kernel_env, self.redact, env)


@dataclass(frozen=True)
class NextCase:
    """The case pytest runs next in this process, so that its kernel can start early."""

    case: NotebookCase
    settings: RunSettings


@dataclass(frozen=True)
class Job:
    """One case to run, and what every step needs to know of it."""

    case: NotebookCase
    output_path: str
    settings: RunSettings
    redactor: Redactor  # secrets of this process's environment and the settings' names
    started: float  # time.monotonic() when the run began

    def result(self, verdict: Verdict, source: Source) -> ExecutionResult:
        return ExecutionResult(
            case_id=self.case.case_id,
            passed=verdict.failure is None,
            duration=time.monotonic() - self.started,
            output_path=self.output_path,
            kernel_name=verdict.kernel_name,
            failure=verdict.failure,
            notebook=verdict.notebook,
            converted_sha256=hashlib.sha256(source.data).hexdigest() if source.converted_by else None,
            converted_by=source.converted_by or None,
        )


@dataclass(frozen=True)
class Source:
    """The notebook's bytes, read once for the whole run, and why they must not run (None: they may).

    They must be the bytes hashed at collection (``case.notebook_sha256``): papermill is handed
    them as a notebook, and the cell numbering and the saved copy come from them too, so what ran
    is what was collected and recorded.
    """

    data: bytes
    failure: CellFailure | None = None
    converted_by: str = ""  # a text notebook's: what made ``data`` from its bytes (``jupytext 1.19.7``)

    @classmethod
    def read(cls, case: NotebookCase) -> Source:
        name = printable(case.notebook.name)
        try:
            data = case.notebook.read_bytes()
        except OSError as exc:
            problem = f"{name} cannot be read since it was collected ({exc.strerror or exc}): not run"
            return cls(b"", CellFailure(FailureKind.NOTEBOOK_CHANGED, evalue=problem, detail=CHANGED_HINT))
        now = hashlib.sha256(data).hexdigest()
        if not case.notebook_sha256 or now == case.notebook_sha256:
            return cls.runnable(case, data)
        problem = (
            f"{name} changed on disk after it was collected (sha256 {case.notebook_sha256[:12]} at collection, "
            f"{now[:12]} now): not run"
        )
        return cls(data, CellFailure(FailureKind.NOTEBOOK_CHANGED, evalue=problem, detail=CHANGED_HINT))

    @classmethod
    def runnable(cls, case: NotebookCase, data: bytes) -> Source:
        """The notebook of the bytes collected: a text notebook as Jupytext reads it (the conversion
        collection made of the same bytes), anything else as it is."""
        if not is_text_suffix(case.notebook):
            return cls(data)
        try:
            return cls(to_ipynb_bytes(data, case.notebook, printable(case.notebook.name)), converted_by=converter())
        except FixtureError as exc:  # collection read these bytes: jupytext was removed, or changed, since
            return cls(b"", CellFailure(FailureKind.SETUP, ename=type(exc).__name__, evalue=str(exc)))

    def cells(self) -> list[Any]:
        """The template's cells, as in its JSON."""
        cells: list[Any] = json.loads(self.data).get("cells", [])
        return cells


@dataclass(frozen=True)
class Run:
    """What executing left: the failure found on the way (None: judge the notebook), the notebook
    papermill's engine held in memory (None: the engine never began), the cell to blame for a
    failure the notebook does not show (its index in the executed copy), whether papermill was
    called at all, and the Ctrl-C (or another stop from outside) to raise again once the notebook is saved."""

    failure: CellFailure | None = None
    notebook: Any = None
    cell_index: int | None = None
    ran: bool = True
    interrupt: BaseException | None = None


@dataclass(frozen=True)
class Verdict:
    """The case's failure (None: it passed), its kernel's name, and the notebook as saved."""

    failure: CellFailure | None
    kernel_name: str | None
    notebook: dict[str, Any]


def run_case(
    case: NotebookCase,
    output_path: str,
    settings: RunSettings,
    pool: KernelPool | None = None,
    next_case: NextCase | None = None,
) -> ExecutionResult:
    """Execute ``case`` with papermill, save the output notebook at ``output_path``, judge it.

    With a ``pool``, the kernel started ahead for this case is used, and the kernel of
    ``next_case`` is started before this one runs.
    """
    redactor = Redactor.from_environ({**os.environ, **dict(case.env)}, settings.redact)  # the fixture's env: too
    job = Job(case, output_path, settings, redactor, time.monotonic())
    unsaved = prepare_output(output_path, job.redactor)
    if unsaved is not None:  # nowhere to save: nothing runs
        return ExecutionResult(case.case_id, False, 0.0, output_path, settings.kernel, unsaved)
    source = Source.read(case)
    kernel = KernelChoice.find(settings.kernel)
    refusal = source.failure or kernel.failure()
    # When it must not run, nothing runs: the template's bytes are saved, stamped with why.
    run = execute(job, source, kernel, pool, next_case) if refusal is None else Run(refusal, ran=False)
    verdict = conclude(job, source, run)
    if not is_url(output_path):
        remove_link(repro_path(output_path))  # planted while the case ran
    if run.interrupt is not None:  # the notebook is saved: now pytest may stop, knowing the result
        setattr(run.interrupt, STOPPED_RESULT, dataclasses.replace(job.result(verdict, source), notebook=None))
        raise run.interrupt
    return job.result(verdict, source)


STOPPED_RESULT = "pytest_notebooks_result"  # the attribute of a stop raised through run_case: its ExecutionResult


def stopped_result(exc: BaseException) -> ExecutionResult | None:
    """The result of the case that ``exc`` stopped (Ctrl-C, pytest-timeout's signal method raising
    pytest's ``Failed`` in the middle of a cell), saved before ``exc`` went on; None for another."""
    result = getattr(exc, STOPPED_RESULT, None)
    return result if isinstance(result, ExecutionResult) else None


def running_cell(case: NotebookCase, output_path: str, ename: str, evalue: str) -> CellFailure:
    """The cell the saved copy at ``output_path`` marks as running (papermill saves at each code cell's
    start), as an INTERRUPTED failure: what a case stopped from another thread can record (pytest-timeout's
    thread method, which ends the process). Only the template and that file are read."""
    failure = CellFailure(FailureKind.INTERRUPTED, ename=ename, evalue=evalue)
    try:
        saved = json.loads(Path(output_path).read_bytes()).get("cells", [])
        index = next(
            i
            for i, cell in enumerate(saved)
            if cell.get("metadata", {}).get("papermill", {}).get("status") == "running"
        )
        numbering = TemplateNumbering.of(Source.read(case).cells(), saved)
    except (OSError, ValueError, AttributeError, StopIteration):  # not saved yet, or not at a code cell
        return failure
    cell = saved[index]
    return dataclasses.replace(
        failure,
        cell_number=numbering.number(index),
        cell_id=numbering.cell_id(index),
        exec_count=cell.get("execution_count"),
        source=cell_source(cell),
    )


def prepare_output(output_path: str, redactor: Redactor) -> CellFailure | None:
    """Create the output notebook's directory and remove the copy an earlier run left there, so
    that a case stopped before papermill's first save is not judged from (and saved over) the old
    run's outputs; a link at the reproduce command's path is removed too (papermill's CLI would
    write through it). The failure when the directory cannot be made (None: ready)."""
    if is_url(output_path):
        return None
    path = Path(output_path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        problem = f"cannot create the output directory for {output_path}: {exc}"
        return CellFailure(FailureKind.SETUP, ename=type(exc).__name__, evalue=printable(redactor.text(problem)))
    with contextlib.suppress(OSError):  # not there, or not ours to remove: papermill overwrites it
        path.unlink(missing_ok=True)
    remove_link(repro_path(output_path))
    return None


def repro_path(output_path: str) -> str:
    """Where a failure's reproduce command writes: beside the saved notebook, not over it."""
    stem = output_path[: -len(".ipynb")] if output_path.endswith(".ipynb") else output_path
    return f"{stem}.repro.ipynb"


def execute(job: Job, source: Source, kernel: KernelChoice, pool: KernelPool | None, next_case: NextCase | None) -> Run:
    """Run the source's bytes through papermill in a kernel of ``pool`` (None: a pool of its own,
    closed after), while the next case's kernel starts; what came of it. The kernel is released
    however the run ends, Ctrl-C included."""
    case, settings = job.case, job.settings
    assert kernel.name is not None  # a case whose kernel is missing does not get here
    progress = (
        Progress(f"{case.notebook.name}::{case.case_id}", source.data, job.redactor) if settings.log_output else None
    )
    watch = CellWatch(settings.timeout, settings.cell_timeout, job.started, progress)
    own_pool = pool is None
    pool = pool or KernelPool()
    handle: KernelHandle | None = None
    guard: Guard | None = None
    error: Exception | None = None
    try:
        key = settings.kernel_key(kernel.name, str(case.notebook.parent), case.env)
        handle = pool.take(key, list(kernel.arguments))
        pool.prepare(*_next_kernel(next_case))
        from pytest_notebooks.run.engine import Guard  # papermill is imported while both kernels start

        handle.learn_pid()  # after the import: a first forked kernel's pid comes once its template has imported
        guard = Guard(settings.max_cell_output, settings.max_output, job.redactor)
        _papermill(job, source, watch, guard, handle)
    except KeyboardInterrupt as exc:
        notebook = guard.notebook if guard is not None else None
        return Run(CellFailure(FailureKind.INTERRUPTED), notebook, watch.last_started, interrupt=exc)
    except Exception as exc:  # noqa: BLE001 - classified in _outcome; never a plugin traceback
        error = exc
    except BaseException as exc:  # noqa: BLE001 - a stop from outside (pytest-timeout's signal method), raised again
        notebook = guard.notebook if guard is not None else None
        stopped = CellFailure(FailureKind.INTERRUPTED, ename=type(exc).__name__, evalue=printable(str(exc)))
        return Run(stopped, notebook, watch.last_started, interrupt=exc)
    finally:
        if handle is not None:
            pool.release(handle)
        if own_pool:
            pool.close()
    return _outcome(error, watch, guard, job)


def warm_up(pool: KernelPool, first: NextCase) -> None:
    """Before the first case runs: start its kernel (a forked one's template with it), and import
    papermill while they start, so that the first case does not wait for both in turn.

    Under xdist this runs while the controller gathers the workers' collections and hands out the
    cases. Whatever fails here is left for the first case to meet and report; the warnings it
    gives (a kernel spawned instead of forked, one on an import) are held by the pool and given
    when that case takes its kernel, where they came without the warm-up.
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with contextlib.suppress(Exception):  # the first case meets it again, and reports it
            pool.prepare(*_next_kernel(first))
            importlib.import_module("pytest_notebooks.run.engine")  # papermill, nbclient, nbformat
    pool.hold(caught)


class IntrospectionNoise(logging.Filter):
    """Drops papermill's 'Translator for 'R' language does not support parameter introspection' and the
    'Passed unknown parameter: x' lines that follow it: papermill reads Python parameters cells only, so
    it calls every R, Julia or Scala parameter unknown, which collection has checked against the cell
    (cases/languages.py). For a Python notebook papermill can read, its warnings are kept."""

    def __init__(self) -> None:
        super().__init__()
        self.blind = False  # papermill said it could not read the parameters cell

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "does not support parameter introspection" in message:
            self.blind = True
            return False
        return not (self.blind and message.startswith("Passed unknown parameter: "))


def _papermill(job: Job, source: Source, watch: CellWatch, guard: Guard, handle: KernelHandle) -> None:
    """papermill's run of the case, through run/engine.py's engine, in the kernel ``handle``."""
    logger, noise = logging.getLogger("papermill"), IntrospectionNoise()
    logger.addFilter(noise)
    try:
        _execute_notebook(job, source, watch, guard, handle)
    finally:
        logger.removeFilter(noise)


def _execute_notebook(job: Job, source: Source, watch: CellWatch, guard: Guard, handle: KernelHandle) -> None:
    import papermill

    from pytest_notebooks.run.engine import ENGINE_NAME

    papermill.execute_notebook(
        _notebook_node(source.data),  # the bytes collected, not the path: it may have changed since
        job.output_path,
        parameters=job.case.parameters,
        kernel_name=job.settings.kernel,
        progress_bar=False,
        cwd=str(job.case.notebook.parent),
        start_timeout=watch.start_timeout(),
        engine_name=ENGINE_NAME,
        source_path=str(job.case.notebook),  # what the saved copy's metadata names as its input
        guard=guard,
        timeout_func=watch.timeout_func,
        # On a timeout, interrupt the cell (its KeyboardInterrupt traceback shows where it
        # hung) and stop at once; the kernel then shuts down idle instead of mid-request.
        interrupt_on_timeout=True,
        error_on_timeout={"ename": TIMEOUT_ENAME, "evalue": "", "traceback": []},
        on_cell_start=watch.on_cell_start,
        on_cell_executed=watch.on_cell_executed,
        skip_cells_with_tag=SKIP_TAG,  # papermill alone would run them
        km=handle.manager,
    )


def _next_kernel(next_case: NextCase | None) -> tuple[KernelKey | None, list[str]]:
    """The key and arguments of the next case's kernel; (None, []) when it cannot be known."""
    if next_case is None:
        return None, []
    kernel = KernelChoice.find(next_case.settings.kernel)
    if kernel.name is None:
        return None, []
    case = next_case.case
    return next_case.settings.kernel_key(kernel.name, str(case.notebook.parent), case.env), list(kernel.arguments)


def _outcome(error: Exception | None, watch: CellWatch, guard: Guard | None, job: Job) -> Run:
    """What a run that ended means (``error``: the exception out of papermill, None when it returned).
    A cell over its output limit wins over whatever papermill made of the stopped cell."""
    notebook = guard.notebook if guard is not None else None
    if guard is not None and guard.hit is not None:
        hit = guard.hit
        return Run(CellFailure(FailureKind.OUTPUT_LIMIT, limit=hit.limit, scope=hit.scope), notebook, hit.cell_index)
    failure = None if error is None else _failure_from(error, watch, job.redactor)
    if failure is not None and watch.never_ready():
        failure = CellFailure(FailureKind.NOTEBOOK_TIMEOUT, limit=job.settings.timeout)
    return Run(failure, notebook, watch.last_started)


def _failure_from(exc: Exception, watch: CellWatch, redactor: Redactor) -> CellFailure | None:
    """What an exception out of papermill means for the case (None: judge the notebook)."""
    import papermill
    from jupyter_client.kernelspec import NoSuchKernel
    from nbclient.exceptions import CellTimeoutError, DeadKernelError

    if isinstance(exc, papermill.PapermillExecutionError):
        # judged from the notebook (where raises-exception is honoured), unless a cell timed out
        return watch.timeout_failure() if watch.timed_out else None
    if isinstance(exc, CellTimeoutError):  # the kernel ignored the interrupt: no reply in time
        return watch.timeout_failure()
    if isinstance(exc, DeadKernelError):
        return CellFailure(FailureKind.DEAD_KERNEL)
    if isinstance(exc, NoSuchKernel):  # checked before; a kernelspec removed in between
        return missing_kernel(str(exc.args[0]) if exc.args else "?")
    return CellFailure(FailureKind.SETUP, ename=type(exc).__name__, evalue=printable(redactor.text(str(exc))))


def conclude(job: Job, source: Source, run: Run) -> Verdict:
    """Take the notebook the run left, mask it, judge it, stamp it with the outcome, save it.

    ``run.notebook``, the notebook papermill's engine held in memory, is judged, never a file read
    back, which a process the notebook started could have rewritten or deleted by then (a deleted
    copy was judged as the template: a pass). The saved copy is read only when the engine never
    got so far, and the source's bytes are taken when papermill never ran (a file at
    ``output_path`` is then not this run's). The whole notebook is masked again before it is
    judged, and every report is derived from it.
    """
    kernel_name = job.settings.kernel
    try:
        nb = _left_notebook(run, job.output_path, source)
    except Exception as exc:  # noqa: BLE001 - nbformat cannot read it: nothing to save
        problem = job.redactor.text(f"nbformat cannot read the notebook: {exc}")
        unread = CellFailure(FailureKind.SETUP, ename=type(exc).__name__, evalue=problem)
        return Verdict(run.failure or unread, kernel_name, {})
    _clean(nb, job.redactor)
    numbering = TemplateNumbering.of(source.cells(), nb.cells)
    failure = _blame(run, nb.cells, numbering)
    _stamp(nb, job.case, failure, numbering)
    unsaved = save(nb, job.output_path, job.redactor)
    return Verdict(failure or unsaved, kernel_name or nb.metadata.get("kernelspec", {}).get("name"), nb)


def _left_notebook(run: Run, output_path: str, source: Source) -> Any:
    """A copy of the engine's notebook, upgraded as one read from disk would be; else the notebook
    papermill saved at ``output_path``, else the source as papermill would have saved it. A link at
    ``output_path`` is not read: it was put there after papermill's last save, and leads elsewhere."""
    import nbformat
    from papermill.iorw import load_notebook_node

    if run.notebook is not None:
        return nbformat.v4.upgrade(nbformat.from_dict(copy.deepcopy(run.notebook)))
    if run.ran and not os.path.islink(output_path):
        with contextlib.suppress(FileNotFoundError, OSError, ValueError):
            return load_notebook_node(output_path)
    return nbformat.v4.upgrade(_notebook_node(source.data))


def _clean(nb: Any, redactor: Redactor) -> None:
    """Drop the error markers an earlier run saved, and mask the secrets in every output."""
    nb.cells = [cell for cell in nb.cells if ERROR_MARKER_TAG not in cell_tags(cell)]
    if redactor:
        redactor.data(nb)
        for cell in nb.cells:
            redactor.streams(cell.get("outputs", []))


def _blame(run: Run, cells: list[Any], numbering: TemplateNumbering) -> CellFailure | None:
    """The case's failure: the notebook's verdict when the run found none (run/verdict.py honours
    the ``raises-exception`` tag and a clean ``sys.exit``), else the run's, placed in the cell that
    was running when it came (an interrupt's traceback shows where it landed)."""
    failure = run.failure
    if failure is None:
        return judge(cells, numbering)
    if failure.kind in (FailureKind.MISSING_KERNEL, FailureKind.SETUP) or run.cell_index is None:
        return failure
    cell = cells[run.cell_index]
    error = next((o for o in cell.get("outputs", []) if o.get("output_type") == "error"), None)
    traceback = tuple(error.get("traceback", ())) if error else ()
    return dataclasses.replace(
        failure,
        cell_number=numbering.number(run.cell_index),
        cell_id=numbering.cell_id(run.cell_index),
        exec_count=cell.get("execution_count"),
        source=cell_source(cell),
        line=failing_line(traceback, cell.get("execution_count")),
        traceback=traceback,
    )


def _stamp(nb: Any, case: NotebookCase, failure: CellFailure | None, numbering: TemplateNumbering) -> None:
    """Write the outcome into the notebook's metadata, and mark a failure in its cells."""
    nb.metadata["pytest_notebooks"] = {
        "case": case.case_id,
        "fixture": printable(case.fixture.name),
        "outcome": "passed" if failure is None else "failed",
        "failure": failure.to_json() if failure else None,
    }
    if failure is not None:
        _mark(nb, failure, numbering)


def save(nb: Any, output_path: str, redactor: Redactor) -> CellFailure | None:
    """Write the stamped notebook; the failure when the store refuses (None: saved).

    A local one is written as a new file renamed over ``output_path``, so that a link there
    (symbolic or hard, one the notebook may have planted) is replaced and never written through.
    """
    import nbformat
    from papermill.iorw import write_ipynb

    try:
        if is_url(output_path):
            write_ipynb(nb, output_path)
            return None
        text = nbformat.writes(nb)
        try:
            data = text.encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate (an undecodable file name byte) left in some text
            data = text.encode("utf-8", "backslashreplace")  # JSON's own escape for it: \udcff
        remove_link(output_path)  # a symlink to a directory would make the rename fail
        atomic_write(Path(output_path), data, sync=False)
    except Exception as exc:  # noqa: BLE001 - any store (disk, S3) may refuse: say so, keep the verdict
        problem = printable(redactor.text(f"could not save the output notebook: {exc}"))
        return CellFailure(FailureKind.SETUP, ename=type(exc).__name__, evalue=problem)
    return None


def _notebook_node(template: bytes) -> Any:
    """The notebook papermill runs, from the bytes read once (as papermill reads a path)."""
    import nbformat

    return nbformat.reads(template.decode("utf-8"), as_version=4)


def _mark(nb: Any, failure: CellFailure, numbering: TemplateNumbering) -> None:
    """Put a banner at the top of the saved notebook and an anchor before the failing cell."""
    style = 'style="color:red; font-size:1.5em;"'
    banner = _marker(
        nb,
        f"<span {style}>pytest-notebooks: this case failed at "
        f'<a href="#pytest-notebooks-failure">{failure.where()}</a>: {_html(failure.headline())}</span>',
    )
    if failure.cell_number is not None:
        anchor = _marker(nb, f'<span id="pytest-notebooks-failure" {style}>The case failed in the next cell.</span>')
        index = next((i for i in range(len(nb.cells)) if numbering.number(i) == failure.cell_number), None)
        if index is not None:
            nb.cells.insert(index, anchor)
    nb.cells.insert(0, banner)


def _marker(nb: Any, source: str) -> Any:
    """A markdown cell tagged as ours (papermill and the next run drop it)."""
    import nbformat

    cell = nbformat.v4.new_markdown_cell(source)
    cell.metadata["tags"] = [ERROR_MARKER_TAG]
    if nb.get("nbformat_minor", 5) < 5:
        del cell["id"]  # cell ids exist from nbformat 4.5 on; older notebooks must not have one
    return cell


def _html(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
