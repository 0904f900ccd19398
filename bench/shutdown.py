"""Kernel shutdown, graceful against immediate, through papermill as the plugin calls it.

    python bench/shutdown.py [-n 40]

Runs ``papermill.execute_notebook`` on N corpus notebooks in one process, alternating
``shutdown_kernel="graceful"`` (nbclient's default, what the plugin and nbmake use today) and
``"immediate"`` notebook by notebook, and prints the mean, median and max wall time per
notebook and how many took over 2 s. A graceful shutdown interrupts the kernel, asks it to
exit, polls every 0.1 s and sends SIGTERM after ``shutdown_wait_time / 2`` = 2.5 s when it has
not exited; ``immediate`` kills it at once (the notebook's atexit hooks do not run).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from corpus import FIXTURE_PARAMETERS, make_corpus  # bench/ is not a package: run as a script


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--notebooks", type=int, default=40, help="notebooks per mode (default 40)")
    args = parser.parse_args()
    import papermill  # noqa: TID251 - a measurement of papermill itself, outside the plugin

    with tempfile.TemporaryDirectory(prefix="pytest-notebooks-shutdown-") as tmp:
        paths = make_corpus(Path(tmp, "c"), args.notebooks, 5)
        times: dict[str, list[float]] = {"graceful": [], "immediate": []}
        for index, path in enumerate(paths):
            modes = ("graceful", "immediate") if index % 2 == 0 else ("immediate", "graceful")
            for mode in modes:
                start = time.perf_counter()
                papermill.execute_notebook(
                    str(path),
                    str(Path(tmp, f"out-{mode}.ipynb")),
                    parameters=FIXTURE_PARAMETERS,
                    progress_bar=False,
                    shutdown_kernel=mode,
                )
                times[mode].append(time.perf_counter() - start)
        print(f"{'shutdown':<10} {'mean s':>7} {'median s':>9} {'max s':>6} {'over 2 s':>9}  ({args.notebooks} each)")
        for mode, values in times.items():
            slow = sum(v > 2 for v in values)
            print(
                f"{mode:<10} {statistics.mean(values):7.3f} {statistics.median(values):9.3f} "
                f"{max(values):6.2f} {slow:9d}"
            )
        ratio = statistics.mean(times["immediate"]) / statistics.mean(times["graceful"])
        print(f"mean immediate / graceful: {ratio:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
