# protocol.revocation: updates (verify, wrong lock, rollback, malformed
# fields), pruning, overflow to a site-wide cut-off, and the stored form.
# The independent update in tests/vectors/cose.json is made by
# tests/make_vectors.py with cbor2 and hmac.
# Runs on CPython (pytest) and MicroPython (tests/mpy_runner.py).
# protocol modules first, while the heap is empty (-X heapsize=96K).
from protocol import revocation as rev  # noqa: I001
from protocol import cbor, clock, cose, reasons
from protocol.token import MAX_LIFETIME, SKEW, Claims

import testvectors

u = testvectors.unhex
V = testvectors.load("cose")
LOCK = V["lock_id"]
KEY = u(V["update_key"])
T = V["claims"]["iat"]  # a POSIX time in 2026
LT = clock.from_unix(T)
VECTOR = V["revocation_update"]
del V  # keep the heap small on MicroPython (-X heapsize=96K)


def reason_of(fn, *args):
    try:
        fn(*args)
    except rev.RevocationError as exc:
        assert isinstance(exc, ValueError)
        return exc.reason
    return None


def update_payload(**changes):
    p = {0: 1, 1: LOCK, 2: 3, 3: T, 4: 0, 5: [[1, "staff-a", T - 10], [2, b"tok-1", T + 3600]]}
    for k, v in changes.items():
        key = int(k[1:])
        if v is DROP:
            del p[key]
        else:
            p[key] = v
    return p


DROP = object()


def signed(payload_map, key=KEY):
    return cose.mac0_create(cbor.dumps(payload_map), key)


def decoded(**changes):
    return rev.decode_update(signed(update_payload(**changes)), LOCK, KEY)


def claims(sub="staff-a", iat=LT - 100, cti=b"tok-9"):
    return Claims("site", sub, (LOCK,), iat + 3600, iat, iat, cti, ("open",), cti)


def test_independent_update_verifies():
    r = VECTOR
    rl = rev.decode_update(u(r["update"]), LOCK, KEY)
    assert rl.version == r["version"]
    assert rl.issued == clock.from_unix(r["issued"]) and rl.cutoff == clock.from_unix(r["cutoff"])
    assert rl.staff == {s: clock.from_unix(t) for s, t in r["staff"]}
    assert rl.tokens == {u(c): clock.from_unix(t) for c, t in r["tokens"]}


def test_encode_decode_round_trip():
    data = rev.encode_update(LOCK, 5, T, T - 3600, {"staff-b": T - 1, "staff-a": T - 2},
                             {b"tok": T + 60}, KEY)
    rl = rev.decode_update(data, LOCK, KEY)
    assert (rl.version, rl.issued, rl.cutoff) == (5, LT, LT - 3600)
    assert rl.staff == {"staff-a": LT - 2, "staff-b": LT - 1} and rl.tokens == {b"tok": LT + 60}
    none = rev.decode_update(rev.encode_update(LOCK, 1, T, 0, {}, {}, KEY), LOCK, KEY)
    assert none.cutoff == 0 and len(none) == 0


def test_wrong_lock_or_key():
    data = rev.encode_update(LOCK, 5, T, 0, {}, {}, KEY)
    assert reason_of(rev.decode_update, data, "lock-0002", KEY) == reasons.WRONG_LOCK
    assert reason_of(rev.decode_update, data, LOCK, bytes(32)) == reasons.BAD_SIGNATURE
    bad = bytearray(data)
    bad[-1] ^= 1
    assert reason_of(rev.decode_update, bytes(bad), LOCK, KEY) == reasons.BAD_SIGNATURE
    for lock in (None, 1, b"lock-0001", ["lock-0001"]):
        assert reason_of(rev.decode_update, signed(update_payload(k1=lock)), LOCK, KEY) == \
            reasons.WRONG_LOCK


