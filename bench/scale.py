"""Ten thousand notebooks (issue 23): a PR run, a full collection, memory and workers, at scale.

    python bench/scale.py [--count N] [--cases K] [--rounds R] [--dir DIR] [--markdown]

Builds a git repository once (DIR is reused while it holds one built for the same N and K): N
notebooks under ``notebooks/gNNN/`` (100 a folder), each a two-cell template (a ``parameters``
cell and one work cell) with a sibling fixture of K cases, and a library ``lib/vidlib/``
(``__init__.py`` re-exports ``from .agg import total``) that every 1,000th notebook imports.
Three branches off ``main`` change one thing each: a notebook's work cell (``pr-notebook``), its
fixture (``pr-fixture``), and ``lib/vidlib/agg.py`` (``pr-lib``).

Then it times, in R rounds whose order is reversed every other round, each command as a whole
process (wall) and as pytest reports it ("in 1.93s"): the changed notebook alone; the PR runs
(``--notebooks-changed-since HEAD~1 notebooks`` on each branch, with pytest's cache dir emptied
first, "cold", and right after the same command, "warm"); ours ``--collect-only`` cold and warm
against nbmake's cold; the max RSS of our collection of N, N/2 and one notebook; and ``-n 2``
against serial on 40 small notebooks (bench/corpus.py). Every pytest runs from the repository
root, without PYTEST_ADDOPTS, with ``-p no:randomly`` when pytest-randomly is installed, and
writes its outputs to a temp dir; the repository's ``git status`` is checked clean after each
round. It prints the figures and the issue's ratios, each goal marked met or not met, and exits
0 unless a command failed unexpectedly (1) or nbmake is missing (2).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import importlib.util
import json
import os
import re
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from corpus import make_corpus  # bench/ is not a package: run as a script

LAYOUT = 1  # bump when the generated repository changes, so that old ones are rebuilt
MARKER = "pytest-notebooks-scale.json"  # in .git/, so the work tree stays clean
PER_FOLDER = 100
IMPORT_EVERY = 1000
BASE, PR_NOTEBOOK, PR_FIXTURE, PR_LIB = "main", "pr-notebook", "pr-fixture", "pr-lib"
WORKER_NOTEBOOKS = 40

_WORK = "total = sum(i * i for i in range({seed}, {seed} + 1000))\nprint(region_code, run_date, total)"
_WORK_VIDLIB = """\
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path.cwd().parents[1] / "lib"))  # kernels run in the notebook's folder
import vidlib

