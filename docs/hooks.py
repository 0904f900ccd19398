"""MkDocs hooks: the reference text is generated from the package itself, so it cannot drift.

A page asks for generated text with a marker (``mkdocs.yml`` names this file under ``hooks:``)::

    <!-- generated: options -->                           every flag and ini key (options.SETTINGS)
    <!-- generated: fixture-keys -->                      the fixture keys (cases/naming.py, cases/params.py)
    <!-- generated: schema results/results.schema.json --> a JSON Schema shipped in the package, as tables
    <!-- generated: help nbpromote status -->              a command's --help, as the command prints it
    <!-- generated: exit-codes -->                        the console scripts' exit codes (exitcodes.py)
    <!-- generated: docstring pytest_notebooks.run.forked:ForkedProvisioner -->  a docstring, as Markdown
    <!-- generated: version -->                           the package's version (inline too)

Every page is checked too: a ``--notebooks-*`` flag or ``notebooks_*`` ini key that options.py does
not declare is a warning, which ``mkdocs build --strict`` turns into a failed build (so does a
broken link). tests/test_docs.py runs that build and applies the same name check to README.md.
"""

from __future__ import annotations

import html
import importlib
import inspect
import json
import logging
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest_notebooks
from pytest_notebooks.cases.naming import FIXTURE_KEYS
from pytest_notebooks.cases.params import CASE_KEYS
from pytest_notebooks.exitcodes import ExitCode
from pytest_notebooks.options import SETTINGS, Declared

log = logging.getLogger("mkdocs.hooks.pytest_notebooks")  # under "mkdocs": --strict counts its warnings
PACKAGE = Path(pytest_notebooks.__file__).resolve().parent
MARKER = re.compile(r"<!-- generated: (?P<what>[a-z-]+)(?P<args>(?: [^ ]+)*?) -->")
FLAG = re.compile(r"(?<![\w-])--notebooks-[a-z0-9]+(?:-[a-z0-9]+)*")
INI_KEY = re.compile(r"(?<![\w-])notebooks_[a-z0-9]+(?:_[a-z0-9]+)*")
COMMANDS = {"nbpromote", "nbreview", "nbresults"}
HELP_COLUMNS = "100"

# What each fixture key means. The keys themselves come from the code: a key the code knows and this
# table does not (or the reverse) fails the build, so a new key cannot go undocumented.
FIXTURE_KEY_MEANINGS = {
    "parameters": "defaults merged into every case (top level); a long-form case's own parameters, which win",
    "cases": "mapping of case id to case, one pytest item each, in file order. Ids use letters, digits, `_`, "
    "`.`, `-`, start with a letter, digit or `_`, and are at most 100 characters (they become file names "
    "and test ids). Without `cases` the fixture is one case, `default`",
    "timeout": "whole-notebook limit in seconds, kernel start included; `0` (or `.inf`) for none",
    "cell_timeout": "limit for each cell in seconds; `0` (or `.inf`) for none",
    "kernel": "kernel name; `--notebooks-kernel` overrides it",
    "strict": "`false` turns off the checks of parameter names and types against the parameters cell",
    "skip": "a reason (or `true`): the case is reported as skipped; a case's `skip: false` undoes the file's",
    "xfail": "a reason (or `true`): the case is expected to fail (`xfail_strict` applies)",
    "snapshot": "`true`: compare the case's outputs with its committed snapshot",
    "snapshot_replace": "mapping `'REGEX': 'replacement'` applied to outputs before snapshot comparison",
    "env": "environment variables for the case's kernel, a mapping of name to text; a long-form case's `env` "
    "is merged over the file's, variable by variable",
    "principles": "this notebook's limits for `--notebooks-lint` (`max_branches`, `max_functions`, "
    "`max_function_lines`, `max_code_cells`, `max_lines`), over the ini's",
}


# ---------------------------------------------------------------- the hooks MkDocs calls


