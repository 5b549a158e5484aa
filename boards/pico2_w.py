"""Raspberry Pi Pico 2 W under MicroPython (rp2, RP2350): the onboard LED, a button from GP15 to GND, an
AHT20 on I2C0 (SDA GP4, SCL GP5, address 0x38), a potentiometer on GP26 (ADC0), the RP2350's
temperature sensor (ADC 4, as on the RP2040)."""
PORT = "micropython"
NET = "wlan"
PARTS = {
    "mcu": ("mcu_temp", {}),
    "env": ("aht20", {"i2c": 0, "sda": 4, "scl": 5, "addr": 0x38}),
    "led": ("pin_out", {"pin": "LED"}),
    "button": ("pin_in", {"pin": 15, "pull": "up", "invert": True}),
    "knob": ("adc", {"pin": 26, "scale": 3.3}),
}
OBJECTS = (
    (3303, 0, "mcu", {"app": "MCU"}),
    (3303, 1, "env", {"q": "t"}),
    (3304, 0, "env", {"q": "h"}),
    (3201, 0, "led", {"app": "onboard LED"}),
    (3347, 0, "button", {"app": "button"}),
    (3202, 0, "knob", {"app": "potentiometer"}),
    (4, 0, None, {}),
)
FOTA = "files"  # an update replaces the application's files (fota/files_sink.py, boot.py runs fota/guard.py)
