# Run on the board by mpremote after the copy (tools.flashing.deploy): check
# every staged file, install the boot loader, then switch /boot.sel (the commit)
# and drop the old slot.
import binascii
import hashlib
import os


def _digest(p):
    h = hashlib.sha256()
    with open(p, "rb") as f:
        while True:
            b = f.read(512)
            if not b:
                break
            h.update(b)
    return binascii.hexlify(h.digest()).decode()
_bad = 0
with open("/lockfw.new/MANIFEST") as _f:
    for _l in _f:
        _d, _s, _p = _l.split()
        try:
            if os.stat("/lockfw.new/" + _p)[6] != int(_s) or _digest("/lockfw.new/" + _p) != _d:
                _bad += 1
        except OSError:
            _bad += 1
if _bad:
    raise OSError("deploy incomplete: %d file(s) differ" % _bad)
try:
    _cur = open("/boot.sel").read().strip()
except OSError:
    _cur = ""
_n = int(_cur[7:]) + 1 if _cur[7:].isdigit() else 1
_new = "lockfw.%d" % _n
os.rename("/lockfw.new", "/" + _new)
os.rename("/" + _new + "/main.py", "/main.py")
with open("/boot.sel.new", "w") as _f:
    _f.write(_new)
os.rename("/boot.sel.new", "/boot.sel")
print("deployed", _new)
