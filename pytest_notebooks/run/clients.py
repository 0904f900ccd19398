"""The jupyter_client classes every kernel is started and driven with, and their configuration.

``TrackingKernelManager`` remembers the clients it hands out, so that their sockets close with
the kernel; ``QuickReadyClient`` is ready as soon as the kernel has answered, without
jupyter_client's fixed pause. Kernels talk over IPC sockets in a directory of the process's own
(run/ipcfiles.py): no TCP ports to race for under xdist. Imported by run/kernels.py when the first kernel starts.
"""

from __future__ import annotations

import contextlib
import time
from queue import Empty
from typing import Any

from jupyter_client.asynchronous.client import AsyncKernelClient
from jupyter_client.manager import AsyncKernelManager
from traitlets.config import Config

IOPUB_WAIT = 0.2  # seconds to wait for a kernel_info request's idle status before asking again
EXIT_POLL = 0.01  # seconds between looks at a kernel asked to shut down (jupyter_client's: 0.1)


def kernel_config(shutdown_wait: float, ipc: tuple[str, str] | None) -> Any:
    """A KernelManager's configuration: ``shutdown_wait`` s for a kernel to exit when asked before
    it is killed and, with ``ipc`` (an ``ip`` and a connection file from run/ipcfiles.py's
    ``kernel_paths``, on POSIX), IPC sockets ``<ip>-<port>`` in the process's own directory, so
    that the kernels of several workers never meet and what a killed pytest leaves is removed by
    the next; without, TCP and jupyter_client's connection file."""
    settings: dict[str, Any] = {"shutdown_wait_time": shutdown_wait}
    if ipc is not None:
        settings["transport"] = "ipc"
        settings["ip"], settings["connection_file"] = ipc
    return Config({"KernelManager": settings})


class QuickReadyClient(AsyncKernelClient):
    """An AsyncKernelClient whose ``wait_for_ready`` returns as soon as the kernel has answered a
    ``kernel_info`` request on shell and published that request's ``idle`` on IOPub.

    jupyter_client's ``wait_for_ready`` ends by waiting until IOPub has been silent for 0.2 s,
    a large part of a small case. The idle status of our own request says as much: IOPub is
    connected, and everything that request caused has arrived.
    """

    async def wait_for_ready(self, timeout: float | None = None) -> None:
        deadline = time.monotonic() + (timeout if timeout is not None else float("inf"))
        asked: set[str] = set()
        while True:
            asked.add(self.kernel_info())
            try:
                reply = await self.shell_channel.get_msg(timeout=1)
            except Empty:
                reply = None
            answered = reply is not None and reply["parent_header"].get("msg_id") in asked
            if answered and await self._iopub_idle(asked):
                self._handle_kernel_info_reply(reply)
                await self._drain()
                return
            if not await self._async_is_alive():
                raise RuntimeError("Kernel died before replying to kernel_info")
            if time.monotonic() > deadline:
                raise RuntimeError(f"Kernel didn't respond in {timeout:g} seconds")

    async def _iopub_idle(self, asked: set[str]) -> bool:
        """Wait for the idle status of one of the ``asked`` requests. IOPub may have joined after
        the kernel published it: on ipykernel's welcome (IOPub is connected from then on) the
        kernel is asked again, at most IOPUB_WAIT s after the last sign of life."""
        end = time.monotonic() + IOPUB_WAIT
        while (left := end - time.monotonic()) > 0:
            try:
                msg = await self.iopub_channel.get_msg(timeout=left)
            except Empty:
                return False
            if msg["msg_type"] == "iopub_welcome":
                asked.add(self.kernel_info())
                end = time.monotonic() + IOPUB_WAIT
            elif (
                msg["msg_type"] == "status"
                and msg["content"].get("execution_state") == "idle"
                and msg["parent_header"].get("msg_id") in asked
            ):
                return True
        return False

    async def _drain(self) -> None:
        """Drop what is queued already (replies to repeated requests, other statuses)."""
        for channel in (self.shell_channel, self.iopub_channel):
            with contextlib.suppress(Empty):
                while True:
                    await channel.get_msg(timeout=0)


class TrackingKernelManager(AsyncKernelManager):
    """An AsyncKernelManager handing out QuickReadyClients, and remembering them, so that their
    sockets are closed with the kernel (``close_clients``)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.client_factory = QuickReadyClient
        self.issued_clients: list[Any] = []

    def client(self, **kwargs: Any) -> Any:
        client = super().client(**kwargs)
        self.issued_clients.append(client)
        return client

    def close_clients(self) -> None:
        """Stop the channels of every client handed out (before the shutdown is requested)."""
        for client in self.issued_clients:
            client.stop_channels()

    async def _async_wait(self, pollinterval: float = EXIT_POLL) -> None:
        """jupyter_client's wait for the kernel's exit (after a shutdown request, SIGTERM or SIGKILL),
        looking every EXIT_POLL s: a kernel exits a few ms after either, and the pool waits here
        for the last kernels at the session's end and for a killed one before the next case."""
        await super()._async_wait(min(pollinterval, EXIT_POLL))
