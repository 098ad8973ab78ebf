"""lockctl's commands about lockctl itself and the computer it runs on:
`ports` (serial ports, and which hold a lock) and `completion` (a shell's
completion script). `--version` is on the top-level parser (main.py)."""

from __future__ import annotations

import argparse
import sys

from tools import ports as ports_mod
from tools.lockctl.cli import Commands, Output, colour

SHELLS = ("bash", "zsh")


def cmd_ports(args: argparse.Namespace, out: Output) -> int:
    found = ports_mod.scan(probe_all=args.probe)
    if out.as_json:
        out.done({"ports": [p.as_json() for p in found]}, "")
        return 0
    if not found:
        print("No serial ports found.")
        return 0
    rows = [("DEVICE", "USB ID", "BOARD", "LOCK", "DESCRIPTION")]
    for p in found:
        if p.lock:
            what = colour(f"lock {p.lock_id}" if p.lock_id else "lock (not commissioned)",
                          "green")
        elif p.problem:
            what = colour(p.problem, "red")
        elif p.probed:
            what = "no lock answered"
        else:
            what = "not probed"
        rows.append((p.device, p.usb_id or "-", p.board or "-", what, p.description or "-"))
    widths = [max(len(_plain(r[i])) for r in rows) for i in range(4)]
    for r in rows:
        print("  ".join(c + " " * (w - len(_plain(c))) for c, w in zip(r[:4], widths,
                                                                        strict=True))
              + "  " + r[4])
    unprobed = sum(1 for p in found if not p.probed)
    if unprobed:
        print(f"{unprobed} port(s) with an unknown USB id were not probed: "
              "lockctl ports --probe asks them too (it writes a frame to each).")
    return 0


def _plain(text: str) -> str:
    """Without colour codes, for widths."""
    import re
    return re.sub(r"\x1b\[[0-9;]*m", "", text)


def cmd_completion(args: argparse.Namespace, out: Output) -> int:
    import shtab

    from tools.lockctl.main import build_parser
    sys.stdout.write(shtab.complete(build_parser(), shell=args.shell))
    return 0


def register(c: Commands) -> None:
    sp = c.add(c.sub, "ports", cmd_ports,
               "list serial ports and mark those where a lock answers",
               example="lockctl ports --probe")
    sp.add_argument("--probe", action="store_true",
                    help="also ask ports with an unknown USB id (writes one frame to each)")
    sp = c.add(c.sub, "completion", cmd_completion,
               "print the shell completion script (bash or zsh)",
               example="lockctl completion bash > "
                       "~/.local/share/bash-completion/completions/lockctl")
    sp.add_argument("shell", choices=SHELLS, help="the shell: bash or zsh")
