"""The verdict on an executed notebook, called directly: no kernel, no papermill."""

from __future__ import annotations

from typing import Any

from pytest_notebooks.models import FailureKind
from pytest_notebooks.run.verdict import TemplateNumbering, failing_line, judge


def code(source: str, *, tags: tuple[str, ...] = (), outputs: list[Any] | None = None, count: int | None = 1) -> Any:
    return {
        "cell_type": "code",
        "source": source,
        "metadata": {"tags": list(tags)},
        "outputs": outputs or [],
        "execution_count": count,
    }


def error(ename: str, evalue: str, traceback: tuple[str, ...] = ()) -> dict[str, Any]:
    return {"output_type": "error", "ename": ename, "evalue": evalue, "traceback": list(traceback)}


TEMPLATE = [code("x = 1", tags=("parameters",)), {"cell_type": "markdown", "source": "#"}, code("f(x)"), code("g()")]


def executed(*cells: Any) -> list[Any]:
    """The template as papermill saves it: an injected-parameters cell after the parameters cell."""
    return [TEMPLATE[0], code("x = 2", tags=("injected-parameters",)), TEMPLATE[1], *cells]


def test_an_error_is_numbered_as_in_the_template_not_the_executed_copy() -> None:
    cells = executed(code("f(x)", outputs=[error("KeyError", "'fr'")], count=3), code("g()", count=None))
    failure = judge(cells, TemplateNumbering.of(TEMPLATE, cells))
    assert failure is not None
    assert (failure.kind, failure.cell_number, failure.summary()) == (
        FailureKind.ERROR,
        3,
        "cell 3 (In [3]): KeyError: 'fr'",
    )


def test_raises_exception_must_raise_and_a_clean_sys_exit_passes() -> None:
    tagged = executed(code("f(x)", tags=("raises-exception",), count=3), code("g()"))
    failure = judge(tagged, TemplateNumbering.of(TEMPLATE, tagged))
    assert failure is not None
    assert (failure.kind, failure.cell_number) == (FailureKind.NO_RAISE, 3)

    raised = executed(code("f(x)", tags=("raises-exception",), outputs=[error("ValueError", "bad")]), code("g()"))
    assert judge(raised, TemplateNumbering.of(TEMPLATE, raised)) is None

    exited = executed(code("f(x)", outputs=[error("SystemExit", "0")]), code("g()", outputs=[error("E", "never")]))
    assert judge(exited, TemplateNumbering.of(TEMPLATE, exited)) is None


def test_the_injected_cell_has_no_template_number() -> None:
    cells = executed(code("f(x)"), code("g()"))
    numbering = TemplateNumbering.of(TEMPLATE, cells)
    assert [numbering.number(i) for i in range(len(cells))] == [1, None, 2, 3, 4]


def test_failing_line_comes_from_the_ipython_traceback() -> None:
    traceback = ("\x1b[0;31mKeyError\x1b[0m", "Cell In[3], line 7\n----> 7 f(x)")
    assert failing_line(traceback, 3) == 7
    assert failing_line(("----> 2 g()",), None) == 2
    assert failing_line((), 1) is None


def stream(name: str, text: str) -> dict[str, Any]:
    return {"output_type": "stream", "name": name, "text": text}


def failed_without_error(*outputs: Any) -> Any:
    cell = code("%bad", outputs=list(outputs), count=3)
    cell["metadata"]["papermill"] = {"exception": True}
    return cell


def test_a_cell_failed_without_an_error_output_is_explained_by_its_stderr() -> None:
    usage = stream("stderr", "UsageError: Line magic function `%bad` not found.\n")
    cells = executed(failed_without_error(stream("stdout", "noise\n"), usage))
    failure = judge(cells, TemplateNumbering.of(TEMPLATE, cells))
    assert failure is not None
    assert failure.summary() == "cell 3 (In [3]): UsageError: Line magic function `%bad` not found."
    assert failure.traceback == ("UsageError: Line magic function `%bad` not found.",)

    other = executed(failed_without_error(stream("stderr", "something went wrong\n\n")))
    failure = judge(other, TemplateNumbering.of(TEMPLATE, other))
    assert failure is not None
    assert failure.headline() == "CellExecutionError: the cell failed; its stderr ends: something went wrong"

    silent = executed(failed_without_error())
    failure = judge(silent, TemplateNumbering.of(TEMPLATE, silent))
    assert failure is not None
    assert failure.headline() == "CellExecutionError: the cell failed without an error output"


def test_the_summary_shows_the_first_line_of_a_multi_line_message() -> None:
    cells = executed(code("f(x)", outputs=[error("ValueError", "\n\n  the message\nand more")], count=3))
    failure = judge(cells, TemplateNumbering.of(TEMPLATE, cells))
    assert failure is not None
    assert failure.summary() == "cell 3 (In [3]): ValueError: the message"
    assert failure.to_json()["evalue"] == "\n\n  the message\nand more"  # the record keeps it whole
