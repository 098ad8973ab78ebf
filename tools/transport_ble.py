"""Real BLE through bleak, to the lock's GATT service (a link of
tools/transport.py)."""

from __future__ import annotations

import asyncio
import re
import threading
from collections import deque
from typing import Any

from protocol import ble
from tools.transport_link import (
    DEFAULT_TIMEOUT,
    BackendMissing,
    LinkClosed,
    PortNotFound,
    _one_line,
)

# BLE GATT layout: the lock's own service (docs/PROTOCOL.md section 3).
BLE_SERVICE_UUID = ble.SERVICE_UUID
BLE_RX_UUID = ble.RX_UUID  # central writes frames here
BLE_TX_UUID = ble.TX_UUID  # the lock notifies frames here


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
