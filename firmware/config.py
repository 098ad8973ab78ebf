# The lock's commissioned identity, kept atomically in the store.
from protocol import cbor

CONFIG_NAME = "config"
FORMAT = 1


class ConfigError(ValueError):
    pass


class Config:
    def __init__(self, lock_id, secret, suite, issuer, issuer_pk, door, commissioned_at):
        self.lock_id = lock_id
        self.secret = secret
        self.suite = suite
        self.issuer = issuer
        self.issuer_pk = issuer_pk
        self.door = door
        self.commissioned_at = commissioned_at

    def __repr__(self):
        # The secret is never shown.
        return "<Config lock=%r suite=%s door=%r>" % (self.lock_id, self.suite, self.door)

    def to_bytes(self):
        return cbor.dumps([FORMAT, self.lock_id, self.secret, self.suite, self.issuer,
                           self.issuer_pk or b"", self.door, self.commissioned_at])

    @classmethod
    def from_bytes(cls, data):
        try:
            fmt, lock_id, secret, suite, issuer, pk, door, at = cbor.loads(data)
        except (cbor.CBORError, ValueError, TypeError):
            raise ConfigError("stored configuration unreadable")
        if fmt != FORMAT or not isinstance(secret, bytes) or len(secret) != 32:
            raise ConfigError("stored configuration has an unknown format")
        return cls(lock_id, secret, suite, issuer, pk or None, door, at)
