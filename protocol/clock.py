# Lock time: seconds since 2020-01-01 00:00:00 UTC. It stays a small int on
# 32-bit ports until 2054, where POSIX seconds would already be bignums.
#
# The one time bound, for every time that enters the lock (time updates,
# token claims, commissioning, admin sync, revocation updates): lock times
# 0 .. MAX_LOCK_TIME. MicroPython's small ints on 32-bit ports are 31-bit
# signed (-2**30 .. 2**30 - 1); a larger lock time is a heap-allocated bignum
# in every comparison the decision makes, and the 2020 epoch was chosen
# precisely so that lock times stay small. So the bound is the representation
# bound: 2**30 - 1 s, 2054-01-09T13:37:03Z. A time outside it is refused
# (reasons.TIME_OUT_OF_RANGE), never clamped: a clock pushed past it would
# make every token EXPIRED.
try:
    from micropython import const
except ImportError:  # CPython
    def const(x):
        return x

UNIX_AT_LOCK_EPOCH = const(1577836800)  # 2020-01-01T00:00:00Z as POSIX seconds
MAX_LOCK_TIME = const(0x3FFFFFFF)  # 2054-01-09T13:37:03Z, the largest small int
UNIX_MAX = const(2651578623)  # UNIX_AT_LOCK_EPOCH + MAX_LOCK_TIME, as POSIX seconds


class ClockError(ValueError):
    """A time the lock cannot hold (not an integer, or out of range)."""


def from_unix(unix_seconds):
    return int(unix_seconds) - UNIX_AT_LOCK_EPOCH


def to_unix(lock_seconds):
    return int(lock_seconds) + UNIX_AT_LOCK_EPOCH


def is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def in_range(unix_seconds):
    """True if `unix_seconds` is an integer POSIX time within the lock's bound."""
    return is_int(unix_seconds) and UNIX_AT_LOCK_EPOCH <= unix_seconds <= UNIX_MAX


def lock_time(unix_seconds):
    """POSIX seconds as lock seconds; ClockError unless in_range()."""
    if not is_int(unix_seconds):
        raise ClockError("time is not an integer")
    if not in_range(unix_seconds):
        raise ClockError("time outside 2020-01-01 .. 2054-01-09")
    return unix_seconds - UNIX_AT_LOCK_EPOCH
