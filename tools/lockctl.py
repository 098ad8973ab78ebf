"""lockctl: the installers' and administrators' tool.

A thin command line over the library in tools/: the site registry, the
issuer, the installer and key-emulator clients, the transports. Errors are
specific exception types turned into one line here, at the edge. Exit status:
0 done, 1 refused or failed, 2 usage.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import re
import sqlite3
import stat
import sys
import time
import traceback
import unicodedata
from datetime import date, datetime
from pathlib import Path
from typing import Any, Callable
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from protocol import keys, reasons
from protocol import messages as msg
from protocol import token as tok
from tools import device as device_mod
from tools import issuer, keyfile, logcheck, report
from tools.client import (
    ClientError,
    ForeignLock,
    Installer,
    Refused,
    access,
    pull_log_ble,
    read_hello,
)
from tools.registry import Registry, RegistryError
from tools.site import ID_RE, Site
from tools.transport import LinkTimeout, TransportError, connect_lock, link_for_url

DOORS = ("apartment", "entrance", "waste-room", "key-box", "medicine-cabinet")
SERIAL_TIMEOUT = 5.0


class UsageError(Exception):
    """Bad input from the command line: exit status 2."""


class Failed(Exception):
    """The act was refused or failed: exit status 1."""


# --- small helpers -------------------------------------------------------------------

class Output:
    def __init__(self, as_json: bool) -> None:
        self.as_json = as_json

    def done(self, data: dict[str, Any], text: str) -> None:
        if self.as_json:
            print(json.dumps(data, ensure_ascii=False, default=str))
        else:
            print(text)

    def info(self, text: str) -> None:
        """Progress and prompts for people: stderr, so --json stays parseable."""
        print(text, file=sys.stderr, flush=True)

    def progress(self, label: str) -> Callable[[int, int], None]:
        tty = sys.stderr.isatty() and not self.as_json

        def show(done: int, total: int) -> None:
            if not tty:
                return
            width = 30
            frac = min(1.0, done / total) if total else 1.0
            bar = "#" * int(frac * width)
            print(f"\r{label} [{bar:<{width}}] {done}/{total}", end="", file=sys.stderr,
                  flush=True)
            if done >= total:
                print(file=sys.stderr)
        return show


def check_id(value: str, what: str) -> str:
    if not ID_RE.match(value):
        raise UsageError(f"invalid {what} {value!r}: use 1-64 letters, digits, '.', '_' or '-'")
    return value


# Bidirectional overrides would let a name reorder the text around it in a report.
_BIDI = set("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def text_arg(limit: int) -> Callable[[str], str]:
    """An argparse type for names and addresses: they end up in the registry, in
    reports and in the audit record, so they must be printable text (an argument
    that is not UTF-8 arrives with surrogates, which SQLite refuses)."""
    def check(value: str) -> str:
        if not value.strip():
            raise argparse.ArgumentTypeError("must not be empty")
        if len(value) > limit:
            raise argparse.ArgumentTypeError(f"at most {limit} characters")
        if any(unicodedata.category(c) in ("Cc", "Cs") or c in _BIDI for c in value):
            raise argparse.ArgumentTypeError("control characters or bytes that are not "
                                             "UTF-8 text are not allowed")
        return value
    return check


def id_arg(what: str, many: bool = False) -> Callable[[str], str]:
    """An argparse type for an id that is looked up: every id in a registry
    passed check_id, so anything else names nothing (and text that is not
    UTF-8 would fail inside SQLite instead)."""
    def check(value: str) -> str:
        for one in [part.strip() for part in value.split(",")] if many else [value]:
            if many and not one:
                continue  # "C1,,C2": the command drops the empty name
            if not ID_RE.match(one):
                raise argparse.ArgumentTypeError(
                    f"invalid {what} {shorten(one)!r}: use 1-64 letters, digits, '.', '_' or '-'")
        return value
    return check


def path_arg(value: str) -> str:
    if not value:
        raise argparse.ArgumentTypeError("must not be empty")
    return value


def zone_arg(value: str) -> str:
    try:
        ZoneInfo(value)
    except Exception:  # noqa: BLE001 - ValueError, OSError (a name too long), ...
        raise argparse.ArgumentTypeError(f"unknown time zone {shorten(value)!r}") from None
    return value


def days_arg(value: str) -> int:
    # Past a century the retention arithmetic leaves SQLite's integer range.
    try:
        days = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of days: {shorten(value)!r}") from None
    if not 1 <= days <= 36500:
        raise argparse.ArgumentTypeError("must be 1 to 36500 days")
    return days


def shorten(text: str, limit: int = 80) -> str:
    """A user's value as it may appear in a one-line message."""
    return text if len(text) <= limit else text[:limit - 20] + "..." + text[-17:]


