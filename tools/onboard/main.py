# Boot loader of a lock deployed with mpremote (tools.flashing.deploy,
# the path of `lockctl flash`). /boot.sel names the firmware slot (/lockfw.N,
# with firmware/, protocol/, boards/ and BOARD: the board's name, then
# "production" for a production build). A deploy writes a new slot and
# switches /boot.sel with one atomic rename.
import sys


def _slot():
    try:
        with open("/boot.sel") as f:
            slot = "/" + f.read().strip()
        with open(slot + "/BOARD") as f:
            return slot, f.read().split()
    except OSError:
        return None, None


_s, _b = _slot()
if _s and _b:
    sys.path.insert(0, _s)
    import firmware.main

    firmware.main.start(_b[0], production=_b[1:] == ["production"])
