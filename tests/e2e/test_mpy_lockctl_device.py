"""The staff-key tests of tests/tools/test_lockctl_device.py, again, against the
firmware under the real MicroPython interpreter (`python -m simulator --mpy`):
devices, grants, sealed keys, wrong codes, a burned token, a revoked device."""

from __future__ import annotations

import pytest
from test_lockctl_device import *  # noqa: F401,F403 - the same tests, collected here again
from test_on_micropython import MPY, NOT_INSTALLED

from simulator.mpyhost import in_process_runner

pytestmark = [
    pytest.mark.micropython,
    pytest.mark.skipif(MPY is None or not in_process_runner(), reason=NOT_INSTALLED),
]


@pytest.fixture(scope="module")
def sim_args() -> list[str]:
    return ["--mpy"]
