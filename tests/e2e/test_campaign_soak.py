"""The soak campaign of issue #12 in CI (tests/campaign_soak.py): 10,000
openings with random power cuts, RTC drift, battery drain and swaps, jams and
a revocation every 1,000 openings, every decision checked against the model;
`make soak` runs 100,000."""

from __future__ import annotations

import os

import campaign_soak

CI_OPENINGS = 10_000
SEED = int(os.environ.get("LOCK_SOAK_SEED", "7"))


def test_soak_ci_size() -> None:
    s = campaign_soak.soak(CI_OPENINGS, SEED)
    assert s["openings"] == CI_OPENINGS
    assert s["decisions"] >= CI_OPENINGS and s["cuts"] >= 20
    assert s["revocations"] >= CI_OPENINGS // 1000 - 1
    assert s["jammed"] > 0 and s["battery_swaps"] >= 1 and s["pulls"] >= CI_OPENINGS // 500
    # Flash wear: one 32-byte program per log record plus its share of one
    # erase per 128; littlefs adds little (only updates, syncs, boots, bad proofs).
    assert s["log"]["bytes_written"] / s["records"] < 33
    assert s["fs"]["bytes_written"] / s["records"] < 16
    # Both clocks were exercised: a future token is refused only when trusted.
    o = s["outcomes"]
    assert o.get("future/trusted: not-yet-valid") and o.get("future/untrusted: allowed")
    assert o.get("valid/trusted: allowed") and o.get("valid/untrusted: allowed")
    assert s["boot_cuts"] > 0
