"""Power cuts at every flash operation of the store and of the event log.

One clean run of each scenario records a flash snapshot before each step and
the operations (programs, erases) that step makes. Then, for every operation of
every step and every cut mode, the step runs again from its snapshot with the
power failing at that operation; the board "reboots" (littlefs mounted again,
the log recovered from the same flash) and the result is checked against what
was acknowledged before the cut. The work is linear in the number of operations.
Run with -s to see how many cut points were tried and the wear figures.
"""

from __future__ import annotations

import binascii
import time

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from firmware.eventlog import EventLog
from firmware.store import Store
from simulator.flash import CUT_MODES, BlockDevice, FlashDevice, PowerCut
from simulator.lfs import LittleFsFs


def rec(seq: int, tag: int = 0) -> bytes:
    """A 32-byte record built from the layout alone: seq u32 BE, 24 bytes,
    crc32 of the first 28 bytes BE."""
    body = seq.to_bytes(4, "big") + bytes((seq * 31 + tag + i) & 0xFF for i in range(24))
    return body + (binascii.crc32(body) & 0xFFFFFFFF).to_bytes(4, "big")


def seq_of(r: bytes) -> int:
    return int.from_bytes(r[0:4], "big")


def valid(r: bytes) -> bool:
    return binascii.crc32(r[:28]) & 0xFFFFFFFF == int.from_bytes(r[28:], "big")


# -- (a) configuration saves on littlefs ---------------------------------------

FS_BLOCKS = 16
SECRET = bytes(range(100, 132))
STEPS: list[tuple[str, str, bytes | None]] = [
    ("save", "config", b"v1" * 20),
    ("save", "secret", SECRET),
    ("save", "revocation", bytes(range(256)) * 2),
    ("save", "time", b"\x00\x01\x02\x03"),
    ("save", "config", b"v2" * 200),  # no longer inline in metadata
    ("save", "revocation", bytes(i * 7 & 0xFF for i in range(5000))),  # > 1 block
    ("delete", "time", None),
    ("save", "config", b"v3"),
    ("save", "time", b"\x00\x01\x02\x09"),
    ("save", "revocation", b"short"),
    ("save", "secret", SECRET[::-1]),
    ("save", "config", b"v4" * 700),
    ("delete", "config", None),
    ("save", "config", b"v5"),
]
NAMES = sorted({s[1] for s in STEPS})


def boot_store(bd: BlockDevice) -> tuple[LittleFsFs, Store]:
    fs = LittleFsFs(bd)  # raises if littlefs does not mount: never formats
    return fs, Store("/cfg", fs)


def apply(store: Store, step: tuple[str, str, bytes | None]) -> None:
    op, name, value = step
    if op == "save":
        assert value is not None
        store.save(name, value)
    else:
        store.delete(name)


def check_store(
    fs: LittleFsFs,
    store: Store,
    old: dict[str, tuple[bytes, int]],
    new: dict[str, tuple[bytes, int]],
) -> None:
    """Each record is exactly its old or its new committed state."""
    assert not [n for n in fs.listdir("/cfg") if n.endswith(".new")]
    for name in NAMES:
        got = store.load(name)
        ver = store.version(name)
        allowed = {old.get(name, (None, 0)), new.get(name, (None, 0))}
        assert (got, ver) in allowed, (name, ver)


