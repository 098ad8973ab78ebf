# The lock's decisions: challenges, access requests, commissioning, admin
# requests, and the audit log. Everything here is synchronous and touches the
# hardware only through the HAL; firmware/app.py drives it from asyncio.
from firmware import battery as battery_mod
from firmware import hal as hal_mod
from firmware import peerbudget
from firmware.config import CONFIG_NAME, Config, ConfigError
from firmware.eventlog import EventLog
from firmware.peerbudget import PeerBudget
from firmware.ratelimit import BURN_AT, REPORT_AT, ProofFailures
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
# How the previous identity ended: [kind, first seq after it]. Commissioning
# reports it, so the issuer can tell "decommissioned" from "records lost to a
# factory reset" (END_* below).
ENDED_NAME = "identity-ended"
END_NONE = const(0)  # never commissioned before (as far as this flash knows)
END_DECOMMISSIONED = const(1)
END_FACTORY_RESET = const(2)
REPEATS_KEPT = const(8)  # refusals of verified tokens remembered, to fold repeats
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
        self.accepted = False  # a request of a verified token was granted
        self.ended = None  # None, "refused" (its token's own refusal) or "failed"

    def take_nonce(self, nonce, now_ms, ttl_ms=CHALLENGE_TTL_MS):
        """Consume the current challenge: a reason code (ALLOW if it was fresh)."""
        if self.nonce is None or nonce != self.nonce:
            return reasons.REPLAY
        self.nonce = None  # a challenge answers exactly one request
        if now_ms - self.issued_ms > ttl_ms:
            return reasons.CHALLENGE_EXPIRED
        return reasons.ALLOW


