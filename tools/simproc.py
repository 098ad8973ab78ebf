"""Run one simulated lock in a subprocess and find its endpoints.

Used by the demo, lockctl and the tests: it starts `python -m simulator`
exactly as a person would and reads the endpoints it prints.
"""

from __future__ import annotations

import json
import os
import random
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from tools.transport import connect_lock, link_for_url

ROOT = Path(__file__).resolve().parent.parent


class SimulatedLock:
    def __init__(self, state: Path, extra_args: list[str] | None = None,
                 auto_button: bool = True) -> None:
        self.state = state
        self.extra_args = extra_args or []
        self.auto_button = auto_button  # False: a test presses it (control "button")
        self.proc: subprocess.Popen[str] | None = None
        self.serial = ""
        self.ble = ""
        self.output: list[str] = []

    def start(self, timeout: float = 30.0) -> "SimulatedLock":
        cmd = [sys.executable, "-m", "simulator", "--state", str(self.state),
               "--ble", "127.0.0.1:0", *(["--auto-button"] if self.auto_button else []),
               *self.extra_args]
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        self.proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True, env=env)
        deadline = time.monotonic() + timeout
        assert self.proc.stdout is not None
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                raise RuntimeError("simulator exited:\n" + "".join(self.output))
            self.output.append(line)
            if line.startswith("serial:"):
                self.serial = line.split(":", 1)[1].strip()
            elif line.startswith("ble:"):
                self.ble = line.split(":", 1)[1].strip()
            elif line.strip() == "ready":
                return self
        raise RuntimeError("simulator did not become ready:\n" + "".join(self.output))

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def control(self, command: dict[str, Any], timeout: float = 10.0) -> dict[str, Any]:
        """One command on the simulator's control channel (STATE/control.sock,
        line-delimited JSON; simulator/control.py lists the commands): its
        answer, or RuntimeError with the simulator's one-line reason."""
        path = os.path.join(self.state, "control.sock")
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout)
            fd = None
            addr = path
            if len(os.fsencode(path)) >= 100:  # longer than sun_path: via the directory
                fd = os.open(str(self.state), os.O_RDONLY | os.O_DIRECTORY)
                addr = f"/proc/self/fd/{fd}/control.sock"
            try:
                sock.connect(addr)
                sock.sendall(json.dumps(command).encode() + b"\n")
                buf = b""
                while not buf.endswith(b"\n"):
                    chunk = sock.recv(65536)
                    if not chunk:
                        raise RuntimeError("the simulator closed its control channel")
                    buf += chunk
            except OSError as e:
                raise RuntimeError(f"simulator control {path}: {e.strerror or e}") from None
            finally:
                if fd is not None:
                    os.close(fd)
        answer = json.loads(buf)
        if not answer.get("ok"):
            raise RuntimeError(f"simulator control: {answer.get('error', 'refused')}")
        return answer

    def serial_link(self) -> Any:
        return link_for_url(self.serial)

    def ble_link(self, device: str | None = None) -> Any:
        """A BLE connection that the lock has taken (its HELLO is waiting),
        from a central of its own (a random 127.x.y.z device address, unless
        `device` names one): the lock holds off a central it dropped for
        failing, and one test's refused attempt must not hold off the next."""
        if device is None:
            device = "127.%d.%d.%d" % (random.randrange(1, 255), random.randrange(256),
                                      random.randrange(1, 255))
        return connect_lock(f"socket://{self.ble}?from={device}")

    def __enter__(self) -> "SimulatedLock":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
