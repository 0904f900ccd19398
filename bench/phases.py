"""Where a case's time goes: run pytest in-process with timing wrappers, print per-case phases.

    python bench/phases.py ours   CORPUS_DIR [pytest args...]
    python bench/phases.py nbmake CORPUS_DIR [pytest args...]

Serial only. The wrappers time the library calls both tools make (nbclient, jupyter_client,
papermill); nothing in the plugin is changed. The heavy libraries are imported before pytest
starts, so per-case figures exclude import time (``bench/run.py`` measures imports). Every phase
is wall time summed per case; the table shows the median over the cases, its share of the
median case total, and the mean, min and max (the mean shows rare stalls the median hides).
With ``-v`` (passed on to pytest too) it also prints every case's phases in run order.
"""

from __future__ import annotations

import asyncio
import functools
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

_TIMES: dict[str, list[float]] = defaultdict(list)  # phase -> one entry per call
_CASES: list[dict[str, float]] = []
_current: dict[str, float] = defaultdict(float)


def _add(phase: str, seconds: float) -> None:
    _current[phase] += seconds
    _TIMES[phase].append(seconds)


def _wrap(owner: Any, attr: str, phase: str) -> None:
    """Replace ``owner.attr`` (sync or async) by a version that adds its wall time to ``phase``."""
    original = getattr(owner, attr)
    if asyncio.iscoroutinefunction(original):

        @functools.wraps(original)
        async def timed_async(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return await original(*args, **kwargs)
            finally:
                _add(phase, time.perf_counter() - start)

        setattr(owner, attr, timed_async)
    else:

        @functools.wraps(original)
        def timed(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                _add(phase, time.perf_counter() - start)

        setattr(owner, attr, timed)


def _instrument(tool: str) -> None:
    # TID251: this harness times the libraries themselves, from outside the plugin.
    import jupyter_client.asynchronous.client as ac  # noqa: TID251
    import jupyter_client.manager as jm  # noqa: TID251
    import nbclient.client as nc  # noqa: TID251
    import nbformat  # noqa: TID251

    _wrap(jm.AsyncKernelManager, "start_kernel", "kernel start (spawn)")
    _wrap(ac.AsyncKernelClient, "wait_for_ready", "kernel wait_for_ready")
    if tool == "ours":  # its client waits for the kernel without jupyter_client's fixed 0.2 s pause
        from pytest_notebooks.run import clients, kernels

        _wrap(clients.QuickReadyClient, "wait_for_ready", "kernel wait_for_ready")
        _wrap(kernels.KernelPool, "take", "ours: KernelPool.take (start or take the kernel)")
        _wrap(kernels.KernelPool, "prepare", "ours: KernelPool.prepare (start the next one)")
    # nbclient binds its sync wrappers (used by papermill) at class creation: wrap both paths.
    _wrap(nc.NotebookClient, "async_execute_cell", "cells (execute)")
    _wrap(nc.NotebookClient, "execute_cell", "cells (execute)")
    _wrap(nc.NotebookClient, "_async_cleanup_kernel", "kernel shutdown (graceful)")
    _wrap(nc.NotebookClient, "_cleanup_kernel", "kernel shutdown (graceful)")
    _wrap(jm.AsyncKernelManager, "shutdown_kernel", "  of which km.shutdown_kernel")
    if tool == "ours":
        import papermill  # noqa: TID251
        import papermill.engines as pe  # noqa: TID251
        import papermill.execute as px  # noqa: TID251

        import pytest_notebooks.run.execute as ours
        from pytest_notebooks.run.kernelspec import KernelChoice

        _wrap(pe, "write_ipynb", "papermill saves during run")
        _wrap(px, "load_notebook_node", "papermill load + parameterize")
        _wrap(px, "parameterize_notebook", "papermill load + parameterize")
        _wrap(papermill, "execute_notebook", "papermill.execute_notebook")
        _wrap(ours, "conclude", "ours: conclude (mask, judge, stamp, save)")
        _wrap(KernelChoice, "find", "ours: kernelspec lookup")
        _wrap(ours, "run_case", "ours: run_case")
    else:
        import nbmake.nb_run as nr

        _wrap(nr.NotebookRun, "execute", "nbmake: NotebookRun.execute")
        _wrap(nbformat, "read", "nbformat.read")


class _PerCase:
    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_protocol(self, item: pytest.Item) -> Any:
        _current.clear()
        start = time.perf_counter()
        result = yield
        _current["pytest item total (setup+call+teardown+report)"] = time.perf_counter() - start
        _CASES.append(dict(_current))
        return result


def main() -> int:
    tool, corpus, *extra = sys.argv[1:]
    _instrument(tool)
    args = ["-p", "no:cacheprovider", "-q", *extra]
    if tool == "ours":
        args += ["-p", "no:nbmake", "--notebooks-output-dir", str(Path(corpus).parent / "out-phases")]
    else:
        args += ["--nbmake", "-p", "no:notebooks"]
    started = time.perf_counter()
    rc = pytest.main([*args, corpus], plugins=[_PerCase()])
    session = time.perf_counter() - started
    phases: list[str] = []
    for case in _CASES:
        phases += [p for p in case if p not in phases]
    total = statistics.median(c["pytest item total (setup+call+teardown+report)"] for c in _CASES)
    print(f"\n{tool}: {len(_CASES)} cases, session {session:.2f} s (libraries pre-imported)")
    print(f"{'phase':<48} {'median s/case':>14} {'share':>7} {'mean':>7} {'min':>7} {'max':>7}")
    for phase in sorted(phases, key=lambda p: -statistics.median(c.get(p, 0.0) for c in _CASES)):
        values = [c.get(phase, 0.0) for c in _CASES]
        median = statistics.median(values)
        calls = len(_TIMES.get(phase, [])) / max(len(_CASES), 1)
        shown = f"{phase} (x{calls:.0f})" if calls > 1.5 else phase
        print(
            f"{shown:<48} {median:14.3f} {median / total:7.1%} {statistics.mean(values):7.3f} "
            f"{min(values):7.3f} {max(values):7.3f}"
        )
    if "-v" in extra:
        print("\nper case (in run order):")
        for number, case in enumerate(_CASES, start=1):
            print(f"  {number:3d} " + ", ".join(f"{p.strip()} {v:.3f}" for p, v in case.items()))
    return int(rc)


if __name__ == "__main__":
    sys.exit(main())
