"""Fleet health without a lock: the problem rules (expected values written by
hand), the status-line parser and MAC check (answers built with cbor2 and the
`cryptography` HKDF/HMAC as an independent oracle; hypothesis for bad lines,
bad MACs and wrong locks), and the query count of `fleet status`, which must
not grow with the number of locks.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from zoneinfo import ZoneInfo

import cbor2
import pytest
from cryptography.hazmat.primitives import hashes, hmac
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from hypothesis import given, settings
from hypothesis import strategies as st

from tools import fleet, fleetbench, statusfile
from tools.fleet import LockView, SiteView
from tools.statusfile import IngestError

ZONE = ZoneInfo("Europe/Stockholm")
NOW = 1796150000  # 2026-12-01 20:33 in Stockholm
DAY = 86400


def view(**kw: object) -> LockView:
    base: dict[str, object] = dict(
        lock_id="L1", last_seen=NOW - 3600, revocation_version=4, clock_offset=3,
        clock_trusted=True, battery=0, battery_mv=6800, battery_days=None, log_count=100,
        log_capacity=1000, last_seq=100, collected_seq=90, firmware="0.1.0")
    base.update(kw)
    return LockView(**base)  # type: ignore[arg-type]


def site(version: int = 4, blocks: dict[str, list[tuple[int, int]]] | None = None) -> SiteView:
    return SiteView(NOW, ZONE, version, blocks or {})


def kinds(lock: LockView, s: SiteView | None = None) -> list[tuple[str, int]]:
    return [(p.kind, p.severity) for p in fleet.lock_problems(lock, s or site())]


def test_a_healthy_lock_has_no_problems() -> None:
    assert fleet.lock_problems(view(), site()) == []


def test_block_missing_names_how_far_behind_and_since_when() -> None:
    s = site(version=6, blocks={"L1": [(5, NOW - 7200), (6, NOW - 600), (3, NOW - 9 * DAY)]})
    (p,) = fleet.lock_problems(view(revocation_version=4), s)
    assert (p.kind, p.severity, p.since) == ("block-missing", 3, NOW - 7200)
    assert p.text.startswith("the block list is 2 versions behind the site")
    assert "lockctl lock sync" in p.action
    # Blocks that concern only other locks, or that this lock has: nothing.
    assert fleet.lock_problems(view(revocation_version=4),
                               site(6, {"L2": [(6, NOW - 600)]})) == []
    assert fleet.lock_problems(view(revocation_version=6), s) == []
    # A lock that never reported a version has none of them.
    assert kinds(view(revocation_version=None), s) == [("block-missing", 3)]


@pytest.mark.parametrize("offset,text,severity", [
    (36000, "clock 10 h fast", 3), (-36000, "clock 10 h slow", 3), (-900, "clock 15 min slow", 2),
    (301, "clock 5 min fast", 2), (119, None, 0)])
def test_clock_drift(offset: int, text: str | None, severity: int) -> None:
    if text is None:
        assert fleet.lock_problems(view(clock_offset=offset), site()) == []
        return
    (p,) = fleet.lock_problems(view(clock_offset=offset), site())
    assert (p.kind, p.text, p.severity, p.since) == ("clock-drift", text, severity, NOW - 3600)


def test_clock_within_300_s_and_untrusted_clock() -> None:
    assert kinds(view(clock_offset=300)) == [] and kinds(view(clock_offset=-300)) == []
    (p,) = fleet.lock_problems(view(clock_trusted=False, clock_offset=0), site())
    assert p.kind == "clock-drift" and p.severity == 3 and "not trusted" in p.text


def test_battery_from_the_forecast_or_the_level() -> None:
    (p,) = fleet.lock_problems(view(battery_days=20, battery_mv=4700), site())
    assert p.text == "battery low: about 20 days left (4700 mV)" and p.severity == 2
    assert kinds(view(battery_days=5)) == [("battery", 3)]
    assert kinds(view(battery_days=45)) == [("battery", 1)]
    assert kinds(view(battery_days=400)) == []
    assert kinds(view(battery=1)) == [("battery", 2)]
    assert kinds(view(battery=2)) == [("battery", 3)]


def test_log_fill_counts_only_what_is_not_collected() -> None:
    assert kinds(view(last_seq=800, collected_seq=40)) == [("log-fill", 2)]  # 76 %
    assert kinds(view(last_seq=800, collected_seq=60)) == []  # 74 %
    (p,) = fleet.lock_problems(view(last_seq=5000, collected_seq=10), site())
    assert p.severity == 3 and "overwritten" in p.text


def test_silent() -> None:
    assert kinds(view(last_seen=NOW - 7 * DAY)) == []
    (p,) = fleet.lock_problems(view(last_seen=NOW - 8 * DAY), site())
    assert (p.kind, p.severity, p.since) == ("silent", 1, NOW - 8 * DAY)
    assert p.text.startswith("not heard from in 8 days")
    assert kinds(view(last_seen=NOW - 31 * DAY)) == [("silent", 2)]


def test_most_urgent_first() -> None:
    probs = fleet.lock_problems(view(last_seen=NOW - 8 * DAY, battery=2, clock_offset=900), site())
    assert [p.kind for p in probs] == ["battery", "clock-drift", "silent"]


def test_alarms_count_issues_per_night() -> None:
    # 21:30 local on 2026-11-30 is 20:30 UTC; one issue covers two doors.
    start = 1796070600  # 2026-11-30 21:30 Stockholm
    keys = []
    for i in range(5):
        t = start + i * 3600  # 21:30 .. 01:30: one night
        keys += [fleet.AlarmKey("S9", t, "L1"), fleet.AlarmKey("S9", t, "L2")]
    keys.append(fleet.AlarmKey("S8", start, "L1"))
    keys.append(fleet.AlarmKey("S8", start + 12 * 3600, "L1"))  # 09:30: by day
    out = fleet.staff_problems(keys, site(), {"S9": "Nattpatrull 9"})
    assert list(out) == ["S9"]
    (p,) = out["S9"]
    assert p.kind == "alarms" and p.severity == 2 and p.since == 1796068800  # 21:00
    assert "5 alarm keys in the night of 2026-11-30" in p.text and "Nattpatrull 9" in p.text
    assert fleet.staff_problems(keys[:8], site()) == {}  # 4 issues: not many
    # `alarm issue`'s keys: one alarm id is one response, whatever its times.
    same = [fleet.AlarmKey("S7", start + i, f"L{i}", "A-1") for i in range(6)]
    assert fleet.staff_problems(same, site()) == {}
    many = [fleet.AlarmKey("S7", start + i, "L1", f"A-{i}") for i in range(6)]
    assert [p.kind for p in fleet.staff_problems(many, site())["S7"]] == ["alarms"]


# --- the status line and its MAC ------------------------------------------------------

SITE_SECRET = bytes(range(32))


def _hkdf(ikm: bytes, salt: bytes, info: bytes) -> bytes:
    return HKDF(hashes.SHA256(), 32, salt, info).derive(ikm)


def oracle_answer(lock_id: str, cti: bytes, status: dict[int, object], outcome: int = 0,
                  lock_time: int = NOW, secret: bytes = SITE_SECRET) -> bytes:
    """A lock's RESULT, built from PROTOCOL.md with cbor2 and cryptography."""
    lock_secret = _hkdf(secret, b"nyckelfri-lock/v1", b"lock:" + lock_id.encode())
    pop = _hkdf(lock_secret, cti, b"pop")
    nonce = bytes(16)
    h = hmac.HMAC(pop, hashes.SHA256())
    h.update(cbor2.dumps(["result", nonce, lock_id, outcome, lock_time, 7, status]))
    return cbor2.dumps({0: 3, 1: nonce, 2: outcome, 3: lock_time, 4: 7, 5: status,
                        6: h.finalize()})


