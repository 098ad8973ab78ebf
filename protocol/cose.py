# COSE (RFC 9052) for CWT access tokens: COSE_Mac0 with HMAC 256/256 and
# COSE_Sign1 with EdDSA (Ed25519). The caller decides which suite a lock uses;
# the algorithm in a token's header is only checked against that choice,
# never used to pick it (no algorithm confusion).
from protocol import cbor, crypto

try:
    from micropython import const
except ImportError:  # CPython
    def const(x):
        return x

TAG_CWT = const(61)
TAG_MAC0 = const(17)
TAG_SIGN1 = const(18)
HDR_ALG = const(1)
HDR_CRIT = const(2)
HDR_KID = const(4)
ALG_HMAC_256_256 = const(5)
ALG_EDDSA = const(-8)
ALG_ED25519 = const(-19)  # the fully specified name for EdDSA on Ed25519 (RFC 9864)
MAC_LEN = const(32)
SIG_LEN = const(64)
# Header labels this implementation understands, so a critical header naming
# anything else is refused (RFC 9052 section 3.1, "crit").
_UNDERSTOOD = (HDR_ALG, HDR_KID)
# Algorithms accepted for a Sign1 at a lock commissioned for Ed25519: both
# identify an Ed25519 signature, and the key is fixed by the lock anyway.
_SIGN1_ALGS = (ALG_EDDSA, ALG_ED25519)


class COSEError(ValueError):
    """Malformed COSE, or the wrong structure or algorithm for this lock."""


class COSEVerifyError(COSEError):
    """Well-formed, but the MAC or signature does not verify."""


class Message:
    """A decoded COSE_Mac0 or COSE_Sign1 before its tag or signature is checked."""

    def __init__(self, cose_tag, protected_bytes, protected, unprotected, payload, tag):
        self.cose_tag = cose_tag
        self.protected_bytes = protected_bytes
        self.protected = protected
        self.unprotected = unprotected
        self.payload = payload
        self.tag = tag

    @property
    def alg(self):
        return self.protected.get(HDR_ALG)

    @property
    def kid(self):
        kid = self.protected.get(HDR_KID)
        return kid if kid is not None else self.unprotected.get(HDR_KID)

    def __repr__(self):
        return "<COSE %s alg=%r payload=%d bytes>" % (
            "Mac0" if self.cose_tag == TAG_MAC0 else "Sign1", self.alg, len(self.payload))


def _label_ok(label):
    # Header labels are integers or text strings (RFC 9052 section 3).
    return isinstance(label, str) or (isinstance(label, int) and not isinstance(label, bool))


def _check_headers(protected, unprotected):
    if not isinstance(protected, dict) or not isinstance(unprotected, dict):
        raise COSEError("headers must be maps")
    for label in protected:
        if not _label_ok(label):
            raise COSEError("bad header label")
    for label in unprotected:
        if not _label_ok(label):
            raise COSEError("bad header label")
        if label in protected:
            raise COSEError("header label in both buckets")
    if HDR_ALG in unprotected:
        raise COSEError("algorithm must be protected")
    if HDR_CRIT in unprotected:
        raise COSEError("crit must be protected")
    crit = protected.get(HDR_CRIT)
    if crit is not None:
        if not isinstance(crit, list) or not crit:
            raise COSEError("bad crit header")
        for label in crit:
            if not _label_ok(label) or label not in _UNDERSTOOD or label not in protected:
                raise COSEError("unknown critical header")
    kid = protected.get(HDR_KID, unprotected.get(HDR_KID))
    if kid is not None and not isinstance(kid, bytes):
        raise COSEError("kid must be a byte string")


