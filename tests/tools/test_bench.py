"""`make bench` (tools/bench.py) writes every key of issue #13 section 4 with a
sane type, on a tiny size; and the fleet day it runs decides as meant. No
speed or memory figure is asserted (they are figures, not requirements of a
test)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from mpybuild import micropython_command
from simulator import fleetday

ROOT = Path(__file__).resolve().parents[2]

NUMBERS = ("unlock_hmac_us", "unlock_hmac_floor_us", "unlock_ed25519_ms",
           "heap_min_unlock_hmac_bytes", "heap_min_unlock_ed25519_bytes",
           "heap_min_unlock_hmac_bytes_32bit", "heap_min_unlock_ed25519_bytes_32bit",
           "unlock_hmac_floor_calls")
ALWAYS = ("flash_bytes_per_event", "flash_erases_per_1000_events", "fleet_day_s",
          "fleet_openings_per_s", "fleet_peak_rss_bytes", "issue_tokens_per_s", "key_seal_ms",
          "mpy_bytes")


def test_bench_writes_every_key(tmp_path: Path) -> None:
    out = tmp_path / "results.json"
    p = subprocess.run([sys.executable, "tools/bench.py", "--tiny", "--out", str(out)],
                       cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr[-2000:]
    r = json.loads(out.read_text())
    import tools.bench as bench

    assert set(bench.KEYS) <= set(r)
    have_mpy = micropython_command() is not None
    for k in NUMBERS:
        if have_mpy:
            assert isinstance(r[k], (int, float)) and r[k] > 0, k
        else:
            assert r[k] is None, k
    for k in ALWAYS:
        assert isinstance(r[k], (int, float)) and not isinstance(r[k], bool) and r[k] >= 0, k
    # Measured on a smaller generated fleet in the tiny run (tools/fleetbench.py).
    assert isinstance(r["fleet_status_24000_s"], float) and r["fleet_status_24000_s"] > 0
    assert r["fleet_status_24000_flagged"] > 0  # the generated fleet has problems to find
    boards = set(r["battery_years"])
    assert {"esp32c3_devkit", "nrf52840_zephyr", "pico_w"} <= boards
    for per in r["battery_years"].values():
        assert set(per) == {"6", "20"}
        for opens in per.values():
            assert opens["today"]["life_years"] > 0 and opens["today"]["title"]
    assert r["battery_years"]["esp32c3_devkit"]["20"]["what_if_sleep_between_adverts"][
        "title"].startswith("WHAT-IF")
    assert r["battery_years"]["nrf52840_zephyr"]["20"]["today"]["label"] == "modelled, not measured"
    for key in ("idle_wakeups_per_hour", "time_to_open_s"):
        assert set(r[key]) == boards and all(v >= 0 for v in r[key].values())
    assert all(v is None or isinstance(v, (bool, str)) for v in r["goals"].values())
    # The table names every scalar key.
    for k in ALWAYS + ("fleet_status_24000_s",):
        assert k in p.stdout


def test_fleet_day_decides_as_meant_and_counts_flash() -> None:
    r = fleetday.run_day(3, 40, refusal_rate=0.25, seed=7)
    assert r["openings"] == 40 and r["allowed"] + r["refused"] == 40
    assert r["mismatched"] == 0  # every valid key opened, every refused one was meant to be
    assert r["refused"] > 0
    # Each opening writes its OPENED record (and a RELOCKED one after it).
    assert r["events"] >= 2 * r["allowed"]
    assert r["flash_bytes_per_event"] >= 32  # a record is 32 bytes
    w = fleetday.wear(300)
    assert w["events"] > 128 and w["flash_erases_per_1000_events"] > 0  # the log went round a block


def test_fleet_day_refuses_bad_arguments() -> None:
    for args in ((0, 10), (2, -1)):
        with pytest.raises(ValueError):
            fleetday.run_day(*args)
