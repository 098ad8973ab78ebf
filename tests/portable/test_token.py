# protocol.token: CWT claims parsing, token verification under both suites,
# and every reason the access decision can give, with its boundaries.
# The Ed25519 token is made by tests/make_vectors.py with `cryptography` and
# cbor2 (tests/vectors/cose.json), never by our own code.
# Runs on CPython (pytest) and MicroPython (tests/mpy_runner.py).
# The protocol modules first, while the heap is unfragmented (-X heapsize=96K),
# Ed25519 included (as an Ed25519 lock does at boot).
from protocol import token as tok  # noqa: I001
from protocol import ed25519  # noqa: F401
from protocol import cbor, clock, cose, reasons

import testvectors

u = testvectors.unhex
V = testvectors.load("cose")
KEY = u(V["token_mac_key"])
PK = u(V["ed25519_public"])
C = V["claims"]
LOCK = V["lock_id"]
CTI = u(C["cti"])
TOKENS = {k: u(V[k]) for k in (
    "payload", "mac0", "mac0_cwt_tag", "mac0_multi_aud", "mac0_alg_4", "sign1", "sign1_alg_m19",
    "sign1_alg_5", "ed25519_other_public")}
del V  # the heap is small on MicroPython (-X heapsize=96K)
SKEW = tok.SKEW


def claims_map(**changes):
    c = {1: C["iss"], 2: C["sub"], 3: LOCK, 4: C["exp"], 5: C["nbf"], 6: C["iat"], 7: CTI,
         8: {3: CTI}, 9: C["scope"]}
    for k, v in changes.items():
        key = int(k[1:])
        if v is DROP:
            del c[key]
        else:
            c[key] = v
    return c


DROP = object()


def with_claim(key, value):
    c = claims_map()
    c[key] = value
    return c


def parse(**changes):
    return tok.parse_claims(cbor.dumps(claims_map(**changes)))


def malformed(**changes):
    try:
        parse(**changes)
    except tok.TokenError as exc:
        return exc.reason == reasons.MALFORMED
    return False


def reason_of(fn, *args):
    try:
        fn(*args)
    except tok.TokenError as exc:
        assert isinstance(exc, ValueError)
        return exc.reason
    return None


# ---------------------------------------------------------------- claims

def test_parse_claims():
    c = parse()
    assert c.iss == C["iss"] and c.sub == C["sub"] and c.aud == (LOCK,)
    assert c.exp == clock.from_unix(C["exp"]) and c.nbf == clock.from_unix(C["nbf"])
    assert c.iat == clock.from_unix(C["iat"]) and c.cti == CTI and c.kid == CTI
    assert c.scope == ("open", "log") and c.alarm is False
    assert parse(k3=["gate", LOCK]).aud == ("gate", LOCK)
    assert parse(k5=DROP).nbf == c.iat  # nbf defaults to iat
    assert parse(k9="  open   admin ").scope == ("open", "admin")
    assert parse(k9="").scope == ()
    assert tok.parse_claims(cbor.dumps(with_claim(-65537, True))).alarm is True
    # Unknown claims are ignored.
    assert tok.parse_claims(cbor.dumps(with_claim(99, "x"))).sub == C["sub"]


def test_encode_claims_round_trip():
    payload = tok.encode_claims(C["iss"], C["sub"], LOCK, C["exp"], C["nbf"], C["iat"], CTI,
                                ["open", "log"], alarm=True)
    c = tok.parse_claims(payload)
    assert (c.iss, c.sub, c.aud, c.cti, c.scope, c.alarm) == (
        C["iss"], C["sub"], (LOCK,), CTI, ("open", "log"), True)
    assert cbor.loads(payload) == with_claim(-65537, True)


def test_missing_claims_are_malformed():
    for k in (1, 2, 3, 4, 6, 7, 8, 9):
        assert malformed(**{"k%d" % k: DROP}), k


def out_of_range(**changes):
    try:
        parse(**changes)
    except tok.TokenError as exc:
        return exc.reason == reasons.TIME_OUT_OF_RANGE
    return False


