# Fake aioble (micropython-lib's, not the PyPI package of that name): the
# peripheral and GATT-server part, over the fake `bluetooth`, with the
# behaviour the HAL depends on:
#   - advertise() returns the DeviceConnection of the central that connected,
#     and None (advertising stopped) if its task is cancelled, as aioble does;
#   - a writable characteristic made with capture=True queues every write as
#     (connection, value); written() takes them in order; the queue keeps the
#     last 10 (aioble's _WRITE_CAPTURE_QUEUE_LIMIT), `dropped` counts the rest;
#   - BufferedCharacteristic sets the value buffer (gatts_set_buffer);
#   - `with connection.timeout(None):` cancels the waiting task when the
#     central disconnects and raises DeviceDisconnectedError;
#   - DeviceConnection.mtu is None until an MTU exchange.
import asyncio

from .core import GattError, ble, config, ensure_active, log_error, register_irq_handler  # noqa: F401

_IRQ_CENTRAL_CONNECT = 1
_IRQ_CENTRAL_DISCONNECT = 2
_IRQ_GATTS_WRITE = 3
_IRQ_MTU_EXCHANGED = 21

_FLAG_READ = 0x0002
_FLAG_WRITE_NO_RESPONSE = 0x0004
_FLAG_WRITE = 0x0008
_FLAG_NOTIFY = 0x0010
_FLAG_INDICATE = 0x0020
_FLAG_WRITE_CAPTURE = 0x10000
_WRITE_CAPTURE_QUEUE_LIMIT = 10

_registered = {}  # value handle -> characteristic
_incoming = None
_connect_event = None


class DeviceDisconnectedError(Exception):
    pass


class Device:
    def __init__(self, addr_type, addr):
        self.addr_type = addr_type
        self.addr = addr


class _Timeout:
    def __init__(self, connection, timeout_ms):
        if timeout_ms is not None:
            raise NotImplementedError("fake aioble: only timeout(None)")
        self._connection = connection
        self._task = asyncio.current_task()

    def __enter__(self):
        self._connection._timeouts.append(self)

    def __exit__(self, exc_type, exc_val, exc_tb):
        self._connection._timeouts.remove(self)
        if (exc_type is not None and issubclass(exc_type, asyncio.CancelledError)
                and self._connection._conn_handle is None):
            uncancel = getattr(self._task, "uncancel", None)
            if uncancel is not None:  # CPython 3.11+: this cancel is handled here
                uncancel()
            raise DeviceDisconnectedError()
        return False


class DeviceConnection:
    _connected = {}

    def __init__(self, device):
        self.device = device
        self.mtu = None
        self._conn_handle = None
        self._timeouts = []
        self._gone = asyncio.Event()

    def is_connected(self):
        return self._conn_handle is not None

    def timeout(self, timeout_ms):
        return _Timeout(self, timeout_ms)

    async def disconnect(self, timeout_ms=2000):
        await self.disconnected(timeout_ms, disconnect=True)

    async def disconnected(self, timeout_ms=None, disconnect=False):
        if not self.is_connected():
            return
        if disconnect:
            ble.gap_disconnect(self._conn_handle)
        if timeout_ms:
            await asyncio.wait_for(self._gone.wait(), timeout_ms / 1000)
        else:
            await self._gone.wait()

    def _lost(self):
        self._conn_handle = None
        self._gone.set()
        for t in list(self._timeouts):
            t._task.cancel()


def _irq(event, data):
    global _incoming
    if event == _IRQ_CENTRAL_CONNECT:
        handle, addr_type, addr = data
        conn = DeviceConnection(Device(addr_type, bytes(addr)))
        conn._conn_handle = handle
        DeviceConnection._connected[handle] = conn
        _incoming = conn
        if _connect_event is not None:
            _connect_event.set()
    elif event == _IRQ_CENTRAL_DISCONNECT:
        conn = DeviceConnection._connected.pop(data[0], None)
        if conn is not None:
            conn._lost()
    elif event == _IRQ_GATTS_WRITE:
        handle, value_handle = data
        ch = _registered.get(value_handle)
        if ch is not None:
            ch._remote_write(DeviceConnection._connected.get(handle), ble.gatts_read(value_handle))
    elif event == _IRQ_MTU_EXCHANGED:
        conn = DeviceConnection._connected.get(data[0])
        if conn is not None:
            conn.mtu = data[1]
    return None


