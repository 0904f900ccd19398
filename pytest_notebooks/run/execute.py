"""NotebookCase -> ExecutionResult. Imports papermill, nbclient and nbformat (with run/engine.py).

A case runs through ``papermill.execute_notebook`` in its own kernel. Whatever happens (pass,
cell error, timeout, dead kernel, missing kernel, Ctrl-C), the executed notebook is saved and
stamped with the outcome before this module returns or re-raises.

The notebook is read once, before the kernel starts, and must be the bytes hashed at collection
(``case.notebook_sha256``); papermill is handed those bytes as a notebook, and the cell numbering
and the saved copy come from them too, so what ran is what was collected and recorded.

papermill alone gets two tags wrong, so the verdict is taken from the saved notebook, not from
papermill's exception: a cell tagged ``raises-exception`` must raise (papermill fails the run when
it does), and ``skip-execution`` cells are not run (passed to nbclient explicitly).

Cases run through papermill's engine registered by run/engine.py, which caps each cell's output
and masks secrets as the kernel's messages arrive. The saved notebook is masked again as a whole
before it is judged and written back, and so is the text of any exception turned into a failure:
every report is derived from those two.

No save follows a link at the output path: the engine's saves while the case runs replace a
symbolic or hard link found there (the notebook may plant one), the last save renames a new file
over the path, and a link at the reproduce command's path (``<case>.repro.ipynb``, which
papermill's CLI would write through) is removed before and after the run.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import hashlib
import json
import math
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_notebooks.cases.notebook import ERROR_MARKER_TAG, cell_source, cell_tags
from pytest_notebooks.files import atomic_write, is_url, printable, remove_link
from pytest_notebooks.models import CellFailure, ExecutionResult, FailureKind, NotebookCase
from pytest_notebooks.redact import Redactor
from pytest_notebooks.run.kernels import KernelKey, KernelPool
from pytest_notebooks.run.verdict import TemplateNumbering, failing_line, judge
from pytest_notebooks.terminal import inert

SKIP_TAG = "skip-execution"
KERNEL_START_TIMEOUT = 60  # at most; a whole-notebook `timeout` counts the kernel start too
TIMEOUT_ENAME = "PytestNotebooksTimeout"  # marks nbclient's synthesized reply to a timed-out cell
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

    def kernel_key(self, name: str, cwd: str) -> KernelKey:
        """What a kernel must match to run a case with these settings."""
        return KernelKey(name, cwd, self.clean_kernel_env, self.redact)


@dataclass(frozen=True)
class NextCase:
    """The case pytest runs next in this process, so that its kernel can start early."""

    case: NotebookCase
    settings: RunSettings


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
    started = time.monotonic()
    redactor = Redactor.from_environ(os.environ, settings.redact)
    if not is_url(output_path):
        problem = _prepare_output(output_path)
        if problem:
            unsaved = CellFailure(FailureKind.SETUP, ename=problem[0], evalue=printable(redactor.text(problem[1])))
            return ExecutionResult(case.case_id, False, 0.0, output_path, settings.kernel, unsaved)
    template, failure = read_template(case)
    spec = _kernel_spec(settings.kernel) if failure is None else None
    if failure is None and spec is None:
        failure = _missing_kernel(settings.kernel) if settings.kernel else _no_kernel()
    if failure is not None:  # nothing ran: the template's bytes are saved, stamped with why
        failure, kernel_name, nb = _finish(
            case, output_path, failure, [], redactor, settings.kernel, template, ran=False
        )
        return ExecutionResult(case.case_id, False, time.monotonic() - started, output_path, kernel_name, failure, nb)
    watch = _Watch(settings, started, _Progress(case, template, redactor) if settings.log_output else None)
    failure, executed = _execute(case, output_path, settings, template, spec, watch, redactor, pool, next_case)
    failure, kernel_name, nb = _finish(
        case, output_path, failure, watch.running, redactor, settings.kernel, template, executed=executed
    )
    if not is_url(output_path):
        remove_link(repro_path(output_path))  # planted while the case ran
    return ExecutionResult(
        case_id=case.case_id,
        passed=failure is None,
        duration=time.monotonic() - started,
        output_path=output_path,
        kernel_name=kernel_name,
        failure=failure,
        notebook=nb,
    )


class _Watch:
    """papermill's callbacks for one run: which cell runs, the limit it was given, which one timed out."""

    def __init__(self, settings: RunSettings, started: float, progress: _Progress | None) -> None:
        self.settings = settings
        self.deadline = started + settings.timeout if settings.timeout else None
        self.progress = progress
        self.running: list[int] = []  # index (in the executed copy) of the cell that started last
        self.limits: list[tuple[FailureKind, float]] = []  # the limit the running cell was given
        self.timed_out: list[int] = []  # index of the cell that hit its limit and was interrupted

    def on_cell_start(self, cell: Any, cell_index: int) -> None:
        self.running.append(cell_index)
        if self.progress is not None:
            self.progress.started(cell, cell_index)

    def timeout_func(self, cell: Any) -> float | None:
        limits = [(FailureKind.CELL_TIMEOUT, self.settings.cell_timeout)] if self.settings.cell_timeout else []
        if self.deadline is not None:
            limits.append((FailureKind.NOTEBOOK_TIMEOUT, max(self.deadline - time.monotonic(), 0.01)))
        if not limits:
            return None
        chosen = min(limits, key=lambda pair: pair[1])
        self.limits.append(chosen)
        return chosen[1]

    def on_cell_executed(self, cell: Any, cell_index: int, execute_reply: Any) -> None:
        if self.progress is not None:
            self.progress.executed(cell)
        if execute_reply.get("content", {}).get("ename") == TIMEOUT_ENAME:
            self.timed_out.append(cell_index)

    def timeout_failure(self) -> CellFailure:
        kind = self.limits[-1][0] if self.limits else FailureKind.CELL_TIMEOUT
        limit = self.settings.timeout if kind is FailureKind.NOTEBOOK_TIMEOUT else self.settings.cell_timeout
        return CellFailure(kind, limit=limit)

    def start_timeout(self) -> int:
        """Seconds the kernel may take to get ready: a whole-notebook limit counts it too."""
        if self.deadline is None:
            return KERNEL_START_TIMEOUT
        return min(KERNEL_START_TIMEOUT, max(math.ceil(self.deadline - time.monotonic()), 1))  # whole seconds

    def never_ready(self) -> bool:
        """The whole-notebook limit ran out before any cell started: the kernel never got ready."""
        return not self.running and self.deadline is not None and time.monotonic() >= self.deadline


