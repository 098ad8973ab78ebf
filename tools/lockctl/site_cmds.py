"""lockctl's site commands (clients and staff: people_cmds.py)."""

from __future__ import annotations

import argparse
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from protocol import token as tok
from tools.lockctl.cli import (
    Commands,
    Output,
    UsageError,
    actor,
    days_arg,
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


def register(c: Commands) -> None:
    site = c.group("site", "the site")
    sp = c.add(site, "init", cmd_site_init, "create a site: registry and secrets",
               example='lockctl site init --name "Norrtälje hemtjänst"')
    # The site name is the issuer (iss) of every token: the lock takes 64 characters.
    sp.add_argument("--name", default="site", type=text_arg(tok.MAX_TEXT),
                    help="the site's name; it is also the issuer name its locks check")
    sp.add_argument("--zone", default="Europe/Stockholm", type=zone_arg,
                    help="the time zone of shifts and reports (default Europe/Stockholm)")
    sp.add_argument("--retention-days", type=days_arg, default=365,
                    help="keep visit logs this many days (default 365; lockctl site set "
                         "changes it)")

