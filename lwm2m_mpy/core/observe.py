"""Observe and Notify (LwM2M 1.1 Core §6.4.1-6.4.3, RFC 7641) with the notification attributes of §5.1.2,
and notification storing (Server resource /1/x/6) while the server is out of reach or the client sleeps.

Imported on the first Observe request. Every observation is one fixed-size record (40 bytes) in a bytearray of four
(layout below): a hundred cost about 5 KiB and no Python objects. Attributes stay in DM.attrs, where
Write-Attributes put them; the periods they give are cached in the record. A notification goes out when
pmin allows and a change is due, and at pmax at the latest; every `confirm`-th one (and the first after a
lost one) is confirmable. A confirmable notification that is never acknowledged means the link is gone:
notifications are stored (bounded, oldest dropped) while Registration Updates probe the link, and flushed
in order once the server answers again. Kept compact on purpose: this module's code is heap on a board.
"""
from micropython import const
import struct

from .._compat import ticks_add, ticks_diff
from ..errors import CoapError

# Record layout, _REC bytes per observation (integers little-endian)
_REC = const(40)
_PLEN = const(1)  # path length 1-4 (object ... resource instance); 0 for Observe-Composite
_TKL = const(2)
_NONS = const(3)  # non-confirmable notifications since the last confirmable one
_TOKEN = const(4)  # 8 bytes
_PATH = const(12)  # 4 x u16
_CF = const(20)  # u16: the content format of the first response, kept for every notification
_MID = const(22)  # u16: message ID of the last notification (a RST names it)
_LAST = const(24)  # u32 ticks: when the last notification went out
_SAMPLE = const(28)  # u32 ticks: when a getter-backed resource is read next
_PMIN = const(32)  # u16 period (_period): seconds below 32768, else minutes with the top bit set
_PMAX = const(34)  # u16 period, 0 = none
_VAL = const(36)  # 4 bytes: last value notified (an int32, a float32, or a hash of a string)
# Byte 0: flags
_ACTIVE = const(1)
_PENDING = const(2)  # a change waits for pmin
_HAVE = const(4)  # _VAL holds the last value
_NUM = const(8)  # ... as a float32
_INT = const(32)  # ... as an int32
_SAMPLED = const(16)  # a getter, read every evaluation period (epmax, else pmin) to see changes
_SHIFT = const(2)  # 4 records per bytearray: no big block to find, none to reallocate
_MASK = const(3)

_CON = const(0)
_NON = const(1)
_OBSERVE = const(6)
_CONTENT_FORMAT = const(12)
_MAX_AGE = const(14)
_REGISTERED = const(2)


def uint(r, i, n):
    """Little-endian unsigned of n bytes at r[i]."""
    v = 0
    for i in range(i + n - 1, i - 1, -1):
        v = v << 8 | r[i]
    return v


def put(r, i, n, v):
    """Store v as n little-endian bytes at r[i]."""
    for i in range(i, i + n):
        r[i] = v & 255
        v >>= 8


