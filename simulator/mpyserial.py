"""The serial join of the MicroPython runner (simulator/mpyrunner.py): the
board's pty to the child's serial stream and back. Bytes the host sends
before the lock has opened its port are kept (up to HOST_BUFFER_MAX) and
handed over when it does; a host that closes the port ends the lock's serial
session. The virtual board (simulator/virtualboard.py) overrides the hooks
(`host_left`, `from_host`, `serial_opened`) to put its REPL on the same pty."""

from __future__ import annotations

import asyncio
from typing import Any

HOST_BUFFER_MAX = 64 * 1024  # host bytes kept while the lock is not reading


class SerialJoin:
    """A mixin of MpyRunner: `board` is the runner's board."""

    board: Any
    _serial_writer: asyncio.StreamWriter | None
    _host_link: Any
    _host_buf: bytearray

    async def _usb(self) -> None:
        """Host -> board, for the board's life. A host that closes the port
        ends the lock's serial session."""
        pty = self.board.pty
        if pty is None:
            return
        link = self._host_link = pty.link()
        while True:
            data = await link.recv()
            if not data:
                self.host_left()
                continue
            self.from_host(data)

    def host_left(self) -> None:
        self._host_buf.clear()
        if self._serial_writer is not None:
            self._serial_writer.close()
            self._serial_writer = None

    def from_host(self, data: bytes) -> None:
        if self._serial_writer is not None and not self._serial_writer.is_closing():
            self._serial_writer.write(data)
        elif len(self._host_buf) + len(data) <= HOST_BUFFER_MAX:
            self._host_buf += data  # the lock has not opened its port yet

    async def to_host(self, data: bytes) -> None:
        if self._host_link is not None:
            await self._host_link.send(data)

    async def serve_serial(self, reader: asyncio.StreamReader,
                           writer: asyncio.StreamWriter) -> None:
        if self._serial_writer is not None:
            self._serial_writer.close()
        self._serial_writer = writer
        self.serial_opened()
        if self._host_buf:
            writer.write(bytes(self._host_buf))
            self._host_buf.clear()
        try:
            while True:
                data = await reader.read(4096)
                if not data:
                    return
                await self.to_host(data)
        finally:
            if self._serial_writer is writer:
                self._serial_writer = None

    def serial_opened(self) -> None:
        pass
