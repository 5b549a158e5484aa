"""Device management and service enablement interface (LwM2M 1.1 Core §6.3): the one place errors become codes.

Dispatches every request and serves Read here; Write/Create/Delete/Execute (changes.py) and
Discover/Write-Attributes (attributes.py) are imported on first use, so a device that is registered
and read keeps them out of its heap. Content formats: text (0), opaque (42), TLV (11542), link (40)
and the legacy 1541/1542/1544 numbers. Every failure raises CoapError and is answered here.
"""
from micropython import const
import gc
import sys

from .._compat import print_exception
from ..errors import CoapError
from ..codec import tlv, text

# Table flags (docs/design.md) and TLV kinds (Core §7.4.3), private so they cost no RAM
_R = const(1)
_MULTI = const(8)
_T_INSTANCE = const(0)
_T_RES_INSTANCE = const(1)
_T_MULTI_RES = const(2)
_T_RESOURCE = const(3)

_CONTENT_FORMAT = const(12)

_GET = const(1)
_POST = const(2)
_PUT = const(3)
_DELETE = const(4)
_FETCH = const(5)
_IPATCH = const(7)
_OBSERVE = const(6)
_URI_PATH = const(11)
_URI_QUERY = const(15)
_ACCEPT = const(17)
_TEXT = const(0)
_OPAQUE_T = const(6)
_STRING_T = const(1)


# Content formats (Core §7), each with the pre-1.0 number some servers still send
_LINK = const(40)
_OPAQUE = const(42)
_TLV = const(11542)
_SENML_JSON = const(110)
_SENML_CBOR = const(112)


