"""lockctl's client and staff commands: add, update, remove, list, show,
deactivate and activate. Parsing and output only; the acts are tools/site.py's
(tools/site_people.py, tools/site_staff.py), the views tools/views.py."""

from __future__ import annotations

import argparse

from tools import views
from tools.access import check_roles
from tools.lockctl.cli import (
    Commands,
    Output,
    UsageError,
    actor,
    check_id,
    id_arg,
    open_registry,
    parse_day,
    print_one,
    print_rows,
    site_config,
    text_arg,
    zone_of,
)
from tools.registry import ROLES
from tools.site import Site


def names_arg(value: str) -> str:
    """P1,P2: provider names (they may hold spaces, not commas)."""
    parts = [p.strip() for p in value.split(",")]
    if not value.strip():
        raise argparse.ArgumentTypeError("name at least one provider")
    if any(not p for p in parts):
        raise argparse.ArgumentTypeError("an empty name between commas")
    for p in parts:
        text_arg(200)(p)
    return value


def names_of(value: str | None) -> list[str] | None:
    if value is None:
        return None
    return [p.strip() for p in value.split(",") if p.strip()]


def roles_arg(value: str) -> str:
    try:
        check_roles(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return value


def _blocked_text(blocked: list[str]) -> str:
    if not blocked:
        return ""
    return (f" {len(blocked)} outstanding key(s) no longer allowed were blocked: "
            f"{', '.join(blocked)} (each reaches its lock with the next key or sync).")


# --- clients ---------------------------------------------------------------------------

def day_text(value: str | None, what: str) -> str | None:
    day = parse_day(value, what)
    return None if day is None else day.isoformat()


def cmd_client_add(args: argparse.Namespace, out: Output) -> int:
    Site(open_registry(args)).add_client(
        actor(args), check_id(args.client_id, "client id"), args.name, args.address,
        unit=args.unit, providers=names_of(args.providers),
        medicine_roles=names_of(args.medicine_roles), property_id=args.property,
        informed_on=day_text(args.informed, "informed"))
    out.done({"client": args.client_id}, f"Client {args.client_id} ({args.name}) added.")
    return 0


def cmd_client_update(args: argparse.Namespace, out: Output) -> int:
    if all(v is None for v in (args.name, args.address, args.unit, args.providers,
                               args.medicine_roles, args.property, args.informed)):
        raise UsageError("nothing to change: give --name, --address, --unit, --providers, "
                         "--medicine-roles, --property or --informed")
    blocked = Site(open_registry(args)).update_client(
        actor(args), args.client_id, name=args.name, address=args.address, unit=args.unit,
        providers=names_of(args.providers), medicine_roles=names_of(args.medicine_roles),
        property_id=args.property, informed_on=day_text(args.informed, "informed"))
    out.done({"client": args.client_id, "blocked": blocked},
             f"Client {args.client_id} updated.{_blocked_text(blocked)}")
    return 0


def cmd_client_remove(args: argparse.Namespace, out: Output) -> int:
    blocked = Site(open_registry(args)).remove_client(actor(args), args.client_id)
    out.done({"client": args.client_id, "blocked": blocked},
             f"Client {args.client_id} removed (kept in the history; no keys for their doors "
             f"any more).{_blocked_text(blocked)}")
    return 0


def cmd_client_list(args: argparse.Namespace, out: Output) -> int:
    reg = open_registry(args)
    print_rows(out, views.clients(reg, args.all),
               ["client", "name", "unit", "providers", "medicine_roles", "locks"]
               + (["active"] if args.all else []), zone_of(reg), "No clients.")
    return 0


def cmd_client_show(args: argparse.Namespace, out: Output) -> int:
    reg = open_registry(args)
    print_one(out, views.client(reg, reg.client(args.client_id)), zone_of(reg))
    return 0


# --- staff -----------------------------------------------------------------------------

def cmd_staff_add(args: argparse.Namespace, out: Output) -> int:
    check_id(args.staff_id, "staff id")
    if not args.provider:
        args.provider = site_config(args).provider
    if not args.provider:
        raise UsageError("staff add needs --provider PROVIDER (created if the site does not "
                         "know it), or provider in SITE/site.toml")
    Site(open_registry(args)).add_staff(actor(args), check_id(args.staff_id, "staff id"),
                                        args.name, args.provider, args.unit, args.role)
    out.done({"staff": args.staff_id, "role": args.role},
             f"Staff member {args.staff_id} ({args.name}, {args.role}) added.")
    return 0


def cmd_staff_update(args: argparse.Namespace, out: Output) -> int:
    if args.name is None and args.unit is None and args.role is None:
        raise UsageError("nothing to change: give --name, --unit or --role")
    blocked = Site(open_registry(args)).update_staff(actor(args), args.staff_id, args.name,
                                                     args.unit, args.role)
    out.done({"staff": args.staff_id, "blocked": blocked},
             f"Staff member {args.staff_id} updated.{_blocked_text(blocked)}")
    return 0


def cmd_staff_list(args: argparse.Namespace, out: Output) -> int:
    reg = open_registry(args)
    print_rows(out, views.staff(reg, args.all),
               ["staff", "name", "provider", "unit", "role", "state", "device_state"],
               zone_of(reg), "No staff.")
    return 0


def cmd_staff_show(args: argparse.Namespace, out: Output) -> int:
    reg = open_registry(args)
    data = views.staff_member(reg, reg.staff(args.staff_id))
    data["tokens"] = [t["token"] for t in views.tokens(reg, staff_id=args.staff_id,
                                                       valid_only=True)]
    print_one(out, data, zone_of(reg))
    return 0


def cmd_staff_deactivate(args: argparse.Namespace, out: Output) -> int:
    rev, suspended = Site(open_registry(args)).deactivate_staff(actor(args), args.staff_id)
    out.done({"staff": args.staff_id, "revocation_version": rev.version,
              "suspended": suspended},
             f"{args.staff_id} deactivated: every key issued until now is blocked (block list "
             f"version {rev.version}; it reaches each lock with the next key issued, or with "
             "`lockctl lock sync`)"
             + (f", device {', '.join(s[:16] for s in suspended)} suspended." if suspended
                else "; no device to suspend."))
    return 0


def cmd_staff_activate(args: argparse.Namespace, out: Output) -> int:
    restored = Site(open_registry(args)).activate_staff(actor(args), args.staff_id)
    out.done({"staff": args.staff_id, "device": restored},
             f"{args.staff_id} active again"
             + (f", device {restored[:16]} restored: issue a fresh shift key." if restored
                else ": no suspended device to restore (enrol one: lockctl device enrol)."))
    return 0


def register(c: Commands) -> None:
    client = c.group("client", "clients")
    for name, func, help_, example in (
            ("add", cmd_client_add, "register a client",
             "lockctl client add C-1001 --name 'Astrid Lindqvist' --unit Norr "
             "--providers Kommunen"),
            ("update", cmd_client_update, "change a client's details, unit, providers or "
             "care plan (takes effect at once)",
             "lockctl client update C-1001 --medicine-roles nurse,rehab")):
        sp = c.add(client, name, func, help_, example)
        sp.add_argument("client_id", metavar="CLIENT_ID", help="the client's id, e.g. C-1001",
                        **({} if name == "add" else {"type": id_arg("client id")}))
        sp.add_argument("--name", required=name == "add", type=text_arg(200),
                        help="the client's name")
        sp.add_argument("--address", type=text_arg(200), help="the client's address")
        sp.add_argument("--unit", metavar="UNIT", type=id_arg("unit id"),
                        help="the unit whose staff visit the client")
        sp.add_argument("--providers", metavar="P1,P2", type=names_arg,
                        help="the care providers the client chose: only their staff get keys")
        sp.add_argument("--medicine-roles", metavar="ROLE,ROLE", type=roles_arg,
                        help="who may open the medicine cabinet, from the care plan "
                        f"(default nurse; roles: {', '.join(ROLES)})")
        sp.add_argument("--property", metavar="PROPERTY_ID", type=id_arg("property id"),
                        help="the property (building) the client lives in: its owner "
                        "consents to locks on its shared doors (lockctl property add)")
        sp.add_argument("--informed", metavar="YYYY-MM-DD",
                        help="the day the client acknowledged the information about "
                        "digital locks")
    sp = c.add(client, "remove", cmd_client_remove,
               "deactivate a client (history kept; keys to their doors blocked)",
               "lockctl client remove C-1002")
    sp.add_argument("client_id", metavar="CLIENT_ID", type=id_arg("client id"),
                    help="the client's id")
    sp = c.add(client, "list", cmd_client_list, "list clients", "lockctl client list")
    sp.add_argument("--all", action="store_true", help="removed clients too")
    sp = c.add(client, "show", cmd_client_show, "one client", "lockctl client show C-1001")
    sp.add_argument("client_id", metavar="CLIENT_ID", type=id_arg("client id"),
                    help="the client's id")

    staff = c.group("staff", "staff")
    sp = c.add(staff, "add", cmd_staff_add, "register a staff member",
               "lockctl staff add S-1 --name 'Anna Berg' --provider Kommunen --unit Norr "
               "--role nurse")
    sp.add_argument("staff_id", metavar="STAFF_ID", help="the staff member's id, e.g. S-1")
    sp.add_argument("--name", required=True, type=text_arg(200), help="the staff member's name")
    sp.add_argument("--provider", type=text_arg(200),
                    help="their care provider (created if the site does not know it; "
                         "default: provider in SITE/site.toml)")
    sp.add_argument("--unit", metavar="UNIT", type=id_arg("unit id"),
                    help="their unit (of that provider)")
    sp.add_argument("--role", choices=ROLES, default="home-care", help="their role")
    sp = c.add(staff, "update", cmd_staff_update,
               "change a staff member's name, unit or role (takes effect at once)",
               "lockctl staff update S-1 --role nurse")
    sp.add_argument("staff_id", metavar="STAFF_ID", type=id_arg("staff id"),
                    help="the staff member's id")
    sp.add_argument("--name", type=text_arg(200), help="their name")
    sp.add_argument("--unit", metavar="UNIT", type=id_arg("unit id"),
                    help="their unit (of their provider)")
    sp.add_argument("--role", choices=ROLES, help="their role")
    sp = c.add(staff, "list", cmd_staff_list, "list staff", "lockctl staff list")
    sp.add_argument("--all", action="store_true", help="deactivated staff too")
    for name, func, help_ in (
            ("show", cmd_staff_show, "one staff member, with their valid keys"),
            ("deactivate", cmd_staff_deactivate,
             "a staff member leaves or goes on leave: block their keys, suspend their device"),
            ("activate", cmd_staff_activate,
             "back from leave: active again, a suspended device restored")):
        sp = c.add(staff, name, func, help_, f"lockctl staff {name} S-1")
        sp.add_argument("staff_id", metavar="STAFF_ID", type=id_arg("staff id"),
                        help="the staff member's id")
