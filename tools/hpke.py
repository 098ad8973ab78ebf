"""HPKE (RFC 9180), base mode only, for one cipher suite.

Suite: DHKEM(X25519, HKDF-SHA256) / HKDF-SHA256 / ChaCha20Poly1305
(kem_id 0x0020, kdf_id 0x0001, aead_id 0x0003). Host-side tool code; the
primitives (X25519, HMAC-SHA256, HKDF-Expand, ChaCha20-Poly1305) come from
the `cryptography` package. Everything HPKE adds on top of them
(LabeledExtract/LabeledExpand, DHKEM, the key schedule, nonces) is here.

Public API:

    generate_keypair() -> (private, public)          raw 32-byte X25519 keys
    derive_keypair(ikm) -> (private, public)         RFC 9180 section 7.1.3
    seal(pkR, info, aad, pt) -> (enc, ct)            single-shot, sequence 0
    open_(skR, enc, info, aad, ct) -> pt             raises HPKEError

Every failure in seal/open_ is reported as HPKEError with a fixed message
that names the failing step and never carries key material or plaintext.
"""

from __future__ import annotations

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, hmac
from cryptography.hazmat.primitives.asymmetric.x25519 import (
    X25519PrivateKey,
    X25519PublicKey,
)
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDFExpand

__all__ = [
    "AEAD_ID",
    "KDF_ID",
    "KEM_ID",
    "MODE_BASE",
    "SUITE",
    "HPKEError",
    "derive_keypair",
    "generate_keypair",
    "open_",
    "open_sealed",
    "seal",
]

KEM_ID = 0x0020  # DHKEM(X25519, HKDF-SHA256)
KDF_ID = 0x0001  # HKDF-SHA256
AEAD_ID = 0x0003  # ChaCha20Poly1305
SUITE = "DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, ChaCha20Poly1305"
MODE_BASE = 0x00

# Sizes in bytes (RFC 9180 tables 2, 3 and 5).
N_SECRET = 32  # KEM shared secret
N_ENC = 32  # encapsulated key
N_PK = 32  # public key
N_SK = 32  # private key
N_H = 32  # KDF output (SHA-256)
N_K = 32  # AEAD key
N_N = 12  # AEAD nonce
N_T = 16  # AEAD tag

_VERSION_LABEL = b"HPKE-v1"
# suite_id inside the KEM (section 4.1) and for the rest of HPKE (section 5.1).
_KEM_SUITE_ID = b"KEM" + KEM_ID.to_bytes(2, "big")
_HPKE_SUITE_ID = (
    b"HPKE" + KEM_ID.to_bytes(2, "big") + KDF_ID.to_bytes(2, "big") + AEAD_ID.to_bytes(2, "big")
)
_MAX_SEQ = (1 << (8 * N_N)) - 1
_ZERO_DH = bytes(32)


class HPKEError(Exception):
    """Any HPKE failure: bad input length or type, invalid public key,
    authentication failure. The message never contains secrets."""


# --- KDF: HKDF-SHA256 and the labelled variants (RFC 9180 section 4) ------


def _extract(salt: bytes, ikm: bytes) -> bytes:
    # HKDF-Extract (RFC 5869 2.2): HMAC-Hash(salt, IKM); an absent salt is
    # HashLen zero bytes (the same HMAC key as the empty string).
    h = hmac.HMAC(salt if salt else bytes(N_H), hashes.SHA256())
    h.update(ikm)
    return h.finalize()


def _expand(prk: bytes, info: bytes, length: int) -> bytes:
    return HKDFExpand(hashes.SHA256(), length, info).derive(prk)


def _labeled_extract(suite_id: bytes, salt: bytes, label: bytes, ikm: bytes) -> bytes:
    return _extract(salt, _VERSION_LABEL + suite_id + label + ikm)


def _labeled_expand(suite_id: bytes, prk: bytes, label: bytes, info: bytes, length: int) -> bytes:
    labeled_info = length.to_bytes(2, "big") + _VERSION_LABEL + suite_id + label + info
    return _expand(prk, labeled_info, length)


