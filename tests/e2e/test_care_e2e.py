"""Care operations through lockctl against simulated locks (issue #14 sections
1-3): a nurse opens the medicine cabinet, a home-care worker's key leaves it
out, the night patrol answers an alarm (marked as alarm access in the lock's
log and in the report's section of alarm openings), a change of providers
blocks a key and the lock refuses it after the block arrives, a deactivated
staff member's key is refused, and the lists answer as JSON arrays.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Iterator

import pytest
from test_lockctl import ZONE, Site, local

from protocol import events
from tools.registry import Registry
from tools.simproc import SimulatedLock


def enrol(site: Site, staff: str, name: str) -> None:
    out = json.loads(site.ok("--json", "device", "init", "--device", name))
    site.ok("device", "enrol", "--staff", staff, "--public", f"{name}/device.pub",
            "--fingerprint", out["fingerprint"][:12])


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Site, dict[str, Any]]]:
    root = tmp_path_factory.mktemp("care")
    site = Site(root)
    site.ok("site", "init", "--name", "Vårdkommun")
    site.ok("provider", "add", "Kommunen", "--alarms", "yes")
    site.ok("provider", "add", "Omsorg AB")
    site.ok("unit", "add", "Norr", "--provider", "Kommunen")
    site.ok("client", "add", "C1", "--name", "Astrid Lindqvist", "--unit", "Norr",
            "--providers", "Kommunen,Omsorg AB")
    for sid, prov, role in (("S1", "Kommunen", "home-care"), ("S2", "Kommunen", "nurse"),
                            ("S3", "Kommunen", "night-patrol"), ("S4", "Omsorg AB", "home-care")):
        site.ok("staff", "add", sid, "--name", f"Staff {sid}", "--provider", prov, "--role", role)
        enrol(site, sid, f"{sid}-phone")
    sims = {}
    try:
        for lock_id, door in (("APT", "apartment"), ("MED", "medicine-cabinet")):
            sims[lock_id] = SimulatedLock(root / lock_id, ["--serial-link",
                                                          str(root / f"{lock_id}.tty")]).start()
            site.ok("commission", "--port", str(root / f"{lock_id}.tty"), "--lock-id", lock_id,
                    "--client", "C1", "--door", door)
        yield site, sims
    finally:
        for sim in sims.values():
            sim.stop()


def shift(site: Site, staff: str) -> dict[str, Any]:
    now = datetime.now(ZONE)
    out = json.loads(site.ok("--json", "shift", "issue", "--staff", staff, "--clients", "C1",
                             "--start", local(now - timedelta(minutes=30)), "--end",
                             local(now + timedelta(hours=2)), "--out", f"{staff}.grant"))
    site.ok("key", "load", "--grant", f"{staff}.grant", "--device", f"{staff}-phone")
    return dict(out)


def door(site: Site, sims: dict[str, Any], staff: str, lock_id: str) -> Any:
    return site.run("--json", "open", "--device", f"{staff}-phone", "--lock-id", lock_id,
                    "--ble", sims[lock_id].ble)


def test_the_care_plan_at_the_medicine_cabinet(world) -> None:
    site, sims = world
    assert shift(site, "S2")["locks"] == ["APT", "MED"]
    p = door(site, sims, "S2", "MED")
    assert p.returncode == 0 and json.loads(p.stdout)["opened"] is True
    home = shift(site, "S1")
    assert home["locks"] == ["APT"] and [x["lock"] for x in home["left_out"]] == ["MED"]
    p = door(site, sims, "S1", "MED")
    assert p.returncode == 1 and "no unexpired key for lock MED" in p.stderr


def test_the_patrol_answers_an_alarm(world, tmp_path: Path) -> None:
    site, sims = world
    p = site.run("shift", "issue", "--staff", "S3", "--clients", "C1", "--start", "x", "--end",
                 "y", "--out", "x.grant", "--alarm")
    assert p.returncode == 2 and "lockctl alarm issue" in p.stderr
    before = site.dump()
    for argv, words in ((["--staff", "S1"], "only night-patrol staff"),
                        (["--staff", "S3", "--minutes", "90"], "1 to 60 minutes"),
                        (["--staff", "S3", "--client", "C9"], "no client C9")):
        args = {"--client": "C1", "--reason": "fall alarm", "--alarm-id": "TL-7",
                "--out": "S3.grant"}
        args.update(dict(zip(argv[::2], argv[1::2], strict=True)))
        p = site.run("alarm", "issue", *[x for kv in args.items() for x in kv])
        assert p.returncode in (1, 2) and words in p.stderr.strip().splitlines()[-1], p.stderr
    assert site.dump() == before
    out = json.loads(site.ok("--json", "alarm", "issue", "--client", "C1", "--staff", "S3",
                             "--reason", "fall alarm", "--alarm-id", "TL-7", "--minutes", "15",
                             "--out", "S3.grant"))
    assert out["locks"] == ["APT"] and out["left_out"] == ["MED"]
    assert out["end"] - out["start"] == 15 * 60
    again = site.run("alarm", "issue", "--client", "C1", "--staff", "S3", "--reason", "x",
                     "--alarm-id", "TL-7", "--out", "S3b.grant")
    assert again.returncode == 1 and "one key per alarm id" in again.stderr
    site.ok("key", "load", "--grant", "S3.grant", "--device", "S3-phone")
    p = door(site, sims, "S3", "APT")
    assert p.returncode == 0, p.stderr
    site.ok("log", "pull", "--port", sims["APT"].serial)
    reg = Registry(site.dir)
    try:
        alarm_records = [r for r in reg.events("APT") if r["code"] == events.ALARM_OPEN]
    finally:
        reg.close()
    assert len(alarm_records) == 1 and alarm_records[0]["flags"] & events.FLAG_ALARM_ACCESS
    report = json.loads(site.ok("log", "report", "--lock-id", "APT", "--format", "json"))
    [opening] = report["alarm_openings"]
    assert (opening["staff_id"], opening["alarm_id"], opening["reason"]) == (
        "S3", "TL-7", "fall alarm")
    assert [e["alarm_id"] for e in report["events"] if e["alarm"]] == ["TL-7"]
    html_out = tmp_path / "r.html"
    site.ok("log", "report", "--lock-id", "APT", "--format", "html", "--lang", "en", "--out",
            str(html_out))
    # Among what needs attention, with its alarm id and reason.
    page = html_out.read_text(encoding="utf-8")
    section = page.split("Needs attention", 1)[1].split("</section>", 1)[0]
    assert "TL-7" in section and "fall alarm" in section
    audit = json.loads(site.ok("--json", "audit", "--staff", "S3", "--lock", "APT"))
    assert [a["action"] for a in audit] == ["alarm issue"]
    assert audit[0]["detail"]["reason"] == "fall alarm"


def test_a_change_of_providers_reaches_the_lock(world) -> None:
    site, sims = world
    token = shift(site, "S4")["tokens"][0]
    assert door(site, sims, "S4", "APT").returncode == 0
    out = json.loads(site.ok("--json", "client", "update", "C1", "--providers", "Kommunen"))
    assert out["blocked"] == [token]
    state = {t["token"]: t["state"] for t in json.loads(site.ok("--json", "token", "list"))}
    assert state[token] == "blocked"
    site.ok("lock", "sync", "--port", sims["APT"].serial)
    p = door(site, sims, "S4", "APT")
    assert p.returncode == 1 and json.loads(p.stdout)["reason"] == "revoked"
    now = datetime.now(ZONE)
    p = site.run("shift", "issue", "--staff", "S4", "--clients", "C1", "--start", local(now),
                 "--end", local(now + timedelta(hours=1)), "--out", "S4b.grant")
    assert p.returncode == 1 and "C1 has not chosen Omsorg AB" in p.stderr


def test_a_deactivated_staff_member_is_refused_at_the_door(world) -> None:
    site, sims = world
    shift(site, "S1")
    out = json.loads(site.ok("--json", "staff", "deactivate", "S1"))
    assert len(out["suspended"]) == 1
    staff = {s["staff"]: s for s in json.loads(site.ok("--json", "staff", "list", "--all"))}
    assert staff["S1"]["state"] == "deactivated" and staff["S1"]["device_state"] == "suspended"
    # The next key issued for the lock (a colleague's) carries the block.
    shift(site, "S2")
    assert door(site, sims, "S2", "APT").returncode == 0
    p = door(site, sims, "S1", "APT")
    assert p.returncode == 1 and json.loads(p.stdout)["reason"] == "revoked"
    back = json.loads(site.ok("--json", "staff", "activate", "S1"))
    assert back["device"] is not None
    shift(site, "S1")
    assert door(site, sims, "S1", "APT").returncode == 0


def test_lists_are_json_arrays_of_objects(world) -> None:
    site, _ = world
    for argv in (["client", "list"], ["staff", "list"], ["lock", "list"], ["provider", "list"],
                 ["unit", "list"], ["device", "list"], ["token", "list"], ["booking", "list"],
                 ["alarm", "list"], ["audit"]):
        rows = json.loads(site.ok("--json", *argv))
        assert isinstance(rows, list) and all(isinstance(r, dict) for r in rows), argv
    lk = json.loads(site.ok("--json", "lock", "show", "MED"))
    assert lk["door"] == "medicine-cabinet" and lk["clients"] == ["C1"]
    text = site.ok("token", "list")
    tokens = json.loads(site.ok("--json", "token", "list"))
    assert all(t["token"] in text for t in tokens)  # token ids in normal output
