"""Flashing a board: compile the lock's code and deploy it with mpremote.

The code path of `lockctl flash`, for a real board and for the simulator's
virtual board alike. protocol/ and firmware/ are compiled with mpy-cross,
boards/BOARD.py travels as source; everything is copied into a staging slot
(/lockfw.new), checked on the board (size and SHA-256 of every file against a
MANIFEST), and made current by one atomic rename of the boot selector
(/boot.sel). /main.py is a small boot loader that runs the slot /boot.sel
names. A deploy cut off anywhere leaves the old firmware (or, before the first
commit, no firmware: a safe, uncommissioned board) and a board mpremote can
flash again; the next deploy removes the leftovers.
"""

from __future__ import annotations

import hashlib
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Callable

from tools.mpycompile import compile_all

ROOT = Path(__file__).resolve().parent.parent
STAGING = "/lockfw.new"
SOFT_REBOOT = b"MPY: soft reboot\r\n"  # what a board prints as it soft-resets
PROMPT = b">>> "

# /main.py on a deployed board: the boot loader (MicroPython).
BOOT_LOADER = '''# Boot loader of a lock deployed with mpremote (tools.flashing.deploy,
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
'''

# Run on the board by mpremote before the copy: remove the staging slot and
# any slot /boot.sel does not name (leftovers of a cut deploy).
PREPARE = '''import os
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
'''

# Run on the board by mpremote after the copy: check every staged file,
# install the boot loader, then switch /boot.sel (the commit) and drop the old slot.
COMMIT = '''import os, hashlib, binascii
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
'''


class DeployError(Exception):
    """The deploy did not complete (one line; the board keeps its old firmware)."""


def mpremote_command() -> list[str]:
    exe = Path(sys.executable).parent / "mpremote"
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "mpremote"]


def boards() -> list[str]:
    """The boards that can be flashed: boards/NAME.py that says NAME = "NAME"
    (boards/ also holds the freeze manifest, which is not a board)."""
    found = []
    for path in sorted((ROOT / "boards").glob("*.py")):
        if re.search(rf'^NAME = "{re.escape(path.stem)}"$', path.read_text(), re.M):
            found.append(path.stem)
    return found


def stage(out: Path, board: str = "sim", production: bool = False) -> list[Path]:
    """Build the slot to deploy in out/lockfw.new: protocol/ and firmware/
    compiled with mpy-cross, boards/__init__.py and boards/BOARD.py as source,
    BOARD, the boot loader (main.py) and a MANIFEST (SHA-256, size, path of
    every other file). Returns the files, MANIFEST last."""
    if board not in boards():  # also keeps a name like ../x out of the path
        raise DeployError(f"no board file boards/{board}.py")
    slot = out / STAGING.lstrip("/")
    _, errors = compile_all(slot, packages=("protocol", "firmware"))
    if errors:
        raise DeployError("mpy-cross failed: " + "; ".join(errors))
    (slot / "boards").mkdir(parents=True, exist_ok=True)
    for name in ("__init__.py", f"{board}.py"):
        (slot / "boards" / name).write_bytes((ROOT / "boards" / name).read_bytes())
    (slot / "BOARD").write_text(board + (" production" if production else "") + "\n")
    (slot / "main.py").write_text(BOOT_LOADER)
    files = sorted(p for p in slot.rglob("*") if p.is_file())
    lines = []
    for p in files:
        data = p.read_bytes()
        lines.append(f"{hashlib.sha256(data).hexdigest()} {len(data)} {p.relative_to(slot)}")
    (slot / "MANIFEST").write_text("\n".join(lines) + "\n")
    return files + [slot / "MANIFEST"]