def test_store_power_cut_at_every_operation() -> None:
    t0 = time.monotonic()
    # strict: littlefs must never program over bytes that are not erased, even
    # after a torn write (it checks the erased state before appending a commit).
    flash = FlashDevice(FS_BLOCKS * 4096, strict=True)
    bd = BlockDevice(flash, 0, FS_BLOCKS, "fs")
    Store("/cfg", LittleFsFs.mkfs(bd))

    # Clean run: a snapshot before each step (each step after a fresh boot),
    # the operations each step makes, and the committed state after it.
    snaps: list[bytes] = []
    traces: list[list[str]] = []
    states: list[dict[str, tuple[bytes, int]]] = [{}]
    wear = flash.total.as_dict()
    for step in STEPS:
        snaps.append(flash.snapshot())
        fs, store = boot_store(bd)
        flash.trace = []
        apply(store, step)
        traces.append([kind for kind, _, _ in flash.trace])
        flash.trace = None
        state = dict(states[-1])
        _, name, value = step
        if value is None:
            state.pop(name, None)
        else:
            state[name] = (value, state.get(name, (b"", 0))[1] + 1)
        states.append(state)
        check_store(fs, store, state, state)
    saves = sum(1 for s in STEPS if s[0] == "save")
    wear = {k: flash.total.as_dict()[k] - wear[k] for k in wear}

    tried = {"program": 0, "erase": 0, "boot": 0}
    for i, step in enumerate(STEPS):
        name = step[1]
        for j, kind in enumerate(traces[i]):
            for mode in CUT_MODES:
                flash.restore(snaps[i])
                flash.reboot()
                fs, store = boot_store(bd)
                flash.cut_at(j, mode, seed=i * 1000 + j)
                with pytest.raises(PowerCut):
                    apply(store, step)
                tried[kind] += 1
                flash.reboot()
                after_cut = flash.snapshot()
                # Boot (which removes a stale .new) and check.
                flash.trace = []
                fs, store = boot_store(bd)
                boot_ops = len(flash.trace)
                flash.trace = None
                check_store(fs, store, states[i], states[i + 1])
                # A cut during that boot's own writes, then boot again.
                for k in range(boot_ops):
                    flash.restore(after_cut)
                    flash.cut_at(k, mode, seed=k)
                    with pytest.raises(PowerCut):
                        boot_store(bd)
                    flash.reboot()
                    fs, store = boot_store(bd)
                    check_store(fs, store, states[i], states[i + 1])
                    tried["boot"] += 1
                # The store still takes writes, and they survive a reboot.
                v = store.version(name)
                store.save(name, b"after the cut")
                fs, store = boot_store(bd)
                assert store.load(name) == b"after the cut"
                assert store.version(name) == v + 1
    elapsed = time.monotonic() - t0
    print(
        "\nstore: %d steps, cut points tried: %d programs + %d erases (x%d modes), "
        "%d during the boot after a cut; %.1f s"
        % (
            len(STEPS),
            tried["program"] // len(CUT_MODES),
            tried["erase"] // len(CUT_MODES),
            len(CUT_MODES),
            tried["boot"],
            elapsed,
        )
    )
    print(
        "store wear over %d saves and %d deletes: %d programs, %d bytes, %d erases"
        % (saves, len(STEPS) - saves, wear["writes"], wear["bytes_written"], wear["erases"])
    )
    assert tried["program"] > 50 and tried["erase"] > 0


# -- (b) event appends ----------------------------------------------------------

LOG_BS = 512  # 16 records per block
LOG_NB = 6
LOG_R = LOG_BS // 32
LOG_CAP = (LOG_NB - 2) * LOG_R


def boot_log(bd: BlockDevice) -> EventLog:
    log = EventLog(bd)
    log.recover()
    return log


def check_log(log: EventLog, acked: int, inflight: int | None) -> list[int]:
    """The log holds a contiguous run of valid records ending at the last
    acknowledged one (or the one in flight at the cut), no acknowledged record
    within the guaranteed capacity is missing, and nothing is corrupt."""
    got = list(log.read())
    assert all(valid(r) and r == rec(seq_of(r)) for r in got)
    seqs = [seq_of(r) for r in got]
    newest = seqs[-1] if seqs else 0
    assert newest == acked or (inflight is not None and newest == inflight)
    assert seqs == list(range(newest - len(seqs) + 1, newest + 1))
    # One cut wastes at most one slot (a torn record).
    assert len(seqs) >= min(newest, LOG_CAP - 1)
    assert len(seqs) <= (LOG_NB - 1) * LOG_R - 1
    assert log.count == len(seqs) and log.next_seq == newest + 1
    assert log.last_record() == (rec(newest) if newest else None)
    return seqs