print(region_code, run_date, vidlib.total(range({seed}, {seed} + 1000)))"""
_AGG = '"""Aggregates the notebooks share."""\n\n\ndef total(values):\n    return sum(values)\n'
_AGG_CHANGED = _AGG.replace("return sum(values)", "return sum(int(v) for v in values)")
_GITIGNORE = "notebook-outputs/\n.pytest_cache/\n__pycache__/\n"
_PYPROJECT = "[tool.pytest.ini_options]  # makes this folder pytest's rootdir\n"


class BenchError(RuntimeError):
    """A command failed or timed out, or the repository is not in the state the benchmark needs."""


# --- the repository ------------------------------------------------------------------------------


def notebook_path(index: int) -> str:
    return f"notebooks/g{index // PER_FOLDER:03d}/nb_{index:05d}.ipynb"


def importers(count: int) -> list[str]:
    """The notebooks that import vidlib."""
    return [notebook_path(i) for i in range(0, count, IMPORT_EVERY)]


def changed_index(count: int) -> int:
    """The notebook the PR branches change (nb_00007, as in the issue; it does not import vidlib)."""
    return 7 if count > 7 else count - 1


def _code_cell(cell_id: str, source: str, tags: list[str] | None = None) -> dict[str, Any]:
    return {
        "cell_type": "code",
        "execution_count": None,
        "id": cell_id,
        "metadata": {"tags": tags} if tags else {},
        "outputs": [],
        "source": source.splitlines(keepends=True),
    }


def notebook_text(index: int, changed: bool = False) -> str:
    work = (_WORK_VIDLIB if index % IMPORT_EVERY == 0 else _WORK).format(seed=index)
    if changed:
        work += '\nprint("changed")'
    cells = [
        _code_cell("parameters", 'region_code = "us"\nrun_date = "2024-01-01"', ["parameters"]),
        _code_cell("work", work),
    ]
    metadata = {
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
        "language_info": {"name": "python"},
    }
    return json.dumps({"cells": cells, "metadata": metadata, "nbformat": 4, "nbformat_minor": 5}, indent=1) + "\n"


def fixture_text(cases: int, run_date: str = "2024-01-01") -> str:
    """One default case (K = 1), else K named cases sharing the run date."""
    if cases == 1:
        return f'parameters: {{region_code: "eu", run_date: "{run_date}"}}\n'
    lines = ["parameters:", f'  run_date: "{run_date}"', "cases:"]
    lines += [f'  c{k}: {{region_code: "r{k}"}}' for k in range(cases)]
    return "\n".join(lines) + "\n"


def git(repo: Path, *args: str) -> str:
    ident = ["-c", "user.name=bench", "-c", "user.email=bench@example.invalid", "-c", "commit.gpgsign=false"]
    done = subprocess.run(["git", *ident, "-C", str(repo), *args], capture_output=True, text=True, check=False)
    if done.returncode:
        raise BenchError(f"git {shlex.join(args)} in {repo} failed:\n{done.stderr.strip()}")
    return done.stdout


def _commit_change(repo: Path, branch: str, path: str, text: str) -> None:
    git(repo, "switch", "-q", "-c", branch, BASE)
    (repo / path).write_text(text, encoding="utf-8")
    git(repo, "commit", "-q", "-am", f"{branch}: change {path}")


def build(repo: Path, count: int, cases: int) -> None:
    """Write and commit the repository and its three PR branches."""
    repo.mkdir(parents=True)
    git(repo, "init", "-q", "-b", BASE)
    marker = repo / ".git" / MARKER  # written first: a half-built DIR is still ours to delete
    marker.write_text(json.dumps({"layout": LAYOUT, "count": count, "cases": cases, "complete": False}))
    (repo / ".gitignore").write_text(_GITIGNORE)
    (repo / "pyproject.toml").write_text(_PYPROJECT)
    (repo / "lib" / "vidlib").mkdir(parents=True)
    (repo / "lib" / "vidlib" / "__init__.py").write_text('from .agg import total\n\n__all__ = ["total"]\n')
    (repo / "lib" / "vidlib" / "agg.py").write_text(_AGG)
    fixture = fixture_text(cases)
    for index in range(count):
        path = repo / notebook_path(index)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(notebook_text(index), encoding="utf-8")
        path.with_suffix(".yaml").write_text(fixture, encoding="utf-8")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", f"{count} notebooks, {cases} case(s) each")
    changed = notebook_path(changed_index(count))
    _commit_change(repo, PR_NOTEBOOK, changed, notebook_text(changed_index(count), changed=True))
    _commit_change(repo, PR_FIXTURE, changed.replace(".ipynb", ".yaml"), fixture_text(cases, "2024-01-02"))
    _commit_change(repo, PR_LIB, "lib/vidlib/agg.py", _AGG_CHANGED)
    git(repo, "switch", "-q", BASE)
    marker.write_text(json.dumps({"layout": LAYOUT, "count": count, "cases": cases, "complete": True}))


def ensure_repository(repo: Path, count: int, cases: int) -> None:
    """Reuse ``repo`` if it was built for N and K, else (re)build it; never delete a folder not ours."""
    marker = repo / ".git" / MARKER
    wanted = {"layout": LAYOUT, "count": count, "cases": cases, "complete": True}
    if marker.is_file() and json.loads(marker.read_text()) == wanted:
        git(repo, "switch", "-q", BASE)
        if git(repo, "status", "--porcelain"):
            raise BenchError(f"{repo} has uncommitted changes; remove it or pass another --dir")
        print(f"reusing {repo}", flush=True)
        return
    if repo.exists() and any(repo.iterdir()):
        if not marker.is_file():
            raise BenchError(f"{repo} exists and was not built by bench/scale.py; remove it or pass another --dir")
        shutil.rmtree(repo)
    started = time.perf_counter()
    build(repo, count, cases)
    print(f"built {repo}: {count} notebooks in {time.perf_counter() - started:.1f} s", flush=True)


# --- running and timing --------------------------------------------------------------------------


@dataclass(frozen=True)
class Step:
    """One command to time. ``cache``: off (-p no:cacheprovider), cold (its cache dir emptied
    first) or warm (the same command run once, untimed, just before)."""

    name: str
    args: list[str]
    branch: str | None = BASE  # None: not in the repository (the workers corpus)
    cache: str = "off"
    expect_rc: tuple[int, ...] = (0,)
    expect_count: int | None = None  # passed, or collected with --collect-only
    expect_run: frozenset[str] | None = None  # the notebooks whose cases must pass (-rp lines)


@dataclass
class Sample:
    wall: float
    pytest_s: float | None  # pytest's own "in X s"
    rss_mb: float  # max RSS of the pytest process (and of the children it waited for)
    count: int
    ran: frozenset[str]


@dataclass
class Context:
    repo: Path
    tmp: Path
    timeout: float
    samples: dict[str, list[Sample]] = field(default_factory=dict)


_ENV = {k: v for k, v in os.environ.items() if k != "PYTEST_ADDOPTS"}
_RANDOMLY = ["-p", "no:randomly"] if importlib.util.find_spec("pytest_randomly") else []
_COUNT = re.compile(r"(\d+) (passed|tests? collected)")
_SECONDS = re.compile(r" in ([\d.]+)s")
_PASSED = re.compile(r"^PASSED (\S+?)::", re.MULTILINE)


def run(argv: list[str], cwd: Path, timeout: float) -> tuple[int, str, float, float]:
    """(exit code, output, wall s, max RSS MB) of one process, killed with its group at ``timeout``."""
    with tempfile.TemporaryFile() as log:
        start = time.perf_counter()
        proc = subprocess.Popen(argv, cwd=cwd, stdout=log, stderr=subprocess.STDOUT, env=_ENV, start_new_session=True)
        timer = threading.Timer(timeout, os.killpg, (proc.pid, signal.SIGKILL))
        timer.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)  # its own rusage, not every child's since we started
        except BaseException:  # Ctrl-C: its own session does not get the SIGINT
            os.killpg(proc.pid, signal.SIGKILL)
            raise
        finally:
            timer.cancel()
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        log.seek(0)
        out = log.read().decode(errors="replace")
    if wall >= timeout:
        raise BenchError(f"timed out after {timeout:g} s: {shlex.join(argv)}")
    return proc.returncode, out, wall, usage.ru_maxrss / 1024


def argv_of(step: Step, ctx: Context) -> list[str]:
    cache = ["-p", "no:cacheprovider"] if step.cache == "off" else ["-o", f"cache_dir={cache_dir(step, ctx)}"]
    return [sys.executable, "-m", "pytest", "-q", *_RANDOMLY, *cache, *step.args]


def cache_dir(step: Step, ctx: Context) -> Path:
    return ctx.tmp / "cache" / re.sub(r"\W+", "-", step.name)


def measure(step: Step, ctx: Context) -> Sample:
    """Put the repository and the cache in the step's state, then run it once, timed."""
    cwd = ctx.tmp if step.branch is None else ctx.repo
    if step.branch is not None:
        git(ctx.repo, "switch", "-q", step.branch)
    if step.cache == "cold":
        shutil.rmtree(cache_dir(step, ctx), ignore_errors=True)
    argv = argv_of(step, ctx)
    if step.cache == "warm":
        run(argv, cwd, ctx.timeout)
    rc, out, wall, rss = run(argv, cwd, ctx.timeout)
    tail = "\n".join(out.strip().splitlines()[-20:])
    if rc not in step.expect_rc:
        raise BenchError(f"{step.name}: exit code {rc}, expected {step.expect_rc}: {shlex.join(argv)}\n{tail}")
    last = out.strip().splitlines()[-1] if out.strip() else ""
    count = sum(int(n) for n, _ in _COUNT.findall(last))
    if step.expect_count is not None and count != step.expect_count:
        raise BenchError(f"{step.name}: {count} tests, expected {step.expect_count}: {shlex.join(argv)}\n{tail}")
    seconds = _SECONDS.search(last)
    return Sample(wall, float(seconds.group(1)) if seconds else None, rss, count, frozenset(_PASSED.findall(out)))


