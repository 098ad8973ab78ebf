"""What a MicroPython child runs (simulator/mpyrunner.py runs the child).

`ChildImage` is what MpyRunner needs of it: the code to build, its entries in
the boot's configuration, how the interpreter is started and what its end
means, and where the host's serial bytes go (by default to the lock's serial
stream). `FirmwareImage` is `--mpy`: the firmware compiled with mpy-cross, in
ROM (a ROMFS image executed in place, as frozen code on a board) or loaded
into the heap ("ram", as a board flashed with mpremote). The other image is
the empty board behind its REPL (simulator/virtualboard.py).
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mpybuild import (
    LOCK_PACKAGES,
    PORT_PACKAGES,
    BuildError,
    build_romfs,
    compile_file,
    compile_tree,
    in_process_runner,
)

if TYPE_CHECKING:  # pragma: no cover
    from simulator.mpyrunner import MpyRunner

MPY_DIR = Path(__file__).resolve().parent / "mpy"  # the MicroPython side of the board
MpyError = BuildError  # MicroPython, mpy-cross or the compiled code is not usable


class ChildImage:
    """What runs in a board's MicroPython child (see the module doc)."""

    mode = "abstract"  # the runner's mode, and the port's in the child's configuration
    interpreter_options: tuple[str, ...] = ()  # before the script
    runner: MpyRunner

    def attach(self, runner: MpyRunner) -> None:
        self.runner = runner

    def prepare_code(self, build: Path) -> tuple[str, str | None]:
        """Build the child's code in `build` (which holds port.py): the script
        the interpreter runs, and the ROMFS image to mount, if any."""
        raise NotImplementedError

    def config(self, build: str | None) -> dict[str, Any]:
        """This image's entries in a boot's configuration (STATE/mpy-boot.json)."""
        return {}

    async def spawn(self, command: list[str], env: dict[str, str],
                    cwd: str | None) -> asyncio.subprocess.Process:
        """Start the interpreter's process."""
        raise NotImplementedError

    async def child_ended(self) -> None:
        """The interpreter has been ended."""

    def stops_gracefully(self) -> bool:
        """A firmware runs that can be told to stop (between flash writes)."""
        return True

    async def child_exited(self, status: int) -> str | None:
        """The child ended on its own: None (halted until the watchdog) or a
        reason to boot again."""
        raise NotImplementedError

    async def after_boot(self, why: str) -> None:
        """A boot has ended (`why`), before the next starts."""

    def state_extra(self) -> dict:
        return {}

    # --- the host's serial bytes (simulator/mpyserial.py) -------------------------------
    def from_host(self, data: bytes) -> None:
        self.runner.serial.from_host(data)

    def host_left(self) -> None:
        self.runner.serial.host_left()

    async def serve_serial(self, reader: asyncio.StreamReader,
                           writer: asyncio.StreamWriter) -> None:
        await self.runner.serial.serve(reader, writer, self.serial_opened)

    def serial_opened(self) -> None:
        """The lock has opened its serial port."""


class FirmwareImage(ChildImage):
    """The lock's firmware and the port code, compiled; in ROM or in RAM."""

    mode = "mpy"

    def __init__(self, code: str = "rom") -> None:
        if code not in ("rom", "ram"):
            raise ValueError("code must be 'rom' or 'ram'")
        self.code = code
        self.compiled: list[tuple[str, int, int]] = []

    def prepare_code(self, build: Path) -> tuple[str, str | None]:
        code = build / "code"
        self.compiled = compile_tree(code, LOCK_PACKAGES + PORT_PACKAGES)
        if self.code != "rom":
            return str(build / "port.py"), None
        if not in_process_runner():
            raise MpyError("code in ROM needs the wheel's micropython_run module; "
                           "use --mpy-code ram")
        error = compile_file(Path("port.py"), code / "_lockport.mpy", build)
        if error is not None:
            raise MpyError(f"mpy-cross failed on the port code: {error}")
        rom_image = build / "firmware.romfs"
        rom_image.write_bytes(build_romfs(code))
        script = build / "bootstrap.py"
        shutil.copyfile(MPY_DIR / "bootstrap.py", script)
        return str(script), str(rom_image)

    def config(self, build: str | None) -> dict[str, Any]:
        if self.code == "ram" and build is not None:
            return {"code": str(Path(build) / "code")}
        return {}

    async def spawn(self, command: list[str], env: dict[str, str],
                    cwd: str | None) -> asyncio.subprocess.Process:
        """The interpreter's output goes to our stderr (the log)."""
        return await asyncio.create_subprocess_exec(
            *command, stdin=subprocess.DEVNULL, stdout=sys.stderr.fileno(),
            stderr=sys.stderr.fileno(), env=env, cwd=cwd)

    async def child_exited(self, status: int) -> str | None:
        """A crash: its traceback is on stderr."""
        self.runner.board.crashes += 1
        print(f"simulator: the firmware under MicroPython exited (status {status}); "
              "board halted until its watchdog resets it", file=sys.stderr)
        sys.stderr.flush()
        return None
