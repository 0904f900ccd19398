"""Source too deep to parse safely is refused before ast.parse (Python 3.10 segfaults on it)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from pytest_notebooks import pysource
from pytest_notebooks.cases.principles import measure
from pytest_notebooks.cases.selection import imports_of

CHAIN = "x = " + " + ".join(["1"] * 200_000)  # a segmentation fault in ast.parse on Python 3.10


@pytest.mark.parametrize(
    ("source", "longest"),
    [
        ("x = [" + ", ".join(f"'r{i}'" for i in range(50_000)) + "]", 1),  # a long flat literal: one bracket
        ("a = 1 + 2\nb = c.d(e)[0]\n", 3),  # per statement: '.', '(', '[' on the second line
        ("x = (1 +\n  2 +\n  3)", 3),  # one statement over three lines
        ("y = -1 if not z else lambda: 2", 5),
        ("x = (1 +", 2),  # what tokenizes before the error
    ],
)
def test_longest_chain_counts_what_deepens_the_tree_per_statement(source: str, longest: int) -> None:
    assert pysource.longest_chain(source) == longest


@pytest.mark.parametrize(
    "source",
    [CHAIN, "x = a" + ".b" * 30_000, "x = f" + "()" * 30_000, "x = " + "-" * 30_000 + "1"],
    ids=["binary", "attributes", "calls", "unary"],
)
def test_a_statement_past_the_bound_is_a_recursion_error_not_a_crash(source: str) -> None:
    with pytest.raises(RecursionError, match="nests more than 20,000 levels"):
        pysource.parse(source)


def test_ordinary_and_broken_source_parse_as_with_ast() -> None:
    assert [type(node).__name__ for node in pysource.parse("import pandas as pd\nx = [1, 2]\n").body] == [
        "Import",
        "Assign",
    ]
    with pytest.raises(SyntaxError):
        pysource.parse("x = (")


def test_the_principles_and_the_change_selection_skip_a_cell_too_deep_to_parse() -> None:
    cells = [{"cell_type": "code", "source": "import vidlib"}, {"cell_type": "code", "source": CHAIN}]
    assert measure(cells).unparsed_cells == (2,)
    assert imports_of(CHAIN + "\nimport vidlib\n") == set()


def test_a_worker_survives_the_cell_on_every_python() -> None:
    """In a fresh interpreter, as a worker would meet it: no crash, whatever the Python version."""
    script = (
        "from pytest_notebooks.cases.principles import measure\n"
        "cells = [{'cell_type': 'code', 'source': 'x = ' + ' + '.join(['1'] * 200_000)}]\n"
        "print(measure(cells).unparsed_cells)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, check=False)
    assert (done.returncode, done.stdout) == (0, "(1,)\n"), done.stderr[-2000:]
