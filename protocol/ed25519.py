# Ed25519 signature verification (RFC 8032, section 5.1.7) in pure Python.
#
# The lock only verifies (the issuer signs), so nothing here handles a secret
# and nothing needs to run in constant time.
#
# Design, for MicroPython bignums on a small heap:
# - Points in extended twisted Edwards coordinates (X:Y:Z:T), x = X/Z, y = Y/Z,
#   x*y = T/Z, with the a = -1 formulas of Hisil-Wong-Carter-Dawson 2008
#   (doubling "dbl-2008-hwcd" 4M+4S, addition "add-2008-hwcd-3" 8M against a
#   point kept in the cached form (Y+X, Y-X, 2Z, 2dT)). T is computed only when
#   an addition follows, so most doublings cost 7 multiplications.
# - [S]B - [k]A is one joint (Straus/Shamir) double-scalar multiplication: both
#   scalars are recoded in width-w NAF and share one chain of about 253
#   doublings (about 253 doublings and 90 additions in all). The odd multiples
#   of B (w = 5: B, 3B, .., 15B; about 4 KB of heap on the 64-bit unix port) are
#   computed once, at import; those of -A (w = 5, also 8 points) per call.
#   Wider windows measured no faster here and cost heap.
# - No modular inversion inside the loop; the one inversion (to encode the
#   result) and the square root (to decode A) are pow(x, e, p).
# - Check used: the cofactorless equation, encode([S]B - [k]A) == R as bytes,
#   which RFC 8032 allows ("sufficient, but not required"). Comparing encodings
#   also rejects every R that would fail to decode (y >= p, no square root,
#   x = 0 with the sign bit set): encode() only ever yields canonical encodings
#   of points on the curve, so such an R can never be equal to one.
# - Stricter than RFC 8032 in one point, as libsodium is: a public key of small
#   order (8 points; [8]A neutral) is refused. With such a key the equation holds
#   for forged signatures (R = neutral, S = 0 passes for one message in 8 or
#   fewer), whoever holds no secret; OpenSSL accepts them. The extra check costs
#   three doublings.
try:
    from micropython import const
except ImportError:  # CPython
    def const(x):
        return x

from protocol import sha512 as _sha512

_WA = const(5)  # NAF width for the per-call point -A
_WB = const(5)  # NAF width for the fixed base point B

_P = (1 << 255) - 19
_L = (1 << 252) + 27742317777372353535851937790883648493  # order of B
# d = -121665/121666 mod p; 2*d mod p; sqrt(-1) = 2**((p-1)/4) mod p
_D = 37095705934669439343138083508754565189542113879843219016388785533085940283555
_D2 = 16295367250680780974490674513165176452449235426866156013048779062215315747161
_SQRT_M1 = 19681161376707505956807079304988542015446066515923890162744021073123829784752
# Base point B: y = 4/5 mod p, x even (RFC 8032, section 5.1)
_BX = 15112221349535400772501151409588531511454012693041857206046113283949847762202
_BY = 46316835694926478169428394003475163141307993866256225615783033603165251855960


def _decode(s):
    """Decode a 32-byte point encoding (RFC 8032, 5.1.3); None if it fails."""
    p = _P
    y = int.from_bytes(s, "little")
    sign = y >> 255
    y &= (1 << 255) - 1
    if y >= p:
        return None
    yy = y * y % p
    u = yy - 1
    v = (_D * yy + 1) % p
    v3 = v * v % p * v % p
    x = u * v3 % p
    x = x * pow(x * v3 % p * v % p, (p - 5) >> 3, p) % p  # (u/v)**((p+3)/8)
    vxx = v * x % p * x % p
    if vxx != u % p:
        if (vxx + u) % p:
            return None  # u/v has no square root
        x = x * _SQRT_M1 % p
    if x == 0 and sign:
        return None
    if (x & 1) != sign:
        x = p - x
    return x, y


def _small_order(x, y):
    """True if the point (x, y) has order 1, 2, 4 or 8, i.e. [8]P is neutral."""
    p = _P
    X, Y, Z = x, y, 1
    for _ in range(3):
        a = X * X % p
        b = Y * Y % p
        c = Z * Z % p
        e = (X + Y) * (X + Y) - a - b
        g = b - a
        f = g - c - c
        h = -a - b
        X = e * f % p
        Y = g * h % p
        Z = f * g % p
    return X == 0


