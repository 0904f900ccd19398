"""What the pytest process and a kernel template process say to each other. Pure (sockets aside).

Both sides import it: run/forked.py (the pytest side) and run/forked_template.py (the template).
Per kernel, the pytest side sends one byte and three file descriptors over the template's control
socket (the request's own socket, the kernel's stdout, its stderr), then one JSON line on the
request's socket; the template answers with one JSON line, the kernel's pid or why there is none.
"""

from __future__ import annotations

import json
import socket
from dataclasses import dataclass
from typing import Any

KNOCK = b"K"  # the byte that carries a request's file descriptors over the control socket
REQUEST_FDS = 3  # the request's socket, the kernel's stdout, its stderr
REQUEST_TIMEOUT = 30.0  # seconds either side waits for the other once a request has begun
MAX_LINE = 1 << 24  # bytes of a request or answer line at most (an environment of some size)


class WireError(ValueError):
    """A line that is not a request or an answer (the other side is not ours, or broke off)."""


@dataclass(frozen=True)
class ForkRequest:
    """Fork a kernel running ipykernel with ``argv``, in ``cwd``, with the environment ``env``."""

    argv: tuple[str, ...]
    cwd: str
    env: dict[str, str]

    def encode(self) -> bytes:
        return json.dumps({"argv": list(self.argv), "cwd": self.cwd, "env": self.env}).encode() + b"\n"

    @classmethod
    def decode(cls, line: bytes) -> ForkRequest:
        """The request a line holds; WireError when it holds none."""
        fields = _object(line)
        argv, cwd, env = fields.get("argv"), fields.get("cwd"), fields.get("env")
        if not (isinstance(argv, list) and all(isinstance(arg, str) for arg in argv)):
            raise WireError(f"a fork request's argv must be a list of strings, not {argv!r}")
        if not isinstance(cwd, str):
            raise WireError(f"a fork request's cwd must be a string, not {cwd!r}")
        if not (isinstance(env, dict) and all(isinstance(k, str) and isinstance(v, str) for k, v in env.items())):
            raise WireError("a fork request's env must map strings to strings")
        return cls(tuple(argv), cwd, env)


@dataclass(frozen=True)
class ForkAnswer:
    """The template's answer: the kernel's pid once it is the pytest process's child, or why not."""

    pid: int | None = None
    error: str | None = None

    def encode(self) -> bytes:
        body: dict[str, Any] = {"pid": self.pid} if self.pid is not None else {"error": str(self.error)}
        return json.dumps(body).encode() + b"\n"

    @classmethod
    def decode(cls, line: bytes) -> ForkAnswer:
        """The answer a line holds; an answer with an error when it holds none (nothing is raised:
        the case that asked fails with that error)."""
        try:
            fields = _object(line)
        except WireError as exc:
            return cls(error=f"the kernel template process answered something else: {exc}")
        pid = fields.get("pid")
        if isinstance(pid, int) and not isinstance(pid, bool) and pid > 0:
            return cls(pid=pid)
        return cls(error=str(fields.get("error") or f"the kernel template process answered {line[:200]!r}"))


def read_line(sock: socket.socket, timeout: float | None = REQUEST_TIMEOUT) -> bytes:
    """One line from ``sock`` (blocking, ``timeout`` s between chunks); WireError when the other
    side closes first or the line grows past MAX_LINE."""
    sock.settimeout(timeout)
    data = b""
    while not data.endswith(b"\n"):
        chunk = sock.recv(1 << 16)
        if not chunk:
            raise WireError("the line ended early")
        data += chunk
        if len(data) > MAX_LINE:
            raise WireError(f"a line of more than {MAX_LINE} bytes")
    return data


def _object(line: bytes) -> dict[str, Any]:
    try:
        value = json.loads(line)
    except ValueError as exc:  # UnicodeDecodeError too
        raise WireError(f"not JSON ({exc})") from None
    if not isinstance(value, dict):
        raise WireError(f"not a JSON object: {value!r}"[:200])
    return value
