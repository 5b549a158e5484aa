"""Object 6 Location (OMA LwM2M registry 6.xml) from a gnss part, or a fixed position from the profile.

The part (docs/boards.md) has `poll()`, which reads what the receiver sent without blocking, and `fix()`:
None or (lat, lon, alt_m, speed_m_s, unix_time[, course_deg]). The instance appears at the first fix (or
at once with cfg lat/lon): until then there is no position to report, and a Registration Update tells the
server when there is one.
"""
from micropython import const
import math

from .._compat import ticks_add, ticks_diff, unix_time
from ..tables import o6

_VELOCITY = const(4)
_TIMESTAMP = const(5)


def make(client, oid, iid, part, cfg):
    """cfg: every (s between looks at the part, default 0.1: NMEA comes in bursts a UART buffer must not
    overflow), lat/lon/alt (a fixed position: a device that does not move, or has no receiver)."""
    return Location(client, iid, part, cfg)


def velocity(speed, bearing):
    """Resource 4 as 3GPP TS 23.032 §8.12 Horizontal Velocity, 4 bytes: velocity type 0 (bits 8-5 of octet 1),
    3 spare bits, bearing in whole degrees clockwise from north (9 bits: N <= x < N+1), then the horizontal
    speed in km/h (16 bits, rounded: N-0.5 <= h < N+0.5, all ones for faster)."""
    b = int(bearing % 360.0) % 360  # floor into 0..359 (-90.5 is 269.5: N 269); % 360 again for 360.0
    h = min(int(speed * 3.6 + 0.5), 65535)
    return bytes((b >> 8, b & 255, h >> 8, h & 255))


class Location:
    """One instance of object 6: 0/1/2 position, 6 speed, 4 velocity, 5 time of the fix; a change is notified."""

    def __init__(self, client, iid, part, cfg):
        self.c = client
        self.iid = iid
        self.part = part
        self.path = "/6/%d/%%d" % iid
        self.every = int(cfg.get("every", 0.1) * 1000)
        self.due = None
        self.last = None  # the last fix taken over
        self.bearing = 0.0  # course over ground, degrees: kept while standing still
        obj = client.add(o6.T)
        if "lat" in cfg:
            client.add(o6.T, iid, {0: float(cfg["lat"]), 1: float(cfg["lon"]), 2: float(cfg.get("alt", 0)),
                                   _TIMESTAMP: unix_time()})
        self.obj = obj

    def poll(self, now):
        if self.due is None or ticks_diff(now, self.due) >= 0:
            self.due = ticks_add(now, self.every)
            if self.part:
                self.part.poll()
                f = self.part.fix()
                if f is not None and f != self.last:
                    self.take(f)
        return ticks_diff(self.due, now)

    def take(self, f):
        lat, lon, alt, speed, t = f[0], f[1], f[2], f[3], f[4]
        if t is not None:
            t = int(t)
        p = self.last
        if len(f) > 5 and f[5] is not None:  # the receiver knows its course (NMEA RMC)
            self.bearing = f[5]
        elif p and speed and (lat != p[0] or lon != p[1]):  # else: the great-circle bearing from the last fix
            a = math.radians(p[0])
            b = math.radians(lat)
            dl = math.radians(lon - p[1])
            x = math.cos(a) * math.sin(b) - math.sin(a) * math.cos(b) * math.cos(dl)
            self.bearing = math.degrees(math.atan2(math.sin(dl) * math.cos(b), x))
        self.last = f
        d = self.obj.inst.get(self.iid)
        if d is None:  # the first fix: the instance appears (client.add tells the server with an Update)
            self.c.add(o6.T, self.iid)
            d = self.obj.inst[self.iid]
        for rid, v in ((0, lat), (1, lon), (2, alt), (6, speed), (_TIMESTAMP, t),
                       (_VELOCITY, None if speed is None else velocity(speed, self.bearing))):
            if v is not None and d.get(rid) != v:  # a receiver may not know altitude or speed yet
                d[rid] = v
                self.c.changed(self.path % rid)
