"""Host-side protocol clients: the key emulator (BLE) and the installer (serial).

Both speak to a lock through a FrameLink (tools/transport.py) and check what
the lock answers: results are authenticated under the token's PoP key, admin
answers under the lock's admin key. An unauthenticated answer is reported as
such, never trusted.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from protocol import adminside, keys, keyside, reasons
from protocol import messages as msg
from tools.issuer import Grant
from tools.transport import TransportError

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
    answer: bytes = b""  # the RESULT as it arrived (the issuer can check it again)

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
    payload = link.recv(timeout)
    try:
        return Hello(*keyside.hello_fields(payload))
    except msg.MessageError as exc:
        raise ClientError(f"the lock sent something unexpected ({exc})") from None


def request_hello(link: Any, timeout: float = DEFAULT_TIMEOUT) -> Hello:
    link.send(msg.encode(msg.GET_HELLO, {}))
    return read_hello(link, timeout)


# --- the key emulator --------------------------------------------------------

def access(link: Any, grant: Grant, action: str = "open", log_from: int | None = None,
           hello: Hello | None = None, updates: list[bytes] | None = None,
           timeout: float = DEFAULT_TIMEOUT, log_bound: int | None = None) -> Outcome:
    """One access request over an open BLE link, as a staff key performs it."""
    hello = hello or read_hello(link, timeout)
    if hello.lock_id != grant.lock_id:
        raise ForeignLock(f"this is lock {hello.lock_id or '(uncommissioned)'}, "
                          f"not {grant.lock_id}")
    carried = grant.updates if updates is None else updates
    link.send(keyside.open_request(grant.token, grant.pop_key, grant.lock_id, hello.nonce,
                                   action, carried, log_from, log_bound))
    payload = link.recv(timeout + 5)
    try:
        outcome, ok, seq, when, status, records = keyside.read_answer(
            payload, hello.nonce, grant.pop_key, grant.lock_id)
    except msg.MessageError as exc:
        raise ClientError(f"the lock sent something unexpected ({exc})") from None
    except keyside.AnswerError as exc:
        raise ClientError(str(exc)) from None
    return Outcome(outcome, ok, seq, when, status, records, bytes(payload) if ok else b"")


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
            seconds = f[msg.PRESS_BUTTON_SECONDS]
            if on_press is not None:
                on_press(seconds)
            mtype, f = _recv(self.link, seconds + 10.0, (msg.ADMIN_RESULT, msg.ERROR))
        return mtype, f

    def commission(self, *, lock_id: str, secret: bytes, suite: str, issuer: str, time: int,
                   door: str = "apartment", issuer_pk: bytes | None = None,
                   on_press: Callable[[int], None] | None = None) -> dict[int, Any]:
        hello = self.hello()
        self.link.send(adminside.commission_request(hello.nonce, lock_id, secret, suite, time,
                                                    issuer, door, issuer_pk))
        mtype, f = self._await_answer(on_press)
        if mtype == msg.ERROR:
            reason = f[msg.ERROR_REASON]
            raise Refused(reason, f"the lock refused commissioning: {reasons.name(reason)}")
        if not adminside.result_authentic(f, keys.admin_key(secret), hello.nonce, lock_id):
            raise ClientError("the lock's answer is not authenticated: commissioning unconfirmed")
        return dict(f[msg.ADMIN_RESULT_DATA])

    def admin(self, admin_key: bytes, op: str, args: dict[int, Any] | None = None,
              expect_lock: str | None = None,
              on_press: Callable[[int], None] | None = None) -> dict[int, Any]:
        hello = self.hello()
        if not hello.lock_id:
            raise Refused(reasons.NOT_COMMISSIONED, "the lock is not commissioned")
        if expect_lock is not None and hello.lock_id != expect_lock:
            raise ForeignLock(f"this is lock {hello.lock_id}, not {expect_lock}")
        self.link.send(adminside.admin_request(admin_key, hello.nonce, hello.lock_id, op, args))
        mtype, f = self._await_answer(on_press)
        if mtype == msg.ERROR:
            reason = f[msg.ERROR_REASON]
            if reason == reasons.BAD_PROOF:
                raise ForeignLock("the lock does not belong to this site (admin proof refused)")
            raise Refused(reason, f"the lock refused {op}: {reasons.name(reason)}")
        if not adminside.result_authentic(f, admin_key, hello.nonce, hello.lock_id):
            raise ClientError("the lock's answer is not authenticated")
        outcome = f[msg.ADMIN_RESULT_OUTCOME]
        if outcome != reasons.ALLOW:
            raise Refused(outcome, f"the lock refused {op}: {reasons.name(outcome)}")
        return dict(f[msg.ADMIN_RESULT_DATA])

    def pull_log(self, admin_key: bytes, from_seq: int = 1,
                 progress: Callable[[int, int], None] | None = None) -> list[bytes]:
        """Every record from `from_seq` up to the read's bound, page by page.

        The first page makes the lock write its one LOG_READ record, whose
        seq is the bound; the next pages name (next seq, bound) and write
        nothing, so the read ends however busy the lock is."""
        reader = LogReader(from_seq)
        while not reader.done:
            data = self.admin(admin_key, "log", reader.args())
            reader.take(data[msg.LOG_RECORDS], data[msg.LOG_BOUND])
            if progress is not None:
                progress(*reader.progress())
        return reader.records


class LogReader(adminside.LogPages):
    """protocol.adminside.LogPages, whose refusals are ClientErrors."""

    def take(self, page: list[bytes], bound: int) -> None:
        try:
            super().take(page, bound)
        except adminside.PageError as e:
            raise ClientError(str(e)) from None


def pull_log_ble(connect: Callable[[], Any], grant: Grant, from_seq: int = 1,
                 progress: Callable[[int, int], None] | None = None,
                 expect_lock: str | None = None, max_reconnects: int = 50,
                 on_status: Callable[[dict[int, Any]], None] | None = None) -> list[bytes]:
    """A whole log read over BLE with a log-scope key, across as many
    connections as it takes (the lock ends each after 30 s). `connect()` opens
    a new link. Each page is an authenticated RESULT; an answer that is not is
    a ClientError, never a record."""
    reader = LogReader(from_seq)
    drops = 0
    while not reader.done:
        try:
            with connect() as link:
                hello = read_hello(link)
                if expect_lock is not None and hello.lock_id != expect_lock:
                    raise ForeignLock(f"this is lock {hello.lock_id}, not {expect_lock}")
                while not reader.done:
                    o = access(link, grant, action="log", log_from=reader.next_seq,
                               hello=hello, log_bound=reader.bound)
                    if not o.authenticated or o.reason != reasons.ALLOW:
                        raise Refused(o.reason, f"the lock refused the log read: {o.reason_name}")
                    if on_status is not None:
                        on_status(o.status)
                    reader.take(o.records, int(o.seq or 0))
                    if progress is not None:
                        progress(*reader.progress())
                    drops = 0
                    if not reader.done:
                        hello = read_hello(link)
        except TransportError:
            # The lock ends connections after its session maximum; go on from
            # where we are on a new one. Give up only when no page comes.
            drops += 1
            if drops > 3 or max_reconnects <= 0:
                raise
            max_reconnects -= 1
    return reader.records


def decode_records(records: list[bytes]) -> list[Any]:
    from protocol import events
    return [events.decode(r) for r in records]


__all__ = ["access", "Installer", "Outcome", "Hello", "ClientError", "ForeignLock", "Refused",
           "read_hello", "request_hello", "decode_records", "LogReader", "pull_log_ble"]
