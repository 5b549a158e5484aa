"""Raspberry Pi Pico W under MicroPython (rp2): the onboard LED, a button from GP15 to GND, a BME280 on
I2C0 (SDA GP4, SCL GP5, address 0x76), a potentiometer on GP26 (ADC0), the RP2040's temperature sensor."""
PORT = "micropython"
NET = "wlan"
PARTS = {
    "mcu": ("mcu_temp", {}),
    "env": ("bme280", {"i2c": 0, "sda": 4, "scl": 5, "addr": 0x76}),
    "led": ("pin_out", {"pin": "LED"}),
    "button": ("pin_in", {"pin": 15, "pull": "up", "invert": True}),
    "knob": ("adc", {"pin": 26, "scale": 3.3}),
}
OBJECTS = (
    (3303, 0, "mcu", {"app": "MCU"}),
    (3303, 1, "env", {"q": "t"}),
    (3304, 0, "env", {"q": "h"}),
    (3315, 0, "env", {"q": "p"}),
    (3201, 0, "led", {"app": "onboard LED"}),
    (3347, 0, "button", {"app": "button"}),
    (3202, 0, "knob", {"app": "potentiometer"}),
    (4, 0, None, {}),
)
FOTA = "files"  # rp2 has no OTA partitions: an update replaces the application's files (fota/files_sink.py, boot.py runs fota/guard.py)
