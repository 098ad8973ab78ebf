# Fake `bluetooth`: UUID, the BLE singleton (GAP advertising, GATT server) and
# Central, the test's side of the radio. It checks what a real stack would
# refuse or silently mangle: advertising payloads over 31 bytes or with bad
# AD structures, writes longer than ATT_MTU - 3, characteristic values longer
# than their buffer (truncated, 20 bytes unless gatts_set_buffer), notifying
# a characteristic without the notify flag, a notification longer than the
# connection's ATT_MTU - 3. It knows nothing of radio timing or pairing.
_IRQ_CENTRAL_CONNECT = 1
_IRQ_CENTRAL_DISCONNECT = 2
_IRQ_GATTS_WRITE = 3
_IRQ_MTU_EXCHANGED = 21

FLAG_READ = 0x0002
FLAG_WRITE_NO_RESPONSE = 0x0004
FLAG_WRITE = 0x0008
FLAG_NOTIFY = 0x0010
FLAG_INDICATE = 0x0020
FLAG_WRITE_CAPTURE = 0x10000

DEFAULT_MTU = 23
DEFAULT_BUFFER = 20
ADV_MAX = 31


class UUID:
    def __init__(self, value):
        if isinstance(value, int):
            if not 0 <= value <= 0xFFFF:
                raise ValueError("invalid UUID")
            self.hex = "%04x" % value
        else:
            h = value.replace("-", "").lower()
            if len(h) != 32:
                raise ValueError("invalid UUID")
            int(h, 16)
            self.hex = h

    def __eq__(self, other):
        return isinstance(other, UUID) and other.hex == self.hex

    def __hash__(self):
        return hash(self.hex)

    def __repr__(self):
        return "UUID(%s)" % self.hex

    def le_bytes(self):
        h = self.hex
        return bytes(int(h[i:i + 2], 16) for i in range(len(h) - 2, -2, -2))


class _Attr:
    def __init__(self, uuid, flags):
        self.uuid = uuid
        self.flags = flags
        self.value = b""
        self.buffer = DEFAULT_BUFFER
        self.append = False


class _State:
    def __init__(self):
        self.active = False
        self.handler = None
        self.config = {"mtu": DEFAULT_MTU, "gap_name": "MPY BTSTACK", "rxbuf": 64}
        self.attrs = {}  # value handle -> _Attr
        self.next_handle = 1
        self.advertising = False
        self.adv_interval_us = None
        self.adv_data = b""
        self.resp_data = b""
        self.connectable = True
        self.adv_starts = 0
        self.centrals = {}  # conn handle -> Central
        self.next_conn = 64
        self.notify_fail = 0  # the next N notifications raise OSError(ENOMEM)

    def irq(self, event, data):
        if self.handler is not None:
            return self.handler(event, data)
        return None


_st = _State()


def state():
    """Test side: the stack's state."""
    return _st


def _check_ad(payload):
    if len(payload) > ADV_MAX:
        raise OSError(22, "advertising payload over 31 bytes")
    i = 0
    while i < len(payload):
        n = payload[i]
        if n == 0 or i + 1 + n > len(payload):
            raise OSError(22, "malformed AD structure")
        i += 1 + n


