# protocol.crypto against published vectors (RFC 4231, RFC 5869, FIPS 180-4,
# RFC 8032) on CPython and MicroPython. Sources are named in each vector file.
import sys

import testvectors
from protocol import crypto
from protocol import sha512 as sha512_module
from testvectors import unhex

MICROPYTHON = sys.implementation.name == "micropython"


def _hash_vector(new, v):
    h = new()
    msg = unhex(v["msg"])
    for _ in range(v.get("repeat", 1)):
        h.update(msg)
    return h.digest()


def test_hmac_sha256_rfc4231():
    vectors = testvectors.load("hmac_sha256")["vectors"]
    assert len(vectors) == 7
    for v in vectors:
        mac = crypto.hmac_sha256(unhex(v["key"]), unhex(v["data"]))
        want = unhex(v["mac"])  # test case 5 is published truncated to 128 bits
        assert len(mac) == 32, v["name"]
        assert mac[: len(want)] == want, v["name"]


def test_hmac_sha256_accepts_bytearray_and_memoryview():
    v = testvectors.load("hmac_sha256")["vectors"][1]
    key = unhex(v["key"])
    data = unhex(v["data"])
    want = unhex(v["mac"])
    assert crypto.hmac_sha256(bytearray(key), bytearray(data)) == want
    assert crypto.hmac_sha256(memoryview(key), memoryview(data)) == want


def test_hkdf_sha256_rfc5869():
    vectors = testvectors.load("hkdf_sha256")["vectors"]
    assert len(vectors) == 3
    for v in vectors:
        ikm = unhex(v["ikm"])
        salt = unhex(v["salt"])
        info = unhex(v["info"])
        okm = unhex(v["okm"])
        # extract step: PRK = HMAC(salt, IKM), salt defaulting to HashLen zeros
        assert crypto.hmac_sha256(salt or bytes(32), ikm) == unhex(v["prk"]), v["name"]
        assert crypto.hkdf_sha256(ikm, salt, info, v["length"]) == okm, v["name"]
        # a shorter output is a prefix of the longer one
        assert crypto.hkdf_sha256(ikm, salt, info, 5) == okm[:5], v["name"]
        if not salt:
            assert crypto.hkdf_sha256(ikm, None, info, v["length"]) == okm, v["name"]
        if not info:
            assert crypto.hkdf_sha256(ikm, salt, None, v["length"]) == okm, v["name"]


def test_hkdf_sha256_length_limits():
    ikm = b"\x0b" * 22
    assert crypto.hkdf_sha256(ikm, b"salt", b"info", 0) == b""
    assert len(crypto.hkdf_sha256(ikm, b"salt", b"info", 255 * 32)) == 255 * 32
    for bad in (255 * 32 + 1, -1):
        assert testvectors.raises(crypto.CryptoError, crypto.hkdf_sha256, ikm, b"", b"", bad)
    assert issubclass(crypto.CryptoError, ValueError)


def test_eq():
    assert crypto.eq(b"", b"")
    assert crypto.eq(b"abc", b"abc")
    assert crypto.eq(bytearray(b"abc"), b"abc")
    assert crypto.eq(memoryview(b"abc"), bytearray(b"abc"))
    assert not crypto.eq(b"abc", b"abd")
    assert not crypto.eq(b"abc", b"bbc")
    assert not crypto.eq(b"abc", b"ab")
    assert not crypto.eq(b"", b"a")
    assert not crypto.eq(b"\x00" * 32, b"\x00" * 31 + b"\x80")
    a = bytes(range(64))
    for i in range(64):
        b = bytearray(a)
        b[i] ^= 1
        assert not crypto.eq(a, b)
        assert not crypto.eq(b, a)
    assert crypto.eq(a, bytes(range(64)))


def test_sha512_vectors():
    # crypto.sha512: hashlib's on CPython, the pure implementation on MicroPython.
    vectors = testvectors.load("sha512")["vectors"]
    for v in vectors:
        if v.get("slow") and MICROPYTHON:
            continue  # CPython-only (also run against the pure code in test_crypto_oracle)
        msg = unhex(v["msg"]) * v.get("repeat", 1)
        assert crypto.sha512(msg) == unhex(v["digest"]), v["name"]


def test_sha512_pure_vectors():
    vectors = testvectors.load("sha512")["vectors"]
    assert len(vectors) >= 4
    for v in vectors:
        if v.get("slow"):
            continue
        assert _hash_vector(sha512_module.SHA512, v) == unhex(v["digest"]), v["name"]


def test_sha512_pure_streaming():
    msg = bytes((5 * i + 1) & 0xFF for i in range(300))
    whole = sha512_module.SHA512(msg).digest()
    for cut in (0, 1, 63, 111, 112, 127, 128, 129, 255, 256, 299, 300):
        h = sha512_module.SHA512()
        h.update(msg[:cut])
        h.update(b"")
        h.update(msg[cut:])
        assert h.digest() == whole, cut
    h = sha512_module.SHA512()
    for i in range(0, len(msg), 7):
        h.update(msg[i:i + 7])
    assert h.digest() == whole
    # digest() does not disturb the state; copy() forks it
    h = sha512_module.SHA512(msg[:200])
    first = h.digest()
    assert h.digest() == first
    c = h.copy()
    c.update(msg[200:])
    assert c.digest() == whole
    assert h.digest() == first
    assert sha512_module.SHA512(bytearray(msg)).digest() == whole
    assert sha512_module.SHA512(memoryview(msg)).digest() == whole
    assert sha512_module.new(msg).digest() == whole


def test_ed25519_rfc8032():
    vectors = testvectors.load("ed25519")["vectors"]
    assert len(vectors) == 5
    for v in vectors:
        pk = unhex(v["public"])
        msg = unhex(v["msg"])
        sig = unhex(v["sig"])
        assert crypto.ed25519_verify(pk, msg, sig) is True, v["name"]
    v = vectors[2]
    assert crypto.ed25519_verify(
        bytearray(unhex(v["public"])), memoryview(unhex(v["msg"])), bytearray(unhex(v["sig"]))
    )


def test_ed25519_rejects():
    cases = testvectors.load("ed25519")["reject"]
    assert len(cases) >= 20
    for v in cases:
        ok = crypto.ed25519_verify(unhex(v["public"]), unhex(v["msg"]), unhex(v["sig"]))
        assert ok is False, v["name"]


def test_ed25519_curve_constants():
    from protocol import ed25519

    p = ed25519._P
    assert (ed25519._D * 121666 + 121665) % p == 0
    assert ed25519._D2 == 2 * ed25519._D % p
    assert ed25519._SQRT_M1 * ed25519._SQRT_M1 % p == p - 1
    x, y = ed25519._BX, ed25519._BY
    assert y * 5 % p == 4 and x & 1 == 0
    assert (y * y - x * x - 1 - ed25519._D * x * x % p * y * y) % p == 0  # on the curve
    assert ed25519._decode(b"\x58" + b"\x66" * 31) == (x, y)
    # [L]B is the neutral element; [L-1]B + B as well, with both digits in use
    assert ed25519._encode(*ed25519._double_scalar(ed25519._L, 0, x, y)) == b"\x01" + bytes(31)
    assert ed25519._encode(*ed25519._double_scalar(ed25519._L - 1, 1, x, y)) == b"\x01" + bytes(31)
    assert ed25519._encode(*ed25519._double_scalar(1, 0, x, y)) == b"\x58" + b"\x66" * 31
