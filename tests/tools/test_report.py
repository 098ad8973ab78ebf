"""The log report as a unit manager gets it (issue #15 §2), through
`lockctl log report` on a site holding two weeks of real, MAC-chained records
(tests/report_world.py): the HTML read back with the stdlib's html.parser, the
CSV with the csv module as Excel set to Swedish reads it, the JSON as a
system would. Expected figures come from the script that wrote the records,
never from the report code."""

from __future__ import annotations

import csv
import io
import json
import os
import sqlite3
import struct
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
import report_world

from tools import browser, lockctl


class Node:
    def __init__(self, tag: str, attrs: dict[str, str], parent: Node | None) -> None:
        self.tag, self.attrs, self.parent = tag, attrs, parent
        self.children: list[Node] = []
        self.text_parts: list[str] = []

    @property
    def classes(self) -> set[str]:
        return set(self.attrs.get("class", "").split())

    def text(self) -> str:
        return "".join(self.text_parts + [c.text() for c in self.children])

    def all(self, tag: str | None = None, cls: str | None = None) -> list[Node]:
        out = []
        for c in self.children:
            if (tag is None or c.tag == tag) and (cls is None or cls in c.classes):
                out.append(c)
            out += c.all(tag, cls)
        return out


VOID = {"meta", "br", "img", "link", "input", "hr"}


class Tree(HTMLParser):
    """A small DOM from the stdlib parser: enough to ask what a reader sees."""

    def __init__(self, page: str) -> None:
        super().__init__()
        self.root = Node("#root", {}, None)
        self.cur = self.root
        self.feed(page)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        node = Node(tag, {k: v or "" for k, v in attrs}, self.cur)
        self.cur.children.append(node)
        if tag not in VOID:
            self.cur = node

    def handle_endtag(self, tag: str) -> None:
        n: Node | None = self.cur
        while n is not None and n.tag != tag:
            n = n.parent
        if n is not None and n.parent is not None:
            self.cur = n.parent

    def handle_data(self, data: str) -> None:
        self.cur.text_parts.append(data)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("report")
    site, exp = report_world.build(root)
    site.close()
    return root, exp


def run(root: Path, *argv: str, capsys: Any) -> tuple[int, bytes, str]:
    os.environ["LOCKCTL_ACTOR"] = "unit-manager"
    status = lockctl.main(["--site", str(root / "site"), *argv])
    cap = capsys.readouterr()
    return status, cap.out, cap.err.decode() if isinstance(cap.err, bytes) else cap.err


def page(root: Path, capsys: Any, *argv: str) -> Tree:
    status, out, err = run(root, "log", "report", *argv, "--format", "html", capsys=capsys)
    assert status == 0, err
    return Tree(out.decode("utf-8"))


def test_client_report_in_swedish(world, capsysbinary) -> None:
    root, exp = world
    t = page(root, capsysbinary, "--client", "C1")
    html_el = t.root.all("html")[0]
    assert html_el.attrs["lang"] == "sv"
    assert "Loggningsrapport: Astrid Lindqvist" in t.root.all("h1")[0].text()
    verdicts = t.root.all("p", "verdict")
    assert {v.attrs["data-lock"] for v in verdicts} == {"NT-1", "NT-2"}
    assert all("bad" not in v.classes and "Komplett" in v.text() for v in verdicts)
    text = t.root.text()
    # Plain words, never the codes of protocol/reasons.py.
    for code in ("bad-proof", "token-burned", "expired"):
        assert code not in text
    assert "fel personlig kod, eller nyckeln gäller inte här" in text
    assert "spärrad efter för många fel koder" in text
    assert "nyckeln hade gått ut (passet var slut)" in text


def test_alarms_and_forced_doors_stand_out(world, capsysbinary) -> None:
    root, _ = world
    t = page(root, capsysbinary, "--client", "C1")
    items = t.root.all("ul", "attention")[0].all("li")
    assert [i.attrs["class"] for i in items] == ["alarm", "alarm", "forced", "fault"]
    assert "bröts upp" in items[2].text() and "stod öppen" in items[3].text()
    rows = [r for r in t.root.all("tr") if "data-kind" in r.attrs]
    forced = [r for r in rows if r.attrs["data-kind"] == "door-forced"]
    assert len(forced) == 1 and "forced" in forced[0].classes
    assert forced[0].all("span", "forced")[0].text() == "uppbruten"
    alarms = [r for r in rows if r.attrs["data-kind"] == "alarm-open"]
    assert len(alarms) == 2 and all("alarm" in r.classes for r in alarms)


