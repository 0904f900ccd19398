"""Benchmark pytest-notebooks against nbmake and a plain papermill CLI loop, side by side.

    python bench/run.py            # full: 40 notebooks x 3 rounds, 5,000-notebook collection, ...
    python bench/run.py --quick    # a couple of minutes: smaller corpora, fewer rounds

Run it with the interpreter of the venv under test (pytest, pytest-xdist, papermill, ipykernel,
this plugin and nbmake installed). Everything happens in a fresh temp dir; nothing is written
into the repository. Sections:

1. execution: N notebooks (a ``parameters`` cell, K small cells, a one-case fixture each), run by
   this plugin, nbmake and a papermill CLI loop, serially and with 2 workers (``-n 2``; two
   papermill processes at a time for the loop), in alternating rounds (A B C ... then reversed).
2. collection only (``--collect-only -q``) of 5,000 tiny fixture'd notebooks, ours against
   nbmake's collection of the same files: cold (``-p no:cacheprovider``) and with a warm
   pytest cache (cacheprovider on, one priming run each).
3. pytest start-up with nothing collected, with the plugin against ``-p no:notebooks``.
4. import times of ``pytest_notebooks.plugin``, ``papermill``, ``nbformat`` and ``nbdime``.
5. pandas: N notebooks whose first work cell imports pandas and numpy, ``-n 2``: ours with
   ``--notebooks-preload pandas,numpy``, ours without, nbmake (needs pandas and numpy installed).
6. memory: M tiny notebooks (default 1,000) with ``-n 2``; a probe plugin (bench/rss_probe.py)
   records each worker's RSS, open fds and threads every 10 cases; reports the growth.

Execution runs this plugin with forked kernels (the default) and, with ``--spawn``, also with
``--notebooks-kernel-start=spawn``.

Every comparison reports medians and the pair-by-pair ratio (median [min-max]) of commands that
ran next to each other, because this machine's absolute times drift by several percent between
calls; read the ratios. Every subprocess is bounded by a timeout. Each command is printed once,
exactly as run (the corpus path is relative to the temp dir, which is the working directory).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import json
import os
import platform
import re
import resource
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from corpus import make_corpus  # bench/ is not a package: run as a script

PY = sys.executable
PYTEST = [PY, "-m", "pytest", "-p", "no:cacheprovider", "-q"]
OURS = [*PYTEST, "-p", "no:nbmake"]
NBMAKE = [*PYTEST, "--nbmake", "-p", "no:notebooks"]
NEITHER = [*PYTEST, "-p", "no:notebooks", "-p", "no:nbmake"]
PAPERMILL = [PY, "-m", "papermill", "--no-progress-bar", "-p", "region_code", "eu"]


class BenchError(RuntimeError):
    """A command failed, timed out or ran a different number of tests than expected."""


@dataclass(frozen=True)
class Command:
    """One thing to time: a single argv, or a loop of argvs run ``parallel`` at a time."""

    name: str
    argv: list[str] | None = None
    loop: list[list[str]] | None = None
    parallel: int = 1
    expect_rc: int = 0
    expect_count: int | None = None  # "N passed" / "N tests collected" in the last lines
    timeout: float = 900.0

    def shown(self) -> str:
        if self.argv is not None:
            return shlex.join(self.argv)
        assert self.loop
        first = shlex.join(self.loop[0]).replace("nb_00000", "$nb")
        how = "for each notebook" if self.parallel == 1 else f"for each notebook, {self.parallel} at a time"
        return f"{first}  ({how}, {len(self.loop)} runs)"


@dataclass
class Sample:
    wall: float
    cpu: float  # user+sys of the process and every child it waited for (kernels included)


@dataclass
class Comparison:
    """Commands timed in alternating rounds; ratios are taken between named pairs per round."""

    title: str
    commands: list[Command]
    pairs: list[tuple[str, str, str]]  # (label, numerator name, denominator name)
    samples: dict[str, list[Sample]] = field(default_factory=dict)


def _run_one(argv: list[str], cwd: Path, timeout: float, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    """Run argv in its own session; on timeout kill the whole process group and fail."""
    proc = subprocess.Popen(
        argv, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True, env=env
    )
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise BenchError(f"timed out after {timeout:g} s: {shlex.join(argv)}") from None
    return proc.returncode, out, err


_COUNT = re.compile(r"(\d+) (?:passed|tests? collected)")


def _check(cmd: Command, argv: list[str], rc: int, out: str, err: str) -> None:
    tail = "\n".join((out + err).strip().splitlines()[-15:])
    if rc != cmd.expect_rc:
        raise BenchError(f"{cmd.name}: exit code {rc}, expected {cmd.expect_rc}: {shlex.join(argv)}\n{tail}")
    if cmd.expect_count is not None:
        counts = [int(m) for m in _COUNT.findall("\n".join(out.strip().splitlines()[-3:]))]
        if cmd.expect_count not in counts:
            raise BenchError(f"{cmd.name}: expected {cmd.expect_count} tests, got {counts}\n{tail}")


def time_command(cmd: Command, cwd: Path) -> Sample:
    """Wall and CPU time of one run of ``cmd`` (CPU from RUSAGE_CHILDREN, so runs are serialised)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    if cmd.argv is not None:
        rc, out, err = _run_one(cmd.argv, cwd, cmd.timeout)
        _check(cmd, cmd.argv, rc, out, err)
    else:
        assert cmd.loop is not None
        with concurrent.futures.ThreadPoolExecutor(cmd.parallel) as pool:
            runs = pool.map(lambda argv: (argv, *_run_one(argv, cwd, cmd.timeout)), cmd.loop)
            for argv, rc, out, err in runs:
                _check(cmd, argv, rc, out, err)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return Sample(wall, cpu)


