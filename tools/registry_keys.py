"""The registry's keys (a mixin of tools/registry.Registry): issued tokens
and alarm keys, staff devices, and the revocation list (staff and token
entries, its version). Data access only; the acts are tools/site.py and
site_keys.py."""

from __future__ import annotations

import sqlite3
import time
from contextlib import AbstractContextManager
from typing import Callable, Iterable

from tools.registry_errors import RegistryError


class KeyRecords:
    # What it uses of the Registry it is mixed into.
    db: sqlite3.Connection
    tx: Callable[[], AbstractContextManager[sqlite3.Connection]]
    setting: Callable[[str], str]

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

    def unblocked(self, tokens: Iterable[sqlite3.Row], now: int) -> list[sqlite3.Row]:
        """Of these token rows, those no block covers yet: neither a token
        entry nor their staff member's block (a key issued before it)."""
        _, staff_cut, revoked = self.revocation_state(now)
        return [t for t in tokens if bytes(t["cti"]) not in revoked
                and int(t["issued_at"]) >= staff_cut.get(t["staff_id"], 0)]

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
