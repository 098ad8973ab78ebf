"""protocol/adminside.py, the installer's side of the serial exchange without
I/O, against the conformance vectors (tests/make_conformance.py builds them
with cbor2 and hmac from the document, not with protocol/): the COMMISSION and
the ADMIN it builds are the documented ones byte for byte, and it takes the
documented ADMIN_RESULT as authentic and an altered one as not. LogPages, the
paged log read, is checked with hypothesis over how a lock may cut its pages."""

from __future__ import annotations

import json
from pathlib import Path

import cbor2
import make_conformance as mc
import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocol import adminside

VECTORS = json.loads((Path(__file__).resolve().parents[1] / "vectors" / "conformance_messages.json")
                     .read_text())
BY_NAME = {m["name"]: bytes.fromhex(m["payload"]) for m in VECTORS["messages"]}
ADMIN = cbor2.loads(BY_NAME["ADMIN"])
RESULT = cbor2.loads(BY_NAME["ADMIN_RESULT"])
COMMISSION = cbor2.loads(BY_NAME["COMMISSION"])


def test_the_commission_it_builds_is_the_documented_one() -> None:
    built = adminside.commission_request(COMMISSION[1], mc.LOCK, mc.KEYS["lock_secret"], "hmac",
                                         mc.NOW, mc.ISSUER)
    assert built == BY_NAME["COMMISSION"]


def test_the_admin_it_builds_is_the_documented_one() -> None:
    built = adminside.admin_request(mc.KEYS["admin_key"], ADMIN[1], mc.LOCK, "sync",
                                    {1: mc.NOW})
    assert built == BY_NAME["ADMIN"]


def test_the_documented_admin_result_is_authentic_an_altered_one_is_not() -> None:
    fields = {k: v for k, v in RESULT.items() if k != 0}
    key, nonce = mc.KEYS["admin_key"], ADMIN[1]
    assert adminside.result_authentic(fields, key, nonce, mc.LOCK) is True
    assert adminside.result_authentic(fields, key, bytes(16), mc.LOCK) is False  # another request
    assert adminside.result_authentic(fields, key, nonce, mc.OTHER_LOCK) is False
    assert adminside.result_authentic(fields, bytes(32), nonce, mc.LOCK) is False
    assert adminside.result_authentic({**fields, 2: 1}, key, nonce, mc.LOCK) is False


def record(seq: int) -> bytes:
    return seq.to_bytes(4, "big") + bytes(24)


@given(first=st.integers(1, 50), count=st.integers(0, 80),
       cuts=st.lists(st.integers(1, 24), min_size=1, max_size=90))
def test_log_pages_collect_every_record_once_in_order(first: int, count: int,
                                                      cuts: list[int]) -> None:
    """However the lock cuts its pages (1 to 24 records, LOG_PAGE), the read
    ends with every record from `first` to the bound, once, in order."""
    bound = first + count - 1
    pages = adminside.LogPages(first)
    i = 0
    while not pages.done:
        assert pages.args()[1] == pages.next_seq
        n = cuts[i % len(cuts)]
        i += 1
        page = [record(s) for s in range(pages.next_seq, min(pages.next_seq + n, bound + 1))]
        pages.take(page, bound)
        assert i < 200
    assert [int.from_bytes(r[:4], "big") for r in pages.records] == list(range(first, bound + 1))
    assert pages.progress() == (count, count)


def test_log_pages_refuse_what_cannot_belong_to_the_read() -> None:
    pages = adminside.LogPages(5)
    with pytest.raises(adminside.PageError):
        pages.take([record(4)], 10)  # before the start
    with pytest.raises(adminside.PageError):
        pages.take([record(11)], 10)  # after the bound
    for bad in (-1, None, True, "10"):
        with pytest.raises(adminside.PageError):
            pages.take([], bad)  # type: ignore[arg-type]
    pages.take([record(5), record(6)], 10)
    assert pages.args() == {1: 7, 2: 10}
    with pytest.raises(adminside.PageError):
        pages.take([record(6)], 10)  # a record again
    assert pages.progress() == (2, 6)