def run_comparison(comp: Comparison, rounds: int, cwd: Path) -> Comparison:
    """Rounds of every command, the order reversed every other round (ABC CBA ABC ...)."""
    print(f"\n## {comp.title}", flush=True)
    for cmd in comp.commands:
        print(f"  {cmd.name:<22} {cmd.shown()}", flush=True)
    for r in range(rounds):
        order = comp.commands if r % 2 == 0 else comp.commands[::-1]
        line = []
        for cmd in order:
            sample = time_command(cmd, cwd)
            comp.samples.setdefault(cmd.name, []).append(sample)
            line.append(f"{cmd.name} {sample.wall:.2f}s")
        load = "/".join(f"{x:.1f}" for x in os.getloadavg())
        print(f"  round {r + 1}/{rounds}: " + ", ".join(line) + f"  (load {load})", flush=True)
    return comp


def _fmt_ratio(values: list[float]) -> str:
    return f"{statistics.median(values):.3f} [{min(values):.3f}-{max(values):.3f}]"


def summarize(comp: Comparison) -> list[str]:
    """Markdown rows: per command medians, then the paired ratios."""
    rows = [
        f"\n### {comp.title}\n",
        "| command | median wall s | min-max | median CPU s | runs |",
        "|---|--:|--:|--:|--:|",
    ]
    for cmd in comp.commands:
        s = comp.samples[cmd.name]
        walls = [x.wall for x in s]
        rows.append(
            f"| {cmd.name} | {statistics.median(walls):.2f} | {min(walls):.2f}-{max(walls):.2f} "
            f"| {statistics.median([x.cpu for x in s]):.1f} | {len(s)} |"
        )
    if comp.pairs:
        rows += ["", "| ratio (paired per round) | wall: median [min-max] | CPU: median |", "|---|--:|--:|"]
        for label, a, b in comp.pairs:
            sa, sb = comp.samples[a], comp.samples[b]
            walls = [x.wall / y.wall for x, y in zip(sa, sb, strict=True)]
            cpus = [x.cpu / y.cpu for x, y in zip(sa, sb, strict=True) if y.cpu > 0]
            cpu = f"{statistics.median(cpus):.3f}" if cpus else "-"
            rows.append(f"| {label} | {_fmt_ratio(walls)} | {cpu} |")
    return rows


def difference_rows(comp: Comparison, label: str, a: str, b: str) -> list[str]:
    diffs = [x.wall - y.wall for x, y in zip(comp.samples[a], comp.samples[b], strict=True)]
    return [
        "",
        f"| {label} | {statistics.median(diffs):+.3f} s | [{min(diffs):+.3f} .. {max(diffs):+.3f}] |",
    ]


# --- sections -----------------------------------------------------------------------------------


