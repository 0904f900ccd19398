"""Device totals -> a CSV file or a markdown report."""

from __future__ import annotations

import csv
import dataclasses
import os
from collections.abc import Sequence
from pathlib import Path

from vidlib.agg import DeviceTotals

CSV_COLUMNS = tuple(f.name for f in dataclasses.fields(DeviceTotals))


def csv_name(region_code: str, run_date: str) -> str:
    """The file name of one region's and day's totals: ``vid_agg_fr_2017-01-01.csv``."""
    return f"vid_agg_{region_code}_{run_date}.csv"


def write_csv(totals: Sequence[DeviceTotals], path: str | os.PathLike[str]) -> Path:
    """Write ``totals`` with a header row, creating the directory. Returns the path."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    with target.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=CSV_COLUMNS)
        writer.writeheader()
        writer.writerows(dataclasses.asdict(t) for t in totals)
    return target


def read_csv(path: str | os.PathLike[str]) -> list[DeviceTotals]:
    """The totals in a file written by ``write_csv``."""
    with Path(path).open(newline="", encoding="utf-8") as handle:
        return [
            DeviceTotals(
                region_code=row["region_code"],
                run_date=row["run_date"],
                device_type=row["device_type"],
                plays=int(row["plays"]),
                seconds=int(row["seconds"]),
                users=int(row["users"]),
            )
            for row in csv.DictReader(handle)
        ]


def markdown_report(totals: Sequence[DeviceTotals], region_code: str, run_date: str) -> str:
    """A short markdown report: a title, a table per device type, and a total line."""
    lines = [f"# Video plays in {region_code}, {run_date}", ""]
    if not totals:
        return "\n".join([*lines, "_No plays._", ""])
    lines += ["| device | plays | hours watched | users |", "|---|---:|---:|---:|"]
    lines += [f"| {t.device_type} | {t.plays} | {t.seconds / 3600:.1f} | {t.users} |" for t in totals]
    plays, seconds = sum(t.plays for t in totals), sum(t.seconds for t in totals)
    lines += ["", f"**Total:** {plays} plays, {seconds / 3600:.1f} hours watched.", ""]
    return "\n".join(lines)
