"""Interoperability of our COSE/CWT tokens with the independent `cwt` package.

Both directions: tokens made by protocol.cose verify with cwt, and tokens made
by cwt (COSE_Mac0 HS256 and COSE_Sign1 EdDSA/Ed25519, with and without the CWT
tag 61, claims in any map order) verify with protocol.token; the claims decode
to the same values. cbor2 decodes payloads independently. And a tampered byte
anywhere in one of our tokens is refused (hypothesis).
"""

from __future__ import annotations

import base64
import time
from pathlib import Path

import cbor2
import cwt
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)
from cwt import COSE, COSEKey
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol import clock, cose, keys, reasons
from protocol import token as tok

SITE_SECRET = bytes(range(100, 132))
LOCK = "lock-0042"
CTI = bytes.fromhex("0f0e0d0c0b0a09080706050403020100")


def b64(b: bytes) -> str:
    return base64.urlsafe_b64encode(b).decode().rstrip("=")


def hkdf(ikm: bytes, salt: bytes, info: bytes) -> bytes:
    return HKDF(hashes.SHA256(), 32, salt or None, info).derive(ikm)


# Keys derived independently (cryptography's HKDF) and with protocol.keys: the same.
LOCK_SECRET = hkdf(SITE_SECRET, b"nyckelfri-lock/v1", b"lock:" + LOCK.encode())
TOKEN_KEY = hkdf(LOCK_SECRET, b"", b"token-mac")
SIGNER = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
PUBLIC = SIGNER.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def test_key_hierarchy_matches_independent_hkdf() -> None:
    assert keys.lock_secret(SITE_SECRET, LOCK) == LOCK_SECRET
    assert keys.token_mac_key(LOCK_SECRET) == TOKEN_KEY
    for label, fn in ((b"update", keys.update_key), (b"admin", keys.admin_key),
                      (b"log", keys.log_key)):
        assert fn(LOCK_SECRET) == hkdf(LOCK_SECRET, b"", label)
    assert keys.pop_key(LOCK_SECRET, CTI) == hkdf(LOCK_SECRET, CTI, b"pop")
    assert keys.lock_secret(SITE_SECRET, "lock-0043") != LOCK_SECRET
    with pytest.raises(keys.KeysError):
        keys.lock_secret(SITE_SECRET, 42)
    with pytest.raises(keys.KeysError):
        keys.pop_key(LOCK_SECRET, b"")


def hmac_cose_key(kid: str | None = None) -> COSEKey:
    return COSEKey.from_symmetric_key(TOKEN_KEY, alg="HS256", kid=kid)


def ed_private_cose_key(alg: str = "EdDSA", kid: str | None = None) -> COSEKey:
    pem = SIGNER.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
    return COSEKey.from_pem(pem, alg=alg, kid=kid)


def ed_public_cose_key(kid: str | None = None) -> COSEKey:
    jwk = {"kty": "OKP", "crv": "Ed25519", "x": b64(PUBLIC), "alg": "EdDSA"}
    if kid is not None:
        jwk["kid"] = kid
    return COSEKey.from_jwk(jwk)


def now_claims() -> dict[int, object]:
    """A claims set valid now (cwt checks exp and nbf against the wall clock).

    Keys are in descending order: cbor2 keeps insertion order, so the payload
    cwt makes is not in the deterministic (sorted) order ours is.
    """
    now = int(time.time())
    c: dict[int, object] = {9: "open log", 8: {3: CTI}, 7: CTI, 6: now - 60, 5: now - 60,
                            4: now + 3600, 3: LOCK, 2: "staff-anna", 1: "site-a"}
    return c


def our_payload(c: dict[int, object]) -> bytes:
    return tok.encode_claims(c[1], c[2], c[3], c[4], c[5], c[6], c[7], c[9])


def assert_same_claims(parsed: tok.Claims, c: dict[int, object]) -> None:
    aud = c[3]
    assert parsed.iss == c[1] and parsed.sub == c[2]
    assert parsed.aud == ((aud,) if isinstance(aud, str) else tuple(aud))
    assert parsed.exp == clock.from_unix(c[4]) and parsed.nbf == clock.from_unix(c[5])
    assert parsed.iat == clock.from_unix(c[6]) and parsed.cti == c[7] == parsed.kid
    assert parsed.scope == tuple(str(c[9]).split())


# ---------------------------------------------------------------- ours -> cwt

