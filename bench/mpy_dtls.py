# DTLS (PSK) figures of transport/dtls.py, measured inside MicroPython against libcoap's
# coap-server-openssl (bench/run.py starts it):
#
#   MICROPYPATH=build/mpy:.frozen micropython -X heapsize=... bench/mpy_dtls.py PORT IDENTITY KEY
#
# gc.mem_alloc() after gc.collect(): before the handshake, with the session up (after one CoAP GET of
# /.well-known/core answered 2.05 through it), and after closing it; the handshake's time (the first
# send, which shakes hands, in ticks_ms). Prints one line `DTLS {json}`.
import gc
import sys
import time

from lwm2m_mpy.transport.dtls import DTLS

GET = bytes([0x40, 1, 0x12, 0x34, 0xBB]) + b".well-known" + bytes([0x04]) + b"core"


def main():
    t = DTLS("127.0.0.1", int(sys.argv[1]), sys.argv[2].encode(), sys.argv[3].encode(), timeout_s=5)
    gc.collect()
    before = gc.mem_alloc()
    start = time.ticks_ms()
    t.send(GET, len(GET))
    shake = time.ticks_diff(time.ticks_ms(), start)
    code = 0
    end = time.ticks_add(time.ticks_ms(), 5000)
    while not code and time.ticks_diff(end, time.ticks_ms()) > 0:
        if t.wait(100):
            d = t.recv()
            code = d[1] if d else 0
    gc.collect()
    up = gc.mem_alloc()
    t.close()
    gc.collect()
    print('DTLS {"handshake_ms": %d, "code": %d, "before": %d, "session": %d, "closed": %d}'
          % (shake, code, before, up, gc.mem_alloc()))


main()
