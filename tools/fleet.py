"""Fleet health: the problems a lock's recorded status shows, and the query
that finds them for the whole fleet.

- the problem rules: pure functions over one lock's recorded status and the
  site's view (`lock_problems`, `staff_problems`), used by `fleet status` and
  `lock info` alike;
- the query (`fleet_view`): the whole fleet in a fixed number of SQL queries,
  however many locks the site has.

What a key brings home and how it is checked is tools/statusfile.py. Times are
POSIX seconds throughout.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Iterable
from zoneinfo import ZoneInfo

from protocol import token as tok

# Thresholds of the problem rules.
CLOCK_DRIFT_S = 300
CLOCK_DRIFT_URGENT_S = 3600
LOG_FILL = 0.75
SILENT_S = 7 * 86400
SILENT_LONG_S = 30 * 86400
BATTERY_DAYS_NOTICE = 60
BATTERY_DAYS_LOW = 30
BATTERY_DAYS_URGENT = 7
ALARM_NIGHT_KEYS = 5  # alarm keys in one night that make a patrol worth a look
ALARM_WINDOW_S = 7 * 86400  # nights looked at
NIGHT_START_HOUR, NIGHT_END_HOUR = 21, 7

KINDS = ("block-missing", "clock-drift", "battery", "log-fill", "silent", "alarms")
SEVERITY = {1: "notice", 2: "attention", 3: "URGENT"}


# --- the problem rules -----------------------------------------------------------------

@dataclass(frozen=True)
class Problem:
    kind: str
    severity: int  # 1 notice, 2 attention, 3 urgent
    since: int | None
    text: str
    action: str

    def as_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "severity": self.severity, "since": self.since,
                "text": self.text, "action": self.action}


@dataclass(frozen=True)
class LockView:
    """One lock as the registry last heard of it."""

    lock_id: str
    last_seen: int | None
    revocation_version: int | None
    clock_offset: int | None
    clock_trusted: bool | None
    battery: int | None
    battery_mv: int | None
    battery_days: int | None
    log_count: int | None
    log_capacity: int | None
    last_seq: int | None
    collected_seq: int
    firmware: str | None = None


@dataclass
class SiteView:
    """What the rules need of the site beyond one lock's row."""

    now: int
    zone: ZoneInfo
    version: int  # the site's block-list version
    # lock id -> [(block version, made at)] of blocks that cover a key for
    # that lock still valid now (only those can let someone in)
    blocks: dict[str, list[tuple[int, int]]] = field(default_factory=dict)


def duration_text(seconds: int) -> str:
    s = abs(int(seconds))
    if s < 120:
        return f"{s} s"
    if s < 2 * 3600:
        return f"{round(s / 60)} min"
    if s < 2 * 86400:
        return f"{round(s / 3600)} h"
    return f"{round(s / 86400)} days"


def _when(t: int, zone: ZoneInfo) -> str:
    return datetime.fromtimestamp(t, zone).strftime("%Y-%m-%d %H:%M")


def lock_problems(lock: LockView, site: SiteView) -> list[Problem]:
    """Everything about one lock that needs someone to act, most urgent first."""
    out: list[Problem] = []
    now = site.now
    have = lock.revocation_version or 0
    missing = [(v, at) for v, at in site.blocks.get(lock.lock_id, []) if v > have]
    if missing:
        behind = max(site.version - have, 1)
        since = min(at for _, at in missing)
        out.append(Problem(
            "block-missing", 3, since,
            f"the block list is {behind} version{'s' if behind > 1 else ''} behind the site "
            f"(it has {have}, the site {site.version}): a block made {_when(since, site.zone)} "
            "has not arrived",
            "run lockctl lock sync at the lock, or issue a fresh key to a staff member who "
            "visits it today (keys carry the block list)"))
    if lock.clock_trusted is False:
        out.append(Problem(
            "clock-drift", 3, lock.last_seen,
            "clock not trusted (the lock lost power): it opens only for keys valid at its "
            "last trusted time",
            "run lockctl lock sync, or issue a fresh key to a staff member who visits it "
            "(keys carry the time)"))
    elif lock.clock_offset is not None and abs(lock.clock_offset) > CLOCK_DRIFT_S:
        way = "fast" if lock.clock_offset > 0 else "slow"
        out.append(Problem(
            "clock-drift", 3 if abs(lock.clock_offset) > CLOCK_DRIFT_URGENT_S else 2,
            lock.last_seen, f"clock {duration_text(lock.clock_offset)} {way}",
            "run lockctl lock sync (a key issued now also carries the time)"))
    battery = _battery_problem(lock)
    if battery is not None:
        out.append(battery)
    if lock.last_seq is not None and lock.log_capacity:
        waiting = max(0, lock.last_seq - lock.collected_seq)
        fill = min(waiting, lock.log_capacity) / lock.log_capacity
        if waiting > lock.log_capacity:
            out.append(Problem(
                "log-fill", 3, lock.last_seen,
                f"log full: {waiting} records not collected, more than the lock holds "
                f"({lock.log_capacity}): the oldest are being overwritten",
                "collect the log now: lockctl log pull"))
        elif fill > LOG_FILL:
            out.append(Problem(
                "log-fill", 2, lock.last_seen,
                f"log {round(fill * 100)} % full of records not yet collected "
                f"({waiting} of {lock.log_capacity})",
                "collect the log: lockctl log pull (the oldest are overwritten when it is "
                "full)"))
    if lock.last_seen is None or now - lock.last_seen > SILENT_S:
        quiet = None if lock.last_seen is None else now - lock.last_seen
        out.append(Problem(
            "silent", 2 if quiet is None or quiet > SILENT_LONG_S else 1, lock.last_seen,
            "never heard from" if quiet is None else
            f"not heard from in {duration_text(quiet)} (last {_when(lock.last_seen or 0, site.zone)})",
            "check it at the next visit (lockctl lock info), and that staff devices' "
            "status files are ingested (lockctl fleet ingest)"))
    out.sort(key=lambda p: (-p.severity, p.since or 0))
    return out


