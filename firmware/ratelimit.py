# Failed proofs of possession, counted per token.
#
# A failure before a token verifies costs only that connection (firmware/app.py
# closes it and holds the central off for a while); nothing global is slowed,
# so a valid key of another token is never delayed. A token that verifies but
# whose proof fails was presented by someone who holds the token without its
# key (or with a key unlocked by a wrong code): those failures are counted per
# token (cti), kept in flash across reboots and dropped once the token has
# expired. The count is what the staff-key issue refuses a token on for good.
#
# Flash: one small file, written only on a failed proof and when a counted
# token proves itself (the count is cleared); never on an ordinary opening.
from protocol import cbor
from protocol.crypto import sha256

try:
    from micropython import const
except ImportError:  # CPython
    def const(x):
        return x

NAME = "proof-failures"
KEPT = const(16)  # tokens tracked at once; the one expiring first gives way
REPORT_AT = const(5)  # failures at which the lock logs RATE_LIMITED for the token
BURN_AT = const(5)  # failures after which the token is refused for good (TOKEN_BURNED)


def _tag(cti):
    return sha256(bytes(cti))[:8]


class ProofFailures:
    def __init__(self, store):
        self.store = store
        self.entries = []  # type: list[list]  # [tag, exp (lock time), count]
        try:
            raw = store.load(NAME)
            for tag, exp, count in cbor.loads(raw) if raw else []:
                if isinstance(tag, bytes) and isinstance(exp, int) and isinstance(count, int):
                    self.entries.append([tag, exp, count])
        except (ValueError, TypeError):  # unreadable: start again, never fail open on it
            self.entries = []

    def count(self, cti):
        tag = _tag(cti)
        for e in self.entries:
            if e[0] == tag:
                return e[2]
        return 0

    def failed(self, cti, exp, now):
        """Count one failed proof of the token; returns its count."""
        tag = _tag(cti)
        keep = [e for e in self.entries if e[1] >= now]  # type: list[list]  # expired go
        for e in keep:
            if e[0] == tag:
                e[2] += 1
                break
        else:
            keep.append([tag, exp, 1])
            if len(keep) > KEPT:
                first = 0  # the token expiring first gives way
                for i in range(len(keep)):
                    if keep[i][1] < keep[first][1]:
                        first = i
                keep.pop(first)
        self.entries = keep
        self._save()
        return self.count(cti)

    def proved(self, cti):
        """The token's key proved itself: its count goes (a write only if it had one)."""
        tag = _tag(cti)
        keep = [e for e in self.entries if e[0] != tag]
        if len(keep) != len(self.entries):
            self.entries = keep
            self._save()

    def _save(self):
        self.store.save(NAME, cbor.dumps(self.entries))
