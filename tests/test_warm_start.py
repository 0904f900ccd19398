"""The first case's kernel starts when the run begins (run/execute.py's ``warm_up``), and a kernel
started ahead serves a case only in the environment it started from."""

from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path

import pytest

from pytest_notebooks.errors import PytestNotebooksWarning
from pytest_notebooks.models import NotebookCase
from pytest_notebooks.run.execute import NextCase, RunSettings, warm_up
from pytest_notebooks.run.family import Family
from pytest_notebooks.run.kernels import KernelHandle, KernelKey, KernelPool, stable_environ
from pytest_notebooks.run.kernelspec import KernelChoice
from tests.notebooks import write_notebook

KEY = KernelKey("python3", "/nb")


class Manager:
    """What KernelHandle and KernelPool call on a kernel's manager, without a kernel."""

    provisioner = None

    def __init__(self) -> None:
        self.calls: list[str] = []

    def close_clients(self) -> None:
        self.calls.append("close_clients")

    async def is_alive(self) -> bool:
        return False

    async def request_shutdown(self) -> None:
        self.calls.append("request_shutdown")

    async def cleanup_resources(self) -> None:
        self.calls.append("cleanup_resources")


class Starter:
    """A KernelStarter whose kernels remember the environment they started from, as launch's do;
    ``warning`` is given at each start (a kernel spawned instead of forked says so)."""

    name = "fake"
    preload: tuple[str, ...] = ()
    ahead = 2

    def __init__(self, warning: str | None = None) -> None:
        self.started: list[KernelKey] = []
        self.warning = warning

    def start(self, key: KernelKey, extra_arguments: list[str]) -> KernelHandle:
        if self.warning:
            warnings.warn(self.warning, PytestNotebooksWarning, stacklevel=2)
        self.started.append(key)
        return KernelHandle(Manager(), Family("0123"), environ=stable_environ())

    def close(self) -> None:
        pass


