"""Schema migrations on a registry that an earlier lockctl wrote
(tests/fixtures/registry-v1, made by lockctl at 786d003): its data survives,
lockctl keeps working on it, and a migration that fails changes nothing.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tools import registry
from tools.registry import DB_NAME, Registry, RegistryError

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "registry-v1" / DB_NAME
LOCKCTL = str(Path(sys.executable).parent / "lockctl")
SITE_NAME = "Testkommun hemtjänst"  # the fixture's (make.sh)


def copy_of_v1(tmp_path: Path) -> Path:
    site = tmp_path / "site"
    site.mkdir(mode=0o700)
    shutil.copyfile(FIXTURE, site / DB_NAME)
    (site / DB_NAME).chmod(0o600)  # git keeps no mode
    return site


def connect(site: Path) -> sqlite3.Connection:
    return sqlite3.connect(site / DB_NAME)


def dump(site: Path) -> list[str]:
    db = connect(site)
    try:
        return list(db.iterdump())
    finally:
        db.close()


def user_version(site: Path) -> int:
    db = connect(site)
    try:
        return int(db.execute("PRAGMA user_version").fetchone()[0])
    finally:
        db.close()


def v1_rows() -> dict[str, tuple[list[str], list[tuple[Any, ...]]]]:
    """Every row of the fixture, by table, in its version-1 columns."""
    db = sqlite3.connect(f"file:{FIXTURE}?mode=ro", uri=True)
    try:
        tables = [r[0] for r in db.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")]
        out: dict[str, tuple[list[str], list[tuple[Any, ...]]]] = {}
        for t in tables:
            cols = [r[1] for r in db.execute(f"PRAGMA table_info({t})")]
            out[t] = (cols, sorted(db.execute(f"SELECT {', '.join(cols)} FROM {t}")))
        return out
    finally:
        db.close()


def test_the_fixture_is_version_1_with_data_in_every_table() -> None:
    db = sqlite3.connect(f"file:{FIXTURE}?mode=ro", uri=True)
    try:
        assert db.execute("PRAGMA user_version").fetchone()[0] == 1
    finally:
        db.close()
    assert all(rows for _, rows in v1_rows().values())


def test_a_version_1_registry_is_migrated_and_keeps_its_data(tmp_path: Path) -> None:
    site = copy_of_v1(tmp_path)
    Registry(site).close()
    assert user_version(site) == len(registry.MIGRATIONS)
    db = connect(site)
    try:
        for table, (cols, rows) in v1_rows().items():
            got = sorted(db.execute(f"SELECT {', '.join(cols)} FROM {table}"))
            if table == "staff":
                # Migration 4: a staff member registered without a provider
                # is put under the site's own (named as the site).
                rows = sorted((sid, name, prov or SITE_NAME, kid) for sid, name, prov, kid in rows)
            if table == "providers":
                rows = sorted([*rows, (SITE_NAME,)])
            assert got == rows, table
    finally:
        db.close()
    # Opening again changes nothing more.
    before = dump(site)
    Registry(site).close()
    assert dump(site) == before


def test_lockctl_works_on_a_version_1_registry(tmp_path: Path) -> None:
    site = copy_of_v1(tmp_path)
    env = dict(os.environ, LOCKCTL_SITE=str(site), LOCKCTL_ACTOR="new-admin")

    def lockctl(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([LOCKCTL, "--json", *args], env=env, capture_output=True,
                              text=True, timeout=60)

    old_audit = v1_rows()["audit"][1]
    for args in (["client", "add", "C3", "--name", "Sara Nilsson"],
                 ["staff", "add", "S4", "--name", "Dana Olsson", "--provider", "Kommunen"],
                 ["revoke", "--staff", "S2"]):
        p = lockctl(*args)
        assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["revocation_version"] == 3  # the fixture was at 2
    refused = lockctl("client", "add", "C1", "--name", "Again")
    assert refused.returncode == 1 and "already exists" in refused.stderr

    reg = Registry(site)
    try:
        audit = [tuple(r) for r in reg.audit_log()]
        assert sorted(audit[:len(old_audit)]) == old_audit  # the old record intact
        assert [(r[2], r[3]) for r in audit[len(old_audit):]] == [
            ("new-admin", "client add"), ("new-admin", "staff add"), ("new-admin", "revoke")]
        assert json.loads(audit[-1][4])["staff"] == "S2"
        assert reg.client("C1")["name"] == "Astrid Lindqvist"
        assert reg.staff("S4")["provider"] == "Kommunen"
        # As of the fixture's blocks (its entries are spent 24 hours later).
        fixture_blocks = max(r[4] for r in v1_rows()["revocations"][1])
        version, staff, tokens = reg.revocation_state(fixture_blocks)
        assert version == 3 and set(staff) == {"S1", "S2"} and len(tokens) == 1
        assert reg.lock("NT-1").clients == ["C1"]
        assert len(reg.events("NT-1")) == 6
    finally:
        reg.close()


def test_a_migration_that_fails_leaves_the_old_version(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    site = copy_of_v1(tmp_path)
    Registry(site).close()  # up to today's version
    current = len(registry.MIGRATIONS)
    before = dump(site)
    # The first statements succeed; the failure comes after them.
    bad = """
        ALTER TABLE clients ADD COLUMN phone TEXT;
        UPDATE clients SET phone = 'x;y';
        CREATE TABLE visits (id INTEGER PRIMARY KEY);
        INSERT INTO no_such_table VALUES (1);
    """
    monkeypatch.setattr(registry, "MIGRATIONS", [*registry.MIGRATIONS, bad])
    with pytest.raises(RegistryError, match=f"schema version {current + 1} .*at version "
                                            f"{current}"):
        Registry(site)
    assert dump(site) == before
    assert user_version(site) == current


def test_a_migration_runs_statement_by_statement_in_one_transaction(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    site = copy_of_v1(tmp_path)
    good = """
        -- a comment; with a semicolon
        ALTER TABLE clients ADD COLUMN note TEXT DEFAULT 'a;b';
        CREATE TABLE visits (id INTEGER PRIMARY KEY, client TEXT);
        CREATE TRIGGER visits_note AFTER INSERT ON visits BEGIN
            UPDATE clients SET note = 'visited; yes' WHERE client_id = NEW.client;
        END;
    """
    monkeypatch.setattr(registry, "MIGRATIONS", [*registry.MIGRATIONS, good])
    reg = Registry(site)
    try:
        assert reg.db.execute("PRAGMA user_version").fetchone()[0] == len(registry.MIGRATIONS)
        assert reg.client("C2")["note"] == "a;b"
        with reg.tx():
            reg.db.execute("INSERT INTO visits (client) VALUES ('C1')")
        assert reg.client("C1")["note"] == "visited; yes"
    finally:
        reg.close()


def test_a_registry_from_a_newer_lockctl_is_refused(tmp_path: Path) -> None:
    site = copy_of_v1(tmp_path)
    db = connect(site)
    db.execute("PRAGMA user_version = 99")
    db.commit()
    db.close()
    before = dump(site)
    with pytest.raises(RegistryError, match="newer lockctl"):
        Registry(site)
    assert dump(site) == before


def test_a_copy_with_the_mode_git_gives_it_is_refused(tmp_path: Path) -> None:
    site = copy_of_v1(tmp_path)
    (site / DB_NAME).chmod(0o644)
    with pytest.raises(RegistryError, match=f"run chmod 600 {site / DB_NAME}$"):
        Registry(site)
    assert user_version(site) == 1  # refused before anything was migrated


def registry_at(tmp_path: Path, version: int, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The fixture brought up to `version` only, as that release left it."""
    site = copy_of_v1(tmp_path)
    with monkeypatch.context() as m:
        m.setattr(registry, "MIGRATIONS", registry.MIGRATIONS[:version])
        Registry(site).close()
    assert user_version(site) == version
    return site


