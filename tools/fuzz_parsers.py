"""A time-bounded fuzzing campaign over the lock's parsers, on CPython.

    python -m tools.fuzz_parsers [--seconds S] [--seed N] [--engine atheris|random]

Coverage-guided with atheris (libFuzzer) when it is installed (`make fuzz`
installs it into .venv; it builds from a wheel here): the protocol/ modules are
instrumented and libFuzzer keeps the inputs that reach new branches, starting
from a seed corpus of valid encodings. Without atheris, or with --engine random,
it falls back to random mutation of the same seeds with the mutators of
tools/fuzz.py for the same time: that fallback is NOT coverage-guided, and says
so. FUZZ_SECONDS (default 120) bounds either.

The first input byte picks the target, the rest is its input:
  0 frames.Decoder.feed (input cut into chunks)   1 frames.decode
  2 cbor.loads (and what it accepts, cbor2 must read as the same value and
    cbor.dumps must encode again)                  3 messages.decode
  4 cose.decode                                    5 token.verify, hmac suite
  6 token.verify, ed25519 suite (a real issuer key)
  7 token.verify of the input as the payload of a COSE_Mac0 made with the
    lock's token key (past the MAC: the claims parser)
  8 revocation.decode_update, 9 the same past the MAC (then revocation.apply)
  10 timeupdate.decode,       11 the same past the MAC
Each parser may raise only its own error class (a ValueError; DEVELOPING.md):
anything else (TypeError, IndexError, KeyError, RecursionError, MemoryError,
an unbounded loop libFuzzer times out) is a finding. atheris writes the input
of a finding to build/fuzz/crash-*; make it a regression test in
tests/test_fuzz_regressions.py.
"""

from __future__ import annotations

import argparse
import importlib
import os
import random
import sys
import time
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "build" / "fuzz"
LOCK_ID = "lock-fuzz"
TARGETS = 12

atheris: Any = None
if __name__ == "__main__":  # a campaign: instrument protocol/ (tests import this plainly)
    try:
        atheris = importlib.import_module("atheris")  # optional: `make fuzz` installs it
    except ImportError:  # the fallback
        atheris = None

if atheris is not None:
    with atheris.instrument_imports(include=["protocol"]):
        from protocol import cbor, cose, frames, keys, revocation, timeupdate
        from protocol import messages as msg
        from protocol import token as tok
else:
    from protocol import cbor, cose, frames, keys, revocation, timeupdate
    from protocol import messages as msg
    from protocol import token as tok

import cbor2  # noqa: E402  (after the instrumented imports)

SITE = bytes(range(32, 64))
SECRET = keys.lock_secret(SITE, LOCK_ID)
TOKEN_KEY = keys.token_mac_key(SECRET)
UPDATE_KEY = keys.update_key(SECRET)
# RFC 8032 7.1 TEST 1's key pair (an example, never a key to use)
ED_SECRET = bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
ED_PUBLIC = bytes.fromhex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")


class Finding(Exception):
    pass


def _cbor2_same(ours: Any, theirs: Any) -> bool:
    if isinstance(ours, cbor.Tag):
        return (isinstance(theirs, cbor2.CBORTag) and ours.tag == theirs.tag
                and _cbor2_same(ours.value, theirs.value))
    if isinstance(ours, list):
        return (isinstance(theirs, list) and len(ours) == len(theirs)
                and all(_cbor2_same(a, b) for a, b in zip(ours, theirs, strict=True)))
    if isinstance(ours, dict):
        return (isinstance(theirs, dict) and len(ours) == len(theirs)
                and all(k in theirs and _cbor2_same(v, theirs[k]) for k, v in ours.items()))
    return type(ours) is type(theirs) and ours == theirs


def _has_tag(v: Any) -> bool:
    if isinstance(v, cbor.Tag):
        return True
    if isinstance(v, list):
        return any(_has_tag(x) for x in v)
    if isinstance(v, dict):
        return any(_has_tag(k) or _has_tag(x) for k, x in v.items())
    return False


