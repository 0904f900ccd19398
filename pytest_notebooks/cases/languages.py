"""The parameters cell of an R, Julia or Scala notebook, read as papermill writes one. Pure.

papermill injects a case's parameters as a new cell after the one tagged ``parameters``, written
by a translator of the notebook's language (papermill/translators.py): ``name = value`` for R and
Julia, ``val name = value`` for Scala. This module reads the other way: the names a parameters
cell assigns at its top level and the kind of each literal default, as cases/notebook.py does for
Python with ``ast``, so that cases/declared.py checks a fixture against any of them the same way.

=========  =========================================  ==============================================
language   assignments read (top level only)          literal defaults, and the kind they give
=========  =========================================  ==============================================
R          ``x <- v``, ``x = v``, ``x <<- v``,        ``3L`` ``0x1F`` int; ``3`` int, ``1.5`` ``1e3``
           ``v -> x``, chains (``a <- b <- v``),      ``Inf`` ``NA_real_`` float; ``"s"`` ``'s'``
           backquoted names                           ``r"(s)"`` ``NA_character_`` str; ``TRUE``
                                                      ``FALSE`` ``T`` ``F`` bool; ``list(1, 2)`` list;
                                                      ``list(a = 1)`` dict; ``NULL`` ``NA`` ``c(...)``
                                                      ``list()``: any kind (see below)
julia      ``x = v``, ``const``/``global x = v``,     ``3`` ``0x1F`` int; ``1.5`` ``1f0`` ``Inf``
           ``x::T = v``, chains                       float; ``"s"`` ``\"\"\"s\"\"\"`` ``raw"s"``
                                                      str; ``true`` ``false`` bool; ``[...]`` list;
                                                      ``Dict(...)`` dict; ``nothing`` ``missing``
                                                      any kind
scala      ``val``/``var x = v`` (with modifiers),    ``3`` ``3L`` ``0x1F`` int; ``1.5`` ``1.5f``
           ``val x: T = v``, ``val a, b = v``         float; ``"s"`` ``s"s"`` ``\"\"\"s\"\"\"`` str;
                                                      ``true`` ``false`` bool; ``Seq(...)``
                                                      ``List(...)`` ``Vector(...)`` ``Array(...)``
                                                      list; ``Map(...)`` dict; ``null`` ``None`` any
=========  =========================================  ==============================================

A default that is not a literal (a call, a name, arithmetic) declares its name with no kind, as in
Python. An R vector ``c(...)`` has no kind either: R makes no difference between ``"fr"`` and
``c("fr")``, so a scalar and a list (papermill writes a YAML list as ``list(...)``) both stand for
it. A cell that cannot be read whole (a string or comment left open, brackets or ``end`` that do
not match) is not checked at all, like a Python cell that does not parse.

``misread`` finds the text papermill writes for R, Julia or Scala in a way the language reads wrong
(see there), which cases/params.py refuses at collection.

Languages papermill translates whose cells are not read here are ``NOT_READ``; their fixtures are
checked for a tagged parameters cell only, and the session header says so. A notebook in a
language papermill has no translator for fails when it runs with parameters (papermill refuses).
"""

from __future__ import annotations

import base64
import functools
import re
import urllib.parse
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, NamedTuple

from pytest_notebooks.models import DeclaredParameter

Declared = tuple[DeclaredParameter, ...]

# papermill translates these languages, but their parameters cells are not read (name: as shown)
NOT_READ = {
    "matlab": "MATLAB",
    ".net-csharp": "C#",
    ".net-fsharp": "F#",
    ".net-powershell": "PowerShell",
    "bash": "bash",
}


class Token(NamedTuple):
    """One token of a cell: its kind (name, number, string, char, op, open, close, newline), text and line."""

    kind: str
    text: str
    line: int


# -------------------------------------------------------------------------------------- tokens

