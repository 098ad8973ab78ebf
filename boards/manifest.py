# ruff: noqa: F821
# mypy: ignore-errors
# Freeze manifest of a production image of the lock: MicroPython's standard
# production path, the firmware frozen into the interpreter's image (its
# bytecode and constants run from flash, not the heap) with a frozen main.py
# that starts the lock with the REPL closed (boards/production/main.py).
#
# Build (needs the port's SDK: ESP-IDF for esp32, the Pico SDK for rp2; not
# available where this project's CI runs, see "What is checked" below):
#
#   cd micropython/ports/esp32
#   make BOARD=ESP32_GENERIC_C3 FROZEN_MANIFEST=/path/to/repo/boards/manifest.py
#
# Another board: a two-line manifest of its own,
#   include("/path/to/repo/boards/manifest.py", board="pico_w",
#           base="$(BOARD_DIR)/manifest.py")
#   (RPI_PICO_W has a board manifest of its own, with the CYW43 driver:
#    `base` includes it instead of the port's.)
#
# Production also needs, in the port build and the board's flashing:
#   - the partition table / flash layout of the board file (FS_REGION,
#     LOG_REGION; see firmware/board_machine.py);
#   - mpconfigboard.h: MICROPY_HW_ENABLE_UART_REPL (0), so UART0 carries no
#     REPL. The USB serial port stays: the lock's installer protocol runs on
#     it; the REPL is never reached there because main.py never returns and
#     kbd_intr(-1) makes 0x03 plain data;
#   - the chip's own protections (ESP32-C3: secure boot and flash encryption,
#     which keep the ROM bootloader from reading or replacing the image).
#
# What is checked here (tests/simulator/test_virtual_board.py): this file runs under a
# stand-in for MicroPython's manifest API (include, require, package, module,
# options), every file it names exists and compiles with mpy-cross, the frozen
# main.py and boot.py are MicroPython code that compiles, and the production
# start (firmware.main.start(..., production=True)) runs on the virtual board
# with its REPL closed. Not checked: the port build itself, aioble's manifest,
# the board's partition table, MICROPY_HW_ENABLE_UART_REPL, the port's frozen
# _boot.py, and the image on hardware.

# Only the manifest tool runs this file. boards/ is also a Python package whose
# modules tools import (e.g. simulator.energy lists every board): imported
# that way, this file defines nothing.
if "include" in globals() and "options" in globals():
    options.defaults(board="esp32c3_devkit", base="$(PORT_DIR)/boards/manifest.py")

    # The port's (or board's) own frozen modules: _boot.py (mounts the
    # filesystem), asyncio, the drivers.
    include(options.base)

    # BLE: micropython-lib's aioble (never the unrelated PyPI package "aioble").
    require("aioble")

    # The lock: protocol/, firmware/, one board file.
    package("protocol", base_path="..")
    package("firmware", base_path="..")
    package("boards", base_path="..", files=["__init__.py", options.board + ".py"])

    # The top-level main.py and boot.py of the image (see those files).
    module("main.py", base_path="production")
    module("boot.py", base_path="production")
