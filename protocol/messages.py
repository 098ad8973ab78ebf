# Messages of the lock protocol. Each is a CBOR map with small integer keys;
# key 0 holds the message type. The same messages travel over the USB serial
# port and over BLE, each in one frame (protocol/frames.py).
from protocol import cbor, crypto, reasons

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

# Field keys, per message type (key 0 is always the type).
HELLO_LOCK_ID = const(1)  # text, "" before commissioning
HELLO_NONCE = const(2)  # the challenge: 16 random bytes, good for one request
HELLO_TIME = const(3)  # the lock's clock, POSIX seconds
HELLO_REVOCATION_VERSION = const(4)
HELLO_BATTERY = const(5)  # 0 ok, 1 low, 2 critical
HELLO_CLOCK_TRUSTED = const(6)
HELLO_PROTOCOL = const(7)  # PROTOCOL_VERSION
HELLO_SUITE = const(8)  # "hmac" or "ed25519"; absent before commissioning
HELLO_STATUS = const(9)  # a status map (ST_* keys)

OPEN_NONCE = const(1)  # the nonce of the HELLO this answers
OPEN_TOKEN = const(2)  # the COSE token bytes
OPEN_ACTION = const(3)  # "open" or "log"
OPEN_PROOF = const(4)  # open_proof(...)
OPEN_UPDATES = const(5)  # time and revocation updates the key carries (byte strings)
OPEN_ARGS = const(6)  # action arguments; "log": {1: first sequence number}

RESULT_NONCE = const(1)
RESULT_OUTCOME = const(2)  # a protocol.reasons code
RESULT_TIME = const(3)  # the lock's clock, POSIX seconds
RESULT_SEQ = const(4)  # sequence number of the event logged for this request
RESULT_STATUS = const(5)  # a status map (ST_* keys)
RESULT_MAC = const(6)  # result_mac(...); absent if the lock could not use the PoP key
RESULT_RECORDS = const(7)  # "log": event records (they carry their own MAC chain)

ERROR_REASON = const(1)
ERROR_NONCE = const(2)

COMMISSION_NONCE = const(1)
COMMISSION_LOCK_ID = const(2)
COMMISSION_SECRET = const(3)  # the lock secret (32 bytes), over the serial cable only
COMMISSION_SUITE = const(4)
COMMISSION_TIME = const(5)  # POSIX seconds
COMMISSION_ISSUER = const(6)  # the iss every token for this lock must carry
COMMISSION_DOOR = const(7)
COMMISSION_ISSUER_KEY = const(8)  # Ed25519 public key (suite "ed25519")

ADMIN_NONCE = const(1)
ADMIN_OP = const(2)
ADMIN_ARGS = const(3)
ADMIN_MAC = const(4)

ADMIN_RESULT_NONCE = const(1)
ADMIN_RESULT_OUTCOME = const(2)
ADMIN_RESULT_DATA = const(3)
ADMIN_RESULT_MAC = const(4)

PRESS_BUTTON_SECONDS = const(1)

# The maps inside messages: OPEN_ARGS of a "log" read, and the args and data
# of the installer's operations (ADMIN_ARGS, ADMIN_RESULT_DATA).
LOG_FROM = const(1)  # "log" args: the first seq wanted
LOG_BOUND = const(2)  # "log" args: the read's bound (a continuation); data: the bound
LOG_RECORDS = const(1)  # "log" data: the records
SYNC_TIME = const(1)  # "sync"/"force-time" args: POSIX time; data: its outcome
SYNC_REVOCATION = const(2)  # "sync" args: a revocation update; data: its outcome
SYNC_STATUS = const(3)  # "sync"/"force-time" data: the status map
INFO_STATUS = const(1)  # "info" data
INFO_DOOR = const(2)
INFO_SUITE = const(3)
INFO_LOCK_ID = const(4)
COMMISSIONED_SEQ = const(1)  # COMMISSION's ADMIN_RESULT data: the COMMISSIONED record
COMMISSIONED_STATUS = const(2)
COMMISSIONED_AFTER = const(3)  # the first seq after the previous identity
COMMISSIONED_ENDED = const(4)  # how it ended: 0 none known, 1 decommissioned, 2 reset
DECOMMISSIONED_SEQ = const(1)  # "decommission" data
DECOMMISSIONED_RECORD = const(2)  # [the DECOMMISSIONED record]

