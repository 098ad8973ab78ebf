# The port code of the simulator's MicroPython boards (MicroPython code), run
# by the interpreter first, as a board's frozen _boot.py is. It reads the
# board's configuration (a file, $LOCK_UNIXPORT: STATE/mpy-boot.json), opens
# the flash and registers them as the module `unixport` (see
# simulator/mpy/unixhal.py), with `make_hal`, which firmware.main calls on the
# unix port for its HAL; then it starts the lock (--mpy) or boots the virtual
# board (simulator/mpy/vboard.py). Started as a script (code in RAM) or as
# _lockport.mpy from the ROMFS image (simulator/mpy/bootstrap.py).
import json
import os
import sys


def make_hal(board):
    """The HAL of the simulator's unix-port board (firmware.main.make_hal)."""
    from simulator.mpy.unixhal import UnixHAL

    return UnixHAL(board)


def port():
    with open(os.getenv("LOCK_UNIXPORT")) as f:
        cfg = json.load(f)
    if cfg.get("code"):
        sys.path.insert(0, cfg["code"])
    if cfg.get("port_code"):  # the port's own modules, after the board's code
        sys.path.append(cfg["port_code"])

    class unixport:
        pass

    unixport.config = cfg
    unixport.flash = open(cfg["flash"], "r+b")
    unixport.make_hal = make_hal
    sys.modules["unixport"] = unixport
    return cfg["mode"], cfg["board"]


mode, board = port()
del port
if mode == "mpy":
    import firmware.main

    firmware.main.start(board)
else:
    import simulator.mpy.vboard  # noqa: F401  (boots the virtual board)
