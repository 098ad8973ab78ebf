# The lock's entry point on a board: pick the HAL for this port, close the
# REPL in production builds, and run the application for ever.
#
#     import firmware.main
#     firmware.main.start("esp32c3_devkit", production=True)
#
# The board's /main.py (written by tools.flashing.deploy, the path
# `lockctl flash` uses) or a frozen production image (boards/manifest.py,
# boards/production.py) calls start(). The board file boards/NAME.py is
# imported by name: pins, regions and currents come from there.
#
# Production (production=True):
#   - micropython.kbd_intr(-1): a 0x03 byte on the serial port is data, never
#     a KeyboardInterrupt into the REPL;
#   - the REPL is detached from the UART where the port allows it
#     (os.dupterm(None, 0));
#   - the application never returns to the REPL: any exception that escapes
#     it resets the board (machine.reset()), so nobody gets a prompt by
#     crashing the lock. The port build closes the rest (see boards/production.py).
# Development (the default): an exception escaping the application is raised,
# so the board drops to its REPL where mpremote can reach it.
import gc
import sys

UNIX_PLATFORMS = ("linux", "darwin")


def tune_gc():
    """Collect after every sixteenth of the heap allocated, not only when an
    allocation fails. Left to itself MicroPython collects only on a failed
    allocation, by when the freed blocks lie scattered between live ones and
    a module's bytecode or a frame's buffer finds no run long enough: the same
    work then needs a heap 15-20 KB larger, and whether it fits depended on
    details as small as the length of a path (tests/mpy_runner.py measured
    75 KB with this against 90-97 KB without for one test module)."""
    gc.collect()
    gc.threshold((gc.mem_free() + gc.mem_alloc()) // 16)


def board_module(name):
    """boards.NAME (a plain module of constants)."""
    __import__("boards." + name)
    return sys.modules["boards." + name]


def make_hal(board):
    """The HAL of the port we are running on."""
    if sys.platform in UNIX_PLATFORMS:
        # The simulator's unix-port board: its port code (simulator/mpy/port.py)
        # registers `unixport`, with the HAL, as a board's port has `machine`.
        import unixport  # type: ignore[import-not-found]

        return unixport.make_hal(board)
    if sys.platform == "zephyr":  # the nRF52840 (boards/nrf52840_zephyr.py)
        from firmware.board_zephyr import ZephyrHAL

        return ZephyrHAL(board)
    # Boards (esp32, rp2): machine, bluetooth/aioble and the port's raw flash.
    from firmware.board_machine import MachineHAL

    return MachineHAL(board)


def close_repl():
    """What the firmware itself can do to close the REPL (production)."""
    import micropython

    micropython.kbd_intr(-1)
    try:
        import os

        os.dupterm(None, 0)  # not on every port (no dupterm on unix)
    except (AttributeError, ImportError, OSError, TypeError):
        pass


def forget_board(name):
    """Drop the board module once the HAL has taken what it needs from it:
    its tables (pins, currents, battery curve) then give their heap back."""
    sys.modules.pop("boards." + name, None)
    pkg = sys.modules.get("boards")
    if pkg is not None and name in dir(pkg):
        delattr(pkg, name)


def start(board_name, production=False):
    tune_gc()
    board = board_module(board_name)
    if production:
        close_repl()
    from firmware import app

    hal = make_hal(board)
    del board
    forget_board(board_name)
    if production and hasattr(hal, "close_repl"):
        hal.close_repl()  # a board that can offer a way back to the REPL stops doing so
    try:
        app.run(hal)
    except Exception:  # noqa: BLE001 - production never falls into the REPL
        if not production:
            raise
        import machine

        machine.reset()  # type: ignore[attr-defined]  # (none on the unix port)
