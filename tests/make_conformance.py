"""Writes tests/vectors/conformance_{messages,tokens_cose,tokens_claims,requests,updates}.json:
the conformance vectors of docs/PROTOCOL.md section 15, for an app's own test
suite.

Made WITHOUT the project's code, from the document alone: cbor2 (encoding;
`canonical=True` where the document asks for deterministic encoding), hmac
and hashlib (HMAC-SHA256, SHA-256), cryptography (HKDF-SHA256, Ed25519),
zlib (CRC-32) and a COBS encoder of its own below. Everything is fixed (keys,
nonces, times; Ed25519 signatures are deterministic), so running it again
gives the same file; tests/test_conformance.py checks that it does.

    .venv/bin/python tests/make_conformance.py

What the files hold (bytes as hex; each file has `source` and `setup`):
- `setup`: the lock every vector is for (site secret, lock id, issuer name,
  suite, its clock, the revocation update it holds) and the derived keys;
- `messages`: one example of every message, payload and frame, in the order
  of the unlock exchange and the installer's operations;
- `tokens` (tokens_cose: structure, suite, MAC; tokens_claims: claims and the
  decision): a token per rule, each with the PoP key of its cti and what the
  lock answers to an OPEN carrying it (`answer` ERROR or RESULT, `reason`);
- `requests`: OPENs and other messages that are refused before any token
  (their payload, or how to make it from the live nonce), with the answer;
- `updates`: time and revocation updates with the reason the lock gives.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import zlib
from pathlib import Path
from typing import Any

import cbor2
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

VECTORS = Path(__file__).resolve().parent / "vectors"
# One file per part, each with the setup, so each is small enough for a
# MicroPython test run (tests/portable/test_conformance.py) to read whole.
PARTS = ("messages", "tokens_cose", "tokens_claims", "requests", "updates")

SITE_SECRET = bytes(range(32))
LOCK = "lock-0001"
OTHER_LOCK = "lock-0002"
ISSUER = "site-norrtalje"
ED_SEED = bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
NONCE = bytes.fromhex("5a1f0c3e7d2b9a8c4e6f1a2b3c4d5e6f")
CTI = bytes.fromhex("8f2c1e5a9b3d4f60718293a4b5c6d7e8")
# The lock's clock when the vectors apply (2026-03-02T07:12:05Z), and the shift.
NOW = 1772435525
IAT = 1772429400  # 05:30Z
NBF = 1772431200  # 06:00Z
EXP = 1772460000  # 14:00Z
EPOCH = 1577836800  # 2020-01-01T00:00:00Z
TOP = EPOCH + 2 ** 30 - 1  # 2054-01-09T13:37:03Z, the last second of the time bound
SKEW = 120
DAY = 86400
# The revocation state of the lock (applied after commissioning).
REV_VERSION = 8
REV_ISSUED = 1772433600
REV_CUTOFF = 1772420000  # every token issued before 04:53:20Z is refused
BLOCKED_STAFF = "staff-bo"
BLOCKED_BEFORE = 1772433300
REVOKED_CTI = bytes.fromhex("00112233445566778899aabbccddeeff")
REVOKED_EXP = 1772463600

# Reason codes (docs/PROTOCOL.md section 11), written out.
R = {"allowed": 0, "malformed": 1, "bad-signature": 2, "expired": 3, "not-yet-valid": 4,
     "wrong-lock": 5, "revoked": 6, "scope": 7, "lifetime-too-long": 9, "bad-proof": 10,
     "replay": 11, "issued-before-cutoff": 15, "wrong-issuer": 16, "unsupported": 17,
     "rollback": 18, "time-out-of-range": 23}


def hkdf(ikm: bytes, salt: bytes, info: bytes) -> bytes:
    return HKDF(hashes.SHA256(), 32, salt or None, info).derive(ikm)


def hm(key: bytes, data: bytes) -> bytes:
    return hmac.new(key, data, hashlib.sha256).digest()


def det(value: Any) -> bytes:
    """Deterministic encoding (RFC 8949 4.2.1): every map key here is one byte."""
    return cbor2.dumps(value, canonical=True)


def cobs(data: bytes) -> bytes:
    out = bytearray()
    block = bytearray()
    for b in data:
        if b == 0:
            out += bytes([len(block) + 1]) + block
            block = bytearray()
        else:
            block.append(b)
            if len(block) == 254:
                out += b"\xff" + block
                block = bytearray()
    out += bytes([len(block) + 1]) + block
    return bytes(out)


def frame(payload: bytes) -> bytes:
    return cobs(payload + zlib.crc32(payload).to_bytes(4, "little")) + b"\x00"


def lock_keys(site_secret: bytes, lock_id: str) -> dict[str, bytes]:
    secret = hkdf(site_secret, b"nyckelfri-lock/v1", b"lock:" + lock_id.encode())
    return {"lock_secret": secret, "token_mac_key": hkdf(secret, b"", b"token-mac"),
            "update_key": hkdf(secret, b"", b"update"), "admin_key": hkdf(secret, b"", b"admin"),
            "log_key": hkdf(secret, b"", b"log")}


KEYS = lock_keys(SITE_SECRET, LOCK)
OTHER_KEYS = lock_keys(SITE_SECRET, OTHER_LOCK)
FOREIGN_KEYS = lock_keys(bytes(32), LOCK)  # the same lock id at another site
SK = Ed25519PrivateKey.from_private_bytes(ED_SEED)


def pop_key(cti: bytes) -> bytes:
    return hkdf(KEYS["lock_secret"], cti, b"pop")


def claims(**changes: Any) -> dict:
    c: dict[Any, Any] = {1: ISSUER, 2: "staff-anna", 3: LOCK, 4: EXP, 5: NBF, 6: IAT, 7: CTI,
                         8: {3: CTI}, 9: "open"}
    for k, v in changes.items():
        key = {"iss": 1, "sub": 2, "aud": 3, "exp": 4, "nbf": 5, "iat": 6, "cti": 7, "cnf": 8,
               "scope": 9}[k]
        if v is DROP:
            del c[key]
        else:
            c[key] = v
    if "cti" in changes and "cnf" not in changes and changes["cti"] is not DROP:
        c[8] = {3: changes["cti"]}
    return c


DROP = object()


def mac0(payload: bytes, key: bytes, protected: Any = None, unprotected: Any = None,
         tag: int | None = 17, cut: int = 32) -> bytes:
    # protected b"": the zero-length bstr RFC 9052 allows for an empty bucket.
    p = b"" if protected == b"" else cbor2.dumps({1: 5} if protected is None else protected)
    mac = hm(key, cbor2.dumps(["MAC0", p, b"", payload]))[:cut]
    body = [p, {} if unprotected is None else unprotected, payload, mac]
    return cbor2.dumps(cbor2.CBORTag(tag, body) if tag is not None else body)


def sign1(payload: bytes) -> bytes:
    p = cbor2.dumps({1: -8})
    sig = SK.sign(cbor2.dumps(["Signature1", p, b"", payload]))
    return cbor2.dumps(cbor2.CBORTag(18, [p, {}, payload, sig]))


def token(**changes: Any) -> bytes:
    return mac0(cbor2.dumps(claims(**changes)), KEYS["token_mac_key"])


def open_proof(pop: bytes, nonce: bytes, action: str, tok: bytes) -> bytes:
    return hm(pop, det(["open", nonce, LOCK, action, hashlib.sha256(tok).digest()]))


def entry(name: str, tok: bytes, answer: str, reason: str, why: str, cti: bytes = CTI,
          action: str = "open") -> dict:
    return {"name": name, "token": tok.hex(), "pop_key": pop_key(cti).hex(), "action": action,
            "answer": answer, "reason": R[reason], "reason_name": reason, "why": why}


def tokens() -> list[dict]:
    good = token()
    body = cbor2.loads(good).value
    bad_tag = bytearray(good)
    bad_tag[-1] ^= 1
    payload = cbor2.dumps(claims())
    key = KEYS["token_mac_key"]
    other_cti = bytes.fromhex("0badc0ffee0000000000000000000001")
    t: list[dict] = [
        entry("valid", good, "RESULT", "allowed", "the example token of section 6.5"),
        entry("valid-cwt-tag", cbor2.dumps(cbor2.CBORTag(61, cbor2.loads(good))), "RESULT",
              "allowed", "inside the CWT tag 61"),
        entry("valid-aud-array", token(aud=["gate-0001", LOCK]), "RESULT", "allowed",
              "aud an array naming this lock"),
        entry("valid-kid-unprotected", mac0(payload, key, unprotected={4: b"k1"}), "RESULT",
              "allowed", "a kid in the unprotected bucket is ignored"),
        entry("valid-unknown-claim", mac0(cbor2.dumps({**claims(), 99: "x"}), key),
              "RESULT", "allowed", "claims the lock does not know are ignored"),
        entry("bad-tag", bytes(bad_tag), "ERROR", "bad-signature", "last byte of the tag flipped"),
        entry("truncated-tag", mac0(payload, key, cut=16), "ERROR", "bad-signature",
              "a 16-byte tag"),
        entry("other-site", mac0(payload, FOREIGN_KEYS["token_mac_key"]), "ERROR",
              "bad-signature", "MAC'd under another site's key for the same lock id"),
        entry("other-lock", mac0(cbor2.dumps(claims(aud=OTHER_LOCK)),
                                 OTHER_KEYS["token_mac_key"]), "ERROR", "wrong-lock",
              "a token for lock-0002: does not verify here, and its aud names another lock"),
        entry("alg-hmac-256-64", mac0(payload, key, protected={1: 4}), "ERROR", "unsupported",
              "alg 4 (HMAC 256/64), full tag"),
        entry("alg-missing", mac0(payload, key, protected={}), "ERROR", "unsupported",
              "protected {}: no algorithm"),
        entry("alg-text", mac0(payload, key, protected={1: "HS256"}), "ERROR", "unsupported",
              "alg of the wrong type"),
        entry("sign1-at-hmac-lock", sign1(payload), "ERROR", "unsupported",
              "a valid COSE_Sign1 (Ed25519) at a lock of suite hmac"),
        entry("alg-unprotected", mac0(payload, key, protected=b"", unprotected={1: 5}), "ERROR",
              "malformed", "alg only in the unprotected bucket (RFC 9052 3.1)"),
        entry("label-in-both", mac0(payload, key, unprotected={1: 5}), "ERROR", "malformed",
              "alg in both buckets (RFC 9052 3)"),
        entry("crit-unprotected", mac0(payload, key, unprotected={2: [1]}), "ERROR",
              "malformed", "crit in the unprotected bucket"),
        entry("crit-unknown", mac0(payload, key, protected={1: 5, 2: [99], 99: 1}), "ERROR",
              "malformed", "crit names a label the lock does not understand"),
        entry("crit-empty", mac0(payload, key, protected={1: 5, 2: []}), "ERROR", "malformed",
              "crit an empty array"),
        entry("crit-absent-label", mac0(payload, key, protected={1: 5, 2: [4]}), "ERROR",
              "malformed", "crit names kid, which is not in the protected bucket"),
        entry("kid-text", mac0(payload, key, unprotected={4: "k1"}), "ERROR", "malformed",
              "kid must be a byte string"),
        entry("untagged", mac0(payload, key, tag=None), "ERROR", "malformed",
              "the COSE_Mac0 array without tag 17"),
        entry("tag-18-for-mac", mac0(payload, key, tag=18), "ERROR", "unsupported",
              "a Mac0 body under the Sign1 tag: the suite's structure is checked first"),
        entry("not-cbor", b"\xd1\x84\x43", "ERROR", "malformed", "truncated CBOR"),
        entry("claims-no-cti", token(cti=DROP, cnf=DROP), "ERROR", "malformed",
              "claims without cti and cnf"),
        entry("claims-cnf-other", token(cnf={3: other_cti}), "ERROR", "malformed",
              "cnf kid is not the cti"),
        entry("claims-scope-bstr", token(scope=b"open"), "ERROR", "malformed",
              "a byte-string scope"),
        entry("claims-exp-float", token(exp=float(EXP)), "ERROR", "malformed",
              "a float time (floats are never well-formed here)"),
        entry("claims-exp-text", token(exp=str(EXP)), "ERROR", "malformed", "a text time"),
        entry("exp-out-of-range", token(exp=TOP + 1), "ERROR", "time-out-of-range",
              "exp one second after the time bound"),
        entry("exp-2088", token(exp=EPOCH + 2 ** 31 + 1000), "ERROR", "time-out-of-range",
              "exp at the time of issue #10"),
        entry("iat-before-2020", token(iat=EPOCH - 1), "ERROR", "time-out-of-range",
              "iat before the lock's epoch"),
        entry("wrong-issuer", token(iss="site-other"), "RESULT", "wrong-issuer",
              "iss is not the issuer set at commissioning"),
        entry("wrong-issuer-case", token(iss="Site-Norrtalje"), "RESULT", "wrong-issuer",
              "compared exactly"),
        entry("aud-other", token(aud=OTHER_LOCK), "RESULT", "wrong-lock",
              "MAC'd with this lock's key but naming another lock"),
        entry("exp-not-after-nbf", token(nbf=EXP), "RESULT", "malformed",
              "exp <= nbf (an authenticated refusal)"),
        entry("lifetime-too-long", token(iat=NOW - 3600, nbf=NOW - 3600,
                                         exp=NOW - 3600 + DAY + 1), "RESULT",
              "lifetime-too-long", "exp - nbf one second over 24 h"),
        entry("issued-too-early", token(iat=EXP - DAY - 1), "RESULT", "lifetime-too-long",
              "exp - iat one second over 24 h"),
        entry("issued-before-cutoff", token(iat=REV_CUTOFF - 1, nbf=NBF), "RESULT",
              "issued-before-cutoff", "iat one second before the site-wide cut-off"),
        entry("revoked-staff", token(sub=BLOCKED_STAFF, iat=BLOCKED_BEFORE - 1), "RESULT",
              "revoked", "staff-bo's tokens issued before 06:35Z are revoked"),
        entry("revoked-staff-after", token(sub=BLOCKED_STAFF, iat=BLOCKED_BEFORE), "RESULT",
              "allowed", "... a token issued at the cut-off is not (iat < T)"),
        entry("revoked-token", token(cti=REVOKED_CTI), "RESULT", "revoked",
              "this token id is revoked", cti=REVOKED_CTI),
        entry("scope-log-only", token(scope="log"), "RESULT", "scope",
              "scope log, action open"),
        entry("unknown-action", token(scope="open admin"), "RESULT", "unsupported",
              "action admin, in scope, not an action of OPEN", action="admin"),
        entry("expired", token(iat=NOW - 7200, nbf=NOW - 7200, exp=NOW - SKEW), "RESULT",
              "expired", "now >= exp + skew"),
        entry("not-yet-valid", token(nbf=NOW + 1800, exp=NOW + 7200), "RESULT",
              "not-yet-valid", "now < nbf - skew (the lock's clock runs on: leave it margin)"),
    ]
    del body
    return t


def messages() -> list[dict]:
    good = token()
    pop = pop_key(CTI)
    proof = open_proof(pop, NONCE, "open", good)
    # The exchange of docs/PROTOCOL.md sections 4 and 5, byte for byte: the lock
    # then held revocation version 7 (before updates' revocation-state).
    held = REV_VERSION - 1
    hello = {0: 1, 1: LOCK, 2: NONCE, 3: NOW, 4: held, 5: 0, 6: True, 7: 1, 8: "hmac",
             9: {4: 1200, 5: 4096}}
    open_ = {0: 2, 1: NONCE, 2: good, 3: "open", 4: proof}
    status = {1: held, 2: 0, 3: 3010, 4: 1201, 5: 4096, 6: True, 7: NOW + 3, 8: 1201,
              9: "0.1.0"}
    result_mac = hm(pop, det(["result", NONCE, LOCK, 0, NOW + 3, 1201, status]))
    result = {0: 3, 1: NONCE, 2: 0, 3: NOW + 3, 4: 1201, 5: status, 6: result_mac}
    admin_nonce = bytes.fromhex("c0c1c2c3c4c5c6c7c8c9cacbcccdcecf")
    sync_args = {1: NOW}
    admin_mac = hm(KEYS["admin_key"], det(["admin", admin_nonce, LOCK, "sync", sync_args]))
    data = {1: 0, 3: status}
    admin_result_mac = hm(KEYS["admin_key"], det(["admin-result", admin_nonce, LOCK, 0, data]))
    commission_nonce = bytes.fromhex("d0d1d2d3d4d5d6d7d8d9dadbdcdddedf")
    commission = {0: 6, 1: commission_nonce, 2: LOCK, 3: KEYS["lock_secret"], 4: "hmac",
                  5: NOW, 6: ISSUER, 7: "apartment"}
    rows = [
        ("GET_HELLO", "peer -> lock", {0: 5}, "ask for a HELLO"),
        ("HELLO", "lock -> peer", hello, "the challenge: nonce, clock, status"),
        ("OPEN", "key -> lock", open_, "the valid token, action open, its proof over the nonce"),
        ("RESULT", "lock -> key", result, "opened (0), authenticated under the PoP key"),
        ("ERROR", "lock -> peer", {0: 4, 1: R["replay"], 2: NONCE},
         "the same OPEN again: its nonce is spent"),
        ("COMMISSION", "tool -> lock (serial)", commission,
         "after GET_HELLO; the lock answers PRESS_BUTTON, then ADMIN_RESULT"),
        ("PRESS_BUTTON", "lock -> tool", {0: 9, 1: 30}, "the lock waits 30 s for the button"),
        ("ADMIN", "tool -> lock (serial)", {0: 7, 1: admin_nonce, 2: "sync", 3: sync_args,
                                            4: admin_mac}, "sync: set the clock exactly"),
        ("ADMIN_RESULT", "lock -> tool", {0: 8, 1: admin_nonce, 2: 0, 3: data,
                                          4: admin_result_mac}, "time set (0), status"),
    ]
    out = []
    for name, direction, value, what in rows:
        payload = det(value)
        out.append({"name": name, "direction": direction, "what": what, "payload": payload.hex(),
                    "frame": frame(payload).hex()})
    out[2]["proof_input"] = det(["open", NONCE, LOCK, "open",
                                 hashlib.sha256(good).digest()]).hex()
    out[3]["mac_input"] = det(["result", NONCE, LOCK, 0, NOW + 3, 1201, status]).hex()
    out[7]["mac_input"] = det(["admin", admin_nonce, LOCK, "sync", sync_args]).hex()
    out[8]["mac_input"] = det(["admin-result", admin_nonce, LOCK, 0, data]).hex()
    return out


def requests() -> list[dict]:
    """Requests refused before any token. `payload` is sent as it is; `open`
    describes an OPEN to build at the time: nonce "live" (the live HELLO's) or
    hex, token hex, action, proof "valid" (over that nonce), hex, or None
    (left out)."""
    good = token().hex()
    commission = next(m for m in messages() if m["name"] == "COMMISSION")["payload"]

    def req(name: str, answer: str, reason: str, hello: bool, why: str, **how: Any) -> dict:
        return dict({"name": name, "answer": answer, "reason": R[reason], "reason_name": reason,
                     "hello_follows": hello, "why": why}, **how)

    def opening(nonce: str = "live", proof: str | None = "valid") -> dict:
        return {"nonce": nonce, "token": good, "action": "open", "proof": proof}

    return [
        req("not-a-map", "ERROR", "malformed", False, "not a CBOR map", payload=det(1).hex()),
        req("not-cbor", "ERROR", "malformed", False, "a lone break byte", payload="ff"),
        req("no-type", "ERROR", "malformed", False, "no key 0", payload=det({1: 2}).hex()),
        req("unknown-type", "ERROR", "unsupported", False,
            "message type 99: unknown to this version", payload=det({0: 99}).hex()),
        req("commission-over-ble", "ERROR", "unsupported", False,
            "a valid COMMISSION, over BLE: serial only", payload=commission),
        req("commission-no-fields", "ERROR", "malformed", False,
            "COMMISSION without its fields: the schema is checked before the link",
            payload=det({0: 6}).hex()),
        req("open-without-proof", "ERROR", "malformed", False, "a required field missing",
            open=opening(proof=None)),
        req("open-nonce-too-long", "ERROR", "malformed", False, "a bstr over its bound (16)",
            open=opening(nonce="00" * 17)),
        req("bad-proof", "ERROR", "bad-proof", False, "a proof of zeros",
            open=opening(proof="00" * 32)),
        req("stale-nonce", "ERROR", "replay", False,
            "a nonce the lock did not issue, with a valid proof over it",
            open=opening(nonce="00" * 16)),
    ]


def updates() -> list[dict]:
    uk = KEYS["update_key"]

    def rev(version: int = REV_VERSION, issued: int = REV_ISSUED, cutoff: int = REV_CUTOFF,
            entries: Any = None, lock: str = LOCK, key: bytes = uk, kind: Any = 1) -> bytes:
        body: dict[int, Any] = {1: lock, 2: version, 3: issued, 4: cutoff,
                                5: [[1, BLOCKED_STAFF, BLOCKED_BEFORE],
                                    [2, REVOKED_CTI, REVOKED_EXP]] if entries is None else entries}
        if kind is not DROP:
            body[0] = kind
        return mac0(cbor2.dumps(body), key)

    def tu(t: Any, lock: str = LOCK, key: bytes = uk) -> bytes:
        return mac0(cbor2.dumps({1: lock, 6: t}), key)

    rows = [
        ("revocation-state", rev(), "revocation", "allowed",
         "the lock's list: version 8, cut-off 04:53:20Z, staff-bo before 06:35Z, one token"),
        ("revocation-rollback", rev(), "revocation", "rollback",
         "the same version again (not logged: keys carry old versions)"),
        ("revocation-bad-mac", rev(version=9, key=OTHER_KEYS["update_key"]), "revocation",
         "bad-signature", "under another lock's update key"),
        ("revocation-other-lock", rev(version=9, lock=OTHER_LOCK), "revocation", "wrong-lock",
         "for lock-0002, under this lock's key"),
        ("revocation-no-kind", rev(version=9, kind=DROP), "revocation", "malformed",
         "payload key 0 missing"),
        ("revocation-entry-out-of-range", rev(version=9, entries=[[1, "staff-x", TOP + 1]]),
         "revocation", "time-out-of-range", "a staff entry's T after the time bound"),
        ("revocation-issued-out-of-range", rev(version=9, issued=EPOCH + 2 ** 31 + 1000),
         "revocation", "time-out-of-range", "issued in 2088"),
        ("time", tu(IAT), "time", "allowed", "it is at least 05:30Z (no change: the clock is later)"),
        ("time-2088", tu(EPOCH + 2 ** 31 + 1000), "time", "time-out-of-range",
         "the update of issue #10"),
        ("time-after-bound", tu(TOP + 1), "time", "time-out-of-range", "one second too late"),
        ("time-before-2020", tu(EPOCH - 1), "time", "time-out-of-range", "before the epoch"),
        ("time-text", tu(str(IAT)), "time", "malformed", "T not an integer"),
        ("time-bad-mac", tu(IAT, key=OTHER_KEYS["update_key"]), "time", "bad-signature",
         "under another lock's update key"),
        ("time-other-lock", tu(IAT, lock=OTHER_LOCK), "time", "wrong-lock",
         "for lock-0002, under this lock's key"),
    ]
    return [{"name": n, "update": u.hex(), "kind": k, "reason": R[r], "reason_name": r,
             "why": w} for n, u, k, r, w in rows]


def build() -> dict:
    """Every part, by file name (without .json)."""
    h = bytes.hex
    toks = tokens()
    first_claims = next(i for i, t in enumerate(toks) if t["name"].startswith("claims-"))
    whole = {
        "source": "Made by tests/make_conformance.py from docs/PROTOCOL.md alone, with cbor2, "
                  "hmac/hashlib, cryptography (HKDF, Ed25519), zlib and a COBS encoder of its "
                  "own: not with protocol/. See docs/PROTOCOL.md section 15.",
        "setup": {
            "site_secret": h(SITE_SECRET), "lock_id": LOCK, "issuer": ISSUER, "suite": "hmac",
            "lock_time": NOW, "clock_trusted": True,
            "ed25519_public": h(SK.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)),
            # The list the lock holds for tokens and requests: updates' revocation-state.
            "revocation_update": next(u for u in updates()
                                      if u["name"] == "revocation-state")["update"],
            "keys": {k: h(v) for k, v in KEYS.items()},
            "pop_key_of_example_cti": h(pop_key(CTI)),
            "skew": SKEW, "time_bound": [EPOCH, TOP],
        },
        "messages": messages(),
        # The COSE structure and suite (up to the first claims rule), then the claims
        # and the decision.
        "tokens_cose": toks[:first_claims],
        "tokens_claims": toks[first_claims:],
        "requests": requests(),
        "updates": updates(),
    }
    return {"conformance_" + part: {"source": whole["source"], "setup": whole["setup"],
                                    "tokens" if part.startswith("tokens") else part: whole[part]}
            for part in PARTS}


def render(doc: dict) -> str:
    return json.dumps(doc, indent=1) + "\n"


def main() -> None:
    for name, doc in build().items():
        path = VECTORS / (name + ".json")
        path.write_text(render(doc))
        print("wrote", path)


if __name__ == "__main__":
    main()
