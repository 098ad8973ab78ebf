"""lockctl's commands for one lock: simulate, commission, info, sync,
decommission, flash."""

from __future__ import annotations

import argparse
import os
import re
import sqlite3
import stat
import sys
import time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from protocol import keys, reasons
from protocol import messages as msg
from protocol import token as tok
from tools import flashing, fleet, issuer, statusfile
from tools.client import ClientError, Installer, Refused
from tools.lockctl.cli import (
    DOORS,
    Commands,
    Failed,
    Output,
    UsageError,
    actor,
    check_id,
    id_arg,
    known_lock,
    local_str,
    lock_hello,
    open_registry,
    path_arg,
    port_option,
    registry_problem,
    serial,
    shorten,
    site_dir,
    text_arg,
    zone_of,
)
from tools.lockctl.log_cmds import pull_serial
from tools.registry import Registry, RegistryError
from tools.site import Site, revocation_blob
from tools.transport import TransportError


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
    site = Site(reg)
    problem = site.commission_problem(args.door, clients, args.provider, lock_id)
    if problem is not None:
        raise (UsageError if problem.usage else Failed)(problem)
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
        done = site.record_commissioning(actor(args), lock_id, args.door, args.suite, clients,
                                         now, data, provider=args.provider)
        sent = _send_block(installer, reg, lock_id) if done.earlier_blocked else None
    text = (f"Lock {lock_id} commissioned: {args.door} door of {', '.join(clients)}, "
            f"suite {args.suite}, clock set.")
    if done.earlier_blocked:
        text += (f" {done.earlier_blocked} key(s) issued for {lock_id} before were blocked"
                 + (" and the lock has the block." if sent else
                    ": the block did NOT reach the lock: run lockctl lock sync now."))
    out.done({"lock": lock_id, "clients": clients, "door": args.door, "suite": args.suite,
              "provider": args.provider, "earlier_keys_blocked": done.earlier_blocked,
              "block_sent": sent}, text)
    return 0 if sent is not False else 1


def _send_block(installer: Installer, reg: Registry, lock_id: str) -> bool:
    """The block list to a just-commissioned lock, in the same session."""
    blob = revocation_blob(reg, lock_id, int(time.time()))
    if blob is None:
        return False
    try:
        data = installer.admin(issuer.admin_key_for(reg.site_secret(), lock_id), "sync",
                               {msg.SYNC_REVOCATION: blob}, expect_lock=lock_id)
    except (Refused, ClientError, TransportError):
        return False
    return data.get(msg.SYNC_REVOCATION) == reasons.ALLOW


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
    now = int(time.time())
    Site(reg).record_info(actor(args), row.lock_id, status, now)
    problems = fleet.one_lock_problems(reg, row.lock_id, now)
    tz = zone_of(reg)
    info = {
        "lock": row.lock_id, "door": data.get(msg.INFO_DOOR), "suite": data.get(msg.INFO_SUITE),
        "clients": row.clients, "revocation_version": status.get(msg.ST_REVOCATION_VERSION),
        "battery": ["ok", "low", "critical"][min(2, status.get(msg.ST_BATTERY, 0))],
        "battery_mv": status.get(msg.ST_BATTERY_MV),
        "clock_trusted": status.get(msg.ST_CLOCK_TRUSTED),
        "lock_time": status.get(msg.ST_TIME), "log_count": status.get(msg.ST_LOG_COUNT),
        "log_capacity": status.get(msg.ST_LOG_CAPACITY), "firmware": status.get(msg.ST_FIRMWARE),
        "battery_days": row_days(status), "problems": [p.as_json() for p in problems],
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
        f"  firmware: {info['firmware']}"]
        + [f"  {fleet.SEVERITY[p.severity]}: {p.text}: {p.action}" for p in problems]
        + ([] if problems else ["  no problems"]))
    out.done(info, text)
    return 0


