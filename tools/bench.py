"""`make bench`: where the lock stands, measured in one run (issue #13 section 4).

    python tools/bench.py [--tiny] [--out bench/results.json]

Prints a table and writes every figure to bench/results.json (KEYS). Figures,
not asserts; each says how it was made (`how`), and each goal is checked
(`goals`). On this host: the MicroPython unix port (64-bit) and CPython, both
relative to a board. --tiny makes every figure on a small size (for the test
that checks the keys; its numbers mean nothing).

- unlock_hmac_us, unlock_hmac_floor_us: one HMAC unlock decision under
  MicroPython (verify the token, proof of possession, decision, event record:
  bench/core.py), and the same HMAC-SHA256 calls alone, counted in the code
  over inputs of the same sizes, in the same run. Goal: at most twice the floor.
- unlock_ed25519_ms: one Ed25519 verification under MicroPython. Goal: 3 ms.
- heap_min_unlock_hmac_bytes, heap_min_unlock_ed25519_bytes: the smallest
  `-X heapsize=` at which 100 of them complete, with the code in a ROMFS image
  outside the heap (executed in place, as frozen code is on a board), via the
  simulator's in-process launcher; converted to a 32-bit board by halving
  (a heap block is 4 machine words: 32 bytes here, 16 on a board; byte-string
  payloads do not shrink, so the board figure may be somewhat higher).
  Goals on the board: 16 KB and 32 KB.
- flash_bytes_per_event, flash_erases_per_1000_events: one lock's 1,000
  openings through the real firmware over the counting flash model (the event
  log goes round its blocks), every region counted.
- fleet_day_s, fleet_openings_per_s, fleet_peak_rss_bytes: a day of 2,300 locks
  and 30,000 openings (5 % refused) through the real firmware in a fast mode
  without sockets, locks one after another (python -m simulator.fleetday).
  Goal: 120 s here.
- issue_tokens_per_s (tools/issuer.py), key_seal_ms (the personal-code sealing
  of one key: Argon2id and the mask, tools/device.py), mpy_bytes (protocol/,
  firmware/, boards/ with mpy-cross -O1).
- battery_years (per board, at 6 and 20 openings a day, today and the labelled
  what-ifs), idle_wakeups_per_hour, time_to_open_s (python -m simulator energy).
- fleet_status_24000_s: `fleet status`'s work on a generated registry of 24,000
  locks (tools/fleetbench.py).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from mpybuild import (  # noqa: E402
    LOCK_PACKAGES,
    build_romfs,
    compile_file,
    compile_tree,
    in_process_runner,
    micropython_command,
)
from protocol import clock, keys  # noqa: E402
from protocol import messages as msg  # noqa: E402
from tools import device, issuer  # noqa: E402

KEYS = (
    "unlock_hmac_us", "unlock_hmac_floor_us", "unlock_hmac_floor_calls", "unlock_ed25519_ms",
    "heap_min_unlock_hmac_bytes", "heap_min_unlock_ed25519_bytes",
    "heap_min_unlock_hmac_bytes_32bit", "heap_min_unlock_ed25519_bytes_32bit",
    "flash_bytes_per_event", "flash_erases_per_1000_events",
    "fleet_day_s", "fleet_openings_per_s", "fleet_peak_rss_bytes", "fleet_status_24000_s",
    "issue_tokens_per_s", "key_seal_ms", "mpy_bytes",
    "battery_years", "idle_wakeups_per_hour", "time_to_open_s",
)
BOOTSTRAP = ROOT / "simulator" / "mpy" / "bootstrap.py"  # mounts the ROMFS image (data, not imported)


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


def _ok(proc: subprocess.CompletedProcess) -> float | None:
    out = proc.stdout.strip().splitlines()
    if proc.returncode == 0 and out and out[-1].startswith("ok "):
        return float(out[-1].split()[1])
    return None


def run(interp: list[str], workload: str, count: int, inputs: Path) -> float | None:
    """Seconds per operation, or None if the workload did not complete."""
    proc = subprocess.run([*interp, "bench/core.py", workload, str(count), str(inputs)],
                          cwd=ROOT, capture_output=True, text=True, timeout=900)
    return _ok(proc)


def floor_calls(mpy: str, inputs: Path) -> int | None:
    proc = subprocess.run([mpy, "-X", "heapsize=96K", "bench/core.py", "floor", "1", str(inputs)],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    for line in proc.stdout.splitlines():
        if line.startswith("calls "):
            return int(line.split()[1])
    return None


class RomRunner:
    """bench/core.py and protocol/ compiled into a ROMFS image, run by the
    wheel's interpreter with the image outside its heap (simulator.mpyhost)."""

    def __init__(self, tmp: Path) -> None:
        code = tmp / "code"
        compile_tree(code, ("protocol",))
        error = compile_file(Path("bench/core.py"), code / "_lockport.mpy", ROOT)
        if error is not None:
            raise RuntimeError(error)
        self.image = tmp / "bench.romfs"
        self.image.write_bytes(build_romfs(code))
        self.script = tmp / "bootstrap.py"
        shutil.copyfile(BOOTSTRAP, self.script)
        self.cwd = tmp / "run"  # nothing importable here: protocol comes from /rom
        self.cwd.mkdir()

    def __call__(self, heap: int, workload: str, count: int, inputs: Path) -> float | None:
        proc = subprocess.run(
            [sys.executable, "-m", "simulator.mpyhost", "--rom", str(self.image), "--",
             "-X", f"heapsize={heap}", str(self.script), workload, str(count), str(inputs)],
            cwd=self.cwd, capture_output=True, text=True, timeout=300,
            env=dict(os.environ, PYTHONPATH=str(ROOT)))
        return _ok(proc)


