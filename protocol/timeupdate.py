# Authenticated time updates for one lock: a COSE_Mac0 under the lock's update
# key. A key-carried update (no nonce) says only "it is at least T" and can only
# move the lock's clock forward; the installer's serial sync is bound to the
# lock's nonce instead (an ADMIN "sync" request) and may correct it backwards.
from protocol import cbor, cose

try:
    from micropython import const
except ImportError:  # CPython
    def const(x):
        return x

_F_LOCK = const(1)
_F_TIME = const(6)  # distinct from every revocation-update key, so the two never mix


class TimeUpdateError(ValueError):
    pass


def encode(lock_id, posix_time, update_key):
    return cose.mac0_create(cbor.dumps({_F_LOCK: lock_id, _F_TIME: int(posix_time)}), update_key)


def is_time_update(payload_map):
    return isinstance(payload_map, dict) and _F_TIME in payload_map


def decode(data, lock_id, update_key):
    """POSIX time of a verified update addressed to this lock."""
    try:
        u = cbor.loads(cose.mac0_verify(data, update_key))
    except (cose.COSEError, cbor.CBORError):
        raise TimeUpdateError("time update does not verify")
    if not isinstance(u, dict) or u.get(_F_LOCK) != lock_id:
        raise TimeUpdateError("time update is for another lock")
    t = u.get(_F_TIME)
    if not isinstance(t, int) or isinstance(t, bool) or t <= 0:
        raise TimeUpdateError("time update has no valid time")
    return t
