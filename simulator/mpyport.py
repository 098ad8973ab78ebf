"""The board's side of the HAL boundary to a MicroPython child (the other side
is simulator/mpy/proxy.py, inside the child).

One loopback TCP port for the child only; each connection starts with
"<kind> <token>", the token new at every boot, so a connection of an old boot
is refused:
  control  the child's HAL calls, one line each way: "NAME [ARGS...]" (JSON)
           answered by a JSON value, or "?REASON". Names in
           firmware.hal.BOARD_CALLS go to this boot's SimHAL (simulator/hal.py:
           the same mapping onto the hardware models as under CPython); names in
           proxy.PORT_CALLS go to the runner's `port_NAME`. Directive lines
           ("!cut ...", "!timings ...", "!heap", "!stop") go before an answer.
  events   hardware -> firmware: one line per event ("door 0", "button 1"),
           and "wake" when directives wait for a firmware that makes no call.
  serial   bytes joined to the pty by the runner (one stream per host session);
  ble      one stream per BLE central, after a 0x01 byte, a length byte and the
           central's address, joined to the BLE server's link here.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
from typing import Any, Awaitable, Callable

from firmware import hal as hal_mod
from simulator.endpoints import BleServer
from simulator.hal import BoardReset, SimHAL
from simulator.mpy.portcalls import PORT_CALLS

BLE_CONNECTED = b"\x01"
SerialServer = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


def dispatch(hal: SimHAL, port: Any, line: str) -> str:
    """One call of the child's HAL: the answer line (without its newline).
    Raises BoardReset when this boot's HAL is dead (the connection ends)."""
    name, _, arg = line.partition(" ")
    try:
        args = json.loads(arg) if arg else []
        if not isinstance(args, list):
            raise ValueError("arguments must be a JSON list")
        if name in hal_mod.BOARD_CALLS:
            result = getattr(hal, name)(*args)
        elif name in PORT_CALLS:
            result = getattr(port, "port_" + name)(*args)
        else:
            return f"?unknown call {name!r}"
    except (TypeError, ValueError) as e:
        return "?" + str(e).replace("\n", " ")
    return json.dumps(result)


class ChildPort:
    """The loopback server of one MicroPython board (see the module doc).

    `port` is the runner: it answers the PORT_CALLS (`port_boot`, ...) and
    serves the serial stream (`serve_serial`)."""

    def __init__(self, port: Any, serve_serial: SerialServer, ble: BleServer | None) -> None:
        self.port = port
        self.serve_serial = serve_serial
        self.ble = ble
        self.hal: SimHAL | None = None  # this boot's
        self.token = ""
        self.number = 0  # the TCP port
        self.directives: list[str] = []
        self.stop_sent = False
        self.control_conns = 0  # firmware HALs talking to this board now
        self._server: asyncio.base_events.Server | None = None
        self._conns: set[asyncio.Task] = set()
        self._events: asyncio.StreamWriter | None = None
        self._pending_events: list[str] = []

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._on_conn, "127.0.0.1", 0)
        self.number = self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            for t in list(self._conns):
                t.cancel()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2.0)
            self._server = None

    def new_boot(self, hal: SimHAL) -> str:
        """A new boot: its HAL and token (connections of older boots are refused)."""
        self.hal = hal
        self.token = secrets.token_hex(8)
        self.directives.clear()
        self._pending_events.clear()
        self._events = None
        return self.token

    def end_boot(self) -> None:
        if self.hal is not None:
            self.hal.kill()
        self.token = ""
        if self._events is not None:
            self._events.close()
            self._events = None

    # --- hardware -> firmware --------------------------------------------------------
    def direct(self, directive: str) -> None:
        """A directive for the firmware: at its next call, which a "wake"
        event asks for at once."""
        if directive not in self.directives or directive.startswith("cut "):
            self.directives.append(directive)
        self.event("wake")

    def event(self, line: str) -> None:
        """An event for the firmware (kept until it opens its event stream)."""
        w = self._events
        if w is not None and not w.is_closing():
            w.write(line.encode() + b"\n")
        elif len(self._pending_events) < 256:
            self._pending_events.append(line)

    # --- the connections ---------------------------------------------------------------
    def _on_conn(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.ensure_future(self._conn(reader, writer))
        self._conns.add(task)
        task.add_done_callback(self._conns.discard)

    async def _conn(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            try:
                first = await asyncio.wait_for(reader.readline(), 5.0)
            except (asyncio.TimeoutError, ConnectionError, ValueError):
                return
            kind, _, token = first.decode("ascii", "replace").strip().partition(" ")
            if not self.token or not secrets.compare_digest(token, self.token):
                return  # not this boot's child
            if kind == "control":
                await self._serve_control(reader, writer)
            elif kind == "events":
                await self._serve_events(reader, writer)
            elif kind == "serial":
                await self.serve_serial(reader, writer)
            elif kind == "ble":
                await self._serve_ble(reader, writer)
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()

    async def _serve_control(self, reader: asyncio.StreamReader,
                             writer: asyncio.StreamWriter) -> None:
        token, hal = self.token, self.hal
        assert hal is not None
        writer.write(b"ok\n")
        await writer.drain()
        self.control_conns += 1
        firmware = False  # the firmware's HAL (it says "boot"): directives go to it only
        try:
            while True:
                line = await reader.readline()
                if not line or token != self.token:
                    return
                text = line.decode("utf-8", "replace").strip()
                try:
                    answer = dispatch(hal, self.port, text)
                except BoardReset:
                    return
                firmware = firmware or text.startswith("boot ")
                out = ""
                if firmware:
                    self.port.before_answer()
                    out = "".join("!" + d + "\n" for d in self.directives)
                    self.stop_sent = self.stop_sent or "stop" in self.directives
                    self.directives.clear()
                writer.write((out + answer + "\n").encode())
                await writer.drain()
        finally:
            self.control_conns -= 1

    async def _serve_events(self, reader: asyncio.StreamReader,
                            writer: asyncio.StreamWriter) -> None:
        self._events = writer
        for line in self._pending_events:
            writer.write(line.encode() + b"\n")
        self._pending_events.clear()
        await reader.read()  # until the child goes
        if self._events is writer:
            self._events = None

    async def _serve_ble(self, reader: asyncio.StreamReader,
                         writer: asyncio.StreamWriter) -> None:
        ble = self.ble
        if ble is None:
            return
        accept = asyncio.ensure_future(ble.accept())
        first = asyncio.ensure_future(reader.read(4096))  # the child leaving, or its bytes
        try:
            await asyncio.wait({accept, first}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            if not accept.done():
                accept.cancel()
            with contextlib.suppress(BaseException):
                await accept
        if accept.cancelled() or accept.exception() is not None:
            first.cancel()
            return
        link = accept.result()
        if first.done():  # the child went away while a central arrived
            link.close()
            return
        # The central's device address follows, length-prefixed: the lock
        # holds off an address it has just dropped (firmware/app.py).
        peer = link.central.encode()[:255]
        writer.write(BLE_CONNECTED + bytes((len(peer),)) + peer)

        async def central_to_lock() -> None:
            while True:
                data = await link.recv()
                if not data:
                    return
                writer.write(data)
                await writer.drain()

        async def lock_to_central() -> None:
            data = await first
            while data:
                await link.send(data)
                data = await reader.read(4096)

        pumps = [asyncio.ensure_future(central_to_lock()), asyncio.ensure_future(lock_to_central())]
        try:
            await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for p in pumps:
                p.cancel()
            for p in pumps:
                with contextlib.suppress(BaseException):
                    await p
            link.close()
