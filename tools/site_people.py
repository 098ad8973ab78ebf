"""The service layer's acts on people and organisation: clients, providers,
units, staff and bookings (part of tools/site.py's Site, kept here to keep
each module readable). Every act is one transaction with its audit record.

Nothing is deleted: `remove` deactivates (the log and the audit record refer
to what was removed). A change that may take a right away (a client's
providers or care plan, a removal, a cancelled booking) takes effect at once:
Site.enforce() blocks the outstanding keys the rule (tools/access.py) no
longer allows, inside the same act.
"""

from __future__ import annotations

import re
import time
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

from tools import access
from tools.registry import ROLES, Registry, RegistryError

if TYPE_CHECKING:
    from tools.site import Revocation

# Ids travel in tokens and file names; lockctl checks its arguments with this
# rule too (tools/site.py's ID_RE). \Z, not $: "$" would let a newline end an id.
ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}\Z")


class InvalidInput(RegistryError):
    """Input the act refuses before changing anything."""




def _id(value: str, what: str) -> str:
    if not ID_RE.match(value):
        raise InvalidInput(f"invalid {what} {value!r}: use 1-64 letters, digits, '.', '_' or '-'")
    return value


def _name(value: str, what: str) -> str:
    if not value.strip() or len(value) > 200:
        raise InvalidInput(f"the {what} must be 1 to 200 characters")
    if what == "provider name" and "," in value:
        # --providers P1,P2 separates them with commas.
        raise InvalidInput("a provider name cannot hold a comma")
    return value


