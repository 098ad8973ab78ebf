# protocol.cose: COSE_Mac0 / COSE_Sign1 structure, algorithm pinning, crit,
# and tokens made by an independent implementation (tests/vectors/cose.json,
# written by tests/make_vectors.py with cbor2, hmac and cryptography).
# Runs on CPython (pytest) and MicroPython (tests/mpy_runner.py).
# Ed25519 first, while the heap is unfragmented (as an Ed25519 lock does at boot).
from protocol import ed25519  # noqa: F401, I001

import testvectors

from protocol import cbor, cose
from protocol.cbor import Tag

V = testvectors.load("cose")
u = testvectors.unhex
KEY = u(V["token_mac_key"])
PAYLOAD = u(V["payload"])
PK = u(V["ed25519_public"])


def refused(data, key=KEY, verify=None):
    """True if verification raises COSEError (and nothing else)."""
    return testvectors.raises(cose.COSEError, verify or cose.mac0_verify, data, key)


def error_of(fn, *args):
    try:
        fn(*args)
    except Exception as exc:  # noqa: BLE001 - the test looks at its type
        return exc
    return None


def raw_mac0(protected, unprotected, payload=PAYLOAD, key=KEY, tag_len=32, cose_tag=17):
    # Build a Mac0 by hand with a correct MAC over whatever protected bytes we give.
    p = cbor.dumps(protected) if isinstance(protected, dict) else protected
    mac = cose.crypto.hmac_sha256(key, cbor.dumps(["MAC0", p, b"", payload]))
    return cbor.dumps(Tag(cose_tag, [p, unprotected, payload, mac[:tag_len]]))


def test_mac0_round_trip():
    data = cose.mac0_create(PAYLOAD, KEY)
    assert cose.mac0_verify(data, KEY) == PAYLOAD
    msg = cose.decode(data)
    assert msg.cose_tag == cose.TAG_MAC0 and msg.alg == cose.ALG_HMAC_256_256
    assert msg.kid is None and msg.protected_bytes == b"\xa1\x01\x05"
    with_kid = cose.mac0_create(PAYLOAD, KEY, kid=b"k1")
    assert cose.decode(with_kid).kid == b"k1"
    assert cose.mac0_verify(with_kid, KEY) == PAYLOAD
    assert testvectors.raises(cose.COSEError, cose.mac0_create, PAYLOAD, KEY, "k1")


def test_mac0_matches_independent_encoding():
    # Same protected header, payload and key as the cbor2-made vector: same MAC tag.
    ours = cbor.loads(cose.mac0_create(PAYLOAD, KEY, kid=b"k1"))
    theirs = cbor.loads(u(V["mac0"]))
    assert ours == theirs


def test_independent_mac0_verifies():
    assert cose.mac0_verify(u(V["mac0"]), KEY) == PAYLOAD
    assert cose.mac0_verify(u(V["mac0_cwt_tag"]), KEY) == PAYLOAD  # inside CWT tag 61
    assert cose.decode(u(V["mac0"])).kid == b"k1"


def test_mac0_wrong_key_or_tampered():
    data = cose.mac0_create(PAYLOAD, KEY)
    assert testvectors.raises(cose.COSEVerifyError, cose.mac0_verify, data, bytes(32))
    for i in range(len(data)):
        bad = bytearray(data)
        bad[i] ^= 0x01
        assert refused(bytes(bad)), i
    for n in range(len(data)):
        assert refused(data[:n]), n
    assert refused(data + b"\x00")


def test_truncated_tag_refused():
    for n in (0, 8, 16, 31):
        data = raw_mac0({1: 5}, {}, tag_len=n)
        assert testvectors.raises(cose.COSEVerifyError, cose.mac0_verify, data, KEY)


def test_other_algorithms_refused():
    # A correct HMAC under another algorithm label is still refused.
    for alg in (4, 6, 7, -8, 0, "HS256", True, None):
        protected = {1: alg} if alg is not None else {}
        data = raw_mac0(protected, {})
        assert type(error_of(cose.mac0_verify, data, KEY)) is cose.COSEError  # not a bad MAC
    assert refused(u(V["mac0_alg_4"]))
    # The algorithm must be protected: in the unprotected bucket it is refused,
    # even when the protected bucket is empty and the MAC is right.
    assert refused(raw_mac0(b"", {1: 5}))
    assert refused(raw_mac0({}, {1: 5}))
    assert refused(raw_mac0({1: 5}, {1: 5}))  # in both buckets


