"""Unit tests for vidlib: fast, on a small demo database built once per module."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from vidlib import agg, data, geo, report


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return data.build_demo_db(tmp_path_factory.mktemp("db") / "demo.sqlite")


def _rows(path: Path, table: str) -> list[tuple[object, ...]]:
    with data.connect(path) as conn:
        return conn.execute(f"SELECT * FROM {table} ORDER BY 1").fetchall()  # noqa: S608 - fixed names


def test_demo_db_is_deterministic(db: Path, tmp_path: Path) -> None:
    again = data.build_demo_db(tmp_path / "again.sqlite")
    assert _rows(again, "plays") == _rows(db, "plays")
    assert _rows(again, "countries") == _rows(db, "countries")
    assert len(_rows(db, "plays")) == data.N_PLAYS


def test_ensure_demo_db_keeps_an_existing_file(tmp_path: Path) -> None:
    path = tmp_path / "demo.sqlite"
    data.ensure_demo_db(path)
    with sqlite3.connect(path) as conn:
        conn.execute("DELETE FROM plays WHERE play_id > 10")
    data.ensure_demo_db(path)
    assert len(_rows(path, "plays")) == 10
    assert [p.name for p in tmp_path.iterdir()] == ["demo.sqlite"]  # no temporary file left


def test_load_plays_returns_one_day(db: Path) -> None:
    plays = data.load_plays(db, "2017-01-02")
    assert plays
    assert {p.day for p in plays} == {"2017-01-02"}
    assert data.load_plays(db, "2016-12-31") == []


@pytest.mark.parametrize("bad", ["2017-13-01", "20170101", "yesterday"])
def test_load_plays_rejects_a_bad_date(db: Path, bad: str) -> None:
    with pytest.raises(ValueError, match="run_date must be a YYYY-MM-DD string"):
        data.load_plays(db, bad)


def test_missing_database_is_not_created(tmp_path: Path) -> None:
    path = tmp_path / "missing.sqlite"
    with pytest.raises(FileNotFoundError, match="ensure_demo_db"):
        data.load_plays(path, "2017-01-01")
    assert not path.exists()


def test_enrich_maps_countries_to_regions() -> None:
    countries = {c.country_code: c for c in data.COUNTRIES}
    plays = [
        data.Play(1, 7, "tv", "MC", "2017-01-01T10:00:00", 60),
        data.Play(2, 7, "tv", "XS", "2017-01-01T11:00:00", 60),
        data.Play(3, 8, "web", data.UNLISTED_COUNTRY, "2017-01-01T12:00:00", 60),
    ]
    enriched = geo.enrich(plays, countries)
    assert [g.region_code for g in enriched] == ["fr", "luna", geo.UNKNOWN_REGION]
    assert enriched[2].country_name is None


def test_aggregate_by_device_sums_one_region_and_day(db: Path) -> None:
    countries = data.load_countries(db)
    plays = data.load_plays(db, "2017-01-01") + data.load_plays(db, "2017-01-02")
    enriched = geo.enrich(plays, countries)
    totals = agg.aggregate_by_device(enriched, "luna", "2017-01-01")
    in_luna = [g.play for g in enriched if g.region_code == "luna" and g.play.day == "2017-01-01"]
    assert totals, "the demo data must have luna plays on 2017-01-01"
    assert sum(t.plays for t in totals) == len(in_luna)
    assert sum(t.seconds for t in totals) == sum(p.seconds for p in in_luna)
    assert {t.device_type for t in totals} <= set(data.DEVICE_TYPES)
    assert [t.seconds for t in totals] == sorted((t.seconds for t in totals), reverse=True)
    assert agg.aggregate_by_device(enriched, "atlantis", "2017-01-01") == []


def test_csv_round_trip(tmp_path: Path) -> None:
    totals = [agg.DeviceTotals("fr", "2017-01-01", "tv", 3, 1800, 2)]
    path = report.write_csv(totals, tmp_path / "out" / report.csv_name("fr", "2017-01-01"))
    assert path.name == "vid_agg_fr_2017-01-01.csv"
    assert report.read_csv(path) == totals


def test_markdown_report() -> None:
    totals = [
        agg.DeviceTotals("fr", "2017-01-01", "tv", 3, 7200, 2),
        agg.DeviceTotals("fr", "2017-01-01", "web", 1, 1800, 1),
    ]
    text = report.markdown_report(totals, "fr", "2017-01-01")
    assert text.startswith("# Video plays in fr, 2017-01-01")
    assert "| tv | 3 | 2.0 | 2 |" in text
    assert "**Total:** 4 plays, 2.5 hours watched." in text
    assert "_No plays._" in report.markdown_report([], "fr", "2017-01-01")
