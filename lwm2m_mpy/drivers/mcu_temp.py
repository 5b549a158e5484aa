"""The microcontroller's own temperature sensor as a sensor part (docs/boards.md): rp2 ADC channel 4
(RP2040 datasheet §4.9.5), esp32 `esp32.mcu_temperature()` / `raw_temperature()`, CircuitPython
`microcontroller.cpu.temperature`. It reads the die, a few degrees above the room."""
import sys


class McuTemp:
    """read(q=None) -> °C. `kind` says what `source` is: "rp2" an ADC on channel 4, "esp32" the esp32
    module, "cpu" CircuitPython's microcontroller.cpu."""

    def __init__(self, source, kind):
        self._source = source
        self._kind = kind
        if kind == "esp32":
            # ESP32-S2/S3/C3/C6 have a calibrated °C reading; the original ESP32 only a raw one in °F
            self._celsius = getattr(source, "mcu_temperature", None)

    def read(self, q=None):
        kind = self._kind
        if kind == "rp2":
            volts = self._source.read_u16() * 3.3 / 65535
            return 27 - (volts - 0.706) / 0.001721
        if kind == "esp32":
            if self._celsius:
                return float(self._celsius())
            return (self._source.raw_temperature() - 32) / 1.8
        t = self._source.temperature
        if t is None:
            raise OSError("mcu_temp: no reading")
        return t


def make(cfg):
    """cfg {"kind": "rp2"|"esp32"|"cpu"} (default: "cpu" on CircuitPython, else sys.platform). OSError
    where there is no sensor, so the board loader leaves the part out (the unix port, CPython)."""
    kind = cfg.get("kind") or ("cpu" if sys.implementation.name == "circuitpython" else sys.platform)
    if kind == "rp2":
        from machine import ADC

        return McuTemp(ADC(4), kind)
    if kind == "esp32":
        import esp32

        return McuTemp(esp32, kind)
    if kind != "cpu":
        raise OSError("mcu_temp: no sensor on " + kind)
    from microcontroller import cpu

    part = McuTemp(cpu, kind)
    part.read()  # OSError now rather than at every sample when the chip has no reading
    return part