def test_suite_confusion_refused():
    mac = cose.mac0_create(PAYLOAD, KEY)
    sig = u(V["sign1"])
    # A Sign1 at an HMAC lock, even keyed with the issuer's public key.
    assert refused(sig, KEY)
    assert refused(sig, PK)
    # A Mac0 at an Ed25519 lock, even one whose MAC key is the public key.
    assert refused(mac, PK, cose.sign1_verify)
    assert refused(cose.mac0_create(PAYLOAD, PK), PK, cose.sign1_verify)
    # A Mac0 body under the Sign1 tag (and the reverse) is refused too.
    body = cbor.loads(mac).value
    assert refused(cbor.dumps(Tag(18, body)), PK, cose.sign1_verify)
    assert refused(cbor.dumps(Tag(17, cbor.loads(sig).value)), KEY)
    # Sign1 whose protected header names HMAC 256/256 (signature itself valid).
    assert refused(u(V["sign1_alg_5"]), PK, cose.sign1_verify)


def test_tags():
    data = cose.mac0_create(PAYLOAD, KEY)
    body = cbor.loads(data).value
    assert cose.mac0_verify(cbor.dumps(Tag(61, Tag(17, body))), KEY) == PAYLOAD
    assert refused(cbor.dumps(Tag(61, Tag(61, Tag(17, body)))))  # CWT tag twice
    assert refused(cbor.dumps(body))  # untagged: the lock does not guess
    assert refused(cbor.dumps(Tag(61, body)))  # CWT tag without a COSE tag
    for t in (16, 96, 97, 98, 0, 24):
        assert refused(cbor.dumps(Tag(t, body))), t


def test_bad_structure():
    good = cbor.loads(cose.mac0_create(PAYLOAD, KEY)).value
    p, unp, payload, tag = good
    bad_bodies = [
        [p, unp, payload],
        [p, unp, payload, tag, b""],
        [],
        {1: p},
        [p, unp, None, tag],  # detached payload: not used here
        [p, unp, "text", tag],
        [cbor.loads(p), unp, payload, tag],  # protected as a map, not bytes
        [p, [], payload, tag],
        [p, None, payload, tag],
        [p, unp, payload, None],
        [p, unp, payload, "tag"],
        [b"\xa1\x01", unp, payload, tag],  # protected bytes not well-formed
        [b"\x80", unp, payload, tag],  # protected bytes not a map
        [b"\xa1\x01\x05\x00", unp, payload, tag],  # trailing byte in protected
        [p, {4: "text kid"}, payload, tag],
        [p, {b"label": 1}, payload, tag],  # labels are ints or text
        [p, {True: 1}, payload, tag],
    ]
    for body in bad_bodies:
        assert refused(cbor.dumps(Tag(17, body))), body
    for data in (b"", b"\xd1", b"\xff", b"\xd1\x84", "text", None, 17, [1]):
        assert refused(data), data
        assert testvectors.raises(cose.COSEError, cose.decode, data)


def test_crit():
    # A critical header this code does not understand is refused.
    assert refused(raw_mac0({1: 5, 2: [99], 99: 1}, {}))
    assert refused(raw_mac0({1: 5, 2: ["x"], "x": 1}, {}))
    # crit must be a non-empty array, in the protected bucket, of present labels.
    assert refused(raw_mac0({1: 5, 2: []}, {}))
    assert refused(raw_mac0({1: 5, 2: 4, 4: b"k"}, {}))
    assert refused(raw_mac0({1: 5}, {2: [4], 4: b"k"}))
    assert refused(raw_mac0({1: 5, 2: [4]}, {}))
    assert refused(raw_mac0({1: 5, 2: [True], 4: b"k"}, {}))
    # Critical labels it does understand are fine.
    assert cose.mac0_verify(raw_mac0({1: 5, 2: [4], 4: b"k"}, {}), KEY) == PAYLOAD
    assert cose.mac0_verify(raw_mac0({1: 5, 2: [1]}, {}), KEY) == PAYLOAD
    # An unknown header that is not critical is ignored (RFC 9052 section 3).
    assert cose.mac0_verify(raw_mac0({1: 5, 99: 1}, {"note": "x"}), KEY) == PAYLOAD


