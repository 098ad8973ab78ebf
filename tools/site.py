"""The service layer: every administrative act on a site, each with its audit
record, in one transaction.

lockctl parses the command line and prints; this module does the acts (as
mpremote splits main.py from commands.py), so an HTTP API can later call the
same methods. tools/registry.py is the data access underneath.

An act is `with self.act(actor, action, detail): ...`: the act's changes and
the audit record of who did it are committed together or not at all, and an
act that raises changes nothing. Acts nest (Registry.tx() is savepoints), so
a larger act may be made of smaller ones and still be all or nothing.
"""

from __future__ import annotations

import time
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from protocol import token as tok
from tools import access, issuer
from tools import device as device_mod
from tools.registry import (
    DEFAULT_RETENTION_DAYS,
    DEFAULT_ZONE,
    Registry,
    RegistryError,
)
from tools.site_care import (  # noqa: F401 - re-exported for lockctl
    CONSENT_DOORS,
    RETIRE_REASONS,
    CareActs,
    parse_item,
    parse_receipt_id,
    receipt_id,
)
from tools.site_keys import AlarmKey, KeyActs, Problem, ShiftPlan
from tools.site_people import ID_RE, InvalidInput, PeopleActs

__all__ = ["ID_RE", "AlarmKey", "InvalidInput", "Problem", "ShiftPlan", "Site",
           "revocation_blob"]


@dataclass(frozen=True)
class Revocation:
    version: int  # the site's block-list version after this block
    until: int  # POSIX; a staff block covers tokens with iat < until, a token one its expiry


# What a revocation update may take of an OPEN frame (MAX_PAYLOAD 1024 bytes),
# leaving room for the token, the proof and a time update.
MAX_CARRIED_UPDATE = 560


def revocation_blob(reg: Registry, lock_id: str, now: int) -> bytes | None:
    """The lock's current revocation update. Entries travel per lock: the lock
    gets only those for staff or tokens that held a token for it within the
    last 24 hours (a token expires within 24 h of its issue, so no other entry
    can cover a key the lock could still accept). A list too long to travel
    with a key becomes a site-wide cut-off instead (never fail open): every key
    issued before the newest block is refused, so staff need keys issued after
    it. The cut-off stays put as later keys are issued; it moves only with a
    new block."""
    version, staff, tokens = reg.revocation_state(now)
    if version == 0:
        return None
    held = reg.db.execute("SELECT cti, staff_id FROM tokens WHERE lock_id = ? AND end >= ?",
                          (lock_id, now - tok.MAX_LIFETIME - tok.SKEW)).fetchall()
    holders = {r["staff_id"] for r in held}
    ctis = {bytes(r["cti"]) for r in held}
    staff = {k: v for k, v in staff.items() if k in holders}
    tokens = {k: v for k, v in tokens.items() if k in ctis}
    secret = reg.site_secret()
    blob = issuer.revocation_update(secret, lock_id, version, now, 0, staff, tokens)
    if len(blob) > MAX_CARRIED_UPDATE:
        cutoff = max([*staff.values(), reg.newest_block_time()]) + 1
        blob = issuer.revocation_update(secret, lock_id, version, now, cutoff, {}, {})
    return blob


def _check_id(value: str, what: str) -> str:
    if not ID_RE.match(value):
        raise InvalidInput(f"invalid {what} {value!r}: use 1-64 letters, digits, '.', '_' "
                           "or '-'")
    return value


