# Heap per active observation, measured inside MicroPython, sans-IO: bench/run.py runs it from build/mpy
# under -X heapsize=64k (and searches the smallest heap that holds them when 64k does not):
#
#   MICROPYPATH=build/mpy:.frozen micropython -X heapsize=64k bench/mpy_observe.py
#
# Kept small on purpose, so that the heap is the client's: requests are a few hand-built bytes, the
# transport keeps only the last datagram. The client registers on a 2.01 (Location-Path rd/1); a first
# Observe loads core/observe.py; four plain reads fill the duplicate cache (it weighs the same before and
# after); then gc.mem_alloc() after gc.collect() before and after 100 more Observe requests, each with its
# own 4-byte token, on the string resources /3/0/0-3. Prints one line `OBSERVE {json}`; "script" is the
# heap in use before the library is imported (the interpreter's and this script's). Few names and only
# long strings: this script's interned names would count against the client's qstr pool (docs/design.md).
import gc

gc.collect()
SCRIPT = gc.mem_alloc()
from lwm2m_mpy import Client  # noqa: E402



class UDP:
    """The transport (transport/udp.py's name): keeps the last datagram only."""

    last = b""

    def send(self, buf, n):
        self.last = bytes(buf[:n])

    def close(self):
        pass


def observe(c, t, k, rid, value=b"\x60"):
    """CON GET /3/0/<rid> with Observe (b"\x60" = 0; b"" = none), token and MID from k; True when the
    answer is 2.05 with an Observe option (delta 6 right after the token)."""
    c.feed(bytes([0x44, 1, k >> 8, k & 255, 0x7E, 0, k >> 8, k & 255]) + value
           + (b"\x51\x33\x01\x30\x01" if value else b"\xb1\x33\x01\x30\x01") + bytes([0x30 + rid]), 10)
    d = t.last
    return d[1] == 69 and len(d) > 8 and d[8] >> 4 == 6


def main():
    t = UDP()
    c = Client("bench-observe-heap", "coap://127.0.0.1:5683", transport=t, log=None)
    c.start(0)
    c.step(0)
    r = t.last  # the Register: answer 2.01 Created, Location-Path rd, 1
    c.feed(bytes([0x60 | r[0] & 15, 65, r[2], r[3]]) + r[4 : 4 + (r[0] & 15)] + b"\x82rd\x011", 10)
    ok = observe(c, t, 1, 0)
    for k in range(2, 6):
        observe(c, t, k, 0, b"")
    gc.collect()
    b = gc.mem_alloc()
    n = 0
    k = 0
    try:
        for k in range(100):
            n += observe(c, t, 100 + k, k & 3)
    except MemoryError:  # outside the client (which answers 5.00 instead): the rest is not asked
        k = -k
    m = c.dm.obs.count() if c.dm.obs else 0
    t.last = b""
    gc.collect()
    a = gc.mem_alloc()
    print('OBSERVE {"script": %d, "heap": {"first_observed": %d, "before": %d, "after": %d, "n": 100, '
          '"per_observation": %.1f, "answered": %d, "active": %d, "all_fit": %d, "free_after": %d, '
          '"registered": %d, "stopped_at": %d}}'
          % (SCRIPT, ok, b, a, (a - b) / 100, n, m, n == 100 and m == 101, gc.mem_free(), c.registered, k))


main()
