# Audit event records of the lock, and the MAC chain over them.
#
# A record is 32 bytes, fixed layout (the flash ring buffer relies on seq at
# 0-3, the CRC at 28-31 and an erased slot reading all 0xFF):
#    0 seq     u32 BE, per lock from 1 (0 and 0xFFFFFFFF never used)
#    4 time    u32 BE, lock time (protocol.clock)
#    8 code    u8   event code (below)
#    9 flags   u8   FLAG_*
#   10 detail  u16 BE (refusal reason, millivolts, revocation version, reset cause...)
#   12 key_id  8 bytes, key_id_of(staff key id), zeros when none
#   20 mac     8 bytes = HMAC-SHA256(log_key, prev_mac || record[0:20])[:8]
#   28 crc     u32 BE = crc32(record[0:28])
# The MAC links each record to the one before it (GENESIS_MAC before seq 1).
# The CRC only finds damage: anyone can recompute it; the MAC needs the log key.
import binascii

from protocol.crypto import eq, hmac_sha256, sha256

try:
    from micropython import const
except ImportError:  # CPython
    def const(x):
        return x

RECORD_SIZE = const(32)
GENESIS_MAC = bytes(8)
NO_KEY = bytes(8)
_ERASED = b"\xff" * 32

FLAG_CLOCK_UNTRUSTED = const(0x01)
FLAG_ALARM_ACCESS = const(0x02)
FLAG_BATTERY_LOW = const(0x04)
FLAG_BATTERY_CRITICAL = const(0x08)

# Event codes: stable numbers, never reused. 0 and 0xFF are never used.
OPENED = const(0x01)
REFUSED = const(0x02)  # detail: refusal reason
RELOCKED = const(0x03)
ALARM_OPEN = const(0x04)
RATE_LIMITED = const(0x05)
LOG_READ = const(0x06)
DOOR_OPENED = const(0x10)  # detail: how (DOOR_AFTER_OPENING, DOOR_BY_HAND, DOOR_FORCED)
DOOR_CLOSED = const(0x11)
DOOR_LEFT_OPEN = const(0x12)
JAMMED = const(0x13)
BOOT = const(0x20)  # detail: reset cause
WATCHDOG_RESET = const(0x21)
COMMISSIONED = const(0x22)
DECOMMISSIONED = const(0x23)
FACTORY_RESET = const(0x24)
TIME_SET = const(0x30)  # detail: seconds moved, at most TIME_SET_MAX_MOVED; or TIME_SET_FORCED
TIME_SET_MAX_MOVED = const(0xFFFE)
# A forced set (admin "force-time", with the button): the clock was set from the
# installer's host whatever it read before, backwards too, so what it moved says
# less than that it was forced.
TIME_SET_FORCED = const(0xFFFF)
TIME_REJECTED = const(0x31)
CLOCK_UNTRUSTED = const(0x32)
REVOCATION_UPDATED = const(0x33)  # detail: new version (low 16 bits)
REVOCATION_REJECTED = const(0x34)
BATTERY_LOW = const(0x40)  # detail: millivolts
BATTERY_CRITICAL = const(0x41)  # detail: millivolts
FRAME_ERROR = const(0x50)
CONNECTION_TIMEOUT = const(0x51)
# What peers caused beyond the log budget (firmware/peerbudget.py), counted:
# detail = total, key id = four u16 counts (frame errors, refusals, connection
# timeouts, other), each capped at 0xFFFF.
PEER_SUMMARY = const(0x52)

# LOG_READ details: who read.
LOG_READ_KEY = const(0)  # over BLE, by the key named in the record
LOG_READ_SERIAL = const(1)  # over the serial port, by the installer

# DOOR_OPENED details.
DOOR_AFTER_OPENING = const(0)  # after a digital opening (or at boot, unlocked)
DOOR_BY_HAND = const(1)  # no digital opening before it: a key or the thumb-turn
DOOR_FORCED = const(2)  # the bolt was still thrown: forced

