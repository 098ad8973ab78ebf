"""Type checks for `make lint`.

- Host code (tools/, simulator/) with mypy against CPython's typeshed.
- The lock's code (protocol/, firmware/, boards/) against each port's
  MicroPython stubs (installed by `make setup` into .venv/stubs/PORT), so an
  API MicroPython lacks is caught before a board is.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STUBS = ROOT / ".venv" / "stubs"
PORTS = ("unix-stubs", "esp32-esp32-generic-c3-stubs", "rp2-rpi-pico-w-stubs")
# The const() fallback for CPython is a deliberate redefinition ("misc").
LOCK_FLAGS = ["--disable-error-code", "misc", "--no-site-packages", "--follow-imports=silent",
              "--check-untyped-defs", "--python-version", "3.11"]


def lock_files() -> list[str]:
    files = []
    for folder in ("protocol", "firmware", "boards"):
        files += sorted(str(p.relative_to(ROOT)) for p in (ROOT / folder).glob("*.py"))
    return files


def mypy(args: list[str], env: dict[str, str] | None = None) -> int:
    cmd = [sys.executable, "-m", "mypy", *args]
    print("$", " ".join(cmd[2:8]), "...", flush=True)
    return subprocess.call(cmd, cwd=ROOT, env=env)


def main() -> int:
    failed = 0
    failed |= mypy(["--ignore-missing-imports", "--check-untyped-defs", "tools", "simulator"])
    for port in PORTS:
        stubs = STUBS / port
        if not stubs.is_dir():
            print(f"WARNING: {port} not installed (run make setup); lock code NOT checked for it")
            failed = 1
            continue
        env = dict(os.environ, MYPYPATH=str(stubs))
        failed |= mypy(["--custom-typeshed-dir", str(stubs), "--cache-dir",
                        str(ROOT / ".mypy_cache" / port), *LOCK_FLAGS, *lock_files()], env)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
