"""CBOR (RFC 8949) for SenML CBOR (LwM2M 1.1 Core §7.4.5): encoder into a coap Writer, bounded decoder."""
from micropython import const
from math import copysign, frexp, ldexp
import struct

from ..errors import CoapError

_DEPTH = const(8)  # arrays/maps nested deeper than this are refused (each level is a Python frame)


def _emit(w, ib, n, k):
    """Write the initial byte `ib` and then `n` as `k` big-endian bytes."""
    i = w.n
    buf = w.buf
    if i + 1 + k > len(buf):
        raise CoapError(160, "message too large")
    buf[i] = ib
    w.n = i + 1 + k
    while k:
        buf[i + k] = n & 255
        n >>= 8
        k -= 1


def head(w, major, n):
    """Write the head of major type `major` with argument `n` (0 .. 2**64-1) in its shortest form (§3)."""
    ai = n
    k = 0
    if n > 23:
        ai = 24
        k = 1
        while n >> (k << 3):  # 1, 2, 4 or 8 bytes: additional information 24-27
            k <<= 1
            ai += 1
        if k > 8:
            raise ValueError("int too large")
    _emit(w, major << 5 | ai, n, k)


def _f16(f):
    """The half-precision bits of `f` when it is exactly one (§3.3, NaN and the infinities too), else -1."""
    if f != f:
        return 0x7E00
    s = 0x8000 if copysign(1.0, f) < 0 else 0
    f = abs(f)
    if f - f:  # infinity
        return s | 0x7C00
    if not f:
        return s
    e = frexp(f)[1]  # f = m * 2**e with 0.5 <= m < 1
    if e > 16:
        return -1
    k = max(e, -13)  # below 2**-14 the half is subnormal: a multiple of 2**-24
    q = ldexp(f, 11 - k)  # the 11 significant bits (10 stored, the leading 1 in the exponent)
    return s | ((k + 13) << 10) + int(q) if q == int(q) else -1


def put(w, v):
    """Encode `v` (None, bool, int, float, str, bytes-like, list/tuple, dict) into the Writer `w`."""
    if v is None or v is True or v is False:
        head(w, 7, 22 if v is None else 20 + v)
    elif isinstance(v, int):
        if v < 0:
            head(w, 1, -1 - v)
        else:
            head(w, 0, v)
    elif isinstance(v, float):  # the shortest of half, single and double that gives v back (§4.2.2)
        h = _f16(v)
        if h >= 0:
            _emit(w, 0xF9, h, 2)
            return
        f = struct.pack(">f", v) if abs(v) <= 3.4028234663852886e38 else b""  # CPython: no ">f" past FLT_MAX
        if not f or struct.unpack(">f", f)[0] != v:
            f = struct.pack(">d", v)
        _emit(w, 0xFA if len(f) == 4 else 0xFB, 0, 0)
        w.put(f)
    elif isinstance(v, str):
        v = v.encode()
        head(w, 3, len(v))
        w.put(v)
    elif isinstance(v, (bytes, bytearray, memoryview)):
        head(w, 2, len(v))
        w.put(v)
    elif isinstance(v, (list, tuple)):
        head(w, 4, len(v))
        for x in v:
            put(w, x)
    elif isinstance(v, dict):
        head(w, 5, len(v))
        for x in v:
            put(w, x)
            put(w, v[x])
    else:
        raise TypeError("no CBOR for %s" % type(v))


def dumps(v, size=1152):
    """The CBOR encoding of `v` as bytes (tests, rare paths); CoapError 160 when over `size` bytes."""
    from ..coap.message import Writer

    w = Writer(size)
    put(w, v)
    return bytes(w.buf[: w.n])


def read_head(buf, i, end):
    """The head at buf[i]: (major type, argument, offset after it); the argument is -1 for additional
    information 31 (indefinite length, or the break when the major type is 7)."""
    if i >= end:
        raise CoapError(128, "CBOR truncated")
    ib = buf[i]
    i += 1
    n = ib & 31
    if n > 23:
        if n > 27:
            if n < 31:
                raise CoapError(128, "CBOR reserved")
            return ib >> 5, -1, i
        k = 1 << (n - 24)
        if i + k > end:
            raise CoapError(128, "CBOR truncated")
        n = 0
        while k:
            n = n << 8 | buf[i]
            i += 1
            k -= 1
    return ib >> 5, n, i


