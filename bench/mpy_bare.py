# Bare-socket CoAP responder (runs in MicroPython): the floor that bench/run.py compares the client's
# throughput against. Same socket use as the client's UDP transport and blocking driver (one connected
# non-blocking UDP socket; poll, then recv until EAGAIN; write(buf, n)), same Register handshake; every
# CON request is answered with one fixed 2.05 ACK echoing MID and token (text/plain "lwm2m_mpy", the
# bytes the client sends for /3/0/0), without decoding anything else.
#
#   micropython bench/mpy_bare.py PORT SECONDS
#
# Exits after SECONDS (the poll timeout bounds every wait) and prints how many requests it served.
import select
import socket
import sys
import time

TAIL = b"\xc0\xfflwm2m_mpy"  # Content-Format 0 (text/plain), payload marker, payload


def serve(port, seconds):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.connect(socket.getaddrinfo("127.0.0.1", port)[0][-1])
    # Register: CON POST /rd?ep=bare (the load generator answers any CON POST with 2.01)
    s.write(b"\x44\x02\x12\x34\x01\x02\x03\x04\xb2rd\x47ep=bare")
    s.setblocking(False)
    poller = select.poll()
    poller.register(s, select.POLLIN)
    buf = bytearray(32)
    buf[1] = 69  # 2.05 Content
    last_tkl = -1
    served = 0
    end = time.ticks_add(time.ticks_ms(), seconds * 1000)
    while time.ticks_diff(end, time.ticks_ms()) > 0:
        if not poller.poll(500):
            continue
        while True:
            try:
                d = s.recv(256)
            except OSError:  # EAGAIN: drained
                break
            if len(d) < 4 or d[0] & 0x30 or not 1 <= d[1] <= 31:  # only CON requests
                continue
            tkl = d[0] & 15
            if tkl > 8:
                continue
            if tkl != last_tkl:
                buf[4 + tkl:4 + tkl + len(TAIL)] = TAIL
                last_tkl = tkl
            buf[0] = 0x60 | tkl  # version 1, ACK
            buf[2] = d[2]
            buf[3] = d[3]
            for i in range(4, 4 + tkl):
                buf[i] = d[i]
            s.write(buf, 4 + tkl + len(TAIL))
            served += 1
    s.close()
    return served


print("served", serve(int(sys.argv[1]), int(sys.argv[2]) if len(sys.argv) > 2 else 20))
