"""The site registry: locks, doors, clients, providers, staff, issued tokens,
revocations, collected events and the record of every administrative act.

This is data access only; the acts themselves (each with its audit record, in
one transaction) are tools/site.py. One SQLite file in the site directory,
with numbered schema migrations. The site secret (from which every lock's
secret derives) and the site's Ed25519 signing key live beside it in
owner-only files; they are never printed, logged or put in an exception, and
their repr hides them. The registry holds personal data, so the directory and
every file SQLite keeps in it are owner-only too, and a site that others can
read is refused.
"""

from __future__ import annotations

import json
import os
import shlex
import sqlite3
import stat
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)

from protocol import events

DB_NAME = "registry.sqlite3"
SECRET_NAME = "site-secret.key"
SIGNING_NAME = "site-signing.key"
DEFAULT_ZONE = "Europe/Stockholm"
DEFAULT_RETENTION_DAYS = 365

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
ROLES = ("home-care", "nurse", "rehab", "night-patrol", "installer")
# How a lock reports its previous identity's end when commissioned (firmware.lock END_*).
PREVIOUS_END = {0: "none", 1: "decommissioned", 2: "factory-reset"}


class RegistryError(Exception):
    """A one-line, secret-free reason an administrative act cannot be done."""


class SiteMissing(RegistryError):
    pass


@dataclass
class LockRow:
    lock_id: str
    door: str
    suite: str
    commissioned_at: int
    status: str
    clients: list[str]
    last_seen: int | None = None
    revocation_version: int | None = None
    clock_offset: int | None = None
    battery: int | None = None
    battery_mv: int | None = None
    log_count: int | None = None
    log_capacity: int | None = None
    last_seq: int | None = None
    epoch: int = 1
    provider: str | None = None  # a key box's provider
    firmware: str | None = None
    clock_trusted: int | None = None
    battery_days: int | None = None
    status_source: str | None = None


# Files SQLite keeps beside the registry while it works (rollback journal, or
# WAL and its index): they hold the same personal data.
SIDE_FILES = ("-journal", "-wal", "-shm")


def _write_private(path: Path, data: bytes) -> None:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise RegistryError(f"{path} already exists: move it away first") from None
    with os.fdopen(fd, "wb") as f:
        f.write(data)


@contextmanager
def owner_only() -> Iterator[None]:
    """Files and directories made meanwhile are owner-only, whatever mode the
    code making them asks for (SQLite's own journal and WAL files included).
    The umask is process-wide: hold this only around creation."""
    old = os.umask(0o077)
    try:
        yield
    finally:
        os.umask(old)


def check_private(path: Path) -> None:
    """Refuse a site file or directory that other users can reach, naming
    the command that fixes it."""
    st = path.stat()
    mode = stat.S_IMODE(st.st_mode)
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        want = 0o700 if stat.S_ISDIR(st.st_mode) else 0o600
        what = "the site directory" if stat.S_ISDIR(st.st_mode) else "the site file"
        raise RegistryError(f"{what} {path} is open to other users (mode {mode:03o}): "
                            f"run chmod {want:o} {shlex.quote(str(path))}")


def _statements(script: str) -> Iterator[str]:
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


