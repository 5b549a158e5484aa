"""ESP32-S3 DevKitC-1 under MicroPython: the BOOT button (GPIO 0), an LED on GPIO 2 (the board's own
RGB LED on GPIO 48 is a WS2812, not a plain pin), an SHT3x (SHT30/SHT31) on I2C (SDA 8, SCL 9, address
0x44), a potentiometer on GPIO 1 (ADC1), and the chip's own temperature sensor."""
PORT = "micropython"
NET = "wlan"
PARTS = {
    "mcu": ("mcu_temp", {}),
    "env": ("sht3x", {"i2c": 0, "sda": 8, "scl": 9, "addr": 0x44}),
    "led": ("pin_out", {"pin": 2}),
    "button": ("pin_in", {"pin": 0, "pull": "up", "invert": True}),
    "knob": ("adc", {"pin": 1, "scale": 3.3}),
}
OBJECTS = (
    (3303, 0, "mcu", {"app": "MCU"}),
    (3303, 1, "env", {"q": "t"}),
    (3304, 0, "env", {"q": "h"}),
    (3201, 0, "led", {"app": "LED"}),
    (3347, 0, "button", {"app": "BOOT button"}),
    (3202, 0, "knob", {"app": "potentiometer"}),
    (4, 0, None, {}),
)
FOTA = "esp32"  # the OTA partitions (lwm2m_mpy/fota/esp32_sink.py)
