"""The log report as one self-contained HTML page (tools/report.py builds its
data): the log verdict first, then what needs attention (alarm openings,
forced doors, faults), a chart of visits and refusals per day (inline SVG),
summaries per day and per person, and every event by day. It prints on A4
(@media print): headers repeat on each page, no row is split, colours kept."""

from __future__ import annotations

import html
from datetime import datetime
from zoneinfo import ZoneInfo

from tools import report_words as words
from tools.report import Report, Row

CSS = """
body{font-family:system-ui,"Segoe UI",Arial,sans-serif;max-width:62em;margin:2em auto;
 padding:0 1em;color:#1b1b1b;line-height:1.4}
h1{font-size:1.6em;margin-bottom:.2em}h2{font-size:1.2em;margin-top:1.6em;
 border-bottom:2px solid #ccc}h3{font-size:1em;margin:1.2em 0 .3em}
.meta{color:#444;margin:.2em 0}
table{border-collapse:collapse;width:100%;margin:.4em 0 1em}
td,th{border-bottom:1px solid #ddd;padding:.25em .5em;text-align:left;vertical-align:top}
th{background:#f3f3f3}td.n,th.n{text-align:right}
tr.refused td{color:#a00}tr.opened td{color:#05603a}
tr.alarm td,li.alarm{background:#fff1d6}tr.forced td,tr.fault td,li.forced,li.fault{
 background:#fde2e2}
.tag{display:inline-block;font-size:.8em;font-weight:bold;padding:0 .4em;border-radius:3px;
 margin-left:.3em}.tag.alarm{background:#f0a500;color:#000}.tag.forced,.tag.fault{
 background:#b00;color:#fff}.tag.clock,.tag.booking{background:#ddd;color:#333}
.count{font-weight:bold}
.verdict{padding:.5em .8em;border-radius:4px;background:#e8f5e9;border-left:6px solid #2e7d32;
 margin:.3em 0}.verdict.bad{background:#fdecec;border-left-color:#b00;color:#900;
 font-weight:bold}
ul.attention{padding-left:0;list-style:none}ul.attention li{padding:.3em .6em;margin:.2em 0;
 border-radius:4px}
.legend span{display:inline-block;width:.9em;height:.9em;vertical-align:middle;
 margin:0 .3em 0 1em}
svg text{font-family:inherit}
@page{size:A4;margin:15mm}
@media print{
 body{max-width:none;margin:0;padding:0;font-size:10pt}
 *{-webkit-print-color-adjust:exact;print-color-adjust:exact}
 thead{display:table-header-group}tr,li,.verdict,figure{break-inside:avoid}
 h2,h3{break-after:avoid}section.events{break-before:page}
 a{color:inherit;text-decoration:none}
}
"""


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _hm(posix: int, tz: ZoneInfo) -> str:
    return datetime.fromtimestamp(posix, tz).strftime("%H:%M:%S")


def _when(posix: int, tz: ZoneInfo) -> str:
    return datetime.fromtimestamp(posix, tz).strftime("%Y-%m-%d %H:%M")


