"""The parameters cells of R, Julia and Scala notebooks, read directly (no kernel, no pytest run)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from types import FrameType
from typing import Any

import pytest

from pytest_notebooks.cases.languages import (
    NOT_READ,
    READERS,
    misread,
    notebook_language,
    read_julia,
    read_parameters,
    read_r,
    read_scala,
    statements,
    tokens,
    translated_as,
    untranslatable,
)
from pytest_notebooks.cases.notebook import parse_parameters
from pytest_notebooks.models import DeclaredParameter

Kinds = dict[str, str | None]


def kinds(found: tuple[DeclaredParameter, ...] | None) -> Kinds:
    assert found is not None
    return {parameter.name: parameter.type_name for parameter in found}


# ------------------------------------------------------------------------------------------- R

R_CELL = """\
# the defaults
n_rows <- 10L
label = "all rows"   # a comment with "quotes" and <- arrows
ratio <- -1.5e3
hex <- 0x1F
flag <- TRUE
short_flag = F
nothing <- NULL
missing_value <- NA
missing_text <- NA_character_
infinite <- -Inf
complex <- 2i
regions <- c("fr",
             "de")
options <- list(1, "a")
settings <- list(a = 1, "b" = list(c = 2))
empty <- list()
raw <- r"(a "quoted" \\ thing)"
dashed <- R'---[x]---'
`odd name` <- 'single'
today <- Sys.Date()
total <- 1 + 2
f <- function(x) {
  inner <- 1
  x
}
a <- b <- 3
5 -> right
deep <<- "global"
if (!exists("later")) later <- 1
df$col <- 2
names(x) <- "n"
"""


def test_r_assignments_and_the_kinds_of_their_literals() -> None:
    assert kinds(read_r(R_CELL)) == {
        "n_rows": "int",
        "label": "str",
        "ratio": "float",
        "hex": "int",
        "flag": "bool",
        "short_flag": "bool",
        "nothing": None,  # NULL and NA: any kind, as Python's None
        "missing_value": None,
        "missing_text": "str",
        "infinite": "float",
        "complex": None,
        "regions": None,  # a vector: "fr" and c("fr") are one thing in R
        "options": "list",
        "settings": "dict",
        "empty": None,  # list() stands for a list and a mapping alike
        "raw": "str",
        "dashed": "str",
        "odd name": "str",
        "today": None,
        "total": None,
        "f": None,
        "a": "int",
        "b": "int",
        "right": "int",
        "deep": "str",
    }


def test_r_declarations_carry_the_line_of_the_cell() -> None:
    found = read_r('# c\nx <- 1\ny = c(1,\n  2); z <- "a"\n')
    assert found == (
        DeclaredParameter("x", "int", 2),
        DeclaredParameter("y", None, 3),
        DeclaredParameter("z", "str", 4),
    )


def test_r_kinds_compare_with_what_python_gives() -> None:
    r = kinds(read_r('s <- "a"\ni <- 1L\nn <- 2\nf <- 2.5\nb <- TRUE\nl <- list(1)\nd <- list(k = 1)\nz <- NULL'))
    python = kinds(parse_parameters('s = "a"\ni = 1\nn = 2\nf = 2.5\nb = True\nl = [1]\nd = {"k": 1}\nz = None'))
    assert r == python


def test_a_later_assignment_gives_the_kind_as_in_python() -> None:
    assert read_r('x <- 1\nx <- "a"') == (DeclaredParameter("x", "str", 2),)


@pytest.mark.parametrize(
    "source",
    [
        'x <- "never closed',
        "x <- c(1, 2",
        "x <- list(1))",
        'x <- r"(never closed"',
        "x <- `odd",
    ],
)
def test_an_r_cell_that_cannot_be_read_whole_is_not_read(source: str) -> None:
    assert read_r(source) is None


def test_an_r_operator_at_the_end_of_a_line_continues_the_statement() -> None:
    assert kinds(read_r("x <-\n  5\ny <- 1 +\n 2")) == {"x": "int", "y": None}


# --------------------------------------------------------------------------------------- Julia

JULIA_CELL = '''\
#= a block #= nested =# comment =#
n_rows = 10
const label = "x"
ratio::Float64 = 1.5
single = 1f0
flag = true
nothing_here = nothing
gone = missing
negative = -Inf
xs = [1, 2,
      3]
typed = Dict{String,Int}()
d = Dict("a" => 1)
pattern = r"re"
raw_text = raw"a\\b"
char = 'c'
transposed = xs'
triple = """tri"ple"""
interpolated = "n = $(n_rows)"
function f(x)
    inner = 1
    return x[end]
