"""Client-initiated bootstrap (LwM2M 1.1 Core §6.1): Bootstrap-Request, then the Bootstrap-Server's Discover,
Read, Write, Delete and Finish; Finish checks the configuration before the client registers with it.

Loaded only while bootstrapping. For that time a `Bootstrap` stands in for the client's Registration
(the client's loop drives it through the same `step`), and the DM's dispatch is this module's `request`:
a Bootstrap-Server may only bootstrap, and nothing it writes is saved or reported until Finish.
"""
from micropython import const

from .._compat import ticks_add, ticks_diff
from ..errors import CoapError
from ..codec.link import put_link
from . import servers
from ..transport.udp import for_uri

_GET = const(1)
_POST = const(2)
_PUT = const(3)
_DELETE = const(4)
_URI_PATH = const(11)
_URI_QUERY = const(15)
_ACCEPT = const(17)
_CONTENT_FORMAT = const(12)
_LINK = const(40)
_TLV_FMTS = (11542, 1542)
_SENML_FMTS = (110, 112)
_INSTANCE = const(0)  # TLV entry kinds (Core §7.4.3)
_RES_INSTANCE = const(1)
_MULTI_RES = const(2)
_RESOURCE = const(3)
_MULTI = const(8)  # table flag: multiple resource
_OPAQUE_T = const(6)
_SET = const(1)  # setter hooks (core/store.py)
_TEXT_FMTS = (0, 1541, 42, 1544)  # text and opaque, each with its pre-1.0 number
_BOOTSTRAPPING = const(1)  # a Registration state that is neither idle nor registered: the loop steps us
_STOPPED = const(4)
_FINISH_MS = const(247000)  # EXCHANGE_LIFETIME: Finish must come this soon after the request (§6.1.3.3)
_MAX_BACKOFF = const(3600000)
_SECURITY_MODES = (0, 2, 3)  # pre-shared key, certificates, NoSec: what this client's transports do


def start(c, now, k):
    """Bootstrap through Security instance `k` (the Bootstrap-Server account)."""
    if isinstance(c.reg, Bootstrap):
        return
    servers.stop_peers(c)
    c.reg.state = _STOPPED
    if 2 not in c.objs:  # Access Control: this client has it, for the Bootstrap-Server to fill
        from ..tables import o2

        c.add(o2.T)
    b = Bootstrap(c, k, now)
    try:
        servers.connect(c, k)
    except ValueError as e:
        if c.log:
            c.log("bootstrap account /0/%d unusable: %s" % (k, e))
        b.state = _STOPPED
    c.reg = b
    c.dm._dispatch = lambda m, w: request(c.dm, m, w)  # an instance attribute: shadows DM._dispatch
    c.dm.changed = None  # nothing is registered to tell, and the state file is written once, at Finish
    c.dm.ssid = 0


