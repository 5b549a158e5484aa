"""SenML JSON (110) and SenML CBOR (112) as LwM2M 1.1 Core §7.4.4 / §7.4.5 use RFC 8428: records
streamed into a coap Writer one at a time, and a reader that resolves names into paths."""
from micropython import const
import json

from ..errors import CoapError
from .cbor import decode, head, put, read_head, utf8

_STRING = const(1)
_UNSIGNED = const(3)
_FLOAT = const(4)
_BOOLEAN = const(5)
_OPAQUE = const(6)
_OBJLNK = const(8)
_CORELNK = const(9)

# RFC 8428 §6: a label's CBOR number is its index here minus 2 (bn -2, n 0, v 2, vs 3, vb 4, vd 8).
# LwM2M's "vlo" has no number and is a text key in CBOR too.
_KEYS = ("bn", "bver", "n", "u", "v", "vs", "vb", "s", "t", "ut", "vd", "vlo")
_B64 = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"  # base64url, RFC 4648 §5


def start(w, cbor):
    """Open a pack (an array); returns the mark for record() and end(): [head offset, records so far].
    CBOR reserves a one-byte array head that end() fills in."""
    w.put(b"\x80" if cbor else b"[")
    return [w.n - 1, 0]


def _b64(w, data):
    """`data` as base64url without padding (RFC 8428 §5), straight into the Writer."""
    i = w.n
    j = i + (len(data) * 4 + 2) // 3
    buf = w.buf
    if j > len(buf):
        raise CoapError(160, "message too large")
    acc = bits = 0
    for c in data:
        acc = (acc << 8 | c) & 0x3FFF
        bits += 8
        while bits > 5:
            bits -= 6
            buf[i] = _B64[acc >> bits & 63]
            i += 1
    if bits:
        buf[i] = _B64[acc << (6 - bits) & 63]
    w.n = j


def record(w, cbor, mark, bn, n, rtype, v):
    """Append one record: bn and n when not None, and `v` of table type `rtype` under the label its
    type takes (v, vb, vs, vd, vlo), or no value at all when `v` is None (a path list)."""
    k = 4  # index in _KEYS of the value label
    if v is not None:
        if rtype == _STRING or rtype == _CORELNK:
            k = 5
        elif rtype == _BOOLEAN:
            k = 6
            v = bool(v)
        elif rtype == _OPAQUE:
            k = 10
        elif rtype == _OBJLNK:
            k = 11
            v = "%d:%d" % (v[0], v[1])
        elif rtype == _FLOAT:
            v = float(v)
            if v - v and not cbor:  # NaN and the infinities have no JSON number
                raise CoapError(160, "no JSON for NaN")
        else:
            v = int(v)
    if cbor:
        head(w, 5, (bn is not None) + (n is not None) + (v is not None))
    else:
        w.put(b",{" if mark[1] else b"{")
    mark[1] += 1
    sep = ""
    for k, x in ((0, bn), (2, n), (k, v)):
        if x is None:
            continue
        if cbor:
            put(w, "vlo" if k == 11 else k - 2)
            put(w, x)
            continue
        w.put(('%s"%s":' % (sep, _KEYS[k])).encode())
        sep = ","
        if k == 10:
            w.put(b'"')
            _b64(w, x)
            w.put(b'"')
        else:  # compact JSON; a float as repr() gives it, which is what json.dumps writes on every port
            w.put(json.dumps(x).encode())
    if not cbor:
        w.put(b"}")


def end(w, cbor, mark):
    """Close the pack. CBOR: the definite count goes into the head start() reserved; past 23 records
    the head needs more bytes, and the records move up to make room."""
    if not cbor:
        w.put(b"]")
        return
    at, count = mark
    if count < 24:
        w.buf[at] = 0x80 | count
        return
    i = w.n
    k = 1 if count < 256 else 2 if count < 65536 else 4
    if i + k > len(w.buf):
        raise CoapError(160, "message too large")
    mv = memoryview(w.buf)
    mv[at + 1 + k : i + k] = mv[at + 1 : i]  # overlapping: a memmove in MicroPython and CPython alike
    w.n = at
    head(w, 4, count)
    w.n = i + k