def row_days(status: dict[int, Any]) -> int | None:
    return statusfile.status_fields(status, 0).battery_days


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
                        f"Press the button on the lock now (within {s} s)...")).get(msg.SYNC_TIME)
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
    boards = flashing.boards()
    if args.board not in boards:
        raise UsageError(f"unknown board {shorten(args.board)!r}: the known boards are "
                         f"{', '.join(boards)}")
    if args.port == "auto":
        from tools import ports
        try:
            args.port = ports.the_one_board(ports.scan(
                prober=lambda device: (False, None, None))).device
        except ports.PortChoiceError as exc:
            raise Failed(str(exc)) from None
        out.info(f"--port auto: {args.port}")
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


def register(c: Commands) -> None:
    sp = c.add(c.sub, "sim", cmd_sim, "run a simulated lock (or an empty virtual board)",
               example="lockctl sim --state /tmp/lock1 --serial-link /tmp/lock1.tty "
                       "--ble 127.0.0.1:0 --auto-button")
    sp.add_argument("--state", default="./sim-lock", metavar="DIR", type=path_arg,
                    help="the lock's flash image and control socket (kept: the same lock "
                         "next time)")
    sp.add_argument("--serial-link", metavar="PATH",
                    help="also make PATH a link to the serial pseudo-terminal")
    sp.add_argument("--ble", metavar="127.0.0.1:PORT",
                    help="the BLE link as a local socket (port 0: any free port)")
    sp.add_argument("--auto-button", action="store_true",
                    help="press the commissioning button whenever the lock asks")
    sp.add_argument("--mpy", action="store_true",
                    help="run the firmware under the MicroPython unix port")
    sp.add_argument("--heap", metavar="BYTES", help="MicroPython's heap with --mpy, e.g. 96K")
    sp.add_argument("--virtual-board", action="store_true",
                    help="an empty MicroPython board for lockctl flash --board sim")

    sp = c.add(c.sub, "commission", cmd_commission, "commission a lock over its serial port",
               example="lockctl commission --port /dev/ttyACM0 --lock-id NT-000123 "
                       "--client C-1001,C-1002 --door entrance")
    port_option(sp)
    sp.add_argument("--lock-id", required=True, type=id_arg("lock id"),
                    help="the lock's id in the site, e.g. NT-000123 (printed on its label)")
    sp.add_argument("--client", required=True, metavar="CLIENT_ID[,CLIENT_ID...]",
                    type=id_arg("client id", many=True),
                    help="the client(s) whose door it is (several for a shared door)")
    sp.add_argument("--door", choices=DOORS, default="apartment",
                    help="the door's kind (entrance, waste-room and laundry-room serve several "
                    "clients)")
    sp.add_argument("--provider", metavar="PROVIDER", type=text_arg(200),
                    help="a key box's provider (--door key-box): only its staff get its key")
    sp.add_argument("--suite", choices=(tok.SUITE_HMAC, tok.SUITE_ED25519), default="hmac",
                    help="how the lock checks keys: hmac (a shared MAC, the fast default) or "
                         "ed25519 (the issuer's signature)")

    lock = c.group("lock", "one lock over serial")
    for name, func, help_ in (("info", cmd_lock_info, "show a lock's state"),
                              ("sync", cmd_lock_sync, "set the clock and the block list"),
                              ("decommission", cmd_lock_decommission,
                               "remove the lock's identity (button needed)")):
        sp = c.add(lock, name, func, help_, example=f"lockctl lock {name} --port /dev/ttyACM0")
        port_option(sp)
        if name == "sync":
            sp.add_argument("--force-time", action="store_true",
                            help="set the clock from this computer even backwards "
                            "(button needed; logged): for a clock the lock refuses to correct")

    sp = c.add(c.sub, "flash", cmd_flash, "compile and deploy the firmware with mpremote",
               example="lockctl flash --board esp32c3_devkit --port /dev/ttyACM0")
    sp.add_argument("--board", required=True, choices=flashing.boards(),
                    help="the board file (boards/NAME.py) to deploy with the firmware")
    port_option(sp)
