"""Deterministic shards (``--notebooks-shard I/N``). Pure, no pytest.

With recorded durations, cases are dealt longest first to the least-loaded shard; without, by a
stable hash of the node id. Either way every case lands in exactly one shard, the same on every
machine and xdist worker. (Selection by change is cases/selection.py: it decides before collection.)
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence

from pytest_notebooks.results.record import Outcome, ResultsDocument


def _stable_hash(nodeid: str) -> int:
    return int.from_bytes(hashlib.sha256(nodeid.encode()).digest()[:8], "big")


def assign_shards(nodeids: Sequence[str], total: int, durations: Mapping[str, float] | None = None) -> dict[str, int]:
    """Node id -> shard (1-based) for every id; deterministic for the same ids and durations."""
    if not durations:
        return {nodeid: _stable_hash(nodeid) % total + 1 for nodeid in nodeids}
    known = sorted(durations[n] for n in nodeids if n in durations)
    default = known[len(known) // 2] if known else 1.0
    loads = [0.0] * total
    out: dict[str, int] = {}
    for nodeid in sorted(nodeids, key=lambda n: (-durations.get(n, default), n)):
        shard = min(range(total), key=lambda i: (loads[i], i))
        loads[shard] += durations.get(nodeid, default)
        out[nodeid] = shard + 1
    return out


def durations_from_results(document: ResultsDocument) -> dict[str, float]:
    """Node id -> seconds from a results file, for balancing shards by time (``not run``: none to learn from)."""
    return {case.nodeid: case.duration for case in document.cases if case.outcome is not Outcome.NOT_RUN}
