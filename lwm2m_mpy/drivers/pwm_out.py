"""A dimmable output (LED, fan through a transistor) as an output part with duty() (docs/boards.md)."""


class PwmOut:
    """value(v=None) -> bool switches on/off; duty(pct=None) -> pct sets the level 0-100 used while on.
    The level survives off and on (a lamp keeps its dimmer setting)."""

    def __init__(self, pwm, invert=False):
        self._pwm = pwm
        self._invert = bool(invert)
        self._on = False
        self._pct = 100.0
        self._apply()

    def _apply(self):
        d = int(self._pct * 65535 / 100 + 0.5) if self._on else 0
        self._pwm.duty_u16(65535 - d if self._invert else d)

    def value(self, v=None):
        if v is not None:
            self._on = bool(v)
            self._apply()
        d = self._pwm.duty_u16()  # read back: on means the pin is not held at its off level
        if self._pct <= 0:  # on at 0 % looks like off on the pin; the switch state is what is asked
            return self._on
        return d != (65535 if self._invert else 0)

    def duty(self, pct=None):
        if pct is not None:
            self._pct = min(max(float(pct), 0.0), 100.0)
            self._apply()
        return self._pct


def make(cfg):
    """cfg {"pin": GPIO number or name, "freq": Hz (1000), "invert": bool (False)}."""
    from machine import PWM, Pin

    off = 65535 if cfg.get("invert", False) else 0
    return PwmOut(PWM(Pin(cfg["pin"], Pin.OUT), freq=cfg.get("freq", 1000), duty_u16=off), cfg.get("invert", False))
