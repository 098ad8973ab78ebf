# CWT access tokens (RFC 8392) and the lock's pure access decision.
#
# Claims use the registered integer keys; times in a token are NumericDate
# (POSIX seconds, as RFC 8392 says) and are turned into lock time (seconds
# since 2020) once, at parsing, so the decision works on small integers.
from protocol import cbor, clock, cose, reasons

try:
    from micropython import const
except ImportError:  # CPython
    def const(x):
        return x

CLAIM_ISS = const(1)
CLAIM_SUB = const(2)
CLAIM_AUD = const(3)
CLAIM_EXP = const(4)
CLAIM_NBF = const(5)
CLAIM_IAT = const(6)
CLAIM_CTI = const(7)
CLAIM_CNF = const(8)
CLAIM_SCOPE = const(9)  # ACE, RFC 9200
CNF_KID = const(3)  # RFC 8747
# Private-use claim (RFC 8392 section 9.1: below -65536): the token was issued
# for a safety-alarm response, so every event it causes is marked as such.
CLAIM_ALARM = const(-65537)

MAX_LIFETIME = const(86400)  # a token lives at most one shift (24 hours)
SKEW = const(120)  # allowed clock difference between issuer, key and lock
MAX_CTI = const(32)
MAX_TEXT = const(64)
MAX_AUD = const(16)  # lock ids one token may name

SCOPE_OPEN = "open"
SCOPE_LOG = "log"
SCOPE_ADMIN = "admin"

SUITE_HMAC = "hmac"
SUITE_ED25519 = "ed25519"


class TokenError(ValueError):
    """A token that cannot be used; `reason` is a protocol.reasons code."""

    def __init__(self, reason, message):
        super().__init__(message)
        self.reason = reason


class Claims:
    """Verified CWT claims, times in lock seconds (since 2020-01-01 UTC)."""

    def __init__(self, iss, sub, aud, exp, nbf, iat, cti, scope, kid, alarm=False):
        self.iss = iss
        self.sub = sub
        self.aud = aud  # tuple of lock ids
        self.exp = exp
        self.nbf = nbf
        self.iat = iat
        self.cti = cti
        self.scope = scope  # tuple of scope words
        self.kid = kid
        self.alarm = alarm

    def __repr__(self):
        return "<Claims sub=%r aud=%r scope=%r>" % (self.sub, self.aud, self.scope)


def _text(value, what):
    if not isinstance(value, str) or not value or len(value) > MAX_TEXT:
        raise TokenError(reasons.MALFORMED, "claim %s must be a short text" % what)
    return value


def _time(value, what):
    # NumericDates the lock can hold (protocol/clock.py's one bound): an
    # integer outside it is a time the lock refuses, anything else malformed.
    if not clock.is_int(value):
        raise TokenError(reasons.MALFORMED, "claim %s must be a NumericDate" % what)
    if not clock.in_range(value):
        raise TokenError(reasons.TIME_OUT_OF_RANGE, "claim %s is out of range" % what)
    return clock.from_unix(value)


def parse_claims(payload):
    """Decode a CWT claims set (the verified COSE payload) into Claims.

    Every malformed claims set raises TokenError(MALFORMED); an integer time
    outside 2020-01-01 .. clock.MAX_LOCK_TIME raises TokenError(TIME_OUT_OF_RANGE)
    (whichever time claim is checked first decides, exp then iat then nbf); nbf defaults
    to iat; cnf must hold a kid equal to cti (the PoP key is derived from cti).
    """
    try:
        c = cbor.loads(payload)
    except cbor.CBORError:
        raise TokenError(reasons.MALFORMED, "claims are not well-formed CBOR")
    if not isinstance(c, dict):
        raise TokenError(reasons.MALFORMED, "claims must be a map")
    for key in (CLAIM_ISS, CLAIM_SUB, CLAIM_AUD, CLAIM_EXP, CLAIM_IAT, CLAIM_CTI,
                CLAIM_SCOPE, CLAIM_CNF):
        if key not in c:
            raise TokenError(reasons.MALFORMED, "claim %d missing" % key)
    aud = c[CLAIM_AUD]
    if isinstance(aud, str):
        aud = (_text(aud, "aud"),)
    elif isinstance(aud, list) and aud and len(aud) <= MAX_AUD:
        aud = tuple(_text(a, "aud") for a in aud)
    else:
        raise TokenError(reasons.MALFORMED, "claim aud must be text or array of text")
    exp = _time(c[CLAIM_EXP], "exp")
    iat = _time(c[CLAIM_IAT], "iat")
    nbf = _time(c[CLAIM_NBF], "nbf") if CLAIM_NBF in c else iat
    cti = c[CLAIM_CTI]
    if not isinstance(cti, bytes) or not cti or len(cti) > MAX_CTI:
        raise TokenError(reasons.MALFORMED, "claim cti must be a short byte string")
    scope = c[CLAIM_SCOPE]
    # RFC 9200 also allows a byte string scope (binary encodings such as AIF);
    # these tokens use the text form only.
    if not isinstance(scope, str) or len(scope) > MAX_TEXT:
        raise TokenError(reasons.MALFORMED, "claim scope must be a short text")
    words = tuple(w for w in scope.split(" ") if w)
    cnf = c[CLAIM_CNF]
    if not isinstance(cnf, dict) or len(cnf) != 1 or not isinstance(cnf.get(CNF_KID), bytes):
        raise TokenError(reasons.MALFORMED, "claim cnf must hold a kid")
    if cnf[CNF_KID] != cti:
        raise TokenError(reasons.MALFORMED, "cnf kid does not name this token")
    alarm = c.get(CLAIM_ALARM, False)
    if not isinstance(alarm, bool):
        raise TokenError(reasons.MALFORMED, "alarm claim must be a boolean")
    return Claims(_text(c[CLAIM_ISS], "iss"), _text(c[CLAIM_SUB], "sub"), aud, exp, nbf, iat,
                  cti, words, cnf[CNF_KID], alarm)


