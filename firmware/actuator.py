# The bolt motor and the door: actuation with time limits, jam detection,
# relocking after the door closes (or when nobody opens it), and the
# door-left-open alarm. Every step is logged.
import asyncio

from firmware import hal as hal_mod
from protocol import events

try:
    from micropython import const
except ImportError:  # CPython
    def const(x):
        return x

MOTOR_TIMEOUT_MS = const(2000)  # longer than a full stroke: the bolt is jammed
POLL_MS = const(20)
OPEN_WINDOW_MS = const(15000)  # unlocked but nobody opened the door: relock
RELOCK_DELAY_MS = const(2000)  # after the door closes
DOOR_ALARM_MS = const(120000)  # door left open this long: alarm (logged once)


async def sleep_ms(ms):
    await asyncio.sleep(ms / 1000)


def timing(hal, name, default):
    """A wait of the firmware, in ms: `default` unless the board overrides it.

    A board (the simulator, for tests) may carry a dict `timings` of
    overrides by name ("open_window_ms", "idle_timeout_ms", ...); it is read
    at each use, so a change takes effect at once. Real boards have none.
    """
    t = getattr(hal, "timings", None)
    if t:
        v = t.get(name)
        if v is not None:
            return v
    return default


class Actuator:
    def __init__(self, hal, lock):
        self.hal = hal
        self.lock = lock
        self.deadline_ms = None  # set while the motor runs (watched by the watchdog)
        self.supervisor = None
        # The power state to go back to after a motor run: the app keeps it
        # current (a relock after the visitor has gone is back to advertising).
        self.rest_state = hal_mod.POWER_ADVERTISING

    async def _drive(self, direction, done):
        hal = self.hal
        if done():
            return True
        hal.power_state(hal_mod.POWER_MOTOR)
        start = hal.ticks_ms()
        limit = timing(hal, "motor_timeout_ms", MOTOR_TIMEOUT_MS)
        self.deadline_ms = start + limit + 1000
        hal.motor(direction)
        try:
            while not done():
                if hal.ticks_ms() - start > limit:
                    return False
                await sleep_ms(POLL_MS)
            return True
        finally:
            hal.motor(0)
            self.deadline_ms = None
            hal.power_state(self.rest_state)

    async def unlock(self):
        """Withdraw the bolt. True if it reached the end stop in time."""
        return await self._drive(1, self.hal.bolt_retracted)

    async def relock(self):
        """Throw the bolt; logs RELOCKED or JAMMED."""
        if await self._drive(-1, self.hal.bolt_thrown):
            self.lock.record(events.RELOCKED, 0)
            return True
        self.lock.record(events.JAMMED, 2)
        self.hal.indicate("refused")
        return False

    def start_supervision(self):
        """After an opening: watch the door and relock. Replaces an older watcher."""
        if self.supervisor is not None:
            self.supervisor.cancel()
        self.supervisor = asyncio.create_task(self._supervise())

    async def _supervise(self):
        hal = self.hal
        start = hal.ticks_ms()
        while hal.door_closed():
            if hal.ticks_ms() - start > timing(hal, "open_window_ms", OPEN_WINDOW_MS):
                await self.relock()
                return
            await sleep_ms(100)
        self.lock.record(events.DOOR_OPENED, 0)
        opened = hal.ticks_ms()
        alarmed = False
        while not hal.door_closed():
            if not alarmed and hal.ticks_ms() - opened > timing(hal, "door_alarm_ms",
                                                                 DOOR_ALARM_MS):
                alarmed = True
                self.lock.record(events.DOOR_LEFT_OPEN, 0)
                hal.indicate("alarm")
            await sleep_ms(200)
        self.lock.record(events.DOOR_CLOSED, 0)
        if alarmed:
            hal.indicate("off")
        await sleep_ms(timing(hal, "relock_delay_ms", RELOCK_DELAY_MS))
        await self.relock()

    async def make_safe(self):
        """At boot: a closed door with the bolt not thrown is locked again; an
        open one is watched, and locked once it closes."""
        if self.hal.bolt_thrown():
            return
        if self.hal.door_closed():
            await self.relock()
        else:
            self.start_supervision()
