"""``pytest --pdb`` on a failing case (issue 24): the debugger can only stop in the plugin, in the pytest
process (the notebook ran in a kernel of its own, which has ended), so the spot where it stops says so
and holds where to look: the saved notebook and the ``reproduce:`` command."""

from __future__ import annotations

import sys

import pytest

from tests.notebooks import PARAMS, write_notebook

pytestmark = pytest.mark.kernel  # the case runs in a real kernel

REPRODUCE = "reproduce: papermill nb.ipynb notebook-outputs/nb/fr.repro.ipynb --cwd . -k python3 -p region_code fr *"


def test_pdb_stops_with_a_hint_and_where_to_look(pytester: pytest.Pytester) -> None:
    write_notebook(pytester.path / "nb.ipynb", [PARAMS, "raise ValueError('boom')"])
    (pytester.path / "nb.yaml").write_text("cases:\n  fr: {region_code: fr}\n")
    result = pytester.run(
        sys.executable, "-m", "pytest", "-p", "no:xdist", "--pdb", stdin=b"where_to_look\nq\n", timeout=300
    )
    result.stdout.fnmatch_lines(
        [
            "*PDB post_mortem*",
            "> */pytest_notebooks/collect.py(*)runtest()",
            "-> raise CaseFailed(result)  # --pdb stops here, not in the notebook's kernel: type where_to_look",
            "(Pdb) nb.ipynb::fr failed at cell 2 (In [3]), id cell-2: ValueError: boom",
            "this frame is pytest-notebooks' NotebookItem.runtest, in the pytest process: the notebook ran in a "
            "kernel of its own, which has ended, so its variables are not here",
            "parameters: region_code='fr'",
            "output notebook: notebook-outputs/nb/fr.ipynb",
            REPRODUCE,
            "to step through the failing cell: open nb.ipynb in Jupyter, set the parameters above in a cell after "
            "its parameters cell, run down to cell 2 and debug it there (in Python: %debug in a new cell)",
            "(Pdb) *",
        ]
    )
    assert "\\n" not in result.stdout.str()  # shown as lines, not as one escaped string
    assert result.ret == pytest.ExitCode.INTERRUPTED  # q: pytest's "Quitting debugger"
