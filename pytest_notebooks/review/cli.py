"""``nbreview``: the review document for a pull request, from git and a results file.

Exit codes: ``EXIT_CODES``, the end of ``--help`` (and of the Commands page, generated from it). The
default ``--results`` may be missing (the review says it has no results); a results file named
explicitly must exist.

``--format json`` writes one JSON document (``review_document``), built from the same records as the text:
schema ``pytest-notebooks/review`` version 1, published as ``review.schema.json`` beside this module.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pytest_notebooks import __version__
from pytest_notebooks.cases.naming import FixtureNaming
from pytest_notebooks.errors import GitError, GitOutputError, GitUnusable, ResultsError
from pytest_notebooks.exitcodes import ExitCode
from pytest_notebooks.files import atomic_write
from pytest_notebooks.gitinfo import git_state
from pytest_notebooks.results.read import DEFAULT_RESULTS, find_results, load_results
from pytest_notebooks.results.record import CaseRecord, Outcome, ResultsDocument
from pytest_notebooks.review.changes import Change, SnapshotUpdate, TemplateChange, pull_request_changes
from pytest_notebooks.review.fixturediff import CaseChange, FixtureChange, ValueChange
from pytest_notebooks.review.github import append_step_summary
from pytest_notebooks.review.render import DEFAULT_BUDGET, MIN_BUDGET, Review, render_markdown, render_text

FORMATS = ("markdown", "text", "html", "json")
# The --format json document (review.schema.json; README "The review report"). The version changes
# when a field is removed, renamed or changes meaning; a new field may appear within one.
REVIEW_SCHEMA = "pytest-notebooks/review"
REVIEW_VERSION = 1
SCHEMA_FILE = "review.schema.json"
EXIT_CODES = f"""\
exit codes:
  {ExitCode.OK:d}  written: the review is on stdout or in --output; failing tests do not change it (pytest gates)
  {ExitCode.FAILED:d}  failed: git's answer could not be read whole; nothing is written, so that a review never
     silently misses a change
  {ExitCode.USAGE:d}  usage: bad arguments, an unknown revision, an unreadable results file or repository, or an
     --output that cannot be written; one line on stderr
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="nbreview",
        description="Write the notebook review for a pull request: test results, template changes\n"
        "(base...head, as GitHub shows a PR) and snapshot output changes, as Markdown\n"
        "for a PR comment or text for a terminal. With $GITHUB_STEP_SUMMARY set, the\n"
        "Markdown is also appended to the job summary.",
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,  # the exit codes as written, one a line
    )
    parser.add_argument("--base", help="the revision the PR merges into, e.g. origin/main")
    parser.add_argument("--head", default="HEAD", help="the PR's revision (default: HEAD)")
    parser.add_argument(
        "--results",
        type=Path,
        help=f"a pytest-notebooks results file (default: {DEFAULT_RESULTS} here or in the nearest directory "
        "above, up to the repository root, as nbpromote finds it; left out when there is none)",
    )
    parser.add_argument("--output", type=Path, help="write here instead of stdout")
    parser.add_argument(
        "--format",
        choices=FORMATS,
        default="markdown",
        help="markdown (a PR comment), text (a terminal), html (the self-contained report of "
        "pytest --notebooks-html, built from the results file, e.g. after shards are merged) or json "
        f"(one document for scripts; schema: {SCHEMA_FILE} in the package)",
    )
    parser.add_argument("--version", action="version", version=f"nbreview (pytest-notebooks {__version__})")
    parser.add_argument("--repo", type=Path, default=Path("."), help="the repository (default: .)")
    parser.add_argument(
        "--budget",
        type=int,
        default=DEFAULT_BUDGET,
        help=f"Markdown size cap in UTF-8 bytes (default: {DEFAULT_BUDGET}, at least {MIN_BUDGET})",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.budget < MIN_BUDGET:
        parser.error(f"--budget {args.budget} is too small; give at least {MIN_BUDGET}")
    results_note = ""
    try:
        found = args.results if args.results is not None else find_results(Path("."), _repository_root(args.repo))
        if found is not None:
            results = load_results(found)
        else:
            results = None
            results_note = (
                f"No test results: there is no {DEFAULT_RESULTS} here or above, up to the repository root "
                "(nbreview --results names the file)."
            )
        naming = FixtureNaming.of(results.fixture_suffixes if results is not None else None)
        changes = pull_request_changes(args.repo, args.base, args.head, naming) if args.base else []
    except GitOutputError as exc:
        print(f"nbreview: {exc}; no review written", file=sys.stderr)
        return ExitCode.FAILED
    except (GitError, ResultsError, OSError) as exc:  # a revision, the results file, the repository path
        print(f"nbreview: {exc}", file=sys.stderr)
        return ExitCode.USAGE
    review = Review(
        results=results, templates=tuple(changes), base=args.base, head=args.head, results_note=results_note
    )
    markdown = render_markdown(review, budget=args.budget)
    text = _render(args, review, markdown)
    if args.output:
        try:
            atomic_write(args.output, text)
        except OSError as exc:
            print(f"nbreview: could not write --output {args.output}: {exc.strerror or exc}", file=sys.stderr)
            return ExitCode.USAGE
    else:
        sys.stdout.write(text)
    problem = append_step_summary(markdown)
    if problem:  # the review itself was written: said, not fatal
        print(f"nbreview: warning: {problem}", file=sys.stderr)
    return ExitCode.OK


def _render(args: argparse.Namespace, review: Review, markdown: str) -> str:
    """The review in the format asked for (the Markdown is made anyway, for the job summary)."""
    if args.format == "html":
        from pytest_notebooks.review.html import render_html

        results = review.results
        root = Path(results.rootdir if results else ".")
        base = root if root.is_dir() else Path(".")
        report_dir = args.output.parent if args.output else Path(".")  # stdout: links from where it is run
        return render_html(results, base, changes_text=render_text(review) if args.base else "", report_dir=report_dir)
    if args.format == "json":
        return json.dumps(review_document(review), indent=2, allow_nan=False) + "\n"
    return markdown if args.format == "markdown" else render_text(review)


# -- --format json: the review as one document, from the records -------------------------------------


def review_document(review: Review) -> dict[str, Any]:
    """The review as JSON: the verdict, every case, and (with a base) every change of the pull request.

    The same records as the Markdown and the text, unabridged (no size budget) and not escaped for
    GitHub or a terminal: strings are the records' own (JSON escapes what needs it).
    """
    ok, summary = review.verdict()
    counts = review.counts()
    return {
        "schema": REVIEW_SCHEMA,
        "version": REVIEW_VERSION,
        "base": review.base,
        "head": review.head,
        "verdict": ("passed" if ok else "failed") if review.results else "not reported",
        "summary": summary,
        "counts": {outcome.value: counts[outcome] for outcome in Outcome if counts[outcome]},
        "results": None if review.results is None else _results_json(review.results),
        "results_note": review.results_note or None,
        "cases": [_case_json(case) for case in review.cases()],
        "changes": None if review.base is None else _changes_json(review.templates),
    }


def _results_json(results: ResultsDocument) -> dict[str, Any]:
    return {
        "created": results.created,
        "git": None if results.git is None else results.git.to_json(),
        "session": results.session.to_json(),
        "sessions": [session.to_json() for session in results.sessions],
    }


def _case_json(case: CaseRecord) -> dict[str, Any]:
    """A case as the review's table shows it (no parameters: the review never shows them)."""
    ran = case.outcome is not Outcome.NOT_RUN
    return {
        "nodeid": case.nodeid,
        "notebook": case.notebook,
        "fixture": case.fixture,
        "case": case.case,
        "outcome": case.outcome.value,
        "ok": case.outcome.ok,
        "duration": round(case.duration, 3) if ran and math.isfinite(case.duration) else None,
        "flaky": case.flaky,
        "summary": case.summary() or None,
        "failure": None if case.failure is None else case.failure.to_json(),
        "snapshot": None if case.snapshot is None else case.snapshot.to_json(),
    }


def _changes_json(changes: Sequence[Change]) -> dict[str, list[dict[str, Any]]]:
    return {
        "templates": [_template_json(c) for c in changes if isinstance(c, TemplateChange)],
        "fixtures": [_fixture_json(c) for c in changes if isinstance(c, FixtureChange)],
        "snapshots": [_snapshot_json(c) for c in changes if isinstance(c, SnapshotUpdate)],
    }


def _template_json(change: TemplateChange) -> dict[str, Any]:
    branching = change.branching
    return {
        "path": change.path,
        "status": change.status,
        "old_path": change.old_path,
        "summary": change.summary(),
        "problem": change.problem or None,
        "cells": change.cells,
        "branching": None if branching is None else {"base": branching[0], "head": branching[1]},
        "changes": [cell.to_json() for cell in change.diff.changes],
    }


def _fixture_json(change: FixtureChange) -> dict[str, Any]:
    return {
        "path": change.path,
        "status": change.status,
        "old_path": change.old_path,
        "notebook": change.notebook,
        "summary": change.summary(),
        "problem": change.problem or None,
        "settings": [_value_json(value) for value in change.settings],
        "defaults": [_value_json(value) for value in change.defaults],
        "cases": [_fixture_case_json(case) for case in change.cases],
        "text_diff": list(change.text_diff),
    }


def _fixture_case_json(case: CaseChange) -> dict[str, Any]:
    return {
        "case": case.case_id,
        "kind": case.kind,
        "parameters": [_value_json(value) for value in case.parameters],
        "settings": [_value_json(value) for value in case.settings],
    }


def _value_json(value: ValueChange) -> dict[str, Any]:
    return {"name": value.name, "before": value.before, "after": value.after}


def _snapshot_json(change: SnapshotUpdate) -> dict[str, Any]:
    return {
        "path": change.path,
        "status": change.status,
        "notebook": change.notebook,
        "case": change.case,
        "summary": change.summary(),
        "problem": change.problem or None,
        "changes": [cell.to_json() for cell in change.diff.changes],
    }


def _repository_root(repo: Path) -> Path | None:
    """The root of the repository holding ``repo``; None outside git (then the search stops at ``.``)."""
    try:
        state = git_state(repo)
    except GitUnusable:
        return None
    return state.root if state is not None else None


if __name__ == "__main__":
    raise SystemExit(main())
