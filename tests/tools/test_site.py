"""The service layer (tools/site.py): nested transactions, acts committed with
their audit record or not at all, an owner-only site, and a block that covers
every key issued in its own second.

Each fault case dumps the registry (a separate connection, so it sees only
what was committed) before and after, and asserts they are the same.
"""

from __future__ import annotations

import os
import sqlite3
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from protocol import clock, events, keys, reasons, revocation
from protocol import token as tok
from tools import device as device_mod
from tools import issuer, lockctl
from tools.registry import DB_NAME, Registry, RegistryError
from tools.site import InvalidInput, Site

LOCKCTL = str(Path(sys.executable).parent / "lockctl")


def dump(site_dir: Path) -> list[str]:
    db = sqlite3.connect(site_dir / DB_NAME)
    try:
        return list(db.iterdump())
    finally:
        db.close()


def clients(site_dir: Path) -> list[str]:
    db = sqlite3.connect(site_dir / DB_NAME)
    try:
        return [r[0] for r in db.execute("SELECT client_id FROM clients ORDER BY client_id")]
    finally:
        db.close()


def audit_rows(site_dir: Path) -> list[tuple[str, str, str]]:
    db = sqlite3.connect(site_dir / DB_NAME)
    try:
        return list(db.execute("SELECT actor, action, detail FROM audit ORDER BY id"))
    finally:
        db.close()


class Boom(Exception):
    pass


@pytest.fixture
def site(tmp_path: Path) -> Site:
    s = Site.init(tmp_path / "site", "Testkommun", actor="admin")
    s.add_staff("admin", "S1", "Anna Berg", "Kommunen")
    return s


# --- transactions -------------------------------------------------------------------

def test_inner_block_that_raises_rolls_back_only_itself(site: Site) -> None:
    d = site.registry.dir
    with site.tx():
        site.registry.add_client("C1", "Astrid", None)
        with pytest.raises(Boom):
            with site.tx():
                site.registry.add_client("C2", "Karl", None)
                raise Boom
        site.registry.add_client("C3", "Sara", None)
    assert clients(d) == ["C1", "C3"]


def test_outer_failure_rolls_back_inner_blocks_that_succeeded(site: Site) -> None:
    d = site.registry.dir
    before = dump(d)
    with pytest.raises(Boom):
        with site.tx():
            site.registry.add_client("C1", "Astrid", None)
            with site.tx():
                site.registry.add_client("C2", "Karl", None)
            with site.tx():
                pass
            # The old tx() committed here, at the end of the inner block.
            assert clients(d) == []
            raise Boom
    assert dump(d) == before
    assert clients(d) == []


def test_an_act_inside_a_failed_outer_act_leaves_no_trace(site: Site) -> None:
    d = site.registry.dir
    before = dump(d)
    with pytest.raises(Boom):
        with site.act("admin", "batch", {}):
            site.add_client("admin", "C1", "Astrid")
            site.add_staff("admin", "S2", "Bilal", "Kommunen")
            raise Boom
    assert dump(d) == before


def test_sqlite_undoing_the_whole_transaction_is_not_papered_over(site: Site) -> None:
    # What SQLite does itself on a full disk or an I/O error inside an inner
    # block: the whole transaction is gone. The outer block must not go on in
    # autocommit mode, nor report success.
    d = site.registry.dir
    before = dump(d)
    with pytest.raises(RegistryError, match="nothing was changed"):
        with site.tx():
            site.registry.add_client("C1", "Astrid", None)
            try:
                with site.tx():
                    site.registry.db.execute("ROLLBACK")
                    raise Boom
            except Boom:
                pass
            site.registry.add_client("C2", "Karl", None)
    assert dump(d) == before
    site.add_client("admin", "C3", "Sara")  # and the registry works on
    assert clients(d) == ["C3"]


