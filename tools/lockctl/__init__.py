"""lockctl: the installers' and administrators' tool.

A thin command line over the library in tools/ (the service layer tools/site.py,
the registry, the issuer, the installer and key-emulator clients, the
transports): `main.py` parses and turns errors into one line at the edge, each
`*_cmds.py` module holds one group of commands (their parsing and output) and
`cli.py` what they share (with `argtypes.py`, the option types, and `output.py`).
Exit status: 0 done, 1 refused or failed, 2 usage.
"""

from tools.lockctl.cli import Failed, Output, UsageError, parse_local
from tools.lockctl.main import build_parser, main
from tools.site import MAX_CARRIED_UPDATE, revocation_blob

__all__ = ["MAX_CARRIED_UPDATE", "Failed", "Output", "UsageError", "build_parser", "main",
           "parse_local", "revocation_blob"]
