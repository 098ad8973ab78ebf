# main.py of a production image of the lock. boards/manifest.py freezes it
# into the firmware as the top-level main.py: MicroPython runs a frozen main.py
# in place of any main.py on the filesystem (pyexec_file_if_exists looks for
# the frozen one first), so nothing written to the filesystem can replace it.
#
# It starts the lock with production=True (firmware/main.py: kbd_intr(-1), the
# REPL detached from the UART, an escaping exception resets the board) and
# never returns: were the application to end in any way, the board resets
# rather than fall into the REPL.
import machine

import firmware.main

BOARDS = ("esp32c3_devkit", "pico_w", "nrf52840_zephyr")  # the image freezes exactly one


def board_name():
    for name in BOARDS:
        try:
            __import__("boards." + name)
        except ImportError:
            continue
        return name
    raise ImportError("no board file in this image")


try:
    firmware.main.start(board_name(), production=True)
finally:
    machine.reset()
