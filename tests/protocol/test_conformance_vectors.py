"""The conformance chapter and its vectors stay what they say they are.

- tests/vectors/conformance_*.json are exactly what tests/make_conformance.py
  writes (from the document alone, with cbor2/hmac/cryptography), so they
  cannot drift from their generator;
- the example exchange printed in docs/PROTOCOL.md (HELLO, OPEN, RESULT, the
  token, the GET_HELLO frame) is byte for byte the vectors';
- the reason table of section 11 is protocol/reasons.py's;
- a shift key file decrypts as section 7a describes, with argon2 and AES-GCM
  directly, not through tools/keyfile.py.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import cbor2
import make_conformance
import pytest
from argon2.low_level import Type, hash_secret_raw
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from protocol import reasons
from tools import device, issuer

ROOT = Path(__file__).resolve().parents[2]
DOC = (ROOT / "docs" / "PROTOCOL.md").read_text()


def test_vector_files_are_what_the_generator_writes() -> None:
    built = make_conformance.build()
    assert set(built) == {p.stem for p in (ROOT / "tests" / "vectors").glob("conformance_*.json")}
    for name, doc in built.items():
        on_disk = (ROOT / "tests" / "vectors" / f"{name}.json").read_text()
        assert on_disk == make_conformance.render(doc), f"run tests/make_conformance.py ({name})"


def test_the_document_prints_the_vectors_exchange() -> None:
    flat = re.sub(r"\s", "", DOC)
    messages = {m["name"]: m for m in json.loads(
        (ROOT / "tests" / "vectors" / "conformance_messages.json").read_text())["messages"]}
    for name in ("HELLO", "OPEN", "RESULT", "GET_HELLO"):
        assert messages[name]["payload"] in flat, name
    assert messages["GET_HELLO"]["frame"] in flat
    tokens = json.loads((ROOT / "tests" / "vectors" / "conformance_tokens_cose.json"
                         ).read_text())["tokens"]
    assert tokens[0]["name"] == "valid" and tokens[0]["token"] in flat


def test_the_reason_table_is_reasons_py() -> None:
    section = DOC[DOC.index("## 11. Reason codes"):DOC.index("## 11a.")]
    rows = re.findall(r"^\| (\d+) \| ([a-z-]+) \|", section, re.M)
    assert {int(code): name for code, name in rows} == reasons.NAMES
    assert reasons.NAMES[23] == "time-out-of-range"


def test_a_grant_and_a_sealed_key_open_as_documented(tmp_path: Path) -> None:
    """Section 5c alone, with independent code (cbor2, pyhpke, argon2, the
    cryptography package's HKDF): the grant opens with the device key, and the
    sealed key unmasks to the PoP key with the code."""
    pyhpke = pytest.importorskip("pyhpke")
    dev = device.Device.init(tmp_path / "phone")
    grant = issuer.issue_token(bytes(32), "NT-1", iss="Testkommun", sub="S1",
                               start=1772431200, end=1772460000, iat=1772429400)
    path = tmp_path / "anna.grant"
    path.write_bytes(device.seal_grant(dev.public, device.grant_content(
        "S1", "Testkommun", 1772431200, 1772460000, [grant])))
    outer = cbor2.loads(path.read_bytes())
    assert set(outer) == {"v", "fp", "enc", "ct"} and outer["v"] == "nyckelfri-grant/1"
    pub = bytes.fromhex((tmp_path / "phone" / "device.pub").read_text().strip())
    assert outer["fp"] == hashlib.sha256(pub).digest()[:16].hex()
    suite = pyhpke.CipherSuite.new(pyhpke.KEMId.DHKEM_X25519_HKDF_SHA256,
                                   pyhpke.KDFId.HKDF_SHA256, pyhpke.AEADId.CHACHA20_POLY1305)
    sk = suite.kem.deserialize_private_key((tmp_path / "phone" / "device.key").read_bytes())
    plain = suite.create_recipient_context(outer["enc"], sk, info=b"nyckelfri grant v1").open(
        outer["ct"], aad=pub)
    content = cbor2.loads(plain)
    assert set(content) == {"staff", "site", "start", "end", "grants"}
    assert content["site"] == "Testkommun"  # the issuer name (section 7a)
    (g,) = content["grants"]
    assert g[0] == "NT-1" and g[1] == grant.token and g[2] == grant.pop_key
    # The sealed key: PoP key XOR HKDF(Argon2id(code, salt), salt=cti, info=label||lock).
    sealed_path = dev.load_grant(path, "246813")
    sealed = cbor2.loads(sealed_path.read_bytes())
    assert sealed["v"] == "nyckelfri-sealed-key/1"
    kdf = sealed["kdf"]
    secret = hash_secret_raw(b"246813", kdf["salt"], time_cost=kdf["time_cost"],
                             memory_cost=kdf["memory_cost"], parallelism=kdf["parallelism"],
                             hash_len=32, type=Type.ID, version=0x13)
    lock_id, _, masked, cti = sealed["grants"][0][:4]
    mask = HKDF(algorithm=hashes.SHA256(), length=32, salt=cti,
                info=b"nyckelfri pop mask v1" + lock_id.encode()).derive(secret)
    assert bytes(a ^ b for a, b in zip(masked, mask, strict=True)) == grant.pop_key


def test_the_conformance_chapter_lists_every_vector_with_its_reason() -> None:
    chapter = DOC[DOC.index("## 15. Conformance"):]
    rows = {name: (answer, int(code)) for name, answer, code in re.findall(
        r"^\| `([a-z0-9-]+)` \| ([A-Za-z]+) \| (\d+) ", chapter, re.M)}
    built = make_conformance.build()
    for part in ("tokens_cose", "tokens_claims", "requests"):
        key = "requests" if part == "requests" else "tokens"
        for v in built["conformance_" + part][key]:
            assert rows.get(v["name"]) == (v["answer"], v["reason"]), v["name"]
    for v in built["conformance_updates"]["updates"]:
        assert rows.get(v["name"]) == (v["kind"], v["reason"]), v["name"]
    for m in built["conformance_messages"]["messages"]:
        if m["name"] not in ("HELLO", "OPEN", "RESULT", "GET_HELLO"):
            assert m["payload"] in re.sub(r"\s", "", chapter), m["name"]
