"""protocol.events against an independent oracle: struct, zlib.crc32 and the HMAC of
`cryptography` build the records; random deletions, edits and swaps are checked
against verify_chain's report."""

import hashlib
import struct
import zlib

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import hmac as chmac
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from protocol import events
from protocol.events import RECORD_SIZE, EventError

SETTINGS = settings(deadline=None, max_examples=150)


# --- oracle ------------------------------------------------------------------------

def o_mac(key, prev, head):
    h = chmac.HMAC(key, hashes.SHA256())
    h.update(prev + head)
    return h.finalize()[:8]


def o_record(key, prev, seq, time, code, flags, detail, key_id):
    head = struct.pack(">IIBBH8s", seq, time, code, flags, detail, key_id)
    body = head + o_mac(key, prev, head)
    return body + struct.pack(">I", zlib.crc32(body))


def o_recrc(rec):
    return rec[:28] + struct.pack(">I", zlib.crc32(rec[:28]))


def o_chain(key, start, n, prev0):
    """n records from seq start, hanging off a predecessor whose mac is prev0."""
    recs, prev = [], prev0
    for s in range(start, start + n):
        r = o_record(key, prev, s, (s * 37) & 0xFFFFFFFF, s & 0xFF, 0, s & 0xFFFF, bytes(8))
        recs.append(r)
        prev = r[20:28]
    return recs


def lis_len(xs):
    best = []
    for i, x in enumerate(xs):
        best.append(1 + max([best[j] for j in range(i) if xs[j] < x], default=0))
    return max(best, default=0)


# --- strategies --------------------------------------------------------------------

u32 = st.integers(0, 0xFFFFFFFF)
keys = st.binary(min_size=1, max_size=64)
starts = st.one_of(st.just(1), st.integers(2, 0xFFFFFFFF - 64))


@st.composite
def chains(draw, min_size=1):
    key = draw(keys)
    start = draw(starts)
    n = draw(st.integers(min_size, 24))
    prev0 = events.GENESIS_MAC if start == 1 else draw(st.binary(min_size=8, max_size=8))
    anchored = draw(st.booleans())  # pass the predecessor as an explicit anchor
    return key, start, n, prev0, o_chain(key, start, n, prev0), anchored


def run(key, start, prev0, recs, anchored):
    if anchored:
        return events.verify_chain(recs, key, anchor_mac=prev0, anchor_seq=start - 1)
    return events.verify_chain(recs, key)


# --- records -----------------------------------------------------------------------

@SETTINGS
@given(keys, st.binary(min_size=8, max_size=8), st.integers(1, 0xFFFFFFFE), u32,
       st.integers(0, 255), st.integers(0, 255), st.integers(0, 0xFFFF),
       st.binary(min_size=8, max_size=8))
def test_record_matches_oracle(key, prev, seq, time, code, flags, detail, key_id):
    rec = events.encode(seq, time, code, flags, detail, key_id, prev, key)
    assert rec == o_record(key, prev, seq, time, code, flags, detail, key_id)
    e = events.decode(rec)
    assert (e.seq, e.time, e.code, e.flags, e.detail, e.key_id, e.mac) == (
        seq, time, code, flags, detail, key_id, rec[20:28])
    assert events.check_mac(e, prev, key) and events.check_mac(rec, prev, key)
    assert not events.check_mac(rec, bytes(b ^ 1 for b in prev), key)


@SETTINGS
@given(st.text(max_size=40))
def test_key_id_of(sub):
    assert events.key_id_of(sub) == hashlib.sha256(sub.encode("utf-8")).digest()[:8]


@SETTINGS
@given(st.binary(max_size=40))
def test_decode_any_bytes(data):
    ok = (len(data) == RECORD_SIZE and data != b"\xff" * RECORD_SIZE
          and struct.unpack(">I", data[28:32])[0] == zlib.crc32(data[:28]))
    try:
        e = events.decode(data)
    except EventError:
        assert not ok
    else:
        assert ok and e.seq == struct.unpack(">I", data[:4])[0]


@SETTINGS
@given(st.lists(st.one_of(st.binary(min_size=32, max_size=32), st.binary(max_size=40),
                          st.just(b"\xff" * 32)), max_size=12), keys,
       st.none() | st.binary(min_size=8, max_size=8), st.none() | u32)
def test_verify_chain_never_raises(recs, key, anchor_mac, anchor_seq):
    recs = [o_recrc(r) if len(r) == 32 and r[0] & 1 else r for r in recs]  # half with good CRCs
    rep = events.verify_chain(recs, key, anchor_mac, anchor_seq if anchor_mac else None)
    assert len(rep.seqs) == len(recs)


# --- chains ------------------------------------------------------------------------

@SETTINGS
@given(chains())
def test_intact_chain(c):
    key, start, n, prev0, recs, anchored = c
    rep = run(key, start, prev0, recs, anchored)
    assert rep.ok, rep
    assert (rep.first_seq, rep.last_seq) == (start, start + n - 1)
    assert rep.anchored == (anchored or start == 1)
    assert rep.verified == (n if rep.anchored else n - 1)
    assert rep.seqs == list(range(start, start + n))


