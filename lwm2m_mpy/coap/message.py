"""CoAP message format (RFC 7252 §3): decode into offsets over the datagram, encode into one preallocated buffer."""
from micropython import const
from array import array

from ..errors import BadMessage, CoapError

# Module-private numbers (the underscore lets mpy-cross inline them: no RAM). Option numbers live
# with the modules that use them (RFC 7252 §5.10, RFC 7641, RFC 7959).
_MAX_OPTIONS = const(24)  # more than any LwM2M request carries; a longer list is a format error (RST)
_MARKER = const(0xFF)


class Msg:
    """One received datagram, decoded in place: options are (number, offset, length) triples into `buf`."""

    def __init__(self):
        self.buf = b""
        self.n = 0
        self.type = self.code = self.mid = self.tkl = 0
        self.count = 0  # options decoded
        self.onum = array("H", bytes(2 * _MAX_OPTIONS))
        self.ooff = array("H", bytes(2 * _MAX_OPTIONS))
        self.olen = array("H", bytes(2 * _MAX_OPTIONS))
        self.pl = 0  # payload offset; payload is buf[pl:n]

    def decode(self, buf, n):
        """Parse `buf[:n]`; raise BadMessage for anything RFC 7252 calls a message format error.

        The reasons are short words (qstrs, shared, no heap): "message truncated", "token length over 8", "option delta 15", ...
        """
        self.buf = buf
        self.n = n
        self.count = 0
        if n < 4:
            raise BadMessage(128, "shorter than a header")
        b0 = buf[0]
        if b0 >> 6 != 1:
            raise BadMessage(128, "version")
        tkl = b0 & 15
        if tkl > 8:
            raise BadMessage(128, "token length over 8")
        self.type = (b0 >> 4) & 3
        code = self.code = buf[1]
        self.mid = buf[2] << 8 | buf[3]
        self.tkl = tkl
        i = 4 + tkl
        if code == 0 and n != 4:  # §4.1: an Empty message has nothing after the Message ID
            raise BadMessage(128, "empty message with data")
        if code >> 5 in (1, 6, 7):  # reserved classes
            raise BadMessage(128, "reserved code class")
        if i > n:
            raise BadMessage(128, "message truncated")
        num = 0
        k = 0
        onum = self.onum
        ooff = self.ooff
        olen = self.olen
        while i < n:
            b = buf[i]
            i += 1
            if b == _MARKER:
                if i == n:
                    raise BadMessage(128, "marker without payload")
                break
            d = b >> 4
            ln = b & 15
            # Delta, then length: unrolled rather than looped, as this runs for every option received
            if d == 13:
                if i >= n:
                    raise BadMessage(128, "message truncated")
                d = buf[i] + 13
                i += 1
            elif d == 14:
                if i + 1 >= n:
                    raise BadMessage(128, "message truncated")
                d = (buf[i] << 8 | buf[i + 1]) + 269
                i += 2
            elif d == 15:
                raise BadMessage(128, "option delta 15")
            if ln == 13:
                if i >= n:
                    raise BadMessage(128, "message truncated")
                ln = buf[i] + 13
                i += 1
            elif ln == 14:
                if i + 1 >= n:
                    raise BadMessage(128, "message truncated")
                ln = (buf[i] << 8 | buf[i + 1]) + 269
                i += 2
            elif ln == 15:
                raise BadMessage(128, "option length 15")
            num += d
            if i + ln > n:
                raise BadMessage(128, "message truncated")
            if num > 0xFFFF:
                raise BadMessage(128, "option number too big")
            if k == _MAX_OPTIONS:
                raise BadMessage(128, "too many options")
            onum[k] = num
            ooff[k] = i
            olen[k] = ln
            k += 1
            i += ln
        self.count = k
        self.pl = i
        return self

    def find(self, num, start=0):
        """Index of the first option `num` at or after index `start`, or -1."""
        onum = self.onum
        for k in range(start, self.count):
            if onum[k] == num:
                return k
        return -1

    def uint(self, num, default=None):
        """Value of uint option `num` (RFC 7252 §3.2), or `default` when absent."""
        k = self.find(num)
        if k < 0:
            return default
        v = 0
        buf = self.buf
        o = self.ooff[k]
        for i in range(o, o + self.olen[k]):
            v = v << 8 | buf[i]
        return v

    def value(self, k):
        """Bytes of option index `k` (allocates; for rarely used options)."""
        o = self.ooff[k]
        return bytes(self.buf[o : o + self.olen[k]])

    def strings(self, num):
        """All values of a repeatable string option as a list of str (allocates)."""
        out = []
        k = self.find(num)
        try:
            while k >= 0:
                out.append(str(self.value(k), "utf-8"))
                k = self.find(num, k + 1)
        except UnicodeError:
            raise CoapError(128, "option not UTF-8")  # a string option must be UTF-8 (RFC 7252 §3.2)
        return out

    def token(self):
        """The token as an int (tokens here are compared, never sliced)."""
        t = 0
        buf = self.buf
        for i in range(4, 4 + self.tkl):
            t = t << 8 | buf[i]
        return t

    def payload(self):
        """Payload as a memoryview slice (no copy of the bytes)."""
        return memoryview(self.buf)[self.pl : self.n]


