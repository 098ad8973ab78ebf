"""Test helper: one simulated lock in a subprocess, driven as a tool drives a board.

Starts `python -m simulator` with a state directory, reads the endpoints it
prints, and offers the site-side pieces a test needs (site secret, grants).
"""

from __future__ import annotations

import time
from typing import Any

from protocol import keys
from tools import issuer
from tools.client import Installer, access
from tools.simproc import SimulatedLock


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
