"""``ast.parse`` for notebook code, bounded so that hostile source cannot crash the interpreter.

Python 3.10 converts a parsed tree to Python objects without a depth check, so deeply nested source
kills the process with a segmentation fault (an xdist worker goes down with every case it held);
3.11 and later raise RecursionError. ``parse`` raises RecursionError past ``MAX_CHAIN`` tree-deepening
tokens in one statement on every Python, so a cell gets the same verdict everywhere (a flat list
literal of any length counts one).
"""

from __future__ import annotations

import ast
import io
import tokenize

MAX_CHAIN = 20_000
# What parsing a notebook's code may raise: bad syntax, a NUL byte (ValueError), nesting past the
# bound or past what the parser itself can take.
UNPARSABLE: tuple[type[Exception], ...] = (SyntaxError, ValueError, RecursionError, MemoryError)
# Tokens that do not deepen the tree: separators, closing brackets, assignment.
_FLAT = frozenset({",", ";", ":", "=", ")", "]", "}"})
_NESTING_WORDS = frozenset({"if", "not", "lambda", "await", "else"})


def longest_chain(source: str) -> int:
    """The most tree-deepening tokens in one statement of ``source`` (as far as it tokenizes)."""
    most = count = 0
    try:
        for token in tokenize.generate_tokens(io.StringIO(source).readline):
            if token.type in (tokenize.NEWLINE, tokenize.ENDMARKER):
                most, count = max(most, count), 0
            elif (token.type == tokenize.OP and token.string not in _FLAT) or (
                token.type == tokenize.NAME and token.string in _NESTING_WORDS
            ):
                count += 1
    except (tokenize.TokenError, SyntaxError):
        pass  # ast.parse reports the error; what was counted so far still counts
    return max(most, count)


def parse(source: str) -> ast.Module:
    """``ast.parse(source)``; RecursionError when a statement could nest past ``MAX_CHAIN``."""
    if len(source) > MAX_CHAIN and longest_chain(source) > MAX_CHAIN:
        raise RecursionError(f"a statement nests more than {MAX_CHAIN:,} levels")
    return ast.parse(source)