register_irq_handler(_irq)


async def advertise(interval_us, adv_data=None, resp_data=None, connectable=True,
                    limited_disc=False, br_edr=False, name=None, services=None, appearance=0,
                    manufacturer=None, timeout_ms=None):
    global _incoming, _connect_event
    ensure_active()
    if not adv_data and not resp_data:
        if services or appearance or manufacturer:
            raise NotImplementedError("fake aioble: give adv_data")
        adv_data = b"\x02\x01\x06"
        if name:
            adv_data += bytes((len(name) + 1, 0x09)) + name
    _connect_event = asyncio.Event()
    ble.gap_advertise(interval_us, adv_data=adv_data, resp_data=resp_data, connectable=connectable)
    try:
        if timeout_ms:
            await asyncio.wait_for(_connect_event.wait(), timeout_ms / 1000)
        else:
            await _connect_event.wait()
    except asyncio.CancelledError:
        ble.gap_advertise(None)
        return None  # as aioble: a cancelled advertise returns None
    except asyncio.TimeoutError:
        ble.gap_advertise(None)
        raise
    result = _incoming
    _incoming = None
    return result


class Service:
    def __init__(self, uuid):
        self.uuid = uuid
        self.characteristics = []

    def _tuple(self):
        return (self.uuid, tuple(c._tuple() for c in self.characteristics))


class Characteristic:
    def __init__(self, service, uuid, read=False, write=False, write_no_response=False,
                 notify=False, indicate=False, initial=None, capture=False):
        service.characteristics.append(self)
        flags = 0
        if read:
            flags |= _FLAG_READ
        self._writable = write or write_no_response
        if self._writable:
            flags |= (_FLAG_WRITE if write else 0) | (_FLAG_WRITE_NO_RESPONSE if write_no_response else 0)
            if capture:
                flags |= _FLAG_WRITE_CAPTURE
        if notify:
            flags |= _FLAG_NOTIFY
        if indicate:
            flags |= _FLAG_INDICATE
        self.uuid = uuid
        self.flags = flags
        self._value_handle = None
        self._initial = initial
        self._queue = []
        self._event = asyncio.Event()
        self.dropped = 0

    def _tuple(self):
        return (self.uuid, self.flags)

    def _register(self, value_handle):
        self._value_handle = value_handle
        _registered[value_handle] = self
        if self._initial is not None:
            self.write(self._initial)
            self._initial = None

    def read(self):
        return ble.gatts_read(self._value_handle)

    def write(self, data, send_update=False):
        ble.gatts_write(self._value_handle, data, send_update)

    def _remote_write(self, connection, data):
        if self.flags & _FLAG_WRITE_CAPTURE:
            self._queue.append((connection, data))
            if len(self._queue) > _WRITE_CAPTURE_QUEUE_LIMIT:
                self._queue.pop(0)
                self.dropped += 1
        else:
            self._queue = [connection]
        self._event.set()

    async def written(self, timeout_ms=None):
        if not self._writable:
            return None
        while not self._queue:
            self._event.clear()
            if timeout_ms:
                await asyncio.wait_for(self._event.wait(), timeout_ms / 1000)
            else:
                await self._event.wait()
        return self._queue.pop(0)

    def notify(self, connection, data=None):
        if not self.flags & _FLAG_NOTIFY:
            raise ValueError("Not supported")
        ble.gatts_notify(connection._conn_handle, self._value_handle, data)


class BufferedCharacteristic(Characteristic):
    def __init__(self, *args, max_len=20, append=False, **kwargs):
        Characteristic.__init__(self, *args, **kwargs)
        self._max_len = max_len
        self._append = append

    def _register(self, value_handle):
        Characteristic._register(self, value_handle)
        ble.gatts_set_buffer(value_handle, self._max_len, self._append)


def register_services(*services):
    ensure_active()
    _registered.clear()
    handles = ble.gatts_register_services(tuple(s._tuple() for s in services))
    for i in range(len(services)):
        n = 0
        for ch in services[i].characteristics:
            ch._register(handles[i][n])
            n += 1
