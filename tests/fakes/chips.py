"""Fake I2C chips for tests/fakes/machine.py (and the busio shim of tests/test_drivers_interop.py):
a BME280 register map, an SHT3x and an AHT20 that answer commands with CRC-protected data.

A chip has write(data: bytes) for an I2C write transaction and read(n) -> bytes for a read; raising
OSError is a NACK. Counters (`measurements`) let tests see what the driver asked for.
"""
import struct


def crc8(data, start=0, end=None):
    """Sensirion / Aosong CRC-8: polynomial 0x31, init 0xFF, no reflection, no final XOR."""
    crc = 0xFF
    for i in range(start, len(data) if end is None else end):
        crc ^= data[i]
        for _ in range(8):
            crc = ((crc << 1) ^ 0x31) & 0xFF if crc & 0x80 else (crc << 1) & 0xFF
    return crc


# --- BME280 -----------------------------------------------------------------------------------------

# Register sets: calibration words (T1..T3, P1..P9, H1..H6) and raw ADC values (adc_T, adc_P, adc_H).
# T/P words and ADC values of the BMP280 datasheet's worked example (BST-BMP280-DS001 §3.12; the BME280
# compensates T and P the same way): t_fine 128422, T 2508 (25.08 °C), P 25767236 (Q24.8: 100653.27 Pa).
# Its H words are those of CHIP_A.
DATASHEET = ((27504, 26435, -1000, 36477, -10685, 3024, 2855, 140, -7, 15500, -14600, 6000,
              75, 364, 0, 314, 0, 30), (519888, 415148, 30000))
# The registers of a real BME280: 0x88..0xA1, 0xE1..0xE7 and a measurement 0xF7..0xFE (senlib's
# tests: about 20.08 °C, 54.88 %RH).
CHIP_A_88 = bytes([104, 110, 232, 100, 50, 0, 83, 143, 171, 213, 208, 11, 163, 34, 53, 0, 249, 255, 172,
                   38, 10, 216, 189, 16, 0, 75])
CHIP_A_E1 = bytes([108, 1, 0, 19, 10, 0, 30])
CHIP_A_DATA = bytes([86, 133, 0, 126, 87, 0, 116, 223])
# Another chip's words and a measurement (Pimoroni's bme280-python tests: 24.7894877676 °C,
# 1006.61517564 hPa, 68.66996648709039 %RH by the floating-point formulas).
CHIP_B = ((28009, 25654, 50, 39145, -10750, 3024, 5667, -120, -7, 15500, -14600, 6000,
           75, 376, 0, 286, 50, 30), (529191, 326816, 30281))
# Synthetic words that exercise the signs of the 12-bit H4/H5 and the 8-bit H6 (nibble packing).
SIGNED = ((27504, 26435, -1000, 36477, -10685, 3024, 2855, 140, -7, 15500, -14600, 6000,
           97, 350, 7, -120, -37, -12), (530000, 350000, 2000))


def bme280_blocks(cal):
    """Calibration words -> the bytes of registers 0x88..0xA1 (26) and 0xE1..0xE7 (7), datasheet §4.2.2."""
    b88 = bytearray(26)
    struct.pack_into("<HhhHhhhhhhhh", b88, 0, *cal[:12])
    b88[25] = cal[12]
    e1 = bytearray(7)
    h4, h5 = cal[15], cal[16]
    struct.pack_into("<h", e1, 0, cal[13])
    e1[2] = cal[14]
    e1[3] = (h4 >> 4) & 0xFF
    e1[4] = ((h5 & 0x0F) << 4) | (h4 & 0x0F)
    e1[5] = (h5 >> 4) & 0xFF
    e1[6] = cal[17] & 0xFF
    return bytes(b88), bytes(e1)


