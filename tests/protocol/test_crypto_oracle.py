"""protocol.crypto against an independent oracle: the `cryptography` package
(OpenSSL) and CPython's hashlib. CPython only; hypothesis picks the inputs.

The pure-Python SHA-512 (protocol.sha512.SHA512, what MicroPython runs) is
tested directly here, since crypto.sha512 on CPython is hashlib's.
"""

from __future__ import annotations

import hashlib

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import hmac as c_hmac
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from hypothesis import given, settings
from hypothesis import strategies as st

import testvectors
from protocol import crypto
from protocol.sha512 import SHA512

SETTINGS = settings(deadline=None, max_examples=40)
SLOW = settings(deadline=None, max_examples=15)


def oracle_hmac(key: bytes, data: bytes) -> bytes:
    h = c_hmac.HMAC(key, hashes.SHA256())
    h.update(data)
    return h.finalize()


def oracle_hkdf(ikm: bytes, salt: bytes | None, info: bytes, length: int) -> bytes:
    return HKDF(hashes.SHA256(), length, salt or None, info).derive(ikm)


def oracle_sha512(data: bytes) -> bytes:
    h = hashes.Hash(hashes.SHA512())
    h.update(data)
    return h.finalize()


def oracle_ed25519_verify(public: bytes, message: bytes, signature: bytes) -> bool:
    try:
        Ed25519PublicKey.from_public_bytes(public).verify(signature, message)
    except (InvalidSignature, ValueError):
        return False
    return True


