"""Writes tests/vectors/cose.json: COSE/CWT tokens, derived keys, proofs and a
revocation update made WITHOUT the project's code, so the portable tests can
check protocol/ against an independent implementation on MicroPython too.

Independent parts: cbor2 (encoding, in the issuer's insertion order, not
sorted), hmac/hashlib (HMAC-SHA256), cryptography (HKDF-SHA256 and Ed25519
signing). Everything is deterministic (fixed keys and times; Ed25519 signatures
are deterministic), so running it again gives the same file:

    .venv/bin/python tests/make_vectors.py
"""

from __future__ import annotations

import hashlib
import hmac
import json
from pathlib import Path

import cbor2
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

OUT = Path(__file__).resolve().parent / "vectors" / "cose.json"

SITE_SECRET = bytes(range(32))
LOCK_ID = "lock-0001"
ED_SEED = bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
IAT = 1767254400  # 2026-01-01T08:00:00Z
NBF = IAT + 1800
EXP = NBF + 8 * 3600
CTI = bytes.fromhex("a1a2a3a4a5a6a7a8a9aaabacadaeafb0")
NONCE = bytes.fromhex("000102030405060708090a0b0c0d0e0f")


# Published vectors, copied from cose-wg/Examples (https://github.com/cose-wg/Examples):
# mac0-tests/HMac-01.json (HMAC 256/256 COSE_Mac0) and
# eddsa-examples/eddsa-sig-01.json (EdDSA Ed25519 COSE_Sign1, key of RFC 8032 7.1 TEST 1).
COSE_WG = {
    "source": "cose-wg/Examples mac0-tests/HMac-01.json and eddsa-examples/eddsa-sig-01.json",
    "payload": "546869732069732074686520636f6e74656e742e",  # "This is the content."
    "hmac_key": "849b57219dae48de646d07dbb533566e976686457c1491be3a76dcea6c427188",
    "mac0": "d18443a10105a054546869732069732074686520636f6e74656e742e5820a1a848d3471f9d61"
            "ee49018d244c824772f223ad4f935293f1789fc3a08d8c58",
    "ed25519_public": "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
    "sign1": "d28445a201270300a10442313154546869732069732074686520636f6e74656e742e58407142"
             "fd2ff96d56db85bee905a76ba1d0b7321a95c8c4d3607c5781932b7afb8711497dfa751bf40b"
             "58b3bcc32300b1487f3db34085eef013bf08f4a44d6fef0d",
}


def hkdf(ikm: bytes, salt: bytes, info: bytes) -> bytes:
    return HKDF(hashes.SHA256(), 32, salt or None, info).derive(ikm)


def hm(key: bytes, data: bytes) -> bytes:
    return hmac.new(key, data, hashlib.sha256).digest()


def claims_map(aud: object = LOCK_ID, scope: str = "open log") -> dict:
    # Insertion order deliberately not the deterministic order.
    return {
        9: scope, 8: {3: CTI}, 7: CTI, 6: IAT, 5: NBF, 4: EXP,
        3: aud, 2: "staff-anna", 1: "site-norrtalje",
    }


def mac0(payload: bytes, key: bytes, protected: dict, unprotected: dict) -> bytes:
    p = cbor2.dumps(protected)
    tag = hm(key, cbor2.dumps(["MAC0", p, b"", payload]))
    return cbor2.dumps(cbor2.CBORTag(17, [p, unprotected, payload, tag]))


def sign1(payload: bytes, sk: Ed25519PrivateKey, protected: dict, unprotected: dict) -> tuple:
    p = cbor2.dumps(protected)
    tbs = cbor2.dumps(["Signature1", p, b"", payload])
    return cbor2.dumps(cbor2.CBORTag(18, [p, unprotected, payload, sk.sign(tbs)])), tbs


