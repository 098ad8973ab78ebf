"""End to end: the lock's one time bound (protocol/clock.py: 2020-01-01 ..
2054-01-09T13:37:03Z, the 32-bit small-int range of lock seconds) at every
place a time enters, and the installer's way back for a clock outside it.

Issue #10 item 2: a time update with the real update key and T = 2**31 + 1000
lock seconds set the clock past 2088; every token was then EXPIRED and
`lockctl lock sync` could not set it back. Now every out-of-range time is
refused with reason 23 (time-out-of-range) and logged, the lock keeps
opening, and `lockctl lock sync --force-time` with the button sets a clock
pushed out of range (an RTC fault, an old firmware) back from the host.

The updates and tokens that carry bad times are built here with cbor2 and
hmac, not with protocol/, so the lock's parser is checked against an
independent encoder. The same tests run under MicroPython from
tests/e2e/test_mpy_e2e_time.py.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import time
from pathlib import Path
from typing import Any

import cbor2
import pytest
from test_e2e_lock import every_peer_record_written
from test_lockctl import Site as CtlSite

from protocol import events, keys, reasons
from protocol import messages as msg
from simlock import SimulatedLock, Site, open_with
from tools import issuer
from tools.client import Installer, Refused, request_hello

LOCK = "lock-0001"
EPOCH = 1577836800  # 2020-01-01T00:00:00Z, written out here
TOP = EPOCH + 2 ** 30 - 1  # 2054-01-09T13:37:03Z: the last second a lock holds
PAST_2088 = EPOCH + 2 ** 31 + 1000  # the time of the issue
WINDOW_MS = 2000  # the button window while a test does not press it


@pytest.fixture(scope="module")
def site() -> Site:
    return Site()


@pytest.fixture(scope="module")
def sim_args() -> list[str]:
    """Extra `python -m simulator` arguments: none here (CPython); the same
    tests run under MicroPython from tests/e2e/test_mpy_e2e_time.py."""
    return []


def press(sim: SimulatedLock) -> Any:
    """An on_press callback: the installer presses the button when asked."""
    return lambda _seconds: sim.control({"cmd": "button", "action": "press", "seconds": 1.5})


def commission(sim: SimulatedLock, site: Site, when: int, on_press: Any = None) -> dict:
    with sim.serial_link() as link:
        return Installer(link).commission(
            lock_id=LOCK, secret=keys.lock_secret(site.secret, LOCK), suite="hmac",
            issuer=site.name, time=when, on_press=on_press)


@pytest.fixture(scope="module")
def lock(tmp_path_factory: pytest.TempPathFactory, site: Site, sim_args: list[str]):
    """A commissioned lock whose button nobody presses unless a test does."""
    sim = SimulatedLock(tmp_path_factory.mktemp("lock"), extra_args=sim_args,
                        auto_button=False).start()
    try:
        sim.control({"cmd": "timings", "set": {"button_window_ms": WINDOW_MS}})
        commission(sim, site, int(time.time()), press(sim))
        yield sim
    finally:
        sim.stop()


# --- independent encoders (cbor2 + hmac): what an issuer could send ------------------

def mac0(payload: Any, key: bytes) -> bytes:
    """COSE_Mac0, HMAC 256/256, as RFC 9052 writes it (protected {1: 5})."""
    protected = cbor2.dumps({1: 5})
    body = cbor2.dumps(payload)
    tag = hmac.new(key, cbor2.dumps(["MAC0", protected, b"", body]), hashlib.sha256).digest()
    return cbor2.dumps(cbor2.CBORTag(17, [protected, {}, body, tag]))


def update_key(site: Site) -> bytes:
    return keys.update_key(keys.lock_secret(site.secret, LOCK))


def time_update(site: Site, t: int) -> bytes:
    return mac0({1: LOCK, 6: t}, update_key(site))


def revocation_update(site: Site, version: int, entries: list, issued: int | None = None
                      ) -> bytes:
    return mac0({0: 1, 1: LOCK, 2: version, 3: int(time.time()) if issued is None else issued,
                 4: 0, 5: entries}, update_key(site))


def token_grant(site: Site, **times: int) -> issuer.Grant:
    """A grant whose token carries the given exp/nbf/iat (POSIX), MAC'd right."""
    now = int(time.time())
    claims = {"exp": now + 3600, "nbf": now - 600, "iat": now - 600}
    claims.update(times)
    cti = os.urandom(16)
    secret = keys.lock_secret(site.secret, LOCK)
    payload = {1: site.name, 2: "staff-time", 3: LOCK, 4: claims["exp"], 5: claims["nbf"],
               6: claims["iat"], 7: cti, 8: {3: cti}, 9: "open"}
    token = mac0(payload, keys.token_mac_key(secret))
    return issuer.Grant(LOCK, token, keys.pop_key(secret, cti), cti, claims["nbf"],
                        claims["exp"], "open")