def utf8(b):
    """str of the UTF-8 bytes `b`; 4.00 for what RFC 3629 forbids. MicroPython's str() lets overlong
    forms, surrogates and code points past U+10FFFF through, so the check is done here."""
    n = len(b)
    i = 0
    while i < n:
        c = b[i]
        i += 1
        if c > 127:
            k = 1 + (c > 0xDF) + (c > 0xEF)  # continuation bytes
            if c < 0xC2 or c > 0xF4 or i + k > n:
                raise CoapError(128, "bad UTF-8")
            cp = c & (0x3F >> k)
            low = 1 << 5 * k + 1  # the least code point that needs this many bytes (no overlong forms)
            while k:
                c = b[i]
                i += 1
                if c & 0xC0 != 0x80:
                    raise CoapError(128, "bad UTF-8")
                cp = cp << 6 | c & 0x3F
                k -= 1
            if cp < low or 0xD7FF < cp < 0xE000 or cp > 0x10FFFF:
                raise CoapError(128, "bad UTF-8")
    return str(b, "utf-8")


def decode(buf, i, end, depth):
    """One data item from buf[i:end] at nesting level `depth` (0 at the top): (value, next offset).
    Tags are skipped; undefined reads as None. Every malformed or hostile input is CoapError 4.00, and
    nothing is allocated for a length or a count before the bytes it claims are known to be there."""
    start = i
    major, n, i = read_head(buf, i, end)
    while major == 6 and n >= 0:  # a tag: the item it tags, in a loop so a chain of tags costs no frames
        start = i
        major, n, i = read_head(buf, i, end)
    if n < 0 and (major < 2 or major > 5):  # a break outside an indefinite item, or 31 where not allowed
        raise CoapError(128, "CBOR bad break")
    if major < 2:
        return n if major == 0 else -1 - n, i
    if major < 4:
        if n < 0:  # indefinite: definite chunks of the same major type up to the break (§3.2.3)
            v = b"" if major == 2 else ""
            while True:
                if i >= end:
                    raise CoapError(128, "CBOR truncated")
                c = buf[i]
                if c == 0xFF:
                    return v, i + 1
                if c >> 5 != major or c & 31 == 31:
                    raise CoapError(128, "CBOR bad chunk")
                c, i = decode(buf, i, end, depth)
                v += c
        if n > end - i:
            raise CoapError(128, "CBOR truncated")
        v = bytes(buf[i : i + n])
        return utf8(v) if major == 3 else v, i + n
    if major < 6:
        if depth >= _DEPTH:
            raise CoapError(128, "CBOR too deep")
        if n > (end - i) >> (major - 4):  # every item takes a byte at least, a map entry two
            raise CoapError(128, "CBOR truncated")
        v = {} if major == 5 else []
        while n:  # -1 (indefinite) counts down without reaching 0: only the break ends it
            if n < 0 and i < end and buf[i] == 0xFF:
                return v, i + 1
            x, i = decode(buf, i, end, depth + 1)
            if major == 4:
                v.append(x)
            else:
                y, i = decode(buf, i, end, depth + 1)
                if isinstance(x, (list, dict)):
                    raise CoapError(128, "CBOR bad key")
                v[x] = y
            n -= 1
        return v, i
    # major 7: simple values and floats, told apart by the size of the head
    k = i - start
    if k == 1 and 19 < n < 24:
        return (False, True, None, None)[n - 20], i
    if k == 3:  # half precision, by hand: not every port's struct has "e"
        e = n >> 10 & 31
        f = n & 1023
        f = (float("nan") if f else float("inf")) if e == 31 else ldexp(f + (1024 if e else 0), max(e, 1) - 25)
        return -f if n >> 15 else f, i
    if k > 3:
        return struct.unpack_from(">f" if k == 5 else ">d", buf, start + 1)[0], i
    raise CoapError(128, "CBOR simple value")


def loads(buf, i=0, end=None):
    """The one data item that fills buf[i:end] (trailing bytes are 4.00). Well-formed input that the
    heap cannot hold (1152 bytes can be 1150 empty arrays, 90 KB on a 64-bit port) is 4.13."""
    if end is None:
        end = len(buf)
    try:
        v, i = decode(buf, i, end, 0)
    except MemoryError:  # what was built is garbage by now, so the CoapError finds room
        raise CoapError(141, "too large")
    if i != end:
        raise CoapError(128, "CBOR trailing bytes")
    return v
