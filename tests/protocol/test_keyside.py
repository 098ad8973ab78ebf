"""protocol/keyside.py, the key's side of the exchange without I/O, against the
conformance vectors (tests/make_conformance.py builds them from the document
with cbor2 and hmac, not with protocol/): the OPEN it builds for the example
HELLO is the example OPEN byte for byte, and it reads the example RESULT as
opened and authenticated; an altered answer is not authenticated."""

from __future__ import annotations

import json
from pathlib import Path

import make_conformance as mc
import pytest

from protocol import keyside

VECTORS = json.loads((Path(__file__).resolve().parents[1] / "vectors" / "conformance_messages.json")
                     .read_text())
BY_NAME = {m["name"]: bytes.fromhex(m["payload"]) for m in VECTORS["messages"]}


def test_hello_fields() -> None:
    lock, nonce, when, rev, battery, trusted, suite, status = keyside.hello_fields(
        BY_NAME["HELLO"])
    assert (lock, nonce, when, suite) == (mc.LOCK, mc.NONCE, mc.NOW, "hmac")
    assert trusted is True and battery == 0 and status == {4: 1200, 5: 4096}


def test_the_open_it_builds_is_the_documented_one() -> None:
    built = keyside.open_request(mc.token(), mc.pop_key(mc.CTI), mc.LOCK, mc.NONCE, "open")
    assert built == BY_NAME["OPEN"]


def test_it_reads_the_documented_result() -> None:
    outcome, ok, seq, when, status, records = keyside.read_answer(
        BY_NAME["RESULT"], mc.NONCE, mc.pop_key(mc.CTI), mc.LOCK)
    assert (outcome, ok, seq, when, records) == (0, True, 1201, mc.NOW + 3, [])
    assert status[8] == 1201


def test_an_altered_or_foreign_answer_is_not_authenticated() -> None:
    result = bytearray(BY_NAME["RESULT"])
    result[result.index(bytes.fromhex("041904b1")) + 3] ^= 1  # another seq
    assert keyside.read_answer(bytes(result), mc.NONCE, mc.pop_key(mc.CTI), mc.LOCK)[1] is False
    assert keyside.read_answer(BY_NAME["RESULT"], mc.NONCE, bytes(32), mc.LOCK)[1] is False
    with pytest.raises(keyside.AnswerError):
        keyside.read_answer(BY_NAME["RESULT"], bytes(16), mc.pop_key(mc.CTI), mc.LOCK)
    outcome, ok, *_ = keyside.read_answer(BY_NAME["ERROR"], mc.NONCE, mc.pop_key(mc.CTI),
                                          mc.LOCK)
    assert outcome == 11 and ok is False  # an ERROR is never authenticated


def test_a_log_reads_range_is_covered_by_the_proof() -> None:
    """The proof over an OPEN with OPEN_ARGS has the args map as a sixth element
    (computed here with cbor2 and hmac, as docs/PROTOCOL.md section 5 says)."""
    import hashlib
    import hmac

    import cbor2

    from protocol import messages as msg
    token, pop = mc.token(), mc.pop_key(mc.CTI)
    payload = keyside.open_request(token, pop, mc.LOCK, mc.NONCE, "log", log_from=5,
                                   log_bound=9)
    fields = cbor2.loads(payload)
    assert fields[msg.OPEN_ARGS] == {1: 5, 2: 9}
    body = cbor2.dumps(["open", mc.NONCE, mc.LOCK, "log", hashlib.sha256(token).digest(),
                        {1: 5, 2: 9}], canonical=True)
    assert fields[msg.OPEN_PROOF] == hmac.new(pop, body, hashlib.sha256).digest()
