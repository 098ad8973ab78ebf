"""Care operations (issue #14 sections 1-3) on the service layer: the issuer's
rule (providers, units and bookings, medicine cabinets, key boxes, alarm
keys), changes that take a right away at once, revocation entries per lock,
staff leaving and coming back, the registry's views and the audit filters.

Locks here are registry rows (as a commissioning leaves them); what a lock
makes of a token or an update is decided by the lock's own protocol code
(tools/site.py never decides that). test_care_e2e.py runs the same against
simulated locks through lockctl.
"""

from __future__ import annotations

import time
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocol import clock, keys, reasons, revocation
from protocol import token as tok
from tools import device as device_mod
from tools import views
from tools.lockctl.cli import UsageError, parse_bound
from tools.registry import RegistryError
from tools.site import InvalidInput, Site, revocation_blob

TZ = ZoneInfo("Europe/Stockholm")


def lock(site: Site, lock_id: str, door: str, clients: list[str],
         provider: str | None = None) -> None:
    site.record_commissioning("admin", lock_id, door, "hmac", clients, int(time.time()), {},
                              provider=provider)


def enrol(site: Site, staff_id: str, root: Path) -> str:
    dev = device_mod.Device.init(root / f"{staff_id}-phone")
    return site.enrol_device("admin", staff_id, dev.public, dev.fingerprint)


@pytest.fixture
def site(tmp_path: Path) -> Site:
    """Two providers (Kommunen for alarms), two units; Astrid (Norr, Kommunen)
    with an apartment door, a medicine cabinet and a key box, and Karl (Syd,
    Kommunen and Omsorg AB) sharing the laundry room with her."""
    s = Site.init(tmp_path / "site", "Testkommun", actor="admin")
    s.add_provider("admin", "Kommunen", alarms=True)
    s.add_provider("admin", "Omsorg AB")
    s.add_unit("admin", "Norr", "Kommunen")
    s.add_unit("admin", "Syd", "Kommunen")
    s.add_client("admin", "C1", "Astrid", unit="Norr", providers=["Kommunen"])
    s.add_client("admin", "C2", "Karl", unit="Syd", providers=["Kommunen", "Omsorg AB"])
    for sid, prov, unit, role in (("HC", "Kommunen", "Norr", "home-care"),
                                  ("RN", "Kommunen", None, "nurse"),
                                  ("OM", "Omsorg AB", None, "home-care"),
                                  ("NP", "Kommunen", None, "night-patrol"),
                                  ("OP", "Omsorg AB", None, "night-patrol")):
        s.add_staff("admin", sid, sid, prov, unit, role)
        enrol(s, sid, tmp_path)
    lock(s, "APT", "apartment", ["C1"])
    lock(s, "MED", "medicine-cabinet", ["C1"])
    lock(s, "BOX", "key-box", ["C1"], provider="Kommunen")
    lock(s, "LAU", "laundry-room", ["C1", "C2"])
    lock(s, "APT2", "apartment", ["C2"])
    return s


def doors(site: Site, staff_id: str, clients: list[str]) -> list[str]:
    now = int(time.time())
    _, grants, _ = site.issue_shift("admin", staff_id, clients, now - 60, now + 3600)
    return sorted(g.lock_id for g in grants)


def refusal(site: Site, staff_id: str, clients: list[str]) -> str:
    now = int(time.time())
    with pytest.raises(InvalidInput) as exc:
        site.issue_shift("admin", staff_id, clients, now - 60, now + 3600)
    return str(exc.value)


# --- the rule ----------------------------------------------------------------------------

