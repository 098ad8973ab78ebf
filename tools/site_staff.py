"""The service layer's acts on staff members (part of tools/site.py's Site,
kept here to keep each module readable): adding and changing them, their
leave (blocked at once, their device suspended, a receipt) and their return,
and the staffing unit's bookings of them to other units. Every act is one
transaction with its audit record, and a change that may take a right away
blocks, inside the same act, the keys the rule no longer allows
(Site.enforce()).
"""

from __future__ import annotations

import time
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

from tools import access
from tools.registry import ROLES, Registry
from tools.site_people import InvalidInput, check_id, check_name

if TYPE_CHECKING:
    from tools.site import Revocation


class StaffActs:
    registry: Registry

    if TYPE_CHECKING:
        def act(self, actor: str, action: str, detail: dict[str, Any]
                ) -> AbstractContextManager[dict[str, Any]]: ...

        def enforce(self, now: int | None = None) -> list[str]: ...

        def write_receipt(self, actor: str, kind: str, person: str,
                          items: list[tuple[str, str, str]], by: str, now: int | None = None,
                          lock_id: str | None = None, note: str | None = None) -> str: ...

        def _unit(self, unit_id: str, active: bool = False) -> Any: ...

    # --- staff -------------------------------------------------------------------------
    def add_staff(self, actor: str, staff_id: str, name: str, provider: str | None = None,
                  unit: str | None = None, role: str = "home-care") -> None:
        """A staff member of a provider (created if the site does not know it)."""
        check_id(staff_id, "staff id")
        check_name(name, "name")
        if not provider:
            raise InvalidInput("a staff member belongs to a provider: give --provider")
        check_name(provider, "provider name")
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

    def update_staff(self, actor: str, staff_id: str, name: str | None = None,
                     unit: str | None = None, role: str | None = None) -> list[str]:
        """A staff member's new name, unit (of their provider) or role; takes effect
        at once (the keys the rule no longer allows are blocked). Returns them."""
        changes = {k: v for k, v in (("name", name), ("unit", unit), ("role", role))
                   if v is not None}
        if not changes:
            raise InvalidInput("nothing to change: give --name, --unit or --role")
        if role is not None and role not in ROLES:
            raise InvalidInput(f"unknown role {role!r}: one of {', '.join(ROLES)}")
        now = int(time.time())
        with self.act(actor, "staff update", {"staff": staff_id, **changes}) as detail:
            reg = self.registry
            row = reg.staff(staff_id)
            if name is not None:
                reg.db.execute("UPDATE staff SET name = ? WHERE staff_id = ?",
                               (check_name(name, "name"), staff_id))
            if unit is not None:
                urow = self._unit(unit, active=True)
                if urow["provider"] != row["provider"]:
                    raise InvalidInput(f"unit {unit} belongs to {urow['provider']}, "
                                       f"not {row['provider']}")
                reg.db.execute("UPDATE staff SET unit = ? WHERE staff_id = ?", (unit, staff_id))
            if role is not None:
                reg.db.execute("UPDATE staff SET role = ? WHERE staff_id = ?", (role, staff_id))
            reg.db.execute("UPDATE staff SET changed_at = ? WHERE staff_id = ?", (now, staff_id))
            detail["blocked"] = self.enforce(now)
        return list(detail["blocked"])

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
