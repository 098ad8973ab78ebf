"""The site registry's schema, as numbered migrations (tools/registry.py
applies them). Append, never edit: registries in the field were made by the
earlier entries (tests/fixtures/registry-v1, and the migration tests build a
registry of each earlier version)."""

from __future__ import annotations

import sqlite3
from typing import Iterator

from tools.registry_errors import RegistryError

# Schema version N is MIGRATIONS[N - 1] applied to version N - 1; a registry
# records its version in PRAGMA user_version. Append, never edit: registries
# in the field were made by the earlier entries (tests/fixtures/registry-v1).
MIGRATIONS: list[str] = [
    # 1: the first schema
    """
    CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE clients (client_id TEXT PRIMARY KEY, name TEXT NOT NULL, address TEXT);
    CREATE TABLE providers (name TEXT PRIMARY KEY);
    CREATE TABLE staff (staff_id TEXT PRIMARY KEY, name TEXT NOT NULL,
                        provider TEXT REFERENCES providers(name), key_id BLOB NOT NULL);
    CREATE TABLE locks (lock_id TEXT PRIMARY KEY, door TEXT NOT NULL, suite TEXT NOT NULL,
                        commissioned_at INTEGER NOT NULL, status TEXT NOT NULL,
                        last_seen INTEGER, revocation_version INTEGER, clock_offset INTEGER,
                        battery INTEGER, battery_mv INTEGER, log_count INTEGER,
                        log_capacity INTEGER, last_seq INTEGER);
    CREATE TABLE lock_clients (lock_id TEXT NOT NULL REFERENCES locks(lock_id),
                               client_id TEXT NOT NULL REFERENCES clients(client_id),
                               PRIMARY KEY (lock_id, client_id));
    CREATE TABLE tokens (cti BLOB PRIMARY KEY, staff_id TEXT NOT NULL REFERENCES staff(staff_id),
                         lock_id TEXT NOT NULL, start INTEGER NOT NULL, end INTEGER NOT NULL,
                         issued_at INTEGER NOT NULL, scope TEXT NOT NULL,
                         alarm INTEGER NOT NULL DEFAULT 0);
    CREATE TABLE revocations (id INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL,
                              value TEXT NOT NULL, until INTEGER NOT NULL,
                              created_at INTEGER NOT NULL);
    CREATE TABLE events (lock_id TEXT NOT NULL, seq INTEGER NOT NULL, time INTEGER NOT NULL,
                         code INTEGER NOT NULL, flags INTEGER NOT NULL, detail INTEGER NOT NULL,
                         key_id BLOB NOT NULL, record BLOB NOT NULL, pulled_at INTEGER NOT NULL,
                         PRIMARY KEY (lock_id, seq));
    CREATE TABLE audit (id INTEGER PRIMARY KEY AUTOINCREMENT, at INTEGER NOT NULL,
                        actor TEXT NOT NULL, action TEXT NOT NULL, detail TEXT NOT NULL);
    """,
    # 2: commissioning epochs. A lock's records are keyed by (lock, epoch, seq):
    # a lock commissioned again (a new board under the same id, an erased
    # flash) may number from 1 again, and its records must not be dropped as
    # duplicates of the last identity's. The retention anchor (last pruned seq
    # and its MAC) keeps the chain checkable after old records are deleted;
    # log_gaps keeps the ranges a pull found already overwritten at the lock.
    """
    ALTER TABLE locks ADD COLUMN epoch INTEGER NOT NULL DEFAULT 1;
    CREATE TABLE commissionings (
        lock_id TEXT NOT NULL, epoch INTEGER NOT NULL, commissioned_at INTEGER NOT NULL,
        first_seq INTEGER, previous_end TEXT, previous_after INTEGER,
        end_kind TEXT, end_seq INTEGER, ended_at INTEGER,
        pruned_seq INTEGER, pruned_mac BLOB, pruned_time INTEGER,
        PRIMARY KEY (lock_id, epoch));
    INSERT INTO commissionings (lock_id, epoch, commissioned_at)
        SELECT lock_id, 1, commissioned_at FROM locks;
    CREATE TABLE events_by_epoch (
        lock_id TEXT NOT NULL, epoch INTEGER NOT NULL, seq INTEGER NOT NULL,
        time INTEGER NOT NULL, code INTEGER NOT NULL, flags INTEGER NOT NULL,
        detail INTEGER NOT NULL, key_id BLOB NOT NULL, record BLOB NOT NULL,
        pulled_at INTEGER NOT NULL, PRIMARY KEY (lock_id, epoch, seq));
    INSERT INTO events_by_epoch
        SELECT lock_id, 1, seq, time, code, flags, detail, key_id, record, pulled_at FROM events;
    DROP TABLE events;
    ALTER TABLE events_by_epoch RENAME TO events;
    CREATE TABLE log_gaps (lock_id TEXT NOT NULL, epoch INTEGER NOT NULL,
                           first INTEGER NOT NULL, last INTEGER NOT NULL,
                           found_at INTEGER NOT NULL, PRIMARY KEY (lock_id, epoch, first));
    """,
    # 3: staff devices. A shift grant is encrypted to a staff member's enrolled
    # device; a token remembers the device it was issued to, so revoking a
    # device blocks exactly its tokens.
    """
    CREATE TABLE devices (fingerprint TEXT PRIMARY KEY,
                          staff_id TEXT NOT NULL REFERENCES staff(staff_id),
                          public BLOB NOT NULL UNIQUE, enrolled_at INTEGER NOT NULL,
                          state TEXT NOT NULL, changed_at INTEGER);
    ALTER TABLE tokens ADD COLUMN device TEXT;
    """,
    # 4: care operations (issue #14 sections 1-3). Nothing is deleted: a
    # client, provider or unit that is removed is deactivated (active = 0),
    # because the log and the audit record refer to it. A staff member's state
    # is 'active' or 'deactivated'; a device's state gains 'suspended' (its
    # staff member was deactivated: `staff activate` restores it, never a
    # 'revoked' one). A staff member belongs to a provider: one registered
    # without is put under a provider named as the site (its own service).
    # Every existing client gets every existing provider
    # (nobody loses access by upgrading) and every existing staff member the
    # role home-care. A client's medicine cabinet is for the roles in
    # medicine_roles (comma-separated). A key box belongs to one provider
    # (locks.provider). A booking lets a staff member hold keys to another
    # unit's clients for its period. An alarm key is one per alarm id.
    """
    ALTER TABLE providers ADD COLUMN alarms INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE providers ADD COLUMN active INTEGER NOT NULL DEFAULT 1;
    ALTER TABLE providers ADD COLUMN changed_at INTEGER;
    CREATE TABLE units (unit_id TEXT PRIMARY KEY,
                        provider TEXT NOT NULL REFERENCES providers(name),
                        name TEXT, active INTEGER NOT NULL DEFAULT 1,
                        created_at INTEGER NOT NULL, changed_at INTEGER);
    ALTER TABLE clients ADD COLUMN unit TEXT REFERENCES units(unit_id);
    ALTER TABLE clients ADD COLUMN active INTEGER NOT NULL DEFAULT 1;
    ALTER TABLE clients ADD COLUMN medicine_roles TEXT NOT NULL DEFAULT 'nurse';
    ALTER TABLE clients ADD COLUMN changed_at INTEGER;
    INSERT OR IGNORE INTO providers (name)
        SELECT value FROM settings WHERE key = 'name'
        AND EXISTS (SELECT 1 FROM staff WHERE provider IS NULL);
    UPDATE staff SET provider = (SELECT value FROM settings WHERE key = 'name')
        WHERE provider IS NULL;
    CREATE TABLE client_providers (client_id TEXT NOT NULL REFERENCES clients(client_id),
                                   provider TEXT NOT NULL REFERENCES providers(name),
                                   since INTEGER NOT NULL,
                                   PRIMARY KEY (client_id, provider));
    INSERT INTO client_providers (client_id, provider, since)
        SELECT c.client_id, p.name, CAST(strftime('%s', 'now') AS INTEGER)
        FROM clients c CROSS JOIN providers p;
    ALTER TABLE staff ADD COLUMN role TEXT NOT NULL DEFAULT 'home-care';
    ALTER TABLE staff ADD COLUMN unit TEXT REFERENCES units(unit_id);
    ALTER TABLE staff ADD COLUMN state TEXT NOT NULL DEFAULT 'active';
    ALTER TABLE staff ADD COLUMN changed_at INTEGER;
    ALTER TABLE locks ADD COLUMN provider TEXT REFERENCES providers(name);
    CREATE TABLE bookings (booking_id INTEGER PRIMARY KEY AUTOINCREMENT,
                           staff_id TEXT NOT NULL REFERENCES staff(staff_id),
                           unit TEXT NOT NULL REFERENCES units(unit_id),
                           start INTEGER NOT NULL, end INTEGER NOT NULL,
                           created_at INTEGER NOT NULL, created_by TEXT NOT NULL,
                           cancelled_at INTEGER);
    CREATE INDEX bookings_by_staff ON bookings (staff_id, unit, start);
    CREATE TABLE alarm_keys (alarm_id TEXT PRIMARY KEY,
                             client_id TEXT NOT NULL REFERENCES clients(client_id),
                             staff_id TEXT NOT NULL REFERENCES staff(staff_id),
                             reason TEXT NOT NULL, minutes INTEGER NOT NULL,
                             start INTEGER NOT NULL, end INTEGER NOT NULL,
                             issued_at INTEGER NOT NULL, device TEXT NOT NULL,
                             actor TEXT NOT NULL);
    ALTER TABLE tokens ADD COLUMN alarm_id TEXT REFERENCES alarm_keys(alarm_id);
    ALTER TABLE tokens ADD COLUMN booking_id INTEGER REFERENCES bookings(booking_id);
    CREATE INDEX tokens_by_lock ON tokens (lock_id, end);
    CREATE INDEX tokens_by_staff ON tokens (staff_id, end);
    CREATE INDEX audit_by_time ON audit (at);
    """,
    # 5: receipts, properties and consent, retired locks, incidents (issue #14
    # sections 4 and 5). A receipt (kvittens) records items changing hands
    # with a person (a staff member, a client or a property's owner); each
    # item goes 'to' the person (handed out) or 'from' them (given back), so
    # what a person still holds is the difference. A client may live in a
    # property whose owner must consent before its shared doors get a lock.
    # A retired lock id (stolen, destroyed) is never commissioned again. An
    # incident is linked to its lock's log by a window around its time.
    """
    CREATE TABLE receipts (receipt_no INTEGER PRIMARY KEY AUTOINCREMENT,
                           kind TEXT NOT NULL, person TEXT NOT NULL,
                           person_kind TEXT NOT NULL, by_name TEXT NOT NULL,
                           at INTEGER NOT NULL, lock_id TEXT, note TEXT,
                           actor TEXT NOT NULL);
    CREATE INDEX receipts_by_person ON receipts (person, at);
    CREATE TABLE receipt_items (receipt_no INTEGER NOT NULL REFERENCES receipts(receipt_no),
                                pos INTEGER NOT NULL, direction TEXT NOT NULL
                                CHECK (direction IN ('to', 'from')),
                                item_kind TEXT NOT NULL, label TEXT NOT NULL,
                                PRIMARY KEY (receipt_no, pos));
    CREATE TABLE properties (property_id TEXT PRIMARY KEY, address TEXT NOT NULL,
                             owner TEXT NOT NULL, added_at INTEGER NOT NULL);
    CREATE TABLE consents (consent_no INTEGER PRIMARY KEY AUTOINCREMENT,
                           property_id TEXT NOT NULL REFERENCES properties(property_id),
                           given_by TEXT NOT NULL, given_on TEXT NOT NULL,
                           recorded_at INTEGER NOT NULL, actor TEXT NOT NULL);
    ALTER TABLE clients ADD COLUMN property_id TEXT REFERENCES properties(property_id);
    ALTER TABLE clients ADD COLUMN informed_on TEXT;
    CREATE TABLE retired_locks (lock_id TEXT PRIMARY KEY REFERENCES locks(lock_id),
                                reason TEXT NOT NULL, retired_at INTEGER NOT NULL,
                                actor TEXT NOT NULL);
    CREATE TABLE incidents (incident_no INTEGER PRIMARY KEY AUTOINCREMENT,
                            lock_id TEXT NOT NULL REFERENCES locks(lock_id),
                            at INTEGER NOT NULL, what TEXT NOT NULL,
                            window_s INTEGER NOT NULL, recorded_at INTEGER NOT NULL,
                            actor TEXT NOT NULL);
    CREATE INDEX incidents_by_lock ON incidents (lock_id, at);
    """,
    # 6: fleet health (issue #15 section 1). What a lock's status carries
    # beyond the first schema's columns: its firmware version, whether its
    # clock is trusted, its own battery forecast (days left), and where the
    # status came from ("serial" or "key"). Tokens by end time: fleet status
    # looks at the keys still valid.
    """
    ALTER TABLE locks ADD COLUMN firmware TEXT;
    ALTER TABLE locks ADD COLUMN clock_trusted INTEGER;
    ALTER TABLE locks ADD COLUMN battery_days INTEGER;
    ALTER TABLE locks ADD COLUMN status_source TEXT;
    CREATE INDEX tokens_by_end ON tokens (end);
    CREATE INDEX tokens_alarm ON tokens (alarm, issued_at);
    """,
]


def statements(script: str) -> Iterator[str]:
    # sqlite3's executescript() COMMITs any open transaction before it runs
    # (Python < 3.12), which would make a migration half-applicable: run the
    # statements one by one instead. complete_statement() knows about
    # semicolons in strings, comments and trigger bodies.
    buf = ""
    for piece in script.split(";"):
        buf += piece + ";"
        if sqlite3.complete_statement(buf):
            if buf.strip(" \t\r\n;"):
                yield buf
            buf = ""
    if buf.strip(" \t\r\n;"):
        raise RegistryError("a schema migration ends in an incomplete statement")
