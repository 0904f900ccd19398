"""Real git repositories of notebooks, and results files made by hand, for the nbpromote tests.

A results file is written by the plugin's own ``Recorder`` from case records built here (what
``NotebookItem.record()`` sends), so it has exactly the schema nbpromote reads, without running
a kernel.
"""

from __future__ import annotations

import hashlib
import io
import json
import shutil
from collections.abc import Mapping, Sequence
from contextlib import redirect_stderr
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import git

from pytest_notebooks.gitinfo import git_state
from pytest_notebooks.promote.cli import main
from pytest_notebooks.results.record import CaseReport, FailureRecord
from pytest_notebooks.results.recorder import Recorder
from tests.gitrepo import repo_with_identity
from tests.notebooks import PARAMS, write_notebook

RESULTS = "notebook-outputs/results.json"
VID_AGG = "notebooks/vid_agg.ipynb"  # the two templates of two_templates()
REPORT = "notebooks/report.ipynb"


@dataclass(frozen=True)
class Run:
    """One nbpromote run: exit code and what it printed."""

    code: int
    out: str
    err: str

    @property
    def text(self) -> str:
        return self.out + self.err


def nbpromote(*args: str | Path) -> Run:
    """Run the nbpromote command in this process, as ``nbpromote ARGS`` would from a shell."""
    out, err = io.StringIO(), io.StringIO()
    with redirect_stderr(err):  # argparse writes usage errors to sys.stderr itself
        code = main([str(a) for a in args], stdout=out, stderr=err)
    return Run(code, out.getvalue(), err.getvalue())


