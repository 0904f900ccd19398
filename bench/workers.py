"""xdist workers against a serial run on small notebooks, and where each worker's start-up goes.

    python bench/workers.py                      # 40 notebooks x 5 cells, serial and -n 2, 5 rounds
    python bench/workers.py --workers 0,2,4 --rounds 7 --probe
    python bench/workers.py --source before=/tmp/old --source after=.   # two copies of the plugin

Runs ``python -m pytest -p no:cacheprovider -q -p no:nbmake [-n N] nb`` in a temp dir holding
bench/corpus.py's corpus, every command once a round, in alternating order (A B C, then C B A),
and prints each command's median wall and CPU time (the process and all it waited for: workers,
kernels, templates), and the wall ratio of each ``-n N`` run to the serial run of the same round.
``-p no:nbmake``: nbmake, when installed, imports nbformat (so jsonschema and rfc3987_syntax)
as its plugin loads, in every pytest process, before this plugin can defer rfc3987_syntax: that
is nbmake's cost, not this plugin's (``--with-nbmake`` measures it anyway).

``--source NAME=DIR`` (repeatable) runs every command once per source, with DIR first on
PYTHONPATH (a copy of the repository: its ``pytest_notebooks`` is the one imported, in pytest,
its workers and its kernel templates), and prints the ratio of each source to the first.

``--probe`` loads bench/worker_probe.py into every run and prints, per command and process
(serial, controller, worker), the median time at which it reached each phase: wall seconds since
the controller started / the process's own CPU seconds.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
from corpus import make_corpus  # noqa: E402 - bench/ is not a package: run as a script

PHASES = (
    "start",
    "imported",
    "configure",
    "collected",
    "first_setup",
    "first_teardown",
    "sessionfinish",
    "unconfigure",
)


@dataclass
class Command:
    source: str  # the --source name ("" without --source)
    workers: int  # -n, 0 for serial
    argv: list[str]
    pythonpath: str | None
    samples: list[tuple[float, float]] = field(default_factory=list)  # (wall, CPU) per round
    phases: dict[str, dict[str, list[tuple[float, float]]]] = field(
        default_factory=lambda: defaultdict(lambda: defaultdict(list))
    )  # process kind -> phase -> (wall, CPU) per round

    @property
    def name(self) -> str:
        run = "serial" if not self.workers else f"-n {self.workers}"
        return f"{self.source}: {run}" if self.source else run


def pytest_argv(workers: int, nbmake: bool, probe: bool) -> list[str]:
    argv = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q"]
    if not nbmake:
        argv += ["-p", "no:nbmake"]
    if probe:
        argv += ["-p", "worker_probe"]
    if workers:
        argv += ["-n", str(workers)]
    return [*argv, "nb"]


def run(command: Command, cwd: Path, expect: int, probe: Path | None) -> None:
    """One run: its wall and CPU time (RUSAGE_CHILDREN, so one run at a time) and, with the probe,
    where each of its processes got when."""
    env = dict(os.environ)
    path = [command.pythonpath, str(BENCH) if probe else None, env.get("PYTHONPATH")]
    env["PYTHONPATH"] = os.pathsep.join(p for p in path if p)
    if probe is not None:
        env["PN_WORKER_PROBE"] = str(probe)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(command.argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=900, check=False)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    last = (done.stdout.strip().splitlines() or [""])[-1]
    if done.returncode != 0 or f"{expect} passed" not in last:
        shown = shlex.join(command.argv)
        sys.exit(f"unexpected outcome ({done.returncode}): {shown}\n{done.stdout[-3000:]}{done.stderr[-3000:]}")
    command.samples.append((wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)))
    if probe is not None:
        for kind, marks in read_probe(probe, bool(command.workers)).items():
            for phase, value in marks.items():
                command.phases[kind][phase].append(value)


def read_probe(probe: Path, distributed: bool) -> dict[str, dict[str, tuple[float, float]]]:
    """Per process kind (serial; controller; worker, each worker a sample): phase -> (wall s since
    the controller started, the process's own CPU s). Removes the files read."""
    records = []
    for path in probe.glob("*.json"):
        records.append(json.loads(path.read_text()))
        path.unlink()
    main = next(r for r in records if r["worker"] == "main")
    zero = main["marks"]["start"][0]
    found: dict[str, dict[str, tuple[float, float]]] = {}
    for record in records:
        kind = ("controller" if record["worker"] == "main" else "worker") if distributed else "serial"
        marks = {name: (wall - zero, cpu) for name, (wall, cpu) in record["marks"].items()}
        marks["end"] = (marks["unconfigure"][0], record["cpu"])
        key = kind if kind != "worker" else f"worker {record['worker']}"
        found[key] = marks
    return found


def spread(values: list[float]) -> str:
    return f"{statistics.median(values):.2f} [{min(values):.2f}-{max(values):.2f}]"


def load() -> str:
    return "/".join(f"{x:.1f}" for x in os.getloadavg())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", "--notebooks", type=int, default=40)
    parser.add_argument("-k", "--cells", type=int, default=5, help="work cells per notebook (default 5)")
    parser.add_argument("--workers", default="0,2", help="comma-separated -n values, 0 for serial (default 0,2)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--probe", action="store_true", help="print where each process's start-up goes")
    parser.add_argument("--with-nbmake", action="store_true", help="leave nbmake's plugin loaded (if installed)")
    parser.add_argument("--source", action="append", default=[], metavar="NAME=DIR", help="a copy of the plugin")
    args = parser.parse_args()
    counts = [int(n) for n in args.workers.split(",")]
    sources = [tuple(s.split("=", 1)) for s in args.source] or [("", None)]
    commands = [
        Command(name, n, pytest_argv(n, args.with_nbmake, args.probe), str(Path(d).resolve()) if d else None)
        for name, d in sources
        for n in counts
    ]

    with tempfile.TemporaryDirectory(prefix="pn-workers-") as temp:
        base = Path(temp)
        make_corpus(base / "nb", args.notebooks, args.cells)
        probe = base / "probe" if args.probe else None
        if probe is not None:
            probe.mkdir()
        for command in commands:
            path = f"PYTHONPATH={command.pythonpath} " if command.pythonpath else ""
            print(f"  {command.name:<16} {path}{shlex.join(command.argv)}", flush=True)
        print(f"  {os.cpu_count()} cores; {args.notebooks} notebooks x {args.cells} cells; load before {load()}")
        for command in commands:  # warm-up: page cache, template and kernel paths; not counted
            run(command, base, args.notebooks, probe)
            command.samples.clear()
            command.phases.clear()
        for r in range(args.rounds):
            order = commands if r % 2 == 0 else commands[::-1]
            for command in order:
                run(command, base, args.notebooks, probe)
            walls = ", ".join(f"{c.name} {c.samples[-1][0]:.2f}s" for c in commands)
            print(f"  round {r + 1}/{args.rounds}: {walls}  (load {load()})", flush=True)

    print("\n| command | wall s: median [min-max] | CPU s: median | wall / serial, paired: median [min-max] |")
    print("| --- | --: | --: | --: |")
    for command in commands:
        serial = next((c for c in commands if c.source == command.source and c.workers == 0), None)
        ratio = "-"
        if serial is not None and command.workers:
            ratio = spread([w / s for (w, _), (s, _) in zip(command.samples, serial.samples, strict=True)])
        cpu = statistics.median(c for _, c in command.samples)
        print(f"| {command.name} | {spread([w for w, _ in command.samples])} | {cpu:.2f} | {ratio} |")
    if len(sources) > 1:
        print(f"\n| command | wall / {sources[0][0]}, paired | CPU / {sources[0][0]}, paired |")
        print("| --- | --: | --: |")
        for command in commands[len(counts) :]:
            first = commands[counts.index(command.workers)]
            pairs = list(zip(command.samples, first.samples, strict=True))
            cpu = statistics.median(c / f for (_, c), (_, f) in pairs)
            print(f"| {command.name} | {spread([w / f for (w, _), (f, _) in pairs])} | {cpu:.3f} |")
    if args.probe:
        print("\nphase reached: median wall s since the controller started / the process's own CPU s")
        print("\n| command, process | " + " | ".join(PHASES) + " | end |")
        print("| --- |" + " --: |" * (len(PHASES) + 1))
        for command in commands:
            kinds: dict[str, dict[str, list[tuple[float, float]]]] = defaultdict(lambda: defaultdict(list))
            for kind, marks in command.phases.items():  # the workers as one kind
                for phase, values in marks.items():
                    kinds[kind.split(" ")[0]][phase].extend(values)
            for kind, marks in kinds.items():
                cells = [
                    "-"
                    if not marks.get(phase)
                    else f"{statistics.median(v[0] for v in marks[phase]):.2f} / "
                    f"{statistics.median(v[1] for v in marks[phase]):.2f}"
                    for phase in (*PHASES, "end")
                ]
                print(f"| {command.name}, {kind} | " + " | ".join(cells) + " |")
    print(f"\nload after: {load()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