_R_TOKENS = re.compile(
    r"""
     (?P<newline>\n)
    |(?P<space>[ \t\r\f\v\u00a0]+)
    |(?P<comment>\#[^\n]*)
    |(?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
    |(?P<number>0[xX][0-9a-fA-F]*(?:\.[0-9a-fA-F]*)?(?:[pP][+-]?\d+)?[Li]?
                |(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?[Li]?)
    |(?P<name>(?:[^\W\d_]|\.(?!\d))[\w.]*|`(?:[^`\\]|\\.)*`)
    |(?P<op><<-|->>|->|<-|<=|>=|==|!=|&&|\|\||\|>|:::|::|%[^%\n]*%|[-+*/^<>!&|~?:$@=,;\\])
    |(?P<open>[(\[{])
    |(?P<close>[)\]}])
    |(?P<op_other>[^"'`])
    """,
    re.VERBOSE | re.DOTALL,
)
_R_RAW = re.compile(r"""[rR](["'])(-*)([(\[{])""")  # r"(...)", R'[...]', r"--{...}--" (R 4.0)

_JULIA_TOKENS = re.compile(
    r"""
     (?P<newline>\n)
    |(?P<space>[ \t\r\f\v\u00a0]+)
    |(?P<comment>\#(?!=)[^\n]*)
    |(?P<string>(?:[^\W\d]\w*)?(?:\"\"\"(?:[^"\\]|\\.|"(?!""))*\"\"\"|"(?:[^"\\]|\\.)*"))
    |(?P<number>0[xX][0-9a-fA-F_]+(?:\.[0-9a-fA-F_]*)?(?:[pP][+-]?\d+)?|0[bB][01_]+|0[oO][0-7_]+
                |(?:\d[\d_]*(?:\.(?!\.)[\d_]*)?|\.\d[\d_]*)(?:[eEf][+-]?\d+)?(?:im)?)
    |(?P<name>@?[^\W\d][\w!]*)
    |(?P<op>===|!==|\.\.\.|::|=>|->|==|!=|<=|>=|<:|>:|&&|\|\||\|>|<\||//|>>>|<<|>>|[-+*/\\^%&|]=
           |\.?[-+*/\\^<>=!&|%~]|[?:$.,;])
    |(?P<open>[(\[{])
    |(?P<close>[)\]}])
    |(?P<op_other>[^"'])
    """,
    re.VERBOSE | re.DOTALL,
)
_JULIA_CHAR = re.compile(r"'(?:[^'\\\n]|\\[^'\n]+)'")

_SCALA_TOKENS = re.compile(
    r"""
     (?P<newline>\n)
    |(?P<space>[ \t\r\f\v\u00a0]+)
    |(?P<comment>//[^\n]*)
    |(?P<string>(?:[^\W\d]\w*)?(?:\"\"\"(?:[^"]|"(?!""))*\"\"\"+|"(?:[^"\\\n]|\\.)*"))
    |(?P<char>'(?:[^'\\\n]|\\[^'\n]+)')
    |(?P<name>[^\W\d][\w$]*|`[^`\n]+`|'[^\W\d]\w*)
    |(?P<number>0[xX][0-9a-fA-F_]+[lL]?|(?:\d[\d_]*(?:\.\d[\d_]*)?|\.\d[\d_]*)(?:[eE][+-]?\d+)?[lLfFdD]?)
    |(?P<op>=>|<-|->|==|!=|<=|>=|&&|\|\||::|\+\+|[-+*/%<>=!&|^~?:\#@.,;])
    |(?P<open>[(\[{])
    |(?P<close>[)\]}])
    |(?P<op_other>[^"'`])
    """,
    re.VERBOSE | re.DOTALL,
)

_PAIRS = {"(": ")", "[": "]", "{": "}"}
_ENDS_EXPRESSION = ("name", "number", "string", "char", "close")