def execution(base: Path, notebooks: int, cells: int, rounds: int, papermill: bool, spawn: bool) -> Comparison:
    corpus = base / "corpus"
    paths = make_corpus(corpus, notebooks, cells)
    rel = corpus.name
    out = base / "out"  # outside the corpus: nbmake must not collect our saved outputs
    ours_out = ["--notebooks-output-dir", str(out / "ours")]
    spawned = ["--notebooks-kernel-start=spawn"]
    n = notebooks
    commands = [
        Command("ours serial", [*OURS, *ours_out, rel], expect_count=n),
        Command("nbmake serial", [*NBMAKE, rel], expect_count=n),
        Command("ours -n 2", [*OURS, *ours_out, "-n", "2", rel], expect_count=n),
        Command("nbmake -n 2", [*NBMAKE, "-n", "2", rel], expect_count=n),
    ]
    pairs = [
        ("ours / nbmake, serial", "ours serial", "nbmake serial"),
        ("ours / nbmake, -n 2", "ours -n 2", "nbmake -n 2"),
        ("ours -n 2 / nbmake serial", "ours -n 2", "nbmake serial"),
        ("ours -n 2 / ours serial", "ours -n 2", "ours serial"),
    ]
    if spawn:
        commands += [
            Command("ours spawn serial", [*OURS, *ours_out, *spawned, rel], expect_count=n),
            Command("ours spawn -n 2", [*OURS, *ours_out, *spawned, "-n", "2", rel], expect_count=n),
        ]
        pairs += [
            ("ours spawn / nbmake, serial", "ours spawn serial", "nbmake serial"),
            ("ours spawn / nbmake, -n 2", "ours spawn -n 2", "nbmake -n 2"),
            ("ours fork / ours spawn, serial", "ours serial", "ours spawn serial"),
            ("ours fork / ours spawn, -n 2", "ours -n 2", "ours spawn -n 2"),
        ]
    if papermill:
        (out / "papermill").mkdir(parents=True)
        loop = [[*PAPERMILL, f"{rel}/{p.name}", str(out / "papermill" / p.name)] for p in paths]
        commands += [
            Command("papermill loop", loop=loop, timeout=300),
            Command("papermill loop x2", loop=loop, parallel=2, timeout=300),
        ]
        pairs += [
            ("ours / papermill loop, serial", "ours serial", "papermill loop"),
            ("ours -n 2 / papermill loop x2", "ours -n 2", "papermill loop x2"),
        ]
    # Warm-up (also the sanity check): one case each on a two-notebook corpus.
    warm = base / "warm"
    make_corpus(warm, 2, cells)
    for cmd in (
        Command("warm ours", [*OURS, *ours_out, warm.name], expect_count=2),
        Command("warm nbmake", [*NBMAKE, warm.name], expect_count=2),
    ):
        time_command(cmd, base)
    comp = Comparison(f"Execution: {n} notebooks x {cells} cells, {rounds} rounds", commands, pairs)
    return run_comparison(comp, rounds, base)


def pandas(base: Path, notebooks: int, cells: int, rounds: int) -> Comparison | None:
    """Notebooks that start with ``import pandas``: ours -n 2 with and without preloading them."""
    rc, _out, err = _run_one([PY, "-c", "import pandas, numpy"], base, 120)
    if rc != 0:
        print(f"\n## pandas: skipped, pandas and numpy are not importable here:\n{err.strip()[-300:]}", flush=True)
        return None
    corpus = base / "pandas"
    make_corpus(corpus, notebooks, cells, imports=("pandas", "numpy"))
    rel = corpus.name
    ours_out = ["--notebooks-output-dir", str(base / "out" / "pandas")]
    n = notebooks
    preload = ["--notebooks-preload", "pandas,numpy"]
    commands = [
        Command("ours preload -n 2", [*OURS, *ours_out, *preload, "-n", "2", rel], expect_count=n),
        Command("nbmake -n 2", [*NBMAKE, "-n", "2", rel], expect_count=n),
        Command("ours -n 2 (no preload)", [*OURS, *ours_out, "-n", "2", rel], expect_count=n),
    ]
    pairs = [
        ("ours preload / nbmake, -n 2", "ours preload -n 2", "nbmake -n 2"),
        ("ours no preload / nbmake, -n 2", "ours -n 2 (no preload)", "nbmake -n 2"),
        ("ours preload / ours no preload, -n 2", "ours preload -n 2", "ours -n 2 (no preload)"),
    ]
    time_command(commands[0], base)  # warm-up (and .pyc files)
    title = f"pandas + numpy notebooks: {n} notebooks x {cells} cells, -n 2, {rounds} rounds"
    comp = Comparison(title, commands, pairs)
    return run_comparison(comp, rounds, base)


