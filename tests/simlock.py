"""Test helper: one simulated lock in a subprocess, driven as a tool drives a board.

Starts `python -m simulator` with a state directory, reads the endpoints it
prints, and offers the site-side pieces a test needs (site secret, grants).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from protocol import keys
from tools import issuer
from tools.client import Installer, access
from tools.transport import link_for_url

ROOT = Path(__file__).resolve().parent.parent


class SimulatedLock:
    def __init__(self, state: Path, extra_args: list[str] | None = None) -> None:
        self.state = state
        self.extra_args = extra_args or []
        self.proc: subprocess.Popen[str] | None = None
        self.serial = ""
        self.ble = ""
        self.output: list[str] = []

    def start(self, timeout: float = 30.0) -> "SimulatedLock":
        cmd = [sys.executable, "-m", "simulator", "--state", str(self.state),
               "--ble", "127.0.0.1:0", "--auto-button", *self.extra_args]
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

    def serial_link(self) -> Any:
        return link_for_url(self.serial)

    def ble_link(self) -> Any:
        return link_for_url("socket://" + self.ble)

    def __enter__(self) -> "SimulatedLock":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class Site:
    """The issuer's side in tests: a site secret and helpers to use it."""

    def __init__(self, name: str = "test-site") -> None:
        self.name = name
        self.secret = issuer.new_site_secret()

    def commission(self, lock: SimulatedLock, lock_id: str, now: int | None = None,
                   suite: str = "hmac", issuer_pk: bytes | None = None) -> dict[int, Any]:
        with lock.serial_link() as link:
            return Installer(link).commission(
                lock_id=lock_id, secret=keys.lock_secret(self.secret, lock_id), suite=suite,
                issuer=self.name, time=int(now if now is not None else time.time()),
                issuer_pk=issuer_pk)

    def grant(self, lock_id: str, sub: str, start: int | None = None, end: int | None = None,
              **kw: Any) -> issuer.Grant:
        now = int(time.time())
        start = now - 600 if start is None else start
        end = now + 3600 if end is None else end
        return issuer.issue_token(self.secret, lock_id, iss=self.name, sub=sub, start=start,
                                  end=end, **kw)

    def admin_key(self, lock_id: str) -> bytes:
        return issuer.admin_key_for(self.secret, lock_id)


def open_with(lock: SimulatedLock, grant: issuer.Grant, **kw: Any) -> Any:
    with lock.ble_link() as link:
        return access(link, grant, **kw)


__all__ = ["SimulatedLock", "Site", "open_with", "Installer"]
