"""lockctl's provider, unit and booking commands. Parsing and output only; the
acts are tools/site.py's (tools/site_people.py; bookings tools/site_staff.py), the
views tools/views.py."""

from __future__ import annotations

import argparse

from tools import views
from tools.lockctl.cli import (
    Commands,
    Output,
    UsageError,
    actor,
    check_id,
    id_arg,
    local_str,
    open_registry,
    parse_bound,
    print_one,
    print_rows,
    text_arg,
    yes_no,
    zone_of,
)
from tools.lockctl.people_cmds import _blocked_text
from tools.site import Site

# --- providers -------------------------------------------------------------------------

def cmd_provider_add(args: argparse.Namespace, out: Output) -> int:
    alarms = bool(args.alarms)
    Site(open_registry(args)).add_provider(actor(args), args.provider, alarms)
    out.done({"provider": args.provider, "alarms": alarms},
             f"Provider {args.provider} added" + (", named for alarms." if alarms else "."))
    return 0


def cmd_provider_update(args: argparse.Namespace, out: Output) -> int:
    if args.alarms is None:
        raise UsageError("nothing to change: give --alarms yes|no")
    blocked = Site(open_registry(args)).update_provider(actor(args), args.provider, args.alarms)
    out.done({"provider": args.provider, "alarms": args.alarms, "blocked": blocked},
             f"Provider {args.provider} updated: "
             + ("named for alarms." if args.alarms else "not named for alarms.")
             + _blocked_text(blocked))
    return 0


def cmd_provider_remove(args: argparse.Namespace, out: Output) -> int:
    blocked = Site(open_registry(args)).remove_provider(actor(args), args.provider)
    out.done({"provider": args.provider, "blocked": blocked},
             f"Provider {args.provider} removed (kept in the history; its staff get no keys "
             f"any more).{_blocked_text(blocked)}")
    return 0


def cmd_provider_list(args: argparse.Namespace, out: Output) -> int:
    reg = open_registry(args)
    print_rows(out, views.providers(reg), ["provider", "alarms", "active", "units", "staff"],
               zone_of(reg), "No providers.")
    return 0


def cmd_provider_show(args: argparse.Namespace, out: Output) -> int:
    reg = open_registry(args)
    print_one(out, views.provider(reg, args.provider), zone_of(reg))
    return 0


# --- units -----------------------------------------------------------------------------

def cmd_unit_add(args: argparse.Namespace, out: Output) -> int:
    Site(open_registry(args)).add_unit(actor(args), check_id(args.unit, "unit id"),
                                       args.provider, args.name)
    out.done({"unit": args.unit, "provider": args.provider},
             f"Unit {args.unit} of {args.provider} added.")
    return 0


def cmd_unit_update(args: argparse.Namespace, out: Output) -> int:
    if args.provider is None and args.name is None:
        raise UsageError("nothing to change: give --provider or --name")
    Site(open_registry(args)).update_unit(actor(args), args.unit, args.provider, args.name)
    out.done({"unit": args.unit, "provider": args.provider, "name": args.name},
             f"Unit {args.unit} updated.")
    return 0


def cmd_unit_remove(args: argparse.Namespace, out: Output) -> int:
    blocked = Site(open_registry(args)).remove_unit(actor(args), args.unit)
    out.done({"unit": args.unit, "blocked": blocked},
             f"Unit {args.unit} removed (kept in the history; its staff and clients get no keys "
             f"until moved to another unit).{_blocked_text(blocked)}")
    return 0


def cmd_unit_list(args: argparse.Namespace, out: Output) -> int:
    reg = open_registry(args)
    print_rows(out, views.units(reg), ["unit", "provider", "name", "active", "staff", "clients"],
               zone_of(reg), "No units.")
    return 0


def cmd_unit_show(args: argparse.Namespace, out: Output) -> int:
    reg = open_registry(args)
    print_one(out, views.unit(reg, args.unit), zone_of(reg))
    return 0


# --- bookings --------------------------------------------------------------------------

def cmd_booking_add(args: argparse.Namespace, out: Output) -> int:
    reg = open_registry(args)
    tz = zone_of(reg)
    start = parse_bound(args.from_, tz, "from")
    end = parse_bound(args.to, tz, "to", end=True)
    assert start is not None and end is not None  # required options
    if end <= start:
        raise UsageError("--to must be after --from")
    booking = Site(reg).add_booking(actor(args), args.staff, args.unit, start, end)
    out.done({"booking": booking, "staff": args.staff, "unit": args.unit, "start": start,
              "end": end},
             f"Booking {booking}: {args.staff} works in {args.unit} from {local_str(start, tz)} "
             f"to {local_str(end, tz)}.")
    return 0


