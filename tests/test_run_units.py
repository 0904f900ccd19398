"""The case runner's parts called directly, no kernel: the output budget, what the pytest process
and a fork template say to each other, the kernel pool's bookkeeping, the per-cell watch, and the
undocumented names of nbclient, papermill and jupyter_client that run/ relies on."""

from __future__ import annotations

import hashlib
import importlib
import inspect
import socket
import sys
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pytest_notebooks.errors import KernelTemplateError, PytestNotebooksWarning
from pytest_notebooks.models import FailureKind, NotebookCase
from pytest_notebooks.redact import Redactor
from pytest_notebooks.run import forked_template, forkwire, kernels
from pytest_notebooks.run.budget import (
    MAX_TAIL,
    MIN_TAIL,
    OutputBudget,
    Overflow,
    RollingTail,
    StreamBudget,
    output_size,
    trim_error,
)
from pytest_notebooks.run.execute import Source
from pytest_notebooks.run.family import Family
from pytest_notebooks.run.forked import ForkedProcess, fork_refusal, split_kernel_command
from pytest_notebooks.run.forkwire import ForkAnswer, ForkRequest, WireError, read_line
from pytest_notebooks.run.internals import INTERNALS, Internal
from pytest_notebooks.run.kernels import KERNEL_STARTS, ForkStarter, KernelHandle, KernelKey, KernelPool
from pytest_notebooks.run.kernelspec import KernelChoice
from pytest_notebooks.run.watch import TIMEOUT_ENAME, CellWatch

# --- the output budget ---------------------------------------------------------------------------


def test_a_cell_without_limits_keeps_everything() -> None:
    cell = OutputBudget(None, None).open(0)
    assert cell.allowance is None
    assert cell.room() is None
    assert cell.admit(10**9)


def test_a_cell_keeps_outputs_up_to_its_limit_and_not_one_past_it() -> None:
    cell = OutputBudget(100, None).open(3)
    assert (cell.index, cell.scope, cell.limit) == (3, "cell", 100)
    assert cell.admit(60)
    assert cell.room() == 40
    assert not cell.admit(41)  # refused whole: nothing counted
    assert cell.room() == 40
    cell.keep_head(40)  # the head of a stream that fits
    assert cell.room() == 0
    cell.cleared()  # clear_output: it starts again
    assert cell.room() == 100


def test_the_notebook_limit_counts_what_earlier_cells_kept() -> None:
    budget = OutputBudget(100, 250)
    for index in range(2):
        cell = budget.open(index)
        assert cell.scope == "cell"  # 100 < what the notebook has left
        assert cell.admit(100)
        budget.close(cell)
    third = budget.open(2)
    assert (third.allowance, third.scope, third.limit) == (50, "notebook", 250)
    assert third.admit(50)
    budget.close(third)
    assert budget.open(3).allowance == 0  # never negative


def test_a_tie_between_the_limits_names_the_cell_limit() -> None:
    assert OutputBudget(100, 100).open(0).scope == "cell"


@pytest.mark.parametrize(("limit", "tail"), [(100, MIN_TAIL), (50_000, 5_000), (10**9, MAX_TAIL)])
def test_a_cut_cell_keeps_a_tenth_of_its_limit_within_bounds(limit: int, tail: int) -> None:
    assert OutputBudget(limit, None).open(0).tail_size == tail


def test_a_rolling_tail_keeps_the_last_characters_and_counts_all() -> None:
    tail = RollingTail(5, "")
    for chunk in ("abc", "", "defg", "h"):
        tail.add(chunk)
    assert tail.value == "defgh"
    assert tail.received == 8
    tail.add("x" * 1000 + "12345")  # one chunk larger than the tail
    assert tail.value == "12345"
    assert tail.received == 1013
    data = RollingTail(3, b"")
    data.add(b"hello")
    assert data.value == b"llo"