def test_wrong_typed_claims_are_malformed():
    for t in (True, False, "1767254400", b"\x01", None, [1]):
        assert malformed(k4=t), t  # exp
        assert malformed(k6=t), t  # iat
        assert malformed(k5=t), t  # nbf
    for aud in ([], [LOCK, 5], "", "x" * 65, b"lock", 7, {1: LOCK}, ["a"] * 17):
        assert malformed(k3=aud), aud
    for cti in (b"", b"x" * 33, "cti", 7, True):
        assert malformed(k7=cti, k8={3: cti}), cti
    for scope in (b"open", 7, ["open"], None, "o" * 65):
        assert malformed(k9=scope), scope
    for cnf in ({}, {3: "kid"}, {3: b"other"}, {1: {1: 4}}, {3: CTI, 1: {1: 4}}, [CTI], CTI):
        assert malformed(k8=cnf), cnf
    for text in ("", "x" * 65, b"site", 1, None, True):
        assert malformed(k1=text), text
        assert malformed(k2=text), text
    bad_alarm = cbor.dumps(with_claim(-65537, 1))
    assert reason_of(tok.parse_claims, bad_alarm) == reasons.MALFORMED


def test_times_outside_the_lock_bound_are_out_of_range():
    # Integers the lock cannot hold as lock time: before 2020, or after the
    # small-int bound (2054-01-09T13:37:03Z); the lock's clock never goes there.
    top = clock.UNIX_AT_LOCK_EPOCH + clock.MAX_LOCK_TIME
    for t in (-1, 0, 1000, clock.UNIX_AT_LOCK_EPOCH - 1, top + 1,
              clock.UNIX_AT_LOCK_EPOCH + 2 ** 31 + 1000, 2 ** 63, 2 ** 64 - 1):
        assert out_of_range(k4=t), t  # exp
        assert out_of_range(k6=t), t  # iat
        assert out_of_range(k5=t), t  # nbf
    # The bound itself is a time the lock holds.
    c = parse(k4=top, k5=top - 3600, k6=top - 3600)
    assert c.exp == clock.MAX_LOCK_TIME and c.iat == clock.MAX_LOCK_TIME - 3600
    assert parse(k6=clock.UNIX_AT_LOCK_EPOCH, k5=clock.UNIX_AT_LOCK_EPOCH).iat == 0


def test_bad_claims_sets_are_malformed():
    float_exp = b"\xa1\x04\xfb\x41\xda\x55\xc7\x10\x00\x00\x00"  # {4: 1767254400.0}
    for payload in (b"", b"\xff", cbor.dumps([1, 2]), cbor.dumps("claims"), float_exp,
                    cbor.dumps(claims_map()) + b"\x00", None, "text"):
        assert reason_of(tok.parse_claims, payload) == reasons.MALFORMED, payload


# ---------------------------------------------------------------- verification

def test_verify_hmac_suite():
    c = tok.verify(TOKENS["mac0"], tok.SUITE_HMAC, KEY)
    assert c.sub == C["sub"] and c.cti == CTI
    assert tok.verify(TOKENS["mac0_cwt_tag"], tok.SUITE_HMAC, KEY).cti == CTI
    assert tok.verify(TOKENS["mac0_multi_aud"], tok.SUITE_HMAC, KEY).aud == ("gate-0001", LOCK)
    assert reason_of(tok.verify, TOKENS["mac0"], tok.SUITE_HMAC, bytes(32)) == reasons.BAD_SIGNATURE
    data = cose.mac0_create(cbor.dumps(claims_map()), KEY)
    assert tok.verify(data, tok.SUITE_HMAC, KEY).sub == C["sub"]


def test_verify_ed25519_suite():
    c = tok.verify(TOKENS["sign1"], tok.SUITE_ED25519, PK)
    assert c.sub == C["sub"] and c.exp == clock.from_unix(C["exp"])
    assert tok.verify(TOKENS["sign1_alg_m19"], tok.SUITE_ED25519, PK).cti == CTI
    other = TOKENS["ed25519_other_public"]
    assert reason_of(tok.verify, TOKENS["sign1"], tok.SUITE_ED25519, other) == reasons.BAD_SIGNATURE