def _odd_multiples(x, y, n):
    """Cached forms of P, 3P, .., (2n-1)P for the affine point P = (x, y)."""
    p = _P
    d2 = _D2
    out = [((y + x) % p, (y - x) % p, 2, d2 * x % p * y % p)]
    if n == 1:
        return out
    # 2P by doubling (Z = 1), then kept in cached form (Y+X, Y-X, 2Z, 2dT)
    a = x * x % p
    b = y * y % p
    e = (x + y) * (x + y) - a - b
    g = b - a
    f = g - 2
    h = -a - b
    yp2 = (g * h + e * f) % p
    ym2 = (g * h - e * f) % p
    z2 = 2 * f * g % p
    t2 = d2 * e % p * h % p
    X, Y, Z, T = x, y, 1, x * y % p
    for _ in range(n - 1):
        a = (Y - X) * ym2 % p
        b = (Y + X) * yp2 % p
        c = T * t2 % p
        dd = Z * z2 % p
        e = b - a
        f = dd - c
        g = dd + c
        h = b + a
        X = e * f % p
        Y = g * h % p
        Z = f * g % p
        T = e * h % p
        out.append(((Y + X) % p, (Y - X) % p, 2 * Z % p, d2 * T % p))
    return out


def _wnaf(n, w):
    """Width-w NAF of 0 <= n < 2**253, least significant digit first.

    Each entry is 0 or a code: bits 0-6 hold |digit| (odd, below 2**(w-1)),
    bit 7 is set for a negative digit. Uses small ints only.
    """
    s = n.to_bytes(34, "little")
    out = bytearray(256)
    width = 1 << w
    half = width >> 1
    mask = width - 1
    pos = 0
    carry = 0
    while pos < 256:
        i = pos >> 3
        win = (((s[i] | (s[i + 1] << 8)) >> (pos & 7)) & mask) + carry
        if not win & 1:
            pos += 1
            continue
        if win < half:
            carry = 0
            out[pos] = win
        else:
            carry = 1
            out[pos] = (width - win) | 0x80
        pos += w
    return out


def _double_scalar(s, k, ax, ay):
    """Return (X, Y, Z) of [s]B + [k]P for the affine point P = (ax, ay)."""
    p = _P
    tb = _BTABLE
    ta = _odd_multiples(ax, ay, 1 << (_WA - 2))
    na = _wnaf(k, _WA)
    nb = _wnaf(s, _WB)
    top = 255
    while top >= 0 and not (na[top] or nb[top]):
        top -= 1
    X, Y, Z, T = 0, 1, 1, 0  # the neutral element
    for i in range(top, -1, -1):
        da = na[i]
        db = nb[i]
        if i != top:
            # dbl-2008-hwcd with a = -1; T only if an addition follows
            a = X * X % p
            b = Y * Y % p
            c = Z * Z % p
            e = (X + Y) * (X + Y) - a - b
            g = b - a
            f = g - c - c
            h = -a - b
            X = e * f % p
            Y = g * h % p
            Z = f * g % p
            if da or db:
                T = e * h % p
        for dig, tab, more in ((da, ta, db), (db, tb, 0)):
            if not dig:
                continue
            q = tab[(dig & 0x7F) >> 1]
            # add-2008-hwcd-3 against the cached point q, or -q for a negative digit
            if dig & 0x80:
                a = (Y - X) * q[0] % p
                b = (Y + X) * q[1] % p
                c = -T * q[3] % p
            else:
                a = (Y - X) * q[1] % p
                b = (Y + X) * q[0] % p
                c = T * q[3] % p
            dd = Z * q[2] % p
            e = b - a
            f = dd - c
            g = dd + c
            h = b + a
            X = e * f % p
            Y = g * h % p
            Z = f * g % p
            if more:
                T = e * h % p
    return X, Y, Z


# Odd multiples of B, built once at import so that they sit low in a fresh heap.
_BTABLE = _odd_multiples(_BX, _BY, 1 << (_WB - 2))


def _encode(X, Y, Z):
    p = _P
    zi = pow(Z, p - 2, p)
    x = X * zi % p
    y = Y * zi % p
    return (y | ((x & 1) << 255)).to_bytes(32, "little")


def verify(public_key, message, signature):
    """True if `signature` is a valid Ed25519 signature of `message` under
    `public_key` (RFC 8032, 5.1.7, cofactorless check). Never raises for byte
    strings: wrong lengths, undecodable or small-order keys and non-canonical S
    give False."""
    if len(public_key) != 32 or len(signature) != 64:
        return False
    public_key = bytes(public_key)
    r = bytes(signature[:32])
    s = int.from_bytes(bytes(signature[32:]), "little")
    if s >= _L:
        return False  # non-canonical or out-of-range S
    a = _decode(public_key)
    if a is None or _small_order(a[0], a[1]):
        return False
    h = _sha512.new(r)
    h.update(public_key)
    h.update(message)
    k = int.from_bytes(h.digest(), "little") % _L
    # [S]B - [k]A == [S]B + [k](-A); -A = (-x, y)
    X, Y, Z = _double_scalar(s, k, (_P - a[0]) % _P, a[1])
    return _encode(X, Y, Z) == r