def test_our_mac0_verifies_with_cwt() -> None:
    c = now_claims()
    payload = our_payload(c)
    token = cose.mac0_create(payload, TOKEN_KEY)
    assert COSE.new().decode(token, hmac_cose_key()) == payload
    # cwt.decode also checks exp/nbf; it wants a kid, which goes unprotected.
    with_kid = cose.mac0_create(payload, TOKEN_KEY, kid=b"k1")
    assert cwt.decode(with_kid, hmac_cose_key(kid="k1")) == c
    assert cbor2.loads(payload) == c


def test_our_sign1_verifies_with_cwt() -> None:
    c = now_claims()
    payload = our_payload(c)
    token = cose.sign1_create(payload, SIGNER.sign)
    assert COSE.new().decode(token, ed_public_cose_key()) == payload
    with_kid = cose.sign1_create(payload, SIGNER.sign, kid=b"issuer-1")
    assert cwt.decode(with_kid, ed_public_cose_key(kid="issuer-1")) == c


def test_cwt_refuses_our_token_under_a_wrong_key() -> None:
    token = cose.mac0_create(our_payload(now_claims()), bytes(32))
    with pytest.raises(cwt.VerifyError):
        COSE.new().decode(token, hmac_cose_key())


# ---------------------------------------------------------------- cwt -> ours

@pytest.mark.parametrize("tagged", [False, True])
def test_cwt_mac0_verifies_with_ours(tagged: bool) -> None:
    c = now_claims()
    token = cwt.encode(c, hmac_cose_key(), tagged=tagged)
    assert (token[:2] == b"\xd8\x3d") == tagged  # tag 61 or straight to tag 17
    payload = cbor2.loads(token).value
    payload = (payload.value if tagged else payload)[2]
    assert payload != cbor2.dumps(c, canonical=True)  # not in deterministic order
    parsed = tok.verify(token, tok.SUITE_HMAC, TOKEN_KEY)
    assert_same_claims(parsed, c)
    lock_now = clock.from_unix(int(time.time()))
    assert tok.decide(parsed, LOCK, lock_now, True, None, "open", "site-a") == reasons.ALLOW


@pytest.mark.parametrize("alg", ["EdDSA", "Ed25519"])
@pytest.mark.parametrize("tagged", [False, True])
def test_cwt_sign1_verifies_with_ours(alg: str, tagged: bool) -> None:
    c = now_claims()
    c[3] = ["gate-0001", LOCK]
    token = cwt.encode(c, ed_private_cose_key(alg), tagged=tagged)
    parsed = tok.verify(token, tok.SUITE_ED25519, PUBLIC)
    assert_same_claims(parsed, c)


def test_cwt_kid_in_unprotected_header_is_accepted() -> None:
    c = now_claims()
    token = cwt.encode(c, hmac_cose_key(kid="lock-key"))
    msg = cose.decode(token)
    assert msg.kid == b"lock-key" and msg.unprotected == {4: b"lock-key"}
    assert_same_claims(tok.verify(token, tok.SUITE_HMAC, TOKEN_KEY), c)


def test_cwt_tokens_of_the_other_suite_are_refused() -> None:
    c = now_claims()
    mac = cwt.encode(c, hmac_cose_key())
    sig = cwt.encode(c, ed_private_cose_key())
    for token, suite, key in ((sig, tok.SUITE_HMAC, TOKEN_KEY), (sig, tok.SUITE_HMAC, PUBLIC),
                              (mac, tok.SUITE_ED25519, PUBLIC)):
        with pytest.raises(tok.TokenError) as err:
            tok.verify(token, suite, key)
        assert err.value.reason == reasons.UNSUPPORTED
    # HMAC 256/64 (alg 4) from cwt: a truncated MAC is never accepted.
    short = COSE.new(alg_auto_inclusion=True).encode_and_mac(
        our_payload(c), COSEKey.from_symmetric_key(TOKEN_KEY, alg="HMAC 256/64"))
    with pytest.raises(tok.TokenError) as err:
        tok.verify(short, tok.SUITE_HMAC, TOKEN_KEY)
    assert err.value.reason in (reasons.UNSUPPORTED, reasons.BAD_SIGNATURE)


def test_cwt_token_under_another_key_is_refused() -> None:
    other = COSEKey.from_symmetric_key(bytes(32), alg="HS256")
    with pytest.raises(tok.TokenError) as err:
        tok.verify(cwt.encode(now_claims(), other), tok.SUITE_HMAC, TOKEN_KEY)
    assert err.value.reason == reasons.BAD_SIGNATURE


# ---------------------------------------------------------------- properties

texts = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)),
                min_size=1, max_size=20)
posix = st.integers(clock.UNIX_AT_LOCK_EPOCH + 3600, clock.UNIX_AT_LOCK_EPOCH + 10 ** 9)