def smallest_heap(attempt, workload: str, inputs: Path, count: int, step: int) -> int | None:  # type: ignore[no-untyped-def]
    """The smallest heap (bytes, to `step`) at which `count` operations complete."""
    lo, hi = 2 * 1024, 256 * 1024  # lo fails, hi works
    if attempt(hi, workload, count, inputs) is None:
        return None
    while hi - lo > step:
        mid = (lo + hi) // 2 // 256 * 256
        if attempt(mid, workload, count, inputs) is None:
            lo = mid
        else:
            hi = mid
    return hi


def _python_module(args: list[str], timeout: int = 900) -> Any:
    proc = subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"python -m {' '.join(args)}: {proc.stderr.strip()[-300:]}")
    return json.loads(proc.stdout)


def measure(tiny: bool = False) -> dict[str, Any]:
    r: dict[str, Any] = {k: None for k in KEYS}
    how: dict[str, str] = {}
    notes: list[str] = []
    mpy = micropython_command()
    n_unlock, n_ed = (20, 3) if tiny else (500, 20)
    with tempfile.TemporaryDirectory() as tmp_s:
        tmp = Path(tmp_s)
        inputs = tmp / "inputs.json"
        make_inputs(inputs)
        # --- speed under MicroPython (one run of each, then CPython beside) ---------
        if mpy is not None:
            interp = [mpy, "-X", "heapsize=96K"]
            t = run(interp, "unlock", n_unlock, inputs)
            r["unlock_hmac_us"] = t * 1e6 if t else None
            t = run(interp, "floor", n_unlock, inputs)
            r["unlock_hmac_floor_us"] = t * 1e6 if t else None
            r["unlock_hmac_floor_calls"] = floor_calls(mpy, inputs)
            t = run(interp, "ed25519", n_ed, inputs)
            r["unlock_ed25519_ms"] = t * 1e3 if t else None
            how["unlock_hmac_us"] = ("MicroPython unix port (64-bit, this host), .py source, "
                                     f"mean of {n_unlock}")
        else:
            notes.append("MicroPython unix port not installed: MicroPython figures NOT measured")
        t = run([sys.executable], "unlock", 10 * n_unlock, inputs)
        r["unlock_hmac_cpython_us"] = t * 1e6 if t else None
        # --- heap: code in ROM outside the heap ---------------------------------------
        count, step = (10, 4096) if tiny else (100, 512)
        attempt: Any = None
        if mpy is not None and in_process_runner():
            attempt = RomRunner(tmp)
            how["heap"] = ("smallest -X heapsize at which %d operations complete, code in a "
                           "ROMFS image outside the heap (executed in place, as frozen code "
                           "on a board), to %d bytes; 32-bit = 64-bit / 2 (a heap block is 4 "
                           "words), an estimate" % (count, step))
        elif mpy is not None:
            def in_heap(heap: int, w: str, c: int, i: Path) -> float | None:
                return run([mpy, "-X", f"heapsize={heap}"], w, c, i)
            attempt = in_heap
            how["heap"] = ("smallest -X heapsize at which %d operations complete, code "
                           "compiled from .py INTO the heap (no in-process runner for a "
                           "ROMFS image): an upper bound" % count)
        if attempt is not None:
            for workload, key in (("unlock", "heap_min_unlock_hmac_bytes"),
                                  ("ed25519", "heap_min_unlock_ed25519_bytes")):
                h = smallest_heap(attempt, workload, inputs, count, step)
                r[key] = h
                r[key + "_32bit"] = h // 2 if h else None
        # --- mpy size --------------------------------------------------------------------
        rows = compile_tree(tmp / "mpy", LOCK_PACKAGES)
        r["mpy_bytes"] = sum(m for _, _, m in rows)
        how["mpy_bytes"] = "protocol/, firmware/, boards/ (every board file), mpy-cross -O1"
    # --- host side: tokens and key sealing -----------------------------------------------
    n_tok = 50 if tiny else 2000
    site = bytes(range(32))
    now = int(time.time())
    t0 = time.perf_counter()
    for i in range(n_tok):
        issuer.issue_token(site, "lock-%d" % (i % 100), iss="bench", sub="staff-%d" % i,
                           start=now, end=now + 8 * 3600, iat=now)
    r["issue_tokens_per_s"] = n_tok / (time.perf_counter() - t0)
    salt = os.urandom(16)
    t0 = time.perf_counter()
    secret = device._stretch("123456", salt, device.KDF)
    device._mask(secret, "lock-bench", os.urandom(16))
    r["key_seal_ms"] = (time.perf_counter() - t0) * 1e3
    how["key_seal_ms"] = "Argon2id %s and the mask for one key (tools/device.py)" % (
        ", ".join(f"{k}={v}" for k, v in device.KDF.items()))
    # --- fleet day and flash wear (simulator, in a child: its own peak memory) -----------
    fleet_args = (["--locks", "3", "--openings", "30", "--wear-openings", "100"] if tiny else
                  ["--locks", "2300", "--openings", "30000", "--wear-openings", "1000"])
    fleet = _python_module(["simulator.fleetday", "--json", *fleet_args])
    r["fleet_day_s"] = fleet["fleet_day_s"]
    r["fleet_openings_per_s"] = fleet["fleet_openings_per_s"]
    r["fleet_peak_rss_bytes"] = fleet["peak_rss_bytes"]
    r["fleet"] = {k: fleet[k] for k in ("locks", "openings", "allowed", "refused",
                                        "mismatched", "events")}
    r["flash_bytes_per_event"] = fleet["wear"]["flash_bytes_per_event"]
    r["flash_erases_per_1000_events"] = fleet["wear"]["flash_erases_per_1000_events"]
    how["fleet_day_s"] = ("python -m simulator.fleetday %s: the real firmware (App, Lock) on "
                          "an in-memory HAL, fast mode (waits move a virtual clock), no "
                          "sockets, locks one after another; peak = the child's max RSS"
                          % " ".join(fleet_args))
    how["flash_bytes_per_event"] = ("one lock, %d openings (5 %% refused), every byte "
                                    "programmed and every erase of its flash (log and "
                                    "littlefs) over the events written" % fleet["wear"]["openings"])
    from tools import fleetbench
    n_fleet = 240 if tiny else 24000
    status = fleetbench.measure(n_fleet)
    r["fleet_status_24000_s"] = status[f"fleet_status_{n_fleet}_s"]
    r["fleet_status_24000_flagged"] = status[f"fleet_status_{n_fleet}_flagged"]
    how["fleet_status_24000_s"] = ("fleet status --json's work (queries, rules, JSON) on a "
                                   "generated registry of %d locks, best of three (tools/"
                                   "fleetbench.py)" % (240 if tiny else 24000))
    # --- energy (simulator/energy.py) ------------------------------------------------------
    years: dict[str, Any] = {}
    wake: dict[str, float] = {}
    tto: dict[str, float] = {}
    tto_worst: dict[str, float] = {}
    for opens in (6, 20):
        data = _python_module(["simulator", "energy", "--board", "all", "--json",
                               "--opens-per-day", str(opens)])
        for b in data["boards"]:
            per = years.setdefault(b["board"], {})
            per[str(opens)] = {name: {"life_years": v["life_years"], "title": v["title"],
                                      "label": v.get("label", "")}
                               for name, v in b["variants"].items()}
            if opens == 20:
                wake[b["board"]] = b["idle_wakeups_per_hour"]
                tto[b["board"]] = b["time_to_open"]["mean_s"]
                tto_worst[b["board"]] = b["time_to_open"]["worst_s"]
    r["battery_years"] = years
    r["idle_wakeups_per_hour"] = wake
    r["time_to_open_s"] = tto
    r["time_to_open_worst_s"] = tto_worst
    how["battery_years"] = ("python -m simulator energy --board all --json at 6 and 20 "
                            "openings a day; 'today' as the firmware runs (the nRF52840 "
                            "figure is modelled, not measured), what-ifs labelled")
    r["goals"] = goals(r)
    r["how"] = how
    r["notes"] = notes
    r["tiny"] = tiny
    return r


