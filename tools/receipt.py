"""A receipt (kvittens) as a page to print and sign: one HTML page, which
`lockctl receipt show --format pdf` prints to PDF through headless Chromium
(tools/browser.py), so paper and screen show the same layout.

The input is Site.receipt()'s dict; every value from the registry is escaped.
"""

from __future__ import annotations

import html
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

TITLES = {
    "handout add": "Items handed out",
    "handout return": "Items returned",
    "device enrol": "Digital key: device enrolled",
    "staff deactivate": "Staff member deactivated: keys returned or suspended",
    "lock remove": "Lock removed, door restored, original parts returned",
}
WHO = {"staff": "Staff member", "client": "Client", "property": "Property owner"}
DIRECTION = {"to": "received by", "from": "given back by"}

STYLE = """
@page { size: A4; margin: 18mm 20mm; }
body { font-family: "DejaVu Sans", "Liberation Sans", Arial, sans-serif; font-size: 11pt;
       color: #111; max-width: 170mm; margin: 0 auto; }
h1 { font-size: 17pt; margin: 0 0 2mm 0; }
.site { color: #444; margin-bottom: 6mm; }
table { border-collapse: collapse; width: 100%; margin: 3mm 0 6mm 0; }
th, td { border: 1px solid #999; padding: 2mm 3mm; text-align: left; vertical-align: top; }
th { background: #eee; }
dl { display: grid; grid-template-columns: 40mm 1fr; gap: 1.5mm 4mm; margin: 0 0 6mm 0; }
dt { color: #444; } dd { margin: 0; }
.note { margin: 0 0 6mm 0; }
.sign { display: grid; grid-template-columns: 1fr 1fr; gap: 12mm; margin-top: 16mm; }
.line { border-top: 1px solid #111; padding-top: 1.5mm; font-size: 9.5pt; color: #333; }
.fine { font-size: 8.5pt; color: #555; margin-top: 10mm; }
@media screen { body { margin: 2em auto; } }
"""


def local(posix: int, zone: str) -> str:
    return datetime.fromtimestamp(posix, ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M")


def to_html(r: dict[str, Any], zone: str) -> str:
    e = html.escape
    title = TITLES.get(r["kind"], r["kind"])
    who = WHO.get(r["person_kind"], r["person_kind"])
    rows = "".join(
        f"<tr><td>{e(i['kind'])}</td><td>{e(i['label'])}</td>"
        f"<td>{e(DIRECTION.get(i['direction'], i['direction']))} {e(r['name'])}</td></tr>"
        for i in r["items"])
    holds = ("".join(f"<li>{e(h['kind'])}: {e(h['label'])}"
                     f"{' (' + str(h['count']) + ')' if h['count'] > 1 else ''}</li>"
                     for h in r["holds"]))
    holds_html = (f"<p>Still held by {e(r['name'])} after this receipt:</p><ul>{holds}</ul>"
                  if holds else f"<p>{e(r['name'])} holds no other recorded items.</p>")
    note = f'<p class="note">{e(r["note"])}</p>' if r.get("note") else ""
    lock = f"<dt>Lock</dt><dd>{e(r['lock'])}</dd>" if r.get("lock") else ""
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>Receipt {e(r['receipt'])}</title><style>{STYLE}</style></head>
<body>
<h1>Receipt (kvittens) {e(r['receipt'])}</h1>
<div class="site">{e(r['site'])}</div>
<h2>{e(title)}</h2>
<dl>
<dt>{e(who)}</dt><dd>{e(r['name'])} ({e(r['person'])})</dd>
<dt>Handled by</dt><dd>{e(r['by'])}</dd>
<dt>Date and time</dt><dd>{e(local(int(r['at']), zone))} ({e(zone)})</dd>
{lock}
</dl>
{note}
<table><thead><tr><th>Item</th><th>Description</th><th>Direction</th></tr></thead>
<tbody>{rows}</tbody></table>
{holds_html}
<div class="sign">
<div><div class="line">Signature: {e(r['name'])}</div></div>
<div><div class="line">Signature: {e(r['by'])}</div></div>
</div>
<div class="sign">
<div><div class="line">Place and date</div></div>
<div><div class="line">Name in block letters</div></div>
</div>
<p class="fine">Keep this receipt. It is also recorded in the site registry as
{e(r['receipt'])} (lockctl receipt show {e(r['receipt'])}).</p>
</body></html>
"""
