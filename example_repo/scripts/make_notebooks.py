"""(Re)generate the example notebooks in ../notebooks from the sources below.

    python scripts/make_notebooks.py          write every notebook
    python scripts/make_notebooks.py --check  exit 1 if a committed notebook differs

The notebooks are short and linear: a title, a cell that puts ``lib/`` on ``sys.path`` (they run
with the notebooks/ directory as the working directory), the ``parameters`` cell papermill
replaces, then the steps. Cell ids are fixed so regenerating gives the same bytes, and no outputs
are stored. The fixture YAML beside each notebook is written by hand, not by this script.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from textwrap import dedent
from typing import Any

import nbformat  # noqa: TID251 - the example repo builds its notebooks with nbformat

NOTEBOOKS_DIR = Path(__file__).resolve().parent.parent / "notebooks"
KERNELSPEC = {"name": "python3", "display_name": "Python 3", "language": "python"}

LIB_PATH = """
# Notebooks run with cwd = notebooks/; make the repository's library importable.
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path.cwd().parent / "lib"))
"""

# name -> (title markdown, parameters cell, step cells)
NOTEBOOKS: dict[str, tuple[str, str, list[str]]] = {
    "collect_plays": (
        """
        # Collect plays

        Count the plays of one day in the plays database. The demo database is created on first use.
        """,
        """
        db_path = "demo.sqlite"
        run_date = "2017-01-01"
        """,
        [
            """
            from vidlib import data

            db = data.ensure_demo_db(db_path)
            plays = data.load_plays(db, run_date)
            print(f"{len(plays)} plays on {run_date} in {db}")
            """,
            """
            from collections import Counter

            assert plays, f"no plays on {run_date} in {db}"
            Counter(play.device_type for play in plays).most_common()
            """,
        ],
    ),
    "enrich_geo": (
        """
        # Enrich plays with geography

        Join each play's country to its region; plays from countries missing from the `countries`
        table land in the `unknown` region, which must stay rare.
        """,
        """
        db_path = "demo.sqlite"
        run_date = "2017-01-01"
        """,
        [
            """
            from vidlib import data, geo

            db = data.ensure_demo_db(db_path)
            enriched = geo.enrich(data.load_plays(db, run_date), data.load_countries(db))
            counts = geo.region_counts(enriched)
            counts
            """,
            """
            unknown_share = counts.get(geo.UNKNOWN_REGION, 0) / max(len(enriched), 1)
            print(f"{len(enriched)} plays, {unknown_share:.1%} from unknown countries")
            assert enriched, f"no plays on {run_date}"
            assert unknown_share < 0.05, f"{unknown_share:.1%} of plays have no region"
            """,
        ],
    ),
    "vid_agg": (
        """
        # Aggregate plays by device type

        Seconds watched, plays and distinct users per device type for one region and one day,
        written as a CSV file into `output_dir`.
        """,
        """
        region_code = "fr"
        run_date = "2017-01-01"
        db_path = "demo.sqlite"
        output_dir = "agg-output"
        """,
        [
            """
            from vidlib import agg, data, geo, report

            db = data.ensure_demo_db(db_path)
            enriched = geo.enrich(data.load_plays(db, run_date), data.load_countries(db))
            totals = agg.aggregate_by_device(enriched, region_code, run_date)
            assert totals, f"no plays in region {region_code!r} on {run_date}"
            """,
            """
            csv_path = report.write_csv(
                totals, pathlib.Path(output_dir) / report.csv_name(region_code, run_date)
            )
            print(f"wrote {len(totals)} device types to {csv_path}")
            for row in totals:
                print(f"{row.device_type:>8} {row.plays:>5} plays {row.seconds:>8} s {row.users:>4} users")
            """,
        ],
    ),
    "report": (
        """
        # Report

        A short markdown report of one region's day, by device type.
        """,
        """
        region_code = "fr"
        run_date = "2017-01-01"
        db_path = "demo.sqlite"
        """,
        [
            """
            from vidlib import agg, data, geo, report

            db = data.ensure_demo_db(db_path)
            enriched = geo.enrich(data.load_plays(db, run_date), data.load_countries(db))
            totals = agg.aggregate_by_device(enriched, region_code, run_date)
            """,
            """
            text = report.markdown_report(totals, region_code, run_date)
            print(text)
            """,
        ],
    ),
}


def _source(text: str) -> str:
    return dedent(text).strip("\n")


def build(name: str) -> Any:
    """The notebook ``name`` as an nbformat node."""
    title, parameters, steps = NOTEBOOKS[name]
    cells = [
        nbformat.v4.new_markdown_cell(_source(title), id=f"{name}-title"),
        nbformat.v4.new_code_cell(_source(LIB_PATH), id=f"{name}-lib-path"),
        nbformat.v4.new_code_cell(_source(parameters), id=f"{name}-parameters", metadata={"tags": ["parameters"]}),
    ]
    cells += [
        nbformat.v4.new_code_cell(_source(step), id=f"{name}-step-{number}")
        for number, step in enumerate(steps, start=1)
    ]
    nb = nbformat.v4.new_notebook(
        cells=cells,
        metadata={"kernelspec": dict(KERNELSPEC), "language_info": {"name": "python"}},
    )
    nbformat.validate(nb)
    return nb


def render(name: str) -> str:
    """The .ipynb text of notebook ``name``."""
    text: str = nbformat.writes(build(name))
    return text if text.endswith("\n") else text + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="report stale notebooks, write nothing")
    args = parser.parse_args(argv)
    stale = []
    for name in NOTEBOOKS:
        path = NOTEBOOKS_DIR / f"{name}.ipynb"
        text = render(name)
        current = path.read_text(encoding="utf-8") if path.exists() else None
        if current == text:
            continue
        if args.check:
            stale.append(path)
        else:
            path.write_text(text, encoding="utf-8")
            print(f"wrote {path.relative_to(NOTEBOOKS_DIR.parent)}")
    for path in stale:
        print(f"stale: {path.relative_to(NOTEBOOKS_DIR.parent)} (run scripts/make_notebooks.py)")
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
