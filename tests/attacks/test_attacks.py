"""The attack suite (issue "Proof under attack"): each class of attack against
a running simulated lock through its real endpoints, on CPython and under
MicroPython (the `target` fixture, tests/attacks/conftest.py). Every case
checks, through `Target.attack`: refused, logged with its reason (or counted
where the log budget applies), nothing else changed, a valid key still opens.

Denial of service (held, idle, reconnecting peers) is tests/e2e/test_e2e_availability.py;
the hardware attacks (forced door, jams, power cuts mid-operation, RTC running
backwards) are tests/e2e/test_e2e_hardware.py; both run on both interpreters too.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import threading
import time
from typing import Any

import cbor2
import pytest
from conftest import LOCK, Target

from protocol import events, frames, keys, reasons, timeupdate
from protocol import messages as msg
from protocol import token as tok
from simlock import Installer, open_with
from tools import issuer
from tools.client import ClientError, access, read_hello
from tools.transport import TransportError

R = reasons


def lock_secret(t: Target) -> bytes:
    return keys.lock_secret(t.site.secret, LOCK)


def mac0(t: Target, payload: bytes, protected: Any = None, unprotected: Any = None,
         secret: bytes | None = None) -> bytes:
    """A COSE_Mac0 token with a right MAC (the attacker here holds the key: the
    claims checks are what is attacked) over whatever structure is given."""
    prot = cbor2.dumps({1: 5}) if protected is None else protected
    key = keys.token_mac_key(secret or lock_secret(t))
    tag = hmac.new(key, cbor2.dumps(["MAC0", prot, b"", payload]), hashlib.sha256).digest()
    return cbor2.dumps(cbor2.CBORTag(17, [prot, unprotected or {}, payload, tag]))


def claims(t: Target, **change: Any) -> tuple[bytes, bytes]:
    """(payload, cti) of a token for this lock, now, with `change`d claims."""
    now = int(time.time())
    c = {"iss": t.site.name, "sub": "staff-x", "aud": LOCK, "exp": now + 3600,
         "nbf": now - 600, "iat": now - 900, "cti": os.urandom(16), "scope": "open"}
    c.update(change)
    return tok.encode_claims(c["iss"], c["sub"], c["aud"], c["exp"], c["nbf"], c["iat"],
                             c["cti"], c["scope"]), c["cti"]


def grant_of(t: Target, token: bytes, cti: bytes) -> issuer.Grant:
    return issuer.Grant(LOCK, token, keys.pop_key(lock_secret(t), cti), cti, 0, 0, "open")


def present(t: Target, grant: issuer.Grant, **kw: Any) -> Any:
    with t.sim.ble_link() as link:
        return access(link, grant, **kw)


# --- replay -------------------------------------------------------------------------
def test_replay_of_a_captured_exchange(target: Target) -> None:
    grant = target.valid("staff-replayed")
    with target.sim.ble_link() as link:
        hello = read_hello(link)
        proof = msg.open_proof(grant.pop_key, hello.nonce, LOCK, "open", grant.token)
        captured = msg.encode(msg.OPEN, {1: hello.nonce, 2: grant.token, 3: "open", 4: proof})
        link.send(captured)
        assert msg.decode(link.recv(10))[1][2] == R.ALLOW
    target.opens += 1
    with target.attack(R.REPLAY):
        with target.sim.ble_link() as link:  # the same bytes, on a new connection
            read_hello(link)
            link.send(captured)
            mtype, f = msg.decode(link.recv(10))
            assert mtype == msg.ERROR and f[1] == R.REPLAY


def test_a_proof_after_the_challenge_window(target: Target) -> None:
    grant = target.valid("staff-slow")
    target.sim.control({"cmd": "timings", "set": {"challenge_ttl_ms": 300}})
    try:
        with target.attack(R.CHALLENGE_EXPIRED):
            with target.sim.ble_link() as link:
                hello = read_hello(link)
                time.sleep(0.6)  # the nonce has expired
                out = access(link, grant, hello=hello)
                assert not out.opened and out.reason == R.CHALLENGE_EXPIRED
    finally:
        target.sim.control({"cmd": "timings", "set": {"challenge_ttl_ms": 15000}})


def test_two_keys_racing_on_one_challenge(target: Target) -> None:
    a, b = target.valid("staff-a"), target.valid("staff-b")
    with target.attack(R.REPLAY):
        with target.sim.ble_link() as link:
            hello = read_hello(link)
            for g in (a, b):  # both answer the same nonce, back to back
                proof = msg.open_proof(g.pop_key, hello.nonce, LOCK, "open", g.token)
                link.send(msg.encode(msg.OPEN, {1: hello.nonce, 2: g.token, 3: "open",
                                                4: proof}))
            first = msg.decode(link.recv(10))
            assert first[0] == msg.RESULT and first[1][2] == R.ALLOW
            second = msg.decode(link.recv(10))
            while second[0] == msg.HELLO:
                second = msg.decode(link.recv(10))
            assert second[0] == msg.ERROR and second[1][1] == R.REPLAY
    target.opens += 1


def test_a_relay_changing_a_log_reads_range(target: Target) -> None:
    """The range a key asks for is under its proof: a relay that rewrites it
    makes the proof fail."""
    from protocol import keyside
    reader = target.valid("staff-reader", scope="open log")
    with target.attack(R.BAD_PROOF):
        with target.sim.ble_link() as link:
            hello = read_hello(link)
            request = keyside.open_request(reader.token, reader.pop_key, LOCK, hello.nonce,
                                           "log", log_from=1 << 20)
            fields = msg.decode(request)[1]
            fields[msg.OPEN_ARGS] = {msg.LOG_FROM: 1}  # the relay asks for everything
            link.send(msg.encode(msg.OPEN, fields))
            mtype, f = msg.decode(link.recv(10))
            assert mtype == msg.ERROR and f[msg.ERROR_REASON] == R.BAD_PROOF


# --- tokens refused by the decision -----------------------------------------------------
@pytest.mark.parametrize("case,reason", [
    ("expired", R.EXPIRED), ("not-yet-valid", R.NOT_YET_VALID), ("scope", R.SCOPE),
    ("lifetime", R.LIFETIME_TOO_LONG), ("iat-future", R.NOT_YET_VALID),
    ("wrong-issuer", R.WRONG_ISSUER),
])
def test_tokens_the_decision_refuses(target: Target, case: str, reason: int) -> None:
    now = int(time.time())
    change: dict[str, Any] = {
        "expired": {"nbf": now - 7200, "exp": now - 3600, "iat": now - 7300},
        "not-yet-valid": {"nbf": now + 3600, "exp": now + 7200},
        "scope": {"scope": "log"},
        "lifetime": {"nbf": now - 600, "exp": now + 25 * 3600},
        "iat-future": {"iat": now + 3600, "nbf": now - 600, "exp": now + 7200},
        "wrong-issuer": {"iss": "another-site"},
    }[case]
    payload, cti = claims(target, **change)
    with target.attack(reason):
        out = present(target, grant_of(target, mac0(target, payload), cti))
        assert not out.opened and out.reason == reason and out.authenticated


def test_a_token_of_another_lock_and_of_another_site(target: Target) -> None:
    other = target.site.grant("lock-elsewhere", "staff-x")
    with target.attack(R.WRONG_LOCK):
        out = present(target, issuer.Grant(LOCK, other.token, other.pop_key, other.cti,
                                           other.start, other.end, other.scope))
        assert not out.opened and out.reason == R.WRONG_LOCK
    from simlock import Site
    foreign = Site("attack-site").grant(LOCK, "staff-x")  # same name, another secret
    with target.attack(R.BAD_SIGNATURE, R.WRONG_LOCK):
        out = present(target, foreign)
        assert not out.opened and out.reason in (R.BAD_SIGNATURE, R.WRONG_LOCK)


# --- forged and malformed tokens -----------------------------------------------------
def _forge(target: Target, case: str) -> bytes:
    payload, _ = claims(target)
    good = mac0(target, payload)
    tagged = cbor2.loads(good)
    prot, unprot, body, tag = tagged.value
    if case == "tampered-claims":
        forged, _ = claims(target, aud=[LOCK, "lock-2"], exp=int(time.time()) + 20 * 3600)
        return cbor2.dumps(cbor2.CBORTag(17, [prot, unprot, forged, tag]))
    if case == "truncated-mac":
        return cbor2.dumps(cbor2.CBORTag(17, [prot, unprot, body, tag[:16]]))
    if case == "zeroed-mac":
        return cbor2.dumps(cbor2.CBORTag(17, [prot, unprot, body, bytes(32)]))
    if case == "flipped-mac":
        return cbor2.dumps(cbor2.CBORTag(17, [prot, unprot, body, bytes([tag[0] ^ 1]) + tag[1:]]))
    if case == "sign1-at-hmac-lock":
        return cbor2.dumps(cbor2.CBORTag(18, [cbor2.dumps({1: -8}), {}, body, bytes(64)]))
    if case == "alg-unprotected":
        return mac0(target, body, protected=cbor2.dumps({}), unprotected={1: 5})
    if case == "alg-none":
        return mac0(target, body, protected=cbor2.dumps({1: 0}))
    if case == "unknown-crit":
        return mac0(target, body, protected=cbor2.dumps({1: 5, 2: [99], 99: 1}))
    if case == "duplicate-claims":
        raw = cbor2.loads(body)
        items = b"".join(cbor2.dumps(k) + cbor2.dumps(v) for k, v in raw.items())
        dup = bytes([0xA0 + len(raw) + 1]) + items + cbor2.dumps(3) + cbor2.dumps("lock-2")
        return mac0(target, dup)
    if case == "non-canonical":
        # exp (claim 4) in an 8-byte integer where 4 bytes would do.
        assert b"\x04\x1a" in body
        return mac0(target, body.replace(b"\x04\x1a", b"\x04\x1b\x00\x00\x00\x00", 1))
    raise AssertionError(case)


@pytest.mark.parametrize("case,accept", [
    ("tampered-claims", (R.BAD_SIGNATURE, R.WRONG_LOCK)),
    ("truncated-mac", (R.BAD_SIGNATURE, R.MALFORMED)),
    ("zeroed-mac", (R.BAD_SIGNATURE,)),
    ("flipped-mac", (R.BAD_SIGNATURE,)),
    ("sign1-at-hmac-lock", (R.UNSUPPORTED,)),
    ("alg-unprotected", (R.MALFORMED,)),
    ("alg-none", (R.UNSUPPORTED,)),
    ("unknown-crit", (R.MALFORMED,)),
    ("duplicate-claims", (R.MALFORMED,)),
    ("non-canonical", (R.MALFORMED, R.BAD_SIGNATURE)),
])
def test_forged_and_malformed_tokens(target: Target, case: str, accept: tuple[int, ...]
                                     ) -> None:
    token = _forge(target, case)
    cti = os.urandom(16)
    with target.attack(*accept):
        out = present(target, grant_of(target, token, cti))
        assert not out.opened and out.reason in accept, (case, out.reason_name)


# --- revocation ------------------------------------------------------------------------
def test_revocation_rollback_replay_and_another_locks_list(target: Target) -> None:
    now = int(time.time())
    secret = target.site.secret
    blocked = target.valid("staff-blocked")
    v = 100 + int(time.monotonic() * 1000) % 1000  # above anything earlier cases sent
    update = issuer.revocation_update(secret, LOCK, v, now, 0, {"staff-blocked": now + 1}, {})
    carrier = target.valid("staff-carrier", end=now + 120)
    carrier.updates = [update]
    assert open_with(target.sim, carrier).opened
    target.opens += 1
    with target.attack(R.REVOKED):
        assert present(target, blocked).reason == R.REVOKED
    older = issuer.revocation_update(secret, LOCK, v - 1, now, 0, {}, {})
    with target.sim.serial_link() as link:  # a rollback, and a replay, change nothing
        inst = Installer(link)
        assert inst.admin(target.site.admin_key(LOCK), "sync", {2: older})[2] == R.ROLLBACK
        assert inst.admin(target.site.admin_key(LOCK), "sync", {2: update})[2] == R.ROLLBACK
    elsewhere = issuer.revocation_update(secret, "lock-elsewhere", v + 1, now, 0, {}, {})
    with target.attack(R.WRONG_LOCK, R.BAD_SIGNATURE, code=events.REVOCATION_REJECTED):
        with target.sim.serial_link() as link:
            got = Installer(link).admin(target.site.admin_key(LOCK), "sync", {2: elsewhere})[2]
            assert got in (R.WRONG_LOCK, R.BAD_SIGNATURE)
    # The block holds though the key that carried it has expired.
    with target.attack(R.REVOKED):
        assert present(target, blocked).reason == R.REVOKED


# --- clock -----------------------------------------------------------------------------
def test_time_updates_out_of_range_and_from_another_lock(target: Target) -> None:
    # Made with the real update key (the issuer refuses such times; the lock must too).
    far = timeupdate.encode(LOCK, (1 << 31) + 1000 + 1577836800,
                            keys.update_key(lock_secret(target)))
    elsewhere = issuer.time_update(target.site.secret, "lock-elsewhere", int(time.time()))
    for update, accept in ((far, (R.TIME_OUT_OF_RANGE,)),
                           (elsewhere, (R.WRONG_LOCK, R.BAD_SIGNATURE))):
        carrier = target.valid("staff-time")
        carrier.updates = [update]
        with target.attack(*accept, code=events.TIME_REJECTED):
            out = present(target, carrier)
            assert out.opened  # a bad update is skipped, never refusing the key it came with
        target.opens += 1
    with target.sim.ble_link() as link:
        assert abs(read_hello(link).time - time.time()) < 120  # the clock did not move


# --- commissioning and admin -------------------------------------------------------------
def test_recommissioning_and_admin_with_an_open_key(target: Target) -> None:
    with target.attack(R.ALREADY_COMMISSIONED):
        with target.sim.serial_link() as link, pytest.raises(ClientError, match="already"):
            Installer(link).commission(lock_id="lock-hijack", secret=bytes(32), suite="hmac",
                                       issuer="hijacker", time=int(time.time()))
    with target.attack(R.BAD_PROOF):
        with target.sim.serial_link() as link, pytest.raises(ClientError):
            Installer(link).admin(bytes(32), "decommission")  # no admin key: refused
    with target.attack(R.UNSUPPORTED, R.SCOPE):
        out = present(target, target.valid("staff-admin"), action="admin")
        assert not out.opened and out.reason in (R.UNSUPPORTED, R.SCOPE)


# --- brute force of the proof of possession ------------------------------------------------
def test_guessing_a_proof_burns_the_token_and_delays_nobody(target: Target) -> None:
    stolen = target.valid("staff-stolen")
    stolen.pop_key = os.urandom(32)  # the token leaked; its key did not
    with target.attack(R.TOKEN_BURNED):
        for i in range(6):
            stolen.pop_key = os.urandom(32)
            out = present(target, stolen)
            assert not out.opened
            assert out.reason == (R.BAD_PROOF if i < 5 else R.TOKEN_BURNED), i
        t0 = time.monotonic()
        assert open_with(target.sim, target.valid("staff-patrol")).opened
        assert time.monotonic() - t0 < 2.0  # another key is never delayed
    target.opens += 1


# --- a central that never reads ---------------------------------------------------------------
def test_a_central_that_never_reads_its_notifications(target: Target) -> None:
    import socket
    host, port = target.sim.ble.rsplit(":", 1)
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.bind(("127.0.0.66", 0))
    sock.connect((host, int(port)))
    sock.settimeout(0.5)
    ask = frames.encode(msg.encode(msg.GET_HELLO, {})) * 200
    t0 = time.monotonic()
    with target.attack():
        try:
            while time.monotonic() - t0 < 6:
                sock.sendall(ask)  # HELLOs pile up unread
        except OSError:
            pass  # dropped
        finally:
            sock.close()
        took = time.monotonic() - t0
        assert took < 6, "a central that never read held the connection"
    print(f"\na central that never read its notifications was dropped after {took:.1f} s")


# --- the log ---------------------------------------------------------------------------------
def test_a_flood_of_refusals_keeps_the_history(target: Target) -> None:
    target.sim.control({"cmd": "timings", "set": {"peer_budget_ms": 3_600_000}})
    try:
        before = target.pull()
        forged = grant_of(target, _forge(target, "zeroed-mac"), os.urandom(16))
        for _ in range(60):  # refusals before a token verifies, as fast as the link goes
            assert present(target, forged).reason == R.BAD_SIGNATURE
        after = target.pull()
    finally:
        target.sim.control({"cmd": "timings", "set": {"peer_budget_ms": 1}})
    new = [e for e in map(events.decode, after) if e.seq > events.decode(before[-1]).seq
           and e.code != events.LOG_READ]
    assert len(new) <= 2, [(e.name, e.detail) for e in new]  # written once, then counted
    assert set(before) <= set(after)
    with target.attack():  # the counts come out as one summary with the next record
        pass
    summary = [e for e in map(events.decode, target.pull()) if e.code == events.PEER_SUMMARY]
    assert summary and events.summary_counts(summary[-1].key_id)[1] >= 50


def test_a_pulled_log_edited_deleted_reordered_or_replayed_is_named(target: Target) -> None:
    records = target.pull()
    decoded = [events.decode(r) for r in records]
    start = max(i for i, e in enumerate(decoded) if e.code == events.COMMISSIONED)
    chain = records[start:]
    key = issuer.log_key_for(target.site.secret, LOCK)
    assert events.verify_chain(chain, key, anchor_mac=events.GENESIS_MAC).ok
    edited = list(chain)
    r = bytearray(edited[3])
    r[12] ^= 0xFF  # another key id
    import zlib
    r[28:32] = (zlib.crc32(bytes(r[:28])) & 0xFFFFFFFF).to_bytes(4, "big")
    edited[3] = bytes(r)
    rep = events.verify_chain(edited, key, anchor_mac=events.GENESIS_MAC)
    assert not rep.ok and 3 in rep.altered
    deleted = chain[:3] + chain[4:]
    rep = events.verify_chain(deleted, key, anchor_mac=events.GENESIS_MAC)
    seq3 = events.decode(chain[3]).seq
    assert not rep.ok and (seq3, seq3) in rep.missing
    swapped = chain[:3] + [chain[4], chain[3]] + chain[5:]
    rep = events.verify_chain(swapped, key, anchor_mac=events.GENESIS_MAC)
    assert not rep.ok and rep.reordered
    replayed = chain[:5] + [chain[2]] + chain[5:]
    rep = events.verify_chain(replayed, key, anchor_mac=events.GENESIS_MAC)
    assert not rep.ok and rep.reordered


# --- frames ----------------------------------------------------------------------------------
GARBAGE = [
    bytes(range(1, 256)) * 8 + b"\x00",  # oversized: longer than any frame
    frames.encode(msg.encode(msg.GET_HELLO, {}))[:-3] + b"\x00",  # truncated
    bytes(frames.encode(msg.encode(msg.GET_HELLO, {}))[:-2]) + b"\x01\x00",  # bad CRC
    frames.encode(b"\x81" * 200 + b"\x00"),  # deep nesting
    frames.encode(b"\xa1\x00\x5b" + b"\xff" * 8),  # a byte string announcing 2^64 - 1 bytes
    frames.encode(b"\x9b\x00\x00\x00\x01\x00\x00\x00\x00"),  # an array of 2^32 items
]


def test_frames_on_serial_and_ble_at_the_same_time(target: Target) -> None:
    stop = threading.Event()
    errors: list[BaseException] = []

    def serial_garbage() -> None:
        try:
            with target.sim.serial_link() as link:
                while not stop.is_set():
                    for g in GARBAGE:
                        link.raw_write(g)
                    link.raw_write(b"\xde\xad\x00" + frames.encode(msg.encode(msg.GET_HELLO, {})))
                    # Well-framed garbage is answered ERROR; the valid frame between
                    # the garbage still gets its HELLO.
                    answers = [msg.decode(link.recv(5))[0]]
                    while answers[-1] != msg.HELLO and len(answers) <= len(GARBAGE):
                        answers.append(msg.decode(link.recv(5))[0])
                    assert answers[-1] == msg.HELLO and set(answers) <= {msg.HELLO, msg.ERROR}
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    with target.attack():
        t = threading.Thread(target=serial_garbage)
        t.start()
        try:
            for g in GARBAGE:
                with target.sim.ble_link() as link:
                    read_hello(link)
                    link.raw_write(g)
                    try:
                        link.recv(2)
                    except TransportError:
                        pass
        finally:
            stop.set()
            t.join(20)
    assert not errors, errors
    state = target.sim.control({"cmd": "state"})
    assert len(state["boots"]) == 1  # no reset


# --- commissioning without presence ------------------------------------------------------------
def test_commissioning_without_the_button_is_refused(target: Target, tmp_path_factory) -> None:
    """A lock of its own here (the shared one presses its button itself): nobody at
    the door, no identity; it is then commissioned normally and opens."""
    from simlock import SimulatedLock, Site
    args = ["--mpy"] if target.name == "micropython" else []
    sim = SimulatedLock(tmp_path_factory.mktemp("nobutton"), args, auto_button=False).start()
    try:
        sim.control({"cmd": "timings", "set": {"button_window_ms": 800}})
        site = Site("attack-site")
        with pytest.raises(ClientError) as exc:
            site.commission(sim, "lock-unattended")
        assert getattr(exc.value, "reason", None) == R.BUTTON_REQUIRED
        with sim.ble_link() as link:
            assert read_hello(link).lock_id == ""  # still nobody's
        sim.control({"cmd": "button", "action": "hold"})
        site.commission(sim, "lock-unattended")
        sim.control({"cmd": "button", "action": "release"})
        assert open_with(sim, site.grant("lock-unattended", "staff-x")).opened
    finally:
        sim.stop()
