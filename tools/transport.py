"""Host-side links to a lock: frames over a serial port, the simulator's BLE
socket, real BLE, or a loopback for tests.

    with link_for_url("/dev/ttyACM0") as link:       # or serial:///dev/ttyACM0
        link.send(payload)                            # one frame (protocol.frames)
        reply = link.recv(5.0)                        # the next frame's payload

URL forms:
  /dev/ttyACM0, COM3, serial:///dev/ttyACM0   a serial port (pyserial, exclusive)
  socket://127.0.0.1:PORT, tcp://HOST:PORT,
  127.0.0.1:PORT, [::1]:PORT                  the simulator's BLE socket
  socket://127.0.0.1:PORT?from=127.0.0.9      ...from that source address: the simulated
                                              central's device address (one per phone)
  ble://AA:BB:CC:DD:EE:FF                     a real lock over BLE (bleak)
  loop://                                     a loopback: what is sent comes back

`send()` takes a payload and frames it; `raw_write()` writes bytes as they are
(for tests of the lock's frame decoder). `recv()` returns one decoded payload;
bytes that do not form a valid frame are skipped and counted in
`frame_errors`. Every error is a `TransportError` with a one-line message.
"""

from __future__ import annotations

import asyncio
import errno
import re
import socket
import threading
import time
from collections import deque
from typing import Any, Protocol

from protocol import ble, frames

DEFAULT_TIMEOUT = 5.0
BAUDRATE = 115200  # USB CDC ignores it; a UART bridge needs it
_POLL_S = 0.05

# BLE GATT layout: the lock's own service (docs/PROTOCOL.md section 3).
BLE_SERVICE_UUID = ble.SERVICE_UUID
BLE_RX_UUID = ble.RX_UUID  # central writes frames here
BLE_TX_UUID = ble.TX_UUID  # the lock notifies frames here


class TransportError(Exception):
    """Any failure of a link. Messages are one line and carry no payload bytes."""


class BadURL(TransportError):
    pass


class PortNotFound(TransportError):
    pass


class PortBusy(TransportError):
    pass


class LinkTimeout(TransportError):
    pass


class LinkClosed(TransportError):
    pass


class BackendMissing(TransportError):
    pass


class _Channel(Protocol):
    """A byte pipe. read() returns b"" on timeout and raises LinkClosed at EOF."""

    def write(self, data: bytes) -> None: ...

    def read(self, timeout: float | None) -> bytes: ...

    def close(self) -> None: ...


_DEFAULT: Any = object()


class FrameLink:
    """Frames over a byte channel (see the module doc)."""

    def __init__(self, channel: _Channel, url: str, timeout: float | None = DEFAULT_TIMEOUT
                 ) -> None:
        self._ch = channel
        self.url = url
        self.timeout = timeout
        self._decoder = frames.Decoder()
        self._ready: deque[bytes] = deque()
        self.closed = False

    @property
    def frame_errors(self) -> int:
        return self._decoder.errors

    def send(self, payload: bytes) -> None:
        """Send one payload as one frame."""
        try:
            frame = frames.encode(payload)
        except frames.FrameError as e:
            raise TransportError(f"cannot frame the payload: {e}") from None
        self.raw_write(frame)

    def raw_write(self, data: bytes) -> None:
        """Write bytes unframed (tests of the lock's decoder)."""
        if self.closed:
            raise LinkClosed(f"{self.url}: link is closed")
        self._ch.write(bytes(data))

    def recv(self, timeout: float | None = _DEFAULT) -> bytes:
        """The next frame's payload. `timeout` in seconds (None: wait forever;
        left out: the link's default). Raises LinkTimeout or LinkClosed."""
        if timeout is _DEFAULT:
            timeout = self.timeout
        if self.closed:
            raise LinkClosed(f"{self.url}: link is closed")
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self._ready:
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                raise LinkTimeout(f"{self.url}: no frame within {timeout:g} s")
            data = self._ch.read(left)
            if data:
                self._ready.extend(self._decoder.feed(data))
        return self._ready.popleft()

    def wait_ready(self, timeout: float) -> None:
        """Block until a frame has arrived (left for recv()). Raises
        LinkTimeout, or LinkClosed if the peer closed first."""
        deadline = time.monotonic() + timeout
        while not self._ready:
            left = deadline - time.monotonic()
            if left <= 0:
                raise LinkTimeout(f"{self.url}: no frame within {timeout:g} s")
            data = self._ch.read(left)
            if data:
                self._ready.extend(self._decoder.feed(data))

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._ch.close()

    def __enter__(self) -> FrameLink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<FrameLink {self.url}{' closed' if self.closed else ''}>"