def _period(s, k):
    """A period in 16 bits: seconds up to 9 hours, whole minutes beyond (rounded up for pmin, k=1, down for
    pmax, k=0, so neither bound is broken); 22 days at most."""
    return s if s < 0x8000 else 0x8000 | min((s + 59 * k) // 60, 0x7FFF)


def _ms(v):
    return (v & 0x7FFF) * (60000 if v & 0x8000 else 1000)


def _sooner(v, b):
    return b if v is None or ticks_diff(b, v) < 0 else v


def get(dm):
    """The client's Observer, made on the first Observe."""
    if dm.obs is None:
        dm.obs = Observer(dm.client)
    return dm.obs


class Observer:
    """The client's observations of its server, and the notifications stored for it."""

    def __init__(self, client):
        self.c = client
        self.rs = []  # the records, 8 to a bytearray
        self.paths = {}  # record index -> path tuples of an Observe-Composite
        self.queue = []  # notifications waiting for the link, oldest first (datagram bytes)
        self.dropped = 0  # stored notifications given up because the store was full
        self.seq = 0  # Observe sequence number: shared, it only has to grow per observation (RFC 7641 §4.4)
        self.offline = False  # a confirmable notification went unanswered: Updates probe the link
        self.acked = None  # reg.acked when the link was lost: a newer one means an Update got through
        self.probed = False  # the link came back: one more lost notification means the server ignores them
        self.location = client.reg.location  # another one: registered anew
        self.out = -1  # record of the confirmable notification in flight, and its bytes
        self.data = None
        client.ex.rst = self.rst

    def _at(self, k):
        return self.rs[k >> _SHIFT], (k & _MASK) * _REC

    # -- requests (from core/dm.py and core/composite.py) -----------------------------------------
    def request(self, dm, m, w, accept, obj, paths=None):
        """GET/FETCH with an Observe option: register (0) or cancel (1) an observation, then answer as a read."""
        observe = m.uint(_OBSERVE) == 0
        k = self.find(m.buf, m.tkl)
        if k >= 0:  # the same token again: replaces (RFC 7641 §4.1) or cancels (§3.6) the observation
            self.cancel(k, "observed again" if observe else "cancelled by the server")
        if observe:
            self.seq = (self.seq + 1) & 0xFFFFFF
            w.option(_OBSERVE, self.seq)
        at = w.n
        code = self._read(dm, w, accept, obj, paths)  # a failed read raises: no observation
        if not observe:
            return code
        k = 0  # a free record, else a new bytearray of them
        while k < len(self.rs) << _SHIFT and self.rs[k >> _SHIFT][(k & _MASK) * _REC]:
            k += 1
        if k == len(self.rs) << _SHIFT:
            self.rs.append(bytearray(_REC << _SHIFT))
        r, o = self._at(k)
        for i in range(o, o + _REC):
            r[i] = 0
        r[o] = _ACTIVE
        r[o + _TKL] = m.tkl
        r[o + _TOKEN : o + _TOKEN + m.tkl] = m.buf[4 : 4 + m.tkl]
        plen = 0 if paths else dm.plen
        r[o + _PLEN] = plen
        for i in range(plen):
            put(r, o + _PATH + 2 * i, 2, dm.path[i])
        if paths:
            self.paths[k] = paths
        b = w.buf
        if b[at] >> 4 == _CONTENT_FORMAT - _OBSERVE:  # the format the read chose: every notification uses it
            put(r, o + _CF, 2, int.from_bytes(b[at + 1 : at + 1 + (b[at] & 15)], "big"))
        put(r, o + _LAST, 4, self.c.ex.now)
        self.update(k)
        self._keep(k, dm)
        self._max_age(w, at, _ms(uint(r, o + _PMAX, 2)) // 1000)
        if self.c.log:
            self.c.log("observe %s, format %d" % (self.name(k), uint(r, o + _CF, 2)))
        return code

    def _read(self, dm, w, accept, obj, paths):
        if paths:
            return dm._lazy("core.composite").read(dm, w, accept, paths)
        return dm._read(obj, accept, w)

    def find(self, buf, tkl):
        """Index of the active observation whose token is buf[4:4 + tkl], or -1."""
        for k in range(len(self.rs) << _SHIFT):
            r, o = self._at(k)
            if r[o] and r[o + _TKL] == tkl and r[o + _TOKEN : o + _TOKEN + tkl] == buf[4 : 4 + tkl]:
                return k
        return -1

    def cancel(self, k, msg):
        if self.c.log:
            self.c.log("cancel %s (%s)" % (self.name(k), msg))
        r, o = self._at(k)
        r[o] = 0
        self.paths.pop(k, None)

    def count(self):
        return sum(1 for k in range(len(self.rs) << _SHIFT) if self.rs[k >> _SHIFT][(k & _MASK) * _REC])

    def path(self, k):
        r, o = self._at(k)
        return [uint(r, o + _PATH + 2 * i, 2) for i in range(r[o + _PLEN])]

    def name(self, k):
        ps = self.paths.get(k) or (self.path(k),)
        return " ".join("/" + "/".join(str(i) for i in p) for p in ps)

    # -- attributes (§5.1.2) ------------------------------------------------------------------------
    def attrs(self, path):
        """The attributes in force for `path`: Server defaults, then object, instance, resource levels
        (gt, lt and st only from the resource level: they belong to a value)."""
        srv = self.c.objs[1].inst.get(self.c.reg.iid) or {}
        a = {"pmin": srv.get(2, 0), "pmax": srv.get(3, 0)}
        for n in range(1, len(path) + 1):
            for x, v in (self.c.dm.attrs.get(tuple(path[:n])) or {}).items():
                if n > 2 or x not in ("gt", "lt", "st"):
                    a[x] = v
        return a

    def update(self, k=-1, now=None):
        """Cache pmin/pmax (pmax not above pmin is ignored, §5.1.2) and plan the next sampling of a getter:
        every epmax, else every pmin, never more often than epmin. k=-1: every observation."""
        if k < 0:
            for k in range(len(self.rs) << _SHIFT):
                if self.rs[k >> _SHIFT][(k & _MASK) * _REC]:
                    self.update(k)
            return
        r, o = self._at(k)
        p = self.path(k)
        a = self.attrs(p)
        pmin = a["pmin"]
        put(r, o + _PMIN, 2, _period(pmin, 1))
        put(r, o + _PMAX, 2, _period(a["pmax"], 0) if a["pmax"] > pmin else 0)
        lo = a.get("epmin", 0)
        hi = a.get("epmax", 0)
        period = max(hi if hi > lo else pmin, lo) * 1000
        obj = self.c.objs.get(p[0]) if p else None
        r[o] &= ~_SAMPLED
        if period and len(p) > 2 and obj and (p[1] << 16 | p[2]) in obj.hooks:
            r[o] |= _SAMPLED
            put(r, o + _SAMPLE, 4, ticks_add(self.c.ex.now if now is None else now, period))

    # -- changes ------------------------------------------------------------------------------------
    def changed(self, oid, iid, rid):
        """A value (rid), or an instance (rid None: created or deleted) changed: mark what it touches."""
        if oid == 1 and rid in (2, 3):
            self.update()
        for k in range(len(self.rs) << _SHIFT):
            r, o = self._at(k)
            if not r[o]:
                continue
            for p in self.paths.get(k) or (self.path(k),):
                n = len(p)
                if n and p[0] == oid and (n < 2 or p[1] == iid) and (n < 3 or rid is None or p[2] == rid):
                    if r[o + _PLEN] > 2 and rid is not None:
                        self.check(k)
                    else:
                        r[o] |= _PENDING

    def check(self, k):
        """A resource's value may have changed: pending if it did, as gt/lt/st say when present, relative
        to the value last notified (a crossing of gt or lt, a step of st)."""
        r, o = self._at(k)
        p = self.path(k)
        f = r[o]
        try:
            v = self.c.objs[p[0]].get(p[1], p[2])
            if len(p) > 3:
                v = v[p[3]]
        except (CoapError, KeyError):  # gone: the notification will say so
            f = 0
        if not f & _HAVE:
            due = True
        elif not f & (_NUM | _INT) or not isinstance(v, (int, float)):
            due = hash(v) & 0xFFFFFFF != uint(r, o + _VAL, 4)
        else:
            if f & _INT:
                last = uint(r, o + _VAL, 4)
                last -= last >> 31 << 32
            else:  # compared at the precision kept
                last = struct.unpack_from(">f", r, o + _VAL)[0]
                v = struct.unpack(">f", struct.pack(">f", v))[0]
            a = self.attrs(p)
            gt = a.get("gt")
            lt = a.get("lt")
            st = a.get("st")
            due = (gt is None and lt is None and st is None and v != last
                   or gt is not None and (last > gt) != (v > gt) or lt is not None and (last < lt) != (v < lt)
                   or st is not None and abs(v - last) >= st)
        if due:
            r[o] |= _PENDING

    def _keep(self, k, dm):
        """Remember the value just sent: the one DM read (a getter is not called twice)."""
        r, o = self._at(k)
        r[o] &= ~(_HAVE | _NUM | _INT)
        v = dm.v
        if r[o + _PLEN] < 3:
            return
        if isinstance(v, int) and -0x80000000 <= v < 0x80000000:
            put(r, o + _VAL, 4, v)
            r[o] |= _HAVE | _INT
        elif isinstance(v, (int, float)):
            struct.pack_into(">f", r, o + _VAL, v)
            r[o] |= _HAVE | _NUM
        elif isinstance(v, (str, bytes)):
            put(r, o + _VAL, 4, hash(v) & 0xFFFFFFF)
            r[o] |= _HAVE

    # -- timers -------------------------------------------------------------------------------------
    def step(self, now):
        """Send what is due; returns the next deadline or None."""
        c = self.c
        reg = c.reg
        if reg.location is not self.location:  # registered from scratch: the server forgot our observations
            self.location = reg.location
            if self.count() or self.queue:
                if c.log:
                    c.log("observations and %d stored notifications cancelled: registered again" % len(self.queue))
                self.rs = []
                self.paths = {}
                self.queue = []
            self.offline = False
            return None
        if self.offline and reg.acked is not self.acked:
            self.offline = False
            self.probed = True
        up = reg.state == _REGISTERED and not self.offline and not c.asleep(now)
        if up and c.ex.busy():
            return None  # NSTART 1: the exchange's own timer wakes the loop
        if self.queue and up:  # the oldest stored notification, confirmable, with a new message ID
            d = self.queue.pop(0)
            tx = c.ex.tx
            tx.buf[: len(d)] = d
            tx.n = len(d)
            tx.buf[0] &= 0xCF
            c.ex.mid = mid = (c.ex.mid + 1) & 0xFFFF
            tx.buf[2] = mid >> 8
            tx.buf[3] = mid & 255
            if c.log:
                c.log("flush stored notification (%d left)" % len(self.queue))
            self._con(self.find(d, d[0] & 15), now, d)
            return None
        nxt = None
        for k in range(len(self.rs) << _SHIFT):
            r, o = self._at(k)
            f = r[o]
            if not f:
                continue
            if f & _SAMPLED:
                due = uint(r, o + _SAMPLE, 4)
                if ticks_diff(due, now) <= 0:
                    self.check(k)
                    self.update(k, now)
                    due = uint(r, o + _SAMPLE, 4)
                    f = r[o]
                nxt = _sooner(nxt, due)
            last = uint(r, o + _LAST, 4)
            due = ticks_add(last, _ms(uint(r, o + _PMIN, 2))) if f & _PENDING else None
            if uint(r, o + _PMAX, 2):
                due = _sooner(due, ticks_add(last, _ms(uint(r, o + _PMAX, 2))))
            if due is None:
                continue
            if ticks_diff(due, now) > 0:
                nxt = _sooner(nxt, due)
                continue
            self.send(k, now, up)
            if up and c.ex.busy():
                return None
        return nxt

    def send(self, k, now, up):
        c = self.c
        ex = c.ex
        dm = c.dm
        r, o = self._at(k)
        con = r[o + _NONS] + 1 >= c.confirm or self.probed
        tx = ex.tx
        tkl = r[o + _TKL]
        ex.mid = mid = (ex.mid + 1) & 0xFFFF
        tx.header(_CON if con else _NON, 69, mid, 0, 0)
        tx.buf[0] |= tkl
        tx.buf[4 : 4 + tkl] = r[o + _TOKEN : o + _TOKEN + tkl]
        tx.n = 4 + tkl
        self.seq = (self.seq + 1) & 0xFFFFFF
        tx.option(_OBSERVE, self.seq)
        at = tx.n
        put(r, o + _LAST, 4, now)
        r[o] &= ~_PENDING
        p = self.path(k)
        try:
            obj = None
            if p:
                obj = c.objs.get(p[0])
                if obj is None:
                    raise CoapError(132, "no such object")
                if dm.ssid:  # several servers: may this one still read it (core/access.py)
                    obj = dm._lazy("core.access").read(dm, obj, p)
                for i in range(len(p)):
                    dm.path[i] = p[i]
                dm.plen = len(p)
            self._read(dm, tx, uint(r, o + _CF, 2), obj, self.paths.get(k))
        except CoapError as e:  # the target is gone: say so once, without Observe, and stop (RFC 7641 §4.2)
            tx.n = 4 + tkl
            tx.buf[1] = e.code
            self.cancel(k, "%d.%02d" % (e.code >> 5, e.code & 31))
            con = False
        else:
            self._keep(k, dm)
            self._max_age(tx, at, _ms(uint(r, o + _PMAX, 2)) // 1000)
        if c.log:
            c.log(("notify %s seq=%d CON" if con else "notify %s seq=%d NON") % (self.name(k), self.seq))
        if not up:
            self.store(bytes(tx.buf[: tx.n]))
            if c.asleep(now):
                c.reg.want_update = True  # queue mode: wake up, say so with an Update, then flush
            return
        put(r, o + _MID, 2, mid)
        if con:
            r[o + _NONS] = 0
            self._con(k, now, None)
        else:
            r[o + _NONS] = min(r[o + _NONS] + 1, 255)
            c.active = now
            ex.send(tx.buf, tx.n)

    def _con(self, k, now, data):
        self.c.active = now
        self.out = k
        self.c.ex.request(self.done, now)
        self.data = data or self.c.ex.p_data  # the retransmission copy: stored as it is if never acknowledged

    def store(self, data, k=0):
        """Keep a notification for later (/1/x/6 Notification Storing; dropped when that is off)."""
        if not (self.c.objs[1].inst.get(self.c.reg.iid) or {}).get(6, True):
            return
        self.queue.insert(0, data) if k else self.queue.append(data)  # k: a lost one, put back first
        if len(self.queue) > self.c.store:
            self.queue.pop(k)  # the oldest goes (a lost one put back first stays first)
            self.dropped += 1
            if self.c.log:
                self.c.log("store full: oldest notification dropped (%d so far)" % self.dropped)

    def done(self, m):
        """The end of a confirmable notification: ACK, RST (cancel, RFC 7641 §3.6) or no answer."""
        k = self.out
        data = self.data
        self.out = -1
        self.data = None
        if m:
            self.probed = False
        elif k >= 0 and m is False:
            self.cancel(k, "reset by the server")
        elif self.probed:  # the server answers Updates but not this: it does not want it (RFC 7641 §4.5)
            self.probed = False
            if k >= 0:
                self.cancel(k, "not acknowledged")
                self.queue = [d for d in self.queue if d[4 : 4 + (d[0] & 15)] != data[4 : 4 + (data[0] & 15)]]
        else:
            c = self.c
            if c.log:
                c.log("notification not acknowledged: storing until the server answers")
            self.offline = True
            self.acked = c.reg.acked
            c.reg.want_update = True
            if k >= 0:
                self.store(data, 1)

    def rst(self, mid):
        """A RST answering a non-confirmable notification cancels its observation (RFC 7641 §3.6)."""
        for k in range(len(self.rs) << _SHIFT):
            r, o = self._at(k)
            if r[o] and uint(r, o + _MID, 2) == mid:
                self.cancel(k, "reset by the server")
                return

    def _max_age(self, w, n, pmax):
        """Max-Age = pmax when that is over CoAP's default 60 s, so the server does not take a value for
        stale before the next notification (RFC 7641 §4.3.1). Goes after Content-Format: the payload moves."""
        buf = w.buf
        end = w.n
        ln = 1 if pmax < 256 else 2 if pmax < 65536 else 4
        if pmax <= 60 or end + 1 + ln > len(buf):
            return  # the default Max-Age (60 s) stands
        i = n + 1 + (buf[n] & 15) if n < end and buf[n] >> 4 == _CONTENT_FORMAT - _OBSERVE else n
        memoryview(buf)[i + 1 + ln : end + 1 + ln] = memoryview(buf)[i:end]
        buf[i] = (_MAX_AGE - (_CONTENT_FORMAT if i > n else _OBSERVE)) << 4 | ln
        buf[i + 1 : i + 1 + ln] = pmax.to_bytes(ln, "big")
        w.n = end + 1 + ln