def test_doors_follow_role_provider_and_kind(site: Site) -> None:
    # Home care: the apartment, the key box of its own provider, the laundry
    # room; not the medicine cabinet (nurses only by default).
    assert doors(site, "HC", ["C1"]) == ["APT", "BOX", "LAU"]
    assert doors(site, "RN", ["C1"]) == ["APT", "BOX", "LAU", "MED"]
    plan = site.shift_plan("HC", ["C1"], int(time.time()), int(time.time()) + 60,
                           int(time.time()))
    assert [(lk, "care plan" in why) for lk, why in plan.left_out] == [("MED", True)]
    # Omsorg AB: Karl chose it, Astrid did not.
    assert "C1 has not chosen Omsorg AB" in refusal(site, "OM", ["C1"])
    assert "only staff of a client's chosen providers" in refusal(site, "OM", ["C1", "C2"])
    # The laundry room serves both; Omsorg's key for Karl opens it (Karl's visit).
    assert doors(site, "OM", ["C2"]) == ["APT2", "LAU"]


def test_the_care_plan_decides_the_medicine_cabinet(site: Site) -> None:
    site.update_client("admin", "C1", medicine_roles=["nurse", "home-care"])
    assert "MED" in doors(site, "HC", ["C1"])
    site.update_client("admin", "C1", medicine_roles=["rehab"])
    assert "MED" not in doors(site, "RN", ["C1"])


def test_commissioning_door_kinds(site: Site) -> None:
    assert site.commission_problem("laundry-room", ["C1", "C2"]) is None
    for door, clients, provider, words, usage in (
            ("medicine-cabinet", ["C1", "C2"], None, "serves one client", True),
            ("garage", ["C1"], None, "unknown door kind", True),
            ("key-box", ["C1"], None, "give --provider", True),
            ("apartment", ["C1"], "Kommunen", "only for --door key-box", True),
            ("key-box", ["C1"], "Omsorg AB", "C1 has not chosen Omsorg AB", False),
            ("key-box", ["C1"], "Nope", "no active provider", False),
            ("apartment", ["C9"], None, "no client C9", False)):
        problem = site.commission_problem(door, clients, provider)
        assert problem is not None and words in problem and problem.usage is usage, door
    with pytest.raises(InvalidInput, match="serves one client"):
        site.record_commissioning("admin", "X", "apartment", "hmac", ["C1", "C2"], 0, {})


def test_a_key_box_only_for_its_provider(site: Site) -> None:
    site.update_client("admin", "C1", providers=["Kommunen", "Omsorg AB"])
    assert doors(site, "OM", ["C1"]) == ["APT", "LAU"]


def test_another_unit_needs_a_booking_for_the_whole_shift(site: Site) -> None:
    words = refusal(site, "HC", ["C2"])
    assert "needs a booking" in words and "lockctl booking add --staff HC --unit Syd" in words
    now = int(time.time())
    short = site.add_booking("admin", "HC", "Syd", now - 3600, now + 600)
    assert "needs a booking" in refusal(site, "HC", ["C2"])  # ends before the shift does
    site.cancel_booking("admin", short)
    booking = site.add_booking("admin", "HC", "Syd", now - 3600, now + 7200)
    assert doors(site, "HC", ["C2"]) == ["APT2", "LAU"]
    booked = {t["lock"]: t["booking"] for t in views.tokens(site.registry, staff_id="HC")}
    # Both keys are for Karl's visit (the laundry room too, though it serves
    # Astrid of HC's own unit as well): both under the booking.
    assert booked == {"APT2": booking, "LAU": booking}
    with pytest.raises(InvalidInput, match="works in Norr: no booking needed"):
        site.add_booking("admin", "HC", "Norr", now, now + 60)


def test_removed_and_deactivated_get_nothing(site: Site) -> None:
    site.remove_client("admin", "C2")
    assert "client C2 is removed" in refusal(site, "OM", ["C2"])
    site.remove_unit("admin", "Norr")
    assert "HC's unit Norr is removed" in refusal(site, "HC", ["C1"])
    assert "C1's unit Norr is removed" in refusal(site, "RN", ["C1"])
    site.remove_provider("admin", "Omsorg AB")
    assert "provider Omsorg AB is removed" in refusal(site, "OM", ["C1"])
    with pytest.raises(InvalidInput, match="removed"):
        site.add_client("admin", "C9", "X", providers=["Omsorg AB"])
    # Kept, not deleted: the history refers to them.
    assert [c["client"] for c in views.clients(site.registry, include_removed=True)] == [
        "C1", "C2"]
    assert [c["client"] for c in views.clients(site.registry)] == ["C1"]


