"""OMA-TLV (LwM2M 1.1 Core §7.4.3): streaming writer into a coap Writer, entry reader over a buffer."""
from micropython import const
import struct

from ..errors import CoapError

# Identifier types (bits 7-6 of the type byte)
_INSTANCE = const(0)
_RES_INSTANCE = const(1)
_MULTI_RES = const(2)
_RESOURCE = const(3)

# Resource types as in the static tables (docs/design.md)
_STRING = const(1)
_INTEGER = const(2)
_UNSIGNED = const(3)
_FLOAT = const(4)
_BOOLEAN = const(5)
_OPAQUE = const(6)
_TIME = const(7)
_OBJLNK = const(8)
_CORELNK = const(9)
_RESERVE = const(6)  # largest header: type byte + 16-bit id + 24-bit length


def value_bytes(v, rtype):
    """The TLV value field for `v` of table type `rtype` (§7.4.3 data types). Allocates a small bytes."""
    if rtype == _STRING or rtype == _CORELNK:
        return v.encode() if isinstance(v, str) else bytes(v)
    if rtype == _OPAQUE:
        return bytes(v)
    if rtype == _BOOLEAN:
        return b"\x01" if v else b"\x00"
    if rtype == _FLOAT:
        if -3.4e38 < v < 3.4e38:  # CPython's ">f" refuses what does not fit; MicroPython makes it inf
            f = struct.pack(">f", v)
            if struct.unpack(">f", f)[0] == v:
                return f
        return struct.pack(">d", v)
    if rtype == _OBJLNK:
        return struct.pack(">HH", v[0], v[1])
    v = int(v)
    n = 1  # 1, 2, 4 or 8 bytes: Unsigned Integer from 0, Integer and Time signed
    if rtype == _UNSIGNED:
        while n < 8 and v >> (8 * n):
            n *= 2
    else:
        while n < 8 and not -(1 << (8 * n - 1)) <= v < 1 << (8 * n - 1):
            n *= 2
    return (v & ((1 << (8 * n)) - 1)).to_bytes(n, "big")


def _write_header(buf, i, kind, ident, ln):
    """Write a type/id/length header at buf[i]; returns the offset after it."""
    t = kind << 6
    h = i
    i += 1
    if ident > 255:
        t |= 0x20
        buf[i] = ident >> 8
        buf[i + 1] = ident & 255
        i += 2
    else:
        buf[i] = ident
        i += 1
    if ln < 8:
        t |= ln
    else:
        k = 1 if ln < 256 else 2 if ln < 65536 else 3
        t |= k << 3
        while k:
            k -= 1
            buf[i] = ln >> (8 * k) & 255
            i += 1
    buf[h] = t
    return i


def write_value(w, kind, ident, data):
    """Write a complete entry with a known value (resource or resource instance)."""
    ln = len(data)
    i = w.n
    if i + _RESERVE + ln > len(w.buf):  # the largest header: may refuse up to 4 bytes that would fit
        raise CoapError(160, "response too large")
    w.n = _write_header(w.buf, i, kind, ident, ln)
    w.put(data)


def open_(w):
    """Start a container entry (object instance or multiple resource); returns a mark for close_()."""
    i = w.n
    if i + _RESERVE > len(w.buf):
        raise CoapError(160, "response too large")
    w.n = i + _RESERVE
    return i


def close_(w, mark, kind, ident):
    """Finish a container: write its header in front of the children and close the gap."""
    start = mark + _RESERVE
    ln = w.n - start
    buf = w.buf
    end = _write_header(buf, mark, kind, ident, ln)
    if end != start:
        mv = memoryview(buf)
        mv[end : end + ln] = mv[start : start + ln]
    w.n = end + ln
