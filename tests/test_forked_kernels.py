"""Kernels forked from a template process: each case still gets a process, globals, directory and
environment of its own; kernels that cannot be forked are spawned, with one line saying why."""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

import pytest
from jupyter_client.provisioning.provisioner_base import KernelProvisionerBase

from pytest_notebooks.run.forked import PROVISIONER_NAME, ForkedProvisioner, fork_refusal
from tests.notebooks import write_notebook
from tests.subprocess_pytest import exited

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="kernels are forked on Linux only")

FORK = "--notebooks-kernel-start=fork"
FORKED = b"pytest_notebooks.run.forked"  # in a forked kernel's command line: the template's

# Every case prints what it found when it started, then the dirty one changes all it can.
STATE = (
    "import json, os, sys, threading\n"
    "found = {\n"
    "    'pid': os.getpid(), 'ppid': os.getppid(), 'cwd': os.getcwd(), 'threads': threading.active_count(),\n"
    f"    'forked': {FORKED!r} in open('/proc/self/cmdline', 'rb').read(),\n"
    "    'preloaded': 'shared_state' in sys.modules, 'leak': os.environ.get('PN_LEAK'),\n"
    "    'leftover': [t.name for t in threading.enumerate() if t.name == 'leftover'],\n"
    "    'marker': 'marker' in globals(),\n"
    "}\n"
    "import shared_state\n"
    "found['value'], found['numbers'] = shared_state.VALUE, list(shared_state.NUMBERS)\n"
    "found['imported_in'] = shared_state.IMPORTED_IN\n"
    "print(json.dumps(found))"
)
DIRTY = (
    "if role == 'dirty':\n"
    "    shared_state.VALUE = 'changed'\n"
    "    shared_state.NUMBERS.append(4)\n"
    "    os.chdir('/')\n"
    "    os.environ['PN_LEAK'] = 'yes'\n"
    "    threading.Thread(target=threading.Event().wait, name='leftover', daemon=True).start()\n"
    "    marker = 1"
)


def found(pytester: pytest.Pytester, notebook: str, case: str) -> dict[str, Any]:
    nb = json.loads((pytester.path / "notebook-outputs" / notebook / f"{case}.ipynb").read_text())
    printed = next(cell for cell in nb["cells"] if "found = {" in "".join(cell["source"]))
    return json.loads("".join(printed["outputs"][0]["text"]))  # type: ignore[no-any-return]