# --- helpers ---------------------------------------------------------------------------

def pull(sim: SimulatedLock, site: Site) -> list[events.Event]:
    with sim.serial_link() as link:
        records = Installer(link).pull_log(site.admin_key(LOCK))
    return [events.decode(r) for r in records]


def admin(sim: SimulatedLock, site: Site, op: str, args: dict, on_press: Any = None) -> dict:
    with sim.serial_link() as link:
        return Installer(link, timeout=10).admin(site.admin_key(LOCK), op, args,
                                                 expect_lock=LOCK, on_press=on_press)


def lock_time(sim: SimulatedLock) -> tuple[int, bool]:
    with sim.serial_link() as link:
        hello = request_hello(link)
    return hello.time, hello.clock_trusted


def assert_clock_near_now(sim: SimulatedLock) -> None:
    t, trusted = lock_time(sim)
    assert abs(t - time.time()) < 60 and trusted, (t, trusted)


def assert_still_opens(sim: SimulatedLock, site: Site) -> None:
    out = open_with(sim, site.grant(LOCK, "staff-ok"))
    assert out.opened, out.reason_name


def newest(log: list[events.Event], code: int) -> events.Event:
    found = [e for e in log if e.code == code]
    assert found, events.NAMES.get(code)
    return found[-1]


# --- every place a time enters -----------------------------------------------------------

def test_the_time_update_of_the_issue_is_refused(lock: SimulatedLock, site: Site) -> None:
    """The exact update of issue #10: carried by a key with its valid token.
    The update is refused and logged; the key's own request goes on."""
    grant = site.grant(LOCK, "staff-carrier")
    with every_peer_record_written(lock):
        out = open_with(lock, grant, updates=[time_update(site, PAST_2088)])
    assert out.opened, out.reason_name  # the lock did not jump to 2088
    assert abs((out.time or 0) - time.time()) < 60
    rejected = newest(pull(lock, site), events.TIME_REJECTED)
    assert rejected.detail == reasons.TIME_OUT_OF_RANGE == 23
    assert_clock_near_now(lock)
    assert_still_opens(lock, site)


@pytest.mark.parametrize("t", [TOP + 1, EPOCH - 1, 1])
def test_time_updates_outside_the_bound_are_refused(lock: SimulatedLock, site: Site,
                                                    t: int) -> None:
    with every_peer_record_written(lock):
        out = open_with(lock, site.grant(LOCK, "staff-carrier"), updates=[time_update(site, t)])
    assert out.opened, out.reason_name
    assert newest(pull(lock, site), events.TIME_REJECTED).detail == reasons.TIME_OUT_OF_RANGE
    assert_clock_near_now(lock)


def test_the_last_second_of_the_bound_is_a_time_the_lock_takes(tmp_path: Path, site: Site,
                                                              sim_args: list[str]) -> None:
    """The bound is inclusive: a lock set to its last second holds it (and so
    refuses today's tokens as expired: that is why nothing gets it there but
    an authenticated update)."""
    with SimulatedLock(tmp_path / "top", extra_args=sim_args) as sim:
        commission(sim, site, int(time.time()))
        with every_peer_record_written(sim):
            out = open_with(sim, site.grant(LOCK, "staff-carrier"),
                            updates=[time_update(site, TOP)])
        assert not out.opened and out.reason == reasons.EXPIRED
        assert TOP <= lock_time(sim)[0] < TOP + 60


