"""Hypothesis stateful test: the lock's decisions against a small model.

The model is written from DESIGN.md's rules, not from firmware/lock.py: which
attempts open, which are refused and why, what the revocation list does, what a
reboot with or without the RTC keeps, what a jammed bolt and a weak battery do.
Attempts go through the application's own request handler (firmware.app.App.
open_request) with the bolt on a fake HAL, so the answer the key gets is
checked too: authenticated exactly when the key proved its token, JAMMED when
the bolt would not move. After every step the log must hold one record per
attempt with the expected reason and battery flags, one record per battery
state change, and its MAC chain must verify; the bolt is never left withdrawn.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

import firmware.app as app_mod
from fakehal import FakeHAL, RecordingLink
from firmware import hal as hal_mod
from firmware.lock import Session
from protocol import clock, events, keys, reasons
from protocol import messages as msg
from protocol.crypto import eq
from tools import issuer

LOCK_ID = "L-1"
SITE = "model-site"
STAFF = ("s1", "s2", "s3")
START = 1_800_000_000  # POSIX, 2027
KINDS = ("valid", "expired", "future", "wrong-lock", "tampered", "bad-proof", "log-scope")
# Kinds whose request proves possession of a token the lock verified: the
# lock's answer to them is authenticated under the token's PoP key.
PROVEN = ("valid", "expired", "future", "log-scope")
# Refusals before the token verifies: a peer's, under the log budget (written,
# or counted in a PEER_SUMMARY record, never both, never lost but to a reboot).
PEER_REASONS = (reasons.BAD_SIGNATURE, reasons.WRONG_LOCK, reasons.REPLAY)
OK, LOW, CRITICAL = 0, 1, 2
HYSTERESIS_MV = 100  # a better battery state only this far clear of its threshold


class LockModel(RuleBasedStateMachine):
    @initialize()
    def setup(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="lockmodel-"))
        self.secret = bytes(range(32))
        self.real = START  # real POSIX time
        self.hal = FakeHAL(self.dir, clock.from_unix(START))
        # Any wait of the app is recorded, not slept (there must be none).
        self.delays: list[int] = []
        self._sleep = app_mod.sleep_ms

        async def no_sleep(ms: int) -> None:
            self.delays.append(ms)
        app_mod.sleep_ms = no_sleep
        self.boot()
        session = Session("serial")
        self.lock.hello(session)
        self.lock.commission({1: b"", 2: LOCK_ID, 3: keys.lock_secret(self.secret, LOCK_ID),
                              4: "hmac", 5: START, 6: SITE, 7: "apartment"})
        self.cutoffs: dict[str, int] = {}  # staff -> POSIX cut-off of the model
        self.rev_version = 0
        self.trusted = True
        self.expected: list[tuple[int, int]] = []  # (reason, battery state) of attempts
        self.last_request: dict[int, object] | None = None
        self.jammed = False
        self.battery = self.battery_at_boot(self.hal.mv)
        self.battery_events: list[tuple[int, int]] = []  # (code, mv)
        self.failures = 0  # refusals since the last success
        self.lost_at_reboot = 0  # budget counts held in RAM when the power went
        self.reboots = 0

    def teardown(self) -> None:
        app_mod.sleep_ms = self._sleep
        shutil.rmtree(self.dir, ignore_errors=True)

    def boot(self) -> None:
        self.app = app_mod.App(self.hal)
        self.lock = self.app.lock

    # --- the battery rule ----------------------------------------------------------
    def level(self, mv: int, margin: int = 0) -> int:
        if mv <= self.hal.battery_critical_mv + margin:
            return CRITICAL
        if mv <= self.hal.battery_low_mv + margin:
            return LOW
        return OK

    def battery_at_boot(self, mv: int) -> int:
        return self.level(mv)

    def battery_after(self, mv: int) -> int:
        """Worse as soon as the voltage is at a threshold; better only once it
        is clearly above it."""
        now = self.level(mv)
        if now >= self.battery:
            return now
        return max(now, self.level(mv, HYSTERESIS_MV))

    # --- the model's rule ------------------------------------------------------
    def expect(self, kind: str, sub: str, iat: int) -> int:
        if kind == "tampered":
            return reasons.BAD_SIGNATURE
        if kind == "bad-proof":
            return reasons.BAD_PROOF
        if kind == "wrong-lock":
            return reasons.WRONG_LOCK
        # A blocked key is named as such before anything else about its token.
        if sub in self.cutoffs and iat < self.cutoffs[sub]:
            return reasons.REVOKED
        if kind == "log-scope":
            return reasons.SCOPE
        if kind == "future" and self.trusted:
            return reasons.NOT_YET_VALID
        if kind == "expired":
            return reasons.EXPIRED
        return reasons.ALLOW

    def grant(self, kind: str, sub: str) -> issuer.Grant:
        now = self.real
        start, end = now - 600, now + 3600
        if kind == "expired":
            start, end = now - 3 * 3600, now - 2 * 3600
        elif kind == "future":
            start, end = now + 3 * 3600, now + 4 * 3600
        target = "L-2" if kind == "wrong-lock" else LOCK_ID
        g = issuer.issue_token(self.secret, target, iss=SITE, sub=sub, start=start, end=end,
                               iat=now - 900, scope="log" if kind == "log-scope" else "open")
        if kind == "wrong-lock":  # a token for another door, presented here with its own key
            g.lock_id = LOCK_ID
        if kind == "tampered":
            t = bytearray(g.token)
            t[-3] ^= 0x40
            g.token = bytes(t)
        if kind == "bad-proof":
            g.pop_key = bytes(32)
        return g

    def request(self, grant: issuer.Grant) -> tuple[Session, dict[int, object]]:
        session = Session("ble")
        _, hello = msg.decode(self.lock.hello(session))
        nonce = hello[2]
        proof = msg.open_proof(grant.pop_key, nonce, LOCK_ID, "open", grant.token)
        return session, {1: nonce, 2: grant.token, 3: "open", 4: proof}

    # --- rules -----------------------------------------------------------------
    def send(self, session: Session, fields: dict[int, object],
             grant: issuer.Grant) -> tuple[int, bool]:
        """One OPEN through the app's handler: (outcome, authenticated)."""
        link = RecordingLink()
        before = len(self.delays)
        asyncio.run(self.app.open_request(session, fields, link))
        # Nothing is slowed for everyone: failures cost their own connection
        # (firmware/app.py), never a later key's time.
        assert not self.delays[before:], self.delays[before:]
        (payload,) = link.payloads()
        mtype, f = msg.decode(payload)
        if mtype == msg.ERROR:
            return f[1], False
        assert mtype == msg.RESULT and f[1] == fields[1]
        mac = f.get(6)
        ok = mac is not None and eq(mac, msg.result_mac(grant.pop_key, f[1], LOCK_ID, f[2],
                                                        f[3], f[4], f[5], f.get(7)))
        return f[2], ok

    def count(self, reason: int) -> None:
        if reason in (reasons.ALLOW, reasons.JAMMED):
            self.failures = 0
        else:
            self.failures += 1
        self.expected.append((reason, self.battery, reason in PEER_REASONS))

    @rule(kind=st.sampled_from(KINDS), sub=st.sampled_from(STAFF))
    def attempt(self, kind: str, sub: str) -> None:
        grant = self.grant(kind, sub)
        session, fields = self.request(grant)
        want = self.expect(kind, sub, self.real - 900)
        if want == reasons.ALLOW and self.jammed:
            want = reasons.JAMMED  # granted, but the bolt would not move
        got, authenticated = self.send(session, fields, grant)
        assert got == want, (kind, reasons.name(got), reasons.name(want))
        assert authenticated == (kind in PROVEN), (kind, authenticated)
        if got == reasons.ALLOW:
            assert self.hal.bolt_retracted()
            # Nobody opens the door: the open window ends and the bolt is thrown.
            assert asyncio.run(self.app.actuator.relock())
        self.count(got)
        self.last_request = fields
        # A second use of the same challenge is always a replay.
        again, authenticated = self.send(session, fields, grant)
        assert again == reasons.REPLAY and not authenticated
        self.count(reasons.REPLAY)

    @rule()
    def bolt_jams(self) -> None:
        self.hal.jammed = self.jammed = True

    @rule()
    def bolt_freed(self) -> None:
        self.hal.jammed = self.jammed = False

    @rule(mv=st.sampled_from((5200, 4550, 4500, 4450, 4400, 4350, 4100, 4050, 4000, 3800)))
    def battery_reads(self, mv: int) -> None:
        self.hal.mv = mv
        self.lock.check_battery()
        state = self.battery_after(mv)
        if state != self.battery and state == LOW:
            self.battery_events.append((events.BATTERY_LOW, mv))
        elif state != self.battery and state == CRITICAL:
            self.battery_events.append((events.BATTERY_CRITICAL, mv))
        self.battery = state

    @rule(sub=st.sampled_from(STAFF))
    def block(self, sub: str) -> None:
        self.rev_version += 1
        cutoff = self.real + 1
        self.cutoffs[sub] = cutoff
        update = issuer.revocation_update(self.secret, LOCK_ID, self.rev_version, self.real, 0,
                                          dict(self.cutoffs), {})
        assert self.lock.apply_revocation(update) == reasons.ALLOW
        # The same list again is a rollback and changes nothing.
        assert self.lock.apply_revocation(update) == reasons.ROLLBACK

    @rule(seconds=st.one_of(st.integers(1, 3600), st.sampled_from((3599, 3600, 3601, 7200))))
    def time_passes(self, seconds: int) -> None:
        self.real += seconds
        self.hal.advance(seconds)

    @rule(rtc_lost=st.booleans())
    def reboot(self, rtc_lost: bool) -> None:
        self.lost_at_reboot += self.lock.budget.counts[1]
        self.reboots += 1
        cause = hal_mod.RESET_POWER_ON if rtc_lost else hal_mod.RESET_WATCHDOG
        self.hal.reboot(cause, rtc_lost=rtc_lost)
        self.boot()
        if rtc_lost:
            self.trusted = False
        self.battery = self.battery_at_boot(self.hal.mv)
        self.failures = 0  # the rate limiter starts afresh
        assert self.lock.clock.trusted == self.trusted

    @rule()
    def installer_syncs_time(self) -> None:
        session = Session("serial")
        self.lock.hello(session)
        outcome, data = self.lock.admin("sync", {1: self.real})
        assert outcome == reasons.ALLOW and data[1] == reasons.ALLOW
        self.trusted = True

    # --- invariants ------------------------------------------------------------
    @invariant()
    def log_matches_attempts(self) -> None:
        recs = list(self.lock.log.read())
        decoded = [events.decode(r) for r in recs]
        start = max(i for i, e in enumerate(decoded) if e.code == events.COMMISSIONED)
        reason_of = {events.OPENED: lambda e: reasons.ALLOW,
                     events.JAMMED: lambda e: reasons.JAMMED,
                     events.REFUSED: lambda e: e.detail}
        battery_of = {0: OK, events.FLAG_BATTERY_LOW: LOW, events.FLAG_BATTERY_CRITICAL: CRITICAL}
        mask = events.FLAG_BATTERY_LOW | events.FLAG_BATTERY_CRITICAL
        seen = [(reason_of[e.code](e), battery_of[e.flags & mask])
                for e in decoded[start:] if e.code in reason_of]
        # Verified attempts: each logged, in order; a peer's: logged or counted.
        peer_seen = [x for x in seen if x[0] in PEER_REASONS]
        assert [x for x in seen if x[0] not in PEER_REASONS] == \
            [x[:2] for x in self.expected if not x[2]]
        peer_expected = [x[:2] for x in self.expected if x[2]]
        it = iter(peer_expected)
        assert all(x in it for x in peer_seen), (peer_seen, peer_expected)  # a subsequence
        summarised = sum(events.summary_counts(e.key_id)[1] for e in decoded[start:]
                         if e.code == events.PEER_SUMMARY)
        assert len(peer_seen) + summarised + self.lock.budget.counts[1] + self.lost_at_reboot \
            == len(peer_expected)
        # The budget: at most one peer record per window of the lock's ticks.
        budgeted = [e for e in decoded[start:] if e.code == events.PEER_SUMMARY
                    or (e.code == events.REFUSED and e.detail in PEER_REASONS)]
        hours = (self.real - START) // 3600
        assert len(budgeted) <= hours + 1 + self.reboots, (len(budgeted), hours)
        assert [e.detail for e in decoded[start:] if e.code == events.JAMMED] == \
            [1] * sum(1 for r, _, _ in self.expected if r == reasons.JAMMED)
        battery = [(e.code, e.detail) for e in decoded[start:]
                   if e.code in (events.BATTERY_LOW, events.BATTERY_CRITICAL)]
        assert battery == self.battery_events
        report = events.verify_chain([bytes(r) for r in recs[start:]],
                                     keys.log_key(keys.lock_secret(self.secret, LOCK_ID)),
                                     anchor_mac=events.GENESIS_MAC)
        assert report.ok, report

    @invariant()
    def bolt_never_left_withdrawn_and_battery_reported(self) -> None:
        assert self.hal.bolt_thrown()
        _, hello = msg.decode(self.lock.hello(Session("ble")))
        assert hello[msg.HELLO_BATTERY] == self.battery


LockModel.TestCase.settings = settings(max_examples=40, stateful_step_count=25, deadline=None,
                                       suppress_health_check=[HealthCheck.too_slow])
TestLockModel = LockModel.TestCase
