"""The simulated lock's two ports, for asyncio.

- `PtyEndpoint`: the USB serial port, a pseudo-terminal. The host opens the
  slave device (`slave_path`, e.g. /dev/pts/7) with pyserial exactly like a
  board's /dev/ttyACM0. Both ends are put in raw mode, so every byte (0x00,
  0x03, 0x0a, 0x0d included) crosses unchanged, with no echo. Like a USB CDC
  port with no host attached, bytes the lock writes while nobody has the port
  open are dropped. Optionally a symlink (`link_path`) points at the slave.

- `BleServer`: a BLE peripheral stood in for by a TCP server on a loopback
  address, with the shape of a real one. It serves one connection at a time
  and does not advertise while connected, so a central that tries then finds
  nobody to connect to: its TCP connection is closed at once (refused), with
  nothing queued behind the current one; the central tries again, as a phone
  does. Once the lock is free it advertises; the centrals that answer within
  one advertising event (`race_s`) race for it and one of them, chosen at
  random, gets the connection: the radio prefers nobody. A connection's peer
  address (the BLE device address) is its TCP source address: test peers bind
  to distinct 127.0.0.x addresses to be distinct devices. Each chunk the lock
  receives is at most `chunk` bytes (a GATT write of ATT_MTU - 3 bytes).
"""

from __future__ import annotations

import asyncio
import collections
import errno
import ipaddress
import os
import random
import termios
import tty

from firmware.hal import Link

NO_HOST_POLL_S = 0.05  # how often the pty is checked for a host while none has it open
SEND_TIMEOUT_S = 1.0  # a host that does not read: the rest of a write is dropped


class EndpointError(Exception):
    """A port of the simulator could not be set up (one-line message)."""


def _make_raw(fd: int) -> None:
    tty.setraw(fd, termios.TCSANOW)
    attrs = termios.tcgetattr(fd)
    attrs[3] &= ~(termios.ECHO | termios.ECHONL | termios.ICANON | termios.ISIG | termios.IEXTEN)
    attrs[1] &= ~termios.OPOST
    attrs[0] &= ~(termios.ICRNL | termios.INLCR | termios.IGNCR | termios.IXON | termios.IXOFF)
    termios.tcsetattr(fd, termios.TCSANOW, attrs)


def _replace_symlink(link_path: str, target: str) -> None:
    if os.path.lexists(link_path) and not os.path.islink(link_path):
        raise EndpointError(f"{link_path} exists and is not a symlink: not replacing it")
    tmp = f"{link_path}.{os.getpid()}.tmp"
    if os.path.lexists(tmp):
        os.unlink(tmp)
    os.symlink(target, tmp)
    os.replace(tmp, link_path)  # atomic: a stale link is replaced in one step


class PtyEndpoint:
    """The serial port: a raw pseudo-terminal that lives as long as the board."""

    def __init__(self, link_path: str | None = None) -> None:
        self.link_path = link_path
        self.master: int | None = None
        self.slave_path: str | None = None

    def open(self) -> str:
        master, slave = os.openpty()
        try:
            _make_raw(master)
            _make_raw(slave)
            self.slave_path = os.ttyname(slave)
        finally:
            # Not holding the slave open: when the host closes the port the
            # master reads EIO, so "no host" is visible and nothing piles up.
            os.close(slave)
        os.set_blocking(master, False)
        self.master = master
        if self.link_path:
            try:
                _replace_symlink(self.link_path, self.slave_path)
            except OSError as e:
                self.close()
                raise EndpointError(f"cannot create serial link {self.link_path}: "
                                    f"{e.strerror}") from None
        return self.slave_path

    def link(self) -> PtyLink:
        if self.master is None:
            raise EndpointError("serial port is not open")
        return PtyLink(self.master)

    def close(self) -> None:
        if self.link_path and self.slave_path:
            try:
                if os.readlink(self.link_path) == self.slave_path:
                    os.unlink(self.link_path)
            except OSError:
                pass
        if self.master is not None:
            os.close(self.master)
            self.master = None


class PtyLink(Link):
    """The lock's side of the serial port (firmware.hal.Link).

    recv() waits for bytes; it returns b"" once when a host that had the port
    open closes it (the session ends), then waits for the next host.
    send() never blocks for long: with no host, or a host that does not read,
    bytes are dropped as a USB CDC port drops them.
    """

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.host_present = False
        self.closed = False

    async def _wait(self, add, remove) -> None:
        loop = asyncio.get_running_loop()
        fut = loop.create_future()

        def ready() -> None:
            if not fut.done():
                fut.set_result(None)
        add(self.fd, ready)
        try:
            await fut
        finally:
            remove(self.fd)

    async def recv(self) -> bytes:
        loop = asyncio.get_running_loop()
        while not self.closed:
            try:
                data = os.read(self.fd, 4096)
            except BlockingIOError:
                self.host_present = True
                await self._wait(loop.add_reader, loop.remove_reader)
                continue
            except OSError as e:
                if e.errno != errno.EIO:
                    raise
                if self.host_present:  # the host closed the port
                    self.host_present = False
                    return b""
                await asyncio.sleep(NO_HOST_POLL_S)
                continue
            if data:
                self.host_present = True
                return data
        return b""

    async def send(self, data: bytes) -> None:
        if self.closed:
            return
        loop = asyncio.get_running_loop()
        view = memoryview(bytes(data))
        deadline = loop.time() + SEND_TIMEOUT_S
        while view:
            try:
                n = os.write(self.fd, view)
                view = view[n:]
            except BlockingIOError:
                left = deadline - loop.time()
                if left <= 0:
                    return  # the host does not read: drop the rest
                try:
                    await asyncio.wait_for(self._wait(loop.add_writer, loop.remove_writer), left)
                except asyncio.TimeoutError:
                    return
            except OSError as e:
                if e.errno == errno.EIO:
                    return  # no host has the port open: dropped
                raise

    def close(self) -> None:
        # The port itself belongs to the board; the firmware only lets go of it.
        self.closed = True