NAMES = {
    OPENED: "opened",
    REFUSED: "refused",
    RELOCKED: "relocked",
    ALARM_OPEN: "alarm open",
    RATE_LIMITED: "rate limited",
    LOG_READ: "log read",
    DOOR_OPENED: "door opened",
    DOOR_CLOSED: "door closed",
    DOOR_LEFT_OPEN: "door left open",
    JAMMED: "jammed",
    BOOT: "boot",
    WATCHDOG_RESET: "watchdog reset",
    COMMISSIONED: "commissioned",
    DECOMMISSIONED: "decommissioned",
    FACTORY_RESET: "factory reset",
    TIME_SET: "time set",
    TIME_REJECTED: "time rejected",
    CLOCK_UNTRUSTED: "clock untrusted",
    REVOCATION_UPDATED: "revocation updated",
    REVOCATION_REJECTED: "revocation rejected",
    BATTERY_LOW: "battery low",
    BATTERY_CRITICAL: "battery critical",
    FRAME_ERROR: "frame error",
    CONNECTION_TIMEOUT: "connection timeout",
    PEER_SUMMARY: "peer events summarised",
}


class EventError(ValueError):
    pass


class Event:
    def __init__(self, seq, time, code, flags, detail, key_id, mac):
        self.seq = seq
        self.time = time
        self.code = code
        self.flags = flags
        self.detail = detail
        self.key_id = key_id
        self.mac = mac

    @property
    def name(self):
        return NAMES.get(self.code, "unknown")

    def __repr__(self):
        return "Event(seq=%d, time=%d, %s, flags=0x%02x, detail=%d)" % (
            self.seq, self.time, self.name, self.flags, self.detail)


def summary_counts(key_id):
    """The four counts a PEER_SUMMARY record carries in its key id field."""
    k = bytes(key_id)
    return [int.from_bytes(k[i:i + 2], "big") for i in (0, 2, 4, 6)]


def key_id_of(sub):
    """The 8-byte key id logged for a staff key id (CWT sub); NO_KEY for None."""
    if sub is None:
        return NO_KEY
    if isinstance(sub, str):
        sub = sub.encode("utf-8")
    return sha256(sub)[:8]


def _head(seq, time, code, flags, detail, key_id):
    return (seq.to_bytes(4, "big") + time.to_bytes(4, "big") + bytes((code, flags))
            + detail.to_bytes(2, "big") + bytes(key_id))


def _mac(log_key, prev_mac, head):
    return hmac_sha256(log_key, bytes(prev_mac) + head)[:8]


def _crc(data):
    return binascii.crc32(data) & 0xFFFFFFFF


def encode(seq, time, code, flags, detail, key_id, prev_mac, log_key):
    """The 32-byte record; prev_mac is the mac of the record before (GENESIS_MAC for seq 1)."""
    if not 0 < seq < 0xFFFFFFFF:
        raise EventError("seq out of range")
    if not 0 <= time <= 0xFFFFFFFF:
        raise EventError("time out of range")
    if not (0 <= code <= 0xFF and 0 <= flags <= 0xFF and 0 <= detail <= 0xFFFF):
        raise EventError("code, flags or detail out of range")
    if key_id is None:
        key_id = NO_KEY
    if len(key_id) != 8 or len(prev_mac) != 8:
        raise EventError("key id and prev mac must be 8 bytes")
    head = _head(seq, time, code, flags, detail, key_id)
    body = head + _mac(log_key, prev_mac, head)
    return body + _crc(body).to_bytes(4, "big")


def is_erased(record):
    return len(record) == RECORD_SIZE and bytes(record) == _ERASED


def decode(record):
    """The Event in a record whose size and CRC are right (the MAC is not checked here)."""
    if len(record) != RECORD_SIZE:
        raise EventError("record size")
    record = bytes(record)
    if record == _ERASED:
        raise EventError("erased slot")
    if _crc(record[:28]) != int.from_bytes(record[28:], "big"):
        raise EventError("bad CRC")
    return Event(int.from_bytes(record[0:4], "big"), int.from_bytes(record[4:8], "big"),
                 record[8], record[9], int.from_bytes(record[10:12], "big"),
                 record[12:20], record[20:28])


def check_mac(event_or_record, prev_mac, log_key):
    """True if the record's MAC is right given the mac of the record before it."""
    e = event_or_record
    if isinstance(e, Event):
        head, mac = _head(e.seq, e.time, e.code, e.flags, e.detail, e.key_id), e.mac
    elif len(e) == RECORD_SIZE:
        head, mac = bytes(e[:20]), e[20:28]
    else:
        return False
    return eq(_mac(log_key, prev_mac, head), mac)


