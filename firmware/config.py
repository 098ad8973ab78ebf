# The lock's commissioned identity, kept atomically in the store.
from protocol import cbor

CONFIG_NAME = "config"
FORMAT = 1


class ConfigError(ValueError):
    pass


class Config:
    def __init__(self, lock_id, secret, suite, issuer, issuer_pk, door, commissioned_at,
                 commissioned_seq=0):
        self.lock_id = lock_id
        self.secret = secret
        self.suite = suite
        self.issuer = issuer
        self.issuer_pk = issuer_pk
        self.door = door
        self.commissioned_at = commissioned_at
        # Seq of the COMMISSIONED event that starts this identity's log chain;
        # it also names this identity's revocation list.
        self.commissioned_seq = commissioned_seq

    def __repr__(self):
        # The secret is never shown.
        return "<Config lock=%r suite=%s door=%r>" % (self.lock_id, self.suite, self.door)

    def to_bytes(self):
        return cbor.dumps([FORMAT, self.lock_id, self.secret, self.suite, self.issuer,
                           self.issuer_pk or b"", self.door, self.commissioned_at,
                           self.commissioned_seq])

    @classmethod
    def from_bytes(cls, data):
        try:
            fmt, lock_id, secret, suite, issuer, pk, door, at, seq = cbor.loads(data)
        except (cbor.CBORError, ValueError, TypeError):
            raise ConfigError("stored configuration unreadable")
        if fmt != FORMAT or not isinstance(secret, bytes) or len(secret) != 32:
            raise ConfigError("stored configuration has an unknown format")
        return cls(lock_id, secret, suite, issuer, pk or None, door, at, seq)