def goals(r: dict[str, Any]) -> dict[str, Any]:
    def check(value: Any, limit: float, below: bool = True) -> Any:
        if value is None:
            return None
        return value <= limit if below else value >= limit

    by_life = sorted(r["battery_years"].items(), key=lambda kv: kv[1]["20"]["today"]["life_years"])
    best = by_life[-1][0] if by_life else None  # the board that lasts longest today
    best20 = r["battery_years"][best]["20"]["today"]["life_years"] if best else None
    floor = r["unlock_hmac_floor_us"]
    return {
        "unlock_hmac_at_most_2x_floor": check(r["unlock_hmac_us"], 2 * floor) if floor else None,
        "unlock_ed25519_at_most_3_ms": check(r["unlock_ed25519_ms"], 3.0),
        "heap_hmac_board_at_most_16_KB": check(r["heap_min_unlock_hmac_bytes_32bit"], 16 * 1024),
        "heap_ed25519_board_at_most_32_KB": check(r["heap_min_unlock_ed25519_bytes_32bit"],
                                                  32 * 1024),
        "fleet_day_at_most_120_s": check(r["fleet_day_s"], 120.0),
        "fleet_status_24000_at_most_2_s": check(r["fleet_status_24000_s"], 2.0),
        "best_board_3_years_at_20_a_day": check(best20, 3.0, below=False),
        "best_board": best,
        "time_to_open_at_most_2_s_best_board": check(r["time_to_open_s"].get(best, math.inf), 2.0),
    }


