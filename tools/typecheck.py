"""Type checks for `make lint`.

- Host code (tools/, simulator/, mpybuild/) with mypy against CPython's typeshed,
  configured in pyproject.toml's [tool.mypy] (so a bare `mypy` checks the same).
- The lock's code (protocol/, firmware/, boards/) against each port's
  MicroPython stubs (installed by `make setup` into .venv/stubs/PORT), so an
  API MicroPython lacks is caught before a board is.
- The host's MicroPython code (simulator/mpy/: the unix port's HAL, the flash
  model, the port's boot; tools/onboard/: what `lockctl flash` runs on a
  board) against the unix port's stubs too (the port it runs on; the onboard
  scripts use only what every port has).
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


MPY_HOST = ("simulator/mpy", "tools/onboard")  # MicroPython code of the host side


def py_files(folders: tuple[str, ...]) -> list[str]:
    files = []
    for folder in folders:
        files += sorted(str(p.relative_to(ROOT)) for p in (ROOT / folder).glob("*.py"))
    return files


def lock_files() -> list[str]:
    return py_files(("protocol", "firmware", "boards"))


def mypy(args: list[str], env: dict[str, str] | None = None) -> int:
    """Run mypy; fail only on errors located in our files.

    Errors reported inside the third-party MicroPython stub packages themselves
    (paths under .venv/stubs/, e.g. `_mpy_shed/pathlike.pyi: Name "ABC" is not
    defined`) are not ours to fix: they are printed as ignored and not counted.
    """
    cmd = [sys.executable, "-m", "mypy", *args]
    print("$", " ".join(cmd[2:8]), "...", flush=True)
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    stub_prefix = str(STUBS.relative_to(ROOT)).replace(os.sep, "/") + "/"
    ours = 0
    for line in proc.stdout.splitlines():
        path = line.split(":", 1)[0].replace(os.sep, "/")
        if path.startswith(stub_prefix) or path.startswith(str(STUBS)):
            print("(ignored, in stubs)", line)
        elif line.startswith("Found ") or line.startswith("Success:"):
            continue  # mypy's summary counts stub errors too; ours is printed below
        else:
            print(line)
            if ": error:" in line:
                ours += 1
    sys.stderr.write(proc.stderr)
    if proc.returncode not in (0, 1):  # 2: mypy itself failed (bad flags, crash)
        print(f"mypy exited with {proc.returncode}")
        return 1
    print(f"{ours} error(s) outside the stubs" if ours else "OK (outside the stubs)", flush=True)
    return 1 if ours else 0


def main() -> int:
    failed = 0
    failed |= mypy([])  # host code: its configuration is pyproject.toml's [tool.mypy]
    for port in PORTS:
        stubs = STUBS / port
        if not stubs.is_dir():
            print(f"WARNING: {port} not installed (run make setup); lock code NOT checked for it")
            failed = 1
            continue
        env = dict(os.environ, MYPYPATH=str(stubs))
        files = lock_files() + (py_files(MPY_HOST) if port == "unix-stubs" else [])
        failed |= mypy(["--config-file=", "--custom-typeshed-dir", str(stubs), "--cache-dir",
                        str(ROOT / ".mypy_cache" / port), *LOCK_FLAGS, *files], env)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
