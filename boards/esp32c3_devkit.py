# Espressif ESP32-C3-DevKitM-1 (ESP32-C3-MINI-1 module, 4 MB flash) with the
# lock's add-on: a DRV8833-class H-bridge for the bolt motor, two bolt
# end-stop switches, a door reed switch, the commissioning button, a buzzer
# and a divider on the battery.
# Plain module attributes only: importable by MicroPython and CPython alike.

NAME = "esp32c3_devkit"
DESCRIPTION = "ESP32-C3-DevKitM-1 + lock add-on board"

# GPIO numbers. Avoided: GPIO18/19 (USB D-/D+, the installer's serial port),
# GPIO20/21 (UART0). Strapping pins are GPIO2, GPIO8, GPIO9: GPIO8 and GPIO9
# are used only as the board itself uses them (RGB LED, BOOT button).
PINS = {
    "motor_in1": 6,  # H-bridge IN1 (+1 = unlock)
    "motor_in2": 7,  # H-bridge IN2 (-1 = lock)
    "motor_sleep": 4,  # H-bridge nSLEEP: low between moves (driver draws ~nothing)
    "bolt_retracted": 5,  # end-stop switch to GND, internal pull-up: 0 = reached
    "bolt_thrown": 10,  # end-stop switch to GND, internal pull-up: 0 = reached
    "door_closed": 1,  # reed switch to GND, internal pull-up: 0 = door closed
    "button": 9,  # the board's BOOT button (active low). Held at reset it
    # enters the ROM download mode: a product board uses another pin.
    "led": 8,  # the board's addressable RGB LED (WS2812-type: use `neopixel`)
    "buzzer": 0,  # passive buzzer through a transistor, PWM
    "battery_adc": 3,  # ADC1_CH3, pack voltage through a 1:3 divider
}
ACTIVE_LOW = ("bolt_retracted", "bolt_thrown", "door_closed", "button")
LED_KIND = "ws2812"
BATTERY_DIVIDER = 3  # pack mV = ADC mV * 3 (100k/50k); ESTIMATE of the add-on

FLASH_SIZE = 4 * 1024 * 1024
FLASH_BLOCK_SIZE = 4096
FLASH_PAGE_SIZE = 256

# Regions (absolute flash offsets). MicroPython's 4 MB ESP32-C3 layout puts
# the application at 0x10000 and one "vfs" partition at 0x200000 (2 MB); the
# lock needs a custom partition table that splits it into "vfs" (littlefs)
# and a raw "log" partition (read with esp32.Partition.find(label="log")).
FIRMWARE_REGION = (0x010000, 0x1F0000)
FS_REGION = (0x200000, 0x1C0000)
LOG_REGION = (0x3C0000, 0x040000)

CAPABILITIES = {
    "ble": True,
    # MicroPython's ESP32 port does not enable automatic light sleep with BLE
    # (the NimBLE host runs on the CPU), and deep sleep resets the chip and
    # drops BLE: the CPU stays awake between advertising events.
    "can_deep_sleep_between_adverts": False,
    "flash_size": FLASH_SIZE,
    "flash_block_size": FLASH_BLOCK_SIZE,
    "fs_region": FS_REGION,
    "log_region": LOG_REGION,
    "rtc_keeps_time_on_reset": True,  # the RTC timer survives a chip reset
    "rtc_keeps_time_on_power_loss": False,  # no backup cell on this board
}

# Current in each firmware power state, mA. These are MODULE figures at its
# 3.3 V rail, not the dev board: the DevKitM-1 adds its power LED and LDO
# (DEVKIT_EXTRA_MA), which a product board would not have.
CURRENT_MA = {
    # ESP32-C3 Series Datasheet, "Current consumption in low-power modes":
    # Light-sleep 130 uA typical (BLE off). Deep-sleep is 5 uA but loses RAM.
    "sleep": 0.13,
    # ESTIMATE: Espressif's ESP-AT documentation gives ~20 mA average for a
    # ESP32-C3 module in modem-sleep at 160 MHz (CPU running, radio off);
    # advertising bursts (a few ms every advertising interval) add well
    # under 1 mA. Not a datasheet row: measure on the board.
    "advertising": 20.0,
    # ESTIMATE: as above plus connection events at a short interval.
    "connected": 22.0,
    # ESTIMATE: CPU awake, radio idle. The motor's own current is MOTOR.
    "motor": 20.0,
}
DEVKIT_EXTRA_MA = 3.0  # ESTIMATE: power LED and LDO quiescent on the dev board

# ESTIMATE: a 6 V N20-class gear motor; no part is chosen yet.
MOTOR = {
    "travel_s": 0.6,
    "run_ma": 150.0,
    "stall_ma": 600.0,
}

# Same pack as boards/sim.py (4 x AA lithium, ESTIMATE: see there).
BATTERY = {
    "chemistry": "4xAA Li/FeS2",
    "capacity_mah": 3000.0,
    "curve": (
        (1.00, 7000),
        (0.95, 6200),
        (0.80, 6000),
        (0.50, 5800),
        (0.20, 5600),
        (0.10, 5400),
        (0.05, 5000),
        (0.02, 4400),
        (0.00, 3600),
    ),
    "low_mv": 5000,
    "critical_mv": 4400,
}
