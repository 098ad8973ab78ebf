"""A site with a few weeks of real log records (MAC-chained under the lock's
log key, as a lock writes them) for the report tests: client C1 with her
apartment door NT-1 and the shared entrance NT-2, client C2 at NT-2 only, three
staff. Built through the registry and the service layer in well under a second,
with no simulator: the records are what a pull would have stored.

What it holds, by day (local time, Europe/Stockholm), is returned as
`Expected`, counted here from the script below and never from the report."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from protocol import clock, events, reasons
from tools import issuer
from tools.site import Site

ZONE = ZoneInfo("Europe/Stockholm")
START = datetime(2026, 11, 2, tzinfo=ZONE)  # a Monday
DAYS = 14
STAFF = {"S1": ("Anna Berg", "Kommunen"), "S2": ("Bilal Haddad", "Omsorg AB"),
         "S3": ("Åsa Öberg", "Kommunen")}


@dataclass
class Expected:
    openings: dict[tuple[str, str], int] = field(default_factory=dict)  # (lock, day)
    refusals: dict[tuple[str, str], int] = field(default_factory=dict)
    by_staff: dict[str, int] = field(default_factory=dict)  # openings per staff id
    flood: int = 0  # the refused attempts of the flood, on NT-1


class Writer:
    """Records of one lock, chained as the lock chains them."""

    def __init__(self, secret: bytes, lock_id: str) -> None:
        self.key = issuer.log_key_for(secret, lock_id)
        self.prev = events.GENESIS_MAC
        self.seq = 0
        self.records: list[bytes] = []

    def add(self, when: datetime, code: int, key: bytes | None = None, detail: int = 0,
            flags: int = 0) -> None:
        self.seq += 1
        rec = events.encode(self.seq, clock.from_unix(int(when.timestamp())), code, flags,
                            detail, key or events.NO_KEY, self.prev, self.key)
        self.prev = rec[20:28]
        self.records.append(rec)


def build(root: Path) -> tuple[Site, Expected]:
    site = Site.init(root / "site", "Testkommun hemtjänst", actor="test")
    reg = site.registry
    site.add_client("test", "C1", "Astrid Lindqvist", "Storgatan 4")
    site.add_client("test", "C2", "Karl Berg", "Storgatan 4")
    for sid, (name, provider) in STAFF.items():
        site.add_staff("test", sid, name, provider)
    secret = reg.site_secret()
    commissioned = START - timedelta(days=1)
    reg.add_lock("NT-1", "apartment", "hmac", ["C1"], int(commissioned.timestamp()),
                 first_seq=1)
    reg.add_lock("NT-2", "entrance", "hmac", ["C1", "C2"], int(commissioned.timestamp()),
                 first_seq=1)
    exp = Expected()
    key = {sid: events.key_id_of(sid) for sid in STAFF}
    w = {lk: Writer(secret, lk) for lk in ("NT-1", "NT-2")}
    for lk in w:
        w[lk].add(commissioned + timedelta(hours=10), events.COMMISSIONED)

    def opened(lk: str, when: datetime, sid: str, alarm: bool = False) -> None:
        w[lk].add(when, events.ALARM_OPEN if alarm else events.OPENED, key[sid],
                  flags=events.FLAG_ALARM_ACCESS if alarm else 0)
        w[lk].add(when + timedelta(seconds=20), events.DOOR_OPENED, key[sid],
                  detail=events.DOOR_AFTER_OPENING)
        w[lk].add(when + timedelta(minutes=25), events.DOOR_CLOSED)
        w[lk].add(when + timedelta(minutes=25, seconds=5), events.RELOCKED)
        d = when.date().isoformat()
        exp.openings[(lk, d)] = exp.openings.get((lk, d), 0) + 1
        exp.by_staff[sid] = exp.by_staff.get(sid, 0) + 1

    def refused(lk: str, when: datetime, sid: str, why: int) -> None:
        w[lk].add(when, events.REFUSED, key[sid], detail=why)
        d = when.date().isoformat()
        exp.refusals[(lk, d)] = exp.refusals.get((lk, d), 0) + 1

    for i in range(DAYS):
        day = START + timedelta(days=i)
        morning = "S1" if i % 2 == 0 else "S3"
        opened("NT-2", day.replace(hour=7, minute=40), morning)
        opened("NT-1", day.replace(hour=7, minute=42), morning)
        opened("NT-2", day.replace(hour=16, minute=5), "S2")
        opened("NT-1", day.replace(hour=16, minute=7), "S2")
        if i == 3:
            refused("NT-1", day.replace(hour=22, minute=15), "S2", reasons.EXPIRED)
        if i == 5:  # a night alarm: the patrol's alarm key
            opened("NT-2", day.replace(hour=2, minute=10), "S3", alarm=True)
            opened("NT-1", day.replace(hour=2, minute=11), "S3", alarm=True)
        if i == 8:  # a flood of wrong codes at the apartment door, then blocked
            for k in range(6):
                refused("NT-1", day.replace(hour=12, minute=30, second=k * 5), "S1",
                        reasons.BAD_PROOF)
                exp.flood += 1
            refused("NT-1", day.replace(hour=12, minute=31), "S1", reasons.TOKEN_BURNED)
        if i == 10:  # forced at night
            w["NT-1"].add(day.replace(hour=3, minute=2), events.DOOR_OPENED,
                          detail=events.DOOR_FORCED)
            w["NT-1"].add(day.replace(hour=3, minute=4), events.DOOR_LEFT_OPEN)
    for lk, writer in w.items():
        reg.store_events(lk, writer.records)
    # The unit and the alarm key of the night alarm, as the care-operations acts
    # (branch careops) write them: their tables, filled here directly.
    night = (START + timedelta(days=5)).replace(hour=2, minute=5)
    with reg.tx():
        reg.db.execute("INSERT INTO units (unit_id, provider, name, created_at) "
                       "VALUES ('U-NORR', 'Kommunen', 'Hemtjänst Norr', 0)")
        reg.db.execute("UPDATE clients SET unit = 'U-NORR' WHERE client_id = 'C1'")
        reg.db.execute("INSERT INTO alarm_keys VALUES ('A-1', 'C1', 'S3', 'trygghetslarm', 30, "
                       "?, ?, ?, 'dev', 'larmcentralen')",
                       (int(night.timestamp()), int(night.timestamp()) + 1800,
                        int(night.timestamp())))
    return site, exp