def test_an_overflow_keeps_a_tail_per_stream_and_says_how_much_it_left_out() -> None:
    overflow = Overflow("notebook", 2_000_000, 4)
    assert overflow.add_stream("stdout", "aaaaaa")
    assert overflow.add_stream("stderr", "bb")
    assert not overflow.add_stream("stdout", "cc")
    overflow.drop(10)  # an image after the cut
    assert overflow.tails["stdout"].value == "aacc"
    assert overflow.left_out() == 10 + (8 - 4) + 0
    assert overflow.marker() == (
        "\n[pytest-notebooks: the output passed the whole-notebook output limit of 2 MB here, "
        "and the cell was stopped; 14 characters left out before the last ones below]\n"
    )


def test_a_stream_passes_its_head_then_keeps_its_tail() -> None:
    budget = StreamBudget(10, 4)
    assert budget.summary("stderr") == b""  # within its limit: nothing to add at the end
    assert budget.take(b"12345") == (b"12345", False)
    assert budget.take(b"6789abcd") == (b"6789a", True)  # passed here
    assert budget.take(b"efgh") == (b"", False)  # said once
    assert budget.passed
    assert budget.summary("stderr") == (
        b"[pytest-notebooks: 3 bytes of the kernel's stderr were left out; its last 4 bytes follow]\nefgh"
    )
    assert budget.passed_line("stderr").startswith(
        "[pytest-notebooks: the kernel's stderr passed its limit of 10 characters here"
    )


def test_the_size_of_an_output_is_what_the_notebook_would_hold() -> None:
    assert output_size({"msg_type": "stream", "content": {"text": "abc"}}) == 3
    error = {"msg_type": "error", "content": {"evalue": "no", "traceback": ["ab", "cde"]}}
    assert output_size(error) == 7
    data = {"msg_type": "display_data", "content": {"data": {"text/plain": "xy", "application/json": {"a": 1}}}}
    assert output_size(data) == 2 + len('{"a": 1}')


def test_a_trimmed_error_keeps_its_last_traceback_lines() -> None:
    content = {"ename": "KeyboardInterrupt", "evalue": "stop", "traceback": ["first" * 10, "second", "last"]}
    trimmed = trim_error(content, 15)
    assert trimmed == {"ename": "KeyboardInterrupt", "evalue": "stop", "traceback": ["second", "last"]}
    assert trim_error(content, 2)["evalue"] == "st"


def test_a_cut_cell_reads_head_marker_tails_and_the_interrupt() -> None:
    from pytest_notebooks.run.engine import _Cut

    outputs: list[Any] = [{"output_type": "stream", "name": "stdout", "text": "head"}]
    cell = OutputBudget(20_000, None).open(0)
    cut = _Cut(outputs, cell)
    cut.add({"msg_type": "stream", "content": {"name": "stdout", "text": "x" * 3000}})
    cut.add({"msg_type": "stream", "content": {"name": "stderr", "text": "warning"}})
    cut.add({"msg_type": "display_data", "content": {"data": {"text/plain": "12345"}, "metadata": {}}})
    interrupt = {"ename": "KeyboardInterrupt", "evalue": "", "traceback": ["tb"]}
    cut.add({"msg_type": "error", "header": {"msg_type": "error"}, "content": interrupt})
    cut.materialize(Redactor())
    assert [(o.get("name"), o["output_type"]) for o in outputs] == [
        ("stdout", "stream"),
        ("stderr", "stream"),  # the marker
        ("stdout", "stream"),
        ("stderr", "stream"),
        (None, "error"),
    ]
    assert outputs[2]["text"] == "x" * MIN_TAIL
    assert outputs[3]["text"] == "warning"
    assert f"; {1000 + 5:,} characters left out" in outputs[1]["text"]


# --- what the pytest process and a fork template say to each other ------------------------------

PYTHON = sys.executable


@pytest.mark.parametrize(
    ("cmd", "split"),
    [
        ([PYTHON, "-m", "ipykernel_launcher", "-f", "c.json"], ([PYTHON], ["-f", "c.json"])),
        (
            [PYTHON, "-Xfrozen_modules=off", "-m", "ipykernel", "-f", "c"],
            ([PYTHON, "-Xfrozen_modules=off"], ["-f", "c"]),
        ),
        ([PYTHON, "-m", "other_kernel", "-f", "c.json"], None),
        ([PYTHON, "kernel.py", "-m", "ipykernel_launcher"], None),  # a script
        ([PYTHON, "-c", "import x", "-m", "ipykernel_launcher"], None),
        ([PYTHON, "-m"], None),
        (["R", "--slave", "-e", "IRkernel::main()"], None),
    ],
)
def test_a_kernel_command_is_split_into_the_interpreter_and_ipykernels_arguments(
    cmd: list[str], split: tuple[list[str], list[str]] | None
) -> None:
    assert split_kernel_command(cmd) == split


