"""rfc3987_syntax is imported when first used, and jsonschema's IRI checks give the same answers."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

pytest.importorskip("rfc3987_syntax")

CHECK = textwrap.dedent(
    """
    import sys
    {first}
    import jsonschema, papermill, nbformat

    print("parsers built at import:", "rfc3987_syntax.syntax_helpers" in sys.modules)
    V = jsonschema.Draft202012Validator
    iri = V({{"format": "iri"}}, format_checker=V.FORMAT_CHECKER)
    ref = V({{"format": "iri-reference"}}, format_checker=V.FORMAT_CHECKER)
    print(iri.is_valid("https://example.com/vidéo?x=1"), iri.is_valid("no scheme"), iri.is_valid("http://a b"))
    print(ref.is_valid("../relative/vidéo"), ref.is_valid("http://a b"))
    import rfc3987_syntax
    print(type(rfc3987_syntax).__name__, "iri" in rfc3987_syntax.RFC3987_SYNTAX_TERMS)
    """
)


def _run(first: str) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-c", CHECK.format(first=first)], capture_output=True, text=True, timeout=300, check=True
    )
    return done.stdout.splitlines()


def test_jsonschema_no_longer_builds_the_iri_parsers_at_import_and_checks_iris_as_before() -> None:
    with_plugin = _run("import pytest_notebooks")
    without = _run("")
    assert with_plugin[0] == "parsers built at import: False"
    assert without[0] == "parsers built at import: True"
    assert with_plugin[1:] == without[1:] == ["True False False", "True False", "module True"]


def test_the_stand_in_is_left_out_when_jsonschema_came_first() -> None:
    lines = _run("import jsonschema; import pytest_notebooks")
    assert lines[0] == "parsers built at import: True"
    assert lines[1:] == ["True False False", "True False", "module True"]
