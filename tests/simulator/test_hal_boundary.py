"""The HAL boundary of the simulator's MicroPython board, on CPython: both of
its sides come from the one declaration (firmware.hal.BOARD_CALLS), and a
call the board cannot take is refused without changing anything."""

from __future__ import annotations

import json

import pytest

from boards import sim as sim_board
from firmware import hal as hal_mod
from simulator.hal import BoardReset, SimHAL
from simulator.hardware import Hardware, ManualClock
from simulator.mpy import proxy
from simulator.mpy.portcalls import PORT_CALLS
from simulator.mpy.unixhal import UnixHAL
from simulator.mpyport import dispatch


class _Port:
    def __init__(self) -> None:
        self.calls: list[tuple] = []

    def __getattr__(self, name: str):  # noqa: ANN204
        if not name.startswith("port_"):
            raise AttributeError(name)
        return lambda *a: self.calls.append((name, *a))


def _hal() -> tuple[Hardware, SimHAL]:
    hw = Hardware(sim_board, ManualClock(10.0), rtc_lock_seconds=500)
    return hw, SimHAL(hw)


def test_the_proxy_has_every_board_call_and_the_dispatcher_takes_them() -> None:
    for name in hal_mod.BOARD_CALLS:
        assert getattr(UnixHAL, name) is not getattr(hal_mod.HAL, name), name
    hw, hal = _hal()
    port = _Port()
    assert json.loads(dispatch(hal, port, "rtc_now []")) == 500
    assert dispatch(hal, port, "motor [1]") == "null" and hw.bolt.direction == 1
    assert json.loads(dispatch(hal, port, "bolt_thrown []")) is True
    dispatch(hal, port, 'ble_advertise ["lock 1", 2]')
    assert hw.advertised == ("lock 1", 2)
    assert dispatch(hal, port, "watchdog_start [1000]") == "null" and hw.watchdog.running
    for name in PORT_CALLS:
        dispatch(hal, port, name + " []")
    assert [c[0] for c in port.calls] == ["port_" + n for n in PORT_CALLS]


def test_a_call_the_board_cannot_take_is_refused_and_changes_nothing() -> None:
    hw, hal = _hal()
    port = _Port()
    for line in ("reset_hardware []", "motor [5]", "motor [1, 2]", "motor {}", "motor [",
                 "__init__ []", "port_boot []"):
        assert dispatch(hal, port, line).startswith("?"), line
    assert hw.bolt.direction == 0 and port.calls == []
    hal.kill()
    with pytest.raises(BoardReset):  # an old boot's HAL: the connection ends
        dispatch(hal, port, "rtc_now []")


def test_the_proxy_raises_what_the_board_refused() -> None:
    class Line:
        def __init__(self, answers: list[bytes]) -> None:
            self.answers = answers
            self.sent: list[bytes] = []

        def write(self, b: bytes) -> None:
            self.sent.append(b)

        def readline(self) -> bytes:
            return self.answers.pop(0)

    seen: list[str] = []
    control = proxy.Control.__new__(proxy.Control)
    control.sock = Line([b"!heap\n", b"3\n", b"?motor direction\n"])  # type: ignore[assignment]
    control.on_directive = seen.append
    control.dead = False
    control.held = []
    assert control.call("rtc_now") == 3 and seen == ["heap"]
    assert control.sock.sent == [b"rtc_now []\n"]  # type: ignore[attr-defined]
    with pytest.raises(ValueError, match="motor direction"):
        control.call("motor", (5,))
