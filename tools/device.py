"""The staff device: the reference for a phone app's key store.

A device is enrolled once (its X25519 key pair, made here; the administrator
registers the public key, checking its fingerprint on the staff member's
screen). A shift grant is encrypted to it with HPKE (RFC 9180, tools/hpke.py):
only that device opens it, and the administrator never sees a personal code.
The staff member then seals the grant's keys under a code only they know.

What a copied device store gives away: nothing that tests a guess of the code.
Each proof-of-possession key is stored XOR a mask derived from Argon2id(code,
salt) and the lock id; nothing else covers the keys (no MAC, no checksum), so
every candidate code unmasks to a well-formed 32-byte key and only the lock can
tell the right one (by a proof that verifies). The lock refuses a token for
good after 5 failed proofs (reason 24, token-burned): 5 guesses per door.

Files in DIR (formats in docs/PROTOCOL.md, "The staff device"):
  device.key   32 bytes, the X25519 private key (owner-only)
  device.pub   the public key, 64 hex digits and a newline
  keys/*.key   sealed shift keys, one per loaded grant (CBOR)
"""

from __future__ import annotations

import hashlib
import os
import stat
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from argon2.low_level import Type, hash_secret_raw
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from protocol import cbor
from tools import hpke
from tools.files import write_private
from tools.issuer import Grant

GRANT_FORMAT = "nyckelfri-grant/1"
SEALED_FORMAT = "nyckelfri-sealed-key/1"
GRANT_INFO = b"nyckelfri grant v1"
MASK_INFO = b"nyckelfri pop mask v1"
# Argon2id for sealing: the cost is per load and per opening at the door, not
# per guess of an attacker (who cannot test guesses offline); 64 MiB, t=2.
KDF = {"alg": "argon2id", "time_cost": 2, "memory_cost": 65536, "parallelism": 1}
MIN_CODE_DIGITS = 6
MAX_FILE = 1 << 20
FINGERPRINT_HEX = 32  # SHA-256 of the raw public key, first 16 bytes, lowercase hex
MIN_PREFIX = 8


class DeviceError(Exception):
    """A one-line, secret-free reason the device or a grant cannot be used."""


class OldKeyFormat(DeviceError):
    pass


def fingerprint(public: bytes) -> str:
    return hashlib.sha256(public).digest()[:16].hex()


def check_code(code: str) -> str:
    if not code.isdigit() or not code.isascii() or len(code) < MIN_CODE_DIGITS:
        raise DeviceError(f"the personal code must be at least {MIN_CODE_DIGITS} digits")
    return code


def _read(path: Path, what: str) -> bytes:
    try:
        st = path.stat()
    except FileNotFoundError:
        raise DeviceError(f"{what} {path}: no such file") from None
    except OSError as e:
        raise DeviceError(f"{what} {path}: {e.strerror}") from None
    if not stat.S_ISREG(st.st_mode):
        raise DeviceError(f"{what} {path}: not a regular file")
    if st.st_size > MAX_FILE:
        raise DeviceError(f"{what} {path}: too large to be one")
    try:
        return path.read_bytes()
    except OSError as e:
        raise DeviceError(f"{what} {path}: {e.strerror}") from None




def read_public(path: Path) -> bytes:
    """A device.pub file: 64 hex digits (or the 32 raw bytes)."""
    raw = _read(path, "public key file")
    if len(raw) == 32:
        return raw
    try:
        text = raw.decode("ascii").strip()
        pub = bytes.fromhex(text)
    except (UnicodeDecodeError, ValueError):
        raise DeviceError(f"{path}: not a device public key (64 hex digits)") from None
    if len(pub) != 32:
        raise DeviceError(f"{path}: not a device public key (64 hex digits)")
    return pub