def check_out(path_text: str) -> Path:
    """Refuse an --out that cannot be written before anything is done: a
    failure after the act would leave the registry changed and no file. The
    file is written beside itself and renamed over the target, which would
    replace a device or a link (/dev/null, as root) instead of writing to it."""
    if not path_text:
        raise UsageError("--out: give a file name")
    path = Path(path_text)
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        st = None
    except OSError as exc:
        raise Failed(f"--out {shorten(path_text)}: {exc.strerror}") from None
    if st is not None and not stat.S_ISREG(st.st_mode):
        kind = "a directory" if stat.S_ISDIR(st.st_mode) else "not a regular file"
        raise Failed(f"--out {shorten(path_text)} is {kind}: name a file to write")
    parent = path.parent
    try:
        if not parent.is_dir():
            raise Failed(f"--out {shorten(path_text)}: the directory {shorten(str(parent))} "
                         "does not exist")
    except OSError as exc:
        raise Failed(f"--out {shorten(path_text)}: {exc.strerror}") from None
    if not os.access(parent, os.W_OK):
        raise Failed(f"--out {shorten(path_text)}: cannot write in {shorten(str(parent))} "
                     "(permission denied)")
    return path


def site_dir(args: argparse.Namespace) -> Path:
    return Path(args.site or os.environ.get("LOCKCTL_SITE") or "./site")


def actor(args: argparse.Namespace) -> str:
    if args.actor:
        return str(args.actor)
    try:
        return os.environ.get("LOCKCTL_ACTOR") or getpass.getuser()
    except Exception:  # noqa: BLE001 - no user name in some containers
        return "unknown"


def open_registry(args: argparse.Namespace) -> Registry:
    return Registry(site_dir(args))


def zone_of(reg: Registry) -> ZoneInfo:
    try:
        return ZoneInfo(reg.zone)
    except ZoneInfoNotFoundError:
        raise Failed(f"the site's time zone {reg.zone!r} is unknown") from None


def parse_local(text: str, tz: ZoneInfo, what: str) -> int:
    """ISO 8601; without an offset it is the site's local time (DST included)."""
    try:
        dt = datetime.fromisoformat(text)
    except ValueError:
        raise UsageError(f"--{what}: not an ISO 8601 time: {text!r}") from None
    try:
        if dt.tzinfo is None:
            local = dt.replace(tzinfo=tz)
            back = datetime.fromtimestamp(local.timestamp(), tz).replace(tzinfo=None)
            if back != dt:
                raise UsageError(f"--{what}: {text} does not exist in {tz.key} "
                                 "(the clock jumps at the daylight-saving change)")
            dt = local
        return int(dt.timestamp())
    except (OverflowError, ValueError):  # years 1 and 9999 reach past the calendar
        raise UsageError(f"--{what}: {text} is out of range") from None


def parse_day(text: str | None, what: str) -> date | None:
    if text is None:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise UsageError(f"--{what}: not a date (YYYY-MM-DD): {text!r}") from None


def local_str(posix: int, tz: ZoneInfo) -> str:
    return datetime.fromtimestamp(posix, tz).strftime("%Y-%m-%d %H:%M")


def read_pin(confirm: bool) -> str:
    pin = os.environ.get("LOCKCTL_PIN")
    if pin is not None:
        return pin
    if not sys.stdin.isatty():
        raise UsageError("no personal code: set LOCKCTL_PIN or run in a terminal")
    try:
        pin = getpass.getpass("Personal code: ")
        if confirm and getpass.getpass("Personal code again: ") != pin:
            raise UsageError("the two personal codes differ")
    except EOFError:  # Ctrl-D at the prompt
        print(file=sys.stderr)
        raise Failed("no personal code entered: nothing was done") from None
    return pin


def serial(port: str) -> Any:
    return link_for_url(port, timeout=SERIAL_TIMEOUT)


def ble_url(addr: str) -> str:
    if "://" in addr:
        return addr
    if re.match(r"^([0-9A-Fa-f]{2}:){5}[0-9A-Fa-f]{2}$", addr):
        return "ble://" + addr
    return "socket://" + addr


def lock_hello(installer: Installer, port: str) -> Any:
    try:
        return installer.hello()
    except LinkTimeout:
        raise Failed(f"no lock answered on {port} (is it the lock's serial port?)") from None


def known_lock(reg: Registry, lock_id: str) -> Any:
    if not lock_id:
        raise Failed("the lock is not commissioned")
    try:
        return reg.lock(lock_id)
    except RegistryError:
        raise Failed(f"foreign lock: {lock_id} is not registered in this site") from None


# The block-list policy lives in the service layer (tools/site.py); these
# names stay for the callers that use them from here.
from tools.site import MAX_CARRIED_UPDATE, revocation_blob  # noqa: E402,F401

# --- commands --------------------------------------------------------------------------

