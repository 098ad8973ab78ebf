# Lock time: seconds since 2020-01-01 00:00:00 UTC. It stays a small int on
# 32-bit ports until 2054, where POSIX seconds would already be bignums.
try:
    from micropython import const
except ImportError:  # CPython
    def const(x):
        return x

UNIX_AT_LOCK_EPOCH = const(1577836800)  # 2020-01-01T00:00:00Z as POSIX seconds
MAX_LOCK_TIME = const(0x7FFFFFFF)


def from_unix(unix_seconds):
    return int(unix_seconds) - UNIX_AT_LOCK_EPOCH


def to_unix(lock_seconds):
    return int(lock_seconds) + UNIX_AT_LOCK_EPOCH
