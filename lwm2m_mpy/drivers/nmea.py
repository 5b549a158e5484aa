"""A GNSS receiver's NMEA 0183 output over a UART as a gnss part (docs/boards.md).

poll() takes what the UART has (never waits); feed(bytes) assembles lines in a fixed buffer (an NMEA
sentence is at most 82 characters; longer lines are dropped), checks the `*hh` checksum (XOR of the
characters between `$` and `*`) and parses GGA (position, altitude, fix quality) and RMC (status, speed,
date and time) from any talker (GP, GN, GL, GA, GB, BD).
"""
from micropython import const

_LINE = const(100)  # line buffer: 82 characters + slack
_CHUNK = const(64)  # bytes taken from the UART per read
_KNOT = 1852 / 3600  # m/s


class NMEA:
    """poll(); fix() -> None or (lat, lon, alt_m, speed_m_s, unix_time): None until the receiver reports a
    valid fix, and again when it loses it. alt_m is None until a GGA came, speed_m_s and unix_time are
    None until an RMC came. `good` / `bad` count sentences accepted / refused (checksum, format)."""

    def __init__(self, uart=None):
        self._uart = uart
        self._line = bytearray(_LINE)
        self._n = 0  # characters in the line; 0: outside a sentence (waiting for '$')
        self._chunk = bytearray(_CHUNK)
        self._view = memoryview(self._chunk)
        self.good = self.bad = 0
        self.lat = self.lon = self.alt = self.speed = self.time = None
        self._gga = self._rmc = None  # last GGA quality > 0 / RMC status A, None: not seen yet

    def poll(self):
        uart = self._uart
        n = uart.any()
        while n > 0:
            k = uart.readinto(self._chunk if n >= _CHUNK else self._view[:n])
            if not k:
                break
            self.feed(self._chunk if k == _CHUNK else self._view[:k])
            n = uart.any()

    def feed(self, data):
        line = self._line
        n = self._n
        for c in data:
            if c == 0x24:  # '$' starts a sentence, also after a broken one
                line[0] = c
                n = 1
            elif c == 0x0A or c == 0x0D:
                if n:
                    self._sentence(n)
                n = 0
            elif n:
                if n < _LINE:
                    line[n] = c
                    n += 1
                else:
                    n = 0  # too long: not NMEA; drop it
                    self.bad += 1
        self._n = n

    def _sentence(self, n):
        line = self._line
        if n < 10 or line[n - 3] != 0x2A:  # '*hh' at the end
            self.bad += 1
            return
        x = 0
        for i in range(1, n - 3):
            x ^= line[i]
        if x != _hex(line[n - 2]) << 4 | _hex(line[n - 1]):
            self.bad += 1
            return
        try:
            if line[3] == 0x47 and line[4] == 0x47 and line[5] == 0x41:  # GGA
                self._parse_gga(str(memoryview(line)[1:n - 3], "ascii").split(","))
            elif line[3] == 0x52 and line[4] == 0x4D and line[5] == 0x43:  # RMC
                self._parse_rmc(str(memoryview(line)[1:n - 3], "ascii").split(","))
            else:
                return  # a sentence we do not use (GSV, GSA, VTG, ...)
        except (ValueError, IndexError):  # bad numbers or too few fields
            self.bad += 1
            return
        self.good += 1

    def _parse_gga(self, f):
        # GGA: time, lat, N/S, lon, E/W, quality, satellites, HDOP, altitude, M, geoid separation, M, ...
        quality = int(f[6]) if f[6] else 0
        if quality > 0:
            lat, lon = _degrees(f[2], f[3]), _degrees(f[4], f[5])
            alt = float(f[9]) if f[9] else None
            self.lat, self.lon, self.alt = lat, lon, alt
        self._gga = quality > 0

    def _parse_rmc(self, f):
        # RMC: time, status, lat, N/S, lon, E/W, speed (knots), course, date (ddmmyy), magnetic variation,
        # E/W, [mode: N = not valid (NMEA 2.3)]
        ok = f[2] == "A" and (len(f) < 13 or f[12] != "N")
        if ok:
            lat, lon = _degrees(f[3], f[4]), _degrees(f[5], f[6])
            speed = float(f[7]) * _KNOT if f[7] else 0.0
            t, d = f[1], f[9]
            when = None
            if len(t) >= 6 and len(d) == 6:
                yy = int(d[4:6])
                when = ((_days(yy + (2000 if yy < 80 else 1900), int(d[2:4]), int(d[0:2])) * 24 + int(t[0:2])) * 60
                        + int(t[2:4])) * 60 + int(t[4:6])
            self.lat, self.lon, self.speed, self.time = lat, lon, speed, when
        self._rmc = ok

    def fix(self):
        if self._gga is False or self._rmc is False or self.lat is None:
            return None
        return (self.lat, self.lon, self.alt, self.speed, self.time)


def _hex(c):
    if 0x30 <= c <= 0x39:
        return c - 0x30
    if 0x41 <= c <= 0x46 or 0x61 <= c <= 0x66:
        return (c | 0x20) - 0x57
    return 256  # never matches a checksum


def _degrees(dm, hemisphere):
    """NMEA (d)ddmm.mmmm + hemisphere -> signed decimal degrees."""
    dot = dm.find(".")
    if dot < 0:
        dot = len(dm)
    if dot < 3:
        raise ValueError(dm)
    v = int(dm[:dot - 2]) + float(dm[dot - 2:]) / 60
    if hemisphere == "S" or hemisphere == "W":
        return -v
    if hemisphere == "N" or hemisphere == "E":
        return v
    raise ValueError(hemisphere)


def _days(y, m, d):
    """Days from 1970-01-01 to a proleptic Gregorian date (H. Hinnant's days_from_civil)."""
    y -= m <= 2
    era = y // 400
    yoe = y - era * 400
    doy = (153 * (m - 3 if m > 2 else m + 9) + 2) // 5 + d - 1
    return era * 146097 + yoe * 365 + yoe // 4 - yoe // 100 + doy - 719468


def make(cfg):
    """cfg {"uart": id (1), "tx", "rx": GPIO numbers (the port's default pins if absent), "baud": 9600}."""
    from machine import UART, Pin

    if "tx" in cfg:
        uart = UART(cfg.get("uart", 1), baudrate=cfg.get("baud", 9600), tx=Pin(cfg["tx"]), rx=Pin(cfg["rx"]))
    else:
        uart = UART(cfg.get("uart", 1), baudrate=cfg.get("baud", 9600))
    return NMEA(uart)