# Field types: t text, b bytes, i unsigned int, B bool, m map, a array,
# ab array of byte strings. Each schema entry: (key, type, required, bound)
# where bound limits the length of text/bytes/arrays (0: no bound).
_SCHEMAS = {
    HELLO: ((1, "t", True, 64), (2, "b", True, NONCE_LEN), (3, "i", True, 0),
            (4, "i", True, 0), (5, "i", True, 0), (6, "B", True, 0), (7, "i", True, 0),
            (8, "t", False, 16), (9, "m", False, 0)),
    OPEN: ((1, "b", True, NONCE_LEN), (2, "b", True, 640), (3, "t", True, 16),
           (4, "b", True, MAC_LEN), (5, "ab", False, 4), (6, "m", False, 0)),
    RESULT: ((1, "b", True, NONCE_LEN), (2, "i", True, 0), (3, "i", True, 0), (4, "i", True, 0),
             (5, "m", True, 0), (6, "b", False, MAC_LEN), (7, "ab", False, 32)),
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
ST_BATTERY_DAYS = const(10)  # days until the battery-change warning at recent openings/day


class MessageError(ValueError):
    """A message that does not follow its schema; `reason` is what the lock answers."""

    reason = reasons.MALFORMED


class UnknownType(MessageError):
    """A well-formed message of a type this version does not know: a later
    version's message is answered UNSUPPORTED, something it can act on."""

    reason = reasons.UNSUPPORTED


def _check(value, kind, bound):
    if kind == "i":
        return isinstance(value, int) and not isinstance(value, bool) and value >= 0
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
        if ok and kind == "ab":
            for item in value:
                if not isinstance(item, bytes):
                    return False
    return ok and (not bound or len(value) <= bound)


def encode(mtype, fields):
    """One message as CBOR: {0: type, key: value, ...}. A None value is left out."""
    if not isinstance(mtype, int) or isinstance(mtype, bool):
        raise MessageError("unknown message type")
    schema = _SCHEMAS.get(mtype)
    if schema is None:
        raise MessageError("unknown message type")
    for key in fields:
        if not any(key == entry[0] for entry in schema):
            raise MessageError("message %d has no field %r" % (mtype, key))
    body = {0: mtype}
    for key, kind, required, bound in schema:
        if key in fields and fields[key] is not None:
            if not _check(fields[key], kind, bound):
                raise MessageError("field %d of message %d has the wrong type" % (key, mtype))
            body[key] = fields[key]
        elif required:
            raise MessageError("field %d of message %d missing" % (key, mtype))
    try:
        return cbor.dumps(body)
    except cbor.CBORError:
        raise MessageError("message %d holds a value CBOR cannot carry" % mtype)


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
    if not isinstance(mtype, int) or isinstance(mtype, bool):
        raise MessageError("message type missing or not an integer")
    schema = _SCHEMAS.get(mtype)
    if schema is None:
        raise UnknownType("unknown message type")
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

def open_proof_input(nonce, lock_id, action, token, args=None):
    # The action's arguments (a log read's range) are covered too when there
    # are any, so a relay cannot change what the key asked for; without them
    # the input is the five-element array.
    body = ["open", nonce, lock_id, action, crypto.sha256(token)]
    if args:
        body.append(args)
    return cbor.dumps(body)


def open_proof(pop_key, nonce, lock_id, action, token, args=None):
    return crypto.hmac_sha256(pop_key, open_proof_input(nonce, lock_id, action, token, args))


def result_mac(pop_key, nonce, lock_id, outcome, time, seq, status, records=None):
    # Log records (a "log" read) are covered too, so a relay cannot drop or
    # swap them without the key noticing; without records the input is the
    # seven-element array.
    body = ["result", nonce, lock_id, outcome, time, seq, status]
    if records:
        body.append(records)
    return crypto.hmac_sha256(pop_key, cbor.dumps(body))


def admin_mac(admin_key, nonce, lock_id, op, args):
    return crypto.hmac_sha256(admin_key, cbor.dumps(["admin", nonce, lock_id, op, args]))


def admin_result_mac(admin_key, nonce, lock_id, outcome, data):
    return crypto.hmac_sha256(
        admin_key, cbor.dumps(["admin-result", nonce, lock_id, outcome, data]))