STATUS = {1: 3, 2: 0, 3: 6800, 4: 10, 5: 7936, 6: True, 7: NOW + 36000, 8: 12, 9: "0.1.0"}
CTI = bytes.fromhex("6adec0106cdd278d518b034886fc376d")


def check(text: str, token_lock: str | None = "L1", issued: int | None = NOW - 3600
          ) -> statusfile.CheckedAnswer:
    return statusfile.check_answer(statusfile.parse_line(text), SITE_SECRET, token_lock, issued, NOW)


def test_a_genuine_answer_is_taken() -> None:
    line = statusfile.status_line("L1", CTI, oracle_answer("L1", CTI, STATUS), NOW - 60)
    got = check(line)
    assert got.lock_id == "L1" and got.seen == NOW - 60 and got.lock_time == NOW
    f = statusfile.status_fields(got.status, got.seen)
    assert (f.revocation_version, f.clock_offset, f.battery_mv, f.firmware) == (3, 36060, 6800,
                                                                                 "0.1.0")


def test_wrong_lock_other_site_and_bad_times_are_refused() -> None:
    line = statusfile.status_line("L1", CTI, oracle_answer("L1", CTI, STATUS), NOW - 60)
    with pytest.raises(IngestError, match="not issued by this site"):
        check(line, token_lock=None, issued=None)
    with pytest.raises(IngestError, match="is for lock L2"):
        check(line, token_lock="L2")
    other = statusfile.status_line("L1", CTI, oracle_answer("L1", CTI, STATUS, secret=bytes(32)), NOW)
    with pytest.raises(IngestError, match="forged or altered"):
        check(other)
    # The answer of lock L2 presented as L1's (the MAC binds the lock id).
    swapped = statusfile.status_line("L1", CTI, oracle_answer("L2", CTI, STATUS), NOW)
    with pytest.raises(IngestError, match="forged or altered"):
        check(swapped)
    with pytest.raises(IngestError, match="future"):
        check(statusfile.status_line("L1", CTI, oracle_answer("L1", CTI, STATUS), NOW + 3600))
    with pytest.raises(IngestError, match="before its key was issued"):
        check(statusfile.status_line("L1", CTI, oracle_answer("L1", CTI, STATUS), NOW - 7200))


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_any_change_to_an_answer_is_refused(data: st.DataObject) -> None:
    original = check(statusfile.status_line("L1", CTI, oracle_answer("L1", CTI, STATUS), NOW - 60))
    answer = bytearray(oracle_answer("L1", CTI, STATUS))
    i = data.draw(st.integers(0, len(answer) - 1))
    answer[i] ^= data.draw(st.integers(1, 255))
    line = statusfile.status_line("L1", CTI, bytes(answer), NOW - 60)
    try:
        got = check(line)
    except IngestError:
        return
    # Taken only if it says exactly what the lock said: a byte that changes
    # the encoding and not the content (CBOR `false` for the map key 0, which
    # a Python dict takes as the same key) is the lock's answer still.
    assert (got.outcome, got.lock_time, got.status, got.mac) == (
        original.outcome, original.lock_time, original.status, original.mac)
    assert status_of(got) == status_of(original)