def _fmt(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, float):
        return f"{v:,.3f}" if abs(v) < 1000 else f"{v:,.0f}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


def render(r: dict[str, Any]) -> str:
    lines = [f"{'figure':<40} {'value':>16}"]
    for k in KEYS:
        v = r[k]
        if isinstance(v, dict):
            continue
        lines.append(f"{k:<40} {_fmt(v):>16}")
    lines.append("")
    lines.append(f"{'battery years (today; what-ifs)':<40} {'6/day':>10} {'20/day':>10}")
    for board, per in r["battery_years"].items():
        for name in per["20"]:
            title = per["20"][name]["title"]
            lines.append(f"  {board + ': ' + title:<38.38} {per['6'][name]['life_years']:>10.2f} "
                         f"{per['20'][name]['life_years']:>10.2f}")
    lines.append(f"{'per board (20/day)':<40} {'wake-ups/h':>10} {'open s':>10} {'worst s':>10}")
    for board in r["time_to_open_s"]:
        lines.append(f"  {board:<38} {r['idle_wakeups_per_hour'][board]:>10.0f} "
                     f"{r['time_to_open_s'][board]:>10.2f} {r['time_to_open_worst_s'][board]:>10.2f}")
    lines.append("goals:")
    for k, v in r["goals"].items():
        if isinstance(v, str):
            lines.append(f"  {k:<48} {v}")
            continue
        lines.append(f"  {k:<48} {'met' if v else ('not measured' if v is None else 'NOT met')}")
    for n in r["notes"]:
        lines.append(f"note: {n}")
    lines.append("(the unix port on this host: relative figures; a board's 32-bit heap and "
                 "clock differ)")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="tools/bench.py", description=__doc__.split("\n")[0])
    p.add_argument("--tiny", action="store_true", help="every figure on a small size (tests)")
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "results.json")
    args = p.parse_args(argv)
    r = measure(args.tiny)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(r, indent=1, sort_keys=False) + "\n")
    os.replace(tmp, args.out)
    sys.stdout.write(render(r))
    return 0


if __name__ == "__main__":
    sys.exit(main())
