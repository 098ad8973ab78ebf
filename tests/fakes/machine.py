# Fake `machine` for the ESP32-C3 and rp2 ports (configure(port) picks one).
# Constants and signatures follow the port stubs; behaviour is the minimum
# the HAL relies on. Test side: pin(id) gives a pin's shared state
# (set_level, bounce, history), set_adc_uv, rtc_state, watchdog(), FakeReset.
PORT = "esp32"
_time = None  # fakes.faketime

# Reset causes (stub values). rp2 has only PWRON_RESET and WDT_RESET.
PWRON_RESET = 1
WDT_RESET = 3

_cause = PWRON_RESET
_next_cause = None
_wdt = None
lightsleeps = 0


class FakeReset(BaseException):
    """machine.reset() or the watchdog: the board restarts (never returns)."""

    def __init__(self, cause):
        BaseException.__init__(self, cause)
        self.cause = cause


def configure(port, faketime, cause=None):
    global PORT, _time, _cause, HARD_RESET, DEEPSLEEP_RESET, SOFT_RESET
    PORT = port
    _time = faketime
    g = globals()
    if port == "esp32":
        HARD_RESET, DEEPSLEEP_RESET, SOFT_RESET = 2, 4, 5
        Pin.IN, Pin.OUT, Pin.OPEN_DRAIN = 1, 3, 7
        Pin.PULL_DOWN, Pin.PULL_UP = 1, 2
        Pin.IRQ_RISING, Pin.IRQ_FALLING = 1, 2
        g["ADC"] = ADCEsp32C3
    else:
        for name in ("HARD_RESET", "DEEPSLEEP_RESET", "SOFT_RESET"):
            g.pop(name, None)
        Pin.IN, Pin.OUT, Pin.OPEN_DRAIN = 0, 1, 2
        Pin.PULL_UP, Pin.PULL_DOWN = 1, 2
        Pin.IRQ_FALLING, Pin.IRQ_RISING = 4, 8
        g["ADC"] = ADCRp2
    _cause = PWRON_RESET if cause is None else cause
    RTC._state = _RtcState(port)
    faketime.rtc = RTC._state


# --- reset and watchdog -------------------------------------------------------

def reset_cause():
    return _cause


def reset():
    # rp2 reboots through the watchdog, so the next boot reports WDT_RESET.
    raise FakeReset(globals()["SOFT_RESET"] if PORT == "esp32" else WDT_RESET)


def unique_id():
    return b"\x01\x02\x03\x04\x05\x06"


def lightsleep(time_ms=None):
    global lightsleeps
    lightsleeps += 1


def idle():
    pass


class WDT:
    def __init__(self, *, id=0, timeout=5000):
        global _wdt
        if PORT == "rp2" and timeout > 8388:
            raise ValueError("timeout exceeds 8388 ms")
        if timeout <= 0:
            raise ValueError("timeout")
        self.timeout = timeout
        self.feeds = 0
        self.last_feed = _time.ticks_ms()
        self.starts = 1 if _wdt is None else _wdt.starts + 1
        _wdt = self

    def feed(self):
        self.feeds += 1
        self.last_feed = _time.ticks_ms()

    def expired(self):
        return _time.ticks_diff(_time.ticks_ms(), self.last_feed) > self.timeout

    def fire_if_expired(self):
        """What the hardware does: reset the board if it was not fed in time."""
        if self.expired():
            raise FakeReset(WDT_RESET)


def watchdog():
    """The running WDT (None if never started)."""
    return _wdt


# --- pins -------------------------------------------------------------------

class _PinState:
    def __init__(self, pid):
        self.id = pid
        self.mode = None
        self.pull = None
        self.out = 0
        self.level = None  # driven from outside (a switch to GND: 0); None: floating
        self.bounce = []  # values the next reads return before the level settles
        self.history = []  # output values written, in order
        self.handler = None
        self.trigger = 0

    def read(self):
        if self.bounce:
            return self.bounce.pop(0)
        if self.mode == Pin.OUT:
            return self.out
        if self.level is not None:
            return self.level
        return 1 if self.pull == Pin.PULL_UP else 0

    def set_level(self, level):
        """The outside world drives the pin (fires an irq on an edge)."""
        before = self.read()
        self.level = level
        after = self.read()
        if self.handler is not None and before != after:
            edge = Pin.IRQ_RISING if after else Pin.IRQ_FALLING
            if self.trigger & edge:
                self.handler(Pin(self.id))


_pins = {}


def pin(pid):
    """Test side: the state behind Pin(pid)."""
    st = _pins.get(pid)
    if st is None:
        st = _pins[pid] = _PinState(pid)
    return st


def _valid_id(pid):
    if PORT == "esp32":
        return isinstance(pid, int) and 0 <= pid <= 21  # ESP32-C3: GPIO0-21
    if isinstance(pid, str):
        return pid in ("LED", "WL_GPIO0", "WL_GPIO1", "WL_GPIO2") or pid.startswith("GP")
    return isinstance(pid, int) and 0 <= pid <= 29  # RP2040: GP0-29


