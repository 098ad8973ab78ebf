"""lockctl's entry point: the parser built from the command modules, and the
edge where errors become one line and an exit status."""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import sys
import traceback
from typing import Any, NoReturn

from tools import device as device_mod
from tools import issuer, keyfile
from tools.client import ClientError, ForeignLock, Refused
from tools.lockctl import (
    alarm_cmds,
    care_cmds,
    cli_cmds,
    fleet_cmds,
    key_cmds,
    lock_cmds,
    lock_life_cmds,
    log_cmds,
    org_cmds,
    people_cmds,
    registry_cmds,
    settings_cmds,
    site_cmds,
)
from tools.lockctl.cli import (
    Commands,
    Failed,
    Output,
    UsageError,
    path_arg,
    registry_problem,
    shorten,
    site_config,
    site_dir,
    text_arg,
)
from tools.registry import RegistryError
from tools.transport import TransportError

MODULES = (site_cmds, people_cmds, org_cmds, lock_cmds, key_cmds, log_cmds, registry_cmds,
           alarm_cmds, care_cmds, lock_life_cmds, fleet_cmds, cli_cmds, settings_cmds)


def build_parser() -> argparse.ArgumentParser:
    def common_options(suppress: bool) -> argparse.ArgumentParser:
        # The same options before or after the command; after it they must not
        # reset what was given before it, hence SUPPRESS on the subcommands.
        c = argparse.ArgumentParser(add_help=False)
        kw: dict[str, Any] = {"default": argparse.SUPPRESS} if suppress else {}
        c.add_argument("--site", metavar="DIR", type=path_arg,
                       help="site directory (default $LOCKCTL_SITE or ./site)", **kw)
        c.add_argument("--json", action="store_true", help="machine-readable output", **kw)
        c.add_argument("--actor", help="who does this (default $LOCKCTL_ACTOR or the user)",
                       type=text_arg(100), **kw)
        c.add_argument("--debug", action="store_true",
                       help="on an unexpected error, show its traceback", **kw)
        return c

    p = Parser(prog="lockctl", parents=[common_options(suppress=False)],
                                description="Site registry, commissioning, shift keys, "
                                "blocking and log reports for keyless home-care locks.",
                                epilog="example:\n  lockctl --site /srv/site log report "
                                "--client C-1001 --format html --out report.html\n\n"
                                "lockctl COMMAND --help tells more, with an example.",
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--version", action="version", version=f"lockctl {version()}",
                   help="show lockctl's version and exit")
    commands = Commands(p.add_subparsers(dest="command", required=True, metavar="COMMAND"),
                        common_options(suppress=True))
    for module in MODULES:
        module.register(commands)
    return p


def version() -> str:
    """From the installed package's metadata (pyproject.toml's version)."""
    from importlib import metadata
    try:
        return metadata.version("nyckelfri-lock")
    except metadata.PackageNotFoundError:
        return "unknown (not installed: pip install -e .)"


INTERRUPTED = 130  # 128 + SIGINT, as a shell reports a command stopped by Ctrl-C


def os_problem(exc: OSError) -> str:
    what = exc.strerror or str(exc) or type(exc).__name__
    return f"{shorten(str(exc.filename))}: {what}" if exc.filename is not None else what


# The one-line error of this run, for --json (main() writes it as a JSON object).
_errors: list[str] = []


class Parser(argparse.ArgumentParser):
    """argparse's parser, keeping its usage error's words for --json (every
    subcommand's parser is of this class too)."""

    def error(self, message: str) -> NoReturn:
        _errors.append(f"{self.prog}: error: {message}")
        super().error(message)


def complain(message: object, debug: bool = False) -> None:
    """One line on stderr; with --debug, an error lockctl did not foresee as
    such (from SQLite, the OS, or a bug) also shows where it came from."""
    if debug:
        traceback.print_exc()
    lines = str(message).strip().splitlines() or [""]
    line = shorten(lines[0], 500)
    _errors.append(line)
    print(f"lockctl: {line}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    """lockctl. Under --json an error is also one JSON object on stdout:
    {"error": MESSAGE, "exit": STATUS}, the same words as on stderr."""
    _errors.clear()
    words = sys.argv[1:] if argv is None else argv
    status = _main(argv)
    if status != 0 and _errors and "--json" in words:
        try:
            print(json.dumps({"error": _errors[-1], "exit": status}, ensure_ascii=False),
                  flush=True)
        except (BrokenPipeError, ValueError, OSError):
            pass
    return status


def _main(argv: list[str] | None) -> int:
    # A path or id that is not UTF-8 must not make the answer itself fail.
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            reconfigure(errors="backslashreplace")
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse printed the usage line
        return int(exc.code or 0) and 2
    except KeyboardInterrupt:
        _errors.append("interrupted")
        print("lockctl: interrupted", file=sys.stderr)
        return INTERRUPTED
    out = Output(args.json)
    debug = bool(getattr(args, "debug", False))
    try:
        if getattr(args, "port_from_site", False) and not args.port:
            args.port = site_config(args).port
        return int(args.func(args, out))
    except UsageError as exc:
        complain(exc)
        return 2
    except (Failed, RegistryError, keyfile.KeyFileError, device_mod.DeviceError, ForeignLock,
            Refused, ClientError,
            TransportError, issuer.IssueError) as exc:
        complain(exc)
        return 1
    except sqlite3.Error as exc:
        complain(registry_problem(site_dir(args), exc), debug)
        return 1
    except BrokenPipeError:
        # The reader went away (`lockctl ... | head`): nobody is left to tell,
        # and the interpreter's own flush at exit must not fail on the pipe either.
        try:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except (OSError, ValueError):
            pass
        return 1
    except OSError as exc:
        complain(os_problem(exc), debug)
        return 1
    except KeyboardInterrupt:
        if sys.stderr.isatty():
            print(file=sys.stderr)  # Ctrl-C leaves the cursor after a prompt or a bar
        _errors.append("interrupted")
        print("lockctl: interrupted", file=sys.stderr)
        return INTERRUPTED
    except Exception as exc:  # noqa: BLE001 - the last catch: one line, not a traceback
        first = (str(exc).strip().splitlines() or [""])[0]
        complain(f"unexpected error ({type(exc).__name__}: {shorten(first, 200)}); "
                 "run again with --debug for the details", debug)
        return 1


