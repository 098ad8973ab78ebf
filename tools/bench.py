"""`make bench`: speed and heap of the lock's core work, on MicroPython and CPython.

Figures, not asserts: time per full HMAC unlock decision (verify, proof of
possession, decision, event record) and per Ed25519 verification, and the heap
each needs, measured as the smallest `micropython -X heapsize=` at which 100
of them complete (MicroPython keeps no high-water mark we can trust across ports).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from mpybuild import micropython_command  # noqa: E402
from protocol import clock, keys  # noqa: E402
from protocol import messages as msg  # noqa: E402
from tools import issuer  # noqa: E402


def make_inputs(path: Path) -> None:
    site = bytes(range(32))
    lock_id = "lock-bench"
    now = int(time.time())
    grant = issuer.issue_token(site, lock_id, iss="bench", sub="staff-0001", start=now - 60,
                               end=now + 3600, iat=now - 60)
    nonce = os.urandom(16)
    sk = Ed25519PrivateKey.generate()
    m = os.urandom(200)
    json.dump({
        "secret": keys.lock_secret(site, lock_id).hex(), "token": grant.token.hex(),
        "nonce": nonce.hex(), "lock_id": lock_id, "now": clock.from_unix(now),
        "proof": msg.open_proof(grant.pop_key, nonce, lock_id, "open", grant.token).hex(),
        "ed_pk": sk.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw).hex(),
        "ed_sig": sk.sign(m).hex(), "ed_msg": m.hex(),
    }, path.open("w"))


def run(interp: list[str], workload: str, count: int, inputs: Path) -> float | None:
    proc = subprocess.run([*interp, "bench/core.py", workload, str(count), str(inputs)],
                          cwd=ROOT, capture_output=True, text=True, timeout=900)
    out = proc.stdout.strip().splitlines()
    if proc.returncode == 0 and out and out[-1].startswith("ok "):
        return float(out[-1].split()[1])
    return None


def smallest_heap(mpy: str, workload: str, inputs: Path, count: int = 100) -> int | None:
    lo, hi = 2 * 1024, 256 * 1024  # KiB-granular binary search: lo fails, hi works
    if run([mpy, "-X", f"heapsize={hi}"], workload, count, inputs) is None:
        return None
    while hi - lo > 512:
        mid = (lo + hi) // 2 // 256 * 256
        if run([mpy, "-X", f"heapsize={mid}"], workload, count, inputs) is None:
            lo = mid
        else:
            hi = mid
    return hi


def main() -> int:
    mpy = micropython_command() or "micropython"
    have_mpy = micropython_command() is not None
    with tempfile.TemporaryDirectory() as tmp:
        inputs = Path(tmp) / "inputs.json"
        make_inputs(inputs)
        rows = []
        for workload, n_cpy, n_mpy in (("unlock", 2000, 200), ("ed25519", 50, 10)):
            cpy = run([sys.executable], workload, n_cpy, inputs)
            mp = run([mpy, "-X", "heapsize=96K"], workload, n_mpy, inputs) if have_mpy else None
            heap = smallest_heap(mpy, workload, inputs) if have_mpy else None
            rows.append((workload, cpy, mp, heap))
    print(f"{'workload':<10} {'CPython':>12} {'MicroPython':>14} {'ratio':>7} {'min heap (100 ops)':>20}")
    for workload, cpy, mp, heap in rows:
        c = f"{cpy * 1e3:.3f} ms" if cpy else "failed"
        m = f"{mp * 1e3:.2f} ms" if mp else ("n/a" if not have_mpy else "failed")
        r = f"{mp / cpy:.0f}x" if mp and cpy else "-"
        h = f"{heap / 1024:.2f} KiB" if heap else "-"
        print(f"{workload:<10} {c:>12} {m:>14} {r:>7} {h:>20}")
    if not have_mpy:
        print("MicroPython unix port not installed: MicroPython figures NOT measured")
    print("(unix port on this host: relative figures; a board's 32-bit heap and clock differ)")
    from tools import fleetbench
    fleet = fleetbench.measure(24000)
    print(f"fleet_status_24000_s {fleet['fleet_status_24000_s']:.3f} s (goal <= 2 s; "
          "CPython, a generated registry of 24,000 locks)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
