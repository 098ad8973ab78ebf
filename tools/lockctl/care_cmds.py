"""lockctl's receipts (kvittens), physical handouts, properties and consent
(issue #14 section 4): parsing and output; the acts are tools/site.py's."""

from __future__ import annotations

import argparse
import json
from datetime import datetime
from typing import Any

from tools import browser
from tools import receipt as receipt_page
from tools.lockctl.cli import (
    Commands,
    Failed,
    Output,
    actor,
    check_out,
    id_arg,
    local_str,
    open_registry,
    parse_day,
    path_arg,
    text_arg,
    write_file,
    zone_of,
)
from tools.site import Site, parse_receipt_id, receipt_id


def emit(out: Output, data: Any, text: str) -> None:
    """Like Output.done, for a JSON array as well as an object."""
    print(json.dumps(data, ensure_ascii=False, default=str) if out.as_json else text)


def today(reg: Any) -> str:
    return datetime.now(zone_of(reg)).date().isoformat()


def _item_text(items: list[dict[str, Any]]) -> str:
    return "; ".join(("+" if i["direction"] == "to" else "-") + f" {i['kind']}:{i['label']}"
                     for i in items)


def cmd_handout(args: argparse.Namespace, out: Output) -> int:
    returning = args.sub == "return"
    site = Site(open_registry(args))
    rid = site.handout(actor(args), args.person, args.item, args.by, returning=returning)
    r = site.receipt(rid)
    verb = "returned by" if returning else "handed out to"
    emit(out, r, f"Receipt {rid}: {len(r['items'])} item(s) {verb} {r['name']} "
                 f"({args.person}): {_item_text(r['items'])}. Print it to sign: "
                 f"lockctl receipt show {rid} --format pdf --out {rid}.pdf")
    return 0


def cmd_receipt_list(args: argparse.Namespace, out: Output) -> int:
    reg = open_registry(args)
    site = Site(reg)
    tz = zone_of(reg)
    if args.person is not None:
        site.person_kind(args.person)  # an unknown person is an error, not an empty list
    rows = [site.receipt(receipt_id(int(r["receipt_no"]))) for r in reg.receipts(args.person)]
    for r in rows:
        r.pop("holds")
        r.pop("site")
    lines = [f"{r['receipt']}  {local_str(r['at'], tz)}  {r['kind']:<16} {r['person']} "
             f"({r['name']}), by {r['by']}: {_item_text(r['items'])}" for r in rows]
    if args.person is not None:
        held = reg.held_items(args.person)
        lines.append(f"{args.person} holds: " + (", ".join(
            f"{k}:{v}" + (f" (x{n})" if n > 1 else "") for k, v, n in held) or "nothing recorded"))
    emit(out, rows, "\n".join(lines) if rows else "No receipts." + (
        "\n" + lines[-1] if args.person is not None else ""))
    return 0


def cmd_receipt_show(args: argparse.Namespace, out: Output) -> int:
    reg = open_registry(args)
    site = Site(reg)
    parse_receipt_id(args.receipt_id)  # a malformed id is refused before anything else
    r = site.receipt(args.receipt_id)
    path = check_out(args.out)
    page = receipt_page.to_html(r, reg.zone)
    if args.format == "html":
        write_file(path, page.encode("utf-8"))
    else:
        if browser.find_chromium() is None:
            raise Failed("Chromium is not installed, so no PDF can be printed here (Debian: "
                         "apt-get install chromium); --format html gives the same page to "
                         "print from a browser")
        try:
            browser.html_to_pdf(page, path)
        except browser.BrowserError as exc:
            raise Failed(f"the PDF could not be printed: {exc}") from None
    emit(out, {"receipt": r["receipt"], "format": args.format, "out": args.out},
         f"Receipt {r['receipt']} ({r['kind']}, {r['name']}) written to {args.out} "
         f"({args.format}): print it and have it signed.")
    return 0