def status_of(a: statusfile.CheckedAnswer) -> statusfile.StatusFields:
    return statusfile.status_fields(a.status, a.seen)


@settings(max_examples=200, deadline=None)
@given(st.binary(min_size=16, max_size=16))  # the issuer makes 16-byte ids
def test_another_token_id_is_refused(cti: bytes) -> None:
    if cti == CTI:
        return
    line = statusfile.status_line("L1", cti, oracle_answer("L1", CTI, STATUS), NOW - 60)
    with pytest.raises(IngestError, match="forged or altered"):
        check(line)


JSONISH = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=20),
                       lambda c: st.lists(c, max_size=4)
                       | st.dictionaries(st.text(max_size=8), c, max_size=5), max_leaves=12)


@settings(max_examples=400, deadline=None)
@given(st.one_of(
    st.text(max_size=300),
    JSONISH.map(json.dumps),
    st.fixed_dictionaries({"v": st.sampled_from([1, 2, "1", None]), "lock": JSONISH | st.text(),
                           "cti": st.text() | JSONISH, "answer": st.text() | JSONISH,
                           "seen": JSONISH}).map(json.dumps)))
def test_bad_lines_raise_only_ingest_error(text: str) -> None:
    try:
        check(text)
    except IngestError as exc:
        assert "\n" not in str(exc) and len(str(exc)) < 200
    else:
        pytest.fail("a line that is no genuine answer was taken")


# --- the number of queries -------------------------------------------------------------

def count_queries(tmp: Path, n: int) -> tuple[int, dict[str, object]]:
    now = int(time.time())
    reg = fleetbench.make_registry(tmp / f"site{n}", n, now, events_per_lock=2)
    statements: list[str] = []
    reg.db.set_trace_callback(statements.append)
    try:
        out = fleet.fleet_status(reg, now)
    finally:
        reg.db.set_trace_callback(None)
        reg.close()
    return len(statements), out


def test_the_query_count_does_not_grow_with_the_fleet(tmp_path: Path) -> None:
    small, out_small = count_queries(tmp_path, 40)
    large, out_large = count_queries(tmp_path, 800)
    assert small == large <= 10, (small, large)
    # Both fleets are flagged for the same kinds of problem: the rules ran.
    found = {p["kind"] for lk in out_large["locks"] for p in lk["problems"]}  # type: ignore[attr-defined]
    assert {"block-missing", "silent", "log-fill"} <= found
    assert out_large["staff"] and out_large["staff"][0]["staff"] == "S0"  # type: ignore[index]