@st.composite
def claim_sets(draw: st.DrawFn) -> dict[int, object]:
    iat = draw(posix)
    nbf = iat + draw(st.integers(-600, 3600))
    exp = nbf + draw(st.integers(1, 86400))
    cti = draw(st.binary(min_size=1, max_size=32))
    aud = draw(st.one_of(texts, st.lists(texts, min_size=1, max_size=4)))
    scope = " ".join(draw(st.lists(st.sampled_from(["open", "log", "admin"]), max_size=3)))
    return {1: draw(texts), 2: draw(texts), 3: aud, 4: exp, 5: nbf, 6: iat, 7: cti,
            8: {3: cti}, 9: scope}


@settings(max_examples=60, deadline=None)
@given(claim_sets(), st.booleans())
def test_random_claims_round_trip_both_ways(c: dict[int, object], tagged: bool) -> None:
    # ours -> cwt (the COSE layer; cwt.decode would also check the wall clock)
    payload = our_payload(c)
    assert cbor2.loads(payload) == c
    assert COSE.new().decode(cose.mac0_create(payload, TOKEN_KEY), hmac_cose_key()) == payload
    # cwt -> ours, through COSE directly (times may be in the past or future)
    ctx = COSE.new(alg_auto_inclusion=True)
    token = ctx.encode_and_mac(cbor2.dumps(c), hmac_cose_key())
    if tagged:
        token = cbor2.dumps(cbor2.CBORTag(61, cbor2.loads(token)))
    assert_same_claims(tok.verify(token, tok.SUITE_HMAC, TOKEN_KEY), c)


OUR_MAC0 = cose.mac0_create(our_payload(now_claims()), TOKEN_KEY)
OUR_SIGN1 = cose.sign1_create(our_payload(now_claims()), SIGNER.sign)


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_any_tampered_byte_is_refused(data: st.DataObject) -> None:
    for token, suite, key in ((OUR_MAC0, tok.SUITE_HMAC, TOKEN_KEY),
                              (OUR_SIGN1, tok.SUITE_ED25519, PUBLIC)):
        i = data.draw(st.integers(0, len(token) - 1))
        mask = data.draw(st.integers(1, 255))
        bad = bytearray(token)
        bad[i] ^= mask
        with pytest.raises(tok.TokenError) as err:
            tok.verify(bytes(bad), suite, key)
        assert err.value.reason in (reasons.MALFORMED, reasons.BAD_SIGNATURE,
                                    reasons.UNSUPPORTED)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200), st.sampled_from([tok.SUITE_HMAC, tok.SUITE_ED25519]))
def test_arbitrary_bytes_only_raise_token_error(data: bytes, suite: str) -> None:
    key = TOKEN_KEY if suite == tok.SUITE_HMAC else PUBLIC
    with pytest.raises(tok.TokenError):
        tok.verify(data, suite, key)


@settings(max_examples=200, deadline=None)
@given(st.recursive(
    st.none() | st.booleans() | st.integers(-2 ** 64, 2 ** 64 - 1) | st.binary(max_size=8)
    | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
        st.integers(-10, 10) | st.text(max_size=3), inner, max_size=4),
    max_leaves=12))
def test_arbitrary_cbor_payloads_only_raise_token_error(value: object) -> None:
    # A correctly MAC'd payload of any shape: parsing raises TokenError(MALFORMED) or works.
    token = cose.mac0_create(cbor2.dumps(value), TOKEN_KEY)
    try:
        tok.verify(token, tok.SUITE_HMAC, TOKEN_KEY)
    except tok.TokenError as exc:
        assert exc.reason == reasons.MALFORMED


# ---------------------------------------------------------------- docs/PROTOCOL.md

DOC = (Path(__file__).resolve().parents[2] / "docs" / "PROTOCOL.md").read_text()


def doc_hex(marker: str) -> bytes:
    """The hex dump that follows the line holding `marker` (up to a line that is not hex)."""
    lines = DOC[DOC.index(marker):].splitlines()[1:]
    out = []
    for line in lines:
        line = line.strip()
        if not out and (not line or line.startswith("```") or not line[0].isalnum()
                        or line.endswith(":")):
            continue  # the rest of the heading, or the code fence
        if not line or any(ch not in "0123456789abcdef" for ch in line):
            break
        out.append(line)
    assert out, marker
    return bytes.fromhex("".join(out))