# --- BLE over TCP -------------------------------------------------------------
def parse_ble_address(text: str) -> tuple[str, int]:
    """'127.0.0.1:PORT', '[::1]:PORT' or 'localhost:PORT' -> (host, port).

    Only loopback addresses: the simulated radio is not for the network.
    Raises EndpointError with a one-line message.
    """
    host, sep, port_s = text.rpartition(":")
    if not sep or not host:
        raise EndpointError(f"--ble needs HOST:PORT, got {text!r}")
    host = host.strip("[]")
    try:
        port = int(port_s)
    except ValueError:
        raise EndpointError(f"--ble port must be a number, got {port_s!r}") from None
    if not 0 <= port <= 65535:
        raise EndpointError(f"--ble port must be 0..65535, got {port}")
    if host == "localhost":
        host = "127.0.0.1"
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise EndpointError(f"--ble host must be a loopback address (127.0.0.1 or ::1), "
                            f"got {host!r}")
    return host, port


class BleServer:
    """The BLE peripheral as a TCP server on a loopback address."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, chunk: int = 244,
                 max_waiting: int = 8, race_s: float = 0.02) -> None:
        self.host = host
        self.port = port
        self.chunk = chunk
        self.max_waiting = max_waiting  # centrals answering one advertising event
        self.race_s = race_s
        self._race: asyncio.TimerHandle | None = None
        self._server: asyncio.base_events.Server | None = None
        self._waiting: collections.deque = collections.deque()
        self._changed = asyncio.Event()
        self.active: BleLink | None = None
        self.connections = 0  # handed to the lock
        self.refused = 0
        self.advertisement: tuple | None = None

    async def start(self) -> tuple[str, int]:
        try:
            self._server = await asyncio.start_server(self._on_client, self.host, self.port)
        except OSError as e:
            raise EndpointError(f"cannot listen on {self.host}:{self.port}: {e.strerror}") from None
        self.port = self._server.sockets[0].getsockname()[1]
        return self.host, self.port

    @property
    def address(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    # Plain callback (not a coroutine): no task is created per connection.
    def _on_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._prune()
        if self.active is not None or len(self._waiting) >= self.max_waiting:
            # Connected, the lock does not advertise: nobody to connect to.
            self.refused += 1
            writer.close()
            return
        self._waiting.append((reader, writer))
        if self._race is None:
            # The first answer to this advertising event: the others that
            # answer within it race with it.
            self._race = asyncio.get_running_loop().call_later(self.race_s, self._decide)

    def _decide(self) -> None:
        self._race = None
        self._changed.set()

    def _prune(self) -> None:
        """Forget waiting clients that already left."""
        alive: collections.deque = collections.deque()
        for reader, writer in self._waiting:
            if reader.at_eof() or writer.is_closing():
                writer.close()
            else:
                alive.append((reader, writer))
        self._waiting = alive

    async def accept(self) -> BleLink:
        """The next connection: one of the centrals that answered the
        advertising event, at random; the others are refused (they retry)."""
        while True:
            self._prune()
            if self.active is None and self._waiting and self._race is None:
                pick = random.randrange(len(self._waiting))
                self._waiting.rotate(-pick)
                reader, writer = self._waiting.popleft()
                for _, other in self._waiting:
                    self.refused += 1
                    other.close()
                self._waiting.clear()
                self.active = BleLink(self, reader, writer)
                self.connections += 1
                return self.active
            self._changed.clear()
            await self._changed.wait()

    def _release(self, link: BleLink) -> None:
        if self.active is link:
            self.active = None
            self._changed.set()

    def drop_active(self) -> None:
        """The board reset: the connection is lost."""
        if self.active is not None:
            self.active.close()

    def advertise(self, lock_id, status) -> None:
        self.advertisement = (lock_id, status)

    async def close(self) -> None:
        self.drop_active()
        for _, writer in self._waiting:
            writer.close()
        self._waiting.clear()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None


class BleLink(Link):
    """One BLE connection (firmware.hal.Link). recv() gives b"" once the
    central has gone; send() to a central that has gone raises
    ConnectionResetError (an OSError), as a notify on a dropped connection fails."""

    def __init__(self, server: BleServer, reader: asyncio.StreamReader,
                 writer: asyncio.StreamWriter) -> None:
        self.server = server
        self.reader = reader
        self.writer = writer
        self.closed = False
        self.peer_gone = False
        peer = writer.get_extra_info("peername")
        self.central = str(peer[0]) if peer else ""  # the central's device address

    async def recv(self) -> bytes:
        if self.closed or self.peer_gone:
            return b""
        try:
            data = await self.reader.read(self.server.chunk)
        except (ConnectionError, OSError):
            data = b""
        if not data:
            self.peer_gone = True
        return data

    async def send(self, data: bytes) -> None:
        if self.closed or self.peer_gone or self.writer.is_closing():
            raise ConnectionResetError("BLE central disconnected")
        self.writer.write(bytes(data))
        try:
            # A central that does not take its notifications is dropped, as a
            # stack drops a link that stops acknowledging: it must not stall
            # the lock's one connection.
            await asyncio.wait_for(self.writer.drain(), SEND_TIMEOUT_S)
        except (ConnectionError, OSError, asyncio.TimeoutError):
            self.peer_gone = True
            raise ConnectionResetError("BLE central disconnected") from None

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.writer.close()
        self.server._release(self)