def test_sync_with_a_time_outside_the_bound_is_refused(lock: SimulatedLock, site: Site) -> None:
    for t in (PAST_2088, TOP + 1, EPOCH - 1):
        data = admin(lock, site, "sync", {1: t})
        assert data[1] == reasons.TIME_OUT_OF_RANGE, t
        assert newest(pull(lock, site), events.TIME_REJECTED).detail == \
            reasons.TIME_OUT_OF_RANGE
        assert_clock_near_now(lock)
    # Not an integer at all: malformed, as before.
    with pytest.raises(Refused) as exc:
        admin(lock, site, "sync", {1: "now"})
    assert exc.value.reason == reasons.MALFORMED
    assert_still_opens(lock, site)


@pytest.mark.parametrize("claim,value", [
    ("exp", PAST_2088), ("exp", TOP + 1), ("iat", EPOCH - 1), ("nbf", TOP + 1),
    ("iat", PAST_2088),
])
def test_tokens_with_times_outside_the_bound_are_refused(lock: SimulatedLock, site: Site,
                                                         claim: str, value: int) -> None:
    grant = token_grant(site, **{claim: value})
    with every_peer_record_written(lock):
        out = open_with(lock, grant)
    # Refused while parsing the token, before its PoP key is trusted: an ERROR.
    assert not out.opened and not out.authenticated
    assert out.reason == reasons.TIME_OUT_OF_RANGE, out.reason_name
    assert newest(pull(lock, site), events.REFUSED).detail == reasons.TIME_OUT_OF_RANGE
    assert_still_opens(lock, site)


def test_a_revocation_entry_outside_the_bound_is_refused(lock: SimulatedLock,
                                                         site: Site) -> None:
    version = lock_status_version(lock, site)
    for entries, issued in (([[1, "staff-x", PAST_2088]], None),
                            ([[2, os.urandom(16), TOP + 1]], None),
                            ([], PAST_2088)):
        data = admin(lock, site, "sync", {2: revocation_update(site, version + 1, entries,
                                                               issued)})
        assert data[2] == reasons.TIME_OUT_OF_RANGE, entries
        assert data[3][msg.ST_REVOCATION_VERSION] == version  # the list stayed as it was
        assert newest(pull(lock, site), events.REVOCATION_REJECTED).detail == \
            reasons.TIME_OUT_OF_RANGE
    # Carried by a key, the same: logged and skipped; the key still opens.
    bad = revocation_update(site, version + 1, [[1, "staff-x", PAST_2088]])
    with every_peer_record_written(lock):
        out = open_with(lock, site.grant(LOCK, "staff-carrier"), updates=[bad])
    assert out.opened, out.reason_name
    assert out.status[msg.ST_REVOCATION_VERSION] == version
    assert newest(pull(lock, site), events.REVOCATION_REJECTED).detail == \
        reasons.TIME_OUT_OF_RANGE


def lock_status_version(sim: SimulatedLock, site: Site) -> int:
    return int(admin(sim, site, "info", {})[1][msg.ST_REVOCATION_VERSION])


@pytest.mark.parametrize("when", [PAST_2088, TOP + 1, EPOCH - 1])
def test_commissioning_with_a_time_outside_the_bound_is_refused(
        tmp_path: Path, site: Site, sim_args: list[str], when: int) -> None:
    with SimulatedLock(tmp_path / "fresh", extra_args=sim_args, auto_button=False) as sim:
        sim.control({"cmd": "timings", "set": {"button_window_ms": WINDOW_MS}})
        asked: list[int] = []
        with pytest.raises(Refused) as exc:
            commission(sim, site, when, asked.append)
        # Refused before the button is asked for: nothing to press, nothing stored.
        assert exc.value.reason == reasons.TIME_OUT_OF_RANGE and asked == []
        with sim.serial_link() as link:
            assert request_hello(link).lock_id == ""
        commission(sim, site, int(time.time()), press(sim))
        assert_still_opens(sim, site)


# --- the way back: force-time with the button ------------------------------------------