@pytest.mark.skipif(sys.platform != "linux", reason="forking is refused elsewhere first")
def test_a_kernel_of_another_environment_or_language_is_not_forked() -> None:
    other = fork_refusal(["/elsewhere/bin/python", "-m", "ipykernel_launcher", "-f", "c.json"])
    assert other == f"its kernelspec runs another Python environment (/elsewhere/bin/python, not {PYTHON})"
    assert fork_refusal(["R", "--slave", "-e", "IRkernel::main()"]) == (
        "its kernelspec does not run `python -m ipykernel_launcher` (R --slave -e ...)"
    )


def test_a_fork_request_is_one_json_line_each_way() -> None:
    request = ForkRequest(("-f", "c.json"), "/work", {"A": "1"})
    line = request.encode()
    assert line.endswith(b"\n")
    assert line.count(b"\n") == 1
    assert ForkRequest.decode(line) == request
    assert ForkAnswer.decode(ForkAnswer(pid=4242).encode()) == ForkAnswer(pid=4242)
    assert ForkAnswer.decode(ForkAnswer(error="no fork").encode()) == ForkAnswer(error="no fork")


@pytest.mark.parametrize(
    ("line", "said"),
    [
        (b"not json\n", "not JSON"),
        (b"[1, 2]\n", "not a JSON object"),
        (b'{"argv": "-f", "cwd": "/", "env": {}}\n', "argv must be a list of strings"),
        (b'{"argv": [], "cwd": 3, "env": {}}\n', "cwd must be a string"),
        (b'{"argv": [], "cwd": "/", "env": {"A": 1}}\n', "env must map strings to strings"),
        (b'\xff{"argv": []}\n', "not JSON"),
    ],
)
def test_a_request_that_is_not_one_is_refused(line: bytes, said: str) -> None:
    with pytest.raises(WireError, match=said):
        ForkRequest.decode(line)


@pytest.mark.parametrize(
    ("line", "error"),
    [
        (b"garbage\n", "the kernel template process answered something else: not JSON (Expecting value: "),
        (b'{"pid": true}\n', "the kernel template process answered b'{\"pid\": true}\\n'"),
        (b'{"pid": -1, "error": "gone"}\n', "gone"),
    ],
)
def test_an_answer_that_is_not_a_pid_is_an_error(line: bytes, error: str) -> None:
    answer = ForkAnswer.decode(line)
    assert answer.pid is None
    assert answer.error is not None
    assert answer.error.startswith(error)


@pytest.fixture
def socket_pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    yield ours, theirs
    ours.close()
    theirs.close()


def test_a_line_is_read_across_chunks_and_refused_when_cut_short(
    socket_pair: tuple[socket.socket, socket.socket], monkeypatch: pytest.MonkeyPatch
) -> None:
    ours, theirs = socket_pair
    theirs.sendall(b'{"pid"')
    theirs.sendall(b": 7}\n")
    assert read_line(ours) == b'{"pid": 7}\n'
    theirs.sendall(b"no end")
    theirs.shutdown(socket.SHUT_WR)
    with pytest.raises(WireError, match="ended early"):
        read_line(ours)
    monkeypatch.setattr(forkwire, "MAX_LINE", 10)
    first, second = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    with first, second:
        second.sendall(b"x" * 20)
        with pytest.raises(WireError, match="more than 10 bytes"):
            read_line(first)


def test_the_pytest_side_reads_the_templates_answer_when_it_comes(
    socket_pair: tuple[socket.socket, socket.socket],
) -> None:
    ours, theirs = socket_pair
    process = ForkedProcess(ours, None, None)
    assert process.pid is None  # not answered yet: nobody waits
    assert process.wait_for_pid(0.01) is None
    theirs.sendall(ForkAnswer(pid=4242).encode()[:5])
    assert process.pid is None  # half an answer
    theirs.sendall(ForkAnswer(pid=4242).encode()[5:])
    assert process.pid == 4242
    assert process.started(0.0) == 4242


