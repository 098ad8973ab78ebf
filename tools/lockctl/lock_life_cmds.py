"""lockctl's end of a lock's life and its incidents (issue #14 sections 4 and 5):
`lock remove` (at the door, over serial), `lock retire` (a lock out of reach),
`incident add` and `incident list`. Parsing and output; the acts are
tools/site.py's."""

from __future__ import annotations

import argparse
import time
from typing import Any

from protocol import messages as msg
from tools import issuer, report
from tools.client import Installer, Refused
from tools.lockctl.care_cmds import emit
from tools.lockctl.cli import (
    Commands,
    Failed,
    Output,
    actor,
    id_arg,
    known_lock,
    local_str,
    lock_hello,
    open_registry,
    parse_local,
    serial,
    text_arg,
    zone_of,
)
from tools.lockctl.log_cmds import pull_serial
from tools.site import RETIRE_REASONS, Site


def cmd_lock_remove(args: argparse.Namespace, out: Output) -> int:
    """At the door: the checks, the log, the identity ended (button), then the
    registry: the lock removed, the door restored, the parts handed back."""
    reg = open_registry(args)
    site = Site(reg)
    by = args.by or actor(args)
    now = int(time.time())
    with serial(args.port) as link:
        installer = Installer(link)
        hello = lock_hello(installer, args.port)
        row = known_lock(reg, hello.lock_id)
        problem = site.removal_problem(row.lock_id)
        if problem is not None:
            raise Failed(problem)
        receiver = site.removal_receiver(row.lock_id, args.to)
        admin_key = issuer.admin_key_for(reg.site_secret(), row.lock_id)
        pulled, status = pull_serial(installer, reg, row, admin_key, out, actor(args))
        try:
            data = installer.admin(
                admin_key, "decommission", expect_lock=row.lock_id,
                on_press=lambda s: out.info(f"Press the button on the lock now (within {s} s)..."))
        except Refused as exc:
            raise Failed(f"the lock refused to end its identity ({exc}): it is still in "
                         "service and nothing was removed (its log was collected)") from None
    last = [bytes(r) for r in (data.get(msg.DECOMMISSIONED_RECORD) or [])]
    rid = site.record_removal(actor(args), row.lock_id, row.epoch,
                              int(data.get(msg.DECOMMISSIONED_SEQ) or 0), last, status, now,
                              receiver, by)
    n = len(pulled) + len(last)
    emit(out, {"lock": row.lock_id, "status": "removed", "pulled": n, "receipt": rid,
               "to": receiver},
         f"Lock {row.lock_id} removed: its log was collected ({n} events), its identity "
         f"ended, the door recorded as restored and the original parts as returned to "
         f"{receiver} (receipt {rid}: lockctl receipt show {rid} --format pdf --out "
         f"{rid}.pdf).")
    return 0


def cmd_lock_retire(args: argparse.Namespace, out: Output) -> int:
    site = Site(open_registry(args))
    blocked, version = site.retire_lock(actor(args), args.lock_id, args.reason)
    block = (f"{blocked} outstanding key(s) blocked (block list version {version}); "
             if blocked else "no outstanding keys; ")
    emit(out, {"lock": args.lock_id, "status": "retired", "reason": args.reason,
               "tokens_blocked": blocked, "revocation_version": version},
         f"Lock {args.lock_id} retired ({args.reason}): {block}no key is issued for it "
         "again, and its lock id can never be commissioned again.")
    return 0


def _incident(site: Site, inc: Any, tz: Any) -> dict[str, Any]:
    reg = site.registry
    rows = report.rows_for(site.incident_records(inc), reg.staff_by_key_id(), reg.zone)
    pulled = reg.last_pull(inc["lock_id"])
    at, w = int(inc["at"]), int(inc["window_s"])
    return {"incident": int(inc["incident_no"]), "lock": inc["lock_id"], "at": at,
            "what": inc["what"], "recorded_at": int(inc["recorded_at"]),
            "recorded_by": inc["actor"], "window_from": at - w, "window_to": at + w,
            # Whether the log has been collected past the window's end: if not,
            # the lock may hold more of what happened.
            "collected_past_window": bool(pulled and pulled >= at + w),
            "last_collected": pulled,
            "records": [{"seq": r.seq, "time": r.time, "event": r.event, "staff": r.staff_id,
                         "name": r.staff_name, "outcome": r.outcome, "reason": r.reason,
                         "alarm": r.alarm, "clock_trusted": r.clock_trusted} for r in rows]}


