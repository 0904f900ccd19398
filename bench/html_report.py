"""How long the HTML report of a large session takes to build and to open in Chromium.

    .venv/bin/python bench/html_report.py [--cases 200] [--failing 20] [--rounds 3]

Builds a results document of N cases (F of them failing, each with a real executed notebook of a
failing case, rendered by nbconvert), renders the report, then loads it with headless Chromium
(`--dump-dom`) and compares with loading an empty page in the same run: the difference is what
the report costs the browser. Prints medians; numbers move with the machine's load.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pytest_notebooks.review.html import render_html  # noqa: E402
from tests.notebooks import PARAMS, write_notebook  # noqa: E402

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--dump-dom",
]


def failing_notebook(work: Path) -> Path:
    """One real executed notebook of a failing case, made by the plugin."""
    write_notebook(work / "nb.ipynb", [PARAMS, "x = list(range(50))\nprint(x)", "assert region_code != 'us', 'no'"])
    (work / "nb.yaml").write_text("cases:\n  us: {region_code: us}\n")
    subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist"],
        cwd=work,
        capture_output=True,
        check=False,
    )
    return work / "notebook-outputs" / "nb" / "us.ipynb"


def document(cases: int, failing: int, executed: Path) -> dict[str, object]:
    records = []
    for index in range(cases):
        failed = index < failing
        records.append(
            {
                "nodeid": f"notebooks/nb_{index:04d}.ipynb::fr",
                "notebook": f"notebooks/nb_{index:04d}.ipynb",
                "case": "fr",
                "outcome": "failed" if failed else "passed",
                "duration": 1.5,
                "output": str(executed) if failed else f"notebook-outputs/notebooks/nb_{index:04d}/fr.ipynb",
                "failure": {"kind": "error", "cell": 3, "summary": "cell 3 (In [4]): AssertionError: no"}
                if failed
                else None,
            }
        )
    return {
        "git": {"commit": "0" * 40, "dirty": False, "branch": "main"},
        "session": {"state": "completed"},
        "created": "now",
        "cases": records,
        "notebooks": [],
    }


def load(browser: str, url: str, profile: Path) -> float:
    started = time.perf_counter()
    subprocess.run([browser, *FLAGS, f"--user-data-dir={profile}", url], capture_output=True, check=True, timeout=120)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=200)
    parser.add_argument("--failing", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        sys.exit("chromium is not installed (apt-get install -y chromium)")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        executed = failing_notebook(work)
        started = time.perf_counter()
        page = render_html(document(args.cases, args.failing, executed), work)
        build = time.perf_counter() - started
        report, empty = work / "report.html", work / "empty.html"
        report.write_text(page)
        empty.write_text("<!doctype html><title>empty</title>")
        pairs = []
        for round_ in range(args.rounds):
            order = [(report, "report"), (empty, "empty")][:: 1 if round_ % 2 == 0 else -1]
            times = {name: load(browser, path.as_uri(), work / f"profile-{round_}-{name}") for path, name in order}
            pairs.append((times["report"], times["empty"]))
        report_s = statistics.median(p[0] for p in pairs)
        empty_s = statistics.median(p[1] for p in pairs)
        print(f"{args.cases} cases, {args.failing} failing rendered: built in {build:.2f} s, {len(page) / 1e6:.2f} MB")
        print(
            f"chromium --dump-dom: report {report_s:.2f} s, empty page {empty_s:.2f} s "
            f"(the report's own cost: {report_s - empty_s:+.2f} s), median of {args.rounds}"
        )


if __name__ == "__main__":
    main()
