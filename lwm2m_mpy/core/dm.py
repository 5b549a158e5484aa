"""Device management and service enablement interface (LwM2M 1.1 Core §6.3): the one place errors become codes.

Read, Write (replace / partial update), Execute, Create, Delete, Discover and Write-Attributes on the
objects in the store; content formats text (0), opaque (42), TLV (11542), link (40) and the legacy
1541/1542/1544 numbers. Every failure raises CoapError and is answered with its code here.
"""
from micropython import const

from .._compat import print_exception
from ..errors import CoapError
from ..codec import tlv, text
from ..codec.link import put_link
from ..coap.message import CONTENT_FORMAT, LOCATION_PATH
from .store import R, W, E, MULTI, MANDATORY, OBJ_MULTI, OBJ_MANDATORY

_GET = const(1)
_POST = const(2)
_PUT = const(3)
_DELETE = const(4)
_URI_PATH = const(11)
_URI_QUERY = const(15)
_ACCEPT = const(17)
_TEXT = const(0)
_OPAQUE_T = const(6)
_FLOAT_T = const(4)
_INT_T = const(2)
_UINT_T = const(3)
_EXE_HOOK = const(2)

# Critical options (odd numbers) this client understands in a request; any other is 4.02 (RFC 7252 §5.4.1).
_KNOWN_CRITICAL = (3, 7, 11, 15, 17)
_NUMERIC_ATTRS = ("gt", "lt", "st")
_INT_ATTRS = ("pmin", "pmax", "epmin", "epmax")

# Content formats (Core §7), each with the pre-1.0 number some servers still send
_LINK = const(40)
_OPAQUE = const(42)
_TLV = const(11542)
_TEXT_FMTS = (0, 1541)
_OPAQUE_FMTS = (42, 1544)
_TLV_FMTS = (11542, 1542)