def deploy(port: str, board: str = "sim",
           progress: Callable[[int, int, str], None] | None = None, *,
           production: bool = False, reboot: bool = True, timeout: float = 180.0,
           hello_timeout: float = 30.0) -> dict:
    """Flash the lock's firmware to the MicroPython board on serial `port`
    (a real one or the virtual board) with mpremote, then boot it.

    One mpremote session: remove leftovers of earlier deploys, copy the staged
    slot (stage()) to /lockfw.new file by file, then check it on the board and
    switch /boot.sel to it (see the module doc). `progress(done, total, path)`
    is called as files go. With `reboot`, a soft reset from the friendly REPL
    then runs /main.py, and the deploy waits (up to `hello_timeout` s) for the
    lock's HELLO on the port. `production` deploys a build whose REPL is closed
    once it runs (mpremote cannot reach it after that).
    Returns {"files", "bytes", "seconds", "hello": the HELLO fields or None}.
    Raises DeployError: before the commit the board keeps its old firmware;
    a lock that does not answer after its reboot is an error too."""
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="lock-deploy-") as tmp:
        root = Path(tmp)
        files = stage(root, board, production)
        slot = root / STAGING.lstrip("/")
        cmd = mpremote_command() + ["connect", port, "exec", PREPARE]
        dirs = sorted({p.parent for p in files})
        for d in dirs:
            cmd += ["+", "fs", "mkdir", ":" + STAGING + _rel(d, slot)]
        for d in dirs:
            batch = [str(p) for p in files if p.parent == d and p.name != "MANIFEST"]
            if batch:
                cmd += ["+", "fs", "cp", *batch, ":" + STAGING + _rel(d, slot) + "/"]
        cmd += ["+", "fs", "cp", str(slot / "MANIFEST"), ":" + STAGING + "/MANIFEST"]
        cmd += ["+", "exec", COMMIT]
        total = len(files)
        done = 0
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        out: list[str] = []
        late = threading.Timer(timeout, proc.kill)  # a board that stops answering
        late.start()
        assert proc.stdout is not None
        try:
            for line in proc.stdout:
                out.append(line)
                if line.startswith("cp ") and progress is not None:
                    done += 1
                    progress(done, total, line.split()[1])
            status = proc.wait(30)
        finally:
            late.cancel()
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        text = "".join(out)
        if status == -signal.SIGKILL:
            raise DeployError(f"mpremote did not finish within {timeout:g} s")
        if status != 0 or "deployed lockfw." not in text:
            last = [x for x in text.strip().splitlines() if x.strip()][-3:]
            raise DeployError("mpremote failed: " + " | ".join(last))
        nbytes = sum(p.stat().st_size for p in files)
    result: dict = {"files": total, "bytes": nbytes, "seconds": 0.0, "hello": None}
    if reboot:
        result["hello"] = boot_firmware(port, timeout=hello_timeout)
        if result["hello"] is None:
            raise DeployError(f"the firmware was deployed, but the lock did not answer on "
                              f"{port} within {hello_timeout:g} s of its reboot")
    result["seconds"] = time.monotonic() - t0
    return result


def _rel(d: Path, slot: Path) -> str:
    rel = d.relative_to(slot).as_posix()
    return "" if rel == "." else "/" + rel


def boot_firmware(port: str, timeout: float = 30.0) -> dict | None:
    """Soft-reset the board from its friendly REPL (Ctrl-B, then Ctrl-D), which
    runs /main.py, and wait for the lock to answer a GET_HELLO on the same
    port. Returns the HELLO's fields (None if `timeout` passes)."""
    import serial

    from protocol import frames
    from protocol import messages as msg

    deadline = time.monotonic() + timeout
    with serial.Serial(port, 115200, timeout=0.1, exclusive=True) as ser:
        ser.write(b"\r\x02")  # the friendly REPL (mpremote leaves it there too)
        _read_until(ser, PROMPT, deadline)
        ser.write(b"\x04")  # soft reset: /main.py runs
        _read_until(ser, SOFT_REBOOT, deadline)
        decoder = frames.Decoder()
        ask = frames.encode(msg.encode(msg.GET_HELLO, {}))
        next_ask = 0.0
        while time.monotonic() < deadline:
            if time.monotonic() >= next_ask:
                ser.write(ask)
                next_ask = time.monotonic() + 1.0
            for payload in decoder.feed(ser.read(4096)):
                try:
                    mtype, fields = msg.decode(payload)
                except msg.MessageError:
                    continue
                if mtype == msg.HELLO:
                    return dict(fields)
    return None


def _read_until(ser: Any, marker: bytes, deadline: float) -> bytes:
    buf = b""
    while time.monotonic() < deadline:
        buf += ser.read(4096)
        if marker in buf:
            return buf
    raise DeployError(f"the board did not answer (waiting for {marker!r})")


def flash(board: str, port: str, progress: Callable[[int, int], None] | None = None,
          info: Callable[[str], None] | None = None, production: bool = False) -> dict:
    """`lockctl flash`: deploy to the board on `port` and check the lock answers."""
    def each(done: int, total: int, path: str) -> None:
        if progress is not None:
            progress(done, total)

    if info is not None:
        info(f"Compiling and deploying to {port} (board {board})...")
    result = deploy(port, board, each, production=production)
    if result.get("hello") is None:
        raise DeployError("the firmware was deployed but the lock did not answer after reboot")
    return result


__all__ = ["flash", "deploy", "stage", "boards", "boot_firmware", "DeployError", "mpremote_command"]
