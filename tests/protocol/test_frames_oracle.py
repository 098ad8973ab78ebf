"""protocol.frames against a deliberately dumb reference COBS written from the spec.

No independent COBS package is installed (`import cobs` fails), so the oracle below
is a test oracle only: slow, written differently (split on zeros), and kept obvious.
CRC-32 comes from zlib.
"""

import zlib

from hypothesis import given, settings
from hypothesis import strategies as st

from protocol import frames
from protocol.frames import MAX_FRAME, MAX_PAYLOAD, Decoder, FrameError

SETTINGS = settings(deadline=None, max_examples=150)


# --- reference (test oracle) -------------------------------------------------------

def ref_cobs_encode(data: bytes) -> bytes:
    """Cheshire & Baker: append a zero, cut after each zero, code = chunk length + 1;
    chunks of 254 non-zero bytes become 0xFF blocks with no implied zero; a block
    that ends the data gets no trailing code byte."""
    out = b""
    chunks = data.split(b"\0")
    for idx, chunk in enumerate(chunks):
        last = idx == len(chunks) - 1
        full = False
        while len(chunk) >= 254:
            out += b"\xff" + chunk[:254]
            chunk = chunk[254:]
            full = True
        if last and full and not chunk:
            break
        out += bytes([len(chunk) + 1]) + chunk
    return out


def ref_cobs_decode(enc: bytes):
    """The decoded bytes, or None if enc is not COBS."""
    groups = []
    i = 0
    while i < len(enc):
        code = enc[i]
        if code == 0 or i + code > len(enc) or 0 in enc[i + 1:i + code]:
            return None
        groups.append((enc[i + 1:i + code], code == 0xFF))
        i += code
    out = b""
    for k, (data, full) in enumerate(groups):
        out += data
        if not full and k < len(groups) - 1:
            out += b"\0"
    return out


def crc_le(data: bytes) -> bytes:
    return zlib.crc32(data).to_bytes(4, "little")


def ref_frame(payload: bytes) -> bytes:
    return ref_cobs_encode(payload + crc_le(payload)) + b"\0"


def ref_unframe(segment: bytes):
    """The payload carried by the bytes between two zeros, or None."""
    if len(segment) > MAX_FRAME - 1:
        return None
    body = ref_cobs_decode(segment)
    if body is None or len(body) < 4 or len(body) - 4 > MAX_PAYLOAD:
        return None
    payload = body[:-4]
    return payload if crc_le(payload) == body[-4:] else None


def ref_stream(stream: bytes):
    """(payloads, errors) the decoder should give for stream: every non-empty run
    of bytes ended by a zero is one frame attempt; a trailing run is pending."""
    out, errors = [], 0
    for seg in stream.split(b"\0")[:-1]:
        if seg:
            p = ref_unframe(seg)
            if p is None:
                errors += 1
            else:
                out.append(p)
    return out, errors


def test_oracle_matches_published_examples():
    assert ref_cobs_encode(b"\x11\x22\x00\x33") == b"\x03\x11\x22\x02\x33"
    assert ref_cobs_encode(bytes(range(1, 256))) == b"\xff" + bytes(range(1, 255)) + b"\x02\xff"


# --- strategies --------------------------------------------------------------------

def payloads(max_size=MAX_PAYLOAD):
    # zeros and 254-byte runs are where COBS goes wrong: bias towards them
    return st.one_of(
        st.binary(max_size=max_size),
        st.lists(st.sampled_from([0, 1, 0xFF]), max_size=max_size).map(bytes),
        st.integers(0, max_size).map(lambda n: bytes([7]) * n),
        st.integers(250, 520).map(lambda n: bytes([0x55]) * n + b"\0" + bytes([0x66]) * 300),
    )


def chunked(data: bytes, cuts):
    points = sorted({c % (len(data) + 1) for c in cuts})
    parts, prev = [], 0
    for p in points + [len(data)]:
        parts.append(data[prev:p])
        prev = p
    return parts