def _execute(
    case: NotebookCase,
    output_path: str,
    settings: RunSettings,
    template: bytes,
    spec: Any,
    watch: _Watch,
    redactor: Redactor,
    pool: KernelPool | None,
    next_case: NextCase | None,
) -> tuple[CellFailure | None, Any]:
    """Run the template's bytes through papermill in a kernel of ``pool``: what an exception out
    of it means (None: judge the notebook), and the notebook the engine left in memory (None when
    papermill stopped before its engine began)."""
    failure: CellFailure | None = None
    own_pool = pool is None
    pool = pool or KernelPool()
    manager = None
    guard = None
    try:
        manager = pool.take(settings.kernel_key(spec.name, str(case.notebook.parent)), _quiet_ipykernel(spec))
        pool.prepare(*_kernel_for(next_case))
        import papermill  # imported while both kernels boot: it can take a second

        from pytest_notebooks.run.engine import ENGINE_NAME, Guard

        guard = Guard(settings.max_cell_output, settings.max_output, redactor)
        papermill.execute_notebook(
            _notebook_node(template),  # the bytes collected, not the path: it may have changed since
            output_path,
            parameters=case.parameters,
            kernel_name=settings.kernel,
            progress_bar=False,
            cwd=str(case.notebook.parent),
            start_timeout=watch.start_timeout(),
            engine_name=ENGINE_NAME,
            source_path=str(case.notebook),  # what the saved copy's metadata names as its input
            guard=guard,
            timeout_func=watch.timeout_func,
            # On a timeout, interrupt the cell (its KeyboardInterrupt traceback shows where it
            # hung) and stop at once; the kernel then shuts down idle instead of mid-request.
            interrupt_on_timeout=True,
            error_on_timeout={"ename": TIMEOUT_ENAME, "evalue": "", "traceback": []},
            on_cell_start=watch.on_cell_start,
            on_cell_executed=watch.on_cell_executed,
            skip_cells_with_tag=SKIP_TAG,
            km=manager,
        )
    except KeyboardInterrupt:
        interrupted = CellFailure(FailureKind.INTERRUPTED)
        executed = guard.notebook if guard is not None else None
        _finish(case, output_path, interrupted, watch.running, redactor, template=template, executed=executed)
        raise
    except Exception as exc:  # noqa: BLE001 - classified below; never a plugin traceback
        timed_out = watch.timeout_failure() if watch.timed_out else None
        failure = _failure_from(exc, timed_out, watch.timeout_failure(), redactor)
        if failure is not None and watch.never_ready():
            failure = CellFailure(FailureKind.NOTEBOOK_TIMEOUT, limit=settings.timeout)
    finally:
        if manager is not None:
            pool.release(manager)
        if own_pool:
            pool.close()
    executed = guard.notebook if guard is not None else None
    if guard is not None and guard.hit is not None:  # whatever papermill made of the stopped cell
        watch.running.append(guard.hit.cell_index)
        return CellFailure(FailureKind.OUTPUT_LIMIT, limit=guard.hit.limit, scope=guard.hit.scope), executed
    return failure, executed