class Registry:
    def __init__(self, site_dir: Path) -> None:
        self.dir = Path(site_dir)
        db = self.dir / DB_NAME
        if not db.exists():
            raise SiteMissing(f"no site at {self.dir} (run: lockctl site init)")
        for path in (self.dir, db, *(self.dir / (DB_NAME + s) for s in SIDE_FILES)):
            if path.exists():
                check_private(path)
        # isolation_level=None: this class opens and ends every transaction
        # itself (tx()); the module's implicit ones cannot nest.
        with owner_only():
            self.db = sqlite3.connect(db, timeout=10, isolation_level=None)
        self.db.row_factory = sqlite3.Row
        self.db.execute("PRAGMA foreign_keys = ON")
        self._depth = 0
        self._aborted = False
        self._made: list[Path] = []
        try:
            self.migrate()
        except BaseException:
            self.db.close()
            raise

    def __repr__(self) -> str:
        return f"<Registry {self.dir}>"

    # --- creation and schema ---------------------------------------------------
    @classmethod
    def create(cls, site_dir: Path) -> "Registry":
        """A new, empty site: the directory, the secrets and the schema, all
        owner-only. The settings are the act of tools/site.py's Site.init,
        which calls discard() if that act fails."""
        site_dir = Path(site_dir)
        if (site_dir / DB_NAME).exists():
            raise RegistryError(f"a site already exists at {site_dir}")
        made: list[Path] = []
        try:
            with owner_only():
                if not site_dir.exists():
                    site_dir.mkdir(parents=True, mode=0o700)
                    made.append(site_dir)
                os.chmod(site_dir, 0o700)
                for name, data in ((SECRET_NAME, os.urandom(32)),
                                   (SIGNING_NAME, Ed25519PrivateKey.generate().private_bytes(
                                       Encoding.Raw, PrivateFormat.Raw, NoEncryption()))):
                    _write_private(site_dir / name, data)
                    made.append(site_dir / name)
                made.append(site_dir / DB_NAME)
                sqlite3.connect(site_dir / DB_NAME).close()
            reg = cls(site_dir)
        except BaseException:
            _remove(made)
            raise
        reg._made = made
        return reg

    def discard(self) -> None:
        """Undo create(): close and remove what it made (a failed site init)."""
        self.close()
        _remove(self._made + [self.dir / (DB_NAME + s) for s in SIDE_FILES])
        self._made = []

    def put_settings(self, settings: dict[str, str]) -> None:
        with self.tx():
            for k, v in settings.items():
                self.db.execute("INSERT INTO settings VALUES (?, ?)", (k, v))

    def change_setting(self, key: str, value: str) -> None:
        with self.tx():
            self.db.execute("UPDATE settings SET value = ? WHERE key = ?", (value, key))

    def migrate(self) -> None:
        """Bring the schema up to date, one migration per transaction: one
        that fails leaves the registry at the version before it."""
        while True:
            version = self.db.execute("PRAGMA user_version").fetchone()[0]
            if version > len(MIGRATIONS):
                raise RegistryError("this site was written by a newer lockctl")
            if version == len(MIGRATIONS):
                return
            with self.tx():
                # Read again under the write lock: another lockctl may have
                # migrated meanwhile.
                version = self.db.execute("PRAGMA user_version").fetchone()[0]
                if version >= len(MIGRATIONS):
                    continue
                try:
                    for statement in _statements(MIGRATIONS[version]):
                        self.db.execute(statement)
                    self.db.execute(f"PRAGMA user_version = {version + 1}")
                except sqlite3.Error as exc:
                    raise RegistryError(
                        f"the registry could not be upgraded to schema version {version + 1} "
                        f"({exc}); it is unchanged, at version {version}") from None

    @contextmanager
    def tx(self) -> Iterator[sqlite3.Connection]:
        """All or nothing, and nestable. The outermost block is the
        transaction: nothing is kept unless it ends normally. An inner block
        is a savepoint: if it raises, only its own changes are undone (the
        outer block may catch that and go on); if it ends normally, its
        changes still go with the outer block's fate."""
        if self._depth == 0:
            try:
                self.db.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as exc:
                if "locked" in str(exc) or "busy" in str(exc):
                    raise RegistryError("the site registry is busy (another lockctl?)") from None
                raise
            self._depth, self._aborted = 1, False
            try:
                yield self.db
            except BaseException:
                self._depth = 0
                if self.db.in_transaction:
                    self.db.execute("ROLLBACK")
                raise
            self._depth = 0
            if self._aborted:
                self.db.execute("ROLLBACK")
                raise RegistryError("the registry undid this act after an error inside it: "
                                    "nothing was changed")
            try:
                self.db.execute("COMMIT")
            except sqlite3.Error:
                if self.db.in_transaction:
                    self.db.execute("ROLLBACK")
                raise RegistryError("the site registry could not save this act "
                                    "(busy or disk full?): nothing was changed") from None
            return
        name = f"tx{self._depth}"
        self.db.execute(f"SAVEPOINT {name}")
        self._depth += 1
        try:
            yield self.db
        except BaseException:
            self._depth -= 1
            if self.db.in_transaction:
                self.db.execute(f"ROLLBACK TO {name}")
                self.db.execute(f"RELEASE {name}")
            elif not self._aborted:
                # SQLite itself undid the whole transaction (an I/O error, a
                # full disk): the outer blocks must neither go on writing in
                # autocommit mode nor report success.
                self._aborted = True
                self.db.execute("BEGIN")
            raise
        self._depth -= 1
        self.db.execute(f"RELEASE {name}")

    def close(self) -> None:
        self.db.close()

    # --- secrets (never shown) ---------------------------------------------------
    def _private(self, name: str) -> bytes:
        path = self.dir / name
        check_private(path)
        return path.read_bytes()

    def site_secret(self) -> bytes:
        return self._private(SECRET_NAME)

    def signing_key(self) -> Ed25519PrivateKey:
        return Ed25519PrivateKey.from_private_bytes(self._private(SIGNING_NAME))

    def signing_public(self) -> bytes:
        return self.signing_key().public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)

    # --- settings and audit ------------------------------------------------------
    def setting(self, key: str) -> str:
        row = self.db.execute("SELECT value FROM settings WHERE key = ?", (key,)).fetchone()
        if row is None:
            raise RegistryError(f"setting {key} missing")
        return str(row[0])

    @property
    def name(self) -> str:
        return self.setting("name")

    @property
    def zone(self) -> str:
        return self.setting("zone")

    def audit(self, actor: str, action: str, detail: dict[str, Any]) -> None:
        """Record an act. Called inside the act's own transaction (Site.act),
        the record and the act are kept together or not at all."""
        with self.tx():
            self.db.execute("INSERT INTO audit (at, actor, action, detail) VALUES (?, ?, ?, ?)",
                            (int(time.time()), actor or "unknown", action,
                             json.dumps(detail, sort_keys=True)))

    def audit_log(self) -> list[sqlite3.Row]:
        return list(self.db.execute("SELECT * FROM audit ORDER BY id"))

    # --- clients, providers, staff -------------------------------------------------
    def add_client(self, client_id: str, name: str, address: str | None) -> None:
        with self.tx():
            if self.db.execute("SELECT 1 FROM clients WHERE client_id = ?",
                               (client_id,)).fetchone():
                raise RegistryError(f"client {client_id} already exists")
            self.db.execute("INSERT INTO clients (client_id, name, address) VALUES (?, ?, ?)",
                            (client_id, name, address))

    def client(self, client_id: str) -> sqlite3.Row:
        row = self.db.execute("SELECT * FROM clients WHERE client_id = ?", (client_id,)).fetchone()
        if row is None:
            raise RegistryError(f"no client {client_id}")
        return row

    def add_staff(self, staff_id: str, name: str, provider: str | None) -> None:
        with self.tx():
            if self.db.execute("SELECT 1 FROM staff WHERE staff_id = ?", (staff_id,)).fetchone():
                raise RegistryError(f"staff member {staff_id} already exists")
            if provider:
                self.db.execute("INSERT OR IGNORE INTO providers (name) VALUES (?)", (provider,))
            self.db.execute("INSERT INTO staff (staff_id, name, provider, key_id) "
                            "VALUES (?, ?, ?, ?)",
                            (staff_id, name, provider, events.key_id_of(staff_id)))

    def staff(self, staff_id: str) -> sqlite3.Row:
        row = self.db.execute("SELECT * FROM staff WHERE staff_id = ?", (staff_id,)).fetchone()
        if row is None:
            raise RegistryError(f"no staff member {staff_id}")
        return row

    def staff_by_key_id(self) -> dict[bytes, sqlite3.Row]:
        return {bytes(r["key_id"]): r for r in self.db.execute("SELECT * FROM staff")}

    # --- locks ---------------------------------------------------------------------
    def add_lock(self, lock_id: str, door: str, suite: str, clients: list[str],
                 commissioned_at: int, first_seq: int | None = None, previous_end: int = 0,
                 previous_after: int = 1) -> int:
        """Register a commissioning: the lock row and a new epoch. Returns the epoch."""
        with self.tx():
            self.db.execute("DELETE FROM lock_clients WHERE lock_id = ?", (lock_id,))
            self.db.execute(
                "INSERT INTO locks (lock_id, door, suite, commissioned_at, status) "
                "VALUES (?, ?, ?, ?, 'active') ON CONFLICT(lock_id) DO UPDATE SET "
                "door = excluded.door, suite = excluded.suite, "
                "commissioned_at = excluded.commissioned_at, status = 'active'",
                (lock_id, door, suite, commissioned_at))
            for c in clients:
                self.db.execute("INSERT INTO lock_clients VALUES (?, ?)", (lock_id, c))
            return self.new_epoch(lock_id, commissioned_at, first_seq or 0, previous_end,
                                  previous_after)

    def lock(self, lock_id: str) -> LockRow:
        row = self.db.execute("SELECT * FROM locks WHERE lock_id = ?", (lock_id,)).fetchone()
        if row is None:
            raise RegistryError(f"no lock {lock_id} in this site")
        clients = [r[0] for r in self.db.execute(
            "SELECT client_id FROM lock_clients WHERE lock_id = ? ORDER BY client_id", (lock_id,))]
        return LockRow(clients=clients, **{k: row[k] for k in row.keys()})

    def locks_for_clients(self, clients: list[str]) -> list[LockRow]:
        ids = {r[0] for c in clients for r in self.db.execute(
            "SELECT lc.lock_id FROM lock_clients lc JOIN locks l USING (lock_id) "
            "WHERE lc.client_id = ? AND l.status = 'active'", (c,))}
        return [self.lock(i) for i in sorted(ids)]

    def locks_of_client(self, client_id: str) -> list[LockRow]:
        """Every lock serving the client now, decommissioned ones included (their
        history stays reportable)."""
        return [self.lock(r[0]) for r in self.db.execute(
            "SELECT lock_id FROM lock_clients WHERE client_id = ? ORDER BY lock_id",
            (client_id,))]

    def locks_of_unit(self, unit_id: str) -> tuple[str, list[str], list[LockRow]]:
        """A unit's name, its clients, and every lock serving one of them (as
        locks_of_client)."""
        row = self.db.execute("SELECT name FROM units WHERE unit_id = ?", (unit_id,)).fetchone()
        if row is None:
            raise RegistryError(f"no unit {unit_id}")
        ids = [r[0] for r in self.db.execute(
            "SELECT DISTINCT lc.lock_id FROM lock_clients lc JOIN clients c USING (client_id) "
            "WHERE c.unit = ? ORDER BY lc.lock_id", (unit_id,))]
        clients = [str(r[0]) for r in self.db.execute(
            "SELECT client_id FROM clients WHERE unit = ? ORDER BY client_id", (unit_id,))]
        return str(row["name"] or unit_id), clients, [self.lock(i) for i in ids]

    def alarm_keys_for(self, clients: list[str], staff_id: str | None, start: int,
                       end: int) -> list[sqlite3.Row]:
        """Alarm keys issued for these clients (or to this staff member) whose
        window overlaps [start, end), oldest first."""
        if staff_id is not None:
            return list(self.db.execute(
                "SELECT * FROM alarm_keys WHERE staff_id = ? AND end > ? AND start < ? "
                "ORDER BY start, alarm_id", (staff_id, start, end)))
        marks = ",".join("?" * len(clients))
        return list(self.db.execute(
            f"SELECT * FROM alarm_keys WHERE client_id IN ({marks}) AND end > ? AND start < ? "
            "ORDER BY start, alarm_id", (*clients, start, end))) if clients else []

    def locks_of_staff(self, staff_id: str) -> list[LockRow]:
        """Every lock the staff member was issued a key for or left a record at."""
        key_id = self.staff(staff_id)["key_id"]
        ids = {r[0] for r in self.db.execute(
            "SELECT DISTINCT lock_id FROM tokens WHERE staff_id = ? UNION "
            "SELECT DISTINCT lock_id FROM events WHERE key_id = ?", (staff_id, key_id))}
        known = {r[0] for r in self.db.execute("SELECT lock_id FROM locks")}
        return [self.lock(i) for i in sorted(ids & known)]

    def set_lock_status(self, lock_id: str, status: str) -> None:
        with self.tx():
            self.db.execute("UPDATE locks SET status = ? WHERE lock_id = ?", (status, lock_id))

    def record_health(self, lock_id: str, status: dict[int, Any], seen: int,
                      source: str = "serial") -> bool:
        """Fleet health as a key or the installer brought it home, seen at
        `seen` (POSIX). A status older than the one held is not taken (keys
        bring statuses home late and in any order): returns whether it was."""
        from tools import statusfile
        st = statusfile.status_fields(status, seen)
        with self.tx():
            cur = self.db.execute(
                "UPDATE locks SET last_seen = ?, revocation_version = ?, clock_offset = ?, "
                "battery = ?, battery_mv = ?, log_count = ?, log_capacity = ?, last_seq = ?, "
                "firmware = ?, clock_trusted = ?, battery_days = ?, status_source = ? "
                "WHERE lock_id = ? AND (? = 'serial' OR last_seen IS NULL OR last_seen < ?)",
                (seen, st.revocation_version, st.clock_offset, st.battery, st.battery_mv,
                 st.log_count, st.log_capacity, st.last_seq, st.firmware,
                 None if st.clock_trusted is None else int(st.clock_trusted),
                 st.battery_days, source, lock_id, source, seen))
            return cur.rowcount > 0

    # --- tokens and revocations ------------------------------------------------------
    def add_token(self, cti: bytes, staff_id: str, lock_id: str, start: int, end: int,
                  scope: str, alarm: bool, device: str | None = None, *,
                  alarm_id: str | None = None, booking_id: int | None = None) -> None:
        with self.tx():
            self.db.execute(
                "INSERT INTO tokens (cti, staff_id, lock_id, start, end, issued_at, scope, "
                "alarm, device, alarm_id, booking_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (cti, staff_id, lock_id, start, end, int(time.time()), scope, int(alarm),
                 device, alarm_id, booking_id))

    # --- staff devices -----------------------------------------------------------------
    def add_device(self, fingerprint: str, staff_id: str, public: bytes, at: int) -> None:
        self.db.execute("INSERT INTO devices (fingerprint, staff_id, public, enrolled_at, "
                        "state, changed_at) VALUES (?, ?, ?, ?, 'active', NULL)",
                        (fingerprint, staff_id, public, at))

    def devices(self) -> list[sqlite3.Row]:
        return list(self.db.execute("SELECT * FROM devices ORDER BY staff_id, enrolled_at"))

    def device(self, prefix: str) -> sqlite3.Row:
        """The device whose fingerprint starts with `prefix` (8 or more hex digits)."""
        p = prefix.strip().lower()
        if len(p) < 8 or any(c not in "0123456789abcdef" for c in p):
            raise RegistryError("a device fingerprint is 8 or more hex digits")
        rows = self.db.execute("SELECT * FROM devices WHERE substr(fingerprint, 1, ?) = ?",
                               (len(p), p)).fetchall()
        if not rows:
            raise RegistryError(f"no device {p} in this site")
        if len(rows) > 1:
            raise RegistryError(f"{p} names more than one device: give more of the fingerprint")
        return rows[0]  # type: ignore[no-any-return]

    def active_device(self, staff_id: str) -> sqlite3.Row | None:
        return self.db.execute("SELECT * FROM devices WHERE staff_id = ? AND state = 'active'",
                               (staff_id,)).fetchone()  # type: ignore[no-any-return]

    def set_device_state(self, fingerprint: str, state: str, at: int) -> None:
        self.db.execute("UPDATE devices SET state = ?, changed_at = ? WHERE fingerprint = ?",
                        (state, at, fingerprint))

    def device_tokens(self, fingerprint: str, now: int) -> list[sqlite3.Row]:
        """The device's tokens that have not expired yet."""
        return list(self.db.execute("SELECT * FROM tokens WHERE device = ? AND end > ?",
                                    (fingerprint, now)))

    def token(self, cti: bytes) -> sqlite3.Row:
        row = self.db.execute("SELECT * FROM tokens WHERE cti = ?", (cti,)).fetchone()
        if row is None:
            raise RegistryError("no such token in this site")
        return row

    def revoke(self, kind: str, value: str, until: int) -> int:
        """Add a revocation and bump the site's list version; returns the version.

        `until` is exclusive, as the lock reads it: a staff entry covers the
        tokens with iat < until (tools/site.py chooses it)."""
        with self.tx():
            self.db.execute("INSERT INTO revocations (kind, value, until, created_at) "
                            "VALUES (?, ?, ?, ?)", (kind, value, until, int(time.time())))
            version = int(self.setting("revocation_version")) + 1
            self.db.execute("UPDATE settings SET value = ? WHERE key = 'revocation_version'",
                            (str(version),))
        return version

    def revocation_state(self, now: int) -> tuple[int, dict[str, int], dict[bytes, int]]:
        """(version, staff cut-offs, token expiries) still in force at `now`.

        A staff entry is spent 24 h (+ skew) after its cut-off, a token entry
        once its token has expired: dropping them keeps the list small.
        """
        from protocol import token as tok
        staff: dict[str, int] = {}
        tokens: dict[bytes, int] = {}
        for r in self.db.execute("SELECT kind, value, until FROM revocations"):
            if r["kind"] == "staff" and r["until"] + tok.MAX_LIFETIME + tok.SKEW >= now:
                staff[r["value"]] = max(staff.get(r["value"], 0), r["until"])
            elif r["kind"] == "token" and r["until"] + tok.SKEW >= now:
                tokens[bytes.fromhex(r["value"])] = r["until"]
        return int(self.setting("revocation_version")), staff, tokens

    def newest_block_time(self) -> int:
        """When the newest revocation was made (every token it covers is older)."""
        row = self.db.execute("SELECT MAX(created_at) FROM revocations").fetchone()
        return int(row[0] or 0)

    # --- commissioning epochs -----------------------------------------------------------
    def new_epoch(self, lock_id: str, commissioned_at: int, first_seq: int,
                  previous_end: int, previous_after: int) -> int:
        """Record a commissioning (inside the caller's transaction): the lock's
        previous epoch, if any, ends as the lock reported."""
        row = self.db.execute("SELECT MAX(epoch) FROM commissionings WHERE lock_id = ?",
                              (lock_id,)).fetchone()
        old = row[0]
        if old is not None:
            prev = self.commissioning(lock_id, old)
            if prev["end_kind"] is None:
                kind = PREVIOUS_END.get(previous_end, "none")
                end: tuple[str, int | None]
                if kind == "factory-reset":
                    end = ("factory-reset", previous_after - 1)
                elif kind == "decommissioned":
                    # Decommissioned, but not by this registry's lockctl (the
                    # answer with its record was lost): what came after the
                    # last collected record up to the decommissioning is unknown.
                    end = ("decommissioned-elsewhere", previous_after - 1)
                else:
                    end = ("replaced", None)
                self.db.execute("UPDATE commissionings SET end_kind = ?, end_seq = ?, "
                                "ended_at = ? WHERE lock_id = ? AND epoch = ?",
                                (end[0], end[1], commissioned_at, lock_id, old))
        epoch = (old or 0) + 1
        self.db.execute(
            "INSERT INTO commissionings (lock_id, epoch, commissioned_at, first_seq, "
            "previous_end, previous_after) VALUES (?, ?, ?, ?, ?, ?)",
            (lock_id, epoch, commissioned_at, first_seq,
             PREVIOUS_END.get(previous_end, "none"), previous_after))
        self.db.execute("UPDATE locks SET epoch = ? WHERE lock_id = ?", (epoch, lock_id))
        return epoch

    def end_epoch(self, lock_id: str, epoch: int, kind: str, seq: int | None, at: int) -> None:
        self.db.execute("UPDATE commissionings SET end_kind = ?, end_seq = ?, ended_at = ? "
                        "WHERE lock_id = ? AND epoch = ?", (kind, seq, at, lock_id, epoch))

    def commissioning(self, lock_id: str, epoch: int) -> sqlite3.Row:
        row = self.db.execute("SELECT * FROM commissionings WHERE lock_id = ? AND epoch = ?",
                              (lock_id, epoch)).fetchone()
        if row is None:
            raise RegistryError(f"no commissioning {epoch} of lock {lock_id}")
        return row

    def commissionings(self, lock_id: str) -> list[sqlite3.Row]:
        return list(self.db.execute(
            "SELECT * FROM commissionings WHERE lock_id = ? ORDER BY epoch", (lock_id,)))

    def note_overwritten(self, lock_id: str, epoch: int, first: int, last: int) -> None:
        """A pull asked from `first` and the lock's oldest record was last + 1."""
        self.db.execute("INSERT OR IGNORE INTO log_gaps VALUES (?, ?, ?, ?, ?)",
                        (lock_id, epoch, first, last, int(time.time())))

    def overwritten(self, lock_id: str, epoch: int) -> list[tuple[int, int]]:
        return [(r[0], r[1]) for r in self.db.execute(
            "SELECT first, last FROM log_gaps WHERE lock_id = ? AND epoch = ? ORDER BY first",
            (lock_id, epoch))]

    # --- events ------------------------------------------------------------------------
    def store_events(self, lock_id: str, records: list[bytes], epoch: int | None = None) -> int:
        """Keep pulled records (raw, so the MAC chain can be checked later), in
        the lock's current epoch unless told."""
        now = int(time.time())
        added = 0
        with self.tx():
            if epoch is None:
                epoch = self.lock(lock_id).epoch
            for rec in records:
                ev = events.decode(rec)
                cur = self.db.execute(
                    "INSERT OR IGNORE INTO events VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (lock_id, epoch, ev.seq, ev.time, ev.code, ev.flags, ev.detail, ev.key_id,
                     rec, now))
                added += cur.rowcount
        return added

    def events(self, lock_id: str, epoch: int | None = None) -> list[sqlite3.Row]:
        """The lock's records, by epoch and seq (one epoch if given)."""
        if epoch is None:
            return list(self.db.execute(
                "SELECT * FROM events WHERE lock_id = ? ORDER BY epoch, seq", (lock_id,)))
        return list(self.db.execute(
            "SELECT * FROM events WHERE lock_id = ? AND epoch = ? ORDER BY seq",
            (lock_id, epoch)))

    def last_seq(self, lock_id: str, epoch: int | None = None) -> int:
        """The newest seq held of the epoch (the current one unless told); if
        none, the seq before where the epoch starts (its commissioning, or the
        retention anchor)."""
        if epoch is None:
            epoch = self.lock(lock_id).epoch
        row = self.db.execute("SELECT MAX(seq) FROM events WHERE lock_id = ? AND epoch = ?",
                              (lock_id, epoch)).fetchone()
        if row[0] is not None:
            return int(row[0])
        com = self.db.execute("SELECT first_seq, pruned_seq FROM commissionings "
                              "WHERE lock_id = ? AND epoch = ?", (lock_id, epoch)).fetchone()
        if com is None:
            return 0
        if com["pruned_seq"]:
            return int(com["pruned_seq"])
        return int(com["first_seq"]) - 1 if com["first_seq"] else 0

    def prune_events(self, now: int) -> int:
        """Visit logs are personal data: drop what is older than the retention."""
        from protocol import clock
        days = int(self.setting("retention_days"))
        oldest = clock.from_unix(now - days * 86400)
        # An event logged while the lock's clock was untrusted may carry a
        # time far in the past; age is judged by the newest event with a
        # trusted time that is past the retention, and everything before it.
        # The newest deleted record stays as the anchor (its seq, MAC and
        # time), so what is left still verifies from it: deleted under the
        # retention is not a gap.
        with self.tx():
            row = self.db.execute(
                "SELECT lock_id, epoch, MAX(seq) FROM events WHERE time < ? AND (flags & ?) = 0 "
                "GROUP BY lock_id, epoch", (oldest, events.FLAG_CLOCK_UNTRUSTED)).fetchall()
            removed = 0
            for lock_id, epoch, seq in row:
                anchor = self.db.execute(
                    "SELECT record, time FROM events WHERE lock_id = ? AND epoch = ? AND seq = ?",
                    (lock_id, epoch, seq)).fetchone()
                self.db.execute(
                    "UPDATE commissionings SET pruned_seq = ?, pruned_mac = ?, pruned_time = ? "
                    "WHERE lock_id = ? AND epoch = ?",
                    (seq, bytes(anchor["record"])[20:28], anchor["time"], lock_id, epoch))
                cur = self.db.execute(
                    "DELETE FROM events WHERE lock_id = ? AND epoch = ? AND seq <= ?",
                    (lock_id, epoch, seq))
                removed += cur.rowcount
        return removed

    # --- receipts (migration 5) ----------------------------------------------------------
    def add_receipt(self, kind: str, person: str, person_kind: str, by: str, at: int,
                    items: list[tuple[str, str, str]], actor: str, lock_id: str | None = None,
                    note: str | None = None) -> int:
        """A receipt and its items, (direction 'to' | 'from', kind, label) each;
        returns its number."""
        with self.tx():
            cur = self.db.execute(
                "INSERT INTO receipts (kind, person, person_kind, by_name, at, lock_id, note, "
                "actor) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (kind, person, person_kind, by, at, lock_id, note, actor))
            no = int(cur.lastrowid or 0)
            for pos, (direction, item_kind, label) in enumerate(items, start=1):
                self.db.execute("INSERT INTO receipt_items VALUES (?, ?, ?, ?, ?)",
                                (no, pos, direction, item_kind, label))
        return no

    def receipt(self, no: int) -> sqlite3.Row:
        row = self.db.execute("SELECT * FROM receipts WHERE receipt_no = ?", (no,)).fetchone()
        if row is None:
            raise RegistryError(f"no receipt R-{no:06d} in this site")
        return row  # type: ignore[no-any-return]

    def receipts(self, person: str | None = None) -> list[sqlite3.Row]:
        if person is None:
            return list(self.db.execute("SELECT * FROM receipts ORDER BY receipt_no"))
        return list(self.db.execute("SELECT * FROM receipts WHERE person = ? ORDER BY receipt_no",
                                    (person,)))

    def receipt_items(self, no: int) -> list[sqlite3.Row]:
        return list(self.db.execute("SELECT * FROM receipt_items WHERE receipt_no = ? "
                                    "ORDER BY pos", (no,)))

    def held_items(self, person: str, upto: int | None = None) -> list[tuple[str, str, int]]:
        """What the person still holds (after receipt number `upto`, if given):
        (kind, label, count) of the items handed to them and not given back."""
        rows = self.db.execute(
            "SELECT i.item_kind, i.label, SUM(CASE i.direction WHEN 'to' THEN 1 ELSE -1 END) "
            "FROM receipt_items i JOIN receipts r USING (receipt_no) WHERE r.person = ? "
            "AND r.receipt_no <= ? GROUP BY i.item_kind, i.label "
            "ORDER BY MIN(r.receipt_no), i.item_kind, i.label",
            (person, (1 << 62) if upto is None else upto))
        return [(r[0], r[1], int(r[2])) for r in rows if r[2] > 0]

    # --- properties and consent ------------------------------------------------------------
    def add_property(self, property_id: str, address: str, owner: str, at: int) -> None:
        with self.tx():
            if self.db.execute("SELECT 1 FROM properties WHERE property_id = ?",
                               (property_id,)).fetchone():
                raise RegistryError(f"property {property_id} already exists")
            self.db.execute("INSERT INTO properties VALUES (?, ?, ?, ?)",
                            (property_id, address, owner, at))

    def property(self, property_id: str) -> sqlite3.Row:
        row = self.db.execute("SELECT * FROM properties WHERE property_id = ?",
                              (property_id,)).fetchone()
        if row is None:
            raise RegistryError(f"no property {property_id} (lockctl property add)")
        return row  # type: ignore[no-any-return]

    def add_consent(self, property_id: str, given_by: str, given_on: str, at: int,
                    actor: str) -> int:
        with self.tx():
            cur = self.db.execute(
                "INSERT INTO consents (property_id, given_by, given_on, recorded_at, actor) "
                "VALUES (?, ?, ?, ?, ?)", (property_id, given_by, given_on, at, actor))
        return int(cur.lastrowid or 0)

    def consents(self, property_id: str) -> list[sqlite3.Row]:
        return list(self.db.execute("SELECT * FROM consents WHERE property_id = ? "
                                    "ORDER BY given_on, consent_no", (property_id,)))

    def set_client_fields(self, client_id: str, **fields: Any) -> None:
        """Set a client's property_id / informed_on (the columns of migration 5)."""
        allowed = {"property_id", "informed_on"}
        if not fields or set(fields) - allowed:
            raise RegistryError(f"set_client_fields takes {', '.join(sorted(allowed))}")
        with self.tx():
            cols = sorted(fields)
            self.db.execute(f"UPDATE clients SET {', '.join(c + ' = ?' for c in cols)} "
                            "WHERE client_id = ?", (*[fields[c] for c in cols], client_id))

    # --- retired locks and incidents --------------------------------------------------------
    def retirement(self, lock_id: str) -> sqlite3.Row | None:
        return self.db.execute("SELECT * FROM retired_locks WHERE lock_id = ?",  # type: ignore[no-any-return]
                               (lock_id,)).fetchone()

    def add_retirement(self, lock_id: str, reason: str, at: int, actor: str) -> None:
        self.db.execute("INSERT INTO retired_locks VALUES (?, ?, ?, ?)",
                        (lock_id, reason, at, actor))

    def lock_tokens(self, lock_id: str, now: int) -> list[sqlite3.Row]:
        """The lock's tokens that have not expired yet."""
        return list(self.db.execute("SELECT * FROM tokens WHERE lock_id = ? AND end > ?",
                                    (lock_id, now)))

    def add_incident(self, lock_id: str, at: int, what: str, window_s: int, recorded_at: int,
                     actor: str) -> int:
        with self.tx():
            cur = self.db.execute(
                "INSERT INTO incidents (lock_id, at, what, window_s, recorded_at, actor) "
                "VALUES (?, ?, ?, ?, ?, ?)", (lock_id, at, what, window_s, recorded_at, actor))
        return int(cur.lastrowid or 0)

    def incidents(self, lock_id: str | None = None) -> list[sqlite3.Row]:
        if lock_id is None:
            return list(self.db.execute("SELECT * FROM incidents ORDER BY at, incident_no"))
        return list(self.db.execute("SELECT * FROM incidents WHERE lock_id = ? "
                                    "ORDER BY at, incident_no", (lock_id,)))

    def last_pull(self, lock_id: str) -> int | None:
        """When the lock's log was last collected (POSIX), from the audit record."""
        row = self.db.execute("SELECT MAX(at) FROM audit WHERE action = 'log pull' AND "
                              "json_extract(detail, '$.lock') = ?", (lock_id,)).fetchone()
        return None if row[0] is None else int(row[0])

    def events_between(self, lock_id: str, first: int, last: int) -> list[sqlite3.Row]:
        """The lock's records whose lock time (seconds since 2020) is in [first, last]."""
        return list(self.db.execute(
            "SELECT * FROM events WHERE lock_id = ? AND time BETWEEN ? AND ? "
            "ORDER BY epoch, seq", (lock_id, first, last)))


def _remove(paths: list[Path]) -> None:
    for path in reversed(paths):
        try:
            if path.is_dir():
                path.rmdir()  # only if empty: a directory that held more stays
            else:
                path.unlink()
        except OSError:
            pass
