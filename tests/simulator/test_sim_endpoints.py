"""The simulator's ports (simulator/endpoints.py) and `python -m simulator`.

- the serial pty: pyserial opens the slave; every byte value (0x00, 0x03,
  0x0a, 0x0d ...) crosses both ways unchanged; a host closing the port ends
  the session (b""), bytes written with no host are dropped; --serial-link;
- the BLE socket: one connection at a time, a second client waits and is
  served after the first; a disconnect gives b"";
- the command line: endpoints printed, loopback only, exit codes.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import serial

from simulator.endpoints import (
    BleServer,
    EndpointError,
    PtyEndpoint,
    parse_ble_address,
)

ROOT = Path(__file__).resolve().parents[2]
ALL_BYTES = bytes(range(256)) + b"\x00\x03\x0a\x0d\x0d\x0a\x03\x00\x1a\x04\x11\x13\x7f"


async def recv_exactly(link, n: int, timeout: float = 5.0) -> bytes:
    out = b""
    while len(out) < n:
        chunk = await asyncio.wait_for(link.recv(), timeout)
        assert chunk, "link closed early"
        out += chunk
    return out


# --- the serial pty ------------------------------------------------------------------
def test_pty_carries_every_byte_both_ways_unchanged() -> None:
    async def go() -> None:
        ep = PtyEndpoint()
        path = ep.open()
        link = ep.link()
        try:
            port = serial.Serial(path, exclusive=True, timeout=2)
            try:
                port.write(ALL_BYTES)
                port.flush()
                assert await recv_exactly(link, len(ALL_BYTES)) == ALL_BYTES
                await link.send(ALL_BYTES)
                got = await asyncio.to_thread(port.read, len(ALL_BYTES))
                assert got == ALL_BYTES  # no CRLF translation, no echo, no ^C signal
                assert port.in_waiting == 0
            finally:
                port.close()
            assert await asyncio.wait_for(link.recv(), 5) == b""  # the host went away
        finally:
            ep.close()

    asyncio.run(go())


def test_pty_drops_bytes_while_no_host_and_serves_the_next_host() -> None:
    async def go() -> None:
        ep = PtyEndpoint()
        path = ep.open()
        link = ep.link()
        try:
            await link.send(b"stale\x00")  # nobody has the port open: dropped
            pending = asyncio.ensure_future(link.recv())
            await asyncio.sleep(0.1)
            assert not pending.done()  # no host: recv waits
            port = serial.Serial(path, exclusive=True, timeout=0.3)
            try:
                port.write(b"\x00hello\x00")
                assert await asyncio.wait_for(pending, 5) == b"\x00hello\x00"
                assert port.read(16) == b""  # the stale bytes never arrive
                await link.send(b"fresh\x00")
                port.timeout = 2
                assert port.read(6) == b"fresh\x00"
            finally:
                port.close()
        finally:
            ep.close()

    asyncio.run(go())


def test_pty_is_raw_for_any_opener() -> None:
    import termios

    ep = PtyEndpoint()
    path = ep.open()
    try:
        fd = os.open(path, os.O_RDWR | os.O_NOCTTY)
        try:
            attrs = termios.tcgetattr(fd)
            assert not attrs[3] & (termios.ICANON | termios.ECHO | termios.ISIG)
            assert not attrs[1] & termios.OPOST
            assert not attrs[0] & (termios.ICRNL | termios.IXON)
        finally:
            os.close(fd)
    finally:
        ep.close()


def test_serial_link_symlink_replaces_a_stale_one(tmp_path: Path) -> None:
    link_path = tmp_path / "lock.tty"
    os.symlink("/dev/pts/nonexistent", link_path)  # stale, from a killed run
    ep = PtyEndpoint(str(link_path))
    path = ep.open()
    try:
        assert os.readlink(link_path) == path
        port = serial.Serial(str(link_path), exclusive=True, timeout=1)
        port.close()
    finally:
        ep.close()
    assert not os.path.lexists(link_path)  # removed on close
    regular = tmp_path / "file"
    regular.write_text("keep me")
    with pytest.raises(EndpointError, match="not a symlink"):
        PtyEndpoint(str(regular)).open()
    assert regular.read_text() == "keep me"


# --- the BLE socket ----------------------------------------------------------------
async def open_client(server: BleServer):
    return await asyncio.open_connection(server.host, server.port)


def test_ble_one_connection_at_a_time_others_refused_not_queued() -> None:
    """Connected, the lock does not advertise: a second central is refused at
    once (nothing queues behind the connection), and gets in once it is free."""
    async def go() -> None:
        server = BleServer(chunk=20)
        await server.start()
        try:
            r1, w1 = await open_client(server)
            link1 = await asyncio.wait_for(server.accept(), 5)
            r2, w2 = await open_client(server)
            assert await asyncio.wait_for(r2.read(), 5) == b""  # refused: closed at once
            assert server.refused == 1
            w1.write(ALL_BYTES)
            await w1.drain()
            data = await recv_exactly(link1, len(ALL_BYTES))
            assert data == ALL_BYTES
            await link1.send(b"\x00\x03\r\n")
            assert await asyncio.wait_for(r1.readexactly(4), 5) == b"\x00\x03\r\n"
            w1.close()  # the first central leaves
            while await asyncio.wait_for(link1.recv(), 5):
                pass  # b"" marks the disconnect
            with pytest.raises(ConnectionResetError):
                await link1.send(b"x")
            link1.close()
            r3, w3 = await open_client(server)  # tries again: now it is free
            link2 = await asyncio.wait_for(server.accept(), 5)
            w3.write(b"second\x00")
            await w3.drain()
            assert await recv_exactly(link2, 7) == b"second\x00"
            assert server.connections == 2
            link2.close()
            assert await asyncio.wait_for(r3.read(), 5) == b""  # the lock hung up
            w2.close()
            w3.close()
        finally:
            await server.close()

    asyncio.run(go())


def test_ble_chunks_and_a_fair_race_for_the_free_slot() -> None:
    async def go() -> None:
        server = BleServer(chunk=20, race_s=0.05)
        await server.start()
        try:
            winners: dict[str, int] = {}
            for _ in range(40):
                clients = []
                for host in ("127.0.0.2", "127.0.0.3"):
                    clients.append(await asyncio.open_connection(
                        server.host, server.port, local_addr=(host, 0)))
                link = await asyncio.wait_for(server.accept(), 5)
                winners[link.central] = winners.get(link.central, 0) + 1
                lost = [r for r, _ in clients if not r.at_eof()]
                link.close()
                for _, w in clients:
                    w.close()
                assert lost  # the other central was refused
            # Each address wins some races: the radio prefers nobody.
            assert set(winners) == {"127.0.0.2", "127.0.0.3"} and min(winners.values()) >= 5
            r1, w1 = await open_client(server)
            link = await asyncio.wait_for(server.accept(), 5)
            w1.write(bytes(100))
            await w1.drain()
            sizes = []
            while sum(sizes) < 100:
                sizes.append(len(await asyncio.wait_for(link.recv(), 5)))
            assert max(sizes) <= 20  # one GATT write at a time
            link.close()
            w1.close()
        finally:
            await server.close()

    asyncio.run(go())


def test_ble_skips_clients_that_left_while_waiting() -> None:
    async def go() -> None:
        server = BleServer()
        await server.start()
        try:
            _, w1 = await open_client(server)
            w1.close()
            await asyncio.sleep(0.05)
            r2, w2 = await open_client(server)
            link = await asyncio.wait_for(server.accept(), 5)
            await link.send(b"hi")
            assert await asyncio.wait_for(r2.readexactly(2), 5) == b"hi"
            link.close()
            w2.close()
        finally:
            await server.close()

    asyncio.run(go())


def test_parse_ble_address_accepts_only_loopback() -> None:
    assert parse_ble_address("127.0.0.1:0") == ("127.0.0.1", 0)
    assert parse_ble_address("127.0.0.5:4000") == ("127.0.0.5", 4000)
    assert parse_ble_address("[::1]:4000") == ("::1", 4000)
    assert parse_ble_address("localhost:9") == ("127.0.0.1", 9)
    for bad in ("0.0.0.0:1234", "192.168.1.2:80", "example.com:80", "127.0.0.1",
                "127.0.0.1:x", "127.0.0.1:70000", ":80"):
        with pytest.raises(EndpointError):
            parse_ble_address(bad)


# --- python -m simulator -------------------------------------------------------------
def run_cli(*args: str, timeout: float = 20) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "simulator", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout)


def test_cli_rejects_bad_arguments(tmp_path: Path) -> None:
    r = run_cli("--state", str(tmp_path), "--ble", "0.0.0.0:0")
    assert r.returncode == 2 and "loopback" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    for extra, why in ((["--heap", "65536"], "--heap needs --mpy"),
                       (["--mpy", "--heap", "12"], "heap size"),
                       (["--mpy", "--virtual-board"], "not allowed with")):
        r = run_cli("--state", str(tmp_path), *extra)
        assert r.returncode == 2 and why in r.stderr, r.stderr
    r = run_cli("--state", str(tmp_path), "--frobnicate")
    assert r.returncode == 2 and "usage:" in r.stderr
    r = run_cli()  # --state is required
    assert r.returncode == 2 and "usage:" in r.stderr
    assert not os.listdir(tmp_path)  # nothing was started


def test_cli_import_has_no_side_effects() -> None:
    r = subprocess.run([sys.executable, "-c", "import simulator.__main__ as m; print(m.main)"],
                       cwd=ROOT, capture_output=True, text=True, timeout=20)
    assert r.returncode == 0 and r.stdout.startswith("<function main")


def read_endpoints(proc: subprocess.Popen, timeout: float = 20) -> dict[str, str]:
    out: dict[str, str] = {}
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        line = proc.stdout.readline()
        if not line:
            raise AssertionError("simulator exited: " + proc.stderr.read())
        line = line.rstrip("\n")
        if line == "ready":
            return out
        key, _, value = line.partition(": ")
        out[key] = value
    raise AssertionError("no ready line")


def test_cli_runs_prints_endpoints_and_stops_cleanly(tmp_path: Path) -> None:
    state = tmp_path / "state"
    link_path = tmp_path / "lock.tty"
    proc = subprocess.Popen([sys.executable, "-m", "simulator", "--state", str(state),
                             "--serial-link", str(link_path), "--ble", "127.0.0.1:0",
                             "--auto-button"], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        eps = read_endpoints(proc)
        assert set(eps) == {"serial", "serial-link", "ble"}
        assert eps["serial"].startswith("/dev/")
        assert eps["serial-link"] == f"{link_path} -> {eps['serial']}"
        host, port = eps["ble"].rsplit(":", 1)
        assert host == "127.0.0.1" and int(port) > 0
        with socket.create_connection((host, int(port)), timeout=5) as s:
            s.settimeout(5)
            assert s.recv(1)  # the firmware greets a BLE central
        port_ = serial.Serial(str(link_path), exclusive=True, timeout=0.2)
        port_.close()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(15) == 0
        assert "projected battery life" in proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert (state / "flash.bin").stat().st_size == 4 * 1024 * 1024
    assert (state / "hardware.json").exists()
    assert not os.path.lexists(link_path)
