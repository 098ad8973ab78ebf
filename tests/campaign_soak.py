"""Soak campaign (issue #12): many openings through the lock application with
random power cuts, RTC drift, battery drain, jams and revocations, every
decision checked against a model written from DESIGN.md's rules.

Fast mode, in-process: firmware.app.App (its own open_request handler, the
actuator, the lock) on a HAL whose flash is the simulator's NOR flash model
(simulator/flash.py: littlefs-python for the configuration, the raw ring for
the log; power cuts from the model's seeded generator), whose RTC and battery
are the simulator's hardware models (simulator/hardware.py: RTC with drift in
ppm, lost at a power cut; Battery with the sim board's curve, drained by a
charge source and replaced) and whose bolt is tests/fakehal.py's (moves at
once unless jammed). No sockets and no pty: those carry the same frames to
the same handler, cost milliseconds per exchange, and are covered by the e2e
tests; here the point is volume (10^5 openings in minutes).

Per attempt the model (Model below, written from DESIGN.md section 4 and 6,
not from firmware/) says what the key must get: ALLOW, JAMMED (granted, bolt
did not move), REVOKED (staff cut-off after the token's iat), EXPIRED,
NOT_YET_VALID (only with a trusted clock: untrusted, the lock opens for a
token valid at or after its bound), BAD_SIGNATURE (tampered), WRONG_LOCK,
BAD_PROOF; and whether the answer is authenticated (exactly when the key
proved a verified token). Every acknowledged opening (its RESULT's seq) must
be in the log at that seq, by that key; the log is pulled by the installer
(admin "log", paged, one bound) every PULL_EVERY openings, and each pull must
continue the previous one with no hole and a verifying chain anchored on the
last record pulled. After every power cut the lock boots on what the cut left
(sometimes cut again during that boot: a flickering supply) and is checked
again (records, revocation version old or new, identity); an update the cut
interrupted is sent again, as the next key or installer would. Every
GUESS_EVERY openings a guesser tries one token with wrong codes, then the
right one: refused for good after five failed proofs, across power cuts.

    python tests/campaign_soak.py --openings 100000 --seed 1
"""

from __future__ import annotations

import asyncio
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import firmware.actuator as actuator_mod  # noqa: E402
import firmware.app as app_mod  # noqa: E402
from boards import sim as sim_board  # noqa: E402
from fakehal import FakeHAL, RecordingLink  # noqa: E402
from firmware import hal as hal_mod  # noqa: E402
from firmware.lock import Session  # noqa: E402
from protocol import clock, events, keys, reasons  # noqa: E402
from protocol import messages as msg  # noqa: E402
from protocol.crypto import eq  # noqa: E402
from simulator.flash import BlockDevice, FlashDevice, PowerCut  # noqa: E402
from simulator.hardware import RTC, Battery, ManualClock  # noqa: E402
from simulator.lfs import LittleFsFs  # noqa: E402
from tools import issuer  # noqa: E402

SECRET = bytes(range(32, 64))
LOCK_ID = "SOAK-1"
SITE = "soak-site"
T0 = 1_800_000_000  # POSIX, 2027
FS_BLOCKS, LOG_BLOCKS = 24, 16  # the log keeps 14 * 128 records
STAFF = ["staff%d" % i for i in range(6)]
SHIFT_S = 8 * 3600
SKEW = 120  # DESIGN.md: token windows allow a small skew ("say two minutes")
PULL_EVERY = 500  # openings between log pulls (well inside the ring)
REVOKE_EVERY = 1000
SYNC_EVERY = 250  # installer time syncs (exact): the clock is trusted again
BATTERY_EVERY = 20  # attempts between battery readings (the battery loop)
JAM_EVERY = 2500
CUT_CHANCE = 1 / 150  # per attempt, a cut is armed within the next 40 flash ops
GUESS_EVERY = 500  # openings between runs of a guesser (wrong codes, then the right one)
BURN_AFTER = 5  # failed proofs after which a token is refused for good
BOOT_CUT_CHANCE = 0.3  # after a cut, one is armed within the boot's first 8 ops
KINDS = (("valid", 880), ("expired", 25), ("future", 25), ("tampered", 20),
         ("wrong-lock", 20), ("bad-proof", 20), ("revoked", 10))