class ChainReport:
    """What verify_chain found. Records are named by their index in the list given.

    ok            True when nothing below is wrong (unanchored is not wrong).
    first_seq, last_seq   the seq range found (None when no record is usable).
    anchored      the first record was checked against a known predecessor (the
                  anchor, or GENESIS_MAC for seq 1). If not, that record's own fields
                  are unauthenticated (normal once the ring has wrapped).
    verified      how many records have a right MAC.
    missing       (first, last) seq ranges held by no record.
    altered       records shown not to be what the lock wrote: a wrong MAC against the
                  known mac of their predecessor, or a seq that contradicts their
                  successor's MAC.
    unverifiable  records whose MAC fails but whose predecessor's mac is unknown (it is
                  missing or its own mac is wrong): altered, or just after a gap.
    reordered     records out of seq order or duplicated (the fewest such records that,
                  left out, leave the rest in increasing order).
    corrupt       records with a bad CRC, wrong size or erased: damaged, not authenticated.
    seqs          per record, the seq it holds as far as verification tells (a
                  successor's MAC can fix an edited seq), None if unknown.
    """

    def __init__(self):
        self.ok = True
        self.first_seq = None
        self.last_seq = None
        self.anchored = False
        self.verified = 0
        self.missing = []
        self.altered = []
        self.unverifiable = []
        self.reordered = []
        self.corrupt = []
        self.seqs = []

    def __repr__(self):
        return ("ChainReport(ok=%s, seq %s..%s, anchored=%s, verified=%d, missing=%s, "
                "altered=%s, unverifiable=%s, reordered=%s, corrupt=%s)" % (
                    self.ok, self.first_seq, self.last_seq, self.anchored, self.verified,
                    self.missing, self.altered, self.unverifiable, self.reordered,
                    self.corrupt))


def _out_of_order(order, seqs):
    """The positions in `order` outside one longest strictly increasing run of seqs."""
    tails = []  # type: list[int]  # tails[k]: position ending the best increasing run of length k + 1
    back = [-1] * len(order)
    for j in range(len(order)):
        s = seqs[order[j]]
        lo, hi = 0, len(tails)
        while lo < hi:
            mid = (lo + hi) // 2
            if seqs[order[tails[mid]]] < s:
                lo = mid + 1
            else:
                hi = mid
        back[j] = tails[lo - 1] if lo else -1
        if lo == len(tails):
            tails.append(j)
        elif seqs[order[tails[lo]]] != s:  # on a tie keep the earlier: a duplicate is the later
            tails[lo] = j
    keep = set()
    j = tails[-1] if tails else -1
    while j >= 0:
        keep.add(j)
        j = back[j]
    return [order[j] for j in range(len(order)) if j not in keep]


def _parse_records(records, rep):
    """Each record's head and mac, and its claimed seq where its CRC holds."""
    k = len(records)
    heads = [None] * k  # type: list[bytes | None]
    macs = [None] * k  # type: list[bytes | None]
    # claimed[i] is None or an int; the None checks go through indices (intact, live),
    # which mypy cannot narrow, so this list is left untyped (list[Any]).
    claimed = [None] * k  # type: list
    for i in range(k):
        rec = bytes(records[i])
        if len(rec) != RECORD_SIZE or rec == _ERASED:
            rep.corrupt.append(i)
            continue
        heads[i], macs[i] = rec[:20], rec[20:28]
        if _crc(rec[:28]) == int.from_bytes(rec[28:], "big"):
            claimed[i] = int.from_bytes(rec[:4], "big")
        else:
            rep.corrupt.append(i)  # its mac may still link its successor
    return heads, macs, claimed


def _links(live, intact, claimed, macs, anchor_mac, anchor_seq, link):
    """1. Which records verify, and through which predecessor (-1: the anchor)."""
    by_seq = {}
    for i in intact:
        if claimed[i] not in by_seq:
            by_seq[claimed[i]] = i
    via = [None] * len(claimed)  # type: list[int | None]
    prev = None
    for i in live:
        s = claimed[i]
        if s is not None:
            q = by_seq.get(s - 1)
            if prev is not None and link(macs[prev], i):
                via[i] = prev
            elif q is not None and q != prev and link(macs[q], i):
                via[i] = q
            elif s == anchor_seq + 1 and link(anchor_mac, i):
                via[i] = -1
        prev = i
    return via


