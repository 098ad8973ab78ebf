# The lock application: asyncio tasks around firmware.lock.Lock.
#
# - the BLE loop: one connection at a time; hello with a fresh nonce, access
#   requests, authenticated results; idle and total timeouts so nobody can
#   hold the lock busy;
# - the serial loop: the installer's framed protocol (commissioning, sync, log,
#   decommissioning), never the REPL;
# - supervision: battery, the button (factory reset when held), watchdog.
#
# An idle lock does nothing: the door and the button wake it through
# hal.next_event() (a pin interrupt on a board, debounced in the HAL), the
# links wait on their own I/O, and only two timers run while nothing happens:
# the watchdog feed (the longest period the board's watchdog allows, at most a
# minute: watchdog_periods) and the hourly battery reading (also read after
# every motor run). No task polls.
import asyncio
import gc

from firmware import hal as hal_mod
from firmware import peerbudget
from firmware.actuator import Actuator, sleep_ms, timing
from firmware.lock import Lock, Session
from protocol import events, frames, reasons
from protocol import messages as msg
from protocol import token as tok

try:
    from micropython import const
except ImportError:  # CPython
    def const(x):
        return x

IDLE_TIMEOUT_S = const(5)  # a BLE peer that says nothing for this long is dropped
SESSION_MAX_S = const(30)  # no BLE connection lasts longer than this
# The one BLE slot is what hostile peers compete with the night patrol for. A
# key answers the HELLO within a second and is let in within a few; a central
# that does not earn its keep in that time, or fails, is dropped and its
# address held off, so no peer can hold the slot or take it back at once.
FIRST_BYTES_MS = const(1000)  # a new central must start talking within this
PREAUTH_MS = const(3000)  # ...and have a request accepted within this
HOLD_OFF_MS = const(10000)  # a central dropped for failing is refused this long
HOLD_KEPT = const(8)  # addresses remembered for the hold-off
BUTTON_WINDOW_MS = const(30000)  # time the installer has to press the button
FACTORY_RESET_HOLD_MS = const(10000)
# The watchdog: fed at most once a minute, with this margin before it fires
# (a feed may come late by the longest synchronous step of the firmware); a
# board whose watchdog cannot wait that long is fed as rarely as it allows.
WATCHDOG_FEED_MAX_MS = const(60000)
WATCHDOG_MARGIN_MS = const(2000)
BATTERY_PERIOD_MS = const(3600000)  # idle: the battery is read hourly


