# Portable tests of protocol.events (CPython and MicroPython).
import binascii

import testvectors
from protocol import events
from protocol.events import GENESIS_MAC, NO_KEY, RECORD_SIZE, EventError
from testvectors import raises, unhex

V = testvectors.load("events")
KEY = unhex(V["log_key"])


def _chain(n, start=1, key=KEY):
    """n records from seq `start`; a chain not starting at 1 hangs off an unseen record."""
    prev = GENESIS_MAC if start == 1 else b"\x5a" * 8
    recs = []
    for s in range(start, start + n):
        r = events.encode(s, 5000 + 60 * s, events.OPENED, 0, s & 0xFFFF, NO_KEY, prev, key)
        recs.append(r)
        prev = r[20:28]
    return recs


def _forge(rec, offset, value):
    """Change one byte and recompute the CRC, as anyone can."""
    b = bytearray(rec)
    b[offset] = value
    b[28:32] = (binascii.crc32(bytes(b[:28])) & 0xFFFFFFFF).to_bytes(4, "big")
    return bytes(b)


def _flip(rec, offset):
    """Change one byte and leave the CRC: damage."""
    b = bytearray(rec)
    b[offset] ^= 0x10
    return bytes(b)


def _clean(rep, **expected):
    """Every finding of rep is empty except those given."""
    for name in ("missing", "altered", "unverifiable", "reordered", "corrupt"):
        want = expected.get(name, [])
        got = getattr(rep, name)
        assert got == want, "%s: %r != %r (%r)" % (name, got, want, rep)
    assert rep.ok == (not expected)


def test_vectors():
    for v in V["key_ids"]:
        assert events.key_id_of(v["sub"]) == unhex(v["key_id"])
    for v in V["chain"]:
        rec = events.encode(v["seq"], v["time"], v["code"], v["flags"], v["detail"],
                            unhex(v["key_id"]), unhex(v["prev_mac"]), KEY)
        assert rec == unhex(v["record"])
        e = events.decode(rec)
        assert (e.seq, e.time, e.code, e.flags, e.detail) == (
            v["seq"], v["time"], v["code"], v["flags"], v["detail"])
        assert e.key_id == unhex(v["key_id"]) and e.mac == rec[20:28]
        assert events.check_mac(e, unhex(v["prev_mac"]), KEY)
        assert events.check_mac(rec, unhex(v["prev_mac"]), KEY)
    rep = events.verify_chain([unhex(v["record"]) for v in V["chain"]], KEY)
    _clean(rep)
    assert rep.anchored and rep.verified == len(V["chain"])


def test_round_trip_extremes():
    kid = events.key_id_of("nurse-1")
    for seq, t, code, flags, detail in ((1, 0, 0, 0, 0), (0xFFFFFFFE, 0xFFFFFFFF, 0xFF, 0xFF, 0xFFFF)):
        rec = events.encode(seq, t, code, flags, detail, kid, GENESIS_MAC, KEY)
        assert len(rec) == RECORD_SIZE
        e = events.decode(bytearray(rec))
        assert (e.seq, e.time, e.code, e.flags, e.detail, e.key_id) == (seq, t, code, flags, detail, kid)
    assert events.decode(events.encode(3, 1, 1, 0, 0, None, GENESIS_MAC, KEY)).key_id == NO_KEY
    assert events.key_id_of(None) == NO_KEY
    assert events.key_id_of("a") == events.key_id_of(b"a")


def test_encode_refuses_out_of_range():
    good = (5, 100, events.OPENED, 0, 0, NO_KEY, GENESIS_MAC, KEY)
    for pos, bad in ((0, 0), (0, 0xFFFFFFFF), (1, -1), (1, 1 << 32), (2, 256), (3, -1),
                     (4, 0x10000), (5, bytes(7)), (6, bytes(9))):
        args = list(good)
        args[pos] = bad
        assert raises(EventError, events.encode, *args), (pos, bad)