class Pin:
    IN = 1
    OUT = 3
    OPEN_DRAIN = 7
    PULL_UP = 2
    PULL_DOWN = 1
    IRQ_RISING = 1
    IRQ_FALLING = 2

    def __init__(self, id, mode=-1, pull=-1, *, value=None, drive=None, alt=None):
        if not _valid_id(id):
            raise ValueError("invalid pin %r on %s" % (id, PORT))
        self.id = id
        self._st = pin(id)
        self.init(mode, pull, value=value)

    def init(self, mode=-1, pull=-1, *, value=None, drive=None, alt=None):
        st = self._st
        if mode != -1:
            if mode not in (Pin.IN, Pin.OUT, Pin.OPEN_DRAIN):
                raise ValueError("invalid pin mode")
            st.mode = mode
        if pull != -1:
            if pull not in (None, Pin.PULL_UP, Pin.PULL_DOWN):
                raise ValueError("invalid pull")
            st.pull = pull
        if value is not None:
            self.value(value)

    def value(self, x=None):
        st = self._st
        if x is None:
            return st.read()
        st.out = 1 if x else 0
        st.history.append(st.out)
        return None

    def __call__(self, x=None):
        return self.value(x)

    def on(self):
        self.value(1)

    def off(self):
        self.value(0)

    def irq(self, handler=None, trigger=3, *, priority=1, wake=None, hard=False):
        self._st.handler = handler
        self._st.trigger = trigger
        return None


class PWM:
    def __init__(self, dest, *, freq=None, duty_u16=None, duty_ns=None, invert=False):
        if not isinstance(dest, Pin):
            raise TypeError("PWM needs a Pin")
        self.pin = dest
        self._freq = 0
        self._duty = 0
        self.history = []
        if freq is not None:
            self.freq(freq)
        if duty_u16 is not None:
            self.duty_u16(duty_u16)

    def freq(self, value=None):
        if value is None:
            return self._freq
        if not 1 <= value <= 40000000:
            raise ValueError("frequency out of range")
        self._freq = value
        self.history.append((self._freq, self._duty))
        return None

    def duty_u16(self, value=None):
        if value is None:
            return self._duty
        if not 0 <= value <= 65535:
            raise ValueError("duty_u16 out of range")
        self._duty = value
        self.history.append((self._freq, self._duty))
        return None

    def deinit(self):
        self._duty = 0


# --- ADC ----------------------------------------------------------------------

_adc_uv = {}  # GPIO -> microvolts at the pin


def set_adc_uv(gpio, uv):
    _adc_uv[gpio] = uv


class _ADC:
    ATTN_0DB = 0
    ATTN_2_5DB = 1
    ATTN_6DB = 2
    ATTN_11DB = 3

    def __init__(self, id, *, sample_ns=None, atten=None):
        gpio = id.id if isinstance(id, Pin) else id
        if gpio not in self.CHANNELS:
            raise ValueError("no ADC on %r" % (id,))
        self.gpio = gpio
        self.atten_value = self.ATTN_0DB if atten is None else atten

    def _uv(self):
        return _adc_uv.get(self.gpio, 0)


class ADCEsp32C3(_ADC):
    CHANNELS = (0, 1, 2, 3, 4)  # ADC1 on the ESP32-C3
    # Measurable range per attenuation (ESP-IDF, ESP32-C3), microvolts.
    RANGE_UV = {0: 750000, 1: 1050000, 2: 1300000, 3: 2500000}

    def atten(self, atten):
        self.atten_value = atten

    def read_uv(self):
        return min(self._uv(), self.RANGE_UV[self.atten_value])

    def read_u16(self):
        return self.read_uv() * 65535 // self.RANGE_UV[self.atten_value]


class ADCRp2(_ADC):
    CHANNELS = (26, 27, 28, 29, 0, 1, 2, 3, 4)  # GP26-29, or channels 0-4
    VREF_UV = 3300000

    def read_u16(self):
        return min(65535, self._uv() * 65535 // self.VREF_UV)


ADC = ADCEsp32C3


# --- RTC ----------------------------------------------------------------------

UNIX_AT_2000 = 946684800


def _timegm(t):
    try:
        import calendar  # CPython

        return calendar.timegm(tuple(t[:6]) + (0, 0, 0))
    except ImportError:
        import time  # MicroPython: mktime is UTC

        return time.mktime((t[0], t[1], t[2], t[3], t[4], t[5], 0, 0))


class _RtcState:
    """The RTC counts seconds from the port's epoch (like the ports do)."""

    def __init__(self, port):
        self.epoch_unix = UNIX_AT_2000 if port == "esp32" else 0
        # After power-on: 2000-01-01 on ESP32; rp2 starts at 2021-01-01.
        self.seconds = 0 if port == "esp32" else 1609459200
        self.sets = 0

    def port_seconds(self):
        return self.seconds

    def unix(self):
        return self.seconds + self.epoch_unix

    def set_unix(self, t):
        self.seconds = t - self.epoch_unix


def rtc_state():
    return RTC._state


class RTC:
    _state = None

    def __init__(self, id=0, datetime=None):
        if datetime is not None:
            self.datetime(datetime)

    def datetime(self, datetimetuple=None):
        st = RTC._state
        if datetimetuple is None:
            import time

            g = time.gmtime(st.unix())
            # (year, month, day, weekday 0=Monday, hour, minute, second, subseconds)
            return (g[0], g[1], g[2], g[6], g[3], g[4], g[5], 0)
        t = datetimetuple
        if len(t) != 8:
            raise ValueError("need an 8-tuple")
        if not (1 <= t[1] <= 12 and 1 <= t[2] <= 31 and 0 <= t[3] <= 6 and 0 <= t[4] <= 23
                and 0 <= t[5] <= 59 and 0 <= t[6] <= 59):
            raise ValueError("invalid datetime")
        st.set_unix(_timegm((t[0], t[1], t[2], t[4], t[5], t[6])))
        st.sets += 1
        return None
