"""Payload readers (LwM2M 1.1 Core §7.4): OMA-TLV entries walked by offset over the request buffer,
and plain-text values. Only Write and Create need them, so they load with core/changes.py."""
from micropython import const
import struct

from ..errors import CoapError

_STRING = const(1)
_UNSIGNED = const(3)
_FLOAT = const(4)
_BOOLEAN = const(5)
_OPAQUE = const(6)
_OBJLNK = const(8)
_CORELNK = const(9)


def next_entry(buf, i, end):
    """Decode the entry at buf[i]; returns (kind, id, value offset, value length, next offset)."""
    if i >= end:
        raise CoapError(128, "TLV truncated")
    t = buf[i]
    i += 1
    if t & 0x20:
        if i + 2 > end:
            raise CoapError(128, "TLV truncated")
        ident = buf[i] << 8 | buf[i + 1]
        i += 2
    else:
        if i >= end:
            raise CoapError(128, "TLV truncated")
        ident = buf[i]
        i += 1
    k = t >> 3 & 3
    if k == 0:
        ln = t & 7
    else:
        if i + k > end:
            raise CoapError(128, "TLV truncated")
        ln = 0
        while k:
            ln = ln << 8 | buf[i]
            i += 1
            k -= 1
    if i + ln > end:
        raise CoapError(128, "TLV length beyond payload")
    return t >> 6, ident, i, ln, i + ln


def parse_value(buf, off, ln, rtype):
    """Decode a TLV value field into a Python value of table type `rtype`; 4.00 when it cannot be."""
    raw = bytes(buf[off : off + ln])
    if rtype == _STRING or rtype == _CORELNK:
        try:
            return str(raw, "utf-8")
        except UnicodeError:
            raise CoapError(128, "string is not UTF-8")
    if rtype == _OPAQUE:
        return raw
    if rtype == _BOOLEAN:
        if ln != 1 or raw[0] > 1:
            raise CoapError(128, "bad boolean")
        return raw[0] == 1
    if rtype == _FLOAT:
        if ln == 4:
            return struct.unpack(">f", raw)[0]
        if ln == 8:
            return struct.unpack(">d", raw)[0]
        raise CoapError(128, "bad float length")
    if rtype == _OBJLNK:
        if ln != 4:
            raise CoapError(128, "bad objlnk length")
        return struct.unpack(">HH", raw)
    if ln not in (1, 2, 4, 8):
        raise CoapError(128, "bad integer length")
    v = int.from_bytes(raw, "big")
    if rtype != _UNSIGNED and raw[0] & 0x80:
        v -= 1 << (8 * ln)
    return v


def parse_text(raw, rtype):
    """Value from text bytes; 4.00 when the text does not fit the resource's type."""
    try:
        s = str(bytes(raw), "utf-8")
    except UnicodeError:
        raise CoapError(128, "text is not UTF-8")
    if rtype == _STRING or rtype == _CORELNK:
        return s
    try:
        if rtype == _BOOLEAN:
            if s not in ("0", "1"):
                raise ValueError
            return s == "1"
        if rtype == _FLOAT:
            return float(s)
        if rtype == _OBJLNK:
            a, b = s.split(":")
            return int(a), int(b)
        if rtype == _OPAQUE:
            raise CoapError(143, "opaque needs content format 42")
        v = int(s)
        if rtype == _UNSIGNED and v < 0:
            raise ValueError
        return v
    except ValueError:
        raise CoapError(128, "not a valid value for the resource type")