def _shown(argv: list[str]) -> str:
    """The command as typed, the folders of the N/2 collection elided."""
    folders = [arg for arg in argv if re.fullmatch(r"notebooks/g\d+", arg)]
    if len(folders) <= 2:
        return shlex.join(argv)
    rest = [arg for arg in argv if arg not in folders]
    return f"{shlex.join(rest)} {folders[0]} ... {folders[-1]} ({len(folders)} folders)"


def run_rounds(steps: list[Step], rounds: int, ctx: Context) -> None:
    """Every step once a round, the order reversed every other round (A B C, C B A, ...)."""
    for step in steps:
        print(f"  {step.name:<28} {_shown(argv_of(step, ctx)[1:])}", flush=True)
    for step in steps:  # warm-up, untimed: .pyc files, the page cache, each command's sanity
        if step.cache != "warm":
            measure(step, ctx)
    print("  warmed up", flush=True)
    for r in range(rounds):
        line = []
        for step in steps if r % 2 == 0 else steps[::-1]:
            sample = measure(step, ctx)
            ctx.samples.setdefault(step.name, []).append(sample)
            line.append(f"{step.name} {sample.wall:.2f}s")
        git(ctx.repo, "switch", "-q", BASE)
        dirty = git(ctx.repo, "status", "--porcelain", "--untracked-files=all")
        if dirty:
            raise BenchError(f"the runs left {ctx.repo} dirty (the plugin would see a changed tree):\n{dirty}")
        load = "/".join(f"{x:.1f}" for x in os.getloadavg())
        print(f"  round {r + 1}/{rounds} (load {load}): " + ", ".join(line), flush=True)


