"""lockctl's fleet commands: statuses that staff devices bring home, and the
locks (and patrols) that need attention."""

from __future__ import annotations

import argparse
import json
import stat
import sys
import time
from pathlib import Path

from tools import fleet, statusfile
from tools.lockctl.cli import (
    Commands,
    Failed,
    Output,
    actor,
    local_str,
    open_registry,
    path_arg,
    shorten,
    zone_of,
)
from tools.site import Site

MAX_FILE = 256 * 1024 * 1024  # a year of a busy device's openings is a few MB


def read_lines(path_text: str) -> list[str]:
    path = Path(path_text)
    try:
        st = path.stat()
        if stat.S_ISDIR(st.st_mode):
            raise Failed(f"{shorten(path_text)} is a directory: name the device's "
                         f"{statusfile.STATUS_FILE}")
        if not stat.S_ISREG(st.st_mode):
            raise Failed(f"{shorten(path_text)} is not a regular file")
        if st.st_size > MAX_FILE:
            raise Failed(f"{shorten(path_text)} is too large to be a status file")
        data = path.read_bytes()
    except OSError as exc:
        raise Failed(f"{shorten(path_text)}: {exc.strerror}") from None
    try:
        lines = data.decode("utf-8").splitlines()
    except UnicodeDecodeError:
        raise Failed(f"{shorten(path_text)}: not a status file (not UTF-8 text)") from None
    if not any(line.strip() for line in lines):
        raise Failed(f"{shorten(path_text)} holds no status: nothing was recorded")
    return lines


def cmd_fleet_ingest(args: argparse.Namespace, out: Output) -> int:
    reg = open_registry(args)
    lines = read_lines(args.file)
    result = Site(reg).ingest_statuses(actor(args), str(args.file), lines)
    where = shorten(str(args.file))
    if len(result.refused) > 1:  # one line each, then the verdict (below)
        for number, why in result.refused:
            print(f"{where}:{number}: refused: {why}", file=sys.stderr)
    data = {"file": str(args.file), "taken": len(result.taken), "older": len(result.older),
            "refused": [{"line": n, "error": why} for n, why in result.refused],
            "locks": sorted(result.locks)}
    text = (f"{len(result.taken)} status(es) recorded for {len(result.locks)} lock(s)"
            + (f", {len(result.older)} not newer than what the site holds" if result.older
               else "")
            + (f"; {len(result.refused)} line(s) refused" if result.refused else "")
            + ".")
    out.done(data, text)
    if len(result.refused) == 1:
        number, why = result.refused[0]
        print(f"lockctl: {where}:{number}: refused: {why}", file=sys.stderr)
    elif result.refused:
        print(f"lockctl: {len(result.refused)} lines of {where} refused (not genuine answers "
              "of this site's locks): nothing of them was recorded", file=sys.stderr)
    if result.refused:
        return 1
    return 0


def cmd_fleet_status(args: argparse.Namespace, out: Output) -> int:
    reg = open_registry(args)
    tz = zone_of(reg)
    status = fleet.fleet_status(reg, int(time.time()), args.all)
    if out.as_json:
        print(json.dumps(status, ensure_ascii=False))
        return 0
    if not status["locks"] and not status["staff"]:
        print("No lock needs attention.")
        return 0
    for lk in status["locks"]:
        seen = local_str(lk["last_seen"], tz) if lk["last_seen"] else "never"
        print(f"{lk['lock']}  (last heard from {seen})")
        if not lk["problems"]:
            print("  no problems")
        for p in lk["problems"]:
            print(f"  {fleet.SEVERITY[p['severity']]}: {p['text']}")
            print(f"      -> {p['action']}")
    for st in status["staff"]:
        print(f"staff {st['staff']}")
        for p in st["problems"]:
            print(f"  {fleet.SEVERITY[p['severity']]}: {p['text']}")
            print(f"      -> {p['action']}")
    return 0


def register(c: Commands) -> None:
    grp = c.group("fleet", "fleet health: what keys bring home, locks that need attention")
    sp = c.add(grp, "ingest", cmd_fleet_ingest,
               "record the lock statuses a staff device brought home (each MAC checked)",
               example="lockctl fleet ingest anna-phone/status.jsonl")
    sp.add_argument("file", metavar="FILE", type=path_arg,
                    help="a staff device's status file (DIR/status.jsonl)")
    sp = c.add(grp, "status", cmd_fleet_status,
               "the locks and patrols that need attention, most urgent first",
               example="lockctl fleet status")
    sp.add_argument("--all", action="store_true", help="list every active lock, also those "
                    "without problems")
