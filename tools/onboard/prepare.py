# Run on the board by mpremote before the copy (tools.flashing.deploy): remove
# the staging slot and any slot /boot.sel does not name (leftovers of a cut deploy).
import os


def _rm(p):
    try:
        st = os.stat(p)
    except OSError:
        return
    if st[0] & 0x4000:
        for n in os.listdir(p):
            _rm(p + "/" + n)
        os.rmdir(p)
    else:
        os.remove(p)
try:
    _cur = open("/boot.sel").read().strip()
except OSError:
    _cur = ""
for _n in os.listdir("/"):
    if _n.startswith("lockfw.") and _n != _cur:
        _rm("/" + _n)
for _n in ("/main.py.new", "/boot.sel.new"):
    _rm(_n)