def tokens(source: str, language: str) -> list[Token] | None:
    """The tokens of ``source`` in ``language`` (``r``, ``julia``, ``scala``), comments and spaces
    left out; None when a string or a comment is left open."""
    pattern = {"r": _R_TOKENS, "julia": _JULIA_TOKENS, "scala": _SCALA_TOKENS}[language]
    found: list[Token] = []
    pos, line = 0, 1
    while pos < len(source):
        special = _special(source, pos, language, found)
        if special is not None:
            kind, end = special
        else:
            match = pattern.match(source, pos)
            if match is None:
                return None  # a quote that is never closed
            kind, end = str(match.lastgroup).removesuffix("_other"), match.end()
        if end < 0:
            return None
        if kind not in ("space", "comment"):
            found.append(Token(kind, source[pos:end], line))
        line += source.count("\n", pos, end)
        pos = end
    return found


def _special(source: str, pos: int, language: str, found: list[Token]) -> tuple[str, int] | None:
    """Tokens a regular expression cannot end: nested block comments, R's raw strings and Julia's
    quote (a character, or the transpose after a value). ``(kind, end)``; end -1 when left open."""
    if language == "r":
        raw = _R_RAW.match(source, pos)
        if raw is None:
            return None
        quote, dashes, bracket = raw.groups()
        close = source.find(_PAIRS[bracket] + dashes + quote, raw.end())
        return "string", close + len(dashes) + 2 if close >= 0 else -1
    opener = {"julia": ("#=", "=#"), "scala": ("/*", "*/")}[language]
    if source.startswith(opener[0], pos):
        return "comment", _nested_end(source, pos, *opener)
    if language == "julia" and source.startswith("'", pos):
        if found and (found[-1].kind in _ENDS_EXPRESSION or found[-1].text == "'"):
            return "op", pos + 1  # a' transposes
        char = _JULIA_CHAR.match(source, pos)
        return "char", char.end() if char else -1
    return None


def _nested_end(source: str, pos: int, opener: str, closer: str) -> int:
    """The end of the block comment that starts at ``pos``, comments nested in it included; -1 when
    it is never closed."""
    depth, pos = 1, pos + len(opener)
    closing = source.find(closer, pos)
    while closing >= 0:
        opening = source.find(opener, pos, closing)  # each stretch is searched once: linear in the cell
        if opening >= 0:
            depth, pos = depth + 1, opening + len(opener)
            continue
        depth, pos = depth - 1, closing + len(closer)
        if depth == 0:
            return pos
        closing = source.find(closer, pos)
    return -1


# ---------------------------------------------------------------------------------- statements

_JULIA_BLOCKS = frozenset(
    {"begin", "while", "if", "for", "try", "let", "function", "macro", "quote", "do", "module", "baremodule", "struct"}
)


def statements(found: Sequence[Token], language: str) -> list[list[Token]] | None:
    """The top-level statements of a cell's tokens; None when brackets (or Julia's blocks and
    ``end``) do not match. A newline inside brackets or a block, or after an operator, continues a
    statement, as do a Scala line that starts with ``.``; ``;`` ends one."""
    result: list[list[Token]] = []
    current: list[Token] = []
    stack: list[str] = []
    for token in found:
        if token.kind == "newline" or (token.text == ";" and not stack):
            if stack or (token.kind == "newline" and _continues(current)):
                continue
            if current:
                result.append(current)
            current = []
            continue
        if not _nest(token, stack, current[-1] if current else None, language):
            return None
        if not current and result and language == "scala" and token.text == ".":
            current = result.pop()  # `xs\n  .map(f)`: the line goes on with a method call
        current.append(token)
    if stack:
        return None
    if current:
        result.append(current)
    return result


def _continues(current: list[Token]) -> bool:
    """Whether the statement goes on past a newline: it ends with an operator (``x <-``, then the
    value on the next line)."""
    return bool(current) and current[-1].kind == "op" and current[-1].text not in ("'", "...")


def _nest(token: Token, stack: list[str], previous: Token | None, language: str) -> bool:
    """Follow brackets (and Julia's blocks) on ``stack``; False when they do not match."""
    if token.kind == "open":
        stack.append(token.text)
    elif token.kind == "close":
        if not stack or _PAIRS.get(stack[-1]) != token.text:
            return False
        stack.pop()
    elif language == "julia" and token.kind == "name":
        return _julia_block(token.text, stack, previous)
    return True


