"""Totals by device type for one region and one day."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from vidlib.data import parse_day
from vidlib.geo import GeoPlay


@dataclass(frozen=True)
class DeviceTotals:
    """Plays, seconds watched and distinct users of one device type in a region on a day."""

    region_code: str
    run_date: str
    device_type: str
    plays: int
    seconds: int
    users: int


def aggregate_by_device(plays: Iterable[GeoPlay], region_code: str, run_date: str) -> list[DeviceTotals]:
    """Totals per device type of the plays in ``region_code`` on ``run_date``, most watched first."""
    day = parse_day(run_date).isoformat()
    counts: dict[str, int] = {}
    seconds: dict[str, int] = {}
    users: dict[str, set[int]] = {}
    for geo in plays:
        play = geo.play
        if geo.region_code != region_code or play.day != day:
            continue
        counts[play.device_type] = counts.get(play.device_type, 0) + 1
        seconds[play.device_type] = seconds.get(play.device_type, 0) + play.seconds
        users.setdefault(play.device_type, set()).add(play.user_id)
    totals = [
        DeviceTotals(region_code, day, device, counts[device], seconds[device], len(users[device])) for device in counts
    ]
    return sorted(totals, key=lambda t: (-t.seconds, t.device_type))