def memory(base: Path, notebooks: int) -> list[str]:
    """Each worker's RSS, fds and threads over a long -n 2 run (bench/rss_probe.py records them)."""
    corpus = base / "memory"
    make_corpus(corpus, notebooks, 1, tiny=True)
    samples = base / "rss"
    samples.mkdir()
    argv = [*OURS, "--notebooks-output-dir", str(base / "out" / "memory"), "-p", "rss_probe", "-n", "2", corpus.name]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).parent), os.environ.get("PYTHONPATH", "")])}
    env["PN_RSS_OUT"] = str(samples)
    print(f"\n## Memory: {notebooks} tiny notebooks, -n 2\n  {shlex.join(argv)}", flush=True)
    command = Command("memory", argv, expect_count=notebooks, timeout=7200)
    started = time.perf_counter()
    rc, out, err = _run_one(argv, base, command.timeout, env)
    _check(command, argv, rc, out, err)
    wall = time.perf_counter() - started
    rows = [
        f"\n### Memory: {notebooks} tiny notebooks, -n 2 ({wall:.0f} s)\n",
        "| worker | cases | RSS after 50 cases MB | RSS at the end MB | growth per 100 cases, second half MB "
        "| open fds first / last | threads first / last |",
        "|---|--:|--:|--:|--:|--:|--:|",
    ]
    for path in sorted(samples.glob("*.json")):
        points = json.loads(path.read_text())
        cases = [p["cases"] for p in points]
        rss = [p["rss_kb"] / 1024 for p in points]
        at50 = next((r for c, r in zip(cases, rss, strict=True) if c >= 50), rss[0])
        half = len(points) // 2
        slope = _slope(cases[half:], rss[half:]) * 100
        rows.append(
            f"| {path.stem} | {cases[-1]} | {at50:.1f} | {rss[-1]:.1f} | {slope:+.2f} "
            f"| {points[0]['fds']} / {points[-1]['fds']} | {points[0]['threads']} / {points[-1]['threads']} |"
        )
    return rows


def _slope(xs: list[int], ys: list[float]) -> float:
    """Least-squares slope of ys over xs (0 with fewer than two points)."""
    if len(xs) < 2:
        return 0.0
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    den = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / den if den else 0.0


def collection(base: Path, notebooks: int, rounds: int) -> Comparison:
    corpus = base / "collect"
    started = time.perf_counter()
    make_corpus(corpus, notebooks, 1, tiny=True)
    print(f"\n(generated {notebooks} tiny notebooks in {time.perf_counter() - started:.1f} s)", flush=True)
    rel = corpus.name
    n = notebooks

    def cached(argv: list[str], name: str) -> list[str]:
        """The same argv with pytest's cache on, in a cache dir of its own."""
        return [*_without_no_cacheprovider(argv), "-o", f"cache_dir={base / ('cache-' + name)}"]

    ours = [*OURS, "--collect-only", rel]
    theirs = [*NBMAKE, "--collect-only", rel]
    commands = [
        Command("ours collect", ours, expect_count=n, timeout=600),
        Command("nbmake collect", theirs, expect_count=n, timeout=600),
        Command("ours collect, warm cache", cached(ours, "ours"), expect_count=n, timeout=600),
        Command("nbmake collect, warm cache", cached(theirs, "nbmake"), expect_count=n, timeout=600),
    ]
    for cmd in commands[2:]:  # prime the caches
        time_command(cmd, base)
    pairs = [
        ("ours / nbmake, collect (no cache)", "ours collect", "nbmake collect"),
        ("ours / nbmake, collect (warm cache)", "ours collect, warm cache", "nbmake collect, warm cache"),
    ]
    comp = Comparison(f"Collection only: {n} fixture'd notebooks, {rounds} rounds", commands, pairs)
    return run_comparison(comp, rounds, base)


def _without_no_cacheprovider(argv: list[str]) -> list[str]:
    result: list[str] = []
    skip = False
    for i, arg in enumerate(argv):
        if skip:
            skip = False
            continue
        if arg == "-p" and i + 1 < len(argv) and argv[i + 1] == "no:cacheprovider":
            skip = True
            continue
        result.append(arg)
    return result