class BME280:
    """Register map of a BME280 (datasheet §5.3). Forced mode measures on the ctrl_meas write and goes
    back to sleep; normal mode keeps the data registers current. `busy_reads`: status reads that show
    `measuring` after each measurement starts. Skipped quantities (oversampling 0) read 0x80000/0x8000."""

    def __init__(self, block88=CHIP_A_88, blocke1=CHIP_A_E1, raw=None, chip_id=0x60, busy_reads=0):
        self.regs = bytearray(256)
        self.regs[0x88:0x88 + 26] = block88
        self.regs[0xE1:0xE1 + 7] = blocke1
        self.regs[0xD0] = chip_id
        self.pointer = 0
        self.busy_reads = busy_reads
        self._busy = 0
        self.measurements = 0
        self.resets = 0
        self.raw = raw if raw is not None else (0x80000, 0x80000, 0x8000)
        self._reset()

    @classmethod
    def from_words(cls, cal, raw, **kw):
        b88, e1 = bme280_blocks(cal)
        return cls(b88, e1, raw, **kw)

    @classmethod
    def from_data(cls, block88, blocke1, data, **kw):
        """A chip whose measurement gives these 8 data bytes (0xF7..0xFE)."""
        raw = ((data[3] << 12) | (data[4] << 4) | (data[5] >> 4), (data[0] << 12) | (data[1] << 4) | (data[2] >> 4),
               (data[6] << 8) | data[7])
        return cls(block88, blocke1, raw, **kw)

    def _reset(self):
        for reg in (0xF2, 0xF3, 0xF4, 0xF5):
            self.regs[reg] = 0
        self.regs[0xF7:0xFF] = bytes([0x80, 0, 0, 0x80, 0, 0, 0x80, 0])  # reset values

    def set_raw(self, adc_t, adc_p, adc_h):
        self.raw = (adc_t, adc_p, adc_h)
        if self.regs[0xF4] & 3 == 3:  # normal mode: the next conversion shows it
            self._measure()

    def _measure(self):
        self.measurements += 1
        adc_t, adc_p, adc_h = self.raw
        meas = self.regs[0xF4]
        if not (meas >> 5) & 7:
            adc_t = 0x80000
        if not (meas >> 2) & 7:
            adc_p = 0x80000
        if not self.regs[0xF2] & 7:
            adc_h = 0x8000
        r = self.regs
        r[0xF7], r[0xF8], r[0xF9] = adc_p >> 12, (adc_p >> 4) & 0xFF, (adc_p & 0x0F) << 4
        r[0xFA], r[0xFB], r[0xFC] = adc_t >> 12, (adc_t >> 4) & 0xFF, (adc_t & 0x0F) << 4
        r[0xFD], r[0xFE] = adc_h >> 8, adc_h & 0xFF
        self._busy = self.busy_reads

    def write(self, data):
        if not data:
            return  # an address probe
        self.pointer = data[0]
        for i in range(0, len(data) - 1, 2):  # a write is register/value pairs (§6.2.1)
            self._store(data[i], data[i + 1])

    def _store(self, reg, value):
        if reg == 0xE0:
            if value == 0xB6:
                self.resets += 1
                self._reset()
        elif reg == 0xF2:
            self.regs[reg] = value & 0x07
        elif reg == 0xF4:
            self.regs[reg] = value
            mode = value & 3
            if mode == 1 or mode == 2:  # forced: one measurement, then sleep
                self._measure()
                self.regs[reg] = value & 0xFC
            elif mode == 3:
                self._measure()
        elif reg == 0xF5:
            self.regs[reg] = value & 0xFD
        # everything else is read-only

    def read(self, n):
        out = bytearray(n)
        for i in range(n):
            reg = (self.pointer + i) & 0xFF
            v = self.regs[reg]
            if reg == 0xF3 and self._busy > 0:
                self._busy -= 1
                v |= 0x08  # measuring
            out[i] = v
        self.pointer = (self.pointer + n) & 0xFF
        return bytes(out)


