"""The client side of a simulator's control channel (simulator/control.py
has the protocol and the server): one connection, one command and its answer
at a time, over the owner-only Unix socket STATE_DIR/control.sock."""

from __future__ import annotations

import contextlib
import json
import os
import socket
from typing import Any

SOCKET_NAME = "control.sock"
DEFAULT_TIMEOUT = 10.0


class ControlError(Exception):
    """A command was refused, or the channel failed (one-line message)."""


def socket_path(state_dir: str | os.PathLike[str]) -> str:
    return os.path.join(os.fspath(state_dir), SOCKET_NAME)


# --- Unix socket paths longer than sun_path ----------------------------------------
_SUN_PATH_MAX = 100  # 108 on Linux, 104 on BSDs, with room for the NUL


@contextlib.contextmanager
def short_path(path: str):
    """A path to bind or connect to that fits sun_path: the path itself, or
    (Linux) the same file through /proc/self/fd of its open directory."""
    if len(os.fsencode(path)) < _SUN_PATH_MAX or not os.path.isdir("/proc/self/fd"):
        yield path
        return
    fd = os.open(os.path.dirname(path) or ".", os.O_RDONLY | os.O_DIRECTORY)
    try:
        yield f"/proc/self/fd/{fd}/{os.path.basename(path)}"
    finally:
        os.close(fd)


# --- the client -------------------------------------------------------------------
class ControlClient:
    """One connection to a simulator's control socket."""

    def __init__(self, path: str | os.PathLike[str], timeout: float = DEFAULT_TIMEOUT) -> None:
        path = os.fspath(path)
        if os.path.isdir(path):
            path = socket_path(path)
        self.path = path
        self.timeout = timeout
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(timeout)
        try:
            with short_path(path) as addr:
                sock.connect(addr)
        except OSError as e:
            sock.close()
            raise ControlError(f"cannot reach the simulator at {path}: "
                               f"{e.strerror or e}") from None
        self.sock = sock
        self._buf = b""

    def call(self, command: dict[str, Any]) -> dict[str, Any]:
        """Send one command; its answer (raises ControlError if refused)."""
        try:
            self.sock.sendall(json.dumps(command).encode() + b"\n")
            while b"\n" not in self._buf:
                chunk = self.sock.recv(65536)
                if not chunk:
                    raise ControlError("the simulator closed the control channel")
                self._buf += chunk
        except socket.timeout:
            raise ControlError(f"no answer from the simulator within {self.timeout} s") from None
        except OSError as e:
            raise ControlError(f"control channel: {e.strerror or e}") from None
        line, self._buf = self._buf.split(b"\n", 1)
        try:
            answer = json.loads(line)
        except ValueError:
            raise ControlError("the simulator's answer is not JSON") from None
        if not isinstance(answer, dict) or not answer.get("ok"):
            raise ControlError(str(answer.get("error", "refused")) if isinstance(answer, dict)
                               else "refused")
        return answer

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> ControlClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def request(path: str | os.PathLike[str], command: dict[str, Any],
            timeout: float = DEFAULT_TIMEOUT) -> dict[str, Any]:
    """One command to the simulator whose state directory (or socket) is `path`."""
    with ControlClient(path, timeout) as client:
        return client.call(command)
