"""Write, Create, Delete and Execute (LwM2M 1.1 Core §6.3.3-6.3.7): the operations that change the store.

Imported by core/dm.py on the first such request, so a device that is only registered and read keeps
this code out of its heap.
"""
from micropython import const

from ..errors import CoapError
from ..codec.reader import next_entry, parse_value, parse_text
from .dm import resource

# Table flags (docs/design.md) and TLV kinds (Core §7.4.3), private so they cost no RAM
_R = const(1)
_W = const(2)
_E = const(4)
_MULTI = const(8)
_MANDATORY = const(16)
_OBJ_MULTI = const(1)
_OBJ_MANDATORY = const(2)

_CONTENT_FORMAT = const(12)
_LOCATION_PATH = const(8)

_OPAQUE_T = const(6)
_TEXT_FMTS = (0, 1541)  # each content format with its pre-1.0 number
_OPAQUE_FMTS = (42, 1544)
_TLV_FMTS = (11542, 1542)
_SENML_JSON = const(110)
_SENML_CBOR = const(112)
_SET_HOOK = const(1)
_EXE_HOOK = const(2)
# TLV identifier types (Core §7.4.3)
_INSTANCE = const(0)
_RES_INSTANCE = const(1)
_MULTI_RES = const(2)
_RESOURCE = const(3)


def decode(dm, obj, m, need, plen):
    """Payload -> list of (rid, value or {riid: value}) after checking every target; nothing applied yet."""
    cf = m.uint(_CONTENT_FORMAT)
    if m.pl == m.n and cf not in _TEXT_FMTS and cf not in _OPAQUE_FMTS:  # empty text/opaque: an empty value
        raise CoapError(128, "no payload")  # (an empty Package URI cancels a firmware download, E.6)
    path = dm.path
    buf = m.buf
    if cf is None:
        raise CoapError(128, "Content-Format missing")
    if cf in _TEXT_FMTS or cf in _OPAQUE_FMTS:
        if plen < 3:
            raise CoapError(143, "format %d needs a resource path" % cf)
        r = resource(obj, path[2], need)
        rtype = r >> 8
        flags = r & 255
        if (cf in _OPAQUE_FMTS) != (rtype == _OPAQUE_T):
            raise CoapError(143, "format %d does not fit the resource type" % cf)
        raw = m.payload()
        v = bytes(raw) if rtype == _OPAQUE_T else parse_text(raw, rtype)
        if (plen == 4) != bool(flags & _MULTI):
            raise CoapError(128, "single/multiple resource mismatch")
        return [(path[2], {path[3]: v} if plen == 4 else v)]
    if cf == _SENML_JSON or cf == _SENML_CBOR:
        return dm._lazy("core.composite").items(dm, obj, m, cf, need, plen)
    if cf not in _TLV_FMTS:
        raise CoapError(143, "format %d not supported" % cf)
    out = []
    i = m.pl
    end = m.n
    while i < end:
        kind, ident, vo, vl, i = next_entry(buf, i, end)
        if kind == _INSTANCE:  # some servers wrap an instance write in its instance entry
            if plen != 2 or ident != path[1]:
                raise CoapError(128, "TLV instance does not match the path")
            j = vo
            while j < vo + vl:
                kind, rid, ro, rl, j = next_entry(buf, j, vo + vl)
                out.append(tlv_item(dm, obj, buf, kind, rid, ro, rl, need))
        elif kind == _RES_INSTANCE:
            if plen != 4:
                raise CoapError(128, "resource instance outside a multiple resource")
            r = resource(obj, path[2], need)
            rtype = r >> 8
            flags = r & 255
            if not flags & _MULTI or ident != path[3]:
                raise CoapError(128, "resource instance does not match the path")
            out.append((path[2], {ident: parse_value(buf, vo, vl, rtype)}))
        else:
            if plen >= 3 and ident != path[2]:
                raise CoapError(128, "TLV resource does not match the path")
            out.append(tlv_item(dm, obj, buf, kind, ident, vo, vl, need))
    return out


def tlv_item(dm, obj, buf, kind, rid, vo, vl, need):
    r = resource(obj, rid, need)
    rtype = r >> 8
    flags = r & 255
    if kind == _RESOURCE:
        if flags & _MULTI:
            raise CoapError(128, "resource %d is multiple" % rid)
        return rid, parse_value(buf, vo, vl, rtype)
    if kind != _MULTI_RES or not flags & _MULTI:
        raise CoapError(128, "resource %d is single" % rid)
    d = {}
    j = vo
    while j < vo + vl:
        k, riid, ro, rl, j = next_entry(buf, j, vo + vl)
        if k != _RES_INSTANCE:
            raise CoapError(128, "bad entry in multiple resource")
        d[riid] = parse_value(buf, ro, rl, rtype)
    return rid, d


def write(dm, obj, m, replace):
    path = dm.path
    plen = dm.plen
    if plen < 2:
        raise CoapError(133, "write on an object")
    iid = path[1]
    obj.instance(iid)  # 4.04 before anything else
    apply(dm, obj, iid, decode(dm, obj, m, _W, plen), replace, plen)
    return 68


