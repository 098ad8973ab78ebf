"""The time-bound tests of tests/e2e/test_e2e_time.py again, against the same
firmware under the real MicroPython interpreter (`python -m simulator --mpy`):
every out-of-range time refused with reason 23 and logged, the lock still
opening, and force-time with the button as the way back (issue #10 item 2)."""

from __future__ import annotations

import os

import pytest
from test_e2e_time import *  # noqa: F401,F403 - the same tests, collected here again
from test_on_micropython import MPY, NOT_INSTALLED

from simulator.mpyhost import in_process_runner

HEAP = os.environ.get("LOCK_MPY_E2E_HEAP", "96wK")

pytestmark = [
    pytest.mark.micropython,
    pytest.mark.skipif(MPY is None or not in_process_runner(), reason=NOT_INSTALLED),
]


@pytest.fixture(scope="module")
def sim_args() -> list[str]:
    return ["--mpy", "--heap", HEAP]
