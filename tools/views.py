"""Read-only views of the registry, as lists of plain objects (times in POSIX
seconds), for lockctl's `list`, `show` and `audit` and later an HTTP API.
Nothing here changes the registry."""

from __future__ import annotations

import json
import sqlite3
import time
from typing import Any

from protocol import token as tok
from tools import access
from tools.registry import Registry, RegistryError


def _revoked(reg: Registry, now: int) -> tuple[dict[str, int], set[bytes]]:
    staff: dict[str, int] = {}
    tokens: set[bytes] = set()
    for r in reg.db.execute("SELECT kind, value, until FROM revocations"):
        if r["kind"] == "staff":
            staff[r["value"]] = max(staff.get(r["value"], 0), int(r["until"]))
        elif r["kind"] == "token":
            tokens.add(bytes.fromhex(r["value"]))
    return staff, tokens


def client(reg: Registry, row: sqlite3.Row) -> dict[str, Any]:
    cid = row["client_id"]
    locks = [r[0] for r in reg.db.execute(
        "SELECT lc.lock_id FROM lock_clients lc JOIN locks l USING (lock_id) "
        "WHERE lc.client_id = ? AND l.status = 'active' ORDER BY lc.lock_id", (cid,))]
    return {"client": cid, "name": row["name"], "address": row["address"], "unit": row["unit"],
            "providers": access.chosen_providers(reg, cid),
            "medicine_roles": access.roles_of(row["medicine_roles"]),
            "active": bool(row["active"]), "locks": locks}


def clients(reg: Registry, include_removed: bool = False) -> list[dict[str, Any]]:
    return [client(reg, r) for r in reg.db.execute("SELECT * FROM clients ORDER BY client_id")
            if include_removed or r["active"]]


def staff_member(reg: Registry, row: sqlite3.Row) -> dict[str, Any]:
    dev = reg.db.execute("SELECT fingerprint, state FROM devices WHERE staff_id = ? "
                         "ORDER BY enrolled_at DESC LIMIT 1", (row["staff_id"],)).fetchone()
    return {"staff": row["staff_id"], "name": row["name"], "provider": row["provider"],
            "unit": row["unit"], "role": row["role"], "state": row["state"],
            "device": dev["fingerprint"] if dev else None,
            "device_state": dev["state"] if dev else None}


def staff(reg: Registry, include_removed: bool = False) -> list[dict[str, Any]]:
    return [staff_member(reg, r) for r in reg.db.execute("SELECT * FROM staff ORDER BY staff_id")
            if include_removed or r["state"] == "active"]


def lock(reg: Registry, lock_id: str) -> dict[str, Any]:
    lk = reg.lock(lock_id)
    return {"lock": lk.lock_id, "door": lk.door, "suite": lk.suite, "clients": lk.clients,
            "provider": lk.provider, "status": lk.status, "commissioned_at": lk.commissioned_at,
            "epoch": lk.epoch, "last_seen": lk.last_seen,
            "revocation_version": lk.revocation_version, "clock_offset": lk.clock_offset,
            "battery_mv": lk.battery_mv, "log_count": lk.log_count,
            "log_capacity": lk.log_capacity}


def locks(reg: Registry) -> list[dict[str, Any]]:
    return [lock(reg, r[0]) for r in reg.db.execute("SELECT lock_id FROM locks ORDER BY lock_id")]


def provider(reg: Registry, name: str) -> dict[str, Any]:
    row = access.provider_row(reg, name)
    if row is None:
        raise RegistryError(f"no provider {name!r}")
    return {"provider": row["name"], "alarms": bool(row["alarms"]), "active": bool(row["active"]),
            "units": [r[0] for r in reg.db.execute(
                "SELECT unit_id FROM units WHERE provider = ? ORDER BY unit_id", (name,))],
            "staff": [r[0] for r in reg.db.execute(
                "SELECT staff_id FROM staff WHERE provider = ? ORDER BY staff_id", (name,))],
            "clients": [r[0] for r in reg.db.execute(
                "SELECT client_id FROM client_providers WHERE provider = ? ORDER BY client_id",
                (name,))]}