def main() -> None:
    lock_secret = hkdf(SITE_SECRET, b"nyckelfri-lock/v1", b"lock:" + LOCK_ID.encode())
    token_key = hkdf(lock_secret, b"", b"token-mac")
    update_key = hkdf(lock_secret, b"", b"update")
    pop = hkdf(lock_secret, CTI, b"pop")
    sk = Ed25519PrivateKey.from_private_bytes(ED_SEED)
    pk = sk.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    other_pk = Ed25519PrivateKey.from_private_bytes(bytes(32)).public_key().public_bytes(
        Encoding.Raw, PublicFormat.Raw)

    payload = cbor2.dumps(claims_map())
    mac_token = mac0(payload, token_key, {1: 5}, {4: b"k1"})
    mac_cwt = cbor2.dumps(cbor2.CBORTag(61, cbor2.loads(mac_token)))
    mac_alg4 = mac0(payload, token_key, {1: 4}, {})  # HMAC 256/64 label, full tag
    multi = cbor2.dumps(claims_map(aud=["gate-0001", LOCK_ID], scope="open"))
    mac_multi = mac0(multi, token_key, {1: 5}, {})
    sig_token, tbs = sign1(payload, sk, {1: -8}, {4: b"issuer-1"})
    sig_cwt = cbor2.dumps(cbor2.CBORTag(61, cbor2.loads(sig_token)))
    sig_m19, _ = sign1(payload, sk, {1: -19}, {})
    sig_alg_hmac, _ = sign1(payload, sk, {1: 5}, {})  # a valid signature under alg 5

    proof_input = cbor2.dumps(["open", NONCE, LOCK_ID, "open", hashlib.sha256(mac_token).digest()])
    result_input = cbor2.dumps(["result", NONCE, LOCK_ID, 0, EXP - 60, 42, {1: 3, 2: 0}])
    admin_input = cbor2.dumps(["admin", NONCE, LOCK_ID, "log", {1: 7}])
    admin_result_input = cbor2.dumps(["admin-result", NONCE, LOCK_ID, 0, {1: [], 2: 6}])

    revocation = cbor2.dumps({
        5: [[2, CTI, EXP], [1, "staff-bo", IAT + 60]],  # unsorted, as an issuer might
        4: IAT - 86400, 3: IAT + 120, 2: 7, 1: LOCK_ID, 0: 1,
    })
    rev_token = mac0(revocation, update_key, {1: 5}, {})

    h = bytes.hex
    # Check the copied published vectors with the independent implementations.
    wg = {k: bytes.fromhex(v) for k, v in COSE_WG.items() if k != "source"}
    body = cbor2.loads(wg["mac0"]).value
    assert hm(wg["hmac_key"], cbor2.dumps(["MAC0", body[0], b"", body[2]])) == body[3]
    body = cbor2.loads(wg["sign1"]).value
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
    Ed25519PublicKey.from_public_bytes(wg["ed25519_public"]).verify(
        body[3], cbor2.dumps(["Signature1", body[0], b"", body[2]]))

    doc = {
        "source": "Made by tests/make_vectors.py with cbor2, hmac/hashlib and cryptography "
                  "(HKDF, Ed25519), not with protocol/: an independent implementation of the "
                  "formats in docs/PROTOCOL.md. Ed25519 seed is RFC 8032 section 7.1 TEST 1.",
        "site_secret": h(SITE_SECRET),
        "lock_id": LOCK_ID,
        "lock_secret": h(lock_secret),
        "token_mac_key": h(token_key),
        "update_key": h(update_key),
        "admin_key": h(hkdf(lock_secret, b"", b"admin")),
        "log_key": h(hkdf(lock_secret, b"", b"log")),
        "pop_key": h(pop),
        "ed25519_public": h(pk),
        "ed25519_other_public": h(other_pk),
        "claims": {"iss": "site-norrtalje", "sub": "staff-anna", "aud": LOCK_ID, "iat": IAT,
                   "nbf": NBF, "exp": EXP, "cti": h(CTI), "scope": "open log"},
        "payload": h(payload),
        "mac0": h(mac_token),
        "mac0_cwt_tag": h(mac_cwt),
        "mac0_alg_4": h(mac_alg4),
        "mac0_multi_aud": h(mac_multi),
        "sign1": h(sig_token),
        "sign1_tbs": h(tbs),
        "sign1_cwt_tag": h(sig_cwt),
        "sign1_alg_m19": h(sig_m19),
        "sign1_alg_5": h(sig_alg_hmac),
        "nonce": h(NONCE),
        "open_proof": h(hm(pop, proof_input)),
        "result_mac": {"outcome": 0, "time": EXP - 60, "seq": 42, "status": [[1, 3], [2, 0]],
                       "mac": h(hm(pop, result_input))},
        "admin_mac": {"op": "log", "args": [[1, 7]],
                      "mac": h(hm(hkdf(lock_secret, b"", b"admin"), admin_input))},
        "admin_result_mac": {"outcome": 0, "data": [[1, []], [2, 6]],
                             "mac": h(hm(hkdf(lock_secret, b"", b"admin"),
                                         admin_result_input))},
        "revocation_update": {"version": 7, "issued": IAT + 120, "cutoff": IAT - 86400,
                              "staff": [["staff-bo", IAT + 60]], "tokens": [[h(CTI), EXP]],
                              "update": h(rev_token)},
        "cose_wg": COSE_WG,
    }
    OUT.write_text(json.dumps(doc, indent=1) + "\n")
    print("wrote", OUT)


if __name__ == "__main__":
    main()
