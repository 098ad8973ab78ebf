# The conformance vectors of docs/PROTOCOL.md section 15 against protocol/:
# the keys, every message byte for byte, and the requests that do not decode.
# The vectors are made by tests/make_conformance.py from the document alone
# (cbor2, hmac, cryptography, zlib), never by this code; the firmware itself
# answers them in tests/e2e/test_e2e_conformance.py. Tokens and updates:
# tests/portable/test_conformance_tokens.py (two modules: one heap each).
# Runs on CPython (pytest) and MicroPython (tests/mpy_runner.py).
import testvectors
from protocol import cbor, clock, frames, keys, reasons
from protocol import messages as msg

u = testvectors.unhex


def _setup(doc):
    s = doc["setup"]
    return s, {k: u(v) for k, v in s["keys"].items()}


def test_keys_derive_as_documented():
    doc = testvectors.load("conformance_messages")
    s, k = _setup(doc)
    secret = keys.lock_secret(u(s["site_secret"]), s["lock_id"])
    assert secret == k["lock_secret"]
    assert keys.token_mac_key(secret) == k["token_mac_key"]
    assert keys.update_key(secret) == k["update_key"]
    assert keys.admin_key(secret) == k["admin_key"]
    assert keys.log_key(secret) == k["log_key"]
    assert tuple(s["time_bound"]) == (clock.UNIX_AT_LOCK_EPOCH, clock.UNIX_MAX)


def test_every_message_byte_for_byte():
    doc = testvectors.load("conformance_messages")
    s, k = _setup(doc)
    lock = s["lock_id"]
    by_name = {}
    for m in doc["messages"]:
        payload = u(m["payload"])
        assert frames.encode(payload) == u(m["frame"]), m["name"]
        assert frames.Decoder().feed(u(m["frame"])) == [payload], m["name"]
        mtype, fields = msg.decode(payload)
        # What the lock sends it encodes exactly so; what it receives it reads.
        assert msg.encode(mtype, fields) == payload, m["name"]
        by_name[m["name"]] = (m, fields)
    m, f = by_name["OPEN"]
    token_bytes = f[msg.OPEN_TOKEN]
    cti = cbor.loads(cbor.loads(token_bytes).value[2])[7]  # the claims' cti
    pop = keys.pop_key(k["lock_secret"], cti)
    assert pop == u(s["pop_key_of_example_cti"])
    nonce = f[msg.OPEN_NONCE]
    assert msg.open_proof_input(nonce, lock, "open", token_bytes) == u(m["proof_input"])
    assert msg.open_proof(pop, nonce, lock, "open", token_bytes) == f[msg.OPEN_PROOF]
    m, f = by_name["RESULT"]
    assert msg.result_mac(pop, f[1], lock, f[2], f[3], f[4], f[5]) == f[msg.RESULT_MAC]
    m, f = by_name["ADMIN"]
    assert msg.admin_mac(k["admin_key"], f[1], lock, f[2], f[3]) == f[msg.ADMIN_MAC]
    m, f = by_name["ADMIN_RESULT"]
    assert msg.admin_result_mac(k["admin_key"], f[1], lock, f[2], f[3]) == f[4]
    m, f = by_name["COMMISSION"]
    assert f[3] == k["lock_secret"] and f[6] == s["issuer"]


def test_requests_that_do_not_decode():
    doc = testvectors.load("conformance_requests")
    for r in doc["requests"]:
        if "payload" not in r:
            continue  # built from a live nonce: tests/e2e/test_e2e_conformance.py
        try:
            msg.decode(u(r["payload"]))
        except msg.MessageError as exc:
            assert exc.reason == r["reason"], r["name"]
            continue
        # Decodes: refused by the link rule (COMMISSION over BLE), in the firmware.
        assert r["reason"] == reasons.UNSUPPORTED, r["name"]
