"""E2E app (run by micropython): a Client and a firmware pull (lwm2m_mpy/fota/pull.py) from
tools/package_server.py into a file, driven from the client's loop through board.drive.

    micropython pull_app.py LWM2M_URI ENDPOINT PACKAGE_URI OUT_FILE [RESUME [ACK_MS [SECONDS [PSK]]]]

RESUME: the bytes OUT_FILE holds already (the pull asks for the block they end in; the file is appended
to). ACK_MS shortens the pull's CoAP ACK timeout (0: the default). PSK "identity:hexkey": the Security
instance the pull uses for a coaps:// PACKAGE_URI (the LwM2M session stays as LWM2M_URI says). Prints "APP pull result=R offset=N sha256=HEX" when the
pull ends, then de-registers and exits.

The package verifier is a stand-in of fota/package.py's shape (write(mv), finish(), offset): it writes
the file and hashes what it holds, with no package header to check (the pull does not look inside).
"""
import sys

try:
    import hashlib
except ImportError:
    import uhashlib as hashlib

from lwm2m_mpy import Client
from lwm2m_mpy.board import drive
from lwm2m_mpy.fota.pull import Pull


class FileWriter:
    def __init__(self, path, resume):
        self.h = hashlib.sha256()
        self.offset = 0
        if resume:  # hash what the file holds: the first `resume` bytes
            with open(path, "rb") as f:
                while self.offset < resume:
                    b = f.read(min(1024, resume - self.offset))
                    if not b:
                        raise ValueError("%s holds %d bytes, not %d" % (path, self.offset, resume))
                    self.h.update(b)
                    self.offset += len(b)
        self.f = open(path, "ab" if resume else "wb")

    def write(self, mv):
        self.f.write(mv)
        self.h.update(mv)
        self.offset += len(mv)

    def finish(self):
        self.f.close()


def hexdigest(h):
    return "".join("%02x" % b for b in h.digest())


lwm2m_uri, endpoint, package_uri, out = sys.argv[1:5]
resume = int(sys.argv[5]) if len(sys.argv) > 5 else 0
ack_ms = int(sys.argv[6]) if len(sys.argv) > 6 else 0
seconds = float(sys.argv[7]) if len(sys.argv) > 7 else 120
security = None
if len(sys.argv) > 8:
    identity, _, key = sys.argv[8].partition(":")
    security = {0: package_uri, 1: False, 2: 0, 3: identity.encode(), 5: bytes.fromhex(key)}
client = Client(endpoint, lwm2m_uri, lifetime=300, log=lambda msg: print("lwm2m:", msg))
writer = FileWriter(out, resume)


def done(result):
    print("APP pull result=%d offset=%d size=%s sha256=%s" % (result, pull.offset, pull.size, hexdigest(writer.h)))
    client.stop()


pull = Pull(client, package_uri, writer, on_done=done, security=security, resume=resume)
if ack_ms:
    pull.ex.ack_ms = ack_ms
drive(client, [pull])
client.run(seconds)
print("APP exit")
