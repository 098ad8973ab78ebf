"""The conformance vectors of tests/e2e/test_e2e_conformance.py again, answered
by the same firmware under the real MicroPython interpreter (`python -m
simulator --mpy`): what an app's test suite would see from a board."""

from __future__ import annotations

import os

import pytest
from test_e2e_conformance import *  # noqa: F401,F403 - the same tests, collected here again
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