def test_a_flood_folds_into_one_row_with_its_count(world, capsysbinary) -> None:
    root, exp = world
    t = page(root, capsysbinary, "--lock-id", "NT-1")
    refused = [r for r in t.root.all("tr") if r.attrs.get("data-kind") == "refused"]
    counts = sorted(int(r.attrs["data-count"]) for r in refused)
    # The flood (6 wrong codes in a row), the burned key after it, one expired key.
    assert counts == [1, 1, exp.flood]
    flood = next(r for r in refused if int(r.attrs["data-count"]) == exp.flood)
    assert f"× {exp.flood}" in flood.text() and "12:30:00–12:30:25" in flood.text()


def test_chart_and_summaries_match_what_was_logged(world, capsysbinary) -> None:
    root, exp = world
    t = page(root, capsysbinary, "--client", "C1", "--from", "2026-11-02", "--to",
             "2026-11-15")
    bars = t.root.all("rect", "openings")
    got = {b.attrs["data-day"]: int(b.attrs["data-value"]) for b in bars}
    want: dict[str, int] = {}
    for (_, day), n in exp.openings.items():
        want[day] = want.get(day, 0) + n
    assert got == want and len(got) == report_world.DAYS
    refused = {b.attrs["data-day"]: int(b.attrs["data-value"]) for b in t.root.all(
        "rect", "refusals")}
    want_r: dict[str, int] = {d: 0 for d in want}
    for (_, day), n in exp.refusals.items():
        want_r[day] += n
    assert refused == want_r
    staff_table = t.root.all("section", "per-staff")[0]
    cells = {r.all("td")[1].text(): r.all("td") for r in staff_table.all("tr") if r.all("td")}
    for sid, n in exp.by_staff.items():
        assert int(cells[sid][3].text()) == n, sid
    assert cells["S3"][0].text() == "Åsa Öberg" and int(cells["S3"][4].text()) == 2
    days = [r.all("td")[0].text() for r in t.root.all("section", "per-day")[0].all("tr")
            if r.all("td")]
    assert days == sorted(want)


def test_print_layout_is_there(world, capsysbinary) -> None:
    root, _ = world
    t = page(root, capsysbinary, "--client", "C1")
    css = t.root.all("style")[0].text()
    assert "@media print" in css and "@page" in css and "table-header-group" in css


def test_staff_report_shows_only_their_attempts_at_every_door(world, capsysbinary) -> None:
    root, exp = world
    status, out, err = run(root, "log", "report", "--staff", "S2", "--format", "json",
                           capsys=capsysbinary)
    assert status == 0, err
    data = json.loads(out)
    assert data["subject"] == {"kind": "staff", "id": "S2", "name": "Bilal Haddad"}
    assert {v["lock"] for v in data["verdicts"]} == {"NT-1", "NT-2"}
    assert {e["staff_id"] for e in data["events"]} == {"S2"}
    opened = sum(e["count"] for e in data["events"] if e["outcome"] == "opened")
    assert opened == exp.by_staff["S2"]
    assert all(isinstance(e["time"], int) for e in data["events"])  # POSIX seconds


def test_csv_opens_in_swedish_excel(world, capsysbinary) -> None:
    root, exp = world
    status, out, err = run(root, "log", "report", "--client", "C1", "--format", "csv",
                           capsys=capsysbinary)
    assert status == 0, err
    assert out.startswith(b"\xef\xbb\xbf")  # UTF-8 with BOM: Excel reads å, ä, ö right
    rows = list(csv.reader(io.StringIO(out[3:].decode("utf-8")), delimiter=";"))
    head, verdicts, body = rows[0], rows[1:3], rows[3:]
    assert head[:3] == ["datum", "tid", "tidpunkt"] and len(set(map(len, rows))) == 1
    col = {name: i for i, name in enumerate(head)}
    assert [v[col["händelse"]] for v in verdicts] == ["loggkontroll"] * 2
    assert all(v[col["logg_komplett"]] == "ja" for v in verdicts)
    for name in ("larm", "uppbruten", "klocka_säker", "logg_komplett"):
        assert {r[col[name]] for r in body} <= {"ja", "nej"}
    assert all(len(r[col["datum"]]) == 10 and r[col["datum"]][4] == "-" for r in body)
    opened = sum(int(r[col["antal"]]) for r in body if r[col["utfall"]] == "upplåst")
    assert opened == sum(exp.openings.values())
    assert any(r[col["namn"]] == "Åsa Öberg" for r in body)


