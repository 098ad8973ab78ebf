"""lockctl's log commands: pull, verify, report."""

from __future__ import annotations

import argparse
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from protocol import messages as msg
from tools import issuer, logcheck, report, views
from tools.client import Installer, pull_log_ble, read_hello
from tools.lockctl.cli import (
    Commands,
    Failed,
    Output,
    UsageError,
    actor,
    ble_url,
    check_out,
    id_arg,
    known_lock,
    lock_hello,
    open_registry,
    parse_day,
    path_arg,
    serial,
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
    log_key = issuer.log_key_for(reg.site_secret(), lock_id)
    days = int(reg.setting("retention_days"))
    return [logcheck.check_epoch(com, reg.events(lock_id, com["epoch"]), log_key, reg.zone, days,
                                 reg.overwritten(lock_id, com["epoch"]))
            for com in reg.commissionings(lock_id)]


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
    out.done(data, f"Log of {args.lock_id} ({data['records']} events):\n  "
             + "\n  ".join(verdict_lines(verdicts)))
    return 0 if complete else 1


def cmd_log_report(args: argparse.Namespace, out: Output) -> int:
    if args.out:
        check_out(args.out)
    reg = open_registry(args)
    lk = reg.lock(args.lock_id)
    tz = zone_of(reg)
    day_from, day_to = parse_day(args.from_, "from"), parse_day(args.to, "to")
    if day_from and day_to and day_to < day_from:
        raise UsageError("--to is before --from")
    # Every commissioning of this lock by this site: re-commissioning keeps
    # the earlier history visible, each part with its own verdict.
    verdicts = verify(reg, args.lock_id)
    complete = all(v.complete for v in verdicts)
    rows = report.rows_for(reg.events(args.lock_id), reg.staff_by_key_id(), reg.zone)
    rows = [r for r in rows if (not day_from or r.day >= day_from.isoformat())
            and (not day_to or r.day <= day_to.isoformat())]
    report.mark_keys(rows, views.alarm_keys(reg, lock_id=lk.lock_id),
                     views.booked_keys(reg, lk.lock_id))
    names = [reg.client(c)["name"] for c in lk.clients]
    lines = verdict_lines(verdicts)
    meta = {"lock_id": lk.lock_id, "door": lk.door, "clients": ", ".join(names),
            "site": reg.name, "zone": reg.zone, "chain_ok": complete, "complete": complete,
            "from": day_from.isoformat() if day_from else "start",
            "to": day_to.isoformat() if day_to else "now",
            "generated": datetime.now(tz).isoformat(timespec="seconds"),
            "verdict": " ".join(lines), "verdicts": [v.as_json() for v in verdicts],
            "alarm_openings": report.alarm_openings(rows)}
    text = {"csv": lambda: report.to_csv(rows), "json": lambda: report.to_json(rows, meta),
            "html": lambda: report.to_html(rows, meta)}[args.format]()
    reg.audit(actor(args), "log report", {"lock": lk.lock_id, "format": args.format,
                                          "from": meta["from"], "to": meta["to"]})
    if args.out:
        # A log report is personal data (who entered whose home): owner-only.
        write_file(Path(args.out), text.encode("utf-8"))
        out.done({"lock": lk.lock_id, "out": args.out, "events": len(rows)},
                 f"Report for {lk.lock_id} ({len(rows)} events) written to {args.out}.")
    else:
        sys.stdout.write(text)
    return 0


def register(c: Commands) -> None:
    log = c.group("log", "event logs")
    sp = c.add(log, "pull", cmd_log_pull, "collect a lock's log (serial, or BLE with a key)")
    sp.add_argument("--port", metavar="DEV")
    sp.add_argument("--ble", metavar="127.0.0.1:PORT")
    sp.add_argument("--device", metavar="DIR", type=path_arg)
    sp.add_argument("--key", metavar="FILE", type=path_arg, help="an old key file (refused)")
    sp = c.add(log, "verify", cmd_log_verify, "check the log's MAC chain")
    sp.add_argument("--lock-id", required=True, type=id_arg("lock id"))
    sp = c.add(log, "report", cmd_log_report, "the log report for a unit manager")
    sp.add_argument("--lock-id", required=True, type=id_arg("lock id"))
    sp.add_argument("--from", dest="from_", metavar="YYYY-MM-DD")
    sp.add_argument("--to", metavar="YYYY-MM-DD")
    sp.add_argument("--format", required=True, choices=("csv", "json", "html"))
    sp.add_argument("--out", metavar="FILE", type=path_arg)
