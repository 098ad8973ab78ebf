# CBOR (RFC 8949) for the lock protocol: integers (-2**64 .. 2**64-1), byte and text
# strings, arrays, maps, tags, false/true/null. No floats, no indefinite lengths.
#
# dumps() writes the core deterministic encoding (RFC 8949 section 4.2.1): shortest
# heads, definite lengths, map keys sorted bytewise by their encoded form.
# loads() is strict: it rejects malformed items, non-shortest heads, indefinite lengths,
# duplicate or unhashable map keys, invalid UTF-8, floats and simple values other than
# false/true/null, trailing bytes, nesting deeper than MAX_DEPTH and more than
# max_items items. It accepts map keys in any order. It never allocates for a length
# read off the wire before checking that the input holds that many bytes, so its heap
# use is bounded by the input size, and it recurses at most MAX_DEPTH levels.
# Tags are not interpreted: a tagged item decodes to Tag(tag, value).

try:
    from micropython import const
except ImportError:  # CPython
    def const(x):
        return x


MAX_DEPTH = const(16)  # arrays, maps and tags nested in each other
MAX_ITEMS = const(1024)  # data items in one decoded message (a tag and its content: 2)

_UINT_END = const(0x10000000000000000)  # 2**64: integers are -2**64 .. 2**64-1


class CBORError(ValueError):
    pass


class Tag:
    """A tagged data item: tag number and content, not interpreted."""

    def __init__(self, tag, value):
        self.tag = tag
        self.value = value

    def __eq__(self, other):
        return isinstance(other, Tag) and self.tag == other.tag and self.value == other.value

    def __ne__(self, other):
        return not self.__eq__(other)

    def __hash__(self):
        return hash((self.tag, self.value))

    def __repr__(self):
        return "Tag(%r, %r)" % (self.tag, self.value)


# ---------------------------------------------------------------- encoding


def _head(out, major, n):
    major <<= 5
    if n < 24:
        out.append(major | n)
    elif n < 0x100:
        out.append(major | 24)
        out.append(n)
    elif n < 0x10000:
        out.append(major | 25)
        out.extend(n.to_bytes(2, "big"))
    elif n < 0x100000000:
        out.append(major | 26)
        out.extend(n.to_bytes(4, "big"))
    else:
        out.append(major | 27)
        out.extend(n.to_bytes(8, "big"))


def _key_ok(k):
    # Keys loads() can give back: no arrays or maps (they decode unhashable).
    # (On MicroPython bool is not an int subclass for isinstance: name it.)
    if isinstance(k, Tag):
        return _key_ok(k.value)
    return k is None or k is True or k is False or isinstance(k, (int, str, bytes))


def _encode(out, obj, depth):
    if obj is False:
        out.append(0xF4)
    elif obj is True:
        out.append(0xF5)
    elif obj is None:
        out.append(0xF6)
    elif isinstance(obj, int):
        _encode_int(out, obj)
    elif isinstance(obj, (bytes, bytearray, memoryview)):
        _head(out, 2, len(obj))
        out.extend(obj)
    elif isinstance(obj, str):
        try:
            b = obj.encode("utf-8")
        except (UnicodeError, ValueError):
            raise CBORError("text not encodable as UTF-8") from None
        _head(out, 3, len(b))
        out.extend(b)
    else:
        if depth >= MAX_DEPTH:
            raise CBORError("nesting too deep")
        depth += 1
        if isinstance(obj, (list, tuple)):
            _head(out, 4, len(obj))
            for x in obj:
                _encode(out, x, depth)
        elif isinstance(obj, dict):
            _encode_map(out, obj, depth)
        elif isinstance(obj, Tag):
            t = obj.tag
            if not isinstance(t, int) or isinstance(t, bool) or t < 0 or t >= _UINT_END:
                raise CBORError("tag number out of range")
            _head(out, 6, t)
            _encode(out, obj.value, depth)
        else:
            raise CBORError("unsupported type")


def _encode_int(out, n):
    if n >= 0:
        if n >= _UINT_END:
            raise CBORError("integer out of range")
        _head(out, 0, n)
    else:
        if n < -_UINT_END:
            raise CBORError("integer out of range")
        _head(out, 1, -1 - n)


def _encode_map(out, obj, depth):
    # Core deterministic encoding: keys sorted by their encoded bytes.
    items = []
    for k, v in obj.items():
        if not _key_ok(k):
            raise CBORError("unsupported map key")
        enc = bytearray()
        _encode(enc, k, depth)
        items.append((bytes(enc), v))
    items.sort(key=lambda kv: kv[0])
    _head(out, 5, len(items))
    prev = None
    for kb, v in items:
        if kb == prev:
            raise CBORError("duplicate map key")
        prev = kb
        out.extend(kb)
        _encode(out, v, depth)


def dumps(obj):
    """Encode obj in the core deterministic encoding; CBORError if it cannot."""
    out = bytearray()
    _encode(out, obj, 0)
    return bytes(out)


# ---------------------------------------------------------------- decoding


