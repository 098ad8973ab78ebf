"""Compile the lock's code with mpy-cross and report the sizes.

`python tools/mpycompile.py [OUTDIR]` compiles every module of protocol/,
firmware/ and boards/ to .mpy (the form deployed to a board) and prints
source and compiled sizes. Exit status 1 if any file fails to compile.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from mpybuild import LOCK_PACKAGES, compile_packages  # noqa: E402


def main() -> int:
    outdir = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "build" / "mpy"
    rows, errors = compile_packages(outdir)
    for rel, src, mpy in rows:
        print(f"{rel:<32} {src:>7} B source {mpy:>7} B .mpy")
    for package in LOCK_PACKAGES:
        total = sum(m for r, _, m in rows if r.startswith(package + "/"))
        print(f"{package + '/':<32} {total:>7} B compiled")
    print(f"total compiled: {sum(m for _, _, m in rows)} B in {len(rows)} files")
    for e in errors:
        print("ERROR", e)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
