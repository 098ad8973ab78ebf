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

from tools import issuer, keyfile
from tools.registry import Registry
from tools.simproc import SimulatedLock

ZONE = ZoneInfo("Europe/Stockholm")
LOCKCTL = str(Path(sys.executable).parent / "lockctl")
PIN = "4711"
LOCK_ID = "NT-000123"


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
    say("2. A client and two staff members are registered.")
    demo.lockctl("client", "add", "C-1001", "--name", "Astrid Lindqvist",
                 "--address", "Storgatan 4, Norrtälje")
    demo.lockctl("staff", "add", "S-1", "--name", "Anna Berg", "--provider", "Kommunen")
    demo.lockctl("staff", "add", "S-2", "--name", "Bilal Haddad", "--provider", "Omsorg AB")
    sim = SimulatedLock(work / "lock", ["--serial-link", str(work / "lock.tty")]).start()
    try:
        say("3. The alarm centre mounts a lock on Astrid's door (simulated here) and")
        say("   commissions it over its serial cable; the lock asks for its button.")
        demo.lockctl("commission", "--port", str(work / "lock.tty"), "--lock-id", LOCK_ID,
                     "--client", "C-1001", "--door", "apartment")
        start, end = now - timedelta(hours=1), now + timedelta(hours=7)
        say(f"4. Anna and Bilal get shift keys for today, {start:%H:%M}-{end:%H:%M}, "
            "protected by their personal codes.")
        for sid, name in (("S-1", "anna"), ("S-2", "bilal")):
            demo.lockctl("shift", "issue", "--staff", sid, "--clients", "C-1001", "--start",
                         local(start), "--end", local(end), "--out", f"{name}.key")
        say("5. Anna arrives for her visit and opens the door with her phone.")
        r = demo.lockctl("open", "--key", "anna.key", "--lock-id", LOCK_ID, "--ble", sim.ble)
        say("   -> The door opened, and the lock confirmed it." if r.get("opened")
            else "   -> UNEXPECTED: the door did not open.")
        say("6. Bilal tries yesterday's key, left on his phone: the shift is over.")
        reg = Registry(work / "site")
        y0, y1 = now - timedelta(days=1, hours=2), now - timedelta(days=1) + timedelta(hours=6)
        old = issuer.issue_token(reg.site_secret(), LOCK_ID, iss=reg.name, sub="S-2",
                                 start=int(y0.timestamp()), end=int(y1.timestamp()),
                                 iat=int(y0.timestamp()) - 600)
        keyfile.write(work / "bilal-yesterday.key",
                      keyfile.ShiftKey("S-2", reg.name, old.start, old.end, [old]), PIN)
        reg.close()
        r = demo.lockctl("open", "--key", "bilal-yesterday.key", "--lock-id", LOCK_ID, "--ble",
                         sim.ble, expect=1)
        say(f"   -> The door stayed locked ({r.get('reason')}).")
        say("7. Anna reports her phone lost. The administrator blocks her keys at once.")
        demo.lockctl("revoke", "--staff", "S-1")
        say("8. Bilal loads a fresh key for his visit; it carries the block to the lock.")
        later = datetime.now(ZONE)
        demo.lockctl("shift", "issue", "--staff", "S-2", "--clients", "C-1001", "--start",
                     local(later - timedelta(minutes=30)), "--end", local(end), "--out",
                     "bilal-2.key")
        r = demo.lockctl("open", "--key", "bilal-2.key", "--lock-id", LOCK_ID, "--ble", sim.ble)
        say("   -> Bilal is in; the lock now knows about the block "
            f"(block list version {r.get('revocation_version')})." if r.get("opened")
            else "   -> UNEXPECTED: Bilal's key did not open.")
        say("9. Someone tries to open with Anna's lost phone.")
        r = demo.lockctl("open", "--key", "anna.key", "--lock-id", LOCK_ID, "--ble", sim.ble,
                         expect=1)
        say(f"   -> Refused: {r.get('reason')}.")
        time.sleep(0.5)
        say("10. The unit manager asks for the log: it is collected, checked for gaps and")
        say("    alterations, and written as a report.")
        demo.lockctl("log", "pull", "--port", sim.serial)
        v = demo.lockctl("log", "verify", "--lock-id", LOCK_ID)
        say("    -> Nothing is missing or altered in the log." if v.get("ok")
            else "    -> WARNING: the log does not verify.")
        report = Path.cwd() / "lock-report.html"
        demo.lockctl("log", "report", "--lock-id", LOCK_ID, "--format", "html", "--out",
                     str(report))
        rows = json.loads(subprocess.run(
            [LOCKCTL, "log", "report", "--lock-id", LOCK_ID, "--format", "json"], env=demo.env,
            cwd=work, capture_output=True, text=True, timeout=60).stdout or "{}")
        say("    Visits today:")
        for e in rows.get("events", []):
            if e["outcome"]:
                say(f"      {e['time'][11:19]}  {e['staff_name']:<14} {e['outcome']}"
                    + (f" ({e['reason']})" if e["reason"] else ""))
        say(f"    The report is in {report}")
    finally:
        sim.stop()
        say("11. The simulated lock is stopped.")
    if demo.failures:
        say("Demo FAILED:")
        for f in demo.failures:
            say("  " + f)
        return 1
    say("Demo complete: every step behaved as expected.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