# --- SHT3x ------------------------------------------------------------------------------------------

class SHT3x:
    """Sensirion SHT3x: 16-bit commands; a single-shot measurement command (0x2400, 0x2C06, ...) makes
    the next read return T, CRC, RH, CRC; 0xF32D the status word. Reads with nothing pending NACK.
    `corrupt`: the next answer carries a wrong CRC."""

    def __init__(self, raw_t=0x6666, raw_h=0x8000, status=0x8010):
        self.raw_t = raw_t
        self.raw_h = raw_h
        self.status = status
        self.corrupt = False
        self.measurements = 0
        self.commands = []
        self._pending = None

    def set(self, celsius, rh):
        self.raw_t = int((celsius + 45) * 65535 / 175 + 0.5)
        self.raw_h = int(rh * 65535 / 100 + 0.5)

    @staticmethod
    def _words(*words):
        out = bytearray()
        for w in words:
            pair = bytes([w >> 8, w & 0xFF])
            out.extend(pair)
            out.append(crc8(pair))
        return out

    def write(self, data):
        if len(data) < 2:
            return  # an address probe
        cmd = (data[0] << 8) | data[1]
        self.commands.append(cmd)
        if cmd in (0x2400, 0x240B, 0x2416, 0x2C06, 0x2C0D, 0x2C10):
            self.measurements += 1
            self._pending = self._words(self.raw_t, self.raw_h)
        elif cmd == 0xF32D:
            self._pending = self._words(self.status)
        elif cmd in (0x30A2, 0x3093, 0x3041):
            self._pending = None

    def read(self, n):
        if self._pending is None:
            raise OSError(19)  # NACK: no data
        out = bytearray(self._pending[:n])
        self._pending = None
        if self.corrupt:
            self.corrupt = False
            out[2] ^= 0x01
        return bytes(out) + bytes(max(0, n - len(out)))


# --- AHT20 ------------------------------------------------------------------------------------------

class AHT20:
    """Aosong AHT20: a read returns the status byte (bit 7 busy, bit 3 calibrated), then after a
    measurement 20-bit humidity, 20-bit temperature and a CRC-8 of the first six bytes.
    `calibrated=False`: needs 0xBE (or the AHT10's 0xE1) first; `stuck`: never calibrates.
    `busy_reads`: status reads that show busy after a trigger. `corrupt`: next CRC wrong."""

    def __init__(self, raw_h=0x80000, raw_t=0x66666, calibrated=True, stuck=False, busy_reads=0):
        self.raw_h = raw_h
        self.raw_t = raw_t
        self.calibrated = calibrated
        self.stuck = stuck
        self.busy_reads = busy_reads
        self.corrupt = False
        self.measurements = 0
        self._busy = 0

    def set(self, celsius, rh):
        self.raw_t = int((celsius + 50) * 0x100000 / 200 + 0.5)
        self.raw_h = int(rh * 0x100000 / 100 + 0.5)

    def write(self, data):
        if not data:
            return
        if data[0] in (0xBE, 0xE1) and not self.stuck:
            self.calibrated = True
        elif data[0] == 0xAC and len(data) == 3 and data[1] == 0x33 and data[2] == 0x00:
            self.measurements += 1
            self._busy = self.busy_reads

    def _status(self):
        s = 0x10 | (0x08 if self.calibrated else 0)
        if self._busy > 0:
            self._busy -= 1
            s |= 0x80
        return s

    def read(self, n):
        h, t = self.raw_h, self.raw_t
        out = bytearray([self._status(), h >> 12, (h >> 4) & 0xFF, ((h & 0x0F) << 4) | (t >> 16),
                         (t >> 8) & 0xFF, t & 0xFF, 0])
        out[6] = crc8(out, 0, 6) ^ (0x5A if self.corrupt else 0)
        if n >= 7:
            self.corrupt = False
        return bytes(out[:n]) + bytes(max(0, n - 7))
