"""vidlib: the library behind the video-plays notebooks (standard library only).

data.py    the demo SQLite database and readers for it    -> Play, Country
geo.py     country -> region enrichment                   -> GeoPlay
agg.py     totals by device type for a region and a day   -> DeviceTotals
report.py  CSV and markdown output
"""

__version__ = "0.1.0"