def test_migration_4_keeps_everyone_s_access_and_adds_care_operations(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    site = registry_at(tmp_path, 3, monkeypatch)
    db = connect(site)
    db.execute("INSERT INTO devices VALUES ('ab' || hex(randomblob(8)), 'S1', x'01', 5, "
               "'active', NULL)")
    db.commit()
    old_clients = [r[0] for r in db.execute("SELECT client_id FROM clients")]
    old_providers = [r[0] for r in db.execute("SELECT name FROM providers")]
    db.close()
    assert old_clients and old_providers
    reg = Registry(site)
    try:
        assert reg.db.execute("PRAGMA user_version").fetchone()[0] == len(registry.MIGRATIONS)
        # Every existing client has every provider that existed (and the
        # site's own, which the provider-less S3 was put under).
        pairs = {(r[0], r[1]) for r in reg.db.execute(
            "SELECT client_id, provider FROM client_providers")}
        assert pairs == {(c, p) for c in old_clients for p in [*old_providers, SITE_NAME]}
        staff = {r["staff_id"]: r for r in reg.db.execute("SELECT * FROM staff")}
        assert {r["role"] for r in staff.values()} == {"home-care"}
        assert {r["state"] for r in staff.values()} == {"active"}
        assert staff["S3"]["provider"] == SITE_NAME and staff["S1"]["provider"] == "Kommunen"
        assert all(r["unit"] is None for r in staff.values())
        clients = list(reg.db.execute("SELECT * FROM clients"))
        assert all(r["active"] == 1 and r["medicine_roles"] == "nurse" and r["unit"] is None
                   for r in clients)
        provs = list(reg.db.execute("SELECT * FROM providers"))
        assert all(r["alarms"] == 0 and r["active"] == 1 for r in provs)
        assert reg.db.execute("SELECT state FROM devices").fetchone()[0] == "active"
        assert reg.lock("NT-1").provider is None
        for table in ("units", "bookings", "alarm_keys"):
            assert reg.db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0] == 0
        # One key per alarm id, enforced by the schema itself.
        with pytest.raises(sqlite3.IntegrityError):
            with reg.tx():
                for _ in range(2):
                    reg.db.execute(
                        "INSERT INTO alarm_keys VALUES ('A-1', 'C1', 'S1', 'fall', 60, 1, 2, 1,"
                        " 'dev', 'x')")
    finally:
        reg.close()


