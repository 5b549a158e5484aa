"""SenML reads and writes (LwM2M 1.1 Core §7.4.4-7.4.5), LwM2M CBOR reads (content format 11544, from
LwM2M 1.2), Read-/Write-Composite (§6.3.2, §6.3.3 FETCH and iPATCH on /) and Send (§6.4.4 POST /dp).

Imported on the first request that needs SenML, so a device served in TLV and text never loads it.
"""
from micropython import const

from ..errors import CoapError
from ..codec import senml, cbor
from .dm import resource

_R = const(1)
_W = const(2)
_MULTI = const(8)
_FETCH = const(5)
_POST = const(2)
_URI_PATH = const(11)
_CONTENT_FORMAT = const(12)
_SENML_JSON = const(110)
_SENML_CBOR = const(112)
_LWM2M_CBOR = const(11544)
_OBJLNK = const(8)


def _senml(cf, code):
    if cf != _SENML_JSON and cf != _SENML_CBOR:
        raise CoapError(code, "format %s not supported" % cf)
    return cf == _SENML_CBOR


def read(dm, w, accept, paths):
    """Content-Format and payload with the values under every path of `paths` (tuples of ints): SenML
    JSON/CBOR streamed record by record, or LwM2M CBOR (11544: nested maps keyed by the path's ids,
    {oid: {iid: {rid: value or {riid: value}}}}, built first: a definite map needs its size)."""
    if accept == _LWM2M_CBOR:
        tree = {}

        def put(oid, iid, rid, riid, rtype, v, full):
            d = tree.setdefault(oid, {}).setdefault(iid, {})
            v = "%d:%d" % v if rtype == _OBJLNK else v
            if riid is None:
                d[rid] = v
            else:
                d.setdefault(rid, {})[riid] = v

        for p in paths:
            _walk(dm, p, put)
        w.option(_CONTENT_FORMAT, accept)
        w.marker()
        cbor.put(w, tree)
        return 69
    fmt = _senml(accept, 134)
    w.option(_CONTENT_FORMAT, accept)
    w.marker()
    mark = senml.start(w, fmt)
    last = [None]

    def record(oid, iid, rid, riid, rtype, v, full):
        tail = "%d" % rid if riid is None else "%d/%d" % (rid, riid)
        if full:  # a single resource (instance) asked for: its whole name in n
            senml.record(w, fmt, mark, None, "/%d/%d/%s" % (oid, iid, tail), rtype, v)
        else:  # bn on the first record of an instance; names relative to it
            bn = None if last[0] == (oid, iid) else "/%d/%d/" % (oid, iid)
            last[0] = (oid, iid)
            senml.record(w, fmt, mark, bn, tail, rtype, v)

    for p in paths:
        _walk(dm, p, record)
    senml.end(w, fmt, mark)
    return 69


def _walk(dm, p, put):
    """put(oid, iid, rid, riid or None, type, value, full) for every readable value under path p."""
    n = len(p)
    if n == 0:  # "/": every object but Security
        for oid in sorted(dm.objs):
            if oid:
                _walk(dm, (oid,), put)
        return
    if p[0] == 0:
        raise CoapError(129, "Security object")
    obj = dm.objs.get(p[0])
    if obj is None:
        raise CoapError(132, "no object %d" % p[0])
    if dm.ssid:  # several servers: only what this one may read (core/access.py)
        obj = dm._lazy("core.access").read(dm, obj, p)
    if n >= 3:
        r = resource(obj, p[2], _R)
        v = obj.get(p[1], p[2])
        if n == 4:
            if not r & _MULTI or p[3] not in v:
                raise CoapError(132, "no resource instance")
            v = v[p[3]]
        dm.v = v
        if n == 4 or not r & _MULTI:
            put(p[0], p[1], p[2], p[3] if n == 4 else None, r >> 8, v, True)
        else:
            for riid in sorted(v):
                put(p[0], p[1], p[2], riid, r >> 8, v[riid], True)
        return
    if n == 2:
        obj.instance(p[1])
    t = obj.t
    for iid in sorted(obj.inst) if n == 1 else (p[1],):
        for o in range(7, 7 + 4 * (t[5] << 8 | t[6]), 4):
            rid = t[o] << 8 | t[o + 1]
            f = t[o + 3]
            if not f & _R or not obj.present(iid, rid):
                continue
            v = obj.get(iid, rid)
            if f & _MULTI:
                for riid in sorted(v):
                    put(obj.oid, iid, rid, riid, t[o + 2], v[riid], False)
            else:
                put(obj.oid, iid, rid, None, t[o + 2], v, False)