def chart(rep: Report) -> str:
    """Grouped bars per day: openings (green) and refused attempts (red)."""
    days = rep.per_day
    if not days:
        return ""
    w, h, left, bottom, top = 720, 220, 36, 28, 12
    inner_w, inner_h = w - left - 8, h - bottom - top
    peak = max([max(d["openings"], d["refusals"]) for d in days] + [1])
    step = max(1, -(-peak // 5))  # about five gridlines
    top_value = step * -(-peak // step)
    slot = inner_w / len(days)
    bar = max(1.0, min(18.0, slot * 0.38))
    label_every = max(1, -(-len(days) // 15))
    out = [f"<svg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 {w} {h}' width='100%' "
           f"role='img' aria-label='{_e(rep.label('chart'))}' class='chart'>"]
    for v in range(0, top_value + 1, step):
        y = top + inner_h - v / top_value * inner_h
        out.append(f"<line x1='{left}' x2='{w - 8}' y1='{y:.1f}' y2='{y:.1f}' "
                   f"stroke='#e2e2e2'/><text x='{left - 4}' y='{y + 4:.1f}' font-size='10' "
                   f"text-anchor='end' fill='#555'>{v}</text>")
    for i, d in enumerate(days):
        x = left + i * slot + slot / 2
        for value, colour, dx, what in ((d["openings"], "#2e7d32", -bar, "openings"),
                                        (d["refusals"], "#c62828", 0.0, "refusals")):
            bh = value / top_value * inner_h
            out.append(f"<rect class='bar {what}' data-day='{d['day']}' data-value='{value}' "
                       f"x='{x + dx:.1f}' y='{top + inner_h - bh:.1f}' width='{bar:.1f}' "
                       f"height='{bh:.1f}' fill='{colour}'><title>{_e(d['day'])}: {value} "
                       f"{_e(rep.label(what).lower())}</title></rect>")
        if i % label_every == 0:
            out.append(f"<text x='{x:.1f}' y='{h - 10}' font-size='10' text-anchor='middle' "
                       f"fill='#333'>{_e(d['day'][5:])}</text>")
    out.append(f"<line x1='{left}' x2='{w - 8}' y1='{top + inner_h}' y2='{top + inner_h}' "
               "stroke='#888'/></svg>")
    legend = (f"<p class='legend'><span style='background:#2e7d32'></span>"
              f"{_e(rep.label('openings'))}<span style='background:#c62828'></span>"
              f"{_e(rep.label('refusals'))}</p>")
    return "".join(out) + legend


def _marks(rep: Report, r: Row) -> str:
    tags = []
    if r.alarm:
        which = f" {r.alarm_id}: {r.alarm_reason}" if r.alarm_id else ""
        tags.append(f"<span class='tag alarm'>{_e(rep.label('alarm_mark') + which)}</span>")
    if r.booking:
        tags.append(f"<span class='tag booking'>{_e(rep.label('booking_mark'))} "
                    f"{_e(r.booking)}</span>")
    if r.forced:
        tags.append(f"<span class='tag forced'>{_e(rep.label('forced_mark'))}</span>")
    if not r.clock_trusted:
        tags.append(f"<span class='tag clock'>{_e(rep.label('clock_mark'))}</span>")
    return "".join(tags)


def _event_cell(rep: Report, r: Row) -> str:
    text = _e(r.event)
    if r.count > 1:
        text += f" <span class='count'>× {r.count}</span>"
    return text + _marks(rep, r)


def _time_cell(r: Row, tz: ZoneInfo) -> str:
    first = _hm(r.time, tz)
    return first if r.count == 1 else f"{first}–{_hm(r.last_time, tz)}"


def to_html(rep: Report) -> str:
    tz = ZoneInfo(rep.zone)
    lang, L = rep.lang, rep.label
    s = rep.subject
    many = len(s.locks) > 1
    period = (f"{rep.day_from.isoformat() if rep.day_from else L('start')} – "
              f"{rep.day_to.isoformat() if rep.day_to else L('now')}")
    head = (f"<header><h1>{_e(L('title'))}: {_e(s.name)}</h1>"
            f"<p class='meta'>{_e(L(s.kind))} {_e(s.id)} · {_e(L('site'))} {_e(rep.site)} · "
            f"{_e(L('period'))} {_e(period)}</p>"
            f"<p class='meta'>{_e(L('times'))} ({_e(rep.zone)}). {_e(L('generated'))} "
            f"{_e(_when(rep.generated, tz))}.</p></header>")
    doors = "".join(
        f"<li>{_e(lk.lock_id)}: {_e(words.door_text(lang, lk.door))}</li>" for lk in s.locks)
    verdicts = "".join(
        f"<p class='verdict{'' if v['complete'] else ' bad'}' data-lock='{_e(v['lock'])}'>"
        f"<strong>{_e(v['lock'])}</strong> ({_e(words.door_text(lang, v['door']))}): "
        f"{_e(v['verdict'])}</p>" for v in rep.verdicts) or f"<p>{_e(L('no_doors'))}</p>"
    parts = [head, f"<section class='verdicts'><h2>{_e(L('verdict'))}</h2>{verdicts}",
             f"<p>{_e(L('doors_in_report'))}:</p><ul>{doors}</ul></section>"]
    att = rep.attention
    items = "".join(
        f"<li class='{r.attention}'>{_e(r.local[:10])} {_e(_time_cell(r, tz))} · "
        f"{_e(r.lock_id)} · " + (f"{_e(r.staff_name)} · " if r.staff_name else "")
        + f"{_event_cell(rep, r)}</li>"
        for r in att)
    parts.append(f"<section class='attention'><h2>{_e(L('attention'))}</h2>"
                 + (f"<ul class='attention'>{items}</ul>" if att else
                    f"<p>{_e(L('no_attention'))}</p>") + "</section>")
    keys = "".join(
        f"<tr class='alarm-key' data-alarm='{_e(k['alarm_id'])}' data-used='{k['alarm_openings']}'>"
        f"<td>{_e(_when(k['issued_at'], tz))}</td><td>{_e(k['client_name'])}</td>"
        f"<td>{_e(k['staff_name'])}</td><td>{_e(k['reason'])}</td>"
        f"<td>{_e(_when(k['end'], tz))}</td><td>{_e(k['issued_by'])}</td>"
        f"<td class='n'>{k['alarm_openings']}</td></tr>" for k in rep.alarm_keys)
    parts.append(
        f"<section class='alarm-keys'><h2>{_e(L('alarm_keys'))}</h2>" + (
            f"<table><thead><tr><th>{_e(L('issued'))}</th><th>{_e(L('client'))}</th>"
            f"<th>{_e(L('staff'))}</th><th>{_e(L('why'))}</th><th>{_e(L('valid_until'))}</th>"
            f"<th>{_e(L('issued_by'))}</th><th class='n'>{_e(L('used'))}</th></tr></thead>"
            f"<tbody>{keys}</tbody></table>" if keys else f"<p>{_e(L('no_alarm_keys'))}</p>")
        + "</section>")
    if rep.per_day:
        parts.append(f"<section class='chart'><h2>{_e(L('chart'))}</h2><figure>{chart(rep)}"
                     "</figure></section>")
        day_rows = "".join(
            f"<tr><td>{_e(d['day'])}</td><td class='n'>{d['openings']}</td>"
            f"<td class='n'>{d['refusals']}</td><td class='n'>{d['alarms']}</td>"
            f"<td class='n'>{d['forced']}</td></tr>" for d in rep.per_day)
        parts.append(f"<section class='per-day'><h2>{_e(L('per_day'))}</h2><table><thead><tr>"
                     f"<th>{_e(L('day'))}</th><th class='n'>{_e(L('openings'))}</th>"
                     f"<th class='n'>{_e(L('refusals'))}</th><th class='n'>{_e(L('alarms'))}"
                     f"</th><th class='n'>{_e(L('forced'))}</th></tr></thead><tbody>"
                     f"{day_rows}</tbody></table></section>")
    if rep.per_staff:
        staff_rows = "".join(
            f"<tr><td>{_e(p['name'])}</td><td>{_e(p['staff_id'])}</td>"
            f"<td>{_e(p['provider'])}</td><td class='n'>{p['openings']}</td>"
            f"<td class='n'>{p['alarms']}</td><td class='n'>{p['refusals']}</td>"
            f"<td class='n'>{p['doors']}</td><td>{_e(_when(p['first'], tz))}</td>"
            f"<td>{_e(_when(p['last'], tz))}</td></tr>" for p in rep.per_staff)
        parts.append(
            f"<section class='per-staff'><h2>{_e(L('per_staff'))}</h2><table><thead><tr>"
            f"<th>{_e(L('name'))}</th><th>Id</th><th>{_e(L('provider'))}</th>"
            f"<th class='n'>{_e(L('openings'))}</th><th class='n'>{_e(L('alarms'))}</th>"
            f"<th class='n'>{_e(L('refusals'))}</th><th class='n'>{_e(L('doors'))}</th>"
            f"<th>{_e(L('first'))}</th><th>{_e(L('last'))}</th></tr></thead><tbody>"
            f"{staff_rows}</tbody></table></section>")
    by_day: dict[str, list[Row]] = {}
    for r in rep.rows:
        by_day.setdefault(r.day, []).append(r)
    sections = []
    for day, rows in by_day.items():
        body = "".join(
            f"<tr class='{_e(r.outcome or 'other')}{' ' + r.attention if r.attention else ''}'"
            f" data-kind='{_e(r.kind)}' data-count='{r.count}'>"
            f"<td>{_e(_time_cell(r, tz))}</td>"
            + (f"<td>{_e(r.lock_id)}</td>" if many else "")
            + f"<td>{_e(r.staff_name or '-')}</td><td>{_event_cell(rep, r)}</td>"
            f"<td>{_e(r.reason_text)}</td></tr>" for r in rows)
        sections.append(
            f"<h3>{_e(words.day_text(lang, day))}</h3><table><thead><tr>"
            f"<th>{_e(L('time'))}</th>" + (f"<th>{_e(L('door'))}</th>" if many else "")
            + f"<th>{_e(L('staff'))}</th><th>{_e(L('what'))}</th><th>{_e(L('reason'))}</th>"
            f"</tr></thead><tbody>{body}</tbody></table>")
    parts.append(f"<section class='events'><h2>{_e(L('events'))}</h2>"
                 + ("".join(sections) or f"<p>{_e(L('no_events'))}</p>") + "</section>")
    return (f'<!doctype html><html lang="{_e(lang)}"><head><meta charset="utf-8">'
            f"<meta name='viewport' content='width=device-width, initial-scale=1'>"
            f"<title>{_e(L('title'))}: {_e(s.name)}</title><style>{CSS}</style></head><body>"
            + "".join(parts) + "</body></html>\n")
