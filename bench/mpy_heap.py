# Heap figures of the client, measured inside MicroPython (run by bench/run.py from build/mpy):
#
#   MICROPYPATH=build/mpy:.frozen micropython bench/mpy_heap.py coap://127.0.0.1:PORT ENDPOINT [SECONDS]
#
# gc.mem_alloc() after gc.collect() at four points: baseline (this script only), after importing
# lwm2m_mpy and constructing a Client, after open() (UDP transport), and once the client has
# registered and answered the first request from the server (bench/run.py sends a TLV read of /3/0).
# Prints one line `HEAP {json}`, then de-registers and exits; gives up after SECONDS (default 20).
import gc
import sys


# Count requests from the server (CON with a method code) through an instance attribute that
# shadows the exchange's feed (what the client's drain() calls); removed again (with the closure)
# before the last measurement.
def _count_requests(client, counter):
    feed = client.ex.feed

    def counting_feed(data, now, cut=False):
        feed(data, now, cut)  # the answer has been sent when this returns
        if len(data) > 1 and (data[0] >> 4) & 3 == 0 and 1 <= data[1] <= 31:
            counter[0] += 1

    client.ex.feed = counting_feed


requests = [0]
gc.collect()
base = gc.mem_alloc()

from lwm2m_mpy import Client  # noqa: E402
from lwm2m_mpy._compat import ticks_ms, ticks_diff  # noqa: E402  (already loaded by the import above)

client = Client(sys.argv[2], sys.argv[1], log=None)
gc.collect()
imported = gc.mem_alloc()

client.open()
gc.collect()
opened = gc.mem_alloc()

_count_requests(client, requests)
limit = int(sys.argv[3]) * 1000 if len(sys.argv) > 3 else 20000
start = ticks_ms()
client.start(start)
while not (client.registered and requests[0]) and ticks_diff(ticks_ms(), start) < limit:
    client.poll(ticks_ms())
ok = client.registered and requests[0] > 0
del client.ex.feed
gc.collect()
registered = gc.mem_alloc()

import lwm2m_mpy  # noqa: E402

print("HEAP {\"base\": %d, \"imported\": %d, \"opened\": %d, \"registered\": %d, \"ok\": %s, "
      "\"requests\": %d, \"free\": %d, \"module\": \"%s\"}"
      % (base, imported, opened, registered, "true" if ok else "false", requests[0], gc.mem_free(),
         getattr(lwm2m_mpy, "__file__", "?")))
client.shutdown()
