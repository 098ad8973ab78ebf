"""The log report a unit manager asks for ("loggningsrapport").

Rows in local time with staff names, the outcome and reason of every attempt,
and the lock's other events; as CSV, JSON or an HTML page readable at a glance
(a timeline of visits per day).
"""

from __future__ import annotations

import csv
import html
import io
import json
from dataclasses import asdict, dataclass
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from protocol import clock, events, reasons

WORDS = {
    events.OPENED: "door unlocked",
    events.ALARM_OPEN: "door unlocked (alarm response)",
    events.REFUSED: "refused",
    events.RELOCKED: "locked again",
    events.DOOR_OPENED: "door opened",
    events.DOOR_CLOSED: "door closed",
    events.DOOR_LEFT_OPEN: "door left open (alarm)",
    events.JAMMED: "bolt jammed",
    events.COMMISSIONED: "lock commissioned",
    events.DECOMMISSIONED: "lock decommissioned",
    events.FACTORY_RESET: "factory reset at the lock",
    events.BOOT: "lock started",
    events.TIME_SET: "clock set",
    events.CLOCK_UNTRUSTED: "clock not trusted (after power loss)",
    events.REVOCATION_UPDATED: "block list updated",
    events.BATTERY_LOW: "battery low",
    events.BATTERY_CRITICAL: "battery critical",
    events.RATE_LIMITED: "many failed attempts: slowed down",
    events.LOG_READ: "log read",
    events.FRAME_ERROR: "unreadable data received",
    events.CONNECTION_TIMEOUT: "connection timed out",
    events.TIME_REJECTED: "clock update refused",
    events.REVOCATION_REJECTED: "block list update refused",
    events.PEER_SUMMARY: "more attempts and errors by peers (counted, see detail)",
}
# Events whose detail changes what a reader should be told.
DETAIL_WORDS = {
    (events.DOOR_OPENED, events.DOOR_BY_HAND): "door opened by hand (no digital opening)",
    (events.DOOR_OPENED, events.DOOR_FORCED): "door forced open (the bolt was locked)",
    (events.LOG_READ, events.LOG_READ_SERIAL): "log read by the installer (serial)",
    (events.TIME_SET, events.TIME_SET_FORCED): "clock set by the installer with the button "
                                               "(forced: it may have gone back)",
}
ATTEMPTS = (events.OPENED, events.ALARM_OPEN, events.REFUSED)


@dataclass
class Row:
    seq: int
    time: str  # local, ISO 8601 with offset
    day: str
    staff_id: str
    staff_name: str
    event: str
    outcome: str  # "opened", "refused" or "" for events that are not attempts
    reason: str
    alarm: bool
    clock_trusted: bool
    alarm_id: str = ""  # the alarm key's (alarm access), with its reason
    alarm_reason: str = ""
    booking: str = ""  # the booking that let a staff member of another unit in


def mark_keys(rows: list[Row], alarm_keys: list[dict[str, Any]],
              booked: list[dict[str, Any]]) -> None:
    """Name the alarm (id, reason) of each alarm-access row and the booking of
    each attempt made with a key issued under one: the key that was in force
    for that staff member at that time (views.alarm_keys, views.booked_keys)."""
    skew = 120  # protocol.token.SKEW: a key opens this early and late
    for r in rows:
        if not r.staff_id or not r.outcome:
            continue
        t = datetime.fromisoformat(r.time).timestamp()
        if r.alarm:
            for a in alarm_keys:
                if a["staff"] == r.staff_id and a["start"] - skew <= t <= a["end"] + skew:
                    r.alarm_id, r.alarm_reason = a["alarm_id"], a["reason"]
        for b in booked:
            if b["staff"] == r.staff_id and b["start"] - skew <= t <= b["end"] + skew:
                r.booking = str(b["booking"])


def alarm_openings(rows: list[Row]) -> list[dict[str, Any]]:
    """The report's section of alarm openings, so that abuse is visible."""
    return [{"time": r.time, "staff_id": r.staff_id, "staff_name": r.staff_name,
             "outcome": r.outcome, "alarm_id": r.alarm_id, "reason": r.alarm_reason}
            for r in rows if r.alarm and r.outcome]


def rows_for(records: list[Any], staff: dict[bytes, Any], zone: str) -> list[Row]:
    tz = ZoneInfo(zone)
    out = []
    for r in records:
        e = events.decode(bytes(r["record"]) if not isinstance(r, (bytes, bytearray)) else r)
        when = datetime.fromtimestamp(clock.to_unix(e.time), tz)
        person = staff.get(e.key_id)
        sid = person["staff_id"] if person is not None else ""
        name = person["name"] if person is not None else (
            "" if e.key_id == events.NO_KEY else "unknown key")
        outcome = ""
        reason = ""
        if e.code == events.PEER_SUMMARY:
            # Its key id field holds counts, not a key.
            sid, name = "", ""
            frames_, refusals, timeouts, other = events.summary_counts(e.key_id)
            reason = (f"{e.detail} in all: {refusals} refused, {frames_} unreadable, "
                      f"{timeouts} timed out, {other} other")
        if e.code in (events.OPENED, events.ALARM_OPEN):
            outcome = "opened"
        elif e.code == events.REFUSED:
            outcome, reason = "refused", reasons.name(e.detail)
        out.append(Row(e.seq, when.isoformat(timespec="seconds"), when.date().isoformat(), sid,
                       name, DETAIL_WORDS.get((e.code, e.detail)) or WORDS.get(e.code, e.name),
                       outcome, reason,
                       bool(e.flags & events.FLAG_ALARM_ACCESS),
                       not e.flags & events.FLAG_CLOCK_UNTRUSTED))
    return out


