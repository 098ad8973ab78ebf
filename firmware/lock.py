# The lock's decisions: challenges, access requests, commissioning, admin
# requests, and the audit log. Everything here is synchronous and touches the
# hardware only through the HAL; firmware/app.py drives it from asyncio.
from firmware import hal as hal_mod
from firmware.config import CONFIG_NAME, Config, ConfigError
from firmware.eventlog import EventLog
from firmware.ratelimit import RateLimiter
from firmware.store import Store, StoreError
from firmware.timekeeper import TimeKeeper
from protocol import cbor, clock, cose, events, keys, reasons, revocation, timeupdate
from protocol import messages as msg
from protocol import token as tok
from protocol.crypto import eq

try:
    from micropython import const
except ImportError:  # CPython
    def const(x):
        return x

FIRMWARE_VERSION = "0.1.0"
CHALLENGE_TTL_MS = const(15000)  # a hello's nonce is good for this long, once
LOG_PAGE = const(24)  # records per log page: 24 * 32 bytes fits one frame
REVOCATION_NAME = "revocation"
TIME_NAME = "trusted-time"
BATTERY_OK = const(0)
BATTERY_LOW = const(1)
BATTERY_CRITICAL = const(2)
BATTERY_HYSTERESIS_MV = const(100)  # a better state needs this much above its threshold
NO_KEY = bytes(8)
SUITES = (tok.SUITE_HMAC, tok.SUITE_ED25519)


class Session:
    """One peer on one link (a BLE connection, or the serial port)."""

    def __init__(self, channel):
        self.channel = channel  # "ble" or "serial"
        self.nonce = None
        self.issued_ms = 0

    def take_nonce(self, nonce, now_ms):
        """Consume the current challenge: a reason code (ALLOW if it was fresh)."""
        if self.nonce is None or nonce != self.nonce:
            return reasons.REPLAY
        self.nonce = None  # a challenge answers exactly one request
        if now_ms - self.issued_ms > CHALLENGE_TTL_MS:
            return reasons.CHALLENGE_EXPIRED
        return reasons.ALLOW


