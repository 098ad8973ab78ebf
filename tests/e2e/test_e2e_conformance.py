"""The conformance vectors (docs/PROTOCOL.md section 15, tests/vectors/
conformance_*.json) run against the real firmware in a simulated lock, as an
app's test suite would run them against a board: every token and request
over the BLE socket, every update through the installer's port.

The requests are built and the answers checked with cbor2, hmac and the
vectors' own framing (tests/make_conformance.py), not with protocol/: what
the lock answers is compared with what the document says. The same tests run
under MicroPython from tests/e2e/test_mpy_e2e_conformance.py.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from pathlib import Path
from typing import Any

import cbor2
import pytest
from make_conformance import det, frame
from test_e2e_lock import every_peer_record_written

from protocol import events
from simlock import SimulatedLock
from tools import issuer
from tools.client import Hello, Installer, access
from tools.transport import TransportError

VECTORS = Path(__file__).resolve().parents[1] / "vectors"
PARTS = {name: json.loads((VECTORS / f"conformance_{name}.json").read_text())
         for name in ("messages", "tokens_cose", "tokens_claims", "requests", "updates")}
SETUP = PARTS["messages"]["setup"]
LOCK = SETUP["lock_id"]
KEYS = {k: bytes.fromhex(v) for k, v in SETUP["keys"].items()}
TOKENS = PARTS["tokens_cose"]["tokens"] + PARTS["tokens_claims"]["tokens"]
REQUESTS = PARTS["requests"]["requests"]
UPDATES = PARTS["updates"]["updates"]
HELLO, RESULT, ERROR, GET_HELLO = 1, 3, 4, 5


@pytest.fixture(scope="module")
def sim_args() -> list[str]:
    """Extra `python -m simulator` arguments: none here (CPython); the same
    tests run under MicroPython from tests/e2e/test_mpy_e2e_conformance.py."""
    return []


@pytest.fixture(scope="module")
def lock(tmp_path_factory: pytest.TempPathFactory, sim_args: list[str]):
    """The vectors' lock: their secret, issuer and suite, its clock at their
    time, holding their revocation list."""
    sim = SimulatedLock(tmp_path_factory.mktemp("conformance"), extra_args=sim_args).start()
    try:
        with sim.serial_link() as link:
            Installer(link).commission(lock_id=LOCK, secret=KEYS["lock_secret"],
                                       suite=SETUP["suite"], issuer=SETUP["issuer"],
                                       time=SETUP["lock_time"])
            data = Installer(link).admin(KEYS["admin_key"], "sync",
                                         {2: bytes.fromhex(SETUP["revocation_update"])})
            assert data[2] == 0
        yield sim
    finally:
        sim.stop()


def log_grant() -> issuer.Grant:
    """A valid log-scope grant at the vectors' time: its success resets the
    rate limiter between vectors (each refusal counts as a failure) and it
    moves no bolt."""
    t = SETUP["lock_time"]
    return issuer.issue_token(bytes.fromhex(SETUP["site_secret"]), LOCK, iss=SETUP["issuer"],
                              sub="staff-conformance", start=t - 600, end=t + 3600,
                              scope="log", iat=t - 600)


def settle(sim: SimulatedLock) -> None:
    with sim.ble_link() as link:
        out = access(link, log_grant(), action="log", log_from=1 << 30)
    assert out.opened, out.reason_name


def recv(link: Any, timeout: float = 10.0) -> dict:
    return cbor2.loads(link.recv(timeout))


def send(link: Any, value: Any) -> None:
    link.raw_write(frame(value if isinstance(value, bytes) else det(value)))


def proof(pop: bytes, nonce: bytes, action: str, token: bytes) -> bytes:
    return hmac.new(pop, det(["open", nonce, LOCK, action, hashlib.sha256(token).digest()]),
                    hashlib.sha256).digest()


def check_result_mac(answer: dict, pop: bytes) -> None:
    body = ["result", answer[1], LOCK, answer[2], answer[3], answer[4], answer[5]]
    if answer.get(7):
        body.append(answer[7])
    assert hmac.new(pop, det(body), hashlib.sha256).digest() == answer[6]


@pytest.mark.parametrize("vec", TOKENS, ids=[t["name"] for t in TOKENS])
def test_token_vector(lock: SimulatedLock, vec: dict) -> None:
    token = bytes.fromhex(vec["token"])
    pop = bytes.fromhex(vec["pop_key"])
    with lock.ble_link() as link:
        hello = recv(link)
        assert hello[0] == HELLO and hello[1] == LOCK
        nonce = hello[2]
        send(link, {0: 2, 1: nonce, 2: token, 3: vec["action"],
                    4: proof(pop, nonce, vec["action"], token)})
        answer = recv(link, 20)
    if vec["answer"] == "RESULT":
        assert answer[0] == RESULT and answer[1] == nonce, answer
        assert answer[2] == vec["reason"], (vec["why"], answer[2])
        check_result_mac(answer, pop)
    else:
        assert answer[0] == ERROR, answer
        assert answer[1] == vec["reason"], (vec["why"], answer[1])
        assert answer.get(2) == nonce
    settle(lock)


def build_open(how: dict, live: bytes) -> dict:
    nonce = live if how["nonce"] == "live" else bytes.fromhex(how["nonce"])
    token = bytes.fromhex(how["token"])
    fields: dict[int, Any] = {0: 2, 1: nonce, 2: token, 3: how["action"]}
    if how["proof"] == "valid":
        fields[4] = proof(bytes.fromhex(SETUP["pop_key_of_example_cti"]), nonce, how["action"],
                          token)
    elif how["proof"] is not None:
        fields[4] = bytes.fromhex(how["proof"])
    return fields


@pytest.mark.parametrize("vec", REQUESTS, ids=[r["name"] for r in REQUESTS])
def test_request_vector(lock: SimulatedLock, vec: dict) -> None:
    """Each refusal with its reason; over BLE the connection then ends, no HELLO
    following (section 3.1), and the lock serves the next connection."""
    with lock.ble_link() as link:
        hello = recv(link)
        live = hello[2]
        send(link, bytes.fromhex(vec["payload"]) if "payload" in vec
             else build_open(vec["open"], live))
        answer = recv(link)
        assert answer[0] == ERROR and answer[1] == vec["reason"], (vec["why"], answer)
        assert not vec["hello_follows"]
        with pytest.raises(TransportError):
            recv(link, timeout=3)  # the refusal ended the connection
    with lock.ble_link() as link:  # the next central is served
        hello = recv(link)
        out = access(link, log_grant(), action="log", log_from=1 << 30,
                     hello=read_hello_from(hello[2], hello))
        assert out.opened, out.reason_name


def read_hello_from(nonce: bytes, hello: dict) -> Hello:
    """A HELLO as tools.client takes it, with the nonce to answer."""
    return Hello(hello[1], nonce, hello[3], hello[4], hello[5], hello[6], hello.get(8))


def test_only_the_last_hello_is_live(lock: SimulatedLock) -> None:
    """Every GET_HELLO is answered, each HELLO replaces the nonce before it; an
    earlier nonce is a replay, and over BLE a refusal ends the connection."""
    grant = log_grant()
    for stale_index in (0, 1):
        with lock.ble_link() as link:
            first = recv(link)[2]
            send(link, {0: GET_HELLO})
            send(link, {0: GET_HELLO})
            second, third = recv(link), recv(link)
            assert second[0] == third[0] == HELLO and len({first, second[2], third[2]}) == 3
            stale = (first, second[2])[stale_index]
            out = access(link, grant, action="log", log_from=1 << 30,
                         hello=read_hello_from(stale, third))
            assert not out.opened and out.reason == 11  # replay
            with pytest.raises(TransportError):
                recv(link, timeout=3)  # the refusal ended the connection
    with lock.ble_link() as link:
        first = recv(link)[2]
        send(link, {0: GET_HELLO})
        second = recv(link)
        out = access(link, grant, action="log", log_from=1 << 30,
                     hello=read_hello_from(second[2], second))
        assert out.opened, out.reason_name
        assert recv(link)[0] == HELLO  # granted: ready for the next request
    settle(lock)


REVOCATION_UPDATES = [u for u in UPDATES if u["kind"] == "revocation"
                      and u["name"] != "revocation-state"]
TIME_UPDATES = [u for u in UPDATES if u["kind"] == "time" and u["reason"] != 0]


@pytest.mark.parametrize("vec", REVOCATION_UPDATES, ids=[u["name"] for u in REVOCATION_UPDATES])
def test_revocation_update_vector(lock: SimulatedLock, vec: dict) -> None:
    with lock.serial_link() as link:
        data = Installer(link).admin(KEYS["admin_key"], "sync",
                                     {2: bytes.fromhex(vec["update"])})
    assert data[2] == vec["reason"], (vec["why"], data[2])


@pytest.mark.parametrize("vec", TIME_UPDATES, ids=[u["name"] for u in TIME_UPDATES])
def test_time_update_vector(lock: SimulatedLock, vec: dict) -> None:
    """Carried by a key: skipped (the key's own request goes on), logged with
    its reason."""
    with every_peer_record_written(lock):
        # Twice: the first peer record after the window changes may be the
        # summary of what earlier vectors caused; the second is itself.
        for _ in range(2):
            with lock.ble_link() as link:
                out = access(link, log_grant(), action="log", log_from=1 << 30,
                             updates=[bytes.fromhex(vec["update"])])
            assert out.opened, out.reason_name
            time.sleep(0.05)
    with lock.serial_link() as link:
        records = Installer(link).pull_log(KEYS["admin_key"])
    rejected = [events.decode(r) for r in records if r[8] == events.TIME_REJECTED]
    assert rejected and rejected[-1].detail == vec["reason"], vec["why"]
