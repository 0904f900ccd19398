"""Credentials in the environment -> ``***`` in what the plugin saves and prints. Standard library only.

Like CI log masking: the values of credential-looking variables (``DEFAULT_NAMES``, plus the ini
``notebooks_redact``) are replaced wherever they appear. run/execute.py applies it to the executed
notebook before it is saved or judged, so everything derived from it (failure text, results file,
terminal, junit XML, annotations, review, snapshots) is masked too. By construction it knows only
the exact values in pytest's environment (in the forms ``printed_forms`` lists), never a secret read
from elsewhere or printed transformed; values shorter than ``MIN_LENGTH`` are left alone.
"""

from __future__ import annotations

import fnmatch
import html
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

MASK = "***"
MIN_LENGTH = 6

# Matched against upper-cased variable names with fnmatch. The exact names are covered by the
# globs; they are listed because they are the ones people look for.
DEFAULT_NAMES: tuple[str, ...] = (
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "GITHUB_TOKEN",
    "GH_TOKEN",
    "ACTIONS_RUNTIME_TOKEN",
    "ACTIONS_ID_TOKEN_REQUEST_TOKEN",
    "TOKEN",
    "*_TOKEN",
    "SECRET",
    "*_SECRET",
    "*_SECRET_*",
    "PASSWORD",
    "*_PASSWORD",
    "*_PASSWD",
    "*_KEY",
    "*_CREDENTIALS",
    "*_CREDENTIAL",
)


def is_credential_name(name: str, extra: Iterable[str] = ()) -> bool:
    """Whether the environment variable ``name`` looks like a credential (globs, any case)."""
    upper = name.upper()
    return any(fnmatch.fnmatchcase(upper, pattern.upper()) for pattern in (*DEFAULT_NAMES, *extra))


def clean_environ(environ: Mapping[str, str], extra: Iterable[str] = ()) -> dict[str, str]:
    """``environ`` without the credential-looking variables (whatever the length of their value)."""
    patterns = tuple(extra)
    return {name: value for name, value in environ.items() if not is_credential_name(name, patterns)}


@dataclass(frozen=True)
class Redactor:
    """Replaces known secret values by ``***`` in text and in JSON-like data."""

    values: tuple[str, ...] = ()  # longest first, so that a secret containing another is masked whole
    names: tuple[str, ...] = ()  # the variables they came from (for messages; never their values)
    _pattern: re.Pattern[str] | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.values:
            object.__setattr__(self, "_pattern", re.compile(_trie_pattern(self.values)))

    @classmethod
    def from_environ(cls, environ: Mapping[str, str], extra: Iterable[str] = ()) -> Redactor:
        """The secrets of ``environ``: credential-looking names with values of ``MIN_LENGTH`` or more."""
        patterns = tuple(extra)
        found: dict[str, str] = {}
        for name, value in sorted(environ.items()):
            if not is_credential_name(name, patterns):
                continue
            # A multi-line secret (a private key) is also masked line by line: a notebook may
            # print a part of it.
            for text in (value, *value.splitlines()):
                text = text.strip()
                if len(text) >= MIN_LENGTH:
                    for form in printed_forms(text):
                        found.setdefault(form, name)
        values = tuple(sorted(found, key=lambda text: (-len(text), text)))
        return cls(values, tuple(sorted(set(found.values()))))

    @property
    def longest(self) -> int:
        """Length of the longest secret (0 without any)."""
        return len(self.values[0]) if self.values else 0

    def __bool__(self) -> bool:
        return bool(self.values)

    def text(self, text: str) -> str:
        """``text`` with every secret replaced by ``***``."""
        if self._pattern is None:
            return text
        return self._pattern.sub(MASK, text)

    def contains(self, text: str) -> bool:
        """Whether a secret occurs in ``text``."""
        return self._pattern is not None and self._pattern.search(text) is not None

    def data(self, value: Any) -> Any:
        """``value`` (str, list, dict, nested) with secrets masked in every string value.

        Keys are never changed: they are the notebook format's own names (``outputs``,
        ``execution_count``, MIME types), and a secret whose value is one of them must not break
        the notebook. Containers are changed in place, so that a notebook node keeps its type; the
        value is returned for strings, which cannot be.
        """
        if self._pattern is None:
            return value
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, list):
            for index, item in enumerate(value):
                value[index] = self.data(item)
        elif isinstance(value, dict):
            for key, item in value.items():
                value[key] = self.data(item)
        return value

    def streams(self, outputs: list[Any]) -> None:
        """Mask secrets that were split between two consecutive stream outputs of one cell.

        The kernel sends what a cell prints in chunks; a secret printed across a chunk boundary
        is in no single string. Runs of same-name streams whose joined text holds a secret are
        merged into their first output (as a notebook front end shows them anyway).
        """
        if self._pattern is None:
            return
        index = 0
        while index < len(outputs):
            run_end = index + 1
            first = outputs[index]
            if _is_stream(first):
                while run_end < len(outputs) and _is_stream(outputs[run_end], first.get("name")):
                    run_end += 1
            if run_end - index > 1:
                joined = "".join(_text(outputs[i].get("text", "")) for i in range(index, run_end))
                if self.contains(joined):
                    first["text"] = self.text(joined)
                    del outputs[index + 1 : run_end]
            index += 1


def printed_forms(value: str) -> tuple[str, ...]:
    """``value`` as code prints it: as is, in a Python repr (either quote), JSON, and HTML-escaped.

    A ``KeyError``, ``print(dict)``, logging and tracebacks show a repr, so a backslash or a quote
    in a secret is doubled or escaped; a pandas HTML table escapes ``&``, ``<`` and ``>``.
    """
    body = repr(value)[1:-1]  # the quote repr chose is escaped; the other quote style is made below
    unquoted = body.replace("\\'", "'")
    forms = {
        value,
        body,
        unquoted,
        unquoted.replace('"', '\\"'),
        json.dumps(value)[1:-1],
        json.dumps(value, ensure_ascii=False)[1:-1],
        html.escape(value, quote=False),
        html.escape(value),
    }
    return tuple(sorted(form for form in forms if len(form) >= MIN_LENGTH))


def _trie_pattern(values: Iterable[str]) -> str:
    """One regular expression matching any of ``values``, longest first, built as a prefix tree.

    An alternation of thousands of literals is tried one by one at every position of the text
    (minutes for a 5 MB output); a tree of shared prefixes is walked once, so masking stays
    linear in the size of the output.
    """
    root: dict[str, Any] = {}
    for value in values:
        node = root
        for char in value:
            node = node.setdefault(char, {})
        node[""] = {}  # a value ends here
    return _node_pattern(root)


def _node_pattern(node: dict[str, Any]) -> str:
    branches = []
    for char in sorted(key for key in node if key):
        literal, child = re.escape(char), node[char]
        while len(child) == 1 and "" not in child:  # a chain without branches: one literal run
            ((char, child),) = child.items()
            literal += re.escape(char)
        rest = _node_pattern(child)
        branches.append(literal + rest)
    if not branches:
        return ""
    inner = branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"
    if "" in node:  # a value ends here: a longer one is tried first (greedy), else this one
        return f"(?:{inner})?"
    return inner


def _is_stream(output: Any, name: object = None) -> bool:
    if not isinstance(output, dict) or output.get("output_type") != "stream":
        return False
    return name is None or output.get("name") == name


def _text(text: Any) -> str:
    return "".join(text) if isinstance(text, list) else str(text)
