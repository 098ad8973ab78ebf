"""The control channel's commands (simulator/control.py has the protocol and
serves them): each checks its request and acts on the board's hardware as a
person at the door would, or reads what they would see. `Controlled` is all
they need of a board."""

from __future__ import annotations

from typing import Any, Callable, Protocol

from firmware import hal as hal_mod
from simulator.controlclient import ControlError
from simulator.timings import check_timings


class Controlled(Protocol):
    """What the control channel needs of a board: nothing else (these modules
    import no board; simulator/board.py's Board is one)."""

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


class Commands:
    """The commands of one board's control channel, by name."""

    def __init__(self, board: Controlled) -> None:
        self.board = board
        self.by_name: dict[str, Callable[[dict], dict]] = {
            "ping": self.ping, "state": self.state, "door": self.door,
            "bolt": self.bolt, "button": self.button, "battery": self.battery,
            "rtc": self.rtc, "power_cut": self.power_cut, "reset": self.reset,
            "hang": self.hang, "timings": self.timings, "heap": self.heap,
        }

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

    def ping(self, command: dict) -> dict:
        return {"mode": self.board.mode, "board": self.board.board_name}

    def heap(self, command: dict) -> dict:
        return self.board.heap()

    def state(self, command: dict) -> dict:
        return self.board.state()

    def door(self, command: dict) -> dict:
        door = self._hw().door
        force = bool(command.get("force", False))
        if self._action(command, ("open", "close")) == "open":
            done = door.open(force=force)
        else:
            done = door.close(force=force)
        return {"done": done, "closed": door.closed()}

    def bolt(self, command: dict) -> dict:
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

    def button(self, command: dict) -> dict:
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

    def battery(self, command: dict) -> dict:
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

    def rtc(self, command: dict) -> dict:
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

    def power_cut(self, command: dict) -> dict:
        n = command.get("after_writes")
        mode = command.get("mode", "lost")
        if n is not None and (not isinstance(n, int) or isinstance(n, bool) or n < 0):
            raise ControlError("after_writes must be an integer >= 0")
        self.board.cut_power(after_writes=n, mode=mode)
        return {"armed": n is not None}

    def reset(self, command: dict) -> dict:
        self.board.request_reset(hal_mod.RESET_SOFT)
        return {}

    def hang(self, command: dict) -> dict:
        seconds = command.get("seconds")
        if seconds is not None and (not isinstance(seconds, (int, float)) or
                                    not 0 < seconds <= 120):
            raise ControlError("seconds must be a number 0 .. 120")
        limit = self.board.hang_limit(seconds)
        # Hang only once this answer is on its way: the loop stops with it.
        return {"seconds": limit, "_after": lambda: self.board.hang(limit)}

    def timings(self, command: dict) -> dict:
        # Checked before anything changes: a bad set leaves the old timings.
        new = check_timings(command["set"]) if "set" in command else {}
        if command.get("clear"):
            self.board.timings.clear()
        self.board.timings.update(new)
        self.board.timings_changed()
        return {"timings": dict(self.board.timings)}
