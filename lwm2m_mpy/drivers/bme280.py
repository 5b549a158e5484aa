"""Bosch BME280 temperature / humidity / pressure sensor over I2C as a sensor part (docs/boards.md).

Compensation is the datasheet's integer code (BST-BME280-DS002 §4.2.3: 32-bit temperature and
humidity, 64-bit pressure): exact on every port, where MicroPython boards only have single-precision
floats. One measurement (one burst read of 0xF7..0xFE, datasheet §4) serves t, h and p when they are read
within `max_age_ms` of each other, so a board sampling all three wakes the chip once.
"""
from micropython import const
import struct
from time import sleep

from .._compat import ticks_ms, ticks_diff

_CHIP_ID = const(0x60)  # BMP280 answers 0x56..0x58 (no humidity): refused
_REG_CALIB = const(0x88)  # 0x88..0xA1: T1..P9, (0xA0 unused), H1
_REG_CALIB_H = const(0xE1)  # 0xE1..0xE7: H2..H6
_REG_ID = const(0xD0)
_REG_RESET = const(0xE0)
_REG_CTRL_HUM = const(0xF2)
_REG_STATUS = const(0xF3)
_REG_CTRL_MEAS = const(0xF4)
_REG_CONFIG = const(0xF5)
_REG_DATA = const(0xF7)  # press msb/lsb/xlsb, temp msb/lsb/xlsb, hum msb/lsb
_RESET = const(0xB6)
_MEASURING = const(0x08)
_IM_UPDATE = const(0x01)
_FORCED = const(0x01)
_NORMAL = const(0x03)
_STANDBY_1000 = const(0x05)  # normal mode: t_sb = 1000 ms between measurements (§5.4.6)
_POLLS = const(50)  # status polls (2 ms apart) after the nominal measurement time

_OVERSAMPLE = (1, 2, 4, 8, 16)  # register code = index + 1 (§5.4.3-5.4.5)
_FILTER = (0, 2, 4, 8, 16)  # IIR coefficient, register code = index (§3.4.4)


def compensate(cal, adc_t, adc_p, adc_h):
    """Datasheet §4.2.3 integer compensation. cal: (T1..T3, P1..P9, H1..H6). Returns (T in 0.01 °C,
    P in Pa as Q24.8 i.e. Pa*256, H in %RH as Q22.10 i.e. %RH*1024)."""
    t1, t2, t3, p1, p2, p3, p4, p5, p6, p7, p8, p9, h1, h2, h3, h4, h5, h6 = cal
    var1 = (((adc_t >> 3) - (t1 << 1)) * t2) >> 11
    var2 = (((((adc_t >> 4) - t1) * ((adc_t >> 4) - t1)) >> 12) * t3) >> 14
    t_fine = var1 + var2
    t = (t_fine * 5 + 128) >> 8

    var1 = t_fine - 128000
    var2 = var1 * var1 * p6
    var2 = var2 + ((var1 * p5) << 17)
    var2 = var2 + (p4 << 35)
    var1 = ((var1 * var1 * p3) >> 8) + ((var1 * p2) << 12)
    var1 = (((1 << 47) + var1) * p1) >> 33
    if var1 == 0:
        p = 0  # the datasheet's guard against a division by zero (no valid calibration)
    else:
        p = 1048576 - adc_p
        p = ((p << 31) - var2) * 3125
        p = p // var1 if p >= 0 else -(-p // var1)  # C's division truncates towards zero
        var1 = (p9 * (p >> 13) * (p >> 13)) >> 25
        var2 = (p8 * p) >> 19
        p = ((p + var1 + var2) >> 8) + (p7 << 4)

    v = t_fine - 76800
    v = ((((adc_h << 14) - (h4 << 20) - (h5 * v)) + 16384) >> 15) * (
        ((((((v * h6) >> 10) * (((v * h3) >> 11) + 32768)) >> 10) + 2097152) * h2 + 8192) >> 14)
    v = v - (((((v >> 15) * (v >> 15)) >> 7) * h1) >> 4)
    v = 0 if v < 0 else (419430400 if v > 419430400 else v)
    return t, p, v >> 12


def calibration(block, block_h):
    """The 18 compensation words from registers 0x88..0xA1 (26 bytes) and 0xE1..0xE7 (7 bytes), §4.2.2."""
    cal = struct.unpack_from("<HhhHhhhhhhhh", block, 0)
    e4 = block_h[3] - 256 if block_h[3] > 127 else block_h[3]  # H4 and H5 are signed 12-bit
    e6 = block_h[5] - 256 if block_h[5] > 127 else block_h[5]
    h6 = block_h[6] - 256 if block_h[6] > 127 else block_h[6]
    return cal + (block[25], struct.unpack_from("<h", block_h, 0)[0], block_h[2],
                  (e4 << 4) | (block_h[4] & 0x0F), (e6 << 4) | (block_h[4] >> 4), h6)