def test_protocol_doc_examples_are_right() -> None:
    """The worked examples app developers copy from are checked independently
    (cryptography's HKDF and Ed25519, cbor2, hmac, cwt), not with protocol/."""
    import hashlib
    import hmac

    site = bytes(range(32))
    lock_secret = hkdf(site, b"nyckelfri-lock/v1", b"lock:lock-0001")
    token_key = hkdf(lock_secret, b"", b"token-mac")
    cti = bytes.fromhex("8f2c1e5a9b3d4f60718293a4b5c6d7e8")
    pop = hkdf(lock_secret, cti, b"pop")
    assert f"lock secret    {lock_secret.hex()}" in DOC and f"PoP key        {pop.hex()}" in DOC

    mac_token = doc_hex("EXAMPLE HMAC-suite token")
    claims = cbor2.loads(COSE.new().decode(mac_token, COSEKey.from_symmetric_key(
        token_key, alg="HS256")))
    assert claims[2] == "staff-anna" and claims[7] == cti and claims[8] == {3: cti}
    ed_key = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(
        "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"))
    pk = ed_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    jwk = {"kty": "OKP", "crv": "Ed25519", "x": b64(pk), "alg": "EdDSA"}
    sig_token = doc_hex("EXAMPLE Ed25519-suite token")
    assert cbor2.loads(COSE.new().decode(sig_token, COSEKey.from_jwk(jwk))) == claims

    opened = cbor2.loads(doc_hex("OPEN (210 bytes"))
    nonce = opened[1]
    assert opened[2] == mac_token
    proof_input = cbor2.dumps(["open", nonce, "lock-0001", "open",
                               hashlib.sha256(mac_token).digest()], canonical=True)
    assert opened[4] == hmac.new(pop, proof_input, hashlib.sha256).digest()
    result = cbor2.loads(doc_hex("RESULT (105 bytes)"))
    mac_input = cbor2.dumps(["result", nonce, "lock-0001", result[2], result[3], result[4],
                             result[5]], canonical=True)
    assert result[6] == hmac.new(pop, mac_input, hashlib.sha256).digest()
    hello = cbor2.loads(doc_hex("EXAMPLE HELLO"))
    assert hello[0] == 1 and hello[2] == nonce


# ---------------------------------------------------------------- robustness

cbor_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2 ** 64, 2 ** 64 - 1) | st.binary(max_size=40)
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(
        st.integers(-2, 12) | st.text(max_size=2), inner, max_size=6),
    max_leaves=20)


@settings(max_examples=150, deadline=None)
@given(st.dictionaries(st.integers(0, 10), cbor_values, max_size=8), st.integers(0, 10))
def test_messages_decode_only_raises_message_error(fields: dict, mtype: int) -> None:
    from protocol import messages

    body = dict(fields)
    body[0] = mtype
    try:
        got_type, got = messages.decode(cbor2.dumps(body))
    except messages.MessageError:
        return
    assert got_type == mtype and set(got) <= set(body)


@settings(max_examples=150, deadline=None)
@given(cbor_values)
def test_revocation_inputs_only_raise_revocation_error(value: object) -> None:
    from protocol import revocation

    update_key = keys.update_key(LOCK_SECRET)
    data = cbor2.dumps(value)
    for fn, args in ((revocation.RevocationList.from_bytes, (data,)),
                     (revocation.decode_update, (cose.mac0_create(data, update_key), LOCK,
                                                 update_key))):
        try:
            fn(*args)
        except revocation.RevocationError:
            pass


entry_parts = cbor_values | st.sampled_from([1, 2, "staff-a", b"tok", 1772429400])
update_maps = st.fixed_dictionaries(
    {0: st.just(1), 1: st.just(LOCK)},
    optional={2: st.integers(-2, 2 ** 31) | cbor_values, 3: posix | cbor_values,
              4: st.just(0) | posix | cbor_values,
              5: st.lists(st.lists(entry_parts, min_size=2, max_size=4), max_size=5)})


@settings(max_examples=150, deadline=None)
@given(update_maps)
def test_update_like_payloads_only_raise_revocation_error(payload: dict) -> None:
    from protocol import revocation

    update_key = keys.update_key(LOCK_SECRET)
    try:
        rl = revocation.decode_update(cose.mac0_create(cbor2.dumps(payload), update_key), LOCK,
                                      update_key)
    except revocation.RevocationError as exc:
        # Malformed, or a time outside the lock's bound (reason 23).
        assert exc.reason in (reasons.MALFORMED, reasons.TIME_OUT_OF_RANGE)
        return
    # Whatever was accepted stores and reads back.
    back = revocation.RevocationList.from_bytes(
        revocation.apply(revocation.RevocationList(), rl, rl.issued).to_bytes())
    assert back.version == payload[2]
