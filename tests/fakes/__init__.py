# Fake MicroPython port modules for testing firmware/board_machine.py without
# hardware, on CPython and on the MicroPython unix port alike.
#
# One small module per port module, each with just the behaviour the HAL
# uses and the signatures of the port stubs (.venv/stubs/*-stubs), plus a
# test-side handle to drive it (set a pin's level, a voltage on the ADC, move
# the clock, connect a BLE central, read the flash):
#
#   machine    Pin (modes, pulls, levels seen from outside, contact bounce,
#              irq), PWM, ADC (per port: read_uv and attenuation ranges on
#              ESP32-C3, read_u16 only on rp2), RTC (counts seconds from the
#              port's epoch: 2000 on ESP32, 1970 on rp2), WDT (records feeds,
#              can fire), reset_cause, reset (raises FakeReset)
#   bluetooth  UUID, BLE (advertising payload checks, GATT server with value
#              buffers that truncate like the real ones, notifications) and
#              Central, the test's BLE central
#   aioble     the part of micropython-lib's aioble the HAL uses, over the
#              fake bluetooth, with aioble's semantics (capture queue,
#              connection.timeout cancelling on disconnect, advertise
#              returning None when cancelled)
#   esp32      Partition over a fake NOR flash (a table the test sets)
#   rp2        Flash(start=, len=) over the port's storage region
#   neopixel   NeoPixel (records writes)
#   vfs        mount() listing, VfsLfs2 (littlefs-python on CPython, the real
#              one on MicroPython)
#   faketime   ticks_ms/ticks_diff with a settable offset (to cross the wrap),
#              sleep_us; patched into board_machine as its `time`
#
# They check our use of the API, not the hardware: no timing, no radio, no
# electrical behaviour. install(port) puts them in sys.modules under the real
# names; uninstall() takes them (and firmware.board_machine) out again, so the
# rest of a pytest run never sees a fake `machine`.
import gc
import sys

PORTS = ("esp32", "rp2", "zephyr")
_MODULES = {
    "esp32": ("machine", "bluetooth", "aioble", "esp32", "neopixel", "vfs"),
    "rp2": ("machine", "bluetooth", "aioble", "rp2", "vfs"),
    # The Zephyr port (nRF52840): the common fakes, then fakes/zephyr_port.py
    # patches what this port does differently; `zephyr` is FlashArea.
    "zephyr": ("machine", "bluetooth", "aioble", "zephyr", "vfs"),
}
_ALL = ("machine", "bluetooth", "aioble", "aioble.core", "esp32", "rp2", "neopixel", "vfs",
        "micropython", "faketime", "flash", "zephyr", "zephyr_port")

MICROPYTHON = sys.implementation.name == "micropython"


class Fakes:
    """What install() put in place, by name."""

    def __init__(self, port):
        self.port = port


def _load(name):
    full = "fakes." + name
    __import__(full)
    return sys.modules[full]


def install(port="esp32", reset_cause=None):
    """Install the fakes for one port (fresh state) and return them."""
    if port not in PORTS:
        raise ValueError(port)
    uninstall()
    real_vfs = None
    if MICROPYTHON:
        import vfs as real_vfs  # the builtin, before the fake takes its name
    fk = Fakes(port)
    fk.faketime = _load("faketime")
    fk.faketime.configure(port)
    fk.flash = _load("flash")
    for name in _MODULES[port]:
        mod = _load(name)
        sys.modules[name] = mod
        setattr(fk, name, mod)
        if name == "machine":
            mod.configure(port, fk.faketime, reset_cause)
        elif name == "aioble":
            sys.modules["aioble.core"] = sys.modules["fakes.aioble.core"]
        elif name == "vfs":
            mod.configure(real_vfs)
    if port == "zephyr":
        fk.zephyr_port = _load("zephyr_port")
        fk.zephyr_port.patch(fk)
    if not MICROPYTHON:
        # CPython has no `micropython` module: this one records kbd_intr.
        mod = _load("micropython")
        sys.modules["micropython"] = mod
        fk.micropython = mod
    return fk


def uninstall():
    pkg = sys.modules.get("fakes")
    for name in _ALL:
        sys.modules.pop(name, None)
        sys.modules.pop("fakes." + name, None)
        if pkg is not None and "." not in name and name in pkg.__dict__:
            delattr(pkg, name)  # the package's reference to its submodule
    sys.modules.pop("firmware.board_machine", None)
    sys.modules.pop("firmware.board_zephyr", None)
    fw = sys.modules.get("firmware")
    for name in ("board_machine", "board_zephyr"):
        if fw is not None and name in fw.__dict__:
            delattr(fw, name)
    gc.collect()


def board_machine(fk):
    """firmware.board_machine imported over the installed fakes, with the
    fake clock as its `time`."""
    sys.modules.pop("firmware.board_machine", None)
    __import__("firmware.board_machine")
    bm = sys.modules["firmware.board_machine"]
    bm.time = fk.faketime
    return bm


def board_zephyr(fk):
    """firmware.board_zephyr imported over the installed fakes (port "zephyr"),
    with the fake clock as board_machine's `time`."""
    bm = board_machine(fk)
    sys.modules.pop("firmware.board_zephyr", None)
    __import__("firmware.board_zephyr")
    return sys.modules["firmware.board_zephyr"], bm
