"""The argparse types of lockctl's options: names and addresses, ids, paths,
time zones, days and yes|no, refused with a message before a command runs."""

from __future__ import annotations

import argparse
from typing import Callable
from zoneinfo import ZoneInfo

from tools.lockctl.output import shorten
from tools.site import ID_RE
from tools.site_care import printable


def text_arg(limit: int) -> Callable[[str], str]:
    """An argparse type for names and addresses: they end up in the registry, in
    reports and in the audit record, so they must be printable text (an argument
    that is not UTF-8 arrives with surrogates, which SQLite refuses)."""
    def check(value: str) -> str:
        if not value.strip():
            raise argparse.ArgumentTypeError("must not be empty")
        if len(value) > limit:
            raise argparse.ArgumentTypeError(f"at most {limit} characters")
        if not printable(value):
            raise argparse.ArgumentTypeError("control characters or bytes that are not "
                                             "UTF-8 text are not allowed")
        return value
    return check


def id_arg(what: str, many: bool = False) -> Callable[[str], str]:
    """An argparse type for an id that is looked up: every id in a registry
    passed check_id, so anything else names nothing (and text that is not
    UTF-8 would fail inside SQLite instead)."""
    def check(value: str) -> str:
        for one in [part.strip() for part in value.split(",")] if many else [value]:
            if many and not one:
                continue  # "C1,,C2": the command drops the empty name
            if not ID_RE.match(one):
                raise argparse.ArgumentTypeError(
                    f"invalid {what} {shorten(one)!r}: use 1-64 letters, digits, '.', '_' or '-'")
        return value
    return check


def path_arg(value: str) -> str:
    if not value:
        raise argparse.ArgumentTypeError("must not be empty")
    return value


def zone_arg(value: str) -> str:
    try:
        ZoneInfo(value)
    except Exception:  # noqa: BLE001 - ValueError, OSError (a name too long), ...
        raise argparse.ArgumentTypeError(f"unknown time zone {shorten(value)!r}") from None
    return value


def days_arg(value: str) -> int:
    # Past a century the retention arithmetic leaves SQLite's integer range.
    try:
        days = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of days: {shorten(value)!r}") from None
    if not 1 <= days <= 36500:
        raise argparse.ArgumentTypeError("must be 1 to 36500 days")
    return days


def yes_no(value: str) -> bool:
    """An argparse type for yes|no."""
    v = value.strip().lower()
    if v in ("yes", "no"):
        return v == "yes"
    raise argparse.ArgumentTypeError("yes or no")