class NotebookRepo:
    """A git repository holding notebooks (below ``notebooks/``) and their YAML fixtures."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self.repo = repo_with_identity(root)
        self.cases: dict[str, tuple[str, ...]] = {}

    @classmethod
    def clone(cls, source: NotebookRepo, root: Path) -> NotebookRepo:
        """A second checkout of the same history (another CI job, another developer)."""
        shutil.copytree(source.root, root)
        clone = cls.__new__(cls)
        clone.root, clone.repo, clone.cases = root, git.Repo(root), dict(source.cases)
        return clone

    def notebook(self, path: str, marker: str = "v1", cases: Sequence[str] | None = ("luna", "fr")) -> Path:
        """Write ``path`` (with a fixture of ``cases`` beside it unless None); ``marker`` varies the bytes."""
        notebook = write_notebook(self.root / path, [PARAMS, f"print({marker!r}, region_code)"])
        if cases is not None:
            lines = ["cases:"] + [f"  {case}:\n    region_code: {case}" for case in cases]
            notebook.with_suffix(".yaml").write_text("\n".join(lines) + "\n")
            self.cases[path] = tuple(cases)
        return notebook

    def remove(self, path: str) -> None:
        """Delete a notebook and its fixture from the tree (commit to remove them from git)."""
        (self.root / path).unlink()
        (self.root / path).with_suffix(".yaml").unlink(missing_ok=True)
        self.cases.pop(path, None)

    def commit(self, message: str = "change") -> str:
        """Commit everything but the (untracked, not ignored) test outputs."""
        self.repo.git.add("-A", "--", ".", ":(exclude)notebook-outputs")
        return str(self.repo.index.commit(message).hexsha)

    @property
    def head(self) -> str:
        return str(self.repo.head.commit.hexsha)

    def results(
        self,
        outcomes: Mapping[str, Mapping[str, str]] | None = None,
        *,
        commit: str | None = None,
        dirty: bool | None = None,
        sha256: Mapping[str, str] | None = None,
    ) -> Path:
        """Write notebook-outputs/results.json for every notebook with a fixture, all passed by default.

        ``outcomes`` overrides outcomes per notebook and case; ``commit``/``dirty`` override the git
        state recorded; ``sha256`` overrides a notebook's recorded hash.
        """
        state = git_state(self.root, ignore=(self.root / "notebook-outputs",))  # as the plugin calls it
        assert state is not None
        state = replace(
            state,
            commit=commit or state.commit,
            changed=state.changed if dirty is None else ((" M recorded-dirty",) if dirty else ()),
        )
        path = self.root / RESULTS
        recorder = Recorder(path=path, rootdir=self.root, output_dir=str(self.root / "notebook-outputs"), git=state)
        recorder.read_previous()  # as the plugin does when the session starts
        for notebook, cases in sorted(self.cases.items()):
            fixture = str(Path(notebook).with_suffix(".yaml").as_posix())
            notebook_sha = (sha256 or {}).get(notebook) or _sha(self.root / notebook)
            converted = _converted(self.root / notebook)
            for case in cases:
                outcome = (outcomes or {}).get(notebook, {}).get(case, "passed")
                record = _record(notebook, fixture, case, notebook_sha, _sha(self.root / fixture), outcome, cases)
                record = replace(record, converted_sha256=converted[0], converted_by=converted[1])
                nodeid = f"{notebook}::{case}"
                recorder.add(nodeid, "setup", "skipped" if outcome == "skipped" else "passed", 0.1, record, False)
                if outcome != "skipped":
                    recorder.add(nodeid, "call", outcome, 1.0, record, False)
        recorder.write()
        return path


def two_templates(root: Path, *, scratch: bool = False) -> NotebookRepo:
    """vid_agg (cases luna, fr) and report (daily) below notebooks/, the source root, committed and
    tested; with ``scratch``, also a committed notebook without a fixture (never tested)."""
    repo = NotebookRepo(root)
    repo.notebook(VID_AGG)
    repo.notebook(REPORT, cases=("daily",))
    if scratch:
        repo.notebook("notebooks/scratch.ipynb", cases=None)
    (repo.root / "pyproject.toml").write_text('[tool.nbpromote]\nsource_root = "notebooks"\n')
    repo.commit("templates")
    repo.results()
    return repo


def change(repo: NotebookRepo, path: str, marker: str) -> None:
    """Commit a new version of ``path`` and test it (write the results for the new commit)."""
    repo.notebook(path, marker, cases=repo.cases[path])
    repo.commit(f"change {path}")
    repo.results()


def promoted(result: Run) -> str:
    """The release id a successful promotion (or rollback) printed."""
    assert result.code == 0, result.text
    line = next(line for line in result.out.splitlines() if line.startswith(("promoted release", "rolled back")))
    return line.split("release ")[-1].split()[0]


def live_stamp(data: bytes | None) -> dict[str, Any]:
    """The provenance stamp of published bytes."""
    assert data is not None
    stamp: dict[str, Any] = json.loads(data)["metadata"]["pytest_notebooks"]["provenance"]
    return stamp


def _converted(path: Path) -> tuple[str | None, str | None]:
    """A text notebook's converted notebook's sha256 and maker, as a case that ran it records them."""
    if path.suffix == ".ipynb":
        return None, None
    from pytest_notebooks.cases.textnotebook import converter, to_ipynb_bytes

    return hashlib.sha256(to_ipynb_bytes(path.read_bytes(), path, path.name)).hexdigest(), converter()


def _record(
    notebook: str, fixture: str, case: str, nb_sha: str, fx_sha: str, outcome: str, declared: Sequence[str]
) -> CaseReport:
    failure = None
    if outcome == "failed":
        failure = FailureRecord(
            kind="error",
            summary=f"cell 2 (In [2]): KeyError: '{case}'",
            cell=2,
            cell_id="cell-2",
            execution_count=2,
            line=1,
            ename="KeyError",
            evalue=f"'{case}'",
        )
    return CaseReport(
        notebook=notebook,
        fixture=fixture,
        case=case,
        parameters={"region_code": case},
        notebook_sha256=nb_sha,
        fixture_sha256=fx_sha,
        output=f"notebook-outputs/{notebook[: -len('.ipynb')]}/{case}.ipynb",
        kernel="python3",
        execution_seconds=0.9,
        failure=failure,
        declared_cases=tuple(declared),
    )


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