def test_english_csv_and_a_name_excel_would_run(tmp_path: Path, capsysbinary) -> None:
    site, _ = report_world.build(tmp_path)
    site.registry.db.execute("UPDATE staff SET name = '=HYPERLINK(\"x\")' WHERE staff_id = 'S2'")
    site.registry.db.commit()
    site.close()
    status, out, err = run(tmp_path, "log", "report", "--staff", "S2", "--format", "csv",
                           "--lang", "en", capsys=capsysbinary)
    assert status == 0, err
    rows = list(csv.reader(io.StringIO(out[3:].decode("utf-8")), delimiter=";"))
    col = {name: i for i, name in enumerate(rows[0])}
    assert {r[col["alarm"]] for r in rows[3:]} <= {"yes", "no"}
    assert {r[col["name"]] for r in rows[3:]} == {"'=HYPERLINK(\"x\")"}


def test_a_gap_shows_in_every_format(tmp_path: Path, capsysbinary) -> None:
    site, _ = report_world.build(tmp_path)
    db = site.registry.db
    db.execute("DELETE FROM events WHERE lock_id = 'NT-1' AND seq = 40")
    db.commit()
    site.close()
    t = page(tmp_path, capsysbinary, "--client", "C1", "--lang", "en")
    bad = [v for v in t.root.all("p", "verdict") if "bad" in v.classes]
    assert [v.attrs["data-lock"] for v in bad] == ["NT-1"]
    assert "NOT complete: record 40 missing" in bad[0].text()
    sv = page(tmp_path, capsysbinary, "--client", "C1")
    assert "INTE komplett: post 40 saknas" in sv.root.text()
    _, out, _ = run(tmp_path, "log", "report", "--client", "C1", "--format", "csv",
                    capsys=capsysbinary)
    rows = list(csv.reader(io.StringIO(out[3:].decode("utf-8")), delimiter=";"))
    assert rows[1][rows[0].index("logg_komplett")] == "nej"
    assert rows[1][rows[0].index("orsak")].startswith("INTE komplett")
    _, out, _ = run(tmp_path, "log", "report", "--client", "C1", "--format", "json",
                    capsys=capsysbinary)
    data = json.loads(out)
    assert data["complete"] is False and "NT-1: INTE komplett" in data["verdict"]


def test_bad_subjects_are_refused_and_change_nothing(world, capsysbinary) -> None:
    root, _ = world
    db = root / "site" / "registry.sqlite3"

    def dump() -> list[str]:
        c = sqlite3.connect(db)
        try:
            return list(c.iterdump())
        finally:
            c.close()
    before = dump()
    for argv, status_want, words in (
            (["--client", "C9"], 1, "no client C9"),
            (["--staff", "S9"], 1, "no staff member S9"),
            (["--lock-id", "NT-9"], 1, "no lock NT-9"),
            (["--client", "C1", "--staff", "S1"], 2, "not allowed with"),
            (["--client", "C1", "--lang", "de"], 2, "invalid choice"),
            (["--client", "C1", "--from", "2026-11-10", "--to", "2026-11-01"], 2, "before")):
        status, out, err = run(root, "log", "report", *argv, "--format", "csv",
                               capsys=capsysbinary)
        assert status == status_want and words in err and out == b"", (argv, err)
    assert dump() == before


def test_the_report_is_an_audited_act(world, capsysbinary) -> None:
    root, _ = world
    run(root, "log", "report", "--client", "C2", "--format", "json", capsys=capsysbinary)
    c = sqlite3.connect(root / "site" / "registry.sqlite3")
    try:
        actor, detail = c.execute("SELECT actor, detail FROM audit WHERE action = 'log report' "
                                  "ORDER BY id DESC LIMIT 1").fetchone()
    finally:
        c.close()
    assert actor == "unit-manager" and json.loads(detail)["client"] == "C2"


def test_site_toml_sets_the_language(tmp_path: Path, capsysbinary) -> None:
    site, _ = report_world.build(tmp_path)
    site.close()
    (tmp_path / "site" / "site.toml").write_text('language = "en"\n')
    assert page(tmp_path, capsysbinary, "--lock-id", "NT-2").root.all(
        "html")[0].attrs["lang"] == "en"
    assert page(tmp_path, capsysbinary, "--lock-id", "NT-2", "--lang", "sv").root.all(
        "html")[0].attrs["lang"] == "sv"
    (tmp_path / "site" / "site.toml").write_text('language = "fi"\n')
    status, out, err = run(tmp_path, "log", "report", "--lock-id", "NT-2", "--format", "csv",
                           capsys=capsysbinary)
    assert status == 1 and "language must be one of sv, en" in err and out == b""