# --- properties --------------------------------------------------------------------

@SETTINGS
@given(payloads())
def test_round_trip_and_independent_encoding(payload):
    frame = frames.encode(payload)
    assert frame == ref_frame(payload)
    assert len(frame) <= MAX_FRAME
    assert frames.decode(frame) == payload
    assert frames.decode(frame[:-1]) == payload


@SETTINGS
@given(payloads(max_size=1200))
def test_cobs_against_reference(data):
    enc = frames.cobs_encode(data)
    assert enc == ref_cobs_encode(data)
    assert frames.cobs_decode(enc) == data
    assert len(enc) <= len(data) + len(data) // 254 + 1


too_long = st.integers(MAX_PAYLOAD + 1, MAX_PAYLOAD + 8).map(
    lambda n: ref_cobs_encode(bytes(n) + crc_le(bytes(n))))


@SETTINGS
@given(st.one_of(st.binary(max_size=1100), too_long))
def test_decode_any_bytes(data):
    if data[-1:] == b"\0":
        data = data[:-1]
    expected = ref_unframe(data) if 0 not in data else None
    try:
        got = frames.decode(data)
    except FrameError:
        got = None
    assert got == expected
    try:
        assert frames.cobs_decode(data) == ref_cobs_decode(data)
    except FrameError:
        assert ref_cobs_decode(data) is None


garbage = st.one_of(
    st.binary(max_size=40),
    st.binary(min_size=1, max_size=12).map(lambda b: b.replace(b"\0", b"\1")),
    st.integers(MAX_FRAME - 3, MAX_FRAME + 300).map(lambda n: b"\x01" * n),  # oversized
    st.just(b"\x01\x01\x01\x01\x01"),  # an empty-payload frame by accident
)
items = st.lists(
    st.one_of(payloads(max_size=300).map(lambda p: ("frame", p)), garbage.map(lambda g: ("junk", g))),
    max_size=10,
)


@settings(deadline=None, max_examples=150)
@given(items, st.binary(max_size=20), st.lists(st.integers(0, 10**6), max_size=30))
def test_stream_of_frames_and_garbage(seq, tail, cuts):
    stream = b""
    sent = []
    for kind, data in seq:
        if kind == "frame":
            stream += ref_frame(data)
            sent.append(data)
        else:
            stream += data + b"\0"  # a zero after garbage keeps the next frame intact
    stream += tail  # an unfinished frame at the end
    expected, errors = ref_stream(stream)
    d = Decoder()
    got = []
    for part in chunked(stream, cuts):
        got += d.feed(part)
        assert d.pending <= MAX_FRAME - 1
        assert len(d._buf) == MAX_FRAME
    assert got == expected
    assert d.frames == len(got) and d.errors == errors
    # every frame sent intact comes out, in order (garbage may add a valid frame by chance)
    it = iter(got)
    assert all(any(p == g for g in it) for p in sent)


@settings(deadline=None, max_examples=100)
@given(st.binary(max_size=4000), st.lists(st.integers(0, 10**6), max_size=20))
def test_arbitrary_bytes_never_raise(stream, cuts):
    d = Decoder()
    got = []
    for part in chunked(stream, cuts):
        got += d.feed(part)
        assert d.pending <= MAX_FRAME - 1
    assert (got, d.errors) == ref_stream(stream)


@settings(deadline=None, max_examples=30)
@given(st.integers(MAX_FRAME, 5000), payloads(max_size=200))
def test_oversized_is_dropped_until_next_zero(n, payload):
    d = Decoder()
    assert d.feed(b"\x42" * n) == []
    assert d.pending <= MAX_FRAME - 1 and d.errors == 1
    assert d.feed(b"\x42" * 7 + b"\0" + ref_frame(payload)) == [payload]
    assert d.errors == 1 and d.frames == 1