def _julia_block(word: str, stack: list[str], previous: Token | None) -> bool:
    """Julia's keyword blocks: ``begin``, ``function``, ``if`` and the others open one, ``end``
    closes it. Directly inside ``[...]`` both are indices (``a[begin]``, ``a[end]``); inside other
    brackets ``end`` is an index too (``a[f(end)]``) and ``if``/``for`` belong to a generator."""
    top = stack[-1] if stack else None
    if top == "[":
        return True
    if word == "end":
        if top is None:
            return False
        if top not in _PAIRS:
            stack.pop()
        return True
    opens = word in _JULIA_BLOCKS or (
        word == "type" and previous is not None and previous.text in ("abstract", "primitive")
    )
    if opens and not (word in ("if", "for") and top in _PAIRS):
        stack.append(word)
    return True


def _matching(found: Sequence[Token], start: int) -> int:
    """The index of the bracket that closes the one at ``start`` (-1 when none does)."""
    depth = 0
    for index in range(start, len(found)):
        if found[index].kind == "open":
            depth += 1
        elif found[index].kind == "close":
            depth -= 1
            if depth == 0:
                return index
    return -1


def _arguments(found: Sequence[Token]) -> list[list[Token]]:
    """A bracket's contents split at its top-level commas (no arguments: an empty list)."""
    parts: list[list[Token]] = [[]]
    depth = 0
    for token in found:
        depth += (token.kind == "open") - (token.kind == "close")
        if token.text == "," and depth == 0:
            parts.append([])
        elif token.kind != "newline":
            parts[-1].append(token)
    return [] if parts == [[]] else parts


def _call(found: Sequence[Token], type_bracket: str = "") -> tuple[str, list[list[Token]]] | None:
    """``name(args)`` (``name[T](args)`` with ``type_bracket``): the callee and its arguments."""
    if len(found) < 3 or found[0].kind != "name":
        return None
    start = 1
    if type_bracket and found[1].text == type_bracket:
        start = _matching(found, 1) + 1
    if start <= 0 or start >= len(found) or found[start].text != "(" or _matching(found, start) != len(found) - 1:
        return None
    return found[0].text, _arguments(found[start + 1 : -1])


def _unsigned(found: Sequence[Token]) -> Sequence[Token]:
    """The value without its leading ``-`` and ``+``."""
    start = 0
    while start < len(found) - 1 and found[start].text in ("-", "+"):
        start += 1
    return found[start:]


# --------------------------------------------------------------------------------------------- R


def read_r(source: str) -> Declared | None:
    """The parameters an R cell assigns at top level, with their literal kinds."""
    return _declared(source, "r", _r_assignments, _r_kind)


def _r_assignments(statement: list[Token]) -> list[tuple[Token, list[Token]]]:
    start = 0
    while len(statement) - start > 2 and statement[start].kind == "name" and statement[start + 1].text in _R_ASSIGN:
        start += 2
    if not start and len(statement) > 2 and statement[-1].kind == "name" and statement[-2].text in ("->", "->>"):
        return [(statement[-1], statement[:-2])]
    value = statement[start:]
    return [(statement[index], value) for index in range(0, start, 2)]


_R_ASSIGN = ("<-", "=", "<<-")


_R_CONSTANTS = {
    "TRUE": "bool",
    "FALSE": "bool",
    "T": "bool",
    "F": "bool",
    "Inf": "float",
    "NaN": "float",
    "NA_integer_": "int",
    "NA_real_": "float",
    "NA_character_": "str",
}


def _r_kind(value: Sequence[Token]) -> str | None:
    value = _unsigned(value)
    if len(value) == 1:
        token = value[0]
        if token.kind == "number":
            return _r_number(token.text)
        if token.kind == "string":
            return "str"
        return _R_CONSTANTS.get(token.text) if token.kind == "name" else None
    call = _call(value)
    if call is None or call[0] != "list" or not call[1]:
        return None  # c(...) as the module docstring says; list() may become a list or a dict
    named = [len(arg) > 1 and arg[0].kind in ("name", "string") and arg[1].text == "=" for arg in call[1]]
    return "dict" if all(named) else "list"


