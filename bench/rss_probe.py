"""A pytest plugin for bench/run.py's memory section: this process's RSS, open fds and threads.

Loaded with ``-p rss_probe`` (bench/ on PYTHONPATH). Every 10 cases, and at the end, it records
``{"cases", "rss_kb", "fds", "threads"}``; at the end of the session it writes them to
``$PN_RSS_OUT/<xdist worker id or "main">.json``.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any

import pytest

_POINTS: list[dict[str, int]] = []
_COUNT = [0]


def _sample() -> dict[str, int]:
    rss = 0
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            rss = int(line.split()[1])
    return {
        "cases": _COUNT[0],
        "rss_kb": rss,
        "fds": len(os.listdir("/proc/self/fd")),
        "threads": threading.active_count(),
    }


def pytest_runtest_logfinish(nodeid: str, location: Any) -> None:
    _COUNT[0] += 1
    if _COUNT[0] % 10 == 0:
        _POINTS.append(_sample())


def pytest_sessionfinish(session: pytest.Session) -> None:
    target = os.environ.get("PN_RSS_OUT")
    if not target or not _COUNT[0]:
        return
    _POINTS.append(_sample())
    name = os.environ.get("PYTEST_XDIST_WORKER", "main")
    Path(target, f"{name}.json").write_text(json.dumps(_POINTS))
