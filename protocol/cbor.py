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
    if isinstance(k, Tag):
        return _key_ok(k.value)
    return k is None or isinstance(k, (int, str, bytes))


def _encode(out, obj, depth):
    if obj is False:
        out.append(0xF4)
    elif obj is True:
        out.append(0xF5)
    elif obj is None:
        out.append(0xF6)
    elif isinstance(obj, int):
        if obj >= 0:
            if obj >= _UINT_END:
                raise CBORError("integer out of range")
            _head(out, 0, obj)
        else:
            if obj < -_UINT_END:
                raise CBORError("integer out of range")
            _head(out, 1, -1 - obj)
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
            items = []
            for k, v in obj.items():
                if not _key_ok(k):
                    raise CBORError("unsupported map key")
                kb = bytearray()
                _encode(kb, k, depth)
                items.append((bytes(kb), v))
            items.sort(key=lambda kv: kv[0])
            _head(out, 5, len(items))
            prev = None
            for kb, v in items:
                if kb == prev:
                    raise CBORError("duplicate map key")
                prev = kb
                out.extend(kb)
                _encode(out, v, depth)
        elif isinstance(obj, Tag):
            t = obj.tag
            if not isinstance(t, int) or isinstance(t, bool) or t < 0 or t >= _UINT_END:
                raise CBORError("tag number out of range")
            _head(out, 6, t)
            _encode(out, obj.value, depth)
        else:
            raise CBORError("unsupported type")


def dumps(obj):
    """Encode obj in the core deterministic encoding; CBORError if it cannot."""
    out = bytearray()
    _encode(out, obj, 0)
    return bytes(out)


# ---------------------------------------------------------------- decoding


def _utf8_ok(mv, i, end):
    # RFC 3629 well-formedness: no overlong forms, surrogates or code points past
    # U+10FFFF. MicroPython's str() lets those through; CPython's does not.
    while i < end:
        c = mv[i]
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
        if i + n > end or not lo <= mv[i] <= hi:
            return False
        for j in range(i + 1, i + n):
            if not 0x80 <= mv[j] <= 0xBF:
                return False
        i += n
    return True


class _Decoder:
    def __init__(self, mv, max_items):
        self.mv = mv
        self.i = 0
        self.end = len(mv)
        self.left = max_items  # items still allowed

    def _count(self, n):
        if n > self.left:
            raise CBORError("too many items")
        self.left -= n

    def _head(self):
        # Returns (major type, argument); rejects what no item of ours may start with.
        mv, i = self.mv, self.i
        if i >= self.end:
            raise CBORError("truncated")
        ib = mv[i]
        i += 1
        major = ib >> 5
        ai = ib & 31
        if major == 7:
            self.i = i
            if 20 <= ai <= 22:
                return 7, ai
            if ai == 31:
                raise CBORError("unexpected break")
            if 25 <= ai <= 27:
                raise CBORError("floats not supported")
            raise CBORError("unsupported simple value")
        if ai < 24:
            self.i = i
            return major, ai
        if ai == 31:
            raise CBORError("indefinite length not supported")
        if ai > 27:
            raise CBORError("reserved additional information")
        n = 1 << (ai - 24)  # 1, 2, 4 or 8 argument bytes
        if n > self.end - i:
            raise CBORError("truncated")
        v = 0
        for j in range(i, i + n):
            v = (v << 8) | mv[j]
        # Shortest form: the argument must not fit a shorter head.
        if v < (24 if n == 1 else 1 << (4 * n)):
            raise CBORError("non-shortest head")
        self.i = i + n
        return major, v

    def item(self, depth):
        self._count(1)
        major, n = self._head()
        if major == 0:
            return n
        if major == 1:
            return -1 - n
        if major == 7:
            return (False, True, None)[n - 20]
        if major <= 3:
            i = self.i
            if n > self.end - i:
                raise CBORError("truncated")
            self.i = i + n
            if major == 2:
                return bytes(self.mv[i : i + n])
            if not _utf8_ok(self.mv, i, i + n):
                raise CBORError("invalid UTF-8")
            try:
                return str(self.mv[i : i + n], "utf-8")
            except (UnicodeError, ValueError):
                raise CBORError("invalid UTF-8") from None
        if depth >= MAX_DEPTH:
            raise CBORError("nesting too deep")
        depth += 1
        if major == 6:
            return Tag(n, self.item(depth))
        # Every item takes at least one byte: check the count against the input
        # and the item budget before building anything.
        if major == 5:
            n2 = 2 * n
        else:
            n2 = n
        if n2 > self.end - self.i:
            raise CBORError("truncated")
        if n2 > self.left:
            raise CBORError("too many items")
        if major == 4:
            return [self.item(depth) for _ in range(n)]
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


def loads(data, max_items=MAX_ITEMS):
    """Decode one CBOR item that fills data (bytes, bytearray or memoryview)."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise CBORError("expected bytes")
    dec = _Decoder(memoryview(data), max_items)
    obj = dec.item(0)
    if dec.i != dec.end:
        raise CBORError("trailing bytes")
    return obj
