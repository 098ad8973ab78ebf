"""The service layer's acts on receipts (kvittens), properties and consent,
the end of a lock's life (removal, retirement) and incidents (issue #14
sections 4 and 5; registry migration 5). Part of tools/site.py's Site, kept
here to keep each module readable: every act is one transaction with its
audit record, and write_receipt() is called inside the act it belongs to.
"""

from __future__ import annotations

import re
import time
import unicodedata
from contextlib import AbstractContextManager
from datetime import date, datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from protocol import token as tok
from tools.registry import Registry
from tools.site_people import InvalidInput, check_id

RECEIPT_RE = re.compile(r"^[Rr]-?0*([0-9]{1,9})\Z")
ITEM_KIND_RE = re.compile(r"^[a-z][a-z0-9-]{0,31}\Z")
# Shared doors of a property: its owner consents before a lock is mounted there.
CONSENT_DOORS = ("entrance", "waste-room", "laundry-room")
RETIRE_REASONS = ("stolen", "destroyed")
INCIDENT_WINDOW = 30 * 60  # seconds either side of an incident shown from the lock's log
MAX_TEXT = 200
# Bidirectional overrides would let a name reorder the text around it in a report.
_BIDI = set("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def printable(value: str) -> bool:
    """No control characters, no bidi overrides and no surrogates (an argument
    that is not UTF-8 arrives with them, and SQLite refuses them)."""
    return not any(unicodedata.category(c) in ("Cc", "Cs") or c in _BIDI for c in value)


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
    if not value.strip():
        raise InvalidInput(f"{what} must not be empty")
    if len(value) > limit:
        raise InvalidInput(f"{what} is at most {limit} characters")
    if not printable(value):
        raise InvalidInput(f"{what}: control characters are not allowed")
    return value


def _check_date(text: str, what: str) -> str:
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


class CareActs:
    registry: Registry

    if TYPE_CHECKING:
        def act(self, actor: str, action: str, detail: dict[str, Any]
                ) -> AbstractContextManager[dict[str, Any]]: ...

        def enforce(self, now: int | None = None) -> list[str]: ...

        def record_decommission(self, actor: str, lock_id: str, epoch: int, seq: int,
                                last: list[bytes], status: dict[int, Any], now: int) -> None: ...

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
        check_id(property_id, "property id")
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
                        informed_on: str | None = None) -> None:
        """A client's property and the day they acknowledged the information
        about digital locks (not after today in the site's zone). Called inside
        the client's add or update act (tools/site_people.py)."""
        reg = self.registry
        today = datetime.now(ZoneInfo(reg.zone)).date().isoformat()
        reg.client(client_id)
        fields: dict[str, Any] = {}
        if property_id is not None:
            reg.property(property_id)
            fields["property_id"] = property_id
        if informed_on is not None:
            _check_date(informed_on, "--informed")
            if informed_on > today:
                raise InvalidInput(f"--informed {informed_on} is in the future (today is {today})")
            fields["informed_on"] = informed_on
        if fields:
            reg.set_client_fields(client_id, **fields)

    # --- commissioning rules ---------------------------------------------------------------
    def consent_problem(self, door: str, clients: list[str],
                        lock_id: str | None = None) -> str | None:
        """Issue #14 section 4's part of commission_problem: a retired lock id
        is never used again; a shared door of a property needs its owner's
        consent. None: no objection."""
        reg = self.registry
        gone = reg.retirement(lock_id) if lock_id is not None else None
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
            # Its outstanding keys open nothing now; blocked here, in this act,
            # rather than by whichever act enforces the rule next.
            detail["blocked"] = self.enforce(now)
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
