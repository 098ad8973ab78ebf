"""Host-side protocol clients: the key emulator (BLE) and the installer (serial).

Both speak to a lock through a FrameLink (tools/transport.py) and check what
the lock answers: results are authenticated under the token's PoP key, admin
answers under the lock's admin key. An unauthenticated answer is reported as
such, never trusted.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from protocol import crypto, keys, reasons
from protocol import messages as msg
from tools.issuer import Grant

DEFAULT_TIMEOUT = 5.0
BUTTON_TIMEOUT = 40.0


class ClientError(Exception):
    """A one-line, secret-free explanation for the person at the door."""


class ForeignLock(ClientError):
    pass


class Refused(ClientError):
    def __init__(self, reason: int, text: str) -> None:
        super().__init__(text)
        self.reason = reason


@dataclass
class Hello:
    lock_id: str
    nonce: bytes
    time: int
    revocation_version: int
    battery: int
    clock_trusted: bool
    suite: str | None
    extra: dict[int, Any] = field(default_factory=dict)


@dataclass
class Outcome:
    """What the lock answered to an access request."""

    reason: int
    authenticated: bool
    seq: int | None = None
    time: int | None = None
    status: dict[int, Any] = field(default_factory=dict)
    records: list[bytes] = field(default_factory=list)

    @property
    def opened(self) -> bool:
        return self.reason == reasons.ALLOW and self.authenticated

    @property
    def reason_name(self) -> str:
        return reasons.name(self.reason)


def _recv(link: Any, timeout: float = DEFAULT_TIMEOUT, expect: tuple[int, ...] | None = None
          ) -> tuple[int, dict[int, Any]]:
    payload = link.recv(timeout)
    try:
        return msg.decode(payload, expect)
    except msg.MessageError as exc:
        raise ClientError(f"the lock sent something unexpected ({exc})") from None


def read_hello(link: Any, timeout: float = DEFAULT_TIMEOUT) -> Hello:
    mtype, f = _recv(link, timeout, (msg.HELLO,))
    return Hello(f[1], f[2], f[3], f[4], f[5], f[6], f.get(8), f.get(9) or {})


def request_hello(link: Any, timeout: float = DEFAULT_TIMEOUT) -> Hello:
    link.send(msg.encode(msg.GET_HELLO, {}))
    return read_hello(link, timeout)


# --- the key emulator --------------------------------------------------------

def access(link: Any, grant: Grant, action: str = "open", log_from: int | None = None,
           hello: Hello | None = None, updates: list[bytes] | None = None,
           timeout: float = DEFAULT_TIMEOUT) -> Outcome:
    """One access request over an open BLE link, as a staff key performs it."""
    hello = hello or read_hello(link, timeout)
    if hello.lock_id != grant.lock_id:
        raise ForeignLock(f"this is lock {hello.lock_id or '(uncommissioned)'}, "
                          f"not {grant.lock_id}")
    proof = msg.open_proof(grant.pop_key, hello.nonce, grant.lock_id, action, grant.token)
    fields: dict[int, Any] = {1: hello.nonce, 2: grant.token, 3: action, 4: proof}
    carried = grant.updates if updates is None else updates
    if carried:
        fields[5] = list(carried)
    if log_from is not None:
        fields[6] = {1: log_from}
    link.send(msg.encode(msg.OPEN, fields))
    mtype, f = _recv(link, timeout + 5, (msg.RESULT, msg.ERROR))
    if mtype == msg.ERROR:
        return Outcome(f[1], authenticated=False)
    if f[1] != hello.nonce:
        raise ClientError("the lock answered another request")
    mac = f.get(6)
    ok = mac is not None and crypto.eq(
        mac, msg.result_mac(grant.pop_key, f[1], grant.lock_id, f[2], f[3], f[4], f[5],
                            f.get(7)))
    return Outcome(f[2], ok, f[4], f[3], f[5], list(f.get(7) or []))


# --- the installer -------------------------------------------------------------

class Installer:
    """Serial-port operations of the installer's tool."""

    def __init__(self, link: Any, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.link = link
        self.timeout = timeout

    def hello(self) -> Hello:
        return request_hello(self.link, self.timeout)

    def _await_answer(self, on_press: Callable[[int], None] | None) -> tuple[int, dict[int, Any]]:
        mtype, f = _recv(self.link, self.timeout, (msg.ADMIN_RESULT, msg.ERROR, msg.PRESS_BUTTON))
        if mtype == msg.PRESS_BUTTON:
            if on_press is not None:
                on_press(f[1])
            mtype, f = _recv(self.link, f[1] + 10.0, (msg.ADMIN_RESULT, msg.ERROR))
        return mtype, f

    def commission(self, *, lock_id: str, secret: bytes, suite: str, issuer: str, time: int,
                   door: str = "apartment", issuer_pk: bytes | None = None,
                   on_press: Callable[[int], None] | None = None) -> dict[int, Any]:
        hello = self.hello()
        fields: dict[int, Any] = {1: hello.nonce, 2: lock_id, 3: secret, 4: suite, 5: int(time),
                                  6: issuer, 7: door}
        if issuer_pk is not None:
            fields[8] = issuer_pk
        self.link.send(msg.encode(msg.COMMISSION, fields))
        mtype, f = self._await_answer(on_press)
        if mtype == msg.ERROR:
            raise Refused(f[1], f"the lock refused commissioning: {reasons.name(f[1])}")
        expected = msg.admin_result_mac(keys.admin_key(secret), f[1], lock_id, f[2], f[3])
        if f[1] != hello.nonce or not crypto.eq(expected, f[4]):
            raise ClientError("the lock's answer is not authenticated: commissioning unconfirmed")
        return f[3]

    def admin(self, admin_key: bytes, op: str, args: dict[int, Any] | None = None,
              expect_lock: str | None = None,
              on_press: Callable[[int], None] | None = None) -> dict[int, Any]:
        hello = self.hello()
        if not hello.lock_id:
            raise Refused(reasons.NOT_COMMISSIONED, "the lock is not commissioned")
        if expect_lock is not None and hello.lock_id != expect_lock:
            raise ForeignLock(f"this is lock {hello.lock_id}, not {expect_lock}")
        args = args or {}
        mac = msg.admin_mac(admin_key, hello.nonce, hello.lock_id, op, args)
        self.link.send(msg.encode(msg.ADMIN, {1: hello.nonce, 2: op, 3: args, 4: mac}))
        mtype, f = self._await_answer(on_press)
        if mtype == msg.ERROR:
            if f[1] == reasons.BAD_PROOF:
                raise ForeignLock("the lock does not belong to this site (admin proof refused)")
            raise Refused(f[1], f"the lock refused {op}: {reasons.name(f[1])}")
        expected = msg.admin_result_mac(admin_key, f[1], hello.lock_id, f[2], f[3])
        if f[1] != hello.nonce or not crypto.eq(expected, f[4]):
            raise ClientError("the lock's answer is not authenticated")
        if f[2] != reasons.ALLOW:
            raise Refused(f[2], f"the lock refused {op}: {reasons.name(f[2])}")
        return f[3]

    def pull_log(self, admin_key: bytes, from_seq: int = 1,
                 progress: Callable[[int, int], None] | None = None) -> list[bytes]:
        """Every record from `from_seq` on, page by page."""
        out: list[bytes] = []
        start = from_seq
        while True:
            data = self.admin(admin_key, "log", {1: start})
            page, last = data[1], data[2]
            out.extend(page)
            if progress is not None:
                progress(len(out), last)
            if not page:
                return out
            start = int.from_bytes(page[-1][0:4], "big") + 1
            if start > last:
                return out


def decode_records(records: list[bytes]) -> list[Any]:
    from protocol import events
    return [events.decode(r) for r in records]


__all__ = ["access", "Installer", "Outcome", "Hello", "ClientError", "ForeignLock", "Refused",
           "read_hello", "request_hello", "decode_records"]
