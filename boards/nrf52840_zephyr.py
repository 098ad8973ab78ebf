# Nordic nRF52840 under MicroPython's Zephyr port (ports/zephyr, board
# nrf52840dk/nrf52840 for development; a product board with the same SoC),
# with the lock's add-on: a DRV8833-class H-bridge for the bolt motor, two
# bolt end stops, a door reed switch, the commissioning button, a buzzer,
# a switched divider on the battery and a buck converter from the pack.
# Plain module attributes only: importable by MicroPython and CPython alike.
#
# Why this board (issue #13 section 2; sources and what is NOT verified are
# in docs/ENERGY.md): the Zephyr port has the generic `bluetooth` module
# (ports/zephyr/modbluetooth_zephyr.c) that aioble uses, registers GATT
# services at run time (CONFIG_BT_GATT_DYNAMIC_DB), and every wait in the
# port (time.sleep, asyncio's poll) ends in Zephyr's k_poll
# (ports/zephyr/mphalport.c mp_hal_wait_event), so the CPU idles in Zephyr's
# idle thread (System ON sleep on the nRF52840) while the radio's controller
# advertises by itself. MicroPython's ESP32 port keeps the CPU awake with BLE
# on (micropython issues #6396, #5459; machine.freq() configures
# esp_pm with light_sleep_enable = false) and the nrf port has only ubluepy.
#
# The HAL is firmware/board_zephyr.py (MachineHAL with the port's differences:
# pins are ("gpio0", n) tuples, PWM takes a ("pwm0", channel) tuple, the ADC an
# ("adc", channel) tuple from the devicetree, flash areas are
# zephyr.FlashArea, there is no machine.RTC and machine.reset_cause() only
# prints a warning).

NAME = "nrf52840_zephyr"
DESCRIPTION = "nRF52840 (MicroPython Zephyr port) + lock add-on board, modelled"

# (GPIO controller node label, pin). P0.13-P0.16 and P0.11/P0.12/P0.24/P0.25
# are the DK's LEDs and buttons: the add-on uses the free pins beside them.
PINS = {
    "motor_in1": ("gpio0", 3),  # H-bridge IN1 (+1 = unlock)
    "motor_in2": ("gpio0", 4),  # H-bridge IN2 (-1 = lock)
    "motor_sleep": ("gpio0", 28),  # H-bridge nSLEEP: low between moves
    # Switches to GND with EXTERNAL 1 MOhm pull-ups (the nRF52840's internal
    # pull-up is 13 kOhm: 0.23 mA per closed switch). Idle-open contacts: the
    # reed contact opens when the door is closed (a normally-closed reed held
    # open by the magnet) and the "thrown" end stop opens at the end of its
    # travel, so an idle lock (door closed, bolt thrown) draws nothing
    # through them; the pins then read high.
    "bolt_retracted": ("gpio0", 29),  # closes (0) when the bolt is retracted
    "bolt_thrown": ("gpio0", 30),  # opens (1) when the bolt is thrown
    "door_closed": ("gpio0", 31),  # opens (1) when the door is closed
    "button": ("gpio1", 1),  # commissioning button to GND, 0 = pressed
    "led": ("gpio0", 13),  # the DK's LED1 (active low on the DK; plain on the add-on)
    "buzzer": ("pwm0", 0),  # PWM instance and channel (devicetree: P1.02)
    "battery_adc": ("adc", 2),  # SAADC channel 2 = AIN2 (P0.04), devicetree overlay
    "battery_en": ("gpio1", 3),  # high: the divider's MOSFET conducts (measure)
}
ACTIVE_LOW = ("bolt_retracted", "button")  # door_closed and bolt_thrown read high when true
PULL = "external"  # no internal pull-ups: the add-on has 1 MOhm resistors
LED_KIND = "plain"
# Pack mV = ADC mV * 4 (3 MOhm + 1 MOhm, switched: ~0 between readings; the
# SAADC's 40 us acquisition time suits sources up to 800 kOhm: the 1 MOhm
# leg carries a 100 nF capacitor. ESTIMATE of the add-on).
BATTERY_DIVIDER = 4
DIVIDER_SETTLE_US = 5000  # after switching the divider on, before reading (ESTIMATE)

