# Authenticated time updates for one lock: a COSE_Mac0 under the lock's update
# key. A key-carried update (no nonce) says only "it is at least T" and can only
# move the lock's clock forward; the installer's serial sync is bound to the
# lock's nonce instead (an ADMIN "sync" request) and may correct it backwards.
from protocol import cbor, clock, cose, reasons

try:
    from micropython import const
except ImportError:  # CPython
    def const(x):
        return x

_F_LOCK = const(1)
_F_TIME = const(6)  # distinct from every revocation-update key, so the two never mix


class TimeUpdateError(ValueError):
    """A refused time update; `reason` is a protocol.reasons code."""

    def __init__(self, reason, message):
        super().__init__(message)
        self.reason = reason


def encode(lock_id, posix_time, update_key):
    return cose.mac0_create(cbor.dumps({_F_LOCK: lock_id, _F_TIME: int(posix_time)}), update_key)


def is_time_update(payload_map):
    return isinstance(payload_map, dict) and _F_TIME in payload_map


def decode(data, lock_id, update_key):
    """POSIX time of a verified update addressed to this lock.

    TimeUpdateError: BAD_SIGNATURE (does not verify), WRONG_LOCK, MALFORMED
    (no integer time), TIME_OUT_OF_RANGE (outside protocol/clock.py's bound).
    """
    try:
        u = cbor.loads(cose.mac0_verify(data, update_key))
    except (cose.COSEError, cbor.CBORError):
        raise TimeUpdateError(reasons.BAD_SIGNATURE, "time update does not verify")
    if not isinstance(u, dict) or u.get(_F_LOCK) != lock_id:
        raise TimeUpdateError(reasons.WRONG_LOCK, "time update is for another lock")
    t = u.get(_F_TIME)
    if not clock.is_int(t):
        raise TimeUpdateError(reasons.MALFORMED, "time update has no valid time")
    if not clock.in_range(t):
        raise TimeUpdateError(reasons.TIME_OUT_OF_RANGE, "time update is out of range")
    return t
