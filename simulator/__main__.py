"""python -m simulator --state DIR [--serial-link PATH] [--ble 127.0.0.1:PORT] [--auto-button]
                   [--mpy [--heap BYTES]] [--virtual-board [--heap BYTES]]
python -m simulator energy --board NAME [--opens-per-day N] ...

Starts one simulated lock and prints its endpoints, one per line, then
`ready` (stdout is flushed, so a parent process can read them):

    serial: /dev/pts/7
    serial-link: /tmp/lock1.tty -> /dev/pts/7     (only with --serial-link)
    ble: 127.0.0.1:40123
    ready

Three ways to run the lock, on the same state directory format (flash.bin,
hardware.json) and the same endpoints:
  (default)        the firmware under CPython, in this process (simulator/board.py);
  --mpy            the same firmware under the real MicroPython interpreter (the
                   unix port), in a child process with a heap of --heap bytes
                   (-X heapsize syntax; default 96wK: 96 KB of a 32-bit board),
                   its code in ROM as on a board (simulator/mpyhost.py);
  --virtual-board  an empty MicroPython board behind the serial pty: mpremote
                   deploys the firmware to it (tools.flashing.deploy),
                   after which it boots it and speaks the lock protocol on the
                   same pty and on the BLE socket (simulator/virtualboard.py).

`energy` runs the energy report (simulator/energy.py).

Runs until SIGTERM or SIGINT, then stops the firmware, saves the state and
prints the energy report on stderr. Exit status: 0 after a clean stop,
2 for bad arguments, 1 if the board could not be set up.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys


def _heap(text: str) -> str:
    from simulator.mpyhost import parse_heap

    try:
        return parse_heap(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m simulator",
        description="Run one simulated lock (real firmware, virtual hardware). "
                    "`python -m simulator energy --help` for the energy report.")
    p.add_argument("--state", required=True, metavar="DIR",
                   help="state directory (flash image, hardware state); created if missing")
    p.add_argument("--serial-link", metavar="PATH",
                   help="also make PATH a symlink to the serial pty (a stale link is replaced)")
    p.add_argument("--ble", default="127.0.0.1:0", metavar="HOST:PORT",
                   help="loopback address for the BLE socket (port 0 picks a free one; "
                        "default %(default)s)")
    p.add_argument("--auto-button", action="store_true",
                   help="press the commissioning button whenever the lock asks for it")
    p.add_argument("--rtc-drift", type=float, default=None, metavar="PPM",
                   help="RTC drift in ppm (kept in the state directory; default 0)")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--mpy", action="store_true",
                      help="run the firmware under MicroPython (the unix port)")
    mode.add_argument("--virtual-board", action="store_true",
                      help="an empty MicroPython board for mpremote to deploy the firmware to")
    p.add_argument("--heap", type=_heap, metavar="BYTES",
                   help="MicroPython heap (-X heapsize): BYTES, nK, nM; nwK scales to the "
                        "word size from a 32-bit baseline (on this 64-bit port 96wK is "
                        "192 KB). --mpy default 96wK, --virtual-board default 256K")
    p.add_argument("--mpy-code", choices=("rom", "ram"), default="rom",
                   help="--mpy: the firmware's code in ROM, executed in place as frozen "
                        "code on a board (default), or loaded from .mpy files into the heap")
    args = p.parse_args(argv)
    if os.path.exists(args.state) and not os.path.isdir(args.state):
        p.error(f"--state {args.state} is a file, not a directory")
    if args.heap is not None and not (args.mpy or args.virtual_board):
        p.error("--heap needs --mpy or --virtual-board")
    return args


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["energy"]:
        from simulator import energy  # imported only when asked for

        return energy.main(argv[1:])
    args = parse_args(argv)

    from simulator.endpoints import EndpointError, parse_ble_address

    try:
        host, port = parse_ble_address(args.ble)
    except EndpointError as e:
        print(f"python -m simulator: {e}", file=sys.stderr)
        return 2
    return asyncio.run(_run(args, host, port))


def _make_board(args: argparse.Namespace, host: str, port: int):  # -> SimBoard
    common = dict(auto_button=args.auto_button, serial_link=args.serial_link,
                  ble_host=host, ble_port=port, rtc_drift_ppm=args.rtc_drift)
    if args.virtual_board:
        from simulator.virtualboard import DEFAULT_HEAP, VirtualBoard

        return VirtualBoard(args.state, heap=args.heap or DEFAULT_HEAP, **common)
    if args.mpy:
        from simulator.mpyhost import DEFAULT_HEAP as MPY_HEAP
        from simulator.mpyhost import MpyBoard

        return MpyBoard(args.state, heap=args.heap or MPY_HEAP, code=args.mpy_code, **common)
    from simulator.board import SimBoard

    return SimBoard(args.state, **common)


async def _run(args: argparse.Namespace, host: str, port: int) -> int:
    from simulator.board import BoardError, run_board

    board = _make_board(args, host, port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    def ready(b) -> None:
        lines = [f"serial: {b.serial_path}"]
        if args.serial_link:
            lines.append(f"serial-link: {args.serial_link} -> {b.serial_path}")
        lines.append(f"ble: {b.ble_address}")
        lines.append("ready")
        sys.stdout.write("\n".join(lines) + "\n")
        sys.stdout.flush()

    try:
        await run_board(board, stop, on_ready=ready)
    except BoardError as e:
        print(f"python -m simulator: {e}", file=sys.stderr)
        return 1
    report = board.energy_report()
    if report:
        print(report, file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
