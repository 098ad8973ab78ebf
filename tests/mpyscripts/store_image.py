# The MicroPython half of tests/simulator/test_flash.py's image test: load the store that
# littlefs-python wrote ($LOCK_IMAGE: "PATH:BLOCK_SIZE:BLOCKS") with MicroPython's
# VfsLfs2, print it, save a new version and write the image back.
import os
import sys

sys.path.insert(0, ".")  # run from the repository's root

from firmware.fs import mount_lfs  # noqa: E402
from firmware.store import Store  # noqa: E402
from simulator.mpy.flash import RamBlockDevice  # noqa: E402

path, bs, nb = os.getenv("LOCK_IMAGE", "").rsplit(":", 2)
dev = RamBlockDevice(int(bs), int(nb))
with open(path, "rb") as fh:
    fh.readinto(dev.data)
st = Store("/s", mount_lfs(dev))
print(st.load("config").decode(), st.version("config"))
st.save("config", b"from micropython")
with open(path, "wb") as fh:
    fh.write(dev.data)
