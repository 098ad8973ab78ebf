"""The simulator's flash on CPython: the one NOR-flash model
(simulator/mpy/flash.py, shared with MicroPython) with CPython's conveniences.

``FlashDevice`` is that model's chip (erased bytes read 0xFF, programming can
only clear bits, erasing is per block, power cuts at any program or erase)
with operation counters per region, and its bytes in memory or in a file
through mmap (so a restarted simulator keeps its flash).

``BlockDevice`` exposes a region of it through MicroPython's extended
block-device protocol (``readblocks``/``writeblocks`` with offsets, ``ioctl``),
which the firmware's event log uses directly and MicroPython's ``vfs.VfsLfs2``
mounts; simulator/lfs.py mounts littlefs-python on the same protocol.

Power cuts (``cut_at(n, mode, seed)``, the modes in CUT_MODES): see the model,
simulator/mpy/flash.py. After one every access raises ``PowerCut`` until
``reboot()``: the test then mounts the filesystem and recovers the log again
from what is left in the flash.
"""

from __future__ import annotations

import mmap
import os
from typing import Any

from simulator.mpy import flash as core
from simulator.mpy.flash import CUT_MODES, FlashError, PowerCut  # noqa: F401  (for callers)


class Counters:
    """Operation counters for a whole chip or for one region of it."""

    __slots__ = ("writes", "bytes_written", "erases", "reads", "bytes_read")

    def __init__(self) -> None:
        self.writes = 0
        self.bytes_written = 0
        self.erases = 0
        self.reads = 0
        self.bytes_read = 0

    def as_dict(self) -> dict[str, int]:
        return {k: getattr(self, k) for k in self.__slots__}

    def add(self, kind: str, n: int) -> None:
        if kind == "read":
            self.reads += 1
            self.bytes_read += n
        elif kind == "program":
            self.writes += 1
            self.bytes_written += n
        else:
            self.erases += 1

    def __repr__(self) -> str:
        return "Counters(%s)" % ", ".join("%s=%d" % kv for kv in self.as_dict().items())