class BLE:
    """All BLE() objects share the one stack (as on the boards)."""

    def active(self, active=None):
        if active is None:
            return _st.active
        _st.active = bool(active)
        return None

    def config(self, *args, **kwargs):
        if args:
            if len(args) != 1 or kwargs or args[0] not in _st.config:
                raise ValueError("unknown config param")
            return _st.config[args[0]]
        for k, v in kwargs.items():
            if k not in _st.config:
                raise ValueError("unknown config param")
            if k == "mtu" and not 23 <= v <= 517:
                raise ValueError("mtu")
            _st.config[k] = v
        return None

    def irq(self, handler):
        _st.handler = handler

    def gatts_register_services(self, services_definition):
        if not _st.active:
            raise OSError(19, "BLE not active")
        _st.attrs = {}
        result = []
        for service in services_definition:
            suuid, chars = service
            if not isinstance(suuid, UUID):
                raise TypeError("service UUID")
            _st.next_handle += 1  # the service declaration
            handles = []
            for ch in chars:
                cuuid, flags = ch[0], ch[1]
                if not isinstance(cuuid, UUID):
                    raise TypeError("characteristic UUID")
                _st.next_handle += 1  # the characteristic declaration
                h = _st.next_handle
                _st.next_handle += 1
                _st.attrs[h] = _Attr(cuuid, flags)
                handles.append(h)
                if flags & (FLAG_NOTIFY | FLAG_INDICATE):
                    _st.next_handle += 1  # the CCCD the stack adds
                for d in (ch[2] if len(ch) > 2 else ()):
                    hd = _st.next_handle
                    _st.next_handle += 1
                    _st.attrs[hd] = _Attr(d[0], d[1])
                    handles.append(hd)
            result.append(tuple(handles))
        return tuple(result)

    def _attr(self, value_handle):
        a = _st.attrs.get(value_handle)
        if a is None:
            raise OSError(22, "no such attribute")
        return a

    def gatts_read(self, value_handle):
        return bytes(self._attr(value_handle).value)

    def gatts_write(self, value_handle, data, send_update=False):
        a = self._attr(value_handle)
        a.value = bytes(data)[:a.buffer]

    def gatts_set_buffer(self, value_handle, len, append=False):
        a = self._attr(value_handle)
        a.buffer = len
        a.append = append

    def gatts_notify(self, conn_handle, value_handle, data=None):
        a = self._attr(value_handle)
        central = _st.centrals.get(conn_handle)
        if central is None:
            raise OSError(107, "not connected")
        if not a.flags & FLAG_NOTIFY:
            raise OSError(22, "characteristic does not notify")
        payload = a.value if data is None else bytes(data)
        if len(payload) > central.mtu - 3:
            raise ValueError("notification over ATT_MTU - 3")
        if _st.notify_fail:
            _st.notify_fail -= 1
            raise OSError(12, "ENOMEM")  # NimBLE: no buffer for the notification
        central.notifications.append((a.uuid, payload))

    def gap_advertise(self, interval_us, adv_data=None, resp_data=None, connectable=True):
        if interval_us is None:
            _st.advertising = False
            return
        if not _st.active:
            raise OSError(19, "BLE not active")
        if adv_data is not None:
            _check_ad(bytes(adv_data))
            _st.adv_data = bytes(adv_data)
        if resp_data is not None:
            _check_ad(bytes(resp_data))
            _st.resp_data = bytes(resp_data)
        _st.adv_interval_us = interval_us
        _st.connectable = connectable
        _st.advertising = True
        _st.adv_starts += 1

    def gap_disconnect(self, conn_handle):
        central = _st.centrals.get(conn_handle)
        if central is None:
            return False
        central.disconnect()
        return True


def parse_ad(payload):
    """{AD type: bytes} of an advertising payload."""
    out = {}
    i = 0
    while i < len(payload):
        n = payload[i]
        out[payload[i + 1]] = bytes(payload[i + 2:i + 1 + n])
        i += 1 + n
    return out


class Central:
    """A BLE central driven by the test (a phone, a key)."""

    def __init__(self, addr=b"\xc0\x01\x02\x03\x04\x05"):
        self.addr = addr
        self.handle = None
        self.mtu = DEFAULT_MTU
        self.notifications = []  # (characteristic UUID, bytes)

    def advertisement(self):
        """What a scan sees now: {AD type: bytes} of adv and scan response."""
        if not _st.advertising:
            return None
        ad = parse_ad(_st.adv_data)
        ad.update(parse_ad(_st.resp_data))
        return ad

    def connect(self, mtu=DEFAULT_MTU):
        if not (_st.advertising and _st.connectable):
            raise OSError(110, "nothing connectable advertising")
        self.handle = _st.next_conn
        _st.next_conn += 1
        _st.centrals[self.handle] = self
        _st.advertising = False  # the controller stops advertising on a connection
        _st.irq(_IRQ_CENTRAL_CONNECT, (self.handle, 0, memoryview(self.addr)))
        if mtu != DEFAULT_MTU:
            self.exchange_mtu(mtu)
        return self

    def exchange_mtu(self, mtu):
        self.mtu = min(mtu, _st.config["mtu"])
        _st.irq(_IRQ_MTU_EXCHANGED, (self.handle, self.mtu))

    def _find(self, uuid):
        u = UUID(uuid) if not isinstance(uuid, UUID) else uuid
        for h, a in _st.attrs.items():
            if a.uuid == u:
                return h, a
        raise OSError(2, "no characteristic %s" % uuid)

    def write(self, uuid, data):
        if self.handle is None:
            raise OSError(107, "not connected")
        h, a = self._find(uuid)
        if not a.flags & (FLAG_WRITE | FLAG_WRITE_NO_RESPONSE):
            raise OSError(3, "write not permitted")
        if len(data) > self.mtu - 3:
            raise ValueError("write over ATT_MTU - 3")
        value = (a.value + bytes(data)) if a.append else bytes(data)
        a.value = value[:a.buffer]
        _st.irq(_IRQ_GATTS_WRITE, (self.handle, h))

    def received(self, uuid):
        u = UUID(uuid)
        return b"".join(p for who, p in self.notifications if who == u)

    def disconnect(self):
        if self.handle is None:
            return
        handle = self.handle
        self.handle = None
        del _st.centrals[handle]
        _st.irq(_IRQ_CENTRAL_DISCONNECT, (handle, 0, memoryview(self.addr)))
