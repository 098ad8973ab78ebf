"""A MicroPython board's USB serial port: the board's pty joined to the lock's
serial stream in the child (simulator/mpyport.py hands over one stream each
time the lock opens its port). What the host sends while the lock is not
reading is kept until it does; a host that closes the port ends the lock's
serial session.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any, Callable

from simulator.endpoints import PtyEndpoint

HOST_BUFFER_MAX = 64 * 1024  # host bytes kept while the lock is not reading


class SerialJoin:
    """The pty's side and the lock's side of one board's serial port."""

    def __init__(self) -> None:
        self.held = bytearray()  # from the host, for a lock not reading yet
        self.lock: asyncio.StreamWriter | None = None  # the lock's stream, this host session
        self._host: Any = None  # the pty's link
        self._task: asyncio.Task | None = None

    def start(self, pty: PtyEndpoint | None, from_host: Callable[[bytes], None],
              host_left: Callable[[], None]) -> None:
        """Host -> board, for the board's life: each chunk to `from_host`, a
        host closing the port to `host_left`."""
        self._task = asyncio.ensure_future(self._pump(pty, from_host, host_left))

    async def _pump(self, pty: PtyEndpoint | None, from_host: Callable[[bytes], None],
                    host_left: Callable[[], None]) -> None:
        if pty is None:
            return
        link = self._host = pty.link()
        while True:
            data = await link.recv()
            if not data:
                host_left()
                continue
            from_host(data)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(BaseException):
                await self._task
            self._task = None
        if self._host is not None:
            self._host.close()
            self._host = None

    # --- host -> lock ------------------------------------------------------------------
    def keep(self, data: bytes) -> None:
        if len(self.held) + len(data) <= HOST_BUFFER_MAX:
            self.held += data

    def from_host(self, data: bytes) -> None:
        if self.lock is not None and not self.lock.is_closing():
            self.lock.write(data)
        else:
            self.keep(data)  # the lock has not opened its port yet

    def end_session(self) -> None:
        """The lock's stream of this host session ends (the lock or the host went)."""
        if self.lock is not None:
            self.lock.close()
            self.lock = None

    def host_left(self) -> None:
        self.held.clear()
        self.end_session()

    # --- lock -> host ------------------------------------------------------------------
    async def to_host(self, data: bytes) -> None:
        if self._host is not None:
            await self._host.send(data)

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                    opened: Callable[[], None]) -> None:
        """The lock opened its serial port: `writer` is its stream from now on
        (`opened` is told first), the bytes kept go to it, its output to the host."""
        if self.lock is not None:
            self.lock.close()
        self.lock = writer
        opened()
        if self.held:
            writer.write(bytes(self.held))
            self.held.clear()
        try:
            while True:
                data = await reader.read(4096)
                if not data:
                    return
                await self.to_host(data)
        finally:
            if self.lock is writer:
                self.lock = None
