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
    with open(os.getenv("LOCK_UNIXPORT", "")) as f:
        cfg = json.load(f)
    if cfg.get("code"):
        sys.path.insert(0, cfg["code"])
    if cfg.get("port_code"):
        # The virtual board: the port's own code (its boot, the HAL) at /rom,
        # as a board's ROMFS partition is, so that it stays importable once
        # the board's littlefs replaces the host's filesystem at /.
        import vfs

        vfs.mount(vfs.VfsPosix(cfg["port_code"]), "/rom")  # type: ignore[abstract]
        sys.path.append("/rom")

    class unixport:
        pass

    unixport.config = cfg  # type: ignore[attr-defined]
    unixport.flash = open(cfg["flash"], "r+b")  # type: ignore[attr-defined]
    unixport.make_hal = make_hal  # type: ignore[attr-defined]
    sys.modules["unixport"] = unixport  # type: ignore[assignment]
    return cfg["mode"], cfg["board"]


mode, board = port()
del port
if mode == "mpy":
    import firmware.main

    firmware.main.start(board)
else:
    import simulator.mpy.vboard  # noqa: F401  (boots the virtual board)
