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
                   address: str | None = None, property_id: str | None = None) -> None:
        _check_id(client_id, "client id")
        with self.act(actor, "client add", {"client": client_id, "property": property_id}):
            self.registry.add_client(client_id, name, address)
            if property_id is not None:
                self.set_client_care(client_id, property_id=property_id)

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
            # A retired lock found again may be decommissioned; it stays retired.
            reg.set_lock_status(lock_id, "retired" if reg.retirement(lock_id) else
                                "decommissioned")
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
    def commission_problem(self, lock_id: str, door: str, clients: list[str]) -> str | None:
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
class IngestResult:
    taken: list[int] = field(default_factory=list)  # line numbers recorded
    older: list[int] = field(default_factory=list)  # authentic, but not newer than held
    refused: list[tuple[int, str]] = field(default_factory=list)  # (line, why)
    locks: set[str] = field(default_factory=set)
