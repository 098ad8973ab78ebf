"""The log report a unit manager asks for ("loggningsrapport").

One report covers the doors of one lock, of a client, of a unit or the
attempts of one staff member over a period: rows in local time with staff
names, what happened in plain words (Swedish by default, tools/report_words.py),
the outcome and reason of every attempt, alarms and forced doors marked,
identical events in a row folded into one row with their count, summaries per
day and per person, and the log verdict of every lock in it (complete, or
which records are missing and why). As CSV for Swedish Excel, JSON for
systems, or HTML (tools/report_html.py) for people and for print.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from protocol import clock, events, reasons
from tools import issuer, logcheck, views
from tools import report_words as words
from tools.registry import LockRow, Registry

ATTEMPTS = (events.OPENED, events.ALARM_OPEN, events.REFUSED)
# Events a unit manager must see at once, besides alarm openings and forced doors.
FAULTS = (events.DOOR_LEFT_OPEN, events.JAMMED, events.FACTORY_RESET,
          events.BATTERY_CRITICAL, events.WATCHDOG_RESET)
KINDS = ("lock", "client", "staff", "unit")
# A chart with a bar pair per day stays readable up to about a year.
MAX_FILLED_DAYS = 400


@dataclass
class Subject:
    """What the report is about: the locks it covers, and for a staff member
    the key whose attempts it shows."""
    kind: str  # one of KINDS
    id: str
    name: str
    locks: list[LockRow]
    key_id: bytes | None = None
    clients: list[str] = field(default_factory=list)  # whose alarm keys the report lists


@dataclass
class Row:
    lock_id: str
    door: str
    epoch: int
    seq: int
    last_seq: int  # the last of a folded run (== seq for one event)
    count: int  # identical events in a row folded into this one
    time: int  # POSIX
    last_time: int
    local: str  # ISO 8601 local time with offset
    day: str  # local date
    staff_id: str
    staff_name: str
    provider: str
    kind: str  # stable event name ("opened", "refused", "door-forced", ...)
    event: str  # in the report's language
    outcome: str  # "opened", "refused" or "" for events that are not attempts
    reason: str  # stable reason name (protocol/reasons.py) for a refusal
    reason_text: str  # in the report's language
    alarm: bool
    forced: bool
    attention: str  # "alarm", "forced", "fault" or ""
    clock_trusted: bool
    alarm_id: str = ""  # the alarm key's (alarm access), with its reason
    alarm_reason: str = ""
    booking: str = ""  # the booking that let a staff member of another unit in
    _fold: tuple[Any, ...] = field(default=(), repr=False, compare=False)


def mark_keys(rows: list[Row], alarm_keys: list[dict[str, Any]],
              booked: list[dict[str, Any]]) -> None:
    """Name the alarm (id, reason) of each alarm-access row and the booking of
    each attempt made with a key issued under one: the key that was in force
    for that staff member at that time (views.alarm_keys, views.booked_keys)."""
    skew = 120  # protocol.token.SKEW: a key opens this early and late
    for r in rows:
        if not r.staff_id or not r.outcome:
            continue
        if r.alarm:
            for a in alarm_keys:
                if a["staff"] == r.staff_id and a["start"] - skew <= r.time <= a["end"] + skew:
                    r.alarm_id, r.alarm_reason = a["alarm_id"], a["reason"]
        for b in booked:
            if b["staff"] == r.staff_id and b["start"] - skew <= r.time <= b["end"] + skew:
                r.booking = str(b["booking"])


def alarm_openings(rows: list[Row]) -> list[dict[str, Any]]:
    """The report's section of alarm openings, so that abuse is visible."""
    return [{"time": r.time, "local": r.local, "lock": r.lock_id, "staff_id": r.staff_id,
             "staff_name": r.staff_name, "outcome": r.outcome, "count": r.count,
             "alarm_id": r.alarm_id, "reason": r.alarm_reason}
            for r in rows if r.alarm and r.outcome]


@dataclass
class Report:
    lang: str
    subject: Subject
    site: str
    zone: str
    day_from: date | None
    day_to: date | None
    generated: int
    verdicts: list[dict[str, Any]]
    rows: list[Row]
    per_day: list[dict[str, Any]]
    per_staff: list[dict[str, Any]]
    alarm_keys: list[dict[str, Any]] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return all(v["complete"] for v in self.verdicts)

    def label(self, key: str) -> str:
        return words.LABELS[self.lang][key]

    @property
    def attention(self) -> list[Row]:
        return [r for r in self.rows if r.attention]