# --- KEM: DHKEM(X25519, HKDF-SHA256) (RFC 9180 sections 4.1, 7.1) ---------


def _public_from_private(sk: bytes) -> bytes:
    return X25519PrivateKey.from_private_bytes(sk).public_key().public_bytes_raw()


def _dh(sk: bytes, pk: bytes) -> bytes:
    """X25519(sk, pk); an all-zero result (low-order pk) is refused."""
    try:
        shared = X25519PrivateKey.from_private_bytes(sk).exchange(
            X25519PublicKey.from_public_bytes(pk)
        )
    except ValueError:
        # cryptography/OpenSSL refuse low-order points themselves.
        raise HPKEError("invalid public key (X25519 low-order point)") from None
    if shared == _ZERO_DH:  # RFC 9180 7.1.4 / RFC 7748 section 6.1
        raise HPKEError("invalid public key (X25519 low-order point)")
    return shared


def _extract_and_expand(dh: bytes, kem_context: bytes) -> bytes:
    eae_prk = _labeled_extract(_KEM_SUITE_ID, b"", b"eae_prk", dh)
    return _labeled_expand(_KEM_SUITE_ID, eae_prk, b"shared_secret", kem_context, N_SECRET)


def _encap(pkR: bytes, skE: bytes) -> tuple[bytes, bytes]:
    """Encap with a given ephemeral private key: (shared_secret, enc)."""
    enc = _public_from_private(skE)
    dh = _dh(skE, pkR)
    return _extract_and_expand(dh, enc + pkR), enc


def _decap(enc: bytes, skR: bytes) -> bytes:
    dh = _dh(skR, enc)
    return _extract_and_expand(dh, enc + _public_from_private(skR))


def derive_keypair(ikm: bytes) -> tuple[bytes, bytes]:
    """DeriveKeyPair for X25519 (RFC 9180 7.1.3): (raw private, raw public).

    The private key is the LabeledExpand output as the RFC prints it in
    appendix A (not pre-clamped; X25519 clamps it when used). ikm must be at
    least Nsk = 32 bytes (the RFC's SHOULD, enforced here).
    """
    if not isinstance(ikm, (bytes, bytearray)):
        raise HPKEError("ikm must be bytes")
    if len(ikm) < N_SK:
        raise HPKEError("ikm must be at least 32 bytes")
    dkp_prk = _labeled_extract(_KEM_SUITE_ID, b"", b"dkp_prk", bytes(ikm))
    sk = _labeled_expand(_KEM_SUITE_ID, dkp_prk, b"sk", b"", N_SK)
    return sk, _public_from_private(sk)


def _random_private_key() -> bytes:
    return X25519PrivateKey.generate().private_bytes_raw()


def generate_keypair() -> tuple[bytes, bytes]:
    """A fresh random X25519 key pair: (raw 32-byte private, raw 32-byte public)."""
    sk = _random_private_key()
    return sk, _public_from_private(sk)


# --- Key schedule and context (RFC 9180 sections 5.1, 5.2, 5.3) ----------


def _key_schedule_context(info: bytes) -> bytes:
    # Base mode: psk_id and psk are the empty default.
    psk_id_hash = _labeled_extract(_HPKE_SUITE_ID, b"", b"psk_id_hash", b"")
    info_hash = _labeled_extract(_HPKE_SUITE_ID, b"", b"info_hash", info)
    return bytes([MODE_BASE]) + psk_id_hash + info_hash


def _secret(shared_secret: bytes) -> bytes:
    return _labeled_extract(_HPKE_SUITE_ID, shared_secret, b"secret", b"")