def test_suite_is_the_locks_choice():
    # A token of the other kind is refused whatever key it is tried with.
    assert reason_of(tok.verify, TOKENS["sign1"], tok.SUITE_HMAC, KEY) == reasons.UNSUPPORTED
    assert reason_of(tok.verify, TOKENS["sign1"], tok.SUITE_HMAC, PK) == reasons.UNSUPPORTED
    assert reason_of(tok.verify, TOKENS["mac0"], tok.SUITE_ED25519, PK) == reasons.UNSUPPORTED
    forged = cose.mac0_create(TOKENS["payload"], PK)  # MAC keyed with the public key
    assert reason_of(tok.verify, forged, tok.SUITE_ED25519, PK) == reasons.UNSUPPORTED
    assert reason_of(tok.verify, TOKENS["mac0_alg_4"], tok.SUITE_HMAC, KEY) == reasons.UNSUPPORTED
    assert reason_of(tok.verify, TOKENS["sign1_alg_5"], tok.SUITE_ED25519, PK) == reasons.UNSUPPORTED
    assert reason_of(tok.verify, TOKENS["mac0"], "none", KEY) == reasons.UNSUPPORTED
    assert reason_of(tok.verify, TOKENS["mac0"], None, KEY) == reasons.UNSUPPORTED


def test_malformed_tokens():
    for data in (b"", b"\x00", b"\xd1\x80", cbor.dumps(cbor.Tag(17, [])), None, "token"):
        assert reason_of(tok.verify, data, tok.SUITE_HMAC, KEY) == reasons.MALFORMED
    # A valid MAC over claims that do not parse.
    data = cose.mac0_create(cbor.dumps(claims_map(k4=True)), KEY)
    assert reason_of(tok.verify, data, tok.SUITE_HMAC, KEY) == reasons.MALFORMED
    data = cose.mac0_create(b"\xff", KEY)
    assert reason_of(tok.verify, data, tok.SUITE_HMAC, KEY) == reasons.MALFORMED


def test_tampered_token_refused():
    # Our tokens have no unprotected header, so every byte is covered by the MAC
    # or refused by the structure checks (an unprotected kid would not be).
    data = cose.mac0_create(TOKENS["payload"], KEY)
    for i in range(0, len(data), 3):
        bad = bytearray(data)
        bad[i] ^= 0x20
        r = reason_of(tok.verify, bytes(bad), tok.SUITE_HMAC, KEY)
        assert r in (reasons.MALFORMED, reasons.BAD_SIGNATURE, reasons.UNSUPPORTED), (i, r)


def test_errors_carry_no_secrets():
    try:
        tok.verify(TOKENS["mac0"], tok.SUITE_HMAC, bytes(32))
    except tok.TokenError as exc:
        text = str(exc) + repr(exc)
    assert KEY.hex()[:12] not in text and CTI.hex()[:12] not in text
    assert CTI.hex()[:12] not in repr(parse())


# ---------------------------------------------------------------- decision

T0 = 200000000  # a lock time (2026)


def claims(iat=T0, nbf=T0 + 600, exp=T0 + 600 + 8 * 3600, sub="staff-anna", aud=(LOCK,),
           scope=("open", "log"), cti=CTI, iss="site-norrtalje"):
    return tok.Claims(iss, sub, aud, exp, nbf, iat, cti, scope, cti)


def decide(c, now, trusted=True, rl=None, action="open", lock=LOCK, issuer="site-norrtalje"):
    return tok.decide(c, lock, now, trusted, rl, action, issuer)


def test_allow():
    c = claims()
    assert decide(c, c.nbf) == reasons.ALLOW
    assert decide(c, c.nbf, action="log") == reasons.ALLOW
    assert tok.decide(c, LOCK, c.nbf, True, None, "open") == reasons.ALLOW  # issuer not pinned


def test_expired_with_skew_boundary():
    c = claims()
    assert decide(c, c.exp - 1) == reasons.ALLOW
    assert decide(c, c.exp + SKEW - 1) == reasons.ALLOW
    assert decide(c, c.exp + SKEW) == reasons.EXPIRED
    assert decide(c, c.exp + 10 ** 6) == reasons.EXPIRED


def test_not_yet_valid_with_skew_boundary():
    c = claims()
    assert decide(c, c.nbf - SKEW) == reasons.ALLOW
    assert decide(c, c.nbf - SKEW - 1) == reasons.NOT_YET_VALID
    assert decide(c, 0) == reasons.NOT_YET_VALID


def test_an_issue_time_in_the_future_is_not_yet_valid():
    # A staff block covers tokens issued before T: a future iat would escape it.
    c = claims(iat=T0 + 3600, nbf=T0 - 600, exp=T0 + 7200)
    assert decide(c, T0 + 3600 - SKEW) == reasons.ALLOW
    assert decide(c, T0) == reasons.NOT_YET_VALID
    # With an untrusted clock the lock takes iat as evidence of the time instead.
    assert decide(c, T0 + 3600, trusted=False) == reasons.ALLOW


