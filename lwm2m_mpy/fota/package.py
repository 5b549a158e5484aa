"""Firmware package (docs/fota.md): a streaming verifier in front of a sink -- the header parsed across
chunks, the payload's length and SHA-256 checked -- and FotaError, carrying an Update Result (/5/0/5,
LwM2M 1.1 Core E.6).

Header: magic "LWMP", format version 1, type (1 ESP32 image, 2 files archive, 3 raw), header length H
(u16 BE), payload length (u32 BE), SHA-256 of the payload, name and version (each u8 length + UTF-8).
"""
from micropython import const
import struct

try:
    from hashlib import sha256
except ImportError:  # CircuitPython's hashlib has only new(name)
    from hashlib import new

    def sha256():
        return new("sha256")

_PREFIX = const(8)  # magic, format version, type, header length: enough to refuse a package early
_FIXED = const(44)  # the prefix, payload length (4) and SHA-256 (32)
_HMIN = const(46)  # plus two empty strings
_HMAX = const(556)  # plus name and version of 255 bytes each: the header buffer, allocated once
_INTEGRITY = const(5)
_UNSUPPORTED = const(6)


class FotaError(Exception):
    """An update failed; `result` is the LwM2M Update Result (2 no room, 5 integrity, 6 type, 8 failed)."""

    def __init__(self, result):
        super().__init__(result)
        self.result = result


class Package:
    """write(chunk) in order, then finish(). The sink gets begin(payload length), the payload as
    memoryview slices of the caller's chunks (no copies), and finish() only when length and digest match.

    Sinks of this library also keep a copy of the header (`header(data)` / `header()`) and take
    `begin(size, at)`: that is what lets `resume(offset)` continue a download after a reboot. A sink
    without `header` gets a fresh start instead (resume returns 0)."""

    def __init__(self, sink, log=None):
        self.sink = sink
        self.log = log
        self._buf = bytearray(_HMAX)  # the header, later scratch for reading the payload back
        self._clear()

    def _clear(self):
        self.offset = 0  # bytes taken, header included
        self.size = self.name = self.version = self.type = None  # known once the header is complete
        self._want = _PREFIX  # header bytes needed before the next check
        self._left = 0  # payload bytes still expected
        self._hash = None
        self._digest = None

    def write(self, chunk):
        mv = memoryview(chunk)
        i = 0
        if self.size is None:
            i = self._header(mv, True)
            if self.size is None:
                return
        k = len(mv) - i
        if k > self._left:
            raise FotaError(_INTEGRITY)  # more than the header announced: not this package
        if k:
            if i:
                mv = mv[i:]
            self._hash.update(mv)
            self.sink.write(mv)
            self._left -= k
            self.offset += k

    def _header(self, mv, fresh):
        """Copy header bytes into the buffer, checking each stage as it completes; returns how many of
        mv it took. `fresh`: a new download (not a resume), so the sink is begun and keeps the header."""
        buf = self._buf
        i = 0
        n = len(mv)
        while self.size is None and i < n:
            k = min(self._want - self.offset, n - i)
            buf[self.offset:self.offset + k] = mv[i:i + k]
            self.offset += k
            i += k
            if self.offset < self._want:
                break
            if self.offset == _PREFIX:
                # Not our format, or a later version of it: nothing this device can take (result 6)
                if buf[:4] != b"LWMP" or buf[4] != 1 or buf[5] not in self.sink.types:
                    raise FotaError(_UNSUPPORTED)
                self.type = buf[5]
                self._want = struct.unpack_from(">H", buf, 6)[0]
                if not _HMIN <= self._want <= _HMAX:
                    raise FotaError(_INTEGRITY)
                continue
            self._parse(fresh)
        return i

    def _parse(self, fresh):
        buf = self._buf
        h = self._want
        length = struct.unpack_from(">I", buf, 8)[0]
        at = _FIXED + 1 + buf[_FIXED]  # the version's length byte
        if at >= h or at + 1 + buf[at] != h:
            raise FotaError(_INTEGRITY)  # the strings do not fill the header exactly: corrupt
        try:
            self.name = str(buf[_FIXED + 1:at], "utf-8")
            self.version = str(buf[at + 1:h], "utf-8")
        except UnicodeError:
            raise FotaError(_INTEGRITY)
        self._digest = bytes(buf[12:_FIXED])
        self._left = length
        self.size = h + length
        self._hash = sha256()
        if self.log:
            self.log("fota: package %s %s, type %d, %d bytes" % (self.name, self.version, self.type, self.size))
        if fresh:
            sink = self.sink
            sink.begin(length)
            keep = getattr(sink, "header", None)
            if keep:
                keep(memoryview(buf)[:h])

    def finish(self):
        """Length and SHA-256 of the whole payload, then sink.finish(); FotaError(5), and the sink not
        finished, on any mismatch."""
        if self.size is None or self._left or self._hash.digest() != self._digest:
            raise FotaError(_INTEGRITY)
        self.sink.finish()

    def resume(self, offset):
        """Continue a download that reached `offset` (the `offset` of an earlier Package on the same sink,
        e.g. before a reboot): the header comes from the sink's copy, the hash is rebuilt by reading back
        what the sink holds. Returns where the download goes on: offset, or less when the sink holds less
        (whole sectors only, bytes not flushed before a reset), or 0: start over, this Package is as new."""
        self._clear()
        sink = self.sink
        keep = getattr(sink, "header", None)
        head = keep() if keep and offset > 0 else None
        if not head:
            return 0
        try:
            self._header(memoryview(head), False)
        except FotaError:
            self._clear()  # a stale or foreign copy: start over
            return 0
        h = self.offset
        if self.size is None or offset < h:
            self._clear()
            return 0
        length = self.size - h
        held = sink.begin(length, min(offset - h, length))  # it may hold less (lost in a reset)
        buf = memoryview(self._buf)
        pos = 0
        while pos < held:
            k = min(_HMAX, held - pos)
            n = sink.read(pos, buf if k == _HMAX else buf[:k])
            if not n or n < 0:
                self._clear()  # the sink holds less than it said: from the start
                return 0
            self._hash.update(buf[:n])
            pos += n
        self._left = length - held
        self.offset = h + held
        if self.log:
            self.log("fota: resuming at %d of %d" % (self.offset, self.size))
        return self.offset


def keep(path, data=None):
    """A sink's package header for a resume: written to `path` (data), or read back (None: none kept)."""
    if data is not None:
        with open(path, "wb") as f:
            f.write(data)
        return None
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError:
        return None
