"""lockctl's log commands: pull, verify, report."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from protocol import messages as msg
from tools import issuer, logcheck, report, report_html, report_words
from tools.client import Installer, pull_log_ble, read_hello
from tools.lockctl.cli import (
    Commands,
    Failed,
    Output,
    UsageError,
    actor,
    ble_url,
    check_out,
    colour,
    id_arg,
    known_lock,
    lock_hello,
    open_registry,
    parse_day,
    path_arg,
    serial,
    site_config,
    write_file,
    zone_of,
)
from tools.lockctl.key_cmds import device_grant
from tools.registry import Registry
from tools.site import Site
from tools.transport import connect_lock


def pull_serial(installer: Installer, reg: Registry, row: Any, admin_key: bytes,
                out: Output, who: str) -> tuple[list[bytes], dict[int, Any]]:
    """Every record of the lock's current epoch not yet held, kept (an act)."""
    start = reg.last_seq(row.lock_id, row.epoch) + 1
    records = installer.pull_log(admin_key, start, out.progress("pulling log"))
    status = installer.admin(admin_key, "info", expect_lock=row.lock_id).get(
        msg.INFO_STATUS) or {}
    Site(reg).record_pull(who, row.lock_id, row.epoch, start, records, status,
                          int(time.time()))
    return records, status


def cmd_log_pull(args: argparse.Namespace, out: Output) -> int:
    reg = open_registry(args)
    now = int(time.time())
    if args.port:
        with serial(args.port) as link:
            installer = Installer(link)
            hello = lock_hello(installer, args.port)
            row = known_lock(reg, hello.lock_id)
            admin_key = issuer.admin_key_for(reg.site_secret(), row.lock_id)
            start = reg.last_seq(row.lock_id, row.epoch) + 1
            records = installer.pull_log(admin_key, start, out.progress("pulling log"))
            status = installer.admin(admin_key, "info", expect_lock=row.lock_id).get(
                msg.INFO_STATUS) or {}
    else:
        if not (args.key or args.device) or not args.ble:
            raise UsageError("log pull needs --port DEV, or --ble ADDR with --device DIR")
        url = ble_url(args.ble)
        with connect_lock(url, timeout=10.0) as link:
            hello = read_hello(link)
        row = known_lock(reg, hello.lock_id)
        grant = device_grant(args, row.lock_id)
        if "log" not in grant.scope.split():
            raise Failed("this key has no log permission (issue it with --log)")
        start = reg.last_seq(row.lock_id, row.epoch) + 1
        seen: dict[str, dict[int, Any]] = {}
        records = pull_log_ble(lambda: connect_lock(url, timeout=10.0), grant, start,
                               out.progress("pulling log"), expect_lock=row.lock_id,
                               on_status=lambda st: seen.__setitem__("status", st))
        status = seen.get("status", {})
    added, pruned = Site(reg).record_pull(actor(args), row.lock_id, row.epoch, start, records,
                                          status, now)
    out.done({"lock": row.lock_id, "pulled": len(records), "new": added, "pruned": pruned},
             f"Pulled {len(records)} events from lock {row.lock_id} ({added} new)."
             + (f" {pruned} event(s) past the retention period were deleted." if pruned else ""))
    return 0


def verify(reg: Registry, lock_id: str) -> list[logcheck.EpochVerdict]:
    """Every commissioning epoch of the lock, checked (tools/logcheck.py)."""
    return report.verify(reg, lock_id)


def verdict_lines(verdicts: list[logcheck.EpochVerdict]) -> list[str]:
    if len(verdicts) == 1:
        return [verdicts[0].text]
    return [f"Commissioning {v.epoch}: {v.text}" for v in verdicts]


def cmd_log_verify(args: argparse.Namespace, out: Output) -> int:
    reg = open_registry(args)
    reg.lock(args.lock_id)
    verdicts = verify(reg, args.lock_id)
    complete = all(v.complete for v in verdicts)
    data = {"lock": args.lock_id, "ok": complete, "complete": complete,
            "records": sum(v.records for v in verdicts),
            "missing": [[g.first, g.last] for v in verdicts for g in v.gaps],
            "altered": [s for v in verdicts for s in v.altered],
            "unverifiable": [s for v in verdicts for s in v.unverifiable],
            "reordered": [s for v in verdicts for s in v.reordered],
            "epochs": [v.as_json() for v in verdicts]}
    lines = [colour(line, "red" if "NOT complete" in line else "green")
             for line in verdict_lines(verdicts)]
    out.done(data, f"Log of {args.lock_id} ({data['records']} events):\n  " + "\n  ".join(lines))
    return 0 if complete else 1


