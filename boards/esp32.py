"""ESP32 DevKitC (ESP32-WROOM-32) under MicroPython: the BOOT button (GPIO 0), an LED on GPIO 2 (the
DevKitC has none of its own: wire one with a resistor to GND), a BME280 on I2C (SDA 21, SCL 22,
address 0x76), a potentiometer on GPIO 34 (ADC1), and the chip's own temperature sensor."""
PORT = "micropython"
NET = "wlan"
PARTS = {
    "mcu": ("mcu_temp", {}),
    "env": ("bme280", {"i2c": 0, "sda": 21, "scl": 22, "addr": 0x76}),
    "led": ("pin_out", {"pin": 2}),
    "button": ("pin_in", {"pin": 0, "pull": "up", "invert": True}),
    "knob": ("adc", {"pin": 34, "scale": 3.3}),
}
OBJECTS = (
    (3303, 0, "mcu", {"app": "MCU"}),
    (3303, 1, "env", {"q": "t"}),
    (3304, 0, "env", {"q": "h"}),
    (3315, 0, "env", {"q": "p"}),
    (3201, 0, "led", {"app": "LED"}),
    (3347, 0, "button", {"app": "BOOT button"}),
    (3202, 0, "knob", {"app": "potentiometer"}),
    (4, 0, None, {}),
)
FOTA = "esp32"  # firmware updates into the OTA partitions of an ESP32_GENERIC-OTA build (lwm2m_mpy/fota/esp32_sink.py)
