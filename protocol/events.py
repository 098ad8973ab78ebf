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


def verify_chain(records, log_key, anchor_mac=None, anchor_seq=None):
    """The verifier of the MAC chain (protocol/chain.py, which says what it
    reports). Imported at the first call: the lock writes the chain and never
    verifies a whole one, so its heap does not carry the verifier."""
    from protocol import chain

    return chain.verify_chain(records, log_key, anchor_mac, anchor_seq)
