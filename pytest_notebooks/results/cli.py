"""``nbresults merge``: one results file from the results files of CI shards.

    nbresults merge -o notebook-outputs/results.json shard-1/results.json shard-2/results.json

Exit codes: 0 merged; 2 the files cannot be read (not results files, invalid against the
schema), merged (different commits or notebook hashes) or written, with one line on stderr.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from pytest_notebooks import __version__
from pytest_notebooks.errors import MergeError, ResultsError
from pytest_notebooks.exitcodes import ExitCode
from pytest_notebooks.files import atomic_write
from pytest_notebooks.results.merge import merge_documents
from pytest_notebooks.results.read import dumps, load_results


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="nbresults", description="Work with pytest-notebooks results files.")
    commands = parser.add_subparsers(dest="command", required=True)
    merge = commands.add_parser("merge", help="merge the results files of shards of one run into one")
    merge.add_argument("-o", "--output", type=Path, required=True, help="the merged results file")
    merge.add_argument("inputs", type=Path, nargs="+", help="results files, one per shard")
    parser.add_argument("--version", action="version", version=f"nbresults (pytest-notebooks {__version__})")
    args = parser.parse_args(argv)
    try:
        documents = [load_results(path) for path in args.inputs]
        merged = merge_documents(documents)
    except MergeError as exc:
        return _fail(f"cannot merge: {exc}")
    except ResultsError as exc:
        return _fail(f"cannot read: {exc}")
    try:
        atomic_write(args.output, dumps(merged))
    except OSError as exc:
        return _fail(f"cannot write: {exc}")
    summary = ", ".join(f"{n} {k}" for k, n in sorted(merged.summary().items()))
    print(f"nbresults: merged {len(documents)} files into {args.output}: {summary}")
    return ExitCode.OK


def _fail(message: str) -> int:
    print(f"nbresults: {message}", file=sys.stderr)
    return ExitCode.USAGE


if __name__ == "__main__":
    raise SystemExit(main())
