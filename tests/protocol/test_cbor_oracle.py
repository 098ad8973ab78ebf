"""protocol.cbor against cbor2 (an independent encoder/decoder) and CPython's UTF-8 codec.

cbor2's canonical=True sorts map keys length-first (RFC 7049), ours bytewise
(RFC 8949 section 4.2.1): the two agree byte for byte only when, in every map,
all keys encode to the same length; otherwise we check the bytewise order directly.
"""

import binascii
import json
from pathlib import Path

import cbor2
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_cbor import from_json  # the portable tests' reading of the vector file

from protocol import cbor
from protocol.cbor import MAX_DEPTH, CBORError, Tag, dumps, loads

VECTORS = Path(__file__).resolve().parents[1] / "vectors" / "cbor.json"

# Tags cbor2 decodes into other objects (datetime, int, Decimal, set, ...): keep them
# out of values that cbor2 must give back unchanged.
CBOR2_SEMANTIC_TAGS = {0, 1, 2, 3, 4, 5, 25, 28, 29, 30, 35, 36, 37, 100, 256, 258, 260,
                       261, 262, 263, 264, 265, 266, 269, 1004, 43000, 55799}

SETTINGS = settings(max_examples=400, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


# ---------------------------------------------------------------- helpers


def to_cbor2(x):
    if isinstance(x, Tag):
        return cbor2.CBORTag(x.tag, to_cbor2(x.value))
    if isinstance(x, list):
        return [to_cbor2(v) for v in x]
    if isinstance(x, dict):
        return {k: to_cbor2(v) for k, v in x.items()}
    return x


def from_cbor2(x):
    if isinstance(x, cbor2.CBORTag):
        return Tag(x.tag, from_cbor2(x.value))
    if isinstance(x, list):
        return [from_cbor2(v) for v in x]
    if isinstance(x, dict):
        return {from_cbor2(k): from_cbor2(v) for k, v in x.items()}
    return x


def same(a, b):
    """Equality that tells bool from int, bytes from str and list from tuple."""
    if type(a) is not type(b):
        return False
    if isinstance(a, list):
        return len(a) == len(b) and all(same(a[i], b[i]) for i in range(len(a)))
    if isinstance(a, dict):
        if a.keys() != b.keys() or not all(any(same(k, j) for j in b) for k in a):
            return False  # (the second test tells 1 from True)
        return all(same(x, b[k]) for k, x in a.items())
    if isinstance(a, Tag):
        return same(a.tag, b.tag) and same(a.value, b.value)
    return a == b


def maps(x):
    """Every dict inside x."""
    if isinstance(x, dict):
        yield x
        for v in x.values():
            yield from maps(v)
    elif isinstance(x, list):
        for v in x:
            yield from maps(v)
    elif isinstance(x, Tag):
        yield from maps(x.value)


def cbor2_key(k):
    return cbor2.dumps(to_cbor2(k), canonical=True)


def keys_same_length(x):
    return all(len({len(cbor2_key(k)) for k in m}) <= 1 for m in maps(x))


def has_semantic_tag(x):
    if isinstance(x, Tag):
        return x.tag in CBOR2_SEMANTIC_TAGS or has_semantic_tag(x.value)
    if isinstance(x, list):
        return any(has_semantic_tag(v) for v in x)
    if isinstance(x, dict):
        return any(has_semantic_tag(k) or has_semantic_tag(v) for k, v in x.items())
    return False


# ---------------------------------------------------------------- strategies

INTS = st.one_of(
    st.integers(-(2**64), 2**64 - 1),
    st.integers(-300, 300),
    st.sampled_from([23, 24, 255, 256, 65535, 65536, 2**32 - 1, 2**32, 2**64 - 1,
                     -24, -25, -256, -257, -(2**32), -(2**32) - 1, -(2**64)]),
)
TEXT = st.text(st.characters(exclude_categories=("Cs",)), max_size=20)
BYTES = st.binary(max_size=30)
KEYS = st.one_of(INTS, TEXT, BYTES, st.booleans(), st.none())
TAGS = st.integers(0, 2**64 - 1).filter(lambda t: t not in CBOR2_SEMANTIC_TAGS)
LEAVES = st.one_of(INTS, TEXT, BYTES, st.booleans(), st.none())


def nested(depth):
    s = LEAVES
    for _ in range(depth):
        s = st.one_of(
            LEAVES,
            st.lists(s, max_size=4),
            st.dictionaries(KEYS, s, max_size=4),
            st.builds(Tag, TAGS, s),
        )
    return s


_INNER = nested(3)
VALUES = st.one_of(
    LEAVES,
    st.lists(_INNER, max_size=5),
    st.dictionaries(KEYS, _INNER, max_size=5),
    st.dictionaries(KEYS, _INNER, min_size=2, max_size=6),
    st.builds(Tag, TAGS, _INNER),
)


# ---------------------------------------------------------------- (a) decoding cbor2 output


@SETTINGS
@given(VALUES)
def test_loads_reads_cbor2_output(value):
    native = to_cbor2(value)
    assert same(loads(cbor2.dumps(native)), value)
    assert same(loads(cbor2.dumps(native, canonical=True)), value)


# ---------------------------------------------------------------- (b) deterministic encoding


@SETTINGS
@given(VALUES)
def test_dumps_is_deterministic(value):
    enc = dumps(value)
    ref = cbor2.dumps(to_cbor2(value), canonical=True)
    if keys_same_length(value):
        assert enc == ref
    else:
        assert len(enc) == len(ref)
    assert same(from_cbor2(cbor2.loads(enc)), value)
    assert same(loads(enc), value)
    # bytewise key order, checked on cbor2's encoding of each key (loads keeps wire order)
    for m in maps(loads(enc)):
        encoded = [cbor2_key(k) for k in m]
        assert encoded == sorted(encoded)


@SETTINGS
@given(st.dictionaries(KEYS, st.integers(0, 10), min_size=2, max_size=8))
def test_dumps_map_order_bytewise(m):
    enc = dumps(m)
    pairs = sorted((cbor2_key(k), cbor2.dumps(v)) for k, v in m.items())
    body = b"".join(k + v for k, v in pairs)
    assert enc.endswith(body)
    assert enc[: len(enc) - len(body)] == cbor2.dumps(m, canonical=True)[: len(enc) - len(body)]


# ---------------------------------------------------------------- (c) robustness


def only_cbor_error(data):
    try:
        value = loads(data)
    except CBORError:
        return None
    # whatever decodes re-encodes to the same length (only key order may differ),
    # to exactly the input if the input was deterministic, and decodes again
    enc = dumps(value)
    assert len(enc) == len(data)
    assert same(loads(enc), value)
    if not any(len(m) > 1 for m in maps(value)):
        assert enc == bytes(data)
    return value


@settings(max_examples=1500, deadline=None)
@given(st.binary(max_size=64))
def test_random_bytes_only_raise_cbor_error(data):
    only_cbor_error(data)


@SETTINGS
@given(VALUES, st.data())
def test_mutated_encodings_only_raise_cbor_error(value, data):
    enc = bytearray(dumps(value))
    for _ in range(data.draw(st.integers(1, 3))):
        op = data.draw(st.sampled_from(["flip", "set", "insert", "delete", "truncate"]))
        i = data.draw(st.integers(0, max(len(enc) - 1, 0)))
        if op == "flip" and enc:
            enc[i] ^= 1 << data.draw(st.integers(0, 7))
        elif op == "set" and enc:
            enc[i] = data.draw(st.integers(0, 255))
        elif op == "insert":
            enc.insert(i, data.draw(st.integers(0, 255)))
        elif op == "delete" and enc:
            del enc[i]
        elif op == "truncate":
            del enc[i:]
    only_cbor_error(bytes(enc))


@SETTINGS
@given(st.binary(max_size=12))
def test_text_utf8_matches_cpython_codec(raw):
    data = bytes([0x60 + len(raw)]) + raw
    try:
        expected = raw.decode("utf-8")
    except UnicodeDecodeError:
        expected = None
    if expected is None:
        try:
            loads(data)
        except CBORError:
            return
        raise AssertionError("accepted invalid UTF-8 " + raw.hex())
    assert loads(data) == expected


def test_utf8_check_exhaustive_short_sequences():
    # _utf8_ok itself (on CPython str() would hide its mistakes; MicroPython relies on it):
    # every 2-byte sequence, and every 3-byte sequence with a 3-byte lead (E0-EF)
    for a in range(256):
        for b in range(256):
            raw = bytes((a, b))
            ok = True
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError:
                ok = False
            assert cbor._utf8_ok(raw, 0, 2) == ok, raw.hex()
    for a in range(0xE0, 0xF0):
        for b in range(256):
            for c in (0x00, 0x7F, 0x80, 0xBF, 0xC0, 0xFF):
                raw = bytes((a, b, c))
                ok = True
                try:
                    raw.decode("utf-8")
                except UnicodeDecodeError:
                    ok = False
                assert cbor._utf8_ok(raw, 0, 3) == ok, raw.hex()
    # every second byte after a 4-byte (and invalid F5-FF) lead
    for a in range(0xF0, 0x100):
        for b in range(256):
            for rest in (b"\x80\x80", b"\xbf\xbf", b"\x80\x7f", b"\xc0\x80"):
                raw = bytes((a, b)) + rest
                ok = True
                try:
                    raw.decode("utf-8")
                except UnicodeDecodeError:
                    ok = False
                assert cbor._utf8_ok(raw, 0, 4) == ok, raw.hex()


@SETTINGS
@given(st.lists(st.integers(0x10000, 0x10FFFF).map(chr), max_size=4).map("".join))
def test_four_byte_text_round_trips(s):
    enc = dumps(s)
    assert enc == cbor2.dumps(s)
    assert loads(enc) == s


# ---------------------------------------------------------------- limits and vectors


def test_depth_limit_matches_cbor2_encoding():
    v = 0
    for i in range(MAX_DEPTH):
        v = [v] if i % 3 == 0 else ({i: v} if i % 3 == 1 else Tag(i + 40, v))
    enc = cbor2.dumps(to_cbor2(v), canonical=True)
    assert dumps(v) == enc
    assert same(loads(enc), v)
    try:
        loads(cbor2.dumps([to_cbor2(v)]))
    except CBORError:
        pass
    else:
        raise AssertionError("depth past MAX_DEPTH accepted")


def test_vector_file_agrees_with_cbor2():
    # the hand-typed vectors, checked by an independent decoder
    vectors = json.loads(VECTORS.read_text(encoding="utf-8"))
    checked = 0
    for v in vectors["valid"]:
        value = from_json(v["value"])
        if has_semantic_tag(value):
            continue
        data = binascii.unhexlify(v["hex"])
        assert same(from_cbor2(cbor2.loads(data)), value), v["hex"]
        if v["deterministic"] and keys_same_length(value):
            assert cbor2.dumps(to_cbor2(value), canonical=True) == data, v["hex"]
        checked += 1
    assert checked >= 40
    for v in vectors["invalid"]:
        data = binascii.unhexlify(v["hex"])
        if "not closed" in v["comment"] or "end of input" in v["comment"]:
            try:
                cbor2.loads(data)
            except cbor2.CBORDecodeError:
                pass
            else:
                raise AssertionError("cbor2 accepts " + v["hex"])


def test_huge_length_is_refused_before_anything_is_allocated():
    """A head announcing 2**64 - 1 items or bytes, with 1 byte behind it: the
    decoder checks the count against the input before it builds anything, so
    the peak allocation stays tiny (a decoder that believed the length would
    allocate gigabytes, or at least the announced list)."""
    import tracemalloc

    tracemalloc.start()
    try:
        for head in (b"\x9b", b"\xbb", b"\x5b", b"\x7b"):
            for _ in range(1000):
                try:
                    loads(head + b"\xff" * 8 + b"\x00")
                except CBORError as exc:
                    assert "truncated" in str(exc)
                else:
                    raise AssertionError("a length past the input was accepted")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 64 * 1024



def test_wide_memoryview_rejected():
    import array

    assert loads(memoryview(array.array("B", [0x18, 0x64]))) == 100
    try:
        loads(memoryview(array.array("H", [0x18, 0x64])))
    except CBORError:
        pass
    else:
        raise AssertionError("memoryview of 16-bit items accepted")