def _incident_text(i: dict[str, Any], tz: Any) -> str:
    lines = [f"Incident {i['incident']} at lock {i['lock']}, {local_str(i['at'], tz)}: "
             f"{i['what']} (recorded by {i['recorded_by']})"]
    span = f"{local_str(i['window_from'], tz)} to {local_str(i['window_to'], tz)}"
    if i["records"]:
        lines.append(f"  the lock's log from {span}:")
        for r in i["records"]:
            who = f" {r['name'] or r['staff']}" if (r["name"] or r["staff"]) else ""
            why = f" ({r['reason']})" if r["reason"] else ""
            flag = " [alarm]" if r["alarm"] else ""
            clock = " [clock not trusted]" if not r["clock_trusted"] else ""
            lines.append(f"    #{r['seq']} {r['time'][11:19]} {r['event']}{who}{why}{flag}{clock}")
    else:
        lines.append(f"  no log records held from {span}")
    if not i["collected_past_window"]:
        seen = local_str(i["last_collected"], tz) if i["last_collected"] else "never"
        lines.append(f"  the lock's log was last collected {seen}: collect it (lockctl log "
                     "pull) to see all it recorded then")
    return "\n".join(lines)


def cmd_incident_add(args: argparse.Namespace, out: Output) -> int:
    reg = open_registry(args)
    tz = zone_of(reg)
    site = Site(reg)
    now = int(time.time())
    at = parse_local(args.at, tz, "at") if args.at is not None else now
    no = site.add_incident(actor(args), args.lock, args.what, at, args.window * 60, now)
    inc = next(r for r in reg.incidents(args.lock) if int(r["incident_no"]) == no)
    i = _incident(site, inc, tz)
    emit(out, i, "Recorded. " + _incident_text(i, tz))
    return 0


def cmd_incident_list(args: argparse.Namespace, out: Output) -> int:
    reg = open_registry(args)
    tz = zone_of(reg)
    site = Site(reg)
    if args.lock is not None:
        reg.lock(args.lock)
    items = [_incident(site, r, tz) for r in reg.incidents(args.lock)]
    emit(out, items, "\n".join(_incident_text(i, tz) for i in items) or "No incidents.")
    return 0


def minutes_arg(value: str) -> int:
    try:
        n = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of minutes: {value[:40]!r}") from None
    if not 1 <= n <= 1440:
        raise argparse.ArgumentTypeError("1 to 1440 minutes")
    return n


def register(c: Commands) -> None:
    lock = c.group("lock", "one lock over serial")
    sp = c.add(lock, "remove", cmd_lock_remove,
               "take a lock down: check, collect its log, end its identity (button), "
               "record the door restored and the parts returned (a receipt)",
               example="lockctl lock remove --port /dev/ttyACM0 --by \"Ola Installer\"")
    sp.add_argument("--port", required=True, metavar="DEV", help="the lock's serial port")
    sp.add_argument("--by", metavar="NAME", type=text_arg(100),
                    help="who removed it and restored the door (default: --actor)")
    sp.add_argument("--to", metavar="ID", type=id_arg("client or property id"),
                    help="who receives the original parts (default: the lock's one client, "
                         "or its clients' property)")
    sp = c.add(lock, "retire", cmd_lock_retire,
               "retire a lock that cannot be reached: its id is never used again, its keys "
               "are blocked", example="lockctl lock retire NT-000123 --reason stolen")
    sp.add_argument("lock_id", metavar="LOCK_ID", type=id_arg("lock id"), help="the lock")
    sp.add_argument("--reason", required=True, choices=RETIRE_REASONS, help="why")

    incident = c.group("incident", "incidents at a lock, linked to its log")
    sp = c.add(incident, "add", cmd_incident_add,
               "record an incident (e.g. the rescue service was called: the lock did not open)",
               example="lockctl incident add --lock NT-000123 --what \"did not open; rescue "
                       "service called\" --at 2026-11-23T03:10")
    sp.add_argument("--lock", required=True, metavar="LOCK_ID", type=id_arg("lock id"),
                    help="the lock")
    sp.add_argument("--what", required=True, metavar="TEXT", type=text_arg(1000),
                    help="what happened")
    sp.add_argument("--at", metavar="TIME",
                    help="when (ISO 8601, local time in the site's zone; default now)")
    sp.add_argument("--window", metavar="MINUTES", type=minutes_arg, default=30,
                    help="the lock's log shown this many minutes either side (default 30)")
    sp = c.add(incident, "list", cmd_incident_list,
               "list incidents with the lock's log around each",
               example="lockctl incident list --lock NT-000123")
    sp.add_argument("--lock", metavar="LOCK_ID", type=id_arg("lock id"),
                    help="only this lock's incidents")

