"""`make demo`: one simulated lock, from installation to the log report.

Everything is done with `lockctl`, the tool administrators and installers use,
against a lock simulated on this machine (its serial cable is a pseudo-terminal,
its Bluetooth a local socket). The story is told in words a care manager
understands; lockctl's own answers are shown indented.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from tools.simproc import SimulatedLock

ZONE = ZoneInfo("Europe/Stockholm")
LOCKCTL = str(Path(sys.executable).parent / "lockctl")
PIN = "471122"  # the staff members' personal codes, typed by them (here: a script)
LOCK_ID = "NT-000123"
CABINET_ID = "MC-000124"


def say(text: str = "") -> None:
    print(text, flush=True)


def local(dt: datetime) -> str:
    return dt.astimezone(ZONE).replace(tzinfo=None).isoformat(timespec="minutes")


class Demo:
    def __init__(self, work: Path) -> None:
        self.work = work
        self.env = dict(os.environ, LOCKCTL_SITE=str(work / "site"), LOCKCTL_PIN=PIN,
                        LOCKCTL_ACTOR="demo-administrator")
        self.failures: list[str] = []

    def lockctl_pin(self, pin: str, *args: str, expect: int = 0) -> dict[str, Any]:
        """As lockctl(), with another personal code typed."""
        saved = self.env["LOCKCTL_PIN"]
        self.env["LOCKCTL_PIN"] = pin
        try:
            return self.lockctl(*args, expect=expect)
        finally:
            self.env["LOCKCTL_PIN"] = saved

    def lockctl(self, *args: str, expect: int = 0, show: bool = True) -> dict[str, Any]:
        p = subprocess.run([LOCKCTL, "--json", *args], env=self.env, cwd=self.work,
                           capture_output=True, text=True, timeout=120)
        if p.returncode != expect:
            self.failures.append(f"lockctl {' '.join(args)} exited {p.returncode}: "
                                 f"{p.stderr.strip()}")
        human = subprocess.list2cmdline(["lockctl", *args])
        if show:
            say(f"    $ {human}")
        for line in p.stderr.strip().splitlines():
            say(f"      {line}")
        try:
            return json.loads(p.stdout) if p.stdout.strip() else {}
        except json.JSONDecodeError:
            return {}


def main() -> int:
    work = Path(tempfile.mkdtemp(prefix="lockdemo-"))
    demo = Demo(work)
    now = datetime.now(ZONE)
    say("1. The care organisation sets up its site; the secret every lock's key derives")
    say("   from stays with the administrator (owner-only file, never shown).")
    demo.lockctl("site", "init", "--name", "Norrtälje hemtjänst (demo)")
    say("2. Two care providers (the municipality's night patrol answers safety alarms), a")
    say("   client who chose both, and four staff members with their roles are registered.")
    demo.lockctl("provider", "add", "Kommunen", "--alarms", "yes")
    demo.lockctl("provider", "add", "Omsorg AB")
    demo.lockctl("client", "add", "C-1001", "--name", "Astrid Lindqvist",
                 "--address", "Storgatan 4, Norrtälje", "--providers", "Kommunen,Omsorg AB")
    demo.lockctl("staff", "add", "S-1", "--name", "Anna Berg", "--provider", "Kommunen")
    demo.lockctl("staff", "add", "S-2", "--name", "Bilal Haddad", "--provider", "Omsorg AB")
    demo.lockctl("staff", "add", "S-3", "--name", "Sara Ek", "--provider", "Kommunen",
                 "--role", "nurse")
    demo.lockctl("staff", "add", "S-4", "--name", "Nils Holm", "--provider", "Kommunen",
                 "--role", "night-patrol")
    sim = SimulatedLock(work / "lock", ["--serial-link", str(work / "lock.tty")]).start()
    cabinet = SimulatedLock(work / "cabinet", ["--serial-link", str(work / "cabinet.tty")])
    try:
        cabinet.start()
        say("3. The alarm centre mounts a lock on Astrid's door and one on her medicine")
        say("   cabinet (simulated here), and commissions them over their serial cables; each")
        say("   lock asks for its button.")
        demo.lockctl("commission", "--port", str(work / "lock.tty"), "--lock-id", LOCK_ID,
                     "--client", "C-1001", "--door", "apartment")
        demo.lockctl("commission", "--port", str(work / "cabinet.tty"), "--lock-id",
                     CABINET_ID, "--client", "C-1001", "--door", "medicine-cabinet")
        start, end = now - timedelta(hours=1), now + timedelta(hours=7)
        say("4. The staff's phones are enrolled once: each makes its own key pair and")
        say("   shows a fingerprint, which the administrator checks in person.")
        for sid, name in (("S-1", "anna"), ("S-2", "bilal"), ("S-3", "sara"), ("S-4", "nils")):
            d = demo.lockctl("device", "init", "--device", f"{name}-phone")
            demo.lockctl("device", "enrol", "--staff", sid, "--public",
                         f"{name}-phone/device.pub", "--fingerprint", d.get("fingerprint", ""))
        say(f"5. Shift grants for today, {start:%H:%M}-{end:%H:%M}, are encrypted to those")
        say("   phones; each loads hers or his under a personal code nobody else knows. Only")
        say("   the nurse's key opens the medicine cabinet (Astrid's care plan: nurses).")
        for sid, name in (("S-1", "anna"), ("S-2", "bilal"), ("S-3", "sara")):
            g = demo.lockctl("shift", "issue", "--staff", sid, "--clients", "C-1001", "--start",
                             local(start), "--end", local(end), "--out", f"{name}.grant")
            for left in g.get("left_out", []):
                say(f"   -> Not in {name.title()}'s key: {left['why'].split(' (')[0]}.")
            demo.lockctl("key", "load", "--grant", f"{name}.grant", "--device", f"{name}-phone")
        say("6. Anna arrives for her visit and opens the door with her phone.")
        r = demo.lockctl("open", "--device", "anna-phone", "--lock-id", LOCK_ID, "--ble",
                         sim.ble)
        say("   -> The door opened, and the lock confirmed it." if r.get("opened")
            else "   -> UNEXPECTED: the door did not open.")
        say("   Anna, a home-care worker, tries the medicine cabinet: refused there.")
        demo.lockctl("open", "--device", "anna-phone", "--lock-id", CABINET_ID, "--ble",
                     cabinet.ble, expect=1)
        say("   Sara, the nurse, opens the medicine cabinet.")
        r = demo.lockctl("open", "--device", "sara-phone", "--lock-id", CABINET_ID, "--ble",
                         cabinet.ble)
        say("   -> The cabinet opened, and its lock confirmed it." if r.get("opened")
            else "   -> UNEXPECTED: the cabinet did not open.")
        say("7. Bilal mistypes his code: the lock cannot be opened with it, and says only that.")
        r = demo.lockctl_pin("000000", "open", "--device", "bilal-phone", "--lock-id", LOCK_ID,
                             "--ble", sim.ble, expect=1)
        say(f"   -> {r.get('message', 'refused')}")
        say("8. Anna reports her phone lost. The administrator blocks her keys at once.")
        demo.lockctl("revoke", "--staff", "S-1")
        say("9. Bilal loads a fresh grant for his visit; it carries the block to the lock.")
        later = datetime.now(ZONE)
        demo.lockctl("shift", "issue", "--staff", "S-2", "--clients", "C-1001", "--start",
                     local(later - timedelta(minutes=30)), "--end", local(end), "--out",
                     "bilal-2.grant")
        demo.lockctl("key", "load", "--grant", "bilal-2.grant", "--device", "bilal-phone")
        r = demo.lockctl("open", "--device", "bilal-phone", "--lock-id", LOCK_ID, "--ble",
                         sim.ble)
        say("   -> Bilal is in; the lock now knows about the block "
            f"(block list version {r.get('revocation_version')})." if r.get("opened")
            else "   -> UNEXPECTED: Bilal's key did not open.")
        say("10. Someone tries to open with Anna's lost phone (and knows her code).")
        r = demo.lockctl("open", "--device", "anna-phone", "--lock-id", LOCK_ID, "--ble",
                         sim.ble, expect=1)
        say(f"   -> Refused: {r.get('reason')}.")
        say("10b. Night: Astrid's safety alarm goes off. The alarm centre gives the night")
        say("     patrol a key for her door (at most an hour, never the medicine cabinet),")
        say("     recorded with the alarm's id and reason; every record it makes is marked.")
        demo.lockctl("alarm", "issue", "--client", "C-1001", "--staff", "S-4", "--reason",
                     "fall alarm", "--alarm-id", "TL-0042", "--minutes", "30", "--out",
                     "nils.grant")
        demo.lockctl("key", "load", "--grant", "nils.grant", "--device", "nils-phone")
        r = demo.lockctl("open", "--device", "nils-phone", "--lock-id", LOCK_ID, "--ble",
                         sim.ble)
        say("   -> The patrol is in (logged as alarm access)." if r.get("opened")
            else "   -> UNEXPECTED: the patrol's key did not open.")
        time.sleep(0.5)
        say("11. The unit manager asks for the log: it is collected, checked for gaps and")
        say("    alterations, and written as a report.")
        demo.lockctl("log", "pull", "--port", sim.serial)
        v = demo.lockctl("log", "verify", "--lock-id", LOCK_ID)
        say("    -> " + (v.get("epochs") or [{}])[-1].get("verdict", "")
            if v.get("complete") else "    -> WARNING: " + " ".join(
                e.get("verdict", "") for e in v.get("epochs", [])))
        report = Path.cwd() / "lock-report.html"
        demo.lockctl("log", "report", "--lock-id", LOCK_ID, "--format", "html", "--out",
                     str(report))
        rows = json.loads(subprocess.run(
            [LOCKCTL, "log", "report", "--lock-id", LOCK_ID, "--format", "json", "--lang", "en"],
            env=demo.env,
            cwd=work, capture_output=True, text=True, timeout=60).stdout or "{}")
        say("    Visits today:")
        for e in rows.get("events", []):
            if e["outcome"]:
                say(f"      {e['local'][11:19]}  {e['staff_name']:<14} {e['outcome']}"
                    + (f" ({e['reason_text']})" if e["reason_text"] else "")
                    + (f" ALARM {e.get('alarm_id')}" if e["alarm"] else ""))
        say("    Alarm openings (a section of the report of their own, so abuse is visible):")
        for a in rows.get("alarm_openings", []):
            say(f"      {a['local'][11:19]}  {a['staff_name']:<14} {a['alarm_id']}: {a['reason']}")
        say(f"    The report is in {report}")
    finally:
        sim.stop()
        cabinet.stop()
        say("12. The simulated locks are stopped.")
    if demo.failures:
        say("Demo FAILED:")
        for f in demo.failures:
            say("  " + f)
        return 1
    say("Demo complete: every step behaved as expected.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