def test_malformed_updates():
    big = 2 ** 64 - 1
    bad = [
        {"k0": DROP}, {"k0": 2}, {"k0": True}, {"k0": "revocation"},
        {"k2": DROP}, {"k2": 0}, {"k2": -1}, {"k2": True}, {"k2": "3"}, {"k2": big},
        {"k2": rev.MAX_VERSION + 1},
        {"k3": DROP}, {"k3": True},
        {"k3": "now"},
        {"k4": True}, {"k4": b""},
        {"k5": DROP}, {"k5": {}}, {"k5": "x"}, {"k5": None},
        {"k5": [[1, "s"]]}, {"k5": [[1, "s", T, 0]]}, {"k5": ["s"]}, {"k5": [None]},
        {"k5": [[3, "s", T]]}, {"k5": [[True, "s", T]]}, {"k5": [[1, b"s", T]]},
        {"k5": [[2, "tok", T]]}, {"k5": [[1, "", T]]}, {"k5": [[2, b"", T]]},
        {"k5": [[1, "s" * 65, T]]}, {"k5": [[2, b"t" * 33, T]]},
        {"k5": [[1, "s", True]]}, {"k5": [[1, "s", None]]},
        {"k5": [[1, "s", "T"]]}, {"k5": [[1, ["s"], T]]},
    ]
    for changes in bad:
        data = signed(update_payload(**changes))
        assert reason_of(rev.decode_update, data, LOCK, KEY) == reasons.MALFORMED, changes
    for payload in (b"", b"\xff", cbor.dumps([1, 2]), cbor.dumps(7)):
        data = cose.mac0_create(payload, KEY)
        assert reason_of(rev.decode_update, data, LOCK, KEY) == reasons.MALFORMED, payload
    for data in (b"", b"\x00\x01", None, "update", cbor.dumps(cbor.Tag(17, [1, 2, 3, 4]))):
        assert reason_of(rev.decode_update, data, LOCK, KEY) == reasons.MALFORMED, data


def test_times_outside_the_lock_bound_are_out_of_range():
    # protocol/clock.py's one bound: 2020-01-01 .. 2054-01-09T13:37:03Z.
    big = 2 ** 64 - 1
    top = clock.UNIX_AT_LOCK_EPOCH + clock.MAX_LOCK_TIME
    past_2088 = clock.UNIX_AT_LOCK_EPOCH + 2 ** 31 + 1000
    for t in (-5, 1000, clock.UNIX_AT_LOCK_EPOCH - 1, top + 1, past_2088, big):
        for changes in ({"k3": t}, {"k5": [[1, "s", t]]}, {"k5": [[2, b"t", t]]}):
            data = signed(update_payload(**changes))
            assert reason_of(rev.decode_update, data, LOCK, KEY) == reasons.TIME_OUT_OF_RANGE, \
                (changes, t)
        if t > 0:  # 0 is "no cut-off"
            data = signed(update_payload(k4=t))
            assert reason_of(rev.decode_update, data, LOCK, KEY) == reasons.TIME_OUT_OF_RANGE, t
    rl = rev.decode_update(signed(update_payload(k3=top, k5=[[1, "s", top]])), LOCK, KEY)
    assert rl.issued == clock.MAX_LOCK_TIME and rl.staff == {"s": clock.MAX_LOCK_TIME}


def test_time_update_is_not_a_revocation_update():
    from protocol import timeupdate

    data = timeupdate.encode(LOCK, T, KEY)
    assert reason_of(rev.decode_update, data, LOCK, KEY) == reasons.MALFORMED
    # ... and a revocation update is not a time update.
    assert testvectors.raises(timeupdate.TimeUpdateError, timeupdate.decode,
                              rev.encode_update(LOCK, 1, T, 0, {}, {}, KEY), LOCK, KEY)


def test_duplicate_entries_keep_the_latest_cutoff():
    rl = decoded(k5=[[1, "s", T - 10], [1, "s", T - 20], [2, b"t", T], [2, b"t", T + 5]])
    assert rl.staff == {"s": LT - 10} and rl.tokens == {b"t": LT + 5}


def test_check():
    rl = rev.RevocationList(1, LT, LT - 1000, {"staff-a": LT - 50}, {b"tok-1": LT + 10})
    assert rl.check(claims(iat=LT - 1001)) == reasons.ISSUED_BEFORE_CUTOFF
    assert rl.check(claims(iat=LT - 1000, sub="x")) == reasons.ALLOW
    assert rl.check(claims(iat=LT - 51)) == reasons.REVOKED
    assert rl.check(claims(iat=LT - 50)) == reasons.ALLOW
    assert rl.check(claims(sub="x", cti=b"tok-1")) == reasons.REVOKED
    assert rev.RevocationList().check(claims(iat=0)) == reasons.ALLOW