def _kind(code: int, detail: int) -> str:
    special = {(events.DOOR_OPENED, events.DOOR_FORCED): "door-forced",
               (events.DOOR_OPENED, events.DOOR_BY_HAND): "door-by-hand",
               (events.LOG_READ, events.LOG_READ_SERIAL): "log-read-serial",
               (events.TIME_SET, events.TIME_SET_FORCED): "time-set-forced"}
    return special.get((code, detail)) or events.NAMES.get(code, f"event-{code}").replace(" ",
                                                                                         "-")


def rows_for(records: list[Any], staff: dict[bytes, Any], zone: str, lang: str = "en",
             lock: LockRow | None = None, fold: bool = True) -> list[Row]:
    """Records (registry rows, or raw 32-byte records) as report rows; with
    `fold`, identical events in a row become one row with their count."""
    tz = ZoneInfo(zone)
    unknown = words.LABELS[lang]["unknown_key"]
    out: list[Row] = []
    for r in records:
        raw = bytes(r) if isinstance(r, (bytes, bytearray)) else bytes(r["record"])
        e = events.decode(raw)
        epoch = 1 if isinstance(r, (bytes, bytearray)) else int(r["epoch"])
        lock_id = (lock.lock_id if lock is not None else
                   "" if isinstance(r, (bytes, bytearray)) else str(r["lock_id"]))
        posix = clock.to_unix(e.time)
        when = datetime.fromtimestamp(posix, tz)
        person = staff.get(e.key_id)
        sid = person["staff_id"] if person is not None else ""
        name = person["name"] if person is not None else (
            "" if e.key_id == events.NO_KEY else unknown)
        provider = (person["provider"] or "") if person is not None else ""
        outcome = reason = reason_text = ""
        if e.code == events.PEER_SUMMARY:
            # Its key id field holds counts, not a key.
            sid, name = "", ""
            frames_, refusals, timeouts, other = events.summary_counts(e.key_id)
            reason_text = (f"{e.detail} i allt: {refusals} nekade, {frames_} oläsbara, "
                           f"{timeouts} för långsamma, {other} andra" if lang == "sv" else
                           f"{e.detail} in all: {refusals} refused, {frames_} unreadable, "
                           f"{timeouts} timed out, {other} other")
        if e.code in (events.OPENED, events.ALARM_OPEN):
            outcome = "opened"
        elif e.code == events.REFUSED:
            outcome = "refused"
            reason, reason_text = reasons.name(e.detail), words.reason_text(lang, e.detail)
        alarm = e.code == events.ALARM_OPEN or bool(e.flags & events.FLAG_ALARM_ACCESS)
        forced = e.code == events.DOOR_OPENED and e.detail == events.DOOR_FORCED
        attention = ("alarm" if alarm else "forced" if forced else
                     "fault" if e.code in FAULTS else "")
        key = (e.code, e.detail, bytes(e.key_id), e.flags, when.date())
        prev = out[-1] if out else None
        if (fold and prev is not None and prev._fold == key and prev.epoch == epoch
                and prev.lock_id == lock_id and e.seq == prev.last_seq + 1):
            prev.count += 1
            prev.last_seq, prev.last_time = e.seq, posix
            continue
        out.append(Row(lock_id, lock.door if lock is not None else "", epoch, e.seq, e.seq, 1, posix, posix,
                       when.isoformat(timespec="seconds"), when.date().isoformat(), sid, name,
                       provider, _kind(e.code, e.detail),
                       words.event_text(lang, e.code, e.detail), outcome, reason, reason_text,
                       alarm, forced, attention,
                       not e.flags & events.FLAG_CLOCK_UNTRUSTED, _fold=key))
    return out


def verify(reg: Registry, lock_id: str) -> list[logcheck.EpochVerdict]:
    """Every commissioning epoch of the lock, checked (tools/logcheck.py)."""
    log_key = issuer.log_key_for(reg.site_secret(), lock_id)
    days = int(reg.setting("retention_days"))
    return [logcheck.check_epoch(com, reg.events(lock_id, com["epoch"]), log_key, reg.zone, days,
                                 reg.overwritten(lock_id, com["epoch"]))
            for com in reg.commissionings(lock_id)]


def _lock_verdict(reg: Registry, lock: LockRow, lang: str) -> dict[str, Any]:
    found = verify(reg, lock.lock_id)
    texts = [words.verdict_text(lang, v) for v in found]
    if len(found) > 1:
        prefix = "Driftsättning" if lang == "sv" else "Commissioning"
        texts = [f"{prefix} {v.epoch}: {t}" for v, t in zip(found, texts, strict=True)]
    return {"lock": lock.lock_id, "door": lock.door,
            "complete": all(v.complete for v in found), "verdict": " ".join(texts),
            "epochs": [v.as_json() for v in found]}


