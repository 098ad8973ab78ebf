# What the power-cut scripts under MicroPython share (powercut_scenario.py for
# tests/e2e/test_mpy_powercut.py, powercut_day.py for the campaign): the job (a
# JSON file named by $LOCK_CUT_JOB), a HAL over the flash file's two regions,
# an opening as a key makes it, commissioning, saving the result atomically.
import json
import os
import sys

with open(os.getenv("LOCK_CUT_JOB")) as f:
    job = json.load(f)
sys.path.insert(0, job["code"])

from binascii import hexlify, unhexlify

from firmware import hal as hal_mod
from firmware.fs import mount_lfs
from firmware.lock import Session
from protocol import events, reasons
from protocol import messages as msg
from simulator.mpy.flash import Flash, Partition
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


def hexes(recs):
    return [hexlify(bytes(r)).decode() for r in recs]


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


def open_flash():
    """The job's flash file, with the power cut it arms; phase mkfs formats
    its filesystem region and returns None (nothing more to do)."""
    f = open(job["flash"], "r+b")
    flash = Flash(FileStore(f), job["size"], BS, cut=job.get("cut"))
    if job["phase"] == "mkfs":
        import vfs

        vfs.VfsLfs2.mkfs(Partition(flash, 0, job["fs_blocks"] * BS))
        return None
    return flash
