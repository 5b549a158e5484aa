"""A digital output (LED, relay, buzzer) as an output part (docs/boards.md)."""


class PinOut:
    """value(v=None) -> bool: sets the output when v is not None; returns the state read back from the
    pin (logical: after `invert`, so an LED wired to 3V3 is on when value() is True)."""

    def __init__(self, pin, invert=False):
        self._pin = pin
        self._invert = bool(invert)
        self.value(False)  # a known state from the start

    def value(self, v=None):
        if v is not None:
            self._pin.value(1 if bool(v) != self._invert else 0)
        return bool(self._pin.value()) != self._invert


def make(cfg):
    """cfg {"pin": GPIO number or name such as "LED" (Pico W), "invert": bool (False)}."""
    from machine import Pin

    return PinOut(Pin(cfg["pin"], Pin.OUT), cfg.get("invert", False))
