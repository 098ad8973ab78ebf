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

import json
import re
from pathlib import Path

import make_conformance
from argon2.low_level import Type, hash_secret_raw
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from protocol import reasons
from tools import issuer, keyfile

ROOT = Path(__file__).resolve().parent.parent
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


def test_a_shift_key_file_decrypts_as_documented(tmp_path: Path) -> None:
    grant = issuer.issue_token(bytes(32), "NT-1", iss="Testkommun", sub="S1",
                               start=1772431200, end=1772460000, iat=1772429400)
    path = tmp_path / "anna.key"
    keyfile.write(path, keyfile.ShiftKey("S1", "Testkommun", 1772431200, 1772460000, [grant]),
                  "2468")
    doc = json.loads(path.read_text())
    assert set(doc) == {"format", "kdf", "nonce", "ciphertext"}
    assert doc["format"] == "nyckelfri-shift-key/1"
    kdf = doc["kdf"]
    assert kdf["alg"] == "argon2id" and len(bytes.fromhex(kdf["salt"])) == 16
    key = hash_secret_raw(b"2468", bytes.fromhex(kdf["salt"]), time_cost=kdf["time_cost"],
                          memory_cost=kdf["memory_cost"], parallelism=kdf["parallelism"],
                          hash_len=32, type=Type.ID, version=0x13)
    header = {"format": doc["format"], "kdf": kdf, "nonce": doc["nonce"]}
    aad = json.dumps(header, sort_keys=True).encode()
    nonce = bytes.fromhex(doc["nonce"])
    assert len(nonce) == 12
    plain = json.loads(AESGCM(key).decrypt(nonce, bytes.fromhex(doc["ciphertext"]), aad))
    assert set(plain) == {"staff_id", "site", "start", "end", "grants"}
    assert plain["site"] == "Testkommun"  # the issuer name (section 7a)
    (g,) = plain["grants"]
    assert set(g) == {"lock_id", "token", "pop_key", "cti", "start", "end", "scope", "updates"}
    assert bytes.fromhex(g["token"]) == grant.token and bytes.fromhex(g["pop_key"]) == \
        grant.pop_key


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
