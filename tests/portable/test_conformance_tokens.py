# The conformance vectors of docs/PROTOCOL.md section 15 against protocol/:
# every token and update refusal with its reason code (see
# tests/portable/test_conformance.py for the messages; made by
# tests/make_conformance.py from the document alone, never by this code).
# Runs on CPython (pytest) and MicroPython (tests/mpy_runner.py).
import gc

import testvectors
from protocol import clock, cose, keys, reasons, revocation, timeupdate
from protocol import token as tok

u = testvectors.unhex


def _setup(doc):
    s = doc["setup"]
    return s, {k: u(v) for k, v in s["keys"].items()}


def _state(setup, update_key):
    state = revocation.RevocationList()
    update = revocation.decode_update(u(setup["revocation_update"]), setup["lock_id"],
                                      update_key)
    return revocation.apply(state, update, clock.from_unix(setup["lock_time"]))


def test_every_token_gets_its_reason():
    count = _tokens("conformance_tokens_cose")
    gc.collect()
    count += _tokens("conformance_tokens_claims")
    assert count >= 40


def _tokens(name):
    doc = testvectors.load(name)
    s, k = _setup(doc)
    lock, issuer = s["lock_id"], s["issuer"]
    state = _state(s, k["update_key"])
    now = clock.from_unix(s["lock_time"])
    names = []
    for t in doc["tokens"]:
        token_bytes = u(t["token"])
        try:
            claims = tok.verify(token_bytes, s["suite"], k["token_mac_key"])
        except tok.TokenError as exc:
            assert t["answer"] == "ERROR", t["name"]
            reason = exc.reason
            if reason == reasons.BAD_SIGNATURE and t["reason"] == reasons.WRONG_LOCK:
                # The lock names the audience's mismatch, from the unverified claims.
                assert lock not in tok.parse_claims(cose.decode(token_bytes).payload).aud
                reason = reasons.WRONG_LOCK
            assert reason == t["reason"], (t["name"], reason)
            names.append(t["name"])
            continue
        assert t["answer"] == "RESULT", t["name"]
        assert keys.pop_key(k["lock_secret"], claims.cti) == u(t["pop_key"]), t["name"]
        reason = tok.decide(claims, lock, now, True, state, t["action"], issuer)
        if reason == reasons.ALLOW and t["action"] not in (tok.SCOPE_OPEN, tok.SCOPE_LOG):
            reason = reasons.UNSUPPORTED  # a verified request for an action OPEN lacks
        assert reason == t["reason"], (t["name"], reason)
        names.append(t["name"])
    assert len(names) == len(doc["tokens"])
    return len(names)


def test_every_update_gets_its_reason():
    doc = testvectors.load("conformance_updates")
    s, k = _setup(doc)
    lock = s["lock_id"]
    now = clock.from_unix(s["lock_time"])
    state = _state(s, k["update_key"])
    for up in doc["updates"]:
        data = u(up["update"])
        if up["kind"] == "time":
            try:
                timeupdate.decode(data, lock, k["update_key"])
                reason = reasons.ALLOW
            except timeupdate.TimeUpdateError as exc:
                reason = exc.reason
        else:
            before = state if up["name"] != "revocation-state" else revocation.RevocationList()
            try:
                revocation.apply(before, revocation.decode_update(data, lock, k["update_key"]),
                                 now)
                reason = reasons.ALLOW
            except revocation.RevocationError as exc:
                reason = exc.reason
        assert reason == up["reason"], (up["name"], reason)
