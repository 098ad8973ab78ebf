"""The issuer's rule: who may hold a key to which door, and when. One place.

Every key the site issues (a shift key, an alarm key) is checked here before
it is made, and every change in the registry that could take a right away (a
client's providers or care plan, a removal, a deactivation, a cancelled
booking) checks the outstanding keys here again (tools/site.py blocks those
that no longer pass). Nothing here changes the registry.

The rule, for a staff member, a door (a lock) and a period:
- the staff member is active, and so are their provider and unit;
- a door serves clients; the key is for the visit of one of them, who is
  active, in an active unit, and has chosen the staff member's provider;
- a staff member of a unit needs a booking of the client's unit for the whole
  period when the client belongs to another unit (staff without a unit, such
  as an area's nurses, are not bound to one);
- a medicine cabinet only for the roles in the client's care plan
  (medicine_roles, nurses by default), never with an alarm key;
- a key box only for its own provider's staff;
- an alarm key only for night-patrol staff of a provider named for alarms
  (the client's own choice of providers does not bind the alarm response).
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from tools.registry import ROLES, LockRow, Registry

DOORS = ("apartment", "entrance", "waste-room", "laundry-room", "key-box", "medicine-cabinet")
SHARED_DOORS = ("entrance", "waste-room", "laundry-room")
ALARM_ROLE = "night-patrol"
DEFAULT_MEDICINE_ROLES = ("nurse",)
MAX_ALARM_MINUTES = 60


@dataclass(frozen=True)
class Verdict:
    """A door's answer: allowed (problem None), the booking that allowed it."""

    problem: str | None
    booking_id: int | None = None
    client_id: str | None = None


def door_clients_problem(door: str, clients: list[str]) -> str | None:
    """Commissioning: which doors may serve several clients."""
    if door not in DOORS:
        return f"unknown door kind {door!r}: one of {', '.join(DOORS)}"
    if not clients:
        return "name at least one client"
    if door not in SHARED_DOORS and len(clients) > 1:
        return (f"a {door} door serves one client; shared doors are "
                f"{', '.join(SHARED_DOORS)}")
    return None


def roles_of(text: str) -> list[str]:
    return [r for r in (p.strip() for p in text.split(",")) if r]


def check_roles(text: str, what: str = "role") -> list[str]:
    """A comma-separated list of roles, each known; refused otherwise."""
    roles = roles_of(text)
    if not roles:
        raise ValueError(f"name at least one {what}: {', '.join(ROLES)}")
    bad = [r for r in roles if r not in ROLES]
    if bad:
        raise ValueError(f"unknown {what} {bad[0]!r}: one of {', '.join(ROLES)}")
    return sorted(set(roles), key=roles.index)


def chosen_providers(reg: Registry, client_id: str) -> list[str]:
    return [r[0] for r in reg.db.execute(
        "SELECT provider FROM client_providers WHERE client_id = ? ORDER BY provider",
        (client_id,))]


def unit_row(reg: Registry, unit_id: str) -> sqlite3.Row | None:
    return reg.db.execute("SELECT * FROM units WHERE unit_id = ?",  # type: ignore[no-any-return]
                          (unit_id,)).fetchone()


def provider_row(reg: Registry, name: str) -> sqlite3.Row | None:
    return reg.db.execute("SELECT * FROM providers WHERE name = ?",  # type: ignore[no-any-return]
                          (name,)).fetchone()


def booking_for(reg: Registry, staff_id: str, unit: str, start: int, end: int) -> int | None:
    """A booking of `staff_id` to `unit` covering start..end, if any."""
    row = reg.db.execute(
        "SELECT booking_id FROM bookings WHERE staff_id = ? AND unit = ? AND cancelled_at IS NULL"
        " AND start <= ? AND end >= ? ORDER BY booking_id LIMIT 1",
        (staff_id, unit, start, end)).fetchone()
    return None if row is None else int(row[0])


