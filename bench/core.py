# Benchmark workload, portable: runs under MicroPython and CPython.
# Usage: micropython -X heapsize=N bench/core.py WORKLOAD COUNT INPUT.json
# Prints "ok <seconds per operation>" if all COUNT operations complete.
import gc
import json
import sys
import time

sys.path.insert(0, ".")
if hasattr(gc, "threshold"):  # MicroPython: the lock's policy (firmware/main.py tune_gc)
    gc.threshold((gc.mem_free() + gc.mem_alloc()) // 16)

from protocol import crypto, events, keys  # noqa: E402
from protocol import messages as msg  # noqa: E402
from protocol import token as tok  # noqa: E402


def _now():
    try:
        return time.ticks_us() / 1e6
    except AttributeError:
        return time.perf_counter()


def unlock(v):
    # What the lock does for one HMAC token: verify, proof of possession,
    # decision, event record.
    secret = bytes.fromhex(v["secret"])
    token = bytes.fromhex(v["token"])
    nonce = bytes.fromhex(v["nonce"])
    proof = bytes.fromhex(v["proof"])
    lock_id = v["lock_id"]
    now = v["now"]
    token_key = keys.token_mac_key(secret)
    log_key = keys.log_key(secret)
    prev = events.GENESIS_MAC

    def op(i):
        claims = tok.verify(token, tok.SUITE_HMAC, token_key)
        pop = keys.pop_key(secret, claims.cti)
        if not crypto.eq(msg.open_proof(pop, nonce, lock_id, "open", token), proof):
            raise SystemExit("proof failed")
        if tok.decide(claims, lock_id, now, True, None, "open") != 0:
            raise SystemExit("decision failed")
        return events.encode(i + 1, now, events.OPENED, 0, 0, events.key_id_of(claims.sub),
                             prev, log_key)
    return op


def hmac_calls(v):
    """The (key length, data length) of every HMAC-SHA256 call one unlock
    decision makes (HKDF's included), counted by wrapping the function."""
    from protocol import crypto as c
    from protocol import events as e

    calls = []
    real = c.hmac_sha256

    def counting(key, data):
        calls.append((len(key), len(data)))
        return real(key, data)

    c.hmac_sha256 = counting
    e.hmac_sha256 = counting
    try:
        unlock(v)(0)
    finally:
        c.hmac_sha256 = real
        e.hmac_sha256 = real
    return calls


def floor(v):
    # The floor of the decision: the same HMAC-SHA256 calls, over inputs of
    # the same sizes, and nothing else.
    calls = hmac_calls(v)
    inputs = [(bytes(range(k)) if k <= 256 else bytes(k), bytes(n)) for k, n in calls]
    print("calls %d" % len(calls))
    mac = crypto.hmac_sha256

    def op(i):
        for key, data in inputs:
            mac(key, data)
    return op


def ed25519(v):
    pk = bytes.fromhex(v["ed_pk"])
    sig = bytes.fromhex(v["ed_sig"])
    m = bytes.fromhex(v["ed_msg"])

    def op(i):
        if not crypto.ed25519_verify(pk, m, sig):
            raise SystemExit("signature failed")
    return op


def main():
    workload, count, path = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    with open(path) as f:
        v = json.load(f)
    op = {"unlock": unlock, "ed25519": ed25519, "floor": floor}[workload](v)
    op(0)  # warm-up (and a first correctness check)
    t0 = _now()
    for i in range(count):
        op(i)
    print("ok %.6f" % ((_now() - t0) / count))


main()
