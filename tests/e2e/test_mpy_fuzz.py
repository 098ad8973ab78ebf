"""Fuzzing the firmware under MicroPython, in CI (issue #12): 10,000 random
and mutated frames (tools/fuzz.py: bit flips, truncations, splices of valid
frames, lying lengths, deep nesting, huge announced lengths, garbage between
valid frames, damaged COBS and CRC, oversized frames) into `python -m simulator
--mpy` over the serial port and BLE at once.

What must hold (tools.fuzz.Campaign checks it and lists what failed): no boot
and no crash; the bolt never moved while fuzzing and no fuzzed frame was
allowed; both links still answer GET_HELLO; a valid key then opens, with
exactly one OPENED record more; the log grew by a few records only (the log
budget); the firmware's live heap after the campaign is within
tools.fuzz.HEAP_TOLERANCE of before. The count, the seed and the rate are
printed; FUZZ_SEED replays a campaign's frames (the lock's nonces differ), and
FUZZ_FRAMES changes the count. `make fuzz` runs 100,000.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from test_on_micropython import MPY, NOT_INSTALLED

from simulator.mpyhost import in_process_runner
from tools import fuzz

FRAMES = int(os.environ.get("FUZZ_FRAMES", "10000"))

pytestmark = [
    pytest.mark.micropython,
    pytest.mark.skipif(MPY is None or not in_process_runner(), reason=NOT_INSTALLED),
]


def test_fuzzed_frames_on_both_links(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    seed = fuzz.seed_from_env()
    lines: list[str] = []
    report = fuzz.run_mpy(FRAMES, seed, tmp_path / "lock", out=lines.append)
    with capsys.disabled():
        print("\n" + "\n".join(lines))
    assert not report.failures, "\n".join(lines)
    assert report.frames >= FRAMES
    # Both links carried fuzz (BLE at a connection per item: about 5 %).
    assert report.per_link["serial"] > FRAMES // 2 and report.per_link["ble"] >= FRAMES // 100
    assert report.heap_before["n"] and report.heap_after["n"] > report.heap_before["n"]
