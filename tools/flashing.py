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

from mpybuild import compile_packages

ROOT = Path(__file__).resolve().parent.parent
STAGING = "/lockfw.new"
SOFT_REBOOT = b"MPY: soft reboot\r\n"  # what a board prints as it soft-resets
PROMPT = b">>> "

# MicroPython code run on the board (tools/onboard/): /main.py of a deployed
# board (the boot loader), and what mpremote runs before the copy (remove
# leftovers of a cut deploy) and after it (check, install, commit).
ONBOARD = ROOT / "tools" / "onboard"


def onboard(name: str) -> str:
    """The source of tools/onboard/NAME.py."""
    return (ONBOARD / f"{name}.py").read_text()


class DeployError(Exception):
    """The deploy did not complete (one line; the board keeps its old firmware)."""


def mpremote_command() -> list[str]:
    exe = Path(sys.executable).parent / "mpremote"
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "mpremote"]


def boards() -> list[str]:
    """The boards that can be flashed: boards/NAME.py that says NAME = "NAME"
    (boards/ also holds the freeze manifest, which is not a board), and keeps
    its filesystem at "/" (the deploy writes /main.py and its slots there; a
    board with FS_MOUNT elsewhere, the nRF52840 under the Zephyr port, is built
    as a frozen image instead)."""
    found = []
    for path in sorted((ROOT / "boards").glob("*.py")):
        text = path.read_text()
        if (re.search(rf'^NAME = "{re.escape(path.stem)}"$', text, re.M)
                and not re.search(r'^FS_MOUNT = "(?!/")', text, re.M)):
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
    _, errors = compile_packages(slot, packages=("protocol", "firmware"))
    if errors:
        raise DeployError("mpy-cross failed: " + "; ".join(errors))
    (slot / "boards").mkdir(parents=True, exist_ok=True)
    for name in ("__init__.py", f"{board}.py"):
        (slot / "boards" / name).write_bytes((ROOT / "boards" / name).read_bytes())
    (slot / "BOARD").write_text(board + (" production" if production else "") + "\n")
    (slot / "main.py").write_text(onboard("main"))
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
        cmd = mpremote_command() + ["connect", port, "exec", onboard("prepare")]
        dirs = sorted({p.parent for p in files})
        for d in dirs:
            cmd += ["+", "fs", "mkdir", ":" + STAGING + _rel(d, slot)]
        for d in dirs:
            batch = [str(p) for p in files if p.parent == d and p.name != "MANIFEST"]
            if batch:
                cmd += ["+", "fs", "cp", *batch, ":" + STAGING + _rel(d, slot) + "/"]
        cmd += ["+", "fs", "cp", str(slot / "MANIFEST"), ":" + STAGING + "/MANIFEST"]
        cmd += ["+", "exec", onboard("commit")]
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
