# The bolt motor and the door: actuation with time limits, jam detection,
# relocking after the door closes (or when nobody opens it) and again later
# when the bolt would not go, the door-left-open alarm, and a door opened
# with no digital opening (by hand, or forced). Every step is logged.
# The door is never polled: the app calls door_changed() at each door event
# (a pin interrupt on a board), which wakes whatever waits for the door.
import asyncio

from firmware import hal as hal_mod
from firmware.hal import timing  # noqa: F401  (app and tests import it from here)
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
RELOCK_RETRY_MS = const(10000)  # a bolt that would not go: try again after this,
RELOCK_RETRY_MAX_MS = const(1800000)  # doubling up to every 30 minutes


async def sleep_ms(ms):
    await asyncio.sleep(ms / 1000)


class Actuator:
    def __init__(self, hal, lock):
        self.hal = hal
        self.lock = lock
        self.deadline_ms = None  # set while the motor runs (watched by the watchdog)
        self.supervisor = None
        # The power state to go back to after a motor run: the app keeps it
        # current (a relock after the visitor has gone is back to advertising).
        self.rest_state = hal_mod.POWER_ADVERTISING
        self.after_run = None  # called after every motor run (the battery reading)
        self._door_edge = asyncio.Event()

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
            if self.after_run is not None:
                self.after_run()

    async def unlock(self):
        """Withdraw the bolt. True if it reached the end stop in time."""
        await self._stop_supervisor()
        return await self._drive(1, self.hal.bolt_retracted)

    async def _stop_supervisor(self):
        # Never two motor runs at once: a relock in progress or being retried
        # gives way to a visit. One yield lets the cancelled task end (its
        # motor off) before this motor starts; awaiting the task instead
        # would swallow a cancellation of our own (the session's time limit).
        # The visit's opening starts a new supervisor.
        task = self.supervisor
        self.supervisor = None
        if task is not None and not task.done():
            task.cancel()
            await asyncio.sleep(0)

    async def relock(self, retry=True):
        """Throw the bolt; logs RELOCKED or JAMMED. A bolt that would not go
        is tried again later (retry_relock) unless retry is False."""
        if await self._drive(-1, self.hal.bolt_thrown):
            self.lock.record(events.RELOCKED, 0)
            return True
        self.lock.record(events.JAMMED, 2)
        self.hal.indicate("refused")
        if retry:
            self._supervise_with(self.retry_relock())
        return False

    async def retry_relock(self):
        """After a failed relock: try again while the door stays closed, at
        growing intervals. An unlocked door is worse than the energy of a
        motor run (one 2 s run; at most every 30 minutes). RELOCKED's detail
        counts the failed attempts; JAMMED is logged once, not per attempt,
        so a bolt jammed for days cannot fill the log."""
        hal = self.hal
        wait = timing(hal, "relock_retry_ms", RELOCK_RETRY_MS)
        failed = 1
        while True:
            await sleep_ms(wait)
            if not hal.door_closed():
                # Opened meanwhile (it was not locked): watch it, and relock
                # once it closes.
                await self._watch_open_door(events.DOOR_BY_HAND)
                return
            if hal.bolt_thrown() or await self._drive(-1, hal.bolt_thrown):
                self.lock.record(events.RELOCKED, min(failed, 0xFFFF))
                hal.indicate("off")
                return
            failed += 1
            wait = min(wait * 2, RELOCK_RETRY_MAX_MS)

    def _supervise_with(self, coro):
        # One supervisor at a time: a new opening replaces a watcher or a
        # relock being retried (the new opening ends in a relock of its own).
        if self.supervisor is not None:
            self.supervisor.cancel()
        self.supervisor = asyncio.create_task(coro)

    def start_supervision(self):
        """After an opening: watch the door and relock. Replaces an older watcher."""
        self._supervise_with(self._supervise())

    def supervising(self):
        return self.supervisor is not None and not self.supervisor.done()

    def door_changed(self):
        """A door event: wake what waits for the door. A door opened while
        nothing watches it had no digital opening before it: the client's
        key or thumb-turn, or force if the bolt is still thrown. It is logged
        and watched (the left-open alarm), but not relocked: whoever opened
        it by hand may be the client stepping out."""
        edge, self._door_edge = self._door_edge, asyncio.Event()
        edge.set()
        hal = self.hal
        if self.supervising() or self.lock.config is None or hal.door_closed():
            return  # (an uncommissioned lock, on the installer's bench, guards no door)
        how = events.DOOR_FORCED if hal.bolt_thrown() else events.DOOR_BY_HAND
        self._supervise_with(self._watch_open_door(how, relock=False))

    async def _until_door(self, closed, ms=None):
        """Wait until the door is closed (or open, closed=False), at most `ms`
        (None: for ever); True once it is. Woken by door events only."""
        hal = self.hal
        start = hal.ticks_ms()
        while hal.door_closed() != closed:
            edge = self._door_edge
            if ms is None:
                await edge.wait()
                continue
            left = ms - (hal.ticks_ms() - start)
            if left <= 0:
                return False
            try:
                await asyncio.wait_for(edge.wait(), left / 1000)
            except asyncio.TimeoutError:
                return hal.door_closed() == closed
        return True

    async def _supervise(self):
        window = timing(self.hal, "open_window_ms", OPEN_WINDOW_MS)
        if not await self._until_door(False, window):
            await self._relock_or_retry()  # unlocked, and nobody opened the door
            return
        await self._watch_open_door(events.DOOR_AFTER_OPENING)

    async def _relock_or_retry(self):
        # Inside the supervisor task: the retries go on in this task.
        if not await self.relock(retry=False):
            await self.retry_relock()

    async def _watch_open_door(self, how, relock=True):
        hal = self.hal
        self.lock.record(events.DOOR_OPENED, how)
        alarmed = False
        if not await self._until_door(True, timing(hal, "door_alarm_ms", DOOR_ALARM_MS)):
            alarmed = True
            self.lock.record(events.DOOR_LEFT_OPEN, 0)
            hal.indicate("alarm")
            await self._until_door(True)
        self.lock.record(events.DOOR_CLOSED, 0)
        if alarmed:
            hal.indicate("off")
        if relock:
            await sleep_ms(timing(hal, "relock_delay_ms", RELOCK_DELAY_MS))
            await self._relock_or_retry()

    async def make_safe(self):
        """At boot: a closed door with the bolt not thrown is locked again; an
        open one is watched, and locked once it closes."""
        if self.hal.bolt_thrown():
            return
        if self.hal.door_closed():
            await self.relock()
        else:
            self.start_supervision()