@pytest.mark.kernel
def test_a_case_that_changes_everything_leaves_the_next_case_untouched(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(shared_state="import os\nVALUE = 'original'\nNUMBERS = [1, 2, 3]\nIMPORTED_IN = os.getpid()\n")
    write_notebook(pytester.path / "nb.ipynb", [("role = 'check'", ["parameters"]), STATE, DIRTY])
    (pytester.path / "nb.yaml").write_text("cases:\n  dirty: {role: dirty}\n  check: {role: check}\n")
    result = pytester.runpytest("-p", "no:xdist", FORK, "--notebooks-preload=shared_state")
    result.assert_outcomes(passed=2)
    dirty, check = found(pytester, "nb", "dirty"), found(pytester, "nb", "check")
    assert dirty["forked"]
    assert check["forked"]
    assert dirty["pid"] != check["pid"]
    assert dirty["ppid"] == check["ppid"] == os.getpid()  # pytest's children, as spawned kernels are
    assert dirty["preloaded"]  # imported before the first cell ran
    assert check["preloaded"]
    assert dirty["imported_in"] == check["imported_in"] not in (dirty["pid"], check["pid"])  # by one template
    assert (check["value"], check["numbers"]) == ("original", [1, 2, 3])
    assert check["cwd"] == str(pytester.path)
    assert check["leak"] is None
    assert check["leftover"] == []
    assert check["threads"] == dirty["threads"]
    assert check["marker"] is False
    assert templates_of(os.getpid()) == []  # the template is gone with the session


def templates_of(parent: int) -> list[int]:
    """The template processes that are children of ``parent``."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            if ppid == parent and FORKED in (entry / "cmdline").read_bytes():
                found.append(int(entry.name))
        except (OSError, ValueError, IndexError):
            continue
    return found


@pytest.mark.kernel
def test_forked_kernels_under_xdist_are_one_per_case(pytester: pytest.Pytester) -> None:
    write_notebook(pytester.path / "nb.ipynb", [("role = 'check'", ["parameters"]), "import os\nprint(os.getpid())"])
    cases = "".join(f"  c{i}: {{role: r{i}}}\n" for i in range(6))
    (pytester.path / "nb.yaml").write_text(f"cases:\n{cases}")
    result = pytester.runpytest_subprocess("-n", "2", FORK)
    result.assert_outcomes(passed=6)
    pids = set()
    for i in range(6):
        nb = json.loads((pytester.path / "notebook-outputs" / "nb" / f"c{i}.ipynb").read_text())
        pids.add(nb["cells"][-1]["outputs"][0]["text"][0].strip())
    assert len(pids) == 6


@pytest.mark.kernel
def test_a_kernelspec_that_is_not_this_interpreters_launcher_is_spawned_with_one_line(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = pytester.path / "share" / "jupyter" / "kernels" / "by-c"
    spec.mkdir(parents=True)
    launch = "from ipykernel.kernelapp import launch_new_instance; launch_new_instance()"
    argv = [sys.executable, "-c", launch, "-f", "{connection_file}"]
    (spec / "kernel.json").write_text(json.dumps({"argv": argv, "display_name": "by -c", "language": "python"}))
    monkeypatch.setenv("JUPYTER_PATH", str(pytester.path / "share" / "jupyter"))
    report = f"print({FORKED!r} in open('/proc/self/cmdline', 'rb').read())"
    for name in ("one", "two"):
        write_notebook(pytester.path / f"{name}.ipynb", [report], kernel="by-c")
        (pytester.path / f"{name}.yaml").write_text("")
    write_notebook(pytester.path / "three.ipynb", [report])
    (pytester.path / "three.yaml").write_text("")
    # In a subprocess: this suite's own filterwarnings = error would turn the line into stderr.
    # jupyter_core before 5.9 also warns about its platformdirs migration: not the warning counted here.
    result = pytester.runpytest_subprocess(
        "-p", "no:xdist", FORK, "-W", "ignore:Jupyter is migrating its paths:DeprecationWarning"
    )
    result.assert_outcomes(passed=3, warnings=1)
    result.stdout.fnmatch_lines(
        [
            "*PytestNotebooksWarning: kernel 'by-c' is spawned, not forked from the template process: "
            "its kernelspec does not run `python -m ipykernel_launcher` (*python* -c from ipykernel*...)"
        ]
    )
    forked = {}
    for name in ("one", "two", "three"):
        nb = json.loads((pytester.path / "notebook-outputs" / name / "default.ipynb").read_text())
        forked[name] = nb["cells"][0]["outputs"][0]["text"][0].strip()
    assert forked == {"one": "False", "two": "False", "three": "True"}


@pytest.mark.parametrize(
    ("module", "expected"),
    [
        (
            "import threading\nthreading.Thread(target=threading.Event().wait, name='poller', daemon=True).start()\n",
            "*notebooks_preload: importing 'noisy' started 1 thread(s) (poller)*",
        ),
        ("import socket\nLISTENER = socket.socket()\n", "*notebooks_preload: importing 'noisy' opened 1 socket(s)*"),
        ("raise ImportError('no backend')\n", "*importing 'noisy' in the kernel template process failed: *no backend*"),
    ],
)
@pytest.mark.kernel
def test_a_preloaded_module_that_starts_a_thread_or_opens_a_socket_is_refused(
    pytester: pytest.Pytester, module: str, expected: str
) -> None:
    pytester.makepyfile(noisy=module)
    for name in ("a", "b"):
        write_notebook(pytester.path / f"{name}.ipynb", ["x = 1"])
        (pytester.path / f"{name}.yaml").write_text("")
    result = pytester.runpytest("-p", "no:xdist", FORK, "--notebooks-preload", "noisy")
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines([f"FAILED a.ipynb::default - {expected}", f"FAILED b.ipynb::default - {expected}"])


@pytest.mark.kernel
def test_a_clean_environment_is_clean_in_the_forked_process_too(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The template starts with the kernel's environment, so not even /proc/self/environ (the
    environment the process was started with) holds a credential the kernel must not see."""
    monkeypatch.setenv("MY_TOKEN", "SECRET-MARKER-tok-5b7d2a")
    check = (
        "import os\n"
        "assert 'MY_TOKEN' not in os.environ\n"
        "assert b'SECRET-MARKER' not in open('/proc/self/environ', 'rb').read()\n"
        f"assert {FORKED!r} in open('/proc/self/cmdline', 'rb').read()"
    )
    write_notebook(pytester.path / "env.ipynb", [check])
    (pytester.path / "env.yaml").write_text("")
    pytester.runpytest("-p", "no:xdist", FORK, "--notebooks-kernel-env=clean").assert_outcomes(passed=1)


@pytest.mark.kernel
def test_a_kernel_killed_by_its_notebook_is_a_dead_kernel(pytester: pytest.Pytester) -> None:
    write_notebook(pytester.path / "kill.ipynb", ["import os, signal\nos.kill(os.getpid(), signal.SIGKILL)"])
    (pytester.path / "kill.yaml").write_text("")
    result = pytester.runpytest("-p", "no:xdist", FORK)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["FAILED kill.ipynb::default - cell 1*: the kernel died while this cell was running"])


