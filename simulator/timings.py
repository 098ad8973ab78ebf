"""The simulator's timing overrides: which of the firmware's waits a test may
shorten, and their checks. A board takes them from LOCK_SIM_TIMINGS at start
(simulator/board.py), the control command "timings" changes them
(simulator/control.py), and the firmware reads them at each use."""

from __future__ import annotations

import json
import os
from typing import Any

from simulator.controlclient import ControlError

ENV_TIMINGS = "LOCK_SIM_TIMINGS"

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