@dataclass
class Device:
    dir: Path
    public: bytes
    _private: bytes = field(repr=False)

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.public)

    def __repr__(self) -> str:
        return f"Device({self.dir}, {self.fingerprint})"

    # --- creation ---------------------------------------------------------------
    @classmethod
    def init(cls, directory: Path) -> "Device":
        """A new key pair in `directory`; an existing device is never overwritten."""
        directory = Path(directory)
        if (directory / "device.key").exists() or (directory / "device.pub").exists():
            raise DeviceError(f"{directory} already holds a device: it is never overwritten")
        if directory.exists() and not directory.is_dir():
            raise DeviceError(f"{directory}: not a directory")
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(directory, 0o700)
        private, public = hpke.generate_keypair()
        try:
            fd = os.open(directory / "device.key", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            raise DeviceError(f"{directory} already holds a device") from None
        with os.fdopen(fd, "wb") as f:
            f.write(private)
            f.flush()
            os.fsync(f.fileno())
        write_private(directory / "device.pub", public.hex().encode() + b"\n", 0o644)
        return cls(directory, public, private)

    @classmethod
    def load(cls, directory: Path) -> "Device":
        directory = Path(directory)
        key_path = directory / "device.key"
        private = _read(key_path, "device key")
        if key_path.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise DeviceError(f"{key_path} is readable by others: fix with chmod 600 {key_path}")
        if len(private) != 32:
            raise DeviceError(f"{key_path}: not a device key")
        public = read_public(directory / "device.pub")
        if X25519PrivateKey.from_private_bytes(private).public_key().public_bytes_raw() != public:
            raise DeviceError(f"{directory}: device.key and device.pub do not belong together")
        return cls(directory, public, private)

    # --- grants -----------------------------------------------------------------
    def open_grant(self, path: Path) -> dict[str, Any]:
        """The grant's content, if it was made for this device."""
        raw = _read(path, "grant")
        try:
            outer = cbor.loads(raw)
        except Exception:  # noqa: BLE001 - any decoding failure is one answer
            outer = None
        if not isinstance(outer, dict) or outer.get("v") != GRANT_FORMAT:
            raise DeviceError(f"{path}: not a grant")
        if outer.get("fp") != self.fingerprint:
            raise DeviceError(f"{path}: this grant is for another device")
        enc, ct = outer.get("enc"), outer.get("ct")
        if not isinstance(enc, bytes) or not isinstance(ct, bytes):
            raise DeviceError(f"{path}: not a grant")
        try:
            plain = hpke.open_(self._private, enc, GRANT_INFO, self.public, ct)
        except hpke.HPKEError:
            raise DeviceError(f"{path}: the grant is damaged or altered, or not for this "
                              "device") from None
        content = cbor.loads(plain)
        return content  # type: ignore[no-any-return]

    def load_grant(self, path: Path, code: str, kdf: dict[str, Any] | None = None) -> Path:
        """Open a grant and seal its keys under the code in keys/; returns the file."""
        check_code(code)
        content = self.open_grant(path)
        params = dict(kdf or KDF)
        salt = os.urandom(16)
        secret = _stretch(code, salt, params)
        grants = []
        for g in content["grants"]:
            lock_id, token, pop_key, cti, start, end, scope, updates = g
            grants.append([lock_id, token, _xor(pop_key, _mask(secret, lock_id, cti)), cti,
                           start, end, scope, updates])
        sealed = {"v": SEALED_FORMAT, "staff": content["staff"], "site": content["site"],
                  "start": content["start"], "end": content["end"],
                  "loaded": time.time_ns(), "kdf": {**params, "salt": salt}, "grants": grants}
        keys = self.dir / "keys"
        keys.mkdir(exist_ok=True, mode=0o700)
        out = keys / f"{content['end']}-{bytes(grants[0][3]).hex()}.key"
        write_private(out, cbor.dumps(sealed))
        return out

    def sealed_keys(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        keys = self.dir / "keys"
        if not keys.is_dir():
            return out
        for p in sorted(keys.glob("*.key")):
            try:
                d = cbor.loads(_read(p, "sealed key"))
            except Exception:  # noqa: BLE001 - a damaged file is skipped
                continue
            if isinstance(d, dict) and d.get("v") == SEALED_FORMAT:
                d["path"] = p
                out.append(d)
        return out

    def grant_for(self, lock_id: str, code: str, now: int | None = None) -> Grant:
        """The latest unexpired key for `lock_id` (the latest to end; of those,
        the last loaded: a fresh grant replaces a burned or blocked one),
        unmasked with the code. A wrong code gives a wrong key: only the lock
        can tell."""
        check_code(code)
        now = int(time.time()) if now is None else now
        best = None
        for d in self.sealed_keys():
            if d["end"] <= now:
                continue
            rank = (d["end"], d.get("loaded", 0))
            for g in d["grants"]:
                if g[0] == lock_id and (best is None or rank > best[2]):
                    best = (d, g, rank)
        if best is None:
            ended = [d["end"] for d in self.sealed_keys()
                     if any(g[0] == lock_id for g in d["grants"])]
            if ended:
                raise DeviceError(f"your key for lock {lock_id} expired at "
                                  f"{local_hhmm(max(ended))} (this device's clock): ask for "
                                  "a new key")
            raise DeviceError(f"no unexpired key for lock {lock_id} on this device "
                              "(load a grant with lockctl key load)")
        d, g, _ = best
        lock, token, masked, cti, start, end, scope, updates = g
        secret = _stretch(code, d["kdf"]["salt"], d["kdf"])
        return Grant(lock, token, _xor(masked, _mask(secret, lock, cti)), cti, start, end,
                     scope, list(updates))


def local_hhmm(posix: int, day: bool = False) -> str:
    """A time as this device shows it (its own zone): 23:00, or with the date
    when it is not today (or `day`)."""
    t = datetime.fromtimestamp(posix).astimezone()
    if day or t.date() != datetime.now().astimezone().date():
        return t.strftime("%Y-%m-%d %H:%M")
    return t.strftime("%H:%M")


def _stretch(code: str, salt: bytes, params: dict[str, Any]) -> bytes:
    if params.get("alg") != "argon2id":
        raise DeviceError("sealed key: unknown key derivation")
    return hash_secret_raw(code.encode(), bytes(salt), time_cost=int(params["time_cost"]),
                           memory_cost=int(params["memory_cost"]),
                           parallelism=int(params["parallelism"]), hash_len=32, type=Type.ID)


def _mask(secret: bytes, lock_id: str, cti: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=bytes(cti),
                info=MASK_INFO + lock_id.encode()).derive(secret)


def _xor(a: bytes, b: bytes) -> bytes:
    return bytes(x ^ y for x, y in zip(a, b, strict=True))


def seal_grant(public: bytes, content: dict[str, Any]) -> bytes:
    """The issuer's side: a grant file for the device with this public key."""
    enc, ct = hpke.seal(public, GRANT_INFO, public, cbor.dumps(content))
    return cbor.dumps({"v": GRANT_FORMAT, "fp": fingerprint(public), "enc": enc, "ct": ct})


def grant_content(staff_id: str, site: str, start: int, end: int,
                  grants: list[Grant]) -> dict[str, Any]:
    return {"staff": staff_id, "site": site, "start": start, "end": end,
            "grants": [[g.lock_id, g.token, g.pop_key, g.cti, g.start, g.end, g.scope,
                        list(g.updates)] for g in grants]}
