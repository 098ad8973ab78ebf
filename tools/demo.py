"""`make demo`: one simulated lock, from installation to the log report.

Tells the story in words a care manager understands: the lock is installed
and commissioned over its serial cable, staff open it with their shift keys,
an expired shift is refused, a lost key is blocked and the block reaches the
lock with a colleague's key, and the log is pulled, verified and reported.
"""

from __future__ import annotations

import html
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from protocol import clock, events, keys, reasons
from tools import issuer
from tools.client import Installer, access
from tools.simproc import SimulatedLock

ZONE = ZoneInfo("Europe/Stockholm")
SITE = "Norrtälje hemtjänst (demo)"
LOCK_ID = "NT-000123"
CLIENT = "Astrid Lindqvist, Storgatan 4"
STAFF = {"S-1001": "Anna Berg", "S-1002": "Bilal Haddad"}

EVENT_WORDS = {
    events.OPENED: "door unlocked",
    events.REFUSED: "attempt refused",
    events.RELOCKED: "door locked again",
    events.DOOR_OPENED: "door opened",
    events.DOOR_CLOSED: "door closed",
    events.COMMISSIONED: "lock installed and commissioned",
    events.BOOT: "lock started",
    events.REVOCATION_UPDATED: "block list updated",
    events.TIME_SET: "clock set",
    events.LOG_READ: "log read",
}


def say(text: str = "") -> None:
    print(text, flush=True)


def local(posix: int) -> str:
    return datetime.fromtimestamp(posix, ZONE).strftime("%Y-%m-%d %H:%M:%S")


def staff_for(key_id: bytes) -> str:
    for sid, name in STAFF.items():
        if events.key_id_of(sid) == key_id:
            return name
    return "-" if key_id == bytes(8) else "unknown key"


def describe(e: events.Event) -> str:
    words = EVENT_WORDS.get(e.code, events.NAMES.get(e.code, f"event {e.code}"))
    if e.code == events.REFUSED:
        words += f" ({reasons.name(e.detail)})"
    return words


def write_report(path: Path, rows: list[events.Event], chain_ok: bool) -> None:
    days: dict[str, list[str]] = {}
    for e in rows:
        t = clock.to_unix(e.time)
        day = datetime.fromtimestamp(t, ZONE).strftime("%A %d %B %Y")
        cls = "refused" if e.code == events.REFUSED else "ok"
        days.setdefault(day, []).append(
            f"<tr class='{cls}'><td>{local(t)[11:]}</td><td>{html.escape(staff_for(e.key_id))}"
            f"</td><td>{html.escape(describe(e))}</td></tr>")
    body = "".join(f"<h2>{html.escape(d)}</h2><table><tr><th>Time</th><th>Staff</th>"
                   f"<th>What happened</th></tr>{''.join(r)}</table>" for d, r in days.items())
    verdict = ("The log is complete and unaltered (MAC chain verified)." if chain_ok
               else "WARNING: the log chain did not verify: records are missing or altered.")
    path.write_text(
        "<!doctype html><meta charset='utf-8'><title>Log report</title><style>"
        "body{font-family:sans-serif;max-width:50em;margin:2em auto}table{border-collapse:"
        "collapse;width:100%}td,th{border-bottom:1px solid #ccc;padding:.3em;text-align:left}"
        "tr.refused td{color:#a00}</style>"
        f"<h1>Door log: {html.escape(CLIENT)}</h1><p>Lock {LOCK_ID}, {html.escape(SITE)}. "
        f"Times are Swedish local time.</p><p><b>{verdict}</b></p>{body}", encoding="utf-8")


def main() -> int:
    workdir = Path(tempfile.mkdtemp(prefix="lockdemo-"))
    site_secret = issuer.new_site_secret()
    say(f"A new site is set up for {SITE}; its secret stays with the issuer.")
    sim = SimulatedLock(workdir / "lock").start()
    try:
        say(f"A lock is mounted on the door of {CLIENT} (simulated; serial cable {sim.serial}).")
        with sim.serial_link() as link:
            Installer(link).commission(
                lock_id=LOCK_ID, secret=keys.lock_secret(site_secret, LOCK_ID), suite="hmac",
                issuer=SITE, time=int(time.time()), door="apartment",
                on_press=lambda s: say(f"  The lock asks the installer to press its button "
                                       f"(within {s} s) - pressed."))
        say(f"The installer commissioned lock {LOCK_ID}: it now knows its identity and the time.")
        now = int(time.time())
        shift_start, shift_end = now - 3600, now + 7 * 3600
        grants = {sid: issuer.issue_token(site_secret, LOCK_ID, iss=SITE, sub=sid,
                                          start=shift_start, end=shift_end)
                  for sid in STAFF}
        say(f"Shift keys are issued to {', '.join(STAFF.values())} for "
            f"{local(shift_start)[11:16]}-{local(shift_end)[11:16]} today.")

        def visit(sid: str, grant: issuer.Grant, note: str = "") -> bool:
            with sim.ble_link() as link:
                out = access(link, grant)
            name = STAFF[sid]
            if out.opened:
                say(f"  {name} arrives{note}: the door opens (the lock confirmed it).")
            else:
                say(f"  {name} arrives{note}: the door stays locked - {out.reason_name}.")
            return out.opened

        ok = visit("S-1001", grants["S-1001"])
        yesterday = datetime.now(ZONE) - timedelta(days=1)
        old = issuer.issue_token(site_secret, LOCK_ID, iss=SITE, sub="S-1002",
                                 start=int(yesterday.timestamp()) - 3600,
                                 end=int(yesterday.timestamp()) + 3600)
        refused_expired = not visit("S-1002", old, " with yesterday's shift key")
        say("Anna Berg reports her phone lost: her key is blocked at once.")
        block = issuer.revocation_update(site_secret, LOCK_ID, version=1, issued=int(time.time()),
                                         cutoff=0, staff={"S-1001": int(time.time()) + 1},
                                         tokens={})
        carried = issuer.issue_token(site_secret, LOCK_ID, iss=SITE, sub="S-1002",
                                     start=shift_start, end=shift_end)
        carried.updates = [block]
        opened_b = visit("S-1002", carried, " (his key carries the block to the lock)")
        refused_a = not visit("S-1001", grants["S-1001"], " with the lost phone")
        with sim.serial_link() as link:
            records = Installer(link).pull_log(issuer.admin_key_for(site_secret, LOCK_ID))
        decoded = [events.decode(r) for r in records]
        start = max(i for i, e in enumerate(decoded) if e.code == events.COMMISSIONED)
        report = events.verify_chain(records[start:], issuer.log_key_for(site_secret, LOCK_ID),
                                     anchor_mac=events.GENESIS_MAC)
        say(f"The unit manager collects the log over the serial cable: {len(records)} events; "
            + ("nothing missing or altered." if report.ok else "THE CHAIN DOES NOT VERIFY."))
        for e in decoded[start:]:
            if e.code in (events.OPENED, events.REFUSED):
                say(f"  {local(clock.to_unix(e.time))}  {staff_for(e.key_id):<14} {describe(e)}")
        out = Path("lock-report.html").resolve()
        write_report(out, decoded[start:], report.ok)
        say(f"The report is written to {out}.")
    finally:
        sim.stop()
        say("The simulated lock is stopped.")
    success = ok and refused_expired and opened_b and refused_a and report.ok
    say("Demo complete: every step behaved as expected." if success
        else "Demo FAILED: a step did not behave as expected.")
    return 0 if success else 1


if __name__ == "__main__":
    sys.exit(main())

