# protocol.adminside on both interpreters: the ADMIN it builds carries the MAC
# of tests/vectors/cose.json (computed by tests/make_vectors.py with cbor2 and
# hmac, not with this code); the ADMIN_RESULT of that vector is taken as
# authentic and an altered one is not; a paged log read ends with every
# record once. Runs on CPython (pytest) and MicroPython (tests/mpy_runner.py).
from protocol import adminside  # noqa: I001
from protocol import messages as m

import testvectors

u = testvectors.unhex
V = testvectors.load("cose")
LOCK = V["lock_id"]
NONCE = u(V["nonce"])
ADMIN_KEY = u(V["admin_key"])
ADMIN_VEC = V["admin_mac"]
RESULT_VEC = V["admin_result_mac"]
del V  # keep the heap small on MicroPython


def pairs(p):
    return {k: v for k, v in p}


def test_admin_request_carries_the_vector_mac():
    args = pairs(ADMIN_VEC["args"])
    _, f = m.decode(adminside.admin_request(ADMIN_KEY, NONCE, LOCK, ADMIN_VEC["op"], args))
    assert f[m.ADMIN_NONCE] == NONCE and f[m.ADMIN_OP] == ADMIN_VEC["op"]
    assert f[m.ADMIN_ARGS] == args
    assert f[m.ADMIN_MAC] == u(ADMIN_VEC["mac"])


def test_admin_result_of_the_vector_is_authentic_and_an_altered_one_is_not():
    fields = {m.ADMIN_RESULT_NONCE: NONCE, m.ADMIN_RESULT_OUTCOME: RESULT_VEC["outcome"],
              m.ADMIN_RESULT_DATA: pairs(RESULT_VEC["data"]),
              m.ADMIN_RESULT_MAC: u(RESULT_VEC["mac"])}
    assert adminside.result_authentic(fields, ADMIN_KEY, NONCE, LOCK)
    assert not adminside.result_authentic(fields, ADMIN_KEY, bytes(16), LOCK)
    assert not adminside.result_authentic(fields, bytes(32), NONCE, LOCK)
    fields[m.ADMIN_RESULT_OUTCOME] = 1
    assert not adminside.result_authentic(fields, ADMIN_KEY, NONCE, LOCK)


def test_a_paged_log_read_takes_every_record_once():
    pages = adminside.LogPages(3)
    rec = [s.to_bytes(4, "big") + bytes(24) for s in range(3, 10)]
    pages.take(rec[0:3], 9)
    assert pages.args() == {m.LOG_FROM: 6, m.LOG_BOUND: 9} and not pages.done
    assert testvectors.raises(adminside.PageError, pages.take, rec[2:3], 9)
    pages.take(rec[3:], 9)
    assert pages.done and pages.records == rec and pages.progress() == (7, 7)
