# Raspberry Pi Pico W (RP2040 + Infineon CYW43439 for Wi-Fi/BLE) with the
# lock's add-on: a DRV8833-class H-bridge, two bolt end-stop switches, a door
# reed switch, the commissioning button, a buzzer and a battery divider.
# Plain module attributes only: importable by MicroPython and CPython alike.

NAME = "pico_w"
DESCRIPTION = "Raspberry Pi Pico W + lock add-on board"

# USB VID:PID of the installer's serial port: MicroPython's USB CDC on the
# RP2040 (2e8a:0005). `lockctl ports` probes only known ids (or with --probe).
USB_IDS = ((0x2E8A, 0x0005),)

# GPIO numbers (GPn). GP0/GP1 are left for a debug UART. GP23, GP24, GP25
# and GP29 are wired to the CYW43439 on the Pico W and are not free.
PINS = {
    "motor_in1": 14,  # H-bridge IN1 (+1 = unlock)
    "motor_in2": 15,  # H-bridge IN2 (-1 = lock)
    "motor_sleep": 13,  # H-bridge nSLEEP
    "bolt_retracted": 16,  # end-stop switch to GND, pull-up: 0 = reached
    "bolt_thrown": 17,  # end-stop switch to GND, pull-up: 0 = reached
    "door_closed": 18,  # reed switch to GND, pull-up: 0 = door closed
    "button": 19,  # commissioning button to GND, pull-up
    "led": "LED",  # the on-board LED hangs off the CYW43439: Pin("LED")
    "buzzer": 20,  # passive buzzer through a transistor, PWM
    # ADC0. Not the on-board VSYS/3 channel (ADC3 on GP29): on the Pico W that
    # pin doubles as the CYW43439's SPI clock and reads need the radio idle.
    "battery_adc": 26,
}
ACTIVE_LOW = ("bolt_retracted", "bolt_thrown", "door_closed", "button")
LED_KIND = "plain"
BATTERY_DIVIDER = 3  # pack mV = ADC mV * 3; ESTIMATE of the add-on divider

# The Pico W carries 2 MB of QSPI flash (not 4 MB: the Pico 2 W has 4 MB).
FLASH_SIZE = 2 * 1024 * 1024
FLASH_BLOCK_SIZE = 4096
FLASH_PAGE_SIZE = 256

# Regions (absolute flash offsets). MicroPython for RPI_PICO_W keeps the
# last 848 KB for its filesystem; the lock splits that storage with
# rp2.Flash(start=..., len=...) into littlefs and the raw log.
FIRMWARE_REGION = (0x000000, 0x12C000)
FS_REGION = (0x12C000, 0x094000)  # 592 KB
LOG_REGION = (0x1C0000, 0x040000)  # 256 KB at the end of flash

CAPABILITIES = {
    "ble": True,
    # The RP2040's dormant mode stops the clocks the CYW43439 driver needs;
    # MicroPython keeps polling the radio: no sleep between adverts.
    "can_deep_sleep_between_adverts": False,
    "flash_size": FLASH_SIZE,
    "flash_block_size": FLASH_BLOCK_SIZE,
    "fs_region": FS_REGION,
    "log_region": LOG_REGION,
    "rtc_keeps_time_on_reset": False,  # MicroPython re-inits the RP2040 RTC at boot
    "rtc_keeps_time_on_power_loss": False,
    # The RP2040 watchdog's 24-bit counter ticks twice per microsecond:
    # 0xFFFFFF / 2 us = 8388 ms. MicroPython's ports/rp2/machine_wdt.c refuses
    # a longer timeout (WDT_TIMEOUT_MAX 8388; the machine.WDT docs say so too).
    "watchdog_max_ms": 8388,
}

# Current in each firmware power state, mA, for the WHOLE BOARD (the RP2040
# and the CYW43439 are not a separable module), from VSYS. All ESTIMATES:
# the Pico W datasheet's power table measures example programs, not these
# states. Measure on the board before trusting a battery-life figure.
CURRENT_MA = {
    # ESTIMATE: RP2040 dormant with the radio powered off, board regulator
    # included; the Pico datasheet's dormant figure is around 1 mA.
    "sleep": 1.5,
    # ESTIMATE: CPU running at 125 MHz (~20-25 mA) plus the CYW43439 powered
    # with BLE advertising.
    "advertising": 40.0,
    "connected": 45.0,  # ESTIMATE
    "motor": 25.0,  # ESTIMATE: CPU awake, radio idle; the motor itself is MOTOR
}

# ESTIMATE: a 6 V N20-class gear motor; no part is chosen yet.
MOTOR = {
    "travel_s": 0.6,
    "run_ma": 150.0,
    "stall_ma": 600.0,
}

# Same pack as boards/sim.py (4 x AA lithium, ESTIMATE: see there). VSYS
# takes 1.8-5.5 V, so a product board needs a buck converter from 4 x AA
# (up to 7 V fresh): the add-on has one.
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

# --- energy report (python -m simulator energy; simulator/energy.py) --------
# Drains that are there whatever the firmware does, mA at the pack, all day.
STATIC_MA = {
    # ESTIMATE: a 1:3 divider across the pack like the ESP32-C3 add-on's
    # (100k + 50k), not switched: 5.8 V / 150 kOhm.
    "battery_divider": 0.039,
    # Door reed and "thrown" end stop closed while idle, each through an
    # RP2040 internal pull-up (datasheet: 50-80 kOhm; 60 kOhm taken) to 3.3 V.
    "closed_switch_pullups": 0.110,
}

# WHAT-IF, not how MicroPython runs today: the RP2040 sleeps between BLE
# advertising events while the CYW43439 advertises on its own. All
# ESTIMATES; the Pico W board's own regulator and flash set the floor.
SLEEP_BETWEEN_ADVERTS = {
    # ESTIMATE: CURRENT_MA["sleep"] (RP2040 dormant, board regulator) plus
    # ~0.1 mA for the CYW43439 kept powered with its Bluetooth core asleep.
    "floor_ma": 1.6,
    "adv_interval_ms": 1000,  # ESTIMATE (design choice, as the ESP32-C3)
    # ESTIMATE: the CYW43439 sends an advertising event by itself: ~2 ms of
    # radio at ~20 mA; the RP2040 is not woken for it.
    "adv_event_mas": 0.04,
    # ESTIMATE: one RP2040 wake-up (crystal restart, one asyncio step in
    # MicroPython at 125 MHz), ~2 ms at ~25 mA, mA*s.
    "wake_mas": 0.05,
}

BATTERY_DERATING = {
    "cold": 0.95,  # ESTIMATE, as boards/esp32c3_devkit.py
    "self_discharge_per_year": 0.01,  # ESTIMATE, as boards/esp32c3_devkit.py
}

# What the lock's own forecast (firmware/battery.py) assumes: the energy
# report's "today" for this board (python -m simulator energy), idle mAh per
# day and mAh per opening (tests/simulator/test_energy.py holds them to the report).
FORECAST = {
    "idle_mah_per_day": 963.6,
    "mah_per_open": 0.047,
}