def test_wrong_lock_and_issuer():
    assert decide(claims(), T0 + 700, lock="lock-0002") == reasons.WRONG_LOCK
    assert decide(claims(aud=("gate", LOCK)), T0 + 700) == reasons.ALLOW
    assert decide(claims(aud=("gate",)), T0 + 700) == reasons.WRONG_LOCK
    assert decide(claims(iss="elsewhere"), T0 + 700) == reasons.WRONG_ISSUER


def test_scope():
    c = claims(scope=("open",))
    assert decide(c, T0 + 700, action="log") == reasons.SCOPE
    assert decide(c, T0 + 700, action="admin") == reasons.SCOPE
    assert decide(claims(scope=()), T0 + 700) == reasons.SCOPE
    assert decide(claims(scope=("opener",)), T0 + 700) == reasons.SCOPE


def test_lifetime():
    day = tok.MAX_LIFETIME
    assert decide(claims(nbf=T0, exp=T0 + day), T0 + 1) == reasons.ALLOW
    assert decide(claims(nbf=T0, exp=T0 + day + 1), T0 + 1) == reasons.LIFETIME_TOO_LONG
    # Issued long before its window: exp - iat is bounded too (revocation relies on it).
    late = claims(iat=T0, nbf=T0 + day, exp=T0 + day + 60)
    assert decide(late, T0 + day + 1) == reasons.LIFETIME_TOO_LONG
    assert decide(claims(iat=T0, nbf=T0 + 3600, exp=T0 + day), T0 + 3601) == reasons.ALLOW
    # An empty window is malformed, even though the skew would cover it.
    assert decide(claims(nbf=T0 + 600, exp=T0 + 600), T0 + 600) == reasons.MALFORMED
    assert decide(claims(nbf=T0 + 600, exp=T0 + 500), T0 + 550) == reasons.MALFORMED


class Revocations:
    """Stands in for protocol.revocation.RevocationList, whose check() (staff
    cut-off, token id, site-wide cut-off) is tested with decide() in
    test_revocation.py; importing it here too would crowd the 96K heap."""

    def __init__(self, reason=reasons.ALLOW):
        self.reason = reason
        self.seen = []

    def check(self, c):
        self.seen.append(c)
        return self.reason


def test_revocation_refusals_are_passed_on():
    c = claims()
    for r in (reasons.REVOKED, reasons.ISSUED_BEFORE_CUTOFF):
        rl = Revocations(r)
        assert decide(c, c.nbf, rl=rl) == r and rl.seen == [c]
    assert decide(c, c.nbf, rl=Revocations()) == reasons.ALLOW


def test_clock_untrusted():
    c = claims()
    # `now` is the last trusted time, a lower bound: opening still works for a
    # token valid at that bound; log and admin need a trusted clock.
    assert decide(c, c.nbf, trusted=False) == reasons.ALLOW
    assert decide(c, c.nbf - SKEW, trusted=False) == reasons.ALLOW
    assert decide(c, c.nbf, trusted=False, action="log") == reasons.CLOCK_UNTRUSTED
    admin = claims(scope=("open", "admin"))
    assert decide(admin, c.nbf, trusted=False, action="admin") == reasons.CLOCK_UNTRUSTED
    assert decide(c, c.exp + SKEW, trusted=False) == reasons.EXPIRED
    assert decide(c, c.nbf - SKEW - 1, trusted=False) == reasons.NOT_YET_VALID


def test_reason_priority():
    c = claims()
    rl = Revocations(reasons.REVOKED)
    # A blocked key is logged as revoked, whatever else is wrong with its token.
    assert decide(c, c.exp + SKEW, rl=rl) == reasons.REVOKED
    assert decide(c, 0, rl=rl, action="admin") == reasons.REVOKED
    assert decide(c, c.nbf, rl=rl, lock="lock-0002") == reasons.WRONG_LOCK
    assert decide(claims(scope=("open",)), 0, action="log") == reasons.SCOPE
    assert decide(c, c.exp + SKEW, trusted=False, action="log") == reasons.EXPIRED


def test_decision_on_vector_tokens():
    for name, suite, key in (("mac0", tok.SUITE_HMAC, KEY), ("sign1", tok.SUITE_ED25519, PK)):
        c = tok.verify(TOKENS[name], suite, key)
        assert decide(c, clock.from_unix(C["nbf"])) == reasons.ALLOW
        assert decide(c, clock.from_unix(C["exp"]) + SKEW) == reasons.EXPIRED
