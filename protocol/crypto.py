# Cryptographic primitives for the lock. Native where the interpreter has them
# (hashlib.sha256 everywhere, hashlib.sha512 on CPython), pure Python where
# MicroPython lacks them: HMAC, HKDF, constant-time compare, SHA-512
# (protocol.sha512) and Ed25519 verification (protocol.ed25519).
#
# protocol.ed25519 is imported on the first ed25519_verify() call, so a lock
# commissioned for the HMAC suite never spends heap on it (about 4 KB of table
# plus its code). Firmware of an EdDSA lock should import protocol.ed25519 at
# boot, while the heap is still unfragmented. protocol.sha512 is imported on
# first use for the same reason: only Ed25519 needs it on the lock.
import hashlib

_BLOCK = 64  # SHA-256 block size
_HASH_LEN = 32


class CryptoError(ValueError):
    pass


def sha256(data):
    return hashlib.sha256(data).digest()


def sha512(data):
    """SHA-512 digest (hashlib's where it exists, else pure Python)."""
    from protocol import sha512 as _sha512

    return _sha512.new(data).digest()


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
    """HKDF-SHA256 (RFC 5869): extract then expand to `length` bytes.

    An empty or None salt means HashLen zero bytes; None info means empty."""
    if length < 0 or length > 255 * _HASH_LEN:
        raise CryptoError("hkdf length out of range")
    if not salt:
        salt = bytes(_HASH_LEN)
    if info is None:
        info = b""
    prk = hmac_sha256(salt, ikm)
    out = b""
    block = b""
    counter = 1
    while len(out) < length:
        block = hmac_sha256(prk, block + bytes(info) + bytes((counter,)))
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


def ed25519_verify(public_key, message, signature):
    """Ed25519 verification (RFC 8032, 5.1.7; cofactorless check, see
    protocol.ed25519). Returns a bool; False, not an exception, for byte
    strings of the wrong length, undecodable keys or non-canonical S."""
    from protocol import ed25519

    return ed25519.verify(public_key, message, signature)