class Site(PeopleActs, KeyActs, CareActs):
    def __init__(self, registry: Registry) -> None:
        self.registry = registry

    def __repr__(self) -> str:
        return f"<Site {self.registry.dir}>"

    @classmethod
    def open(cls, site_dir: Path) -> "Site":
        return cls(Registry(site_dir))

    def close(self) -> None:
        self.registry.close()

    # --- transactions and the audit record -----------------------------------------
    def tx(self) -> AbstractContextManager[Any]:
        """All or nothing, nestable (see Registry.tx)."""
        return self.registry.tx()

    @contextmanager
    def act(self, actor: str, action: str, detail: dict[str, Any]
            ) -> Iterator[dict[str, Any]]:
        """One administrative act and its audit record in one transaction.
        The body may add to `detail` (what it learnt doing the act, such as a
        version number) before the record is written."""
        with self.registry.tx():
            yield detail
            self.registry.audit(actor, action, detail)

    # --- the acts ----------------------------------------------------------------------
    @classmethod
    def init(cls, site_dir: Path, name: str, zone: str = DEFAULT_ZONE,
             retention_days: int = DEFAULT_RETENTION_DAYS, *, actor: str) -> "Site":
        """A new site: registry, secrets and settings; a failure leaves no site."""
        try:
            ZoneInfo(zone)
        except (ZoneInfoNotFoundError, ValueError):
            raise InvalidInput(f"unknown time zone {zone!r}") from None
        if retention_days < 1:
            raise InvalidInput("the retention must be at least 1 day")
        if not name.strip() or len(name) > tok.MAX_TEXT:
            # The name is the issuer (iss) every token and every lock of the
            # site carries: the lock takes at most 64 characters.
            raise InvalidInput(f"the site name must be 1 to {tok.MAX_TEXT} characters "
                               "(it is the issuer name every lock checks)")
        reg = Registry.create(Path(site_dir))
        site = cls(reg)
        try:
            with site.act(actor, "site init", {"name": name, "zone": zone,
                                               "retention_days": retention_days}):
                reg.put_settings({"name": name, "zone": zone,
                                  "retention_days": str(retention_days),
                                  "revocation_version": "0"})
        except BaseException:
            reg.discard()
            raise
        return site

    def revoke_staff(self, actor: str, staff_id: str) -> Revocation:
        """Block every key issued to a staff member up to now ("spärr").

        The lock refuses a token when iat < T, and iat is whole seconds. With
        T = now a key issued earlier in this same second would escape the
        block, so T = now + 1: every key issued up to and including this
        second is covered. A key issued later in this second is covered too,
        and refused for its whole life: of the two ways to be wrong, refusing
        a fresh key is the safe one. So that the next key issued after this
        returns is valid, it returns only once the clock has passed T.
        """
        until = int(time.time()) + 1
        with self.act(actor, "revoke", {"staff": staff_id, "until": until}) as detail:
            self.registry.staff(staff_id)
            detail["version"] = self.registry.revoke("staff", staff_id, until)
        # Outside the transaction: the wait holds no lock on the registry.
        wait = until - time.time()
        if wait > 0:
            time.sleep(wait)
        return Revocation(detail["version"], until)

    def revoke_token(self, actor: str, cti: bytes) -> Revocation:
        """Block one token: the lock refuses its id until the token expires."""
        with self.act(actor, "revoke", {"token": cti.hex()}) as detail:
            row = self.registry.token(cti)
            until = int(row["end"])
            detail["version"] = self.registry.revoke("token", cti.hex(), until)
        return Revocation(detail["version"], until)

    # --- staff devices -------------------------------------------------------------
    def enrol_device(self, actor: str, staff_id: str, public: bytes, fingerprint: str,
                     replace: bool = False) -> str:
        """Register a staff member's device, its fingerprint read from the
        device's own screen in person (refused on a mismatch). One active
        device per staff member: `replace` revokes the old one (and blocks its
        outstanding tokens)."""
        actual = device_mod.fingerprint(public)
        given = fingerprint.strip().lower()
        if len(given) < device_mod.MIN_PREFIX or not actual.startswith(given):
            raise InvalidInput("the fingerprint does not match this public key: check it on "
                               "the device's screen (lockctl device init prints it)")
        now = int(time.time())
        with self.act(actor, "device enrol", {"staff": staff_id, "device": actual}) as detail:
            reg = self.registry
            reg.staff(staff_id)
            if reg.db.execute("SELECT 1 FROM devices WHERE fingerprint = ?",
                              (actual,)).fetchone():
                raise InvalidInput(f"device {actual} is already enrolled")
            old = reg.active_device(staff_id)
            if old is not None:
                if not replace:
                    raise InvalidInput(f"{staff_id} already has an active device "
                                       f"({old['fingerprint'][:16]}): use --replace to revoke it")
                detail["replaced"] = old["fingerprint"]
                self._revoke_device(old["fingerprint"], now)
            reg.add_device(actual, staff_id, public, now)
            # The receipt the staff member signs for the digital key.
            detail["receipt"] = self.write_receipt(
                actor, "device enrol", staff_id, [("to", "device", actual)], actor or "unknown",
                now, note=(f"Device {actual} enrolled as the digital key of {staff_id}"
                           + (f"; it replaces device {detail['replaced']}, revoked."
                              if "replaced" in detail else ".")))
        return actual

    def revoke_device(self, actor: str, prefix: str) -> tuple[str, Revocation | None]:
        """Stop issuing to a device at once and block its outstanding tokens."""
        now = int(time.time())
        with self.act(actor, "revoke", {}) as detail:
            row = self.registry.device(prefix)
            if row["state"] == "revoked":
                raise InvalidInput(f"device {row['fingerprint']} is already revoked")
            detail["device"] = row["fingerprint"]
            rev = self._revoke_device(row["fingerprint"], now)
            detail["version"] = rev.version if rev else None
        return row["fingerprint"], rev

    def _revoke_device(self, fingerprint: str, now: int) -> Revocation | None:
        # The lock knows staff and token entries: a device's revocation is the
        # list of its token ids (each entry lives until its token expires).
        reg = self.registry
        reg.set_device_state(fingerprint, "revoked", now)
        version = None
        for t in reg.device_tokens(fingerprint, now):
            version = reg.revoke("token", bytes(t["cti"]).hex(), int(t["end"]))
        return None if version is None else Revocation(version, now)

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

    def set_settings(self, actor: str, retention_days: int | None = None,
                     zone: str | None = None) -> dict[str, Any]:
        """Change what the site does (an audited act): how long visit logs are
        kept (applied at the next log pull) and the time zone people see.
        Returns {setting: [old, new]} for what changed; nothing given or
        nothing different changes nothing and writes no record."""
        reg = self.registry
        wanted: dict[str, str] = {}
        if retention_days is not None:
            if not isinstance(retention_days, int) or not 1 <= retention_days <= 36500:
                raise InvalidInput("the retention must be 1 to 36500 days")
            wanted["retention_days"] = str(retention_days)
        if zone is not None:
            try:
                ZoneInfo(zone)
            except Exception:  # noqa: BLE001 - ValueError, OSError for odd names
                raise InvalidInput(f"unknown time zone {zone!r}") from None
            wanted["zone"] = zone
        if not wanted:
            raise InvalidInput("nothing to change: give --retention-days or --zone")
        changed = {k: [reg.setting(k), v] for k, v in wanted.items() if reg.setting(k) != v}
        if not changed:
            return {}
        with self.act(actor, "site set", {k: {"from": old, "to": new}
                                          for k, (old, new) in changed.items()}):
            for k, (_, new) in changed.items():
                reg.change_setting(k, new)
        return changed

    def record_report(self, actor: str, detail: dict[str, Any]) -> None:
        """A log report was made: who read whose visits is itself recorded."""
        with self.act(actor, "log report", detail):
            pass

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
