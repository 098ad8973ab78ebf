# The first thing the interpreter runs with the code in ROM (MicroPython code):
# mount the ROMFS image (its address and length in $LOCK_UNIXPORT_ROM, set by
# simulator.mpyhost's launcher) and run the port code, compiled into the image
# as _lockport.mpy so that it is not compiled in the heap.
import os
import sys

import uctypes
import vfs

a, n = os.getenv("LOCK_UNIXPORT_ROM", "").split(":")
vfs.mount(vfs.VfsRom(uctypes.bytearray_at(int(a), int(n))), "/rom")  # type: ignore[abstract]
sys.path.insert(0, "/rom")
del a, n
import _lockport  # type: ignore[import-not-found]  # noqa: E402, F401