def watchdog_periods(hal):
    """(timeout, feed period) of the watchdog, in ms: the longest the board's
    hardware allows (hal.watchdog_max_ms), at most a feed a minute; a test
    may set the timeout ("watchdog_ms")."""
    longest = WATCHDOG_FEED_MAX_MS + WATCHDOG_MARGIN_MS
    hw_max = hal.watchdog_max_ms
    if hw_max is not None and hw_max < longest:
        longest = hw_max
    timeout = timing(hal, "watchdog_ms", longest)
    return timeout, timeout - min(WATCHDOG_MARGIN_MS, timeout // 2)


class App:
    def __init__(self, hal):
        self.links = []  # the serial and BLE loops, watched by the watchdog loop
        self.hal = hal
        self.lock = Lock(hal)
        self.actuator = Actuator(hal, self.lock)
        self.waiting_for_button = False
        self.hal_idle_state = hal_mod.POWER_ADVERTISING
        self.held = []  # [address, ticks when dropped] of centrals held off
        self.actuator.after_run = self.read_battery  # after every motor run
        self.battery_reads = 0
        # The button: a press counts for the factory reset only once it has
        # been released after boot and after answering the commissioning prompt.
        self.button_armed = False
        self._button_seen = None  # an Event while wait_button waits
        self._hold_task = None
        self._timings_changed = asyncio.Event()

    # --- links ---------------------------------------------------------------
    async def serve(self, link, channel):
        """Exchange frames with one peer until it leaves (or times out)."""
        session = Session(channel)
        decoder = frames.Decoder()
        lock = self.lock
        if channel == "ble":
            await link.send(frames.encode(lock.hello(session)))
        bad_frames = 0
        hal = self.hal
        # The session maximum is kept here, by the loop itself: a wait_for
        # around the whole exchange can lose its cancellation when the peer's
        # data arrives at the same moment (CPython's wait_for does), and a
        # busy peer then keeps the connection, and the door, for ever.
        started = hal.ticks_ms()
        spoke = False
        while True:
            if channel == "ble":
                why, left_ms = self._deadline(started, spoke, session.accepted)
                if left_ms <= 0:
                    lock.peer_record(peerbudget.TIMEOUT, events.CONNECTION_TIMEOUT, why)
                    return session.accepted
                idle_ms = timing(hal, "idle_timeout_ms", IDLE_TIMEOUT_S * 1000)
                try:
                    data = await asyncio.wait_for(link.recv(), min(idle_ms, left_ms) / 1000)
                except asyncio.TimeoutError:
                    why, left_ms = self._deadline(started, spoke, session.accepted)
                    lock.peer_record(peerbudget.TIMEOUT, events.CONNECTION_TIMEOUT,
                                     why if left_ms <= 0 else 1)
                    return session.accepted
                spoke = True
            else:
                data = await link.recv()
            if not data:
                return session.ended != "failed"
            for payload in decoder.feed(data):
                await self.handle(session, payload, link)
                if channel == "ble" and session.ended:
                    return session.ended != "failed"  # a refusal costs the connection
            if decoder.errors != bad_frames:
                new = decoder.errors - bad_frames
                bad_frames = decoder.errors
                lock.peer_record(peerbudget.FRAME, events.FRAME_ERROR, min(new, 0xFFFF), n=new)
                if channel == "ble" and not session.accepted:
                    return False  # garbage before any accepted request: drop it

    def _deadline(self, started, spoke, accepted):
        """(why, ms left) of the nearest limit of a BLE connection: 2 the
        session maximum, 3 the pre-authentication budget (first bytes, then
        an accepted request)."""
        hal = self.hal
        elapsed = hal.ticks_ms() - started
        why, left = 2, timing(hal, "session_max_ms", SESSION_MAX_S * 1000) - elapsed
        if not accepted:
            budget = (timing(hal, "preauth_ms", PREAUTH_MS) if spoke
                      else timing(hal, "first_bytes_ms", FIRST_BYTES_MS))
            if budget - elapsed < left:
                why, left = 3, budget - elapsed
        return why, left

    async def reply(self, link, payload):
        await link.send(frames.encode(payload))

    async def handle(self, session, payload, link):
        lock = self.lock
        try:
            mtype, fields = msg.decode(payload)
        except msg.MessageError as exc:  # MALFORMED, or UNSUPPORTED for an unknown type
            session.ended = "failed"
            await self.reply(link, lock.error(exc.reason))
            return
        if mtype == msg.GET_HELLO:
            await self.reply(link, lock.hello(session))
        elif mtype == msg.OPEN:
            await self.open_request(session, fields, link)
            if session.channel == "ble" and not session.ended:
                await self.reply(link, lock.hello(session))  # ready for the next request
        elif mtype == msg.COMMISSION and session.channel == "serial":
            await self.commission(session, fields, link)
        elif mtype == msg.ADMIN and session.channel == "serial":
            await self.admin_request(session, fields, link)
        else:
            session.ended = "failed"
            await self.reply(link, lock.error(reasons.UNSUPPORTED))

    async def open_request(self, session, fields, link):
        lock = self.lock
        nonce = fields[msg.OPEN_NONCE]
        reason, claims, pop_key = lock.check_request(session, fields)
        if reason != reasons.ALLOW:
            # Refused: the connection ends after the answer. Before its token
            # verified the central is held off too. A genuine token refused
            # for its own sake (expired, revoked...) or with a wrong proof (a
            # mistyped code: counted per token, burned at 5) may try again at
            # once: the night patrol must not wait for a slip of the finger.
            genuine = pop_key is not None or reason == reasons.BAD_PROOF
            session.ended = "refused" if genuine else "failed"
            if pop_key is not None:
                await self.reply(link, lock.result(nonce, reason, lock.log.next_seq - 1, pop_key))
            else:
                await self.reply(link, lock.error(reason, nonce))
            self.hal.indicate("refused")
            return
        session.accepted = True
        key_id = events.key_id_of(claims.sub)
        flags = events.FLAG_ALARM_ACCESS if claims.alarm else 0
        action = fields[msg.OPEN_ACTION]
        if action == tok.SCOPE_OPEN:
            if await self.actuator.unlock():
                seq = lock.record(events.ALARM_OPEN if claims.alarm else events.OPENED, 0,
                                  key_id, flags)
                outcome = reasons.ALLOW
                self.hal.indicate("ok")
                self.actuator.start_supervision()
            else:
                seq = lock.record(events.JAMMED, 1, key_id, flags)
                outcome = reasons.JAMMED
                self.hal.indicate("refused")
                await self.actuator.relock()
            await self.reply(link, lock.result(nonce, outcome, seq, pop_key))
        elif action == tok.SCOPE_LOG:
            args = fields.get(msg.OPEN_ARGS) or {}
            start = args.get(msg.LOG_FROM, 1)
            if not isinstance(start, int) or isinstance(start, bool) or start < 0:
                start = 1
            # RESULT_SEQ carries the read's bound: the seq of its LOG_READ record.
            bound = lock.begin_log_read(args.get(msg.LOG_BOUND), key_id, events.LOG_READ_KEY)
            page = lock.log_page(start, bound)
            await self.reply(link, lock.result(nonce, reasons.ALLOW, bound, pop_key, page))
        else:
            # A verified token asking for an action this lock does not know:
            # refused like any other (its repeats fall under the log budget).
            lock.refuse(reasons.UNSUPPORTED, key_id, flags, claims.cti)
            seq = lock.log.next_seq - 1
            await self.reply(link, lock.result(nonce, reasons.UNSUPPORTED, seq, pop_key))

    def button_window_s(self):
        return max(1, timing(self.hal, "button_window_ms", BUTTON_WINDOW_MS) // 1000)

    async def wait_button(self):
        """True if the commissioning button is pressed within the window (its
        press event; nothing polls)."""
        hal = self.hal
        seen = self._button_seen = asyncio.Event()
        self.waiting_for_button = True
        hal.indicate("wait-button")
        window = timing(hal, "button_window_ms", BUTTON_WINDOW_MS)
        try:
            if hal.button_pressed():
                return True
            try:
                await asyncio.wait_for(seen.wait(), window / 1000)
            except asyncio.TimeoutError:
                return False
            return True
        finally:
            self.waiting_for_button = False
            self._button_seen = None
            hal.indicate("off")

    async def physical_presence(self, link, nonce):
        """Ask the installer for the button; on no press, refuse (logged) and say so."""
        await self.reply(link, msg.encode(msg.PRESS_BUTTON,
                                          {msg.PRESS_BUTTON_SECONDS: self.button_window_s()}))
        if await self.wait_button():
            return True
        self.lock.refuse(reasons.BUTTON_REQUIRED)
        await self.reply(link, self.lock.error(reasons.BUTTON_REQUIRED, nonce))
        return False

    async def commission(self, session, fields, link):
        lock = self.lock
        nonce = fields[msg.COMMISSION_NONCE]
        reason = lock.check_commission(session, fields)
        if reason != reasons.ALLOW:
            lock.refuse(reason)
            await self.reply(link, lock.error(reason, nonce))
            return
        if not await self.physical_presence(link, nonce):
            return
        ended, after = lock.previous_identity()
        seq = lock.commission(fields)
        self.hal.ble_advertise(lock.lock_id, lock.battery)
        await self.reply(link, lock.admin_result(nonce, reasons.ALLOW, {
            msg.COMMISSIONED_SEQ: seq, msg.COMMISSIONED_STATUS: lock.status(),
            msg.COMMISSIONED_AFTER: after, msg.COMMISSIONED_ENDED: ended}))

    async def admin_request(self, session, fields, link):
        lock = self.lock
        nonce = fields[msg.ADMIN_NONCE]
        reason = lock.check_admin(session, fields)
        if reason != reasons.ALLOW:
            lock.refuse(reason)
            await self.reply(link, lock.error(reason, nonce))
            return
        op = fields[msg.ADMIN_OP]
        if op in ("decommission", "force-time"):
            if not await self.physical_presence(link, nonce):
                return
            if op == "decommission":
                await self.reply(link, lock.decommission(nonce))
                return
        outcome, data = lock.admin(op, fields[msg.ADMIN_ARGS])
        await self.reply(link, lock.admin_result(nonce, outcome, data))

    async def ble_loop(self):
        hal = self.hal
        while True:
            self.actuator.rest_state = hal_mod.POWER_ADVERTISING
            hal.power_state(hal_mod.POWER_ADVERTISING)
            link = await hal.ble_accept()
            peer = link.central
            if peer and self._held_off(peer):
                link.close()  # just dropped for failing: not yet (the slot is free again)
                continue
            self.actuator.rest_state = hal_mod.POWER_CONNECTED
            hal.power_state(hal_mod.POWER_CONNECTED)
            kept = False
            try:
                # serve() ends itself at the session maximum; this is a backstop
                # (a handler stuck inside one request) with a second of grace.
                kept = await asyncio.wait_for(
                    self.serve(link, "ble"),
                    timing(hal, "session_max_ms", SESSION_MAX_S * 1000) / 1000 + 1)
            except asyncio.TimeoutError:
                self.lock.peer_record(peerbudget.TIMEOUT, events.CONNECTION_TIMEOUT, 2)
            except OSError:
                pass  # the peer vanished mid-write: the lock just goes on
            except MemoryError:
                gc.collect()  # drop this visitor, not the lock: the next one gets in
            finally:
                link.close()
            if not kept and peer:
                self._hold(peer)

    def _held_off(self, peer):
        now = self.hal.ticks_ms()
        hold = timing(self.hal, "hold_off_ms", HOLD_OFF_MS)
        self.held = [h for h in self.held if now - h[1] < hold]
        for h in self.held:
            if h[0] == peer:
                return True
        return False

    def _hold(self, peer):
        self.held = [h for h in self.held if h[0] != peer]
        self.held.append([peer, self.hal.ticks_ms()])
        if len(self.held) > HOLD_KEPT:
            self.held.pop(0)

    async def serial_loop(self):
        link = await self.hal.serial_link()
        while True:
            try:
                await self.serve(link, "serial")
            except OSError:
                await sleep_ms(500)
            except MemoryError:
                gc.collect()  # one request too big for the heap: the port keeps serving
            await sleep_ms(100)

    # --- supervision ---------------------------------------------------------
    def read_battery(self):
        """Read the battery (the HAL switches its divider on only for this)
        and advertise its state."""
        self.battery_reads += 1
        self.lock.check_battery()
        self.hal.ble_advertise(self.lock.lock_id, self.lock.battery)

    async def battery_loop(self):
        while True:
            await sleep_ms(timing(self.hal, "battery_period_ms", BATTERY_PERIOD_MS))
            self.read_battery()

    async def event_loop(self):
        """The hardware's events (pin interrupts, debounced by the HAL)."""
        hal = self.hal
        while True:
            what, value = await hal.next_event()
            if what == hal_mod.EVENT_DOOR:
                self.actuator.door_changed()
            elif what == hal_mod.EVENT_BUTTON:
                self.button_changed(value)
            elif what == hal_mod.EVENT_TIMINGS:
                self._timings_changed.set()  # the watchdog loop re-arms at once

    def button_changed(self, pressed):
        hold = self._hold_task
        if not pressed:
            self._hold_task = None
            if hold is not None:
                hold.cancel()
            self.button_armed = True
            return
        if self.waiting_for_button:
            # The answer to the commissioning prompt: it counts for the factory
            # reset only after a release.
            self.button_armed = False
            if self._button_seen is not None:
                self._button_seen.set()
            return
        if self.button_armed and hold is None:
            self._hold_task = asyncio.create_task(self._factory_reset_when_held())

    async def _factory_reset_when_held(self):
        hal = self.hal
        await sleep_ms(timing(hal, "factory_reset_hold_ms", FACTORY_RESET_HOLD_MS))
        self._hold_task = None
        if hal.button_pressed() and not self.waiting_for_button and self.button_armed:
            self.lock.factory_reset()
            hal.reset()

    async def watchdog_loop(self):
        hal = self.hal
        timeout, feed = watchdog_periods(hal)
        hal.watchdog_start(timeout)
        changed = self._timings_changed
        while True:
            try:
                await asyncio.wait_for(changed.wait(), feed / 1000)
            except asyncio.TimeoutError:
                pass
            changed.clear()
            t, feed = watchdog_periods(hal)
            if t != timeout:  # changed by a test
                timeout = t
                hal.watchdog_start(timeout)
            deadline = self.actuator.deadline_ms
            # A motor run that overstays its own time limit means a hung task,
            # and a loop that ended means a lock nobody can reach (or that no
            # longer hears its door): stop feeding and let the watchdog
            # restart the board safely.
            alive = True
            for t in self.links:  # a plain loop: no allocation every tick
                if t.done():
                    alive = False
            if alive and (deadline is None or hal.ticks_ms() < deadline):
                hal.watchdog_feed()

    async def start(self):
        lock = self.lock
        self.hal.ble_advertise(lock.lock_id, lock.battery)
        # A press held from before this boot counts only after a release.
        self.button_armed = not self.hal.button_pressed()
        self.links = [asyncio.create_task(self.event_loop())]
        await self.actuator.make_safe()
        self.links += [asyncio.create_task(self.serial_loop()),
                       asyncio.create_task(self.ble_loop())]
        others = [self.battery_loop(), self.watchdog_loop()]
        return self.links + [asyncio.create_task(t) for t in others]


async def main(hal, stop_event=None):
    """Run the lock until stop_event is set (forever on a board)."""
    app = App(hal)
    tasks = await app.start()
    try:
        if stop_event is None:
            stop_event = asyncio.Event()  # never set on a board: no timer of its own
        await stop_event.wait()
    finally:
        for t in tasks:
            t.cancel()
        if app.actuator.supervisor is not None:
            app.actuator.supervisor.cancel()
        if app._hold_task is not None:
            app._hold_task.cancel()
        # Let them end (a task cancelled inside wait_for needs a step more).
        await asyncio.gather(*tasks, return_exceptions=True)
    return app


def run(hal):
    asyncio.run(main(hal))
