"""What the fuzzer sends (tools/fuzz.py): valid requests built with the
protocol code for the site's side of a fuzzing campaign, and the mutations
that turn them into byte streams a lock must refuse."""

from __future__ import annotations

import binascii
import random
import time
from typing import Any

from protocol import frames, keys, reasons
from protocol import messages as msg
from tools import issuer

LOCK_ID = "lock-fuzz"
ISSUER = "fuzz-site"


# --- building frames --------------------------------------------------------------
def frame_of(payload: bytes) -> bytes:
    """A frame around any payload (also one too long for frames.encode)."""
    crc = binascii.crc32(payload) & 0xFFFFFFFF
    return frames.cobs_encode(payload + crc.to_bytes(4, "little")) + b"\x00"


INTERESTING = (0x00, 0x01, 0x17, 0x18, 0x19, 0x1a, 0x1b, 0x1f, 0x20, 0x38, 0x3b, 0x40, 0x58,
               0x5b, 0x5f, 0x60, 0x7b, 0x7f, 0x80, 0x9b, 0x9f, 0xa0, 0xbb, 0xbf, 0xc0, 0xd8,
               0xdb, 0xf4, 0xf5, 0xf6, 0xf7, 0xf9, 0xfa, 0xfb, 0xff)


class Mutator:
    """Random and mutated payloads and byte streams from a corpus of valid payloads."""

    def __init__(self, rng: random.Random, corpus: list[bytes]) -> None:
        self.rng = rng
        self.corpus = corpus

    def pick(self) -> bytes:
        return self.rng.choice(self.corpus)

    # payload mutations (framed with a valid CRC: they reach the message decoder)
    def bitflip(self, p: bytes) -> bytes:
        b = bytearray(p or b"\x00")
        for _ in range(self.rng.randint(1, 8)):
            i = self.rng.randrange(len(b) * 8)
            b[i // 8] ^= 1 << (i % 8)
        return bytes(b)

    def overwrite(self, p: bytes) -> bytes:
        b = bytearray(p or b"\x00")
        for _ in range(self.rng.randint(1, 4)):
            b[self.rng.randrange(len(b))] = self.rng.choice(INTERESTING)
        return bytes(b)

    def truncate(self, p: bytes) -> bytes:
        return p[:self.rng.randrange(len(p))] if p else p

    def splice(self, p: bytes) -> bytes:
        q = self.pick()
        return p[:self.rng.randint(0, len(p))] + q[self.rng.randint(0, len(q)):]

    def insert(self, p: bytes) -> bytes:
        i = self.rng.randint(0, len(p))
        q = self.pick()
        j = self.rng.randint(0, len(q))
        return p[:i] + q[j:j + self.rng.randint(1, 40)] + p[i:]

    def length_lie(self, p: bytes) -> bytes:
        """A string/array/map head that announces far more than is there."""
        b = bytearray(p or b"\xa1\x00\x05")
        heads = [i for i, v in enumerate(b) if v >> 5 in (2, 3, 4, 5)] or [0]
        i = self.rng.choice(heads)
        major = b[i] & 0xE0
        lie = self.rng.choice([bytes([major | 0x1b]) + b"\xff" * 8,
                               bytes([major | 0x1a]) + b"\x7f\xff\xff\xff",
                               bytes([major | 0x19]) + b"\xff\xff",
                               bytes([major | 0x18, 0xff]),
                               bytes([major | self.rng.randint(0x1c, 0x1f)])])
        return bytes(b[:i]) + lie + bytes(b[i + 1:])

    def deep(self, p: bytes) -> bytes:
        k = self.rng.choice((8, 17, 33, 64, 200, 500, 1000))
        kind = self.rng.randrange(4)
        if kind == 0:
            return b"\x81" * k + b"\x00"
        if kind == 1:
            return b"\xa1\x00" * (k // 2) + b"\x00"
        if kind == 2:
            return b"\xc6" * k + b"\x00"  # tags in tags
        return b"\xa2\x00\x02\x02" + b"\x81" * k + b"\x40"  # OPEN with a deep token

    def huge(self, p: bytes) -> bytes:
        return self.rng.choice([
            b"\x5b" + b"\xff" * 8, b"\x9b" + b"\xff" * 8, b"\xbb\x00\x00\x00\x01\x00\x00\x00\x00",
            b"\xa5\x00\x02\x02\x5a\xff\xff\xff\xff", b"\xa2\x00\x07\x03\xba\xff\xff\xff\xff",
            b"\xa1\x00\x1b" + b"\xff" * 8, b"\xa1\x3b" + b"\xff" * 8 + b"\x00",
            b"\x7a\x00\x0f\xff\xff" + b"a" * 20])

    def weird(self, p: bytes) -> bytes:
        """Things CBOR has and these messages never use."""
        return self.rng.choice([
            b"\xa1\x00\xfb\x40\x14\x00\x00\x00\x00\x00\x00", b"\xbf\x00\x05\xff",
            b"\xa1\x00\xf9\x45\x00", b"\xa2\x00\x05\xf7\xf6", b"\xa1\x00\xc1\x05",
            b"\xa1\x00\xf8\x20", b"\x9f\x00\xff", b"\xa1\x00\x5f\x41\x00\xff",
            b"\xa1\x00\x7f\x61a\xff", b"\xa1\x00\x05\x00", b"\xa2\x00\x05\x00\x05",
            b"\xa1\x00\x25", b"\xa1\x00\x3b\x7f\xff\xff\xff\xff\xff\xff\xff",
            b"\xa1\x00\x1b\x7f\xff\xff\xff\xff\xff\xff\xff", b"\xa1\x40\x05", b"\xa1\xf4\x05",
            b"\xa2\x00\x02\x02\x62\xc3\x28",  # invalid UTF-8 where text is expected
        ]) + (p[3:] if self.rng.random() < 0.3 else b"")

    def random_payload(self, p: bytes) -> bytes:
        return self.rng.randbytes(self.rng.choice((0, 1, 2, 3, 8, 32, 200, 1024)))

    def oversized(self, p: bytes) -> bytes:
        return b"\xa1\x00\x05" + b"\x00" * self.rng.randint(1022, 1100)

    PAYLOAD_OPS = ("bitflip", "bitflip", "bitflip", "overwrite", "overwrite", "truncate",
                   "splice", "insert", "length_lie", "deep", "huge", "weird", "random_payload",
                   "oversized")

    def mutate_payload(self, p: bytes) -> bytes:
        out = p
        for _ in range(self.rng.choice((1, 1, 1, 2, 3))):
            out = getattr(self, self.rng.choice(self.PAYLOAD_OPS))(out)
        return out

    # stream mutations (the frame itself)
    def stream(self, valid: bytes, spent: list[bytes]) -> tuple[bytes, str]:
        """One fuzz item: bytes to write, and the kind of mutation (for the tally).
        `valid` is a valid payload (often for the live nonce); `spent` more."""
        r = self.rng.random()
        if r < 0.60:
            return frame_of(self.mutate_payload(valid)), "payload"
        f = frame_of(valid)
        if r < 0.70:  # damage the frame: the CRC or the COBS breaks
            b = bytearray(f[:-1])
            for _ in range(self.rng.randint(1, 4)):
                i = self.rng.randrange(len(b) * 8)
                b[i // 8] ^= 1 << (i % 8)
            return bytes(b) + b"\x00", "frame-bits"
        if r < 0.76:  # a frame cut short, glued to the next
            return f[:self.rng.randrange(1, len(f))] + frame_of(self.pick()), "frame-cut"
        if r < 0.82:  # garbage between valid (spent) frames
            parts = []
            for _ in range(self.rng.randint(2, 6)):
                parts.append(self.rng.randbytes(self.rng.randint(1, 60)))
                parts.append(frame_of(self.rng.choice(spent)))
            return b"".join(parts), "interleave"
        if r < 0.86:  # a frame longer than MAX_FRAME, no zero in it
            n = self.rng.randint(frames.MAX_FRAME - 2, frames.MAX_FRAME + 600)
            return bytes(self.rng.randint(1, 255) for _ in range(n)) + b"\x00", "oversize"
        if r < 0.90:  # raw random bytes
            return self.rng.randbytes(self.rng.randint(1, 300)) + b"\x00", "random"
        if r < 0.93:  # empty frames and zeros around a mutated frame
            return (b"\x00" * self.rng.randint(1, 8) + frame_of(self.mutate_payload(valid))
                    + b"\x00" * self.rng.randint(0, 3)), "zeros"
        if r < 0.97:  # two frames spliced at the byte level
            g = frame_of(self.pick())
            return f[:self.rng.randrange(len(f))] + g[self.rng.randrange(len(g)):], "frame-splice"
        return b"\x00" + frame_of(self.mutate_payload(self.pick())), "payload"


# --- what counts as a valid request --------------------------------------------------
# The fields that make a request what it is. OPEN's proof covers nonce, token
# and action, not OPEN_ARGS (PROTOCOL.md 5): a valid request with other
# arguments is still valid (a log read of another page), so it is not sent.
CHECKED = {msg.OPEN: (1, 2, 3, 4), msg.ADMIN: (1, 2, 3, 4), msg.COMMISSION: tuple(range(1, 9))}


def requests_in(stream: bytes) -> list[tuple[int, dict[int, Any]]]:
    """The messages the lock's decoder and message parser find in `stream`."""
    out = []
    for payload in frames.Decoder().feed(stream):
        try:
            out.append(msg.decode(payload))
        except msg.MessageError:
            pass
    return out


def same_request(a: tuple[int, dict[int, Any]], b: tuple[int, dict[int, Any]]) -> bool:
    if a[0] != b[0] or a[0] not in CHECKED:
        return False
    return all(a[1].get(k) == b[1].get(k) for k in CHECKED[a[0]])


ODD_ACTIONS = ("", "admin", "opeN", "open ", " open", "log\x00", "x" * 16, "öppna", "OPEN",
               "status", "decommission")
ODD_VALUES: tuple[Any, ...] = (-1, 0, 2**64 - 1, -(2**63), True, False, "1", b"", [], {}, [1, 2], {1: {1: 1}},
              2**31, 2**30)


class SiteSide:
    """The site of a fuzzing campaign: its secrets, grants and valid requests."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.site_secret = rng.randbytes(32)
        self.secret = keys.lock_secret(self.site_secret, LOCK_ID)
        self.admin_key = keys.admin_key(self.secret)
        self.grants: list[issuer.Grant] = []

    def grant(self, sub: str, rng: random.Random | None = None) -> issuer.Grant:
        now = int(time.time())
        return issuer.issue_token(self.site_secret, LOCK_ID, iss=ISSUER, sub=sub,
                                  start=now - 600, end=now + 3600,
                                  scope=(rng or self.rng).choice(("open", "open log", "log")))

    def updates(self) -> list[bytes]:
        now = int(time.time())
        return [issuer.time_update(self.site_secret, LOCK_ID, now),
                issuer.revocation_update(self.site_secret, LOCK_ID, 1, now, 0, {}, {}),
                issuer.time_update(self.site_secret, "lock-other", now)]

    def corpus(self, rng: random.Random) -> list[bytes]:
        g = self.grant("fuzz-corpus", rng)
        nonce = rng.randbytes(16)
        proof = msg.open_proof(g.pop_key, nonce, LOCK_ID, "open", g.token)
        args: dict[int, Any] = {1: 1}
        return [
            msg.encode(msg.GET_HELLO, {}),
            msg.encode(msg.OPEN, {1: nonce, 2: g.token, 3: "open", 4: proof}),
            msg.encode(msg.OPEN, {1: nonce, 2: g.token, 3: "log", 4: proof, 5: self.updates(),
                                  6: {1: 1, 2: 5}}),
            msg.encode(msg.ADMIN, {1: nonce, 2: "log", 3: args,
                                   4: msg.admin_mac(self.admin_key, nonce, LOCK_ID, "log", args)}),
            msg.encode(msg.COMMISSION, {1: nonce, 2: "lock-x", 3: bytes(32), 4: "ed25519",
                                        5: int(time.time()), 6: ISSUER, 7: "door", 8: bytes(32)}),
            msg.encode(msg.HELLO, {1: LOCK_ID, 2: nonce, 3: int(time.time()), 4: 0, 5: 0, 6: True,
                                   7: 1, 8: "hmac", 9: {4: 1, 5: 2}}),
            msg.encode(msg.ERROR, {1: reasons.REPLAY, 2: nonce}),
            msg.encode(msg.RESULT, {1: nonce, 2: 0, 3: int(time.time()), 4: 3, 5: {1: 0},
                                    6: bytes(32)}),
            g.token, *self.updates(),
        ]

    def live_request(self, rng: random.Random, nonce: bytes, serial: bool) -> tuple[bytes, bool]:
        """A valid request for the live nonce, to be mutated, and whether it is
        one that cannot be allowed whatever happens to it (an unknown action)."""
        if serial and rng.random() < 0.4:
            op, args = rng.choice((("log", {1: 1}), ("status", {}), ("sync", {})))
            return msg.encode(msg.ADMIN, {1: nonce, 2: op, 3: args, 4: msg.admin_mac(
                self.admin_key, nonce, LOCK_ID, op, args)}), False
        g = rng.choice(self.grants)
        action = rng.choice(("open", "log"))
        if rng.random() < 0.15:
            # Structure-aware: a real proof over an action no lock knows, with odd
            # arguments: past the token and the proof, into the refusals.
            action = rng.choice(ODD_ACTIONS)
            odd = rng.choice(ODD_VALUES)
            args = {rng.choice((1, 2, 3, -1, 99)): odd}  # under the proof, as a key sends it
            odd_open: dict[int, Any] = {
                1: nonce, 2: g.token, 3: action,
                4: msg.open_proof(g.pop_key, nonce, LOCK_ID, action, g.token, args), 6: args}
            return msg.encode(msg.OPEN, odd_open), True
        fields: dict[int, Any] = {1: nonce, 2: g.token, 3: action,
                                  4: msg.open_proof(g.pop_key, nonce, LOCK_ID, action, g.token)}
        if rng.random() < 0.3:
            fields[5] = rng.sample(self.updates(), rng.randint(1, 3))
        if action == "log":
            fields[6] = {1: rng.randint(0, 3)}
        return msg.encode(msg.OPEN, fields), False

