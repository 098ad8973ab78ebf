"""`fleet_status_24000_s`: `fleet status` on a generated registry the size of
Stockholm's (24,000 locks), for `make bench` (tools/bench.py calls measure()).

The registry is made by the real migrations, then filled in bulk: every lock
commissioned with a status, a day of shift keys (two per lock), a week of
night alarm keys, a few dozen blocks, and collected log records; a share of
the locks have each problem the rules look for, so the rules run their
expensive paths. tests/tools/test_fleet.py uses make_registry() for its query-count
test.
"""

from __future__ import annotations

import os
import random
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tools import fleet  # noqa: E402
from tools.registry import Registry  # noqa: E402

LOG_CAPACITY = 7936


def make_registry(site_dir: Path, n_locks: int, now: int, seed: int = 1,
                  events_per_lock: int = 20) -> Registry:
    rng = random.Random(seed)
    reg = Registry.create(site_dir)
    reg.put_settings({"name": "Bench", "zone": "Europe/Stockholm", "retention_days": "365",
                      "revocation_version": "0"})
    db = reg.db
    n_staff = max(1, n_locks // 8)
    with reg.tx():
        db.executemany("INSERT INTO staff (staff_id, name, provider, key_id) "
                       "VALUES (?, ?, NULL, ?)",
                       [(f"S{i}", f"Staff {i}", os.urandom(8)) for i in range(n_staff)])
        locks, coms, clients, links, events, tokens = [], [], [], [], [], []
        for i in range(n_locks):
            lid = f"L{i:06d}"
            r = rng.random()
            last_seen = now - (rng.randrange(8 * 86400, 40 * 86400) if r < 0.01
                               else rng.randrange(0, 3 * 86400))
            offset = rng.choice([36000, -900]) if rng.random() < 0.01 else rng.randrange(-30, 30)
            battery = 1 if rng.random() < 0.02 else 0
            last_seq = 2 + events_per_lock + (7000 if rng.random() < 0.01 else rng.randrange(50))
            locks.append((lid, "apartment", "hmac", now - 300 * 86400, "active", last_seen, 0,
                          offset, battery, 4700 if battery else 6800, min(last_seq, LOG_CAPACITY),
                          LOG_CAPACITY, last_seq, 1, "0.1.0", 1,
                          rng.randrange(10, 40) if battery else None, "key"))
            coms.append((lid, 1, now - 300 * 86400, 1))
            clients.append((f"C{i}", f"Client {i}", None))
            links.append((lid, f"C{i}"))
            for s in range(1, events_per_lock + 1):
                events.append((lid, 1, s, 0, 1, 0, 0, b"\0" * 8, b"\0" * 32, now))
            for _ in range(2):
                tokens.append((os.urandom(16), f"S{rng.randrange(n_staff)}", lid,
                               now - 3600, now + 6 * 3600, now - 3600, "open", 0, None))
        zone = ZoneInfo("Europe/Stockholm")
        last = datetime.fromtimestamp(now, zone).replace(hour=23, minute=0, second=0)
        for night in range(1, 8):  # a week of night alarms (23:00 on); one patrol gets many
            t0 = int((last - timedelta(days=night)).timestamp())
            for k in range(6 if night == 1 else rng.randrange(2, 9)):
                tokens.append((os.urandom(16), "S0", f"L{k:06d}", t0 + k, t0 + 3600 + k,
                               t0 + k * 60, "open", 1, None))
        db.executemany("INSERT INTO locks (lock_id, door, suite, commissioned_at, status, "
                       "last_seen, revocation_version, clock_offset, battery, battery_mv, "
                       "log_count, log_capacity, last_seq, epoch, firmware, clock_trusted, "
                       "battery_days, status_source) VALUES "
                       "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", locks)
        db.executemany("INSERT INTO commissionings (lock_id, epoch, commissioned_at, first_seq) "
                       "VALUES (?, ?, ?, ?)", coms)
        db.executemany("INSERT INTO clients (client_id, name, address) VALUES (?, ?, ?)",
                       clients)
        db.executemany("INSERT INTO lock_clients VALUES (?, ?)", links)
        db.executemany("INSERT INTO events VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", events)
        db.executemany("INSERT INTO tokens (cti, staff_id, lock_id, start, end, issued_at, "
                       "scope, alarm, device) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", tokens)
        # Blocks of this morning: some staff, some single keys; none has
        # reached a lock yet (every lock reports version 0).
        blocks = [("staff", f"S{rng.randrange(n_staff)}", now, now - 1800) for _ in range(20)]
        blocks += [("token", bytes(tokens[rng.randrange(2 * n_locks)][0]).hex(), now + 6 * 3600,
                    now - 1200) for _ in range(20)]
        db.executemany("INSERT INTO revocations (kind, value, until, created_at) "
                       "VALUES (?, ?, ?, ?)", blocks)
        db.execute("UPDATE settings SET value = ? WHERE key = 'revocation_version'",
                   (str(len(blocks)),))
    return reg


def measure(n_locks: int = 24000) -> dict[str, float]:
    """Seconds for `fleet status --json`'s work (queries, rules, JSON) on a
    generated registry of n_locks, the best of three runs."""
    import json
    now = int(time.time())
    with tempfile.TemporaryDirectory() as tmp:
        reg = make_registry(Path(tmp) / "site", n_locks, now)
        try:
            best = float("inf")
            for _ in range(3):
                t0 = time.perf_counter()
                out = fleet.fleet_status(reg, now)
                json.dumps(out)
                best = min(best, time.perf_counter() - t0)
            flagged = len(out["locks"])
        finally:
            reg.close()
    return {f"fleet_status_{n_locks}_s": round(best, 3),
            f"fleet_status_{n_locks}_flagged": flagged}


if __name__ == "__main__":
    print(measure(int(sys.argv[1]) if len(sys.argv) > 1 else 24000))
