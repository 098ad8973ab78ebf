# The scenario and the check of tests/e2e/test_mpy_powercut.py, run by the real
# MicroPython interpreter: the job is a JSON file named by $LOCK_CUT_JOB
# (phase mkfs, scenario or check; the flash file; the power cut to arm).
import json
import os
import sys

with open(os.getenv("LOCK_CUT_JOB")) as f:
    job = json.load(f)
sys.path.insert(0, job["code"])

from binascii import hexlify, unhexlify

from firmware import hal as hal_mod
from firmware.fs import mount_lfs
from firmware.lock import Lock, Session
from protocol import clock, events, reasons
from protocol import messages as msg
from simulator.mpy.flash import Flash, Partition, PowerCut
from simulator.mpy.stores import FileStore

BS = 4096
LOCK_ID = job["lock_id"]


class HAL(hal_mod.HAL):
    def __init__(self, flash, now):
        self.rtc = now
        self.fs_dev = Partition(flash, 0, job["fs_blocks"] * BS)
        self.log_dev = Partition(flash, job["fs_blocks"] * BS, job["log_blocks"] * BS)

    def rtc_now(self):
        return self.rtc

    def rtc_set(self, t):
        self.rtc = t

    def ticks_ms(self):
        return 0

    def battery_mv(self):
        return 5200

    def reset_cause(self):
        return hal_mod.RESET_POWER_ON

    def random_bytes(self, n):
        return os.urandom(n)

    def config_fs(self):
        return mount_lfs(self.fs_dev)

    def log_device(self):
        return self.log_dev


def save(obj):
    with open(job["out"] + ".tmp", "w") as f:
        json.dump(obj, f)
    os.rename(job["out"] + ".tmp", job["out"])


def records(lock):
    return [hexlify(bytes(r)).decode() for r in lock.log.read()]


def attempt(lock, g):
    session = Session("ble")
    _, hello = msg.decode(lock.hello(session))
    token = unhexlify(g[0])
    proof = msg.open_proof(unhexlify(g[1]), hello[2], LOCK_ID, "open", token)
    reason, claims, _ = lock.check_request(session, {1: hello[2], 2: token, 3: "open",
                                                     4: proof})
    if reason == reasons.ALLOW:
        lock.record(events.OPENED, 0, events.key_id_of(claims.sub))
    return reason


def commission(lock, t):
    lock.commission({1: b"", 2: LOCK_ID, 3: unhexlify(job["lock_secret"]), 4: "hmac",
                     5: t, 6: job["site"], 7: "apartment"})


f = open(job["flash"], "r+b")
flash = Flash(FileStore(f), job["size"], BS, cut=job.get("cut"))
T0 = job["t0"]
if job["phase"] == "mkfs":
    import vfs

    vfs.VfsLfs2.mkfs(Partition(flash, 0, job["fs_blocks"] * BS))
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
