"""lockctl's key commands: shifts, devices, keys on a device, blocking, opening."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from protocol import messages as msg
from protocol import reasons
from protocol import token as tok
from tools import device as device_mod
from tools import statusfile
from tools.client import access
from tools.lockctl.cli import (
    Commands,
    Failed,
    Output,
    UsageError,
    actor,
    ble_url,
    check_out,
    id_arg,
    local_str,
    open_registry,
    parse_local,
    path_arg,
    read_pin,
    write_file,
    zone_of,
)
from tools.site import Site
from tools.transport import connect_lock

ALARM_MOVED = "shift issue --alarm is gone: an alarm key is `lockctl alarm issue`"


def cmd_shift_issue(args: argparse.Namespace, out: Output) -> int:
    if args.alarm:
        raise UsageError(ALARM_MOVED)
    if args.roster:
        return roster_issue(args, out)
    if not (args.staff and args.clients and args.start and args.end and args.out):
        raise UsageError("shift issue needs --staff, --clients, --start, --end and --out "
                         "(or --roster FILE --out-dir DIR)")
    reg = open_registry(args)
    tz = zone_of(reg)
    site = Site(reg)
    staff = reg.staff(args.staff)
    clients = [c.strip() for c in args.clients.split(",") if c.strip()]
    if not clients:
        raise UsageError("--clients: name at least one client")
    for c in clients:
        reg.client(c)  # an unknown client is refused (exit 1), as an unknown staff member
    start = parse_local(args.start, tz, "start")
    end = parse_local(args.end, tz, "end")
    now = int(time.time())
    problem = site.issuable_from(end) if start < end <= start + tok.MAX_LIFETIME else None
    plan = site.shift_plan(staff["staff_id"], clients, start, end, now)
    problem = problem or plan.problem
    if problem is not None:
        raise (UsageError if problem.usage else Failed)(problem)
    out_path = check_out(args.out)
    scope = "open log" if args.log else "open"
    data, grants, fp = site.issue_shift(actor(args), staff["staff_id"], clients, start, end,
                                        scope, False, now)
    write_file(out_path, data)
    left = "".join(f" Not {lock}: {why}." for lock, why in plan.left_out)
    out.done({"staff": staff["staff_id"], "locks": [g.lock_id for g in grants],
              "start": start, "end": end, "out": args.out, "device": fp,
              "tokens": [g.cti.hex() for g in grants],
              "left_out": [{"lock": lock, "why": why} for lock, why in plan.left_out]},
             f"Shift grant for {staff['name']} ({staff['staff_id']}): "
             f"{local_str(start, tz)} to {local_str(end, tz)}, "
             f"{len(grants)} door(s): {', '.join(g.lock_id for g in grants)}. "
             f"Written to {args.out}, for device {fp[:16]} only. Token id(s), for a block of "
             f"one key: {', '.join(g.cti.hex() for g in grants)}.{left}")
    return 0


def read_roster(path: Path, tz: Any) -> list[dict[str, Any]]:
    """The roster's rows (staff, clients, start, end), each with its line
    number; a row that cannot be read carries its error instead."""
    import csv
    import io
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except OSError as e:
        raise Failed(f"{path}: {e.strerror}") from None
    except UnicodeDecodeError:
        raise Failed(f"{path}: not UTF-8 text") from None
    first = text.splitlines()[0] if text.strip() else ""
    delim = ";" if first.count(";") > first.count(",") else ","
    rows = list(csv.reader(io.StringIO(text), delimiter=delim))
    if not rows or [h.strip().lower() for h in rows[0]] != ["staff", "clients", "start", "end"]:
        raise Failed(f"{path}:1: the header must be staff{delim}clients{delim}start{delim}end")
    parsed: list[dict[str, Any]] = []
    for line, row in enumerate(rows[1:], start=2):
        if not any(c.strip() for c in row):
            continue
        if len(row) != 4:
            parsed.append({"line": line, "error": "expected 4 fields"})
            continue
        staff_id, clients_text, start_text, end_text = (c.strip() for c in row)
        try:
            start = parse_local(start_text, tz, "start")
            end = parse_local(end_text, tz, "end")
        except UsageError as exc:
            parsed.append({"line": line, "error": str(exc)})
            continue
        parsed.append({"line": line, "staff": staff_id, "clients": clients_text.split(),
                       "start": start, "end": end})
    return parsed


def roster_issue(args: argparse.Namespace, out: Output) -> int:
    """A whole unit before a shift: every row checked first; any bad row and
    nothing is issued (every bad row named); rows whose shift ends more than
    24 h ahead are listed as not yet issuable."""
    if not args.out_dir:
        raise UsageError("--roster needs --out-dir DIR")
    reg = open_registry(args)
    tz = zone_of(reg)
    site = Site(reg)
    path = Path(args.roster)
    parsed = read_roster(path, tz)
    now = int(time.time())
    issue, not_yet, errors = site.roster_plan(parsed, now)
    if errors:
        for bad in errors:
            print(f"{path}:{bad['line']}: {bad['error']}", file=sys.stderr)
        raise Failed(f"{len(errors)} bad row(s) in {path}: nothing was issued")
    out_dir = Path(args.out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise UsageError(f"--out-dir {out_dir}: not a directory")
    made = [d for d in (out_dir, *out_dir.parents) if not d.exists()]  # leaf first
    out_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    issued = []
    files = []
    try:
        for item, data, grants, fp in site.issue_roster(actor(args), issue, now):
            target = out_dir / f"{item['staff']}.grant"
            files.append((target, data))
            issued.append({**item, "out": str(target), "device": fp,
                           "tokens": [g.cti.hex() for g in grants]})
    except BaseException:  # nothing issued (a read-only registry): no directory left either
        for d in made:
            d.rmdir()
        raise
    for target, data in files:
        write_file(target, data)
    summary = {"issued": issued, "not_yet": not_yet, "errors": []}
    write_file(out_dir / "summary.json", json.dumps(summary, indent=2).encode())
    lines = [f"Issued {len(issued)} grant(s) in {out_dir}."]
    for item in not_yet:
        lines.append(f"  line {item['line']}: {item['staff']} not yet issuable "
                     f"(after {local_str(int(item['after']), tz)})")
    out.done(summary, "\n".join(lines))
    return 0


def cmd_device_init(args: argparse.Namespace, out: Output) -> int:
    dev = device_mod.Device.init(Path(args.device))
    out.done({"device": str(dev.dir), "fingerprint": dev.fingerprint},
             f"Device made in {dev.dir}. Its fingerprint (show it to the administrator):\n"
             f"  {dev.fingerprint}")
    return 0


def cmd_device_enrol(args: argparse.Namespace, out: Output) -> int:
    site = Site(open_registry(args))
    public = device_mod.read_public(Path(args.public))
    fp = site.enrol_device(actor(args), args.staff, public, args.fingerprint, args.replace)
    out.done({"staff": args.staff, "fingerprint": fp},
             f"Device {fp} enrolled for {args.staff}: shift grants go to it from now on.")
    return 0


def cmd_device_list(args: argparse.Namespace, out: Output) -> int:
    reg = open_registry(args)
    tz = zone_of(reg)
    rows = [{"staff": r["staff_id"], "fingerprint": r["fingerprint"],
             "enrolled_at": r["enrolled_at"], "state": r["state"]} for r in reg.devices()]
    if out.as_json:
        print(json.dumps(rows))
        return 0
    if not rows:
        print("No devices enrolled.")
    for r in rows:
        print(f"{r['staff']:<12} {r['fingerprint']}  {local_str(int(r['enrolled_at']), tz)}  "
              f"{r['state']}")
    return 0


def cmd_key_load(args: argparse.Namespace, out: Output) -> int:
    dev = device_mod.Device.load(Path(args.device))
    content = dev.open_grant(Path(args.grant))  # before asking for a code: fail early
    code = device_mod.check_code(read_pin(confirm=True))
    path = dev.load_grant(Path(args.grant), code)
    out.done({"device": str(dev.dir), "key": str(path), "staff": content["staff"],
              "locks": [g[0] for g in content["grants"]], "end": content["end"]},
             f"Key loaded for {content['staff']}: {len(content['grants'])} door(s), sealed "
             "under your code on this device.")
    return 0


def device_grant(args: argparse.Namespace, lock_id: str) -> Any:
    """The key for `lock_id`: from the device (the code asked for), or an old
    --key file, which is answered as such."""
    if args.key:
        raise Failed("old key format: ask for a new key (keys now go to an enrolled device)")
    if not args.device:
        raise UsageError("name the staff device: --device DIR")
    dev = device_mod.Device.load(Path(args.device))
    code = device_mod.check_code(read_pin(confirm=False))
    return dev.grant_for(lock_id, code)


def cmd_revoke(args: argparse.Namespace, out: Output) -> int:
    site = Site(open_registry(args))
    if args.device:
        fp, rev = site.revoke_device(actor(args), args.device)
        version = rev.version if rev else None
        out.done({"device": fp, "revocation_version": version},
                 f"Device {fp} revoked: nothing more is issued to it"
                 + (f", and its keys are blocked (block list version {version})." if rev
                    else "; it held no unexpired key."))
        return 0
    if args.staff:
        version = site.revoke_staff(actor(args), args.staff).version
        what = f"every key issued to {args.staff} until now"
        detail: dict[str, Any] = {"staff": args.staff}
    else:
        try:
            cti = bytes.fromhex(args.token)
        except ValueError:
            raise UsageError("--token takes the token id in hex") from None
        version = site.revoke_token(actor(args), cti).version
        what = f"token {args.token}"
        detail = {"token": args.token}
    out.done({**detail, "revocation_version": version},
             f"Blocked {what} (block list version {version}). It reaches each lock with the "
             "next key issued, or with `lockctl lock sync`.")
    return 0


def _clock_text(reason: int, lock_time: int | None, grant: Any, now: int) -> str | None:
    """An expired or not-yet-valid refusal: the key's own validity (by this
    device's clock) or the lock's clock, whichever is wrong."""
    if reason not in (reasons.EXPIRED, reasons.NOT_YET_VALID):
        return None
    if reason == reasons.EXPIRED and now >= grant.end - tok.SKEW:
        return f"this key expired at {device_mod.local_hhmm(grant.end)}: ask for a new key"
    if reason == reasons.NOT_YET_VALID and now < grant.start + tok.SKEW:
        return f"this key is valid from {device_mod.local_hhmm(grant.start)}"
    reads = ""
    if lock_time is not None:
        reads = (f" (it reads {device_mod.local_hhmm(lock_time, day=True)}, this device "
                 f"{device_mod.local_hhmm(now, day=True)})")
    return (f"the lock's clock looks wrong{reads}: your key is valid until "
            f"{device_mod.local_hhmm(grant.end)}. Tell the alarm centre: the lock needs "
            "lockctl lock sync")


def cmd_open(args: argparse.Namespace, out: Output) -> int:
    grant = device_grant(args, args.lock_id)
    with connect_lock(ble_url(args.ble), timeout=10.0) as link:
        outcome = access(link, grant, action=args.action)
    now = int(time.time())
    if outcome.answer:  # the lock's authenticated answer: fleet health for the site
        try:
            statusfile.append_status(Path(args.device), grant.lock_id, grant.cti, outcome.answer, now)
        except OSError as exc:
            out.info(f"lockctl: the lock's status was not kept on this device ({exc.strerror})")
    names = {0: "ok", 1: "low", 2: "critical"}
    st = outcome.status
    data = {"lock": args.lock_id, "opened": outcome.opened, "reason": outcome.reason_name,
            "authenticated": outcome.authenticated, "seq": outcome.seq,
            "battery": names.get(st.get(msg.ST_BATTERY, -1)),
            "revocation_version": st.get(msg.ST_REVOCATION_VERSION)}
    if outcome.opened:
        text = f"Door {args.lock_id} opened (confirmed by the lock, event {outcome.seq})."
    elif outcome.authenticated and _clock_text(outcome.reason, outcome.time, grant, now):
        text = (f"Door {args.lock_id} stayed locked: {outcome.reason_name}: "
                f"{_clock_text(outcome.reason, outcome.time, grant, now)}.")
    elif outcome.authenticated:
        text = f"Door {args.lock_id} stayed locked: {outcome.reason_name} (answer authenticated)."
    elif outcome.reason == reasons.BAD_PROOF:
        text = (f"Door {args.lock_id} stayed locked: wrong code, or this key is not valid "
                "here.")
    elif outcome.reason == reasons.TOKEN_BURNED:
        text = (f"Door {args.lock_id} stayed locked: this key is blocked after too many wrong "
                "codes. Ask the alarm centre for a new key.")
    else:
        text = f"Door {args.lock_id} stayed locked: {outcome.reason_name}."
    data["message"] = text
    out.done(data, text)
    return 0 if outcome.opened else 1


def register(c: Commands) -> None:
    shift = c.group("shift", "shift keys")
    sp = c.add(shift, "issue", cmd_shift_issue,
               "issue a staff member's shift grant, for their enrolled device",
               example="lockctl shift issue --staff S-1 --clients C-1001,C-1002 "
                       "--start 2026-11-23T07:00 --end 2026-11-23T15:30 --out anna.grant")
    sp.add_argument("--staff", metavar="STAFF_ID", type=id_arg("staff id"),
                    help="who works the shift")
    sp.add_argument("--clients", metavar="C1,C2,...", type=id_arg("client id", many=True),
                    help="the clients they visit: a key for every commissioned door of theirs")
    sp.add_argument("--start", metavar="ISO8601",
                    help="the shift's start (local time unless an offset is given)")
    sp.add_argument("--end", metavar="ISO8601",
                    help="the shift's end (at most 24 hours after its start)")
    sp.add_argument("--out", metavar="GRANT", type=path_arg,
                    help="the grant file to hand to the staff member's device")
    sp.add_argument("--roster", metavar="FILE.csv", type=path_arg,
                    help="a unit's shifts: staff,clients,start,end (clients space-separated)")
    sp.add_argument("--out-dir", metavar="DIR", type=path_arg,
                    help="with --roster: where each staff member's grant is written")
    sp.add_argument("--alarm", action="store_true",
                    help="gone: refused, an alarm key is `lockctl alarm issue`")
    sp.add_argument("--log", action="store_true", help="also allow reading the log over BLE")

    sp = c.add(c.sub, "revoke", cmd_revoke, "block a staff member's keys or one token",
               example="lockctl revoke --staff S-1")
    g = sp.add_mutually_exclusive_group(required=True)
    g.add_argument("--staff", metavar="STAFF_ID", type=id_arg("staff id"),
                   help="every key issued to this staff member until now")
    g.add_argument("--token", metavar="TOKEN_ID", help="one key (shift issue names them)")
    g.add_argument("--device", metavar="FINGERPRINT",
                   help="a lost device: its keys blocked and nothing issued to it again")

    dev = c.group("device", "staff devices")
    sp = c.add(dev, "init", cmd_device_init, "make a staff device's key pair (the staff side)",
               example="lockctl device init --device anna-phone")
    sp.add_argument("--device", required=True, metavar="DIR", type=path_arg,
                    help="the device's directory (created; its key stays there)")
    sp = c.add(dev, "enrol", cmd_device_enrol, "register a staff member's device",
               example="lockctl device enrol --staff S-1 --public anna-phone/device.pub "
                       "--fingerprint 1f2e3d4c5b6a")
    sp.add_argument("--staff", required=True, metavar="STAFF_ID", type=id_arg("staff id"),
                    help="whose device it is")
    sp.add_argument("--public", required=True, metavar="FILE", type=path_arg,
                    help="the device's public key (device.pub from device init)")
    sp.add_argument("--fingerprint", required=True, metavar="FP",
                    help="the fingerprint the device shows, read off its screen in person")
    sp.add_argument("--replace", action="store_true", help="revoke the staff member's old device")
    c.add(dev, "list", cmd_device_list, "list enrolled devices",
          example="lockctl device list")

    key = c.group("key", "keys on a staff device")
    sp = c.add(key, "load", cmd_key_load, "open a grant and seal it under your personal code",
               example="lockctl key load --grant anna.grant --device anna-phone")
    sp.add_argument("--grant", required=True, metavar="GRANT", type=path_arg,
                    help="the grant file from shift issue")
    sp.add_argument("--device", required=True, metavar="DIR", type=path_arg,
                    help="the device it was issued to")

    sp = c.add(c.sub, "open", cmd_open, "the key emulator: open a door over BLE",
               example="lockctl open --device anna-phone --lock-id NT-000123 "
                       "--ble 127.0.0.1:PORT")
    sp.add_argument("--device", metavar="DIR", type=path_arg,
                    help="the staff device holding the loaded keys")
    sp.add_argument("--key", metavar="FILE", type=path_arg, help="an old key file (refused)")
    sp.add_argument("--lock-id", required=True, type=id_arg("lock id"),
                    help="the door's lock (which key to use)")
    sp.add_argument("--ble", required=True, metavar="127.0.0.1:PORT",
                    help="the lock: a Bluetooth address, or the simulator's 127.0.0.1:PORT")
    sp.add_argument("--action", default="open", choices=("open",),
                    help="what to ask the lock (open)")
