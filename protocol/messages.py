# Messages of the lock protocol. Each is a CBOR map with small integer keys;
# key 0 holds the message type. The same messages travel over the USB serial
# port and over BLE, each in one frame (protocol/frames.py).
from protocol import cbor
from protocol import crypto

try:
    from micropython import const
except ImportError:  # CPython
    def const(x):
        return x

PROTOCOL_VERSION = const(1)
NONCE_LEN = const(16)
MAC_LEN = const(32)

# Message types.
HELLO = const(1)  # lock -> key/tool: identity, fresh nonce, time, status
OPEN = const(2)  # key -> lock: token, action, proof of possession, updates
RESULT = const(3)  # lock -> key: outcome, authenticated under the token's PoP key
ERROR = const(4)  # lock -> peer: unauthenticated refusal (reason only)
GET_HELLO = const(5)  # tool/key -> lock: ask for a fresh challenge
COMMISSION = const(6)  # tool -> lock over serial: identity, secret, suite, time
ADMIN = const(7)  # tool -> lock over serial: an operation under the admin key
ADMIN_RESULT = const(8)  # lock -> tool: the answer, under the admin key
PRESS_BUTTON = const(9)  # lock -> tool: waiting for the commissioning button

# Field types: t text, b bytes, i int, B bool, m map, a array.
# Each schema entry: (key, type, required, bound) where bound limits the
# length of text/bytes/arrays.
_SCHEMAS = {
    HELLO: ((1, "t", True, 64), (2, "b", True, NONCE_LEN), (3, "i", True, 0),
            (4, "i", True, 0), (5, "i", True, 0), (6, "B", True, 0), (7, "i", True, 0),
            (8, "t", False, 16), (9, "m", False, 0)),
    OPEN: ((1, "b", True, NONCE_LEN), (2, "b", True, 640), (3, "t", True, 16),
           (4, "b", True, MAC_LEN), (5, "a", False, 4), (6, "m", False, 0)),
    RESULT: ((1, "b", True, NONCE_LEN), (2, "i", True, 0), (3, "i", True, 0), (4, "i", True, 0),
             (5, "m", True, 0), (6, "b", False, MAC_LEN), (7, "a", False, 32)),
    ERROR: ((1, "i", True, 0), (2, "b", False, NONCE_LEN)),
    GET_HELLO: (),
    COMMISSION: ((1, "b", True, NONCE_LEN), (2, "t", True, 64), (3, "b", True, 32),
                 (4, "t", True, 16), (5, "i", True, 0), (6, "t", True, 64), (7, "t", False, 32),
                 (8, "b", False, 32)),
    ADMIN: ((1, "b", True, NONCE_LEN), (2, "t", True, 16), (3, "m", True, 0),
            (4, "b", True, MAC_LEN)),
    ADMIN_RESULT: ((1, "b", True, NONCE_LEN), (2, "i", True, 0), (3, "m", True, 0),
                   (4, "b", True, MAC_LEN)),
    PRESS_BUTTON: ((1, "i", True, 0),),
}

# Status map keys (carried in RESULT and HELLO so keys bring fleet health home).
ST_REVOCATION_VERSION = const(1)
ST_BATTERY = const(2)  # 0 ok, 1 low, 2 critical
ST_BATTERY_MV = const(3)
ST_LOG_COUNT = const(4)
ST_LOG_CAPACITY = const(5)
ST_CLOCK_TRUSTED = const(6)
ST_TIME = const(7)
ST_LAST_SEQ = const(8)
ST_FIRMWARE = const(9)


class MessageError(ValueError):
    pass


def _check(value, kind, bound):
    if kind == "i":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "B":
        return isinstance(value, bool)
    if kind == "m":
        return isinstance(value, dict)
    if kind == "t":
        ok = isinstance(value, str)
    elif kind == "b":
        ok = isinstance(value, bytes)
    else:
        ok = isinstance(value, list)
    return ok and (not bound or len(value) <= bound)


def encode(mtype, fields):
    """One message as CBOR: {0: type, key: value, ...}."""
    schema = _SCHEMAS.get(mtype)
    if schema is None:
        raise MessageError("unknown message type")
    body = {0: mtype}
    for key, kind, required, bound in schema:
        if key in fields and fields[key] is not None:
            if not _check(fields[key], kind, bound):
                raise MessageError("field %d of message %d has the wrong type" % (key, mtype))
            body[key] = fields[key]
        elif required:
            raise MessageError("field %d of message %d missing" % (key, mtype))
    return cbor.dumps(body)


def decode(payload, expect=None):
    """(type, fields) of one message, checked against its schema.

    Unknown keys are ignored so later versions can add optional fields.
    """
    try:
        body = cbor.loads(payload)
    except cbor.CBORError:
        raise MessageError("message is not well-formed CBOR")
    if not isinstance(body, dict):
        raise MessageError("message must be a map")
    mtype = body.get(0)
    schema = _SCHEMAS.get(mtype) if isinstance(mtype, int) else None
    if schema is None:
        raise MessageError("unknown message type")
    if expect is not None and mtype not in expect:
        raise MessageError("unexpected message type")
    fields = {}
    for key, kind, required, bound in schema:
        if key in body:
            if not _check(body[key], kind, bound):
                raise MessageError("field %d of message %d is invalid" % (key, mtype))
            fields[key] = body[key]
        elif required:
            raise MessageError("field %d of message %d missing" % (key, mtype))
    return mtype, fields


# What each MAC covers. Binding the nonce, the lock id and the request
# makes a captured exchange useless anywhere else or later.

def open_proof_input(nonce, lock_id, action, token):
    return cbor.dumps(["open", nonce, lock_id, action, crypto.sha256(token)])


def open_proof(pop_key, nonce, lock_id, action, token):
    return crypto.hmac_sha256(pop_key, open_proof_input(nonce, lock_id, action, token))


def result_mac(pop_key, nonce, lock_id, outcome, time, seq, status):
    return crypto.hmac_sha256(
        pop_key, cbor.dumps(["result", nonce, lock_id, outcome, time, seq, status]))


def admin_mac(admin_key, nonce, lock_id, op, args):
    return crypto.hmac_sha256(admin_key, cbor.dumps(["admin", nonce, lock_id, op, args]))


def admin_result_mac(admin_key, nonce, lock_id, outcome, data):
    return crypto.hmac_sha256(
        admin_key, cbor.dumps(["admin-result", nonce, lock_id, outcome, data]))
