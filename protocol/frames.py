# Frames shared by the serial port and BLE:
#     COBS(payload || CRC-32(payload) as 4 bytes little-endian) || 0x00
# COBS is Cheshire & Baker's Consistent Overhead Byte Stuffing (IEEE/ACM ToN,
# 1999): each code byte gives the distance to the next zero; code 0xFF is a block
# of 254 data bytes with no implied zero, and a block that ends the data gets no
# trailing code byte. The encoded frame has no zero byte, so a reader
# resynchronises at the next zero. CRC-32 is the zlib/IEEE one (binascii.crc32).
import binascii

try:
    from micropython import const
except ImportError:  # CPython
    def const(x):
        return x

MAX_PAYLOAD = const(1024)
# Bound of len(encode(p)): MAX_PAYLOAD + 4 CRC bytes = 1028 bytes, one code byte
# per started block of 254 (5), one delimiter.
MAX_FRAME = const(1034)

_BAD_COBS = const(-1)
_TOO_SHORT = const(-2)
_TOO_LONG = const(-3)
_BAD_CRC = const(-4)
_REASONS = ("", "bad COBS", "frame too short", "frame too long", "bad CRC")


class FrameError(ValueError):
    pass


def _stuff(data, out):
    """COBS-encode data into out (at least len + len // 254 + 1 bytes); return the length."""
    n = len(data)
    code_at = 0
    w = 1
    for i in range(n):
        b = data[i]
        if b:
            out[w] = b
            w += 1
            if w - code_at < 0xFF:
                continue
            if i + 1 == n:  # a full block ends the data: no code byte after it
                out[code_at] = 0xFF
                return w
        out[code_at] = w - code_at
        code_at = w
        w += 1
    out[code_at] = w - code_at
    return w


def _unstuff(buf, n):
    """COBS-decode buf[0:n] in place (the output is never longer); return its length or -1."""
    i = w = 0
    while i < n:
        end = i + buf[i]
        if end == i or end > n:
            return -1
        last = buf[i] == 0xFF
        i += 1
        while i < end:
            b = buf[i]
            if b == 0:
                return -1
            buf[w] = b
            w += 1
            i += 1
        if not last and i < n:
            buf[w] = 0
            w += 1
    return w


def _unframe(buf, n):
    """Turn the COBS bytes buf[0:n] (n < MAX_FRAME) into the payload length in place,
    or a negative reason."""
    m = _unstuff(buf, n)
    if m < 0:
        return _BAD_COBS
    if m < 4:
        return _TOO_SHORT
    m -= 4
    if m > MAX_PAYLOAD:
        return _TOO_LONG
    crc = int.from_bytes(buf[m:m + 4], "little")
    if binascii.crc32(memoryview(buf)[:m]) & 0xFFFFFFFF != crc:
        return _BAD_CRC
    return m


def cobs_encode(data):
    n = len(data)
    out = bytearray(n + n // 254 + 1)
    return bytes(memoryview(out)[:_stuff(data, out)])


def cobs_decode(data):
    buf = bytearray(data)
    m = _unstuff(buf, len(buf))
    if m < 0:
        raise FrameError("bad COBS")
    return bytes(memoryview(buf)[:m])


def encode(payload):
    """The frame for payload, ending in its zero byte."""
    if len(payload) > MAX_PAYLOAD:
        raise FrameError("payload too long")
    body = bytes(payload) + (binascii.crc32(payload) & 0xFFFFFFFF).to_bytes(4, "little")
    out = bytearray(len(body) + len(body) // 254 + 2)  # the last byte stays the delimiter
    return bytes(memoryview(out)[:_stuff(body, out) + 1])


def decode(frame):
    """The payload of one frame, given with or without its trailing zero."""
    n = len(frame)
    if n and frame[n - 1] == 0:
        n -= 1
    if n >= MAX_FRAME:
        raise FrameError(_REASONS[-_TOO_LONG])
    buf = bytearray(memoryview(frame)[:n])
    m = _unframe(buf, n)
    if m < 0:
        raise FrameError(_REASONS[-m])
    return bytes(memoryview(buf)[:m])


class Decoder:
    """Streaming decoder: feed() any chunks, get back the payloads of complete frames.

    Never raises on bytes-like input. Bytes before a zero that do not form a valid
    frame are dropped and counted in `errors` (bad COBS, bad CRC, too short, or over
    MAX_FRAME, which is dropped as it arrives: nothing past the bound is buffered).
    Empty frames (two zeros in a row) are ignored, not errors: a sender may lead
    with a zero to flush a receiver. `frames` counts the payloads returned.
    """

    def __init__(self):
        self._buf = bytearray(MAX_FRAME)  # fixed, filled in place
        self._n = 0
        self._drop = False
        self.frames = 0
        self.errors = 0

    @property
    def pending(self):
        """Bytes buffered for the frame in progress (at most MAX_FRAME - 1)."""
        return self._n

    def reset(self):
        """Forget a partial frame (e.g. on a new connection)."""
        self._n = 0
        self._drop = False

    def feed(self, data):
        out = []
        buf = self._buf
        n = self._n
        drop = self._drop
        for b in data:
            if b:
                if n < MAX_FRAME - 1:
                    buf[n] = b
                    n += 1
                elif not drop:
                    drop = True
                    self.errors += 1
            elif drop:
                drop = False
                n = 0
            elif n:
                m = _unframe(buf, n)
                n = 0
                if m < 0:
                    self.errors += 1
                else:
                    self.frames += 1
                    out.append(bytes(memoryview(buf)[:m]))
        self._n = n
        self._drop = drop
        return out
