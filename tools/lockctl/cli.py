"""What every lockctl command shares: the exit-status errors, output, argument
types, the site, times in the site's zone, the serial link and the command tree."""

from __future__ import annotations

import argparse
import getpass
import json
import os
import re
import sqlite3
import stat
import sys
import unicodedata
from datetime import date, datetime
from pathlib import Path
from typing import Any, Callable
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from tools import access, siteconfig
from tools.client import Installer
from tools.files import write_private
from tools.registry import Registry, RegistryError
from tools.site import ID_RE
from tools.transport import LinkTimeout, link_for_url

DOORS = access.DOORS
SERIAL_TIMEOUT = 5.0


class UsageError(Exception):
    """Bad input from the command line: exit status 2."""


class Failed(Exception):
    """The act was refused or failed: exit status 1."""


# --- small helpers -------------------------------------------------------------------

COLOURS = {"red": "31", "green": "32", "yellow": "33", "bold": "1"}


def use_colour(stream: Any = None) -> bool:
    """Colour only on a terminal, and never with NO_COLOR set (no-color.org)."""
    stream = stream or sys.stdout
    if os.environ.get("NO_COLOR", "") != "" or os.environ.get("TERM") == "dumb":
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def colour(text: str, name: str, stream: Any = None) -> str:
    return f"\x1b[{COLOURS[name]}m{text}\x1b[0m" if use_colour(stream) else text


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


def site_config(args: argparse.Namespace) -> siteconfig.SiteConfig:
    """The site's CLI defaults (SITE/site.toml); a bad file is a clear error."""
    try:
        return siteconfig.load(site_dir(args))
    except siteconfig.ConfigError as exc:
        raise Failed(str(exc)) from None


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


def parse_bound(text: str | None, tz: ZoneInfo, what: str, end: bool = False) -> int | None:
    """An ISO date or date-time in the site's zone. A date is its midnight;
    as an end (`end`), the midnight after it: a --to date includes that day."""
    if text is None:
        return None
    try:
        day = date.fromisoformat(text)
    except ValueError:
        return parse_local(text, tz, what)
    if end:
        day = date.fromordinal(day.toordinal() + 1) if day < date.max else day
    return int(datetime(day.year, day.month, day.day, tzinfo=tz).timestamp())


def yes_no(value: str) -> bool:
    """An argparse type for yes|no."""
    v = value.strip().lower()
    if v in ("yes", "no"):
        return v == "yes"
    raise argparse.ArgumentTypeError("yes or no")


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


def serial(port: str | None) -> Any:
    """The lock's serial link. `auto` is the one lock attached (tools/ports.py);
    refused when there is none or more than one."""
    if not port:
        raise UsageError("--port: give the lock's serial port (a device such as "
                         "/dev/ttyACM0, or auto), or set port in SITE/site.toml")
    if port == "auto":
        from tools import ports
        try:
            found = ports.the_one_lock(ports.scan())
        except ports.PortChoiceError as exc:
            raise Failed(str(exc)) from None
        print(f"lockctl: --port auto: {found.device} (lock "
              f"{found.lock_id or 'not commissioned'})", file=sys.stderr, flush=True)
        port = found.device
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


def write_file(path: Path, data: bytes) -> None:
    """Atomically, owner-only (grants and reports hold what is not for others)."""
    write_private(path, data)


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


# Fields of the views (tools/views.py) that are times: shown in local time.
TIME_FIELDS = ("at", "start", "end", "issued_at", "enrolled_at", "changed_at", "created_at",
               "cancelled_at", "commissioned_at", "last_seen")


def shown(value: Any, key: str, tz: ZoneInfo) -> str:
    if value is None or value == []:
        return "-"
    if key in TIME_FIELDS and isinstance(value, int):
        return local_str(value, tz)
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return ",".join(str(v) for v in value)
    if isinstance(value, dict):
        return " ".join(f"{k}={shown(v, k, tz)}" for k, v in value.items())
    return str(value)


def print_rows(out: Output, rows: list[dict[str, Any]], columns: list[str], tz: ZoneInfo,
               empty: str) -> None:
    """A list: a JSON array of objects, or one line per row in columns."""
    if out.as_json:
        print(json.dumps(rows, ensure_ascii=False))
        return
    if not rows:
        print(empty)
        return
    cells = [[shown(r.get(c), c, tz) for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    print("  ".join(c.upper().ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip())
    for row in cells:
        print("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())


def print_one(out: Output, data: dict[str, Any], tz: ZoneInfo) -> None:
    """One object: JSON, or a line per field."""
    if out.as_json:
        print(json.dumps(data, ensure_ascii=False))
        return
    width = max(len(k) for k in data)
    for k, v in data.items():
        print(f"{k.replace('_', ' ') + ':':<{width + 2}} {shown(v, k, tz)}")


PORT_HELP = ("the lock's serial port: a device (/dev/ttyACM0), or auto for the one lock "
             "attached; default: port in SITE/site.toml")


def port_option(sp: argparse.ArgumentParser) -> None:
    """--port for a command that talks to a lock over serial; its default is
    site.toml's port (filled in by main before the command runs)."""
    sp.add_argument("--port", metavar="DEV", help=PORT_HELP)
    sp.set_defaults(port_from_site=True)


class Commands:
    """The command tree. Each module of commands adds its own to it, into
    groups (`lock`, `log`, ...) that several modules may share."""

    def __init__(self, sub: Any, common: argparse.ArgumentParser) -> None:
        self.sub = sub
        self.common = common
        self.groups: dict[str, Any] = {}

    def group(self, name: str, help_: str) -> Any:
        if name not in self.groups:
            self.groups[name] = self.sub.add_parser(name, help=help_).add_subparsers(
                dest="sub", required=True)
        return self.groups[name]

    def add(self, parent: Any, name: str, func: Callable[..., int], help_: str,
            example: str | None = None, own: tuple[str, ...] = ()) -> Any:
        """One command. `example` is a whole command line, shown under its --help
        (every command should have one; give every option a help= text too).
        `own` names common options (such as "--actor") this command gives a
        meaning of its own: they are left out of its copy of the common ones."""
        common = self.common
        if own:
            common = argparse.ArgumentParser(add_help=False)
            for action in self.common._actions:
                if not set(action.option_strings) & set(own):
                    common._add_action(action)
        sp = parent.add_parser(name, parents=[common], help=help_, description=help_,
                               epilog=f"example:\n  {example}" if example else None,
                               formatter_class=argparse.RawDescriptionHelpFormatter)
        sp.set_defaults(func=func)
        return sp
