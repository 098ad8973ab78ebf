# Fake `time` for board_machine (patched in as its module-level `time`).
# ticks_ms follows the host's clock plus a settable offset, wrapping like the
# ports (at 2**30 ms); sleep_us only counts. time()/gmtime(0) follow the port's
# epoch (2000 on ESP32, 1970 on rp2) and the fake RTC, as on the boards.
import time as _host

TICKS_PERIOD = 1 << 30
UNIX_AT_2000 = 946684800

offset = 0  # ms added to the host clock: set near TICKS_PERIOD to cross the wrap
slept_us = 0
epoch_offset = 0  # POSIX seconds at the port's epoch
rtc = None  # set by fakes.machine: the port's RTC


def configure(port):
    global epoch_offset
    epoch_offset = UNIX_AT_2000 if port == "esp32" else 0


def _host_ms():
    if hasattr(_host, "monotonic"):
        return int(_host.monotonic() * 1000)  # CPython
    return _host.ticks_ms()  # MicroPython (wraps at the same period)


def ticks_ms():
    return (_host_ms() + offset) % TICKS_PERIOD


def ticks_diff(a, b):
    d = (a - b) % TICKS_PERIOD
    return d - TICKS_PERIOD if d >= TICKS_PERIOD // 2 else d


def ticks_add(a, b):
    return (a + b) % TICKS_PERIOD


def sleep_us(us):
    global slept_us
    slept_us += us


def sleep_ms(ms):
    sleep_us(ms * 1000)


def time():
    """Seconds since the port's epoch, from the RTC (as the ports do)."""
    return rtc.port_seconds()


def gmtime(secs=None):
    if secs is None:
        secs = time()
    return _host.gmtime(secs + epoch_offset)
