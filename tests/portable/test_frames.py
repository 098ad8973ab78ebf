# Portable tests of protocol.frames (CPython and MicroPython).
import binascii

import testvectors
from protocol import frames
from protocol.frames import MAX_FRAME, MAX_PAYLOAD, Decoder, FrameError
from testvectors import raises, unhex

V = testvectors.load("frames")


def _crc_le(data):
    return (binascii.crc32(data) & 0xFFFFFFFF).to_bytes(4, "little")


def test_cobs_vectors():
    for v in V["cobs"]:
        decoded, encoded = unhex(v["decoded"]), unhex(v["encoded"])
        assert frames.cobs_encode(decoded) == encoded, v["decoded"][:16]
        assert frames.cobs_decode(encoded) == decoded, v["encoded"][:16]


def test_cobs_edges():
    assert frames.cobs_encode(b"") == b"\x01"
    assert frames.cobs_decode(b"\x01") == b""
    # a full block followed by a (redundant) final code 01 decodes to the same bytes
    block = bytes(range(1, 255))
    assert frames.cobs_decode(b"\xff" + block + b"\x01") == block
    for bad in (b"\x00", b"\x03\x11", b"\x02\x00", b"\x03\x11\x00", b"\x01\x00\x01"):
        assert raises(FrameError, frames.cobs_decode, bad), bad


def test_crc32_check_value():
    for v in V["crc32"]:
        assert binascii.crc32(unhex(v["data"])) & 0xFFFFFFFF == v["crc"]


def test_frame_vectors():
    for v in V["frames"]:
        payload, frame = unhex(v["payload"]), unhex(v["frame"])
        assert frames.encode(payload) == frame
        assert frames.decode(frame) == payload
        assert frames.decode(frame[:-1]) == payload  # without the delimiter


def test_round_trip_sizes():
    for n in (0, 1, 3, 4, 249, 250, 251, 253, 254, 255, 508, 1000, MAX_PAYLOAD):
        for fill in (0, 1, 0xFF):
            p = bytes((fill + i) & 0xFF if fill != 0 else 0 for i in range(n))
            f = frames.encode(p)
            assert len(f) <= MAX_FRAME
            assert f[-1] == 0 and 0 not in f[:-1]
            assert frames.decode(f) == p


def test_max_frame_is_tight():
    assert MAX_FRAME == MAX_PAYLOAD + 4 + (MAX_PAYLOAD + 4 + 253) // 254 + 1
    for fill in range(1, 256):  # a payload whose CRC holds no zero byte reaches the bound
        p = bytes((fill,)) * MAX_PAYLOAD
        if 0 not in _crc_le(p):
            assert len(frames.encode(p)) == MAX_FRAME
            return
    raise AssertionError("no zero-free CRC found")


def test_encode_too_long():
    assert raises(FrameError, frames.encode, bytes(MAX_PAYLOAD + 1))


def test_decode_errors():
    good = frames.encode(b"hello")
    bad_crc = bytearray(good)
    bad_crc[1] ^= 0x01
    assert raises(FrameError, frames.decode, bytes(bad_crc))
    assert raises(FrameError, frames.decode, b"")
    assert raises(FrameError, frames.decode, b"\x00")
    assert raises(FrameError, frames.decode, b"\x04\x01\x02\x03\x00")  # 3 bytes: no room for a CRC
    assert raises(FrameError, frames.decode, b"\x09\x01\x00")  # code past the end
    assert raises(FrameError, frames.decode, b"\x00" + good)  # zero inside
    assert raises(FrameError, frames.decode, b"\x01" * MAX_FRAME)  # over the bound
    # within the frame bound but decoding to more than MAX_PAYLOAD + 4 bytes
    assert raises(FrameError, frames.decode, b"\x01" * (MAX_FRAME - 1))
    # zeros encode compactly: a CRC-correct frame within the bound whose payload is too long
    for n in (MAX_PAYLOAD + 1, MAX_PAYLOAD + 4):
        p = bytes(n)
        f = frames.cobs_encode(p + _crc_le(p))
        assert len(f) < MAX_FRAME
        assert raises(FrameError, frames.decode, f)
        d = Decoder()
        assert d.feed(f + b"\0") == [] and d.errors == 1
    try:
        frames.decode(bytes(bad_crc))
    except FrameError as e:
        assert "CRC" in str(e)


def test_decoder_one_byte_at_a_time():
    d = Decoder()
    stream = frames.encode(b"one") + frames.encode(b"") + frames.encode(b"\x00\x00three")
    got = []
    for i in range(len(stream)):
        got += d.feed(stream[i:i + 1])
    assert got == [b"one", b"", b"\x00\x00three"]
    assert d.frames == 3 and d.errors == 0 and d.pending == 0


def test_decoder_resynchronises_after_garbage():
    d = Decoder()
    got = d.feed(b"\x07garbage\x00" + frames.encode(b"ok") + b"\x05\x06")
    assert got == [b"ok"]
    assert d.errors == 1 and d.pending == 2
    # garbage with no zero glued before a frame spoils that frame only
    got = d.feed(frames.encode(b"lost") + frames.encode(b"kept"))
    assert got == [b"kept"] and d.errors == 2 and d.frames == 2


def test_decoder_ignores_empty_frames():
    d = Decoder()
    assert d.feed(b"\x00\x00" + frames.encode(b"x") + b"\x00") == [b"x"]
    assert d.errors == 0


def test_decoder_drops_oversized_without_buffering():
    d = Decoder()
    assert len(d._buf) == MAX_FRAME
    chunk = b"\x01" * 100
    for _ in range(30):  # 3000 bytes without a zero
        assert d.feed(chunk) == []
        assert d.pending <= MAX_FRAME - 1
    assert d.errors == 1
    assert d.feed(b"\x00" + frames.encode(b"after")) == [b"after"]
    assert d.errors == 1 and d.frames == 1


def test_decoder_largest_frame():
    p = bytes(i & 0xFF or 1 for i in range(MAX_PAYLOAD))
    d = Decoder()
    assert d.feed(frames.encode(p)) == [p]


def test_decoder_reset():
    d = Decoder()
    d.feed(b"\x05\x01\x02")
    d.reset()
    assert d.pending == 0
    assert d.feed(frames.encode(b"z")) == [b"z"]