# --- "this key expired at 23:00" -------------------------------------------------------

def test_an_expired_key_says_when_it_expired(tmp_path: Path) -> None:
    from datetime import datetime

    from tools import device, issuer
    dev = device.Device.init(tmp_path / "phone")
    now = int(time.time())
    end = now + 600
    g = issuer.issue_token(SITE_SECRET, "L1", iss="Kommun", sub="S1", start=now - 3600,
                           end=end, iat=now - 3600)
    (tmp_path / "a.grant").write_bytes(device.seal_grant(
        dev.public, device.grant_content("S1", "Kommun", now - 3600, end, [g])))
    dev.load_grant(tmp_path / "a.grant", "246813",
                   kdf={"alg": "argon2id", "time_cost": 1, "memory_cost": 8, "parallelism": 1})
    assert dev.grant_for("L1", "246813", now=now).cti == g.cti
    hhmm = datetime.fromtimestamp(end).astimezone().strftime("%H:%M")
    with pytest.raises(device.DeviceError, match=f"your key for lock L1 expired at .*{hhmm}"):
        dev.grant_for("L1", "246813", now=end + 1)
    with pytest.raises(device.DeviceError, match="no unexpired key for lock L2"):
        dev.grant_for("L2", "246813", now=now)


# --- ingest through the service layer --------------------------------------------------

@pytest.fixture(scope="module")
def ingest_site(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    from tools.site import Site
    site = Site.init(tmp_path_factory.mktemp("ingest") / "site", "Kommun", actor="t")
    reg = site.registry
    site.add_staff("t", "S1", "Anna", provider="Kommunen")
    site.add_client("t", "C1", "Astrid", providers=["Kommunen"])
    reg.add_lock("L1", "apartment", "hmac", ["C1"], NOW - DAY)
    reg.add_lock("L2", "apartment", "hmac", ["C1"], NOW - DAY)
    with reg.tx():
        reg.db.execute("INSERT INTO tokens (cti, staff_id, lock_id, start, end, issued_at, "
                       "scope, alarm) VALUES (?, 'S1', 'L1', ?, ?, ?, 'open', 0)",
                       (CTI, NOW - 3600, NOW + 3600, NOW - 3600))
    yield site
    site.close()


def genuine(site: object, seen: int = NOW - 60) -> str:
    secret = site.registry.site_secret()  # type: ignore[attr-defined]
    return statusfile.status_line("L1", CTI, oracle_answer("L1", CTI, STATUS, secret=secret), seen)


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_ingest_keeps_nothing_of_a_bad_line(ingest_site, data: st.DataObject) -> None:  # type: ignore[no-untyped-def]
    obj = json.loads(genuine(ingest_site))
    field = data.draw(st.sampled_from(["lock", "cti", "answer", "seen", "v"]))
    value = data.draw(st.sampled_from(["L2", "L3", "", "ff" * 16, obj["answer"][:-2] + "aa",
                                       NOW + 10 ** 6, 2, None, []]))
    bad = dict(obj, **{field: value})
    if bad == obj:
        return
    dump = list(ingest_site.registry.db.iterdump())
    result = ingest_site.ingest_statuses("t", "x", [json.dumps(bad), "", "junk"], now=NOW)
    assert result.taken == [] and result.older == [] and [n for n, _ in result.refused] == [1, 3]
    assert list(ingest_site.registry.db.iterdump()) == dump


def test_ingest_takes_a_genuine_line_once_and_keeps_the_newest(ingest_site) -> None:  # type: ignore[no-untyped-def]
    lines = [genuine(ingest_site, NOW - 60), genuine(ingest_site, NOW - 600)]
    result = ingest_site.ingest_statuses("t", "x", lines, now=NOW)
    assert result.taken == [1, 2] and result.locks == {"L1"}
    row = ingest_site.registry.lock("L1")
    assert row.last_seen == NOW - 60 and row.status_source == "key"
    assert row.clock_offset == 36060 and row.firmware == "0.1.0" and row.revocation_version == 3
    again = ingest_site.ingest_statuses("t", "x", lines, now=NOW)
    assert again.taken == [] and again.older == [1, 2]
