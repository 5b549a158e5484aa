"""Sensirion SHT3x (SHT30/31/35) temperature / humidity sensor over I2C as a sensor part (docs/boards.md).

Single shot, high repeatability, no clock stretching (datasheet §4.3, command 0x2400); every 16-bit word
comes with a CRC-8 (§4.12: polynomial 0x31, init 0xFF) that is checked. One measurement serves t and h
when both are read within `max_age_ms`.
"""
from micropython import const
from time import sleep

from .._compat import ticks_ms, ticks_diff

_MEASURE_HI = const(0x2400)  # single shot, high repeatability, clock stretching disabled
_STATUS = const(0xF32D)


def crc8(buf, start, end):
    crc = 0xFF
    for i in range(start, end):
        crc ^= buf[i]
        for _ in range(8):
            crc = ((crc << 1) ^ 0x31) & 0xFF if crc & 0x80 else (crc << 1) & 0xFF
    return crc


class SHT3x:
    """read(q="t") -> °C, read("h") -> %RH. OSError when the chip does not answer or a CRC is wrong."""

    def __init__(self, i2c, addr=0x44, max_age_ms=500):
        self._i2c = i2c
        self._addr = addr
        self._cmd = bytearray(2)
        self._buf = bytearray(6)
        self._max_age = max_age_ms
        self._at = None
        self._t = self._h = 0
        self._command(_STATUS)  # is it there, and is it an SHT3x (status word with a valid CRC)?
        self._read(3)

    def _command(self, cmd):
        self._cmd[0] = cmd >> 8
        self._cmd[1] = cmd & 0xFF
        self._i2c.writeto(self._addr, self._cmd)

    def _read(self, n):
        b = self._buf
        self._i2c.readfrom_into(self._addr, b if n == 6 else memoryview(b)[:n])
        for i in range(0, n, 3):
            if crc8(b, i, i + 2) != b[i + 2]:
                raise OSError("SHT3x: CRC error")
        return b

    def measure(self):
        if self._at is not None and ticks_diff(ticks_ms(), self._at) < self._max_age:
            return
        self._command(_MEASURE_HI)
        sleep(0.016)  # 15.5 ms at most with high repeatability (§4.3 table 4); earlier reads are NACKed
        b = self._read(6)
        self._t = (b[0] << 8) | b[1]
        self._h = (b[3] << 8) | b[4]
        self._at = ticks_ms()

    def read(self, q=None):
        self.measure()
        if q is None or q == "t":
            return -45 + 175 * self._t / 65535  # §4.13
        if q == "h":
            return 100 * self._h / 65535
        raise ValueError("SHT3x: quantity must be 't' or 'h'")


def make(cfg):
    """cfg {"i2c": bus id (0), "sda", "scl": GPIO numbers (the port's default pins if absent),
    "freq": Hz (100000), "addr": 0x44 (0x45 with ADDR high)}. OSError when no SHT3x answers."""
    return SHT3x(i2c_bus(cfg), cfg.get("addr", 0x44))


def i2c_bus(cfg):
    from machine import I2C, Pin

    if "sda" in cfg:
        return I2C(cfg.get("i2c", 0), sda=Pin(cfg["sda"]), scl=Pin(cfg["scl"]), freq=cfg.get("freq", 100000))
    return I2C(cfg.get("i2c", 0), freq=cfg.get("freq", 100000))
