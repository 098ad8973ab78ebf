"""The issuer's side of the protocol: per-lock keys, shift tokens, updates.

Only the issuer holds the site secret. Everything a lock checks is made here
with the same protocol/ code the lock runs, so both sides agree by construction;
the tests check it against independent implementations.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from protocol import clock, cose, keys, revocation, timeupdate
from protocol import token as tok

CTI_LEN = 16
RANGE_TEXT = "2020-01-01T00:00:00Z .. 2054-01-09T13:37:03Z"  # protocol/clock.py's bound


class IssueError(ValueError):
    pass


def new_site_secret() -> bytes:
    return os.urandom(32)


def public_key_bytes(signing_key: Ed25519PrivateKey) -> bytes:
    return signing_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


@dataclass
class Grant:
    """One lock's part of a staff key: the token and its proof-of-possession key."""

    lock_id: str
    token: bytes
    pop_key: bytes
    cti: bytes
    start: int
    end: int
    scope: str
    updates: list[bytes] = field(default_factory=list)

    def __repr__(self) -> str:  # the PoP key is never shown
        return f"Grant(lock_id={self.lock_id!r}, cti={self.cti.hex()}, {self.start}..{self.end})"


def issue_token(site_secret: bytes, lock_id: str, *, iss: str, sub: str, start: int, end: int,
                scope: str = "open", alarm: bool = False, suite: str = tok.SUITE_HMAC,
                signing_key: Ed25519PrivateKey | None = None, iat: int | None = None,
                cti: bytes | None = None) -> Grant:
    """A CWT for one lock and one shift (POSIX times), with its PoP key."""
    if end <= start:
        raise IssueError("a shift must end after it starts")
    if end - start > tok.MAX_LIFETIME:
        raise IssueError("a token lives at most 24 hours (one shift)")
    cti = cti if cti is not None else os.urandom(CTI_LEN)
    iat = int(time.time()) if iat is None else iat
    if not all(clock.in_range(t) for t in (start, end, iat)):
        raise IssueError(f"a token's times must lie in {RANGE_TEXT} (the lock refuses others)")
    if end - iat > tok.MAX_LIFETIME:
        # The lock refuses such a token: revocation entries are dropped 24 h
        # after their cut-off, which is only safe if no token outlives that.
        raise IssueError("a key can be issued at most 24 hours before its shift ends")
    payload = tok.encode_claims(iss, sub, lock_id, end, start, iat, cti, scope, alarm)
    secret = keys.lock_secret(site_secret, lock_id)
    if suite == tok.SUITE_HMAC:
        token = cose.mac0_create(payload, keys.token_mac_key(secret))
    elif suite == tok.SUITE_ED25519:
        if signing_key is None:
            raise IssueError("the ed25519 suite needs the site's signing key")
        token = cose.sign1_create(payload, signing_key.sign)
    else:
        raise IssueError(f"unknown suite {suite!r}")
    return Grant(lock_id, token, keys.pop_key(secret, cti), cti, start, end, scope)


def time_update(site_secret: bytes, lock_id: str, posix_time: int) -> bytes:
    if not clock.in_range(posix_time):
        raise IssueError(f"a time update must lie in {RANGE_TEXT} (the lock refuses others)")
    secret = keys.lock_secret(site_secret, lock_id)
    return timeupdate.encode(lock_id, posix_time, keys.update_key(secret))


def revocation_update(site_secret: bytes, lock_id: str, version: int, issued: int, cutoff: int,
                      staff: dict[str, int], tokens: dict[bytes, int]) -> bytes:
    secret = keys.lock_secret(site_secret, lock_id)
    return revocation.encode_update(lock_id, version, issued, cutoff, staff, tokens,
                                    keys.update_key(secret))


def admin_key_for(site_secret: bytes, lock_id: str) -> bytes:
    return keys.admin_key(keys.lock_secret(site_secret, lock_id))


def log_key_for(site_secret: bytes, lock_id: str) -> bytes:
    return keys.log_key(keys.lock_secret(site_secret, lock_id))