FLASH_SIZE = 1024 * 1024  # nRF52840: 1 MB internal flash
FLASH_BLOCK_SIZE = 4096  # nRF52 flash page (erase unit)
FLASH_PAGE_SIZE = 4  # word writes

# Regions (absolute flash offsets). The devicetree overlay of the lock's build
# replaces the DK's partitions (the DK's storage_partition is 32 KB) with:
#     code_partition     0x000000  0x0C0000  (MicroPython + frozen firmware)
#     storage_partition  0x0C0000  0x030000  label "storage": littlefs,
#                                            mounted by the port's _boot.py at /flash
#     eventlog_partition 0x0F0000  0x010000  label "eventlog": the raw log
# (zephyr.FlashArea.areas maps each label to (area id, erase size)).
FIRMWARE_REGION = (0x000000, 0x0C0000)
FS_REGION = (0x0C0000, 0x030000)
LOG_REGION = (0x0F0000, 0x010000)
FS_PARTITION = "storage"
LOG_PARTITION = "eventlog"
FS_MOUNT = "/flash"  # where ports/zephyr/modules/_boot.py mounts "storage"
# NOT YET: `lockctl flash` writes /main.py and its slots at "/", which is not
# a filesystem on this port (the storage is at /flash), so tools/flashing.py
# does not offer this board: build a frozen image (boards/manifest.py with
# board=nrf52840_zephyr, the port's Zephyr build) until the deploy learns FS_MOUNT.

# The port reports no MTU exchange to aioble: notifications of ATT_MTU 23 - 3.
BLE_NOTIFY_BYTES = 20
ADV_INTERVAL_MS = 1000  # idle; firmware/radio.py sets the fast interval after an event

CAPABILITIES = {
    "ble": True,
    # The port waits in k_poll; Zephyr's idle thread sleeps (System ON, WFE)
    # while the controller advertises. NOT VERIFIED on a board (docs/ENERGY.md).
    "can_deep_sleep_between_adverts": True,
    "flash_size": FLASH_SIZE,
    "flash_block_size": FLASH_BLOCK_SIZE,
    "fs_region": FS_REGION,
    "log_region": LOG_REGION,
    # No machine.RTC on the Zephyr port: the HAL keeps time from the kernel's
    # uptime (the RTC1 peripheral off the 32.768 kHz crystal), lost at any reset.
    "rtc_keeps_time_on_reset": False,
    "rtc_keeps_time_on_power_loss": False,
}

# Build configuration the figures assume (prj.conf + the board's .conf), on
# top of ports/zephyr/boards/nrf52840dk_nrf52840.conf:
ZEPHYR_CONFIG = {
    "CONFIG_BT_GATT_DYNAMIC_DB": "y",  # services registered at run time (aioble)
    "CONFIG_BT_L2CAP_TX_MTU": "252",  # the port cannot set the MTU at run time
    "CONFIG_BT_BUF_ACL_RX_SIZE": "256",
    "CONFIG_BT_PERIPHERAL_PREF_MIN_INT": "12",  # 15 ms (firmware/radio.py)
    "CONFIG_BT_PERIPHERAL_PREF_MAX_INT": "24",  # 30 ms
    "CONFIG_BT_PERIPHERAL_PREF_LATENCY": "0",
    "CONFIG_BT_PERIPHERAL_PREF_TIMEOUT": "200",  # 2 s
    "CONFIG_BT_GAP_AUTO_UPDATE_CONN_PARAMS": "y",
    "CONFIG_NETWORKING": "n",
    "CONFIG_CLOCK_CONTROL_NRF_K32SRC_XTAL": "y",  # 32.768 kHz crystal (sleep clock)
    "CONFIG_BOARD_ENABLE_DCDC": "y",  # the SoC's DC/DC (needs its inductor)
    "CONFIG_PM_DEVICE": "y",  # suspend the console UART when no cable is in
    "CONFIG_WDT_DISABLE_AT_BOOT": "y",
}

