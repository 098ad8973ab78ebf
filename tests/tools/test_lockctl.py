"""lockctl driven as a person drives it: the installed command, a site
directory, a simulated lock on its serial pty and BLE socket.

Every bad-input case checks its one-line message, its exit status and that
the site registry is byte-for-byte what it was (nothing half-done).
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import serial

from tools.simproc import SimulatedLock

LOCKCTL = str(Path(sys.executable).parent / "lockctl")
ZONE = ZoneInfo("Europe/Stockholm")
PIN = "246813"  # a personal code: at least 6 digits


def local(dt: datetime) -> str:
    return dt.astimezone(ZONE).replace(tzinfo=None).isoformat(timespec="minutes")


class Site:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.dir = root / "site"
        self.env = dict(os.environ, LOCKCTL_SITE=str(self.dir), LOCKCTL_PIN=PIN,
                        LOCKCTL_ACTOR="test-admin")

    def run(self, *args: str, pin: str | None = None, timeout: float = 60
            ) -> subprocess.CompletedProcess[str]:
        env = dict(self.env)
        if pin is not None:
            env["LOCKCTL_PIN"] = pin
        return subprocess.run([LOCKCTL, *args], env=env, capture_output=True, text=True,
                              timeout=timeout, cwd=self.root)

    def ok(self, *args: str) -> str:
        p = self.run(*args)
        assert p.returncode == 0, p.stderr + p.stdout
        return p.stdout

    def dump(self) -> list[str]:
        db = sqlite3.connect(self.dir / "registry.sqlite3")
        try:
            return list(db.iterdump())
        finally:
            db.close()

    def secret_hex(self) -> str:
        return (self.dir / "site-secret.key").read_bytes().hex()


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("lockctl")
    site = Site(root)
    site.ok("site", "init", "--name", "Testkommun hemtjänst")
    site.ok("staff", "add", "S1", "--name", "Anna Berg", "--provider", "Kommunen")
    site.ok("staff", "add", "S2", "--name", "Bilal Haddad", "--provider", "Omsorg AB")
    site.ok("client", "add", "C1", "--name", "Astrid Lindqvist", "--address", "Storgatan 4",
            "--providers", "Kommunen,Omsorg AB")
    site.ok("client", "add", "C2", "--name", "Karl Berg", "--providers", "Kommunen,Omsorg AB")
    sim = SimulatedLock(root / "lock", ["--serial-link", str(root / "lock.tty")]).start()
    site.ok("commission", "--port", str(root / "lock.tty"), "--lock-id", "NT-1",
            "--client", "C1")
    try:
        yield site, sim, root
    finally:
        sim.stop()


def device_of(site: Site, staff: str) -> str:
    """The staff member's device directory, made and enrolled on first use."""
    name = f"dev-{staff}"
    if not (site.root / name / "device.key").exists():
        made = json.loads(site.ok("--json", "device", "init", "--device", name))
        site.ok("device", "enrol", "--staff", staff, "--public", f"{name}/device.pub",
                "--fingerprint", made["fingerprint"])
    return name


def shift(site: Site, staff: str, out: str, hours_from: float = -1, hours_to: float = 6,
          *extra: str) -> str:
    """Issue a shift grant to the staff member's device and load it there
    (under PIN); returns the device directory, for `open --device`."""
    device = device_of(site, staff)
    now = datetime.now(ZONE)
    site.ok("shift", "issue", "--staff", staff, "--clients", "C1", "--start",
            local(now + timedelta(hours=hours_from)), "--end",
            local(now + timedelta(hours=hours_to)), "--out", out, *extra)
    site.ok("key", "load", "--grant", out, "--device", device)
    return device