def _battery_problem(lock: LockView) -> Problem | None:
    """From the lock's own forecast where it sends one (days left at its
    recent openings), else from its battery level."""
    mv = f" ({lock.battery_mv} mV)" if lock.battery_mv else ""
    days = lock.battery_days
    left = "" if days is None else f": about {days} days left"
    if lock.battery == 2:
        return Problem("battery", 3, lock.last_seen, f"battery critical{left}{mv}",
                       "replace the batteries now")
    if days is not None and days <= BATTERY_DAYS_URGENT:
        return Problem("battery", 3, lock.last_seen, f"battery nearly empty{left}{mv}",
                       "replace the batteries now")
    if lock.battery == 1 or (days is not None and days <= BATTERY_DAYS_LOW):
        return Problem("battery", 2, lock.last_seen, f"battery low{left}{mv}",
                       "replace the batteries at the next visit")
    if days is not None and days <= BATTERY_DAYS_NOTICE:
        return Problem("battery", 1, lock.last_seen, f"battery: about {days} days left{mv}",
                       "plan a battery change within a month")
    return None


@dataclass(frozen=True)
class AlarmKey:
    staff_id: str
    issued_at: int
    lock_id: str
    alarm_id: str | None = None  # `alarm issue`'s id: one alarm response, all its doors


def night_of(t: int, zone: ZoneInfo) -> datetime | None:
    """The start (local 21:00) of the night `t` falls in, or None by day."""
    local = datetime.fromtimestamp(t, zone)
    if local.hour >= NIGHT_START_HOUR:
        day = local.date()
    elif local.hour < NIGHT_END_HOUR:
        day = local.date() - timedelta(days=1)
    else:
        return None
    return datetime(day.year, day.month, day.day, NIGHT_START_HOUR, tzinfo=zone)


def staff_problems(keys_: Iterable[AlarmKey], site: SiteView,
                   names: dict[str, str] | None = None) -> dict[str, list[Problem]]:
    """Patrols given many alarm keys in one night. One alarm response is one
    issue (its keys for the client's doors share the alarm id, or without one
    the issue time)."""
    nights: dict[tuple[str, int], set[object]] = {}
    for k in keys_:
        if k.issued_at < site.now - ALARM_WINDOW_S:
            continue
        night = night_of(k.issued_at, site.zone)
        if night is not None:
            nights.setdefault((k.staff_id, int(night.timestamp())), set()).add(
                k.alarm_id or k.issued_at)
    out: dict[str, list[Problem]] = {}
    for (staff, start), issues in sorted(nights.items()):
        if len(issues) < ALARM_NIGHT_KEYS:
            continue
        who = f"{names[staff]} ({staff})" if names and staff in names else staff
        out.setdefault(staff, []).append(Problem(
            "alarms", 3 if len(issues) >= 2 * ALARM_NIGHT_KEYS else 2, start,
            f"{who} was given {len(issues)} alarm keys in the night of "
            f"{_when(start, site.zone)[:10]}",
            "check the night's alarms with the alarm centre (lockctl log report --staff), "
            "and whether the patrol needs help"))
    for probs in out.values():
        probs.sort(key=lambda p: (-p.severity, p.since or 0))
    return out


# --- the whole fleet, in a fixed number of queries ---------------------------------------

_LOCKS = """
SELECT l.lock_id, l.last_seen, l.revocation_version, l.clock_offset, l.clock_trusted,
       l.battery, l.battery_mv, l.battery_days, l.log_count, l.log_capacity, l.last_seq,
       l.firmware,
       (SELECT MAX(e.seq) FROM events e WHERE e.lock_id = l.lock_id AND e.epoch = l.epoch)
           AS held_seq,
       c.first_seq, c.pruned_seq
FROM locks l LEFT JOIN commissionings c ON c.lock_id = l.lock_id AND c.epoch = l.epoch
WHERE l.status = 'active'
"""

