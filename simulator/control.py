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
                                         shorten the firmware's waits (simulator/timings.py);
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

The commands themselves are simulator/controlcmds.py; `request(path, command)`
is the client; `python -m simulator.control STATE_DIR '{"cmd": "state"}'` sends
one command from a shell.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
from typing import Any, Callable

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
from simulator.controlcmds import Commands, Controlled
from simulator.timings import (  # noqa: F401 (the timings' names, imported from here)
    ENV_TIMINGS,
    TIMINGS,
    check_timings,
    timings_from_env,
)

MAX_LINE = 64 * 1024

RESET_NAMES = {hal_mod.RESET_POWER_ON: "power-on", hal_mod.RESET_WATCHDOG: "watchdog",
               hal_mod.RESET_SOFT: "soft", hal_mod.RESET_BROWNOUT: "brownout",
               hal_mod.RESET_UNKNOWN: "unknown"}


# --- the server -------------------------------------------------------------------
class ControlServer:
    """Serves the control channel of one board."""

    def __init__(self, board: Controlled, path: str) -> None:
        self.board = board
        self.path = path
        self._server: asyncio.base_events.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self.handlers: dict[str, Callable[[dict], dict]] = Commands(board).by_name

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
