# Revocation ("spärr") of staff keys and single tokens, and the updates that
# carry it to the lock.
#
# An update is a COSE_Mac0 (HMAC 256/256) under the lock's update key
# (protocol.keys.update_key) whose payload is a CBOR map: key 0 names the kind
# of update (1: revocation; protocol/timeupdate.py's time updates have no key 0
# and carry key 6, which this never does), key 1 the lock it is for. It carries a version
# (only ever increasing per lock), when it was issued, a site-wide cut-off and
# the entries; it is the whole list, not a change to it. Entries name a staff
# key with a cut-off ("every token issued to this key before T") or a single
# token id. Since a token lives at most 24 hours after its iat, an entry can be
# dropped once every token it covers has expired, so the list stays small.
# When an update holds more entries than the lock can keep, the lock raises
# its cut-off past the update's issue time instead: every older token is
# refused. Never fail open.
#
# On the wire times are POSIX seconds; in RevocationList, lock seconds.
from protocol import cbor, clock, cose, reasons
from protocol.token import MAX_CTI, MAX_LIFETIME, MAX_TEXT, SKEW

try:
    from micropython import const
except ImportError:  # CPython
    def const(x):
        return x

MAX_ENTRIES = const(64)
MAX_VERSION = const(0x3FFFFFFF)  # stays a small int on 32-bit ports
KIND_STAFF = const(1)
KIND_TOKEN = const(2)
UPDATE_REVOCATION = const(1)  # payload key 0: what kind of update this is
_F_TYPE = const(0)
_F_LOCK = const(1)
_F_VERSION = const(2)
_F_ISSUED = const(3)
_F_CUTOFF = const(4)
_F_ENTRIES = const(5)
_SPENT_AFTER = MAX_LIFETIME + SKEW  # a staff cut-off covers nothing valid after this


class RevocationError(ValueError):
    """A refused update or unreadable stored list; `reason` is a reasons code."""

    def __init__(self, reason, message):
        super().__init__(message)
        self.reason = reason


def _malformed(what):
    return RevocationError(reasons.MALFORMED, what)


def _uint(value, top):
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= top


def _entry_value_ok(kind, value):
    if isinstance(kind, bool):  # true == 1 in a dict or comparison
        return False
    if kind == KIND_STAFF:
        return isinstance(value, str) and 0 < len(value) <= MAX_TEXT
    if kind == KIND_TOKEN:
        return isinstance(value, bytes) and 0 < len(value) <= MAX_CTI
    return False


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
        """reasons.ALLOW, ISSUED_BEFORE_CUTOFF or REVOKED for verified Claims."""
        if claims.iat < self.cutoff:
            return reasons.ISSUED_BEFORE_CUTOFF
        if claims.cti in self.tokens:
            return reasons.REVOKED
        before = self.staff.get(claims.sub)
        if before is not None and claims.iat < before:
            return reasons.REVOKED
        return reasons.ALLOW

    def prune(self, now):
        """Drop entries every covered token of which has expired by `now`.

        A token covered by a staff entry was issued before its cut-off T, so it
        expired by T + MAX_LIFETIME and is refused from SKEW later; a token
        entry holds the token's own expiry.
        """
        for sub in [s for s, t in self.staff.items() if t + _SPENT_AFTER < now]:
            del self.staff[sub]
        for cti in [c for c, exp in self.tokens.items() if exp + SKEW < now]:
            del self.tokens[cti]

    def to_bytes(self):
        """Compact storage form (lock time) for the lock's own flash."""
        entries = [[KIND_STAFF, s, t] for s, t in self.staff.items()]
        entries += [[KIND_TOKEN, c, t] for c, t in self.tokens.items()]
        return cbor.dumps([self.version, self.issued, self.cutoff, entries])

    @classmethod
    def from_bytes(cls, data):
        """The stored list; RevocationError(MALFORMED) for anything else.

        A caller that cannot read its stored list must not fall back to an
        empty one (that would fail open).
        """
        try:
            stored = cbor.loads(data)
        except cbor.CBORError:
            raise _malformed("stored revocation list unreadable")
        if not isinstance(stored, list) or len(stored) != 4:
            raise _malformed("stored revocation list unreadable")
        version, issued, cutoff, entries = stored
        if not (_uint(version, MAX_VERSION) and _uint(issued, clock.MAX_LOCK_TIME)
                and _uint(cutoff, clock.MAX_LOCK_TIME)):
            raise _malformed("stored revocation list unreadable")
        if not isinstance(entries, list) or len(entries) > MAX_ENTRIES:
            raise _malformed("stored revocation list unreadable")
        rl = cls(version, issued, cutoff)
        for e in entries:
            if not isinstance(e, list) or len(e) != 3:
                raise _malformed("stored revocation entry unreadable")
            kind, value, t = e
            if not _entry_value_ok(kind, value) or not _uint(t, clock.MAX_LOCK_TIME):
                raise _malformed("stored revocation entry unreadable")
            (rl.staff if kind == KIND_STAFF else rl.tokens)[value] = t
        return rl