def providers(reg: Registry) -> list[dict[str, Any]]:
    return [provider(reg, r[0]) for r in reg.db.execute("SELECT name FROM providers ORDER BY name")]


def unit(reg: Registry, unit_id: str) -> dict[str, Any]:
    row = access.unit_row(reg, unit_id)
    if row is None:
        raise RegistryError(f"no unit {unit_id}")
    return {"unit": row["unit_id"], "provider": row["provider"], "name": row["name"],
            "active": bool(row["active"]),
            "staff": [r[0] for r in reg.db.execute(
                "SELECT staff_id FROM staff WHERE unit = ? ORDER BY staff_id", (unit_id,))],
            "clients": [r[0] for r in reg.db.execute(
                "SELECT client_id FROM clients WHERE unit = ? ORDER BY client_id", (unit_id,))]}


def units(reg: Registry) -> list[dict[str, Any]]:
    return [unit(reg, r[0]) for r in reg.db.execute("SELECT unit_id FROM units ORDER BY unit_id")]


def device(row: sqlite3.Row) -> dict[str, Any]:
    return {"staff": row["staff_id"], "fingerprint": row["fingerprint"],
            "enrolled_at": row["enrolled_at"], "state": row["state"],
            "changed_at": row["changed_at"]}


def token(reg: Registry, row: sqlite3.Row, now: int | None = None,
          revoked: tuple[dict[str, int], set[bytes]] | None = None) -> dict[str, Any]:
    now = int(time.time()) if now is None else now
    staff_cut, blocked = revoked if revoked is not None else _revoked(reg, now)
    cti = bytes(row["cti"])
    if cti in blocked or int(row["issued_at"]) < staff_cut.get(row["staff_id"], 0):
        state = "blocked"
    elif int(row["end"]) + tok.SKEW < now:
        state = "expired"
    else:
        state = "valid"
    return {"token": cti.hex(), "staff": row["staff_id"], "lock": row["lock_id"],
            "start": row["start"], "end": row["end"], "issued_at": row["issued_at"],
            "scope": row["scope"], "alarm": bool(row["alarm"]), "alarm_id": row["alarm_id"],
            "booking": row["booking_id"], "device": row["device"], "state": state}


def tokens(reg: Registry, staff_id: str | None = None, lock_id: str | None = None,
           valid_only: bool = False, now: int | None = None) -> list[dict[str, Any]]:
    now = int(time.time()) if now is None else now
    revoked = _revoked(reg, now)
    sql, params = "SELECT * FROM tokens WHERE 1", list[Any]()
    if staff_id:
        sql, params = sql + " AND staff_id = ?", [*params, staff_id]
    if lock_id:
        sql, params = sql + " AND lock_id = ?", [*params, lock_id]
    rows = [token(reg, r, now, revoked) for r in reg.db.execute(
        sql + " ORDER BY issued_at, lock_id", params)]
    return [r for r in rows if not valid_only or r["state"] == "valid"]


def token_by_id(reg: Registry, text: str) -> dict[str, Any]:
    """A token by its id in hex, or the first 8 or more digits of it."""
    t = text.strip().lower()
    if len(t) < 8 or len(t) > 32 or any(c not in "0123456789abcdef" for c in t):
        raise RegistryError("a token id is 8 to 32 hex digits")
    rows = [r for r in reg.db.execute("SELECT * FROM tokens") if bytes(r["cti"]).hex()
            .startswith(t)]
    if not rows:
        raise RegistryError(f"no token {t} in this site")
    if len(rows) > 1:
        raise RegistryError(f"{t} names more than one token: give more of its id")
    return token(reg, rows[0])


