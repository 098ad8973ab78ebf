# Key hierarchy. The issuer holds the site secret; each lock holds only its own
# lock secret, so a lock's flash read out opens nothing else. Every other key
# the lock uses is derived from its lock secret with a distinct label.
from protocol.crypto import hkdf_sha256

SITE_SALT = b"nyckelfri-lock/v1"
KEY_LEN = 32


class KeysError(ValueError):
    """An identifier that cannot name a key (never says anything about keys)."""


def _text(value):
    # bytes(5) would be five zero bytes: only text or bytes name a lock or token.
    if isinstance(value, str):
        value = value.encode()
    elif not isinstance(value, (bytes, bytearray)):
        raise KeysError("identifier must be text or bytes")
    if not value:
        raise KeysError("identifier must not be empty")
    return bytes(value)


def lock_secret(site_secret, lock_id):
    """The lock's own secret: HKDF-SHA256(site secret, salt, "lock:" + lock id)."""
    return hkdf_sha256(site_secret, SITE_SALT, b"lock:" + _text(lock_id), KEY_LEN)


def token_mac_key(lock_secret_):
    """Keys COSE_Mac0 access tokens for this lock (HMAC suite)."""
    return hkdf_sha256(lock_secret_, b"", b"token-mac", KEY_LEN)


def pop_key(lock_secret_, cti):
    """Per-token proof-of-possession key: HKDF(lock secret, salt = cti)."""
    if not isinstance(cti, (bytes, bytearray)) or not cti:
        raise KeysError("token id must be a non-empty byte string")
    return hkdf_sha256(lock_secret_, bytes(cti), b"pop", KEY_LEN)


def update_key(lock_secret_):
    """Keys time and revocation updates addressed to this lock."""
    return hkdf_sha256(lock_secret_, b"", b"update", KEY_LEN)


def admin_key(lock_secret_):
    """Keys the installer's authenticated serial requests (sync, log, decommission)."""
    return hkdf_sha256(lock_secret_, b"", b"admin", KEY_LEN)


def log_key(lock_secret_):
    """Keys the MAC chain of the lock's event log."""
    return hkdf_sha256(lock_secret_, b"", b"log", KEY_LEN)
