# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Share of watch time by device type
#
# A text notebook (Jupytext py:percent): reviewed as a text diff, tested and promoted like the others.

# %%
# Notebooks run with cwd = notebooks/; make the repository's library importable.
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path.cwd().parent / "lib"))

# %% tags=["parameters"]
region_code = "fr"
run_date = "2017-01-01"
db_path = "demo.sqlite"

# %%
from vidlib import agg, data, geo  # noqa: E402 - after the path is set, as in a notebook

db = data.ensure_demo_db(db_path)
enriched = geo.enrich(data.load_plays(db, run_date), data.load_countries(db))
totals = agg.aggregate_by_device(enriched, region_code, run_date)
assert totals, f"no plays in region {region_code!r} on {run_date}"

# %%
watched = sum(row.seconds for row in totals)
for row in totals:
    print(f"{row.device_type:>8} {row.seconds / watched:6.1%} of {watched} s watched")
