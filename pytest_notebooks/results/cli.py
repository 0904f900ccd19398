"""``nbresults merge``: one results file from the results files of CI shards.

    nbresults merge -o notebook-outputs/results.json shard-1/results.json shard-2/results.json

Exit codes: ``EXIT_CODES``, the end of ``--help`` (and of the Commands page, generated from it).
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

EXIT_CODES = f"""\
exit codes:
  {ExitCode.OK:d}  merged: the merged file was written
  {ExitCode.USAGE:d}  usage: bad arguments, or files that cannot be read, are not valid results files, cannot
     be merged (shards of other commits, a notebook tested with other contents) or written; one
     line on stderr
"""


def main(argv: Sequence[str] | None = None) -> int:
    raw = argparse.RawDescriptionHelpFormatter  # the exit codes as written, one a line
    parser = argparse.ArgumentParser(
        prog="nbresults",
        description="Work with pytest-notebooks results files.",
        epilog=EXIT_CODES,
        formatter_class=raw,
    )
    commands = parser.add_subparsers(dest="command", required=True)
    merge = commands.add_parser(
        "merge",
        help="merge the results files of shards of one run into one",
        description="Merge the results files of shards of one run into one.",
        epilog=EXIT_CODES,
        formatter_class=raw,
    )
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
