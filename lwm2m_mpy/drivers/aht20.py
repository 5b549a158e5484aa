"""Aosong AHT20 (and AHT10 with crc=False) temperature / humidity sensor over I2C as a sensor part
(docs/boards.md). Datasheet (AHT20, v1.1) §5.4: check the calibration bit of the status byte (0xBE
0x08 0x00 when it is clear), trigger with 0xAC 0x33 0x00, wait until the busy bit clears, read 7 bytes:
status, 20-bit humidity, 20-bit temperature, CRC-8 (polynomial 0x31, init 0xFF).
"""
from micropython import const
from time import sleep

from .._compat import ticks_ms, ticks_diff

_BUSY = const(0x80)
_CALIBRATED = const(0x08)
_POLLS = const(20)  # busy polls, 10 ms apart, after the nominal 80 ms


class AHT20:
    """read(q="t") -> °C, read("h") -> %RH. OSError when the chip does not answer, stays busy, or the
    CRC is wrong."""

    def __init__(self, i2c, addr=0x38, crc=True, max_age_ms=500):
        self._i2c = i2c
        self._addr = addr
        self._crc = crc
        self._cmd = bytearray(3)
        self._buf = bytearray(7)
        self._one = bytearray(1)
        self._max_age = max_age_ms
        self._at = None
        self._raw_t = self._raw_h = 0
        sleep(0.1)  # >= 100 ms after power-on before the first command (§5.4 step 1)
        if not self._status() & _CALIBRATED:
            self._command(0xBE, 0x08, 0x00)  # initialise (calibrate)
            sleep(0.01)
            if not self._status() & _CALIBRATED:
                raise OSError("AHT20: not calibrated")

    def _command(self, a, b, c):
        cmd = self._cmd
        cmd[0] = a
        cmd[1] = b
        cmd[2] = c
        self._i2c.writeto(self._addr, cmd)

    def _status(self):
        self._i2c.readfrom_into(self._addr, self._one)  # a 1-byte read (the datasheet's "0x71")
        return self._one[0]

    def measure(self):
        if self._at is not None and ticks_diff(ticks_ms(), self._at) < self._max_age:
            return
        self._command(0xAC, 0x33, 0x00)
        sleep(0.08)  # §5.4 step 3
        for _ in range(_POLLS):
            if not self._status() & _BUSY:
                break
            sleep(0.01)
        else:
            raise OSError("AHT20: busy")
        b = self._buf
        self._i2c.readfrom_into(self._addr, b)
        if self._crc and crc8(b, 6) != b[6]:
            raise OSError("AHT20: CRC error")
        self._raw_h = (b[1] << 12) | (b[2] << 4) | (b[3] >> 4)
        self._raw_t = ((b[3] & 0x0F) << 16) | (b[4] << 8) | b[5]
        self._at = ticks_ms()

    def read(self, q=None):
        self.measure()
        if q is None or q == "t":
            return self._raw_t * 200 / 0x100000 - 50  # §6.2
        if q == "h":
            return self._raw_h * 100 / 0x100000  # §6.1
        raise ValueError("AHT20: quantity must be 't' or 'h'")


def crc8(buf, n):
    crc = 0xFF
    for i in range(n):
        crc ^= buf[i]
        for _ in range(8):
            crc = ((crc << 1) ^ 0x31) & 0xFF if crc & 0x80 else (crc << 1) & 0xFF
    return crc


def make(cfg):
    """cfg {"i2c": bus id (0), "sda", "scl": GPIO numbers (the port's default pins if absent),
    "freq": Hz (100000), "addr": 0x38, "crc": check the 7th byte (True; False for an AHT10)}.
    OSError when no AHT20 answers."""
    return AHT20(i2c_bus(cfg), cfg.get("addr", 0x38), cfg.get("crc", True))


def i2c_bus(cfg):
    from machine import I2C, Pin

    if "sda" in cfg:
        return I2C(cfg.get("i2c", 0), sda=Pin(cfg["sda"]), scl=Pin(cfg["scl"]), freq=cfg.get("freq", 100000))
    return I2C(cfg.get("i2c", 0), freq=cfg.get("freq", 100000))