def test_the_whole_story(world) -> None:
    site, sim, root = world
    info = json.loads(site.ok("--json", "lock", "info", "--port", sim.serial))
    assert info["lock"] == "NT-1" and info["clock_trusted"] is True
    # The lock's own battery forecast (status key 10, firmware/battery.py).
    assert isinstance(info["battery_days"], int) and info["battery_days"] >= 0
    assert "days left at its recent openings" in site.ok("lock", "info", "--port", sim.serial)
    shift(site, "S1", "anna.key")
    opened = site.run("open", "--device", "dev-S1", "--lock-id", "NT-1", "--ble", sim.ble)
    assert opened.returncode == 0 and "opened" in opened.stdout
    out = json.loads(site.ok("--json", "revoke", "--staff", "S1"))
    assert out["revocation_version"] >= 1
    # Anna's old key is refused only once the block has reached the lock:
    # a colleague's key issued after the block carries it there.
    shift(site, "S2", "bilal.key")
    assert site.run("open", "--device", "dev-S2", "--lock-id", "NT-1",
                    "--ble", sim.ble).returncode == 0
    refused = site.run("open", "--device", "dev-S1", "--lock-id", "NT-1", "--ble", sim.ble)
    assert refused.returncode == 1 and "revoked" in refused.stdout
    pulled = json.loads(site.ok("--json", "log", "pull", "--port", sim.serial))
    assert pulled["pulled"] >= 4
    verified = json.loads(site.ok("--json", "log", "verify", "--lock-id", "NT-1"))
    assert verified["ok"] is True
    site.ok("log", "report", "--lock-id", "NT-1", "--format", "html", "--out", "r.html")
    assert (root / "r.html").stat().st_mode & 0o077 == 0  # personal data: owner-only
    page = (root / "r.html").read_text()
    assert '<html lang="sv">' in page
    assert "Anna Berg" in page and "Bilal Haddad" in page and "nyckeln är spärrad" in page
    assert "Komplett från driftsättningen" in page and "INTE komplett" not in page
    site.ok("log", "report", "--lock-id", "NT-1", "--format", "html", "--lang", "en",
            "--out", "r-en.html")
    page_en = (root / "r-en.html").read_text()
    assert '<html lang="en">' in page_en and "the key is blocked" in page_en
    assert "Complete from commissioning" in page_en and "NOT complete" not in page_en
    csv_bytes = site.run("log", "report", "--lock-id", "NT-1", "--format", "csv").stdout
    rows = csv_bytes.lstrip("\ufeff").splitlines()
    assert rows[0].startswith("datum;tid;tidpunkt;lås;dörr;person_id;namn;utförare;händelse")
    assert any(";S1;Anna Berg;Kommunen;nekad;nekad;nyckeln är spärrad;1;" in r for r in rows)
    data = json.loads(site.ok("log", "report", "--lock-id", "NT-1", "--format", "json"))
    assert {e["outcome"] for e in data["events"]} >= {"opened", "refused"}
    assert "revoked" in {e["reason"] for e in data["events"]} and data["complete"] is True
    # Every administrative act is recorded with who did it.
    db = sqlite3.connect(site.dir / "registry.sqlite3")
    acts = [(a, b) for a, b in db.execute("SELECT actor, action FROM audit")]
    for action in ("site init", "client add", "staff add", "commission", "shift issue",
                   "revoke", "log pull", "log report"):
        assert ("test-admin", action) in acts, action
    # No secret in any output.
    secret = site.secret_hex()
    for text in (opened.stdout, refused.stdout, page):
        assert secret not in text


def test_sync_carries_the_block_list(world) -> None:
    site, sim, _ = world
    out = site.ok("lock", "sync", "--port", sim.serial)
    assert "clock set" in out


def check_refused(site: Site, args: list[str], status: int, words: str, pin: str | None = None
                  ) -> None:
    before = site.dump()
    p = site.run(*args, pin=pin)
    assert p.returncode == status, p.stderr + p.stdout
    lines = p.stderr.strip().splitlines()
    assert lines and words in lines[-1], p.stderr
    assert site.secret_hex() not in p.stderr + p.stdout
    assert site.dump() == before


@pytest.mark.parametrize("args,status,words", [
    (["client", "add", "C1", "--name", "Again"], 1, "already exists"),
    (["staff", "add", "bad id!", "--name", "X"], 2, "invalid staff id"),
    (["commission", "--port", "/dev/does-not-exist", "--lock-id", "NT-9", "--client", "C1"],
     1, "no such serial port"),
    (["commission", "--port", "/dev/null", "--lock-id", "NT-9", "--client", "NOPE"], 1,
     "no client NOPE"),
    (["commission", "--port", "/dev/null", "--lock-id", "NT-9", "--client", "C1,C2"], 2,
     "shared doors"),
    (["shift", "issue", "--staff", "S1", "--clients", "C1", "--start", "2026-03-29T02:30",
      "--end", "2026-03-29T09:00", "--out", "x.key"], 2, "does not exist"),
    (["shift", "issue", "--staff", "S1", "--clients", "C1", "--start", "2020-01-01T08:00",
      "--end", "2020-01-01T16:00", "--out", "x.key"], 2, "already ended"),
    (["shift", "issue", "--staff", "S9", "--clients", "C1", "--start", "2030-01-01T08:00",
      "--end", "2030-01-01T16:00", "--out", "x.key"], 1, "no staff member S9"),
    (["revoke", "--token", "zz"], 2, "hex"),
    (["log", "verify", "--lock-id", "NT-404"], 1, "no lock NT-404"),
    (["log", "report", "--lock-id", "NT-1", "--format", "csv", "--from", "yesterday"], 2,
     "not a date"),
])
def test_bad_input_is_refused_and_changes_nothing(world, args: list[str], status: int,
                                                  words: str) -> None:
    site, _, _ = world
    check_refused(site, args, status, words)