class Lock:
    def __init__(self, hal):
        self.hal = hal
        self.log = EventLog(hal.log_device())
        self.log.recover()
        last = self.log.last_record()
        newest_time = 0
        self.prev_mac = events.GENESIS_MAC
        resetting = False
        ended_seq = 0
        if last is not None:
            ev = events.decode(last)
            self.prev_mac = ev.mac
            newest_time = ev.time
            if ev.code == events.DECOMMISSIONED:
                ended_seq = ev.seq
            # A factory reset writes its record first: if it is still the
            # newest, the reset may have been cut before it finished.
            resetting = ev.code == events.FACTORY_RESET
        if resetting:
            self._finish_factory_reset()
        self.store = Store(fs=hal.config_fs())
        self.budget = PeerBudget(hal)
        self.repeats = []  # (cti, reason) of recent refusals of verified tokens
        self.reads = []  # (key id, how, bound) of recent log reads
        self.admin_at_ms = 0  # when the current admin request arrived
        self.last_news = self.log.next_seq - 1  # newest record that is not a log read
        self.config = None
        raw = self._load(CONFIG_NAME)
        if raw is not None:
            try:
                self.config = Config.from_bytes(raw)
            except ConfigError:
                self.config = None  # an unreadable identity opens for nobody
        if self.config is not None and ended_seq >= self.config.commissioned_seq > 0:
            # Power was cut during a decommissioning, after the record that
            # ends this identity: finish it (the log says it ended).
            self._end_identity(ended_seq)
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
        self.proof_failures = ProofFailures(self.store)
        self.battery = BATTERY_OK
        self.battery_mv = hal.battery_mv()
        # Days of battery left at the recent openings (None: the board has no figures).
        self.forecast = battery_mod.forecast_for(hal)
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
        """Append one event; returns its sequence number. Counts of the peer
        budget whose window is over go first (not before a log read, which
        writes exactly one record)."""
        if code != events.LOG_READ and self.budget.due():
            self._write_summary()
        if code in (events.OPENED, events.ALARM_OPEN) and self.forecast is not None:
            self.forecast.note_open(self.clock.now())
        return self._append(code, detail, key_id, flags)

    def _write_summary(self):
        total, counts = self.budget.take()
        return self._append(events.PEER_SUMMARY, total, counts, 0)

    def peer_record(self, kind, code, detail=0, key_id=NO_KEY, flags=0, n=1):
        """A record a peer caused without a verified token: under the budget
        (firmware/peerbudget.py). Returns the seq written, or 0 if only counted."""
        what = self.budget.admit(kind, n)
        if what == "write":
            return self._append(code, detail, key_id, flags)
        if what == "summary":
            return self._write_summary()
        return 0

    def _append(self, code, detail, key_id, flags):
        seq = self.log.next_seq
        rec = events.encode(seq, self.clock.now(), code, flags | self._flags(), detail & 0xFFFF,
                            key_id, self.prev_mac, self.log_key)
        self.log.append(rec)
        self.prev_mac = rec[20:28]
        if code != events.LOG_READ:
            self.last_news = seq
        if self.clock.went_back:
            # The RTC was caught running backwards: say so once, and remember
            # it, so that a warm reset does not trust the clock again.
            self.clock.went_back = False
            self._save_time()
            self._append(events.CLOCK_UNTRUSTED, 1, NO_KEY, 0)
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
    def battery_days(self):
        """Days until the battery-change warning at the recent openings per day
        (firmware/battery.py), or None when the board has no figures."""
        if self.forecast is None:
            return None
        return self.forecast.days_left(self.battery_mv, self.clock.now())

    def status(self):
        st = {
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
        days = self.battery_days()
        if days is not None:
            st[msg.ST_BATTERY_DAYS] = days
        return st

    def hello(self, session):
        session.nonce = self.hal.random_bytes(msg.NONCE_LEN)
        session.issued_ms = self.hal.ticks_ms()
        fields = {
            msg.HELLO_LOCK_ID: self.lock_id,
            msg.HELLO_NONCE: session.nonce,
            msg.HELLO_TIME: clock.to_unix(self.clock.now()),
            msg.HELLO_REVOCATION_VERSION: self.revocations.version,
            msg.HELLO_BATTERY: self.battery,
            msg.HELLO_CLOCK_TRUSTED: self.clock.trusted,
            msg.HELLO_PROTOCOL: msg.PROTOCOL_VERSION,
            msg.HELLO_STATUS: {msg.ST_LOG_COUNT: self.log.count,
                               msg.ST_LOG_CAPACITY: self.log.capacity},
        }
        if self.config is not None:
            fields[msg.HELLO_SUITE] = self.config.suite
        return msg.encode(msg.HELLO, fields)

    def error(self, reason, nonce=None):
        return msg.encode(msg.ERROR, {msg.ERROR_REASON: reason, msg.ERROR_NONCE: nonce})

    def refuse(self, reason, key_id=NO_KEY, flags=0, cti=None):
        """Log a refusal.

        Without a verified token (cti None) the record falls under the peer
        budget. A verified token's refusal is written, but its repeats (same
        token, same reason) fall under the budget too: yesterday's key, tried
        in a loop, must not push the visits out of the log."""
        if cti is None:
            self.peer_record(peerbudget.REFUSAL, events.REFUSED, reason, key_id, flags)
        else:
            seen = (cti, reason)
            if seen in self.repeats:
                self.peer_record(peerbudget.REFUSAL, events.REFUSED, reason, key_id, flags)
            else:
                self.repeats.append(seen)
                if len(self.repeats) > REPEATS_KEPT:
                    self.repeats.pop(0)
                self.record(events.REFUSED, reason, key_id, flags)


    # --- updates carried by keys -----------------------------------------------
    def apply_updates(self, blobs):
        """Apply time and revocation updates a key carries. Bad ones are logged
        and skipped: they never stop the key's own request."""
        for blob in blobs:
            if not isinstance(blob, bytes):
                continue
            self._apply_update(blob, exact=False, peer=True)

    def _rejected(self, code, reason, peer):
        # An update carried before the key's token verified is a peer's record.
        if peer:
            self.peer_record(peerbudget.OTHER, code, reason)
        else:
            self.record(code, reason)

    def _apply_update(self, blob, exact, peer=False):
        try:
            payload = cbor.loads(blob)
            body = cbor.loads(payload.value[2]) if isinstance(payload, cbor.Tag) else None
        except (cbor.CBORError, AttributeError, IndexError, TypeError):
            body = None
        if timeupdate.is_time_update(body):
            try:
                t = clock.from_unix(timeupdate.decode(blob, self.lock_id, self.update_key))
            except timeupdate.TimeUpdateError as exc:
                self._rejected(events.TIME_REJECTED, exc.reason, peer)
                return exc.reason
            return self._set_time(t, exact)
        return self.apply_revocation(blob, peer)

    def _set_time(self, t, exact, forced=False):
        """`t` in lock seconds, already within clock.MAX_LOCK_TIME. `forced`
        (physical presence checked by the caller) takes it whatever the clock
        reads; `exact` only within the drift; else it only raises the bound."""
        before = self.clock.now()
        if forced:
            self.clock.force(t)
            ok = True
        elif exact:
            ok = self.clock.set_exact(t)
        else:
            ok = self.clock.raise_bound(t) or True  # an older "at least" is no news
        if not ok:
            self.record(events.TIME_REJECTED, reasons.ROLLBACK)
            return reasons.ROLLBACK
        if exact or forced:
            self._save_time()
        if forced:
            self.record(events.TIME_SET, events.TIME_SET_FORCED)
        elif exact or t > before:
            self.record(events.TIME_SET, min(events.TIME_SET_MAX_MOVED, abs(t - before)))
        return reasons.ALLOW

    def _admin_time(self, t):
        """An admin op's POSIX time as lock seconds, or a refusal (logged)."""
        if not clock.is_int(t):
            return None, reasons.MALFORMED
        if not clock.in_range(t):
            self.record(events.TIME_REJECTED, reasons.TIME_OUT_OF_RANGE)
            return None, reasons.TIME_OUT_OF_RANGE
        return clock.from_unix(t), reasons.ALLOW

    def _save_time(self):
        flag = b"\x01" if self.clock.trusted else b"\x00"
        self.store.save(TIME_NAME, self.clock.trusted_at.to_bytes(4, "big") + flag)

    def apply_revocation(self, blob, peer=False):
        try:
            update = revocation.decode_update(blob, self.lock_id, self.update_key)
            new = revocation.apply(self.revocations, update, self.clock.now())
        except revocation.RevocationError as exc:
            # An older version arrives with every key issued before the
            # change: log only real refusals, not routine stale copies.
            if exc.reason != reasons.ROLLBACK:
                self._rejected(events.REVOCATION_REJECTED, exc.reason, peer)
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
        nonce = fields[msg.OPEN_NONCE]
        fresh = session.take_nonce(nonce, self.hal.ticks_ms(),
                                   hal_mod.timing(self.hal, "challenge_ttl_ms", CHALLENGE_TTL_MS))
        if self.config is None:
            self.refuse(reasons.NOT_COMMISSIONED)
            return reasons.NOT_COMMISSIONED, None, None
        if fresh != reasons.ALLOW:
            self.refuse(fresh)
            return fresh, None, None
        if msg.OPEN_UPDATES in fields:
            self.apply_updates(fields[msg.OPEN_UPDATES])
        try:
            claims = tok.verify(fields[msg.OPEN_TOKEN], self.config.suite, self.token_key)
        except tok.TokenError as exc:
            reason = exc.reason
            if (reason == reasons.BAD_SIGNATURE
                    and not self._addressed_here(fields[msg.OPEN_TOKEN])):
                # Tokens are keyed per lock, so another door's token never
                # verifies here; say why, from its (unverified) audience.
                reason = reasons.WRONG_LOCK
            self.refuse(reason)
            return reason, None, None
        key_id = events.key_id_of(claims.sub)
        flags = events.FLAG_ALARM_ACCESS if claims.alarm else 0
        if self.proof_failures.count(claims.cti) >= BURN_AT:
            # Five wrong proofs: whoever holds this token may be guessing the
            # code that unlocks its key. Refused for good; a new key is needed.
            self.refuse(reasons.TOKEN_BURNED, key_id, flags, claims.cti)
            return reasons.TOKEN_BURNED, claims, None
        pop_key = keys.pop_key(self.config.secret, claims.cti)
        proof = msg.open_proof(pop_key, nonce, self.lock_id, fields[msg.OPEN_ACTION],
                               fields[msg.OPEN_TOKEN], fields.get(msg.OPEN_ARGS))
        if not eq(proof, fields[msg.OPEN_PROOF]):
            self.refuse(reasons.BAD_PROOF, key_id, flags, claims.cti)
            count = self.proof_failures.failed(claims.cti, claims.exp, self.clock.now())
            if count == REPORT_AT:
                self.record(events.RATE_LIMITED, count, key_id, flags)
            return reasons.BAD_PROOF, claims, None
        self.proof_failures.proved(claims.cti)
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
        reason = tok.decide(claims, self.lock_id, now, trusted, self.revocations,
                            fields[msg.OPEN_ACTION],
                            self.config.issuer)
        if reason != reasons.ALLOW:
            self.refuse(reason, key_id, flags, claims.cti)
            return reason, claims, pop_key
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
        fields = {msg.RESULT_NONCE: nonce, msg.RESULT_OUTCOME: outcome, msg.RESULT_TIME: now,
                  msg.RESULT_SEQ: seq, msg.RESULT_STATUS: status, msg.RESULT_RECORDS: data}
        if pop_key is not None:
            fields[msg.RESULT_MAC] = msg.result_mac(pop_key, nonce, self.lock_id, outcome, now, seq, status,
                                       data)
        return msg.encode(msg.RESULT, fields)

    # --- log reads ---------------------------------------------------------------
    # A read writes one LOG_READ record when it starts; that record's seq is
    # the read's upper bound, so the reader never chases its own records. It
    # goes on page by page with (next seq, bound), across reconnects, writing
    # nothing more. A reader who read before, with nothing new since but log
    # reads, gets its old bound again: repeated pulls cannot fill the log.
    def _is_read_of(self, seq, key_id, how):
        """True if record `seq` is a LOG_READ of this reader, of this identity."""
        cfg = self.config
        if cfg is None or seq < cfg.commissioned_seq or seq >= self.log.next_seq:
            return False
        for rec in self.log.read(from_seq=seq, count=1):
            ev = events.decode(rec)
            return (ev.seq == seq and ev.code == events.LOG_READ and ev.detail == how
                    and ev.key_id == key_id)
        return False

    def begin_log_read(self, bound, key_id, how):
        """The upper bound of a read by (key_id, how): `bound` itself when it
        names this reader's LOG_READ record (a continuation), else the bound
        of its last read if nothing new came since, else a new record's seq."""
        if clock.is_int(bound) and bound > 0 and self._is_read_of(bound, key_id, how):
            return bound
        for k, h, b in self.reads:
            if k == key_id and h == how and b > self.last_news and b < self.log.next_seq:
                return b
        seq = self.record(events.LOG_READ, how, key_id)
        kept = [(key_id, how, seq)]
        for r in self.reads:
            if len(kept) < 4 and not (r[0] == key_id and r[1] == how):
                kept.append(r)
        self.reads = kept
        return seq

    def log_page(self, from_seq, bound):
        """Up to LOG_PAGE records from from_seq to bound, of this identity only:
        a new site never receives an earlier identity's records."""
        out = []  # type: list[bytes]
        cfg = self.config
        if cfg is None:  # reads run only on a commissioned lock (token or admin key)
            return out
        start = max(from_seq, cfg.commissioned_seq)
        if start > bound:
            return out
        for rec in self.log.read(from_seq=start, count=LOG_PAGE):
            if int.from_bytes(rec[0:4], "big") > bound:
                break
            out.append(bytes(rec))
        return out

    # --- commissioning and admin (serial) --------------------------------------
    def check_commission(self, session, fields):
        """Validate a COMMISSION request before the button is asked for."""
        fresh = session.take_nonce(fields[msg.COMMISSION_NONCE], self.hal.ticks_ms())
        if fresh != reasons.ALLOW:
            return fresh
        if self.config is not None:
            # Only its own site (decommission, admin key and button) or a
            # factory reset (button held) frees a lock for a new identity.
            return reasons.ALREADY_COMMISSIONED
        suite = fields[msg.COMMISSION_SUITE]
        if (suite not in SUITES or len(fields[msg.COMMISSION_SECRET]) != 32
                or not fields[msg.COMMISSION_LOCK_ID]):
            return reasons.MALFORMED
        if not clock.in_range(fields[msg.COMMISSION_TIME]):
            return reasons.TIME_OUT_OF_RANGE
        if (suite == tok.SUITE_ED25519
                and len(fields.get(msg.COMMISSION_ISSUER_KEY) or b"") != 32):
            return reasons.MALFORMED
        return reasons.ALLOW

    def previous_identity(self):
        """(how it ended: END_*, first seq after it) for the commissioning answer."""
        raw = self._load(ENDED_NAME)
        try:
            kind, after = cbor.loads(raw) if raw else (END_NONE, 1)
        except (cbor.CBORError, ValueError, TypeError):
            kind, after = END_NONE, 1
        return kind, after

    def commission(self, fields):
        """Install identity, secret, suite and time atomically; start a new log chain."""
        t = clock.from_unix(fields[msg.COMMISSION_TIME])
        old_list = self._revocation_name()
        seq = self.log.next_seq
        cfg = Config(fields[msg.COMMISSION_LOCK_ID], fields[msg.COMMISSION_SECRET],
                     fields[msg.COMMISSION_SUITE], fields[msg.COMMISSION_ISSUER],
                     fields.get(msg.COMMISSION_ISSUER_KEY),
                     fields.get(msg.COMMISSION_DOOR) or "apartment", t, seq)
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

    def decommission(self, nonce):
        """Log the end of this identity, then drop it. Returns the ADMIN_RESULT
        to send: under the admin key it still has, with the record that ends
        the identity, so its site holds that record too."""
        seq = self.record(events.DECOMMISSIONED, 0)
        answer = self.admin_result(nonce, reasons.ALLOW, {
            msg.DECOMMISSIONED_SEQ: seq, msg.DECOMMISSIONED_RECORD: [self.log.last_record()]})
        self._end_identity(seq)
        self._derive_keys()
        self.revocations = revocation.RevocationList()
        return answer

    def _end_identity(self, seq):
        """Drop this identity, whose last record (DECOMMISSIONED) is `seq`. The
        record is the commit point: a boot that finds it newest comes here too."""
        old_list = self._revocation_name()
        self.store.save(ENDED_NAME, cbor.dumps([END_DECOMMISSIONED, seq + 1]))
        self.store.delete(CONFIG_NAME)
        self.store.delete(old_list)
        self.config = None

    def factory_reset(self):
        """Physical presence only (button held at the lock): the identity and
        every record before this one are erased; the numbering goes on, so the
        FACTORY_RESET record's own seq shows which records were lost.

        Order, for power cuts: the record first, alone in a clean log block
        (the log is never empty, the numbering never restarts); then the older
        blocks; then the configuration. A boot that finds FACTORY_RESET still
        the newest record finishes whatever a cut left (_finish_factory_reset)."""
        self._derive_keys_none()
        self.prev_mac = events.GENESIS_MAC  # the old chain ends; this record starts anew
        seq = self.log.next_seq
        rec = events.encode(seq, self.clock.now(), events.FACTORY_RESET, self._flags(), 0,
                            NO_KEY, self.prev_mac, self.log_key)
        self.log.restart_with(rec)
        self.prev_mac = rec[20:28]
        self._erase_config()
        self.config = None
        self.revocations = revocation.RevocationList()
        try:
            self.store.save(ENDED_NAME, cbor.dumps([END_FACTORY_RESET, seq]))
        except (OSError, StoreError):
            pass  # the next boot finishes the reset and saves it (FACTORY_RESET is newest)

    def _derive_keys_none(self):
        self.config = None
        self._derive_keys()

    def _erase_config(self):
        try:
            self.hal.erase_config_storage()
            self.store = Store(fs=self.hal.config_fs())
        except NotImplementedError:
            self.store.wipe()  # the files go; their old blocks may linger in flash

    def _finish_factory_reset(self):
        """At boot, with FACTORY_RESET the newest record: erase what a cut left."""
        self.log.erase_older()
        try:
            self.hal.erase_config_storage()
        except NotImplementedError:
            Store(fs=self.hal.config_fs()).wipe()
        seq = self.log.next_seq - 1
        Store(fs=self.hal.config_fs()).save(ENDED_NAME, cbor.dumps([END_FACTORY_RESET, seq]))

    def check_admin(self, session, fields):
        """Verify an ADMIN request: fresh nonce and MAC under the admin key."""
        self.admin_at_ms = self.hal.ticks_ms()  # a forced time counts the button wait
        fresh = session.take_nonce(fields[msg.ADMIN_NONCE], self.admin_at_ms)
        if self.config is None:
            return reasons.NOT_COMMISSIONED
        if fresh != reasons.ALLOW:
            return fresh
        mac = msg.admin_mac(self.admin_key, fields[msg.ADMIN_NONCE], self.lock_id,
                            fields[msg.ADMIN_OP], fields[msg.ADMIN_ARGS])
        if not eq(mac, fields[msg.ADMIN_MAC]):
            return reasons.BAD_PROOF
        return reasons.ALLOW

    def admin(self, op, args):
        """Run a verified admin op: (reason, data map)."""
        if op == "info":
            cfg = self.config
            assert cfg is not None  # admin() runs only after check_admin() passed
            return reasons.ALLOW, {msg.INFO_STATUS: self.status(), msg.INFO_DOOR: cfg.door,
                                   msg.INFO_SUITE: cfg.suite, msg.INFO_LOCK_ID: self.lock_id}
        if op == "sync":
            out = {}
            if msg.SYNC_TIME in args:
                t, refusal = self._admin_time(args[msg.SYNC_TIME])
                if refusal == reasons.MALFORMED:
                    return reasons.MALFORMED, {}
                out[msg.SYNC_TIME] = refusal if t is None else self._set_time(t, exact=True)
            if msg.SYNC_REVOCATION in args:
                if not isinstance(args[msg.SYNC_REVOCATION], bytes):
                    return reasons.MALFORMED, {}
                out[msg.SYNC_REVOCATION] = self.apply_revocation(args[msg.SYNC_REVOCATION])
            out[msg.SYNC_STATUS] = self.status()
            return reasons.ALLOW, out
        if op == "force-time":
            # firmware/app.py asked for the button first (physical presence):
            # the one way to move a trusted clock back further than it drifts.
            t, refusal = self._admin_time(args.get(msg.SYNC_TIME))
            if t is None:
                return refusal, {}
            waited_s = (self.hal.ticks_ms() - self.admin_at_ms) // 1000
            return reasons.ALLOW, {
                msg.SYNC_TIME: self._set_time(min(clock.MAX_LOCK_TIME, t + waited_s),
                                              exact=True, forced=True),
                msg.SYNC_STATUS: self.status()}
        if op == "log":
            start = args.get(msg.LOG_FROM, 1)
            if not isinstance(start, int) or isinstance(start, bool) or start < 0:
                return reasons.MALFORMED, {}
            bound = self.begin_log_read(args.get(msg.LOG_BOUND), NO_KEY, events.LOG_READ_SERIAL)
            return reasons.ALLOW, {msg.LOG_RECORDS: self.log_page(start, bound),
                                   msg.LOG_BOUND: bound}
        return reasons.UNSUPPORTED, {}

    def admin_result(self, nonce, outcome, data):
        key = self.admin_key if self.admin_key is not None else bytes(32)
        mac = msg.admin_result_mac(key, nonce, self.lock_id, outcome, data)
        return msg.encode(msg.ADMIN_RESULT, {msg.ADMIN_RESULT_NONCE: nonce,
                                             msg.ADMIN_RESULT_OUTCOME: outcome,
                                             msg.ADMIN_RESULT_DATA: data,
                                             msg.ADMIN_RESULT_MAC: mac})