def test_a_kernel_started_ahead_serves_its_case_in_the_environment_it_started_from(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    starter = Starter()
    pool = KernelPool(starter)
    pool.prepare(KEY, [])
    monkeypatch.setenv("PYTEST_CURRENT_TEST", "nb.ipynb::default (call)")  # one value per test: not counted
    ahead = pool._ahead[0][1]
    assert pool.take(KEY, []) is ahead
    assert starter.started == [KEY]


def test_a_kernel_started_ahead_before_the_environment_changed_is_replaced(monkeypatch: pytest.MonkeyPatch) -> None:
    starter = Starter()
    pool = KernelPool(starter)
    pool.prepare(KEY, [])
    stale = pool._ahead[0][1]
    monkeypatch.setenv("PN_DATA_DIR", "/data")  # a hook or an earlier test set it after the kernel started
    taken = pool.take(KEY, [])
    assert taken is not stale
    assert taken.environ is not None
    assert taken.environ["PN_DATA_DIR"] == "/data"
    assert starter.started == [KEY, KEY]
    assert pool._stopping[0][0] is stale
    assert stale.manager.calls == ["close_clients"]  # not alive (a fake): nothing to ask


def test_warnings_held_are_given_when_the_next_kernel_is_taken() -> None:
    pool = KernelPool(Starter())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        warnings.warn(
            "kernel 'ir' is spawned, not forked from the template process: R", PytestNotebooksWarning, stacklevel=1
        )
        warnings.warn("an import's deprecation", DeprecationWarning, stacklevel=1)
    pool.hold(caught)
    with warnings.catch_warnings(record=True) as given:
        warnings.simplefilter("always")
        pool.take(KEY, [])
        pool.take(KEY, [])  # given once
    assert [(type(w.message), str(w.message)) for w in given] == [
        (PytestNotebooksWarning, "kernel 'ir' is spawned, not forked from the template process: R"),
        (DeprecationWarning, "an import's deprecation"),
    ]
    assert [w.filename for w in given] == [w.filename for w in caught] == [__file__, __file__]


def test_a_held_notice_of_ours_goes_to_stderr_under_w_error(capfd: pytest.CaptureFixture[str]) -> None:
    pool = KernelPool(Starter())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        warnings.warn(
            "kernel 'ir' is spawned, not forked from the template process: R", PytestNotebooksWarning, stacklevel=1
        )
    pool.hold(caught)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        pool.take(KEY, [])  # how a kernel starts must not fail a case
    assert "pytest-notebooks: kernel 'ir' is spawned" in capfd.readouterr().err


def test_warm_up_starts_the_first_cases_kernel_and_imports_papermill(tmp_path: Path) -> None:
    starter = Starter(warning="kernel 'python3' is spawned, not forked from the template process: R")
    pool = KernelPool(starter)
    case = NotebookCase(tmp_path / "nb.ipynb", tmp_path / "nb.yaml", "default", {})
    warm_up(pool, NextCase(case, RunSettings(kernel="python3", timeout=None, cell_timeout=None)))
    key = KernelKey("python3", str(tmp_path))
    assert starter.started == [key]
    assert "papermill" in sys.modules
    starter.warning = None
    with pytest.warns(PytestNotebooksWarning, match="kernel 'python3' is spawned"):  # held until now
        assert pool.take(key, []).environ is not None
    assert starter.started == [key]


def test_warm_up_leaves_what_fails_to_the_first_case(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def unreadable(cls: type, asked: str | None) -> None:
        raise ValueError(f"the kernelspec {asked} cannot be read")

    monkeypatch.setattr(KernelChoice, "find", classmethod(unreadable))
    pool = KernelPool(Starter())
    case = NotebookCase(tmp_path / "nb.ipynb", tmp_path / "nb.yaml", "default", {})
    warm_up(pool, NextCase(case, RunSettings(kernel="python3", timeout=None, cell_timeout=None)))
    assert pool._ahead == []


# --- end to end ------------------------------------------------------------------------------------

CONFTEST = """
import json, os, sys

SEEN = {}


def pytest_runtest_setup(item):
    SEEN.setdefault("papermill_at_first_setup", "papermill" in sys.modules)
    os.environ["PN_WARM"] = "set by a hook"  # after the run began: the first kernel must see it too


def pytest_sessionfinish(session):
    SEEN.setdefault("papermill_at_first_setup", None)
    SEEN["papermill_at_end"] = "papermill" in sys.modules
    worker = getattr(session.config, "workerinput", {}).get("workerid", "main")
    with open(f"seen-{worker}.json", "w") as f:
        json.dump(SEEN, f)
"""


def printed(pytester: pytest.Pytester, notebook: str) -> str:
    nb = json.loads((pytester.path / "notebook-outputs" / notebook / "default.ipynb").read_text())
    return "".join(nb["cells"][0]["outputs"][0]["text"]).strip()


def seen(pytester: pytest.Pytester) -> dict[str, dict[str, bool | None]]:
    return {path.stem[5:]: json.loads(path.read_text()) for path in pytester.path.glob("seen-*.json")}


@pytest.mark.kernel
@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["serial", "xdist"])
def test_the_first_case_starts_early_and_still_gets_the_environment_of_its_time(
    pytester: pytest.Pytester, workers: list[str]
) -> None:
    pytester.makeconftest(CONFTEST)
    for name in ("a", "b", "c"):
        write_notebook(pytester.path / f"{name}.ipynb", ["import os\nprint(os.environ.get('PN_WARM'))"])
        (pytester.path / f"{name}.yaml").write_text("")
    result = pytester.runpytest_subprocess(*workers)
    result.assert_outcomes(passed=3)
    assert {printed(pytester, name) for name in ("a", "b", "c")} == {"set by a hook"}
    processes = seen(pytester)
    runners = {name: facts for name, facts in processes.items() if facts["papermill_at_first_setup"] is not None}
    assert runners
    assert all(facts["papermill_at_first_setup"] for facts in runners.values())  # warmed up before the first case
    if workers:
        assert processes["main"] == {"papermill_at_first_setup": None, "papermill_at_end": False}  # the controller


@pytest.mark.kernel
def test_no_kernel_starts_early_for_a_run_that_begins_with_another_test_or_collects_only(
    pytester: pytest.Pytester,
) -> None:
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_a="def test_first():\n    pass\n")
    write_notebook(pytester.path / "z.ipynb", ["import os\nprint(os.environ.get('PN_WARM'))"])
    (pytester.path / "z.yaml").write_text("")
    pytester.runpytest_subprocess("--collect-only").assert_outcomes()
    assert seen(pytester) == {"main": {"papermill_at_first_setup": None, "papermill_at_end": False}}
    result = pytester.runpytest_subprocess()
    result.assert_outcomes(passed=2)
    assert seen(pytester) == {"main": {"papermill_at_first_setup": False, "papermill_at_end": True}}
    assert printed(pytester, "z") == "set by a hook"
