"""Fleet health end to end: the installed lockctl, a site, a simulated lock.

A key's `open` keeps the lock's authenticated answer in DIR/status.jsonl;
`fleet ingest` checks and records it (forged, altered, foreign and repeated
lines as an attacker or a slip would bring them); `fleet status` and `lock
info` name what needs doing, and `open` tells an expired key from a lock
whose clock is wrong.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from test_lockctl import Site, shift

from tools.simproc import SimulatedLock


@pytest.fixture(scope="module")
def fleet_world(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("fleet")
    site = Site(root)
    site.ok("site", "init", "--name", "Flottkommun")
    site.ok("staff", "add", "S1", "--name", "Anna Berg", "--provider", "Kommunen")
    site.ok("staff", "add", "S2", "--name", "Bilal Haddad", "--provider", "Kommunen")
    site.ok("client", "add", "C1", "--name", "Astrid Lindqvist", "--providers", "Kommunen")
    sim = SimulatedLock(root / "lock", ["--serial-link", str(root / "lock.tty")]).start()
    site.ok("commission", "--port", str(root / "lock.tty"), "--lock-id", "NT-1",
            "--client", "C1")
    try:
        yield site, sim, root
    finally:
        sim.stop()


def control(sim: SimulatedLock, command: dict[str, object]) -> None:
    subprocess.run([".venv/bin/python", "-m", "simulator.control", str(sim.state),
                    json.dumps(command)], cwd=Path(__file__).resolve().parents[2],
                   check=True, capture_output=True, timeout=30)


def status(site: Site, *extra: str) -> dict[str, list[dict[str, object]]]:
    return json.loads(site.ok("--json", "fleet", "status", *extra))  # type: ignore[no-any-return]


def problems(site: Site, lock: str = "NT-1") -> dict[str, dict[str, object]]:
    """The lock's problems but its battery: the simulated board forecasts the
    firmware as it runs today (its CPU awake while advertising: about 5 days,
    docs/ENERGY.md), so it always has that one (test_the_forecast_...)."""
    for lk in status(site, "--all")["locks"]:
        if lk["lock"] == lock:
            return {str(p["kind"]): p for p in lk["problems"]  # type: ignore[union-attr]
                    if p["kind"] != "battery"}  # type: ignore[index]
    raise AssertionError(f"{lock} not listed")


def test_the_forecast_the_lock_sends_is_judged(fleet_world) -> None:
    site, sim, root = fleet_world
    info = json.loads(site.ok("--json", "lock", "info", "--port", sim.serial))
    days = info["battery_days"]
    assert isinstance(days, int) and days <= 7  # the sim board's honest figure today
    (battery,) = [p for p in info["problems"] if p["kind"] == "battery"]
    assert battery["severity"] == 3
    assert battery["text"].startswith(f"battery nearly empty: about {days} days left")
    listed = status(site)["locks"]
    assert [lk["lock"] for lk in listed] == ["NT-1"]
    assert [p["kind"] for p in listed[0]["problems"]] == ["battery"]


def test_a_key_brings_the_status_home_and_a_missing_block_shows(fleet_world) -> None:
    site, sim, root = fleet_world
    assert problems(site) == {}
    device = shift(site, "S1", "anna.grant")
    site.ok("open", "--device", device, "--lock-id", "NT-1", "--ble", sim.ble)
    lines = (root / device / "status.jsonl").read_text().splitlines()
    assert len(lines) == 1 and json.loads(lines[0])["lock"] == "NT-1"
    assert (root / device / "status.jsonl").stat().st_mode & 0o077 == 0

    # A block the lock has not heard of: urgent, since the block.
    site.ok("revoke", "--staff", "S1")
    p = problems(site)["block-missing"]
    assert p["severity"] == 3 and "1 version behind" in str(p["text"])
    text = site.ok("fleet", "status")
    assert text.startswith("NT-1") and "URGENT" in text and "lockctl lock sync" in text
    # A colleague's key issued after the block carries it; her device brings
    # the lock's answer home, and the fleet is healthy again.
    bilal = shift(site, "S2", "bilal.grant")
    site.ok("open", "--device", bilal, "--lock-id", "NT-1", "--ble", sim.ble)
    before = problems(site)
    assert "block-missing" in before  # not ingested yet
    out = json.loads(site.ok("--json", "fleet", "ingest", f"{bilal}/status.jsonl"))
    assert out["taken"] == 1 and out["refused"] == [] and out["locks"] == ["NT-1"]
    assert problems(site) == {}
    # The same file again changes nothing: exit 0, nothing taken.
    dump = site.dump()
    again = json.loads(site.ok("--json", "fleet", "ingest", f"{bilal}/status.jsonl"))
    assert again["taken"] == 0 and again["older"] == 1
    assert [r for r in site.dump() if "audit" not in r] == [r for r in dump if "audit" not in r]
    # Anna's older answer (version 0) does not overwrite the newer status.
    site.ok("fleet", "ingest", f"{device}/status.jsonl")
    assert problems(site) == {}


def test_forged_altered_and_foreign_lines_are_refused_by_line(fleet_world,
                                                             tmp_path: Path) -> None:
    site, sim, root = fleet_world
    device = shift(site, "S2", "bilal2.grant")
    site.ok("open", "--device", device, "--lock-id", "NT-1", "--ble", sim.ble)
    good = (root / device / "status.jsonl").read_text().splitlines()[-1]
    obj = json.loads(good)
    altered = dict(obj, answer=obj["answer"][:-2] + ("00" if obj["answer"][-2:] != "00"
                                                      else "01"))
    status_changed = dict(obj, answer=obj["answer"].replace("65302e312e30", "65302e392e39"))
    other_lock = dict(obj, lock="NT-999")
    bad = root / "bad.jsonl"
    bad.write_text("\n".join(["not json", json.dumps(altered), json.dumps(status_changed),
                              json.dumps(other_lock), json.dumps(dict(obj, v=7)),
                              json.dumps(dict(obj, seen=obj["seen"] + 10 ** 6))]) + "\n")
    dump = site.dump()
    p = site.run("fleet", "ingest", str(bad))
    assert p.returncode == 1 and "Traceback" not in p.stderr
    err = p.stderr.splitlines()
    assert err[-1].startswith("lockctl: 6 lines of") and "nothing of them" in err[-1]
    err = err[:-1]
    assert [e.split(": refused: ")[0].rsplit(":", 1)[1] for e in err] == ["1", "2", "3", "4",
                                                                          "5", "6"]
    assert "forged or altered" in err[1] and "forged or altered" in err[2]
    assert "NT-999 is not in this site" in err[3] and "future" in err[5]
    assert site.dump() == dump  # not even an audit record: nothing was done

    # A status file from another site's key for a lock of the same name.
    other = Site(tmp_path)
    other.ok("site", "init", "--name", "Annan kommun")
    foreign = tmp_path / "foreign.jsonl"
    foreign.write_text(json.dumps(dict(obj, cti="00" * 16)) + "\n")
    p = site.run("fleet", "ingest", str(foreign))
    assert p.returncode == 1 and "not issued by this site" in p.stderr
    for args, words in ((["fleet", "ingest", str(root / "nope.jsonl")], "No such file"),
                        (["fleet", "ingest", str(root)], "is a directory")):
        p = site.run(*args)
        assert p.returncode == 1 and words in p.stderr and "Traceback" not in p.stderr
    (root / "binary.jsonl").write_bytes(b"\xff\xfe\x00")
    p = site.run("fleet", "ingest", str(root / "binary.jsonl"))
    assert p.returncode == 1 and "not UTF-8" in p.stderr


def test_wrong_clock_is_told_apart_and_named_in_lock_info(fleet_world) -> None:
    site, sim, root = fleet_world
    device = shift(site, "S2", "bilal3.grant")
    control(sim, {"cmd": "rtc", "advance": 36000})  # the lock's clock 10 h fast
    try:
        p = site.run("open", "--device", device, "--lock-id", "NT-1", "--ble", sim.ble)
        assert p.returncode == 1
        assert "the lock's clock looks wrong" in p.stdout and "your key is valid" in p.stdout
        site.ok("fleet", "ingest", f"{device}/status.jsonl")
        drift = problems(site)["clock-drift"]
        assert drift["text"] == "clock 10 h fast" and drift["severity"] == 3
        info = site.ok("lock", "info", "--port", sim.serial)
        assert "URGENT: clock 10 h fast: run lockctl lock sync" in info
        data = json.loads(site.ok("--json", "lock", "info", "--port", sim.serial))
        assert [p["kind"] for p in data["problems"]] == ["clock-drift", "battery"]
    finally:
        site.ok("lock", "sync", "--port", sim.serial, "--force-time")
    data = json.loads(site.ok("--json", "lock", "info", "--port", sim.serial))
    assert [p["kind"] for p in data["problems"]] == ["battery"]
    assert problems(site) == {}