def test_decide_with_a_revocation_list():
    # protocol.token.decide with the real list: staff cut-off, token id, site cut-off.
    c = claims(iat=LT)
    assert tok_decide(c, LT, rev.RevocationList(staff={"staff-a": LT + 1})) == reasons.REVOKED
    assert tok_decide(c, LT, rev.RevocationList(staff={"staff-a": LT})) == reasons.ALLOW
    assert tok_decide(c, LT, rev.RevocationList(staff={"staff-b": LT + 1})) == reasons.ALLOW
    assert tok_decide(c, LT, rev.RevocationList(tokens={b"tok-9": LT})) == reasons.REVOKED
    assert tok_decide(c, LT, rev.RevocationList(tokens={b"tok-8": LT})) == reasons.ALLOW
    assert tok_decide(c, LT, rev.RevocationList(cutoff=LT + 1)) == \
        reasons.ISSUED_BEFORE_CUTOFF
    assert tok_decide(c, LT, rev.RevocationList(cutoff=LT)) == reasons.ALLOW
    both = rev.RevocationList(cutoff=LT + 1, tokens={b"tok-9": LT})
    assert tok_decide(c, LT, both) == reasons.ISSUED_BEFORE_CUTOFF
    # Revoked is reported even when the token has also expired.
    late = c.exp + SKEW + 10
    assert tok_decide(c, late, rev.RevocationList(tokens={b"tok-9": LT})) == reasons.REVOKED
    assert tok_decide(c, late, rev.RevocationList()) == reasons.EXPIRED


def test_apply_and_rollback():
    current = rev.RevocationList()
    new = rev.apply(current, decoded(k2=3), LT)
    assert new.version == 3 and new.staff == {"staff-a": LT - 10}
    assert reason_of(rev.apply, new, decoded(k2=3), LT) == reasons.ROLLBACK
    assert reason_of(rev.apply, new, decoded(k2=2), LT) == reasons.ROLLBACK
    assert rev.apply(new, decoded(k2=4), LT).version == 4


def test_cutoff_never_goes_down():
    current = rev.RevocationList(2, LT - 100, LT - 50)
    new = rev.apply(current, decoded(k2=3, k4=0), LT)
    assert new.cutoff == LT - 50
    new = rev.apply(new, decoded(k2=4, k4=T - 10), LT)
    assert new.cutoff == LT - 10


def test_prune():
    spent = MAX_LIFETIME + SKEW
    rl = rev.RevocationList(1, 0, 0, {"a": 1000, "b": 2000})
    rl.prune(1000 + spent)  # at the boundary the entry is kept
    assert set(rl.staff) == {"a", "b"}
    rl.prune(1000 + spent + 1)
    assert set(rl.staff) == {"b"}
    rl = rev.RevocationList(1, 0, 0, None, {b"x": 5000, b"y": 9000})
    rl.prune(5000 + SKEW)
    assert len(rl.tokens) == 2
    rl.prune(5000 + SKEW + 1)
    assert set(rl.tokens) == {b"y"}
    rl.prune(9000 + SKEW + 1)
    assert len(rl) == 0
    # Why that is safe: a token the staff entry covered was issued before its
    # cut-off, so it is refused as expired by the time the entry goes.
    c = claims(sub="b", iat=1999)
    c.exp = c.iat + MAX_LIFETIME
    assert tok_decide(c, 2000 + spent + 1) == reasons.EXPIRED


def tok_decide(c, now, rl=None):
    from protocol.token import decide
    return decide(c, LOCK, now, True, rl, "open")


def test_apply_prunes_spent_entries():
    now = LT + MAX_LIFETIME + SKEW + 100
    new = rev.apply(rev.RevocationList(), decoded(), now)
    assert new.staff == {} and new.tokens == {}


def many(n, kind=1):
    if kind == 1:
        return [[1, "staff-%d" % i, T - i] for i in range(n)]
    return [[2, b"tok-%d" % i, T + 3600] for i in range(n)]


def overflow(n, kind=1, extra=None):
    # Only the update's bytes stay alive while it is decoded (96K heap).
    data = signed(update_payload(k5=many(n, kind) + (extra or [])))
    gc_collect()
    return rev.apply(rev.RevocationList(), rev.decode_update(data, LOCK, KEY), LT)


def gc_collect():
    try:
        import gc
        gc.collect()
    except ImportError:
        pass


def test_overflow_fits():
    fits = overflow(rev.MAX_ENTRIES)
    assert len(fits) == rev.MAX_ENTRIES and fits.cutoff == 0


