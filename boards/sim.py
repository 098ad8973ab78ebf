# The simulated board: what `python -m simulator` runs the firmware on.
#
# It is modelled on the ESP32-C3 module (see boards/esp32c3_devkit.py) so the
# energy figures the simulator reports are those of a real part, not wishes.
# Plain module attributes only: importable by MicroPython and CPython alike.

NAME = "sim"
DESCRIPTION = "simulated lock (CPython virtual hardware, ESP32-C3 module figures)"

# Symbolic pins: the simulator has no GPIOs, but keeps the same names as the
# real boards so a scenario can refer to a signal the same way everywhere.
PINS = {
    "motor_in1": "sim:motor_in1",  # H-bridge input 1 (+1 = unlock)
    "motor_in2": "sim:motor_in2",  # H-bridge input 2 (-1 = lock)
    "motor_sleep": "sim:motor_sleep",  # H-bridge nSLEEP (driver off between moves)
    "bolt_retracted": "sim:bolt_retracted",
    "bolt_thrown": "sim:bolt_thrown",
    "door_closed": "sim:door_closed",
    "button": "sim:button",
    "led": "sim:led",
    "buzzer": "sim:buzzer",
    "battery_adc": "sim:battery_adc",
}

FLASH_SIZE = 4 * 1024 * 1024
FLASH_BLOCK_SIZE = 4096  # erase block (NOR sector)
FLASH_PAGE_SIZE = 256  # program page

# Regions (absolute flash offsets, bytes), the same layout as the ESP32-C3
# board so a flash image could be compared: the firmware image is not
# simulated (the CPython firmware runs from source), its space stays erased.
FIRMWARE_REGION = (0x000000, 0x200000)
FS_REGION = (0x200000, 0x1C0000)  # littlefs: configuration and keys
LOG_REGION = (0x3C0000, 0x040000)  # raw event-log ring buffer (64 blocks)

CAPABILITIES = {
    "ble": True,
    # MicroPython's BLE stack keeps the CPU awake while advertising; deep
    # sleep would drop the BLE state. See boards/esp32c3_devkit.py.
    "can_deep_sleep_between_adverts": False,
    "flash_size": FLASH_SIZE,
    "flash_block_size": FLASH_BLOCK_SIZE,
    "fs_region": FS_REGION,
    "log_region": LOG_REGION,
    "rtc_keeps_time_on_reset": True,  # a watchdog or soft reset keeps the RTC
    "rtc_keeps_time_on_power_loss": False,  # no backup cell: time is lost
    # The simulator's watchdog takes any timeout (as the ESP32-C3's does).
    "watchdog_max_ms": None,
}

# Current drawn in each firmware power state (firmware.hal.POWER_STATES), mA,
# at the module's 3.3 V rail. The simulator drains the battery by these
# figures one-to-one (a linear regulator: pack current = load current).
# Copied from boards/esp32c3_devkit.py: the MODULE figures, not the dev board.
CURRENT_MA = {
    "sleep": 0.13,  # ESP32-C3 datasheet: Light-sleep, 130 uA typ (BLE off)
    "advertising": 20.0,  # ESTIMATE: CPU awake (modem-sleep ~20 mA) + adv bursts
    "connected": 22.0,  # ESTIMATE: as advertising plus connection events
    "motor": 20.0,  # ESTIMATE: CPU awake, radio idle; the motor itself is below
}

# The bolt motor (the motor's own current, on top of CURRENT_MA["motor"]).
# ESTIMATE: a 6 V N20-class gear motor; no part is chosen yet.
MOTOR = {
    "travel_s": 0.6,  # full stroke, thrown <-> retracted
    "run_ma": 150.0,  # running under the bolt's load
    "stall_ma": 600.0,  # against an end stop or a jam
}

# Battery: 4 x AA lithium (Li/FeS2, e.g. Energizer L91) in series.
# ESTIMATE: capacity derated from the 3500 mAh datasheet figure (low drain)
# to 3000 mAh; the curve is read off the shape of the datasheet's discharge
# curve, scaled to four cells. (fraction remaining, pack mV), falling.
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
    "low_mv": 5000,  # about 5 % left: ask for a change of batteries
    "critical_mv": 4400,  # about 2 % left: the motor may not manage a stroke
}

# --- energy report (python -m simulator energy; simulator/energy.py) --------
# The ESP32-C3 figures, copied from boards/esp32c3_devkit.py (see there for
# the reasons; every one is an ESTIMATE). The simulator's battery model does
# not drain STATIC_MA: only the energy report counts it.
STATIC_MA = {
    "battery_divider": 0.039,  # 100k + 50k across the pack, not switched
    "closed_switch_pullups": 0.147,  # door reed + bolt end stop, 45 kOhm pull-ups
}
# WHAT-IF, not how MicroPython runs today: light sleep between advertisements.
SLEEP_BETWEEN_ADVERTS = {
    "floor_ma": 0.28,
    "adv_interval_ms": 1000,
    "adv_event_mas": 0.15,
    "wake_mas": 0.04,
    # What a custom MicroPython build would need for this what-if (none of it
    # is in the stock ESP32_GENERIC_C3 build): ESP-IDF power management with
    # automatic light sleep (CONFIG_PM_ENABLE and esp_pm_configure with
    # light_sleep_enable = true; the port's machine.freq() sets it false),
    # FreeRTOS tickless idle (CONFIG_FREERTOS_USE_TICKLESS_IDLE), the BLE
    # controller's modem sleep (CONFIG_BT_CTRL_MODEM_SLEEP) clocked by a
    # 32.768 kHz crystal (CONFIG_BT_CTRL_LPCLK_SEL_EXT_32K_XTAL: on
    # XTAL_32K_P/N = GPIO0/GPIO1, where this add-on has the buzzer and the
    # reed switch: a product board moves them), and MicroPython waiting in
    # the idle hook rather than polling (its event loop wakes every tick).
    "title": "WHAT-IF: custom MicroPython build",
    "needs": (
        "ESP-IDF power management with automatic light sleep (CONFIG_PM_ENABLE, "
        "light_sleep_enable = true)",
        "FreeRTOS tickless idle (CONFIG_FREERTOS_USE_TICKLESS_IDLE)",
        "BLE controller modem sleep (CONFIG_BT_CTRL_MODEM_SLEEP)",
        "a 32.768 kHz crystal on GPIO0/GPIO1 as the BLE sleep clock",
    ),
}
BATTERY_DERATING = {
    "cold": 0.95,
    "self_discharge_per_year": 0.01,
}

# What the lock's own forecast (firmware/battery.py) assumes: the energy
# report's "today" for this board (python -m simulator energy), idle mAh per
# day and mAh per opening (tests/simulator/test_energy.py holds them to the report).
FORECAST = {
    "idle_mah_per_day": 484.5,
    "mah_per_open": 0.052,
}