def test_a_template_that_exits_or_refuses_fails_the_kernel_once(
    socket_pair: tuple[socket.socket, socket.socket],
) -> None:
    ours, theirs = socket_pair
    process = ForkedProcess(ours, None, None)
    theirs.close()
    with pytest.raises(KernelTemplateError, match="exited before it forked this kernel"):
        process.poll()
    assert process.poll() == 1  # raised once: the manager's cleanup polls again
    with pytest.raises(KernelTemplateError, match="exited before"):
        process.started(1.0)
    refused, template = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    with template:
        template.sendall(ForkAnswer(error="notebooks_preload: importing 'x' failed").encode())
        assert ForkedProcess(refused, None, None).wait_for_pid(10.0) is None


def test_the_template_answers_a_request_it_cannot_serve_without_forking(
    socket_pair: tuple[socket.socket, socket.socket],
) -> None:
    """The template side of one request, the fork itself left out: a refused template answers
    with its reason; a request that is not one gets no answer."""
    ours, theirs = socket_pair
    refused = "notebooks_preload: importing 'x' started 1 thread(s)"
    theirs.sendall(ForkRequest(("-f", "c.json"), "/", {}).encode())
    assert forked_template._fork(ours, ours, 1, 2, refused) is None  # (the control socket is not used)
    assert ForkAnswer.decode(read_line(theirs)) == ForkAnswer(error=refused)
    theirs.sendall(b'{"argv": 1}\n')
    assert forked_template._fork(ours, ours, 1, 2, None) is None
    ours.shutdown(socket.SHUT_WR)
    with pytest.raises(WireError, match="ended early"):
        read_line(theirs)


# --- the kernel pool's bookkeeping ---------------------------------------------------------------


class FakeManager:
    """The part of a jupyter_client KernelManager a kernel handle uses."""

    def __init__(self) -> None:
        self.alive = True
        self.calls: list[str] = []
        self.provisioner = None

    def close_clients(self) -> None:
        self.calls.append("close_clients")

    async def is_alive(self) -> bool:
        return self.alive

    async def request_shutdown(self) -> None:
        self.calls.append("request_shutdown")

    async def finish_shutdown(self, waittime: float) -> None:
        self.calls.append(f"finish_shutdown({waittime:g})")
        self.alive = False

    async def cleanup_resources(self) -> None:
        self.calls.append("cleanup_resources")


class FakeStarter:
    """A KernelStarter whose kernels are FakeManagers."""

    name = "fake"
    preload: tuple[str, ...] = ()
    ahead = 2

    def __init__(self) -> None:
        self.started: list[KernelKey] = []
        self.failing = False
        self.closed = False

    def start(self, key: KernelKey, extra_arguments: list[str]) -> KernelHandle:
        if self.failing:
            raise RuntimeError("cannot start")
        self.started.append(key)
        return KernelHandle(FakeManager(), Family("0123"))

    def close(self) -> None:
        self.closed = True


A, B = KernelKey("python3", "/a"), KernelKey("python3", "/b")


def calls(handle: KernelHandle) -> list[str]:
    manager: FakeManager = handle.manager
    return manager.calls


@pytest.fixture
def starter() -> FakeStarter:
    return FakeStarter()


@pytest.fixture
def pool(starter: FakeStarter, monkeypatch: pytest.MonkeyPatch) -> KernelPool:
    """A pool whose released kernels stay in their grace for the whole test, unless it sets less."""
    monkeypatch.setattr(kernels, "SHUTDOWN_WAIT", 3600.0)
    return KernelPool(starter)


def test_the_pool_takes_the_kernel_started_ahead_for_the_case(pool: KernelPool, starter: FakeStarter) -> None:
    pool.prepare(A, [])
    assert starter.started == [A]  # another case's kind: one ahead
    first = pool.take(A, [])
    assert starter.started == [A]
    assert calls(first) == []
    pool.prepare(A, [])  # the same kind again: the starter's `ahead` of them
    assert starter.started == [A, A, A]
    pool.take(A, [])
    pool.prepare(B, [])  # the one left for A is stopped, B's started
    assert starter.started == [A, A, A, B]
    assert sum("request_shutdown" in calls(handle) for handle, _asked in pool._stopping) == 1


