"""Simulated parts for the desktop (the `unix` board profile) and tests (docs/boards.md): sensors,
a button, an output that prints, and a GNSS receiver whose NMEA sentences go through drivers/nmea.py.

Values are functions of elapsed time (ticks_ms, injectable), so a run can be reproduced: a slow sine
plus a small deterministic jitter that changes every second.
"""
from math import sin, cos, pi

from .._compat import ticks_ms, ticks_diff, ticks_add, unix_time

# kind: (mid, amp) defaults
_SENSORS = {"t": (21.0, 4.0), "h": (50.0, 15.0), "p": (1013.25, 8.0), "lux": (400.0, 350.0)}


class _Clock:
    """Milliseconds elapsed modulo `cycle`, robust to the ticks wrap-around (poll more often than
    every few days)."""

    def __init__(self, cycle, clock):
        self._cycle = cycle
        self._clock = clock
        self._last = clock()
        self._ms = 0

    def ms(self):
        now = self._clock()
        self._ms = (self._ms + ticks_diff(now, self._last)) % self._cycle
        self._last = now
        return self._ms


def _jitter(s):
    """Second number s -> +-(0.3..1), the sign alternating, the size a hash of s (16-bit arithmetic:
    small ints on every port), so consecutive seconds always differ even at the top of the sine."""
    x = (s * 40503 + 0x3C6E) & 0xFFFF
    x ^= x >> 7
    x = (x * 40503) & 0xFFFF
    x ^= x >> 9
    v = 0.3 + 0.7 * x / 65535
    return -v if s & 1 else v