def _unb64(s):
    """Bytes of base64url text (padding tolerated); 4.00 for any other character or a lone 6 bits."""
    b = s.rstrip("=").encode()
    out = bytearray(len(b) * 3 // 4)
    acc = bits = j = 0
    for c in b:  # the alphabet by ranges: bytes.find(int) is not on every port
        if 64 < c < 91:
            c -= 65
        elif 96 < c < 123:
            c -= 71
        elif 47 < c < 58:
            c += 4
        elif c == 45 or c == 95:
            c = 62 if c == 45 else 63
        else:
            raise CoapError(128, "bad base64")
        acc = (acc << 6 | c) & 0xFFF
        bits += 6
        if bits > 7:
            bits -= 8
            out[j] = acc >> bits & 255
            j += 1
    if bits > 5:
        raise CoapError(128, "bad base64")
    return bytes(out)


def _id(s):
    """An LwM2M id (0-65535) from its decimal digits."""
    if 0 < len(s) < 6:
        for c in s:
            if c < "0" or c > "9":
                break
        else:
            v = int(s)
            if v < 65536:
                return v
    raise CoapError(128, "bad id")


def _path(s):
    """[oid, iid, rid, riid] (0-4 ids) of a resolved name: "/" or "/3", "/3/0", ... (Core §7.4.4)."""
    if s[:1] != "/" or s.count("/") > 4:
        raise CoapError(128, "bad id")
    return [_id(x) for x in s[1:].split("/")] if len(s) > 1 else []


def _json(buf, i, end):
    """The JSON text buf[i:end] parsed. Brackets are counted first: SenML nests two deep only, and
    MicroPython's json would build every level of a deeper payload before it failed (MemoryError)."""
    raw = bytes(buf[i:end])
    d = q = 0  # depth; q: 1 in a string, 2 just after a backslash in one
    for c in raw:
        if q:
            q = 1 if q == 2 else 2 if c == 92 else 0 if c == 34 else 1
        elif c == 34:
            q = 1
        elif c == 91 or c == 123:
            d += 1
            if d > 2:
                raise CoapError(128, "bad SenML")
        elif c == 93 or c == 125:
            d -= 1
    try:
        return json.loads(utf8(raw))
    except (ValueError, RuntimeError):  # RuntimeError: CPython's RecursionError
        raise CoapError(128, "bad JSON")


def records(buf, i, end, cbor):
    """[(path, kind, value)] for the records of buf[i:end]: path the ids of bn + n (RFC 8428 §4.5: a bn
    holds for the records after it too), kind None or "v", "vs", "vb", "vd", "vlo", value as decoded
    (vd as bytes). CBOR is decoded one record at a time, so a long pack costs only what it yields; a
    pack whose records the heap cannot hold is 4.13."""
    try:
        top = None
        if cbor:
            major, count, i = read_head(buf, i, end)
        else:
            top = _json(buf, i, end)
            major = 4 if isinstance(top, list) else 0
            count = len(top) if major else 0
        if major != 4:
            raise CoapError(128, "bad SenML")
        out = []
        bn = ""
        k = 0
        while k != count:  # CBOR indefinite (-1): until the break
            if top is not None:
                r = top[k]
            elif count < 0 and i < end and buf[i] == 0xFF:
                i += 1
                break
            else:
                r, i = decode(buf, i, end, 1)
            k += 1
            if not isinstance(r, dict):
                raise CoapError(128, "bad SenML")
            n = ""
            kind = x = None
            for key in r:
                v = r[key]
                if cbor and type(key) is int and -3 < key < 9:
                    key = _KEYS[key + 2]
                if not isinstance(key, str):
                    continue
                if key == "bn" or key == "n":
                    if not isinstance(v, str):
                        raise CoapError(128, "bad SenML")
                    if key == "n":
                        n = v
                    else:
                        bn = v
                elif key in ("v", "vs", "vb", "vd", "vlo"):
                    if kind:
                        raise CoapError(128, "two values")
                    kind = key
                    x = v
                elif key[-1:] == "_":  # must-understand (RFC 8428 §4.4)
                    raise CoapError(128, "must understand")
            if kind == "vd" and not cbor:
                if not isinstance(x, str):
                    raise CoapError(128, "bad base64")
                x = _unb64(x)
            out.append((_path(bn + n), kind, x))
        if cbor and i != end:
            raise CoapError(128, "bad SenML")
        return out
    except MemoryError:  # many small records can outgrow a small heap: refused, and the heap is whole again
        raise CoapError(141, "too large")


def value(kind, v, rtype):
    """The Python value of a record's (kind, value) for table type `rtype`; 4.00 when it does not fit:
    numbers need "v" (integral and in 64 bits for Integer, Unsigned and Time; 5.0 reads as 5), Boolean
    "vb", String and Corelnk "vs", Opaque "vd", Objlnk "vlo" as "oid:iid"."""
    if rtype == _STRING or rtype == _CORELNK:
        if kind == "vs" and isinstance(v, str):
            return v
    elif rtype == _BOOLEAN:
        if kind == "vb" and isinstance(v, bool):
            return v
    elif rtype == _OPAQUE:
        if kind == "vd" and isinstance(v, bytes):
            return v
    elif rtype == _OBJLNK:
        if kind == "vlo" and isinstance(v, str):
            v = v.split(":")
            if len(v) == 2:
                return _id(v[0]), _id(v[1])
    elif kind == "v" and type(v) in (int, float):  # not bool: True is an int to CPython
        if type(v) is float:
            if rtype == _FLOAT:
                return v
            if v - v == 0 and v == int(v):  # finite and integral
                v = int(v)
        if type(v) is int:
            low = 0 if rtype == _UNSIGNED else -(1 << 63)
            if low <= v < low + (1 << 64):
                return float(v) if rtype == _FLOAT else v
    raise CoapError(128, "value does not fit the type")
