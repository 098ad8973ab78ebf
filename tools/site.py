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

import re
import time
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from protocol import token as tok
from tools import device as device_mod
from tools import issuer
from tools.registry import DEFAULT_RETENTION_DAYS, DEFAULT_ZONE, Registry, RegistryError

# Ids travel in tokens and file names; lockctl checks its arguments with this
# rule too. \Z, not $: "$" would let a newline end an id.
ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}\Z")


class InvalidInput(RegistryError):
    """Input the act refuses before changing anything."""


@dataclass(frozen=True)
class Revocation:
    version: int  # the site's block-list version after this block
    until: int  # POSIX; a staff block covers tokens with iat < until, a token one its expiry


# What a revocation update may take of an OPEN frame (MAX_PAYLOAD 1024 bytes),
# leaving room for the token, the proof and a time update.
MAX_CARRIED_UPDATE = 560


def revocation_blob(reg: Registry, lock_id: str, now: int) -> bytes | None:
    """The lock's current revocation update. A list too long to travel with a key
    becomes a site-wide cut-off instead (never fail open): every key issued before
    the newest block is refused, so staff need keys issued after it. The cut-off
    stays put as later keys are issued; it moves only with a new block."""
    version, staff, tokens = reg.revocation_state(now)
    if version == 0:
        return None
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


class Site:
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

    def add_client(self, actor: str, client_id: str, name: str,
                   address: str | None = None) -> None:
        _check_id(client_id, "client id")
        with self.act(actor, "client add", {"client": client_id}):
            self.registry.add_client(client_id, name, address)

    def add_staff(self, actor: str, staff_id: str, name: str,
                  provider: str | None = None) -> None:
        _check_id(staff_id, "staff id")
        with self.act(actor, "staff add", {"staff": staff_id, "provider": provider}):
            self.registry.add_staff(staff_id, name, provider)

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

    # --- shifts --------------------------------------------------------------------
    def shift_problem(self, staff_id: str, clients: list[str], start: int, end: int,
                      now: int) -> str | None:
        """Why this shift cannot be issued now (None: it can). Checked before
        anything changes; the lock's own rules are among them."""
        reg = self.registry
        try:
            reg.staff(staff_id)
            for c in clients:
                reg.client(c)
        except RegistryError as exc:
            return str(exc)
        if not clients:
            return "name at least one client"
        if end <= start:
            return "the shift must end after it starts"
        if end - start > tok.MAX_LIFETIME:
            return "a shift key lasts at most 24 hours"
        if end <= now:
            return "that shift has already ended"
        if reg.active_device(staff_id) is None:
            return (f"{staff_id} has no active device: enrol one first "
                    "(lockctl device enrol)")
        if not reg.locks_for_clients(clients):
            return "no commissioned lock serves these clients"
        return None

    def issue_shift(self, actor: str, staff_id: str, clients: list[str], start: int, end: int,
                    scope: str = "open", alarm: bool = False, now: int | None = None
                    ) -> tuple[bytes, list[issuer.Grant], str]:
        """Issue a shift: a token per door, encrypted to the staff member's
        active device. Returns (grant file bytes, grants, device fingerprint)."""
        now = int(time.time()) if now is None else now
        problem = self.shift_problem(staff_id, clients, start, end, now)
        if problem is None and end - now > tok.MAX_LIFETIME:
            problem = "a key can be issued at most 24 hours before its shift ends"
        if problem is not None:
            raise InvalidInput(problem)
        reg = self.registry
        dev = reg.active_device(staff_id)
        assert dev is not None  # shift_problem checked it
        locks = reg.locks_for_clients(clients)
        secret = reg.site_secret()
        signing = reg.signing_key() if any(lk.suite == tok.SUITE_ED25519 for lk in locks) else None
        grants = []
        for lk in locks:
            g = issuer.issue_token(secret, lk.lock_id, iss=reg.name, sub=staff_id, start=start,
                                   end=end, scope=scope, alarm=alarm, suite=lk.suite,
                                   signing_key=signing, iat=now)
            g.updates = [issuer.time_update(secret, lk.lock_id, now)]
            blob = revocation_blob(reg, lk.lock_id, now)
            if blob is not None:
                g.updates.append(blob)
            grants.append(g)
        data = device_mod.seal_grant(bytes(dev["public"]), device_mod.grant_content(
            staff_id, reg.name, start, end, grants))
        with self.act(actor, "shift issue", {
                "staff": staff_id, "clients": clients, "start": start, "end": end,
                "alarm": alarm, "device": dev["fingerprint"],
                "tokens": [g.cti.hex() for g in grants]}):
            for g in grants:
                reg.add_token(g.cti, staff_id, g.lock_id, start, end, scope, alarm,
                              dev["fingerprint"])
        return data, grants, str(dev["fingerprint"])

    # --- what the installer's tool and the keys bring back -----------------------------
    # The lock is talked to by lockctl (transport); what it answered changes
    # the registry here, each as one act with its audit record.
    def record_commissioning(self, actor: str, lock_id: str, door: str, suite: str,
                             clients: list[str], now: int, answer: dict[int, Any]) -> int:
        """The lock took its identity: its registry row and a new epoch."""
        from protocol import messages as msg
        with self.act(actor, "commission", {"lock": lock_id, "clients": clients, "door": door,
                                             "suite": suite}) as detail:
            epoch = self.registry.add_lock(
                lock_id, door, suite, clients, now,
                first_seq=answer.get(msg.COMMISSIONED_SEQ),
                previous_end=int(answer.get(msg.COMMISSIONED_ENDED) or 0),
                previous_after=int(answer.get(msg.COMMISSIONED_AFTER) or 1))
            self.registry.record_health(lock_id, answer.get(msg.COMMISSIONED_STATUS) or {}, now)
            detail["epoch"] = epoch
        return epoch

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
            reg.set_lock_status(lock_id, "decommissioned")
            if status:
                reg.record_health(lock_id, status, now)

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
        from tools import fleet
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
                line = fleet.parse_line(text)
                if line.lock_id not in known:
                    raise fleet.IngestError(f"lock {line.lock_id} is not in this site")
                row = reg.db.execute("SELECT lock_id, issued_at FROM tokens WHERE cti = ?",
                                     (line.cti,)).fetchone()
                checked.append((number, fleet.check_answer(
                    line, secret, None if row is None else row["lock_id"],
                    None if row is None else int(row["issued_at"]), now)))
            except fleet.IngestError as exc:
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
class IngestResult:
    taken: list[int] = field(default_factory=list)  # line numbers recorded
    older: list[int] = field(default_factory=list)  # authentic, but not newer than held
    refused: list[tuple[int, str]] = field(default_factory=list)  # (line, why)
    locks: set[str] = field(default_factory=set)