def cmd_site_init(args: argparse.Namespace, out: Output) -> int:
    try:
        ZoneInfo(args.zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise UsageError(f"unknown time zone {args.zone!r}") from None
    if args.retention_days < 1:
        raise UsageError("--retention-days must be at least 1")
    reg = Site.init(site_dir(args), args.name, args.zone, args.retention_days,
                    actor=actor(args)).registry
    out.done({"site": str(reg.dir), "name": args.name, "zone": args.zone},
             f"Site {args.name!r} initialised in {reg.dir} (time zone {args.zone}).")
    return 0


def cmd_client_add(args: argparse.Namespace, out: Output) -> int:
    Site(open_registry(args)).add_client(actor(args), check_id(args.client_id, "client id"),
                                         args.name, args.address)
    out.done({"client": args.client_id}, f"Client {args.client_id} ({args.name}) added.")
    return 0


def cmd_staff_add(args: argparse.Namespace, out: Output) -> int:
    Site(open_registry(args)).add_staff(actor(args), check_id(args.staff_id, "staff id"),
                                        args.name, args.provider)
    out.done({"staff": args.staff_id}, f"Staff member {args.staff_id} ({args.name}) added.")
    return 0


def cmd_sim(args: argparse.Namespace, out: Output) -> int:
    # Made here, so that a --state naming a file is refused in one line (the
    # simulator would fail with a traceback after exec).
    if not args.state:
        raise UsageError("--state: give a directory for the simulated lock's state")
    try:
        Path(args.state).mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise Failed(f"--state {shorten(args.state)} is a file, not a directory") from None
    except OSError as exc:
        raise Failed(f"--state {shorten(args.state)}: cannot make the directory "
                     f"({exc.strerror})") from None
    cmd = [sys.executable, "-m", "simulator"]
    if args.virtual_board:
        cmd.append("--virtual-board")
    cmd += ["--state", args.state]
    if args.serial_link:
        cmd += ["--serial-link", args.serial_link]
    if args.ble:
        cmd += ["--ble", args.ble]
    if args.auto_button:
        cmd.append("--auto-button")
    if args.mpy:
        cmd.append("--mpy")
    if args.heap:
        cmd += ["--heap", str(args.heap)]
    sys.stdout.flush()
    os.execv(sys.executable, cmd)
    return 1  # not reached


def cmd_commission(args: argparse.Namespace, out: Output) -> int:
    reg = open_registry(args)
    lock_id = check_id(args.lock_id, "lock id")
    clients = [c.strip() for c in args.client.split(",") if c.strip()]
    if not clients:
        raise UsageError("--client: name at least one client")
    for c in clients:
        reg.client(c)
    if args.door in ("apartment", "key-box", "medicine-cabinet") and len(clients) > 1:
        raise UsageError(f"a {args.door} door serves one client; shared doors are "
                         "entrance or waste-room")
    secret = keys.lock_secret(reg.site_secret(), lock_id)
    pk = reg.signing_public() if args.suite == tok.SUITE_ED25519 else None
    now = int(time.time())
    with serial(args.port) as link:
        installer = Installer(link)
        hello = lock_hello(installer, args.port)
        if hello.lock_id:
            raise Failed(ALREADY_COMMISSIONED.format(lock=hello.lock_id))
        try:
            data = installer.commission(
                lock_id=lock_id, secret=secret, suite=args.suite, issuer=reg.name, time=now,
                door=args.door, issuer_pk=pk,
                on_press=lambda s: out.info(f"Press the button on the lock now (within {s} s)..."))
        except Refused as exc:
            if exc.reason == reasons.ALREADY_COMMISSIONED:
                raise Failed(ALREADY_COMMISSIONED.format(lock="another lock id")) from None
            raise
    Site(reg).record_commissioning(actor(args), lock_id, args.door, args.suite, clients, now,
                                   data)
    out.done({"lock": lock_id, "clients": clients, "door": args.door, "suite": args.suite},
             f"Lock {lock_id} commissioned: {args.door} door of {', '.join(clients)}, "
             f"suite {args.suite}, clock set.")
    return 0


ALREADY_COMMISSIONED = (
    "this lock is already commissioned (as {lock}): its own site must decommission it first "
    "(lockctl lock decommission, with the button), or it must be factory-reset at the door")


def _admin(args: argparse.Namespace, out: Output, op: str, argmap: dict[int, Any] | None = None,
           press: bool = False) -> tuple[Registry, Any, dict[int, Any]]:
    reg = open_registry(args)
    with serial(args.port) as link:
        installer = Installer(link)
        hello = lock_hello(installer, args.port)
        row = known_lock(reg, hello.lock_id)
        admin_key = issuer.admin_key_for(reg.site_secret(), row.lock_id)
        on_press = (lambda s: out.info(f"Press the button on the lock now (within {s} s)...")
                    ) if press else None
        data = installer.admin(admin_key, op, argmap, expect_lock=row.lock_id, on_press=on_press)
    return reg, row, data


def cmd_lock_info(args: argparse.Namespace, out: Output) -> int:
    reg, row, data = _admin(args, out, "info")
    status = data.get(msg.INFO_STATUS) or {}
    reg.record_health(row.lock_id, status, int(time.time()))
    tz = zone_of(reg)
    info = {
        "lock": row.lock_id, "door": data.get(msg.INFO_DOOR), "suite": data.get(msg.INFO_SUITE),
        "clients": row.clients, "revocation_version": status.get(msg.ST_REVOCATION_VERSION),
        "battery": ["ok", "low", "critical"][min(2, status.get(msg.ST_BATTERY, 0))],
        "battery_mv": status.get(msg.ST_BATTERY_MV),
        "clock_trusted": status.get(msg.ST_CLOCK_TRUSTED),
        "lock_time": status.get(msg.ST_TIME), "log_count": status.get(msg.ST_LOG_COUNT),
        "log_capacity": status.get(msg.ST_LOG_CAPACITY), "firmware": status.get(msg.ST_FIRMWARE),
        "battery_days": status.get(msg.ST_BATTERY_DAYS),
    }
    text = "\n".join([
        f"Lock {row.lock_id}: {info['door']} door of {', '.join(row.clients)} ({info['suite']})",
        f"  clock: {local_str(info['lock_time'] or 0, tz)} "
        f"({'trusted' if info['clock_trusted'] else 'NOT trusted'})",
        f"  battery: {info['battery']} ({info['battery_mv']} mV"
        + (f", about {info['battery_days']} days left at its recent openings)"
           if info["battery_days"] is not None else ")"),
        f"  block list version: {info['revocation_version']}",
        f"  log: {info['log_count']} of {info['log_capacity']} events",
        f"  firmware: {info['firmware']}"])
    out.done(info, text)
    return 0


def _time_text(result: Any, status: dict[int, Any], tz: ZoneInfo) -> str:
    """What the lock's answer to a time set means, and what to do about it."""
    if result == reasons.ALLOW:
        return "clock set"
    if result == reasons.ROLLBACK:
        lock_time = status.get(msg.ST_TIME)
        reads = f" (it reads {local_str(lock_time, tz)})" if isinstance(lock_time, int) else ""
        return (f"clock NOT set: the lock's trusted clock is further ahead than it can have "
                f"drifted{reads}; if this computer's clock is right, run `lockctl lock sync "
                "--force-time` and press the button on the lock")
    if result == reasons.TIME_OUT_OF_RANGE:
        return ("clock NOT set: this computer's clock is outside what a lock can hold "
                f"({issuer.RANGE_TEXT}); correct it first")
    return f"clock NOT set ({reasons.name(result)})"


def cmd_lock_sync(args: argparse.Namespace, out: Output) -> int:
    reg = open_registry(args)
    tz = zone_of(reg)
    with serial(args.port) as link:
        installer = Installer(link)
        hello = lock_hello(installer, args.port)
        row = known_lock(reg, hello.lock_id)
        admin_key = issuer.admin_key_for(reg.site_secret(), row.lock_id)
        forced = None
        if args.force_time:
            # With the button (physical presence): the lock takes this time
            # even backwards, the way back for a clock pushed out of range.
            try:
                forced = installer.admin(
                    admin_key, "force-time", {msg.SYNC_TIME: int(time.time())}, expect_lock=row.lock_id,
                    on_press=lambda s: out.info(
                        f"Press the button on the lock now (within {s} s)...")).get(1)
            except Refused as exc:
                if exc.reason == reasons.BUTTON_REQUIRED:
                    raise Failed("the button was not pressed in time: the lock's clock was "
                                 "not changed") from None
                if exc.reason == reasons.TIME_OUT_OF_RANGE:
                    raise Failed("this computer's clock is outside what a lock can hold "
                                 f"({issuer.RANGE_TEXT}): the lock's clock was not changed"
                                 ) from None
                raise
        now = int(time.time())
        argmap: dict[int, Any] = {msg.SYNC_TIME: now}
        blob = revocation_blob(reg, row.lock_id, now)
        if blob is not None:
            argmap[msg.SYNC_REVOCATION] = blob
        data = installer.admin(admin_key, "sync", argmap, expect_lock=row.lock_id)
    status = data.get(msg.SYNC_STATUS) or {}
    Site(reg).record_sync(actor(args), row.lock_id, status, now, forced is not None)
    time_ok = data.get(msg.SYNC_TIME) == reasons.ALLOW
    rev = data.get(msg.SYNC_REVOCATION)
    rev_text = ("up to date" if rev in (None, reasons.ROLLBACK) else
                "updated" if rev == reasons.ALLOW else f"refused ({reasons.name(rev)})")
    clock_text = _time_text(data.get(msg.SYNC_TIME), status, tz)
    if forced == reasons.ALLOW and time_ok:
        clock_text = "clock set (forced, with the button)"
    out.done({"lock": row.lock_id, "time_set": time_ok, "forced": forced == reasons.ALLOW,
              "revocation": rev_text, "revocation_version":
              status.get(msg.ST_REVOCATION_VERSION)},
             f"Lock {row.lock_id}: {clock_text}, block list "
             f"{rev_text} (version {status.get(msg.ST_REVOCATION_VERSION)}).")
    return 0 if time_ok and rev in (None, reasons.ALLOW, reasons.ROLLBACK) else 1


def cmd_lock_decommission(args: argparse.Namespace, out: Output) -> int:
    """Pull the log, then end the identity; the lock's answer carries the
    DECOMMISSIONED record, so this epoch's log is whole to its last record."""
    reg = open_registry(args)
    now = int(time.time())
    with serial(args.port) as link:
        installer = Installer(link)
        hello = lock_hello(installer, args.port)
        row = known_lock(reg, hello.lock_id)
        admin_key = issuer.admin_key_for(reg.site_secret(), row.lock_id)
        pulled, status = pull_serial(installer, reg, row, admin_key, out, actor(args))
        data = installer.admin(
            admin_key, "decommission", expect_lock=row.lock_id,
            on_press=lambda s: out.info(f"Press the button on the lock now (within {s} s)..."))
    last = [bytes(r) for r in (data.get(msg.DECOMMISSIONED_RECORD) or [])]
    Site(reg).record_decommission(actor(args), row.lock_id, row.epoch,
                                  int(data.get(msg.DECOMMISSIONED_SEQ) or 0), last, status, now)
    out.done({"lock": row.lock_id, "status": "decommissioned", "pulled": len(pulled) + len(last)},
             f"Lock {row.lock_id} decommissioned: its log was collected ({len(pulled) + len(last)} "
             "events); it opens for nobody until commissioned again.")
    return 0


def write_file(path: Path, data: bytes) -> None:
    """Atomically, owner-only (grants and reports hold what is not for others)."""
    tmp = path.with_name(path.name + ".new")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def cmd_shift_issue(args: argparse.Namespace, out: Output) -> int:
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
    if end > start and end - now > tok.MAX_LIFETIME and end - start <= tok.MAX_LIFETIME:
        # The lock refuses a token that outlives its issue by more than 24 h.
        raise UsageError("a key can be issued at most 24 hours before its shift ends: "
                         f"issue this one from {local_str(end - tok.MAX_LIFETIME, tz)}")
    problem = site.shift_problem(staff["staff_id"], clients, start, end, now)
    if problem is not None:
        if "device" in problem or "lock" in problem:
            raise Failed(problem)
        raise UsageError(problem)
    out_path = check_out(args.out)
    scope = "open log" if args.log else "open"
    data, grants, fp = site.issue_shift(actor(args), staff["staff_id"], clients, start, end,
                                        scope, args.alarm, now)
    write_file(out_path, data)
    out.done({"staff": staff["staff_id"], "locks": [g.lock_id for g in grants],
              "start": start, "end": end, "out": args.out, "device": fp,
              "tokens": [g.cti.hex() for g in grants]},
             f"Shift grant for {staff['name']} ({staff['staff_id']}): "
             f"{local_str(start, tz)} to {local_str(end, tz)}, "
             f"{len(grants)} door(s): {', '.join(g.lock_id for g in grants)}. "
             f"Written to {args.out}, for device {fp[:16]} only. Token id(s), for a block of "
             f"one key: {', '.join(g.cti.hex() for g in grants)}.")
    return 0


def roster_issue(args: argparse.Namespace, out: Output) -> int:
    """A whole unit before a shift: every row checked first; any bad row and
    nothing is issued (every bad row named); rows whose shift ends more than
    24 h ahead are listed as not yet issuable."""
    import csv
    import io
    if not args.out_dir:
        raise UsageError("--roster needs --out-dir DIR")
    reg = open_registry(args)
    tz = zone_of(reg)
    site = Site(reg)
    path = Path(args.roster)
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
    now = int(time.time())
    issue: list[dict[str, Any]] = []
    not_yet: list[dict[str, Any]] = []
    errors: list[dict[str, Any]] = []
    seen: dict[str, int] = {}
    for line, row in enumerate(rows[1:], start=2):
        if not any(c.strip() for c in row):
            continue
        if len(row) != 4:
            errors.append({"line": line, "error": "expected 4 fields"})
            continue
        staff_id, clients_text, start_text, end_text = (c.strip() for c in row)
        clients = clients_text.split()
        try:
            start = parse_local(start_text, tz, "start")
            end = parse_local(end_text, tz, "end")
        except UsageError as exc:
            errors.append({"line": line, "error": str(exc)})
            continue
        problem = site.shift_problem(staff_id, clients, start, end, now)
        if problem is None and staff_id in seen:
            problem = f"{staff_id} is on line {seen[staff_id]} too: one shift per staff member"
        if problem is not None:
            errors.append({"line": line, "error": problem})
            continue
        seen[staff_id] = line
        item: dict[str, Any] = {"line": line, "staff": staff_id, "clients": clients,
                                "start": start, "end": end}
        if end - now > tok.MAX_LIFETIME:
            item["after"] = end - tok.MAX_LIFETIME
            not_yet.append(item)
        else:
            issue.append(item)
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
        with reg.tx():  # the roster is one act: all of it or none
            for item in issue:
                data, grants, fp = site.issue_shift(actor(args), str(item["staff"]),
                                                    list(item["clients"]), int(item["start"]),
                                                    int(item["end"]), "open", False, now)
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


def cmd_open(args: argparse.Namespace, out: Output) -> int:
    grant = device_grant(args, args.lock_id)
    with connect_lock(ble_url(args.ble), timeout=10.0) as link:
        outcome = access(link, grant, action=args.action)
    names = {0: "ok", 1: "low", 2: "critical"}
    st = outcome.status
    data = {"lock": args.lock_id, "opened": outcome.opened, "reason": outcome.reason_name,
            "authenticated": outcome.authenticated, "seq": outcome.seq,
            "battery": names.get(st.get(msg.ST_BATTERY, -1)),
            "revocation_version": st.get(msg.ST_REVOCATION_VERSION)}
    if outcome.opened:
        text = f"Door {args.lock_id} opened (confirmed by the lock, event {outcome.seq})."
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
    names = [reg.client(c)["name"] for c in lk.clients]
    lines = verdict_lines(verdicts)
    meta = {"lock_id": lk.lock_id, "door": lk.door, "clients": ", ".join(names),
            "site": reg.name, "zone": reg.zone, "chain_ok": complete, "complete": complete,
            "from": day_from.isoformat() if day_from else "start",
            "to": day_to.isoformat() if day_to else "now",
            "generated": datetime.now(tz).isoformat(timespec="seconds"),
            "verdict": " ".join(lines), "verdicts": [v.as_json() for v in verdicts]}
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


def check_flash_port(port: str) -> None:
    """mpremote reports a port that does not exist as "failed to access PORT (it
    may be in use by another program)", and only after the compile: tell the
    installer what is wrong first."""
    if not port:
        raise UsageError("--port: name the board's serial port (e.g. /dev/ttyACM0)")
    if "://" in port or port.startswith(("id:", "port:")) or re.fullmatch(r"[acu]\d+", port):
        return  # mpremote's own forms: it resolves them
    try:
        st = os.stat(port)
    except FileNotFoundError:
        raise Failed(f"{shorten(port)}: no such serial port: it does not exist "
                     "(is the board connected?)") from None
    except OSError as exc:
        raise Failed(f"{shorten(port)}: {exc.strerror}") from None
    if not stat.S_ISCHR(st.st_mode):
        raise Failed(f"{shorten(port)} is not a serial port")
    try:
        fd = os.open(port, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
    except PermissionError:
        raise Failed(f"{port}: permission denied (on Linux, join the 'dialout' group)") from None
    except OSError as exc:
        raise Failed(f"{port}: cannot open the serial port ({exc.strerror})") from None
    try:
        if not os.isatty(fd):
            raise Failed(f"{port} is not a serial port (not a terminal device)")
    finally:
        os.close(fd)


def cmd_flash(args: argparse.Namespace, out: Output) -> int:
    from tools import flashing
    boards = flashing.boards()
    if args.board not in boards:
        raise UsageError(f"unknown board {shorten(args.board)!r}: the known boards are "
                         f"{', '.join(boards)}")
    check_flash_port(args.port)
    try:
        flashing.flash(args.board, args.port, progress=out.progress("flashing"), info=out.info)
    except flashing.DeployError as exc:
        raise Failed(f"flash failed: {exc}") from None
    reg_note = ""
    try:
        open_registry(args).audit(actor(args), "flash", {"board": args.board, "port": args.port})
    except RegistryError:
        reg_note = " (no site here: the act was not recorded)"
    except sqlite3.Error as exc:  # the board is flashed all the same: say so, exit 0
        reg_note = f" (the act was not recorded: {registry_problem(site_dir(args), exc)})"
    out.done({"board": args.board, "port": args.port},
             f"Firmware for {args.board} deployed to {args.port}.{reg_note}")
    return 0


# --- the parser ----------------------------------------------------------------------------

def build_parser() -> argparse.ArgumentParser:
    def common_options(suppress: bool) -> argparse.ArgumentParser:
        # The same options before or after the command; after it they must not
        # reset what was given before it, hence SUPPRESS on the subcommands.
        c = argparse.ArgumentParser(add_help=False)
        kw: dict[str, Any] = {"default": argparse.SUPPRESS} if suppress else {}
        c.add_argument("--site", metavar="DIR", type=path_arg,
                       help="site directory (default $LOCKCTL_SITE or ./site)", **kw)
        c.add_argument("--json", action="store_true", help="machine-readable output", **kw)
        c.add_argument("--actor", help="who does this (default $LOCKCTL_ACTOR or the user)",
                       type=text_arg(100), **kw)
        c.add_argument("--debug", action="store_true",
                       help="on an unexpected error, show its traceback", **kw)
        return c

    common = common_options(suppress=True)
    p = argparse.ArgumentParser(prog="lockctl", parents=[common_options(suppress=False)],
                                description="Site registry, commissioning, shift keys, "
                                "blocking and log reports for keyless home-care locks.")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def cmd(parent: Any, name: str, func: Callable[..., int], help_: str) -> Any:
        sp = parent.add_parser(name, parents=[common], help=help_, description=help_)
        sp.set_defaults(func=func)
        return sp

    site = sub.add_parser("site", help="the site").add_subparsers(dest="sub", required=True)
    sp = cmd(site, "init", cmd_site_init, "create a site: registry and secrets")
    # The site name is the issuer (iss) of every token: the lock takes 64 characters.
    sp.add_argument("--name", default="site", type=text_arg(tok.MAX_TEXT),
                    help="the site's name; it is also the issuer name its locks check")
    sp.add_argument("--zone", default="Europe/Stockholm", type=zone_arg)
    sp.add_argument("--retention-days", type=days_arg, default=365)

    client = sub.add_parser("client", help="clients").add_subparsers(dest="sub", required=True)
    sp = cmd(client, "add", cmd_client_add, "register a client")
    sp.add_argument("client_id", metavar="CLIENT_ID")
    sp.add_argument("--name", required=True, type=text_arg(200))
    sp.add_argument("--address", type=text_arg(200))

    staff = sub.add_parser("staff", help="staff").add_subparsers(dest="sub", required=True)
    sp = cmd(staff, "add", cmd_staff_add, "register a staff member")
    sp.add_argument("staff_id", metavar="STAFF_ID")
    sp.add_argument("--name", required=True, type=text_arg(200))
    sp.add_argument("--provider", type=text_arg(200))

    sp = cmd(sub, "sim", cmd_sim, "run a simulated lock (or an empty virtual board)")
    sp.add_argument("--state", default="./sim-lock", metavar="DIR", type=path_arg)
    sp.add_argument("--serial-link", metavar="PATH")
    sp.add_argument("--ble", metavar="127.0.0.1:PORT")
    sp.add_argument("--auto-button", action="store_true")
    sp.add_argument("--mpy", action="store_true")
    sp.add_argument("--heap", metavar="BYTES")
    sp.add_argument("--virtual-board", action="store_true")

    sp = cmd(sub, "commission", cmd_commission, "commission a lock over its serial port")
    sp.add_argument("--port", required=True, metavar="DEV")
    sp.add_argument("--lock-id", required=True, type=id_arg("lock id"))
    sp.add_argument("--client", required=True, metavar="CLIENT_ID[,CLIENT_ID...]",
                    type=id_arg("client id", many=True))
    sp.add_argument("--door", choices=DOORS, default="apartment")
    sp.add_argument("--suite", choices=(tok.SUITE_HMAC, tok.SUITE_ED25519), default="hmac")

    lock = sub.add_parser("lock", help="one lock over serial").add_subparsers(dest="sub",
                                                                              required=True)
    for name, func, help_ in (("info", cmd_lock_info, "show a lock's state"),
                              ("sync", cmd_lock_sync, "set the clock and the block list"),
                              ("decommission", cmd_lock_decommission,
                               "remove the lock's identity (button needed)")):
        sp = cmd(lock, name, func, help_)
        sp.add_argument("--port", required=True, metavar="DEV")
        if name == "sync":
            sp.add_argument("--force-time", action="store_true",
                            help="set the clock from this computer even backwards "
                            "(button needed; logged): for a clock the lock refuses to correct")

    shift = sub.add_parser("shift", help="shift keys").add_subparsers(dest="sub", required=True)
    sp = cmd(shift, "issue", cmd_shift_issue,
             "issue a staff member's shift grant, for their enrolled device")
    sp.add_argument("--staff", metavar="STAFF_ID", type=id_arg("staff id"))
    sp.add_argument("--clients", metavar="C1,C2,...", type=id_arg("client id", many=True))
    sp.add_argument("--start", metavar="ISO8601")
    sp.add_argument("--end", metavar="ISO8601")
    sp.add_argument("--out", metavar="GRANT", type=path_arg)
    sp.add_argument("--roster", metavar="FILE.csv", type=path_arg,
                    help="a unit's shifts: staff,clients,start,end (clients space-separated)")
    sp.add_argument("--out-dir", metavar="DIR", type=path_arg)
    sp.add_argument("--alarm", action="store_true", help="alarm response: marked in every log")
    sp.add_argument("--log", action="store_true", help="also allow reading the log over BLE")

    sp = cmd(sub, "revoke", cmd_revoke, "block a staff member's keys or one token")
    g = sp.add_mutually_exclusive_group(required=True)
    g.add_argument("--staff", metavar="STAFF_ID", type=id_arg("staff id"))
    g.add_argument("--token", metavar="TOKEN_ID")
    g.add_argument("--device", metavar="FINGERPRINT")

    dev = sub.add_parser("device", help="staff devices").add_subparsers(dest="sub",
                                                                         required=True)
    sp = cmd(dev, "init", cmd_device_init, "make a staff device's key pair (the staff side)")
    sp.add_argument("--device", required=True, metavar="DIR", type=path_arg)
    sp = cmd(dev, "enrol", cmd_device_enrol, "register a staff member's device")
    sp.add_argument("--staff", required=True, metavar="STAFF_ID", type=id_arg("staff id"))
    sp.add_argument("--public", required=True, metavar="FILE", type=path_arg)
    sp.add_argument("--fingerprint", required=True, metavar="FP")
    sp.add_argument("--replace", action="store_true", help="revoke the staff member's old device")
    cmd(dev, "list", cmd_device_list, "list enrolled devices")

    key = sub.add_parser("key", help="keys on a staff device").add_subparsers(dest="sub",
                                                                             required=True)
    sp = cmd(key, "load", cmd_key_load, "open a grant and seal it under your personal code")
    sp.add_argument("--grant", required=True, metavar="GRANT", type=path_arg)
    sp.add_argument("--device", required=True, metavar="DIR", type=path_arg)

    sp = cmd(sub, "open", cmd_open, "the key emulator: open a door over BLE")
    sp.add_argument("--device", metavar="DIR", type=path_arg)
    sp.add_argument("--key", metavar="FILE", type=path_arg, help="an old key file (refused)")
    sp.add_argument("--lock-id", required=True, type=id_arg("lock id"))
    sp.add_argument("--ble", required=True, metavar="127.0.0.1:PORT")
    sp.add_argument("--action", default="open", choices=("open",))

    log = sub.add_parser("log", help="event logs").add_subparsers(dest="sub", required=True)
    sp = cmd(log, "pull", cmd_log_pull, "collect a lock's log (serial, or BLE with a key)")
    sp.add_argument("--port", metavar="DEV")
    sp.add_argument("--ble", metavar="127.0.0.1:PORT")
    sp.add_argument("--device", metavar="DIR", type=path_arg)
    sp.add_argument("--key", metavar="FILE", type=path_arg, help="an old key file (refused)")
    sp = cmd(log, "verify", cmd_log_verify, "check the log's MAC chain")
    sp.add_argument("--lock-id", required=True, type=id_arg("lock id"))
    sp = cmd(log, "report", cmd_log_report, "the log report for a unit manager")
    sp.add_argument("--lock-id", required=True, type=id_arg("lock id"))
    sp.add_argument("--from", dest="from_", metavar="YYYY-MM-DD")
    sp.add_argument("--to", metavar="YYYY-MM-DD")
    sp.add_argument("--format", required=True, choices=("csv", "json", "html"))
    sp.add_argument("--out", metavar="FILE", type=path_arg)

    sp = cmd(sub, "flash", cmd_flash, "compile and deploy the firmware with mpremote")
    sp.add_argument("--board", required=True)
    sp.add_argument("--port", required=True, metavar="DEV")
    return p


INTERRUPTED = 130  # 128 + SIGINT, as a shell reports a command stopped by Ctrl-C


def registry_problem(site: Path, exc: sqlite3.Error) -> str:
    """SQLite's own words name neither the file nor what to do about it."""
    text = str(exc)
    where = shorten(str(site))
    if "readonly" in text:
        return (f"the site registry in {where} is read-only ({text}): the site directory "
                "and its files must be writable by whoever runs lockctl")
    if "unable to open" in text:
        return (f"cannot open or write the site registry in {where} ({text}): SQLite needs "
                "to write the registry and its journal in the site directory")
    if "locked" in text or "busy" in text:
        return "the site registry is busy (another lockctl?): try again"
    if "malformed" in text or "not a database" in text:
        return f"the site registry in {where} is damaged ({text}): restore it from a backup"
    return f"site registry in {where}: {text}"


def os_problem(exc: OSError) -> str:
    what = exc.strerror or str(exc) or type(exc).__name__
    return f"{shorten(str(exc.filename))}: {what}" if exc.filename is not None else what


def complain(message: object, debug: bool = False) -> None:
    """One line on stderr; with --debug, an error lockctl did not foresee as
    such (from SQLite, the OS, or a bug) also shows where it came from."""
    if debug:
        traceback.print_exc()
    lines = str(message).strip().splitlines() or [""]
    print(f"lockctl: {shorten(lines[0], 500)}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    # A path or id that is not UTF-8 must not make the answer itself fail.
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            reconfigure(errors="backslashreplace")
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse printed the usage line
        return int(exc.code or 0) and 2
    except KeyboardInterrupt:
        print("lockctl: interrupted", file=sys.stderr)
        return INTERRUPTED
    out = Output(args.json)
    debug = bool(getattr(args, "debug", False))
    try:
        return int(args.func(args, out))
    except UsageError as exc:
        complain(exc)
        return 2
    except (Failed, RegistryError, keyfile.KeyFileError, device_mod.DeviceError, ForeignLock,
            Refused, ClientError,
            TransportError, issuer.IssueError) as exc:
        complain(exc)
        return 1
    except sqlite3.Error as exc:
        complain(registry_problem(site_dir(args), exc), debug)
        return 1
    except BrokenPipeError:
        # The reader went away (`lockctl ... | head`): nobody is left to tell,
        # and the interpreter's own flush at exit must not fail on the pipe either.
        try:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except (OSError, ValueError):
            pass
        return 1
    except OSError as exc:
        complain(os_problem(exc), debug)
        return 1
    except KeyboardInterrupt:
        if sys.stderr.isatty():
            print(file=sys.stderr)  # Ctrl-C leaves the cursor after a prompt or a bar
        print("lockctl: interrupted", file=sys.stderr)
        return INTERRUPTED
    except Exception as exc:  # noqa: BLE001 - the last catch: one line, not a traceback
        first = (str(exc).strip().splitlines() or [""])[0]
        complain(f"unexpected error ({type(exc).__name__}: {shorten(first, 200)}); "
                 "run again with --debug for the details", debug)
        return 1


if __name__ == "__main__":
    sys.exit(main())

