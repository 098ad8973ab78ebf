"""The state directory of one simulated board (simulator/board.py):

  flash.bin      the whole flash chip (board FLASH_SIZE, 4 MB), erased when new;
                 mmap'ed, so every program/erase is in the file at once.
  hardware.json  what survives a restart of the simulator: the RTC (reading,
                 drift), the battery's drawn charge, bolt position, door.
  .lock          flock: one simulator per state directory.
  control.sock   the control channel (simulator/control.py), owner-only, while
                 the board runs: tests and `lockctl sim` act on the hardware.

and the regions of the flash the firmware uses: its configuration filesystem
(littlefs, formatted on a new board) and the event log's raw region.
"""

from __future__ import annotations

import fcntl
import json
import os
import sys
from types import ModuleType
from typing import Any

from simulator import flash as flash_mod
from simulator.hardware import Hardware
from simulator.lfs import LittleFsFs
from simulator.runner import BoardError


class StateDir:
    """A board's state directory, its flash chip and the firmware's regions on it."""

    def __init__(self, path: str, board: ModuleType) -> None:
        self.path = os.path.abspath(path)
        self.board = board
        self.flash: flash_mod.FlashDevice | None = None
        self._lockfile: Any = None

    @property
    def flash_path(self) -> str:
        return os.path.join(self.path, "flash.bin")

    @property
    def hardware_path(self) -> str:
        return os.path.join(self.path, "hardware.json")

    def device(self) -> flash_mod.FlashDevice:
        if self.flash is None:
            raise BoardError("the board is not started")
        return self.flash

    # --- open, save, close --------------------------------------------------------
    def open(self) -> None:
        """Take the directory (created if missing) and open its flash chip."""
        os.makedirs(self.path, exist_ok=True)
        self._lockfile = open(os.path.join(self.path, ".lock"), "w")
        try:
            fcntl.flock(self._lockfile, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self._lockfile.close()
            self._lockfile = None
            raise BoardError(f"state directory {self.path} is in use by another "
                             "simulator") from None
        b = self.board
        try:
            self.flash = flash_mod.FlashDevice.open(self.flash_path, b.FLASH_SIZE,
                                                    b.FLASH_BLOCK_SIZE)
        except flash_mod.FlashError as e:
            self._unlock()
            raise BoardError(f"{self.flash_path}: {e}") from None

    def hardware_snapshot(self) -> dict | None:
        """What hardware.json kept (None for a new board, or one it cannot read)."""
        if not os.path.exists(self.hardware_path):
            return None
        try:
            with open(self.hardware_path) as f:
                return json.load(f)
        except (OSError, ValueError) as e:
            print(f"simulator: ignoring unreadable {self.hardware_path}: {e}",
                  file=sys.stderr)
            return None

    def save(self, hw: Hardware | None) -> None:
        if self.flash is not None:
            self.flash.save()
        if hw is not None:
            tmp = self.hardware_path + ".tmp"
            with open(tmp, "w") as f:
                json.dump(hw.snapshot(), f, indent=1)
            os.replace(tmp, self.hardware_path)

    def close(self) -> None:
        if self.flash is not None:
            self.flash.close()
            self.flash = None
        self._unlock()

    def _unlock(self) -> None:
        if self._lockfile is not None:
            self._lockfile.close()
            self._lockfile = None

    # --- the firmware's regions ---------------------------------------------------
    def region(self, region: tuple[int, int], name: str) -> flash_mod.BlockDevice:
        return flash_mod.BlockDevice.region(self.device(), region, name)

    def mount_fs(self) -> Any:
        bdev = self.region(self.board.FS_REGION, "fs")
        try:
            return LittleFsFs(bdev)
        except OSError:
            off, size = self.board.FS_REGION
            if bytes(self.device().data[off:off + size]).count(0xFF) != size:
                raise  # a damaged filesystem is the firmware's to handle
            return LittleFsFs.mkfs(bdev)  # a new board: format it

    def erase_fs(self) -> None:
        """Factory reset: erase the whole configuration region (block by block,
        through the flash model, so writes are counted and cuts still apply)."""
        bdev = self.region(self.board.FS_REGION, "fs")
        for block in range(bdev.block_count):
            bdev.ioctl(6, block)
