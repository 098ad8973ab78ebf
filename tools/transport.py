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

FrameLink and the errors are tools/transport_link.py; each kind of link has
its own module (transport_serial.py, transport_socket.py, transport_ble.py).
"""

from __future__ import annotations

import time

from tools.transport_ble import (  # noqa: F401 (the GATT layout, imported from here)
    _MAC,
    BLE_RX_UUID,
    BLE_SERVICE_UUID,
    BLE_TX_UUID,
    _BleChannel,
)
from tools.transport_link import (
    DEFAULT_TIMEOUT,
    BackendMissing,
    BadURL,
    FrameLink,
    LinkClosed,
    LinkTimeout,
    PortBusy,
    PortNotFound,
    TransportError,
)
from tools.transport_serial import BAUDRATE, _open_serial  # noqa: F401
from tools.transport_socket import _HOSTPORT, _open_socket


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
