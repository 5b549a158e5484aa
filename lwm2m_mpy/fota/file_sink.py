"""Firmware-update sink that writes the payload to a file (docs/fota.md, sinks): the unix port and tests.

cfg: "file" (default "firmware.bin"; "<file>.part" while downloading, "<file>.head" the package header
for a resume, "<file>.new" the marker of an update not confirmed yet), "types" (default (3,): raw).
"""
from micropython import const
import os

from .._compat import reset
from .package import FotaError, keep

_NO_ROOM = const(2)  # Update Result: not enough flash
_FAILED = const(8)
_ENOSPC = const(28)


def _gone(path):
    try:
        os.remove(path)
    except OSError:
        pass  # already gone: what we wanted


class Sink:
    def __init__(self, cfg=None, restart=None):
        cfg = cfg or {}
        self.path = cfg.get("file", "firmware.bin")
        self.types = tuple(cfg.get("types", (3,)))
        self.restart = restart or reset  # the client's restart on the unix port (reset is None there)
        self._file = None
        self._at = 0  # where the next write goes (read() moves the file position and puts it back)

    def begin(self, size, at=0):
        """Start writing (at 0), or continue after the first `at` payload bytes (a resume): returns how
        many this file really holds (it may have lost unflushed bytes in a reset)."""
        self._close()
        folder = self.path.rsplit("/", 1)[0] if "/" in self.path else "."
        try:
            st = os.statvfs(folder)
            room = st[1] * st[4]  # fragment size x blocks free to us
        except (AttributeError, OSError):
            room = size  # no statvfs here: a full disk shows as ENOSPC while writing
        if size > room:
            raise FotaError(_NO_ROOM)
        part = self.path + ".part"
        held = 0
        if at > 0:
            try:
                held = min(at, os.stat(part)[6])
            except OSError:
                pass  # no partial file: from the start
        self._file = open(part, "r+b" if held else "w+b")  # "+": read() reads back through the same file
        self._file.seek(held)
        self._at = held
        return held

    def write(self, mv):
        try:
            self._file.write(mv)
        except OSError as e:
            if e.args[0] == _ENOSPC:
                raise FotaError(_NO_ROOM)
            raise
        self._at += len(mv)

    def read(self, offset, buf):
        f = self._file
        f.seek(offset)
        n = f.readinto(buf) or 0
        f.seek(self._at)
        return n

    def finish(self):
        self._close()

    def _close(self):
        if self._file:
            self._file.close()
            self._file = None

    def header(self, data=None):
        """Keep the package header (data) for a resume, or return the kept one (None: there is none)."""
        return keep(self.path + ".head", data)

    def apply(self):
        """The downloaded file takes the place of the old one, marked new until confirm(); then the
        restart given at construction, if any."""
        self._close()
        part = self.path + ".part"
        try:
            os.stat(part)
        except OSError:
            raise FotaError(_FAILED)  # nothing downloaded to apply
        with open(self.path + ".new", "w") as f:
            f.write("new")
        _gone(self.path)  # rename over an existing file fails on FAT
        os.rename(part, self.path)
        _gone(self.path + ".head")
        if self.restart:
            self.restart()

    def confirm(self):
        _gone(self.path + ".new")

    def pending(self):
        try:
            os.stat(self.path + ".new")
        except OSError:
            return None
        return "new"