def cmd_booking_list(args: argparse.Namespace, out: Output) -> int:
    reg = open_registry(args)
    print_rows(out, views.bookings(reg, args.staff, args.unit),
               ["booking", "staff", "unit", "start", "end", "created_by", "cancelled_at"],
               zone_of(reg), "No bookings.")
    return 0


def cmd_booking_cancel(args: argparse.Namespace, out: Output) -> int:
    blocked = Site(open_registry(args)).cancel_booking(actor(args), args.booking)
    out.done({"booking": args.booking, "blocked": blocked},
             f"Booking {args.booking} cancelled.{_blocked_text(blocked)}")
    return 0


def booking_id(value: str) -> int:
    if not value.isdigit() or len(value) > 12:
        raise argparse.ArgumentTypeError(f"not a booking number: {value[:20]!r}")
    return int(value)


def register(c: Commands) -> None:
    prov = c.group("provider", "care providers")
    sp = c.add(prov, "add", cmd_provider_add, "register a care provider",
               "lockctl provider add 'Nattpatrullen' --alarms yes")
    sp.add_argument("provider", metavar="PROVIDER", type=text_arg(200), help="its name")
    sp.add_argument("--alarms", type=yes_no, default=False, metavar="yes|no",
                    help="its night patrols answer safety alarms (default no)")
    sp = c.add(prov, "update", cmd_provider_update, "name a provider for alarms, or not",
               "lockctl provider update Kommunen --alarms yes")
    sp.add_argument("provider", metavar="PROVIDER", type=text_arg(200), help="its name")
    sp.add_argument("--alarms", type=yes_no, metavar="yes|no",
                    help="its night patrols answer safety alarms")
    for name, func, help_ in (
            ("remove", cmd_provider_remove,
             "deactivate a provider (history kept; its staff's keys blocked)"),
            ("show", cmd_provider_show, "one provider")):
        sp = c.add(prov, name, func, help_, f"lockctl provider {name} 'Omsorg AB'")
        sp.add_argument("provider", metavar="PROVIDER", type=text_arg(200), help="its name")
    c.add(prov, "list", cmd_provider_list, "list providers", "lockctl provider list")

    unit = c.group("unit", "units (arbetsgrupper) of a provider")
    sp = c.add(unit, "add", cmd_unit_add, "register a unit", "lockctl unit add Norr "
               "--provider Kommunen --name 'Hemtjänst Norr'")
    sp.add_argument("unit", metavar="UNIT", help="its id")
    sp.add_argument("--provider", required=True, type=text_arg(200), help="its provider")
    sp.add_argument("--name", type=text_arg(200), help="its name")
    sp = c.add(unit, "update", cmd_unit_update, "change a unit's provider or name",
               "lockctl unit update Norr --name 'Hemtjänst Norrtälje norr'")
    sp.add_argument("unit", metavar="UNIT", type=id_arg("unit id"), help="its id")
    sp.add_argument("--provider", type=text_arg(200), help="its provider")
    sp.add_argument("--name", type=text_arg(200), help="its name")
    for name, func, help_ in (
            ("remove", cmd_unit_remove,
             "deactivate a unit (history kept; its staff's and clients' keys blocked)"),
            ("show", cmd_unit_show, "one unit")):
        sp = c.add(unit, name, func, help_, f"lockctl unit {name} Norr")
        sp.add_argument("unit", metavar="UNIT", type=id_arg("unit id"), help="its id")
    c.add(unit, "list", cmd_unit_list, "list units", "lockctl unit list")

    book = c.group("booking", "temporary staff booked to a unit")
    sp = c.add(book, "add", cmd_booking_add,
               "book a staff member to another unit for a period (keys for its clients)",
               "lockctl booking add --staff S-9 --unit Norr --from 2026-12-01 --to 2026-12-07")
    sp.add_argument("--staff", required=True, metavar="STAFF_ID", type=id_arg("staff id"),
                    help="who is booked")
    sp.add_argument("--unit", required=True, metavar="UNIT", type=id_arg("unit id"),
                    help="the unit they work in meanwhile")
    sp.add_argument("--from", dest="from_", required=True, metavar="DATE",
                    help="first day (YYYY-MM-DD) or time, the site's zone")
    sp.add_argument("--to", required=True, metavar="DATE",
                    help="last day (included) or end time, the site's zone")
    sp = c.add(book, "list", cmd_booking_list, "list bookings", "lockctl booking list --unit Norr")
    sp.add_argument("--staff", metavar="STAFF_ID", type=id_arg("staff id"), help="only theirs")
    sp.add_argument("--unit", metavar="UNIT", type=id_arg("unit id"), help="only this unit's")
    sp = c.add(book, "cancel", cmd_booking_cancel,
               "cancel a booking (keys that needed it are blocked)", "lockctl booking cancel 3")
    sp.add_argument("booking", metavar="BOOKING", type=booking_id, help="its number")
