"""tools/transport.py: frame links over loop://, TCP sockets and serial ports,
and its errors (bad URLs, a missing port, a busy port, timeouts, closes).

ble:// (bleak) cannot be tested here: no Bluetooth adapter, bleak not
installed; only its "bleak is missing" error is checked.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import socket
import socketserver
import threading
import time
import tty
from collections.abc import Iterator

import pytest

from protocol import frames
from tools.transport import (
    BackendMissing,
    BadURL,
    FrameLink,
    LinkClosed,
    LinkTimeout,
    PortBusy,
    PortNotFound,
    TransportError,
    link_for_url,
)

PAYLOADS = [b"", b"\x00", b"\x00\x03\x0a\x0d", bytes(range(256)), bytes(1000),
            b"\xff" * frames.MAX_PAYLOAD]


def one_line(e: BaseException) -> bool:
    return "\n" not in str(e) and str(e) != ""


# --- loop:// ------------------------------------------------------------------------
@pytest.mark.realtime
def test_loop_roundtrip_and_timeout() -> None:
    with link_for_url("loop://", timeout=0.2) as link:
        assert isinstance(link, FrameLink)
        for p in PAYLOADS:
            link.send(p)
            assert link.recv(2) == p
        link.send(b"a")
        link.send(b"b")
        assert link.recv() == b"a" and link.recv() == b"b"
        t0 = time.monotonic()
        with pytest.raises(LinkTimeout) as exc:
            link.recv(0.1)
        assert 0.09 <= time.monotonic() - t0 < 1.0
        assert one_line(exc.value)
    with pytest.raises(LinkClosed):
        link.recv(0.1)
    with pytest.raises(LinkClosed):
        link.send(b"x")


def test_garbage_between_frames_is_skipped_and_counted() -> None:
    with link_for_url("loop://") as link:
        link.raw_write(b"\x05\x01\x02\x00")  # a frame with a bad CRC
        link.raw_write(frames.encode(b"good")[:3])  # a frame split across writes
        link.raw_write(frames.encode(b"good")[3:])
        assert link.recv(2) == b"good"
        assert link.frame_errors == 1
        with pytest.raises(TransportError):
            link.send(bytes(frames.MAX_PAYLOAD + 1))


# --- sockets ------------------------------------------------------------------------
class _Echo(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        while True:
            data = self.request.recv(4096)
            if not data or data == frames.encode(b"bye"):
                return
            self.request.sendall(data)


@pytest.fixture
def echo_server() -> Iterator[tuple[str, int]]:
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Echo)
    server.daemon_threads = True
    t = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    t.start()
    try:
        yield server.server_address[:2]
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("form", ["socket://{h}:{p}", "tcp://{h}:{p}", "{h}:{p}"])
def test_socket_forms_roundtrip(echo_server, form: str) -> None:
    host, port = echo_server
    with link_for_url(form.format(h=host, p=port), timeout=2) as link:
        for p in PAYLOADS:
            link.send(p)
            assert link.recv() == p


def test_socket_peer_close_gives_link_closed(echo_server) -> None:
    host, port = echo_server
    with link_for_url(f"socket://{host}:{port}", timeout=2) as link:
        link.send(b"bye")  # the echo server hangs up
        with pytest.raises(LinkClosed) as exc:
            link.recv(2)
        assert one_line(exc.value)


def test_nothing_listening_is_port_not_found() -> None:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    with pytest.raises(PortNotFound) as exc:
        link_for_url(f"socket://127.0.0.1:{port}")
    assert one_line(exc.value)


# --- URLs ---------------------------------------------------------------------------
@pytest.mark.parametrize("url", ["", "   ", "gopher://x", "socket://", "socket://host",
                                 "tcp://127.0.0.1:99999", "serial://", "ble://nonsense",
                                 "socket://127.0.0.1:0"])
def test_bad_urls(url: str) -> None:
    with pytest.raises(BadURL) as exc:
        link_for_url(url)
    assert one_line(exc.value)


def test_ble_without_bleak_says_so() -> None:
    if importlib.util.find_spec("bleak") is not None:
        pytest.skip("bleak is installed: a real adapter would be needed")
    with pytest.raises(BackendMissing, match="bleak"):
        link_for_url("ble://AA:BB:CC:DD:EE:FF")


def test_every_error_is_a_transport_error() -> None:
    for cls in (BadURL, PortNotFound, PortBusy, LinkTimeout, LinkClosed, BackendMissing):
        assert issubclass(cls, TransportError)


# --- serial ports -------------------------------------------------------------------
def test_missing_serial_port() -> None:
    for url in ("/dev/ttyNONEXISTENT9", "serial:///dev/ttyNONEXISTENT9"):
        with pytest.raises(PortNotFound) as exc:
            link_for_url(url)
        assert "ttyNONEXISTENT9" in str(exc.value) and one_line(exc.value)


@pytest.fixture
def pty_echo() -> Iterator[str]:
    """A pty whose master echoes everything back: a stand-in board."""
    master, slave = os.openpty()
    tty.setraw(master)
    tty.setraw(slave)
    path = os.ttyname(slave)
    os.close(slave)
    stop = threading.Event()

    def echo() -> None:
        import select
        while not stop.is_set():
            r, _, _ = select.select([master], [], [], 0.05)
            if r:
                try:
                    data = os.read(master, 4096)
                except OSError:
                    time.sleep(0.02)  # no host has the port open
                    continue
                os.write(master, data)

    t = threading.Thread(target=echo, daemon=True)
    t.start()
    try:
        yield path
    finally:
        stop.set()
        t.join(2)
        os.close(master)


def test_serial_roundtrip_over_a_pty(pty_echo: str) -> None:
    for url in (pty_echo, "serial://" + pty_echo):
        with link_for_url(url, timeout=2) as link:
            for p in PAYLOADS:
                link.send(p)
                assert link.recv() == p


def test_busy_serial_port(pty_echo: str) -> None:
    with link_for_url(pty_echo):
        with pytest.raises(PortBusy) as exc:
            link_for_url(pty_echo)
        assert one_line(exc.value) and "in use" in str(exc.value)
    link_for_url(pty_echo).close()  # free again once closed


# --- against the simulator's own ports ----------------------------------------------
def test_transport_against_simulated_board(tmp_path) -> None:
    """A stand-in firmware that echoes frames on the serial link and on BLE,
    run by SimBoard in a thread; the transport talks to its real endpoints."""
    from simulator.board import SimBoard

    async def echo_app(hal, stop_event) -> None:
        async def serve(link) -> None:
            dec = frames.Decoder()
            while True:
                data = await link.recv()
                if not data:
                    return
                for p in dec.feed(data):
                    await link.send(frames.encode(b"echo:" + p))

        async def serial_loop() -> None:
            link = await hal.serial_link()
            while True:
                await serve(link)

        async def ble_loop() -> None:
            while True:
                link = await hal.ble_accept()
                try:
                    await serve(link)
                finally:
                    link.close()

        tasks = [asyncio.create_task(serial_loop()), asyncio.create_task(ble_loop())]
        await stop_event.wait()
        for t in tasks:
            t.cancel()

    ready = threading.Event()
    box: dict = {}

    def runner() -> None:
        async def go() -> None:
            board = SimBoard(str(tmp_path / "s"), app=echo_app)
            await board.start()
            stop = asyncio.Event()
            box["board"], box["stop"], box["loop"] = board, stop, asyncio.get_running_loop()
            ready.set()
            try:
                await board.run(stop)
            finally:
                await board.close()
        asyncio.run(go())

    t = threading.Thread(target=runner, daemon=True)
    t.start()
    assert ready.wait(10)
    board = box["board"]
    try:
        for url in (board.serial_path, "socket://" + board.ble_address):
            with link_for_url(url, timeout=3) as link:
                for p in PAYLOADS[:-1]:
                    link.send(p)
                    assert link.recv() == b"echo:" + p
        with link_for_url(board.serial_path, timeout=3) as link:  # a second session
            link.send(b"again")
            assert link.recv() == b"echo:again"
    finally:
        box["loop"].call_soon_threadsafe(box["stop"].set)
        t.join(10)
    assert not t.is_alive()
