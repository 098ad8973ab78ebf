"""What the collected records of a lock prove, and what they cannot.

A lock's log lives in epochs: one per commissioning (the registry's
`commissionings`). For each, the records collected are checked against the MAC
chain that starts at the COMMISSIONED record (or at the retention anchor: the
last record deleted under the site's retention, kept with its MAC), and every
range of sequence numbers the registry does not hold is named with its cause:
before the first collected record, overwritten in the lock's ring before it was
collected, missing between pulls, lost to a factory reset, unknown after the
lock was replaced. "Complete" is said only when no such range exists and the
chain verifies.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from protocol import clock, events


@dataclass
class Gap:
    first: int
    last: int | None  # None: open-ended (unknown how far it goes)
    cause: str

    def text(self) -> str:
        span = (f"record {self.first}" if self.last == self.first else
                f"records {self.first}-{self.last}" if self.last is not None else
                f"records from {self.first} on")
        return f"{span} {self.cause}"


@dataclass
class EpochVerdict:
    epoch: int
    complete: bool
    records: int
    first_seq: int | None
    last_seq: int | None
    gaps: list[Gap] = field(default_factory=list)
    altered: list[int] = field(default_factory=list)
    unverifiable: list[int] = field(default_factory=list)
    reordered: list[int] = field(default_factory=list)
    since: str | None = None  # local date the complete record starts, after retention
    retention_days: int | None = None
    ended: str | None = None
    text: str = ""

    def as_json(self) -> dict[str, Any]:
        return {"epoch": self.epoch, "complete": self.complete, "records": self.records,
                "first_seq": self.first_seq, "last_seq": self.last_seq,
                "gaps": [{"first": g.first, "last": g.last, "cause": g.cause}
                         for g in self.gaps],
                "altered": self.altered, "unverifiable": self.unverifiable,
                "reordered": self.reordered, "since": self.since, "ended": self.ended,
                "verdict": self.text}


OVERWRITTEN = "overwritten in the lock's ring before they were collected"
BEFORE_FIRST = "before the first collected record: never collected"
MISSING = "missing from the collected log (not collected, or removed)"
FACTORY_RESET = "lost to a factory reset at the lock"
DECOMMISSIONED_ELSEWHERE = "not collected before the lock was decommissioned by another tool"
REPLACED = ("unknown: the lock was commissioned again with no record of this identity "
            "(a new board, or its flash erased)")
RETIRED = "unknown: the lock was retired (stolen or destroyed) and cannot be collected"


def _local_day(lock_time: int, tz: ZoneInfo) -> str:
    return datetime.fromtimestamp(clock.to_unix(lock_time), tz).date().isoformat()


def _in_gap(seq: int, overwritten: list[tuple[int, int]]) -> bool:
    return any(a <= seq <= b for a, b in overwritten)


def check_epoch(com: Any, rows: list[Any], log_key: bytes, zone: str, retention_days: int,
                overwritten: list[tuple[int, int]]) -> EpochVerdict:
    """One epoch: `com` its commissionings row, `rows` its events (by seq),
    `overwritten` the ranges a pull found already overwritten at the lock."""
    tz = ZoneInfo(zone)
    records = [bytes(r["record"]) for r in rows]
    decoded = [events.decode(r) for r in records]
    pruned_seq = com["pruned_seq"]
    first_seq = com["first_seq"]
    v = EpochVerdict(com["epoch"], False, len(rows), decoded[0].seq if decoded else None,
                     decoded[-1].seq if decoded else None, ended=com["end_kind"],
                     retention_days=retention_days if pruned_seq else None)
    if pruned_seq:
        anchor_mac, anchor_seq = bytes(com["pruned_mac"]), int(pruned_seq)
    elif first_seq:
        anchor_mac, anchor_seq = events.GENESIS_MAC, int(first_seq) - 1
    else:
        # A registry from before epochs: the COMMISSIONED record is the anchor
        # if it is held; if not, the start cannot be proven.
        at = [i for i, e in enumerate(decoded) if e.code == events.COMMISSIONED]
        if at:
            anchor_mac, anchor_seq = events.GENESIS_MAC, decoded[at[0]].seq - 1
        else:
            anchor_mac, anchor_seq = None, None
    if records:
        chain = events.verify_chain(records, log_key, anchor_mac=anchor_mac,
                                    anchor_seq=anchor_seq)
        seqs = [e.seq for e in decoded]
        v.altered = sorted({seqs[i] for i in chain.altered + chain.corrupt})
        v.unverifiable = [seqs[i] for i in chain.unverifiable]
        v.reordered = [seqs[i] for i in chain.reordered]
        for a, b in chain.missing:
            if _in_gap(a, overwritten):
                cause = OVERWRITTEN
            elif anchor_seq is not None and a == anchor_seq + 1:
                cause = BEFORE_FIRST
            else:
                cause = MISSING
            v.gaps.append(Gap(a, b, cause))
        if anchor_seq is None:
            v.gaps.insert(0, Gap(1, decoded[0].seq - 1, BEFORE_FIRST + " (the chain's "
                                 "start is unknown)") if decoded[0].seq > 1 else
                          Gap(1, None, "cannot be proven: the COMMISSIONED record is not held"))
        chain_ok = chain.ok
    else:
        chain_ok = True  # nothing collected yet: not a gap until the lock loses it
    last_held = decoded[-1].seq if decoded else (int(pruned_seq) if pruned_seq else
                                                 (int(first_seq) - 1 if first_seq else 0))
    end_kind, end_seq = com["end_kind"], com["end_seq"]
    if end_kind == "factory-reset" and end_seq and last_held < end_seq:
        v.gaps.append(Gap(last_held + 1, int(end_seq), FACTORY_RESET))
    elif end_kind == "decommissioned-elsewhere" and end_seq and last_held < end_seq:
        v.gaps.append(Gap(last_held + 1, int(end_seq), DECOMMISSIONED_ELSEWHERE))
    elif end_kind == "replaced":
        v.gaps.append(Gap(last_held + 1, None, REPLACED))
    elif end_kind == "retired":
        # What it recorded after its last collection is out of reach for good.
        v.gaps.append(Gap(last_held + 1, None, RETIRED))
    v.complete = chain_ok and not v.gaps
    if pruned_seq:
        v.since = (_local_day(decoded[0].time, tz) if decoded else
                   _local_day(int(com["pruned_time"] or 0), tz))
    v.text = verdict_text(v)
    return v


def verdict_text(v: EpochVerdict) -> str:
    if v.complete:
        if v.records == 0 and v.since is None:
            return "Nothing collected yet; nothing is missing."
        upto = f" up to record {v.last_seq}" if v.last_seq else ""
        if v.since is not None:
            return (f"Complete since {v.since}{upto}; earlier records deleted after "
                    f"{v.retention_days} days (retention). The MAC chain verifies.")
        return f"Complete from commissioning{upto}; the MAC chain verifies."
    parts = [g.text() for g in v.gaps]
    if v.altered:
        parts.append(f"records {v.altered} altered")
    if v.unverifiable:
        parts.append(f"records {v.unverifiable} cannot be verified")
    if v.reordered:
        parts.append(f"records {v.reordered} out of order or repeated")
    return "NOT complete: " + "; ".join(parts) + "."
