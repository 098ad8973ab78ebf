"""Hypothesis stateful test: the lock's decisions against a small model.

The model is written from DESIGN.md's rules, not from firmware/lock.py: which
attempts open, which are refused and why, what the revocation list does, what a
reboot with or without the RTC keeps. After every step the log must hold one
record per attempt with the expected reason, and its MAC chain must verify.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from fakehal import FakeHAL
from firmware import hal as hal_mod
from firmware.lock import Lock, Session
from protocol import clock, events, keys, reasons
from protocol import messages as msg
from tools import issuer

LOCK_ID = "L-1"
SITE = "model-site"
STAFF = ("s1", "s2", "s3")
START = 1_800_000_000  # POSIX, 2027
KINDS = ("valid", "expired", "future", "wrong-lock", "tampered", "bad-proof", "log-scope")


class LockModel(RuleBasedStateMachine):
    @initialize()
    def setup(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="lockmodel-"))
        self.secret = bytes(range(32))
        self.real = START  # real POSIX time
        self.hal = FakeHAL(self.dir, clock.from_unix(START))
        self.lock = Lock(self.hal)
        session = Session("serial")
        self.lock.hello(session)
        self.lock.commission({1: b"", 2: LOCK_ID, 3: keys.lock_secret(self.secret, LOCK_ID),
                              4: "hmac", 5: START, 6: SITE, 7: "apartment"})
        self.cutoffs: dict[str, int] = {}  # staff -> POSIX cut-off of the model
        self.rev_version = 0
        self.trusted = True
        self.expected: list[int] = []  # reasons of attempts, in order
        self.last_request: dict[int, object] | None = None

    def teardown(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)

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
    @rule(kind=st.sampled_from(KINDS), sub=st.sampled_from(STAFF))
    def attempt(self, kind: str, sub: str) -> None:
        grant = self.grant(kind, sub)
        session, fields = self.request(grant)
        want = self.expect(kind, sub, self.real - 900)
        got, _, _ = self.lock.check_request(session, fields)
        assert got == want, (kind, reasons.name(got), reasons.name(want))
        if got == reasons.ALLOW:
            self.lock.record(events.OPENED, 0, events.key_id_of(sub))
        self.expected.append(got)
        self.last_request = fields
        # A second use of the same challenge is always a replay.
        again, _, _ = self.lock.check_request(session, fields)
        assert again == reasons.REPLAY
        self.expected.append(reasons.REPLAY)

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

    @rule(seconds=st.integers(1, 3600))
    def time_passes(self, seconds: int) -> None:
        self.real += seconds
        self.hal.advance(seconds)

    @rule(rtc_lost=st.booleans())
    def reboot(self, rtc_lost: bool) -> None:
        cause = hal_mod.RESET_POWER_ON if rtc_lost else hal_mod.RESET_WATCHDOG
        self.hal.reboot(cause, rtc_lost=rtc_lost)
        self.lock = Lock(self.hal)
        if rtc_lost:
            self.trusted = False
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
        seen = [reasons.ALLOW if e.code == events.OPENED else e.detail
                for e in decoded[start:] if e.code in (events.OPENED, events.REFUSED)]
        assert seen == self.expected
        report = events.verify_chain([bytes(r) for r in recs[start:]],
                                     keys.log_key(keys.lock_secret(self.secret, LOCK_ID)),
                                     anchor_mac=events.GENESIS_MAC)
        assert report.ok, report


LockModel.TestCase.settings = settings(max_examples=40, stateful_step_count=25, deadline=None,
                                       suppress_health_check=[HealthCheck.too_slow])
TestLockModel = LockModel.TestCase