class FlashDevice(core.Flash):
    """A NOR flash chip of ``size`` bytes in erase blocks of ``erase_size``,
    counting operations in ``total`` and per region name in ``regions``."""

    def __init__(
        self,
        size: int,
        erase_size: int = 4096,
        prog_size: int = 1,
        *,
        strict: bool = False,
        path: str | None = None,
    ) -> None:
        super().__init__(core.RamStore(size), size, erase_size)
        if prog_size <= 0 or erase_size % prog_size:
            raise FlashError("prog_size must divide erase_size")
        self.prog_size = prog_size
        self.strict = strict
        # Set to a list to record ("program" | "erase", address, length) per op.
        self.trace: list[tuple[str, int, int]] | None = None
        self.path = path
        self._file: Any = None
        self.total = Counters()
        self.regions: dict[str, Counters] = {}

    @property
    def data(self) -> bytearray | mmap.mmap:
        return self.store.buf

    @data.setter
    def data(self, buf: bytearray | mmap.mmap) -> None:
        self.store = core.RamStore(buf=buf)

    def read(self, addr: int, buf: Any, region: str | None = None) -> Any:
        """Read into ``buf``; given a length instead, return the bytes."""
        if isinstance(buf, int):
            out = bytearray(buf)
            super().read(addr, out, region)
            return bytes(out)
        return super().read(addr, buf, region)

    def program(self, addr: int, data: Any, region: str | None = None) -> None:
        n = len(data)
        if addr % self.prog_size or n % self.prog_size:
            raise FlashError("program not aligned to the program size")
        if self.strict and 0 <= addr and addr + n <= self.size and self.powered:
            if bytes(self.data[addr : addr + n]) != b"\xff" * n:
                raise FlashError("program over bytes that are not erased (strict mode)")
        super().program(addr, data, region)

    def _cut_now(self, kind: str, addr: int, n: int) -> bool:
        if self.trace is not None:
            self.trace.append((kind, addr, n))
        return super()._cut_now(kind, addr, n)

    def cut_random(self, seed: int, within: int = 100) -> tuple[int, str]:
        """Arm a cut at a random one of the next ``within`` operations, in a
        random mode (the model's own generator). Returns (n, mode) so a
        failure can be replayed."""
        rng = core.Rng(seed)
        n = rng.below(within)
        mode = CUT_MODES[rng.below(len(CUT_MODES))]
        self.cut_at(n, mode, rng.next32())
        return n, mode

    def count(self, kind: str, region: str | None, n: int) -> None:
        self.total.add(kind, n)
        if region is not None:
            c = self.regions.get(region)
            if c is None:
                c = self.regions[region] = Counters()
            c.add(kind, n)

    # -- persistence ---------------------------------------------------------

    @classmethod
    def open(cls, path: str, size: int, erase_size: int = 4096, **kw: Any) -> FlashDevice:
        """Flash kept in the file ``path`` through mmap: every program and erase
        lands in the file at once, so a killed simulator keeps its flash. A new
        file starts erased; an existing one must have the same size."""
        dev = cls(size, erase_size, path=path, **kw)
        if os.path.exists(path):
            if os.path.getsize(path) != size:
                raise FlashError("flash image size does not match")
            f = open(path, "r+b")
        else:
            f = open(path, "w+b")
            f.write(b"\xff" * size)
            f.flush()
        dev._file = f
        dev.data = mmap.mmap(f.fileno(), size)
        return dev

    def save(self, path: str | None = None) -> None:
        """Write the flash out: flush the mmap, or write the image to ``path``
        (atomically, through a temporary file and rename)."""
        target = path or self.path
        if isinstance(self.data, mmap.mmap) and (target is None or target == self.path):
            self.data.flush()
            return
        if target is None:
            raise FlashError("no path to save the flash to")
        tmp = target + ".tmp"
        with open(tmp, "wb") as f:
            f.write(bytes(self.data))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)

    def close(self) -> None:
        data = self.data
        if isinstance(data, mmap.mmap):
            data.flush()
            self.data = bytearray(self.size)
            data.close()
        if self._file is not None:
            self._file.close()
            self._file = None

    def snapshot(self) -> bytes:
        """The whole contents, to ``restore`` later (counters are not part of it)."""
        return bytes(self.data[:])

    def restore(self, snapshot: bytes) -> None:
        if len(snapshot) != self.size:
            raise FlashError("snapshot size does not match")
        self.data[:] = snapshot


class BlockDevice(core.Partition):
    """A region of a FlashDevice (``block_count`` erase blocks from
    ``start_block``) as a MicroPython (extended) block device, counted under
    ``name``. ``writeblocks(n, buf, offset)`` only programs (the caller erases
    with ``ioctl(6, n)``), as littlefs and the event log expect;
    ``writeblocks(n, buf)`` without an offset is the simple protocol and erases
    the blocks first, as esp32.Partition does."""

    def __init__(
        self, flash: FlashDevice, start_block: int, block_count: int, name: str | None = None
    ) -> None:
        if start_block < 0 or block_count <= 0:
            raise FlashError("bad region")
        es = flash.erase_size
        super().__init__(flash, start_block * es, block_count * es,
                         name or "blocks %d+%d" % (start_block, block_count))
        self.start_block = start_block

    @classmethod
    def region(cls, flash: FlashDevice, where: tuple[int, int], name: str) -> BlockDevice:
        """A board file's region (FS_REGION, LOG_REGION: offset and size in bytes)."""
        offset, size = where
        es = flash.erase_size
        return cls(flash, offset // es, size // es, name=name)

    @property
    def counters(self) -> Counters:
        assert isinstance(self.flash, FlashDevice) and self.name is not None
        return self.flash.regions.setdefault(self.name, Counters())