def steps_for(count: int, cases: int, tmp: Path) -> list[Step]:
    ours = ["-p", "no:nbmake", "--notebooks-output-dir", str(tmp / "out")]
    changed = notebook_path(changed_index(count))
    one, libs = frozenset([changed]), frozenset(importers(count))
    pr = [*ours, "-rp", "--notebooks-changed-since", "HEAD~1", "notebooks"]
    collect = [*ours, "--collect-only", "notebooks"]
    folders = sorted({str(Path(notebook_path(i)).parent) for i in range(count)})
    half = folders[: max(1, len(folders) // 2)]
    steps = [Step("single", [*ours, "-rp", changed], PR_NOTEBOOK, expect_count=cases, expect_run=one)]
    for label, branch, expected in (
        ("notebook", PR_NOTEBOOK, one),
        ("fixture", PR_FIXTURE, one),
        ("lib", PR_LIB, libs),
    ):
        for cache in ("cold", "warm"):
            steps.append(Step(f"PR {label}, {cache}", pr, branch, cache, expect_rc=(0, 5), expect_run=expected))
    nbmake = ["--nbmake", "-p", "no:notebooks", "--collect-only", "notebooks"]
    workers = [*ours, "workers"]
    return [
        *steps,
        Step("collect, cold", collect, cache="cold", expect_count=count * cases),
        Step("collect, warm", collect, cache="warm", expect_count=count * cases),
        Step("nbmake collect, cold", nbmake, cache="cold", expect_count=count),
        Step("collect N/2, cold", [*ours, "--collect-only", *half], cache="cold", expect_count=None),
        Step("collect 1, cold", [*ours, "--collect-only", notebook_path(0)], cache="cold", expect_count=cases),
        Step("workers serial", workers, None, expect_count=WORKER_NOTEBOOKS),
        Step("workers -n 2", [*workers, "-n", "2"], None, expect_count=WORKER_NOTEBOOKS),
    ]


# --- the report ----------------------------------------------------------------------------------


def _spread(values: list[float], digits: int = 2) -> str:
    return f"{statistics.median(values):.{digits}f} [{min(values):.{digits}f}-{max(values):.{digits}f}]"


def figure_rows(ctx: Context) -> list[list[str]]:
    rows = []
    for name, samples in ctx.samples.items():
        own = [s.pytest_s for s in samples if s.pytest_s is not None]
        rows.append(
            [
                name,
                _spread([s.wall for s in samples]),
                _spread(own) if own else "-",
                str(samples[0].count),
                f"{statistics.median(s.rss_mb for s in samples):.0f}",
            ]
        )
    return rows


# (label, numerator, denominator, basis, goal): paired per round; the goal is judged on the basis
RATIOS = [
    ("PR run, notebook changed, cold / single", "PR notebook, cold", "single", "wall", 1.3),
    ("PR run, notebook changed, warm / single", "PR notebook, warm", "single", "wall", 1.3),
    ("PR run, fixture changed, cold / single", "PR fixture, cold", "single", "wall", 1.3),
    ("PR run, fixture changed, warm / single", "PR fixture, warm", "single", "wall", 1.3),
    ("PR run, library changed, cold / single", "PR lib, cold", "single", "wall", None),
    ("collection cold, ours / nbmake cold", "collect, cold", "nbmake collect, cold", "pytest", 1.0),
    ("collection warm, ours / nbmake cold", "collect, warm", "nbmake collect, cold", "pytest", 0.5),
    ("40 notebooks, -n 2 / serial", "workers -n 2", "workers serial", "wall", 1.0),
]


def _paired(ctx: Context, a: str, b: str, basis: str) -> list[float]:
    pairs = zip(ctx.samples[a], ctx.samples[b], strict=True)
    if basis == "wall":
        return [x.wall / y.wall for x, y in pairs]
    return [x.pytest_s / y.pytest_s for x, y in pairs if x.pytest_s and y.pytest_s]


def _verdict(ok: bool) -> str:
    return "met" if ok else "not met"


def ratio_rows(ctx: Context) -> list[list[str]]:
    rows = []
    for label, a, b, basis, goal in RATIOS:
        wall, own = _paired(ctx, a, b, "wall"), _paired(ctx, a, b, "pytest")
        judged = wall if basis == "wall" else own
        met = "-" if goal is None or not judged else _verdict(statistics.median(judged) <= goal)
        on = "whole process" if basis == "wall" else "pytest's time"
        target = "-" if goal is None else f"<= {goal}x ({on})"
        rows.append([label, _spread(wall, 3), _spread(own, 3) if own else "-", target, met])
    return rows


def selection_rows(ctx: Context, steps: list[Step]) -> list[list[str]]:
    """Which notebooks each PR run ran (the first round that ran a wrong set, if any), against what it must run."""
    rows = []
    for step in steps:
        if step.expect_run is None:
            continue
        ran = next((s.ran for s in ctx.samples[step.name] if s.ran != step.expect_run), step.expect_run)
        missed, extra = sorted(step.expect_run - ran), sorted(ran - step.expect_run)
        wrong = [
            f"{what} {len(paths)}: {', '.join(paths[:2])}" for what, paths in (("missed", missed), ("extra", extra))
        ]
        detail = "; ".join(w for w, paths in zip(wrong, (missed, extra), strict=True) if paths)
        ran_text = f"{len(ran)} of {len(step.expect_run)} expected"
        rows.append([step.name, ran_text, _verdict(not detail) + (f" ({detail})" if detail else "")])
    return rows


def memory_rows(ctx: Context, cases: int) -> list[list[str]]:
    """Max RSS of our cold collection of 1, N/2 and N notebooks; what each added 1,000 costs."""
    points = []
    for name in ("collect 1, cold", "collect N/2, cold", "collect, cold"):
        samples = ctx.samples[name]
        points.append((samples[0].count // cases, statistics.median(s.rss_mb for s in samples)))
    rows = [[f"{n:,} notebook(s)", f"{mb:.0f}", f"{mb / n * 1000:.1f}" if n > 1 else "-", "-"] for n, mb in points]
    (n1, mb1), (n2, mb2), (n3, mb3) = points
    if n1 < n2 < n3:
        first, second = (mb2 - mb1) / (n2 - n1) * 1000, (mb3 - mb2) / (n3 - n2) * 1000
        flat = _verdict(second <= 1.25 * first)
        label = f"added per 1,000: {n1:,} to {n2:,}, {n2:,} to {n3:,}"
        rows.append([label, "-", f"{first:.1f}, {second:.1f}", f"{flat} (second <= 1.25x first)"])
    return rows


def render(title: str, headers: list[str], rows: list[list[str]], markdown: bool) -> str:
    if markdown:
        lines = [headers, ["---"] * len(headers), *rows]
        return f"\n{title}\n\n" + "\n".join(f"| {' | '.join(r)} |" for r in lines)
    widths = [max(len(r[i]) for r in [headers, *rows]) for i in range(len(headers))]
    return f"\n{title}\n" + "\n".join(
        "  ".join(x.ljust(w) for x, w in zip(r, widths, strict=True)).rstrip() for r in [headers, *rows]
    )


def report(ctx: Context, steps: list[Step], cases: int, markdown: bool) -> None:
    tables = [
        ("Figures: median [min-max]", ["command", "wall s", "pytest's s", "tests", "max RSS MB"], figure_rows(ctx)),
        (
            "Ratios, paired per round: median [min-max]",
            ["ratio", "wall", "pytest's time", "goal", "met?"],
            ratio_rows(ctx),
        ),
        (
            "Selection: the notebooks each run ran (-rp), every round",
            ["run", "notebooks", "exactly the changed ones?"],
            selection_rows(ctx, steps),
        ),
        (
            "Memory: our cold --collect-only, max RSS",
            ["collected", "MB", "MB per 1,000", "flat?"],
            memory_rows(ctx, cases),
        ),
    ]
    for title, headers, rows in tables:
        print(render(title, headers, rows, markdown))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=10_000, help="notebooks (default 10,000)")
    parser.add_argument("--cases", type=int, default=1, help="cases per fixture (default 1)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds (default 3)")
    parser.add_argument(
        "--dir", type=Path, help="the repository (default: a folder in the temp dir named after N and K)"
    )
    parser.add_argument("--markdown", action="store_true", help="print the tables in Markdown")
    args = parser.parse_args()
    if importlib.util.find_spec("nbmake") is None:
        print("nbmake is not installed in this interpreter's environment: pip install nbmake", file=sys.stderr)
        return 2
    repo = (args.dir or Path(tempfile.gettempdir()) / f"pytest-notebooks-scale-{args.count}x{args.cases}").resolve()
    started = time.perf_counter()
    now = datetime.datetime.now(datetime.timezone.utc)
    print(f"{now:%Y-%m-%d %H:%M} UTC, {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}", flush=True)
    print(f"N={args.count} notebooks, K={args.cases} case(s) each, {args.rounds} rounds", flush=True)
    tmp = Path(tempfile.mkdtemp(prefix="pytest-notebooks-scale-"))
    try:
        ensure_repository(repo, args.count, args.cases)
        make_corpus(tmp / "workers", WORKER_NOTEBOOKS, 1)
        ctx = Context(repo, tmp, timeout=600 + args.count * 0.2)
        steps = steps_for(args.count, args.cases, tmp)
        run_rounds(steps, args.rounds, ctx)
        report(ctx, steps, args.cases, args.markdown)
    except BenchError as exc:
        print(f"\nSCALE BENCHMARK FAILED: {exc}", file=sys.stderr)
        return 1
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        with contextlib.suppress(BenchError):
            git(repo, "switch", "-q", BASE)
    print(f"\ntotal time {time.perf_counter() - started:.0f} s; load at the end {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