def test_force_time_sets_back_a_clock_pushed_past_the_bound(lock: SimulatedLock,
                                                            site: Site) -> None:
    """An RTC fault (or an old firmware) put the trusted clock in 2088: every
    token is expired and sync cannot move it back that far. force-time with
    the button can; without it nothing changes."""
    lock.control({"cmd": "rtc", "set_unix": PAST_2088})
    ahead, trusted = lock_time(lock)
    assert ahead >= PAST_2088 and trusted
    out = open_with(lock, site.grant(LOCK, "staff-stuck"))
    assert not out.opened and out.reason == reasons.EXPIRED
    assert admin(lock, site, "sync", {1: int(time.time())})[1] == reasons.ROLLBACK

    # No button: refused (logged), the clock as it was.
    with every_peer_record_written(lock):
        with pytest.raises(Refused) as exc:
            admin(lock, site, "force-time", {1: int(time.time())}, on_press=lambda s: None)
    assert exc.value.reason == reasons.BUTTON_REQUIRED
    assert lock_time(lock)[0] >= PAST_2088
    # A time outside the bound is refused even with the button.
    with pytest.raises(Refused) as exc:
        admin(lock, site, "force-time", {1: TOP + 1}, on_press=press(lock))
    assert exc.value.reason == reasons.TIME_OUT_OF_RANGE
    with pytest.raises(Refused) as exc:
        admin(lock, site, "force-time", {}, on_press=press(lock))
    assert exc.value.reason == reasons.MALFORMED
    assert lock_time(lock)[0] >= PAST_2088

    data = admin(lock, site, "force-time", {1: int(time.time())}, on_press=press(lock))
    assert data[1] == reasons.ALLOW
    assert_clock_near_now(lock)
    log = pull(lock, site)
    forced = newest(log, events.TIME_SET)
    assert forced.detail == events.TIME_SET_FORCED == 0xFFFF
    assert newest(log, events.REFUSED).detail == reasons.BUTTON_REQUIRED
    assert_still_opens(lock, site)
    # ... and the clock is trusted again: an ordinary sync is back to normal.
    assert admin(lock, site, "sync", {1: int(time.time())})[1] == reasons.ALLOW


def test_force_time_counts_the_wait_for_the_button(lock: SimulatedLock, site: Site) -> None:
    """The host's time is sent before the installer presses; the lock adds
    the wait, so the clock is not left behind by it."""
    delayed = lambda _s: (time.sleep(1.2), press(lock)(_s))  # noqa: E731
    sent = int(time.time())
    admin(lock, site, "force-time", {1: sent}, on_press=delayed)
    t, trusted = lock_time(lock)
    assert trusted and sent + 1 <= t <= int(time.time()) + 2


# --- lockctl -----------------------------------------------------------------------------

def test_lockctl_sync_says_what_to_do_and_force_time_recovers(
        tmp_path: Path, sim_args: list[str]) -> None:
    site = CtlSite(tmp_path)
    site.ok("site", "init", "--name", "Testkommun hemtjänst")
    site.ok("staff", "add", "S1", "--name", "Anna Berg", "--provider", "Kommunen")
    site.ok("client", "add", "C1", "--name", "Astrid Lindqvist", "--providers", "Kommunen")
    tty = str(tmp_path / "lock.tty")
    with SimulatedLock(tmp_path / "lock", ["--serial-link", tty, *sim_args]) as sim:
        site.ok("commission", "--port", tty, "--lock-id", "NT-1", "--client", "C1")
        sim.control({"cmd": "rtc", "set_unix": PAST_2088})
        p = site.run("lock", "sync", "--port", tty)
        assert p.returncode == 1, p.stdout + p.stderr
        assert "clock NOT set" in p.stdout and "--force-time" in p.stdout
        assert "press the button" in p.stdout
        p = site.run("lock", "sync", "--force-time", "--port", tty)
        assert p.returncode == 0, p.stdout + p.stderr
        assert "Press the button" in p.stdout + p.stderr
        assert "clock set (forced, with the button)" in p.stdout
        with sim.serial_link() as link:
            hello = request_hello(link)
        assert abs(hello.time - time.time()) < 60 and hello.clock_trusted
        assert "lock sync" in "\n".join(site.dump())
