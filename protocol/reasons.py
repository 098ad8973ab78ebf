# Stable decision codes. They are written into event records (u16 detail) and
# shown by the tools, so a number never changes meaning once released.
try:
    from micropython import const
except ImportError:  # CPython
    def const(x):
        return x

ALLOW = const(0)
MALFORMED = const(1)
BAD_SIGNATURE = const(2)
EXPIRED = const(3)
NOT_YET_VALID = const(4)
WRONG_LOCK = const(5)
REVOKED = const(6)
SCOPE = const(7)
CLOCK_UNTRUSTED = const(8)
LIFETIME_TOO_LONG = const(9)
BAD_PROOF = const(10)
REPLAY = const(11)
CHALLENGE_EXPIRED = const(12)
RATE_LIMITED = const(13)
NOT_COMMISSIONED = const(14)
ISSUED_BEFORE_CUTOFF = const(15)
WRONG_ISSUER = const(16)
UNSUPPORTED = const(17)
ROLLBACK = const(18)
BUSY = const(19)
JAMMED = const(20)
BUTTON_REQUIRED = const(21)
ALREADY_COMMISSIONED = const(22)
TIME_OUT_OF_RANGE = const(23)  # a time outside clock.MAX_LOCK_TIME's bound (2020 .. 2054)
TOKEN_BURNED = const(24)  # 5 failed proofs of this token: refused for good

NAMES = {
    ALLOW: "allowed",
    MALFORMED: "malformed",
    BAD_SIGNATURE: "bad-signature",
    EXPIRED: "expired",
    NOT_YET_VALID: "not-yet-valid",
    WRONG_LOCK: "wrong-lock",
    REVOKED: "revoked",
    SCOPE: "scope",
    CLOCK_UNTRUSTED: "clock-untrusted",
    LIFETIME_TOO_LONG: "lifetime-too-long",
    BAD_PROOF: "bad-proof",
    REPLAY: "replay",
    CHALLENGE_EXPIRED: "challenge-expired",
    RATE_LIMITED: "rate-limited",
    NOT_COMMISSIONED: "not-commissioned",
    ISSUED_BEFORE_CUTOFF: "issued-before-cutoff",
    WRONG_ISSUER: "wrong-issuer",
    UNSUPPORTED: "unsupported",
    ROLLBACK: "rollback",
    BUSY: "busy",
    JAMMED: "jammed",
    BUTTON_REQUIRED: "button-required",
    ALREADY_COMMISSIONED: "already-commissioned",
    TIME_OUT_OF_RANGE: "time-out-of-range",
    TOKEN_BURNED: "token-burned",
}


def name(code):
    return NAMES.get(code, "reason-%d" % code)
