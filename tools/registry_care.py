"""The registry's care records (a mixin of tools/registry.Registry): receipts
and what each person holds, properties and their owners' consent, retired
locks and incidents. Data access only; the acts are tools/site_care.py."""

from __future__ import annotations

import sqlite3
from contextlib import AbstractContextManager
from typing import Any, Callable

from tools.registry_errors import RegistryError


class CareRecords:
    db: sqlite3.Connection
    tx: Callable[[], AbstractContextManager[sqlite3.Connection]]

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
