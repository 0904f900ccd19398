"""Country -> region enrichment."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from vidlib.data import Country, Play

UNKNOWN_REGION = "unknown"  # the region of a play whose country is not in the countries table


@dataclass(frozen=True)
class GeoPlay:
    """A play with the region (and country name) of its country."""

    play: Play
    region_code: str
    country_name: str | None


def enrich(plays: Iterable[Play], countries: Mapping[str, Country]) -> list[GeoPlay]:
    """Each play with its region; plays from unlisted countries get ``UNKNOWN_REGION``."""
    out = []
    for play in plays:
        country = countries.get(play.country_code)
        if country is None:
            out.append(GeoPlay(play, UNKNOWN_REGION, None))
        else:
            out.append(GeoPlay(play, country.region_code, country.name))
    return out


def region_counts(plays: Iterable[GeoPlay]) -> dict[str, int]:
    """Number of plays per region, largest first."""
    return dict(Counter(p.region_code for p in plays).most_common())
