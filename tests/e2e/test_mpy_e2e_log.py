"""The full-ring log reads of tests/e2e/test_e2e_log.py, again, with the firmware
under the real MicroPython interpreter (`python -m simulator --mpy`)."""

from __future__ import annotations

import pytest
from test_e2e_log import *  # noqa: F401,F403 - the same tests, collected here again
from test_on_micropython import MPY, NOT_INSTALLED

from mpybuild import in_process_runner

pytestmark = [
    pytest.mark.micropython,
    pytest.mark.skipif(MPY is None or not in_process_runner(), reason=NOT_INSTALLED),
]


@pytest.fixture(scope="module")
def sim_args() -> list[str]:
    return ["--mpy"]