class _Context:
    """Encryption context of one setup. Holds secrets: no repr of them."""

    __slots__ = ("key", "base_nonce", "exporter_secret", "seq")

    def __init__(self, key: bytes, base_nonce: bytes, exporter_secret: bytes) -> None:
        self.key = key
        self.base_nonce = base_nonce
        self.exporter_secret = exporter_secret
        self.seq = 0

    def __repr__(self) -> str:
        return f"<hpke context seq={self.seq}>"

    def _nonce(self) -> bytes:
        if self.seq >= _MAX_SEQ:
            raise HPKEError("message limit reached")
        seq_bytes = self.seq.to_bytes(N_N, "big")
        return bytes(a ^ b for a, b in zip(self.base_nonce, seq_bytes, strict=True))

    def seal(self, aad: bytes, pt: bytes) -> bytes:
        ct = ChaCha20Poly1305(self.key).encrypt(self._nonce(), pt, aad)
        self.seq += 1
        return ct

    def open(self, aad: bytes, ct: bytes) -> bytes:
        try:
            pt = ChaCha20Poly1305(self.key).decrypt(self._nonce(), ct, aad)
        except InvalidTag:
            raise HPKEError("decryption failed") from None
        self.seq += 1
        return pt

    def export(self, exporter_context: bytes, length: int) -> bytes:
        return _labeled_expand(
            _HPKE_SUITE_ID, self.exporter_secret, b"sec", exporter_context, length
        )


def _key_schedule(shared_secret: bytes, info: bytes) -> _Context:
    ks_context = _key_schedule_context(info)
    secret = _secret(shared_secret)
    return _Context(
        key=_labeled_expand(_HPKE_SUITE_ID, secret, b"key", ks_context, N_K),
        base_nonce=_labeled_expand(_HPKE_SUITE_ID, secret, b"base_nonce", ks_context, N_N),
        exporter_secret=_labeled_expand(_HPKE_SUITE_ID, secret, b"exp", ks_context, N_H),
    )


def _setup_base_s(pkR: bytes, info: bytes, skE: bytes) -> tuple[bytes, _Context]:
    """SetupBaseS with a caller-chosen ephemeral private key (tests use the
    RFC's skEm; seal uses a fresh random one). Returns (enc, context)."""
    shared_secret, enc = _encap(pkR, skE)
    return enc, _key_schedule(shared_secret, info)


def _setup_base_r(enc: bytes, skR: bytes, info: bytes) -> _Context:
    return _key_schedule(_decap(enc, skR), info)


# --- Single-shot API (RFC 9180 section 6.1) ------------------------------


def _require_bytes(name: str, value: object, length: int | None = None) -> bytes:
    if not isinstance(value, (bytes, bytearray, memoryview)):
        raise HPKEError(f"{name} must be bytes")
    data = bytes(value)
    if length is not None and len(data) != length:
        raise HPKEError(f"{name} must be {length} bytes")
    return data


def seal(recipient_public: bytes, info: bytes, aad: bytes, plaintext: bytes) -> tuple[bytes, bytes]:
    """Single-shot base-mode seal to `recipient_public`: (enc, ciphertext).

    A fresh ephemeral key is drawn per call; the ciphertext is the AEAD
    output of sequence number 0 (plaintext length + 16).
    """
    pkR = _require_bytes("recipient public key", recipient_public, N_PK)
    info_b = _require_bytes("info", info)
    aad_b = _require_bytes("aad", aad)
    pt = _require_bytes("plaintext", plaintext)
    enc, ctx = _setup_base_s(pkR, info_b, _random_private_key())
    return enc, ctx.seal(aad_b, pt)


def open_(
    recipient_private: bytes, enc: bytes, info: bytes, aad: bytes, ciphertext: bytes
) -> bytes:
    """Single-shot base-mode open. Raises HPKEError on any failure."""
    skR = _require_bytes("recipient private key", recipient_private, N_SK)
    enc_b = _require_bytes("enc", enc, N_ENC)
    info_b = _require_bytes("info", info)
    aad_b = _require_bytes("aad", aad)
    ct = _require_bytes("ciphertext", ciphertext)
    if len(ct) < N_T:
        raise HPKEError("ciphertext shorter than the AEAD tag")
    return _setup_base_r(enc_b, skR, info_b).open(aad_b, ct)


open_sealed = open_
