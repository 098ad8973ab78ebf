"""The service layer: every administrative act on a site, each with its audit
record, in one transaction.

lockctl parses the command line and prints; this module does the acts (as
mpremote splits main.py from commands.py), so an HTTP API can later call the
same methods. tools/registry.py is the data access underneath.

An act is `with self.act(actor, action, detail): ...`: the act's changes and
the audit record of who did it are committed together or not at all, and an
act that raises changes nothing. Acts nest (Registry.tx() is savepoints), so
a larger act may be made of smaller ones and still be all or nothing.

Site itself holds the site's creation and settings, the revocations and the
staff devices; its other acts are mixins: site_people.py (clients,
providers, units), site_staff.py (staff and bookings), site_keys.py (shift
and alarm keys, enforce()), site_locks.py (what a lock answered) and
site_care.py (receipts, properties, the end of a lock's life, incidents).
"""

from __future__ import annotations

import time
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from protocol import token as tok
from tools import device as device_mod
from tools import issuer
from tools.registry import (
    DEFAULT_RETENTION_DAYS,
    DEFAULT_ZONE,
    Registry,
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
from tools.site_locks import Commissioned, IngestResult, LockActs
from tools.site_people import ID_RE, InvalidInput, PeopleActs
from tools.site_staff import StaffActs

__all__ = ["ID_RE", "AlarmKey", "Commissioned", "IngestResult", "InvalidInput", "Problem",
           "ShiftPlan", "Site", "revocation_blob"]


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


class Site(LockActs, PeopleActs, StaffActs, KeyActs, CareActs):
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

    # --- the site: creation and settings -----------------------------------------------
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

    # --- revocations ---------------------------------------------------------------------
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
