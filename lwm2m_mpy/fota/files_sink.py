"""Firmware-update sink for boards without OTA partitions (rp2, CircuitPython): a package of type 2, an
archive of application files (docs/fota.md), streamed record by record into <root>/.fota/new/;
fota/guard.py swaps them in at the next boot and puts the old ones back if the new code never confirms.

Archive record: name length (1), name (UTF-8, "/"-separated, relative), file length (4, BE), data.
cfg: "root" (default "/": the filesystem the board runs from).
"""
from micropython import const
import os
import struct

from .._compat import reset
from . import guard
from .package import FotaError, keep

_NO_ROOM = const(2)  # Update Result: not enough flash
_INTEGRITY = const(5)
_FAILED = const(8)
_ENOSPC = const(28)
_RECORD = const(260)  # the longest record head: 1 + 255 + 4


class Sink:
    types = (2,)

    def __init__(self, cfg=None, restart=None):
        self.root = (cfg or {}).get("root", "/")
        self.base = self.root.rstrip("/") + "/.fota"
        self.restart = restart or reset
        self._head = None  # the record head being read (allocated by begin: no cost until an update)
        self._got = 0  # bytes of it so far
        self._file = None
        self._left = 0  # data bytes of the current file still to come

    def begin(self, size, at=0):
        """Start staging. A resume (at > 0) starts over too (returns 0): the archive's files are not kept
        in their stream order, so they cannot be read back."""
        try:
            st = os.statvfs(self.root)
            room = st[1] * st[4]  # fragment size x blocks free to us
        except (AttributeError, OSError):
            room = size  # no statvfs here: a full disk shows as ENOSPC while writing
        if size > room:
            raise FotaError(_NO_ROOM)
        self._close()
        base = self.base
        guard.rmtree(base + "/new")
        guard.remove(base + "/pending")  # a new download replaces a staged one
        guard.remove(base + "/rolled")  # and the report of the last one is history
        guard.makedirs(base + "/new/")
        self._head = self._head or bytearray(_RECORD)
        self._got = 0
        self._left = 0
        return 0

    def write(self, mv):
        head = self._head
        i = 0
        n = len(mv)
        try:
            while i < n:
                if self._file:
                    k = min(self._left, n - i)
                    self._file.write(mv[i:i + k])
                    i += k
                    self._left -= k
                    if not self._left:
                        self._close()
                    continue
                # The record head, byte by byte (a few hundred bytes per file; the data goes in slices)
                head[self._got] = mv[i]
                self._got += 1
                i += 1
                if self._got == head[0] + 5:
                    self._open()
        except OSError as e:
            if e.args[0] == _ENOSPC:
                raise FotaError(_NO_ROOM)
            raise

    def _open(self):
        head = self._head
        end = head[0] + 1
        try:
            name = str(head[1:end], "utf-8")
        except UnicodeError:
            raise FotaError(_INTEGRITY)
        # Only plain relative paths inside the root, and never the update's own folder
        if not name or name[0] == "/" or "\\" in name or "\n" in name or name.split("/")[0] == ".fota":
            raise FotaError(_INTEGRITY)
        for part in name.split("/"):
            if part in ("", ".", ".."):
                raise FotaError(_INTEGRITY)
        path = self.base + "/new/" + name
        guard.makedirs(path)
        self._file = open(path, "wb")
        self._left = struct.unpack_from(">I", head, end)[0]
        self._got = 0
        if not self._left:
            self._close()

    def _close(self):
        if self._file:
            self._file.close()
            self._file = None

    def read(self, offset, buf):
        return 0  # nothing to read back: begin() of a resume starts over

    def finish(self):
        if self._file or self._got:
            raise FotaError(_INTEGRITY)  # the archive ends inside a record

    def header(self, data=None):
        """Keep the package header (data), or return the kept one (None: there is none)."""
        return keep(self.base + "/head", data)

    def apply(self):
        """Mark the staged files for guard.boot() and reset (the restart given at construction)."""
        self._close()
        try:
            os.stat(self.base + "/new")
        except OSError:
            raise FotaError(_FAILED)  # nothing staged
        with open(self.base + "/pending", "w") as f:
            f.write("pending")
        guard.remove(self.base + "/head")
        if self.restart:
            self.restart()

    def confirm(self):
        guard.confirm(self.root)

    def pending(self):
        return guard.pending(self.root)