def test_decode_errors():
    rec = events.encode(9, 100, events.JAMMED, events.FLAG_BATTERY_LOW, 1, NO_KEY, GENESIS_MAC, KEY)
    for bad in (rec[:31], rec + b"\0", b""):
        assert raises(EventError, events.decode, bad)
    for i in range(RECORD_SIZE):
        assert raises(EventError, events.decode, _flip(rec, i)), i
    erased = b"\xff" * RECORD_SIZE
    assert events.is_erased(erased) and events.is_erased(bytearray(erased))
    assert not events.is_erased(rec) and not events.is_erased(b"\xff" * 31)
    try:
        events.decode(erased)
    except EventError as e:
        assert "erased" in str(e)
        assert binascii.hexlify(KEY).decode() not in str(e)
    else:
        raise AssertionError("erased slot decoded")


def test_check_mac_refuses():
    a, b = _chain(2)
    assert events.check_mac(b, a[20:28], KEY)
    assert not events.check_mac(b, GENESIS_MAC, KEY)
    assert not events.check_mac(b, a[20:28], KEY[:-1] + b"\0")
    assert not events.check_mac(_forge(b, 13, 1), a[20:28], KEY)
    assert not events.check_mac(b[:31], a[20:28], KEY)


def test_names_and_codes():
    not_codes = ("RECORD_SIZE", "GENESIS_MAC", "NO_KEY", "NAMES",
                 "DOOR_AFTER_OPENING", "DOOR_BY_HAND", "DOOR_FORCED",
                 "LOG_READ_KEY", "LOG_READ_SERIAL",
                 "TIME_SET_MAX_MOVED", "TIME_SET_FORCED")  # details
    codes = [getattr(events, n) for n in dir(events)
             if n.isupper() and not n.startswith("_") and n not in not_codes
             and not n.startswith("FLAG_")]
    assert len(codes) == len(set(codes)) == len(events.NAMES) >= 24
    for c in codes:
        assert 0 < c < 0xFF and events.NAMES[c]
    assert events.NAMES[events.DOOR_LEFT_OPEN] == "door left open"
    assert events.decode(_chain(1)[0]).name == "opened"


def test_chain_intact():
    rep = events.verify_chain(_chain(10), KEY)
    _clean(rep)
    assert (rep.first_seq, rep.last_seq, rep.anchored, rep.verified) == (1, 10, True, 10)
    assert rep.seqs == list(range(1, 11))
    _clean(events.verify_chain([], KEY))


def test_one_deleted():
    recs = _chain(10)
    del recs[4]  # seq 5
    rep = events.verify_chain(recs, KEY)
    _clean(rep, missing=[(5, 5)], unverifiable=[4])
    assert rep.verified == 8


def test_one_edited_with_crc_recomputed():
    for off in (5, 8, 9, 11, 12, 19):  # time, code, flags, detail, key id
        recs = _chain(10)
        recs[6] = _forge(recs[6], off, recs[6][off] ^ 0x01)
        _clean(events.verify_chain(recs, KEY), altered=[6])


def test_edited_seq_is_found_in_place():
    recs = _chain(10)
    recs[3] = _forge(recs[3], 3, 9)  # seq 4 now claims 9
    rep = events.verify_chain(recs, KEY)
    _clean(rep, altered=[3])
    assert rep.seqs[3] == 4


def test_edited_mac_field():
    recs = _chain(10)
    recs[6] = _forge(recs[6], 22, recs[6][22] ^ 0x80)
    _clean(events.verify_chain(recs, KEY), altered=[6], unverifiable=[7])


def test_first_and_last_edited():
    recs = _chain(6)
    recs[0] = _forge(recs[0], 10, 0x77)
    _clean(events.verify_chain(recs, KEY), altered=[0])
    recs = _chain(6)
    recs[5] = _forge(recs[5], 11, 0x77)
    _clean(events.verify_chain(recs, KEY), altered=[5])


