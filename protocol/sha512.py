# SHA-512 (FIPS 180-4, section 6.4) in pure Python, for interpreters whose
# hashlib lacks it (MicroPython). `new()` returns the native hashlib object
# where there is one (CPython) and the pure implementation otherwise.
#
# Words are plain Python ints kept below 2**64. A rotation uses a doubled copy
# x2 = x | x << 64, so rotr(x, n) is the low 64 bits of x2 >> n. Sums only need
# their low 64 bits, so the bits that a rotation leaves above bit 63 are not
# masked off term by term: each new word is masked once when it is stored.
import binascii
import hashlib
import struct

try:
    from micropython import const
except ImportError:  # CPython
    def const(x):
        return x

_BLOCK = const(128)
_M = 0xFFFFFFFFFFFFFFFF

_IV = (
    0x6A09E667F3BCC908, 0xBB67AE8584CAA73B, 0x3C6EF372FE94F82B, 0xA54FF53A5F1D36F1,
    0x510E527FADE682D1, 0x9B05688C2B3E6C1F, 0x1F83D9ABFB41BD6B, 0x5BE0CD19137E2179,
)

# K: first 64 bits of the fractional parts of the cube roots of the first 80
# primes, as 80 big-endian words. Kept as bytes (640 bytes; in flash when frozen)
# rather than 80 ints, and unpacked per block: that saves several KB of heap.
_K = binascii.unhexlify(
    "428a2f98d728ae227137449123ef65cdb5c0fbcfec4d3b2fe9b5dba58189dbbc"
    "3956c25bf348b53859f111f1b605d019923f82a4af194f9bab1c5ed5da6d8118"
    "d807aa98a303024212835b0145706fbe243185be4ee4b28c550c7dc3d5ffb4e2"
    "72be5d74f27b896f80deb1fe3b1696b19bdc06a725c71235c19bf174cf692694"
    "e49b69c19ef14ad2efbe4786384f25e30fc19dc68b8cd5b5240ca1cc77ac9c65"
    "2de92c6f592b02754a7484aa6ea6e4835cb0a9dcbd41fbd476f988da831153b5"
    "983e5152ee66dfaba831c66d2db43210b00327c898fb213fbf597fc7beef0ee4"
    "c6e00bf33da88fc2d5a79147930aa72506ca6351e003826f142929670a0e6e70"
    "27b70a8546d22ffc2e1b21385c26c9264d2c6dfc5ac42aed53380d139d95b3df"
    "650a73548baf63de766a0abb3c77b2a881c2c92e47edaee692722c851482353b"
    "a2bfe8a14cf10364a81a664bbc423001c24b8b70d0f89791c76c51a30654be30"
    "d192e819d6ef5218d69906245565a910f40e35855771202a106aa07032bbd1b8"
    "19a4c116b8d2d0c81e376c085141ab532748774cdf8eeb9934b0bcb5e19b48a8"
    "391c0cb3c5c95a634ed8aa4ae3418acb5b9cca4f7763e373682e6ff3d6b2b8a3"
    "748f82ee5defb2fc78a5636f43172f6084c87814a1f0ab728cc702081a6439ec"
    "90befffa23631e28a4506cebde82bde9bef9a3f7b2c67915c67178f2e372532b"
    "ca273eceea26619cd186b8c721c0c207eada7dd6cde0eb1ef57d4f7fee6ed178"
    "06f067aa72176fba0a637dc5a2c898a6113f9804bef90dae1b710b35131c471b"
    "28db77f523047d8432caab7b40c724933c9ebe0a15c9bebc431d67c49c100d4c"
    "4cc5d4becb3e42b6597f299cfc657e2a5fcb6fab3ad6faec6c44198c4a475817"
)


def _compress(state, data, off):
    """Process the 128-byte block data[off:off + 128] into the 8-word state list."""
    M = _M
    K = struct.unpack(">80Q", _K)
    w = [0] * 80  # allocated once at full size: no regrowth on a small heap
    t = 0
    for x in struct.unpack_from(">16Q", data, off):
        w[t] = x
        t += 1
    for t in range(16, 80):
        x = w[t - 2]
        x2 = x | (x << 64)
        y = w[t - 15]
        y2 = y | (y << 64)
        # sigma1 = rotr19 ^ rotr61 ^ shr6; sigma0 = rotr1 ^ rotr8 ^ shr7
        w[t] = (((x2 >> 19) ^ (x2 >> 61) ^ (x >> 6))
                + ((y2 >> 1) ^ (y2 >> 8) ^ (y >> 7))
                + w[t - 7] + w[t - 16] & M)
    a, b, c, d, e, f, g, h = state
    bc = b ^ c
    for t in range(80):
        e2 = e | (e << 64)
        a2 = a | (a << 64)
        ab = a ^ b
        # Sigma1 = rotr14 ^ rotr18 ^ rotr41; Ch = (e & f) ^ (~e & g)
        t1 = (h + ((e2 >> 14) ^ (e2 >> 18) ^ (e2 >> 41))
              + (g ^ (e & (f ^ g))) + K[t] + w[t])
        # Sigma0 = rotr28 ^ rotr34 ^ rotr39; Maj = b ^ ((a ^ b) & (b ^ c))
        t2 = ((a2 >> 28) ^ (a2 >> 34) ^ (a2 >> 39)) + (b ^ (ab & bc))
        h = g
        g = f
        f = e
        e = (d + t1) & M
        d = c
        c = b
        b = a
        a = (t1 + t2) & M
        bc = ab
    state[0] = (state[0] + a) & M
    state[1] = (state[1] + b) & M
    state[2] = (state[2] + c) & M
    state[3] = (state[3] + d) & M
    state[4] = (state[4] + e) & M
    state[5] = (state[5] + f) & M
    state[6] = (state[6] + g) & M
    state[7] = (state[7] + h) & M


class SHA512:
    """Pure-Python SHA-512 with the hashlib interface: update(), digest(), copy()."""

    digest_size = 64
    block_size = _BLOCK

    def __init__(self, data=None):
        self._h = list(_IV)
        self._buf = b""  # fewer than 128 pending bytes
        self._len = 0  # bytes hashed so far
        if data:
            self.update(data)

    def update(self, data):
        n = len(data)
        self._len += n
        pos = 0
        buf = self._buf
        if buf:
            pos = _BLOCK - len(buf)
            if pos > n:
                pos = n
            buf += bytes(data[:pos])
            if len(buf) < _BLOCK:
                self._buf = buf
                return
            _compress(self._h, buf, 0)
            buf = b""
        while n - pos >= _BLOCK:
            _compress(self._h, data, pos)
            pos += _BLOCK
        if pos < n:
            buf = bytes(data[pos:])
        self._buf = buf

    def copy(self):
        other = SHA512()
        other._h = list(self._h)
        other._buf = self._buf
        other._len = self._len
        return other

    def digest(self):
        state = list(self._h)
        tail = self._buf + b"\x80"
        tail += bytes((112 - len(tail)) % _BLOCK)
        tail += (self._len * 8).to_bytes(16, "big")
        for off in range(0, len(tail), _BLOCK):
            _compress(state, tail, off)
        return struct.pack(">8Q", *state)


_native = getattr(hashlib, "sha512", None)
NATIVE = _native is not None


def new(data=b""):
    """A SHA-512 hash object: hashlib's where it exists, else the pure one."""
    if _native is not None:
        return _native(data)
    return SHA512(data)
