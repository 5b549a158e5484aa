"""Discover and Write-Attributes (LwM2M 1.1 Core §6.3.5, §6.3.4, attributes §5.1.2).

Imported by core/dm.py on the first such request.
"""
from micropython import const

from ..errors import CoapError
from ..codec.link import put_link
from .dm import resource

# Table flags (docs/design.md) and TLV kinds (Core §7.4.3), private so they cost no RAM
_R = const(1)
_MULTI = const(8)

_CONTENT_FORMAT = const(12)

_LINK = const(40)
_URI_QUERY = const(15)
_FLOAT_T = const(4)
_INT_T = const(2)
_UINT_T = const(3)
_NUMERIC_ATTRS = ("gt", "lt", "st")
_INT_ATTRS = ("pmin", "pmax", "epmin", "epmax")


def discover(dm, obj, w):
    """Links to the object/instance/resource and what lies below, with their attributes (§6.3.5)."""
    path = dm.path
    plen = dm.plen
    if plen == 4:
        raise CoapError(133, "discover on a resource instance")
    if plen >= 2:
        obj.instance(path[1])
    if plen == 3 and (obj.res(path[2]) < 0 or not obj.present(path[1], path[2])):
        raise CoapError(132, "no resource %d" % path[2])
    w.option(_CONTENT_FORMAT, _LINK)
    s = w.marker()
    oid = obj.oid
    first = True
    for iid in sorted(obj.inst) if plen == 1 else (path[1],):
        keys = [(oid,)] if plen == 1 and first else []
        if plen < 3:
            keys.append((oid, iid))
            t = obj.t  # the table's records, in resource id order
            keys.extend([(oid, iid, rid) for rid in [t[o] << 8 | t[o + 1] for o in range(7, 7 + 4 * (t[5] << 8 | t[6]), 4)]
                         if obj.present(iid, rid)])
        else:
            keys.append(tuple(path[:3]))
        for q in keys:
            if len(q) >= plen:
                a = dm.attrs.get(q)
                if len(q) == 3 and obj.res(q[2]) & _MULTI:  # dim: how many instances (§5.1.2)
                    a = dict(a or {})
                    a["dim"] = len(obj.get(iid, q[2]))
                put_link(w, q, a, first)
                first = False
    if first:  # an object without instances still lists itself
        put_link(w, (oid,), dm.attrs.get((oid,)), True)
    w.end_payload(s)
    return 69


def write_attributes(dm, obj, m):
    path = dm.path
    plen = dm.plen
    if plen >= 2:
        obj.instance(path[1])
    rtype = None
    if plen >= 3:
        rtype = resource(obj, path[2], _R) >> 8
    key = tuple(path[:plen])
    new = dict(dm.attrs.get(key) or {})
    for q in m.strings(_URI_QUERY):
        k, _, v = q.partition("=")
        if k in _NUMERIC_ATTRS:
            if rtype not in (_INT_T, _UINT_T, _FLOAT_T):
                raise CoapError(128, "%s needs a numeric resource" % k)
        elif k not in _INT_ATTRS:
            raise CoapError(128, "unknown attribute %s" % k)
        if v == "":
            new.pop(k, None)  # an attribute without a value is removed (§5.1.2)
            continue
        try:
            new[k] = float(v) if k in _NUMERIC_ATTRS else int(v)
        except ValueError:
            raise CoapError(128, "bad value for %s" % k)
        if new[k] < 0 and k != "gt" and k != "lt":
            raise CoapError(128, "%s must not be negative" % k)
    # §5.1.2 constraints: lt < gt, lt + 2*st < gt, pmin <= pmax, epmin <= epmax
    if "lt" in new and "gt" in new and new["lt"] + 2 * new.get("st", 0) >= new["gt"]:
        raise CoapError(128, "lt + 2*st must be below gt")
    for a, b in (("pmin", "pmax"), ("epmin", "epmax")):
        if a in new and b in new and new[a] > new[b]:
            raise CoapError(128, "%s above %s" % (a, b))
    if new:
        dm.attrs[key] = new
    else:
        dm.attrs.pop(key, None)
    if dm.obs:  # running observations take the new periods at once
        dm.obs.update()
    return 68
