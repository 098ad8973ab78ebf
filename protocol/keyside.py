# The key's side of the exchange, without I/O: build the OPEN for a HELLO,
# read the lock's answer and check it. The host key emulator
# (tools/client.py), the energy measurement (simulator/energy_visit.py) and a
# phone app's port all do exactly this; the bytes travel however they travel.
from protocol import crypto
from protocol import messages as msg


class AnswerError(ValueError):
    """The lock's answer cannot be taken as an answer to this request."""


def hello_fields(payload):
    """(lock_id, nonce, POSIX time, revocation version, battery, clock trusted,
    suite or None, status map) of a HELLO payload."""
    mtype, f = msg.decode(payload, (msg.HELLO,))
    return (f[msg.HELLO_LOCK_ID], f[msg.HELLO_NONCE], f[msg.HELLO_TIME],
            f[msg.HELLO_REVOCATION_VERSION], f[msg.HELLO_BATTERY],
            f[msg.HELLO_CLOCK_TRUSTED], f.get(msg.HELLO_SUITE), f.get(msg.HELLO_STATUS) or {})


def open_request(token, pop_key, lock_id, nonce, action, updates=None, log_from=None,
                 log_bound=None):
    """The OPEN payload answering the HELLO with `nonce` from lock `lock_id`."""
    args = None
    if log_from is not None:
        args = {msg.LOG_FROM: log_from}
        if log_bound is not None:
            args[msg.LOG_BOUND] = log_bound
    fields = {msg.OPEN_NONCE: nonce, msg.OPEN_TOKEN: token, msg.OPEN_ACTION: action,
              msg.OPEN_PROOF: msg.open_proof(pop_key, nonce, lock_id, action, token, args)}
    if updates:
        fields[msg.OPEN_UPDATES] = list(updates)
    if args is not None:
        fields[msg.OPEN_ARGS] = args
    return msg.encode(msg.OPEN, fields)


def read_answer(payload, nonce, pop_key, lock_id):
    """The lock's answer to an OPEN: (outcome, authenticated, seq, POSIX time,
    status, records). An ERROR is never authenticated; a RESULT is when its
    MAC verifies under the PoP key (only then may a key say "open")."""
    mtype, f = msg.decode(payload, (msg.RESULT, msg.ERROR))
    if mtype == msg.ERROR:
        return f[msg.ERROR_REASON], False, None, None, {}, []
    if f[msg.RESULT_NONCE] != nonce:
        raise AnswerError("the lock answered another request")
    records = f.get(msg.RESULT_RECORDS)
    mac = f.get(msg.RESULT_MAC)
    ok = mac is not None and crypto.eq(mac, msg.result_mac(
        pop_key, nonce, lock_id, f[msg.RESULT_OUTCOME], f[msg.RESULT_TIME], f[msg.RESULT_SEQ],
        f[msg.RESULT_STATUS], records))
    return (f[msg.RESULT_OUTCOME], ok, f[msg.RESULT_SEQ], f[msg.RESULT_TIME],
            f[msg.RESULT_STATUS], list(records or []))