def startup(base: Path, rounds: int) -> Comparison:
    empty = base / "empty"
    empty.mkdir()
    commands = [
        Command("with plugin", [*OURS, empty.name], expect_rc=5, timeout=120),
        Command("without (-p no:notebooks)", [*NEITHER, empty.name], expect_rc=5, timeout=120),
        Command("nbmake only (reference)", [*NBMAKE, empty.name], expect_rc=5, timeout=120),
    ]
    pairs = [
        ("with / without plugin", "with plugin", "without (-p no:notebooks)"),
        ("nbmake / without (reference)", "nbmake only (reference)", "without (-p no:notebooks)"),
    ]
    time_command(commands[0], base)  # warm-up
    comp = Comparison(f"pytest start-up, nothing collected, {rounds} rounds", commands, pairs)
    return run_comparison(comp, rounds, base)


IMPORTS = ("pytest_notebooks.plugin", "papermill", "nbformat", "nbdime")


def imports(base: Path, runs: int) -> list[str]:
    """Median wall of ``python -c 'import X'`` minus a bare interpreter, plus -X importtime's view."""
    print("\n## Import times", flush=True)

    def wall(code: str) -> float:
        samples = []
        for _ in range(runs):
            start = time.perf_counter()
            rc, _out, err = _run_one([PY, "-c", code], base, 120)
            if rc != 0:
                raise BenchError(f"python -c {code!r} failed:\n{err[-2000:]}")
            samples.append(time.perf_counter() - start)
        return statistics.median(samples)

    bare, with_pytest = wall("pass"), wall("import pytest")
    rows = [
        f"\n### Import times (median of {runs} runs; bare interpreter {bare:.3f} s)\n",
        "| module | `python -c 'import X'` minus bare, s | -X importtime cumulative, s "
        "| heaviest packages it imports (cumulative s) |",
        "|---|--:|--:|---|",
    ]
    for module in IMPORTS:
        cost = wall(f"import {module}") - bare
        cumulative, heavy = importtime(module, base)
        rows.append(f"| {module} | {cost:.3f} | {cumulative:.3f} | {heavy} |")
        print(f"  {module}: {cost:.3f} s", flush=True)
    plugin_marginal = wall("import pytest, pytest_notebooks.plugin") - with_pytest
    rows.append(f"| pytest_notebooks.plugin, once pytest is imported | {plugin_marginal:.3f} | | |")
    return rows


def importtime(module: str, cwd: Path) -> tuple[float, str]:
    """Cumulative import time of ``module`` and the three heaviest top-level packages under it."""
    rc, _out, err = _run_one([PY, "-X", "importtime", "-c", f"import {module}"], cwd, 120)
    if rc != 0:
        raise BenchError(f"-X importtime {module} failed:\n{err[-2000:]}")
    entries = []
    for line in err.splitlines():
        parts = line.split("|")
        if len(parts) == 3 and parts[1].strip().isdigit():
            name = parts[2].rstrip()
            entries.append((name.strip(), len(name) - len(name.lstrip()), int(parts[1])))
    cumulative = max((us for name, _, us in entries if name == module), default=0) / 1e6
    # one row per top-level package, its largest cumulative (a subtree's root holds the total)
    heaviest: dict[str, int] = {}
    for name, _, us in entries:
        top = name.split(".")[0]
        if top not in (module.split(".")[0], "encodings", "site"):
            heaviest[top] = max(heaviest.get(top, 0), us)
    top3 = sorted(heaviest.items(), key=lambda kv: -kv[1])[:4]
    return cumulative, ", ".join(f"{name} {us / 1e6:.2f}" for name, us in top3)


