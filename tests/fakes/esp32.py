"""A fake `esp32` module for tests: the die temperature functions of MicroPython's esp32 port.
Set `celsius` / `fahrenheit`; set `mcu_temperature = None` to look like an original ESP32 (only
raw_temperature, in °F)."""
celsius = 45.0
fahrenheit = 128


def _mcu_temperature():
    return celsius


def raw_temperature():
    return fahrenheit


mcu_temperature = _mcu_temperature