# --- a change takes effect at once ---------------------------------------------------------

def blocked_ctis(site: Site) -> set[str]:
    return {r["value"] for r in site.registry.db.execute(
        "SELECT value FROM revocations WHERE kind = 'token'")}


def test_a_change_of_providers_blocks_exactly_the_keys_it_takes_away(site: Site) -> None:
    now = int(time.time())
    _, om, _ = site.issue_shift("admin", "OM", ["C2"], now - 60, now + 3600)
    _, hc, _ = site.issue_shift("admin", "RN", ["C2"], now - 60, now + 3600)
    blocked = site.update_client("admin", "C2", providers=["Kommunen"])
    assert sorted(blocked) == sorted(g.cti.hex() for g in om)
    assert blocked_ctis(site) == {g.cti.hex() for g in om}
    assert {t["state"] for t in views.tokens(site.registry, staff_id="RN")} == {"valid"}
    audit = views.audit(site.registry, staff_id=None)[-1]
    assert audit["action"] == "client update" and audit["detail"]["dropped"] == ["Omsorg AB"]
    assert sorted(audit["detail"]["blocked"]) == sorted(blocked)
    # Nothing left to block: the same change again blocks nothing more.
    assert site.update_client("admin", "C2", providers=["Kommunen"]) == []


def test_a_shared_door_stays_open_to_a_provider_another_client_still_chose(site: Site) -> None:
    now = int(time.time())
    site.update_client("admin", "C1", providers=["Kommunen", "Omsorg AB"])
    _, om, _ = site.issue_shift("admin", "OM", ["C1"], now - 60, now + 3600)
    assert sorted(g.lock_id for g in om) == ["APT", "LAU"]
    blocked = site.update_client("admin", "C1", providers=["Kommunen"])
    # Astrid's own door is taken away; the laundry room Karl shares stays
    # (Karl still chose Omsorg AB).
    assert blocked == [g.cti.hex() for g in om if g.lock_id == "APT"]


def test_a_care_plan_change_blocks_the_cabinet_key(site: Site) -> None:
    now = int(time.time())
    _, rn, _ = site.issue_shift("admin", "RN", ["C1"], now - 60, now + 3600)
    blocked = site.update_client("admin", "C1", medicine_roles=["rehab"])
    assert blocked == [g.cti.hex() for g in rn if g.lock_id == "MED"]


def test_a_refused_change_changes_nothing(site: Site) -> None:
    from test_site import dump
    before = dump(site.registry.dir)
    for act, words in ((lambda: site.update_client("admin", "C1", providers=["Nope"]),
                        "no provider 'Nope'"),
                       (lambda: site.update_client("admin", "C1", unit="Nope"), "no unit Nope"),
                       (lambda: site.update_client("admin", "C9", name="X"), "no client C9"),
                       (lambda: site.add_unit("admin", "Norr", "Kommunen"), "already exists"),
                       (lambda: site.add_unit("admin", "U3", "Nope"), "no provider"),
                       (lambda: site.add_staff("admin", "X1", "X", "Kommunen", "Nope"),
                        "no unit Nope"),
                       (lambda: site.add_staff("admin", "X1", "X", "Omsorg AB", "Norr"),
                        "belongs to Kommunen"),
                       (lambda: site.add_staff("admin", "X1", "X", None), "belongs to a provider"),
                       (lambda: site.add_staff("admin", "X1", "X", "Kommunen", role="boss"),
                        "unknown role"),
                       (lambda: site.add_provider("admin", "Kommunen"), "already exists"),
                       (lambda: site.add_provider("admin", "A, B"), "cannot hold a comma"),
                       (lambda: site.add_staff("admin", "X1", "X", "A,B"), "cannot hold a comma"),
                       (lambda: site.update_unit("admin", "Norr", provider="Omsorg AB"),
                        "staff of another provider"),
                       (lambda: site.activate_staff("admin", "HC"), "already active"),
                       (lambda: site.cancel_booking("admin", 99), "no booking 99"),
                       (lambda: site.add_booking("admin", "HC", "Syd", 10, 5), "must end after")):
        with pytest.raises(RegistryError, match=words):
            act()
    assert dump(site.registry.dir) == before


