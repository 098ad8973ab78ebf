"""The service layer's key issuing (part of tools/site.py's Site, kept here to
keep each module readable): shift keys and alarm keys, each checked against
the issuer's rule (tools/access.py) before it is made, and enforce(), which
blocks the outstanding keys the rule no longer allows after a change.
"""

from __future__ import annotations

import time
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from protocol import token as tok
from tools import access, issuer
from tools import device as device_mod
from tools.registry import LockRow, Registry, RegistryError
from tools.site_people import InvalidInput, check_id


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


class KeyActs:
    registry: Registry

    if TYPE_CHECKING:
        def act(self, actor: str, action: str, detail: dict[str, Any]
                ) -> AbstractContextManager[dict[str, Any]]: ...

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

    def roster_plan(self, rows: list[dict[str, Any]], now: int
                    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
        """A unit's roster, each row {line, staff, clients, start, end} (or
        {line, error} where it could not be read): (to issue now, not yet
        issuable, errors). One shift per staff member; a row whose shift ends
        more than 24 h ahead is not yet issuable (its "after" says from when)."""
        issue: list[dict[str, Any]] = []
        not_yet: list[dict[str, Any]] = []
        errors: list[dict[str, Any]] = []
        seen: dict[str, int] = {}
        for row in rows:
            if "error" in row:
                errors.append(row)
                continue
            staff_id = str(row["staff"])
            problem: str | None = self.shift_problem(staff_id, list(row["clients"]),
                                                     int(row["start"]), int(row["end"]), now)
            if problem is None and staff_id in seen:
                problem = (f"{staff_id} is on line {seen[staff_id]} too: one shift per staff "
                           "member")
            if problem is not None:
                errors.append({"line": row["line"], "error": str(problem)})
                continue
            seen[staff_id] = int(row["line"])
            if int(row["end"]) - now > tok.MAX_LIFETIME:
                not_yet.append({**row, "after": int(row["end"]) - tok.MAX_LIFETIME})
            else:
                issue.append(dict(row))
        return issue, not_yet, errors

    def issue_roster(self, actor: str, items: list[dict[str, Any]], now: int
                     ) -> list[tuple[dict[str, Any], bytes, list[issuer.Grant], str]]:
        """Issue a roster's rows (roster_plan's first list) as one act: all or none."""
        out = []
        with self.registry.tx():
            for item in items:
                data, grants, fp = self.issue_shift(actor, str(item["staff"]),
                                                    list(item["clients"]), int(item["start"]),
                                                    int(item["end"]), "open", False, now)
                out.append((item, data, grants, fp))
        return out

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
            from tools.site import revocation_blob
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
        check_id(alarm_id, "alarm id")
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
        blocked = []
        for t in reg.unblocked(list(reg.db.execute(
                "SELECT * FROM tokens WHERE end > ? ORDER BY issued_at", (now - tok.SKEW,))), now):
            cti = bytes(t["cti"])
            try:
                lk = reg.lock(t["lock_id"])
            except RegistryError:
                continue
            if lk.status != "active":
                continue  # a decommissioned lock opens for nobody: no entry to send it
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
