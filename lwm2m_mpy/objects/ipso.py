"""IPSO objects with behaviour (OMA LwM2M registry 3200-3347): sensors, digital inputs and outputs over parts.

`make(client, oid, iid, part, cfg)` adds the object and instance and returns it; `instance.poll(now)`
samples or debounces and returns the ms until it wants polling again. Parts are the drivers of
docs/boards.md (sensor `read(q)`, input `value()`, output `value(v)` / `duty(pct)`); this module knows
LwM2M and nothing of pins. Values live in the instance dict where they can; only what must be computed
when read (a live sensor value, an output read back, on time, energy) is a getter hook.
"""
from micropython import const

from .._compat import ticks_add, ticks_diff, unix_time
from ..core.store import Obj
from ..errors import CoapError

# Hook keys (core/store.py): kind << 26 | iid << 16 | rid
_SET = const(1 << 26)
_EXE = const(2 << 26)
# IPSO resource ids (OMA LwM2M registry, reusable resources)
_STATE = const(5500)  # Digital Input State
_COUNTER = const(5501)
_POLARITY = const(5502)
_DEBOUNCE = const(5503)
_EDGE = const(5504)  # 1 falling, 2 rising, 3 both
_COUNTER_RESET = const(5505)
_TIMESTAMP = const(5518)
_OUT_STATE = const(5550)  # Digital Output State (3201)
_OUT_POLARITY = const(5551)
_ANALOG = const(5600)  # Analog Input Current Value (3202 has it instead of 5700)
_MIN = const(5601)
_MAX = const(5602)
_RANGE_LO = const(5603)
_RANGE_HI = const(5604)
_RESET = const(5605)
_VALUE = const(5700)
_UNITS = const(5701)
_COLOUR = const(5706)
_APP = const(5750)
_ENERGY = const(5805)  # Cumulative active power, Wh (3311)
_POWER_FACTOR = const(5820)
_ON_OFF = const(5850)
_DIMMER = const(5851)
_ON_TIME = const(5852)
_OFF_TIME = const(5854)

_BAD = const(128)  # 4.00
_FAILED = const(160)  # 5.00
_TICK = const(50)  # ms between input polls
_SETTLE = const(3600000)  # ms: an output adds up its on time at least hourly (ticks_diff spans ~6 days)


def make(client, oid, iid, part, cfg):
    """Add object `oid` (table lwm2m_mpy/tables/o<oid>.py) with instance `iid` driven by `part`.

    cfg: app (5750), units (5701), q (quantity of a multi-sensor part), lo/hi (5603/5604), every (sensor
    sampling period, s, default 5), debounce (inputs, ms, default 30), watts/pf/colour (3311), dim (start
    dimmer, default 100)."""
    t = __import__("lwm2m_mpy.tables.o%d" % oid, None, None, ("T",)).T
    kind = Input if oid in (3200, 3342, 3347) else Output if oid in (3201, 3306, 3311) else Sensor
    obj = client.objs.get(oid) or Obj(t)  # asked before anything is added: a refusal leaves no trace
    if kind is Sensor and obj.res(_VALUE) < 0 and obj.res(_ANALOG) < 0:
        raise ValueError("no behaviour for object %d" % oid)
    obj = client.add(t, iid)  # any IPSO sensor object works as Sensor: 5700 (or 5600) with min/max
    d = obj.inst[iid]
    if "app" in cfg:
        d[_APP] = cfg["app"]
    return kind(client, obj, iid, part, cfg, d)


def _refuse(d, rid, was):
    """Put back what a refused Write stored (core/changes.py stores the value before it calls the setter),
    then answer 4.00. `was` None: the resource had no stored value (a getter serves it)."""
    if was is None:
        d.pop(rid, None)
    else:
        d[rid] = was
    raise CoapError(_BAD, "value out of range for resource %d" % rid)