class BME280:
    """read(q="t") -> °C, read("h") -> %RH, read("p") -> hPa. mode "forced" (a measurement on demand,
    the chip sleeps in between: the datasheet's weather-monitoring setting) or "normal" (the chip
    measures every second by itself)."""

    def __init__(self, i2c, addr=0x76, mode="forced", oversample=1, iir=0, max_age_ms=500):
        if mode != "forced" and mode != "normal":
            raise ValueError("BME280: mode must be 'forced' or 'normal'")
        code = _OVERSAMPLE.index(oversample) + 1  # ValueError for other values
        config = (_STANDBY_1000 << 5) | (_FILTER.index(iir) << 2)
        self._forced = mode == "forced"
        self._i2c = i2c
        self._addr = addr
        self._buf = bytearray(8)
        self._one = bytearray(1)
        self._max_age = max_age_ms
        self._at = None  # ticks of the last measurement
        self._t = self._p = self._h = 0
        if self._get(_REG_ID) != _CHIP_ID:
            raise OSError("BME280: chip id 0x%02x at 0x%02x" % (self._one[0], addr))
        self._set(_REG_RESET, _RESET)
        sleep(0.003)  # start-up time after a reset: 2 ms (§1.1)
        for _ in range(_POLLS):
            if not self._get(_REG_STATUS) & _IM_UPDATE:  # NVM data copied to the image registers
                break
            sleep(0.002)
        block = bytearray(26)
        i2c.readfrom_mem_into(addr, _REG_CALIB, block)
        block_h = bytearray(7)
        i2c.readfrom_mem_into(addr, _REG_CALIB_H, block_h)
        self._cal = calibration(block, block_h)
        # §9.1, maximum measurement time with all three enabled: 1.25 + 3 * 2.3 * osrs + 2 * 0.575 ms
        self._wait = (2400 + 6900 * oversample) / 1000000
        self._set(_REG_CONFIG, config)  # written in sleep mode, or the chip may ignore it (§5.4.6)
        self._set(_REG_CTRL_HUM, code)  # takes effect with the ctrl_meas write that follows (§5.4.3)
        self._meas = (code << 5) | (code << 2)
        if self._forced:
            self._set(_REG_CTRL_MEAS, self._meas)  # oversampling set, still asleep
        else:
            self._set(_REG_CTRL_MEAS, self._meas | _NORMAL)
            sleep(self._wait)  # the first result

    def _get(self, reg):
        self._i2c.readfrom_mem_into(self._addr, reg, self._one)
        return self._one[0]

    def _set(self, reg, value):
        self._one[0] = value
        self._i2c.writeto_mem(self._addr, reg, self._one)

    def measure(self):
        """A new measurement unless the last one is younger than max_age_ms."""
        if self._at is not None and ticks_diff(ticks_ms(), self._at) < self._max_age:
            return
        if self._forced:
            self._set(_REG_CTRL_MEAS, self._meas | _FORCED)
            sleep(self._wait)
            for _ in range(_POLLS):
                if not self._get(_REG_STATUS) & _MEASURING:
                    break
                sleep(0.002)
            else:
                raise OSError("BME280: measurement does not end")
        b = self._buf
        self._i2c.readfrom_mem_into(self._addr, _REG_DATA, b)  # one burst: all values of one measurement
        self._t, self._p, self._h = compensate(self._cal, (b[3] << 12) | (b[4] << 4) | (b[5] >> 4),
                                               (b[0] << 12) | (b[1] << 4) | (b[2] >> 4), (b[6] << 8) | b[7])
        self._at = ticks_ms()

    def read(self, q=None):
        self.measure()
        if q is None or q == "t":
            return self._t / 100
        if q == "h":
            return self._h / 1024
        if q == "p":
            return self._p / 25600  # Pa * 256 -> hPa
        raise ValueError("BME280: quantity must be 't', 'h' or 'p'")


def make(cfg):
    """cfg {"i2c": bus id (0), "sda", "scl": GPIO numbers (the port's default pins if absent),
    "freq": Hz (100000), "addr": 0x76 (0x77 with SDO high), "mode": "forced"|"normal" ("forced"),
    "oversample": 1|2|4|8|16 (1), "iir": 0|2|4|8|16 (0)}. OSError when no BME280 answers."""
    return BME280(i2c_bus(cfg), cfg.get("addr", 0x76), cfg.get("mode", "forced"), cfg.get("oversample", 1),
                  cfg.get("iir", 0))


def i2c_bus(cfg):
    from machine import I2C, Pin

    if "sda" in cfg:
        return I2C(cfg.get("i2c", 0), sda=Pin(cfg["sda"]), scl=Pin(cfg["scl"]), freq=cfg.get("freq", 100000))
    return I2C(cfg.get("i2c", 0), freq=cfg.get("freq", 100000))
