# The hardware abstraction the lock application is written against. The
# application never touches `machine`, `bluetooth` or the OS directly: a board
# (firmware/board_*.py) or the simulator (simulator/hal.py) implements this.
#
# Conventions: times from `rtc_now` are lock seconds (since 2020-01-01 UTC);
# `ticks_ms` is a monotonic millisecond counter that survives RTC changes.

try:
    from micropython import const
except ImportError:  # CPython
    def const(x):
        return x

# Reset causes reported by `reset_cause` (and logged at boot).
RESET_POWER_ON = const(0)
RESET_WATCHDOG = const(1)
RESET_SOFT = const(2)
RESET_BROWNOUT = const(3)
RESET_UNKNOWN = const(9)

# Power states, for the energy model (time spent in each is accounted).
POWER_SLEEP = "sleep"
POWER_ADVERTISING = "advertising"
POWER_CONNECTED = "connected"
POWER_MOTOR = "motor"
POWER_STATES = (POWER_SLEEP, POWER_ADVERTISING, POWER_CONNECTED, POWER_MOTOR)

# Events from the hardware (`HAL.next_event`): a sensor's debounced edge.
EVENT_DOOR = "door"  # value: True closed, False open
EVENT_BUTTON = "button"  # value: True pressed, False released
EVENT_TIMINGS = "timings"  # the simulator's timing overrides changed (tests only)

# The HAL methods a board's hardware answers (plain values in, a plain value
# out: int, str, bool or None). This is the one declaration of them: where the
# hardware lives in another process (the simulator's MicroPython child), the
# proxy on the firmware's side (simulator/mpy/proxy.py) and the dispatcher on
# the hardware's side (simulator/mpyport.py) are both made from it, so a new
# method of this kind is written once, in the HAL below and in the board.
BOARD_CALLS = ("rtc_now", "rtc_set", "motor", "bolt_retracted", "bolt_thrown",
               "door_closed", "button_pressed", "indicate", "battery_mv",
               "watchdog_start", "watchdog_feed", "power_state", "ble_advertise")


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


class Link:
    """A byte pipe: the USB serial port or one BLE connection.

    Framing happens above it. Nothing arriving here is trusted. A BLE link
    has `central`: the central's device address as text ("" when unknown), which
    the lock uses only to hold off a central it has just dropped.
    """

    central = ""

    async def recv(self):
        """Next chunk of bytes; b"" once the peer has gone."""
        raise NotImplementedError

    async def send(self, data):
        raise NotImplementedError

    def close(self):
        pass


class HAL:
    """What the lock application needs from a board."""

    board_name = "abstract"
    # Battery thresholds in millivolts; boards override them for their cells.
    battery_low_mv = 4400
    battery_critical_mv = 4000
    # The longest watchdog timeout the board's hardware allows, in ms (its
    # CAPABILITIES["watchdog_max_ms"]); None: longer than the firmware asks.
    watchdog_max_ms = None

    # --- time -------------------------------------------------------------
    def rtc_now(self):
        """RTC reading in lock seconds. After a power loss it may be anything."""
        raise NotImplementedError

    def rtc_set(self, lock_seconds):
        raise NotImplementedError

    def ticks_ms(self):
        raise NotImplementedError

    # --- actuator and sensors ----------------------------------------------
    def motor(self, direction):
        """Drive the bolt motor: +1 unlock, -1 lock, 0 stop."""
        raise NotImplementedError

    def bolt_retracted(self):
        """True when the bolt sensor reports the bolt fully withdrawn (unlocked)."""
        raise NotImplementedError

    def bolt_thrown(self):
        """True when the bolt sensor reports the bolt fully thrown (locked)."""
        raise NotImplementedError

    def door_closed(self):
        raise NotImplementedError

    def button_pressed(self):
        """The commissioning button, inside the door (physical presence)."""
        raise NotImplementedError

    def indicate(self, what):
        """LED/buzzer pattern: "ok", "refused", "wait-button", "alarm", "off"."""
        pass

    def battery_mv(self):
        raise NotImplementedError

    async def next_event(self):
        """Wait for the next event from the hardware: (EVENT_DOOR, closed) or
        (EVENT_BUTTON, pressed), a sensor's edge after debouncing (a pin
        interrupt on a board: nothing polls). One task awaits it (the app's
        event loop). Edges that come faster than they are awaited are kept in
        order; the value is the level after the edge."""
        raise NotImplementedError

    # --- supervision ---------------------------------------------------------
    def watchdog_start(self, timeout_ms):
        pass

    def watchdog_feed(self):
        pass

    def reset_cause(self):
        return RESET_UNKNOWN

    def reset(self):
        """Restart the board (used after factory reset and on fatal errors)."""
        raise NotImplementedError

    def random_bytes(self, n):
        raise NotImplementedError

    def power_state(self, state):
        """Tell the board (and the energy model) which power state we are in."""
        pass

    # --- storage -------------------------------------------------------------
    def config_fs(self):
        """A filesystem object for firmware.store.Store (littlefs)."""
        raise NotImplementedError

    def erase_config_storage(self):
        """Erase every block of the configuration filesystem, secrets included
        (factory reset); the next boot formats it. Deleting files is not enough:
        littlefs leaves freed blocks as they were. Boards that cannot do this
        raise NotImplementedError and the lock deletes the files instead."""
        raise NotImplementedError

    def log_device(self):
        """The raw block device of the event log region."""
        raise NotImplementedError

    # --- links ---------------------------------------------------------------
    async def serial_link(self):
        """The USB serial port as a Link (it exists for as long as the board runs)."""
        raise NotImplementedError

    async def ble_accept(self):
        """Wait for the next BLE connection; return it as a Link."""
        raise NotImplementedError

    def ble_advertise(self, lock_id, status):
        """Update what the lock advertises (name and a status byte)."""
        pass