def _frame_stream(first: int, body: bytes) -> None:
    d = frames.Decoder()
    step = 1 + (first // TARGETS) * 7
    for i in range(0, len(body), step):
        for p in d.feed(body[i:i + step]):
            if len(p) > frames.MAX_PAYLOAD:
                raise Finding("Decoder returned a payload over MAX_PAYLOAD")
        if d.pending >= frames.MAX_FRAME:
            raise Finding("Decoder buffered past MAX_FRAME")


def _frame(body: bytes) -> None:
    try:
        p = frames.decode(body)
    except frames.FrameError:
        return
    if frames.decode(frames.encode(p)) != p:
        raise Finding("frame round trip")


def _cbor(body: bytes) -> None:
    try:
        value = cbor.loads(body)
    except cbor.CBORError:
        return
    if cbor.loads(cbor.dumps(value)) != value:
        raise Finding("dumps/loads round trip")
    if _has_tag(value):
        return  # cbor2 gives tags 0-5, 21-37... meanings of its own: compare untagged only
    theirs = cbor2.loads(body)
    if not _cbor2_same(value, theirs):
        raise Finding(f"cbor2 reads {theirs!r}, we read {value!r}")


def _message(body: bytes) -> None:
    try:
        mtype, fields = msg.decode(body)
    except msg.MessageError:
        return
    if not isinstance(mtype, int) or not isinstance(fields, dict):
        raise Finding("decode returned something else")


def _cose(body: bytes) -> None:
    try:
        cose.decode(body)
    except cose.COSEError:
        return


def _token(body: bytes, suite: str, mac_it: bool) -> None:
    if mac_it:  # past the MAC: the claims parser itself
        body = cose.mac0_create(body, TOKEN_KEY)
    try:
        tok.verify(body, suite, ED_PUBLIC if suite == "ed25519" else TOKEN_KEY)
    except tok.TokenError:
        return


def _revocation(body: bytes, mac_it: bool) -> None:
    if mac_it:
        body = cose.mac0_create(body, UPDATE_KEY)
    try:
        update = revocation.decode_update(body, LOCK_ID, UPDATE_KEY)
        revocation.apply(revocation.RevocationList(), update, 10**8)
    except revocation.RevocationError:
        return


def _time_update(body: bytes, mac_it: bool) -> None:
    if mac_it:
        body = cose.mac0_create(body, UPDATE_KEY)
    try:
        timeupdate.decode(body, LOCK_ID, UPDATE_KEY)
    except timeupdate.TimeUpdateError:
        return


# Target n takes the input behind a first byte that is n modulo TARGETS.
_TARGETS: list[Callable[[int, bytes], None]] = [
    _frame_stream,
    lambda first, body: _frame(body),
    lambda first, body: _cbor(body),
    lambda first, body: _message(body),
    lambda first, body: _cose(body),
    lambda first, body: _token(body, "hmac", False),
    lambda first, body: _token(body, "ed25519", False),
    lambda first, body: _token(body, "hmac", True),
    lambda first, body: _revocation(body, False),
    lambda first, body: _revocation(body, True),
    lambda first, body: _time_update(body, False),
    lambda first, body: _time_update(body, True),
]


def one_input(data: bytes) -> None:
    """Run one input; raise on a finding (atheris reports it and saves the input)."""
    if not data:
        return
    _TARGETS[data[0] % TARGETS](data[0], bytes(data[1:]))


def seeds() -> list[bytes]:
    """Valid encodings, each behind the byte of its target."""
    from tools import issuer

    now = int(time.time())
    g = issuer.issue_token(SITE, LOCK_ID, iss="site", sub="staff", start=now - 60, end=now + 3600)
    nonce = bytes(16)
    proof = msg.open_proof(g.pop_key, nonce, LOCK_ID, "open", g.token)
    claims = tok.encode_claims("site", "staff", LOCK_ID, now + 3600, now, now, bytes(16), "open")
    rev_payload = cose.decode(revocation.encode_update(
        LOCK_ID, 3, now, now - 10, {"staff-a": now}, {bytes(16): now + 100}, UPDATE_KEY)).payload
    time_payload = cose.decode(timeupdate.encode(LOCK_ID, now, UPDATE_KEY)).payload
    messages = [msg.encode(msg.GET_HELLO, {}),
                msg.encode(msg.OPEN, {1: nonce, 2: g.token, 3: "open", 4: proof,
                                      5: [timeupdate.encode(LOCK_ID, now, UPDATE_KEY)],
                                      6: {1: 1, 2: 3}}),
                msg.encode(msg.ADMIN, {1: nonce, 2: "log", 3: {1: 1}, 4: bytes(32)}),
                msg.encode(msg.COMMISSION, {1: nonce, 2: LOCK_ID, 3: SECRET, 4: "hmac", 5: now,
                                            6: "site", 7: "door"})]
    out = []
    for m in messages:
        out += [b"\x00" + frames.encode(m) * 2, b"\x01" + frames.encode(m), b"\x02" + m,
                b"\x03" + m, bytes([12]) + frames.encode(m)]  # 12: Decoder, 8-byte chunks
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    ed_key = Ed25519PrivateKey.from_private_bytes(ED_SECRET)
    ed = issuer.issue_token(SITE, LOCK_ID, iss="site", sub="staff", start=now - 60,
                            end=now + 3600, suite="ed25519", signing_key=ed_key)
    out += [b"\x06" + ed.token, b"\x04" + ed.token]
    out += [b"\x02" + g.token, b"\x04" + g.token, b"\x05" + cose.mac0_create(claims, TOKEN_KEY),
            b"\x06" + g.token, b"\x07" + claims,
            b"\x08" + revocation.encode_update(LOCK_ID, 1, now, 0, {}, {}, UPDATE_KEY),
            b"\x09" + rev_payload, b"\x0a" + timeupdate.encode(LOCK_ID, now, UPDATE_KEY),
            b"\x0b" + time_payload]
    return out


def write_corpus(d: Path) -> None:
    d.mkdir(parents=True, exist_ok=True)
    for i, s in enumerate(seeds()):
        (d / f"seed-{i:03d}").write_bytes(s)


def run_atheris(seconds: int, seed: int) -> int:
    assert atheris is not None
    corpus = OUT / "corpus"
    write_corpus(corpus)
    print(f"fuzz-parsers: atheris (coverage-guided) for {seconds} s, seed {seed}, "
          f"corpus {corpus}", flush=True)

    def target(data: bytes) -> None:
        one_input(data)

    args = [sys.argv[0], f"-max_total_time={seconds}", f"-seed={seed}", "-timeout=10",
            "-rss_limit_mb=1024", "-max_len=2048", "-print_final_stats=1",
            f"-artifact_prefix={OUT}/", str(corpus)]
    atheris.Setup(args, target)
    atheris.Fuzz()  # exits the process: 0 at the time limit, non-zero on a finding
    return 0


def run_random(seconds: int, seed: int) -> int:
    from tools.fuzzframes import Mutator

    print(f"fuzz-parsers: random mutation, NOT coverage-guided (atheris "
          f"{'not installed' if atheris is None else 'not chosen'}), {seconds} s, seed {seed}",
          flush=True)
    rng = random.Random(seed)
    pool = seeds()
    mut = Mutator(rng, [s[1:] for s in pool])
    end = time.monotonic() + seconds
    n = 0
    while time.monotonic() < end:
        s = rng.choice(pool)
        data = s[:1] + mut.mutate_payload(s[1:]) if rng.random() < 0.9 else rng.randbytes(64)
        try:
            one_input(data)
        except Exception as e:
            OUT.mkdir(parents=True, exist_ok=True)
            path = OUT / f"crash-random-{seed}-{n}"
            path.write_bytes(data)
            print(f"fuzz-parsers: FINDING after {n} inputs: {type(e).__name__}: {e}; input {path}")
            return 1
        n += 1
    print(f"fuzz-parsers: {n} inputs in {seconds} s ({n / seconds:.0f}/s), no finding")
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tools.fuzz_parsers")
    p.add_argument("--seconds", type=int, default=int(os.environ.get("FUZZ_SECONDS", "120")))
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--engine", choices=("atheris", "random"), default=None)
    args = p.parse_args(argv)
    seed = args.seed
    if seed is None:
        text = os.environ.get("FUZZ_SEED", "").strip()
        seed = int(text, 0) if text else random.SystemRandom().randrange(2**31)
    engine = args.engine or ("atheris" if atheris is not None else "random")
    if engine == "atheris" and atheris is None:
        print("fuzz-parsers: atheris is not installed", file=sys.stderr)
        return 2
    OUT.mkdir(parents=True, exist_ok=True)
    return run_atheris(args.seconds, seed) if engine == "atheris" else run_random(args.seconds,
                                                                                  seed)


if __name__ == "__main__":
    sys.exit(main())
