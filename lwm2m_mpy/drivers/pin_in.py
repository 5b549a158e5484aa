"""A digital input (button, switch, PIR, reed contact) as an input part (docs/boards.md)."""


class PinIn:
    """value() -> bool: the pin level, inverted when `invert` (a button to GND with a pull-up reads
    True while pressed)."""

    def __init__(self, pin, invert=False):
        self._pin = pin
        self._invert = bool(invert)

    def value(self):
        return bool(self._pin.value()) != self._invert


def make(cfg):
    """cfg {"pin": GPIO number or name, "pull": "up"|"down"|None (None), "invert": bool (False)}."""
    from machine import Pin

    pull = cfg.get("pull")
    if pull == "up":
        pin = Pin(cfg["pin"], Pin.IN, Pin.PULL_UP)
    elif pull == "down":
        pin = Pin(cfg["pin"], Pin.IN, Pin.PULL_DOWN)
    elif pull is None:
        pin = Pin(cfg["pin"], Pin.IN)
    else:
        raise ValueError("pin_in: pull must be 'up', 'down' or None")
    return PinIn(pin, cfg.get("invert", False))