class SimSensor:
    """read(q=None) -> mid + amp * sin(2 pi t / period) + jitter (about amp / 20; never below 0 for
    "lux"), rounded to 0.01."""

    def __init__(self, mid, amp, period=300, jitter=None, floor=None, clock=ticks_ms):
        self._mid = mid
        self._amp = amp
        self._period = int(period * 1000)
        self._jitter = amp / 20 if jitter is None else jitter
        self._floor = floor
        self._time = _Clock(self._period, clock)

    def read(self, q=None):
        ms = self._time.ms()
        v = self._mid + self._amp * sin(2 * pi * ms / self._period) + self._jitter * _jitter(ms // 1000)
        if self._floor is not None and v < self._floor:
            v = self._floor
        return round(v, 2)


class SimEnv:
    """A simulated BME280: read(q) with q "t" (default), "h" or "p", each its own sine (periods 300, 420
    and 900 s, so they do not move in step)."""

    def __init__(self, clock=ticks_ms):
        self._t = SimSensor(21.0, 4.0, 300, clock=clock)
        self._h = SimSensor(50.0, 15.0, 420, clock=clock)
        self._p = SimSensor(1013.25, 8.0, 900, clock=clock)

    def read(self, q=None):
        if q is None or q == "t":
            return self._t.read()
        if q == "h":
            return self._h.read()
        if q == "p":
            return self._p.read()
        raise ValueError("sim: quantity must be 't', 'h' or 'p'")


class SimInput:
    """value() -> True for `press_ms` at the start of every `every` seconds (a button pressed now and then)."""

    def __init__(self, every=7, press_ms=200, clock=ticks_ms):
        self._press = press_ms
        self._time = _Clock(int(every * 1000), clock)

    def value(self):
        return self._time.ms() < self._press


class SimOutput:
    """value(v=None) -> bool and duty(pct=None) -> pct; prints "sim: <name> on/off" when set."""

    def __init__(self, name="out"):
        self._name = name
        self._on = False
        self._pct = 100.0

    def value(self, v=None):
        if v is not None:
            self._on = bool(v)
            print("sim: %s %s" % (self._name, "on" if self._on else "off"))
        return self._on

    def duty(self, pct=None):
        if pct is not None:
            self._pct = min(max(float(pct), 0.0), 100.0)
            print("sim: %s duty %g%%" % (self._name, self._pct))
        return self._pct


class SimGnss:
    """poll() writes a GGA and an RMC sentence once a second (a point going round a circle of `radius`
    m about (lat, lon) in `period` s) into an NMEA parser; fix() is the parser's."""

    def __init__(self, lat=48.8584, lon=2.2945, radius=30.0, period=120, alt=35.0, clock=ticks_ms,
                 wall=unix_time):
        from .nmea import NMEA

        self.nmea = NMEA(None)
        self._lat, self._lon, self._r, self._alt = lat, lon, radius, alt
        self._period = int(period * 1000)
        self._clock = clock
        self._wall = wall
        self._time = _Clock(self._period, clock)
        self._next = None

    def poll(self):
        now = self._clock()
        if self._next is not None and ticks_diff(now, self._next) < 0:
            return
        self._next = ticks_add(now, 1000)
        a = 2 * pi * self._time.ms() / self._period
        lat = self._lat + self._r * cos(a) / 111320
        lon = self._lon + self._r * sin(a) / (111320 * cos(self._lat * pi / 180))
        knots = 2 * pi * self._r / (self._period / 1000) / (1852 / 3600)
        course = (a * 180 / pi + 90) % 360
        t = self._wall()
        days, s = t // 86400, t % 86400
        y, m, d = _civil(days)
        hms = "%02d%02d%02d.00" % (s // 3600, s // 60 % 60, s % 60)
        self.nmea.feed(_sentence("GPGGA,%s,%s,1,08,0.9,%.1f,M,47.0,M,," % (hms, _latlon(lat, lon), self._alt)))
        self.nmea.feed(_sentence("GPRMC,%s,A,%s,%.2f,%.1f,%02d%02d%02d,,,A" % (
            hms, _latlon(lat, lon), knots, course, d, m, y % 100)))

    def fix(self):
        return self.nmea.fix()


def _latlon(lat, lon):
    alat, alon = abs(lat), abs(lon)
    return "%02d%08.5f,%s,%03d%08.5f,%s" % (int(alat), (alat - int(alat)) * 60, "N" if lat >= 0 else "S",
                                           int(alon), (alon - int(alon)) * 60, "E" if lon >= 0 else "W")


def _sentence(body):
    x = 0
    for c in body:
        x ^= ord(c)
    return ("$%s*%02X\r\n" % (body, x)).encode()


def _civil(z):
    """(year, month, day) of a day number from 1970-01-01 (H. Hinnant's civil_from_days)."""
    z += 719468
    era = z // 146097
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    d = doy - (153 * mp + 2) // 5 + 1
    m = mp + 3 if mp < 10 else mp - 9
    return yoe + era * 400 + (m <= 2), m, d


def make(cfg, clock=ticks_ms):
    """cfg {"kind": "t"|"h"|"p"|"lux" (sensors: "mid", "amp", "period" s (300), "jitter" (amp / 20)),
    "env" (t, h and p in one part, like a BME280), "in" ("every" s (7), "press_ms" (200)),
    "out" ("name"), "gnss" ("lat", "lon", "radius" m (30), "period" s (120), "alt" m (35))}."""
    kind = cfg.get("kind", "t")
    if kind in _SENSORS:
        mid, amp = _SENSORS[kind]
        return SimSensor(cfg.get("mid", mid), cfg.get("amp", amp), cfg.get("period", 300), cfg.get("jitter"),
                         0.0 if kind == "lux" else None, clock)
    if kind == "env":
        return SimEnv(clock)
    if kind == "in":
        return SimInput(cfg.get("every", 7), cfg.get("press_ms", 200), clock)
    if kind == "out":
        return SimOutput(cfg.get("name", "out"))
    if kind == "gnss":
        return SimGnss(cfg.get("lat", 48.8584), cfg.get("lon", 2.2945), cfg.get("radius", 30.0),
                       cfg.get("period", 120), cfg.get("alt", 35.0), clock)
    raise ValueError("sim: unknown kind " + kind)
