"""TCP links: the simulator's BLE socket, each central from its own loopback
address (a link of tools/transport.py)."""

from __future__ import annotations

import re
import socket

from tools.transport_link import (
    DEFAULT_TIMEOUT,
    BadURL,
    FrameLink,
    LinkClosed,
    LinkTimeout,
    PortNotFound,
    TransportError,
    _one_line,
)


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
