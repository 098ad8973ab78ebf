import os
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
# The tests mirror the packages (protocol/, firmware/, simulator/, tools/, and
# e2e/ for the whole lock); a test module may use another folder's helpers
# (test_lockctl's Site, test_on_micropython's MPY), so every folder is on the path.
FOLDERS = ("portable", "protocol", "firmware", "simulator", "tools", "e2e")
for p in (ROOT, *(os.path.join(HERE, f) for f in FOLDERS)):
    if p not in sys.path:
        sys.path.insert(0, p)


@pytest.fixture
def virtual_time():
    """A virtual-time asyncio loop (simulator/vtime.py): waits are exact and
    take no wall-clock time. `virtual_time.run(coro)`, `virtual_time.now()`."""
    from simulator.vtime import VirtualTime

    vt = VirtualTime()
    try:
        yield vt
    finally:
        vt.close()