class Writer:
    """Builds one message at a time in a buffer allocated once (RFC 7252 §3 encoding)."""

    def __init__(self, size):
        # A bytearray is used as it is: an app on a small heap allocates it before anything else,
        # while the heap is still in one piece (see README "Memory").
        self.buf = size if isinstance(size, bytearray) else bytearray(size)
        self.n = 0
        self.last = 0  # last option number written (options must go in ascending order)

    def header(self, mtype, code, mid, tok, tkl):
        """Start a message; `tok` is the token as an int of `tkl` bytes."""
        buf = self.buf
        buf[0] = 0x40 | mtype << 4 | tkl
        buf[1] = code
        buf[2] = mid >> 8 & 255
        buf[3] = mid & 255
        i = 4 + tkl
        while tkl:
            i -= 1
            tkl -= 1
            buf[i] = tok & 255
            tok >>= 8
        self.n = i + (buf[0] & 15)
        self.last = 0

    def option(self, num, value):
        """Add option `num` (ascending order): an int is a uint option (§3.2, fewest bytes), else bytes/str."""
        u = isinstance(value, int)
        if u:  # uint options are at most 4 bytes (Observe, Max-Age, Size1/2, Content-Format)
            ln = 0 if value == 0 else 1 if value < 256 else 2 if value < 65536 else 3 if value < 16777216 else 4
        else:
            if isinstance(value, str):
                value = value.encode()
            ln = len(value)
        d = num - self.last
        if d < 0:
            raise ValueError("options out of order")
        self.last = num
        buf = self.buf
        i = self.n
        need = 1 + ln + (2 if d >= 269 else d >= 13) + (2 if ln >= 269 else ln >= 13)
        if i + need > len(buf):
            raise CoapError(160, "message too large")
        h = i
        buf[h] = 0
        i += 1
        x = d
        for _ in range(2):  # delta, then length: nibbles 13/14 mean 1/2 extension bytes (§3.1)
            if x >= 269:
                buf[i] = (x - 269) >> 8
                buf[i + 1] = (x - 269) & 255
                i += 2
                x = 14
            elif x >= 13:
                buf[i] = x - 13
                i += 1
                x = 13
            buf[h] = buf[h] << 4 | x
            x = ln
        if u:  # the uint, big-endian
            j = i + ln
            self.n = j
            while j > i:
                j -= 1
                buf[j] = value & 255
                value >>= 8
        else:
            buf[i : i + ln] = value
            self.n = i + ln

    def content(self, fmt, data):
        """Content-Format option, marker and payload in one call: the common shape of a response."""
        self.option(12, fmt)
        i = self.n
        j = i + 1 + len(data)
        if j > len(self.buf):
            raise CoapError(160, "message too large")
        buf = self.buf
        buf[i] = _MARKER
        buf[i + 1 : j] = data
        self.n = j if data else i  # no marker without payload (§3)

    def reply(self, mtype, mid, rx):
        """Start the response to the request `rx` (a decoded Msg): its token copied byte for byte."""
        buf = self.buf
        src = rx.buf
        tkl = rx.tkl
        buf[0] = 0x40 | mtype << 4 | tkl
        buf[1] = 0
        buf[2] = mid >> 8 & 255
        buf[3] = mid & 255
        for i in range(4, 4 + tkl):
            buf[i] = src[i]
        self.n = 4 + tkl
        self.last = 0

    def put(self, data):
        """Append raw bytes; a message larger than the buffer is a 5.00, never a silent cut."""
        i = self.n
        j = i + len(data)
        if j > len(self.buf):
            raise CoapError(160, "message too large")
        self.buf[i:j] = data
        self.n = j

    def marker(self):
        """Write the payload marker; returns the payload's start so an empty payload can be undone."""
        i = self.n
        if i >= len(self.buf):
            raise CoapError(160, "message too large")
        self.buf[i] = _MARKER
        self.n = i + 1
        return i + 1

    def end_payload(self, start):
        """Drop the marker again if nothing was written after it (§3: no marker for no payload)."""
        if self.n == start:
            self.n = start - 1