# Current in each firmware power state, mA, at the SoC's 3.0 V rail (behind
# the buck converter: SUPPLY). Sources in docs/ENERGY.md; none measured here.
CURRENT_MA = {
    # nRF52840 Product Specification v1.7, 5.2 "Current consumption":
    # System ON, full RAM retention, RTC running (I_ON_RAMON_RTC) ~3.16 uA.
    "sleep": 0.0032,
    # Idle while advertising: the CPU sleeps; the advertising events and the
    # firmware's wake-ups are priced in SLEEP_BETWEEN_ADVERTS (energy report).
    "advertising": 0.0032,
    # ESTIMATE: CPU running MicroPython (PS v1.7: CPU from flash, 64 MHz,
    # DC/DC, ~3.3 mA) plus connection events at 15-30 ms (radio TX 4.8 mA /
    # RX 4.6 mA at 0 dBm, DC/DC, for ~1 ms each) ~0.3 mA.
    "connected": 3.6,
    "motor": 3.5,  # ESTIMATE: CPU awake polling the end stop; the motor itself is MOTOR
}

# How idle is priced on this port (the CPU sleeps between advertising events).
# The energy report uses it for "today" because the port does sleep.
SLEEP_BETWEEN_ADVERTS = {
    "floor_ma": 0.0032,  # PS v1.7 I_ON_RAMON_RTC (see CURRENT_MA)
    "adv_interval_ms": ADV_INTERVAL_MS,
    # ESTIMATE: one connectable advertising event on 3 channels with a scan
    # response now and then: ~1.2 ms of radio at ~4.8 mA plus HFXO start-up
    # (PS v1.7: TX 0 dBm DC/DC 4.8 mA); Nordic's Online Power Profiler gives
    # this order (~6-10 uA at a 1 s interval); taken at 8 uA*s per event.
    "adv_event_mas": 0.008,
    # ESTIMATE: one wake-up of the firmware (HFCLK start, one asyncio step in
    # MicroPython at 64 MHz, ~2 ms at ~4 mA), mA*s.
    "wake_mas": 0.008,
    "title": "today, Zephyr port (MODELLED)",
}

# The pack feeds the SoC through a buck converter (4 x AA is up to 7 V; the
# nRF52840's VDDH takes at most 5.5 V). ESTIMATES from the TI TPS62840
# datasheet (SLVSEC0): 60 nA quiescent, ~80 % efficient at uA-mA loads.
# Pack current = rail current * vout / (pack_v * efficiency) + quiescent.
SUPPLY = {
    "kind": "buck",
    "vout_v": 3.0,
    "pack_v": 5.8,  # the pack's plateau (BATTERY curve)
    "efficiency": 0.80,
    "quiescent_ma": 0.00006,
}

# ESTIMATE: a 6 V N20-class gear motor, straight from the pack through the
# H-bridge (as the other boards).
MOTOR = {
    "travel_s": 0.6,
    "run_ma": 150.0,
    "stall_ma": 600.0,
}

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

# Drains that are there whatever the firmware does, mA at the pack, all day.
STATIC_MA = {
    # Switched divider: the MOSFET's leakage and the gate pull-down, ESTIMATE
    # (a few nA; a reading of 5 ms an hour adds 5.8 V / 4 MOhm * 5 ms: nothing).
    "battery_divider": 0.00001,
    # Idle-open contacts: no current through the 1 MOhm pull-ups while the
    # door is closed and the bolt thrown. GPIO input with SENSE: no current.
    "closed_switch_pullups": 0.0,
}

# ESTIMATE: the lock's HMAC decision (token, proof, decision, record) in
# MicroPython on a 64 MHz Cortex-M4F; bench's unlock_hmac_us is the unix port
# on a desktop core. Used for the time to open.
DECISION_S = 0.15

# What the lock's own forecast (firmware/battery.py) assumes, from the energy
# report of this board as the firmware runs (tests/simulator/test_energy.py holds them
# to it): idle mAh per day and mAh per opening (visit, motor both ways).
FORECAST = {
    # The energy report's idle day (0.178 mAh) with the firmware as it runs
    # since issue #13 section 1 (61 wake-ups an hour), rounded up: the
    # forecast may be pessimistic, never optimistic (tests/simulator/test_energy.py).
    "idle_mah_per_day": 0.20,
    "mah_per_open": 0.052,
}

BATTERY_DERATING = {
    "cold": 0.95,  # ESTIMATE, as boards/esp32c3_devkit.py
    "self_discharge_per_year": 0.01,  # ESTIMATE, as boards/esp32c3_devkit.py
}