def environment() -> list[str]:
    def version(name: str) -> str:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            return "absent"

    names = (
        "pytest-notebooks",
        "nbmake",
        "pytest",
        "pytest-xdist",
        "papermill",
        "nbclient",
        "nbformat",
        "ipykernel",
        "jupyter_client",
        "nbdime",
        "jsonschema",
        "rfc3987-syntax",
    )
    cpu = ""
    with contextlib.suppress(OSError):
        cpu = next(
            (
                line.split(":", 1)[1].strip()
                for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")
            ),
            "",
        )
    repo = Path(__file__).resolve().parent.parent
    git = "unknown"
    if shutil.which("git"):
        head = subprocess.run(
            ["git", "-C", str(repo), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(repo), "status", "--porcelain", "--", "pytest_notebooks"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        ).stdout.strip()
        git = f"{head}{' + uncommitted changes in pytest_notebooks/' if dirty else ''}"
    return [
        f"machine: {os.cpu_count()} cores, {cpu or platform.machine()}; Python {platform.python_version()}; "
        f"{platform.system()} {platform.release()}",
        f"plugin source: {git}",
        "versions: " + ", ".join(f"{n} {version(n)}" for n in names),
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description="pytest-notebooks vs nbmake vs papermill benchmark")
    parser.add_argument("--quick", action="store_true", help="smaller corpora and fewer rounds (a few minutes)")
    parser.add_argument("--notebooks", type=int, help="notebooks in the execution corpus (default 40; quick 6)")
    parser.add_argument("--cells", type=int, default=5, help="work cells per notebook (default 5)")
    parser.add_argument("--rounds", type=int, help="execution rounds (default 3; quick 2)")
    parser.add_argument("--collect", type=int, help="notebooks in the collection corpus (default 5000; quick 1000)")
    parser.add_argument("--collect-rounds", type=int, help="collection rounds (default 5; quick 2)")
    parser.add_argument("--startup-rounds", type=int, help="start-up rounds (default 9; quick 3)")
    parser.add_argument("--no-papermill", action="store_true", help="leave the papermill CLI loop out")
    parser.add_argument("--spawn", action="store_true", help="execution: also ours with spawned kernels")
    parser.add_argument("--pandas-notebooks", type=int, help="notebooks in the pandas corpus (default 40; quick 6)")
    parser.add_argument("--memory-notebooks", type=int, help="notebooks in the memory run (default 1000; quick 100)")
    parser.add_argument(
        "--only",
        choices=("execution", "collection", "startup", "imports", "pandas", "memory"),
        action="append",
        help="run only these",
    )
    parser.add_argument("--json", type=Path, help="also write every sample here")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (its path is printed)")
    args = parser.parse_args()
    q = args.quick
    notebooks = args.notebooks or (6 if q else 40)
    rounds = args.rounds or (2 if q else 3)
    collect_n = args.collect or (1000 if q else 5000)
    collect_rounds = args.collect_rounds or (2 if q else 5)
    startup_rounds = args.startup_rounds or (3 if q else 9)
    sections = args.only or ["execution", "collection", "startup", "imports", "pandas", "memory"]
    pandas_n = args.pandas_notebooks or (6 if q else 40)
    memory_n = args.memory_notebooks or (100 if q else 1000)

    env = environment()
    print("\n".join(env))
    print(f"command: {shlex.join([Path(PY).name, *sys.argv])}")
    base = Path(tempfile.mkdtemp(prefix="pytest-notebooks-bench-"))
    print(f"temp dir (working directory of every command): {base}")
    started = time.perf_counter()
    rows: list[str] = []
    comps: list[Comparison] = []
    try:
        if "execution" in sections:
            comp = execution(base, notebooks, args.cells, rounds, not args.no_papermill, args.spawn)
            comps.append(comp)
            rows += summarize(comp)
        if "collection" in sections:
            comp = collection(base, collect_n, collect_rounds)
            comps.append(comp)
            rows += summarize(comp)
        if "startup" in sections:
            comp = startup(base, startup_rounds)
            comps.append(comp)
            rows += summarize(comp)
            rows += [
                "",
                "| start-up difference (paired) | median | [min .. max] |",
                "|---|--:|--:|",
                *difference_rows(comp, "with plugin - without", "with plugin", "without (-p no:notebooks)")[1:],
                *difference_rows(comp, "nbmake - without", "nbmake only (reference)", "without (-p no:notebooks)")[1:],
            ]
        if "imports" in sections:
            rows += imports(base, 3 if q else 5)
        if "pandas" in sections:
            pandas_comp = pandas(base, pandas_n, args.cells, rounds)
            if pandas_comp is not None:
                comps.append(pandas_comp)
                rows += summarize(pandas_comp)
        if "memory" in sections:
            rows += memory(base, memory_n)
    except BenchError as exc:
        print(f"\nBENCHMARK FAILED: {exc}", file=sys.stderr)
        return 1
    finally:
        if args.json:
            args.json.write_text(
                json.dumps(
                    {
                        "environment": env,
                        "argv": sys.argv,
                        "comparisons": {
                            c.title: {
                                "commands": {cmd.name: cmd.shown() for cmd in c.commands},
                                "samples": {k: [vars(s) for s in v] for k, v in c.samples.items()},
                            }
                            for c in comps
                        },
                    },
                    indent=1,
                )
            )
        if args.keep:
            print(f"kept {base}")
        else:
            shutil.rmtree(base, ignore_errors=True)
    print("\n# Results (ratios are paired per round: A/B of the runs that ran side by side)")
    print("\n".join(rows))
    load = "/".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"\ntotal benchmark time: {time.perf_counter() - started:.0f} s; load average at the end {load}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