def report_language(args: argparse.Namespace) -> str:
    """--lang, else the site's site.toml, else Swedish."""
    if args.lang:
        return str(args.lang)
    return site_config(args).language or "sv"


def cmd_log_report(args: argparse.Namespace, out: Output) -> int:
    if args.out:
        check_out(args.out)
    lang = report_language(args)
    reg = open_registry(args)
    zone_of(reg)
    day_from, day_to = parse_day(args.from_, "from"), parse_day(args.to, "to")
    if day_from and day_to and day_to < day_from:
        raise UsageError("--to is before --from")
    kind, ident = next((k, getattr(args, a)) for k, a in REPORT_SUBJECTS
                       if getattr(args, a) is not None)
    subject = report.subject_for(reg, kind, ident)
    rep = report.build(reg, subject, day_from, day_to, lang, int(time.time()))
    data = {"csv": lambda: report.to_csv(rep), "json": lambda: report.to_json(rep),
            "html": lambda: report_html.to_html(rep).encode("utf-8")}[args.format]()
    Site(reg).record_report(actor(args), {
        kind: ident, "format": args.format, "lang": lang, "locks": len(subject.locks),
        "from": day_from.isoformat() if day_from else "start",
        "to": day_to.isoformat() if day_to else "now"})
    if args.out:
        # A log report is personal data (who entered whose home): owner-only.
        write_file(Path(args.out), data)
        events = sum(r.count for r in rep.rows)
        out.done({kind: ident, "out": args.out, "events": events, "rows": len(rep.rows),
                  "locks": len(subject.locks), "complete": rep.complete},
                 f"Report for {kind} {ident} ({events} events at {len(subject.locks)} "
                 f"door(s), log {'complete' if rep.complete else 'NOT complete'}) "
                 f"written to {args.out}.")
    else:
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
    return 0


# The report's subject: (kind, the option's dest).
REPORT_SUBJECTS = (("lock", "lock_id"), ("client", "client"), ("unit", "unit"),
                   ("staff", "staff"))


def register(c: Commands) -> None:
    log = c.group("log", "event logs")
    sp = c.add(log, "pull", cmd_log_pull, "collect a lock's log (serial, or BLE with a key)",
               example="lockctl log pull --port /dev/ttyACM0")
    sp.add_argument("--port", metavar="DEV",
                    help="the lock's serial port (a device, or auto for the one lock attached)")
    sp.add_argument("--ble", metavar="127.0.0.1:PORT",
                    help="over BLE instead: the lock's address (with --device)")
    sp.add_argument("--device", metavar="DIR", type=path_arg,
                    help="with --ble: a staff device holding a key issued with --log")
    sp.add_argument("--key", metavar="FILE", type=path_arg, help="an old key file (refused)")
    sp = c.add(log, "verify", cmd_log_verify, "check the log's MAC chain",
               example="lockctl log verify --lock-id NT-000123")
    sp.add_argument("--lock-id", required=True, type=id_arg("lock id"),
                    help="the lock whose collected log to check")
    sp = c.add(log, "report", cmd_log_report,
               "the log report (loggningsrapport) of a door, a client, a unit or a staff "
               "member",
               example="lockctl log report --client C-1001 --from 2026-11-01 --to 2026-11-30 "
                       "--format html --out november.html")
    who = sp.add_mutually_exclusive_group(required=True)
    who.add_argument("--lock-id", type=id_arg("lock id"), help="one lock's doors")
    who.add_argument("--client", metavar="ID", type=id_arg("client id"),
                     help="every door of this client (decommissioned ones too)")
    who.add_argument("--unit", metavar="ID", type=id_arg("unit id"),
                     help="every door of the unit's clients")
    who.add_argument("--staff", metavar="ID", type=id_arg("staff id"),
                     help="this staff member's attempts at every door")
    sp.add_argument("--from", dest="from_", metavar="YYYY-MM-DD",
                    help="first day (local), default: the log's start")
    sp.add_argument("--to", metavar="YYYY-MM-DD", help="last day (local), default: today")
    sp.add_argument("--format", required=True, choices=("csv", "json", "html"),
                    help="csv for Excel (; and UTF-8 with BOM), json for systems, html to "
                         "read and print")
    sp.add_argument("--lang", choices=report_words.LANGS,
                    help="the report's language (default: site.toml's language, else sv)")
    sp.add_argument("--out", metavar="FILE", type=path_arg,
                    help="write the report here, owner-only (default: standard output)")