def to_csv(rows: list[Row]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(Row.__dataclass_fields__))
    w.writeheader()
    for r in rows:
        w.writerow(asdict(r))
    return buf.getvalue()


def to_json(rows: list[Row], meta: dict[str, Any]) -> str:
    return json.dumps({**meta, "events": [asdict(r) for r in rows]}, indent=2,
                      ensure_ascii=False)


def to_html(rows: list[Row], meta: dict[str, Any]) -> str:
    esc = html.escape
    days: dict[str, list[Row]] = {}
    for r in rows:
        days.setdefault(r.day, []).append(r)
    parts = []
    for day, day_rows in days.items():
        marks = []
        for r in day_rows:
            if r.outcome:
                t = datetime.fromisoformat(r.time)
                left = (t.hour * 60 + t.minute) / 1440 * 100
                cls = "opened" if r.outcome == "opened" else "refused"
                marks.append(f"<span class='mark {cls}' style='left:{left:.2f}%' "
                             f"title='{esc(r.time[11:16])} {esc(r.staff_name)} {esc(r.outcome)}'>"
                             f"</span>")
        table = "".join(
            f"<tr class='{esc(r.outcome or 'other')}'><td>{esc(r.time[11:19])}</td>"
            f"<td>{esc(r.staff_name or '-')}</td><td>{esc(r.event)}</td>"
            f"<td>{esc(r.reason)}{' (alarm ' + esc(r.alarm_id) + ')' if r.alarm else ''}"
            f"{' (booking ' + esc(r.booking) + ')' if r.booking else ''}"
            f"{' (lock clock not trusted)' if not r.clock_trusted else ''}</td></tr>"
            for r in day_rows)
        visits = sum(1 for r in day_rows if r.outcome == "opened")
        refused = sum(1 for r in day_rows if r.outcome == "refused")
        parts.append(
            f"<section><h2>{esc(date.fromisoformat(day).strftime('%A %d %B %Y'))}</h2><p>{visits} opening(s), {refused} refused attempt(s)"
            f"</p><div class='timeline'>{''.join(marks)}<span class='hours'>00</span>"
            f"<span class='hours' style='left:50%'>12</span></div>"
            f"<table><tr><th>Time</th><th>Staff</th><th>What happened</th><th>Reason</th></tr>"
            f"{table}</table></section>")
    verdict = meta.get("verdict", "")
    return (
        "<!doctype html><html lang='en'><meta charset='utf-8'>"
        f"<title>Log report {esc(meta.get('lock_id', ''))}</title><style>"
        "body{font-family:system-ui,sans-serif;max-width:60em;margin:2em auto;color:#222}"
        "table{border-collapse:collapse;width:100%;margin-bottom:1.5em}"
        "td,th{border-bottom:1px solid #ddd;padding:.3em .5em;text-align:left}"
        "tr.refused td{color:#b00}tr.opened td{color:#064}"
        ".timeline{position:relative;height:1.6em;background:#f3f3f3;border-radius:4px;"
        "margin:.5em 0}.mark{position:absolute;top:.2em;width:.5em;height:1.2em;"
        "border-radius:2px}.mark.opened{background:#1a7f37}.mark.refused{background:#c00}"
        ".hours{position:absolute;top:1.7em;font-size:.7em;color:#888}"
        ".verdict{padding:.5em;border-radius:4px;background:#eef7ee}"
        ".verdict.bad{background:#fdecec;color:#b00;font-weight:bold}</style>"
        f"<h1>Door log: {esc(meta.get('clients', ''))}</h1>"
        f"<p>Lock {esc(meta.get('lock_id', ''))} ({esc(meta.get('door', ''))}), "
        f"{esc(meta.get('site', ''))}. Period {esc(meta.get('from', 'start'))} to "
        f"{esc(meta.get('to', 'now'))}. Times are local ({esc(meta.get('zone', ''))}).</p>"
        f"<p class='verdict{'' if meta.get('complete', meta.get('chain_ok')) else ' bad'}'>"
        f"{esc(verdict)}</p>"
        f"{_alarm_html(meta.get('alarm_openings') or [])}"
        f"{''.join(parts) or '<p>No events in this period.</p>'}</html>")


def _alarm_html(openings: list[dict[str, Any]]) -> str:
    if not openings:
        return "<section><h2>Alarm openings</h2><p>None in this period.</p></section>"
    esc = html.escape
    rows = "".join(f"<tr><td>{esc(o['time'][:16].replace('T', ' '))}</td>"
                   f"<td>{esc(o['staff_name'] or o['staff_id'])}</td><td>{esc(o['outcome'])}</td>"
                   f"<td>{esc(o['alarm_id'] or '?')}</td><td>{esc(o['reason'])}</td></tr>"
                   for o in openings)
    return ("<section><h2>Alarm openings</h2><table><tr><th>Time</th><th>Staff</th>"
            f"<th>Outcome</th><th>Alarm</th><th>Reason</th></tr>{rows}</table></section>")
