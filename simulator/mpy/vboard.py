# The virtual board's boot (MicroPython code; simulator/virtualboard.py runs
# the board around it), imported by the port code (simulator/mpy/port.py):
# littlefs at /, then /main.py unless the board boots into its REPL.
import os
import sys

import unixport  # type: ignore[import-not-found]  # made by the port code
import vfs

from simulator.mpy import proxy
from simulator.mpy.flash import Flash, Partition
from simulator.mpy.stores import FileStore


class _RootFlash(Flash):
    """The root filesystem's flash, reporting each program/erase to the
    board (so its "state" counts them); it takes no power cuts (those are
    the lock HAL's, simulator/mpy/unixhal.py)."""

    control = None

    def count(self, kind, region, n):
        if kind != "read" and self.control is not None:
            self.control.call("flash", (1, None), defer=True)


def _mount_root(cfg):
    # littlefs on the FS region at / (as an ESP32's _boot.py mounts its "vfs"
    # partition); formatted if it will not mount, as there.
    off, size = cfg["fs_region"]
    flash = _RootFlash(FileStore(unixport.flash), cfg["flash_size"], cfg["block_size"])
    flash.control = proxy.Control(cfg["control"], cfg["token"])  # type: ignore[assignment]
    bd = Partition(flash, off, size)
    vfs.umount("/")
    try:
        vfs.mount(vfs.VfsLfs2(bd), "/")  # type: ignore[abstract, arg-type]  # (stubs: bdev protocol)
    except OSError:
        if not bd.erased():
            print("MPY: the filesystem would not mount: formatted")
        vfs.VfsLfs2.mkfs(bd)  # type: ignore[arg-type]
        vfs.mount(vfs.VfsLfs2(bd), "/")  # type: ignore[abstract, arg-type]  # (stubs: bdev protocol)
    os.chdir("/")
    while sys.path:
        sys.path.pop()
    sys.path.extend(["", ".frozen", "/lib", "/rom"])  # /rom: the port's code (port.py)


def _run_main():
    try:
        os.stat("main.py")
    except OSError:
        return
    try:
        with open("main.py") as f:
            src = f.read()
        exec(src, {"__name__": "__main__"})
    except BaseException as e:  # as a board's pyexec: report, then the REPL
        sys.print_exception(e)


def _machine():
    # machine.reset() as on a board (mpremote reset): the board restarts and
    # runs main.py. The unix port's `machine` has no reset(); this one is the
    # built-in module plus reset().
    import machine as builtin

    class machine:
        pass

    for name in dir(builtin):
        if not name.startswith("__"):
            setattr(machine, name, getattr(builtin, name))

    def reset():
        import socket
        import time

        cfg = unixport.config
        s = socket.socket()
        s.connect(socket.getaddrinfo("127.0.0.1", cfg["control"])[0][-1])
        s.write(("control %s\n" % cfg["token"]).encode())
        s.readline()
        s.write(b"reset []\n")
        s.readline()
        time.sleep(10)  # the board ends this interpreter

    machine.reset = reset  # type: ignore[attr-defined]
    sys.modules["machine"] = machine  # type: ignore[assignment]


_machine()
_mount_root(unixport.config)
if unixport.config.get("boot") == "main":
    _run_main()