def test_unit_report_covers_its_clients_doors_and_alarm_keys(world, capsysbinary) -> None:
    root, exp = world
    status, out, err = run(root, "log", "report", "--unit", "U-NORR", "--format", "json",
                           capsys=capsysbinary)
    assert status == 0, err
    data = json.loads(out)
    assert data["subject"]["name"] == "Hemtjänst Norr"
    assert [lk["lock"] for lk in data["locks"]] == ["NT-1", "NT-2"]
    opened = sum(e["count"] for e in data["events"] if e["outcome"] == "opened")
    assert opened == sum(exp.openings.values())
    [key] = data["alarm_keys"]
    # The patrol opened both doors with it (the entrance and the apartment).
    assert key["alarm_id"] == "A-1" and key["staff_id"] == "S3" and key["alarm_openings"] == 2
    t = page(root, capsysbinary, "--unit", "U-NORR")
    [row] = t.root.all("tr", "alarm-key")
    assert row.attrs["data-used"] == "2" and "trygghetslarm" in row.text()
    # C2 is not in the unit: the entrance serves her too, but her alarm keys are not listed.
    status, out, _ = run(root, "log", "report", "--client", "C2", "--format", "json",
                         capsys=capsysbinary)
    assert json.loads(out)["alarm_keys"] == []
    status, out, err = run(root, "log", "report", "--unit", "U-NONE", "--format", "json",
                           capsys=capsysbinary)
    assert status == 1 and "no unit U-NONE" in err


# --- in the browser people use: headless Chromium (tools/browser.py) ------------------

needs_chromium = pytest.mark.skipif(
    browser.find_chromium() is None,
    reason="Chromium is not installed (Debian: apt-get install chromium): the report "
           "cannot be checked in a browser here")


@needs_chromium
def test_chromium_renders_the_report_as_written(world, capsysbinary, tmp_path: Path) -> None:
    root, exp = world
    status, out, err = run(root, "log", "report", "--client", "C1", "--from", "2026-11-02",
                           "--to", "2026-11-15", "--format", "html", capsys=capsysbinary)
    assert status == 0, err
    dom = Tree(browser.dump_dom(out.decode("utf-8")))
    assert dom.root.all("html")[0].attrs["lang"] == "sv"
    # The SVG survived the HTML parser a browser uses: a bar pair per day.
    assert len(dom.root.all("rect", "bar")) == 2 * report_world.DAYS
    assert len(dom.root.all("p", "verdict")) == 2
    assert [i.attrs["class"] for i in dom.root.all("ul", "attention")[0].all("li")] == [
        "alarm", "alarm", "forced", "fault"]
    shot = tmp_path / "report.png"
    browser.screenshot(out.decode("utf-8"), shot, width=1100, height=1600)
    png = shot.read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert struct.unpack(">II", png[16:24]) == (1100, 1600)


@needs_chromium
def test_the_report_prints_on_a4_with_its_headers_on_every_page(world, capsysbinary,
                                                               tmp_path: Path) -> None:
    from pypdf import PdfReader
    root, _ = world
    status, out, err = run(root, "log", "report", "--lock-id", "NT-1", "--format", "html",
                           capsys=capsysbinary)
    assert status == 0, err
    pdf = tmp_path / "r.pdf"
    browser.html_to_pdf(out.decode("utf-8"), pdf)
    reader = PdfReader(io.BytesIO(pdf.read_bytes()))
    assert len(reader.pages) >= 3
    box = reader.pages[0].mediabox
    assert round(float(box.width)) == 595 and round(float(box.height)) == 842  # A4
    texts = [p.extract_text() for p in reader.pages]
    assert "Loggningsrapport" in texts[0] and "Komplett" in texts[0]
    # The events start on a page of their own; each page of them repeats the header.
    first = next(i for i, t in enumerate(texts) if "Händelser" in t)
    assert all("Vad hände" in t for t in texts[first:]), [t[:80] for t in texts[first:]]


def test_names_are_text_never_markup(tmp_path: Path, capsysbinary) -> None:
    site, _ = report_world.build(tmp_path)
    db = site.registry.db
    db.execute("UPDATE clients SET name = '<img src=x onerror=alert(1)>' WHERE client_id = 'C1'")
    db.execute("UPDATE staff SET name = '\"><script>x</script>' WHERE staff_id = 'S3'")
    db.commit()
    site.close()
    t = page(tmp_path, capsysbinary, "--client", "C1")
    assert t.root.all("img") == [] and t.root.all("script") == []
    assert "<img src=x onerror=alert(1)>" in t.root.all("h1")[0].text()
    assert any('"><script>x</script>' in td.text() for td in t.root.all("td"))
