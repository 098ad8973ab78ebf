"""The service layer's acts on what a lock answered (part of tools/site.py's
Site, kept here to keep each module readable): its commissioning (which
blocks the keys of its earlier identity), log pulls, syncs, its
decommissioning, and the statuses the installer or a staff member's key
brings home. Every act is one transaction with its audit record.
"""

from __future__ import annotations

import time
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from protocol import token as tok
from tools import access
from tools.registry import Registry, RegistryError
from tools.site_keys import Problem
from tools.site_people import InvalidInput


@dataclass
class Commissioned:
    epoch: int
    earlier_blocked: int  # keys of an earlier commissioning blocked by this one


@dataclass
class IngestResult:
    taken: list[int] = field(default_factory=list)  # line numbers recorded
    older: list[int] = field(default_factory=list)  # authentic, but not newer than held
    refused: list[tuple[int, str]] = field(default_factory=list)  # (line, why)
    locks: set[str] = field(default_factory=set)


class LockActs:
    registry: Registry

    if TYPE_CHECKING:
        def act(self, actor: str, action: str, detail: dict[str, Any]
                ) -> AbstractContextManager[dict[str, Any]]: ...

        def consent_problem(self, door: str, clients: list[str],
                            lock_id: str | None = None) -> str | None: ...

    # --- what the installer's tool and the keys bring back -----------------------------
    # The lock is talked to by lockctl (transport); what it answered changes
    # the registry here, each as one act with its audit record.
    def commission_problem(self, door: str, clients: list[str],
                           provider: str | None = None,
                           lock_id: str | None = None) -> Problem | None:
        """Why a door of this kind cannot be commissioned for these clients
        (under this lock id, if given)."""
        problem = access.door_clients_problem(door, clients)
        if problem is not None:
            return Problem(problem, usage=True)
        try:
            care = self.consent_problem(door, clients, lock_id)
        except RegistryError as exc:
            return Problem(str(exc))
        if care is not None:
            return Problem(care)
        if (door == "key-box") != (provider is not None):
            return Problem("a key box belongs to a provider: give --provider (and only for "
                           "--door key-box)", usage=True)
        try:
            for c in clients:
                if not self.registry.client(c)["active"]:
                    return Problem(f"client {c} is removed")
            if provider is not None:
                row = access.provider_row(self.registry, provider)
                if row is None or not row["active"]:
                    return Problem(f"no active provider {provider!r} (lockctl provider add)")
                if provider not in access.chosen_providers(self.registry, clients[0]):
                    return Problem(f"{clients[0]} has not chosen {provider}: a key box is for "
                                   "the staff of a provider the client chose")
        except RegistryError as exc:
            return Problem(str(exc))
        return None

    def record_commissioning(self, actor: str, lock_id: str, door: str, suite: str,
                             clients: list[str], now: int, answer: dict[int, Any],
                             provider: str | None = None) -> Commissioned:
        """The lock took its identity: its registry row and a new epoch. The
        keys issued for this lock id before (its previous commissioning: the
        token key derives from the lock id, and a new identity starts with an
        empty block list) are blocked in the same act; the caller sends the
        block to the lock before it leaves (`earlier_blocked` > 0)."""
        from protocol import messages as msg
        problem = self.commission_problem(door, clients, provider, lock_id)
        if problem is not None:
            raise InvalidInput(problem)
        with self.act(actor, "commission", {"lock": lock_id, "clients": clients, "door": door,
                                             "suite": suite, "provider": provider}) as detail:
            blocked = self._block_earlier_keys(lock_id, now)
            if blocked:
                detail["earlier_keys_blocked"] = blocked
            epoch = self.registry.add_lock(
                lock_id, door, suite, clients, now,
                first_seq=answer.get(msg.COMMISSIONED_SEQ),
                previous_end=int(answer.get(msg.COMMISSIONED_ENDED) or 0),
                previous_after=int(answer.get(msg.COMMISSIONED_AFTER) or 1))
            self.registry.record_health(lock_id, answer.get(msg.COMMISSIONED_STATUS) or {}, now)
            self.registry.db.execute("UPDATE locks SET provider = ? WHERE lock_id = ?",
                                     (provider, lock_id))
            detail["epoch"] = epoch
        return Commissioned(epoch, len(blocked))

    def _block_earlier_keys(self, lock_id: str, now: int) -> list[str]:
        """Token entries for this lock's keys that are still unexpired and not
        yet blocked (by a token entry or their staff member's block)."""
        reg = self.registry
        blocked = []
        for t in reg.unblocked(reg.lock_tokens(lock_id, now - tok.SKEW), now):
            reg.revoke("token", bytes(t["cti"]).hex(), int(t["end"]))
            blocked.append(bytes(t["cti"]).hex())
        return blocked

    def record_pull(self, actor: str, lock_id: str, epoch: int, start: int,
                    records: list[bytes], status: dict[int, Any], now: int) -> tuple[int, int]:
        """Pulled records kept; a start found already overwritten noted; the
        lock's health; the retention applied. Returns (new records, pruned)."""
        reg = self.registry
        with self.act(actor, "log pull", {"lock": lock_id, "records": len(records)}) as detail:
            if records:
                first = int.from_bytes(records[0][0:4], "big")
                if first > start:  # overwritten in the lock's ring before collected
                    reg.note_overwritten(lock_id, epoch, start, first - 1)
            added = reg.store_events(lock_id, records, epoch)
            if status:
                reg.record_health(lock_id, status, now)
            pruned = reg.prune_events(now)
            detail.update(new=added, pruned=pruned)
        return added, pruned

    def record_sync(self, actor: str, lock_id: str, status: dict[int, Any], now: int,
                    forced: bool) -> None:
        with self.act(actor, "lock sync", {"lock": lock_id, "forced": forced}):
            self.registry.record_health(lock_id, status, now)

    def record_decommission(self, actor: str, lock_id: str, epoch: int, seq: int,
                            last: list[bytes], status: dict[int, Any], now: int) -> None:
        """The lock ended its identity: its last record kept, the epoch ended."""
        reg = self.registry
        with self.act(actor, "lock decommission", {"lock": lock_id, "epoch": epoch}):
            reg.store_events(lock_id, last, epoch)
            reg.end_epoch(lock_id, epoch, "decommissioned", seq, now)
            # A retired lock found again may be decommissioned; it stays retired.
            reg.set_lock_status(lock_id, "retired" if reg.retirement(lock_id) else
                                "decommissioned")
            if status:
                reg.record_health(lock_id, status, now)

    # --- fleet health -----------------------------------------------------------------
    def record_info(self, actor: str, lock_id: str, status: dict[int, Any], now: int) -> None:
        """`lock info` over serial: the lock's status, as the installer saw it."""
        with self.act(actor, "lock info", {"lock": lock_id}):
            self.registry.record_health(lock_id, status, now)

    def ingest_statuses(self, actor: str, source: str, lines: list[str],
                        now: int | None = None) -> "IngestResult":
        """Statuses a staff device brought home (`fleet ingest`): each line's
        answer is taken only if its MAC verifies under the key this site
        issued for that lock; a status older than the one held is not taken
        (so the same file ingested twice changes nothing more). The refused
        lines are returned by number and nothing of them is kept; the genuine
        ones are recorded in one act (none at all if no line is genuine)."""
        from tools import statusfile
        now = int(time.time()) if now is None else now
        reg = self.registry
        result = IngestResult()
        secret = reg.site_secret()
        known = {r[0] for r in reg.db.execute("SELECT lock_id FROM locks")}
        checked: list[tuple[int, Any]] = []
        for number, text in enumerate(lines, start=1):
            if not text.strip():
                continue
            try:
                line = statusfile.parse_line(text)
                if line.lock_id not in known:
                    raise statusfile.IngestError(f"lock {line.lock_id} is not in this site")
                row = reg.db.execute("SELECT lock_id, issued_at FROM tokens WHERE cti = ?",
                                     (line.cti,)).fetchone()
                checked.append((number, statusfile.check_answer(
                    line, secret, None if row is None else row["lock_id"],
                    None if row is None else int(row["issued_at"]), now)))
            except statusfile.IngestError as exc:
                result.refused.append((number, str(exc)))
        if not checked:
            return result
        # Oldest first, so that of one file's statuses of a lock the newest stays.
        checked.sort(key=lambda x: x[1].seen)
        with self.act(actor, "fleet ingest", {"file": source}) as detail:
            for number, answer in checked:
                if reg.record_health(answer.lock_id, answer.status, answer.seen, "key"):
                    result.taken.append(number)
                else:
                    result.older.append(number)
                result.locks.add(answer.lock_id)
            detail.update(taken=len(result.taken), older=len(result.older),
                          refused=len(result.refused), locks=sorted(result.locks))
        result.taken.sort()
        result.older.sort()
        return result