def on_config(config: Any) -> Any:
    """Every page's footer names the version the documentation was built from; files included with
    ``--8<--`` are found from the directory of mkdocs.yml, whatever the working directory."""
    config["copyright"] = f"pytest-notebooks {pytest_notebooks.__version__} · MIT licence"
    snippets = config["mdx_configs"].setdefault("pymdownx.snippets", {})
    snippets["base_path"] = [str(Path(config["config_file_path"]).resolve().parent)]
    return config


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    """Fill in the generated parts of a page, then warn about option names options.py does not declare."""
    where = page.file.src_uri
    try:
        filled = MARKER.sub(lambda match: generate(match.group("what"), match.group("args").split()), markdown)
    except (ValueError, OSError, ImportError, AttributeError, KeyError) as error:
        from mkdocs.exceptions import PluginError  # here: the checks below are used without MkDocs too

        raise PluginError(f"{where}: {error}") from error
    for name in unknown_option_names(filled):
        log.warning("%s: %s is not a flag or ini key of pytest-notebooks (pytest_notebooks/options.py)", where, name)
    return filled


# ---------------------------------------------------------------- the checks


def declared_names() -> set[str]:
    """Every flag and ini key the plugin declares."""
    flags = {setting.option for setting in SETTINGS if setting.flag}
    return flags | {setting.dest for setting in SETTINGS if setting.ini}


def unknown_option_names(text: str) -> list[str]:
    """The ``--notebooks-*`` flags and ``notebooks_*`` ini keys in ``text`` that options.py does not declare."""
    known = declared_names()
    found = FLAG.findall(text) + INI_KEY.findall(text)
    return sorted({name for name in found if name not in known})


# ---------------------------------------------------------------- the generators


def generate(what: str, args: list[str]) -> str:
    """The text a marker ``<!-- generated: WHAT ARGS -->`` stands for."""
    generators: Mapping[str, Callable[..., str]] = {
        "options": option_table,
        "fixture-keys": fixture_key_table,
        "schema": schema_reference,
        "help": command_help,
        "exit-codes": exit_code_table,
        "docstring": docstring,
        "version": lambda: pytest_notebooks.__version__,
    }
    if what not in generators:
        raise ValueError(f"unknown marker 'generated: {what}' (known: {', '.join(sorted(generators))})")
    return generators[what](*args)


def prose(text: str) -> str:
    """Plain text (a help string, a schema description) as Markdown that shows it as written: on one
    line, and outside code spans its angle brackets, ampersands, asterisks and underscores escaped
    (``<output-dir>`` is not an HTML tag, ``__snapshots__`` is not bold)."""
    parts = re.split(r"(`[^`]*`)", text.replace("\n", " "))
    return "".join(part if part.startswith("`") else _escaped(part) for part in parts)


def _escaped(text: str) -> str:
    return re.sub(r"([*_\\])", r"\\\1", html.escape(text, quote=False))


def cell(text: str, markdown: bool = False) -> str:
    """``prose`` for a Markdown table cell, pipes escaped too; ``markdown``: the text is Markdown
    already (links, code spans), and only its pipes are escaped."""
    parts = re.split(r"(`[^`]*`)", text.replace("\n", " "))
    return "".join(_cell_part(part, markdown) for part in parts)


def _cell_part(part: str, markdown: bool) -> str:
    if not part.startswith("`"):
        return (part if markdown else _escaped(part)).replace("|", "\\|")
    if "|" not in part:
        return part
    # a table splits a code span at its pipes, and a backslash in one shows: write the span as HTML
    return "<code>" + html.escape(part[1:-1], quote=False).replace("|", "&#124;") + "</code>"


def _value(setting: Declared) -> str:
    if setting.action == "store_true":
        return "on/off"
    if setting.choices:
        return " or ".join(f"`{choice}`" for choice in setting.choices)
    return f"`{setting.metavar}`" if setting.metavar else "text"


def option_table() -> str:
    """Every setting options.py declares: a summary table, then a section each with its help text."""
    rows = ["| flag | ini key | value |", "| --- | --- | --- |"]
    sections = []
    for setting in SETTINGS:
        flag = f"[`{setting.option}`](#{setting.name})" if setting.flag else ""
        ini = f"[`{setting.dest}`](#{setting.name})" if setting.ini else ""
        rows.append(f"| {flag} | {ini} | {_value(setting)} |")
        names = [f"`{setting.option}`"] if setting.flag else []
        names += [f"`{setting.dest}`"] if setting.ini else []
        given = (
            [f"flag `{setting.option}" + (f" {setting.metavar}`" if setting.metavar else "`")] if setting.flag else []
        )
        if setting.choices:
            given.append("one of " + ", ".join(f"`{choice}`" for choice in setting.choices))
        if setting.ini:
            kind = {"linelist": "one value a line", "bool": "true or false"}.get(setting.ini, "one value")
            given.append(f"ini key `{setting.dest}` ({kind})")
        sections += [f"### {', '.join(names)} {{#{setting.name}}}", "", " · ".join(given), "", prose(setting.help), ""]
    return "\n".join([*rows, "", *sections])