class Lock:
    def __init__(self, hal):
        self.hal = hal
        self.store = Store(fs=hal.config_fs())
        self.log = EventLog(hal.log_device())
        self.log.recover()
        last = self.log.last_record()
        newest_time = 0
        self.prev_mac = events.GENESIS_MAC
        if last is not None:
            ev = events.decode(last)
            self.prev_mac = ev.mac
            newest_time = ev.time
        self.config = None
        raw = self._load(CONFIG_NAME)
        if raw is not None:
            try:
                self.config = Config.from_bytes(raw)
            except ConfigError:
                self.config = None  # an unreadable identity opens for nobody
        self._derive_keys()
        self.revocations = revocation.RevocationList()
        raw = self._load(self._revocation_name(), b"")
        if raw is not None:
            try:
                self.revocations = revocation.RevocationList.from_bytes(raw)
            except revocation.RevocationError:
                # Never fail open: refuse everything issued before now until a
                # fresh list arrives.
                self.revocations = revocation.RevocationList(cutoff=max(newest_time, 1))
        raw = self._load(TIME_NAME)
        trusted_at, was_trusted = 0, False
        if raw and len(raw) == 5:
            trusted_at, was_trusted = int.from_bytes(raw[:4], "big"), raw[4] == 1
        if self.config is not None:
            trusted_at = max(trusted_at, self.config.commissioned_at)
        cause = hal.reset_cause()
        self.reset_cause = cause
        # Only a reset that kept the RTC running keeps a clock that was trusted.
        self.clock = TimeKeeper.at_boot(
            hal, trusted_at, newest_time,
            was_trusted and cause in (hal_mod.RESET_WATCHDOG, hal_mod.RESET_SOFT))
        if was_trusted and not self.clock.trusted:
            self._save_time()  # remembered, so a later warm reset does not trust it again
        self.limiter = RateLimiter(hal)
        self.battery = BATTERY_OK
        self.battery_mv = hal.battery_mv()
        self.battery = self._battery_state(self.battery_mv)
        if self.config is not None and self.log.next_seq <= self.config.commissioned_seq:
            # Power was cut after the identity was committed but before its
            # first event: finish the commissioning now.
            self.prev_mac = events.GENESIS_MAC
            self.record(events.COMMISSIONED, 0)
        self.record(events.BOOT, cause)
        if not self.clock.trusted and self.config is not None:
            self.record(events.CLOCK_UNTRUSTED, 0)

    def _revocation_name(self):
        # One list per commissioned identity: a new identity starts with none,
        # and the single commit point of commissioning is the config file.
        seq = self.config.commissioned_seq if self.config is not None else 0
        return "%s-%d" % (REVOCATION_NAME, seq)

    def _load(self, name, damaged=None):
        """A stored record; `damaged` stands in for one that fails its checks
        (the boot goes on: a lock that cannot start opens for nobody)."""
        try:
            return self.store.load(name)
        except StoreError:
            return damaged

    # --- identity and keys -----------------------------------------------------
    def _derive_keys(self):
        c = self.config
        if c is None:
            self.token_key = self.update_key = self.admin_key = None
            self.log_key = bytes(32)  # an uncommissioned lock still chains its log
            return
        if c.suite == tok.SUITE_ED25519:
            # Load the verifier (and its base-point table) now, while the heap
            # is still unfragmented, rather than at the first visitor.
            import protocol.ed25519  # noqa: F401
            self.token_key = c.issuer_pk
        else:
            self.token_key = keys.token_mac_key(c.secret)
        self.update_key = keys.update_key(c.secret)
        self.admin_key = keys.admin_key(c.secret)
        self.log_key = keys.log_key(c.secret)

    @property
    def lock_id(self):
        return self.config.lock_id if self.config is not None else ""

    @property
    def commissioned(self):
        return self.config is not None

    # --- the audit log ---------------------------------------------------------
    def _flags(self):
        f = 0
        if not self.clock.trusted:
            f |= events.FLAG_CLOCK_UNTRUSTED
        if self.battery == BATTERY_LOW:
            f |= events.FLAG_BATTERY_LOW
        elif self.battery == BATTERY_CRITICAL:
            f |= events.FLAG_BATTERY_CRITICAL
        return f

    def record(self, code, detail=0, key_id=NO_KEY, flags=0):
        """Append one event; returns its sequence number."""
        seq = self.log.next_seq
        rec = events.encode(seq, self.clock.now(), code, flags | self._flags(), detail & 0xFFFF,
                            key_id, self.prev_mac, self.log_key)
        self.log.append(rec)
        self.prev_mac = rec[20:28]
        if self.clock.went_back:
            # The RTC was caught running backwards: say so once, and remember
            # it, so that a warm reset does not trust the clock again.
            self.clock.went_back = False
            self._save_time()
            self.record(events.CLOCK_UNTRUSTED, 1)
        return seq

    # --- battery ---------------------------------------------------------------
    def _battery_state(self, mv):
        if mv <= self.hal.battery_critical_mv:
            return BATTERY_CRITICAL
        if mv <= self.hal.battery_low_mv:
            return BATTERY_LOW
        return BATTERY_OK

    def check_battery(self):
        """Read the battery; log a change of state. It opens at every state."""
        mv = self.hal.battery_mv()
        state = self._battery_state(mv)
        if state < self.battery:
            # Better only when clearly so: a voltage wavering at a threshold
            # (cold, load) must not log a record at every reading.
            state = max(state, self._battery_state(mv - BATTERY_HYSTERESIS_MV))
        self.battery_mv = mv
        if state != self.battery:
            self.battery = state
            if state == BATTERY_LOW:
                self.record(events.BATTERY_LOW, mv)
            elif state == BATTERY_CRITICAL:
                self.record(events.BATTERY_CRITICAL, mv)
        return state

    # --- status and challenges -------------------------------------------------
    def status(self):
        return {
            msg.ST_REVOCATION_VERSION: self.revocations.version,
            msg.ST_BATTERY: self.battery,
            msg.ST_BATTERY_MV: self.battery_mv,
            msg.ST_LOG_COUNT: self.log.count,
            msg.ST_LOG_CAPACITY: self.log.capacity,
            msg.ST_CLOCK_TRUSTED: self.clock.trusted,
            msg.ST_TIME: clock.to_unix(self.clock.now()),
            msg.ST_LAST_SEQ: self.log.next_seq - 1,
            msg.ST_FIRMWARE: FIRMWARE_VERSION,
        }

    def hello(self, session):
        session.nonce = self.hal.random_bytes(msg.NONCE_LEN)
        session.issued_ms = self.hal.ticks_ms()
        fields = {
            1: self.lock_id,
            2: session.nonce,
            3: clock.to_unix(self.clock.now()),
            4: self.revocations.version,
            5: self.battery,
            6: self.clock.trusted,
            7: msg.PROTOCOL_VERSION,
            9: {msg.ST_LOG_COUNT: self.log.count, msg.ST_LOG_CAPACITY: self.log.capacity},
        }
        if self.config is not None:
            fields[8] = self.config.suite
        return msg.encode(msg.HELLO, fields)

    def error(self, reason, nonce=None):
        return msg.encode(msg.ERROR, {1: reason, 2: nonce})

    def refuse(self, reason, key_id=NO_KEY, flags=0):
        """Log a refusal and count it against the rate limiter."""
        self.record(events.REFUSED, reason, key_id, flags)
        if self.limiter.failure():
            self.record(events.RATE_LIMITED, self.limiter.failures)

    # --- updates carried by keys -----------------------------------------------
    def apply_updates(self, blobs):
        """Apply time and revocation updates a key carries. Bad ones are logged
        and skipped: they never stop the key's own request."""
        for blob in blobs:
            if not isinstance(blob, bytes):
                continue
            self._apply_update(blob, exact=False)

    def _apply_update(self, blob, exact):
        try:
            payload = cbor.loads(blob)
            body = cbor.loads(payload.value[2]) if isinstance(payload, cbor.Tag) else None
        except (cbor.CBORError, AttributeError, IndexError, TypeError):
            body = None
        if timeupdate.is_time_update(body):
            try:
                t = clock.from_unix(timeupdate.decode(blob, self.lock_id, self.update_key))
            except timeupdate.TimeUpdateError:
                self.record(events.TIME_REJECTED, reasons.BAD_SIGNATURE)
                return reasons.BAD_SIGNATURE
            return self._set_time(t, exact)
        return self.apply_revocation(blob)

    def _set_time(self, t, exact):
        before = self.clock.now()
        if exact:
            ok = self.clock.set_exact(t)
        else:
            ok = self.clock.raise_bound(t) or True  # an older "at least" is no news
        if not ok:
            self.record(events.TIME_REJECTED, reasons.ROLLBACK)
            return reasons.ROLLBACK
        if exact:
            self._save_time()
        if exact or t > before:
            self.record(events.TIME_SET, min(0xFFFF, abs(t - before)))
        return reasons.ALLOW

    def _save_time(self):
        flag = b"\x01" if self.clock.trusted else b"\x00"
        self.store.save(TIME_NAME, self.clock.trusted_at.to_bytes(4, "big") + flag)

    def apply_revocation(self, blob):
        try:
            update = revocation.decode_update(blob, self.lock_id, self.update_key)
            new = revocation.apply(self.revocations, update, self.clock.now())
        except revocation.RevocationError as exc:
            # An older version arrives with every key issued before the
            # change: log only real refusals, not routine stale copies.
            if exc.reason != reasons.ROLLBACK:
                self.record(events.REVOCATION_REJECTED, exc.reason)
            return exc.reason
        self.store.save(self._revocation_name(), new.to_bytes())
        self.revocations = new
        self.record(events.REVOCATION_UPDATED, new.version)
        return reasons.ALLOW

    # --- the unlock exchange ---------------------------------------------------
    def check_request(self, session, fields):
        """Check an OPEN request. Returns (reason, claims, pop_key).

        Refusals are logged here; an allowed "open" is logged by the caller
        once the bolt has moved, so the log says what really happened.
        """
        nonce = fields[1]
        fresh = session.take_nonce(nonce, self.hal.ticks_ms())
        if self.config is None:
            self.refuse(reasons.NOT_COMMISSIONED)
            return reasons.NOT_COMMISSIONED, None, None
        if fresh != reasons.ALLOW:
            self.refuse(fresh)
            return fresh, None, None
        if 5 in fields:
            self.apply_updates(fields[5])
        try:
            claims = tok.verify(fields[2], self.config.suite, self.token_key)
        except tok.TokenError as exc:
            reason = exc.reason
            if reason == reasons.BAD_SIGNATURE and not self._addressed_here(fields[2]):
                # Tokens are keyed per lock, so another door's token never
                # verifies here; say why, from its (unverified) audience.
                reason = reasons.WRONG_LOCK
            self.refuse(reason)
            return reason, None, None
        key_id = events.key_id_of(claims.sub)
        flags = events.FLAG_ALARM_ACCESS if claims.alarm else 0
        pop_key = keys.pop_key(self.config.secret, claims.cti)
        proof = msg.open_proof(pop_key, nonce, self.lock_id, fields[3], fields[2])
        if not eq(proof, fields[4]):
            self.refuse(reasons.BAD_PROOF, key_id, flags)
            return reasons.BAD_PROOF, claims, None
        now = self.clock.now()
        trusted = self.clock.trusted
        if not trusted:
            # Real time is at least the bound; the token's issue time is
            # authenticated evidence of a later bound. Its start cannot be
            # held against it: the real time may well be past it.
            if claims.iat > now:
                self.clock.raise_bound(claims.iat)
                now = claims.iat
            now = max(now, min(claims.nbf, claims.exp - tok.SKEW - 1))
        reason = tok.decide(claims, self.lock_id, now, trusted, self.revocations, fields[3],
                            self.config.issuer)
        if reason != reasons.ALLOW:
            self.refuse(reason, key_id, flags)
            return reason, claims, pop_key
        self.limiter.success()
        return reasons.ALLOW, claims, pop_key

    def _addressed_here(self, token_bytes):
        """False only if the token clearly names other locks (used for the reason)."""
        try:
            claims = tok.parse_claims(cose.decode(token_bytes).payload)
        except ValueError:
            return True
        return self.lock_id in claims.aud

    def result(self, nonce, outcome, seq, pop_key, data=None):
        now = clock.to_unix(self.clock.now())
        status = self.status()
        fields = {1: nonce, 2: outcome, 3: now, 4: seq, 5: status, 7: data}
        if pop_key is not None:
            fields[6] = msg.result_mac(pop_key, nonce, self.lock_id, outcome, now, seq, status,
                                       data)
        return msg.encode(msg.RESULT, fields)

    def log_page(self, from_seq, limit=LOG_PAGE):
        out = []
        for rec in self.log.read(from_seq=from_seq, count=min(limit, LOG_PAGE)):
            out.append(bytes(rec))
        return out

    # --- commissioning and admin (serial) --------------------------------------
    def check_commission(self, session, fields):
        """Validate a COMMISSION request before the button is asked for."""
        fresh = session.take_nonce(fields[1], self.hal.ticks_ms())
        if fresh != reasons.ALLOW:
            return fresh
        suite = fields[4]
        if suite not in SUITES or len(fields[3]) != 32 or not fields[2]:
            return reasons.MALFORMED
        if suite == tok.SUITE_ED25519 and len(fields.get(8) or b"") != 32:
            return reasons.MALFORMED
        return reasons.ALLOW

    def commission(self, fields):
        """Install identity, secret, suite and time atomically; start a new log chain."""
        t = clock.from_unix(fields[5])
        old_list = self._revocation_name()
        seq = self.log.next_seq
        cfg = Config(fields[2], fields[3], fields[4], fields[6], fields.get(8),
                     fields.get(7) or "apartment", t, seq)
        # The one commit point: a cut before it leaves the old identity whole,
        # a cut after it is completed at the next boot.
        self.store.save(CONFIG_NAME, cfg.to_bytes())
        self.config = cfg
        self.revocations = revocation.RevocationList()
        self._derive_keys()
        self.clock.commissioned(t)
        self.prev_mac = events.GENESIS_MAC  # the chain under the new log key starts here
        self.record(events.COMMISSIONED, 0)
        self.store.delete(old_list)
        self._save_time()
        return seq

    def decommission(self):
        seq = self.record(events.DECOMMISSIONED, 0)
        old_list = self._revocation_name()
        self.store.delete(CONFIG_NAME)
        self.store.delete(old_list)
        self.config = None
        self._derive_keys()
        self.revocations = revocation.RevocationList()
        return seq

    def factory_reset(self):
        """Physical presence only (button held at the lock). Logged, then wiped."""
        self.record(events.FACTORY_RESET, 0)
        try:
            self.hal.erase_config_storage()
        except NotImplementedError:
            self.store.wipe()  # the files go; their old blocks may linger in flash
        self.config = None
        self._derive_keys()
        self.revocations = revocation.RevocationList()

    def check_admin(self, session, fields):
        """Verify an ADMIN request: fresh nonce and MAC under the admin key."""
        fresh = session.take_nonce(fields[1], self.hal.ticks_ms())
        if self.config is None:
            return reasons.NOT_COMMISSIONED
        if fresh != reasons.ALLOW:
            return fresh
        mac = msg.admin_mac(self.admin_key, fields[1], self.lock_id, fields[2], fields[3])
        if not eq(mac, fields[4]):
            return reasons.BAD_PROOF
        return reasons.ALLOW

    def admin(self, op, args):
        """Run a verified admin op: (reason, data map)."""
        if op == "info":
            cfg = self.config
            assert cfg is not None  # admin() runs only after check_admin() passed
            return reasons.ALLOW, {1: self.status(), 2: cfg.door,
                                   3: cfg.suite, 4: self.lock_id}
        if op == "sync":
            out = {}
            if 1 in args:
                t = args[1]
                if not isinstance(t, int) or isinstance(t, bool) or t <= clock.UNIX_AT_LOCK_EPOCH:
                    return reasons.MALFORMED, {}
                out[1] = self._set_time(clock.from_unix(t), exact=True)
            if 2 in args:
                if not isinstance(args[2], bytes):
                    return reasons.MALFORMED, {}
                out[2] = self.apply_revocation(args[2])
            out[3] = self.status()
            return reasons.ALLOW, out
        if op == "log":
            start = args.get(1, 1)
            if not isinstance(start, int) or isinstance(start, bool) or start < 0:
                return reasons.MALFORMED, {}
            page = self.log_page(start)
            return reasons.ALLOW, {1: page, 2: self.log.next_seq - 1}
        return reasons.UNSUPPORTED, {}

    def admin_result(self, nonce, outcome, data):
        key = self.admin_key if self.admin_key is not None else bytes(32)
        mac = msg.admin_result_mac(key, nonce, self.lock_id, outcome, data)
        return msg.encode(msg.ADMIN_RESULT, {1: nonce, 2: outcome, 3: data, 4: mac})