@pytest.mark.kernel
def test_a_kernel_whose_pytest_is_killed_ends_under_any_subreaper(pytester: pytest.Pytester) -> None:
    """pytest dies by SIGKILL (nothing of it runs): its forked kernel, an orphan, ends by itself.
    This process is a child subreaper, as pytest running forked kernels is, so the orphan comes
    here rather than to init (ipykernel 6 watched for init only: such a kernel lived on)."""
    assert fork_refusal([sys.executable, "-m", "ipykernel_launcher"]) is None  # makes this a subreaper
    kills_pytest = (
        "import os, pathlib, signal, time\n"
        "pathlib.Path('kernel.pid').write_text(str(os.getpid()))\n"
        "os.kill(int(os.environ['JPY_PARENT_PID']), signal.SIGKILL)\n"
        "time.sleep(600)"
    )
    write_notebook(pytester.path / "nb.ipynb", [kills_pytest])
    (pytester.path / "nb.yaml").write_text("")
    result = pytester.runpytest_subprocess("-p", "no:xdist", FORK)
    assert result.ret == -signal.SIGKILL
    kernel = int((pytester.path / "kernel.pid").read_text())
    try:
        assert exited(kernel), f"kernel {kernel} outlived its pytest"
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(kernel, signal.SIGKILL)
        exited(kernel, 10.0)


@pytest.mark.kernel
def test_spawn_from_the_ini_starts_kernels_from_pytest(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nnotebooks_kernel_start = spawn\n")
    write_notebook(pytester.path / "nb.ipynb", [f"print({FORKED!r} in open('/proc/self/cmdline', 'rb').read())"])
    (pytester.path / "nb.yaml").write_text("")
    result = pytester.runpytest("-p", "no:xdist")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["notebooks: kernels spawned (notebooks_kernel_start = spawn)"])
    nb = json.loads((pytester.path / "notebook-outputs" / "nb" / "default.ipynb").read_text())
    assert nb["cells"][0]["outputs"][0]["text"] == ["False\n"]


