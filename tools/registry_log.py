"""The registry's record of each lock's log (a mixin of tools/registry.Registry):
commissioning epochs, the events collected from them, what was found
overwritten, and the retention. Data access only, inside the caller's
transaction unless it opens its own."""

from __future__ import annotations

import sqlite3
import time
from contextlib import AbstractContextManager
from typing import Any, Callable

from protocol import events
from tools.registry_errors import RegistryError

# How a lock reports its previous identity's end when commissioned (firmware.lock END_*).
PREVIOUS_END = {0: "none", 1: "decommissioned", 2: "factory-reset"}


class LogRecords:
    # What it uses of the Registry it is mixed into.
    db: sqlite3.Connection
    tx: Callable[[], AbstractContextManager[sqlite3.Connection]]
    lock: Callable[[str], Any]
    setting: Callable[[str], str]

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