def flip(b: bytes, bit: int) -> bytes:
    out = bytearray(b)
    out[bit // 8] ^= 1 << (bit % 8)
    return bytes(out)


# --- the typed vector files agree with the oracle (catches typos) ----------


def test_vector_files_agree_with_oracle() -> None:
    unhex = bytes.fromhex
    for v in testvectors.load("hmac_sha256")["vectors"]:
        assert oracle_hmac(unhex(v["key"]), unhex(v["data"])).startswith(unhex(v["mac"]))
    for v in testvectors.load("hkdf_sha256")["vectors"]:
        salt = unhex(v["salt"])
        assert oracle_hmac(salt or bytes(32), unhex(v["ikm"])) == unhex(v["prk"])
        okm = oracle_hkdf(unhex(v["ikm"]), salt, unhex(v["info"]), v["length"])
        assert okm == unhex(v["okm"]), v["name"]
    for v in testvectors.load("sha512")["vectors"]:
        msg = unhex(v["msg"]) * v.get("repeat", 1)
        assert oracle_sha512(msg) == unhex(v["digest"]), v["name"]
    vectors = testvectors.load("ed25519")
    for v in vectors["vectors"]:
        sk = Ed25519PrivateKey.from_private_bytes(unhex(v["secret"]))
        assert sk.public_key().public_bytes_raw() == unhex(v["public"]), v["name"]
        assert sk.sign(unhex(v["msg"])) == unhex(v["sig"]), v["name"]
    for v in vectors["reject"]:
        ours = crypto.ed25519_verify(unhex(v["public"]), unhex(v["msg"]), unhex(v["sig"]))
        assert ours is False, v["name"]
        if not v.get("openssl_accepts"):  # see the vector file
            theirs = oracle_ed25519_verify(unhex(v["public"]), unhex(v["msg"]), unhex(v["sig"]))
            assert theirs is False, v["name"]


def test_pure_sha512_one_million_a() -> None:
    v = next(v for v in testvectors.load("sha512")["vectors"] if v.get("repeat"))
    h = SHA512()
    chunk = bytes.fromhex(v["msg"])
    for _ in range(v["repeat"]):
        h.update(chunk)
    assert h.digest() == bytes.fromhex(v["digest"])


# --- HMAC, HKDF ----------------------------------------------------------


@SETTINGS
@given(key=st.binary(max_size=200), data=st.binary(max_size=400))
def test_hmac_sha256_matches_oracle(key: bytes, data: bytes) -> None:
    assert crypto.hmac_sha256(key, data) == oracle_hmac(key, data)


@SETTINGS
@given(
    ikm=st.binary(min_size=1, max_size=100),
    salt=st.binary(max_size=100),
    info=st.binary(max_size=100),
    length=st.integers(min_value=1, max_value=255 * 32),
)
def test_hkdf_sha256_matches_oracle(ikm: bytes, salt: bytes, info: bytes, length: int) -> None:
    assert crypto.hkdf_sha256(ikm, salt, info, length) == oracle_hkdf(ikm, salt, info, length)


@SETTINGS
@given(a=st.binary(max_size=64), b=st.binary(max_size=64))
def test_eq_matches_equality(a: bytes, b: bytes) -> None:
    assert crypto.eq(a, b) is (a == b)
    assert crypto.eq(a, a) is True


# --- SHA-512 ------------------------------------------------------------


@SETTINGS
@given(data=st.binary(max_size=1000))
def test_sha512_matches_oracle(data: bytes) -> None:
    want = oracle_sha512(data)
    assert crypto.sha512(data) == want
    assert SHA512(data).digest() == want


@SETTINGS
@given(
    data=st.binary(max_size=700),
    cuts=st.lists(st.integers(min_value=0, max_value=700), max_size=6),
)
def test_pure_sha512_streaming_matches_oracle(data: bytes, cuts: list[int]) -> None:
    h = SHA512()
    pos = 0
    for cut in sorted(c for c in cuts if c <= len(data)):
        h.update(data[pos:cut])
        pos = cut
    h.update(data[pos:])
    assert h.digest() == hashlib.sha512(data).digest()


def test_pure_sha512_every_length_to_three_blocks() -> None:
    data = bytes(range(256)) * 2
    for n in range(0, 3 * 128 + 2):
        assert SHA512(data[:n]).digest() == hashlib.sha512(data[:n]).digest(), n


# --- Ed25519 ------------------------------------------------------------

seeds = st.binary(min_size=32, max_size=32)


@SLOW
@given(seed=seeds, message=st.binary(max_size=300))
def test_ed25519_accepts_oracle_signatures(seed: bytes, message: bytes) -> None:
    sk = Ed25519PrivateKey.from_private_bytes(seed)
    public = sk.public_key().public_bytes_raw()
    assert crypto.ed25519_verify(public, message, sk.sign(message)) is True


@SLOW
@given(
    seed=seeds,
    message=st.binary(min_size=1, max_size=200),
    where=st.sampled_from(["message", "R", "S", "key"]),
    data=st.data(),
)
def test_ed25519_flipped_bit_rejected_by_both(seed, message, where, data) -> None:
    sk = Ed25519PrivateKey.from_private_bytes(seed)
    public = sk.public_key().public_bytes_raw()
    sig = sk.sign(message)
    if where == "message":
        message = flip(message, data.draw(st.integers(0, 8 * len(message) - 1)))
    elif where == "R":
        sig = flip(sig, data.draw(st.integers(0, 255)))
    elif where == "S":
        sig = flip(sig, data.draw(st.integers(256, 511)))
    else:
        public = flip(public, data.draw(st.integers(0, 255)))
    assert crypto.ed25519_verify(public, message, sig) is False
    assert oracle_ed25519_verify(public, message, sig) is False


@SLOW
@given(public=st.binary(min_size=32, max_size=32), sig=st.binary(min_size=64, max_size=64))
def test_ed25519_random_input_rejected(public: bytes, sig: bytes) -> None:
    assert crypto.ed25519_verify(public, b"msg", sig) is False


@SLOW
@given(
    public=st.binary(max_size=40),
    message=st.binary(max_size=10),
    sig=st.binary(max_size=70),
)
def test_ed25519_never_raises_on_bytes(public: bytes, message: bytes, sig: bytes) -> None:
    assert crypto.ed25519_verify(public, message, sig) in (True, False)


@pytest.mark.parametrize("seed", [bytes(32), b"\xff" * 32, bytes(range(32))])
def test_ed25519_non_canonical_s_rejected(seed: bytes) -> None:
    from protocol.ed25519 import _L

    sk = Ed25519PrivateKey.from_private_bytes(seed)
    public = sk.public_key().public_bytes_raw()
    sig = sk.sign(b"door 42")
    s = int.from_bytes(sig[32:], "little")
    assert crypto.ed25519_verify(public, b"door 42", sig)
    bad = sig[:32] + (s + _L).to_bytes(32, "little")
    assert crypto.ed25519_verify(public, b"door 42", bad) is False
    assert oracle_ed25519_verify(public, b"door 42", bad) is False