class Sensor:
    """5700 Sensor Value read live from the part (5600 for Analog Input), 5601/5602 Min/Max Measured since
    start or 5605 Reset, sampled every `every` s so observers hear of changes between reads."""

    # Defaults on the class: an instance dict holds only what differs (fewer entries, a smaller table)
    q = None  # the quantity of a multi-sensor part
    every = 5000
    due = None  # when to sample next; None: at the first poll
    v = None  # the last value read
    last = None  # the last value sampled by poll (a Read in between must not hide a change)
    fresh = False  # poll's sample is being announced: the getter must not read the part again
    down = False  # the part failed at the last sample: logged once per failure streak
    at = mid = None  # the request (exchange clock, message ID) of the last reading

    def __init__(self, client, obj, iid, part, cfg, d):
        self.c = client
        self.part = part
        self.d = d
        if "q" in cfg:
            self.q = cfg["q"]
        self.rid = rid = _VALUE if obj.res(_VALUE) >= 0 else _ANALOG
        self.path = "/%d/%d/%%d" % (obj.oid, iid)
        if "every" in cfg:
            self.every = int(cfg["every"] * 1000)
        if obj.res(_UNITS) >= 0:
            oid = obj.oid
            u = cfg.get("units") or ("Cel" if oid == 3303 else "%RH" if oid == 3304 else "hPa" if oid == 3315
                                     else "lx" if oid == 3301 else None)
            if u:
                d[_UNITS] = u
        if "lo" in cfg:
            d[_RANGE_LO] = float(cfg["lo"])
        if "hi" in cfg:
            d[_RANGE_HI] = float(cfg["hi"])
        k = iid << 16
        obj.hooks[k | rid] = self.read
        # Min/Max read after a fresh sample too: an instance Read lists 5601/5602 before 5700, and the
        # value must lie between them in one response
        obj.hooks[k | _MIN] = lambda: self.peak(_MIN)
        obj.hooks[k | _MAX] = lambda: self.peak(_MAX)
        obj.hooks[_EXE | k | _RESET] = self.reset

    def read(self):
        """The getter of 5700: the part now (or poll's sample while poll announces it). One reading per
        request (the exchange's clock and message ID say which): every resource of a Read sees the same."""
        ex = self.c.ex
        if not self.fresh and (ex.now != self.at or ex.rx.mid != self.mid):
            try:
                v = self.part.read(self.q)
            except OSError as e:  # the device stopped answering: 5.00 for this request, the client goes on
                raise CoapError(_FAILED, "sensor %s not answering (%s)" % (self.path[:-3], e))
            self.note(v)
            self.at = ex.now
            self.mid = ex.rx.mid
        return self.v

    def peak(self, rid):
        self.read()
        return self.d[rid]

    def note(self, v):
        """A new measurement: keep it, its time, and the min/max since start or reset (notified)."""
        self.v = v
        d = self.d
        d[_TIMESTAMP] = unix_time()
        lo = d.get(_MIN)
        if lo is None or v < lo:
            d[_MIN] = v
            self.c.changed(self.path % _MIN)
        hi = d.get(_MAX)
        if hi is None or v > hi:
            d[_MAX] = v
            self.c.changed(self.path % _MAX)

    def reset(self, args):
        """5605: Min and Max Measured Values back to the current value (none yet: both gone until one)."""
        d = self.d
        if self.v is None:
            d.pop(_MIN, None)
            d.pop(_MAX, None)
        else:
            d[_MIN] = d[_MAX] = self.v
        self.c.changed(self.path % _MIN)
        self.c.changed(self.path % _MAX)

    def poll(self, now):
        if self.due is None or ticks_diff(now, self.due) >= 0:
            self.due = ticks_add(now, self.every)
            c = self.c
            try:
                v = self.part.read(self.q)
            except OSError as e:
                if not self.down and c.log:
                    c.log("sensor %s not answering (%s)" % (self.path[:-3], e))
                self.down = True
            else:
                if self.down:
                    self.down = False
                    if c.log:
                        c.log("sensor %s answers again" % self.path[:-3])
                self.fresh = True  # observers read the value through the getter while told of it
                try:
                    self.note(v)
                    if v != self.last:
                        self.last = v
                        c.changed(self.path % self.rid)
                finally:
                    self.fresh = False
        return ticks_diff(self.due, now)


class Input:
    """3200 Digital Input, 3347 Push Button, 3342 On/Off Switch: 5500 state debounced (a change counts
    once stable for `debounce` ms), 5501 counts rising edges (3200: 5504 picks the edges, 5505 resets,
    5502 reverses the polarity, 5503 is the debounce period), 3342: 5852/5854 seconds on/off since the
    last change (a Write sets the count, 0 resets it)."""

    e = 2  # 3200: the edge selection in force, what a refused Write of 5504 puts back
    deb = 30  # ms
    base = 0  # seconds in the present state before self.t (on/off time of 3342)

    def __init__(self, client, obj, iid, part, cfg, d):
        self.c = client
        self.part = part
        self.d = d
        self.path = "/%d/%d/%%d" % (obj.oid, iid)
        if "debounce" in cfg:
            self.deb = cfg["debounce"]
        self.now = self.since = self.t = client.ex.now  # last poll, last raw change, last state change
        k = iid << 16
        hooks = obj.hooks
        if obj.res(_POLARITY) >= 0:  # 3200: the settings are resources the server may write
            d[_POLARITY] = False
            d[_DEBOUNCE] = self.deb
            d[_EDGE] = 2
            hooks[_SET | k | _EDGE] = self.edge
            hooks[_EXE | k | _COUNTER_RESET] = self.zero
        if obj.res(_OFF_TIME) >= 0:  # 3342 (lambdas: a method each would cost more heap as bytecode)
            hooks[k | _ON_TIME] = lambda: self.held(True)
            hooks[k | _OFF_TIME] = lambda: self.held(False)
            hooks[_SET | k | _ON_TIME] = lambda v: self.count(_ON_TIME, v, True)
            hooks[_SET | k | _OFF_TIME] = lambda v: self.count(_OFF_TIME, v, False)
        self.raw = d[_STATE] = bool(part.value())
        d[_COUNTER] = 0

    def poll(self, now):
        d = self.d
        self.now = now
        v = self.part.value() != d.get(_POLARITY, False)
        if v != self.raw:
            self.raw = v
            self.since = now
        if ticks_diff(now, self.t) >= _SETTLE:  # keep tick differences short: they wrap after ~6 days
            self.t = ticks_add(self.t, _SETTLE)
            self.base += _SETTLE // 1000
        if v == d[_STATE]:
            return _TICK
        left = d.get(_DEBOUNCE, self.deb) - ticks_diff(now, self.since)
        if left > 0:  # not stable long enough yet: look again when it would be
            return min(left, _TICK)
        d[_STATE] = v
        d[_TIMESTAMP] = unix_time()
        self.t = now
        if self.base:
            self.base = 0
        self.c.changed(self.path % _STATE)
        if d.get(_EDGE, 2) & (2 if v else 1):
            d[_COUNTER] += 1
            self.c.changed(self.path % _COUNTER)
        return _TICK

    def zero(self, args):
        self.d[_COUNTER] = 0
        self.c.changed(self.path % _COUNTER)

    def edge(self, v):
        if not 1 <= v <= 3:
            _refuse(self.d, _EDGE, self.e)
        self.e = v

    def held(self, on):
        """3342 On/Off Time: seconds in the present state, 0 for the other one."""
        return self.base + ticks_diff(self.now, self.t) // 1000 if self.d[_STATE] == on else 0

    def count(self, rid, v, on):
        if v < 0:
            _refuse(self.d, rid, None)
        self.d.pop(rid, None)  # the getter serves it; nothing to keep in the store
        if self.d[_STATE] == on:  # counting from v seconds now (a count for the other state is moot)
            self.base = v
            self.t = self.now


