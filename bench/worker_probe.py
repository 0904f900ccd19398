"""A pytest plugin for bench/workers.py: when each pytest process (controller, xdist worker) got where.

Loaded with ``-p worker_probe`` (bench/ on PYTHONPATH), which pytest imports before the installed
plugins. Each process records, as wall-clock time and its own CPU time: its start (from
/proc/self/stat, 10 ms ticks), the probe's import, ``pytest_configure``, ``pytest_sessionstart``,
the end of collection, the first case's setup and teardown, the end of the session and of
``pytest_unconfigure``; then its CPU and its reaped children's CPU (kernels and the template). It
writes them to ``$PN_WORKER_PROBE/<xdist worker id or "main">-<pid>.json``.
"""

from __future__ import annotations

import json
import os
import resource
import time
from pathlib import Path
from typing import Any

import pytest


def _process_start() -> float:
    """This process's start as a wall-clock time (the kernel counts it in ticks since boot)."""
    fields = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()
    ticks = int(fields[19])  # field 22, starttime; fields[0] is field 3
    uptime = float(Path("/proc/uptime").read_text().split()[0])
    return time.time() - (uptime - ticks / os.sysconf("SC_CLK_TCK"))


def _cpu() -> float:
    times = os.times()
    return times.user + times.system


_START = _process_start()
_MARKS: dict[str, tuple[float, float]] = {"start": (_START, 0.0), "imported": (time.time(), _cpu())}


def _mark(name: str) -> None:
    _MARKS.setdefault(name, (time.time(), _cpu()))


def pytest_configure(config: pytest.Config) -> None:
    _mark("configure")


def pytest_sessionstart(session: pytest.Session) -> None:
    _mark("sessionstart")


def pytest_collection_finish(session: pytest.Session) -> None:
    _mark("collected")


def pytest_runtest_setup(item: pytest.Item) -> None:
    _mark("first_setup")


def pytest_runtest_teardown(item: pytest.Item) -> None:
    _mark("first_teardown")


def pytest_sessionfinish(session: pytest.Session) -> None:
    _mark("sessionfinish")


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    _mark("unconfigure")
    out = os.environ.get("PN_WORKER_PROBE")
    if not out:
        return
    worker: Any = getattr(config, "workerinput", {}).get("workerid", "main")
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    record = {
        "worker": worker,
        "marks": _MARKS,
        "cpu": _cpu(),
        "children_cpu": children.ru_utime + children.ru_stime,
    }
    Path(out, f"{worker}-{os.getpid()}.json").write_text(json.dumps(record))