def test_migration_5_adds_receipts_properties_retirements_and_incidents(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    site = registry_at(tmp_path, 4, monkeypatch)
    before = {t: rows for t, rows in (
        (t, sorted(connect(site).execute(f"SELECT * FROM {t}")))
        for t in ("clients", "locks", "tokens", "staff", "audit"))}
    with monkeypatch.context() as m:  # migration 5 alone (6 has its own test)
        m.setattr(registry, "MIGRATIONS", registry.MIGRATIONS[:5])
        reg = Registry(site)
    try:
        assert reg.db.execute("PRAGMA user_version").fetchone()[0] == 5
        # What was there is untouched; clients gain two empty columns.
        for table, rows in before.items():
            got = [tuple(r) for r in reg.db.execute(f"SELECT * FROM {table}")]
            if table == "clients":
                new = [tuple(r) for r in reg.db.execute(
                    "SELECT property_id, informed_on FROM clients")]
                assert new and set(new) == {(None, None)}
                got = [r[:-2] for r in got]
            assert sorted(got) == rows, table
        for table in ("receipts", "receipt_items", "properties", "consents", "retired_locks",
                      "incidents"):
            assert reg.db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0] == 0
        assert reg.held_items("S1") == []
        # The schema itself refuses an item that goes neither way, and a
        # client in a property that does not exist.
        no = reg.add_receipt("handout add", "S1", "staff", "E", 1, [("to", "fob", "F1")], "x")
        with pytest.raises(sqlite3.IntegrityError):
            with reg.tx():
                reg.db.execute("INSERT INTO receipt_items VALUES (?, 2, 'sideways', 'fob', 'F')",
                               (no,))
        with pytest.raises(sqlite3.IntegrityError):
            with reg.tx():
                reg.db.execute("UPDATE clients SET property_id = 'P-404' WHERE client_id = 'C1'")
        assert reg.held_items("S1") == [("fob", "F1", 1)]
    finally:
        reg.close()


def test_fleet_health_migration_on_a_version_5_registry(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """The fleet-health migration (firmware, clock trusted, battery forecast,
    status source) on a registry of the schema before it: the locks keep their
    status, the new fields are unknown, and fleet status reads it (migration 6)."""
    site = copy_of_v1(tmp_path)
    with monkeypatch.context() as m:
        m.setattr(registry, "MIGRATIONS", registry.MIGRATIONS[:5])
        Registry(site).close()
    assert user_version(site) == 5
    db = connect(site)
    before = db.execute("SELECT lock_id, last_seen, revocation_version, battery_mv "
                        "FROM locks ORDER BY lock_id").fetchall()
    db.close()
    Registry(site).close()
    assert user_version(site) == len(registry.MIGRATIONS)
    db = connect(site)
    try:
        assert db.execute("SELECT lock_id, last_seen, revocation_version, battery_mv "
                          "FROM locks ORDER BY lock_id").fetchall() == before
        assert db.execute("SELECT firmware, clock_trusted, battery_days, status_source "
                          "FROM locks").fetchall() == [(None,) * 4] * len(before)
    finally:
        db.close()
    env = dict(os.environ, LOCKCTL_SITE=str(site))
    p = subprocess.run([LOCKCTL, "--json", "fleet", "status", "--all"], env=env,
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert [lk["lock"] for lk in json.loads(p.stdout)["locks"]] == [r[0] for r in before]
