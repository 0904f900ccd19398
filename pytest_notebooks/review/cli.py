"""``nbreview``: the review document for a pull request, from git and a results file.

Exit codes: 0 written; 1 git's answer could not be read whole (nothing is written); 2 bad arguments,
an unknown revision or an unreadable results file (one line on stderr). Test failures do not change
the exit code: pytest gates. The default ``--results`` may be missing (the review says it has no
results); a results file named explicitly must exist.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from pytest_notebooks import __version__
from pytest_notebooks.errors import GitError, GitOutputError, GitUnusable, ResultsError
from pytest_notebooks.exitcodes import ExitCode
from pytest_notebooks.files import atomic_write
from pytest_notebooks.gitinfo import git_state
from pytest_notebooks.results.read import DEFAULT_RESULTS, find_results, load_results
from pytest_notebooks.review.changes import pull_request_changes
from pytest_notebooks.review.github import append_step_summary
from pytest_notebooks.review.render import DEFAULT_BUDGET, MIN_BUDGET, Review, render_markdown, render_text


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="nbreview",
        description="Write the notebook review for a pull request: test results, template changes "
        "(base...head, as GitHub shows a PR) and snapshot output changes, as Markdown for a PR "
        "comment or text for a terminal. With $GITHUB_STEP_SUMMARY set, the Markdown is also "
        "appended to the job summary.",
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
        choices=("markdown", "text", "html"),
        default="markdown",
        help="markdown (a PR comment), text (a terminal) or html (the self-contained report of "
        "pytest --notebooks-html, built from the results file, e.g. after shards are merged)",
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
        changes = pull_request_changes(args.repo, args.base, args.head) if args.base else []
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
    if args.format == "html":
        from pytest_notebooks.review.html import render_html

        root = Path(results.rootdir if results else ".")
        base = root if root.is_dir() else Path(".")
        report_dir = args.output.parent if args.output else Path(".")  # stdout: links from where it is run
        text = render_html(results, base, changes_text=render_text(review) if args.base else "", report_dir=report_dir)
    else:
        text = markdown if args.format == "markdown" else render_text(review)
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


def _repository_root(repo: Path) -> Path | None:
    """The root of the repository holding ``repo``; None outside git (then the search stops at ``.``)."""
    try:
        state = git_state(repo)
    except GitUnusable:
        return None
    return state.root if state is not None else None


if __name__ == "__main__":
    raise SystemExit(main())