def test_a_busy_registry_is_a_clear_error(site: Site) -> None:
    other = sqlite3.connect(site.registry.dir / DB_NAME, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        site.registry.db.execute("PRAGMA busy_timeout = 50")
        with pytest.raises(RegistryError, match="busy"):
            site.add_client("admin", "C1", "Astrid")
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert clients(site.registry.dir) == []


# --- acts and their audit record ---------------------------------------------------------

def fail_audit_inserts(reg: Registry) -> None:
    # A fault at the database, between the act's writes and its audit record.
    reg.db.execute("CREATE TEMP TRIGGER audit_fails BEFORE INSERT ON audit "
                   "BEGIN SELECT RAISE(ABORT, 'injected audit fault'); END")


CTI = bytes(range(16))

NOW = int(time.time())
RECORD = events.encode(3, clock.from_unix(NOW), events.OPENED, 0, 0, bytes(8), bytes(8),
                       bytes(32))
PHONE = X25519PrivateKey.from_private_bytes(bytes(range(32))).public_key().public_bytes_raw()

ACTS = {
    "client add": lambda s: s.add_client("admin", "C1", "Astrid", "Storgatan 4"),
    "staff add": lambda s: s.add_staff("admin", "S2", "Bilal", "Omsorg AB"),
    "revoke --staff": lambda s: s.revoke_staff("admin", "S1"),
    "revoke --token": lambda s: s.revoke_token("admin", CTI),
    "device enrol": lambda s: s.enrol_device("admin", "S1", PHONE,
                                             device_mod.fingerprint(PHONE)),
    # What the lock answered, recorded (lockctl did the talking):
    "commission": lambda s: s.record_commissioning("admin", "L2", "apartment", "hmac", ["C0"],
                                                   NOW, {1: 2, 2: {}, 3: 1, 4: 0}),
    "log pull": lambda s: s.record_pull("admin", "L1", 1, 5, [RECORD], {}, NOW),
    "lock sync": lambda s: s.record_sync("admin", "L1", {1: 3}, NOW, False),
    "lock decommission": lambda s: s.record_decommission("admin", "L1", 1, 4, [RECORD], {},
                                                         NOW),
}


@pytest.fixture
def token_site(site: Site) -> Site:
    now = int(time.time())
    site.registry.add_token(CTI, "S1", "L1", now, now + 3600, "open", False)
    site.add_client("admin", "C0", "Karl", None)
    site.registry.add_lock("L1", "apartment", "hmac", ["C0"], now, first_seq=1)
    return site


@pytest.mark.parametrize("act", list(ACTS))
def test_an_act_whose_audit_record_fails_changes_nothing(token_site: Site, act: str) -> None:
    site = token_site
    d = site.registry.dir
    before = dump(d)
    fail_audit_inserts(site.registry)
    with pytest.raises(sqlite3.Error, match="injected audit fault"):
        ACTS[act](site)
    assert dump(d) == before


@pytest.mark.parametrize("act", list(ACTS))
def test_an_act_and_its_audit_record_are_kept_together(token_site: Site, act: str) -> None:
    d = token_site.registry.dir
    before = audit_rows(d)
    ACTS[act](token_site)
    added = audit_rows(d)[len(before):]
    assert [(a, b) for a, b, _ in added] == [("admin", act.split(" --")[0])]


def test_a_refused_act_changes_nothing(site: Site) -> None:
    d = site.registry.dir
    site.add_client("admin", "C1", "Astrid")
    before = dump(d)
    for act, words in ((lambda: site.add_client("admin", "C1", "Again"), "already exists"),
                       (lambda: site.add_staff("admin", "bad id!", "X"), "invalid staff id"),
                       (lambda: site.revoke_staff("admin", "S9"), "no staff member S9"),
                       (lambda: site.revoke_token("admin", b"\x01" * 16), "no such token")):
        with pytest.raises(RegistryError, match=words):
            act()
    assert dump(d) == before


def test_site_init_that_fails_leaves_no_site(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*_: object) -> None:
        raise Boom
    monkeypatch.setattr(Registry, "audit", boom)
    with pytest.raises(Boom):
        Site.init(tmp_path / "site", "s", actor="admin")
    assert not (tmp_path / "site").exists()
    # A directory that was there before stays, empty as it was.
    (tmp_path / "mine").mkdir()
    with pytest.raises(Boom):
        Site.init(tmp_path / "mine", "s", actor="admin")
    assert list((tmp_path / "mine").iterdir()) == []
    monkeypatch.undo()
    Site.init(tmp_path / "mine", "s", actor="admin")  # the retry works
    with pytest.raises(InvalidInput, match="unknown time zone"):
        Site.init(tmp_path / "third", "s", "Mars/Olympus", actor="admin")
    assert not (tmp_path / "third").exists()


# --- an owner-only site ------------------------------------------------------------------

def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_site_is_owner_only_whatever_the_umask(tmp_path: Path) -> None:
    old = os.umask(0)  # the worst a caller can have
    try:
        s = Site.init(tmp_path / "site", "s", actor="admin")
        d = s.registry.dir
        assert mode(d) == 0o700
        for name in (DB_NAME, "site-secret.key", "site-signing.key"):
            assert mode(d / name) == 0o600, name
        # The rollback journal exists only inside a write transaction.
        with s.tx():
            s.registry.add_client("C1", "Astrid", None)
            assert mode(d / (DB_NAME + "-journal")) == 0o600
        # And in WAL mode, the log and its index.
        s.registry.db.execute("PRAGMA journal_mode = WAL")
        s.add_client("admin", "C2", "Karl")
        for side in ("-wal", "-shm"):
            assert mode(d / (DB_NAME + side)) == 0o600, side
    finally:
        os.umask(old)


def run_lockctl(site_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, LOCKCTL_SITE=str(site_dir), LOCKCTL_ACTOR="admin")
    return subprocess.run([LOCKCTL, *args], env=env, capture_output=True, text=True,
                          timeout=60)


@pytest.mark.parametrize("target,bad,fix", [
    ("", 0o755, "chmod 700 {p}"),
    ("", 0o710, "chmod 700 {p}"),
    (DB_NAME, 0o644, "chmod 600 {p}"),
    (DB_NAME, 0o660, "chmod 600 {p}"),
    (DB_NAME + "-journal", 0o644, "chmod 600 {p}"),
], ids=["dir-755", "dir-710", "db-644", "db-660", "journal-644"])
def test_lockctl_refuses_a_site_others_can_read(site: Site, target: str, bad: int,
                                                fix: str) -> None:
    d = site.registry.dir
    site.close()
    path = d / target if target else d
    if target.endswith("-journal"):
        path.write_bytes(b"")  # a leftover journal (an empty one holds nothing to replay)
    path.chmod(bad)
    before = dump(d)
    p = run_lockctl(d, "client", "add", "C1", "--name", "Astrid")
    assert p.returncode == 1, p.stderr
    assert p.stderr.strip().splitlines()[-1].endswith(fix.format(p=path)), p.stderr
    assert "open to other users" in p.stderr
    assert dump(d) == before
    path.chmod(0o700 if path.is_dir() else 0o600)
    assert run_lockctl(d, "client", "add", "C1", "--name", "Astrid").returncode == 0


# --- a block and a key in the same second ------------------------------------------------

def test_a_block_covers_every_key_issued_in_its_own_second(
        site: Site, monkeypatch: pytest.MonkeyPatch) -> None:
    t0 = 1_796_000_000
    monkeypatch.setattr(time, "time", lambda: t0 + 0.25)
    slept: list[float] = []
    monkeypatch.setattr(time, "sleep", slept.append)
    reg = site.registry
    secret = reg.site_secret()

    def key(iat: int) -> issuer.Grant:
        return issuer.issue_token(secret, "L1", iss=reg.name, sub="S1", start=t0 - 600,
                                  end=t0 + 3600, iat=iat)

    before = key(t0)  # issued earlier in the block's second
    # The registry knows it (a block travels to the locks its staff held keys for).
    reg.add_token(before.cti, "S1", "L1", before.start, before.end, "open", False)
    block = site.revoke_staff("admin", "S1")
    same_second = key(t0)  # issued later in that second: refused too (the safe failure)
    next_second = key(t0 + 1)
    assert block.until == t0 + 1
    assert slept == [pytest.approx(0.75)]  # lockctl returns once keys are valid again

    # The lock's side: the update as a key carries it, applied and decided
    # by the protocol code the lock runs.
    now = clock.from_unix(t0)
    lock_secret = keys.lock_secret(secret, "L1")
    update = revocation.decode_update(lockctl.revocation_blob(reg, "L1", t0), "L1",
                                      keys.update_key(lock_secret))
    state = revocation.apply(revocation.RevocationList(), update, now)

    def decide(g: issuer.Grant) -> int:
        claims = tok.verify(g.token, tok.SUITE_HMAC, keys.token_mac_key(lock_secret))
        return int(tok.decide(claims, "L1", now, True, state, tok.SCOPE_OPEN))

    assert decide(before) == reasons.REVOKED
    assert decide(same_second) == reasons.REVOKED
    assert decide(next_second) == reasons.ALLOW


def test_the_site_name_is_the_issuer_a_lock_can_hold(tmp_path: Path) -> None:
    """The site name is the `iss` of every token and COMMISSION field 6 (at
    most 64 characters at the lock): a longer one would make every
    commissioning answer MALFORMED, so it is refused here, leaving no site."""
    with pytest.raises(InvalidInput, match="64 characters"):
        Site.init(tmp_path / "long", "x" * 65, actor="admin")
    assert not (tmp_path / "long" / DB_NAME).exists()
    name = "å" * 64  # characters, not bytes: the lock counts decoded text
    s = Site.init(tmp_path / "ok", name, actor="admin")
    assert s.registry.name == name
    g = issuer.issue_token(s.registry.site_secret(), "NT-1", iss=s.registry.name, sub="S1",
                           start=int(time.time()), end=int(time.time()) + 3600)
    secret = keys.lock_secret(s.registry.site_secret(), "NT-1")
    claims = tok.verify(g.token, tok.SUITE_HMAC, keys.token_mac_key(secret))
    assert tok.decide(claims, "NT-1", clock.from_unix(int(time.time())), True, None, "open",
                      issuer=name) == reasons.ALLOW


def test_an_id_ending_in_a_newline_is_refused_by_the_service_layer(site: Site) -> None:
    # The same rule as lockctl's arguments (one ID_RE): "$" would have let it in.
    before = dump(site.registry.dir)
    with pytest.raises(InvalidInput):
        site.add_client("admin", "C9\n", "Astrid")
    assert dump(site.registry.dir) == before
