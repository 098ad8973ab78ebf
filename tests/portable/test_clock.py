# protocol.clock's one time bound, and the time updates that must keep to it.
# Runs on CPython (pytest) and MicroPython (tests/mpy_runner.py).
import testvectors
from protocol import clock, reasons, timeupdate

V = testvectors.load("cose")
LOCK = V["lock_id"]
KEY = testvectors.unhex(V["update_key"])
T = V["claims"]["iat"]  # a POSIX time in 2026
del V

EPOCH = 1577836800  # 2020-01-01T00:00:00Z, written out, not taken from the code
TOP = 2651578623  # 2054-01-09T13:37:03Z = EPOCH + 2**30 - 1
PAST_2088 = EPOCH + 2 ** 31 + 1000  # what an old firmware let a time update set


def test_the_bound_is_the_32_bit_small_int_range():
    # MicroPython's small ints on 32-bit ports are 31-bit signed: the
    # largest is 2**30 - 1. Every lock time stays one.
    assert clock.MAX_LOCK_TIME == 2 ** 30 - 1 == 1073741823
    assert clock.UNIX_AT_LOCK_EPOCH == EPOCH
    assert clock.UNIX_MAX == TOP == EPOCH + clock.MAX_LOCK_TIME
    assert clock.to_unix(clock.MAX_LOCK_TIME) == TOP and clock.from_unix(TOP) == 2 ** 30 - 1


def test_in_range_and_lock_time():
    for t in (EPOCH, EPOCH + 1, T, TOP - 1, TOP):
        assert clock.in_range(t), t
        assert clock.lock_time(t) == t - EPOCH
    for t in (EPOCH - 1, TOP + 1, PAST_2088, 0, -1, 2 ** 64):
        assert not clock.in_range(t), t
        assert testvectors.raises(clock.ClockError, clock.lock_time, t), t
    for t in (True, False, None, "1767254400", b"\x01", 1767254400.0, [T]):
        assert not clock.in_range(t), t
        assert testvectors.raises(clock.ClockError, clock.lock_time, t), t
    assert issubclass(clock.ClockError, ValueError)


def _reason(data, lock=LOCK, key=KEY):
    try:
        timeupdate.decode(data, lock, key)
    except timeupdate.TimeUpdateError as exc:
        assert isinstance(exc, ValueError)
        return exc.reason
    return None


def test_time_updates_keep_to_the_bound():
    assert timeupdate.decode(timeupdate.encode(LOCK, T, KEY), LOCK, KEY) == T
    assert timeupdate.decode(timeupdate.encode(LOCK, TOP, KEY), LOCK, KEY) == TOP
    for t in (PAST_2088, TOP + 1, EPOCH - 1, 1, 0, -1, 2 ** 64 - 1):
        assert _reason(timeupdate.encode(LOCK, t, KEY)) == reasons.TIME_OUT_OF_RANGE, t


def test_refused_time_updates_say_why():
    data = timeupdate.encode(LOCK, T, KEY)
    assert _reason(data, key=bytes(32)) == reasons.BAD_SIGNATURE
    assert _reason(data, lock="lock-0002") == reasons.WRONG_LOCK
    assert _reason(b"\xff") == reasons.BAD_SIGNATURE
    assert reasons.TIME_OUT_OF_RANGE == 23
    assert reasons.name(reasons.TIME_OUT_OF_RANGE) == "time-out-of-range"
