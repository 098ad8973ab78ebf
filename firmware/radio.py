# Advertising and connection parameters: when the lock advertises slowly and
# when fast, and the connection it asks a key for. Portable (MicroPython and
# CPython); a board's HAL asks it for the interval each time it (re)starts
# advertising, and tells it of door and button events.
#
# Idle, the lock advertises once a second: about 6-10 uA on an nRF52840
# (docs/ENERGY.md), and a phone that scans continuously finds it within about
# a second (half an interval on average). For FAST_WINDOW_MS after a door or
# button event (someone is at the door and may be about to use a key) it
# advertises every FAST_INTERVAL_MS, so a key that arrives then connects at
# once; the window ends by itself (one timer per event, none while idle).
try:
    from micropython import const
except ImportError:  # CPython
    def const(x):
        return x

IDLE_INTERVAL_MS = const(1000)
FAST_INTERVAL_MS = const(100)
FAST_WINDOW_MS = const(30000)

# The connection parameters the lock asks for once a key has connected (the
# exchange: HELLO, one OPEN of 2 writes, RESULT, HELLO, then the key drops
# the link). A short interval makes the exchange quick and costs nothing
# while idle, since a link lives for about a second. Units as in the
# Bluetooth Core spec (interval 1.25 ms, timeout 10 ms). On the Zephyr port
# they are build options (CONFIG_BT_PERIPHERAL_PREF_*, boards/nrf52840_zephyr.py);
# MicroPython's `bluetooth` module has no call for a peripheral to ask for them.
CONN_INTERVAL_MIN_MS = 15  # 12 units (Android and iOS accept 15 ms)
CONN_INTERVAL_MAX_MS = 30  # 24 units
CONN_LATENCY = const(0)  # answer every connection event: the exchange is short
CONN_SUPERVISION_TIMEOUT_MS = const(2000)  # > (1 + latency) * 2 * max interval


def interval_units(ms):
    """An advertising interval in ms as the 0.625 ms units of the spec."""
    return int(ms * 8 // 5)


class AdvertisingPolicy:
    """Slow when idle, fast for a while after an event."""

    def __init__(self, idle_ms=IDLE_INTERVAL_MS, fast_ms=FAST_INTERVAL_MS,
                 window_ms=FAST_WINDOW_MS):
        if not (20 <= fast_ms <= idle_ms <= 10240 and window_ms >= 0):
            # The spec allows 20 ms to 10.24 s for connectable advertising.
            raise ValueError("advertising intervals out of range")
        self.idle_ms = idle_ms
        self.fast_ms = fast_ms
        self.window_ms = window_ms
        self._fast_until = None
        self.events = 0

    def event(self, now_ms):
        """A door or button event at now_ms (the HAL's ticks_ms)."""
        self._fast_until = now_ms + self.window_ms
        self.events += 1

    def fast_left_ms(self, now_ms):
        """How long the fast window still runs (0 when idle)."""
        if self._fast_until is None or now_ms >= self._fast_until:
            return 0
        return self._fast_until - now_ms

    def interval_ms(self, now_ms):
        return self.fast_ms if self.fast_left_ms(now_ms) else self.idle_ms