def _r_number(text: str) -> str | None:
    if text.endswith("i"):
        return None  # complex
    if text.endswith("L") or text[:2].lower() == "0x":
        return "float" if "." in text or "p" in text.lower() else "int"
    return "float" if any(char in text for char in ".eE") else "int"


# ----------------------------------------------------------------------------------------- Julia


def read_julia(source: str) -> Declared | None:
    """The parameters a Julia cell assigns at top level, with their literal kinds."""
    return _declared(source, "julia", _julia_assignments, _julia_kind)


def _julia_assignments(statement: list[Token]) -> list[tuple[Token, list[Token]]]:
    start = 0
    while start < len(statement) and statement[start].text in ("const", "global"):
        start += 1
    names: list[Token] = []
    while len(statement) - start > 2 and statement[start].kind == "name" and statement[start].text not in _JULIA_BLOCKS:
        equals = _annotated(statement, start, "::") if statement[start + 1].text == "::" else start + 1
        if equals < 0 or statement[equals].text != "=":
            break
        names.append(statement[start])
        start = equals + 1
    value = statement[start:]
    return [(name, value) for name in names]


def _annotated(found: list[Token], name: int, colon: str) -> int:
    """The index of the ``=`` after the type annotation of the name at ``name`` (``x::Vector{Int} =``,
    ``x: Map[K, V] =``); -1 when something else than a type comes first."""
    depth = 0
    for index in range(name + 2, len(found)):
        token = found[index]
        depth += (token.kind == "open") - (token.kind == "close")
        if depth == 0 and token.text == "=":
            return index
        if depth == 0 and token.kind not in ("name", "open", "close", "number") and token.text not in (".", colon):
            return -1
    return -1


_JULIA_CONSTANTS = {
    "true": "bool",
    "false": "bool",
    "Inf": "float",
    "NaN": "float",
    "Inf64": "float",
    "NaN64": "float",
    "Inf32": "float",
    "NaN32": "float",
}


def _julia_kind(value: Sequence[Token]) -> str | None:
    value = _unsigned(value)
    if len(value) == 1:
        token = value[0]
        if token.kind == "number":
            return _julia_number(token.text)
        if token.kind == "string":
            return "str" if token.text.startswith(('"', 'raw"')) else None  # r"..." is a Regex, b"..." bytes
        return _JULIA_CONSTANTS.get(token.text) if token.kind == "name" else None
    if value[0].text == "[" and _matching(value, 0) == len(value) - 1:
        return "list"
    call = _call(value, type_bracket="{")
    return "dict" if call is not None and call[0] == "Dict" else None


def _julia_number(text: str) -> str | None:
    if text.endswith("im"):
        return None  # complex
    if text[:2].lower() in ("0x", "0b", "0o"):
        return "float" if "p" in text.lower() else "int"
    return "float" if any(char in text for char in ".eEf") else "int"


# ----------------------------------------------------------------------------------------- Scala

_SCALA_MODIFIERS = frozenset({"final", "private", "protected", "implicit", "lazy", "override"})
_SCALA_SEQUENCES = frozenset({"Seq", "List", "Vector", "Array", "IndexedSeq"})


def read_scala(source: str) -> Declared | None:
    """The ``val`` and ``var`` a Scala cell defines at top level, with their literal kinds."""
    return _declared(source, "scala", _scala_assignments, _scala_kind)


def _scala_assignments(statement: list[Token]) -> list[tuple[Token, list[Token]]]:
    start = 0
    while start < len(statement) and statement[start].text in _SCALA_MODIFIERS:
        start += 1
    if len(statement) - start < 4 or statement[start].text not in ("val", "var"):
        return []
    names = [statement[start + 1]]
    last = start + 1  # the last name: `val a, b = 0` defines both
    while last + 2 < len(statement) and statement[last + 1].text == "," and statement[last + 2].kind == "name":
        last += 2
        names.append(statement[last])
    if names[0].kind != "name" or len(statement) - last < 3:
        return []
    equals = _annotated(statement, last, ":") if statement[last + 1].text == ":" else last + 1
    if equals < 0 or statement[equals].text != "=":
        return []
    value = statement[equals + 1 :]
    return [(name, value) for name in names]


