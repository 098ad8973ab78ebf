# Espressif ESP32-C3-DevKitM-1 (ESP32-C3-MINI-1 module, 4 MB flash) with the
# lock's add-on: a DRV8833-class H-bridge for the bolt motor, two bolt
# end-stop switches, a door reed switch, the commissioning button, a buzzer
# and a divider on the battery.
# Plain module attributes only: importable by MicroPython and CPython alike.

NAME = "esp32c3_devkit"
DESCRIPTION = "ESP32-C3-DevKitM-1 + lock add-on board"

# USB VID:PID of the installer's serial port: the chip's own USB Serial/JTAG
# (Espressif 303a:1001). `lockctl ports` probes only known ids (or with --probe).
USB_IDS = ((0x303A, 0x1001),)

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
    # machine.WDT(timeout=ms) on the ESP32 port configures the ESP-IDF task
    # watchdog, whose timeout is a uint32 (seconds in the older
    # ports/esp32/machine_wdt.c read here, esp_task_wdt_init(s); milliseconds
    # in ESP-IDF 5's esp_task_wdt_config_t.timeout_ms): no limit the firmware
    # meets (it asks for about a minute: firmware/app.py). UNVERIFIED on a board.
    "watchdog_max_ms": None,
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
    # under 1 mA. Not a datasheet row: measure on the board. Reports of BLE
    # on an ESP32-C3 without power management run higher (77 mA measured for
    # an Arduino BLE UART example at 80 MHz, arduino-esp32 issue 5909): 20 mA
    # is the optimistic end.
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

# --- energy report (python -m simulator energy; simulator/energy.py) --------
# Drains that are there whatever the firmware does, mA at the pack, all day.
STATIC_MA = {
    # ESTIMATE: the add-on's 100k + 50k divider straight across the pack (not
    # switched off between readings): 5.8 V / 150 kOhm. A divider switched by
    # a MOSFET, or 10x the resistance, takes this to ~0.
    "battery_divider": 0.039,
    # While the lock is idle the door is closed and the bolt thrown, so two
    # switches to GND are closed (the reed switch and the "thrown" end stop),
    # each through an internal pull-up to 3.3 V. ESP32-C3 datasheet: weak
    # pull-up about 45 kOhm -> 3.3 V / 45 kOhm = 0.073 mA each. External 1 MOhm
    # pull-ups (or sampling the switches) take this to ~0.
    "closed_switch_pullups": 0.147,
}

# WHAT-IF, not how MicroPython runs today: the port light-sleeps between BLE
# advertising events (ESP-IDF automatic light sleep with the BLE controller's
# sleep clock). Average idle current = floor + one advertising event per
# interval + one CPU wake-up per firmware timer (the report measures how often
# the firmware's timers fire). All ESTIMATES: measure on a board.
SLEEP_BETWEEN_ADVERTS = {
    # ESTIMATE: light sleep with the BLE stack kept alive. The datasheet's
    # Light-sleep row (130 uA) has BLE off; a user measured ~0.28 mA average
    # for an ESP32-C3 in light sleep with NimBLE kept initialised
    # (esp32.com, topic 46435; not an Espressif figure).
    "floor_ma": 0.28,
    # ESTIMATE (a design choice: the firmware sets none yet): a phone at the
    # door finds a 1 s advertiser within a second or two.
    "adv_interval_ms": 1000,
    # ESTIMATE: one connectable advertising event on three channels, ~1.5 ms
    # of radio at ~80 mA plus ~1 ms wake-up at ~25 mA, mA*s per event.
    "adv_event_mas": 0.15,
    # ESTIMATE: one firmware wake-up (leave light sleep, run one asyncio
    # step in MicroPython, sleep again), ~1.5 ms at ~25 mA, mA*s.
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

# Battery derating for the energy report (each factor an ESTIMATE). The
# usable fraction is read off BATTERY["curve"] at BATTERY["low_mv"] (the
# battery-change warning), so it is not repeated here.
BATTERY_DERATING = {
    # The lock sits inside the front door: the door leaf is ~5-15 C in a
    # Swedish winter. Li/FeS2 keeps most of its capacity at low drain there.
    "cold": 0.95,
    # Li/FeS2 self-discharge, fraction of capacity per year. Energizer gives
    # the L91 a shelf life of 20 years or more (well under 1 %/year at room
    # temperature); 1 %/year is taken as a margin.
    "self_discharge_per_year": 0.01,
}

# What the lock's own forecast (firmware/battery.py) assumes: the energy
# report's "today" for this board (python -m simulator energy), idle mAh per
# day and mAh per opening (tests/simulator/test_energy.py holds them to the report).
FORECAST = {
    "idle_mah_per_day": 484.5,
    "mah_per_open": 0.052,
}