def test_eventlog_power_cut_at_every_operation() -> None:
    t0 = time.monotonic()
    n_events = 8 * LOG_R + 5  # fills 8 blocks of a 6-block ring: wraps, 8 evictions
    flash = FlashDevice(LOG_NB * LOG_BS, erase_size=LOG_BS, strict=True)
    bd = BlockDevice(flash, 0, LOG_NB, "log")
    log = boot_log(bd)
    snaps: list[bytes] = []
    traces: list[list[str]] = []
    for seq in range(1, n_events + 1):
        snaps.append(flash.snapshot())
        # Recovery from this snapshot finds the running state exactly, so a
        # cut run from the snapshot is the same as a cut in the running log.
        fresh = boot_log(bd)
        assert (fresh._wb, fresh._ws, fresh.next_seq, fresh.oldest_seq) == (
            log._wb,
            log._ws,
            log.next_seq,
            log.oldest_seq,
        )
        flash.trace = []
        log.append(rec(seq))
        traces.append([kind for kind, _, _ in flash.trace])
        flash.trace = None
    check_log(log, n_events, None)
    assert sum(k == "erase" for t in traces for k in t) == n_events // LOG_R

    tried = {"program": 0, "erase": 0, "boot": 0}
    for i, trace in enumerate(traces):
        seq = i + 1
        for j, kind in enumerate(trace):
            for mode in CUT_MODES:
                flash.restore(snaps[i])
                flash.reboot()
                log = boot_log(bd)
                flash.cut_at(j, mode, seed=seq * 10 + j)
                with pytest.raises(PowerCut):
                    log.append(rec(seq))
                tried[kind] += 1
                flash.reboot()
                after_cut = flash.snapshot()
                flash.trace = []
                log = boot_log(bd)
                boot_ops = len(flash.trace)
                flash.trace = None
                check_log(log, seq - 1, seq)
                # A cut during the boot's own erase, then boot again.
                for k in range(boot_ops):
                    flash.restore(after_cut)
                    flash.cut_at(k, mode, seed=k)
                    with pytest.raises(PowerCut):
                        boot_log(bd)
                    flash.reboot()
                    log = boot_log(bd)
                    check_log(log, seq - 1, seq)
                    tried["boot"] += 1
                # The log goes on, across two more block boundaries.
                start = log.next_seq
                for s in range(start, start + 2 * LOG_R + 1):
                    log.append(rec(s))
                seqs = check_log(boot_log(bd), start + 2 * LOG_R, None)
                assert seqs[-1] == start + 2 * LOG_R
    elapsed = time.monotonic() - t0
    print(
        "\neventlog: %d appends over a %d-block ring, cut points tried: %d programs + "
        "%d erases (x%d modes), %d during the boot after a cut; %.1f s"
        % (
            n_events,
            LOG_NB,
            tried["program"] // len(CUT_MODES),
            tried["erase"] // len(CUT_MODES),
            len(CUT_MODES),
            tried["boot"],
            elapsed,
        )
    )
    assert tried["program"] == n_events * len(CUT_MODES)
    assert tried["erase"] == (n_events // LOG_R) * len(CUT_MODES)


def test_eventlog_wear_and_capacity_on_a_512k_region() -> None:
    """The figures for a 4 MB board with a 512 KB log region."""
    flash = FlashDevice(4 * 1024 * 1024)
    bd = BlockDevice(flash, 1024 - 128, 128, "log")  # the last 512 KB
    log = boot_log(bd)
    events = 40_000
    for s in range(1, events + 1):
        log.append(rec(s))
    c = flash.regions["log"]
    assert c.writes == events and c.bytes_written == 32 * events
    assert c.erases == events // 128
    assert log.capacity == 126 * 128 == 16128
    assert log.capacity <= log.count <= 127 * 128 - 1
    # Recovery reads the first record of each block and a few whole blocks,
    # far less than the region.
    before = c.bytes_read
    log2 = boot_log(bd)
    boot_read = c.bytes_read - before
    assert log2.next_seq == events + 1 and log2.count == log.count
    assert boot_read < 4 * 4096 + 128 * 32
    print(
        "\neventlog on 512 KB (128 x 4096 B blocks, 128 records each): keeps %d..%d "
        "events (%d now); per event: %.1f bytes programmed, %.5f erases (1/%d), "
        "%.0f bytes of wear counting the erase; boot reads %d bytes"
        % (
            log.capacity,
            127 * 128 - 1,
            log.count,
            c.bytes_written / events,
            c.erases / events,
            events // c.erases,
            (c.bytes_written + 4096 * c.erases) / events,
            boot_read,
        )
    )


# -- a model-based test of the log with power cuts anywhere -------------------

M_BS = 256  # 8 records per block
M_NB = 4
M_R = M_BS // 32
M_CAP = (M_NB - 2) * M_R


class EventLogMachine(RuleBasedStateMachine):
    """EventLog against a list: appends, reboots, power cuts during appends and
    during the boot after them."""

    def __init__(self) -> None:
        super().__init__()
        self.flash = FlashDevice(M_NB * M_BS, erase_size=M_BS, strict=True)
        self.bd = BlockDevice(self.flash, 0, M_NB, "log")
        self.log = boot_log(self.bd)
        self.model: list[bytes] = []
        self.cuts: list[int] = []  # model length at each cut

    def _boot(self) -> None:
        self.log = boot_log(self.bd)

    @rule(tag=st.integers(0, 255))
    def append(self, tag: int) -> None:
        r = rec(len(self.model) + 1, tag)
        assert self.log.append(r) == len(self.model) + 1
        self.model.append(r)

    @rule()
    def reboot(self) -> None:
        self._boot()

    @rule(
        n=st.integers(0, 3),
        mode=st.sampled_from(CUT_MODES),
        seed=st.integers(0, 2**16),
        tag=st.integers(0, 255),
        boot_cut=st.booleans(),
    )
    def power_cut(self, n: int, mode: str, seed: int, tag: int, boot_cut: bool) -> None:
        self.flash.cut_at(n, mode, seed)
        pending = None
        with pytest.raises(PowerCut):
            for _ in range(n + 1):
                pending = rec(len(self.model) + 1, tag)
                self.log.append(pending)
                self.model.append(pending)
        self.flash.reboot()
        self.cuts.append(len(self.model))
        if boot_cut:  # and once more during the boot, if it writes at all
            self.flash.cut_at(0, mode, seed + 1)
            try:
                self._boot()
            except PowerCut:
                self.flash.reboot()
            self.flash.cancel_cut()
        self._boot()
        nxt = self.log.next_seq
        if nxt == len(self.model) + 2:
            self.model.append(pending)  # the write in flight had landed
        else:
            assert nxt == len(self.model) + 1

    @invariant()
    def matches_model(self) -> None:
        got = list(self.log.read())
        k = len(got)
        assert got == self.model[len(self.model) - k :] if k else True
        recent = sum(1 for c in self.cuts if c >= len(self.model) - M_NB * M_R)
        assert k >= min(len(self.model), M_CAP - recent)
        assert k <= (M_NB - 1) * M_R - 1
        assert self.log.count == k
        assert self.log.next_seq == len(self.model) + 1
        assert self.log.last_record() == (self.model[-1] if self.model else None)


EventLogMachine.TestCase.settings = settings(
    max_examples=100, stateful_step_count=60, deadline=None
)
test_eventlog_model = EventLogMachine.TestCase
