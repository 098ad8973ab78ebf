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
from datetime import datetime
from pathlib import Path
from typing import Any, Iterator
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from protocol import token as tok
from tools import access, issuer
from tools import device as device_mod
from tools.registry import (
    DEFAULT_RETENTION_DAYS,
    DEFAULT_ZONE,
    LockRow,
    Registry,
    RegistryError,
)
from tools.site_people import ID_RE, InvalidInput, PeopleActs

__all__ = ["ID_RE", "InvalidInput", "Site", "revocation_blob"]


class Problem(str):
    """Why an act cannot be done; `usage` when the command line itself is wrong
    (lockctl's exit status 2) rather than the registry's state (1)."""

    usage: bool

    def __new__(cls, text: str, usage: bool = False) -> "Problem":
        self = super().__new__(cls, text)
        self.usage = usage
        return self


@dataclass
class ShiftPlan:
    problem: Problem | None
    doors: list[tuple[LockRow, int | None]] = field(default_factory=list)  # (lock, booking)
    left_out: list[tuple[str, str]] = field(default_factory=list)  # (lock id, why)


@dataclass
class AlarmKey:
    data: bytes  # the grant file
    grants: list[issuer.Grant]
    device: str
    start: int
    end: int
    left_out: list[str]


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


# --- receipts, properties and consent, lock removal and retirement, incidents ------
# (issue #14 sections 4 and 5; the tables are registry migration 5)

