"""Serial ports and loop:// through pyserial (a link of tools/transport.py)."""

from __future__ import annotations

import errno
from typing import Any

from tools.transport_link import (
    BackendMissing,
    BadURL,
    FrameLink,
    LinkClosed,
    PortBusy,
    PortNotFound,
    TransportError,
    _one_line,
)

BAUDRATE = 115200  # USB CDC ignores it; a UART bridge needs it
_POLL_S = 0.05


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