def test_usage_errors_exit_2(world) -> None:
    site, _, _ = world
    for args in (["no-such-command"], ["revoke"], ["revoke", "--staff", "S1", "--token", "00"],
                 ["commission", "--port", "x", "--lock-id", "L", "--client", "C1",
                  "--door", "garage"]):
        p = site.run(*args)
        assert p.returncode == 2, (args, p.stderr)


def test_busy_port(world) -> None:
    site, sim, _ = world
    with serial.Serial(sim.serial, exclusive=True):
        check_refused(site, ["lock", "info", "--port", sim.serial], 1, "in use by another program")


def test_wrong_port_nobody_answers(world) -> None:
    site, _, _ = world
    master, slave = os.openpty()
    try:
        check_refused(site, ["lock", "info", "--port", os.ttyname(slave)], 1,
                      "no lock answered")
    finally:
        os.close(master)
        os.close(slave)


def test_uncommissioned_and_foreign_locks(world, tmp_path: Path) -> None:
    site, _, _ = world
    with SimulatedLock(tmp_path / "fresh") as fresh:
        check_refused(site, ["lock", "info", "--port", fresh.serial], 1, "not commissioned")
        other = Site(tmp_path / "other")
        (tmp_path / "other").mkdir()
        other.ok("site", "init", "--name", "Another site")
        other.ok("client", "add", "X1", "--name", "Someone")
        other.ok("commission", "--port", fresh.serial, "--lock-id", "OTHER-1", "--client", "X1")
        check_refused(site, ["lock", "info", "--port", fresh.serial], 1, "foreign lock")
        check_refused(site, ["commission", "--port", fresh.serial, "--lock-id", "NT-2",
                             "--client", "C1"], 1, "already commissioned (as OTHER-1)")


def test_wrong_code_and_old_or_damaged_key_files(world) -> None:
    site, sim, root = world
    device = shift(site, "S2", "pin.grant")
    p = site.run("open", "--device", device, "--lock-id", "NT-1", "--ble", sim.ble,
                 pin="999999")
    assert p.returncode == 1 and "wrong code, or this key is not valid here" in p.stdout
    (root / "junk.key").write_text("not a key")
    check_refused(site, ["open", "--key", "junk.key", "--lock-id", "NT-1", "--ble", sim.ble], 1,
                  "old key format: ask for a new key")
    check_refused(site, ["open", "--device", device, "--lock-id", "NT-404", "--ble", sim.ble],
                  1, "no unexpired key for lock NT-404")
    check_refused(site, ["open", "--device", "no-such-dir", "--lock-id", "NT-1", "--ble",
                         sim.ble], 1, "no such file")


def test_tampered_log_is_reported(world) -> None:
    site, sim, _ = world
    site.ok("log", "pull", "--port", sim.serial)
    db = sqlite3.connect(site.dir / "registry.sqlite3")
    seq, record = db.execute("SELECT seq, record FROM events WHERE lock_id = 'NT-1' "
                             "AND code = 1 ORDER BY seq LIMIT 1").fetchone()
    forged = bytearray(record)
    forged[12] ^= 0xFF  # another key id: "someone else opened"
    import zlib
    forged[28:32] = (zlib.crc32(bytes(forged[:28])) & 0xFFFFFFFF).to_bytes(4, "big")
    db.execute("UPDATE events SET record = ? WHERE lock_id = 'NT-1' AND seq = ?",
               (bytes(forged), seq))
    db.commit()
    try:
        p = site.run("--json", "log", "verify", "--lock-id", "NT-1")
        assert p.returncode == 1
        assert seq in json.loads(p.stdout)["altered"]
    finally:
        db.execute("UPDATE events SET record = ? WHERE lock_id = 'NT-1' AND seq = ?",
                   (record, seq))
        db.commit()
        db.close()