def _true_seqs(live, intact, claimed, macs, via, anchor_mac, anchor_seq):
    """2. A verified record proves its predecessor's mac, hence that one's true seq.
    Returns the seqs and the macs known genuine by seq."""
    seqs = list(claimed)
    genuine = [v is not None for v in via]
    for i in intact:
        p = via[i]
        if p is not None and p >= 0 and via[p] is None:
            seqs[p] = claimed[i] - 1
            genuine[p] = True
    known = {anchor_seq: anchor_mac}
    for i in live:
        if genuine[i] and seqs[i] not in known:
            known[seqs[i]] = macs[i]
    return seqs, known


def _order(rep, live, seqs, lo, anchor_seq):
    """4. Order and completeness, by the seqs found, from seq lo on."""
    order = [i for i in live if seqs[i] is not None and seqs[i] >= lo]
    early = [i for i in live if seqs[i] is not None and seqs[i] < lo]
    rep.reordered = sorted(early + _out_of_order(order, seqs))
    found = sorted(set(seqs[i] for i in order))
    expect = lo
    for t in found:
        if t > expect:
            rep.missing.append((expect, t - 1))
        expect = t + 1
    if found:
        rep.first_seq, rep.last_seq = found[0], found[-1]
        rep.anchored = found[0] == anchor_seq + 1


def verify_chain(records, log_key, anchor_mac=None, anchor_seq=None):
    """Check a log read from the lock (records oldest first, in the order read).

    Without an anchor, a chain starting at seq 1 is checked from GENESIS_MAC, and one
    starting later (the ring has overwritten its oldest records) starts unanchored.
    anchor_mac is the mac of the last record seen before (say, at the previous
    collection) and anchor_seq its seq; records at or before anchor_seq are reported
    reordered. Without anchor_seq the anchor is taken to be the record just before the
    lowest seq given, and then a deletion of the first record after the anchor reads
    as the next record altered: pass anchor_seq.

    A record's MAC is tried against the mac stored in the record read before it and
    in the record holding seq - 1. When one matches, the record is what the lock
    wrote, and that predecessor's mac field is genuine: so its true seq is seq - 1,
    even if its own fields were edited. Hence:
    - deleting record n reports n missing and n + 1 unverifiable (its predecessor is
      gone, so an edit of n + 1 could not be told apart; it is not called altered);
    - editing record n (any field, CRC recomputed) reports n altered, at its true seq
      when the record after it is intact; if n's mac field was edited, n + 1 is
      reported unverifiable too (it hangs off a mac that is now unknown);
    - swapping records reports them reordered (the fewest that explain the order),
      all still verified; a repeated record reports the later copy reordered.
    Not detectable from the records alone: a truncated tail (compare last_seq with
    the lock's own count) and, when unanchored, the loss of the first records or an
    edit of the first record's fields; there an edit of the second record (or of the
    first record's mac field) shows as unverifiable, not altered. Keep an anchor from
    the previous collection to close this.
    """
    rep = ChainReport()
    heads, macs, claimed = _parse_records(records, rep)
    live = [i for i in range(len(records)) if macs[i] is not None]
    intact = [i for i in live if claimed[i] is not None]
    implicit = anchor_mac is None
    if implicit:
        anchor_mac, anchor_seq = GENESIS_MAC, 0
    elif anchor_seq is None:
        anchor_seq = min(claimed[i] for i in intact) - 1 if intact else 0

    def link(prev_mac, i):
        return eq(_mac(log_key, prev_mac, heads[i]), macs[i])

    via = _links(live, intact, claimed, macs, anchor_mac, anchor_seq, link)
    seqs, known = _true_seqs(live, intact, claimed, macs, via, anchor_mac, anchor_seq)
    have = [seqs[i] for i in live if seqs[i] is not None]
    start = min(have) if have else None
    # 3. Judge the records that did not verify.
    for i in intact:
        t = seqs[i]
        pm = known.get(t - 1)
        if via[i] is not None or (pm is not None and link(pm, i)):
            rep.verified += 1
        elif pm is not None or t != claimed[i]:
            rep.altered.append(i)
        elif not (implicit and t == start):
            rep.unverifiable.append(i)
    _order(rep, live, seqs, start if implicit else anchor_seq + 1, anchor_seq)
    rep.seqs = seqs
    rep.ok = not (rep.missing or rep.altered or rep.unverifiable or rep.reordered
                  or rep.corrupt)
    return rep
