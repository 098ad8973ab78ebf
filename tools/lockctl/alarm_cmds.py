"""lockctl's alarm response: `alarm issue` (the patrol answering a safety
alarm) and `alarm list`. Parsing and output only; the act is Site.issue_alarm."""

from __future__ import annotations

import argparse

from tools import views
from tools.access import MAX_ALARM_MINUTES
from tools.lockctl.cli import (
    Commands,
    Output,
    actor,
    check_out,
    id_arg,
    local_str,
    open_registry,
    parse_bound,
    path_arg,
    print_rows,
    text_arg,
    write_file,
    zone_of,
)
from tools.site import Site


def minutes_arg(value: str) -> int:
    try:
        n = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of minutes: {value[:20]!r}") from None
    if not 1 <= n <= MAX_ALARM_MINUTES:
        raise argparse.ArgumentTypeError(f"1 to {MAX_ALARM_MINUTES} minutes")
    return n


def cmd_alarm_issue(args: argparse.Namespace, out: Output) -> int:
    reg = open_registry(args)
    tz = zone_of(reg)
    out_path = check_out(args.out)
    key = Site(reg).issue_alarm(actor(args), args.client, args.staff, args.reason,
                                args.alarm_id, args.minutes)
    write_file(out_path, key.data)
    tokens = [g.cti.hex() for g in key.grants]
    out.done({"alarm_id": args.alarm_id, "client": args.client, "staff": args.staff,
              "locks": [g.lock_id for g in key.grants], "start": key.start, "end": key.end,
              "out": args.out, "device": key.device, "tokens": tokens,
              "left_out": key.left_out},
             f"Alarm key {args.alarm_id} for {args.staff}: {args.client}'s door(s) "
             f"{', '.join(g.lock_id for g in key.grants)} until {local_str(key.end, tz)}, "
             f"marked as alarm access in every log record. Written to {args.out}, for device "
             f"{key.device[:16]} only. Token id(s): {', '.join(tokens)}."
             + (f" Not {', '.join(key.left_out)} (a medicine cabinet, or another provider's "
                "key box)." if key.left_out else ""))
    return 0


def cmd_alarm_list(args: argparse.Namespace, out: Output) -> int:
    reg = open_registry(args)
    tz = zone_of(reg)
    rows = views.alarm_keys(reg, parse_bound(args.from_, tz, "from"),
                            parse_bound(args.to, tz, "to", end=True))
    print_rows(out, rows, ["alarm_id", "client", "staff", "start", "end", "reason", "actor"],
               tz, "No alarm keys.")
    return 0


def register(c: Commands) -> None:
    alarm = c.group("alarm", "alarm response: keys for the patrol answering a safety alarm")
    sp = c.add(alarm, "issue", cmd_alarm_issue,
               "a key for the night patrol answering a client's safety alarm (at most an hour; "
               "never the medicine cabinet)",
               "lockctl alarm issue --client C-1001 --staff S-3 --reason 'fall alarm' "
               "--alarm-id TL-2026-0042 --out patrol.grant")
    sp.add_argument("--client", required=True, metavar="CLIENT_ID", type=id_arg("client id"),
                    help="whose alarm went off")
    sp.add_argument("--staff", required=True, metavar="STAFF_ID", type=id_arg("staff id"),
                    help="the night-patrol staff member who answers it")
    sp.add_argument("--reason", required=True, type=text_arg(200),
                    help="why (recorded in the audit log and the report)")
    sp.add_argument("--alarm-id", required=True, metavar="ID", type=id_arg("alarm id"),
                    help="the alarm centre's id of the alarm: one key per alarm")
    sp.add_argument("--minutes", type=minutes_arg, default=MAX_ALARM_MINUTES, metavar="N",
                    help=f"how long the key lasts (at most and by default {MAX_ALARM_MINUTES})")
    sp.add_argument("--out", required=True, metavar="GRANT", type=path_arg,
                    help="the grant file, for the patrol's enrolled device")
    sp = c.add(alarm, "list", cmd_alarm_list, "the alarm keys issued",
               "lockctl alarm list --from 2026-11-01")
    sp.add_argument("--from", dest="from_", metavar="DATE|TIME", help="from (the site's zone)")
    sp.add_argument("--to", metavar="DATE|TIME", help="to, a date included (the site's zone)")
