"""The registry's locks (a mixin of tools/registry.Registry): each lock's row
and the clients it serves, the locks of a client, a unit or a staff member,
and the fleet health its statuses bring home. Data access only; the acts
are tools/site_locks.py and site_care.py (a lock's removal, retirement)."""

from __future__ import annotations

import sqlite3
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Callable

from tools.registry_errors import RegistryError


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


class LockRecords:
    # What it uses of the Registry it is mixed into.
    db: sqlite3.Connection
    tx: Callable[[], AbstractContextManager[sqlite3.Connection]]
    new_epoch: Callable[[str, int, int, int, int], int]
    staff: Callable[[str], sqlite3.Row]

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