class Bootstrap:
    """Sends the Bootstrap-Request (retried with back-off) and waits at most 247 s for Finish."""

    location = None
    acked = None
    want_update = False
    iid = 0
    queue = False

    def __init__(self, c, k, now):
        self.c = c
        self.k = k
        self.real = c.reg  # the Registration, back in place after Finish
        self.state = _BOOTSTRAPPING
        self.failures = 0
        self.until = None  # Finish deadline once the request was accepted
        hold = c.objs[0].inst[k].get(11) or 0  # Client Hold Off Time (§E.1)
        self.due = ticks_add(now, hold * 1000)
        if c.log:
            c.log("bootstrap with %s%s" % (c.objs[0].inst[k][0], " in %d s" % hold if hold else ""))

    def step(self, now):
        if self.state != _BOOTSTRAPPING:
            return None
        if self.until is not None:
            if ticks_diff(self.until, now) > 0:
                return self.until
            self._failed(now, "no Bootstrap-Finish within %d s" % (_FINISH_MS // 1000))
        ex = self.c.ex
        if ex.busy():
            return None
        if ticks_diff(self.due, now) > 0:
            return self.due
        w = ex.begin(_POST)
        w.option(_URI_PATH, "bs")
        w.option(_URI_QUERY, "ep=" + self.c.endpoint)
        if self.real.version >= "1.1":
            w.option(_URI_QUERY, "pct=11542")  # preferred content format: TLV, the one we parse fastest
        if self.c.log:
            self.c.log("bootstrap request ep=" + self.c.endpoint)
        ex.request(self._answer, now)
        return None

    def _answer(self, m):
        now = self.c.ex.now
        if m and m.code == 68:
            self.until = ticks_add(now, _FINISH_MS)
            if self.c.log:
                self.c.log("bootstrap request accepted")
            return
        self._failed(now, "%d.%02d" % (m.code >> 5, m.code & 31) if m else "no answer")

    def _failed(self, now, why):
        self.until = None
        delay = min(self.real.retry_ms << min(self.failures, 16), _MAX_BACKOFF)
        self.failures += 1
        self.due = ticks_add(now, delay)
        if self.c.log:
            self.c.log("bootstrap failed (%s); again in %d s" % (why, delay // 1000))

    def _leave(self):
        """The client's own Registration, DM dispatch and change reports again."""
        c = self.c
        dm = c.dm
        dm._dispatch = None  # None first: a deleted attribute leaves its value in the instance's table,
        del dm._dispatch  # where the garbage collector would still find it (and through it this module)
        dm.changed = c._changed
        c.reg = self.real

    def start(self, now):  # a factory reset while bootstrapping: the client starts over
        self._leave()
        self.c.start(now)

    def deregister(self, now, done=None):  # shutdown while bootstrapping: nothing to say goodbye to
        self.state = _STOPPED
        if done:
            done()

    def finished(self):
        """After the 2.04 to Finish has gone out: the client as before, registering with what it got."""
        c = self.c
        self._leave()
        c.reg.location = None
        if c.state:
            c.dm._lazy("core.persist").save(c, c.state)
        if c.log:
            c.log("bootstrap finished")
        c.dm.unload(" core.bootstrap")  # this module too: room for the DTLS session and the registration
        servers.start(c, c.ex.now)


# -- the Bootstrap-Server's requests (Transport §6.1: the method and path say which operation) ----------

def request(dm, m, w):
    segs = m.strings(_URI_PATH)
    code = m.code
    if segs == ["bs"]:
        if code != _POST:
            raise CoapError(133, "Bootstrap-Finish is POST /bs")
        return finish(dm)
    path = dm.path
    plen = len(segs)
    if plen > 3:
        raise CoapError(128, "no such path")
    for i in range(plen):
        if not segs[i].isdigit() or int(segs[i]) > 65535:
            raise CoapError(128, "no such path")
        path[i] = int(segs[i])
    dm.plen = plen
    obj = dm.objs.get(path[0]) if plen else None
    if plen and obj is None:
        raise CoapError(132, "no object %d" % path[0])
    if code == _GET:
        accept = m.uint(_ACCEPT)
        if accept == _LINK:
            if plen > 1:
                raise CoapError(128, "Bootstrap-Discover is for / or an object")
            return discover(dm, w, obj)
        if not plen or path[0] not in (1, 2) or plen > 2:  # §6.1.7.4
            raise CoapError(129, "Bootstrap-Read is for the Server and Access Control objects")
        return dm._read(obj, accept, w)
    if code == _PUT:
        if not plen:
            raise CoapError(128, "Bootstrap-Write needs an object")
        return write(dm, obj, m, plen)
    if code == _DELETE:
        return delete(dm, obj, plen)
    raise CoapError(133, "not a bootstrap operation")


def discover(dm, w, obj):
    """§6.1.7.3: `</>;lwm2m=1.1`, then objects with their instances; Security and Server instances with ssid
    (and the Security ones with their URI)."""
    w.option(_CONTENT_FORMAT, _LINK)
    s = w.marker()
    first = obj is not None
    if not first:
        put_link(w, (), {"lwm2m": dm.client.reg.real.version}, True)
    for oid in sorted(dm.objs) if obj is None else (obj.oid,):
        o = dm.objs[oid]
        t = o.t
        ver = "%d.%d" % (t[3], t[4])
        if not o.inst or ver != "1.0":
            put_link(w, (oid,), {"ver": ver} if ver != "1.0" else None, first)
            first = False
        for iid in sorted(o.inst):
            a = None
            d = o.inst[iid]
            if oid == 0 and not d.get(1):
                a = {"ssid": d.get(10), "uri": '"%s"' % d.get(0)}
            elif oid == 1:
                a = {"ssid": d.get(0)}
            put_link(w, (oid, iid), a, first)
            first = False
    w.end_payload(s)
    return 69


def write(dm, obj, m, plen):
    """§6.1.7.5: write whatever the payload holds, creating instances as needed; resources this client does
    not know are skipped. Everything is checked before anything is stored. (Its own small TLV and text
    reading: the Write code of core/changes.py would double this module's heap while bootstrapping.)"""
    cf = m.uint(_CONTENT_FORMAT)
    if m.pl == m.n:
        raise CoapError(128, "no payload")
    groups = {}  # iid -> [(rid, value)]
    path = dm.path
    reader = dm._lazy("codec.reader")
    buf = m.buf
    if cf in _TLV_FMTS:
        i = m.pl
        while i < m.n:
            kind, ident, vo, vl, i = reader.next_entry(buf, i, m.n)
            if plen == 1 or kind == _INSTANCE:  # instance entries: each holds resources (some servers wrap
                if kind != _INSTANCE or plen == 2 and ident != path[1] or plen == 3:  # an instance write too)
                    raise CoapError(128, "TLV entry does not match the path")
                items = groups.setdefault(ident, [])
                end = vo + vl
                while vo < end:
                    kind, rid, ro, rl, vo = reader.next_entry(buf, vo, end)
                    _item(items, reader, obj, buf, kind, rid, ro, rl)
            elif plen == 3 and ident != path[2]:
                raise CoapError(128, "TLV entry does not match the path")
            else:
                _item(groups.setdefault(path[1], []), reader, obj, buf, kind, ident, vo, vl)
    elif cf in _SENML_FMTS:
        composite = dm._lazy("core.composite")
        for p, kind, v in composite._records(m, cf):
            if len(p) < 3 or p[0] != path[0] or plen > 1 and p[1] != path[1] or plen > 2 and p[2] != path[2]:
                raise CoapError(128, "SenML name outside the target path")
            if obj.res(p[2]) >= 0:
                composite._add(groups.setdefault(p[1], []), composite._value(obj, p, kind, v, -1))
    elif plen == 3 and cf in _TEXT_FMTS:  # one resource in plain text or opaque
        r = obj.res(path[2])
        if r < 0 or r & _MULTI or (cf == 42 or cf == 1544) != (r >> 8 == _OPAQUE_T):
            raise CoapError(143 if r >= 0 else 132, "format %d does not fit resource %d" % (cf, path[2]))
        raw = m.payload()
        groups[path[1]] = [(path[2], bytes(raw) if r >> 8 == _OPAQUE_T else reader.parse_text(raw, r >> 8))]
    else:
        raise CoapError(143, "format %s not supported here" % cf)
    for iid in groups:
        if iid not in obj.inst and obj.inst and not obj.t[2] & 1:  # a single-instance object has its one
            raise CoapError(128, "object %d has one instance" % obj.oid)
    for iid in sorted(groups):
        inst = obj.inst.setdefault(iid, {})
        for rid, v in groups[iid]:
            if isinstance(v, dict) and isinstance(inst.get(rid), dict):
                inst[rid].update(v)  # resource instances written one by one add up
            else:
                inst[rid] = v
            fn = obj.hooks.get(_SET << 26 | iid << 16 | rid)
            if fn:  # the app's setter keeps its own state in step
                fn(inst[rid])
    return 68


def _item(items, reader, obj, buf, kind, rid, vo, vl):
    """A TLV resource (3) or multiple resource (2) entry as (rid, value) onto items; unknown ones skipped."""
    r = obj.res(rid)
    if r < 0:
        return
    if (kind == _MULTI_RES) != bool(r & _MULTI) or kind < _MULTI_RES:
        raise CoapError(128, "resource %d: single/multiple mismatch" % rid)
    if kind == _RESOURCE:
        items.append((rid, reader.parse_value(buf, vo, vl, r >> 8)))
        return
    d = {}
    end = vo + vl
    while vo < end:
        k, riid, ro, rl, vo = reader.next_entry(buf, vo, end)
        if k != _RES_INSTANCE:
            raise CoapError(128, "bad entry in multiple resource %d" % rid)
        d[riid] = reader.parse_value(buf, ro, rl, r >> 8)
    items.append((rid, d))


def delete(dm, obj, plen):
    """§6.1.7.6: `/`, an object or an instance; the Bootstrap-Server account and the Device instance stay."""
    if plen == 3:
        raise CoapError(128, "Bootstrap-Delete is for /, an object or an instance")
    keep = dm.client.reg.k
    iid = dm.path[1]
    if plen == 2:
        if obj.oid == 0 and iid == keep or obj.oid == 3:
            raise CoapError(128, "/%d/%d stays" % (obj.oid, iid))
        if iid not in obj.inst:
            raise CoapError(128, "no instance /%d/%d" % (obj.oid, iid))
    gone = []
    for o in dm.objs.values() if obj is None else (obj,):
        if o.oid == 3:
            continue
        for i in list(o.inst):
            if (plen < 2 or i == iid) and not (o.oid == 0 and i == keep):
                del o.inst[i]
                gone.append((o.oid, i))
    acl = dm.objs.get(2)
    if acl:  # their access control goes with them
        for i in list(acl.inst):
            if (acl.inst[i].get(0), acl.inst[i].get(1)) in gone:
                del acl.inst[i]
    for key in list(dm.attrs):
        if len(key) > 1 and (key[0], key[1]) in gone:
            del dm.attrs[key]
    if dm.log:
        dm.log("bootstrap delete: %d instances" % len(gone))
    return 66


def finish(dm):
    """§6.1.6: 2.04 and register with what was provisioned, or 4.06 saying what is inconsistent (the server
    may put it right and send Finish again)."""
    objs = dm.objs
    sec = objs[0].inst
    boots = [k for k in sec if sec[k].get(1)]
    why = None
    if len(boots) > 1:
        why = "more than one Bootstrap-Server account"
    ssids = []
    for k in sorted(sec):
        s = sec[k]
        if s.get(1):
            continue
        ssid = s.get(10)
        if not isinstance(ssid, int) or not 0 < ssid < 65535 or ssid in ssids:
            why = why or "Security /0/%d: Short Server ID %s missing, out of range or used twice" % (k, ssid)
        ssids.append(ssid)
        bad = for_uri(str(s.get(0, "")), s, check=True)  # what the transport would refuse (transport/udp.py)
        if bad:
            why = why or "Security /0/%d: %s" % (k, bad)
        elif s.get(2) not in _SECURITY_MODES:
            why = why or "Security /0/%d: mode %s not supported (0 pre-shared key, 2 certificates, 3 NoSec)" % (
                k, s.get(2))
    for iid, s in objs[1].inst.items():
        if s.get(0) not in ssids:
            why = why or "Server /1/%d: no Security instance with Short Server ID %s" % (iid, s.get(0))
        elif not isinstance(s.get(1), int) or s.get(7) is None:
            why = why or "Server /1/%d: lifetime or binding missing" % iid
    if not why and not servers.accounts(objs):
        why = "no LwM2M server account"
    acl = objs.get(2)
    if not why and acl:
        for iid, a in acl.inst.items():
            o = objs.get(a.get(0))
            if o is None or a.get(1) != 65535 and a.get(1) not in o.inst:
                why = "Access Control /2/%d: no object instance /%s/%s" % (iid, a.get(0), a.get(1))
                break
    if why:
        if dm.log:
            dm.log("bootstrap finish refused: " + why)
        raise CoapError(134, why)
    dm.client.later(dm.client.reg.finished)
    return 68
