"""The hardware end-to-end tests of tests/e2e/test_e2e_hardware.py (jams, the door,
the battery, stalled links, rate limiting, the watchdog, power cuts, factory
reset), again, with the firmware under the real MicroPython interpreter
(`python -m simulator --mpy`, heap 96wK as in tests/e2e/test_mpy_e2e.py). The
board forwards the same control commands to the parent's hardware models, so
each test acts and checks exactly as under CPython.
"""

from __future__ import annotations

import pytest
from test_e2e_hardware import *  # noqa: F401,F403 - the same tests, collected here again
from test_on_micropython import MPY, NOT_INSTALLED

from mpybuild import in_process_runner

pytestmark = [
    pytest.mark.micropython,
    pytest.mark.skipif(MPY is None or not in_process_runner(), reason=NOT_INSTALLED),
]


@pytest.fixture(scope="module")
def sim_args() -> list[str]:
    return ["--mpy"]