RECEIPT_RE = re.compile(r"^[Rr]-?0*([0-9]{1,9})\Z")
ITEM_KIND_RE = re.compile(r"^[a-z][a-z0-9-]{0,31}\Z")
# Shared doors of a property: its owner consents before a lock is mounted there.
CONSENT_DOORS = ("entrance", "waste-room", "laundry-room")
RETIRE_REASONS = ("stolen", "destroyed")
INCIDENT_WINDOW = 30 * 60  # seconds either side of an incident shown from the lock's log
MAX_TEXT = 200
_BIDI = set("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def receipt_id(no: int) -> str:
    return f"R-{no:06d}"


def parse_receipt_id(text: str) -> int:
    m = RECEIPT_RE.match(text.strip())
    if not m or int(m.group(1)) == 0:
        raise InvalidInput(f"invalid receipt id {text[:40]!r}: receipts are named R-000001, ...")
    return int(m.group(1))


def check_text(value: str, what: str, limit: int = MAX_TEXT) -> str:
    """Names, addresses and labels end up on printed receipts, in reports and in
    the audit record: printable text only (no control or bidi override characters)."""
    import unicodedata
    if not value.strip():
        raise InvalidInput(f"{what} must not be empty")
    if len(value) > limit:
        raise InvalidInput(f"{what} is at most {limit} characters")
    if any(unicodedata.category(c) in ("Cc", "Cs") or c in _BIDI for c in value):
        raise InvalidInput(f"{what}: control characters are not allowed")
    return value


def _check_date(text: str, what: str) -> str:
    from datetime import date
    try:
        date.fromisoformat(text)
    except (TypeError, ValueError):
        raise InvalidInput(f"{what}: not a date (YYYY-MM-DD): {str(text)[:40]!r}") from None
    if len(text) != 10:
        raise InvalidInput(f"{what}: give the date as YYYY-MM-DD, not {text[:40]!r}")
    return text


def parse_item(text: str) -> tuple[str, str]:
    """KIND:LABEL, as in key-box-key:KB-12 or house-key:"front door, 2 keys"."""
    kind, sep, label = text.partition(":")
    kind = kind.strip().lower()
    if not sep or not ITEM_KIND_RE.match(kind) or not label.strip():
        raise InvalidInput(f"invalid item {text[:60]!r}: give KIND:LABEL, e.g. "
                           "key-box-key:KB-12 (KIND: lowercase letters, digits and '-')")
    return kind, check_text(label.strip(), "the item's label", 100)


class Site(PeopleActs):
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

    def add_client(self, actor: str, client_id: str, name: str, address: str | None = None,
                   unit: str | None = None, providers: list[str] | None = None,
                   medicine_roles: list[str] | None = None,
                   property_id: str | None = None) -> None:
        """A client (PeopleActs.add_client), living in a property if given."""
        with self.tx():
            super().add_client(actor, client_id, name, address, unit, providers,
                               medicine_roles)
            if property_id is not None:
                self.set_client_care(client_id, property_id=property_id)

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

    # --- shifts and alarm keys ---------------------------------------------------------
    # Who may hold which key is tools/access.py (the issuer's rule, one place).
    def shift_plan(self, staff_id: str, clients: list[str], start: int, end: int,
                   now: int) -> ShiftPlan:
        """Which doors this shift's key would open, which it leaves out and why,
        or why it cannot be issued at all. Checked before anything changes."""
        reg = self.registry
        try:
            staff = reg.staff(staff_id)
            rows = [reg.client(c) for c in clients]
        except RegistryError as exc:
            return ShiftPlan(Problem(str(exc)))
        if not clients:
            return ShiftPlan(Problem("name at least one client", usage=True))
        if end <= start:
            return ShiftPlan(Problem("the shift must end after it starts", usage=True))
        if end - start > tok.MAX_LIFETIME:
            return ShiftPlan(Problem("a shift key lasts at most 24 hours", usage=True))
        if end <= now:
            return ShiftPlan(Problem("that shift has already ended", usage=True))
        problem = access.staff_problem(reg, staff)
        if problem is not None:
            return ShiftPlan(Problem(problem))
        for row in rows:  # the client-level rule refuses the whole shift
            v = access.client_problem(reg, staff, row, start, end)
            if v.problem is not None:
                return ShiftPlan(Problem(v.problem))
        if reg.active_device(staff_id) is None:
            return ShiftPlan(Problem(f"{staff_id} has no active device: enrol one first "
                                     "(lockctl device enrol)"))
        locks = reg.locks_for_clients(clients)
        if not locks:
            return ShiftPlan(Problem("no commissioned lock serves these clients"))
        plan = ShiftPlan(None)
        for lk in locks:  # a door's own rule leaves that door out
            v = access.key_verdict(reg, staff, lk, start, end, clients)
            if v.problem is None:
                plan.doors.append((lk, v.booking_id))
            else:
                plan.left_out.append((lk.lock_id, v.problem))
        if not plan.doors:
            plan.problem = Problem(plan.left_out[0][1])
        return plan

    def shift_problem(self, staff_id: str, clients: list[str], start: int, end: int,
                      now: int) -> Problem | None:
        """Why this shift cannot be issued now (None: it can)."""
        return self.shift_plan(staff_id, clients, start, end, now).problem

    def issuable_from(self, end: int) -> Problem | None:
        """The lock refuses a token that outlives its issue by more than 24 h."""
        now = int(time.time())
        if end - now <= tok.MAX_LIFETIME:
            return None
        tz = ZoneInfo(self.registry.zone)
        when = datetime.fromtimestamp(end - tok.MAX_LIFETIME, tz).strftime("%Y-%m-%d %H:%M")
        return Problem("a key can be issued at most 24 hours before its shift ends: "
                       f"issue this one from {when}", usage=True)

    def issue_shift(self, actor: str, staff_id: str, clients: list[str], start: int, end: int,
                    scope: str = "open", alarm: bool = False, now: int | None = None
                    ) -> tuple[bytes, list[issuer.Grant], str]:
        """Issue a shift: a token per door the rule allows, encrypted to the
        staff member's active device. Returns (grant file bytes, grants,
        device fingerprint)."""
        if alarm:
            raise InvalidInput("alarm keys are issued with lockctl alarm issue")
        now = int(time.time()) if now is None else now
        plan = self.shift_plan(staff_id, clients, start, end, now)
        problem = plan.problem
        if problem is None and end - now > tok.MAX_LIFETIME:
            problem = Problem("a key can be issued at most 24 hours before its shift ends")
        if problem is not None:
            raise InvalidInput(problem)
        dev = self.registry.active_device(staff_id)
        assert dev is not None  # shift_plan checked it
        grants, data = self._grants(staff_id, dev, [lk for lk, _ in plan.doors], start, end,
                                    scope, False, now)
        bookings = {g.lock_id: b for g, (_, b) in zip(grants, plan.doors, strict=True)}
        with self.act(actor, "shift issue", {
                "staff": staff_id, "clients": clients, "start": start, "end": end,
                "device": dev["fingerprint"], "tokens": [g.cti.hex() for g in grants],
                "left_out": [lock for lock, _ in plan.left_out]}):
            for g in grants:
                self.registry.add_token(g.cti, staff_id, g.lock_id, start, end, scope, False,
                                        dev["fingerprint"], booking_id=bookings[g.lock_id])
        return data, grants, str(dev["fingerprint"])

    def _grants(self, staff_id: str, dev: Any, locks: list[LockRow], start: int, end: int,
                scope: str, alarm: bool, now: int) -> tuple[list[issuer.Grant], bytes]:
        reg = self.registry
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
        return grants, data

    def issue_alarm(self, actor: str, client_id: str, staff_id: str, reason: str,
                    alarm_id: str, minutes: int = access.MAX_ALARM_MINUTES,
                    now: int | None = None) -> AlarmKey:
        """The patrol answering a safety alarm: a key for the client's doors
        (never the medicine cabinet) for at most an hour from now, marked as
        alarm access in every record the lock writes, for the patrol's enrolled
        device. One key per alarm id; audited with the reason and the alarm id."""
        _check_id(alarm_id, "alarm id")
        if not reason.strip() or len(reason) > 200:
            raise InvalidInput("the reason must be 1 to 200 characters")
        if not 1 <= minutes <= access.MAX_ALARM_MINUTES:
            raise InvalidInput(f"--minutes must be 1 to {access.MAX_ALARM_MINUTES}")
        now = int(time.time()) if now is None else now
        reg = self.registry
        staff = reg.staff(staff_id)
        client = reg.client(client_id)
        old = reg.db.execute("SELECT * FROM alarm_keys WHERE alarm_id = ?",
                             (alarm_id,)).fetchone()
        if old is not None:
            raise InvalidInput(f"alarm {alarm_id} already has its key (issued to "
                               f"{old['staff_id']} for {old['client_id']}): one key per alarm id")
        problem = access.staff_problem(reg, staff, alarm=True)
        if problem is None:
            problem = access.client_problem(reg, staff, client, now, now, alarm=True).problem
        if problem is not None:
            raise InvalidInput(problem)
        dev = reg.active_device(staff_id)
        if dev is None:
            raise InvalidInput(f"{staff_id} has no active device: enrol one first "
                               "(lockctl device enrol)")
        start, end = now, now + minutes * 60
        doors, left_out = [], []
        for lk in reg.locks_for_clients([client_id]):
            v = access.key_verdict(reg, staff, lk, start, end, [client_id], alarm=True)
            if v.problem is None:
                doors.append(lk)
            else:
                left_out.append(lk.lock_id)
        if not doors:
            raise InvalidInput(f"no commissioned door of {client_id} an alarm key may open")
        grants, data = self._grants(staff_id, dev, doors, start, end, "open", True, now)
        with self.act(actor, "alarm issue", {
                "alarm_id": alarm_id, "reason": reason, "client": client_id, "staff": staff_id,
                "minutes": minutes, "start": start, "end": end, "device": dev["fingerprint"],
                "tokens": [g.cti.hex() for g in grants], "left_out": left_out}):
            reg.db.execute("INSERT INTO alarm_keys (alarm_id, client_id, staff_id, reason, "
                           "minutes, start, end, issued_at, device, actor) "
                           "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                           (alarm_id, client_id, staff_id, reason, minutes, start, end, now,
                            dev["fingerprint"], actor or "unknown"))
            for g in grants:
                reg.add_token(g.cti, staff_id, g.lock_id, start, end, "open", True,
                              dev["fingerprint"], alarm_id=alarm_id)
        return AlarmKey(data, grants, str(dev["fingerprint"]), start, end, left_out)

    def enforce(self, now: int | None = None) -> list[str]:
        """A change that may take a right away takes effect at once: every
        outstanding key the rule no longer allows is blocked (a token entry,
        which travels to its own lock only). Call it inside the act that made
        the change. Returns the blocked token ids."""
        now = int(time.time()) if now is None else now
        reg = self.registry
        _, staff_cut, revoked = reg.revocation_state(now)
        blocked = []
        for t in list(reg.db.execute("SELECT * FROM tokens WHERE end > ? ORDER BY issued_at",
                                     (now - tok.SKEW,))):
            cti = bytes(t["cti"])
            if cti in revoked or t["issued_at"] < staff_cut.get(t["staff_id"], 0):
                continue
            try:
                lk = reg.lock(t["lock_id"])
            except RegistryError:
                continue
            staff = reg.staff(t["staff_id"])
            clients = None
            if t["alarm_id"]:
                row = reg.db.execute("SELECT client_id FROM alarm_keys WHERE alarm_id = ?",
                                     (t["alarm_id"],)).fetchone()
                clients = [row[0]] if row is not None else []
            v = access.key_verdict(reg, staff, lk, int(t["start"]), int(t["end"]), clients,
                                   alarm=bool(t["alarm"]))
            if v.problem is not None:
                reg.revoke("token", cti.hex(), int(t["end"]))
                blocked.append(cti.hex())
        return blocked

    # --- what the installer's tool and the keys bring back -----------------------------
    # The lock is talked to by lockctl (transport); what it answered changes
    # the registry here, each as one act with its audit record.
    def commission_problem(self, door: str, clients: list[str],
                           provider: str | None = None) -> Problem | None:
        """Why a door of this kind cannot be commissioned for these clients."""
        problem = access.door_clients_problem(door, clients)
        if problem is not None:
            return Problem(problem, usage=True)
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
        except RegistryError as exc:
            return Problem(str(exc))
        return None

    def record_commissioning(self, actor: str, lock_id: str, door: str, suite: str,
                             clients: list[str], now: int, answer: dict[int, Any],
                             provider: str | None = None) -> int:
        """The lock took its identity: its registry row and a new epoch."""
        from protocol import messages as msg
        problem = self.commission_problem(door, clients, provider)
        if problem is not None:
            raise InvalidInput(problem)
        with self.act(actor, "commission", {"lock": lock_id, "clients": clients, "door": door,
                                             "suite": suite, "provider": provider}) as detail:
            epoch = self.registry.add_lock(
                lock_id, door, suite, clients, now,
                first_seq=answer.get(msg.COMMISSIONED_SEQ),
                previous_end=int(answer.get(msg.COMMISSIONED_ENDED) or 0),
                previous_after=int(answer.get(msg.COMMISSIONED_AFTER) or 1))
            self.registry.record_health(lock_id, answer.get(msg.COMMISSIONED_STATUS) or {}, now)
            self.registry.db.execute("UPDATE locks SET provider = ? WHERE lock_id = ?",
                                     (provider, lock_id))
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
            reg.set_lock_status(lock_id, "decommissioned")
            if status:
                reg.record_health(lock_id, status, now)


    # --- receipts (kvittens) -------------------------------------------------------------
    def person_kind(self, person: str) -> str:
        """Who a receipt is for: 'staff', 'client' or 'property' (its owner)."""
        reg = self.registry
        found = [kind for kind, sql in (
            ("staff", "SELECT 1 FROM staff WHERE staff_id = ?"),
            ("client", "SELECT 1 FROM clients WHERE client_id = ?"),
            ("property", "SELECT 1 FROM properties WHERE property_id = ?"))
            if reg.db.execute(sql, (person,)).fetchone()]
        if not found:
            raise InvalidInput(f"no staff member, client or property {person} in this site")
        if len(found) > 1:
            raise InvalidInput(f"{person} names both a {found[0]} and a {found[1]}: "
                               "rename one of them first")
        return found[0]

    def write_receipt(self, actor: str, kind: str, person: str,
                      items: list[tuple[str, str, str]], by: str, now: int | None = None,
                      lock_id: str | None = None, note: str | None = None) -> str:
        """A receipt for items changing hands with `person` (a staff, client or
        property id): each item is (direction, kind, label), 'to' the person
        (handed out) or 'from' them (given back). Call it inside the act it
        belongs to (device enrol, staff deactivate, lock remove, ...), so the
        receipt and the act are kept together or not at all; put the returned
        id in the act's detail. `by` is who handed out or took back."""
        if not items:
            raise InvalidInput("a receipt names at least one item")
        for direction, item_kind, label in items:
            if direction not in ("to", "from") or not ITEM_KIND_RE.match(item_kind):
                raise InvalidInput(f"invalid receipt item {item_kind!r} ({direction!r})")
            check_text(label, "the item's label", 100)
        check_text(by, "--by", 100)
        person_kind = self.person_kind(person)
        no = self.registry.add_receipt(kind, person, person_kind, by,
                                       int(time.time()) if now is None else now, items,
                                       actor or "unknown", lock_id, note)
        return receipt_id(no)

    def handout(self, actor: str, person: str, items: list[str], by: str,
                returning: bool = False) -> str:
        """`handout add` (items to the person) or `handout return` (items given
        back, each refused unless the person holds it). One receipt for all."""
        if not items:
            raise InvalidInput("name at least one --item KIND:LABEL")
        parsed = [parse_item(i) for i in items]
        check_text(by, "--by", 100)
        action = "handout return" if returning else "handout add"
        with self.act(actor, action, {"person": person,
                                       "items": [f"{k}:{v}" for k, v in parsed]}) as detail:
            self.person_kind(person)
            if returning:
                held = {(k, v): n for k, v, n in self.registry.held_items(person)}
                for k, v in parsed:
                    if held.get((k, v), 0) <= 0:
                        raise InvalidInput(
                            f"{person} holds no {k}:{v} (see lockctl receipt list --person "
                            f"{person}; record a handout first with lockctl handout add)")
                    held[(k, v)] -= 1
            rid = self.write_receipt(actor, action, person,
                                     [("from" if returning else "to", k, v) for k, v in parsed],
                                     by)
            detail["receipt"] = rid
        return rid

    def receipt(self, rid: str) -> dict[str, Any]:
        """A receipt as printed: who, what, by whom, when, and what the person
        still holds after it."""
        reg = self.registry
        row = reg.receipt(parse_receipt_id(rid))
        person, kind = row["person"], row["person_kind"]
        if kind == "staff":
            who = reg.staff(person)["name"]
        elif kind == "client":
            who = reg.client(person)["name"]
        else:
            prop = reg.property(person)
            who = f"{prop['owner']} (owner of {prop['address']})"
        items = [{"direction": i["direction"], "kind": i["item_kind"], "label": i["label"]}
                 for i in reg.receipt_items(int(row["receipt_no"]))]
        return {"receipt": receipt_id(int(row["receipt_no"])), "kind": row["kind"],
                "person": person, "person_kind": kind, "name": who, "by": row["by_name"],
                "at": int(row["at"]), "lock": row["lock_id"], "note": row["note"],
                "items": items, "site": reg.name,
                "holds": [{"kind": k, "label": v, "count": n}
                          for k, v, n in reg.held_items(person, int(row["receipt_no"]))]}

    # --- properties, consent and what a client was told -------------------------------
    def add_property(self, actor: str, property_id: str, address: str, owner: str) -> None:
        _check_id(property_id, "property id")
        check_text(address, "--address")
        check_text(owner, "--owner")
        with self.act(actor, "property add", {"property": property_id, "owner": owner}):
            self.registry.add_property(property_id, address, owner, int(time.time()))

    def add_consent(self, actor: str, property_id: str, given_by: str, given_on: str,
                    today: str) -> int:
        """The property owner's consent to locks on its shared doors, given on
        `given_on` (ISO date, not after `today` in the site's zone)."""
        check_text(given_by, "--by")
        _check_date(given_on, "--date")
        if given_on > today:
            raise InvalidInput(f"--date {given_on} is in the future (today is {today})")
        with self.act(actor, "consent add", {"property": property_id, "by": given_by,
                                              "date": given_on}) as detail:
            self.registry.property(property_id)
            no = self.registry.add_consent(property_id, given_by, given_on, int(time.time()),
                                           actor or "unknown")
            detail["consent"] = no
        return no

    def set_client_care(self, client_id: str, property_id: str | None = None,
                        informed_on: str | None = None, today: str | None = None) -> None:
        """A client's property and the day they acknowledged the information
        about digital locks. Call inside the client's add or update act."""
        reg = self.registry
        reg.client(client_id)
        fields: dict[str, Any] = {}
        if property_id is not None:
            reg.property(property_id)
            fields["property_id"] = property_id
        if informed_on is not None:
            _check_date(informed_on, "--informed")
            if today is not None and informed_on > today:
                raise InvalidInput(f"--informed {informed_on} is in the future (today is {today})")
            fields["informed_on"] = informed_on
        if fields:
            reg.set_client_fields(client_id, **fields)

    # --- commissioning rules ---------------------------------------------------------------
    def placement_problem(self, lock_id: str, door: str, clients: list[str]) -> str | None:
        """Why this lock id may not be commissioned on this door of these
        clients (None: it may). Checked before the lock is touched."""
        reg = self.registry
        gone = reg.retirement(lock_id)
        if gone is not None:
            return (f"lock id {lock_id} was retired ({gone['reason']}): its identity is never "
                    "used again; commission the replacement under a new lock id")
        if door in CONSENT_DOORS:
            props = sorted({str(r["property_id"]) for r in (reg.client(c) for c in clients)
                            if r["property_id"] is not None})
            for p in props:
                if not reg.consents(p):
                    return (f"the {door} door of property {p} needs its owner's consent "
                            f"first ({reg.property(p)['owner']}): lockctl consent add "
                            f"--property {p} --by NAME")
        return None

    # --- removal and retirement of a lock ----------------------------------------------------
    def removal_problem(self, lock_id: str) -> str | None:
        """Why the lock may not be removed yet (None: it may): an active client
        still needs it."""
        row = self.registry.lock(lock_id)
        if row.status != "active":
            return f"lock {lock_id} is {row.status}, not in service: nothing to remove"
        active = [c for c in row.clients if self.registry.client(c)["active"]]
        if active:
            return (f"lock {lock_id} still serves active client(s) {', '.join(active)}: "
                    f"remove them first (lockctl client remove {active[0]}) or move their "
                    "door to another lock")
        return None

    def removal_receiver(self, lock_id: str, to: str | None) -> str:
        """Who receives the original lock parts back: `to` if given, else the
        lock's one client, else the one property of its clients."""
        if to is not None:
            self.person_kind(to)
            return to
        row = self.registry.lock(lock_id)
        if len(row.clients) == 1:
            return row.clients[0]
        props = {self.registry.client(c)["property_id"] for c in row.clients}
        if len(props) == 1 and None not in props:
            return str(props.pop())
        raise InvalidInput(f"lock {lock_id} serves {', '.join(row.clients)}: name who receives "
                           "the original lock parts with --to CLIENT_ID|PROPERTY_ID")

    def record_removal(self, actor: str, lock_id: str, epoch: int, seq: int, last: list[bytes],
                       status: dict[int, Any], now: int, receiver: str, by: str) -> str:
        """The lock was decommissioned and taken down, the door restored and the
        original parts handed back: one act, with its receipt."""
        reg = self.registry
        row = reg.lock(lock_id)
        where = ", ".join(str(reg.client(c)["address"] or c) for c in row.clients)
        with self.act(actor, "lock remove", {"lock": lock_id, "to": receiver}) as detail:
            self.record_decommission(actor, lock_id, epoch, seq, last, status, now)
            reg.set_lock_status(lock_id, "removed")
            detail["receipt"] = self.write_receipt(
                actor, "lock remove", receiver,
                [("to", "lock-parts", f"the original lock parts of the {row.door} door"),
                 ("from", "lock", f"lock accessory {lock_id}")], by, now, lock_id,
                f"The lock accessory {lock_id} was removed from the {row.door} door ({where}) "
                "and the door restored to its original state.")
        return str(detail["receipt"])

    def retire_lock(self, actor: str, lock_id: str, reason: str) -> tuple[int, int | None]:
        """A lock that cannot be reached (stolen, destroyed): its identity is
        never used again, no key is issued for it, and its outstanding keys are
        blocked. Returns (tokens blocked, block-list version or None)."""
        if reason not in RETIRE_REASONS:
            raise InvalidInput(f"--reason: {reason!r} is not one of {', '.join(RETIRE_REASONS)}")
        now = int(time.time())
        reg = self.registry
        with self.act(actor, "lock retire", {"lock": lock_id, "reason": reason}) as detail:
            row = reg.lock(lock_id)
            gone = reg.retirement(lock_id)
            if gone is not None:
                raise InvalidInput(f"lock {lock_id} is already retired ({gone['reason']})")
            reg.add_retirement(lock_id, reason, now, actor or "unknown")
            com = reg.commissioning(lock_id, row.epoch) if reg.commissionings(lock_id) else None
            if com is not None and com["end_kind"] is None:
                reg.end_epoch(lock_id, row.epoch, "retired", None, now)
            reg.set_lock_status(lock_id, "retired")
            version = None
            tokens = reg.lock_tokens(lock_id, now)
            for t in tokens:
                version = reg.revoke("token", bytes(t["cti"]).hex(), int(t["end"]))
            detail.update(tokens=len(tokens), version=version)
        return len(tokens), version

    # --- incidents -----------------------------------------------------------------------------
    def add_incident(self, actor: str, lock_id: str, what: str, at: int,
                     window_s: int = INCIDENT_WINDOW, now: int | None = None) -> int:
        """Something went wrong at a lock (Halmstad: the rescue service had to
        be called because it did not open), linked to the lock's log by the
        window of `window_s` seconds either side of `at` (POSIX)."""
        now = int(time.time()) if now is None else now
        check_text(what, "--what", 1000)
        if at > now + tok.SKEW:
            raise InvalidInput("--at is in the future: an incident is recorded after it happened")
        if not 60 <= window_s <= 86400:
            raise InvalidInput("the window is 1 minute to 24 hours")
        with self.act(actor, "incident add", {"lock": lock_id, "at": at}) as detail:
            self.registry.lock(lock_id)
            no = self.registry.add_incident(lock_id, at, what, window_s, now, actor or "unknown")
            detail["incident"] = no
        return no

    def incident_records(self, incident: Any) -> list[Any]:
        """The lock's collected log records within the incident's window."""
        from protocol import clock
        at, w = int(incident["at"]), int(incident["window_s"])
        return self.registry.events_between(incident["lock_id"], clock.from_unix(at - w),
                                            clock.from_unix(at + w))