end
squares = [i^2 for i in 1:3 if i > 1]
a = b = 2
first_one = xs[begin]
abstract type Shape end
mutable struct Point
    x::Int
end
map(xs) do x
    hidden = x
end
x += 1
'''


def test_julia_assignments_and_the_kinds_of_their_literals() -> None:
    assert kinds(read_julia(JULIA_CELL)) == {
        "n_rows": "int",
        "label": "str",
        "ratio": "float",
        "single": "float",
        "flag": "bool",
        "nothing_here": None,
        "gone": None,
        "negative": "float",
        "xs": "list",
        "typed": "dict",
        "d": "dict",
        "pattern": None,  # a Regex
        "raw_text": "str",
        "char": None,  # a Char is not a String
        "transposed": None,
        "triple": "str",
        "interpolated": "str",
        "squares": "list",
        "a": "int",
        "b": "int",
        "first_one": None,
    }


@pytest.mark.parametrize("source", ["function f()\n  x = 1\n", "x = 1\nend", 'x = "open', "#= never closed", "x = 'ab"])
def test_a_julia_cell_that_cannot_be_read_whole_is_not_read(source: str) -> None:
    assert read_julia(source) is None


# --------------------------------------------------------------------------------------- Scala

SCALA_CELL = """\
/* a /* nested */ comment */
val nRows = 10
val label: String = "x"
var ratio = 1.5f
final val big = 10L
lazy val hex = 0x1F
val flag = true
val nothing = null
val none = None
val xs = Seq(1, 2)
val ys = List[Int](1)
val m = Map("a" -> 1)
val typed: Map[String, Int] = Map()
val interpolated = s"n=$nRows"
val triple = \"\"\"a "quoted" text\"\"\"
val c = 'c'
val a, b = 0
val (p, q) = (1, 2)
def f(x: Int) = {
  val inner = 1
  x
}
val chained = xs
  .map(_ + 1)
val later =
  "on the next line"
"""


def test_scala_vals_and_vars_and_the_kinds_of_their_literals() -> None:
    assert kinds(read_scala(SCALA_CELL)) == {
        "nRows": "int",
        "label": "str",
        "ratio": "float",
        "big": "int",
        "hex": "int",
        "flag": "bool",
        "nothing": None,
        "none": None,
        "xs": "list",
        "ys": "list",
        "m": "dict",
        "typed": "dict",
        "interpolated": "str",
        "triple": "str",
        "c": None,
        "a": "int",
        "b": "int",
        "chained": None,
        "later": "str",
    }


@pytest.mark.parametrize("source", ['val x = "open', "val x = Seq(1", "/* never closed", "val x = (1))"])
def test_a_scala_cell_that_cannot_be_read_whole_is_not_read(source: str) -> None:
    assert read_scala(source) is None


# ---------------------------------------------------------------------------- which language


@pytest.mark.parametrize(("language", "read"), [("R", True), ("r", True), ("julia", True), ("Scala", True)])
def test_languages_are_matched_in_any_case(language: str, read: bool) -> None:
    assert (read_parameters(language, "x = 1") is not None) is read


@pytest.mark.parametrize("language", [*NOT_READ, "python", "ocaml", None, 3])
def test_other_languages_are_not_read_here(language: object) -> None:
    assert read_parameters(language, "x = 1") is None


def test_every_language_is_read_or_listed_as_not_read() -> None:
    from papermill.translators import papermill_translators

    registered = {name.lower() for name in papermill_translators._translators}  # papermill lists them nowhere else
    kernels = {"pysparkkernel", "sparkkernel", "sparkrkernel"}  # kernel names papermill maps to a language
    assert registered - kernels == {*READERS, *NOT_READ, "python"}


def test_a_notebooks_language_is_its_language_info_then_its_kernelspec() -> None:
    assert notebook_language({"metadata": {"language_info": {"name": "R"}, "kernelspec": {"language": "x"}}}) == "R"
    assert notebook_language({"metadata": {"kernelspec": {"language": "julia"}}}) == "julia"
    assert notebook_language({"metadata": {"kernelspec": {"language": 3}}}) is None
    assert notebook_language({"metadata": []}) is None


def test_tokens_and_statements_of_a_cell() -> None:
    found = tokens('x <- c(1,\n 2) # note\ny = "a\nb"', "r")
    assert found is not None
    assert [t.text for t in found] == ["x", "<-", "c", "(", "1", ",", "\n", "2", ")", "\n", "y", "=", '"a\nb"']
    parts = statements(found, "r")
    assert parts is not None
    assert [[t.text for t in part] for part in parts] == [
        ["x", "<-", "c", "(", "1", ",", "2", ")"],
        ["y", "=", '"a\nb"'],
    ]
    assert found[-1].line == 3  # the line the string starts on


def test_a_long_cell_is_read_without_being_remembered() -> None:
    source = "".join(f"p{index} <- {index}\n" for index in range(1000))
    assert len(kinds(read_parameters("R", source))) == 1000


# ------------------------------------------------------------------------------ hostile cells

N = 50_000
HOSTILE: dict[str, tuple[str, Callable[[int], str]]] = {
    "r-signs": ("R", lambda n: "x <- " + "-" * n + "1"),
    "r-chain": ("R", lambda n: "a <- " * n + "1"),
    "r-nesting": ("R", lambda n: "x <- " + "(" * n + ")" * n),
    "r-arguments": ("R", lambda n: "x <- list(" + "1," * n + "1)"),
    "julia-blocks": ("julia", lambda n: "begin\n" * n + "end\n" * n),
    "julia-indices": ("julia", lambda n: "x = a[" * n + "end" + "]" * n),
    "julia-comments": ("julia", lambda n: "#=" * n + "=#" * n),
    "scala-comments": ("scala", lambda n: "/*" * n + "*/" * n),
    "scala-calls": ("scala", lambda n: "val x = 1" + "\n  .f" * n),
    "scala-names": ("scala", lambda n: "val " + "a, " * n + "b = 1"),
}


def _lines_run(language: str, source: str) -> int:
    """How many lines of Python reading ``source`` runs: the work, counted, whatever the machine's
    speed or load (both wall clock and CPU time gave 11-14x for a 4x read on a loaded machine)."""
    import sys

    from pytest_notebooks.cases import languages

    languages._remembered.cache_clear()  # read now, not remembered from an earlier test
    count = 0

    def tracer(frame: FrameType, event: str, arg: Any) -> Any:  # sys.settrace's TraceFunction
        nonlocal count
        count += event == "line"
        return tracer

    before = sys.gettrace()  # coverage's, under pytest --cov
    sys.settrace(tracer)
    try:
        read_parameters(language, source)
    finally:
        sys.settrace(before)
    return count


@pytest.mark.parametrize(("language", "cell"), HOSTILE.values(), ids=HOSTILE.keys())
def test_a_hostile_cell_is_read_in_linear_time(language: str, cell: Callable[[int], str]) -> None:
    """Collection reads every notebook: nothing a cell holds may make it quadratic (a quadratic step
    once made one of these take minutes at N). Judged by the lines of Python run, not by a clock:
    four times the cell runs about four times the lines (a quadratic reading, sixteen)."""
    small, large = _lines_run(language, cell(N // 25)), _lines_run(language, cell(N // 25 * 4))
    assert large < 6 * small, f"{small:,} lines run for {N // 25:,}, {large:,} for {N // 25 * 4:,}"


# ------------------------------------------------------------- text papermill writes wrong


def rendered_wrong(translated: str, text: str) -> bool:
    r"""Whether papermill's own translator writes ``text`` in a way the language reads wrong: R and
    Julia read ``\xNN`` from 80 up as a raw byte; Scala has neither ``\x`` nor ``\U``; Julia
    interpolates an unescaped ``$``."""
    from papermill.translators import JuliaTranslator, RTranslator, ScalaTranslator

    translator = {"r": RTranslator, "julia": JuliaTranslator, "scala": ScalaTranslator}[translated]
    written = str(translator.translate(text))
    wrong = {"r": r"\\x[89a-f]", "julia": r"\\x[89a-f]|(?<!\\)\$", "scala": r"\\[xU]"}[translated]
    return re.search(wrong, written) is not None


SAMPLED = [
    *range(0xD800),  # the Basic Multilingual Plane up to the surrogates (refused for any notebook)
    *range(0xE000, 0x10000, 7),
    *range(0x10000, 0x110000, 4099),
    0x1F600,
    0x10FFFF,
]


@pytest.mark.parametrize(("language", "translated"), [("R", "r"), ("julia", "julia"), ("scala", "scala")])
def test_exactly_the_characters_papermill_writes_wrong_are_refused(language: str, translated: str) -> None:
    refused = [code for code in SAMPLED if misread("x", chr(code), None, language) is not None]
    wrong = [code for code in SAMPLED if rendered_wrong(translated, chr(code))]
    assert refused == wrong
    expected = set(range(0x80, 0x100))
    if translated == "julia":
        expected.add(ord("$"))
    if translated == "scala":
        expected |= {code for code in SAMPLED if code < 0x20 and chr(code) not in "\t\n\r"} | {0x7F}
        expected |= {code for code in SAMPLED if code > 0xFFFF}
    assert set(refused) == expected


def test_the_translator_is_the_one_papermill_picks() -> None:
    from papermill.translators import JuliaTranslator, RTranslator, ScalaTranslator, papermill_translators

    languages = {RTranslator: "r", JuliaTranslator: "julia", ScalaTranslator: "scala"}
    for name, translator in papermill_translators._translators.items():  # papermill lists them nowhere else
        assert translated_as(name, "python") == languages.get(translator), name
        assert translated_as(None, name) == languages.get(translator), name
        assert translated_as("ir", name) == languages.get(translator), name  # a kernel name it does not know
        assert translated_as(name, None) is None, name  # no language: papermill writes nothing (below)
    assert translated_as("python", "R") is None  # the kernel's name first, as papermill
    assert translated_as("sparkrkernel", "python") == "r"
    assert translated_as("ir", "r") is None  # papermill has no translator for "r": such a run fails anyway
    assert translated_as(None, None) is None


def test_papermill_writes_no_parameters_into_a_notebook_without_a_language() -> None:
    """Whatever the kernel's name: it looks for the notebook's language before its translator."""
    import nbformat
    from papermill.parameterize import parameterize_notebook

    cell = {"cell_type": "code", "metadata": {"tags": ["parameters"]}, "source": 'city <- ""', "outputs": []}
    nb = nbformat.from_dict(  # type: ignore[no-untyped-call]  # nbformat ships no types
        {"nbformat": 4, "metadata": {"kernelspec": {"name": "sparkrkernel", "display_name": "R"}}, "cells": [cell]}
    )
    with pytest.raises(ValueError, match="No language found in notebook"):
        parameterize_notebook(nb, {"city": "Zürich"}, kernel_name="sparkrkernel")
    assert misread("city", "Zürich", "sparkrkernel", None) is None


KERNELS = [None, "python3", "ir", "sparkrkernel", "julia-1.10", "bash", "xpython"]
LANGUAGES = [None, "", "python", "Python", "R", "r", "julia", "scala", "sparkR", "bash", "cobol"]


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("language", LANGUAGES)
def test_what_papermill_cannot_write_parameters_into_is_refused(kernel: str | None, language: str | None) -> None:
    """``untranslatable`` answers as papermill does when it writes parameters (its own code decides)."""
    import nbformat
    from papermill.exceptions import PapermillException
    from papermill.parameterize import parameterize_notebook

    metadata: dict[str, object] = {"kernelspec": {"name": kernel or "k", "display_name": "k"}, "papermill": {}}
    if language is not None:
        metadata["language_info"] = {"name": language}
    cell = {"cell_type": "code", "metadata": {"tags": ["parameters"]}, "source": "", "outputs": []}
    document = {"nbformat": 4, "nbformat_minor": 5, "metadata": metadata, "cells": [cell]}
    nb = nbformat.from_dict(document)  # type: ignore[no-untyped-call]  # nbformat ships no types
    try:
        parameterize_notebook(nb, {"city": "Lyon"}, kernel_name=kernel)
    except (ValueError, PapermillException):
        papermill_can = False
    else:
        papermill_can = True
    assert (untranslatable(kernel, language or None) is None) == papermill_can


def test_what_r_julia_and_scala_are_told() -> None:
    assert misread("city", "Zürich", "ir", "R") == (
        "holds 'ü' (U+00FC), which papermill writes into an R notebook as \\xfc: R reads that as the byte 0xFC, "
        "not as 'ü': the notebook would get text that is not valid UTF-8, and not the text written here (with a "
        "character above U+00FF in the same text, R refuses to parse it)",
        "papermill writes it the same way in production, so a production run gets it wrong too; keep the fixture's "
        'text ASCII and spell the character in R code with a \\u escape ("Z\\u00fcrich"), or pass it '
        'percent-encoded and decode it in the notebook (URLdecode("Z%C3%BCrich")); characters from U+0100 up '
        "(€, 日本) arrive intact",
    )
    assert misread("prices", {"eur": ["5 or 4 £"]}, "julia-1.10", "julia") == (
        "holds '£' (U+00A3) at prices['eur'][0], which papermill writes into a Julia notebook as \\xa3: Julia "
        "reads that as the byte 0xA3, not as '£': the notebook would get a string that is not valid UTF-8, and "
        "not the text written here",
        "papermill writes it the same way in production, so a production run gets it wrong too; keep the fixture's "
        'text ASCII and spell the character in Julia code with a \\u escape ("5 or 4 \\u00a3"), or pass it '
        'base64-encoded and decode it in the notebook (using Base64; String(base64decode("NSBvciA0IMKj")));'
        " characters from U+0100 up (€, 日本) arrive intact",
    )
    assert misread("label", "cost: $(total)", "julia-1.10", "julia") == (
        "holds '$' (U+0024), which papermill writes into a Julia notebook unescaped: Julia reads $ in a string as "
        "interpolation ($name is a variable's value, $(...) runs code): the notebook would get other text than "
        "the text written here, or run it",
        "papermill writes it the same way in production, so a production run gets it wrong too; spell the text in "
        'Julia code with \\$ ("cost: \\$(total)"), or pass it base64-encoded and decode it in the notebook '
        '(using Base64; String(base64decode("Y29zdDogJCh0b3RhbCk=")))',
    )
    assert misread("tags", ["ok", {"smile 😀": 1}], "scala", "scala") == (
        "holds '😀' (U+1F600) in the key 'smile 😀' of tags[1], which papermill writes into a Scala notebook as "
        "\\U0001f600: Scala has no \\U escape, so the injected cell would not compile (invalid escape character)",
        "papermill writes it the same way in production, so a production run gets it wrong too; keep the fixture's "
        'text ASCII and spell the character in Scala code with a \\u escape ("smile \\ud83d\\ude00"), or pass it '
        'percent-encoded and decode it in the notebook (java.net.URLDecoder.decode("smile%20%F0%9F%98%80", '
        '"UTF-8")); characters from U+0100 to U+FFFF (€, 日本) arrive intact',
    )


def test_a_long_text_is_not_spelt_out_in_the_hint() -> None:
    found = misread("note", "x" * 100 + "é", None, "R")
    assert found is not None
    assert '("\\u00e9")' in found[1]
    assert 'URLdecode("%C3%A9")' in found[1]


@pytest.mark.parametrize(
    ("kernel", "language", "value"),
    [
        ("python3", "python", "Zürich"),  # Python reads \xfc as the character
        (None, "matlab", "Zürich"),  # not checked here
        ("ir", "R", "Zurich € 日本 😀 \t\n\r\x01\x7f"),
        ("ir", "R", ["plain", {"k": None, "n": 3}, 1.5, True]),
        ("scala", "scala", "€ 日本 \t\n\r"),
    ],
)
def test_text_papermill_writes_right_is_not_refused(kernel: str | None, language: str, value: object) -> None:
    assert misread("x", value, kernel, language) is None


class _Walked(list[object]):
    """A list that counts how often it is walked."""

    walks = 0

    def __iter__(self) -> Iterator[object]:
        _Walked.walks += 1
        return super().__iter__()


def test_aliased_parts_of_a_value_are_looked_at_once() -> None:
    shared: list[object] = _Walked(["a" * 1000])
    for _ in range(60):  # 2**60 paths through the value, as YAML aliases make
        shared = _Walked([shared, shared])
    _Walked.walks = 0
    assert misread("x", shared, "ir", "R") is None
    assert _Walked.walks == 61  # each list once


# ------------------------------------------------- the kernel a case runs with picks the translator

CITY = "city: Zürich"


def collected(fixture: str, kernel: str | None, language: str | None, session: str | None = None) -> str:
    """The collection error of ``fixture`` for a notebook of that kernelspec name and language
    (``session``: the kernel the command line or ini runs every case with); "" when it is collected."""
    from pathlib import Path

    from pytest_notebooks.cases.params import fixture_cases
    from pytest_notebooks.errors import FixtureError
    from pytest_notebooks.models import NotebookInfo

    info = NotebookInfo(Path("nb.ipynb"), "", kernel, language, 1, (), False)
    try:
        fixture_cases(Path("nb.yaml"), fixture.encode(), info, "nb.yaml", kernel=session)
    except FixtureError as exc:
        return str(exc)
    return ""


SPARKR = "(the kernel 'sparkrkernel' gets papermill's R translator)"


@pytest.mark.parametrize(
    ("fixture", "expected"),
    [
        (
            f"cases:\n  spark:\n    parameters: {{{CITY}}}\n    kernel: sparkrkernel\n",
            f"nb.yaml:3: case 'spark': parameter 'city' holds 'ü' (U+00FC), which papermill writes into an R "
            f"notebook as \\xfc {SPARKR}: R reads",
        ),
        (
            f"kernel: sparkrkernel\nparameters:\n  {CITY}\n",
            f"nb.yaml:3: the defaults: parameter 'city' holds 'ü' (U+00FC), which papermill writes into an R "
            f"notebook as \\xfc {SPARKR}: R reads",
        ),
        (  # a default is checked for each kernel a case that uses it runs with
            f"parameters:\n  {CITY}\ncases:\n  local: {{}}\n  spark:\n    parameters: {{}}\n    kernel: sparkrkernel\n",
            "nb.yaml:2: the defaults, as case 'spark' runs with them: parameter 'city' holds 'ü' (U+00FC), which "
            f"papermill writes into an R notebook as \\xfc {SPARKR}: R reads",
        ),
    ],
    ids=["case-kernel", "file-kernel", "default-in-a-case-kernel"],
)
def test_a_fixture_kernel_papermill_writes_r_for_is_checked_as_r(fixture: str, expected: str) -> None:
    assert collected(fixture, "python3", "python").startswith(expected)


def test_the_kernel_every_case_runs_with_is_checked_too() -> None:
    assert collected(f"parameters:\n  {CITY}\n", "python3", "python") == ""
    assert collected(f"parameters:\n  {CITY}\n", "python3", "python", session="sparkrkernel").startswith(
        f"nb.yaml:2: the defaults: parameter 'city' holds 'ü' (U+00FC), which papermill writes into an R notebook as "
        f"\\xfc {SPARKR}: R reads"
    )
    # it wins over the fixture's, as when the case runs
    fixture = f"kernel: sparkrkernel\nparameters:\n  {CITY}\n"
    assert collected(fixture, "python3", "python", session="python3") == ""


@pytest.mark.parametrize(
    ("fixture", "kernel", "language", "refused"),
    [
        ("kernel: ir\n", "ir", "R", True),  # an R notebook stays R whatever its kernel's name
        ("kernel: ir43\n", "ir", "R", True),
        ("kernel: sparkrkernel\n", "ir", "R", True),
        ("kernel: julia-1.10\n", "julia-1.9", "julia", True),
        ("", "sparkrkernel", "sparkR", True),  # sparkmagic's R kernel: its name says R
        ("kernel: ir\n", "sparkrkernel", "sparkR", "papermill has no translator"),  # for ir nor sparkR
        ("kernel: ir\n", "ir", None, "the notebook names no language"),  # papermill writes no parameters at all
        ("kernel: python3\n", "sparkrkernel", "python", False),
    ],
)
def test_the_kernel_a_case_runs_with_decides_what_is_refused(
    fixture: str, kernel: str, language: str | None, refused: bool | str
) -> None:
    problem = collected(f"{fixture}parameters:\n  {CITY}\n", kernel, language)
    assert bool(problem) == bool(refused), problem
    if isinstance(refused, str):  # not as R's text: papermill cannot write the parameters at all
        assert f"case 'default': {refused}" in problem, problem
