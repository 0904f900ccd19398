"""The demo database: a deterministic SQLite file of video plays, and readers for it.

Tables::

    plays(play_id, user_id, device_type, country_code, played_at, seconds)
    countries(country_code, region_code, name)

``played_at`` is ISO-8601 text (``2017-01-01T13:45:12``). Some plays carry a country code that
is missing from ``countries`` (``ZZ``), as real feeds do; enrichment must cope with it.
"""

from __future__ import annotations

import contextlib
import datetime
import os
import random
import re
import sqlite3
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

SEED = 42
N_PLAYS = 2000
FIRST_DAY = datetime.date(2017, 1, 1)
N_DAYS = 3
DEVICE_TYPES = ("tv", "mobile", "web", "tablet")
_DEVICE_WEIGHTS = (3, 5, 2, 1)
UNLISTED_COUNTRY = "ZZ"  # appears in plays, not in countries
_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")

StrPath = str | os.PathLike[str]


@dataclass(frozen=True)
class Country:
    """One row of ``countries``."""

    country_code: str
    region_code: str
    name: str


@dataclass(frozen=True)
class Play:
    """One row of ``plays``."""

    play_id: int
    user_id: int
    device_type: str
    country_code: str
    played_at: str
    seconds: int

    @property
    def day(self) -> str:
        """The calendar day of the play, ``YYYY-MM-DD``."""
        return self.played_at[:10]


COUNTRIES = (
    Country("FR", "fr", "France"),
    Country("MC", "fr", "Monaco"),
    Country("US", "us", "United States"),
    Country("PR", "us", "Puerto Rico"),
    Country("DE", "de", "Germany"),
    # "luna": a tiny region for fast test cases (user-assigned ISO codes, no real country).
    Country("XL", "luna", "Mare Tranquillitatis"),
    Country("XS", "luna", "Shackleton Crater"),
)
# How often each country code appears in plays; the unlisted code last.
_COUNTRY_WEIGHTS = {"FR": 30, "MC": 2, "US": 40, "PR": 3, "DE": 20, "XL": 1, "XS": 1, UNLISTED_COUNTRY: 1}

_SCHEMA = """
CREATE TABLE countries (
    country_code TEXT PRIMARY KEY,
    region_code  TEXT NOT NULL,
    name         TEXT NOT NULL
);
CREATE TABLE plays (
    play_id      INTEGER PRIMARY KEY,
    user_id      INTEGER NOT NULL,
    device_type  TEXT NOT NULL,
    country_code TEXT NOT NULL,
    played_at    TEXT NOT NULL,
    seconds      INTEGER NOT NULL
);
CREATE INDEX plays_played_at ON plays (played_at);
"""


def generate_plays(n_plays: int = N_PLAYS, seed: int = SEED) -> list[Play]:
    """``n_plays`` plays spread over ``N_DAYS`` days from ``FIRST_DAY``; the same for the same seed."""
    rng = random.Random(seed)  # noqa: S311 - demo data, not security
    codes, weights = list(_COUNTRY_WEIGHTS), list(_COUNTRY_WEIGHTS.values())
    start = datetime.datetime.combine(FIRST_DAY, datetime.time())
    plays = []
    for play_id in range(1, n_plays + 1):
        played_at = start + datetime.timedelta(seconds=rng.randrange(N_DAYS * 24 * 3600))
        plays.append(
            Play(
                play_id=play_id,
                user_id=rng.randint(1, 400),
                device_type=rng.choices(DEVICE_TYPES, _DEVICE_WEIGHTS)[0],
                country_code=rng.choices(codes, weights)[0],
                played_at=played_at.isoformat(),
                seconds=min(int(rng.expovariate(1 / 600)) + 1, 4 * 3600),
            )
        )
    return plays


def build_demo_db(path: StrPath, n_plays: int = N_PLAYS, seed: int = SEED) -> Path:
    """Write the demo database to ``path``, replacing any file there. Returns the path.

    The file is built under a temporary name and renamed into place, so notebooks running in
    parallel never open a half-written database.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.stem}-", suffix=".tmp.sqlite")
    os.close(fd)
    try:
        with contextlib.closing(sqlite3.connect(tmp)) as conn, conn:
            conn.executescript(_SCHEMA)
            conn.executemany(
                "INSERT INTO countries VALUES (?, ?, ?)",
                [(c.country_code, c.region_code, c.name) for c in COUNTRIES],
            )
            conn.executemany(
                "INSERT INTO plays VALUES (?, ?, ?, ?, ?, ?)",
                [
                    (p.play_id, p.user_id, p.device_type, p.country_code, p.played_at, p.seconds)
                    for p in generate_plays(n_plays, seed)
                ],
            )
        os.replace(tmp, target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    return target


def ensure_demo_db(path: StrPath) -> Path:
    """``path``, after building the demo database there if no file exists yet."""
    target = Path(path)
    if not target.exists():
        build_demo_db(target)
    return target


@contextlib.contextmanager
def connect(path: StrPath) -> Iterator[sqlite3.Connection]:
    """A read-only connection to an existing database (never creates an empty file)."""
    target = Path(path)
    if not target.is_file():
        raise FileNotFoundError(
            f"no database at {target}; create the demo one with vidlib.data.ensure_demo_db({str(path)!r})"
        )
    with contextlib.closing(sqlite3.connect(f"{target.resolve().as_uri()}?mode=ro", uri=True)) as conn:
        yield conn


def parse_day(run_date: str) -> datetime.date:
    """``run_date`` (``YYYY-MM-DD``) as a date; ValueError naming the bad value otherwise."""
    try:
        if not isinstance(run_date, str) or not _DAY.fullmatch(run_date):
            raise ValueError(run_date)
        return datetime.date.fromisoformat(run_date)
    except ValueError:
        raise ValueError(f"run_date must be a YYYY-MM-DD string, got {run_date!r}") from None


def load_plays(path: StrPath, run_date: str) -> list[Play]:
    """The plays of the day ``run_date`` (``YYYY-MM-DD``), in play_id order."""
    day = parse_day(run_date)
    next_day = day + datetime.timedelta(days=1)
    with connect(path) as conn:
        rows = conn.execute(
            "SELECT play_id, user_id, device_type, country_code, played_at, seconds FROM plays "
            "WHERE played_at >= ? AND played_at < ? ORDER BY play_id",
            (day.isoformat(), next_day.isoformat()),
        ).fetchall()
    return [Play(*row) for row in rows]


def load_countries(path: StrPath) -> dict[str, Country]:
    """Every country in the database, by country code."""
    with connect(path) as conn:
        rows = conn.execute("SELECT country_code, region_code, name FROM countries").fetchall()
    return {row[0]: Country(*row) for row in rows}
