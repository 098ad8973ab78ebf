"""How lockctl prints: colour on a terminal, the Output of a command (text or
--json, progress on stderr), a user's value in a message, and lists and
objects with their times in the site's zone."""

from __future__ import annotations

import json
import os
import sys
from datetime import datetime
from typing import Any, Callable
from zoneinfo import ZoneInfo

COLOURS = {"red": "31", "green": "32", "yellow": "33", "bold": "1"}


def use_colour(stream: Any = None) -> bool:
    """Colour only on a terminal, and never with NO_COLOR set (no-color.org)."""
    stream = stream or sys.stdout
    if os.environ.get("NO_COLOR", "") != "" or os.environ.get("TERM") == "dumb":
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def colour(text: str, name: str, stream: Any = None) -> str:
    return f"\x1b[{COLOURS[name]}m{text}\x1b[0m" if use_colour(stream) else text


class Output:
    def __init__(self, as_json: bool) -> None:
        self.as_json = as_json

    def done(self, data: dict[str, Any], text: str) -> None:
        if self.as_json:
            print(json.dumps(data, ensure_ascii=False, default=str))
        else:
            print(text)

    def info(self, text: str) -> None:
        """Progress and prompts for people: stderr, so --json stays parseable."""
        print(text, file=sys.stderr, flush=True)

    def progress(self, label: str) -> Callable[[int, int], None]:
        tty = sys.stderr.isatty() and not self.as_json

        def show(done: int, total: int) -> None:
            if not tty:
                return
            width = 30
            frac = min(1.0, done / total) if total else 1.0
            bar = "#" * int(frac * width)
            print(f"\r{label} [{bar:<{width}}] {done}/{total}", end="", file=sys.stderr,
                  flush=True)
            if done >= total:
                print(file=sys.stderr)
        return show


def shorten(text: str, limit: int = 80) -> str:
    """A user's value as it may appear in a one-line message."""
    return text if len(text) <= limit else text[:limit - 20] + "..." + text[-17:]


def local_str(posix: int, tz: ZoneInfo) -> str:
    return datetime.fromtimestamp(posix, tz).strftime("%Y-%m-%d %H:%M")


# Fields of the views (tools/views.py) that are times: shown in local time.
TIME_FIELDS = ("at", "start", "end", "issued_at", "enrolled_at", "changed_at", "created_at",
               "cancelled_at", "commissioned_at", "last_seen")


def shown(value: Any, key: str, tz: ZoneInfo) -> str:
    if value is None or value == []:
        return "-"
    if key in TIME_FIELDS and isinstance(value, int):
        return local_str(value, tz)
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return ",".join(str(v) for v in value)
    if isinstance(value, dict):
        return " ".join(f"{k}={shown(v, k, tz)}" for k, v in value.items())
    return str(value)


def print_rows(out: Output, rows: list[dict[str, Any]], columns: list[str], tz: ZoneInfo,
               empty: str) -> None:
    """A list: a JSON array of objects, or one line per row in columns."""
    if out.as_json:
        print(json.dumps(rows, ensure_ascii=False))
        return
    if not rows:
        print(empty)
        return
    cells = [[shown(r.get(c), c, tz) for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    print("  ".join(c.upper().ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip())
    for row in cells:
        print("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())


def print_one(out: Output, data: dict[str, Any], tz: ZoneInfo) -> None:
    """One object: JSON, or a line per field."""
    if out.as_json:
        print(json.dumps(data, ensure_ascii=False))
        return
    width = max(len(k) for k in data)
    for k, v in data.items():
        print(f"{k.replace('_', ' ') + ':':<{width + 2}} {shown(v, k, tz)}")