# --- revocation entries per lock -------------------------------------------------------------

def entries(site: Site, lock_id: str, now: int) -> revocation.RevocationList:
    blob = revocation_blob(site.registry, lock_id, now)
    assert blob is not None
    key = keys.update_key(keys.lock_secret(site.registry.site_secret(), lock_id))
    return revocation.decode_update(blob, lock_id, key)


def test_a_lock_receives_only_the_entries_of_its_own_keys(site: Site) -> None:
    now = int(time.time())
    _, om, _ = site.issue_shift("admin", "OM", ["C2"], now - 60, now + 3600)
    site.update_client("admin", "C2", providers=["Kommunen"])
    site.revoke_staff("admin", "HC")  # HC never held a key: no lock needs the entry
    later = int(time.time())
    for lock_id in ("APT", "MED", "BOX"):
        assert len(entries(site, lock_id, later)) == 0
    # The laundry room and Karl's door each carry their own token's entry, and
    # the lock's own code refuses that token (and nothing else is in its list).
    secret = site.registry.site_secret()
    for g in om:
        rl = entries(site, g.lock_id, later)
        assert len(rl) == 1
        state = revocation.apply(revocation.RevocationList(), rl, clock.from_unix(later))
        claims = tok.verify(g.token, tok.SUITE_HMAC,
                            keys.token_mac_key(keys.lock_secret(secret, g.lock_id)))
        assert tok.decide(claims, g.lock_id, clock.from_unix(later), True, state,
                          tok.SCOPE_OPEN) == reasons.REVOKED


def test_entries_of_keys_older_than_a_day_stay_home(site: Site) -> None:
    now = int(time.time())
    site.issue_shift("admin", "RN", ["C1"], now - 60, now + 3600)
    site.revoke_staff("admin", "RN")
    assert len(entries(site, "APT", int(time.time()))) == 1
    # A day and more later the key has expired everywhere: nothing to carry.
    assert len(entries(site, "APT", now + 3600 + tok.MAX_LIFETIME + tok.SKEW + 1)) == 0


def test_a_new_role_or_unit_takes_effect_at_once(site: Site) -> None:
    now = int(time.time())
    _, rn, _ = site.issue_shift("admin", "RN", ["C1"], now - 60, now + 3600)
    # The nurse becomes a home-care worker: the cabinet key is blocked, the rest stay.
    blocked = site.update_staff("admin", "RN", role="home-care")
    assert blocked == [g.cti.hex() for g in rn if g.lock_id == "MED"]
    # Into unit Syd: Astrid (Norr) is another unit's client now, with no booking.
    # Her door and key box are blocked; the laundry room she shares with Karl (Syd)
    # stays (a shared door stays open while the staff member may serve one of its
    # clients: a token does not say whose visit it was for).
    blocked = site.update_staff("admin", "RN", unit="Syd")
    assert sorted(blocked) == sorted(g.cti.hex() for g in rn if g.lock_id in ("APT", "BOX"))
    assert "needs a booking" in refusal(site, "RN", ["C1"])
    with pytest.raises(InvalidInput, match="belongs to Kommunen, not Omsorg AB"):
        site.update_staff("admin", "OM", unit="Norr")
    with pytest.raises(InvalidInput, match="nothing to change"):
        site.update_staff("admin", "OM")