def _utf8_ok(buf, i, end):
    # RFC 3629 well-formedness: no overlong forms, surrogates or code points past
    # U+10FFFF. MicroPython's str() lets those through; CPython's does not.
    while i < end:
        c = buf[i]
        i += 1
        if c < 0x80:
            continue
        if 0xC2 <= c <= 0xDF:
            n, lo, hi = 1, 0x80, 0xBF
        elif 0xE0 <= c <= 0xEF:
            n = 2
            lo = 0xA0 if c == 0xE0 else 0x80
            hi = 0x9F if c == 0xED else 0xBF
        elif 0xF0 <= c <= 0xF4:
            n = 3
            lo = 0x90 if c == 0xF0 else 0x80
            hi = 0x8F if c == 0xF4 else 0xBF
        else:
            return False
        if i + n > end or not lo <= buf[i] <= hi:
            return False
        for j in range(i + 1, i + n):
            if not 0x80 <= buf[j] <= 0xBF:
                return False
        i += n
    return True


class _Decoder:
    def __init__(self, buf, max_items):
        self.buf = buf  # bytes, or a memoryview of anything else
        self.i = 0
        self.end = len(buf)
        self.left = max_items  # items still allowed

    def item(self, depth):
        if self.left < 1:
            raise CBORError("too many items")
        self.left -= 1
        major, n = self.head()
        if major == 0:
            return n
        if major == 1:
            return -1 - n
        if major == 7:
            return n  # False, True or None: head() took the argument
        if major <= 3:
            return self.string(major, n)
        if depth >= MAX_DEPTH:
            raise CBORError("nesting too deep")
        depth += 1
        if major == 6:
            return Tag(n, self.item(depth))
        # Every item takes at least one byte: check the count against the input
        # and the item budget before building anything.
        count = 2 * n if major == 5 else n
        if count > self.end - self.i:
            raise CBORError("truncated")
        if count > self.left:
            raise CBORError("too many items")
        if major == 4:
            a = [None] * n
            for j in range(n):
                a[j] = self.item(depth)
            return a
        return self.map(n, depth)

    def head(self):
        """The initial byte and its argument, rejecting what no item of ours
        starts with; major type 7 comes back with its value (False, True, None)."""
        buf, i = self.buf, self.i
        if i >= self.end:
            raise CBORError("truncated")
        ib = buf[i]
        i += 1
        major = ib >> 5
        n = ib & 31
        if 28 <= n <= 30:
            raise CBORError("reserved additional information")
        if major == 7:
            self.i = i
            return 7, _simple(n)
        if n == 31:
            raise CBORError("indefinite length not supported")
        if n >= 24:
            size = 1 << (n - 24)  # 1, 2, 4 or 8 argument bytes
            if size > self.end - i:
                raise CBORError("truncated")
            n = 0
            for j in range(i, i + size):
                n = (n << 8) | buf[j]
            i += size
            # Shortest form: the argument must not fit a shorter head.
            if n < (24 if size == 1 else 1 << (4 * size)):
                raise CBORError("non-shortest head")
        self.i = i
        return major, n

    def string(self, major, n):
        buf, i = self.buf, self.i
        if n > self.end - i:
            raise CBORError("truncated")
        self.i = i + n
        if major == 2:
            return bytes(buf[i : i + n])
        if not _utf8_ok(buf, i, i + n):
            raise CBORError("invalid UTF-8")
        try:
            return str(buf[i : i + n], "utf-8")
        except (UnicodeError, ValueError):
            raise CBORError("invalid UTF-8") from None

    def map(self, n, depth):
        d = {}
        for _ in range(n):
            k = self.item(depth)
            try:
                hash(k)  # MicroPython does not hash for a lookup in an empty dict
            except TypeError:
                raise CBORError("unhashable map key") from None
            if k in d:
                raise CBORError("duplicate map key")
            d[k] = self.item(depth)
        return d


def _simple(n):
    if n == 20:
        return False
    if n == 21:
        return True
    if n == 22:
        return None
    if n == 31:
        raise CBORError("unexpected break")
    if 25 <= n <= 27:
        raise CBORError("floats not supported")
    raise CBORError("unsupported simple value")


def loads(data, max_items=MAX_ITEMS):
    """Decode one CBOR item that fills data (bytes, bytearray or memoryview).

    Raises CBORError for anything else: see the top of this module. max_items bounds
    the data items (a tag and its content count two); the input length bounds them too.
    """
    if isinstance(data, bytes):
        buf = data  # type: bytes | memoryview  # slices of bytes are bytes: one copy per string
    elif isinstance(data, (bytearray, memoryview)):
        buf = memoryview(data)
        if getattr(buf, "format", "B") != "B":  # CPython: a view of wider items
            raise CBORError("expected bytes")
    else:
        raise CBORError("expected bytes")
    dec = _Decoder(buf, max_items)
    obj = dec.item(0)
    if dec.i != dec.end:
        raise CBORError("trailing bytes")
    return obj