def test_two_swapped():
    recs = _chain(10)
    recs[3], recs[4] = recs[4], recs[3]
    rep = events.verify_chain(recs, KEY)
    assert len(rep.reordered) == 1 and rep.reordered[0] in (3, 4)
    _clean(rep, reordered=rep.reordered)
    assert rep.verified == 10
    recs = _chain(10)
    recs[2], recs[7] = recs[7], recs[2]
    _clean(events.verify_chain(recs, KEY), reordered=[2, 7])


def test_duplicate():
    recs = _chain(6)
    recs.insert(3, recs[2])
    _clean(events.verify_chain(recs, KEY), reordered=[3])  # the later copy


def test_forged_insert():
    recs = _chain(6)
    fake = events.encode(4, 1, events.OPENED, 0, 0, NO_KEY, recs[2][20:28], b"wrong key")
    recs.insert(3, fake)
    rep = events.verify_chain(recs, KEY)
    assert rep.altered == [3] and not rep.ok and rep.verified == 6


def test_truncated_tail_is_just_shorter():
    rep = events.verify_chain(_chain(10)[:7], KEY)
    _clean(rep)
    assert rep.last_seq == 7


def test_ring_wrap_start():
    recs = _chain(12, start=300)
    rep = events.verify_chain(recs, KEY)
    _clean(rep)
    assert (rep.first_seq, rep.last_seq, rep.anchored, rep.verified) == (300, 311, False, 11)
    rep = events.verify_chain(recs[3:], KEY)  # losing the oldest looks like more wrap
    _clean(rep)
    assert rep.first_seq == 303
    recs[0] = _forge(recs[0], 3, 0x20)  # an edited seq on the unanchored start is seen
    _clean(events.verify_chain(recs, KEY), altered=[0])


def test_anchor_from_previous_collection():
    recs = _chain(12)
    old, new = recs[:5], recs[5:]
    _clean(events.verify_chain(old, KEY))
    anchor = old[-1][20:28]
    rep = events.verify_chain(new, KEY, anchor_mac=anchor, anchor_seq=5)
    _clean(rep)
    assert rep.anchored and rep.first_seq == 6 and rep.verified == 7
    _clean(events.verify_chain(new, KEY, anchor_mac=anchor))  # anchor_seq implied
    rep = events.verify_chain(new[1:], KEY, anchor_mac=anchor, anchor_seq=5)
    _clean(rep, missing=[(6, 6)], unverifiable=[0])
    assert not rep.anchored
    _clean(events.verify_chain(new, KEY, anchor_mac=b"\1" * 8, anchor_seq=5), altered=[0])
    rep = events.verify_chain(recs[4:], KEY, anchor_mac=anchor, anchor_seq=5)  # seq 5 again
    assert not rep.ok and rep.reordered == [0] and rep.missing == [] and rep.altered == []


def test_corrupt_records():
    recs = _chain(8)
    recs[3] = _flip(recs[3], 9)  # damage in the fields: its mac still links seq 5
    rep = events.verify_chain(recs, KEY)
    _clean(rep, corrupt=[3])
    assert rep.seqs[3] == 4
    recs = _chain(8)
    recs[3] = _flip(recs[3], 21)  # damage in the mac: seq 4 is gone, 5 cannot be checked
    _clean(events.verify_chain(recs, KEY), corrupt=[3], missing=[(4, 4)], unverifiable=[4])
    recs = _chain(8)
    recs.insert(2, b"\xff" * RECORD_SIZE)
    recs.insert(5, b"\x01\x02")
    rep = events.verify_chain(recs, KEY)
    _clean(rep, corrupt=[2, 5])
    assert rep.verified == 8


def test_wrong_key_alters_everything_anchored():
    rep = events.verify_chain(_chain(4), b"another key")
    assert not rep.ok and rep.altered == [0] and rep.unverifiable == [1, 2, 3]
