"""The control channel of a running simulator: act on its virtual hardware as a
person at the door would, and read what they would see.

`python -m simulator` (simulator/board.py) listens on a Unix socket,
STATE_DIR/control.sock, owner-only (0600), made when the board starts and
removed when it stops. The protocol is line-delimited JSON: one request
object per line, one answer object per line, in order, any number per
connection.

    -> {"cmd": "door", "action": "open"}
    <- {"ok": true, "done": true, "closed": false}
    -> {"cmd": "bolt", "action": "fly"}
    <- {"ok": false, "error": "bolt: action must be one of jam, unjam, turn"}

The commands name physical acts and readings only, never a firmware
internal, so the same set serves a board running the firmware under CPython
and under MicroPython (which forwards them to its own virtual hardware):

  ping                                   -> {"mode", "board"}; mode "cpython",
                                            "mpy" or "vboard" (the runner's)
  state                                  -> the hardware as measured (see below)
  door      action: open|close, force?   -> {"done", "closed"}; a thrown bolt
                                            stops the door unless force (a break-in)
  bolt      action: jam, at?             an obstacle at position `at` (0.0 retracted
                                            .. 1.0 thrown), or where the bolt is now
            action: unjam
            action: turn, to: thrown|retracted|0.0..1.0   the thumb-turn, by hand
  button    action: press, seconds?      (default 0.5) | hold | release
  battery   level: ok|low|critical       pin the voltage to read as that level,
            mv: N                        or to N millivolts,
            level: "curve" (or mv: null) back to the discharge curve
  rtc       advance: S                   move the RTC by S seconds (negative: back)
            set_unix: T                  set it to POSIX time T
            drift_ppm: P                 its drift from now on
  power_cut after_writes?: N, mode?: lost|torn|bits|erase
                                         cut the power now, or at the flash's Nth
                                         next program/erase (0 = the next one), damaging
                                         that write per `mode`; power comes back at
                                         once and the board boots on the same flash
                                         (POWER_ON; the RTC loses its time, no backup cell)
  reset                                  the reset button (SOFT; the RTC keeps time)
  hang      seconds?                     a firmware task stops yielding (a busy loop):
                                         nothing runs until the watchdog resets the
                                         board (WATCHDOG), or `seconds` of real time
  timings   set?: {name: ms}, clear?: true
                                         shorten the firmware's waits (TIMINGS below);
                                         read at each use, so they apply at once to
                                         waits that start after the change; kept
                                         across resets, not across a restart
  heap      (--mpy only)                 ask the firmware for gc.mem_free()/mem_alloc()
                                         after a gc.collect() (simulator/mpy/unixhal.py);
                                         answers the last {"mem": {free, alloc, n}}; the
                                         new one (n + 1) is in "state" within ~1 s

`state` answers {"time_s", "bolt": {position, thrown, retracted, jammed, jam_at,
motor, moving, current_ma, starts}, "door": {closed, history}, "button": {pressed,
held, auto, presses}, "indicator": {state, history} (the LED/buzzer pattern),
"battery": {mv, level, pinned, ...}, "rtc": {lock_seconds, unix, drift_ppm, lost},
"watchdog": {running, timeout_s, remaining_s, fired, feeds}, "power": {state,
seconds: {state: s}}, "advertised", "boots": [{cause, name, time_s}], "crashes",
"running", "flash": {powered, cut_pending, ops, cuts}, "timings"}.

Timings can also be given at start in the environment, as a JSON object in
LOCK_SIM_TIMINGS (e.g. '{"open_window_ms": 1500}').

`request(path, command)` is the client; `python -m simulator.control
STATE_DIR '{"cmd": "state"}'` sends one command from a shell.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
from typing import Any, Callable, Protocol

from firmware import hal as hal_mod
from simulator.controlclient import (  # noqa: F401 (the client's names, imported from here)
    DEFAULT_TIMEOUT,
    SOCKET_NAME,
    ControlClient,
    ControlError,
    request,
    short_path,
    socket_path,
)

ENV_TIMINGS = "LOCK_SIM_TIMINGS"
MAX_LINE = 64 * 1024

# The firmware's waits a test may shorten (firmware.actuator.timing), in ms.
TIMINGS = {
    "motor_timeout_ms": "a bolt stroke longer than this is a jam (2000)",
    "open_window_ms": "unlocked but the door not opened: relock after (15000)",
    "relock_delay_ms": "relock this long after the door closes (2000)",
    "relock_retry_ms": "a relock that failed is tried again after (10000, doubling)",
    "door_alarm_ms": "door left open this long: alarm, logged once (120000)",
    "idle_timeout_ms": "a BLE peer silent this long is dropped (5000)",
    "session_max_ms": "no BLE connection lasts longer (30000)",
    "button_window_ms": "time to press the button when asked (30000)",
    "factory_reset_hold_ms": "hold the button this long: factory reset (10000)",
    "watchdog_ms": "watchdog timeout (the board's longest, at most 62000; fed 2 s before)",
    "battery_period_ms": "battery read every, besides after each motor run (3600000)",
    "peer_budget_ms": "records a peer causes without a verified token: one per (3600000)",
    "challenge_ttl_ms": "a HELLO's nonce answers a request for (15000)",
    "first_bytes_ms": "a new BLE central must start talking within (1000)",
    "preauth_ms": "a BLE central must have a request accepted within (3000)",
    "hold_off_ms": "a BLE central dropped for failing is refused for (10000)",
}

RESET_NAMES = {hal_mod.RESET_POWER_ON: "power-on", hal_mod.RESET_WATCHDOG: "watchdog",
               hal_mod.RESET_SOFT: "soft", hal_mod.RESET_BROWNOUT: "brownout",
               hal_mod.RESET_UNKNOWN: "unknown"}


def check_timings(values: Any) -> dict[str, int]:
    """Validated timing overrides (raises ControlError)."""
    if not isinstance(values, dict):
        raise ControlError("timings must be an object of name: milliseconds")
    out: dict[str, int] = {}
    for name, ms in values.items():
        if name not in TIMINGS:
            raise ControlError(f"unknown timing {name!r} (known: {', '.join(TIMINGS)})")
        if not isinstance(ms, int) or isinstance(ms, bool) or not 1 <= ms <= 86_400_000:
            raise ControlError(f"timing {name} must be an integer number of ms, 1..86400000")
        out[name] = ms
    return out


def timings_from_env(environ: dict[str, str] | None = None) -> dict[str, int]:
    text = (environ if environ is not None else os.environ).get(ENV_TIMINGS, "").strip()
    if not text:
        return {}
    try:
        return check_timings(json.loads(text))
    except ValueError as e:
        raise ControlError(f"{ENV_TIMINGS}: not a JSON object ({e})") from None


# --- the server -------------------------------------------------------------------
class Controlled(Protocol):
    """What the control channel needs of a board: nothing else (this module
    imports no board; simulator/board.py's Board is one)."""

    hw: Any  # simulator.hardware.Hardware, or None before the board starts
    timings: dict[str, int]

    @property
    def mode(self) -> str: ...

    @property
    def board_name(self) -> str: ...

    def state(self) -> dict: ...

    def cut_power(self, after_writes: int | None = None, mode: str = "lost") -> None: ...

    def request_reset(self, cause: int = hal_mod.RESET_SOFT) -> None: ...

    def hang_limit(self, seconds: float | None = None) -> float: ...

    def hang(self, seconds: float) -> None: ...

    def heap(self) -> dict: ...

    def timings_changed(self) -> None: ...


class ControlServer:
    """Serves the control channel of one board."""

    def __init__(self, board: Controlled, path: str) -> None:
        self.board = board
        self.path = path
        self._server: asyncio.base_events.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self.handlers: dict[str, Callable[[dict], dict]] = {
            "ping": self._ping, "state": self._state, "door": self._door,
            "bolt": self._bolt, "button": self._button, "battery": self._battery,
            "rtc": self._rtc, "power_cut": self._power_cut, "reset": self._reset,
            "hang": self._hang, "timings": self._timings, "heap": self._heap,
        }

    async def start(self) -> None:
        if os.path.lexists(self.path):
            os.unlink(self.path)  # left by a simulator that died (the state lock is ours)
        old = os.umask(0o177)  # owner-only from the moment it exists
        try:
            with short_path(self.path) as addr:
                self._server = await asyncio.start_unix_server(self._client, path=addr,
                                                               limit=MAX_LINE)
        finally:
            os.umask(old)
        os.chmod(self.path, 0o600)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            for w in list(self._writers):
                w.close()
            await self._server.wait_closed()
            self._server = None
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            while True:
                try:
                    line = await reader.readline()
                except (ValueError, asyncio.LimitOverrunError):
                    writer.write(b'{"ok": false, "error": "request line too long"}\n')
                    break
                except ConnectionError:
                    break
                if not line:
                    break
                if not line.strip():
                    continue
                answer = self.handle_line(line)
                after = answer.pop("_after", None)
                writer.write(json.dumps(answer).encode() + b"\n")
                await writer.drain()
                if after is not None:
                    after()
        except ConnectionError:
            pass
        finally:
            self._writers.discard(writer)
            writer.close()

    def handle_line(self, line: bytes) -> dict:
        try:
            command = json.loads(line)
        except ValueError:
            return {"ok": False, "error": "not a JSON object"}
        return self.handle(command)

    def handle(self, command: Any) -> dict:
        if not isinstance(command, dict) or not isinstance(command.get("cmd"), str):
            return {"ok": False, "error": 'a request is an object with "cmd"'}
        name = command["cmd"]
        handler = self.handlers.get(name)
        if handler is None:
            return {"ok": False,
                    "error": f"unknown command {name!r} (known: {', '.join(self.handlers)})"}
        try:
            out = handler(command)
        except ControlError as e:
            return {"ok": False, "error": f"{name}: {e}"}
        except (TypeError, ValueError) as e:
            return {"ok": False, "error": f"{name}: {e}"}
        return {"ok": True, **out}

    # --- commands ------------------------------------------------------------------
    def _hw(self) -> Any:
        if self.board.hw is None:
            raise ControlError("the board is not started")
        return self.board.hw

    @staticmethod
    def _action(command: dict, choices: tuple[str, ...]) -> str:
        action = command.get("action")
        if action not in choices:
            raise ControlError(f"action must be one of {', '.join(choices)}")
        return action

    def _ping(self, command: dict) -> dict:
        return {"mode": self.board.mode, "board": self.board.board_name}

    def _heap(self, command: dict) -> dict:
        return self.board.heap()

    def _state(self, command: dict) -> dict:
        return self.board.state()

    def _door(self, command: dict) -> dict:
        door = self._hw().door
        force = bool(command.get("force", False))
        if self._action(command, ("open", "close")) == "open":
            done = door.open(force=force)
        else:
            done = door.close(force=force)
        return {"done": done, "closed": door.closed()}

    def _bolt(self, command: dict) -> dict:
        bolt = self._hw().bolt
        action = self._action(command, ("jam", "unjam", "turn"))
        if action == "jam":
            at = command.get("at")
            if at is not None and not isinstance(at, (int, float)):
                raise ControlError("at must be a position 0.0 .. 1.0")
            bolt.jam(at)
        elif action == "unjam":
            bolt.unjam()
        else:
            to = command.get("to")
            pos = {"thrown": 1.0, "retracted": 0.0}.get(to, to) if isinstance(to, str) else to
            if not isinstance(pos, (int, float)) or isinstance(pos, bool):
                raise ControlError("to must be thrown, retracted or a position 0.0 .. 1.0")
            bolt.set_position(pos)
        return {"position": round(bolt.position, 4), "jammed": bolt.jammed}

    def _button(self, command: dict) -> dict:
        button = self._hw().button
        action = self._action(command, ("press", "hold", "release"))
        if action == "press":
            seconds = command.get("seconds", 0.5)
            if not isinstance(seconds, (int, float)) or not 0 < seconds <= 3600:
                raise ControlError("seconds must be a number 0 .. 3600")
            button.press(float(seconds))
        elif action == "hold":
            button.hold()
        else:
            button.release()
        return {"pressed": button.pressed()}

    def _battery(self, command: dict) -> dict:
        battery = self._hw().battery
        if "mv" in command:
            mv = command["mv"]
            if mv is not None and (not isinstance(mv, int) or not 0 <= mv <= 20000):
                raise ControlError("mv must be an integer 0 .. 20000, or null")
            battery.set_mv(mv)
        elif "level" in command:
            level = command["level"]
            if level not in ("ok", "low", "critical", "curve"):
                raise ControlError("level must be ok, low, critical or curve")
            battery.set_level(None if level == "curve" else level)
        else:
            raise ControlError('give "level" or "mv"')
        return {"mv": battery.mv(), "level": battery.level()}

    def _rtc(self, command: dict) -> dict:
        from protocol import clock

        rtc = self._hw().rtc
        done = False
        if "advance" in command:
            s = command["advance"]
            if not isinstance(s, (int, float)):
                raise ControlError("advance must be a number of seconds")
            rtc.set(max(0.0, rtc.value() + s))
            done = True
        if "set_unix" in command:
            t = command["set_unix"]
            if not isinstance(t, int) or t < clock.UNIX_AT_LOCK_EPOCH:
                raise ControlError("set_unix must be POSIX seconds after 2020-01-01")
            rtc.set(clock.from_unix(t))
            done = True
        if "drift_ppm" in command:
            p = command["drift_ppm"]
            if not isinstance(p, (int, float)) or abs(p) > 10000:
                raise ControlError("drift_ppm must be a number -10000 .. 10000")
            rtc.set(rtc.value())  # the drift applies from now on
            rtc.drift_ppm = float(p)
            done = True
        if not done:
            raise ControlError('give "advance", "set_unix" or "drift_ppm"')
        return {"lock_seconds": rtc.now(), "unix": clock.to_unix(rtc.now())}

    def _power_cut(self, command: dict) -> dict:
        n = command.get("after_writes")
        mode = command.get("mode", "lost")
        if n is not None and (not isinstance(n, int) or isinstance(n, bool) or n < 0):
            raise ControlError("after_writes must be an integer >= 0")
        self.board.cut_power(after_writes=n, mode=mode)
        return {"armed": n is not None}

    def _reset(self, command: dict) -> dict:
        self.board.request_reset(hal_mod.RESET_SOFT)
        return {}

    def _hang(self, command: dict) -> dict:
        seconds = command.get("seconds")
        if seconds is not None and (not isinstance(seconds, (int, float)) or
                                    not 0 < seconds <= 120):
            raise ControlError("seconds must be a number 0 .. 120")
        limit = self.board.hang_limit(seconds)
        # Hang only once this answer is on its way: the loop stops with it.
        return {"seconds": limit, "_after": lambda: self.board.hang(limit)}

    def _timings(self, command: dict) -> dict:
        # Checked before anything changes: a bad set leaves the old timings.
        new = check_timings(command["set"]) if "set" in command else {}
        if command.get("clear"):
            self.board.timings.clear()
        self.board.timings.update(new)
        self.board.timings_changed()
        return {"timings": dict(self.board.timings)}


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        print("usage: python -m simulator.control STATE_DIR '{\"cmd\": \"state\"}'",
              file=sys.stderr)
        return 2
    try:
        answer = request(args[0], json.loads(args[1]))
    except ValueError as e:
        print(f"simulator.control: the command is not JSON ({e})", file=sys.stderr)
        return 2
    except ControlError as e:
        print(f"simulator.control: {e}", file=sys.stderr)
        return 1
    print(json.dumps(answer, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
