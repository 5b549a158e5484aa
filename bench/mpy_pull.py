# Heap and speed of a firmware pull (lwm2m_mpy/fota/pull.py), measured inside MicroPython (run by
# bench/run.py from build/mpy, against tools/package_server.py on loopback):
#
#   MICROPYPATH=build/mpy:.frozen micropython bench/mpy_pull.py URI_64K URI_1M [LWM2M_URI [SECONDS]]
#
# Heap: gc.mem_alloc() after gc.collect() before and after importing the pull module (the message layer,
# which a running client holds, loaded before), before and after Pull(),
# and at every 16th block of a pull of each URI (the package writer collects and samples; blocks are
# dropped, not kept): the peak of those samples per pull, the first and the last. Speed: the 1 MiB URI
# again without sampling, polled in a bare loop, and, with LWM2M_URI, from a registered Client's loop
# (board.drive). Prints one line `PULL {json}`; every pull gives up after SECONDS (default 60).
import gc
import sys

gc.collect()
base = gc.mem_alloc()

from lwm2m_mpy._compat import ticks_ms, ticks_diff  # noqa: E402
import lwm2m_mpy.coap.exchange  # noqa: E402,F401  (what a running client has loaded already)
import lwm2m_mpy.transport.udp  # noqa: E402,F401
from array import array  # noqa: E402

gc.collect()
resident = gc.mem_alloc()
from lwm2m_mpy.fota.pull import Pull  # noqa: E402

gc.collect()
imported = gc.mem_alloc()
limit = int(sys.argv[4]) * 1000 if len(sys.argv) > 4 else 60000
SAMPLES = array("i", bytes(4 * 128))  # allocated once: the samples of every run take the same heap


class Counter:
    """The package verifier's shape; with `sample`, every 16th block collects and reads the heap."""

    def __init__(self, sample):
        self.offset = 0
        self.blocks = 0
        self.sample = sample
        self.n = 0
        self.finished = False

    def write(self, mv):
        self.offset += len(mv)
        self.blocks += 1
        if self.sample and self.blocks % 16 == 0 and self.n < len(SAMPLES):
            gc.collect()
            SAMPLES[self.n] = gc.mem_alloc()
            self.n += 1

    def finish(self):
        self.finished = True


def pull(uri, sample, client=None):
    gc.collect()
    before = gc.mem_alloc()
    sink = Counter(sample)
    res = []
    end = []

    def done(result):
        end.append(ticks_ms())  # the client's loop may sleep before it looks at `res` again
        res.append(result)

    p = Pull(client, uri, sink, log=None, on_done=done)
    gc.collect()
    made = gc.mem_alloc()
    start = ticks_ms()
    if client is None:
        while not res and ticks_diff(ticks_ms(), start) < limit:
            p.poll(ticks_ms())
    else:
        drive(client, [p])
        while not res and ticks_diff(ticks_ms(), start) < limit:
            client.poll(ticks_ms())
        del client.step  # the instance attribute drive() put over the method
    ms = ticks_diff(end[0] if end else ticks_ms(), start)
    del p
    gc.collect()
    h = SAMPLES[: sink.n]
    return {"result": res[0] if res else None, "bytes": sink.offset, "blocks": sink.blocks, "ms": ms,
            "before": before, "made": made, "peak": max(h) if h else None, "first": h[0] if h else None,
            "last": h[-1] if h else None, "samples": len(h), "after": gc.mem_alloc()}


out = {"base": base, "resident": resident, "imported": imported}
out["small"] = pull(sys.argv[1], True)
out["large"] = pull(sys.argv[2], True)
out["speed"] = pull(sys.argv[2], False)
if len(sys.argv) > 3:
    from lwm2m_mpy import Client
    from lwm2m_mpy.board import drive

    client = Client("bench-pull", sys.argv[3], log=None)
    start = ticks_ms()
    client.start(start)
    while not client.registered and ticks_diff(ticks_ms(), start) < 10000:
        client.poll(ticks_ms())
    if client.registered:
        out["loop"] = pull(sys.argv[2], False, client)
    client.shutdown()
print("PULL " + str(out).replace("'", '"').replace("None", "null").replace("True", "true").replace("False", "false"))
