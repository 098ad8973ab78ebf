# board_machine on the real MicroPython interpreter with the fake port modules
# (tests/firmware/test_board_machine.py): everything compiled with mpy-cross into the
# directory $LOCK_BM_BUILD; stdin carries bytes for the serial path.
import asyncio
import gc
import os
import sys

sys.path[:0] = [os.getenv("LOCK_BM_BUILD")]
import fakes  # noqa: E402

import boards.esp32c3_devkit  # noqa: E402
import boards.pico_w  # noqa: E402
from protocol import ble as ble_proto  # noqa: E402
from protocol import frames  # noqa: E402

for port, board in (("esp32", boards.esp32c3_devkit), ("rp2", boards.pico_w)):
    fk = fakes.install(port)
    bm = fakes.board_machine(fk)
    assert bm.__file__.endswith(".mpy"), bm.__file__
    hal = bm.MachineHAL(board, port=port)
    hal.rtc_set(147000000)
    assert hal.rtc_now() == 147000000, hal.rtc_now()
    assert fk.machine.RTC().datetime()[:3] == (2024, 8, 28), fk.machine.RTC().datetime()
    fk.machine.pin(board.PINS["door_closed"]).set_level(0)
    assert hal.door_closed() and not hal.bolt_retracted()
    fk.machine.set_adc_uv(board.PINS["battery_adc"], 1950000)
    assert abs(hal.battery_mv() - 5850) <= 9, hal.battery_mv()
    ft = fk.faketime
    ft.offset = ft.TICKS_PERIOD - ft._host_ms() % ft.TICKS_PERIOD - 50
    t0 = hal.ticks_ms()
    ft.offset += 100  # across the wrap of time.ticks_ms
    assert ft.ticks_ms() < 1000 and hal.ticks_ms() >= t0 + 100

    async def ble(hal, fk):
        task = asyncio.create_task(hal.ble_accept())
        await asyncio.sleep_ms(10)
        central = fk.bluetooth.Central().connect(mtu=64)
        link = await task
        frame = frames.encode(bytes(range(1, 250)))
        for piece in ble_proto.chunks(frame, 64):
            central.write(ble_proto.RX_UUID, piece)
            assert await link.recv() == piece
        await link.send(frame)
        assert central.received(ble_proto.TX_UUID) == frame
        waiting = asyncio.create_task(link.recv())
        await asyncio.sleep_ms(10)
        central.disconnect()
        assert await waiting == b""

    asyncio.run(ble(hal, fk))
    print(port, "ok", gc.mem_alloc())
    del hal, bm, fk
    fakes.uninstall()
# The real serial path: sys.stdin.buffer through asyncio.StreamReader, Ctrl-C off.
fk = fakes.install("esp32")
bm = fakes.board_machine(fk)
hal = bm.MachineHAL(boards.esp32c3_devkit, port="esp32")
class KbdIntr:  # stands in for the micropython module: records kbd_intr
    calls = []
    def kbd_intr(self, c):
        self.calls.append(c)
real_micropython = sys.modules.get("micropython")
sys.modules["micropython"] = KbdIntr()
async def serial():
    link = await hal.serial_link()
    assert KbdIntr.calls == [-1], KbdIntr.calls
    got = b""
    while len(got) < 6:
        got += await link.recv()
    await link.send(b"<" + got + b">")
asyncio.run(serial())