def apply(dm, obj, iid, items, replace, plen):
    """Store checked (rid, value) items in instance `iid`, tell the app's setters and the observers."""
    inst = obj.inst[iid]
    if replace and plen == 2:  # §6.3.3 replace: writable optional resources not given are removed
        given = [rid for rid, _ in items]
        for rid in list(inst):
            f = obj.res(rid) & 255
            if f & _W and not f & _MANDATORY and rid not in given:
                del inst[rid]
    for rid, v in items:
        if isinstance(v, dict) and not (replace and plen == 3):
            merged = dict(inst.get(rid) or {})  # partial update / single instance: keep the others
            merged.update(v)
            v = merged
        inst[rid] = v
        fn = obj.hooks.get(_SET_HOOK << 26 | iid << 16 | rid)
        if fn:  # the app's setter keeps its own state in step with the store
            fn(v)
        if dm.changed:
            dm.changed(obj.oid, iid, rid)


def create(dm, obj, m, w):
    cf = m.uint(_CONTENT_FORMAT)
    if cf not in _TLV_FMTS:
        raise CoapError(143 if m.pl < m.n else 128, "Create needs a TLV payload")
    buf = m.buf
    kind, ident, vo, vl, nxt = next_entry(buf, m.pl, m.n)
    if kind == _INSTANCE:  # the server chose the instance id
        if nxt != m.n:
            raise CoapError(128, "one instance per Create")
        iid = ident
        start = vo
        end = vo + vl
    else:
        iid = 0
        while iid in obj.inst:
            iid += 1
        start = m.pl
        end = m.n
    if iid in obj.inst or (obj.inst and not obj.t[2] & _OBJ_MULTI):
        raise CoapError(128, "instance /%d/%d exists" % (obj.oid, iid))
    values = {}
    i = start
    while i < end:
        kind, rid, ro, rl, i = next_entry(buf, i, end)
        rid, v = tlv_item(dm, obj, buf, kind, rid, ro, rl, _R | _W)
        values[rid] = v
    t = obj.t
    for o in range(7, 7 + 4 * (t[5] << 8 | t[6]), 4):  # §6.3.6: a new instance carries its mandatory ones
        rid = t[o] << 8 | t[o + 1]
        f = t[o + 3]
        if f & _MANDATORY and f & (_R | _W) and rid not in values:
            raise CoapError(128, "mandatory resource %d missing" % rid)
    obj.inst[iid] = values
    if dm.ssid:  # several servers: the creator owns the new instance (core/access.py)
        dm._lazy("core.access").created(dm, obj.oid, iid)
    w.option(_LOCATION_PATH, str(obj.oid))
    w.option(_LOCATION_PATH, str(iid))
    if dm.log:
        dm.log("created /%d/%d" % (obj.oid, iid))
    if dm.changed:
        dm.changed(obj.oid, iid, None)
    return 65


def delete(dm, obj):
    iid = dm.path[1]
    obj.instance(iid)
    if obj.t[2] & _OBJ_MANDATORY and not obj.t[2] & _OBJ_MULTI:
        raise CoapError(133, "instance /%d/%d may not be deleted" % (obj.oid, iid))
    del obj.inst[iid]
    if 2 in dm.objs:
        dm._lazy("core.access").deleted(dm, obj.oid, iid)
    for key in [k for k in dm.attrs if len(k) > 1 and k[0] == obj.oid and k[1] == iid]:
        del dm.attrs[key]
    if dm.log:
        dm.log("deleted /%d/%d" % (obj.oid, iid))
    if dm.changed:
        dm.changed(obj.oid, iid, None)
    return 66

# -- Execute -----------------------------------------------------------------------------------

def execute(dm, obj, m):
    path = dm.path
    obj.instance(path[1])
    resource(obj, path[2], _E)
    fn = obj.hooks.get(_EXE_HOOK << 26 | path[1] << 16 | path[2])
    if fn is None:
        raise CoapError(133, "nothing to execute")
    args = str(bytes(m.payload()), "utf-8") if m.pl < m.n else ""
    check_args(args)
    if dm.log:
        dm.log("execute /%d/%d/%d %s" % (obj.oid, path[1], path[2], args))
    fn(args)
    return 68

# -- Discover and Write-Attributes -------------------------------------------------------------

def check_args(args):
    """Execute arguments (§5.4.5): `d[='text'][,d[='text']]...` with digits 0-9; 4.00 otherwise."""
    i = 0
    n = len(args)
    while i < n:
        if not "0" <= args[i] <= "9":
            raise CoapError(128, "bad execute arguments")
        i += 1
        if i < n and args[i] == "=":
            if i + 1 >= n or args[i + 1] != "'":
                raise CoapError(128, "bad execute arguments")
            j = args.find("'", i + 2)
            if j < 0:
                raise CoapError(128, "bad execute arguments")
            i = j + 1
        if i < n:
            if args[i] != ",":
                raise CoapError(128, "bad execute arguments")
            i += 1
            if i == n:
                raise CoapError(128, "bad execute arguments")
