# Fake aioble.core: the shared BLE object and the IRQ dispatch, as in
# micropython-lib's aioble (one handler per aioble module).
import bluetooth

log_level = 1
ble = bluetooth.BLE()
_irq_handlers = []


class GattError(Exception):
    def __init__(self, status):
        Exception.__init__(self, status)
        self._status = status


def log_error(*args):
    if log_level > 0:
        print("[aioble] E:", *args)


def ensure_active():
    if not ble.active():
        ble.active(True)


def config(*args, **kwargs):
    ensure_active()
    return ble.config(*args, **kwargs)


def register_irq_handler(handler, shutdown=None):
    _irq_handlers.append(handler)


def ble_irq(event, data):
    for handler in _irq_handlers:
        result = handler(event, data)
        if result is not None:
            return result
    return None


ble.irq(ble_irq)