def test_overflow_raises_cutoff():
    over = overflow(rev.MAX_ENTRIES + 1)
    assert len(over) == 0 and over.cutoff == LT + 1  # past the update's issue time
    # Every token the dropped entries covered is still refused.
    for i in (0, 5, rev.MAX_ENTRIES):
        assert over.check(claims(sub="staff-%d" % i, iat=LT - i - 1)) != reasons.ALLOW
    over = overflow(rev.MAX_ENTRIES + 1, 2)
    assert len(over) == 0 and over.check(claims(cti=b"tok-3", iat=LT)) != reasons.ALLOW


def test_overflow_with_a_later_staff_cutoff():
    # A staff cut-off later than the issue time raises the site cut-off that far.
    over = overflow(rev.MAX_ENTRIES, 1, [[1, "late", T + 500]])
    assert over.cutoff == LT + 500


def test_spent_entries_do_not_overflow():
    # Spent entries are pruned first, so they do not cause an overflow.
    old = overflow(rev.MAX_ENTRIES, 1, [[1, "old", T - MAX_LIFETIME - SKEW - 10]])
    assert old.cutoff == 0 and len(old) == rev.MAX_ENTRIES


def test_storage_round_trip():
    rl = rev.RevocationList(9, LT, LT - 5, {"staff-a": LT - 1, "b": 7}, {b"t1": LT + 60})
    back = rev.RevocationList.from_bytes(rl.to_bytes())
    assert (back.version, back.issued, back.cutoff) == (9, LT, LT - 5)
    assert back.staff == rl.staff and back.tokens == rl.tokens
    empty = rev.RevocationList.from_bytes(rev.RevocationList().to_bytes())
    assert empty.version == 0 and len(empty) == 0


def test_stored_garbage_is_refused():
    big = 2 ** 64 - 1
    bad = [
        b"", b"\xff", b"\x80", cbor.dumps("abcd"), cbor.dumps({1: 2, 3: 4, 5: 6, 7: 8}),
        cbor.dumps([1, 2, 3]), cbor.dumps([1, 2, 3, 4, 5]), cbor.dumps(["1", 0, 0, []]),
        cbor.dumps([True, 0, 0, []]), cbor.dumps([-1, 0, 0, []]), cbor.dumps([big, 0, 0, []]),
        cbor.dumps([1, -1, 0, []]), cbor.dumps([1, 0, True, []]), cbor.dumps([1, 0, 0, {}]),
        cbor.dumps([1, 0, 0, "entries"]), cbor.dumps([1, 0, 0, [1, 2, 3]]),
        cbor.dumps([1, 0, 0, [[1, "s"]]]), cbor.dumps([1, 0, 0, [[1, ["s"], 3]]]),
        cbor.dumps([1, 0, 0, [[1, {1: 2}, 3]]]), cbor.dumps([1, 0, 0, [[3, "s", 3]]]),
        cbor.dumps([1, 0, 0, [[1, b"s", 3]]]), cbor.dumps([1, 0, 0, [[2, "t", 3]]]),
        cbor.dumps([1, 0, 0, [[1, "s", -3]]]), cbor.dumps([1, 0, 0, [[1, "s", big]]]),
        cbor.dumps([1, 0, 0, [[1, "s%d" % i, 1] for i in range(rev.MAX_ENTRIES + 1)]]),
        None, "text", 5,
    ]
    for data in bad:
        assert reason_of(rev.RevocationList.from_bytes, data) == reasons.MALFORMED, data


def test_random_bytes_only_raise_revocation_error():
    # A small deterministic generator (the same on both interpreters).
    x = 12345
    good = rev.RevocationList(3, LT, 0, {"s": 1}, {b"t": 2}).to_bytes()
    for n in range(300):
        data = bytearray(good)
        for _ in range(1 + n % 3):
            x = (x * 1103515245 + 12345) & 0x7FFFFFFF
            data[x % len(data)] = (x >> 8) & 0xFF
        try:
            rev.RevocationList.from_bytes(bytes(data))
        except rev.RevocationError:
            pass
        try:
            rev.decode_update(bytes(data), LOCK, KEY)
        except rev.RevocationError:
            pass


def test_repr_lists_no_entries():
    rl = rev.RevocationList(2, LT, 0, {"staff-secret-name": 1}, {b"\x99" * 8: 2})
    text = repr(rl)
    assert "v2" in text and "staff-secret-name" not in text and "99" not in text