def _records(m, cf):
    if m.pl == m.n:
        raise CoapError(128, "no payload")
    return senml.records(m.buf, m.pl, m.n, _senml(cf, 143))


def _value(obj, p, kind, v, need):
    """Check one SenML record against the table: (rid, value or {riid: value})."""
    if len(p) < 3:
        raise CoapError(128, "SenML name is not a resource")
    r = resource(obj, p[2], need)
    if kind is None:
        raise CoapError(128, "no value for /%d/%d/%d" % (p[0], p[1], p[2]))
    v = senml.value(kind, v, r >> 8)
    if (len(p) == 4) != bool(r & _MULTI):
        raise CoapError(128, "single/multiple resource mismatch")
    return p[2], {p[3]: v} if len(p) == 4 else v


def items(dm, obj, m, cf, need, plen):
    """A SenML Write payload for the request's path -> checked (rid, value) items, as changes.decode gives."""
    path = dm.path
    out = []
    for p, kind, v in _records(m, cf):
        if len(p) < plen or [p[i] for i in range(plen)] != path[:plen] or len(p) > 2 and p[1] != path[1]:
            raise CoapError(128, "SenML name outside the target path")
        _add(out, _value(obj, p, kind, v, need))
    return out


def _add(items, item):
    """Append (rid, value) to items; instances of one multiple resource in several records merge."""
    rid, v = item
    for k in range(len(items)):
        if items[k][0] == rid and isinstance(v, dict):
            items[k][1].update(v)
            return
    items.append(item)


def request(dm, m, w, accept, observe):
    """FETCH / (Read-Composite, or Observe-Composite with an Observe option) and iPATCH / (Write-Composite)."""
    cf = m.uint(_CONTENT_FORMAT)
    recs = _records(m, cf)
    if m.code == _FETCH:
        paths = tuple(tuple(p) for p, _, _ in recs)
        if accept is None:
            accept = cf
        _senml(accept, 134)
        if observe:
            return dm._lazy("core.observe").get(dm).request(dm, m, w, accept, None, paths)
        return read(dm, w, accept, paths)
    # Write-Composite: check every record first, then apply them all (nothing half-written)
    groups = {}
    for p, kind, v in recs:
        if not p or p[0] == 0:
            raise CoapError(129 if p else 128, "Security object" if p else "SenML name is /")
        obj = dm.objs.get(p[0])
        if obj is None:
            raise CoapError(132, "no object %d" % p[0])
        if len(p) > 1:
            obj.instance(p[1])
            if dm.ssid:  # several servers: access control (core/access.py)
                dm._lazy("core.access").need(dm, p[0], p[1], 2)
        _add(groups.setdefault((p[0], p[1]), []), _value(obj, p, kind, v, _W))
    changes = dm._lazy("core.changes")
    for key in sorted(groups):
        changes.apply(dm, dm.objs[key[0]], key[1], groups[key], False, 2)
    return 68


# -- Send (§6.4.4) ---------------------------------------------------------------------------------

def send(c, now):
    """POST the oldest queued Send to /dp as SenML CBOR, confirmable; its `done(ok, why)` hears the end."""
    paths, done = c._sends.pop(0)
    srv = c.objs[1].inst.get(c.reg.iid) or {}
    if srv.get(23):  # Mute Send
        _tell(c, done, False, "muted by /1/0/23")
        return
    w = c.ex.begin(_POST)
    w.option(_URI_PATH, "dp")
    try:
        read(c.dm, w, _SENML_CBOR, [_parse(p) for p in paths])
    except (CoapError, ValueError) as e:
        _tell(c, done, False, "cannot read: %s" % (e.args[-1] if e.args else e))
        return

    def answer(m):
        code = m.code if m else 0
        _tell(c, done, code == 68, "%d.%02d" % (code >> 5, code & 31) if m else "no answer")

    if c.log:
        c.log("send %s" % " ".join(paths))
    c.active = now
    c.ex.request(answer, now)


def _tell(c, done, ok, why):
    if c.log:
        c.log("send %s" % ("done" if ok else "failed: " + why))
    if done:
        done(ok, why)


def _parse(s):
    p = tuple(int(x) for x in s.strip("/").split("/") if x)
    if not 1 <= len(p) <= 4:
        raise ValueError("bad path " + s)
    return p
