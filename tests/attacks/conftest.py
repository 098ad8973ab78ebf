"""The attack suite's target: one simulated lock per interpreter, shared by the
cases (CPython and MicroPython under `--mpy`), commissioned by a test site.

Its peer-log budget window is 1 ms here, so every refusal is written with its
reason and a case can check it; the budget itself is attacked in
test_attacks.py with the real window. Every case goes through `Target.attack`,
which checks the four things each attack must leave: refused, logged with its
reason, nothing else changed (every earlier record still there, the chain
intact), and a valid key still opens.
"""

from __future__ import annotations

import json
import os
from contextlib import contextmanager
from typing import Any, Iterator

import pytest
from test_on_micropython import MPY, NOT_INSTALLED

from protocol import events
from simlock import Installer, SimulatedLock, Site, open_with
from simulator.mpyhost import in_process_runner
from tools import issuer

LOCK = "lock-attacked"
TIMINGS = {"peer_budget_ms": 1, "hold_off_ms": 1}


class Target:
    def __init__(self, sim: SimulatedLock, site: Site, name: str) -> None:
        self.sim = sim
        self.site = site
        self.name = name
        self.opens = 0

    def pull(self) -> list[bytes]:
        with self.sim.serial_link() as link:
            return Installer(link).pull_log(self.site.admin_key(LOCK))

    def valid(self, sub: str = "staff-valid", **kw: Any) -> issuer.Grant:
        return self.site.grant(LOCK, sub, **kw)

    @contextmanager
    def attack(self, *reasons: int, code: int = events.REFUSED) -> Iterator["Target"]:
        """Around one attack: afterwards a record `code` with one of `reasons`
        (none given: nothing required) is new in the log, nothing earlier was
        lost, the chain verifies, and a valid key opens."""
        before = self.pull()
        last = events.decode(before[-1]).seq
        yield self
        after = self.pull()
        held = set(after)
        assert all(r in held for r in before), "a record was lost"
        decoded = [events.decode(r) for r in after]
        start = max(i for i, e in enumerate(decoded) if e.code == events.COMMISSIONED)
        chain = events.verify_chain(after[start:], issuer.log_key_for(self.site.secret, LOCK),
                                    anchor_mac=events.GENESIS_MAC)
        assert chain.ok, chain
        new = [e for e in decoded if e.seq > last and e.code != events.LOG_READ]
        if reasons:
            got = [e.detail for e in new if e.code == code]
            assert any(r in got for r in reasons), (self.name, reasons, [
                (e.name, e.detail) for e in new])
        out = open_with(self.sim, self.valid())
        assert out.opened, (self.name, out.reason_name)
        self.opens += 1


@pytest.fixture(scope="session", params=["cpython", "micropython"])
def target(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[Target]:
    if request.param == "micropython" and (MPY is None or not in_process_runner()):
        pytest.skip(NOT_INSTALLED)
    args = ["--mpy"] if request.param == "micropython" else []
    old = os.environ.get("LOCK_SIM_TIMINGS")
    os.environ["LOCK_SIM_TIMINGS"] = json.dumps(TIMINGS)
    try:
        sim = SimulatedLock(tmp_path_factory.mktemp(f"attacked-{request.param}"), args).start()
    finally:
        if old is None:
            os.environ.pop("LOCK_SIM_TIMINGS", None)
        else:
            os.environ["LOCK_SIM_TIMINGS"] = old
    site = Site("attack-site")
    try:
        site.commission(sim, LOCK)
        yield Target(sim, site, request.param)
    finally:
        sim.stop()