class DM:
    """Answers device-management requests from the LwM2M server against `objs` {oid: Obj}."""

    ssid = 0  # with several servers, the Short Server ID of the one this DM answers (access control)

    def __init__(self, objs, changed=None, log=None):
        self.objs = objs
        self.changed = changed  # changed(oid, iid, rid): rid None = instance created/deleted
        self.log = log
        self.attrs = {}  # (oid[, iid[, rid[, riid]]]) -> {"pmin": 10, ...}
        self.path = [0, 0, 0, 0]
        self.mods = {}  # lazily imported operation modules
        self.plen = 0
        self.obs = None  # core/observe.py's Observer, made on the first Observe
        self.v = None  # the value of the last single-resource read
        self.client = None  # set by the Client: the observer sends through it

    # -- entry point, called by the exchange layer with the request and the response writer --------
    def handle(self, m, w):
        head = w.n
        try:
            w.buf[1] = self._dispatch(m, w)  # the code; options and payload are in w already
            return
        except CoapError as e:
            code = e.code
            why = e.args[0] if e.args else ""
        except MemoryError:  # no room for the code this needs (on-demand modules): free them, say so
            self.unload()
            code = 160
            why = "out of memory"
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
        accept = None
        observe = False
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
            elif num == _ACCEPT:
                accept = m.uint(_ACCEPT)
            elif num == _OBSERVE:
                observe = True
            elif num & 1 and num not in (3, 7, 15, 27):  # RFC 7252 §5.4.1: other critical options: 4.02
                raise CoapError(130, "unrecognised critical option %d" % num)
        self.plen = plen
        code = m.code
        if plen == 0:
            if code == _FETCH or code == _IPATCH:  # Read-, Observe-, Write-Composite (§6.3.2, §6.3.3, §6.4)
                return self._lazy("core.composite").request(self, m, w, accept, observe)
            raise CoapError(133, "operation not allowed on /")
        if path[0] == 0:  # §6.3: the Security object is for the Bootstrap-Server only
            raise CoapError(129, "Security object")
        obj = self.objs.get(path[0])
        if obj is None:
            raise CoapError(132, "no object %d" % path[0])
        if self.ssid:  # several servers: what may this one do here (core/access.py)
            obj = self._lazy("core.access").check(self, obj, m, plen)
        if code == _GET:
            if observe:  # Observe, or Cancel Observation (§6.4.1, §6.4.2)
                return self._lazy("core.observe").get(self).request(self, m, w, accept, obj)
            if accept != _LINK:
                return self._read(obj, accept, w)
            return self._lazy("core.attributes").discover(self, obj, w)
        if code == _PUT and m.pl == m.n and m.find(_CONTENT_FORMAT) < 0 and m.find(_URI_QUERY) >= 0:
            return self._lazy("core.attributes").write_attributes(self, obj, m)
        if m.find(27) >= 0:  # Block1 (RFC 7959): a Write into a stream, block by block
            return self._lazy("core.blockwise").write(self, obj, m, w)
        if code == _PUT or code == _POST and plen == 2:
            return self._lazy("core.changes").write(self, obj, m, code == _PUT)
        if code == _POST and plen == 1:
            return self._lazy("core.changes").create(self, obj, m, w)
        if code == _POST and plen == 3:
            return self._lazy("core.changes").execute(self, obj, m)
        if code == _DELETE and plen == 2:
            return self._lazy("core.changes").delete(self, obj)
        raise CoapError(133, "method not allowed here")

    def _lazy(self, name):
        """An on-demand module ("core.changes"), imported on first use after a collection (the loader
        needs contiguous room, which a heap that has been serving for a while may only have after one).
        Names are written out in full: strings that long are not interned, and every qstr counts (see
        docs/design.md, "Memory")."""
        mod = self.mods.get(name)
        if mod is None:
            gc.collect()
            try:
                mod = __import__("lwm2m_mpy." + name, None, None, (name,))
            except MemoryError:  # no room for both: drop the other on-demand modules and try once more
                self.unload()
                mod = __import__("lwm2m_mpy." + name, None, None, (name,))
            self.mods[name] = mod
        return mod

    def unload(self, more=""):
        """Forget the on-demand modules (and `more`, " core.bootstrap" say) so their heap can be used again;
        they load again when needed. (core.observe stays: its records live in the Observer.)"""
        self.mods.clear()
        for name in ("core.changes core.attributes core.composite core.access core.persist codec.reader codec.link"
                     " codec.senml codec.cbor" + more).split():
            pkg, _, leaf = name.partition(".")
            sys.modules.pop("lwm2m_mpy." + name, None)
            sys.modules["lwm2m_mpy." + pkg].__dict__.pop(leaf, None)  # the package holds it too
        gc.collect()

    # -- Read --------------------------------------------------------------------------------------
    def _read(self, obj, accept, w):
        path = self.path
        plen = self.plen
        if accept == _SENML_JSON or accept == _SENML_CBOR or accept == 11544:  # 11544: LwM2M CBOR
            return self._lazy("core.composite").read(self, w, accept, (tuple(path[:plen]),))
        single = False
        if plen == 2:
            obj.instance(path[1])
        if plen >= 3:
            r = resource(obj, path[2], _R)
            rtype = r >> 8
            flags = r & 255
            v = obj.get(path[1], path[2])  # 4.04 for a missing instance or resource
            if plen == 4:
                if not flags & _MULTI or path[3] not in v:
                    raise CoapError(132, "no resource instance")
                v = v[path[3]]
                single = True
            else:
                single = not flags & _MULTI
            self.v = v  # what observe remembers of a notification (a getter is not called twice)
            if accept is None:
                accept = _OPAQUE if single and rtype == _OPAQUE_T else _TEXT if single else _TLV
        elif accept is None:
            accept = _TLV
        opaque = accept == 42 or accept == 1544  # each format with its pre-1.0 number too
        if accept == 0 or accept == 1541 or opaque:
            if not single or opaque != (rtype == _OPAQUE_T):
                raise CoapError(134, "format %d cannot carry this" % accept)
            w.content(accept, v if rtype == _OPAQUE_T else v.encode() if rtype == _STRING_T
                      else text.format_value(v, rtype).encode())
            return 69
        if accept != _TLV and accept != 1542:
            raise CoapError(134, "format %d not supported" % accept)
        w.option(_CONTENT_FORMAT, accept)
        s = w.marker()
        if plen == 1:
            for iid in sorted(obj.inst):
                mark = tlv.open_(w)
                self._tlv_instance(obj, iid, w)
                tlv.close_(w, mark, _T_INSTANCE, iid)
        elif plen == 2:
            self._tlv_instance(obj, path[1], w)
        elif plen == 3:
            self._tlv_resource(w, path[2], rtype, flags, v)
        else:
            tlv.write_value(w, _T_RES_INSTANCE, path[3], tlv.value_bytes(v, rtype))
        w.end_payload(s)
        return 69

    def _tlv_instance(self, obj, iid, w):
        t = obj.t
        for o in range(7, 7 + 4 * (t[5] << 8 | t[6]), 4):  # the table's records in place: no list
            rid = t[o] << 8 | t[o + 1]
            if t[o + 3] & _R and obj.present(iid, rid):
                self._tlv_resource(w, rid, t[o + 2], t[o + 3], obj.get(iid, rid))

    def _tlv_resource(self, w, rid, rtype, flags, v):
        if flags & _MULTI:
            mark = tlv.open_(w)
            for riid in sorted(v):
                tlv.write_value(w, _T_RES_INSTANCE, riid, tlv.value_bytes(v[riid], rtype))
            tlv.close_(w, mark, _T_MULTI_RES, rid)
        else:
            tlv.write_value(w, _T_RESOURCE, rid, tlv.value_bytes(v, rtype))


def resource(obj, rid, need):
    """`type << 8 | flags` of a defined resource that allows operation bit `need`; 4.04 / 4.05 otherwise."""
    r = obj.res(rid)
    if r < 0:
        raise CoapError(132, "no resource %d" % rid)
    if not r & need:
        raise CoapError(133, "operation not allowed on resource %d" % rid)
    return r