LOW_MV, CRITICAL_MV = sim_board.BATTERY["low_mv"], sim_board.BATTERY["critical_mv"]
HYSTERESIS_MV = 100  # a better battery state only this far clear of its threshold
OK, LOW, CRITICAL = 0, 1, 2


class SoakFlash(FlashDevice):
    """The flash model, counting erases per block (wear)."""

    def __init__(self, size: int) -> None:
        super().__init__(size, strict=True)
        self.block_erases = [0] * (size // 4096)

    def erase(self, block, region=None):  # type: ignore[override]
        if self.powered:
            self.block_erases[block] += 1
        super().erase(block, region)


class SoakHAL(FakeHAL):
    board_name = "soak"
    battery_low_mv = LOW_MV
    battery_critical_mv = CRITICAL_MV

    def __init__(self, root: Path, flash: SoakFlash, clk: ManualClock, rtc: RTC,
                 battery: Battery) -> None:
        super().__init__(root, 0)
        self.flash = flash
        self.clk = clk
        self.rtc_model = rtc
        self.battery = battery
        self.fs_dev = BlockDevice(flash, 0, FS_BLOCKS, "fs")
        self.log_dev = BlockDevice(flash, FS_BLOCKS, LOG_BLOCKS, "log")  # type: ignore[assignment]

    def config_fs(self):  # type: ignore[override]
        return LittleFsFs(self.fs_dev)

    def advance(self, seconds: int) -> None:
        self.clk.advance(seconds)
        self.ms += seconds * 1000

    def rtc_now(self) -> int:
        return self.rtc_model.now()

    def rtc_set(self, t: int) -> None:
        self.rtc_model.set(t)

    def battery_mv(self) -> int:
        return self.battery.mv()

    def random_bytes(self, n: int) -> bytes:
        return random.randbytes(n)


# --- the model ---------------------------------------------------------------------
class Model:
    """What the lock must decide, from DESIGN.md's rules (section 4): a token
    opens if it is for this lock, verifies, its key proves possession, its
    staff key is not blocked by a cut-off after the token was issued, and the
    time is inside its window give or take the skew. Blocking comes first.
    After a power loss the clock is untrusted until an exact (installer)
    update: the lock then opens for any token still valid at its stored bound
    (a client on the floor matters more than a perfect clock). A granted
    opening whose bolt does not move is JAMMED. The battery state is worse as
    soon as the voltage reaches a threshold, better only once clearly above."""

    def __init__(self) -> None:
        self.cutoffs: dict[str, int] = {}  # staff -> POSIX cut-off
        self.rev_version = 0
        self.trusted = True
        self.jammed = False
        self.battery = OK

    def decide(self, kind: str, sub: str, iat: int) -> int:
        if kind == "tampered":
            return reasons.BAD_SIGNATURE
        if kind == "wrong-lock":
            return reasons.WRONG_LOCK
        if kind == "bad-proof":
            return reasons.BAD_PROOF
        if sub in self.cutoffs and iat < self.cutoffs[sub]:
            return reasons.REVOKED
        if kind == "future" and self.trusted:
            return reasons.NOT_YET_VALID
        if kind == "expired":
            return reasons.EXPIRED
        return reasons.JAMMED if self.jammed else reasons.ALLOW

    @staticmethod
    def proven(kind: str) -> bool:
        """The key proved a token the lock verified: its answer is authenticated."""
        return kind in ("valid", "expired", "future", "revoked", "guess")

    @staticmethod
    def level(mv: int, margin: int = 0) -> int:
        if mv <= CRITICAL_MV + margin:
            return CRITICAL
        if mv <= LOW_MV + margin:
            return LOW
        return OK

    def battery_read(self, mv: int) -> None:
        now = self.level(mv)
        self.battery = now if now >= self.battery else max(now, self.level(mv, HYSTERESIS_MV))


# --- the soak ------------------------------------------------------------------------
class Soak:
    def __init__(self, openings: int, seed: int, out=print) -> None:
        self.target = openings
        self.seed = seed
        self.rng = random.Random(seed)
        random.seed(seed)  # the lock's nonces (SoakHAL.random_bytes)
        self.out = out
        self.root = Path(tempfile.mkdtemp(prefix="soak-"))
        self.flash = SoakFlash((FS_BLOCKS + LOG_BLOCKS) * 4096)
        LittleFsFs.mkfs(BlockDevice(self.flash, 0, FS_BLOCKS, "fs"))
        self.flash.regions.clear()
        self.flash.block_erases = [0] * len(self.flash.block_erases)
        self.clk = ManualClock()
        self.drift = self.rng.uniform(-100, 100)
        self.rtc = RTC(self.clk, self.drift, clock.from_unix(T0))
        self.drawn_mas = 0.0
        b = sim_board.BATTERY
        self.battery = Battery(b["capacity_mah"], b["curve"], b["low_mv"], b["critical_mv"])
        self.battery.add_source(lambda: self.drawn_mas)
        # Full to critical in a third of the run (at most every 30,000 openings).
        self.drain_openings = max(300, min(30000, openings // 3))
        self.hal = SoakHAL(self.root, self.flash, self.clk, self.rtc, self.battery)
        self.loop = asyncio.new_event_loop()
        self.model = Model()
        self.real = T0  # true POSIX time
        self.acked: dict[int, tuple[int, bytes]] = {}  # seq -> (code, key id), not yet pulled
        self.pulled_seq = 0
        self.pulled_mac = events.GENESIS_MAC
        self.stats = {"attempts": 0, "openings": 0, "decisions": 0, "cuts": 0, "jammed": 0,
                      "revocations": 0, "syncs": 0, "pulls": 0, "pulled": 0,
                      "battery_swaps": 0, "battery_states": 0, "resent": 0, "boot_cuts": 0,
                      "guess_runs": 0, "burned": 0,
                      "boot_checks": 0}
        self.outcomes: dict[str, int] = {}  # "kind/clock: outcome" -> decisions
        self.pending_update: tuple[bytes, int] | None = None  # an update under way when the power went
        self.boot()
        self.lock.commission({1: b"", 2: LOCK_ID, 3: keys.lock_secret(SECRET, LOCK_ID),
                              4: "hmac", 5: T0, 6: SITE, 7: "apartment"})
        assert self.lock.config is not None  # its chain starts at COMMISSIONED, from GENESIS
        self.pulled_seq = self.lock.config.commissioned_seq - 1
        self.model.battery = Model.level(self.battery.mv())
        self.shift_start = -1
        self.new_shift()

    # -- the lock's life ---------------------------------------------------------------
    def boot(self) -> None:
        self.app = app_mod.App(self.hal)
        self.lock = self.app.lock
        firmware_reads = self.app.read_battery

        def read_after_motor_run() -> None:
            # The firmware reads the battery after every motor run: so does the model.
            firmware_reads()
            self.model.battery_read(self.battery.mv())
        self.app.actuator.after_run = read_after_motor_run
        self.loop.run_until_complete(self.app.actuator.make_safe())

    def power_cut(self) -> None:
        """What the cut left: boot on it and check it."""
        self.stats["cuts"] += 1
        while True:
            self.flash.reboot()
            self.rtc.power_loss()
            self.rtc.drift_ppm = self.rng.uniform(-100, 100)  # and the crystal warms or cools
            self.hal.reboot(hal_mod.RESET_POWER_ON)
            self.hal.jammed = False  # the fitter clears a jam when they come
            self.model.jammed = False
            if self.rng.random() < BOOT_CUT_CHANCE:  # the power flickers: cut the boot too
                self.flash.cut_random(self.rng.getrandbits(32), within=8)
            try:
                self.boot()
                break
            except PowerCut:
                self.stats["cuts"] += 1
                self.stats["boot_cuts"] += 1
        self.flash.cancel_cut()
        self.model.trusted = False
        self.model.battery = Model.level(self.battery.mv())
        self.check_boot()
        if self.pending_update is not None:
            # A key or the installer brings the update again.
            update, version = self.pending_update
            got = self.lock.apply_revocation(update)
            assert got in (reasons.ALLOW, reasons.ROLLBACK), reasons.name(got)
            self.stats["resent"] += 1
            self.pending_update = None
            self.model.rev_version = version
        assert self.lock.revocations.version == self.model.rev_version

    def check_boot(self) -> None:
        self.stats["boot_checks"] += 1
        lock = self.lock
        assert lock.config is not None and lock.config.lock_id == LOCK_ID
        # The list is the old or the new one (if an update was under way).
        new = self.pending_update[1] if self.pending_update else self.model.rev_version
        assert lock.revocations.version in (self.model.rev_version, new)
        assert not lock.clock.trusted
        assert lock.log.next_seq > max(self.acked, default=self.pulled_seq)
        self.check_acked()

    def check_acked(self) -> None:
        """Every acknowledged opening not yet pulled is in the log, as acknowledged."""
        if not self.acked:
            return
        got = {}
        for r in self.lock.log.read(from_seq=min(self.acked)):
            e = events.decode(bytes(r))
            got[e.seq] = (e.code, e.key_id)
        for seq, want in self.acked.items():
            assert got.get(seq) == want, (seq, want, got.get(seq))

    def guarded(self, fn, *args):
        """Run one action; a power cut during it is survived and checked."""
        try:
            return fn(*args)
        except PowerCut:
            self.power_cut()
            return None

    # -- the issuer's side -------------------------------------------------------------
    def grant(self, sub: str, start: int, end: int, iat: int, lock_id: str = LOCK_ID):
        return issuer.issue_token(SECRET, lock_id, iss=SITE, sub=sub, start=start, end=end,
                                  iat=iat, cti=self.rng.randbytes(16))

    def new_shift(self) -> None:
        self.shift_start = self.real
        iat = self.real - 900
        self.iat = iat
        self.grants = {s: self.grant(s, self.real - 600, self.real + SHIFT_S + 600, iat)
                       for s in STAFF}
        # Keys of this shift carry a time update made when they were issued.
        self.carried = issuer.time_update(SECRET, LOCK_ID, iat)
        self.first_of_shift = set(STAFF)

    def revoke(self) -> None:
        """Block a staff key (the one due), sent by the installer or by a key."""
        sub = STAFF[self.stats["revocations"] % len(STAFF)]
        self.stats["revocations"] += 1
        self.model.cutoffs[sub] = self.real + 1
        # Entries whose tokens have all expired are dropped by the issuer.
        self.model.cutoffs = {s: t for s, t in self.model.cutoffs.items()
                              if t > self.real - 86400}
        version = self.model.rev_version + 1
        update = issuer.revocation_update(SECRET, LOCK_ID, version, self.real, 0,
                                          dict(self.model.cutoffs), {})
        self.pending_update = (update, version)

        def send() -> None:
            assert self.lock.apply_revocation(update) == reasons.ALLOW
        self.guarded(send)
        self.pending_update = None
        self.model.rev_version = version
        assert self.lock.revocations.version == version
        # The blocked key is tried once more (its holder has not heard).
        self.attempt("revoked", sub)

    def sync(self) -> None:
        self.stats["syncs"] += 1

        def send() -> None:
            self.lock.hello(Session("serial"))
            outcome, data = self.lock.admin("sync", {1: self.real})
            assert outcome == reasons.ALLOW and data[1] == reasons.ALLOW, data
            self.model.trusted = True
        self.guarded(send)

    def pull(self) -> None:
        """The installer's log pull from the last record pulled."""
        def run() -> None:
            lock = self.lock
            start, bound, got = self.pulled_seq + 1, None, []
            while True:
                args = {1: start} if bound is None else {1: start, 2: bound}
                outcome, data = lock.admin("log", args)
                assert outcome == reasons.ALLOW
                bound = data[2]
                got += [bytes(r) for r in data[1]]
                if not data[1] or int.from_bytes(data[1][-1][:4], "big") >= bound:
                    break
                start = int.from_bytes(data[1][-1][:4], "big") + 1
            seqs = [int.from_bytes(r[:4], "big") for r in got]
            assert seqs == list(range(self.pulled_seq + 1, bound + 1)), \
                ("a hole in the log", self.pulled_seq, bound, seqs[:3], seqs[-3:],
                 [b - a for a, b in zip(seqs, seqs[1:], strict=False) if b - a != 1], self.stats)
            report = events.verify_chain(got, keys.log_key(keys.lock_secret(SECRET, LOCK_ID)),
                                         anchor_mac=self.pulled_mac, anchor_seq=self.pulled_seq)
            assert report.ok, report
            decoded = {e.seq: e for e in (events.decode(r) for r in got)}
            for seq, (code, key_id) in self.acked.items():
                e = decoded[seq]
                assert (e.code, e.key_id) == (code, key_id), seq
            self.acked = {}
            self.pulled_seq = bound
            self.pulled_mac = got[-1][20:28]
            self.stats["pulls"] += 1
            self.stats["pulled"] += len(got)
        pulls = self.stats["pulls"]
        while self.stats["pulls"] == pulls:  # cut during the pull: the installer tries again
            self.guarded(run)

    # -- one attempt at the door --------------------------------------------------------
    def token_for(self, kind: str, sub: str) -> tuple[issuer.Grant, int]:
        now = self.real
        if kind in ("valid", "revoked", "bad-proof", "tampered"):
            g = self.grants[sub]
            if kind == "bad-proof":  # the token without its key (a wrong code)
                g = self.grant(sub, now - 600, now + 3600, now - 900)
                g.pop_key = bytes(32)
            elif kind == "tampered":
                g = self.grant(sub, now - 600, now + 3600, now - 900)
                t = bytearray(g.token)
                t[-3] ^= 0x40
                g.token = bytes(t)
            return g, g.start - 300 if kind in ("valid", "revoked") else now - 900
        if kind == "expired":  # yesterday's key
            return self.grant(sub, now - 18 * 3600, now - 10 * 3600, now - 18 * 3600 - 900), \
                now - 18 * 3600 - 900
        if kind == "future":  # the next shift's key, issued in advance
            return self.grant(sub, now + 3 * 3600, now + 11 * 3600, now - 900), now - 900
        g = self.grant(sub, now - 600, now + 3600, now - 900, lock_id="SOAK-2")
        g.lock_id = LOCK_ID
        return g, now - 900

    def attempt(self, kind: str, sub: str, given=None, wants=None) -> int | None:
        """One visit; the outcome (None if the power went). `given` (grant,
        iat) and `wants` (the outcomes allowed) are for the guesser's runs."""
        if given is None:
            g, iat = self.token_for(kind, sub)
            if kind in ("valid", "revoked"):
                iat = self.iat
        else:
            g, iat = given
        if wants is None:
            wants = (self.model.decide(kind, sub, iat),)
        session = Session("ble")
        _, hello = msg.decode(self.lock.hello(session))
        assert hello[5] == self.model.battery, (hello[5], self.model.battery)
        nonce = hello[2]
        fields = {1: nonce, 2: g.token, 3: "open",
                  4: msg.open_proof(g.pop_key, nonce, LOCK_ID, "open", g.token)}
        if sub in self.first_of_shift and kind == "valid":
            fields[5] = [self.carried]
        link = RecordingLink()

        async def visit() -> None:
            await self.app.open_request(session, fields, link)
            act = self.app.actuator
            if act.supervisor is not None:  # the visitor leaves: relock now
                act.supervisor.cancel()
                act.supervisor = None
                await asyncio.sleep(0)
            if self.hal.retracted:
                assert await act.relock()
        self.stats["attempts"] += 1
        try:
            self.loop.run_until_complete(visit())
        except PowerCut:
            self.power_cut()
            return None
        if kind == "valid":
            self.first_of_shift.discard(sub)
        (payload,) = link.payloads()[:1]
        mtype, f = msg.decode(payload)
        if mtype == msg.ERROR:
            got, authenticated = f[1], False
        else:
            assert mtype == msg.RESULT and f[1] == nonce
            got = f[2]
            mac = f.get(6)
            authenticated = mac is not None and eq(mac, msg.result_mac(
                g.pop_key, f[1], LOCK_ID, f[2], f[3], f[4], f[5], f.get(7)))
        assert got in wants, (kind, sub, reasons.name(got), [reasons.name(w) for w in wants])
        assert authenticated == (Model.proven(kind) and got not in (reasons.TOKEN_BURNED,
                                                                    reasons.BAD_PROOF)), \
            (kind, authenticated)
        self.stats["decisions"] += 1
        what = "%s/%s: %s" % (kind, "trusted" if self.model.trusted else "untrusted",
                              reasons.name(got))
        self.outcomes[what] = self.outcomes.get(what, 0) + 1
        if got in (reasons.ALLOW, reasons.JAMMED):
            self.acked[f[4]] = (events.OPENED if got == reasons.ALLOW else events.JAMMED,
                                events.key_id_of(sub))
        if got == reasons.ALLOW:
            self.stats["openings"] += 1
            self.drawn_mas += self.battery.capacity_mah * 3600 / self.drain_openings
        elif got == reasons.JAMMED:
            self.stats["jammed"] += 1
        assert self.hal.bolt_thrown()
        return got

    def guesser(self) -> None:
        """A copied key tried with wrong codes: k wrong proofs of one token,
        then the right one. DESIGN.md: only the lock can tell a right code
        from a wrong one, and it refuses the token for good after a few
        failed proofs (the staff-key decision: five), across reboots. A cut
        during a wrong proof may or may not have counted it."""
        self.stats["guess_runs"] += 1
        now = self.real
        sub = self.rng.choice(STAFF)
        g = self.grant(sub, now - 600, now + SHIFT_S, now - 900)
        right_key = g.pop_key
        lo = hi = 0  # failed proofs the lock has counted, at least and at most
        k = self.rng.randint(1, BURN_AFTER + 2)
        for i in range(k + 1):
            right = i == k
            g.pop_key = right_key if right else bytes(32)
            wants = set()
            if hi >= BURN_AFTER:
                wants.add(reasons.TOKEN_BURNED)
            if lo < BURN_AFTER:
                wants.add(self.model.decide("valid", sub, now - 900) if right
                          else reasons.BAD_PROOF)
            got = self.attempt("guess" if right else "guess-wrong", sub, (g, now - 900),
                               tuple(wants))
            if got is None:  # the power went during it
                hi += 0 if right else 1
                continue
            if got == reasons.TOKEN_BURNED:
                lo = max(lo, BURN_AFTER)
                self.stats["burned"] += right
            elif got == reasons.BAD_PROOF:
                lo, hi = lo + 1, hi + 1

    def battery_check(self) -> None:
        def read() -> None:
            before = self.lock.battery
            self.lock.check_battery()
            self.model.battery_read(self.battery.mv())
            assert self.lock.battery == self.model.battery, (self.lock.battery,
                                                             self.model.battery)
            if self.lock.battery != before:
                self.stats["battery_states"] += 1
        self.guarded(read)
        if self.model.battery == CRITICAL and self.battery.remaining_fraction() <= 0.005:
            # The fitter changes the batteries: a clean power-off (RTC lost).
            self.battery.replace()
            self.stats["battery_swaps"] += 1
            self.flash.cancel_cut()
            self.rtc.power_loss()
            self.hal.reboot(hal_mod.RESET_POWER_ON)
            self.boot()
            self.model.trusted = False
            self.model.battery = Model.level(self.battery.mv())
            self.check_boot()

    # -- the run ------------------------------------------------------------------------
    def run(self) -> dict:
        started = time.monotonic()
        rng = self.rng
        kinds, weights = zip(*KINDS, strict=True)
        next_revoke = REVOKE_EVERY
        next_sync = SYNC_EVERY // 2
        next_pull = PULL_EVERY
        next_jam = JAM_EVERY // 2
        next_guess = GUESS_EVERY // 3
        jam_left = 0
        while self.stats["openings"] < self.target:
            gap = rng.randint(60, 600)
            self.real += gap
            self.hal.advance(gap)
            if self.real - self.shift_start >= SHIFT_S:
                self.new_shift()
            if not self.flash.cut_pending and rng.random() < CUT_CHANCE:
                self.flash.cut_random(rng.getrandbits(32), within=40)
            n = self.stats["openings"]
            if n >= next_revoke:
                next_revoke += REVOKE_EVERY
                self.revoke()
            if n >= next_sync:
                next_sync += SYNC_EVERY
                self.sync()
            if n >= next_pull:
                next_pull += PULL_EVERY
                self.pull()
            if not self.model.jammed:
                jam_left = 0  # freed (or cleared by the fitter after a power cut)
            if n >= next_guess:
                next_guess += GUESS_EVERY
                self.guesser()
            if n >= next_jam and not jam_left:
                next_jam += JAM_EVERY
                jam_left = 3
                self.hal.jammed = self.model.jammed = True
            if self.stats["attempts"] % BATTERY_EVERY == 0:
                self.battery_check()
            kind = rng.choices(kinds, weights)[0]
            sub = rng.choice(STAFF)
            if kind == "revoked":
                blocked = [s for s in STAFF if s in self.model.cutoffs
                           and self.iat < self.model.cutoffs[s]]
                if not blocked:
                    continue
                sub = rng.choice(blocked)
            self.attempt(kind, sub)
            if self.model.jammed and kind == "valid":
                jam_left -= 1
                if jam_left <= 0:
                    self.hal.jammed = self.model.jammed = False
        self.flash.cancel_cut()
        self.pull()
        took = time.monotonic() - started
        return self.report(took)

    def report(self, took: float) -> dict:
        records = self.lock.log.next_seq - 1
        regions = {k: v.as_dict() for k, v in self.flash.regions.items()}
        fs, log = regions.get("fs", {}), regions.get("log", {})
        s = dict(self.stats)
        s.update(seconds=took, records=records, drift_ppm=round(self.drift, 1),
                 fs=fs, log=log, max_block_erases=max(self.flash.block_erases),
                 log_block_erases=max(self.flash.block_erases[FS_BLOCKS:]),
                 fs_block_erases=max(self.flash.block_erases[:FS_BLOCKS]))
        per = max(1, records)
        self.out(f"soak: {s['openings']} openings, {s['attempts']} attempts, "
                 f"{s['decisions']} decisions checked against the model, {s['cuts']} power "
                 f"cuts injected ({s['boot_cuts']} of them during the boot after a cut, "
                 f"{s['resent']} updates sent again), "
                 f"{s['revocations']} revocations, {s['syncs']} time syncs, "
                 f"{s['jammed']} jammed, {s['battery_swaps']} battery swaps "
                 f"({s['battery_states']} state changes), {s['pulls']} log pulls "
                 f"({s['pulled']} records, no hole, chain verified), seed {self.seed}, "
                 f"first drift {s['drift_ppm']} ppm; {took:.1f} s")
        self.out(f"  flash per record ({records} records): log "
                 f"{log.get('bytes_written', 0) / per:.1f} B, "
                 f"{log.get('erases', 0) / per:.4f} erases; littlefs (config, revocations, "
                 f"time, proof failures) {fs.get('bytes_written', 0) / per:.1f} B, "
                 f"{fs.get('erases', 0) / per:.4f} erases; most-erased block: log "
                 f"{s['log_block_erases']}, fs {s['fs_block_erases']}")
        self.out("  decisions: " + ", ".join(f"{k} {v}" for k, v in sorted(self.outcomes.items())))
        s["outcomes"] = dict(self.outcomes)
        return s


def soak(openings: int, seed: int = 1, out=print) -> dict:
    saved = actuator_mod.sleep_ms

    async def no_sleep(ms: int) -> None:  # the motor's polls take no real time
        await asyncio.sleep(0)
    actuator_mod.sleep_ms = no_sleep  # type: ignore[assignment]
    try:
        s = Soak(openings, seed, out)
        try:
            return s.run()
        finally:
            s.loop.close()
    finally:
        actuator_mod.sleep_ms = saved  # type: ignore[assignment]


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--openings", type=int, default=100_000)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    soak(a.openings, a.seed)