def _scala_kind(value: Sequence[Token]) -> str | None:
    value = _unsigned(value)
    if len(value) == 1:
        token = value[0]
        if token.kind == "number":
            return _scala_number(token.text)
        if token.kind == "string":
            return "str" if token.text.startswith(('"', 's"', 'f"', 'raw"')) else None
        return {"true": "bool", "false": "bool"}.get(token.text) if token.kind == "name" else None
    call = _call(value, type_bracket="[")
    if call is None:
        return None
    return "list" if call[0] in _SCALA_SEQUENCES else "dict" if call[0] == "Map" else None


def _scala_number(text: str) -> str:
    if text[:2].lower() == "0x":
        return "int"
    return "float" if text[-1] in "fFdD" or any(char in text for char in ".eE") else "int"


# ------------------------------------------------------------------------------------ the readers

Assignments = Callable[[list[Token]], list[tuple[Token, list[Token]]]]


def _declared(
    source: str, language: str, assignments: Assignments, kind: Callable[[Sequence[Token]], str | None]
) -> Declared | None:
    found = tokens(source, language)
    parts = statements(found, language) if found is not None else None
    if parts is None:
        return None
    declared: dict[str, DeclaredParameter] = {}
    for statement in parts:
        for name, value in assignments(statement):
            text = name.text[1:-1] if name.text.startswith("`") else name.text
            declared[text] = DeclaredParameter(text, kind(value), name.line)
    return tuple(declared.values())


def notebook_language(notebook: Mapping[str, Any]) -> str | None:
    """A notebook's language, as cases/notebook.py reads it: ``language_info.name``, else the
    kernelspec's ``language``; None when it says neither (or not as text)."""
    metadata = notebook.get("metadata")
    if not isinstance(metadata, Mapping):
        return None
    for key, field in (("language_info", "name"), ("kernelspec", "language")):
        section = metadata.get(key)
        value = section.get(field) if isinstance(section, Mapping) else None
        if isinstance(value, str) and value:
            return value
    return None


READERS: dict[str, Callable[[str], Declared | None]] = {"r": read_r, "julia": read_julia, "scala": read_scala}


def read_parameters(language: object, source: str) -> Declared | None:
    """The parameters a cell of a notebook in ``language`` (its ``language_info.name`` or
    kernelspec language, any case) declares; None when this language is not read here (Python is
    read by cases/notebook.py) or the cell cannot be read whole."""
    reader = READERS.get(language.lower()) if isinstance(language, str) else None
    if reader is None:
        return None
    return _remembered(reader, source) if len(source) <= _REMEMBERED_SOURCE else reader(source)


# As for Python (cases/notebook.py): notebooks made from one template share their parameters cell.
_REMEMBERED_SOURCE = 4096


@functools.lru_cache(maxsize=256)
def _remembered(reader: Callable[[str], Declared | None], source: str) -> Declared | None:
    return reader(source)


# ------------------------------------------------------------------ text as papermill writes it
#
# papermill writes text for R, Julia and Scala as "..." after Python's ``unicode_escape``
# (Translator.translate_escaped_str): \t \n \r \\ as such, the other characters below U+0020 and
# U+007F to U+00FF as \xNN, U+0100 to U+FFFF as \uNNNN, the rest as \UNNNNNNNN; dict keys too.
# R and Julia read \xNN from 80 up as one raw byte, not as the character U+00NN (a string that is not
# valid UTF-8; R refuses a string that mixes it with \u). Scala has neither \x nor \U: the cell does
# not compile. Julia also reads $ in a string as interpolation ("$x" is a variable's value, "$(f())"
# runs f), and papermill leaves $ as it is. tests/test_languages.py checks these sets against
# papermill's own translators.