def test_a_kernel_started_ahead_for_another_case_is_released(pool: KernelPool, starter: FakeStarter) -> None:
    pool.prepare(B, [])
    taken = pool.take(A, [])
    assert starter.started == [B, A]
    (released, _asked), *rest = pool._stopping
    assert not rest
    assert calls(released) == ["close_clients", "request_shutdown"]
    assert calls(taken) == []
    pool.prepare(None, [])  # no notebook case next: nothing ahead
    assert pool._ahead == []


def test_a_kernel_that_fails_to_start_ahead_fails_the_case_that_needs_it(
    pool: KernelPool, starter: FakeStarter
) -> None:
    starter.failing = True
    pool.prepare(A, [])  # not this case's failure
    assert pool._ahead == []
    with pytest.raises(RuntimeError, match="cannot start"):
        pool.take(A, [])


def test_released_kernels_are_finished_after_their_grace_or_once_exited(
    pool: KernelPool, monkeypatch: pytest.MonkeyPatch
) -> None:
    running, exited = pool.take(A, []), pool.take(B, [])
    pool.release(running)
    pool.release(exited)
    exited.manager.alive = False
    pool.take(A, [])  # reaps what it can, without waiting
    assert calls(exited) == ["close_clients", "request_shutdown", "cleanup_resources"]
    assert calls(running) == ["close_clients", "request_shutdown"]  # still in its grace
    monkeypatch.setattr(kernels, "SHUTDOWN_WAIT", 0.0)
    pool.take(A, [])
    assert calls(running)[2:] == ["finish_shutdown(0)", "cleanup_resources"]  # killed
    assert pool._stopping == []


def test_closing_the_pool_finishes_every_kernel_and_the_starter(pool: KernelPool, starter: FakeStarter) -> None:
    pool.prepare(A, [])
    taken = pool.take(B, [])
    pool.release(taken)
    ahead = pool._stopping[0][0]
    pool.close()
    assert calls(taken) == ["close_clients", "request_shutdown", "finish_shutdown(3600)", "cleanup_resources"]
    # No case took it: killed at once, not given the rest of its grace
    assert calls(ahead) == ["close_clients", "request_shutdown", "finish_shutdown(0)", "cleanup_resources"]
    assert pool._stopping == []
    assert starter.closed


def test_a_kernel_that_is_gone_is_not_asked_to_shut_down() -> None:
    handle = KernelHandle(FakeManager(), Family("0123"))
    handle.manager.alive = False
    handle.request_shutdown()
    assert calls(handle) == ["close_clients"]
    assert handle.pid is None
    handle.learn_pid()  # no provisioner: nothing to learn, nothing to wait for
    assert handle.family.pid is None


def test_the_kernel_start_is_chosen_once_by_name() -> None:
    assert KERNEL_STARTS == ("fork", "spawn")
    spawn = KernelPool()
    assert (spawn.kernel_start, spawn.preload, spawn.starter.ahead) == ("spawn", (), 1)
    fork = KernelPool("fork", ("json",))
    assert (fork.kernel_start, fork.preload, fork.starter.ahead) == ("fork", ("json",), 2)
    with pytest.raises(ValueError, match="kernel start must be one of fork, spawn, not 'thread'"):
        KernelPool("thread")


def test_a_spawned_instead_of_forked_kernel_is_said_once_per_reason() -> None:
    starter = ForkStarter()
    line = "kernel 'ir' is spawned, not forked from the template process: R"
    with pytest.warns(PytestNotebooksWarning, match="kernel 'ir' is spawned"):
        starter._say(line)
    with warnings.catch_warnings(record=True) as again:
        warnings.simplefilter("always")
        starter._say(line)
    assert again == []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        starter._say("another reason")
    assert starter._said == {line, "another reason"}


# --- one case's watch and kernel ------------------------------------------------------------------


