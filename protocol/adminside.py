# The installer's side of the serial exchange, without I/O: build the
# COMMISSION and the ADMIN for a HELLO, check the lock's ADMIN_RESULT, and
# page through a log read. The installer's tool (tools/client.py) and the
# in-memory lock of the simulator (simulator/memlock.py) both do exactly this;
# keyside.py is the same for a staff key.
from protocol import crypto
from protocol import messages as msg


class PageError(ValueError):
    """A log page that cannot belong to this read."""


def commission_request(nonce, lock_id, secret, suite, time, issuer, door="apartment",
                       issuer_pk=None):
    """The COMMISSION payload answering the HELLO with `nonce`."""
    fields = {msg.COMMISSION_NONCE: nonce, msg.COMMISSION_LOCK_ID: lock_id,
              msg.COMMISSION_SECRET: secret, msg.COMMISSION_SUITE: suite,
              msg.COMMISSION_TIME: int(time), msg.COMMISSION_ISSUER: issuer,
              msg.COMMISSION_DOOR: door}
    if issuer_pk is not None:
        fields[msg.COMMISSION_ISSUER_KEY] = issuer_pk
    return msg.encode(msg.COMMISSION, fields)


def admin_request(admin_key, nonce, lock_id, op, args=None):
    """The ADMIN payload for operation `op` answering the HELLO with `nonce`."""
    args = args or {}
    mac = msg.admin_mac(admin_key, nonce, lock_id, op, args)
    return msg.encode(msg.ADMIN, {msg.ADMIN_NONCE: nonce, msg.ADMIN_OP: op,
                                  msg.ADMIN_ARGS: args, msg.ADMIN_MAC: mac})


def result_authentic(fields, admin_key, nonce, lock_id):
    """True if the fields of an ADMIN_RESULT answer `nonce` under `admin_key`."""
    expected = msg.admin_result_mac(admin_key, fields[msg.ADMIN_RESULT_NONCE], lock_id,
                                    fields[msg.ADMIN_RESULT_OUTCOME],
                                    fields[msg.ADMIN_RESULT_DATA])
    return fields[msg.ADMIN_RESULT_NONCE] == nonce and crypto.eq(
        expected, fields[msg.ADMIN_RESULT_MAC])


class LogPages:
    """The reader's side of a paged log read: where it is, and when it is done.

    The first page makes the lock write its one LOG_READ record, whose seq is
    the bound; the next pages name (next seq, bound) and write nothing, so the
    read ends however busy the lock is."""

    def __init__(self, from_seq=1):
        self.from_seq = from_seq
        self.next_seq = from_seq
        self.bound = None
        self.records = []
        self.done = False

    def args(self):
        """The LOG_FROM/LOG_BOUND arguments of the next page's request."""
        args = {msg.LOG_FROM: self.next_seq}
        if self.bound is not None:
            args[msg.LOG_BOUND] = self.bound
        return args

    def take(self, page, bound):
        """One answer: its records and the bound the lock gave."""
        if not isinstance(bound, int) or isinstance(bound, bool) or bound < 0:
            raise PageError("the lock sent a log page without a valid bound")
        # A lock that did not take our bound (it restarted, say) started a new
        # read: go on with its bound; what we have stays.
        self.bound = bound
        for rec in page:
            rec = bytes(rec)
            seq = int.from_bytes(rec[0:4], "big")
            if seq < self.next_seq or seq > bound:
                raise PageError("the lock sent a log record out of the requested range")
            self.records.append(rec)
            self.next_seq = seq + 1
        if not page or self.next_seq > bound:
            self.done = True

    def progress(self):
        """(records read, records the read will have): from the first record
        the lock had, up to the bound."""
        n = len(self.records)
        if self.done:
            return n, n
        first = int.from_bytes(self.records[0][0:4], "big") if n else self.from_seq
        return n, max(n, (self.bound or 0) - first + 1)