# The names papermill registers its translators under (papermill/translators.py, at its end). It
# takes the name of the kernel the case runs with when registered, else the notebook's language, as
# written; a notebook with no language gets no parameters at all (papermill raises "No language found
# in notebook", whatever the kernel).
_TRANSLATED = {"R": "r", "sparkrkernel": "r", "julia": "julia", "scala": "scala", "sparkkernel": "scala"}
_TRANSLATED_OTHERWISE = frozenset(
    {"python", "pysparkkernel", "matlab", ".net-csharp", ".net-fsharp", ".net-powershell", "bash"}
)
_MISREAD = {
    "r": re.compile("[\x80-\xff]"),
    "julia": re.compile("[\x80-\xff$]"),
    "scala": re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\xff\U00010000-\U0010ffff]"),
}
_NAMES = {"r": "R", "julia": "Julia", "scala": "Scala"}
_SPELT_UP_TO = 40  # characters of the text the hint spells out; a longer text is shown by its character


def translated_as(kernel_name: str | None, language: str | None) -> str | None:
    """``r``, ``julia`` or ``scala`` when papermill writes a notebook's parameters with its translator
    for that language, as papermill picks one: by the name of the kernel the case runs with (the
    fixture's ``kernel``, ``--notebooks-kernel``, else the kernelspec's), else by the notebook's
    language. None for a notebook without a language, which papermill writes no parameters into."""
    if not language:
        return None
    for name in (kernel_name, language):
        if name in _TRANSLATED_OTHERWISE:
            return None
        if name in _TRANSLATED:
            return _TRANSLATED[name]
    return None


def untranslatable(kernel_name: str | None, language: str | None) -> tuple[str, str] | None:
    """Why papermill cannot write parameters into a notebook of this kernel and language (what, hint), as
    papermill decides it: the notebook names no language, or papermill has no translator for the
    kernel's name nor for the language (names as written: ``r`` is not ``R``); None when it can."""
    if not language:
        return (
            "the notebook names no language (metadata.language_info.name, metadata.kernelspec.language), so "
            'papermill cannot write parameters into it ("No language found in notebook")',
            "papermill -p fails the same way in production; open and save the notebook in Jupyter with its kernel, "
            "or set metadata.kernelspec.language",
        )
    known = {*_TRANSLATED, *_TRANSLATED_OTHERWISE}
    if kernel_name in known or language in known:
        return None
    return (
        f"papermill has no translator for the kernel {kernel_name!r} nor for the language {language!r}, so it "
        "cannot write parameters into the notebook",
        f"papermill -p fails the same way in production; it writes parameters for {', '.join(sorted(known))} "
        "(names as written: the notebook's language_info.name, else the kernel's name)",
    )


class _Found(NamedTuple):
    """The first character of a value papermill writes wrong: the text (a string or a key) it is in,
    where that text is (steps down from the parameter), and whether the text is a mapping's key."""

    text: str
    char: str
    path: tuple[Any, ...]
    key: bool


def misread(name: str, value: Any, kernel_name: str | None, language: str | None) -> tuple[str, str] | None:
    """Why the parameter ``name`` cannot be ``value`` in a notebook of that kernel and language: (what,
    hint), ``what`` read after ``parameter 'x' ``, when papermill writes a character of its text (or of
    a key) in a way the notebook's language reads wrong; None when it writes it right."""
    translated = translated_as(kernel_name, language)
    if translated is None:
        return None
    found = _find(value, _MISREAD[translated], (), set())
    if found is None:
        return None
    place = name + "".join(f"[{step!r}]" for step in found.path)
    where = f" in the key {found.text!r} of {place}" if found.key else f" at {place}" if found.path else ""
    char, code = found.char, ord(found.char)
    written = str(char.encode("unicode_escape"), "ascii")
    article = "an" if translated == "r" else "a"
    written = "unescaped" if char == "$" else f"as {written}"
    if translated_as(None, language) != translated:  # the kernel's name decided, not the notebook's language
        written += f" (the kernel {kernel_name!r} gets papermill's {_NAMES[translated]} translator)"
    return (
        f"holds {char!r} (U+{code:04X}){where}, which papermill writes into {article} {_NAMES[translated]} "
        f"notebook {written}: {_effect(translated, char)}",
        _hint(translated, found.text if len(found.text) <= _SPELT_UP_TO else char),
    )


