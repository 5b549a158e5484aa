"""Firmware-update sink for ESP32 OTA partitions (docs/fota.md; MicroPython's esp32.Partition, an
ESP32_GENERIC-OTA build): the application image (package type 1, the build's .app-bin) goes into the
next OTA partition one 4 KiB sector at a time, set_boot() and a reset start it, and object 5 confirms
it (mark_app_valid_cancel_rollback) once the client has registered again; until then the bootloader
goes back to the old image at the next reset.

MicroPython does not say whether the running image still waits for that confirmation, so apply() leaves
a small file naming the partition it booted: running that partition means "new", running another one
means the bootloader rolled back. cfg: "file" (default "ota": "ota.new" that marker, "ota.head" the
package header for a resume).
"""
from micropython import const
import os

from .._compat import reset
from .package import FotaError, keep, sha256

_BLOCK = const(4096)  # the partition's erase sector: one is buffered, the rest of the image is in flash
_NO_ROOM = const(2)  # Update Result: not enough flash
_INTEGRITY = const(5)
_FAILED = const(8)
_IMAGE_MAGIC = const(0xE9)  # first byte of an ESP-IDF image
_BLOCK_COUNT = const(4)  # Partition.ioctl commands (MicroPython's block device protocol)
_BLOCK_SIZE = const(5)


def _gone(path):
    try:
        os.remove(path)
    except OSError:
        pass  # already gone: what we wanted


class Sink:
    types = (1,)

    def __init__(self, cfg=None, restart=None, esp32=None):
        if esp32 is None:
            import esp32  # the port's module; tests hand in a fake
        self.esp32 = esp32
        self.path = (cfg or {}).get("file", "ota")
        self.restart = restart or reset
        self._part = None  # the partition being written
        self._buf = None  # one sector, allocated by begin (no cost until an update)
        self._block = 0  # sectors written
        self._fill = 0  # bytes in the buffer
        self._size = 0

    def _next(self):
        p = self.esp32.Partition
        return p(p.RUNNING).get_next_update()

    def begin(self, size, at=0):
        """Take the partition after the running one (FotaError(2) if the image is larger); a resume
        (at > 0) keeps the whole sectors written before and returns where that ends."""
        if self.pending() == "rolled back":
            _gone(self.path + ".new")  # reported when the client registered; a new download makes it history
        part = self._next()
        if size > part.ioctl(_BLOCK_COUNT, 0) * part.ioctl(_BLOCK_SIZE, 0):
            raise FotaError(_NO_ROOM)
        self._part = part
        self._size = size
        self._buf = self._buf or bytearray(_BLOCK)
        self._block = min(at, size) // _BLOCK  # the sector in RAM at a reset was lost
        self._fill = 0
        return self._block * _BLOCK

    def write(self, mv):
        buf = self._buf
        i = 0
        n = len(mv)
        while i < n:
            k = min(_BLOCK - self._fill, n - i)
            buf[self._fill:self._fill + k] = mv[i:i + k]
            self._fill += k
            i += k
            if self._fill == _BLOCK:
                self._flush()

    def _flush(self):
        buf = self._buf
        if not self._block and buf[0] != _IMAGE_MAGIC:
            raise FotaError(_INTEGRITY)  # not an application image: refused before it costs any flash
        for j in range(self._fill, _BLOCK):
            buf[j] = 0xFF  # the end of the last sector as erased flash
        self._part.writeblocks(self._block, buf)  # the 3-argument form erases the sector first
        self._block += 1
        self._fill = 0

    def read(self, offset, buf):
        n = min(len(buf), self._block * _BLOCK - offset)  # only what is in flash
        if n <= 0:
            return 0
        self._part.readblocks(offset // _BLOCK, buf if n == len(buf) else memoryview(buf)[:n], offset % _BLOCK)
        return n

    def finish(self):
        """Write the last sector, then read the image back from flash and check it against the package's
        SHA-256 (from the kept header): what the stream check cannot see, a bad flash write."""
        if self._fill:
            self._flush()
        head = self.header()
        if head:
            buf = self._buf
            h = sha256()
            left = self._size
            block = 0
            while left > 0:
                self._part.readblocks(block, buf)
                h.update(buf if left >= _BLOCK else memoryview(buf)[:left])
                left -= _BLOCK
                block += 1
            if h.digest() != bytes(head[12:44]):  # the header's SHA-256 field (docs/fota.md)
                raise FotaError(_INTEGRITY)
        self._buf = None

    def header(self, data=None):
        """Keep the package header (data), or return the kept one (None: there is none)."""
        return keep(self.path + ".head", data)

    def apply(self):
        """Boot the new image: the marker names it, set_boot(), then the restart (machine.reset)."""
        part = self._part or self._next()  # Downloaded before a reboot: the same next partition
        with open(self.path + ".new", "w") as f:
            f.write(part.info()[4])
        try:
            part.set_boot()  # ESP-IDF checks the image here
        except OSError:
            _gone(self.path + ".new")
            raise FotaError(_FAILED)
        _gone(self.path + ".head")
        self._buf = None
        if self.restart:
            self.restart()

    def confirm(self):
        """After registering with the new image: keep it. Also forgets a rollback once reported."""
        if self.pending() == "new":
            try:
                self.esp32.Partition.mark_app_valid_cancel_rollback()
            except OSError:
                pass  # a build without rollback (OSError -261): the image is already for good
        _gone(self.path + ".new")

    def pending(self):
        try:
            with open(self.path + ".new") as f:
                label = f.read()
        except OSError:
            return None
        p = self.esp32.Partition
        return "new" if p(p.RUNNING).info()[4] == label else "rolled back"
