# Revocation ("spärr") of staff keys and single tokens, and its updates.
#
# An update is a COSE_Mac0 under the lock's update key whose payload names the
# lock, a version (only ever increasing per lock), when it was issued, a
# site-wide cut-off and the entries. Entries name a staff key with a cut-off
# ("every token issued to this key before T") or a single token id. Since a
# token lives at most 24 hours an entry can be dropped once every token it
# covers has expired, so the list stays small. When an update holds more
# entries than the lock can keep, the lock raises its cut-off to the update's
# issue time instead: every older token is refused. Never fail open.
from protocol import cbor
from protocol import clock
from protocol import cose
from protocol import reasons

try:
    from micropython import const
except ImportError:  # CPython
    def const(x):
        return x

MAX_ENTRIES = const(64)
KIND_STAFF = const(1)
KIND_TOKEN = const(2)
_F_LOCK = const(1)
_F_VERSION = const(2)
_F_ISSUED = const(3)
_F_CUTOFF = const(4)
_F_ENTRIES = const(5)
_LIFETIME = const(86400 + 120)  # token lifetime plus skew: when an entry is spent


class RevocationError(ValueError):
    def __init__(self, reason, message):
        ValueError.__init__(self, message)
        self.reason = reason


class RevocationList:
    """The lock's revocation state. Times are lock seconds."""

    def __init__(self, version=0, issued=0, cutoff=0, staff=None, tokens=None):
        self.version = version
        self.issued = issued
        self.cutoff = cutoff  # tokens issued before this are refused (0: none)
        self.staff = staff if staff is not None else {}  # sub -> cut-off time
        self.tokens = tokens if tokens is not None else {}  # cti -> token expiry

    def __len__(self):
        return len(self.staff) + len(self.tokens)

    def __repr__(self):
        return "<RevocationList v%d %d entries cutoff=%d>" % (self.version, len(self), self.cutoff)

    def check(self, claims):
        if claims.iat < self.cutoff:
            return reasons.ISSUED_BEFORE_CUTOFF
        if claims.cti in self.tokens:
            return reasons.REVOKED
        before = self.staff.get(claims.sub)
        if before is not None and claims.iat < before:
            return reasons.REVOKED
        return reasons.ALLOW

    def prune(self, now):
        """Drop entries every covered token of which has expired by `now`."""
        for sub in [s for s, t in self.staff.items() if t + _LIFETIME < now]:
            del self.staff[sub]
        for cti in [c for c, exp in self.tokens.items() if exp + 120 < now]:
            del self.tokens[cti]

    def to_bytes(self):
        """Compact storage form (lock time) for the lock's own flash."""
        entries = [[KIND_STAFF, s, t] for s, t in self.staff.items()]
        entries += [[KIND_TOKEN, c, t] for c, t in self.tokens.items()]
        return cbor.dumps([self.version, self.issued, self.cutoff, entries])

    @classmethod
    def from_bytes(cls, data):
        try:
            version, issued, cutoff, entries = cbor.loads(data)
        except (cbor.CBORError, ValueError, TypeError):
            raise RevocationError(reasons.MALFORMED, "stored revocation list unreadable")
        rl = cls(version, issued, cutoff)
        for kind, value, t in entries:
            (rl.staff if kind == KIND_STAFF else rl.tokens)[value] = t
        return rl


def encode_update(lock_id, version, issued_unix, cutoff_unix, staff, tokens, update_key):
    """Issuer side: a revocation update for one lock.

    `staff` maps staff key ids to cut-off POSIX times, `tokens` maps token ids
    to their expiry (POSIX). Returns the COSE_Mac0 bytes.
    """
    entries = [[KIND_STAFF, s, int(t)] for s, t in sorted(staff.items())]
    entries += [[KIND_TOKEN, bytes(c), int(t)] for c, t in sorted(tokens.items())]
    payload = cbor.dumps({
        _F_LOCK: lock_id,
        _F_VERSION: int(version),
        _F_ISSUED: int(issued_unix),
        _F_CUTOFF: int(cutoff_unix),
        _F_ENTRIES: entries,
    })
    return cose.mac0_create(payload, update_key)


def _posix(value):
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise RevocationError(reasons.MALFORMED, "bad time in revocation update")
    return max(0, clock.from_unix(value)) if value else 0


def decode_update(data, lock_id, update_key):
    """Verify an update addressed to this lock; return a RevocationList.

    The returned list may be larger than MAX_ENTRIES; `apply` bounds it.
    """
    try:
        payload = cose.mac0_verify(data, update_key)
        u = cbor.loads(payload)
    except cose.COSEError:
        raise RevocationError(reasons.BAD_SIGNATURE, "revocation update does not verify")
    except cbor.CBORError:
        raise RevocationError(reasons.MALFORMED, "revocation update is not well-formed")
    if not isinstance(u, dict) or u.get(_F_LOCK) != lock_id:
        raise RevocationError(reasons.WRONG_LOCK, "revocation update is for another lock")
    version = u.get(_F_VERSION)
    entries = u.get(_F_ENTRIES)
    if not isinstance(version, int) or version < 1 or not isinstance(entries, list):
        raise RevocationError(reasons.MALFORMED, "revocation update lacks version or entries")
    rl = RevocationList(version, _posix(u.get(_F_ISSUED, 0)), _posix(u.get(_F_CUTOFF, 0)))
    for e in entries:
        if not isinstance(e, list) or len(e) != 3:
            raise RevocationError(reasons.MALFORMED, "bad revocation entry")
        kind, value, t = e
        if kind == KIND_STAFF and isinstance(value, str):
            rl.staff[value] = _posix(t)
        elif kind == KIND_TOKEN and isinstance(value, bytes):
            rl.tokens[value] = _posix(t)
        else:
            raise RevocationError(reasons.MALFORMED, "bad revocation entry")
    return rl


def apply(current, update, now):
    """The state after `update`, or RevocationError(ROLLBACK) for an old version.

    Prunes spent entries first; if still more than MAX_ENTRIES remain, the
    site-wide cut-off rises to the update's issue time (never fail open).
    """
    if update.version <= current.version:
        raise RevocationError(reasons.ROLLBACK, "revocation update is not newer")
    update.prune(now)
    if len(update) > MAX_ENTRIES:
        update.cutoff = max(update.cutoff, update.issued, current.cutoff)
        update.staff = {}
        update.tokens = {}
    update.cutoff = max(update.cutoff, current.cutoff)
    return update
