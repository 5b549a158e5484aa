"""Observe and Notify (LwM2M 1.1 Core §6.4.1-6.4.3, RFC 7641) with the notification attributes of §5.1.2,
and notification storing (Server resource /1/x/6) while the server is out of reach or the client sleeps.

Imported on the first Observe request. Every observation is one fixed-size record in a single bytearray
(layout below), so a hundred of them cost about 5 KiB and no Python objects; the attributes themselves
stay in DM.attrs, where Write-Attributes put them, and the periods they give are cached in the record.
Notifications go out when pmin allows and a change is due, and at pmax at the latest; every `confirm`-th
one (and every one after an unacknowledged one) is confirmable. A confirmable notification that is never
acknowledged means the link is gone: notifications are stored (bounded, oldest dropped) while the
registration is updated, and flushed in order once the server answers again.
"""
from micropython import const
import struct

from .._compat import ticks_add, ticks_diff
from ..errors import CoapError

# Record layout, _REC bytes per observation (integers little-endian)
_REC = const(48)
_FLAGS = const(0)
_PLEN = const(1)  # path length 1-4 (object ... resource instance); 0 for Observe-Composite
_TKL = const(2)
_NONS = const(3)  # non-confirmable notifications since the last confirmable one
_TOKEN = const(4)  # 8 bytes
_PATH = const(12)  # 4 x u16
_CF = const(20)  # u16: the content format of the first response, kept for every notification
_MID = const(22)  # u16: message ID of the last notification (a RST names it)
_LAST = const(24)  # u32 ticks: when the last notification went out
_SAMPLE = const(28)  # u32 ticks: when a getter-backed resource is read next
_PMIN = const(32)  # u32 seconds
_PMAX = const(36)  # u32 seconds, 0 = none
_VAL = const(40)  # 8 bytes: last value notified (a double, or a u32 hash of a string)
# _FLAGS bits
_ACTIVE = const(1)
_PENDING = const(2)  # a change waits for pmin
_HAVE = const(4)  # _VAL holds the last value
_NUM = const(8)  # ... as a number
_SAMPLED = const(16)  # a getter is read every sampling period to see changes (epmax, else pmin)
_SHIFT = const(3)
_PER = const(8)  # records per chunk (1 << _SHIFT)
_MASK = const(7)

_CON = const(0)
_NON = const(1)
_CONTENT = const(69)
_OBSERVE = const(6)
_CONTENT_FORMAT = const(12)
_MAX_AGE = const(14)
_REGISTERED = const(2)


def _u(r, o, n):
    v = 0
    for i in range(o + n - 1, o - 1, -1):
        v = v << 8 | r[i]
    return v


def _p(r, o, n, v):
    for i in range(o, o + n):
        r[i] = v & 255
        v >>= 8


