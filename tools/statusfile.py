"""The statuses a staff device brings home: one authenticated answer of a
lock per line of `DIR/status.jsonl` (docs/PROTOCOL.md, section 5c), written by
`lockctl open` and checked by `lockctl fleet ingest` (tools/site.py's
Site.ingest_statuses): each line's MAC verifies under the PoP key the issuer
derives again (HKDF(lock secret, salt = token id)). Also the reading of a
lock's status map into the fields the registry keeps.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from protocol import crypto, keys
from protocol import messages as msg

# The lock's own battery forecast (days left at its recent openings per day,
# firmware/battery.py); a lock that does not send it (older firmware, a board
# without forecast figures) is judged by its battery level and voltage.
ST_BATTERY_DAYS: int = msg.ST_BATTERY_DAYS

STATUS_FILE = "status.jsonl"
LINE_FORMAT = 1
MAX_LINE = 16 * 1024  # a RESULT frame is at most 1 KiB; hex and JSON double it at most
FUTURE_TOLERANCE = 300  # a device clock this far ahead of ours is still believed


class IngestError(ValueError):
    """Why one status line is refused (one line, nothing secret)."""



# --- the status map ------------------------------------------------------------------

@dataclass(frozen=True)
class StatusFields:
    revocation_version: int | None = None
    clock_offset: int | None = None
    clock_trusted: bool | None = None
    battery: int | None = None
    battery_mv: int | None = None
    battery_days: int | None = None
    log_count: int | None = None
    log_capacity: int | None = None
    last_seq: int | None = None
    firmware: str | None = None


def _uint(status: dict[Any, Any], key: int) -> int | None:
    v = status.get(key)
    return v if isinstance(v, int) and not isinstance(v, bool) and 0 <= v < 2**63 else None


def status_fields(status: dict[Any, Any], seen: int) -> StatusFields:
    """The fields of a lock's status map (ST_* keys) that the registry keeps;
    anything missing or of the wrong type is None. The clock offset is the
    lock's time minus the time the status was seen."""
    if not isinstance(status, dict):
        status = {}
    lock_time = _uint(status, msg.ST_TIME)
    trusted = status.get(msg.ST_CLOCK_TRUSTED)
    fw = status.get(msg.ST_FIRMWARE)
    return StatusFields(
        revocation_version=_uint(status, msg.ST_REVOCATION_VERSION),
        clock_offset=None if lock_time is None else lock_time - seen,
        clock_trusted=trusted if isinstance(trusted, bool) else None,
        battery=_uint(status, msg.ST_BATTERY), battery_mv=_uint(status, msg.ST_BATTERY_MV),
        battery_days=_uint(status, ST_BATTERY_DAYS),
        log_count=_uint(status, msg.ST_LOG_COUNT), log_capacity=_uint(status, msg.ST_LOG_CAPACITY),
        last_seq=_uint(status, msg.ST_LAST_SEQ),
        firmware=fw if isinstance(fw, str) and len(fw) <= 32 and fw.isprintable() else None)


# --- the staff device's status file ----------------------------------------------------

def status_line(lock_id: str, cti: bytes, answer: bytes, seen: int) -> str:
    """One line of DIR/status.jsonl: the lock's RESULT as it arrived, the
    token it answered (the issuer derives the MAC key from it) and when this
    device saw it. Nothing secret: the PoP key stays sealed on the device."""
    return json.dumps({"v": LINE_FORMAT, "lock": lock_id, "cti": cti.hex(),
                       "answer": answer.hex(), "seen": int(seen)}, sort_keys=True)


def append_status(device_dir: Path, lock_id: str, cti: bytes, answer: bytes,
                  seen: int | None = None) -> Path:
    """Append one authenticated answer to the device's status file (owner-only)."""
    path = Path(device_dir) / STATUS_FILE
    line = status_line(lock_id, cti, answer, int(time.time()) if seen is None else seen)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    with os.fdopen(fd, "a", encoding="utf-8") as f:
        f.write(line + "\n")
    return path


@dataclass(frozen=True)
class StatusLine:
    lock_id: str
    cti: bytes
    answer: bytes
    seen: int


def parse_line(text: str) -> StatusLine:
    """The fields of one status line, checked for form only (the MAC is
    check_answer's)."""
    if len(text) > MAX_LINE:
        raise IngestError("line too long to be a lock's answer")
    try:
        obj = json.loads(text)
    except (ValueError, RecursionError):
        raise IngestError("not a status line (not JSON)") from None
    if not isinstance(obj, dict):
        raise IngestError("not a status line (not a JSON object)")
    if obj.get("v") != LINE_FORMAT:
        raise IngestError(f"unknown status line format {str(obj.get('v'))[:20]!r}")
    lock_id, cti, answer, seen = (obj.get(k) for k in ("lock", "cti", "answer", "seen"))
    from tools.site import ID_RE
    if not isinstance(lock_id, str) or not ID_RE.match(lock_id):
        raise IngestError("no valid lock id")
    if not isinstance(seen, int) or isinstance(seen, bool) or not 0 < seen < 2**40:
        raise IngestError("no valid time seen")
    out = []
    for name, value, limit in (("cti", cti, 64), ("answer", answer, 4096)):
        if not isinstance(value, str) or not value or len(value) > 2 * limit:
            raise IngestError(f"no valid {name}")
        try:
            out.append(bytes.fromhex(value))
        except ValueError:
            raise IngestError(f"{name} is not hex") from None
    return StatusLine(lock_id, out[0], out[1], seen)


@dataclass(frozen=True)
class CheckedAnswer:
    lock_id: str
    seen: int
    outcome: int
    lock_time: int
    status: dict[int, Any]
    mac: bytes


def check_answer(line: StatusLine, site_secret: bytes, token_lock: str | None,
                 token_issued: int | None, now: int) -> CheckedAnswer:
    """The lock's answer of one line, if its MAC verifies under the PoP key of
    the token it names. `token_lock`/`token_issued` are what this site's
    registry says of that token (None: no such token in this site)."""
    if token_lock is None or token_issued is None:
        raise IngestError(f"the key that brought this status was not issued by this site "
                          f"(lock {line.lock_id})")
    if token_lock != line.lock_id:
        raise IngestError(f"the key that brought this status is for lock {token_lock}, "
                          f"not {line.lock_id}")
    try:
        mtype, f = msg.decode(line.answer, (msg.RESULT,))
    except msg.MessageError:
        raise IngestError("the answer is not a lock's authenticated result") from None
    mac = f.get(msg.RESULT_MAC)
    if not isinstance(mac, bytes):
        raise IngestError("the answer carries no MAC: not authenticated")
    pop = keys.pop_key(keys.lock_secret(site_secret, line.lock_id), line.cti)
    expected = msg.result_mac(pop, f[msg.RESULT_NONCE], line.lock_id, f[msg.RESULT_OUTCOME],
                              f[msg.RESULT_TIME], f[msg.RESULT_SEQ], f[msg.RESULT_STATUS],
                              f.get(msg.RESULT_RECORDS))
    if not crypto.eq(mac, expected):
        raise IngestError("the answer's MAC does not verify: forged or altered")
    if line.seen > now + FUTURE_TOLERANCE:
        raise IngestError("seen in the future: the device's clock is wrong")
    if line.seen < token_issued - FUTURE_TOLERANCE:
        raise IngestError("seen before its key was issued: the device's clock is wrong")
    return CheckedAnswer(line.lock_id, min(line.seen, now), f[msg.RESULT_OUTCOME],
                         f[msg.RESULT_TIME], f[msg.RESULT_STATUS], mac)