class PeopleActs:
    registry: Registry

    if TYPE_CHECKING:
        def act(self, actor: str, action: str, detail: dict[str, Any]
                ) -> AbstractContextManager[dict[str, Any]]: ...

        def enforce(self, now: int | None = None) -> list[str]: ...

        def set_client_care(self, client_id: str, property_id: str | None = None,
                            informed_on: str | None = None) -> None: ...

        def write_receipt(self, actor: str, kind: str, person: str,
                          items: list[tuple[str, str, str]], by: str, now: int | None = None,
                          lock_id: str | None = None, note: str | None = None) -> str: ...

    # --- lookups that refuse ---------------------------------------------------------
    def _provider(self, name: str) -> Any:
        row = access.provider_row(self.registry, name)
        if row is None:
            raise InvalidInput(f"no provider {name!r} (lockctl provider add)")
        return row

    def _unit(self, unit_id: str, active: bool = False) -> Any:
        row = access.unit_row(self.registry, unit_id)
        if row is None:
            raise InvalidInput(f"no unit {unit_id} (lockctl unit add)")
        if active and not row["active"]:
            raise InvalidInput(f"unit {unit_id} is removed")
        return row

    def _providers(self, names: list[str]) -> list[str]:
        out: list[str] = []
        for n in names:
            row = self._provider(n)
            if not row["active"]:
                raise InvalidInput(f"provider {n!r} is removed")
            if n not in out:
                out.append(n)
        return out

    def _set_providers(self, client_id: str, providers: list[str], now: int) -> list[str]:
        db = self.registry.db
        old = access.chosen_providers(self.registry, client_id)
        for p in old:
            if p not in providers:
                db.execute("DELETE FROM client_providers WHERE client_id = ? AND provider = ?",
                           (client_id, p))
        for p in providers:
            db.execute("INSERT OR IGNORE INTO client_providers VALUES (?, ?, ?)",
                       (client_id, p, now))
        return [p for p in old if p not in providers]

    # --- clients -----------------------------------------------------------------------
    def add_client(self, actor: str, client_id: str, name: str, address: str | None = None,
                   unit: str | None = None, providers: list[str] | None = None,
                   medicine_roles: list[str] | None = None, property_id: str | None = None,
                   informed_on: str | None = None) -> None:
        _id(client_id, "client id")
        _name(name, "name")
        now = int(time.time())
        detail: dict[str, Any] = {"client": client_id, "unit": unit, "providers": providers}
        if property_id is not None:
            detail["property"] = property_id
        if informed_on is not None:
            detail["informed"] = informed_on
        with self.act(actor, "client add", detail):
            if unit is not None:
                self._unit(unit, active=True)
            chosen = self._providers(providers or [])
            roles = access.check_roles(",".join(medicine_roles)) if medicine_roles else None
            self.registry.add_client(client_id, name, address)
            self.registry.db.execute(
                "UPDATE clients SET unit = ?, medicine_roles = coalesce(?, medicine_roles) "
                "WHERE client_id = ?", (unit, ",".join(roles) if roles else None, client_id))
            self._set_providers(client_id, chosen, now)
            self.set_client_care(client_id, property_id, informed_on)

    def update_client(self, actor: str, client_id: str, name: str | None = None,
                      address: str | None = None, unit: str | None = None,
                      providers: list[str] | None = None,
                      medicine_roles: list[str] | None = None,
                      property_id: str | None = None,
                      informed_on: str | None = None) -> list[str]:
        """Change what is given; returns the token ids the change blocked."""
        now = int(time.time())
        changes = {k: v for k, v in (("name", name), ("address", address), ("unit", unit),
                                     ("providers", providers),
                                     ("medicine_roles", medicine_roles),
                                     ("property", property_id),
                                     ("informed", informed_on)) if v is not None}
        if not changes:
            raise InvalidInput("nothing to change: give --name, --address, --unit, --providers, "
                               "--medicine-roles, --property or --informed")
        with self.act(actor, "client update", {"client": client_id, **changes}) as detail:
            reg = self.registry
            row = reg.client(client_id)
            if not row["active"]:
                raise InvalidInput(f"client {client_id} is removed")
            if name is not None:
                reg.db.execute("UPDATE clients SET name = ? WHERE client_id = ?",
                               (_name(name, "name"), client_id))
            if address is not None:
                reg.db.execute("UPDATE clients SET address = ? WHERE client_id = ?",
                               (address, client_id))
            if unit is not None:
                self._unit(unit, active=True)
                reg.db.execute("UPDATE clients SET unit = ? WHERE client_id = ?",
                               (unit, client_id))
            if providers is not None:
                detail["dropped"] = self._set_providers(client_id, self._providers(providers),
                                                        now)
            if medicine_roles is not None:
                roles = access.check_roles(",".join(medicine_roles))
                reg.db.execute("UPDATE clients SET medicine_roles = ? WHERE client_id = ?",
                               (",".join(roles), client_id))
            self.set_client_care(client_id, property_id, informed_on)
            reg.db.execute("UPDATE clients SET changed_at = ? WHERE client_id = ?",
                           (now, client_id))
            detail["blocked"] = self.enforce(now)
        return list(detail["blocked"])

    def remove_client(self, actor: str, client_id: str) -> list[str]:
        """Deactivate: no key is issued for the client's doors any more, and
        the outstanding ones no other client of the door needs are blocked."""
        now = int(time.time())
        with self.act(actor, "client remove", {"client": client_id}) as detail:
            if not self.registry.client(client_id)["active"]:
                raise InvalidInput(f"client {client_id} is already removed")
            self.registry.db.execute(
                "UPDATE clients SET active = 0, changed_at = ? WHERE client_id = ?",
                (now, client_id))
            detail["blocked"] = self.enforce(now)
        return list(detail["blocked"])

    # --- providers and units -------------------------------------------------------------
    def add_provider(self, actor: str, name: str, alarms: bool = False) -> None:
        _name(name, "provider name")
        with self.act(actor, "provider add", {"provider": name, "alarms": alarms}):
            if access.provider_row(self.registry, name) is not None:
                raise InvalidInput(f"provider {name!r} already exists")
            self.registry.db.execute("INSERT INTO providers (name, alarms) VALUES (?, ?)",
                                     (name, int(alarms)))

    def update_provider(self, actor: str, name: str, alarms: bool | None = None) -> list[str]:
        if alarms is None:
            raise InvalidInput("nothing to change: give --alarms yes|no")
        now = int(time.time())
        with self.act(actor, "provider update", {"provider": name, "alarms": alarms}) as detail:
            if not self._provider(name)["active"]:
                raise InvalidInput(f"provider {name!r} is removed")
            self.registry.db.execute(
                "UPDATE providers SET alarms = ?, changed_at = ? WHERE name = ?",
                (int(alarms), now, name))
            detail["blocked"] = self.enforce(now)  # alarm keys, when named no more
        return list(detail["blocked"])

    def remove_provider(self, actor: str, name: str) -> list[str]:
        """Deactivate: its staff get no key any more; their outstanding keys are
        blocked (per token, so each entry travels to its own lock only)."""
        now = int(time.time())
        with self.act(actor, "provider remove", {"provider": name}) as detail:
            if not self._provider(name)["active"]:
                raise InvalidInput(f"provider {name!r} is already removed")
            self.registry.db.execute(
                "UPDATE providers SET active = 0, changed_at = ? WHERE name = ?", (now, name))
            detail["blocked"] = self.enforce(now)
        return list(detail["blocked"])

    def add_unit(self, actor: str, unit_id: str, provider: str, name: str | None = None) -> None:
        _id(unit_id, "unit id")
        with self.act(actor, "unit add", {"unit": unit_id, "provider": provider}):
            if access.unit_row(self.registry, unit_id) is not None:
                raise InvalidInput(f"unit {unit_id} already exists")
            self._providers([provider])
            self.registry.db.execute(
                "INSERT INTO units (unit_id, provider, name, created_at) VALUES (?, ?, ?, ?)",
                (unit_id, provider, name, int(time.time())))

    def update_unit(self, actor: str, unit_id: str, provider: str | None = None,
                    name: str | None = None) -> None:
        if provider is None and name is None:
            raise InvalidInput("nothing to change: give --provider or --name")
        with self.act(actor, "unit update", {"unit": unit_id, "provider": provider,
                                             "name": name}):
            if not self._unit(unit_id)["active"]:
                raise InvalidInput(f"unit {unit_id} is removed")
            if provider is not None:
                self._providers([provider])
                other = self.registry.db.execute(
                    "SELECT staff_id FROM staff WHERE unit = ? AND provider != ? LIMIT 1",
                    (unit_id, provider)).fetchone()
                if other is not None:
                    raise InvalidInput(f"unit {unit_id} has staff of another provider "
                                       f"({other[0]}): a unit's staff are its provider's")
            self.registry.db.execute(
                "UPDATE units SET provider = coalesce(?, provider), name = coalesce(?, name), "
                "changed_at = ? WHERE unit_id = ?", (provider, name, int(time.time()), unit_id))

    def remove_unit(self, actor: str, unit_id: str) -> list[str]:
        """Deactivate: its staff's and its clients' keys stop (blocked per token)
        until they are moved to another unit."""
        now = int(time.time())
        with self.act(actor, "unit remove", {"unit": unit_id}) as detail:
            if not self._unit(unit_id)["active"]:
                raise InvalidInput(f"unit {unit_id} is already removed")
            self.registry.db.execute(
                "UPDATE units SET active = 0, changed_at = ? WHERE unit_id = ?", (now, unit_id))
            detail["blocked"] = self.enforce(now)
        return list(detail["blocked"])

    # --- staff -------------------------------------------------------------------------
    def add_staff(self, actor: str, staff_id: str, name: str, provider: str | None = None,
                  unit: str | None = None, role: str = "home-care") -> None:
        """A staff member of a provider (created if the site does not know it)."""
        _id(staff_id, "staff id")
        _name(name, "name")
        if not provider:
            raise InvalidInput("a staff member belongs to a provider: give --provider")
        _name(provider, "provider name")
        if role not in ROLES:
            raise InvalidInput(f"unknown role {role!r}: one of {', '.join(ROLES)}")
        with self.act(actor, "staff add", {"staff": staff_id, "provider": provider,
                                           "unit": unit, "role": role}):
            prov = access.provider_row(self.registry, provider)
            if prov is not None and not prov["active"]:
                raise InvalidInput(f"provider {provider!r} is removed")
            if unit is not None:
                urow = self._unit(unit, active=True)
                if urow["provider"] != provider:
                    raise InvalidInput(f"unit {unit} belongs to {urow['provider']}, "
                                      f"not {provider}")
            self.registry.add_staff(staff_id, name, provider)
            self.registry.db.execute("UPDATE staff SET role = ?, unit = ? WHERE staff_id = ?",
                                     (role, unit, staff_id))

    def deactivate_staff(self, actor: str, staff_id: str) -> tuple[Revocation, list[str]]:
        """A staff member leaves or goes on long leave: blocked at once in the
        registry (every key issued to them until now, as `revoke --staff`; the
        block reaches each lock with the next key or sync) and their device
        suspended."""
        from tools.site import Revocation
        reg = self.registry
        until = int(time.time()) + 1  # as Site.revoke_staff: this second's keys too
        now = until - 1
        with self.act(actor, "staff deactivate", {"staff": staff_id, "until": until}) as detail:
            if reg.staff(staff_id)["state"] != "active":
                raise InvalidInput(f"{staff_id} is already deactivated")
            reg.db.execute("UPDATE staff SET state = 'deactivated', changed_at = ? "
                           "WHERE staff_id = ?", (now, staff_id))
            suspended = [r["fingerprint"] for r in reg.db.execute(
                "SELECT fingerprint FROM devices WHERE staff_id = ? AND state = 'active'",
                (staff_id,))]
            for fp in suspended:
                reg.set_device_state(fp, "suspended", now)
            detail.update(version=reg.revoke("staff", staff_id, until), suspended=suspended)
            # The receipt (kvittens) the staff member signs on leaving: their
            # digital key blocked, their device suspended; the page lists the
            # physical items still to be returned (tools/site.py write_receipt).
            detail["receipt"] = self.write_receipt(
                actor, "staff deactivate", staff_id,
                [("from", "digital-key", f"every key issued to {staff_id} blocked"),
                 *[("from", "device", fp) for fp in suspended]], actor or "unknown", now,
                note=f"{staff_id} deactivated: blocked in the registry at once (the block "
                     "reaches each lock with the next key or sync)"
                     + (", device suspended." if suspended else "; no active device."))
        wait = until - time.time()  # outside the transaction, as revoke_staff
        if wait > 0:
            time.sleep(wait)
        return Revocation(int(detail["version"]), until), suspended

    def activate_staff(self, actor: str, staff_id: str) -> str | None:
        """Back from leave: active again, their suspended device restored (a
        revoked one never is). Returns the restored device's fingerprint."""
        reg = self.registry
        now = int(time.time())
        with self.act(actor, "staff activate", {"staff": staff_id}) as detail:
            if reg.staff(staff_id)["state"] == "active":
                raise InvalidInput(f"{staff_id} is already active")
            reg.db.execute("UPDATE staff SET state = 'active', changed_at = ? "
                           "WHERE staff_id = ?", (now, staff_id))
            row = reg.db.execute(
                "SELECT fingerprint FROM devices WHERE staff_id = ? AND state = 'suspended' "
                "ORDER BY changed_at DESC, enrolled_at DESC LIMIT 1", (staff_id,)).fetchone()
            restored = None
            if row is not None and reg.active_device(staff_id) is None:
                restored = str(row[0])
                reg.set_device_state(restored, "active", now)
                detail["receipt"] = self.write_receipt(
                    actor, "staff activate", staff_id, [("to", "device", restored)],
                    actor or "unknown", now, note=f"{staff_id} active again: device "
                    f"{restored} restored as their digital key.")
            detail["restored"] = restored
        return restored

    # --- bookings ----------------------------------------------------------------------
    def add_booking(self, actor: str, staff_id: str, unit: str, start: int, end: int) -> int:
        """The staffing unit books a staff member to a unit for a period: keys
        for that unit's clients within it (providers and doors still apply)."""
        if end <= start:
            raise InvalidInput("a booking must end after it starts")
        if end - start > 366 * 86400:
            raise InvalidInput("a booking lasts at most a year")
        with self.act(actor, "booking add", {"staff": staff_id, "unit": unit, "start": start,
                                             "end": end}) as detail:
            staff = self.registry.staff(staff_id)
            if staff["state"] != "active":
                raise InvalidInput(f"{staff_id} is deactivated")
            self._unit(unit, active=True)
            if staff["unit"] == unit:
                raise InvalidInput(f"{staff_id} works in {unit}: no booking needed")
            cur = self.registry.db.execute(
                "INSERT INTO bookings (staff_id, unit, start, end, created_at, created_by) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (staff_id, unit, start, end, int(time.time()), actor or "unknown"))
            detail["booking"] = int(cur.lastrowid or 0)
        return int(detail["booking"])

    def cancel_booking(self, actor: str, booking_id: int) -> list[str]:
        now = int(time.time())
        with self.act(actor, "booking cancel", {"booking": booking_id}) as detail:
            row = self.registry.db.execute("SELECT * FROM bookings WHERE booking_id = ?",
                                           (booking_id,)).fetchone()
            if row is None:
                raise InvalidInput(f"no booking {booking_id}")
            if row["cancelled_at"] is not None:
                raise InvalidInput(f"booking {booking_id} is already cancelled")
            self.registry.db.execute("UPDATE bookings SET cancelled_at = ? WHERE booking_id = ?",
                                     (now, booking_id))
            detail["blocked"] = self.enforce(now)
        return list(detail["blocked"])
