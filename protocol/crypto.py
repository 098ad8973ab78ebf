# Cryptographic primitives for the lock. Native where MicroPython has them
# (hashlib.sha256), pure Python where it lacks them (HMAC, HKDF, constant-time
# compare; SHA-512 and Ed25519 verification below).
import hashlib

_BLOCK = 64


def sha256(data):
    return hashlib.sha256(data).digest()


def _pad_key(key):
    if len(key) > _BLOCK:
        key = sha256(key)
    return key + bytes(_BLOCK - len(key))


def hmac_sha256(key, data):
    """HMAC-SHA256 (RFC 2104)."""
    k = _pad_key(bytes(key))
    inner = hashlib.sha256(bytes(b ^ 0x36 for b in k))
    inner.update(data)
    outer = hashlib.sha256(bytes(b ^ 0x5C for b in k))
    outer.update(inner.digest())
    return outer.digest()


def hkdf_sha256(ikm, salt, info, length):
    """HKDF-SHA256 (RFC 5869): extract then expand to `length` bytes."""
    if length < 0 or length > 255 * 32:
        raise ValueError("hkdf length out of range")
    if not salt:
        salt = bytes(32)
    prk = hmac_sha256(salt, ikm)
    out = b""
    block = b""
    counter = 1
    while len(out) < length:
        block = hmac_sha256(prk, block + info + bytes((counter,)))
        out += block
        counter += 1
    return out[:length]


def eq(a, b):
    """Compare two byte strings in time that depends only on their lengths."""
    if len(a) != len(b):
        return False
    diff = 0
    for i in range(len(a)):
        diff |= a[i] ^ b[i]
    return diff == 0