def test_unsorted_protected_header_verifies():
    # The MAC covers the protected bytes as sent: they need not be deterministic.
    p = b"\xa2\x04\x42k1\x01\x05"  # {4: h'6b31', 1: 5}, keys not in sorted order
    msg = cose.decode(raw_mac0(p, {}))
    assert msg.alg == 5 and msg.kid == b"k1"
    assert cose.mac0_verify(raw_mac0(p, {}), KEY) == PAYLOAD


def test_sign1_structure():
    protected, unprotected, tbs = cose.sign1_to_be_signed(PAYLOAD, kid=b"issuer-1")
    assert protected == b"\xa1\x01\x27" and unprotected == {4: b"issuer-1"}
    assert tbs == u(V["sign1_tbs"])  # the same Sig_structure cbor2 builds
    seen = []

    def signer(data):
        seen.append(data)
        return cbor.loads(u(V["sign1"])).value[3]

    data = cose.sign1_create(PAYLOAD, signer, kid=b"issuer-1")
    assert seen == [tbs]
    assert data == u(V["sign1"])


def test_sign1_verify_vectors():
    assert cose.sign1_verify(u(V["sign1"]), PK) == PAYLOAD
    assert cose.sign1_verify(u(V["sign1_cwt_tag"]), PK) == PAYLOAD
    assert cose.sign1_verify(u(V["sign1_alg_m19"]), PK) == PAYLOAD  # alg Ed25519 (-19)
    other = u(V["ed25519_other_public"])
    assert testvectors.raises(cose.COSEVerifyError, cose.sign1_verify, u(V["sign1"]), other)


def test_sign1_tampered_refused():
    data = u(V["sign1"])
    n = len(data)
    # A byte of the payload, of the signature's R and of S; and a short signature.
    for i in (n - 100, n - 60, n - 1):
        bad = bytearray(data)
        bad[i] ^= 0x04
        assert refused(bytes(bad), PK, cose.sign1_verify), i
    body = cbor.loads(data).value
    short = cbor.dumps(Tag(18, [body[0], body[1], body[2], body[3][:63]]))
    assert testvectors.raises(cose.COSEVerifyError, cose.sign1_verify, short, PK)
    # A signature of all ones (S >= L, R not a point) is a refusal, not a crash.
    junk = cbor.dumps(Tag(18, [body[0], body[1], body[2], b"\xff" * 64]))
    assert testvectors.raises(cose.COSEVerifyError, cose.sign1_verify, junk, PK)


def test_repr_shows_no_secret_material():
    msg = cose.decode(u(V["mac0"]))
    text = repr(msg)
    assert "Mac0" in text and msg.tag.hex() not in text
    for exc_text in ("tag does not verify", "signature does not verify"):
        assert KEY.hex() not in exc_text
    try:
        cose.mac0_verify(u(V["mac0"]), bytes(32))
    except cose.COSEError as exc:
        text = str(exc)
    assert KEY.hex()[:16] not in text and msg.tag.hex()[:16] not in text


def test_published_cose_wg_vectors():
    # cose-wg/Examples HMac-01 (Mac0, HMAC 256/256) and eddsa-sig-01 (Sign1, Ed25519).
    wg = V["cose_wg"]
    content = u(wg["payload"])
    assert cose.mac0_verify(u(wg["mac0"]), u(wg["hmac_key"])) == content
    assert cose.sign1_verify(u(wg["sign1"]), u(wg["ed25519_public"])) == content
    msg = cose.decode(u(wg["sign1"]))
    assert msg.kid == b"11" and msg.protected == {1: -8, 3: 0}
    assert refused(u(wg["mac0"]), KEY)
