"""python -m simulator --state DIR [--serial-link PATH] [--ble 127.0.0.1:PORT] [--auto-button]

Starts one simulated lock running the real firmware and prints its endpoints,
one per line, then `ready` (stdout is flushed, so a parent process can read
them):

    serial: /dev/pts/7
    serial-link: /tmp/lock1.tty -> /dev/pts/7     (only with --serial-link)
    ble: 127.0.0.1:40123
    ready

Runs until SIGTERM or SIGINT, then stops the firmware, saves the state and
prints the energy report on stderr. Exit status: 0 after a clean stop,
2 for bad arguments, 1 if the board could not be set up.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys

NOT_YET = ("--mpy", "--heap", "--virtual-board")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m simulator",
        description="Run one simulated lock (real firmware, virtual hardware).")
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
    p.add_argument("--mpy", action="store_true", help="run the firmware under MicroPython")
    p.add_argument("--heap", type=int, metavar="BYTES", help="MicroPython heap size")
    p.add_argument("--virtual-board", action="store_true",
                   help="a MicroPython virtual board for mpremote")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    given = [name for name, v in (("--mpy", args.mpy), ("--heap", args.heap is not None),
                                  ("--virtual-board", args.virtual_board)) if v]
    if given:
        print(f"python -m simulator: {', '.join(given)}: not implemented yet in this build",
              file=sys.stderr)
        return 2

    from simulator.endpoints import EndpointError, parse_ble_address

    try:
        host, port = parse_ble_address(args.ble)
    except EndpointError as e:
        print(f"python -m simulator: {e}", file=sys.stderr)
        return 2
    return asyncio.run(_run(args, host, port))


async def _run(args: argparse.Namespace, host: str, port: int) -> int:
    from simulator.board import BoardError, SimBoard, run_board

    board = SimBoard(args.state, auto_button=args.auto_button, serial_link=args.serial_link,
                     ble_host=host, ble_port=port, rtc_drift_ppm=args.rtc_drift)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    def ready(b: SimBoard) -> None:
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
