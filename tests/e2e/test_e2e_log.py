"""A full log ring read over BLE and over serial: the read ends, loses no
record, and writes one LOG_READ record however many pages and connections it
takes (issue "Nothing lost, nothing hidden", item 1). Before the fix a BLE read
wrote a record per page and chased its own tail until the ring had overwritten
the visits.

The ring is filled offline (the firmware's own EventLog and record encoder on
the simulator's flash image, chained under the lock's log key), because 8,000
openings through the motor would take hours; the lock then boots on that flash
and serves it. The same tests run under MicroPython (tests/e2e/test_mpy_e2e_log.py).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any, Iterator

import pytest

from boards import sim as sim_board
from firmware.eventlog import EventLog
from protocol import events, reasons
from simlock import Installer, SimulatedLock, Site
from simulator.flash import BlockDevice, FlashDevice
from tools import issuer
from tools.client import access, pull_log_ble, read_hello
from tools.transport import connect_lock

LOCK = "lock-ring"
SESSION_MAX_MS = 100  # short connections, so a BLE read must reconnect to finish


@pytest.fixture(scope="module")
def sim_args() -> list[str]:
    return []


def ring(state: Path) -> tuple[FlashDevice, EventLog]:
    dev = FlashDevice.open(str(state / "flash.bin"), sim_board.FLASH_SIZE)
    log = EventLog(BlockDevice.region(dev, sim_board.LOG_REGION, "log"))
    log.recover()
    return dev, log


def fill(state: Path, site: Site, n: int) -> None:
    """Append n visit records to the lock's log, continuing its MAC chain."""
    dev, log = ring(state)
    try:
        last = events.decode(log.last_record())
        key = issuer.log_key_for(site.secret, LOCK)
        prev, seq = last.mac, log.next_seq
        who = events.key_id_of("staff-fill")
        for i in range(n):
            rec = events.encode(seq, last.time + 1 + i // 10, events.OPENED, 0, 0, who, prev, key)
            log.append(rec)
            prev, seq = rec[20:28], seq + 1
    finally:
        dev.close()


@pytest.fixture(scope="module")
def full_lock(tmp_path_factory: pytest.TempPathFactory, sim_args: list[str]
              ) -> Iterator[tuple[SimulatedLock, Site, int]]:
    site = Site()
    state = tmp_path_factory.mktemp("ring")
    old = os.environ.get("LOCK_SIM_TIMINGS")
    os.environ["LOCK_SIM_TIMINGS"] = json.dumps({"session_max_ms": SESSION_MAX_MS})
    try:
        sim = SimulatedLock(state, extra_args=sim_args).start()
        site.commission(sim, LOCK)
        sim.stop()
        dev, log = ring(state)
        capacity = log.capacity
        dev.close()
        fill(state, site, capacity + 300)  # wrapped: the oldest records are gone
        sim = SimulatedLock(state, extra_args=sim_args).start()
        with sim.serial_link() as link:  # stopped and started: the clock needs setting
            Installer(link).admin(site.admin_key(LOCK), "sync", {1: int(time.time())})
        yield sim, site, capacity
        sim.stop()
    finally:
        if old is None:
            os.environ.pop("LOCK_SIM_TIMINGS", None)
        else:
            os.environ["LOCK_SIM_TIMINGS"] = old


def log_grant(site: Site) -> issuer.Grant:
    return site.grant(LOCK, "staff-reader", scope="open log")


def seqs(records: list[bytes]) -> list[int]:
    return [events.decode(r).seq for r in records]


def check_whole(records: list[bytes], site: Site, capacity: int) -> None:
    got = seqs(records)
    assert got == list(range(got[0], got[-1] + 1)), "records missing or repeated"
    assert len(got) >= capacity
    chain = events.verify_chain(records, issuer.log_key_for(site.secret, LOCK))
    assert chain.ok, chain  # unanchored start: the ring had wrapped


def pull_ble(lock: SimulatedLock, site: Site, from_seq: int = 1,
             statuses: list[dict[int, Any]] | None = None,
             connections: list[int] | None = None) -> list[bytes]:
    def connect() -> Any:
        if connections is not None:
            connections.append(1)
        return connect_lock("socket://" + lock.ble, timeout=10.0)
    return pull_log_ble(connect, log_grant(site), from_seq, expect_lock=LOCK,
                        max_reconnects=10_000,
                        on_status=None if statuses is None else statuses.append)


def test_a_full_ring_pulls_over_ble_across_reconnects(full_lock) -> None:
    lock, site, capacity = full_lock
    t0 = time.monotonic()
    statuses: list[dict[int, Any]] = []
    connections: list[int] = []
    records = pull_ble(lock, site, statuses=statuses, connections=connections)
    took = time.monotonic() - t0
    check_whole(records, site, capacity)
    last = events.decode(records[-1])
    # The read's bound is its own LOG_READ record: the last it returns.
    assert last.code == events.LOG_READ and last.detail == events.LOG_READ_KEY
    assert [e.code for e in map(events.decode, records)].count(events.LOG_READ) == 1
    print(f"\nfull ring over BLE: {len(records)} records, {len(statuses)} pages in "
          f"{took:.1f} s over {len(connections)} connections of at most {SESSION_MAX_MS} ms")
    assert len(connections) > 1  # the lock ended connections mid-read; the read went on


def test_a_repeated_read_writes_nothing_more(full_lock) -> None:
    lock, site, _ = full_lock
    first = pull_ble(lock, site)
    again = pull_ble(lock, site, from_seq=events.decode(first[-1]).seq)
    # Nothing new since the last read by this key: its old bound, no new record.
    assert seqs(again) == [events.decode(first[-1]).seq]


def test_a_full_ring_pulls_over_serial(full_lock) -> None:
    lock, site, capacity = full_lock
    progress: list[tuple[int, int]] = []
    t0 = time.monotonic()
    with lock.serial_link() as link:
        records = Installer(link).pull_log(site.admin_key(LOCK), 1,
                                           lambda d, t: progress.append((d, t)))
    took = time.monotonic() - t0
    check_whole(records, site, capacity)
    last = events.decode(records[-1])
    assert last.code == events.LOG_READ and last.detail == events.LOG_READ_SERIAL
    assert progress[-1] == (len(records), len(records))  # the bar ends full
    print(f"\nfull ring over serial: {len(records)} records, {len(progress)} pages in "
          f"{took:.1f} s")


def test_ble_and_serial_read_the_same_visits(full_lock) -> None:
    lock, site, _ = full_lock
    by_ble = [r for r in pull_ble(lock, site) if events.decode(r).code != events.LOG_READ]
    with lock.serial_link() as link:
        by_serial = [r for r in Installer(link).pull_log(site.admin_key(LOCK))
                     if events.decode(r).code != events.LOG_READ]
    common = set(seqs(by_ble)) & set(seqs(by_serial))
    assert len(common) >= len(by_ble) - 2  # the ring may move by the reads' own records
    ble = {events.decode(r).seq: r for r in by_ble}
    ser = {events.decode(r).seq: r for r in by_serial}
    assert all(ble[s] == ser[s] for s in common)


def test_a_bound_of_another_reader_starts_a_read_of_its_own(full_lock) -> None:
    """A continuation naming a bound that is not this reader's LOG_READ record
    (a forged or stale bound) is a new read, bounded by a record of its own."""
    lock, site, _ = full_lock
    with lock.serial_link() as link:
        inst = Installer(link)
        data = inst.admin(site.admin_key(LOCK), "log", {1: 1, 2: 5})
        bound = data[2]
    rec = [r for r in data[1]]
    assert bound > 5 and all(events.decode(r).seq <= bound for r in rec)
    with connect_lock("socket://" + lock.ble, timeout=10.0) as link:
        hello = read_hello(link)
        assert hello.lock_id == LOCK
        out = access(link, log_grant(site), action="log", log_from=1, hello=hello,
                     log_bound=bound)  # the installer's bound, presented by a key
    assert out.reason == reasons.ALLOW and out.authenticated
    assert out.seq != bound and all(events.decode(r).seq <= out.seq for r in out.records)