def bookings(reg: Registry, staff_id: str | None = None,
             unit_id: str | None = None) -> list[dict[str, Any]]:
    sql, params = "SELECT * FROM bookings WHERE 1", list[Any]()
    if staff_id:
        sql, params = sql + " AND staff_id = ?", [*params, staff_id]
    if unit_id:
        sql, params = sql + " AND unit = ?", [*params, unit_id]
    return [{"booking": r["booking_id"], "staff": r["staff_id"], "unit": r["unit"],
             "start": r["start"], "end": r["end"], "created_at": r["created_at"],
             "created_by": r["created_by"], "cancelled_at": r["cancelled_at"]}
            for r in reg.db.execute(sql + " ORDER BY start, booking_id", params)]


def alarm_keys(reg: Registry, start: int | None = None, end: int | None = None,
               lock_id: str | None = None) -> list[dict[str, Any]]:
    """The alarm keys issued (for a lock's doors, if given) overlapping start..end."""
    out = []
    for r in reg.db.execute("SELECT * FROM alarm_keys ORDER BY issued_at"):
        if start is not None and r["end"] < start or end is not None and r["start"] >= end:
            continue
        locks_ = [t[0] for t in reg.db.execute(
            "SELECT lock_id FROM tokens WHERE alarm_id = ? ORDER BY lock_id", (r["alarm_id"],))]
        if lock_id is not None and lock_id not in locks_:
            continue
        out.append({"alarm_id": r["alarm_id"], "client": r["client_id"], "staff": r["staff_id"],
                    "reason": r["reason"], "minutes": r["minutes"], "start": r["start"],
                    "end": r["end"], "issued_at": r["issued_at"], "device": r["device"],
                    "actor": r["actor"], "locks": locks_})
    return out


def booked_keys(reg: Registry, lock_id: str) -> list[dict[str, Any]]:
    """The keys for a lock issued under a booking (a staff member of another unit)."""
    return [{"token": bytes(r["cti"]).hex(), "staff": r["staff_id"], "booking": r["booking_id"],
             "unit": r["unit"], "start": r["start"], "end": r["end"]}
            for r in reg.db.execute(
                "SELECT t.cti, t.staff_id, t.booking_id, b.unit, t.start, t.end FROM tokens t "
                "JOIN bookings b USING (booking_id) WHERE t.lock_id = ? ORDER BY t.start",
                (lock_id,))]


def audit(reg: Registry, start: int | None = None, end: int | None = None,
          actor: str | None = None, lock_id: str | None = None,
          staff_id: str | None = None) -> list[dict[str, Any]]:
    """The audit log, oldest first; `end` is exclusive. A record concerns a lock
    or a staff member when its detail names it (also among its tokens' locks)."""
    sql, params = "SELECT * FROM audit WHERE 1", list[Any]()
    if start is not None:
        sql, params = sql + " AND at >= ?", [*params, start]
    if end is not None:
        sql, params = sql + " AND at < ?", [*params, end]
    if actor is not None:
        sql, params = sql + " AND actor = ?", [*params, actor]
    out = []
    for r in reg.db.execute(sql + " ORDER BY id", params):
        try:
            detail = json.loads(r["detail"])
        except ValueError:
            detail = {"raw": r["detail"]}
        if lock_id is not None and not _names(detail, "lock", lock_id, reg):
            continue
        if staff_id is not None and not _names(detail, "staff", staff_id, reg):
            continue
        out.append({"id": r["id"], "at": r["at"], "actor": r["actor"], "action": r["action"],
                    "detail": detail})
    return out


def _names(detail: dict[str, Any], key: str, value: str, reg: Registry) -> bool:
    if detail.get(key) == value:
        return True
    if key == "lock" and detail.get("tokens"):
        try:
            ctis = [bytes.fromhex(t) for t in detail["tokens"] if isinstance(t, str)]
        except ValueError:
            return False
        return any(reg.db.execute("SELECT 1 FROM tokens WHERE cti = ? AND lock_id = ?",
                                  (c, value)).fetchone() for c in ctis)
    return False