class Observer:
    """The client's observations of one server, and the notifications stored for it."""

    def __init__(self, client):
        self.c = client
        self.rs = []  # records, _PER to a bytearray: no large block to find, none to reallocate
        self.paths = {}  # record index -> path tuples of an Observe-Composite
        self.store = []  # notifications waiting for the link, oldest first (datagram bytes)
        self.dropped = 0  # stored notifications given up because the store was full
        self.seq = 0  # Observe sequence number, shared: it only has to grow per observation (RFC 7641 §4.4)
        self.offline = False  # a confirmable notification went unanswered; the registration is being updated
        self.oks = 0  # reg.oks when the link was lost: a later success means it is back
        self.probed = False  # the link came back: one more lost notification means the server ignores them
        self.epoch = client.reg.epoch
        self.out = -1  # record of the confirmable notification in flight
        self.data = None  # ... and its bytes
        client.ex.rst = self.rst

    # -- requests (from core/dm.py and core/composite.py) -----------------------------------------
    def request(self, dm, m, w, accept, obj, paths=None):
        """GET/FETCH with an Observe option: register (0) or cancel (1) an observation, then answer as a read."""
        value = m.uint(_OBSERVE)
        k = self._find(m)
        if k >= 0:  # the same token again: replaces (RFC 7641 §4.1) or cancels (§3.6) the observation
            self._drop(k)
        if value != 0:
            return self._read(dm, w, accept, obj, paths)
        self.seq = (self.seq + 1) & 0xFFFFFF
        w.option(_OBSERVE, self.seq)
        at = w.n
        code = self._read(dm, w, accept, obj, paths)  # a failed read raises: no observation
        k = self._new()
        r = self.rs[k >> _SHIFT]
        o = (k & _MASK) * _REC
        tkl = m.tkl
        r[o + _FLAGS] = _ACTIVE
        r[o + _TKL] = tkl
        for i in range(tkl):
            r[o + _TOKEN + i] = m.buf[4 + i]
        plen = 0 if paths else dm.plen
        r[o + _PLEN] = plen
        for i in range(plen):
            _p(r, o + _PATH + 2 * i, 2, dm.path[i])
        if paths:
            self.paths[k] = paths
        _p(r, o + _CF, 2, _cf(w, at))
        now = self.c.ex.now
        _p(r, o + _LAST, 4, now)
        self._times(k)
        self._keep(k, dm)
        self._max_age(w, at, _u(r, o + _PMAX, 4))
        if self.c.log:
            self.c.log("observe %s" % self._name(k))
        return code

    def _read(self, dm, w, accept, obj, paths):
        if paths:
            return dm._lazy("composite").read(dm, w, accept, paths)
        return dm._read(obj, accept, w)

    def _find(self, m):
        """Index of the active observation with the request's token, or -1."""
        return self._token(m.buf, m.tkl)

    def _token(self, buf, tkl):
        """Index of the active observation whose token is buf[4:4 + tkl], or -1."""
        for k in range(len(self.rs) << _SHIFT):
            r = self.rs[k >> _SHIFT]
            o = (k & _MASK) * _REC
            if r[o] & _ACTIVE and r[o + _TKL] == tkl:
                for i in range(tkl):
                    if r[o + _TOKEN + i] != buf[4 + i]:
                        break
                else:
                    return k
        return -1

    def _new(self):
        for k in range(len(self.rs) << _SHIFT):
            r = self.rs[k >> _SHIFT]
            o = (k & _MASK) * _REC
            if not r[o] & _ACTIVE:
                for i in range(o, o + _REC):
                    r[i] = 0
                return k
        self.rs.append(bytearray(_REC * _PER))
        return (len(self.rs) - 1) << _SHIFT

    def _drop(self, k, why=None):
        if self.c.log:
            self.c.log("cancel %s%s" % (self._name(k), " (%s)" % why if why else ""))
        self.rs[k >> _SHIFT][(k & _MASK) * _REC] = 0
        self.paths.pop(k, None)
        if self.out == k:
            self.out = -1

    def count(self):
        return sum(1 for r in self.rs for o in range(0, len(r), _REC) if r[o] & _ACTIVE)

    def clear(self):
        """Forget every observation and stored notification (a new registration voids them, §6.4)."""
        self.rs = []
        self.paths.clear()
        self.store.clear()
        self.out = -1

    def _name(self, k):
        n = self.rs[k >> _SHIFT][(k & _MASK) * _REC + _PLEN]
        if n == 0:
            return "composite %s" % " ".join("/" + "/".join(str(i) for i in p) for p in self.paths.get(k, ()))
        return "/" + "/".join(str(i) for i in self._path(k))

    def _path(self, k):
        r = self.rs[k >> _SHIFT]
        o = (k & _MASK) * _REC
        return [_u(r, o + _PATH + 2 * i, 2) for i in range(r[o + _PLEN])]

    # -- attributes (§5.1.2) ------------------------------------------------------------------------
    def _attrs(self, path):
        """The attributes in force for `path`: Server defaults, then object, instance, resource levels."""
        srv = self.c.objs[1].inst.get(0) or {}
        a = {"pmin": srv.get(2, 0), "pmax": srv.get(3, 0)}
        attrs = self.c.dm.attrs
        for n in range(1, len(path) + 1):
            got = attrs.get(tuple(path[:n]))
            if got:
                if n < 3:  # gt, lt and st belong to a resource (Core §5.1.2)
                    got = {x: got[x] for x in got if x[0] in "pe"}
                a.update(got)
        return a

    def _times(self, k):
        """Cache pmin/pmax in the record (pmax not above pmin is ignored, §5.1.2) and plan the sampling."""
        r = self.rs[k >> _SHIFT]
        o = (k & _MASK) * _REC
        a = self._attrs(self._path(k))
        pmin = a["pmin"]
        pmax = a["pmax"]
        _p(r, o + _PMIN, 4, pmin)
        _p(r, o + _PMAX, 4, pmax if pmax > pmin else 0)
        r[o] &= ~_SAMPLED
        if r[o + _PLEN] >= 3 and self._getter(k):
            period = self._period(a)
            if period:
                r[o] |= _SAMPLED
                _p(r, o + _SAMPLE, 4, ticks_add(self.c.ex.now, period))

    def _period(self, a):
        """ms between readings of a getter: epmax, else pmin, never below epmin; 0 = only at pmax."""
        epmin = a.get("epmin", 0)
        epmax = a.get("epmax", 0)
        p = epmax if epmax > epmin else a["pmin"]
        return max(p, epmin) * 1000

    def _getter(self, k):
        p = self._path(k)
        obj = self.c.objs.get(p[0])
        return obj is not None and (p[1] << 16 | p[2]) in obj.hooks

    def retime(self):
        """Attributes or the Server's default periods changed: every observation picks them up."""
        for k in range(len(self.rs) << _SHIFT):
            if self.rs[k >> _SHIFT][(k & _MASK) * _REC] & _ACTIVE:
                self._times(k)

    # -- changes ------------------------------------------------------------------------------------
    def changed(self, oid, iid, rid):
        """A value (rid), or an instance (rid None: created or deleted) changed: mark what it touches."""
        if oid == 1 and rid in (2, 3):
            self.retime()
        for k in range(len(self.rs) << _SHIFT):
            r = self.rs[k >> _SHIFT]
            o = (k & _MASK) * _REC
            if not r[o] & _ACTIVE:
                continue
            plen = r[o + _PLEN]
            if plen == 0:
                hit = any(_under(p, oid, iid, rid) for p in self.paths.get(k, ()))
            else:
                hit = _under([_u(r, o + _PATH + 2 * i, 2) for i in range(plen)], oid, iid, rid)
            if hit:
                if plen >= 3 and rid is not None:
                    self._check(k)
                else:
                    r[o] |= _PENDING

    def _value(self, k):
        p = self._path(k)
        v = self.c.objs[p[0]].get(p[1], p[2])
        if len(p) == 4:
            v = v[p[3]]
        return v

    def _check(self, k):
        """A resource's value may have changed: pending if it did, as gt/lt/st say when present."""
        r = self.rs[k >> _SHIFT]
        o = (k & _MASK) * _REC
        try:
            v = self._value(k)
        except (CoapError, KeyError):  # gone: the notification will say so
            r[o] |= _PENDING
            return
        f = r[o]
        if not f & _HAVE:
            r[o] |= _PENDING
            return
        if not f & _NUM or not isinstance(v, (int, float)):
            if _hash(v) != _u(r, o + _VAL, 4):
                r[o] |= _PENDING
            return
        last = struct.unpack_from("<d", r, o + _VAL)[0]
        a = self._attrs(self._path(k))
        gt = a.get("gt")
        lt = a.get("lt")
        st = a.get("st")
        if gt is None and lt is None and st is None:
            due = v != last
        else:  # a crossing of gt or lt, or a step of st, relative to the value last notified
            due = (gt is not None and (last > gt) != (v > gt) or lt is not None and (last < lt) != (v < lt)
                   or st is not None and abs(v - last) >= st)
        if due:
            r[o] |= _PENDING

    def _keep(self, k, dm):
        """Remember the value just sent (the one DM read: a getter is not called twice)."""
        r = self.rs[k >> _SHIFT]
        o = (k & _MASK) * _REC
        r[o] &= ~(_HAVE | _NUM)
        if r[o + _PLEN] < 3:
            return
        v = dm.v
        if isinstance(v, (int, float)):
            struct.pack_into("<d", r, o + _VAL, v)
            r[o] |= _HAVE | _NUM
        elif isinstance(v, (str, bytes)):
            _p(r, o + _VAL, 4, _hash(v))
            r[o] |= _HAVE

    # -- timers -------------------------------------------------------------------------------------
    def step(self, now):
        """Send what is due; returns the next deadline or None."""
        c = self.c
        reg = c.reg
        if reg.epoch != self.epoch:  # registered from scratch: the server has forgotten our observations
            self.epoch = reg.epoch
            if self.count() or self.store:
                if c.log:
                    c.log("observations and %d stored notifications cancelled: registered again" % len(self.store))
                self.clear()
            self.offline = False
            return None
        if self.offline and reg.oks != self.oks:
            self.offline = False
            self.probed = True
        up = reg.state == _REGISTERED and not self.offline and not c.asleep(now)
        if up and c.ex.busy():
            return None  # NSTART 1: the exchange's own timer wakes the loop
        if self.store and up:
            self._flush(now)
            return None
        nxt = None
        for k in range(len(self.rs) << _SHIFT):
            r = self.rs[k >> _SHIFT]
            o = (k & _MASK) * _REC
            f = r[o]
            if not f & _ACTIVE:
                continue
            if f & _SAMPLED:
                due = _u(r, o + _SAMPLE, 4)
                if ticks_diff(due, now) <= 0:
                    self._check(k)
                    a = self._attrs(self._path(k))
                    due = ticks_add(now, self._period(a))
                    _p(r, o + _SAMPLE, 4, due)
                    f = r[o]
                nxt = _sooner(nxt, due)
            last = _u(r, o + _LAST, 4)
            due = None
            if f & _PENDING:
                due = ticks_add(last, _u(r, o + _PMIN, 4) * 1000)
            pmax = _u(r, o + _PMAX, 4)
            if pmax:
                due = _sooner(due, ticks_add(last, pmax * 1000))
            if due is None:
                continue
            if ticks_diff(due, now) > 0:
                nxt = _sooner(nxt, due)
                continue
            self._notify(k, now, up)
            if up and c.ex.busy():
                return None
        return nxt

    def _notify(self, k, now, up):
        c = self.c
        ex = c.ex
        dm = c.dm
        r = self.rs[k >> _SHIFT]
        o = (k & _MASK) * _REC
        con = r[o + _NONS] + 1 >= c.confirm or self.probed
        tx = ex.tx
        ex.mid = mid = (ex.mid + 1) & 0xFFFF
        tx.header(_CON if con else _NON, _CONTENT, mid, 0, 0)
        tkl = r[o + _TKL]
        tx.buf[0] |= tkl
        for i in range(tkl):
            tx.buf[4 + i] = r[o + _TOKEN + i]
        tx.n = 4 + tkl
        self.seq = (self.seq + 1) & 0xFFFFFF
        tx.option(_OBSERVE, self.seq)
        at = tx.n
        plen = r[o + _PLEN]
        paths = self.paths.get(k)
        cf = _u(r, o + _CF, 2)
        _p(r, o + _LAST, 4, now)
        r[o] &= ~_PENDING
        try:
            obj = None
            if plen:
                p = self._path(k)
                obj = c.objs.get(p[0])
                if obj is None:
                    raise CoapError(132, "gone")
                for i in range(plen):
                    dm.path[i] = p[i]
                dm.plen = plen
            self._read(dm, tx, cf, obj, paths)
        except CoapError as e:  # the target is gone: say so once, without Observe, and stop (RFC 7641 §4.2)
            tx.n = 4 + tkl
            tx.last = 0
            tx.buf[1] = e.code
            self._drop(k, "%d.%02d" % (e.code >> 5, e.code & 31))
            con = False
        else:
            self._keep(k, dm)
            self._max_age(tx, at, _u(r, o + _PMAX, 4))
        if c.log:
            c.log("notify %s seq=%d %s" % (self._name(k), self.seq, "CON" if con else "NON"))
        if not up:
            self._stash(bytes(tx.buf[: tx.n]))
            if c.asleep(now):
                c.reg.want_update = True  # queue mode: wake up, tell the server (Update), then flush
            return
        _p(r, o + _MID, 2, mid)
        c.active = now
        if con:
            r[o + _NONS] = 0
            self.out = k
            ex.request(self._sent, now)
            self.data = ex.p_data  # the copy kept for retransmission: stored as it is if never acknowledged
        else:
            r[o + _NONS] += 1 if r[o + _NONS] < 255 else 0
            ex.send(tx.buf, tx.n)

    def _stash(self, data):
        """Keep a notification for later (/1/x/6 Notification Storing), or drop it when storing is off."""
        srv = self.c.objs[1].inst.get(0) or {}
        if not srv.get(6, True):
            return
        if len(self.store) >= self.c.store_max:
            self.store.pop(0)
            self.dropped += 1
            if self.c.log:
                self.c.log("store full: oldest notification dropped (%d so far)" % self.dropped)
        self.store.append(data)

    def _flush(self, now):
        """Send the oldest stored notification, confirmable, with a new message ID."""
        ex = self.c.ex
        d = self.store.pop(0)
        tx = ex.tx
        n = len(d)
        tx.buf[:n] = d
        tx.n = n
        tx.buf[0] &= 0xCF  # CON
        ex.mid = mid = (ex.mid + 1) & 0xFFFF
        tx.buf[2] = mid >> 8
        tx.buf[3] = mid & 255
        self.out = self._token(d, d[0] & 15)
        if self.c.log:
            self.c.log("flush stored notification (%d left)" % len(self.store))
        self.c.active = now
        ex.request(self._sent, now)
        self.data = d


    def _sent(self, m):
        """The end of a confirmable notification: ACK, RST (cancel, RFC 7641 §3.6) or no answer."""
        k = self.out
        data = self.data
        self.out = -1
        self.data = None
        if m:
            self.probed = False
            return
        if k >= 0 and m is False:
            self._drop(k, "RST")
            return
        if self.probed:  # the server answers Updates but not this: it no longer wants it (RFC 7641 §4.5)
            self.probed = False
            if k >= 0:
                self._drop(k, "not acknowledged")
                tok = data[4 : 4 + (data[0] & 15)]
                self.store = [d for d in self.store if d[4 : 4 + (d[0] & 15)] != tok]
            return
        c = self.c
        if c.log:
            c.log("notification not acknowledged: storing until the server answers")
        self.offline = True
        self.oks = c.reg.oks
        c.reg.want_update = True
        if data is not None and k >= 0:
            self.store.insert(0, data)
            if len(self.store) > c.store_max:
                self.store.pop(1)  # the newest lost one stays first; the next oldest makes room
                self.dropped += 1

    def rst(self, mid):
        """A RST answering a non-confirmable notification cancels its observation (RFC 7641 §3.6)."""
        for k in range(len(self.rs) << _SHIFT):
            r = self.rs[k >> _SHIFT]
            o = (k & _MASK) * _REC
            if r[o] & _ACTIVE and _u(r, o + _MID, 2) == mid:
                self._drop(k, "RST")
                return

    def _max_age(self, w, at, pmax):
        """Max-Age = pmax when that is over CoAP's default 60 s, so the server does not think a value stale
        before the next notification (RFC 7641 §4.3.1). Goes after Content-Format: the payload moves."""
        if pmax <= 60:
            return
        buf = w.buf
        i = at
        if i < w.n and buf[i] >> 4 == _CONTENT_FORMAT - _OBSERVE:
            i += 1 + (buf[i] & 15)
        ln = 1 if pmax < 256 else 2 if pmax < 65536 else 3 if pmax < 16777216 else 4
        end = w.n
        if end + 1 + ln > len(buf):
            return  # no room: the default Max-Age stands
        mv = memoryview(buf)
        mv[i + 1 + ln : end + 1 + ln] = mv[i:end]
        buf[i] = (_MAX_AGE - (_CONTENT_FORMAT if i > at else _OBSERVE)) << 4 | ln
        for j in range(ln):
            buf[i + ln - j] = pmax >> (8 * j) & 255
        w.n = end + 1 + ln


def _cf(w, at):
    """The Content-Format the read wrote right after the Observe option (the notifications use it too)."""
    buf = w.buf
    v = 0
    if at < w.n and buf[at] >> 4 == _CONTENT_FORMAT - _OBSERVE:
        for i in range(at + 1, at + 1 + (buf[at] & 15)):
            v = v << 8 | buf[i]
    return v


def _under(p, oid, iid, rid):
    """Does a change at (oid, iid, rid) touch an observation of path p (rid None: a whole instance)?"""
    n = len(p)
    return (n > 0 and p[0] == oid and (n < 2 or p[1] == iid)
            and (n < 3 or rid is None or p[2] == rid))


def _hash(v):
    return hash(v) & 0xFFFFFFF


def _sooner(a, b):
    return b if a is None or ticks_diff(b, a) < 0 else a