def fixture_key_table() -> str:
    """The keys a fixture may hold, where each may stand, and what it means."""
    keys = list(dict.fromkeys([*FIXTURE_KEYS, *CASE_KEYS]))
    undocumented = [key for key in keys if key not in FIXTURE_KEY_MEANINGS]
    stale = [key for key in FIXTURE_KEY_MEANINGS if key not in keys]
    if undocumented or stale:
        raise ValueError(
            f"docs/hooks.py FIXTURE_KEY_MEANINGS: keys the code knows without a meaning: {undocumented}; "
            f"meanings of keys the code no longer knows: {stale}"
        )
    rows = ["| key | top level | long-form case | meaning |", "| --- | :-: | :-: | --- |"]
    for key in keys:
        top, case = ("yes" if key in FIXTURE_KEYS else ""), ("yes" if key in CASE_KEYS else "")
        rows.append(f"| `{key}` | {top} | {case} | {FIXTURE_KEY_MEANINGS[key]} |")
    return "\n".join(rows)


def exit_code_table() -> str:
    """The exit codes of the three commands, as exitcodes.ExitCode names them."""
    names: dict[int, list[str]] = {}
    for name, member in ExitCode.__members__.items():
        names.setdefault(int(member), []).append(f"`{name}`")
    rows = ["| code | name in `pytest_notebooks.exitcodes.ExitCode` |", "| --: | --- |"]
    rows += [f"| {code} | {', '.join(found)} |" for code, found in sorted(names.items())]
    return "\n".join(rows)


def command_help(*argv: str) -> str:
    """``COMMAND [SUBCOMMAND] --help`` as the installed command prints it, in a fenced block."""
    if not argv or argv[0] not in COMMANDS:
        raise ValueError(f"help: expected one of {sorted(COMMANDS)}, got {argv}")
    program = shutil.which(argv[0], path=str(Path(sys.executable).parent)) or shutil.which(argv[0])
    if program is None:
        raise ValueError(f"{argv[0]} is not installed beside {sys.executable}: pip install -e .")
    env = {**os.environ, "COLUMNS": HELP_COLUMNS, "NO_COLOR": "1", "LC_ALL": "C.UTF-8"}
    env.pop("FORCE_COLOR", None)
    ran = subprocess.run([program, *argv[1:], "--help"], capture_output=True, text=True, env=env, check=False)
    if ran.returncode != 0:
        raise ValueError(f"{' '.join(argv)} --help exited {ran.returncode}: {ran.stderr}")
    return f"```text\n$ {' '.join(argv)} --help\n{ran.stdout.rstrip()}\n```"


def docstring(target: str) -> str:
    """The docstring of ``module:qualname`` as Markdown (``::`` blocks fenced, double backticks single)."""
    module_name, _, qualname = target.partition(":")
    found: Any = importlib.import_module(module_name)
    for part in filter(None, qualname.split(".")):
        found = getattr(found, part)
    text = inspect.getdoc(found)
    if not text:
        raise ValueError(f"{target} has no docstring")
    return _rst_to_markdown(text)


def _rst_to_markdown(text: str) -> str:
    out: list[str] = []
    lines = text.replace("``", "`").splitlines()
    index = 0
    while index < len(lines):
        line = lines[index]
        index += 1
        if not line.rstrip().endswith("::"):
            out.append(line)
            continue
        lead = line.rstrip()[:-2].rstrip()
        out.append(lead + ":" if lead else "")
        block: list[str] = []
        while index < len(lines) and (not lines[index].strip() or lines[index].startswith(" ")):
            block.append(lines[index])
            index += 1
        while block and not block[-1].strip():
            block.pop()
        out += ["", "```text", *inspect.cleandoc("\n".join(block)).splitlines(), "```", ""]
    return "\n".join(out)


# ---------------------------------------------------------------- JSON Schema as tables