class DM:
    """Answers device-management requests from the LwM2M server against `objs` {oid: Obj}."""

    def __init__(self, objs, changed=None, log=None):
        self.objs = objs
        self.changed = changed  # changed(oid, iid, rid): rid None = instance created/deleted
        self.log = log
        self.attrs = {}  # (oid[, iid[, rid[, riid]]]) -> {"pmin": 10, ...}
        self.path = [0, 0, 0, 0]
        self.plen = 0

    # -- entry point, called by the exchange layer with the request and the response writer --------
    def handle(self, m, w):
        head = w.n
        try:
            w.buf[1] = self._dispatch(m, w)
            return
        except CoapError as e:
            code = e.code
            why = e.args[0] if e.args else ""
        except Exception as e:  # an app callback or a bug: answer 5.00, keep running, say why
            print_exception(e)
            code = 160
            why = "internal error"
        w.n = head  # drop whatever the failed operation had written
        w.last = 0
        w.buf[1] = code
        if self.log:
            self.log("answer %d.%02d %s" % (code >> 5, code & 31, why))
        if why:  # diagnostic payload (RFC 7252 §5.5.2): says what was wrong in plain words
            w.marker()
            w.put(why.encode())

    def _dispatch(self, m, w):
        onum = m.onum
        path = self.path
        plen = 0
        buf = m.buf
        for k in range(m.count):
            num = onum[k]
            if num == _URI_PATH:
                o = m.ooff[k]
                ln = m.olen[k]
                if plen == 4 or ln == 0 or ln > 5:
                    raise CoapError(132, "no such path")
                v = 0
                for i in range(o, o + ln):
                    c = buf[i] - 48
                    if c < 0 or c > 9:
                        raise CoapError(132, "no such path")
                    v = v * 10 + c
                if v > 65535:
                    raise CoapError(132, "no such path")
                path[plen] = v
                plen += 1
            elif num & 1 and num not in _KNOWN_CRITICAL:
                raise CoapError(130, "unrecognised critical option %d" % num)
        self.plen = plen
        code = m.code
        if plen == 0:
            raise CoapError(133, "operation not allowed on /")
        if path[0] == 0:  # §6.3: the Security object is for the Bootstrap-Server only
            raise CoapError(129, "Security object")
        obj = self.objs.get(path[0])
        if obj is None:
            raise CoapError(132, "no object %d" % path[0])
        if code == _GET:
            if m.uint(_ACCEPT) == _LINK:
                return self._discover(obj, w)
            return self._read(obj, m, w)
        if code == _PUT:
            if m.pl == m.n and m.find(CONTENT_FORMAT) < 0 and m.find(_URI_QUERY) >= 0:
                return self._write_attributes(obj, m)
            return self._write(obj, m, True)
        if code == _POST:
            if plen == 1:
                return self._create(obj, m, w)
            if plen == 2:
                return self._write(obj, m, False)
            if plen == 3:
                return self._execute(obj, m)
        if code == _DELETE and plen == 2:
            return self._delete(obj)
        raise CoapError(133, "method not allowed here")

    # -- helpers -----------------------------------------------------------------------------------
    def _resource(self, obj, rid, need):
        """(type, flags) of a defined resource that allows operation bit `need`; 4.04 / 4.05 otherwise."""
        r = obj.res(rid)
        if r is None:
            raise CoapError(132, "no resource %d" % rid)
        if not r[1] & need:
            raise CoapError(133, "operation not allowed on resource %d" % rid)
        return r

    # -- Read --------------------------------------------------------------------------------------
    def _read(self, obj, m, w):
        path = self.path
        plen = self.plen
        accept = m.uint(_ACCEPT)
        single = False
        if plen >= 2:
            obj.instance(path[1])
        if plen >= 3:
            rtype, flags = self._resource(obj, path[2], R)
            v = obj.get(path[1], path[2])
            if plen == 4:
                if not flags & MULTI or path[3] not in v:
                    raise CoapError(132, "no resource instance")
                v = v[path[3]]
                single = True
            else:
                single = not flags & MULTI
            if accept is None:
                accept = _OPAQUE if single and rtype == _OPAQUE_T else _TEXT if single else _TLV
        elif accept is None:
            accept = _TLV
        if accept in _TEXT_FMTS or accept in _OPAQUE_FMTS:
            if not single or (accept in _OPAQUE_FMTS) != (rtype == _OPAQUE_T):
                raise CoapError(134, "format %d cannot carry this" % accept)
            w.option(CONTENT_FORMAT, accept)
            s = w.marker()
            w.put(v if rtype == _OPAQUE_T else text.format_value(v, rtype).encode())
            w.end_payload(s)
            return 69
        if accept not in _TLV_FMTS:
            raise CoapError(134, "format %d not supported" % accept)
        w.option(CONTENT_FORMAT, accept)
        s = w.marker()
        if plen == 1:
            for iid in sorted(obj.inst):
                mark = tlv.open_(w)
                self._tlv_instance(obj, iid, w)
                tlv.close_(w, mark, tlv.INSTANCE, iid)
        elif plen == 2:
            self._tlv_instance(obj, path[1], w)
        elif plen == 3:
            self._tlv_resource(w, path[2], rtype, flags, v)
        else:
            tlv.write_value(w, tlv.RES_INSTANCE, path[3], tlv.value_bytes(v, rtype))
        w.end_payload(s)
        return 69

    def _tlv_instance(self, obj, iid, w):
        for rid in obj.rids():
            rtype, flags = obj.res(rid)
            if flags & R and obj.present(iid, rid):
                self._tlv_resource(w, rid, rtype, flags, obj.get(iid, rid))

    def _tlv_resource(self, w, rid, rtype, flags, v):
        if flags & MULTI:
            mark = tlv.open_(w)
            for riid in sorted(v):
                tlv.write_value(w, tlv.RES_INSTANCE, riid, tlv.value_bytes(v[riid], rtype))
            tlv.close_(w, mark, tlv.MULTI_RES, rid)
        else:
            tlv.write_value(w, tlv.RESOURCE, rid, tlv.value_bytes(v, rtype))

    # -- Write / Create ----------------------------------------------------------------------------
    def _decode(self, obj, m, need, plen):
        """Payload -> list of (rid, value or {riid: value}) after checking every target; nothing applied yet."""
        cf = m.uint(CONTENT_FORMAT)
        if m.pl == m.n:
            raise CoapError(128, "no payload")
        path = self.path
        buf = m.buf
        if cf is None:
            raise CoapError(128, "Content-Format missing")
        if cf in _TEXT_FMTS or cf in _OPAQUE_FMTS:
            if plen < 3:
                raise CoapError(143, "format %d needs a resource path" % cf)
            rtype, flags = self._resource(obj, path[2], need)
            if (cf in _OPAQUE_FMTS) != (rtype == _OPAQUE_T):
                raise CoapError(143, "format %d does not fit the resource type" % cf)
            raw = m.payload()
            v = bytes(raw) if rtype == _OPAQUE_T else text.parse_value(raw, rtype)
            if (plen == 4) != bool(flags & MULTI):
                raise CoapError(128, "single/multiple resource mismatch")
            return [(path[2], {path[3]: v} if plen == 4 else v)]
        if cf not in _TLV_FMTS:
            raise CoapError(143, "format %d not supported" % cf)
        out = []
        i = m.pl
        end = m.n
        while i < end:
            kind, ident, vo, vl, i = tlv.next_entry(buf, i, end)
            if kind == tlv.INSTANCE:  # some servers wrap an instance write in its instance entry
                if plen != 2 or ident != path[1]:
                    raise CoapError(128, "TLV instance does not match the path")
                j = vo
                while j < vo + vl:
                    kind, rid, ro, rl, j = tlv.next_entry(buf, j, vo + vl)
                    out.append(self._tlv_item(obj, buf, kind, rid, ro, rl, need))
            elif kind == tlv.RES_INSTANCE:
                if plen != 4:
                    raise CoapError(128, "resource instance outside a multiple resource")
                rtype, flags = self._resource(obj, path[2], need)
                if not flags & MULTI or ident != path[3]:
                    raise CoapError(128, "resource instance does not match the path")
                out.append((path[2], {ident: tlv.parse_value(buf, vo, vl, rtype)}))
            else:
                if plen >= 3 and ident != path[2]:
                    raise CoapError(128, "TLV resource does not match the path")
                out.append(self._tlv_item(obj, buf, kind, ident, vo, vl, need))
        return out

    def _tlv_item(self, obj, buf, kind, rid, vo, vl, need):
        rtype, flags = self._resource(obj, rid, need)
        if kind == tlv.RESOURCE:
            if flags & MULTI:
                raise CoapError(128, "resource %d is multiple" % rid)
            return rid, tlv.parse_value(buf, vo, vl, rtype)
        if kind != tlv.MULTI_RES or not flags & MULTI:
            raise CoapError(128, "resource %d is single" % rid)
        d = {}
        j = vo
        while j < vo + vl:
            k, riid, ro, rl, j = tlv.next_entry(buf, j, vo + vl)
            if k != tlv.RES_INSTANCE:
                raise CoapError(128, "bad entry in multiple resource")
            d[riid] = tlv.parse_value(buf, ro, rl, rtype)
        return rid, d

    def _write(self, obj, m, replace):
        path = self.path
        plen = self.plen
        if plen < 2:
            raise CoapError(133, "write on an object")
        iid = path[1]
        inst = obj.instance(iid)
        items = self._decode(obj, m, W, plen)
        if replace and plen == 2:  # §6.3.3 replace: writable optional resources not given are removed
            given = [rid for rid, _ in items]
            for rid in list(inst):
                f = obj.res(rid)[1]
                if f & W and not f & MANDATORY and rid not in given:
                    del inst[rid]
        for rid, v in items:
            if isinstance(v, dict) and not (replace and plen == 3):
                merged = dict(inst.get(rid) or {})  # partial update / single instance: keep the others
                merged.update(v)
                v = merged
            obj.put(iid, rid, v)
            if self.changed:
                self.changed(obj.oid, iid, rid)
        return 68

    def _create(self, obj, m, w):
        cf = m.uint(CONTENT_FORMAT)
        if cf not in _TLV_FMTS:
            raise CoapError(143 if m.pl < m.n else 128, "Create needs a TLV payload")
        buf = m.buf
        kind, ident, vo, vl, nxt = tlv.next_entry(buf, m.pl, m.n)
        if kind == tlv.INSTANCE:  # the server chose the instance id
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
        if iid in obj.inst or (obj.inst and not obj.t[2] & OBJ_MULTI):
            raise CoapError(128, "instance /%d/%d exists" % (obj.oid, iid))
        values = {}
        i = start
        while i < end:
            kind, rid, ro, rl, i = tlv.next_entry(buf, i, end)
            rid, v = self._tlv_item(obj, buf, kind, rid, ro, rl, R | W)
            values[rid] = v
        for rid in obj.rids():  # §6.3.6: a new instance must carry its mandatory resources
            f = obj.res(rid)[1]
            if f & MANDATORY and f & (R | W) and rid not in values:
                raise CoapError(128, "mandatory resource %d missing" % rid)
        obj.inst[iid] = values
        w.option(LOCATION_PATH, str(obj.oid))
        w.option(LOCATION_PATH, str(iid))
        if self.log:
            self.log("created /%d/%d" % (obj.oid, iid))
        if self.changed:
            self.changed(obj.oid, iid, None)
        return 65

    def _delete(self, obj):
        iid = self.path[1]
        obj.instance(iid)
        if obj.t[2] & OBJ_MANDATORY and not obj.t[2] & OBJ_MULTI:
            raise CoapError(133, "instance /%d/%d may not be deleted" % (obj.oid, iid))
        del obj.inst[iid]
        for key in [k for k in self.attrs if len(k) > 1 and k[0] == obj.oid and k[1] == iid]:
            del self.attrs[key]
        if self.log:
            self.log("deleted /%d/%d" % (obj.oid, iid))
        if self.changed:
            self.changed(obj.oid, iid, None)
        return 66

    # -- Execute -----------------------------------------------------------------------------------
    def _execute(self, obj, m):
        path = self.path
        obj.instance(path[1])
        self._resource(obj, path[2], E)
        fn = obj.hook(_EXE_HOOK, path[1], path[2])
        if fn is None:
            raise CoapError(133, "nothing to execute")
        args = str(bytes(m.payload()), "utf-8") if m.pl < m.n else ""
        check_args(args)
        if self.log:
            self.log("execute /%d/%d/%d %s" % (obj.oid, path[1], path[2], args))
        fn(args)
        return 68

    # -- Discover and Write-Attributes -------------------------------------------------------------
    def _discover(self, obj, w):
        """Links to the object/instance/resource and what lies below, with their attributes (§6.3.5)."""
        path = self.path
        plen = self.plen
        if plen == 4:
            raise CoapError(133, "discover on a resource instance")
        if plen >= 2:
            obj.instance(path[1])
        if plen == 3 and (obj.res(path[2]) is None or not obj.present(path[1], path[2])):
            raise CoapError(132, "no resource %d" % path[2])
        w.option(CONTENT_FORMAT, _LINK)
        s = w.marker()
        oid = obj.oid
        first = True
        for iid in sorted(obj.inst) if plen == 1 else (path[1],):
            keys = [(oid,)] if plen == 1 and first else []
            if plen < 3:
                keys.append((oid, iid))
                keys.extend([(oid, iid, rid) for rid in obj.rids() if obj.present(iid, rid)])
            else:
                keys.append(tuple(path[:3]))
            for q in keys:
                if len(q) >= plen:
                    a = self.attrs.get(q)
                    if len(q) == 3 and obj.res(q[2])[1] & MULTI:  # dim: how many instances (§5.1.2)
                        a = dict(a or {})
                        a["dim"] = len(obj.get(iid, q[2]))
                    put_link(w, q, a, first)
                    first = False
        if first:  # an object without instances still lists itself
            put_link(w, (oid,), self.attrs.get((oid,)), True)
        w.end_payload(s)
        return 69

    def _write_attributes(self, obj, m):
        path = self.path
        plen = self.plen
        if plen >= 2:
            obj.instance(path[1])
        rtype = None
        if plen >= 3:
            rtype = self._resource(obj, path[2], R)[0]
        key = tuple(path[:plen])
        new = dict(self.attrs.get(key) or {})
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
            self.attrs[key] = new
        else:
            self.attrs.pop(key, None)
        return 68


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