def _find(value: Any, pattern: re.Pattern[str], path: tuple[Any, ...], seen: set[int]) -> _Found | None:
    """The first character of ``value`` that ``pattern`` matches, in its text or its keys; a list or
    mapping YAML aliases share is looked at once."""
    if isinstance(value, str):
        match = pattern.search(value)
        return _Found(value, match.group(), path, False) if match else None
    if not isinstance(value, (list, dict)) or id(value) in seen:
        return None
    seen.add(id(value))
    items: Iterable[tuple[Any, Any]] = value.items() if isinstance(value, dict) else enumerate(value)
    for step, child in items:
        key = pattern.search(step) if isinstance(step, str) else None
        if key:
            return _Found(key.string, key.group(), path, True)
        found = _find(child, pattern, (*path, step), seen)
        if found:
            return found
    return None


def _effect(translated: str, char: str) -> str:
    """What the language makes of the escape papermill writes for ``char``."""
    if translated == "scala":
        escape = "\\U" if ord(char) > 0xFFFF else "\\x"
        return f"Scala has no {escape} escape, so the injected cell would not compile (invalid escape character)"
    if char == "$":
        return (
            "Julia reads $ in a string as interpolation ($name is a variable's value, $(...) runs code): the "
            "notebook would get other text than the text written here, or run it"
        )
    if translated == "r":
        return (
            f"R reads that as the byte 0x{ord(char):02X}, not as {char!r}: the notebook would get text that is "
            "not valid UTF-8, and not the text written here (with a character above U+00FF in the same text, R "
            "refuses to parse it)"
        )
    return (
        f"Julia reads that as the byte 0x{ord(char):02X}, not as {char!r}: the notebook would get a string that "
        "is not valid UTF-8, and not the text written here"
    )


def _hint(translated: str, text: str) -> str:
    """How to get ``text`` into the notebook all the same: spelt in its code, or encoded in ASCII."""
    percent = urllib.parse.quote(text, safe="")
    decoded = {
        "r": f'percent-encoded and decode it in the notebook (URLdecode("{percent}"))',
        "julia": "base64-encoded and decode it in the notebook (using Base64; "
        f'String(base64decode("{base64.b64encode(text.encode()).decode()}")))',
        "scala": f'percent-encoded and decode it in the notebook (java.net.URLDecoder.decode("{percent}", "UTF-8"))',
    }[translated]
    intact = "to U+FFFF " if translated == "scala" else "up "
    if "$" in text and translated == "julia":
        return (
            "papermill writes it the same way in production, so a production run gets it wrong too; spell the "
            f'text in Julia code with \\$ ("{_spelt(text, translated)}"), or pass it {decoded}'
        )
    return (
        "papermill writes it the same way in production, so a production run gets it wrong too; keep the "
        f"fixture's text ASCII and spell the character in {_NAMES[translated]} code with a \\u escape "
        f'("{_spelt(text, translated)}"), or pass it {decoded}; characters from U+0100 {intact}(€, 日本) arrive intact'
    )


def _spelt(text: str, translated: str) -> str:
    """``text`` as a string literal's contents in the language: ASCII, with \\u escapes (UTF-16 pairs
    in Scala, whose strings are Java's; \\U in R and Julia) for the rest."""
    out: list[str] = []
    for char in text:
        code = ord(char)
        if char in '"\\' or (char == "$" and translated == "julia"):
            out.append("\\" + char)
        elif 0x20 <= code < 0x7F:
            out.append(char)
        elif code <= 0xFFFF:
            out.append(f"\\u{code:04x}")
        elif translated == "scala":
            pair = char.encode("utf-16-be")
            out.append("".join(f"\\u{int.from_bytes(pair[i : i + 2], 'big'):04x}" for i in (0, 2)))
        else:
            out.append(f"\\U{code:08x}")
    return "".join(out)
