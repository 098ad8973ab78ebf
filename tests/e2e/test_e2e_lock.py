"""End to end: a simulated lock commissioned over its serial pty, opened over
its BLE socket, refusing every bad attempt with its reason, and still working.

The lock runs the real firmware (firmware/app.py) in `python -m simulator`;
the tests talk to it only through its endpoints, as the tools do.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pytest

from protocol import events, reasons
from protocol import messages as msg
from simlock import SimulatedLock, Site, open_with
from tools import issuer
from tools.client import Installer, access, read_hello

LOCK = "lock-0001"


@pytest.fixture(scope="module")
def site() -> Site:
    return Site()


@pytest.fixture(scope="module")
def sim_args() -> list[str]:
    """Extra `python -m simulator` arguments: none here (CPython); the same
    tests run under MicroPython from tests/e2e/test_mpy_e2e.py."""
    return []


@pytest.fixture(scope="module")
def lock(tmp_path_factory: pytest.TempPathFactory, site: Site, sim_args: list[str]):
    sim = SimulatedLock(tmp_path_factory.mktemp("lock"), extra_args=sim_args).start()
    try:
        site.commission(sim, LOCK)
        yield sim
    finally:
        sim.stop()


def pull(lock: SimulatedLock, site: Site) -> list[events.Event]:
    with lock.serial_link() as link:
        records = Installer(link).pull_log(site.admin_key(LOCK))
    return [events.decode(r) for r in records]


def last_refusal(lock: SimulatedLock, site: Site) -> int:
    refusals = [e for e in pull(lock, site) if e.code == events.REFUSED]
    return refusals[-1].detail


@contextmanager
def every_peer_record_written(lock: SimulatedLock) -> Iterator[None]:
    """A peer budget window of 1 ms: each record a peer causes is written, so
    a test can read its reason (the budget itself is tested apart)."""
    lock.control({"cmd": "timings", "set": {"peer_budget_ms": 1}})
    try:
        time.sleep(0.01)
        yield
    finally:
        lock.control({"cmd": "timings", "set": {"peer_budget_ms": 3_600_000}})


def assert_still_opens(lock: SimulatedLock, site: Site) -> None:
    out = open_with(lock, site.grant(LOCK, "staff-ok"))
    assert out.opened, out.reason_name


def test_uncommissioned_lock_opens_for_nobody(tmp_path: Path, site: Site,
                                              sim_args: list[str]) -> None:
    with SimulatedLock(tmp_path / "fresh", extra_args=sim_args) as sim:
        with sim.ble_link() as link:
            hello = read_hello(link)
            assert hello.lock_id == ""
            # A key checks the lock id before it asks; force the request anyway
            # by addressing it to the (empty) id this lock announces.
            grant = site.grant(LOCK, "staff-1")
            grant.lock_id = ""
            out = access(link, grant, hello=hello)
        assert not out.opened
        assert out.reason == reasons.NOT_COMMISSIONED


def test_valid_token_opens_and_result_is_authenticated(lock: SimulatedLock, site: Site) -> None:
    out = open_with(lock, site.grant(LOCK, "staff-anna"))
    assert out.opened and out.authenticated
    log = pull(lock, site)
    opened = [e for e in log if e.code == events.OPENED]
    assert opened and opened[-1].key_id == events.key_id_of("staff-anna")
    assert opened[-1].seq == out.seq


@pytest.mark.parametrize("case,expected", [
    ("expired", reasons.EXPIRED),
    ("not-yet-valid", reasons.NOT_YET_VALID),
    ("wrong-lock", reasons.WRONG_LOCK),
    ("scope", reasons.SCOPE),
])
def test_refusals_are_logged_with_reason(lock: SimulatedLock, site: Site, case: str,
                                         expected: int) -> None:
    now = int(time.time())
    if case == "expired":
        grant = site.grant(LOCK, "staff-x", start=now - 7200, end=now - 3600)
    elif case == "not-yet-valid":
        grant = site.grant(LOCK, "staff-x", start=now + 3600, end=now + 7200)
    elif case == "wrong-lock":
        other = site.grant("lock-0002", "staff-x")
        grant = issuer.Grant(LOCK, other.token, other.pop_key, other.cti, other.start,
                             other.end, other.scope)
    else:
        grant = site.grant(LOCK, "staff-x", scope="log")
    with every_peer_record_written(lock):
        out = open_with(lock, grant)
    assert not out.opened
    assert out.reason == expected, out.reason_name
    assert last_refusal(lock, site) == expected
    assert_still_opens(lock, site)


def test_tampered_token_is_refused(lock: SimulatedLock, site: Site) -> None:
    grant = site.grant(LOCK, "staff-t")
    token = bytearray(grant.token)
    token[-5] ^= 0x01  # inside the MAC tag
    grant.token = bytes(token)
    with every_peer_record_written(lock):
        out = open_with(lock, grant)
    assert not out.opened and out.reason == reasons.BAD_SIGNATURE
    assert last_refusal(lock, site) == reasons.BAD_SIGNATURE
    assert_still_opens(lock, site)


def test_token_from_another_site_is_refused(lock: SimulatedLock) -> None:
    intruder = Site("other-site")
    out = open_with(lock, intruder.grant(LOCK, "staff-t"))
    assert not out.opened and out.reason == reasons.BAD_SIGNATURE


def test_wrong_proof_of_possession_is_refused(lock: SimulatedLock, site: Site) -> None:
    grant = site.grant(LOCK, "staff-p")
    grant.pop_key = bytes(32)  # the token leaked, its key did not
    out = open_with(lock, grant)
    assert not out.opened and out.reason == reasons.BAD_PROOF


def test_replayed_request_is_refused(lock: SimulatedLock, site: Site) -> None:
    grant = site.grant(LOCK, "staff-r")
    with lock.ble_link() as link:
        hello = read_hello(link)
        proof = msg.open_proof(grant.pop_key, hello.nonce, LOCK, "open", grant.token)
        request = msg.encode(msg.OPEN, {1: hello.nonce, 2: grant.token, 3: "open", 4: proof})
        link.send(request)
        mtype, first = msg.decode(link.recv(10))
        assert mtype == msg.RESULT and first[2] == reasons.ALLOW
        read_hello(link)  # the lock offers a fresh challenge
        link.send(request)  # the captured request again, on the same connection
        mtype, second = msg.decode(link.recv(10))
        assert mtype == msg.ERROR and second[1] == reasons.REPLAY
    with lock.ble_link() as link:  # and on a new connection
        read_hello(link)
        link.send(request)
        mtype, third = msg.decode(link.recv(10))
        assert mtype == msg.ERROR and third[1] == reasons.REPLAY
    assert_still_opens(lock, site)


def test_revocation_carried_by_a_colleague(lock: SimulatedLock, site: Site) -> None:
    now = int(time.time())
    lost = site.grant(LOCK, "staff-lost")
    assert open_with(lock, lost).opened
    update = issuer.revocation_update(site.secret, LOCK, version=1, issued=now, cutoff=0,
                                      staff={"staff-lost": now + 1}, tokens={})
    colleague = site.grant(LOCK, "staff-colleague")
    colleague.updates = [update]
    out = open_with(lock, colleague)
    assert out.opened and out.status[msg.ST_REVOCATION_VERSION] == 1
    again = open_with(lock, lost)
    assert not again.opened and again.reason == reasons.REVOKED
    # An older list never rolls the lock back.
    old = issuer.revocation_update(site.secret, LOCK, version=1, issued=now, cutoff=0,
                                   staff={}, tokens={})
    colleague2 = site.grant(LOCK, "staff-colleague")
    colleague2.updates = [old]
    assert open_with(lock, colleague2).opened
    assert not open_with(lock, lost).opened


def test_garbage_on_ble_is_survived(lock: SimulatedLock, site: Site) -> None:
    with lock.ble_link() as link:
        read_hello(link)
        link.raw_write(bytes(range(1, 256)) * 8 + b"\x00" + b"\x05\x01\x02\x00")
    assert_still_opens(lock, site)


def test_log_chain_verifies(lock: SimulatedLock, site: Site) -> None:
    with lock.serial_link() as link:
        records = Installer(link).pull_log(site.admin_key(LOCK))
    decoded = [events.decode(r) for r in records]
    start = max(i for i, e in enumerate(decoded) if e.code == events.COMMISSIONED)
    report = events.verify_chain(records[start:], issuer.log_key_for(site.secret, LOCK),
                                 anchor_mac=events.GENESIS_MAC)
    assert report.ok, report