# ---------------------------------------------------------------- issuer side

def encode_update(lock_id, version, issued_unix, cutoff_unix, staff, tokens, update_key):
    """Issuer side: a revocation update for one lock.

    `staff` maps staff key ids to cut-off POSIX times, `tokens` maps token ids
    to their expiry (POSIX); `cutoff_unix` 0 means no site-wide cut-off.
    Returns the COSE_Mac0 bytes.
    """
    entries = [[KIND_STAFF, s, int(t)] for s, t in sorted(staff.items())]
    entries += [[KIND_TOKEN, bytes(c), int(t)] for c, t in sorted(tokens.items())]
    payload = cbor.dumps({
        _F_TYPE: UPDATE_REVOCATION,
        _F_LOCK: lock_id,
        _F_VERSION: int(version),
        _F_ISSUED: int(issued_unix),
        _F_CUTOFF: int(cutoff_unix),
        _F_ENTRIES: entries,
    })
    return cose.mac0_create(payload, update_key)


# ---------------------------------------------------------------- lock side

def _lock_time(value):
    # A POSIX time in an update, as lock seconds (protocol/clock.py's one bound).
    if not clock.is_int(value):
        raise _malformed("bad time in update")
    if not clock.in_range(value):
        raise RevocationError(reasons.TIME_OUT_OF_RANGE, "time in update out of range")
    return clock.from_unix(value)


def _open(data, lock_id, update_key):
    # The payload map of a verified revocation update addressed to this lock.
    try:
        payload = cose.mac0_verify(data, update_key)
    except cose.COSEVerifyError:
        raise RevocationError(reasons.BAD_SIGNATURE, "update does not verify")
    except cose.COSEError:
        raise _malformed("update is not a COSE_Mac0 HMAC 256/256")
    try:
        u = cbor.loads(payload)
    except cbor.CBORError:
        raise _malformed("update is not well-formed")
    if not isinstance(u, dict):
        raise _malformed("update must be a map")
    kind = u.get(_F_TYPE)
    if isinstance(kind, bool) or kind != UPDATE_REVOCATION:
        raise _malformed("not a revocation update")
    target = u.get(_F_LOCK)
    if not isinstance(target, str) or target != lock_id:
        raise RevocationError(reasons.WRONG_LOCK, "update is for another lock")
    return u


def _revocation(u):
    version = u.get(_F_VERSION)
    entries = u.get(_F_ENTRIES)
    if not _uint(version, MAX_VERSION) or version < 1 or not isinstance(entries, list):
        raise _malformed("revocation update lacks version or entries")
    cutoff = u.get(_F_CUTOFF, 0)
    rl = RevocationList(version, _lock_time(u.get(_F_ISSUED)),
                        0 if _uint(cutoff, 0) else _lock_time(cutoff))
    for e in entries:
        if not isinstance(e, list) or len(e) != 3:
            raise _malformed("bad revocation entry")
        kind, value, t = e
        if not _entry_value_ok(kind, value):
            raise _malformed("bad revocation entry")
        t = _lock_time(t)
        if kind == KIND_STAFF:
            rl.staff[value] = max(t, rl.staff.get(value, 0))
        else:
            rl.tokens[value] = max(t, rl.tokens.get(value, 0))
    return rl


def decode_update(data, lock_id, update_key):
    """Verify a revocation update addressed to this lock; return a RevocationList.

    The returned list may be larger than MAX_ENTRIES; `apply` bounds it.
    Every failure raises RevocationError (BAD_SIGNATURE, WRONG_LOCK, MALFORMED,
    TIME_OUT_OF_RANGE for an integer time outside protocol/clock.py's bound).
    """
    return _revocation(_open(data, lock_id, update_key))


def apply(current, update, now):
    """The state after `update`, or RevocationError(ROLLBACK) for an old version.

    Prunes spent entries first; if still more than MAX_ENTRIES remain, the
    site-wide cut-off rises past the update's issue time and every staff
    cut-off in it, and the entries go: every token they covered was issued
    before then (never fail open). The site-wide cut-off never goes down.
    """
    if update.version <= current.version:
        raise RevocationError(reasons.ROLLBACK, "revocation update is not newer")
    update.prune(now)
    if len(update) > MAX_ENTRIES:
        floor = update.issued + 1  # a revoked token existed when the update was made
        for t in update.staff.values():
            floor = max(floor, t)
        update.cutoff = max(update.cutoff, floor)
        update.staff = {}
        update.tokens = {}
    update.cutoff = max(update.cutoff, current.cutoff)
    return update