def test_a_cell_gets_the_smaller_of_its_limit_and_what_is_left_of_the_notebooks() -> None:
    relaxed = CellWatch(1000.0, 5.0, time.monotonic())
    assert relaxed.timeout_func({}) == 5.0
    assert relaxed.timeout_failure().kind is FailureKind.CELL_TIMEOUT
    assert relaxed.timeout_failure().limit == 5.0
    hurried = CellWatch(1000.0, 5.0, time.monotonic() - 999.9)
    limit = hurried.timeout_func({})
    assert limit is not None
    assert limit < 5.0
    assert hurried.timeout_failure().kind is FailureKind.NOTEBOOK_TIMEOUT
    assert hurried.timeout_failure().limit == 1000.0
    assert CellWatch(None, None, time.monotonic()).timeout_func({}) is None


def test_the_watch_remembers_the_last_cell_and_whether_it_timed_out() -> None:
    watch = CellWatch(10.0, None, time.monotonic() - 20.0)
    assert watch.never_ready()  # the notebook's limit ran out before any cell started
    assert watch.start_timeout() == 1
    watch.on_cell_start({"cell_type": "code"}, 4)
    watch.on_cell_executed({}, 4, {"content": {"ename": "NameError"}})
    assert (watch.last_started, watch.timed_out, watch.never_ready()) == (4, False, False)
    watch.on_cell_executed({}, 4, {"content": {"ename": TIMEOUT_ENAME}})
    assert watch.timed_out
    assert CellWatch(None, None, time.monotonic()).start_timeout() == 60


def test_a_kernel_that_is_not_installed_or_not_named_is_a_missing_kernel() -> None:
    unnamed = KernelChoice.find(None).failure()
    assert unnamed is not None
    assert unnamed.kind is FailureKind.MISSING_KERNEL
    assert "names no kernel" in unnamed.evalue
    missing = KernelChoice.find("no-such-kernel-here").failure()
    assert missing is not None
    assert missing.evalue == "no kernel named 'no-such-kernel-here' is installed here"
    python = KernelChoice.find("python")  # jupyter_client's name for the native kernel
    assert python.failure() is None
    assert python.name == "python3"
    assert python.arguments == ("--IPKernelApp.log_level=CRITICAL",)


def test_the_notebook_runs_only_as_it_was_collected(tmp_path: Path) -> None:
    notebook = tmp_path / "nb.ipynb"
    notebook.write_bytes(b'{"cells": []}')
    digest = hashlib.sha256(b'{"cells": []}').hexdigest()
    case = NotebookCase(notebook, tmp_path / "nb.yaml", "default", {}, notebook_sha256=digest)
    assert Source.read(case) == Source(b'{"cells": []}')
    notebook.write_bytes(b'{"cells": [], "x": 1}')
    changed = Source.read(case).failure
    assert changed is not None
    assert changed.kind is FailureKind.NOTEBOOK_CHANGED
    assert f"(sha256 {digest[:12]} at collection, " in changed.evalue
    notebook.unlink()
    gone = Source.read(case)
    assert gone.data == b""
    assert gone.failure is not None
    assert "cannot be read since it was collected" in gone.failure.evalue


# --- the undocumented names run/ relies on --------------------------------------------------------


def _owner(internal: Internal) -> Any:
    module, _, name = internal.owner.partition(":")
    owner = importlib.import_module(module)
    return getattr(owner, name) if name else owner


@pytest.mark.parametrize("internal", INTERNALS, ids=str)
def test_each_internal_name_run_relies_on_is_still_there(internal: Internal) -> None:
    owner = _owner(internal)
    if internal.used_in is not None:
        source = inspect.getsource(getattr(owner, internal.used_in))
        assert f"self.{internal.name}" in source, f"{internal.owner}.{internal.used_in} no longer uses {internal.name}"
    else:
        assert hasattr(owner, internal.name), f"{internal} is gone ({internal.why})"
    if internal.parameters is not None:
        signature = inspect.signature(getattr(owner, internal.name))
        parameters = tuple(name for name in signature.parameters if name not in ("self", "cls"))
        assert parameters == internal.parameters, f"{internal} changed ({internal.why})"


def test_the_list_of_internals_names_each_one_once() -> None:
    names = [str(internal) for internal in INTERNALS]
    assert len(names) == len(set(names))
    assert all(internal.why for internal in INTERNALS)
