"""lockctl's pieces without a lock: key files, local times, block-list overflow."""

from __future__ import annotations

import json
import time
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from protocol import clock, keys, revocation
from tools import issuer, keyfile, lockctl
from tools.registry import RegistryError
from tools.site import Site

TZ = ZoneInfo("Europe/Stockholm")


def test_key_file_round_trip_and_refusals(tmp_path: Path) -> None:
    g = issuer.issue_token(bytes(32), "L1", iss="s", sub="S1", start=int(time.time()),
                           end=int(time.time()) + 3600)
    key = keyfile.ShiftKey("S1", "s", g.start, g.end, [g])
    path = tmp_path / "k.key"
    keyfile.write(path, key, "1234")
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    back = keyfile.read(path, "1234")
    assert back.grants[0].token == g.token and back.grants[0].pop_key == g.pop_key
    text = path.read_text()
    assert g.pop_key.hex() not in text and g.token.hex() not in text  # encrypted
    with pytest.raises(keyfile.WrongPin):
        keyfile.read(path, "4321")
    doc = json.loads(text)
    doc["kdf"]["memory_cost"] = 8  # a weakened header is bound by the AEAD
    path.write_text(json.dumps(doc))
    with pytest.raises(keyfile.KeyFileError):
        keyfile.read(path, "1234")
    with pytest.raises(keyfile.KeyFileError):
        keyfile.write(tmp_path / "short.key", key, "12")
    for shown in (repr(back), repr(back.grants[0]), str(back.grants[0])):
        assert g.pop_key.hex() not in shown and g.pop_key.hex()[:16] not in shown


def test_local_times_follow_daylight_saving() -> None:
    winter = lockctl.parse_local("2026-01-15T07:00", TZ, "start")
    summer = lockctl.parse_local("2026-07-15T07:00", TZ, "start")
    assert winter == 1768456800  # 06:00 UTC (CET, +01:00)
    assert summer == 1784091600  # 05:00 UTC (CEST, +02:00)
    assert lockctl.parse_local("2026-07-15T07:00+00:00", TZ, "start") == 1784098800
    with pytest.raises(lockctl.UsageError, match="does not exist"):
        lockctl.parse_local("2026-03-29T02:30", TZ, "start")
    # The autumn hour that happens twice is taken the first time (summer time).
    assert lockctl.parse_local("2026-10-25T02:30", TZ, "start") == 1792888200


def test_block_list_overflow_becomes_a_fixed_cut_off(tmp_path: Path) -> None:
    reg = Site.init(tmp_path / "site", "s", actor="t").registry
    for i in range(60):
        reg.add_staff(f"S{i}", f"Staff {i}", "Kommunen")
        # Each held a key for L1 (entries travel to the locks their staff held keys for).
        reg.add_token(bytes([i]) * 16, f"S{i}", "L1", int(time.time()) - 60,
                      int(time.time()) + 3600, "open", False)
        reg.revoke("staff", f"S{i}", int(time.time()))
    newest = reg.newest_block_time()
    now = int(time.time()) + 5
    blob = lockctl.revocation_blob(reg, "L1", now)
    assert blob is not None and len(blob) <= lockctl.MAX_CARRIED_UPDATE
    update_key = keys.update_key(keys.lock_secret(reg.site_secret(), "L1"))
    rl = revocation.decode_update(blob, "L1", update_key)
    assert len(rl) == 0 and rl.cutoff > clock.from_unix(newest)
    # Issuing later does not move the cut-off (colleagues' keys stay valid).
    again = revocation.decode_update(lockctl.revocation_blob(reg, "L1", now + 600), "L1",
                                     update_key)
    assert again.cutoff == rl.cutoff


def test_site_secret_must_be_private(tmp_path: Path) -> None:
    reg = Site.init(tmp_path / "site", "s", actor="t").registry
    path = tmp_path / "site" / "site-secret.key"
    path.chmod(0o644)
    with pytest.raises(RegistryError, match=f"open to other users .*: run chmod 600 {path}$"):
        reg.site_secret()
    secret = (tmp_path / "site" / "site-secret.key").read_bytes().hex()
    assert secret not in repr(reg)


def test_report_tells_how_the_door_was_opened() -> None:
    from protocol import events
    from tools import report

    t = clock.from_unix(int(time.time()))
    prev, recs = events.GENESIS_MAC, []
    for seq, (code, detail) in enumerate(((events.DOOR_OPENED, events.DOOR_AFTER_OPENING),
                                          (events.DOOR_OPENED, events.DOOR_BY_HAND),
                                          (events.DOOR_OPENED, events.DOOR_FORCED),
                                          (events.RELOCKED, 3)), start=1):
        rec = events.encode(seq, t, code, 0, detail, None, prev, bytes(32))
        prev = events.decode(rec).mac
        recs.append(rec)
    rows = report.rows_for(recs, {}, "Europe/Stockholm")
    assert [r.event for r in rows] == ["door opened", "door opened by hand (no digital opening)",
                                       "door forced open (the bolt was locked)", "locked again"]
    assert all(r.outcome == "" for r in rows)  # none of them is an attempt to open
