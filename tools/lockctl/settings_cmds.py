"""lockctl site set: the settings that change what the site does (kept in the
registry, changed as audited acts). lockctl's own conveniences (language,
default provider, port) are in SITE/site.toml instead (tools/siteconfig.py)."""

from __future__ import annotations

import argparse

from tools.lockctl.cli import (
    Commands,
    Output,
    UsageError,
    actor,
    days_arg,
    open_registry,
    zone_arg,
)
from tools.site import Site


def _value(key: str, value: str) -> int | str:
    return int(value) if key == "retention_days" else value


def cmd_site_set(args: argparse.Namespace, out: Output) -> int:
    if args.retention_days is None and args.zone is None:
        raise UsageError("site set: give --retention-days N or --zone ZONE")
    reg = open_registry(args)
    changed = Site(reg).set_settings(actor(args), retention_days=args.retention_days,
                                     zone=args.zone)
    current = {"retention_days": int(reg.setting("retention_days")), "zone": reg.zone}
    if not changed:
        text = "Nothing changed: the site already has these settings."
    else:
        text = "; ".join(f"{k.replace('_', ' ')}: {old} -> {new}"
                         for k, (old, new) in changed.items()) + "."
        if "retention_days" in changed:
            text += (" Events older than the retention are deleted at the next log pull.")
    out.done({"changed": {k: {"from": _value(k, o), "to": _value(k, n)}
                          for k, (o, n) in changed.items()},
              **current}, text)
    return 0


def register(c: Commands) -> None:
    site = c.group("site", "the site")
    sp = c.add(site, "set", cmd_site_set,
               "change the site's settings (audited): log retention, time zone",
               example="lockctl site set --retention-days 180")
    sp.add_argument("--retention-days", type=days_arg, metavar="N",
                    help="keep visit logs N days (1-36500); older events are deleted at the "
                         "next log pull")
    sp.add_argument("--zone", type=zone_arg, metavar="ZONE",
                    help="the time zone of shifts and reports, e.g. Europe/Stockholm")