def _days(day_from: date | None, day_to: date | None, seen: list[str]) -> list[str]:
    """The days of the period, each once (empty days too, for the chart)."""
    if not seen and not (day_from and day_to):
        return []
    first = day_from or date.fromisoformat(min(seen))
    last = day_to or date.fromisoformat(max(seen))
    if (last - first).days > MAX_FILLED_DAYS:
        return sorted(set(seen))
    return [(first + timedelta(days=i)).isoformat() for i in range((last - first).days + 1)]


def summaries(rows: list[Row], day_from: date | None, day_to: date | None
              ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    per_day: dict[str, dict[str, Any]] = {d: {"day": d, "openings": 0, "refusals": 0, "alarms": 0, "forced": 0}
               for d in _days(day_from, day_to, [r.day for r in rows])}
    people: dict[str, dict[str, Any]] = {}
    doors: dict[str, set[str]] = {}
    for r in rows:
        d = per_day.setdefault(r.day, {"day": r.day, "openings": 0, "refusals": 0,
                                       "alarms": 0, "forced": 0})
        d["openings"] += r.count if r.outcome == "opened" else 0
        d["refusals"] += r.count if r.outcome == "refused" else 0
        d["alarms"] += r.count if r.alarm else 0
        d["forced"] += r.count if r.forced else 0
        if not r.outcome or not (r.staff_id or r.staff_name):
            continue
        who = r.staff_id or r.staff_name
        p = people.setdefault(who, {"staff_id": r.staff_id, "name": r.staff_name,
                                    "provider": r.provider, "openings": 0, "alarms": 0,
                                    "refusals": 0, "doors": 0, "first": r.time,
                                    "last": r.last_time})
        p["openings"] += r.count if r.outcome == "opened" else 0
        p["alarms"] += r.count if r.alarm else 0
        p["refusals"] += r.count if r.outcome == "refused" else 0
        p["first"], p["last"] = min(p["first"], r.time), max(p["last"], r.last_time)
        doors.setdefault(who, set()).add(r.lock_id)
    for who, p in people.items():
        p["doors"] = len(doors[who])
    return ([per_day[d] for d in sorted(per_day)],
            sorted(people.values(), key=lambda p: (p["name"].casefold(), p["staff_id"])))


def build(reg: Registry, subject: Subject, day_from: date | None, day_to: date | None,
          lang: str, now: int) -> Report:
    staff = reg.staff_by_key_id()
    rows: list[Row] = []
    verdicts = []
    for lock in subject.locks:
        records = reg.events(lock.lock_id)
        if subject.key_id is not None:
            records = [r for r in records if bytes(r["key_id"]) == subject.key_id]
        lock_rows = rows_for(records, staff, reg.zone, lang, lock)
        mark_keys(lock_rows, views.alarm_keys(reg, lock_id=lock.lock_id),
                  views.booked_keys(reg, lock.lock_id))
        rows += lock_rows
        verdicts.append(_lock_verdict(reg, lock, lang))
    rows = [r for r in rows if (not day_from or r.day >= day_from.isoformat())
            and (not day_to or r.day <= day_to.isoformat())]
    if len(subject.locks) > 1:
        rows.sort(key=lambda r: (r.time, r.lock_id, r.epoch, r.seq))
    per_day, per_staff = summaries(rows, day_from, day_to)
    return Report(lang, subject, reg.name, reg.zone, day_from, day_to, now, verdicts, rows,
                  per_day, per_staff, alarm_keys(reg, subject, rows, day_from, day_to))


def _bounds(reg: Registry, day_from: date | None, day_to: date | None) -> tuple[int, int]:
    tz = ZoneInfo(reg.zone)
    start = (int(datetime.combine(day_from, datetime.min.time(), tz).timestamp())
             if day_from else 0)
    end = (int(datetime.combine(day_to + timedelta(days=1), datetime.min.time(), tz)
               .timestamp()) if day_to else 2 ** 62)
    return start, end


def alarm_keys(reg: Registry, subject: Subject, rows: list[Row], day_from: date | None,
               day_to: date | None) -> list[dict[str, Any]]:
    """The alarm keys issued in the period for the report's clients (or to its
    staff member), each with the alarm openings its holder made at the
    report's doors while it was valid: a key issued and never used shows 0."""
    start, end = _bounds(reg, day_from, day_to)
    staff_id = subject.id if subject.kind == "staff" else None
    out = []
    for k in reg.alarm_keys_for(subject.clients, staff_id, start, end):
        used = sum(r.count for r in rows if r.alarm and r.outcome == "opened"
                   and r.staff_id == k["staff_id"] and k["start"] - 120 <= r.time
                   <= k["end"] + 120)
        person = reg.staff(k["staff_id"])
        out.append({"alarm_id": k["alarm_id"], "client_id": k["client_id"],
                    "client_name": reg.client(k["client_id"])["name"],
                    "staff_id": k["staff_id"], "staff_name": person["name"],
                    "reason": k["reason"], "minutes": k["minutes"], "start": k["start"],
                    "end": k["end"], "issued_at": k["issued_at"], "issued_by": k["actor"],
                    "alarm_openings": used})
    return out


# --- CSV (Swedish Excel) and JSON ------------------------------------------------------

CSV_COLUMNS = {
    "sv": ("datum", "tid", "tidpunkt", "lås", "dörr", "person_id", "namn", "utförare",
           "händelse", "utfall", "orsak", "antal", "larm", "uppbruten", "klocka_säker",
           "logg_komplett", "post", "till_post"),
    "en": ("date", "time", "timestamp", "lock", "door", "staff_id", "name", "provider",
           "event", "outcome", "reason", "count", "alarm", "forced", "clock_trusted",
           "log_complete", "seq", "last_seq"),
}
OUTCOMES = {"sv": {"opened": "upplåst", "refused": "nekad", "": ""},
            "en": {"opened": "opened", "refused": "refused", "": ""}}
VERDICT_EVENT = {"sv": "loggkontroll", "en": "log check"}


def _cell(value: str) -> str:
    """A name or text Excel would run as a formula (=, +, -, @, or a tab or
    carriage return first) is kept as text: a leading apostrophe."""
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


def to_csv(rep: Report) -> bytes:
    """`;`-separated, UTF-8 with a byte-order mark, ISO dates, yes/no words:
    what Excel set to Swedish opens into columns as it is. The log verdict
    comes first, one row per lock, and again in every row (log_complete)."""
    lang = rep.lang
    yes, no = words.YES_NO[lang]
    yn = {True: yes, False: no}
    complete = {v["lock"]: v["complete"] for v in rep.verdicts}
    buf = io.StringIO()
    w = csv.writer(buf, delimiter=";", lineterminator="\r\n")
    w.writerow(CSV_COLUMNS[lang])
    for v in rep.verdicts:
        w.writerow(["", "", "", v["lock"], words.door_text(lang, v["door"]), "", "", "",
                    VERDICT_EVENT[lang], "", _cell(v["verdict"]), "", "", "", "",
                    yn[v["complete"]], "", ""])
    for r in rep.rows:
        w.writerow([r.day, r.local[11:19], r.local, r.lock_id, words.door_text(lang, r.door),
                    r.staff_id, _cell(r.staff_name), _cell(r.provider), r.event,
                    OUTCOMES[lang][r.outcome], _cell(r.reason_text), r.count, yn[r.alarm],
                    yn[r.forced], yn[r.clock_trusted], yn[complete[r.lock_id]], r.seq,
                    r.last_seq])
    return b"\xef\xbb\xbf" + buf.getvalue().encode("utf-8")


def _row_json(r: Row) -> dict[str, Any]:
    d = asdict(r)
    del d["_fold"]
    return d


def to_json(rep: Report) -> bytes:
    s = rep.subject
    data = {
        "subject": {"kind": s.kind, "id": s.id, "name": s.name},
        "site": rep.site, "zone": rep.zone, "lang": rep.lang,
        "from": rep.day_from.isoformat() if rep.day_from else None,
        "to": rep.day_to.isoformat() if rep.day_to else None,
        "generated": rep.generated, "complete": rep.complete,
        "verdict": " ".join(f"{v['lock']}: {v['verdict']}" for v in rep.verdicts),
        "verdicts": rep.verdicts,
        "locks": [{"lock": lk.lock_id, "door": lk.door, "clients": lk.clients,
                   "status": lk.status} for lk in s.locks],
        "per_day": rep.per_day, "per_staff": rep.per_staff, "alarm_keys": rep.alarm_keys,
        "alarm_openings": alarm_openings(rep.rows),
        "events": [_row_json(r) for r in rep.rows],
    }
    return (json.dumps(data, indent=2, ensure_ascii=False) + "\n").encode("utf-8")


def subject_for(reg: Registry, kind: str, ident: str) -> Subject:
    """The locks a report covers; an unknown id is a RegistryError (exit 1)."""
    if kind == "lock":
        lk = reg.lock(ident)
        names = [reg.client(c)["name"] for c in lk.clients]
        return Subject(kind, ident, ", ".join(names) or ident, [lk], clients=lk.clients)
    if kind == "client":
        return Subject(kind, ident, str(reg.client(ident)["name"]), reg.locks_of_client(ident),
                       clients=[ident])
    if kind == "unit":
        name, clients, locks = reg.locks_of_unit(ident)
        return Subject(kind, ident, name, locks, clients=clients)
    if kind == "staff":
        person = reg.staff(ident)
        return Subject(kind, ident, str(person["name"]), reg.locks_of_staff(ident),
                       key_id=bytes(person["key_id"]))
    raise ValueError(f"no report kind {kind!r}")
