"""The staff member's shift key file.

It holds, for one shift, a token and its proof-of-possession key for every
door the staff member may open, with the latest time and revocation updates
for those locks. The file is encrypted with AES-256-GCM under a key derived
from the staff member's personal code with Argon2id (memory-hard), so a lost
file is useless without the code; the KDF parameters travel in the file.
"""

from __future__ import annotations

import json
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from argon2.low_level import Type, hash_secret_raw
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from tools.files import write_private
from tools.issuer import Grant

FORMAT = "nyckelfri-shift-key/1"
KDF = {"alg": "argon2id", "time_cost": 3, "memory_cost": 65536, "parallelism": 1}
MIN_PIN = 4
MAX_SIZE = 32 << 20  # about 4 KB a door: far above any shift, far below a mistake


class KeyFileError(Exception):
    """A one-line, secret-free reason the key file cannot be used."""


class WrongPin(KeyFileError):
    pass


class CorruptKeyFile(KeyFileError):
    pass


@dataclass
class ShiftKey:
    staff_id: str
    site: str
    start: int
    end: int
    grants: list[Grant] = field(default_factory=list)

    def grant_for(self, lock_id: str) -> Grant:
        for g in self.grants:
            if g.lock_id == lock_id:
                return g
        raise KeyFileError(f"this key holds no permission for lock {lock_id}")

    def __repr__(self) -> str:
        return f"ShiftKey(staff={self.staff_id!r}, {len(self.grants)} doors)"


def _derive(pin: str, salt: bytes, kdf: dict[str, Any]) -> bytes:
    return hash_secret_raw(pin.encode(), salt, time_cost=kdf["time_cost"],
                           memory_cost=kdf["memory_cost"], parallelism=kdf["parallelism"],
                           hash_len=32, type=Type.ID)


def _plain(key: ShiftKey) -> bytes:
    return json.dumps({
        "staff_id": key.staff_id, "site": key.site, "start": key.start, "end": key.end,
        "grants": [{"lock_id": g.lock_id, "token": g.token.hex(), "pop_key": g.pop_key.hex(),
                    "cti": g.cti.hex(), "start": g.start, "end": g.end, "scope": g.scope,
                    "updates": [u.hex() for u in g.updates]} for g in key.grants],
    }).encode()


def write(path: Path, key: ShiftKey, pin: str) -> None:
    """Encrypt and write atomically (a new file, then rename), owner-only."""
    if len(pin) < MIN_PIN:
        raise KeyFileError(f"the personal code must have at least {MIN_PIN} characters")
    salt, nonce = os.urandom(16), os.urandom(12)
    header = {"format": FORMAT, "kdf": dict(KDF, salt=salt.hex()), "nonce": nonce.hex()}
    aad = json.dumps(header, sort_keys=True).encode()
    sealed = AESGCM(_derive(pin, salt, KDF)).encrypt(nonce, _plain(key), aad)
    doc = dict(header, ciphertext=sealed.hex())
    write_private(Path(path), json.dumps(doc).encode())


def read(path: Path, pin: str) -> ShiftKey:
    # A file that cannot be read is a path or permission problem, not a damaged
    # key: say which, so nobody throws away a good key.
    try:
        # O_NONBLOCK: opening a FIFO must not wait for a writer.
        with os.fdopen(os.open(path, os.O_RDONLY | os.O_NONBLOCK), "rb") as f:
            if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
                raise KeyFileError(f"{path} is not a key file (not a regular file)")
            raw = f.read(MAX_SIZE + 1)
    except FileNotFoundError:
        raise KeyFileError(f"no key file at {path}") from None
    except IsADirectoryError:
        raise KeyFileError(f"{path} is a directory, not a key file") from None
    except PermissionError:
        raise KeyFileError(f"cannot read the key file {path}: permission denied") from None
    except OSError as exc:
        raise KeyFileError(f"cannot read the key file {path}: {exc.strerror or exc}") from None
    if len(raw) > MAX_SIZE:
        raise CorruptKeyFile("the key file is corrupted (far too large for a shift key)")
    try:
        doc = json.loads(raw.decode())
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise CorruptKeyFile("the key file is corrupted (not a shift key)") from None
    if not isinstance(doc, dict):
        raise CorruptKeyFile("the key file is corrupted (not a shift key)")
    try:
        if doc.get("format") != FORMAT:
            raise CorruptKeyFile("not a shift key file of this version")
        kdf = doc["kdf"]
        if kdf.get("alg") != "argon2id":
            raise CorruptKeyFile("the key file names an unknown key derivation")
        header = {"format": doc["format"], "kdf": kdf, "nonce": doc["nonce"]}
        aad = json.dumps(header, sort_keys=True).encode()
        salt, nonce = bytes.fromhex(kdf["salt"]), bytes.fromhex(doc["nonce"])
        sealed = bytes.fromhex(doc["ciphertext"])
        params = {k: int(kdf[k]) for k in ("time_cost", "memory_cost", "parallelism")}
        if not (1 <= params["time_cost"] <= 20 and 8 <= params["memory_cost"] <= 1 << 21
                and 1 <= params["parallelism"] <= 16):
            raise CorruptKeyFile("the key file's key-derivation settings are out of range")
    except (KeyError, TypeError, ValueError, AttributeError):
        raise CorruptKeyFile("the key file is corrupted") from None
    try:
        plain = AESGCM(_derive(pin, salt, params)).decrypt(nonce, sealed, aad)
    except InvalidTag:
        # GCM cannot tell a wrong code from a damaged file; the code is the likelier cause.
        raise WrongPin("wrong personal code (or the key file was altered)") from None
    try:
        d = json.loads(plain)
        grants = [Grant(g["lock_id"], bytes.fromhex(g["token"]), bytes.fromhex(g["pop_key"]),
                        bytes.fromhex(g["cti"]), g["start"], g["end"], g["scope"],
                        [bytes.fromhex(u) for u in g["updates"]]) for g in d["grants"]]
        return ShiftKey(d["staff_id"], d["site"], d["start"], d["end"], grants)
    except (KeyError, TypeError, ValueError):
        raise CorruptKeyFile("the key file's contents are corrupted") from None