def _prepare_output(output_path: str) -> tuple[str, str] | None:
    """Create the output notebook's directory and remove the copy an earlier run left there, so
    that a case stopped before papermill's first save is not judged from (and saved over) the old
    run's outputs. Returns (exception name, message) when the directory cannot be made."""
    path = Path(output_path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        return type(exc).__name__, f"cannot create the output directory for {output_path}: {exc}"
    with contextlib.suppress(OSError):  # not there, or not ours to remove: papermill overwrites it
        path.unlink(missing_ok=True)
    remove_link(repro_path(output_path))
    return None


def repro_path(output_path: str) -> str:
    """Where a failure's reproduce command writes: beside the saved notebook, not over it."""
    stem = output_path[: -len(".ipynb")] if output_path.endswith(".ipynb") else output_path
    return f"{stem}.repro.ipynb"


def read_template(case: NotebookCase) -> tuple[bytes, CellFailure | None]:
    """The notebook's bytes, read once for the whole run, and the failure when they are not the
    bytes hashed at collection (None when they are, or when the case carries no hash)."""
    name = printable(case.notebook.name)
    try:
        data = case.notebook.read_bytes()
    except OSError as exc:
        problem = f"{name} cannot be read since it was collected ({exc.strerror or exc}): not run"
        return b"", CellFailure(FailureKind.NOTEBOOK_CHANGED, evalue=problem, detail=CHANGED_HINT)
    now = hashlib.sha256(data).hexdigest()
    if not case.notebook_sha256 or now == case.notebook_sha256:
        return data, None
    problem = (
        f"{name} changed on disk after it was collected (sha256 {case.notebook_sha256[:12]} at collection, "
        f"{now[:12]} now): not run"
    )
    return data, CellFailure(FailureKind.NOTEBOOK_CHANGED, evalue=problem, detail=CHANGED_HINT)


def _notebook_node(template: bytes) -> Any:
    """The notebook papermill runs, from the bytes read once (as papermill reads a path)."""
    import nbformat

    return nbformat.reads(template.decode("utf-8"), as_version=4)


def _failure_from(
    exc: Exception, timed_out: CellFailure | None, timeout: CellFailure, redactor: Redactor
) -> CellFailure | None:
    """What an exception out of papermill means for the case (None: judge the saved notebook)."""
    import papermill
    from jupyter_client.kernelspec import NoSuchKernel
    from nbclient.exceptions import CellTimeoutError, DeadKernelError

    if isinstance(exc, papermill.PapermillExecutionError):
        return timed_out  # else judged from the saved notebook, where raises-exception is honoured
    if isinstance(exc, CellTimeoutError):  # the kernel ignored the interrupt: no reply in time
        return timeout
    if isinstance(exc, DeadKernelError):
        return CellFailure(FailureKind.DEAD_KERNEL)
    if isinstance(exc, NoSuchKernel):  # checked before; a kernelspec removed in between
        return _missing_kernel(str(exc.args[0]) if exc.args else "?")
    return CellFailure(FailureKind.SETUP, ename=type(exc).__name__, evalue=printable(redactor.text(str(exc))))


def _kernel_for(next_case: NextCase | None) -> tuple[KernelKey | None, list[str]]:
    """The key and arguments of the next case's kernel; (None, []) when it cannot be known."""
    if next_case is None:
        return None, []
    spec = _kernel_spec(next_case.settings.kernel)
    if spec is None:
        return None, []
    return next_case.settings.kernel_key(spec.name, str(next_case.case.notebook.parent)), _quiet_ipykernel(spec)


def _no_kernel() -> CellFailure:
    return CellFailure(
        FailureKind.MISSING_KERNEL,
        evalue="the notebook names no kernel (metadata.kernelspec)",
        detail="set `kernel:` in the fixture file or pass --notebooks-kernel NAME (for example python3)",
    )


def _kernel_spec(name: str | None) -> Any:
    """The installed kernelspec called ``name`` (its ``name`` attribute set), or None.

    Names resolve as jupyter_client's KernelManager resolves them when papermill starts a kernel:
    ``python`` means the native kernel (``python3``), and spec directories match in any case.
    """
    from jupyter_client.kernelspec import NATIVE_KERNEL_NAME, KernelSpecManager, NoSuchKernel

    if not name:
        return None
    resolved = NATIVE_KERNEL_NAME if name == "python" else name
    try:
        spec = KernelSpecManager().get_kernel_spec(resolved)
    except NoSuchKernel:
        return None
    spec.name = resolved
    return spec


def _quiet_ipykernel(spec: Any) -> list[str]:
    """Silence ipykernel's own log (jupyter_client interrupts every kernel it shuts down, and
    ipykernel logs that as an error). Cell output is unaffected; fatal errors still reach stderr.
    Other kernels get no extra arguments."""
    argv = " ".join(getattr(spec, "argv", []) or [])
    return ["--IPKernelApp.log_level=CRITICAL"] if "ipykernel" in argv else []


def _missing_kernel(name: str) -> CellFailure:
    from jupyter_client.kernelspec import KernelSpecManager

    installed = sorted(KernelSpecManager().find_kernel_specs())
    return CellFailure(
        FailureKind.MISSING_KERNEL,
        evalue=f"no kernel named {name!r} is installed here",
        detail=(
            f"installed kernels: {', '.join(installed) or 'none'}. Pick another with --notebooks-kernel "
            "NAME or `kernel:` in the fixture file, or install it (for a Python environment: "
            f"python -m ipykernel install --user --name {name})"
        ),
    )


def _finish(
    case: NotebookCase,
    output_path: str,
    failure: CellFailure | None,
    running: list[int],
    redactor: Redactor,
    kernel_name: str | None = None,
    template: bytes = b"",
    *,
    ran: bool = True,
    executed: Any = None,
) -> tuple[CellFailure | None, str | None, dict[str, Any]]:
    """Take the notebook the run left (or the template's bytes), mask it, judge it, stamp it, save it.

    ``executed`` is the notebook papermill's engine held in memory: it is judged, never a file read
    back, which a process the notebook started could have rewritten or deleted by then (a deleted
    copy was judged as the template: a pass). The saved copy is read only when the engine never
    got so far. ``ran`` is false when papermill was never called: a file at ``output_path`` is then
    not this run's (an S3 output is not removed before the run).
    """
    try:
        nb = _copied(executed) if executed is not None else _saved_or_template(output_path if ran else None, template)
    except Exception as exc:  # noqa: BLE001 - nbformat cannot read it: nothing to save
        unread = CellFailure(
            FailureKind.SETUP,
            ename=type(exc).__name__,
            evalue=redactor.text(f"nbformat cannot read the notebook: {exc}"),
        )
        return failure or unread, kernel_name, {}
    nb.cells = [cell for cell in nb.cells if ERROR_MARKER_TAG not in cell_tags(cell)]
    if redactor:
        redactor.data(nb)
        for cell in nb.cells:
            redactor.streams(cell.get("outputs", []))
    numbering = TemplateNumbering.of(json.loads(template).get("cells", []), nb.cells)
    if failure is None:
        failure = judge(nb.cells, numbering)
    elif failure.kind not in (FailureKind.MISSING_KERNEL, FailureKind.SETUP) and running:
        index = running[-1]
        cell = nb.cells[index]
        error = next((o for o in cell.get("outputs", []) if o.get("output_type") == "error"), None)
        traceback = tuple(error.get("traceback", ())) if error else ()  # where an interrupt landed
        failure = dataclasses.replace(
            failure,
            cell_number=numbering.number(index),
            cell_id=numbering.cell_id(index),
            exec_count=cell.get("execution_count"),
            source=cell_source(cell),
            line=failing_line(traceback, cell.get("execution_count")),
            traceback=traceback,
        )
    kernel_name = kernel_name or nb.metadata.get("kernelspec", {}).get("name")
    nb.metadata["pytest_notebooks"] = {
        "case": case.case_id,
        "fixture": printable(case.fixture.name),
        "outcome": "passed" if failure is None else "failed",
        "failure": failure.to_json() if failure else None,
    }
    if failure is not None:
        _mark(nb, failure, numbering)
    try:
        _save(nb, output_path)
    except Exception as exc:  # noqa: BLE001 - any store (disk, S3) may refuse: say so, keep the verdict
        unsaved = CellFailure(
            FailureKind.SETUP,
            ename=type(exc).__name__,
            evalue=printable(redactor.text(f"could not save the output notebook: {exc}")),
        )
        return failure or unsaved, kernel_name, nb
    return failure, kernel_name, nb


def _save(nb: Any, output_path: str) -> None:
    """Write the stamped notebook: a local one as a new file renamed over ``output_path``, so that a
    link there (symbolic or hard) is replaced and never written through."""
    import nbformat
    from papermill.iorw import write_ipynb

    if is_url(output_path):
        write_ipynb(nb, output_path)
        return
    text = nbformat.writes(nb)
    try:
        data = text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate (an undecodable file name byte) left in some text
        data = text.encode("utf-8", "backslashreplace")  # JSON's own escape for it: \udcff
    remove_link(output_path)  # a symlink to a directory would make the rename fail
    atomic_write(Path(output_path), data, sync=False)


def _copied(nb: Any) -> Any:
    """A copy of the engine's notebook, upgraded as a notebook read from disk would be."""
    import nbformat

    return nbformat.v4.upgrade(nbformat.from_dict(copy.deepcopy(nb)))


def _saved_or_template(output_path: str | None, template: bytes) -> Any:
    """The notebook papermill saved at ``output_path``, else the template as papermill would have
    saved it (it stopped before saving, or never ran). A link at ``output_path`` is not read: it
    was put there after papermill's last save, and leads to some other file."""
    import nbformat
    from papermill.iorw import load_notebook_node

    if output_path is not None and not os.path.islink(output_path):
        try:
            return load_notebook_node(output_path)
        except (FileNotFoundError, OSError, ValueError):
            pass
    return nbformat.v4.upgrade(_notebook_node(template))


def _mark(nb: Any, failure: CellFailure, numbering: TemplateNumbering) -> None:
    """Put a banner at the top of the saved notebook and an anchor before the failing cell."""
    import nbformat

    style = 'style="color:red; font-size:1.5em;"'

    def marker(source: str) -> Any:
        cell = nbformat.v4.new_markdown_cell(source)
        cell.metadata["tags"] = [ERROR_MARKER_TAG]
        if nb.get("nbformat_minor", 5) < 5:
            del cell["id"]  # cell ids exist from nbformat 4.5 on; older notebooks must not have one
        return cell

    banner = marker(
        f"<span {style}>pytest-notebooks: this case failed at "
        f'<a href="#pytest-notebooks-failure">{failure.where()}</a>: {_html(failure.headline())}</span>'
    )
    if failure.cell_number is not None:
        anchor = marker(f'<span id="pytest-notebooks-failure" {style}>The case failed in the next cell.</span>')
        index = next((i for i in range(len(nb.cells)) if numbering.number(i) == failure.cell_number), None)
        if index is not None:
            nb.cells.insert(index, anchor)
    nb.cells.insert(0, banner)


def _html(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


class _Progress:
    """--notebooks-log-output: ``nb.ipynb::fr cell 4/12`` as each code cell starts, then its output,
    masked like everything else, as each cell ends (shown live with ``-s``, else on failure)."""

    def __init__(self, case: NotebookCase, template: bytes, redactor: Redactor) -> None:
        self.name = f"{case.notebook.name}::{case.case_id}"
        self.redactor = redactor
        try:
            cells = json.loads(template).get("cells", [])
        except ValueError:
            cells = []
        self.total = sum(1 for cell in cells if cell.get("cell_type") == "code") + 1  # + injected parameters
        self.count = 0

    def started(self, cell: Any, cell_index: int) -> None:
        if cell.get("cell_type") != "code":
            return
        self.count += 1
        print(f"[{self.name}] cell {self.count}/{self.total} (index {cell_index}) started", flush=True)

    def executed(self, cell: Any) -> None:
        for output in cell.get("outputs", []):
            kind = output.get("output_type")
            if kind == "stream":
                text = output.get("text", "")
            elif kind == "error":
                text = f"{output.get('ename')}: {output.get('evalue')}\n"
            else:
                text = (output.get("data") or {}).get("text/plain", "")
            text = "".join(text) if isinstance(text, list) else str(text)
            if text:
                sys.stdout.write(inert(self.redactor.text(text), colour=True))
        sys.stdout.flush()
