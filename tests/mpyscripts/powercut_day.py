# The scripted day of tests/campaign_powercut.py, run by the real MicroPython
# interpreter for tests/e2e/test_campaign_powercut.py: the job is a JSON file named
# by $LOCK_CUT_JOB (phase mkfs, day or check; the flash file; the cut to arm;
# the day's steps, tokens and updates made by the issuer on CPython). It runs with
# a 1 MB heap: the harness keeps the day's job and every acknowledged record.
from binascii import unhexlify

from cutjob import HAL, LOCK_ID, attempt, commission, hexes, job, open_flash, save

from firmware.lock import Lock
from protocol import clock, reasons
from protocol import messages as msg
from simulator.mpy.flash import PowerCut


def pull(lock):
    out = []
    start, bound = 1, None
    while True:
        args = {1: start} if bound is None else {1: start, 2: bound}
        outcome, data = lock.admin("log", args)
        assert outcome == reasons.ALLOW
        bound = data[2]
        out += data[1]
        if not data[1] or int.from_bytes(data[1][-1][:4], "big") >= bound:
            return out
        start = int.from_bytes(data[1][-1][:4], "big") + 1


flash = open_flash()
if flash is None:
    pass  # mkfs: done
elif job["phase"] == "day":
    # What the lock has acknowledged, and what the step under way may leave
    # instead (lists of the values allowed after a cut); kept in RAM and
    # written once, at the cut or at the end.
    acked = {"records": [], "config": [None], "rev": [0], "trusted_at": [None],
             "step": "start", "ops": []}
    lock = None

    def ack(step, **now):
        known = len(acked["records"])
        last = int(acked["records"][-1][:8], 16) if known else 0
        acked["records"] += hexes(lock.log.read(from_seq=last + 1))
        for k in now:
            acked[k] = [now[k]]
        acked["step"] = step
        acked["ops"].append([step, flash.ops])

    try:
        lock = Lock(HAL(flash, clock.from_unix(job["t0"])))
        hal = lock.hal
        ack("boot")
        for step in job["steps"]:
            what = step[0]
            if what == "commission":
                acked["config"] = [None, LOCK_ID]
                commission(lock, step[1])
                ack("commission", config=LOCK_ID, trusted_at=clock.from_unix(step[1]))
            elif what == "open":
                hal.rtc += step[2]
                assert attempt(lock, job["grants"][step[1]]) == reasons.ALLOW
                ack("open")
            elif what == "revocation":
                acked["rev"] = [step[2] - 1, step[2]]
                assert lock.apply_revocation(unhexlify(step[1])) == reasons.ALLOW
                ack("revocation", rev=step[2])
            elif what == "refusal":
                assert attempt(lock, job["grants"][step[1]]) == reasons.REVOKED
                ack("refusal")
            elif what == "time":
                hal.rtc = clock.from_unix(step[1])
                acked["trusted_at"] = [acked["trusted_at"][0], clock.from_unix(step[1])]
                outcome, data = lock.admin("sync", {1: step[1]})
                assert outcome == reasons.ALLOW and data[1] == reasons.ALLOW
                ack("time", trusted_at=clock.from_unix(step[1]))
            elif what == "pull":
                pulled = hexes(pull(lock))
                mine = hexes(lock.log.read(from_seq=lock.config.commissioned_seq))
                assert pulled == mine
                ack("log pull")
            elif what == "decommission":
                acked["config"] = [LOCK_ID, None]
                answer = lock.decommission(b"\x00" * msg.NONCE_LEN)
                assert msg.decode(answer)[1][2] == reasons.ALLOW
                ack("decommission", config=None, rev=0, trusted_at=None)
        print("DONE", flash.ops)
    except PowerCut:
        print("CUT", flash.ops)
    save(acked)
else:  # check: boot on what the cut left (power-on, the RTC lost its time)
    lock = Lock(HAL(flash, 0))
    out = {"records": hexes(lock.log.read()),
           "lock_id": lock.config.lock_id if lock.config is not None else None,
           "rev_version": lock.revocations.version,
           "rev_staff": list(lock.revocations.staff),
           "trusted_at": lock.clock.trusted_at}
    if lock.config is None:  # the cut left it free: it can be commissioned again
        commission(lock, job["recommission_at"])
    lock.hal.rtc = max(lock.hal.rtc, job["check_at"])
    out["attempt"] = attempt(lock, job["check"])
    out["after"] = hexes(lock.log.read())
    save(out)
    print("CHECKED")
