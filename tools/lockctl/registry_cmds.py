"""lockctl's read-only registry commands: lock list/show, device show, token
list/show, audit. Output only; the views are tools/views.py."""

from __future__ import annotations

import argparse

from tools import views
from tools.lockctl.cli import (
    Commands,
    Output,
    UsageError,
    id_arg,
    local_str,
    open_registry,
    parse_bound,
    print_one,
    print_rows,
    shown,
    text_arg,
    zone_of,
)


def cmd_lock_list(args: argparse.Namespace, out: Output) -> int:
    reg = open_registry(args)
    print_rows(out, views.locks(reg), ["lock", "door", "clients", "provider", "status",
                                       "last_seen", "revocation_version"],
               zone_of(reg), "No locks.")
    return 0


def cmd_lock_show(args: argparse.Namespace, out: Output) -> int:
    reg = open_registry(args)
    data = views.lock(reg, args.lock_id)
    data["tokens"] = [t["token"] for t in views.tokens(reg, lock_id=args.lock_id,
                                                       valid_only=True)]
    print_one(out, data, zone_of(reg))
    return 0


def cmd_device_show(args: argparse.Namespace, out: Output) -> int:
    reg = open_registry(args)
    row = reg.device(args.fingerprint)
    data = views.device(row)
    data["tokens"] = [t["token"] for t in views.tokens(reg, staff_id=row["staff_id"],
                                                       valid_only=True)
                      if t["device"] == row["fingerprint"]]
    print_one(out, data, zone_of(reg))
    return 0


def cmd_token_list(args: argparse.Namespace, out: Output) -> int:
    reg = open_registry(args)
    print_rows(out, views.tokens(reg, args.staff, args.lock_id, args.valid),
               ["token", "staff", "lock", "start", "end", "state", "alarm_id"],
               zone_of(reg), "No tokens.")
    return 0


def cmd_token_show(args: argparse.Namespace, out: Output) -> int:
    reg = open_registry(args)
    print_one(out, views.token_by_id(reg, args.token), zone_of(reg))
    return 0


def cmd_audit(args: argparse.Namespace, out: Output) -> int:
    reg = open_registry(args)
    tz = zone_of(reg)
    start = parse_bound(args.from_, tz, "from")
    end = parse_bound(args.to, tz, "to", end=True)
    if start is not None and end is not None and end <= start:
        raise UsageError("--to must be after --from")
    rows = views.audit(reg, start, end, args.who, args.lock_id, args.staff)
    if out.as_json:
        print_rows(out, rows, [], tz, "")
        return 0
    if not rows:
        print("No audit records match.")
    for r in rows:
        print(f"{local_str(int(r['at']), tz)}  {r['actor']:<14} {r['action']:<18} "
              f"{shown(r['detail'], '', tz)}")
    return 0


def register(c: Commands) -> None:
    lock = c.group("lock", "one lock over serial")
    c.add(lock, "list", cmd_lock_list, "the site's locks, from the registry", "lockctl lock list")
    sp = c.add(lock, "show", cmd_lock_show, "one lock, from the registry (no port needed)",
               "lockctl lock show NT-000123")
    sp.add_argument("lock_id", metavar="LOCK_ID", type=id_arg("lock id"), help="the lock")

    dev = c.group("device", "staff devices")
    sp = c.add(dev, "show", cmd_device_show, "one enrolled device, with its valid keys",
               "lockctl device show 1f2e3d4c5b6a")
    sp.add_argument("fingerprint", metavar="FINGERPRINT", help="8 or more hex digits of it")

    token = c.group("token", "issued tokens (one per door and key)")
    sp = c.add(token, "list", cmd_token_list, "list issued tokens",
               "lockctl token list --staff S-1 --valid")
    sp.add_argument("--staff", metavar="STAFF_ID", type=id_arg("staff id"), help="only theirs")
    sp.add_argument("--lock", dest="lock_id", metavar="LOCK_ID", type=id_arg("lock id"),
                    help="only this lock's")
    sp.add_argument("--valid", action="store_true", help="only those not expired or blocked")
    sp = c.add(token, "show", cmd_token_show, "one token", "lockctl token show 3f2a9c1b")
    sp.add_argument("token", metavar="TOKEN_ID", help="its id in hex (8 or more digits of it)")

    sp = c.add(c.sub, "audit", cmd_audit, "the audit log: every administrative act, who, when",
               "lockctl audit --from 2026-11-01 --to 2026-11-30 --staff S-1",
               own=("--actor",))
    sp.add_argument("--from", dest="from_", metavar="DATE|TIME",
                    help="from this date or time (ISO, the site's zone)")
    sp.add_argument("--to", metavar="DATE|TIME",
                    help="up to this time, or to the end of this date (ISO, the site's zone)")
    sp.add_argument("--actor", dest="who", metavar="NAME", type=text_arg(100),
                    help="only acts by this person (after `audit`; before it, --actor is who "
                    "you are, as for every command)")
    sp.add_argument("--lock", dest="lock_id", metavar="LOCK_ID", type=id_arg("lock id"),
                    help="only acts on this lock (or keys for it)")
    sp.add_argument("--staff", metavar="STAFF_ID", type=id_arg("staff id"),
                    help="only acts on this staff member")