# --- staff leaving and coming back -----------------------------------------------------------

def test_deactivate_blocks_at_once_and_activate_restores_a_suspended_device(
        site: Site, tmp_path: Path) -> None:
    now = int(time.time())
    _, grants, fp = site.issue_shift("admin", "HC", ["C1"], now - 60, now + 3600)
    rev, suspended = site.deactivate_staff("admin", "HC")
    assert suspended == [fp]
    _, staff_cut, _ = site.registry.revocation_state(int(time.time()))
    assert staff_cut["HC"] == rev.until > now
    assert {t["state"] for t in views.tokens(site.registry, staff_id="HC")} == {"blocked"}
    assert "HC is deactivated" in refusal(site, "HC", ["C1"])
    with pytest.raises(InvalidInput, match="already deactivated"):
        site.deactivate_staff("admin", "HC")
    assert site.activate_staff("admin", "HC") == fp
    assert site.registry.active_device("HC")["fingerprint"] == fp
    assert doors(site, "HC", ["C1"]) == ["APT", "BOX", "LAU"]
    # A revoked device never comes back.
    site.deactivate_staff("admin", "HC")
    site.revoke_device("admin", fp[:12])
    assert site.activate_staff("admin", "HC") is None
    assert "no active device" in refusal(site, "HC", ["C1"])
    actions = [a["action"] for a in views.audit(site.registry, staff_id="HC")]
    assert actions.count("staff deactivate") == 2 and actions.count("staff activate") == 2


# --- alarm keys ----------------------------------------------------------------------------

def test_an_alarm_key_for_the_patrol(site: Site) -> None:
    key = site.issue_alarm("operator", "C1", "NP", "fall alarm", "TL-1", minutes=20)
    assert sorted(g.lock_id for g in key.grants) == ["APT", "BOX", "LAU"]
    assert key.left_out == ["MED"] and key.end - key.start == 20 * 60
    secret = site.registry.site_secret()
    for g in key.grants:  # marked as alarm access in the token the lock reads
        claims = tok.verify(g.token, tok.SUITE_HMAC,
                            keys.token_mac_key(keys.lock_secret(secret, g.lock_id)))
        assert claims.alarm is True and claims.sub == "NP"
    rec = views.audit(site.registry, actor="operator")[-1]
    assert rec["action"] == "alarm issue"
    assert rec["detail"]["reason"] == "fall alarm" and rec["detail"]["alarm_id"] == "TL-1"
    assert [a["alarm_id"] for a in views.alarm_keys(site.registry, lock_id="APT")] == ["TL-1"]
    with pytest.raises(InvalidInput, match="one key per alarm id"):
        site.issue_alarm("operator", "C2", "NP", "again", "TL-1")


@pytest.mark.parametrize("staff,minutes,words", [
    ("HC", 60, "only night-patrol staff"),
    ("OP", 60, "Omsorg AB is not named for alarms"),
    ("NP", 61, "1 to 60"),
    ("NP", 0, "1 to 60"),
])
def test_who_gets_no_alarm_key(site: Site, staff: str, minutes: int, words: str) -> None:
    with pytest.raises(InvalidInput, match=words):
        site.issue_alarm("operator", "C1", staff, "fall", "TL-9", minutes=minutes)
    assert views.alarm_keys(site.registry) == []


def test_naming_a_provider_for_alarms_no_more_blocks_its_alarm_keys(site: Site) -> None:
    key = site.issue_alarm("operator", "C1", "NP", "fall", "TL-2")
    blocked = site.update_provider("admin", "Kommunen", alarms=False)
    assert sorted(blocked) == sorted(g.cti.hex() for g in key.grants)
    with pytest.raises(InvalidInput, match="not named for alarms"):
        site.issue_alarm("operator", "C1", "NP", "fall", "TL-3")