def test_the_header_names_the_preloaded_modules(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nnotebooks_kernel_start = fork\nnotebooks_preload =\n    json\n    csv\n")
    write_notebook(pytester.path / "nb.ipynb", ["x = 1"])
    (pytester.path / "nb.yaml").write_text("")
    result = pytester.runpytest("-p", "no:xdist", "--collect-only")
    result.stdout.fnmatch_lines(
        [
            "notebooks: kernels forked from a template process with json, csv imported, for speed (kernels of other "
            "languages are spawned; a Python kernel that cannot be forked is spawned with a warning; "
            "--notebooks-kernel-start=spawn spawns all)"
        ]
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--notebooks-kernel-start=vfork"],
            "*argument --notebooks-kernel-start: invalid choice: 'vfork' *",
        ),
        (["--notebooks-preload=pandas,not a module"], "*--notebooks-preload: 'not a module' is not a module name*"),
    ],
)
def test_a_bad_setting_is_a_usage_error(pytester: pytest.Pytester, args: list[str], message: str) -> None:
    result = pytester.runpytest(*args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message])


def test_which_kernel_commands_are_forked(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    python = sys.executable
    assert fork_refusal([python, "-m", "ipykernel_launcher", "-f", "k.json"]) is None
    assert fork_refusal([python, "-Xfrozen_modules=off", "-m", "ipykernel", "-f", "k.json"]) is None
    other = tmp_path / "env" / "bin" / "python"
    other.parent.mkdir(parents=True)
    other.symlink_to(python)  # the same interpreter, another environment
    assert "another Python environment" in str(fork_refusal([str(other), "-m", "ipykernel_launcher", "-f", "k"]))
    assert "does not run" in str(fork_refusal(["R", "--slave", "-e", "IRkernel::main()", "--args", "k.json"]))
    assert "does not run" in str(fork_refusal([python, "-c", "import ipykernel_launcher", "-f", "k"]))
    assert "does not run" in str(fork_refusal([python, "-m", "other_kernel", "-f", "k"]))
    monkeypatch.setattr(sys, "platform", "darwin")
    assert (
        fork_refusal([python, "-m", "ipykernel_launcher", "-f", "k"])
        == "kernels are forked on Linux only (this is darwin)"
    )


def test_the_provisioner_is_registered_for_jupyter_client() -> None:
    if sys.version_info >= (3, 11):
        import tomllib
    else:
        import tomli as tomllib  # type: ignore[import-not-found,unused-ignore]  # pytest depends on it below 3.11
    pyproject = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())
    target = pyproject["project"]["entry-points"]["jupyter_client.kernel_provisioners"][PROVISIONER_NAME]
    module, name = target.split(":")
    assert getattr(importlib.import_module(module), name) is ForkedProvisioner
    assert issubclass(ForkedProvisioner, KernelProvisionerBase)


@pytest.mark.kernel
def test_a_kernelspec_naming_the_provisioner_is_forked_without_a_warning(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = pytester.path / "share" / "jupyter" / "kernels" / "named"
    spec.mkdir(parents=True)
    kernel = {
        "argv": ["python", "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "named",
        "language": "python",
        "metadata": {"kernel_provisioner": {"provisioner_name": PROVISIONER_NAME}},
    }
    (spec / "kernel.json").write_text(json.dumps(kernel))
    monkeypatch.setenv("JUPYTER_PATH", str(pytester.path / "share" / "jupyter"))
    write_notebook(
        pytester.path / "nb.ipynb", [f"print({FORKED!r} in open('/proc/self/cmdline', 'rb').read())"], "named"
    )
    (pytester.path / "nb.yaml").write_text("")
    result = pytester.runpytest_subprocess("-p", "no:xdist", FORK)
    result.assert_outcomes(passed=1)
    nb = json.loads((pytester.path / "notebook-outputs" / "nb" / "default.ipynb").read_text())
    assert nb["cells"][0]["outputs"][0]["text"] == ["True\n"]
