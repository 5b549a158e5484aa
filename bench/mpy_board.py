# Heap of a board profile's client, measured inside MicroPython (run by bench/run.py from build/mpy):
#
#   MICROPYPATH=build/mpy:.frozen micropython bench/mpy_board.py coap://127.0.0.1:PORT ENDPOINT BOARD [SECONDS]
#
# gc.mem_alloc() after gc.collect(): baseline, after Client() (objects 0, 1, 3), after the profile's parts and
# objects (lwm2m_mpy/board.py setup), and once registered, with every instance polled at least once and the
# first request from the server answered (bench/run.py reads the profile's first IPSO instance). Prints one
# line `BOARD {json}`, then de-registers and exits; gives up after SECONDS (default 20).
import gc
import sys

gc.collect()
base = gc.mem_alloc()

from lwm2m_mpy import Client  # noqa: E402
import lwm2m_mpy.board as board  # noqa: E402
from lwm2m_mpy._compat import ticks_ms, ticks_diff  # noqa: E402

client = Client(sys.argv[2], sys.argv[1], log=None)
gc.collect()
client_only = gc.mem_alloc()

insts = board.setup(client, board.profile(sys.argv[3]))
gc.collect()
with_board = gc.mem_alloc()

requests = [0]
feed = client.ex.feed


def counting_feed(data, now, cut=False):  # counts requests from the server (CON with a method code)
    feed(data, now, cut)
    if len(data) > 1 and (data[0] >> 4) & 3 == 0 and 1 <= data[1] <= 31:
        requests[0] += 1


client.ex.feed = counting_feed
limit = int(sys.argv[4]) * 1000 if len(sys.argv) > 4 else 20000
start = ticks_ms()
client.start(start)
while not (client.registered and requests[0]) and ticks_diff(ticks_ms(), start) < limit:
    client.poll(ticks_ms())
ok = client.registered and requests[0] > 0
del client.ex.feed
gc.collect()
registered = gc.mem_alloc()
print("BOARD {\"base\": %d, \"client\": %d, \"board\": %d, \"registered\": %d, \"instances\": %d, \"ok\": %s}"
      % (base, client_only, with_board, registered, len(insts), "true" if ok else "false"))
client.shutdown()