def encode_claims(iss, sub, aud, exp, nbf, iat, cti, scope, alarm=False):
    """CWT claims set as CBOR; times are POSIX seconds. Used by the issuer."""
    c = {
        CLAIM_ISS: iss,
        CLAIM_SUB: sub,
        CLAIM_AUD: aud,
        CLAIM_EXP: int(exp),
        CLAIM_NBF: int(nbf),
        CLAIM_IAT: int(iat),
        CLAIM_CTI: bytes(cti),
        CLAIM_SCOPE: scope if isinstance(scope, str) else " ".join(scope),
        CLAIM_CNF: {CNF_KID: bytes(cti)},
    }
    if alarm:
        c[CLAIM_ALARM] = True
    return cbor.dumps(c)


def verify(token_bytes, suite, key):
    """Check a token's MAC or signature with the lock's suite; return Claims.

    `suite` comes from the lock's commissioning, never from the token:
    "hmac" verifies COSE_Mac0 under `key` (the token MAC key), "ed25519"
    verifies COSE_Sign1 under `key` (the issuer's public key). A token of the
    other kind, or with another algorithm, is refused as UNSUPPORTED before
    any key is used; a MAC or signature that does not verify as BAD_SIGNATURE.
    Every failure raises TokenError.
    """
    if suite == SUITE_HMAC:
        cose_tag = cose.TAG_MAC0
    elif suite == SUITE_ED25519:
        cose_tag = cose.TAG_SIGN1
    else:
        raise TokenError(reasons.UNSUPPORTED, "unknown suite")
    try:
        msg = cose.decode(token_bytes)
    except cose.COSEError as exc:
        raise TokenError(reasons.MALFORMED, str(exc))
    if msg.cose_tag != cose_tag:
        raise TokenError(reasons.UNSUPPORTED, "token kind does not match the lock's suite")
    try:
        if suite == SUITE_HMAC:
            payload = cose.mac0_verify_message(msg, key)
        else:
            payload = cose.sign1_verify_message(msg, key)
    except cose.COSEVerifyError as exc:
        raise TokenError(reasons.BAD_SIGNATURE, str(exc))
    except cose.COSEError as exc:
        raise TokenError(reasons.UNSUPPORTED, str(exc))
    return parse_claims(payload)


def decide(claims, lock_id, now, clock_trusted, revocations, action, issuer=None):
    """The lock's access decision: reasons.ALLOW or a specific refusal code.

    `now` is lock time (seconds since 2020). When the clock is untrusted it
    is the last trusted time, a lower bound: opening still works for tokens
    valid at that bound (a client on the floor matters more than a perfect
    clock), but nothing else does until an authenticated time arrives.

    The first rule that fails gives the reason, in this order: issuer, lock,
    validity window (MALFORMED if exp <= nbf, LIFETIME_TOO_LONG if exp is more
    than MAX_LIFETIME after nbf or after iat), revocation (site-wide cut-off, then
    token id and staff key), scope, not yet valid (nbf, or with a trusted clock an
    iat ahead of it), expired, untrusted clock.
    """
    if issuer is not None and claims.iss != issuer:
        return reasons.WRONG_ISSUER
    if lock_id not in claims.aud:
        return reasons.WRONG_LOCK
    exp = claims.exp
    if exp <= claims.nbf:
        return reasons.MALFORMED
    # Bounding exp - iat too is what lets revocation entries be dropped 24 hours
    # after their cut-off: no token issued before it can still be valid then.
    if exp - claims.nbf > MAX_LIFETIME or exp - claims.iat > MAX_LIFETIME:
        return reasons.LIFETIME_TOO_LONG
    if revocations is not None:
        refusal = revocations.check(claims)
        if refusal != reasons.ALLOW:
            return refusal
    if action not in claims.scope:
        return reasons.SCOPE
    # An issue time ahead of a trusted clock is refused too: a staff block
    # covers "every token issued before T", and a future iat would escape it.
    # (With an untrusted clock the lock takes iat as evidence of the time.)
    if now + SKEW < claims.nbf or (clock_trusted and now + SKEW < claims.iat):
        return reasons.NOT_YET_VALID
    if now - SKEW >= exp:
        return reasons.EXPIRED
    if not clock_trusted and action != SCOPE_OPEN:
        return reasons.CLOCK_UNTRUSTED
    return reasons.ALLOW