# --- serial (pyserial) ------------------------------------------------------------
class _SerialChannel:
    def __init__(self, port: Any, name: str) -> None:
        self.port = port
        self.name = name

    def write(self, data: bytes) -> None:
        import serial

        try:
            self.port.write(data)
            self.port.flush()
        except (serial.SerialException, OSError) as e:
            raise LinkClosed(f"{self.name}: write failed ({_one_line(e)})") from None

    def read(self, timeout: float | None) -> bytes:
        import serial

        # The port's own timeout stays _POLL_S (setting it re-configures the
        # port): a read returns within that, FrameLink.recv keeps the deadline.
        try:
            n = self.port.in_waiting
            return self.port.read(n if n > 0 else 1)
        except (serial.SerialException, OSError) as e:
            raise LinkClosed(f"{self.name}: port went away ({_one_line(e)})") from None

    def close(self) -> None:
        try:
            self.port.close()
        except Exception:  # noqa: BLE001 - closing a vanished port
            pass


def _one_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return text[0] if text else type(e).__name__


def _open_serial(url: str, name: str, timeout: float | None) -> FrameLink:
    try:
        import serial
    except ImportError:
        raise BackendMissing("pyserial is not installed (pip install pyserial)") from None
    try:
        if url == "loop://":
            port = serial.serial_for_url(url, timeout=_POLL_S)
        else:
            port = serial.serial_for_url(url, baudrate=BAUDRATE, timeout=_POLL_S,
                                         exclusive=True)
    except serial.SerialException as e:
        code = e.errno
        if code is None and e.args and isinstance(e.args[0], int):
            code = e.args[0]
        if code in (errno.ENOENT, errno.ENODEV, errno.ENXIO):
            raise PortNotFound(f"{name}: no such serial port") from None
        if code in (errno.EAGAIN, errno.EWOULDBLOCK, errno.EBUSY):
            raise PortBusy(f"{name}: serial port is in use by another program") from None
        if code == errno.EACCES:
            raise TransportError(f"{name}: permission denied (on Linux, join the "
                                 "'dialout' group)") from None
        raise TransportError(f"{name}: cannot open serial port ({_one_line(e)})") from None
    except ValueError as e:
        raise BadURL(f"{name}: {_one_line(e)}") from None
    try:
        port.reset_input_buffer()  # bytes from an earlier session are not ours
    except Exception:  # noqa: BLE001 - not every backend has an input buffer
        pass
    return FrameLink(_SerialChannel(port, name), name, timeout)


# --- TCP (the simulator's BLE socket) ------------------------------------------
class _SocketChannel:
    def __init__(self, sock: socket.socket, name: str) -> None:
        self.sock = sock
        self.name = name

    def write(self, data: bytes) -> None:
        try:
            self.sock.settimeout(DEFAULT_TIMEOUT)
            self.sock.sendall(data)
        except OSError as e:
            raise LinkClosed(f"{self.name}: connection lost ({_one_line(e)})") from None

    def read(self, timeout: float | None) -> bytes:
        try:
            self.sock.settimeout(timeout)
            data = self.sock.recv(4096)
        except socket.timeout:
            return b""
        except OSError as e:
            raise LinkClosed(f"{self.name}: connection lost ({_one_line(e)})") from None
        if not data:
            raise LinkClosed(f"{self.name}: the lock closed the connection")
        return data

    def close(self) -> None:
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()


_HOSTPORT = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.\-]+):(\d{1,5})$")


def _parse_hostport(text: str, url: str) -> tuple[str, int]:
    m = _HOSTPORT.match(text)
    if not m:
        raise BadURL(f"{url}: expected HOST:PORT")
    host, port = m.group(1).strip("[]"), int(m.group(2))
    if not 0 < port < 65536:
        raise BadURL(f"{url}: port out of range")
    return host, port


def _open_socket(url: str, hostport: str, timeout: float | None) -> FrameLink:
    hostport, _, query = hostport.partition("?")
    source = None
    if query:
        key, _, value = query.partition("=")
        if key != "from" or not re.match(r"^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$", value):
            raise BadURL(f"{url}: the only option is ?from=127.x.y.z (a loopback address)")
        source = (value, 0)
    host, port = _parse_hostport(hostport, url)
    try:
        sock = socket.create_connection((host, port), timeout=timeout or DEFAULT_TIMEOUT,
                                        source_address=source)
    except ConnectionRefusedError:
        raise PortNotFound(f"{url}: nothing listens there (is the simulator running?)") from None
    except socket.timeout:
        raise LinkTimeout(f"{url}: no answer to the connection") from None
    except OSError as e:
        raise TransportError(f"{url}: cannot connect ({_one_line(e)})") from None
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return FrameLink(_SocketChannel(sock, url), url, timeout)


