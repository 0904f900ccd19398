"""A git repository of notebooks with fixtures, tested by a real pytest in a subprocess, then nbpromote."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from typing import Any

from tests.gitrepo import repo_with_identity
from tests.notebooks import write_notebook
from tests.promote_repo import Run, nbpromote
from tests.subprocess_pytest import run_pytest, start_pytest

RESULTS = "notebook-outputs/results.json"
WAIT = 240.0  # seconds to wait for a case to start: a bound for a stuck machine, not a speed goal


class Project:
    """A git repository of notebooks with fixtures, tested by a real pytest in a subprocess."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self.repo = repo_with_identity(root)
        (root / ".gitignore").write_text("notebook-outputs/\nlive/\n*.started\n")
        (root / "pytest.ini").write_text("[pytest]\naddopts = -p no:cacheprovider\n")

    def notebook(self, name: str, body: str, fixture: str) -> None:
        params = ('region_code = "luna"', ["parameters"])
        write_notebook(self.root / f"{name}.ipynb", [params, body])
        (self.root / f"{name}.yaml").write_text(fixture)

    def commit(self, pyproject: str = "") -> None:
        if pyproject:
            (self.root / "pyproject.toml").write_text(pyproject)
        self.repo.git.add("-A")
        self.repo.index.commit("notebooks")

    def pytest(self, *args: str) -> subprocess.CompletedProcess[str]:
        return run_pytest(self.root, *args)

    def start(self, *args: str) -> subprocess.Popen[str]:
        """pytest in its own process group, so that the test can signal the group or the leader."""
        return start_pytest(self.root, *args)

    def wait_for(self, marker: str) -> None:
        deadline = time.monotonic() + WAIT
        while not (self.root / marker).exists():
            assert time.monotonic() < deadline, f"{marker} never appeared"
            time.sleep(0.1)

    def results(self) -> dict[str, Any]:
        document: dict[str, Any] = json.loads((self.root / RESULTS).read_text())
        return document

    def outcomes(self) -> dict[str, str]:
        return {case["nodeid"]: case["outcome"] for case in self.results()["cases"]}

    def promote(self, *args: str) -> Run:
        return nbpromote("-C", self.root, "--target", self.root / "live", *args)

    def published(self) -> list[str]:
        live = self.root / "live"
        return sorted(p.name for p in live.glob("*.ipynb")) if live.exists() else []
