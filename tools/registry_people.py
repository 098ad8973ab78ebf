"""The registry's people (a mixin of tools/registry.Registry): clients and
staff members, and the staff roles. Data access only; the acts are
tools/site_people.py and site_staff.py."""

from __future__ import annotations

import sqlite3
from contextlib import AbstractContextManager
from typing import Callable

from protocol import events
from tools.registry_errors import RegistryError

ROLES = ("home-care", "nurse", "rehab", "night-patrol", "installer")


class PeopleRecords:
    # What it uses of the Registry it is mixed into.
    db: sqlite3.Connection
    tx: Callable[[], AbstractContextManager[sqlite3.Connection]]

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
