# The HAL for an nRF52840 under MicroPython's Zephyr port (boards/nrf52840_zephyr.py):
# MachineHAL (firmware/board_machine.py) with what this port does differently,
# read in the port's source (ports/zephyr, MicroPython 1.27-dev; docs/ENERGY.md):
#
#   pins       machine.Pin(("gpio0", n), mode, pull): a (controller, pin) tuple
#              (machine_pin.c); the add-on has external 1 MOhm pull-ups, so
#              inputs are made with no internal pull (the nRF52840's is 13 kOhm)
#   buzzer     machine.PWM(("pwm0", channel), freq=, duty_u16=): a (PWM
#              device, channel) tuple, not a Pin (machine_pwm.c)
#   ADC        machine.ADC(("adc", channel)): a channel of the devicetree's
#              zephyr,user io-channels; read_uv() (machine_adc.c)
#   flash      zephyr.FlashArea(id, erase size), ids from FlashArea.areas by
#              partition label (zephyr_storage.c); the port's _boot.py mounts
#              the "storage" partition at /flash (modules/_boot.py)
#   time       no machine.RTC: lock time is kept from the kernel's uptime
#              (time.ticks_ms, the RTC1 peripheral off the 32.768 kHz
#              crystal); it is lost at every reset, so reset_cause never
#              claims a warm reset
#   reset      machine.reset_cause() is not implemented (it prints a warning on
#              the console, which is the installer's serial link, and returns
#              42): never called; RESET_UNKNOWN is reported
#   BLE        bluetooth.BLE().config(mtu=...) is EOPNOTSUPP (the ATT MTU is a
#              build option, CONFIG_BT_L2CAP_TX_MTU=252) and the port reports
#              no MTU exchange to aioble, so notifications go out at the
#              default ATT_MTU (20 bytes each); writes from the key may be up
#              to 244 bytes (the RX buffer is sized for them)
#   sleep      every wait ends in k_poll (mphalport.c): Zephyr's idle thread
#              sleeps between events while the controller advertises
#
# Nothing here is checked on a board: tests/firmware/test_board_zephyr.py checks our
# use of these APIs against fakes written from the port's source (there are
# no stubs for the Zephyr port on PyPI).
import machine

from firmware import hal as hal_mod
from firmware.board_machine import MachineHAL


class ZephyrHAL(MachineHAL):
    PORTS = ("zephyr",)  # type: ignore[assignment]  # (the base is typed as a pair)

    def __init__(self, board, port=None, stdio=None):
        self._rtc_base = 0  # lock seconds at ticks_ms() == 0
        MachineHAL.__init__(self, board, port=port or "zephyr", stdio=stdio)

    # --- port differences -------------------------------------------------------
    def _input_pull(self):
        if getattr(self.board, "PULL", "internal") == "external":
            return None
        return machine.Pin.PULL_UP  # type: ignore[attr-defined]

    def _make_buzzer(self, pins):
        return machine.PWM(pins["buzzer"], freq=2000, duty_u16=0)  # type: ignore[attr-defined,call-arg]

    def _make_adc(self, pins):
        return machine.ADC(pins["battery_adc"])  # type: ignore[attr-defined,call-arg]

    def _make_rtc(self):
        return None

    def _read_reset_cause(self):
        return None

    def reset_cause(self):
        return hal_mod.RESET_UNKNOWN

    def _config_mtu(self, aioble):
        pass  # EOPNOTSUPP on this port: the MTU is CONFIG_BT_L2CAP_TX_MTU

    # --- time -----------------------------------------------------------------
    def rtc_now(self):
        return self._rtc_base + self.ticks_ms() // 1000

    def rtc_set(self, lock_seconds):
        self._rtc_base = int(lock_seconds) - self.ticks_ms() // 1000

    # --- flash ----------------------------------------------------------------
    def _area(self, label, region):
        import zephyr  # type: ignore[import-not-found]  # (no stubs for this port)

        FlashArea = zephyr.FlashArea
        found = FlashArea.areas.get(label)
        if found is None:
            raise OSError(19, "no flash partition '%s': flash the lock's devicetree" % label)
        area_id, erase = found
        if erase != self.board.FLASH_BLOCK_SIZE:
            raise OSError(22, "partition '%s' erases %d bytes, FLASH_BLOCK_SIZE is %d"
                              % (label, erase, self.board.FLASH_BLOCK_SIZE))
        dev = FlashArea(area_id, erase)
        size = dev.ioctl(4, 0) * dev.ioctl(5, 0)
        if size != region[1]:
            raise OSError(22, "partition '%s' is %d bytes, the board file says %d"
                              % (label, size, region[1]))
        return dev

    def _port_log(self):
        return self._area(getattr(self.board, "LOG_PARTITION", "eventlog"),
                          self.board.LOG_REGION)