# --- real BLE (bleak) ----------------------------------------------------------
class _BleChannel:
    """BLE through bleak, on an asyncio loop in a background thread.

    NOT TESTED HERE: this machine has no Bluetooth adapter and bleak is not
    installed; it is written against bleak's documented API (BleakClient,
    write_gatt_char, start_notify, mtu_size) and must be checked on hardware.
    Frames go out split into writes of at most ATT_MTU - 3 bytes; notifications
    are concatenated and decoded like any byte stream.
    """

    def __init__(self, address: str, name: str, timeout: float | None) -> None:
        try:
            import bleak
        except ImportError:
            raise BackendMissing("ble:// needs the 'bleak' package, which is not "
                                 "installed (pip install bleak)") from None
        self.name = name
        self._rx: deque[bytes] = deque()
        self._cond = threading.Condition()
        self._gone = False
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True,
                                        name=f"ble {address}")
        self._thread.start()
        self._client = bleak.BleakClient(address, disconnected_callback=self._on_disconnect)
        try:
            self._call(self._connect(), timeout or 20.0)
        except Exception as e:  # noqa: BLE001 - bleak raises many kinds
            self.close()
            raise PortNotFound(f"{name}: cannot connect ({_one_line(e)})") from None

    async def _connect(self) -> None:
        await self._client.connect()
        await self._client.start_notify(BLE_TX_UUID, self._on_notify)

    def _call(self, coro: Any, timeout: float | None) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    def _on_notify(self, _char: Any, data: bytearray) -> None:
        with self._cond:
            self._rx.append(bytes(data))
            self._cond.notify_all()

    def _on_disconnect(self, _client: Any) -> None:
        with self._cond:
            self._gone = True
            self._cond.notify_all()

    def write(self, data: bytes) -> None:
        if self._gone:
            raise LinkClosed(f"{self.name}: the lock disconnected")
        size = max(20, getattr(self._client, "mtu_size", 23) - 3)
        try:
            for i in range(0, len(data), size):
                self._call(self._client.write_gatt_char(BLE_RX_UUID, data[i:i + size],
                                                        response=True), DEFAULT_TIMEOUT)
        except Exception as e:  # noqa: BLE001
            raise LinkClosed(f"{self.name}: write failed ({_one_line(e)})") from None

    def read(self, timeout: float | None) -> bytes:
        with self._cond:
            if not self._rx and not self._gone:
                self._cond.wait(timeout)
            if self._rx:
                return b"".join(self._rx.popleft() for _ in range(len(self._rx)))
            if self._gone:
                raise LinkClosed(f"{self.name}: the lock disconnected")
            return b""

    def close(self) -> None:
        try:
            if self._client.is_connected:
                self._call(self._client.disconnect(), 5.0)
        except Exception:  # noqa: BLE001 - best effort
            pass
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5.0)


_MAC = re.compile(r"^[0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2}){5}$|^[0-9A-Fa-f-]{36}$")


# --- entry point ---------------------------------------------------------------------
def link_for_url(url: str, timeout: float | None = DEFAULT_TIMEOUT) -> FrameLink:
    """Open a FrameLink for `url` (see the module doc for the forms)."""
    if not isinstance(url, str) or not url.strip():
        raise BadURL("empty link URL")
    url = url.strip()
    scheme, sep, rest = url.partition("://")
    if not sep:
        if _HOSTPORT.match(url) and not url.upper().startswith("COM"):
            return _open_socket(url, url, timeout)
        return _open_serial(url, url, timeout)  # a device path or port name
    scheme = scheme.lower()
    if scheme == "serial":
        if not rest:
            raise BadURL(f"{url}: no device path")
        return _open_serial(rest, url, timeout)
    if scheme in ("socket", "tcp"):
        return _open_socket(url, rest.rstrip("/"), timeout)
    if scheme == "loop":
        return _open_serial("loop://", url, timeout)
    if scheme == "ble":
        if not _MAC.match(rest):
            raise BadURL(f"{url}: expected ble://AA:BB:CC:DD:EE:FF")
        return FrameLink(_BleChannel(rest, url, timeout), url, timeout)
    raise BadURL(f"{url}: unknown scheme {scheme!r} (serial, socket, tcp, ble, loop)")


def connect_lock(url: str, timeout: float | None = DEFAULT_TIMEOUT, within: float = 30.0,
                 first_frame_s: float = 2.0) -> FrameLink:
    """A BLE link to a lock that has sent its first frame (its HELLO), trying
    again while the lock is busy: it serves one central at a time and, like a
    real peripheral, does not advertise meanwhile, so a connection then is
    refused (closed at once) and a phone simply tries again. Gives up after
    `within` seconds with the last error."""
    import random
    deadline = time.monotonic() + within
    while True:
        try:
            link = link_for_url(url, timeout)
        except (PortNotFound, PortBusy, BadURL, BackendMissing):
            raise
        except TransportError:
            if time.monotonic() > deadline:
                raise
            time.sleep(random.uniform(0.02, 0.1))
            continue
        try:
            link.wait_ready(first_frame_s)
            return link
        except (LinkClosed, LinkTimeout):
            link.close()
            if time.monotonic() > deadline:
                raise
            time.sleep(random.uniform(0.02, 0.1))


__all__ = [
    "TransportError", "BadURL", "PortNotFound", "PortBusy", "LinkTimeout", "LinkClosed",
    "BackendMissing", "FrameLink", "link_for_url", "connect_lock", "DEFAULT_TIMEOUT",
]
