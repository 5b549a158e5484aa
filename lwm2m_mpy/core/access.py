"""Access control (LwM2M 1.1 Core §7.3, Access Control object 2): which server may do what to which instance.

Applies only with more than one LwM2M server account (DM.ssid is then the requesting server's Short Server
ID; with one server it is 0 and that server may do everything). Loaded on the first such request.

Rights of server S on instance /o/i, from the Access Control instance whose /2/x/0 = o and /2/x/1 = i:
S's own ACL entry (/2/x/2/S), else S is the owner (/2/x/3) and has every right, else the default entry
/2/x/2/0, else none. No such instance: no rights, answered 4.01 Unauthorized. Creating needs the C right
in the instance for /o/65535. Access Control instances themselves belong to their owner, and a server's
own Server instance (/1/i with /1/i/0 = S) without an Access Control instance is its own to manage.
"""
from micropython import const

from ..errors import CoapError
from .store import Obj

_READ = const(1)
_WRITE = const(2)
_EXECUTE = const(4)
_DELETE = const(8)
_CREATE = const(16)
_ALL = const(31)
_MAX_ID = const(65535)

_GET = const(1)
_POST = const(2)
_PUT = const(3)
_DELETE_M = const(4)
_LINK = const(40)
_CONTENT_FORMAT = const(12)
_URI_QUERY = const(15)


def rights(dm, oid, iid):
    """The access bits the requesting server has on /oid/iid."""
    ssid = dm.ssid
    objs = dm.objs
    if oid == 2:  # an Access Control instance is managed by its owner only
        a = objs[2].inst.get(iid)
        return _ALL & ~_CREATE if a is not None and a.get(3) == ssid else 0
    aco = objs.get(2)
    if aco is not None:
        for a in aco.inst.values():
            if a.get(0) == oid and a.get(1) == iid:
                acl = a.get(2) or {}
                if ssid in acl:
                    return acl[ssid]
                if a.get(3) == ssid:
                    return _ALL
                return acl.get(0, 0)
    if oid == 1 and (objs[1].inst.get(iid) or {}).get(0) == ssid:
        return _ALL & ~_CREATE
    return 0


def need(dm, oid, iid, bit):
    if not rights(dm, oid, iid) & bit:
        raise CoapError(129, "server %d may not %s /%d/%d" % (dm.ssid, _WHAT[bit], oid, iid))


_WHAT = {_READ: "read", _WRITE: "write", _EXECUTE: "execute", _DELETE: "delete", _CREATE: "create in"}


def view(dm, obj):
    """`obj` with only the instances the requesting server may read (an object-level Read or Observe)."""
    v = Obj(obj.t)
    v.hooks = obj.hooks
    v.inst = {iid: d for iid, d in obj.inst.items() if rights(dm, obj.oid, iid) & _READ}
    return v


def read(dm, obj, p):
    """For a read or notification of path `p`: a view of `obj` (object level) or `obj`; 4.01 without the
    right."""
    if len(p) == 1:
        return view(dm, obj)
    need(dm, p[0], p[1], _READ)
    return obj


def check(dm, obj, m, plen):
    """Called by the DM before an operation on `obj`: 4.01 if the server lacks the right; the object itself
    or, for an object-level Read/Observe, a view of the instances it may read."""
    code = m.code
    oid = obj.oid
    iid = dm.path[1]
    if code == _GET:
        if m.uint(17) == _LINK:  # Discover needs no right (§7.3.2)
            return obj
        if plen == 1:
            return view(dm, obj)
        need(dm, oid, iid, _READ)
    elif code == _PUT and m.pl == m.n and m.find(_CONTENT_FORMAT) < 0 and m.find(_URI_QUERY) >= 0:
        if plen > 1:  # Write-Attributes: Read's right; on an object always performed
            need(dm, oid, iid, _READ)
    elif code == _POST and plen == 1:
        if oid == 2:
            raise CoapError(129, "Access Control instances are made by the client")
        need(dm, oid, _MAX_ID, _CREATE)
    elif plen > 1:
        need(dm, oid, iid, _DELETE if code == _DELETE_M else _EXECUTE if code == _POST and plen == 3 else _WRITE)
    return obj


def created(dm, oid, iid):
    """§7.3.1.2.1: the server that created /oid/iid owns it, with every right."""
    aco = dm.objs[2]
    k = 0
    while k in aco.inst:
        k += 1
    aco.inst[k] = {0: oid, 1: iid, 3: dm.ssid}
    if dm.changed:
        dm.changed(2, k, None)


def deleted(dm, oid, iid):
    """The Access Control instance of a deleted instance goes with it."""
    aco = dm.objs.get(2)
    if aco is None:
        return
    for k in [k for k, a in aco.inst.items() if a.get(0) == oid and a.get(1) == iid]:
        del aco.inst[k]
        if dm.changed:
            dm.changed(2, k, None)