def decode(data):
    """Parse a tagged COSE_Mac0 or COSE_Sign1 (optionally inside CWT tag 61).

    Returns a Message; nothing is verified yet except structure.
    """
    try:
        item = cbor.loads(data)
    except cbor.CBORError:
        raise COSEError("not well-formed CBOR")
    if isinstance(item, cbor.Tag) and item.tag == TAG_CWT:
        item = item.value
    if not isinstance(item, cbor.Tag) or item.tag not in (TAG_MAC0, TAG_SIGN1):
        raise COSEError("not a tagged COSE_Mac0 or COSE_Sign1")
    body = item.value
    if not isinstance(body, list) or len(body) != 4:
        raise COSEError("COSE structure must be an array of 4")
    protected_bytes, unprotected, payload, tag = body
    if not isinstance(protected_bytes, bytes) or not isinstance(payload, bytes):
        raise COSEError("protected header and payload must be byte strings")
    if not isinstance(tag, bytes):
        raise COSEError("tag must be a byte string")
    if protected_bytes:
        try:
            protected = cbor.loads(protected_bytes)
        except cbor.CBORError:
            raise COSEError("protected header is not well-formed")
    else:
        protected = {}
    _check_headers(protected, unprotected)
    return Message(item.tag, protected_bytes, protected, unprotected, payload, tag)


def _mac_structure(protected_bytes, payload):
    return cbor.dumps(["MAC0", protected_bytes, b"", payload])


def _sig_structure(protected_bytes, payload):
    return cbor.dumps(["Signature1", protected_bytes, b"", payload])


def _unprotected(kid):
    if kid is None:
        return {}
    if not isinstance(kid, bytes):
        raise COSEError("kid must be a byte string")
    return {HDR_KID: kid}


def mac0_create(payload, key, kid=None):
    """COSE_Mac0, tag 17, protected {1: 5} (HMAC 256/256), empty external AAD."""
    protected_bytes = cbor.dumps({HDR_ALG: ALG_HMAC_256_256})
    tag = crypto.hmac_sha256(key, _mac_structure(protected_bytes, payload))
    return cbor.dumps(cbor.Tag(TAG_MAC0, [protected_bytes, _unprotected(kid), payload, tag]))


def mac0_verify_message(msg, key):
    if msg.cose_tag != TAG_MAC0:
        raise COSEError("expected COSE_Mac0")
    alg = msg.alg
    if isinstance(alg, bool) or alg != ALG_HMAC_256_256:
        raise COSEError("algorithm not allowed for this lock")
    if len(msg.tag) != MAC_LEN:
        raise COSEVerifyError("bad tag length")
    expected = crypto.hmac_sha256(key, _mac_structure(msg.protected_bytes, msg.payload))
    if not crypto.eq(expected, msg.tag):
        raise COSEVerifyError("tag does not verify")
    return msg.payload


def mac0_verify(data, key):
    """Verify a COSE_Mac0 (HMAC 256/256) and return its payload."""
    return mac0_verify_message(decode(data), key)


def sign1_to_be_signed(payload, kid=None):
    """(protected header bytes, unprotected map, Sig_structure bytes) for EdDSA.

    Signing belongs on the host (it holds the private key); it signs the
    returned Sig_structure and calls sign1_assemble.
    """
    protected_bytes = cbor.dumps({HDR_ALG: ALG_EDDSA})
    return protected_bytes, _unprotected(kid), _sig_structure(protected_bytes, payload)


def sign1_assemble(protected_bytes, unprotected, payload, signature):
    return cbor.dumps(cbor.Tag(TAG_SIGN1, [protected_bytes, unprotected, payload, signature]))


def sign1_create(payload, sign, kid=None):
    """COSE_Sign1 with EdDSA; `sign` maps the Sig_structure bytes to a 64-byte signature."""
    protected_bytes, unprotected, tbs = sign1_to_be_signed(payload, kid)
    return sign1_assemble(protected_bytes, unprotected, payload, sign(tbs))


def sign1_verify_message(msg, public_key):
    if msg.cose_tag != TAG_SIGN1:
        raise COSEError("expected COSE_Sign1")
    alg = msg.alg
    if isinstance(alg, bool) or alg not in _SIGN1_ALGS:
        raise COSEError("algorithm not allowed for this lock")
    if len(msg.tag) != SIG_LEN:
        raise COSEVerifyError("bad signature length")
    tbs = _sig_structure(msg.protected_bytes, msg.payload)
    try:
        ok = crypto.ed25519_verify(public_key, tbs, msg.tag)
    except ValueError:  # a signature that is not even an encoding of a point and scalar
        ok = False
    if not ok:
        raise COSEVerifyError("signature does not verify")
    return msg.payload


def sign1_verify(data, public_key):
    """Verify a COSE_Sign1 (EdDSA, Ed25519) and return its payload."""
    return sign1_verify_message(decode(data), public_key)
