"""What every lockctl command shares: the exit-status errors, the site, times
read in the site's zone, the serial link and the command tree. The argument
types (argtypes.py) and the output (output.py) are imported from here too, so
a command module takes all it shares from this one."""

from __future__ import annotations

import argparse
import getpass
import os
import re
import sqlite3
import stat
import sys
from datetime import date, datetime
from pathlib import Path
from typing import Any, Callable
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from tools import access, siteconfig
from tools.client import Installer
from tools.files import write_private
from tools.lockctl.argtypes import (  # noqa: F401 (the command modules import them from here)
    days_arg,
    id_arg,
    path_arg,
    text_arg,
    yes_no,
    zone_arg,
)
from tools.lockctl.output import (  # noqa: F401
    COLOURS,
    TIME_FIELDS,
    Output,
    colour,
    local_str,
    print_one,
    print_rows,
    shorten,
    shown,
    use_colour,
)
from tools.registry import Registry, RegistryError
from tools.site import ID_RE
from tools.transport import LinkTimeout, link_for_url

DOORS = access.DOORS
SERIAL_TIMEOUT = 5.0


class UsageError(Exception):
    """Bad input from the command line: exit status 2."""


class Failed(Exception):
    """The act was refused or failed: exit status 1."""


def check_id(value: str, what: str) -> str:
    if not ID_RE.match(value):
        raise UsageError(f"invalid {what} {value!r}: use 1-64 letters, digits, '.', '_' or '-'")
    return value


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
