"""The undocumented names of nbclient, papermill and jupyter_client that run/ relies on, in one list.

run/engine.py, run/clients.py and run/forked.py subclass those libraries' classes and override,
call or read names they do not promise to keep. Each such name is listed here with why it is
used; tests/test_run_units.py checks every one against the installed libraries, so an upgrade
that renames or reshapes one fails there, by name, instead of in a case run.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Internal:
    """One name of another library's class (``module:Class``) or module (``module``).

    ``parameters``: the method's parameters in order, without ``self``/``cls`` (None: not checked).
    ``used_in``: a method of the owner whose source must name ``self.<name>``, for an attribute
    set there rather than on the class, or a method called from there.
    """

    owner: str
    name: str
    why: str
    parameters: tuple[str, ...] | None = None
    used_in: str | None = None

    def __str__(self) -> str:
        return f"{self.owner}.{self.name}"


_CLIENT = "nbclient.client:NotebookClient"
_PM_CLIENT = "papermill.clientwrap:PapermillNotebookClient"
_ENGINE = "papermill.engines:NBClientEngine"
_MANAGER = "papermill.engines:NotebookExecutionManager"
_PM_UTILS = "papermill.utils"
_KERNEL_CLIENT = "jupyter_client.client:KernelClient"
_PROVISIONER = "jupyter_client.provisioning.local_provisioner:LocalProvisioner"

INTERNALS: tuple[Internal, ...] = (
    # run/engine.py: GuardedClient (nbclient's client, through papermill's)
    Internal(
        _CLIENT,
        "async_execute_cell",
        "overridden: a cell's output budget opens and closes around it",
        ("cell", "cell_index", "execution_count", "store_history"),
    ),
    Internal(
        _PM_CLIENT,
        "execute_cell",
        "papermill runs each cell through this sync name, which GuardedClient binds to its own async one",
        used_in="papermill_execute_cells",
    ),
    Internal(
        _CLIENT,
        "process_message",
        "overridden: every kernel message is masked before it becomes an output",
        ("msg", "cell", "cell_index"),
    ),
    Internal(
        _CLIENT,
        "output",
        "overridden: each output is counted against the budget",
        ("outs", "msg", "display_id", "cell_index"),
    ),
    Internal(
        _CLIENT,
        "clear_output",
        "overridden: a cleared cell's budget starts again; a cut cell keeps its outputs",
        ("outs", "msg", "cell_index"),
    ),
    Internal(
        _CLIENT,
        "_update_display_id",
        "overridden: the earlier cells a display update changes are serialized again at the next save",
        ("display_id", "msg"),
    ),
    Internal(
        _CLIENT,
        "_display_id_map",
        "read: display id -> {cell index: output indices}; a cell named there is not compacted",
        used_in="reset_execution_trackers",
    ),
    Internal(
        _CLIENT,
        "output_hook_stack",
        "read: a message an output widget captures is not the cell's output, nor counted",
        used_in="reset_execution_trackers",
    ),
    Internal(
        _CLIENT,
        "clear_before_next_output",
        "read: a clear_output(wait=True) takes effect at the next output, which resets the budget",
        used_in="async_execute_cell",
    ),
    Internal(
        _CLIENT,
        "task_poll_for_reply",
        "cancelled: a cell that ignores the interrupt after passing its limit is abandoned",
        used_in="async_execute_cell",
    ),
    Internal(_CLIENT, "km", "read: the kernel manager, to interrupt a cell over its limit", used_in="__init__"),
    Internal(
        _PM_CLIENT,
        "__init__",
        "subclassed: GuardedClient passes the same arguments on",
        ("nb_man", "km", "raise_on_iopub_timeout", "kw"),
    ),
    # run/engine.py: GuardedEngine and GuardedManager (papermill's engine and execution manager)
    Internal(
        _ENGINE,
        "execute_notebook",
        "overridden: the same steps with GuardedManager, plus the guard and the source path",
        ("nb", "kernel_name", "output_path", "progress_bar", "log_output", "autosave_cell_every", "kwargs"),
    ),
    Internal(
        _ENGINE,
        "execute_managed_notebook",
        "overridden: its arguments are handled as papermill does, to build GuardedClient",
        (
            "nb_man",
            "kernel_name",
            "log_output",
            "stdout_file",
            "stderr_file",
            "start_timeout",
            "execution_timeout",
            "kwargs",
        ),
    ),
    Internal(_PM_UTILS, "remove_args", "called as papermill's engine calls it", ("args", "kwargs")),
    Internal(_PM_UTILS, "merge_kwargs", "called as papermill's engine calls it", ("caller_args", "callee_args")),
    Internal(_MANAGER, "cell_start", "overridden: only a code cell's start saves", ("cell", "cell_index", "kwargs")),
    Internal(_MANAGER, "cell_complete", "overridden: a cell's end does not save", ("cell", "cell_index", "kwargs")),
    Internal(_MANAGER, "notebook_complete", "overridden: the run's last save serializes all", ("kwargs",)),
    Internal(_MANAGER, "save", "overridden: a save serializes only what may have changed", ("kwargs",)),
    Internal(_MANAGER, "last_save_time", "written by our save: papermill's autosave timer reads it", used_in="save"),
    Internal(_MANAGER, "now", "called by our save, as papermill's does", ()),
    Internal(_MANAGER, "output_path", "read: where the notebook is saved", used_in="__init__"),
    # run/clients.py: QuickReadyClient (jupyter_client's async client)
    Internal(
        "jupyter_client.asynchronous.client:AsyncKernelClient",
        "wait_for_ready",
        "overridden: ready on the kernel's answer, without the fixed IOPub pause",
        ("timeout",),
    ),
    Internal(
        _KERNEL_CLIENT,
        "_handle_kernel_info_reply",
        "called: records the kernel's info as wait_for_ready does",
        ("msg",),
    ),
    Internal(_KERNEL_CLIENT, "_async_is_alive", "called: a kernel that died while being waited for", ()),
    # run/forked.py: ForkedProvisioner (jupyter_client's local provisioner)
    Internal(_PROVISIONER, "launch_kernel", "overridden: the kernel is forked instead of spawned", ("cmd", "kwargs")),
    Internal(_PROVISIONER, "send_signal", "overridden: a forked kernel's pid is learned first", ("signum",)),
    Internal(_PROVISIONER, "wait", "overridden: the forked kernel's group is reaped after it", ()),
    Internal(_PROVISIONER, "cleanup", "overridden: a forked kernel nobody waited for is killed", ("restart",)),
    Internal(_PROVISIONER, "process", "set: the Popen-like kernel process", used_in="launch_kernel"),
    Internal(_PROVISIONER, "pgid", "set: the group signals go to", used_in="launch_kernel"),
    Internal(_PROVISIONER, "pid", "set: the kernel's pid", used_in="launch_kernel"),
    Internal(_PROVISIONER, "cwd", "set: resolves relative paths", used_in="launch_kernel"),
)