def staff_problem(reg: Registry, staff: sqlite3.Row, alarm: bool = False) -> str | None:
    """What stops this staff member from holding any key."""
    sid = staff["staff_id"]
    if staff["state"] != "active":
        return f"{sid} is deactivated (lockctl staff activate {sid})"
    prov = provider_row(reg, staff["provider"]) if staff["provider"] else None
    if prov is None:
        return f"{sid} belongs to no provider: only a provider's staff get keys"
    if not prov["active"]:
        return f"{sid}'s provider {prov['name']} is removed"
    if staff["unit"]:
        unit = unit_row(reg, staff["unit"])
        if unit is not None and not unit["active"]:
            return f"{sid}'s unit {staff['unit']} is removed"
    if alarm:
        if staff["role"] != ALARM_ROLE:
            return (f"only night-patrol staff get an alarm key ({sid} is {staff['role']})")
        if not prov["alarms"]:
            return (f"{sid}'s provider {prov['name']} is not named for alarms "
                    f"(lockctl provider update {_q(prov['name'])} --alarms yes)")
    return None


def client_problem(reg: Registry, staff: sqlite3.Row, client: sqlite3.Row, start: int, end: int,
                   alarm: bool = False) -> Verdict:
    """May this staff member visit this client over start..end (doors aside)?"""
    cid = client["client_id"]
    if not client["active"]:
        return Verdict(f"client {cid} is removed")
    cunit = unit_row(reg, client["unit"]) if client["unit"] else None
    if cunit is not None and not cunit["active"]:
        return Verdict(f"{cid}'s unit {cunit['unit_id']} is removed: move the client "
                       f"(lockctl client update {cid} --unit UNIT)")
    if alarm:
        return Verdict(None, None, cid)
    chosen = chosen_providers(reg, cid)
    if staff["provider"] not in chosen:
        which = ", ".join(chosen) if chosen else "none"
        return Verdict(f"{cid} has not chosen {staff['provider']} (chosen: {which}): only staff "
                       "of a client's chosen providers get keys to the client's doors "
                       f"(lockctl client update {cid} --providers ...)")
    if cunit is not None and staff["unit"] and staff["unit"] != cunit["unit_id"]:
        booking = booking_for(reg, staff["staff_id"], cunit["unit_id"], start, end)
        if booking is None:
            return Verdict(f"{cid} is a client of unit {cunit['unit_id']} and {staff['staff_id']}"
                           f" works in {staff['unit']}: a key for another unit's clients needs "
                           f"a booking for the whole shift (lockctl booking add --staff "
                           f"{staff['staff_id']} --unit {cunit['unit_id']} --from ... --to ...)")
        return Verdict(None, booking, cid)
    return Verdict(None, None, cid)


def door_problem(staff: sqlite3.Row, client: sqlite3.Row, lock: LockRow,
                 alarm: bool = False) -> str | None:
    """The door kind's own rule."""
    cid = client["client_id"]
    if lock.door == "medicine-cabinet":
        if alarm:
            return f"{lock.lock_id} is a medicine cabinet: never opened with an alarm key"
        roles = roles_of(client["medicine_roles"])
        if staff["role"] not in roles:
            return (f"{lock.lock_id} is {cid}'s medicine cabinet: the care plan opens it to "
                    f"{', '.join(roles) or 'nobody'} only, and {staff['staff_id']} is "
                    f"{staff['role']} (lockctl client update {cid} --medicine-roles ...)")
    if lock.door == "key-box" and lock.provider != staff["provider"]:
        return (f"{lock.lock_id} is {lock.provider or 'no provider'}'s key box: only its "
                "provider's staff get its key")
    return None


def key_verdict(reg: Registry, staff: sqlite3.Row, lock: LockRow, start: int, end: int,
                clients: list[str] | None = None, alarm: bool = False) -> Verdict:
    """May `staff` hold a key to `lock` over start..end, for the visit of one of
    `clients` (all the lock's clients if None)? The first refusal otherwise."""
    if lock.status != "active":
        return Verdict(f"lock {lock.lock_id} is {lock.status}")
    problem = staff_problem(reg, staff, alarm)
    if problem is not None:
        return Verdict(problem)
    candidates = [c for c in lock.clients if clients is None or c in clients]
    first: Verdict | None = None
    best: Verdict | None = None
    for cid in candidates:
        client = reg.client(cid)
        v = client_problem(reg, staff, client, start, end, alarm)
        if v.problem is None:
            door = door_problem(staff, client, lock, alarm)
            if door is not None:
                v = Verdict(door)
        if v.problem is None:
            if best is None or (best.booking_id is not None and v.booking_id is None):
                best = v
        elif first is None:
            first = v
    if best is not None:
        return best
    return first or Verdict(f"lock {lock.lock_id} serves none of these clients")


def _q(text: str) -> str:
    import shlex
    return shlex.quote(text)
