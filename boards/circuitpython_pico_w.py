"""Raspberry Pi Pico W under CircuitPython: the onboard LED, a button from GP15 to GND, a BME280 on I2C
(SDA GP4, SCL GP5, address 0x76), a potentiometer on GP26. Pins by their CircuitPython `board` names.
WiFi from config.json (or CIRCUITPY_WIFI_SSID in settings.toml, which CircuitPython joins by itself).
CircuitPython has no DTLS: coap:// servers only."""
PORT = "circuitpython"
NET = "wlan"
PARTS = {
    "env": ("bme280", {"i2c": 0, "sda": "GP4", "scl": "GP5", "addr": 0x76}),
    "led": ("pin_out", {"pin": "LED"}),
    "button": ("pin_in", {"pin": "GP15", "pull": "up", "invert": True}),
    "knob": ("adc", {"pin": "GP26", "scale": 3.3}),
}
OBJECTS = (
    (3303, 0, "env", {"q": "t"}),
    (3304, 0, "env", {"q": "h"}),
    (3315, 0, "env", {"q": "p"}),
    (3201, 0, "led", {"app": "onboard LED"}),
    (3347, 0, "button", {"app": "button"}),
    (3202, 0, "knob", {"app": "potentiometer"}),
    (4, 0, None, {}),
)
FOTA = "files"  # an update replaces the application's files (fota/files_sink.py, boot.py runs fota/guard.py)