def test_shift_issue_no_longer_makes_alarm_keys(site: Site) -> None:
    now = int(time.time())
    with pytest.raises(InvalidInput, match="alarm issue"):
        site.issue_shift("admin", "NP", ["C1"], now, now + 60, alarm=True)


# --- views and the audit filters ---------------------------------------------------------------

def test_views_are_lists_of_plain_objects(site: Site) -> None:
    reg = site.registry
    assert [p["provider"] for p in views.providers(reg)] == ["Kommunen", "Omsorg AB"]
    assert views.provider(reg, "Kommunen")["alarms"] is True
    assert views.unit(reg, "Norr") == {"unit": "Norr", "provider": "Kommunen", "name": None,
                                       "active": True, "staff": ["HC"], "clients": ["C1"]}
    assert views.client(reg, reg.client("C1"))["locks"] == ["APT", "BOX", "LAU", "MED"]
    assert views.lock(reg, "BOX")["provider"] == "Kommunen"
    assert {s["staff"]: s["role"] for s in views.staff(reg)}["NP"] == "night-patrol"
    now = int(time.time())
    _, grants, _ = site.issue_shift("admin", "RN", ["C1"], now - 60, now + 3600)
    one = views.token_by_id(reg, grants[0].cti.hex()[:10])
    assert one["token"] == grants[0].cti.hex() and one["state"] == "valid"
    for bad in ("zz", "1234", "0" * 33):
        with pytest.raises(RegistryError):
            views.token_by_id(reg, bad)


def test_audit_filters(site: Site) -> None:
    reg = site.registry
    now = int(time.time())
    site.issue_shift("admin", "RN", ["C1"], now - 60, now + 3600)
    everything = views.audit(reg)
    assert everything[0]["action"] == "site init"
    assert all(r["actor"] == "admin" for r in everything)
    assert views.audit(reg, actor="nobody") == []
    # The shift names its tokens: it concerns each of their locks.
    on_med = [r["action"] for r in views.audit(reg, lock_id="MED")]
    assert on_med == ["commission", "shift issue"]
    assert {r["action"] for r in views.audit(reg, staff_id="RN")} == {
        "staff add", "device enrol", "shift issue"}
    assert views.audit(reg, start=now + 3600) == []
    assert views.audit(reg, end=everything[0]["at"]) == []


# --- dates and times for --from/--to -------------------------------------------------------------

def test_a_to_date_includes_that_day() -> None:
    start = parse_bound("2026-03-29", TZ, "from")
    end = parse_bound("2026-03-29", TZ, "to", end=True)
    # The spring-forward day has 23 hours in Stockholm.
    assert start == 1774738800 and end == 1774821600 and end - start == 23 * 3600
    assert parse_bound("2026-03-29T12:00", TZ, "to", end=True) == 1774778400
    assert parse_bound(None, TZ, "to") is None
    with pytest.raises(UsageError, match="--to"):
        parse_bound("2026-02-30", TZ, "to", end=True)


@given(st.dates(min_value=date(1971, 1, 2), max_value=date(9998, 12, 30)))
def test_a_date_bound_is_local_midnight(day: date) -> None:
    start = parse_bound(day.isoformat(), TZ, "from")
    end = parse_bound(day.isoformat(), TZ, "to", end=True)
    assert start is not None and end is not None
    first = datetime.fromtimestamp(start, TZ)
    after = datetime.fromtimestamp(end, TZ)
    assert (first.date(), first.hour, first.minute) == (day, 0, 0)
    assert (after.date().toordinal() - day.toordinal(), after.hour) == (1, 0)
    assert 23 * 3600 <= end - start <= 25 * 3600


@given(st.text(max_size=30))
def test_bad_bounds_are_usage_errors(text: str) -> None:
    try:
        parse_bound(text, TZ, "from")
    except UsageError as exc:
        assert str(exc).startswith("--from")
