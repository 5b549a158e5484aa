"""An analog input as a sensor part (docs/boards.md): volts (or any linear unit) from ADC.read_u16()."""


class Adc:
    """read(q=None) -> read_u16() / 65535 * scale + offset."""

    def __init__(self, adc, scale=3.3, offset=0.0):
        self._adc = adc
        self._scale = scale
        self._offset = offset

    def read(self, q=None):
        return self._adc.read_u16() * self._scale / 65535 + self._offset


def make(cfg):
    """cfg {"pin": GPIO number, "scale": value at full scale (3.3), "offset": added (0)}."""
    from machine import ADC, Pin

    return Adc(ADC(Pin(cfg["pin"])), cfg.get("scale", 3.3), cfg.get("offset", 0.0))