# Blocks still in force (as Registry.revocation_state drops them), each with
# its version: the site's version counts every block ever made.
_BLOCKS = """
SELECT * FROM (SELECT id, kind, value, until, created_at,
                      ROW_NUMBER() OVER (ORDER BY id) AS version FROM revocations)
WHERE (kind = 'staff' AND until + :staff_life >= :now)
   OR (kind = 'token' AND until + :skew >= :now)
"""

# The keys valid now that a block in force covers.
_COVERED = """
SELECT cti, staff_id, lock_id, issued_at FROM tokens
WHERE end > :now AND (
    staff_id IN (SELECT value FROM revocations WHERE kind = 'staff' AND until + :staff_life >= :now)
    OR lower(hex(cti)) IN (SELECT value FROM revocations WHERE kind = 'token'
                           AND until + :skew >= :now))
"""

_ALARMS = ("SELECT staff_id, issued_at, lock_id, alarm_id FROM tokens "
           "WHERE alarm = 1 AND issued_at >= ?")


def _lock_view(r: Any) -> LockView:
    if r["held_seq"] is not None:
        collected = int(r["held_seq"])
    elif r["pruned_seq"]:
        collected = int(r["pruned_seq"])
    else:
        collected = int(r["first_seq"]) - 1 if r["first_seq"] else 0
    trusted = r["clock_trusted"]
    return LockView(r["lock_id"], r["last_seen"], r["revocation_version"], r["clock_offset"],
                    None if trusted is None else bool(trusted), r["battery"], r["battery_mv"],
                    r["battery_days"], r["log_count"], r["log_capacity"], r["last_seq"],
                    collected, r["firmware"])


def fleet_view(reg: Any, now: int, lock_id: str | None = None
               ) -> tuple[list[LockView], SiteView, list[AlarmKey], dict[str, str]]:
    """Every active lock (or one), the site's view, recent alarm keys and staff
    names: the same few queries whatever the number of locks."""
    db = reg.db
    zone = ZoneInfo(reg.zone)
    version = int(reg.setting("revocation_version"))
    params = {"now": now, "staff_life": tok.MAX_LIFETIME + tok.SKEW, "skew": tok.SKEW}
    if lock_id is None:
        rows = db.execute(_LOCKS).fetchall()
    else:
        rows = db.execute(_LOCKS + " AND l.lock_id = ?", (lock_id,)).fetchall()
    locks = [_lock_view(r) for r in rows]
    site = SiteView(now, zone, version)
    blocks = db.execute(_BLOCKS, params).fetchall()
    if blocks:
        staff_blocks: dict[str, list[tuple[int, int, int]]] = {}
        token_blocks: dict[bytes, tuple[int, int]] = {}
        for b in blocks:
            if b["kind"] == "staff":
                staff_blocks.setdefault(b["value"], []).append(
                    (int(b["until"]), int(b["version"]), int(b["created_at"])))
            else:
                try:
                    token_blocks[bytes.fromhex(b["value"])] = (int(b["version"]),
                                                               int(b["created_at"]))
                except ValueError:
                    continue
        for t in db.execute(_COVERED, params):
            hits = [(v, at) for until, v, at in staff_blocks.get(t["staff_id"], [])
                    if t["issued_at"] < until]
            tb = token_blocks.get(bytes(t["cti"]))
            if tb is not None:
                hits.append(tb)
            if hits:
                site.blocks.setdefault(t["lock_id"], []).extend(hits)
    alarms = [AlarmKey(r[0], int(r[1]), r[2], r[3])
              for r in db.execute(_ALARMS, (now - ALARM_WINDOW_S - 86400,))]
    names = {r[0]: r[1] for r in db.execute("SELECT staff_id, name FROM staff")} if alarms else {}
    return locks, site, alarms, names


def fleet_status(reg: Any, now: int, show_all: bool = False) -> dict[str, Any]:
    """`fleet status --json`: the locks (and staff) that need attention, most
    urgent first; with show_all every active lock."""
    locks, site, alarms, names = fleet_view(reg, now)
    rows = []
    for lk in locks:
        probs = lock_problems(lk, site)
        if probs or show_all:
            rows.append((lk, probs))
    rows.sort(key=lambda x: (-max((p.severity for p in x[1]), default=0),
                             min((p.since or 0 for p in x[1]), default=0), x[0].lock_id))
    staff = staff_problems(alarms, site, names)
    staff_rows = sorted(staff.items(), key=lambda x: (-max(p.severity for p in x[1]), x[0]))
    return {"locks": [{"lock": lk.lock_id, "last_seen": lk.last_seen,
                       "problems": [p.as_json() for p in probs]} for lk, probs in rows],
            "staff": [{"staff": s, "problems": [p.as_json() for p in probs]}
                      for s, probs in staff_rows]}


def one_lock_problems(reg: Any, lock_id: str, now: int) -> list[Problem]:
    """`lock info`: the same rules over one lock's recorded status."""
    locks, site, _, _ = fleet_view(reg, now, lock_id)
    return lock_problems(locks[0], site) if locks else []