class Output:
    """3201 Digital Output (5550 state, 5551 polarity), 3311 Light Control and 3306 Actuation (5850 on/off,
    5851 dimmer 0-100 through the part's duty() when it has one, 5852 on time, 3311: 5805 energy in Wh from
    `watts`). Writes drive the part; the state reads back from it. Times come from the client's clock
    (`client.ex.now`: the time of the request or step being handled)."""

    duty = None  # the part's duty() where the object has a dimmer
    pol = False  # 5551 (3201)
    ms = 0  # on time, ms, up to self.t
    wh = 0.0  # energy, Wh, up to self.t
    watts = 0
    dim = 100

    def __init__(self, client, obj, iid, part, cfg, d):
        self.c = client
        self.part = part
        self.d = d
        k = iid << 16
        hooks = obj.hooks
        self.rid = rid = _OUT_STATE if obj.res(_OUT_STATE) >= 0 else _ON_OFF
        self.on = bool(part.value())
        self.t = client.ex.now
        if "watts" in cfg:
            self.watts = cfg["watts"]
        if "dim" in cfg:
            self.dim = cfg["dim"]
        hooks[k | rid] = lambda: part.value() != self.pol  # read back: what the pin does, not what was asked
        hooks[_SET | k | rid] = self.switch
        if rid == _OUT_STATE:
            d[_OUT_POLARITY] = False
            hooks[_SET | k | _OUT_POLARITY] = self.polarity
            return
        self.duty = getattr(part, "duty", None)
        d[_DIMMER] = self.dim
        hooks[_SET | k | _DIMMER] = self.dimmer
        hooks[k | _ON_TIME] = lambda: self.settle() or self.ms // 1000
        hooks[_SET | k | _ON_TIME] = self.set_on
        if obj.res(_ENERGY) >= 0:  # 3311
            if "colour" in cfg:
                d[_COLOUR] = cfg["colour"]
            if "pf" in cfg:
                d[_POWER_FACTOR] = float(cfg["pf"])
            if self.watts:
                hooks[k | _ENERGY] = lambda: self.settle() or self.wh
                d[_UNITS] = cfg.get("units", "Wh")
            elif "units" in cfg:
                d[_UNITS] = cfg["units"]
        if self.duty:  # the part's level from the start is the dimmer value the server reads
            self.duty(self.dim)

    def settle(self):
        """Add the time (and energy) since the last change up to now, before anything changes."""
        now = self.c.ex.now
        if self.on:
            dt = ticks_diff(now, self.t)
            if dt > 0:
                self.ms += dt
                if self.watts:  # W x dimmer % x ms -> Wh
                    self.wh += self.watts * self.dim * dt / 360000000
        self.t = now

    def drive(self):
        if self.duty:  # the level the part uses while on (docs/boards.md: kept across off and on)
            self.duty(self.dim)
        self.part.value(self.on != self.pol)

    def switch(self, v):
        self.settle()
        self.on = v
        self.drive()
        self.d.pop(self.rid, None)  # the getter serves it

    def polarity(self, v):
        self.pol = v
        self.drive()

    def dimmer(self, v):
        if not 0 <= v <= 100:
            _refuse(self.d, _DIMMER, self.dim)
        self.settle()
        self.dim = v
        self.drive()

    def set_on(self, v):
        if v < 0:
            _refuse(self.d, _ON_TIME, None)
        self.d.pop(_ON_TIME, None)
        self.settle()
        self.ms = v * 1000

    def poll(self, now):
        self.settle()
        return _SETTLE
