# Protocol cost of one request without sockets (runs in MicroPython, from build/mpy): the client's
# sans-IO core fed GET /3/0/0 (text) and GET /3/0 (Accept TLV) datagrams through `feed()` with a
# transport that drops what is sent. Separates the client's own work from the syscalls in the
# loopback throughput figure. Prints one line `SANSIO {json}` with microseconds per request.
#
#   MICROPYPATH=build/mpy:.frozen micropython -X heapsize=128k bench/mpy_sansio.py
import sys
import time

from lwm2m_mpy import Client


class Sink:
    def send(self, buf, n):
        pass

    def recv(self):
        return None

    def wait(self, ms):
        return False

    def close(self):
        pass


def per_request(client, raw, n):
    r = bytearray(raw)
    feed = client.feed
    t0 = time.ticks_us()
    for i in range(n):
        r[2] = (i >> 8) & 255  # a fresh MID each time: no duplicate-cache hits
        r[3] = i & 255
        feed(bytes(r), 0)
    return time.ticks_diff(time.ticks_us(), t0) / n


def main():
    client = Client("bench", "coap://127.0.0.1:5683", log=None, transport=Sink())
    client.start(time.ticks_ms())
    get_300 = b"\x44\x01\x00\x00\x01\x02\x03\x04\xb13\x010\x010"  # CON GET /3/0/0, token 4 bytes
    get_30_tlv = b"\x44\x01\x00\x00\x01\x02\x03\x04\xb13\x010\x62\x2d\x16"  # CON GET /3/0, Accept 11542
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 20000
    per_request(client, get_300, n // 10)  # warm-up
    a = min(per_request(client, get_300, n) for _ in range(3))
    b = min(per_request(client, get_30_tlv, n // 10) for _ in range(3))
    print('SANSIO {"get_3_0_0_us": %.2f, "get_3_0_tlv_us": %.2f, "n": %d}' % (a, b, n))


main()