@SETTINGS
@given(chains(min_size=2), st.data())
def test_deletions(c, data):
    key, start, n, prev0, recs, anchored = c
    deleted = set(data.draw(st.lists(st.integers(0, n - 1), min_size=1, max_size=n - 1)))
    kept = [j for j in range(n) if j not in deleted]
    assume(kept)
    # expected: every deleted run before the last kept record is missing and the record
    # after it unverifiable; a leading run only shows against an anchor
    missing, unverifiable = [], []
    run_from = None
    for j in range(0 if anchored else kept[0], kept[-1] + 1):
        if j in deleted:
            run_from = j if run_from is None else run_from
        elif run_from is not None:
            missing.append((start + run_from, start + j - 1))
            unverifiable.append(kept.index(j))
            run_from = None
    rep = run(key, start, prev0, [recs[j] for j in kept], anchored)
    assert rep.missing == missing, rep
    assert rep.unverifiable == unverifiable, rep
    assert rep.altered == rep.reordered == rep.corrupt == []
    assert rep.ok == (not missing)
    assert (rep.first_seq, rep.last_seq) == (start + kept[0], start + kept[-1])


@SETTINGS
@given(chains(), st.data())
def test_one_edit(c, data):
    key, start, n, prev0, recs, anchored = c
    i = data.draw(st.integers(0, n - 1))
    off = data.draw(st.integers(0, 27))
    value = data.draw(st.integers(0, 255).filter(lambda v: v != recs[i][off]))
    recs = list(recs)
    recs[i] = o_recrc(recs[i][:off] + bytes([value]) + recs[i][off + 1:])
    rep = run(key, start, prev0, recs, anchored)
    has_next = i + 1 < n
    # In an unanchored chain (ring wrapped, no anchor) the first record is not
    # authenticated, so neither is the mac the second record hangs off: an edit of
    # record 1 cannot be told from an edit of record 0's mac field.
    unanchored = not anchored and start > 1
    trusted_pred = not unanchored or i >= 2
    assert rep.corrupt == []
    assert set(rep.altered) <= {i}  # an intact record is never called altered
    if off >= 20:  # the mac field: i is altered; i + 1 can no longer be checked
        assert rep.altered == ([i] if trusted_pred else [])
        expect = [i + 1] if has_next else []
        if unanchored and i == 1:
            expect = [1] + expect
        assert rep.unverifiable == expect
        assert rep.missing == rep.reordered == []
    elif off >= 4:  # time, code, flags, detail, key id
        assert rep.altered == ([i] if trusted_pred else [])
        assert rep.unverifiable == ([1] if unanchored and i == 1 else [])
        assert rep.missing == rep.reordered == []
    elif has_next:  # seq, corrected through the successor's MAC
        assert rep.altered == [i] and rep.seqs[i] == start + i
        assert rep.unverifiable == rep.missing == rep.reordered == []
    # detected, except: the first record of an unanchored chain (its head fields, or
    # its mac when nothing follows), and the seq of a lone record
    undetectable = not anchored and i == 0 and (
        (start > 1 and (4 <= off < 20 or not has_next)) or (off < 4 and not has_next))
    assert rep.ok == undetectable, rep


@SETTINGS
@given(chains(min_size=2), st.data())
def test_swaps(c, data):
    key, start, n, prev0, recs, anchored = c
    order = list(range(n))
    swaps = data.draw(st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, n - 1)),
                               min_size=1, max_size=3))
    for a, b in swaps:
        order[a], order[b] = order[b], order[a]
    rep = run(key, start, prev0, [recs[j] for j in order], anchored)
    assert rep.missing == rep.altered == rep.unverifiable == rep.corrupt == []
    assert len(rep.reordered) == n - lis_len(order)  # the fewest out of place
    a, b = sorted(swaps[0])
    if len(swaps) == 1 and b - a >= 3:  # then the records in place are unambiguous
        assert rep.reordered == [a, b]
    assert rep.ok == (order == sorted(order))
    assert rep.verified == (n if rep.anchored else n - 1)


@SETTINGS
@given(chains(min_size=2), st.data())
def test_truncation_and_duplicates(c, data):
    key, start, n, prev0, recs, anchored = c
    cut = data.draw(st.integers(1, n))
    rep = run(key, start, prev0, recs[:cut], anchored)
    assert rep.ok and rep.last_seq == start + cut - 1
    j = data.draw(st.integers(0, n - 1))
    at = data.draw(st.integers(0, n))
    rep = run(key, start, prev0, recs[:at] + [recs[j]] + recs[at:], anchored)
    assert rep.reordered == ([j + 1] if at == j else [at])  # the copy read out of place
    assert rep.missing == rep.altered == rep.unverifiable == []