class _Schema:
    """One shipped JSON Schema, rendered as tables: the top level, then each of its $defs."""

    def __init__(self, relative: str) -> None:
        self.relative = relative
        self.path = PACKAGE / relative
        self.document: dict[str, Any] = json.loads(self.path.read_text(encoding="utf-8"))
        self.prefix = self.path.name.split(".")[0]

    def anchor(self, name: str) -> str:
        return f"{self.prefix}-{name.lower()}"

    def kind(self, node: Any) -> str:
        """What a schema node accepts, in a few words (a $ref is a link to its definition)."""
        if not isinstance(node, dict):
            return "anything" if node is True else "nothing"
        if "$ref" in node:
            name = node["$ref"].rsplit("/", 1)[1]
            return f"[{name}](#{self.anchor(name)})"
        if "const" in node:
            return f"`{json.dumps(node['const'], ensure_ascii=False)}`"
        if "enum" in node:
            return "one of " + ", ".join(f"`{json.dumps(value, ensure_ascii=False)}`" for value in node["enum"])
        for combinator, word in (("oneOf", " or "), ("anyOf", " or "), ("allOf", " and ")):
            if combinator in node:
                return word.join(self.kind(option) for option in node[combinator])
        kinds = node.get("type", "any value")
        text = " or ".join(kinds) if isinstance(kinds, list) else str(kinds)
        if text == "array" and "items" in node:
            text = f"array of {self.kind(node['items'])}"
            text += f" (at least {node['minItems']})" if "minItems" in node else ""
        elif text == "object" and "properties" not in node and isinstance(node.get("additionalProperties"), dict):
            text = f"object of {self.kind(node['additionalProperties'])}"
        elif text == "object" and "properties" in node:
            text = "object (fields below)"
        if "pattern" in node:
            text += f" matching `{node['pattern']}`"
        if "minimum" in node:
            text += f" ≥ {node['minimum']}"
        if node.get("minLength") == 1:
            text += ", not empty"
        elif "minLength" in node:
            text += f" of at least {node['minLength']} characters"
        if "if" in node or "not" in node:
            text += " (with a condition: see the schema)"
        return text

    def rows(self, node: dict[str, Any], prefix: str = "") -> Iterator[str]:
        """One table row per field, nested objects' fields as ``field.sub`` (``field[].sub`` in arrays)."""
        required = set(node.get("required", ()))
        for name, field in node.get("properties", {}).items():
            description = field.get("description", "") if isinstance(field, dict) else ""
            mark = "yes" if name in required else ""
            yield f"| `{prefix}{name}` | {cell(self.kind(field), markdown=True)} | {mark} | {cell(description)} |"
            for inner, suffix in self._nested(field):
                yield from self.rows(inner, f"{prefix}{name}{suffix}.")

    def _nested(self, field: Any) -> Iterator[tuple[dict[str, Any], str]]:
        if not isinstance(field, dict):
            return
        if "properties" in field:
            yield field, ""
        if isinstance(field.get("items"), dict) and "properties" in field["items"]:
            yield field["items"], "[]"
        for option in [*field.get("oneOf", []), *field.get("anyOf", [])]:
            yield from self._nested(option)

    def table(self, node: dict[str, Any]) -> list[str]:
        if "properties" not in node:
            return [f"Accepts {self.kind(node)}."]
        return ["| field | accepts | required | meaning |", "| --- | --- | :-: | --- |", *self.rows(node)]

    def render(self, level: int) -> str:
        document = self.document
        out = [
            f"Shipped in the package as `pytest_notebooks/{self.relative}` (JSON Schema `{document['$schema']}`, "
            f"`$id` `{document['$id']}`): {prose(document.get('title', ''))}.",
            "",
            prose(document.get("description", "")),
            "",
            *self.table(document),
            "",
        ]
        heading = "#" * level
        for name, node in document.get("$defs", {}).items():
            out += [f"{heading} `{name}` {{#{self.anchor(name)}}}", ""]
            if isinstance(node, dict) and node.get("description"):
                out += [prose(node["description"]), ""]
            out += [*self.table(node if isinstance(node, dict) else {}), ""]
        source = json.dumps(document, indent=2, ensure_ascii=False)
        out += [f'??? note "{self.path.name}, as shipped"', "", "    ```json", *_indent(source, "    "), "    ```", ""]
        return "\n".join(out)


def _indent(text: str, prefix: str) -> list[str]:
    return [prefix + line if line else line for line in text.splitlines()]


def schema_reference(relative: str, level: str = "3") -> str:
    """A JSON Schema of the package (``results/results.schema.json``) as tables, its definitions at ``level``."""
    return _Schema(relative).render(int(level))