def cmd_property_add(args: argparse.Namespace, out: Output) -> int:
    Site(open_registry(args)).add_property(actor(args), args.property_id, args.address,
                                           args.owner)
    emit(out, {"property": args.property_id, "address": args.address, "owner": args.owner},
         f"Property {args.property_id} ({args.address}, owner {args.owner}) added. Its shared "
         f"doors need the owner's consent: lockctl consent add --property {args.property_id} "
         "--by NAME")
    return 0


def cmd_consent_add(args: argparse.Namespace, out: Output) -> int:
    reg = open_registry(args)
    now_day = today(reg)
    day = parse_day(args.date, "date")
    given = day.isoformat() if day is not None else now_day
    Site(reg).add_consent(actor(args), args.property, args.by, given, now_day)
    emit(out, {"property": args.property, "by": args.by, "date": given},
         f"Consent of {args.by} for locks on the shared doors of property {args.property}, "
         f"given {given}, recorded.")
    return 0


def register(c: Commands) -> None:
    handout = c.group("handout", "physical items handed out and returned (with a receipt)")
    for name, help_, verb in (("add", "record items handed out to a person (a receipt)",
                               "receives"),
                              ("return", "record items a person gives back (a receipt)",
                               "gives back")):
        sp = c.add(handout, name, cmd_handout, help_,
                   example=f"lockctl handout {name} --person S-1 --item key-box-key:KB-12 "
                           "--by \"Eva Ek\"")
        sp.add_argument("--person", required=True, metavar="ID", type=id_arg("person id"),
                        help=f"the staff, client or property id who {verb} the items")
        sp.add_argument("--item", required=True, action="append", metavar="KIND:LABEL",
                        type=text_arg(140),
                        help="an item, e.g. key-box-key:KB-12 or house-key:'2 keys' "
                             "(repeat for several)")
        sp.add_argument("--by", required=True, metavar="NAME", type=text_arg(100),
                        help="who hands the items over or takes them back")

    receipt = c.group("receipt", "receipts (kvittens) to print and sign")
    sp = c.add(receipt, "list", cmd_receipt_list, "list receipts (and what a person holds)",
               example="lockctl receipt list --person S-1")
    sp.add_argument("--person", metavar="ID", type=id_arg("person id"),
                    help="only this staff member's, client's or property's receipts")
    sp = c.add(receipt, "show", cmd_receipt_show, "write a receipt as a page to print and sign",
               example="lockctl receipt show R-000001 --format pdf --out R-000001.pdf")
    sp.add_argument("receipt_id", metavar="RECEIPT_ID", help="the receipt, e.g. R-000001")
    sp.add_argument("--format", choices=("html", "pdf"), default="html",
                    help="html, or pdf printed from the same page by headless Chromium")
    sp.add_argument("--out", required=True, metavar="FILE", type=path_arg,
                    help="the file to write (owner-only: it names people)")

    prop = c.group("property", "properties (buildings) and their owners")
    sp = c.add(prop, "add", cmd_property_add, "register a property and its owner",
               example="lockctl property add P-4 --address \"Storgatan 4\" "
                       "--owner \"Brf Storgatan\"")
    sp.add_argument("property_id", metavar="PROPERTY_ID", type=id_arg("property id"),
                    help="the property's id, e.g. P-4")
    sp.add_argument("--address", required=True, type=text_arg(200), help="its street address")
    sp.add_argument("--owner", required=True, type=text_arg(200),
                    help="the owner (landlord or housing association) who consents")

    consent = c.group("consent", "property owners' consent to locks on shared doors")
    sp = c.add(consent, "add", cmd_consent_add,
               "record the owner's consent to locks on a property's shared doors",
               example="lockctl consent add --property P-4 --by \"Brf Storgatan\" "
                       "--date 2026-11-20")
    sp.add_argument("--property", required=True, metavar="PROPERTY_ID",
                    type=id_arg("property id"), help="the property")
    sp.add_argument("--by", required=True, metavar="NAME", type=text_arg(200),
                    help="who gave the consent for the owner")
    sp.add_argument("--date", metavar="YYYY-MM-DD",
                    help="the day it was given (default today, in the site's zone)")
