"""Virtual time for asyncio: a loop whose clock jumps to the next timer when
nothing is ready, so an hour of the firmware's idle runs in milliseconds and
every wait is exact. The energy measurement (simulator/energy_visit.py) counts
the firmware's wake-ups with it; tests use it through the `virtual_time`
fixture (tests/conftest.py) instead of asserting wall-clock windows."""

from __future__ import annotations

import asyncio
import selectors
from typing import Any, Coroutine

from simulator.clocks import ManualClock


class Stalled(Exception):
    """Nothing is scheduled and nothing can arrive: the run would wait forever."""


class VirtualSelector(selectors.BaseSelector):
    """Real file descriptors are polled without blocking; when nothing is
    ready the clock jumps to the next timer instead of waiting for it. Each
    jump is one wake-up of the CPU by a timer."""

    def __init__(self, clock: ManualClock) -> None:
        self._real = selectors.DefaultSelector()
        self._clock = clock
        self.wakeups = 0

    def register(self, fileobj, events, data=None):  # type: ignore[no-untyped-def]
        return self._real.register(fileobj, events, data)

    def unregister(self, fileobj):  # type: ignore[no-untyped-def]
        return self._real.unregister(fileobj)

    def modify(self, fileobj, events, data=None):  # type: ignore[no-untyped-def]
        return self._real.modify(fileobj, events, data)

    def get_map(self):  # type: ignore[no-untyped-def]
        return self._real.get_map()

    def close(self) -> None:
        self._real.close()

    def select(self, timeout=None):  # type: ignore[no-untyped-def]
        ready = self._real.select(0)
        if ready:
            return ready
        if timeout is None:
            raise Stalled("nothing is scheduled: the simulation would wait forever")
        if timeout > 0:
            self._clock.advance(timeout)
            self.wakeups += 1
        return []


class VirtualLoop(asyncio.SelectorEventLoop):
    def __init__(self, clock: ManualClock) -> None:
        self._vclock = clock
        self.vselector = VirtualSelector(clock)
        super().__init__(self.vselector)

    def time(self) -> float:
        return self._vclock.now()

    def call_at(self, when, callback, *args, context=None):  # type: ignore[override, no-untyped-def]
        """Count every timer that fires (a cancelled one never wakes the CPU)."""
        def fired(*a):  # type: ignore[no-untyped-def]
            self.timer_fires += 1
            return callback(*a)
        return super().call_at(when, fired, *args, context=context)

    timer_fires = 0


class VirtualTime:
    """A virtual-time loop and its clock, for a test: `run(coro)` runs a
    coroutine to its end in virtual time; `now()` is the clock in seconds."""

    def __init__(self, start: float = 0.0) -> None:
        self.clock = ManualClock(start)
        self.loop = VirtualLoop(self.clock)

    def now(self) -> float:
        return self.clock.now()

    def run(self, coro: Coroutine[Any, Any, Any]) -> Any:
        return self.loop.run_until_complete(coro)

    def close(self) -> None:
        for task in asyncio.all_tasks(self.loop):
            task.cancel()
        self.loop.run_until_complete(asyncio.sleep(0))
        self.loop.close()
