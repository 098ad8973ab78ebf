# The scenario and the check of tests/e2e/test_mpy_powercut.py, run by the real
# MicroPython interpreter: the job is a JSON file named by $LOCK_CUT_JOB
# (phase mkfs, scenario or check; the flash file; the power cut to arm).
from binascii import unhexlify

from cutjob import HAL, attempt, commission, hexes, job, open_flash, save

from firmware.lock import Lock
from protocol import clock, reasons
from simulator.mpy.flash import PowerCut


def records(lock):
    return hexes(lock.log.read())


flash = open_flash()
T0 = job["t0"]
if flash is None:
    pass  # mkfs: done
elif job["phase"] == "scenario":
    acked = {"records": [], "commissioned": False, "rev_version": 0, "step": "", "ops": []}
    lock = None

    def ack(step):
        acked["records"] = records(lock)
        acked["step"] = step
        acked["ops"].append([step, flash.ops])
        save(acked)

    try:
        lock = Lock(HAL(flash, clock.from_unix(T0)))
        ack("boot")
        commission(lock, T0)
        acked["commissioned"] = True
        ack("commission")
        assert attempt(lock, job["s1"]) == reasons.ALLOW
        ack("open")
        assert lock.apply_revocation(unhexlify(job["update"])) == reasons.ALLOW
        acked["rev_version"] = 1
        ack("revocation")
        outcome, _ = lock.admin("sync", {1: T0 + 30})
        assert outcome == reasons.ALLOW
        ack("time")
        for g in job["s2"]:
            assert attempt(lock, g) == reasons.REVOKED
            ack("refusal")
        print("DONE", flash.ops)
    except PowerCut:
        print("CUT", flash.ops)
else:  # check: boot on what the cut left (power-on, the RTC lost its time)
    lock = Lock(HAL(flash, 0))
    out = {"records": records(lock),
           "lock_id": lock.config.lock_id if lock.config is not None else None,
           "rev_version": lock.revocations.version,
           "rev_staff": list(lock.revocations.staff)}
    if lock.config is None:  # the commissioning was cut: it can be done again
        commission(lock, T0 + 60)
    out["attempt"] = attempt(lock, job["check"])
    out["after"] = records(lock)
    save(out)
    print("CHECKED")
