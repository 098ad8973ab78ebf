# The Zephyr port's `machine` and `bluetooth`, as they differ from the other
# ports' fakes: patch(fk) applies them after fakes.install("zephyr") loaded
# the common fakes. Written from MicroPython's ports/zephyr (no stubs exist
# for this port): machine_pin.c (ids are ("gpioN", pin) tuples; IN, OUT,
# PULL_UP as Zephyr's GPIO flags; pull None = no pull), machine_pwm.c (PWM
# takes a ("pwmN", channel) tuple, not a Pin), machine_adc.c (ADC takes an
# ("adc", channel) tuple of the devicetree's io-channels; read_uv), no
# machine.RTC, machine.reset_cause() only prints a warning and returns 42,
# modbluetooth_zephyr.c (config(mtu=) raises OSError EOPNOTSUPP; no MTU
# exchange is reported).
GPIO_INPUT = 1 << 16
GPIO_OUTPUT = 1 << 17
GPIO_PULL_UP = 1 << 4
GPIO_PULL_DOWN = 1 << 5
GPIO_INT_EDGE_RISING = (1 << 21) | (1 << 23) | (1 << 26)
GPIO_INT_EDGE_FALLING = (1 << 21) | (1 << 23) | (1 << 25)
ADC_CHANNELS = (("adc", 2),)  # the board's devicetree io-channels
PWM_DEVICES = ("pwm0",)
EOPNOTSUPP = 95

printed = []  # what the port would have printed on the console


def patch(fk):
    m = fk.machine
    Pin = m.Pin
    Pin.IN = GPIO_INPUT
    Pin.OUT = GPIO_OUTPUT | GPIO_INPUT
    Pin.OPEN_DRAIN = GPIO_OUTPUT | GPIO_INPUT | (1 << 1)
    Pin.PULL_UP = GPIO_PULL_UP
    Pin.PULL_DOWN = GPIO_PULL_DOWN
    Pin.IRQ_RISING = GPIO_INT_EDGE_RISING
    Pin.IRQ_FALLING = GPIO_INT_EDGE_FALLING
    m.PORT = "zephyr"
    m._valid_id = _valid_id
    for name in ("RTC", "HARD_RESET", "DEEPSLEEP_RESET", "SOFT_RESET", "PWRON_RESET",
                 "WDT_RESET"):
        if hasattr(m, name):
            delattr(m, name)
    m.reset_cause = _reset_cause
    m.PWM = _pwm_class(m)
    m.ADC = _adc_class(m)
    ble_cls = fk.bluetooth.BLE
    common_config = ble_cls.config

    def config(self, *args, **kwargs):
        if "mtu" in kwargs or args == ("mtu",):
            raise OSError(EOPNOTSUPP)
        return common_config(self, *args, **kwargs)

    ble_cls.config = config
    del printed[:]


def _valid_id(pid):
    return (isinstance(pid, tuple) and len(pid) == 2 and isinstance(pid[0], str)
            and pid[0].startswith("gpio") and isinstance(pid[1], int) and 0 <= pid[1] <= 31)


def _reset_cause():
    printed.append("Warning: machine_reset_cause is not implemented")
    return 42


def _pwm_class(m):
    base = m.PWM

    class PWM(base):
        def __init__(self, dest, *, freq=None, duty_u16=None, duty_ns=None, invert=False):
            if not (isinstance(dest, tuple) and len(dest) == 2 and dest[0] in PWM_DEVICES):
                raise ValueError('Pin id must be tuple of ("pwm_x", channel#)')
            self.pin = dest
            self._freq = 0
            self._duty = 0
            self.history = []
            if freq is not None:
                self.freq(freq)
            if duty_u16 is not None:
                self.duty_u16(duty_u16)
    return PWM


def _adc_class(m):
    class ADC:
        def __init__(self, id):
            if id not in ADC_CHANNELS:
                raise ValueError("ADC channel (%s, %d) not found" % id)
            self.gpio = id

        def read_uv(self):
            return m._adc_uv.get(self.gpio, 0)

        def read_u16(self):
            return min(65535, self.read_uv() * 65535 // 3600000)
    return ADC
