"""lockctl's site, client and staff commands."""

from __future__ import annotations

import argparse
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from protocol import token as tok
from tools.lockctl.cli import (
    Commands,
    Output,
    UsageError,
    actor,
    check_id,
    days_arg,
    id_arg,
    open_registry,
    site_dir,
    text_arg,
    zone_arg,
)
from tools.site import Site


def cmd_site_init(args: argparse.Namespace, out: Output) -> int:
    try:
        ZoneInfo(args.zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise UsageError(f"unknown time zone {args.zone!r}") from None
    if args.retention_days < 1:
        raise UsageError("--retention-days must be at least 1")
    reg = Site.init(site_dir(args), args.name, args.zone, args.retention_days,
                    actor=actor(args)).registry
    out.done({"site": str(reg.dir), "name": args.name, "zone": args.zone},
             f"Site {args.name!r} initialised in {reg.dir} (time zone {args.zone}).")
    return 0


def cmd_client_add(args: argparse.Namespace, out: Output) -> int:
    Site(open_registry(args)).add_client(actor(args), check_id(args.client_id, "client id"),
                                         args.name, args.address, args.property)
    out.done({"client": args.client_id}, f"Client {args.client_id} ({args.name}) added.")
    return 0


def cmd_staff_add(args: argparse.Namespace, out: Output) -> int:
    Site(open_registry(args)).add_staff(actor(args), check_id(args.staff_id, "staff id"),
                                        args.name, args.provider)
    out.done({"staff": args.staff_id}, f"Staff member {args.staff_id} ({args.name}) added.")
    return 0


def register(c: Commands) -> None:
    site = c.group("site", "the site")
    sp = c.add(site, "init", cmd_site_init, "create a site: registry and secrets")
    # The site name is the issuer (iss) of every token: the lock takes 64 characters.
    sp.add_argument("--name", default="site", type=text_arg(tok.MAX_TEXT),
                    help="the site's name; it is also the issuer name its locks check")
    sp.add_argument("--zone", default="Europe/Stockholm", type=zone_arg)
    sp.add_argument("--retention-days", type=days_arg, default=365)

    client = c.group("client", "clients")
    sp = c.add(client, "add", cmd_client_add, "register a client")
    sp.add_argument("client_id", metavar="CLIENT_ID")
    sp.add_argument("--name", required=True, type=text_arg(200))
    sp.add_argument("--address", type=text_arg(200))
    sp.add_argument("--property", metavar="PROPERTY_ID", type=id_arg("property id"),
                    help="the property (building) the client lives in (lockctl property add)")

    staff = c.group("staff", "staff")
    sp = c.add(staff, "add", cmd_staff_add, "register a staff member")
    sp.add_argument("staff_id", metavar="STAFF_ID")
    sp.add_argument("--name", required=True, type=text_arg(200))
    sp.add_argument("--provider", type=text_arg(200))
