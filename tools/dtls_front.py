# DTLS front for the host LwM2M server, run by MicroPython (its mbedTLS has the PSK suites our client
# offers, AES-GCM/CBC; aiocoap's tinydtls only has AES-128-CCM-8, which the unix/rp2 mbedTLS builds lack):
#
#   micropython tools/dtls_front.py LISTEN INNER_A INNER_B UPSTREAM IDENTITY HEXKEY [SECONDS]
#
# Terminates DTLS 1.2 (PSK) from one client on 127.0.0.1:LISTEN and relays the plaintext CoAP to the
# plain server on 127.0.0.1:UPSTREAM (tools/lwm2m_server.py), and back. The DTLS server works on an
# internal socket pair (INNER_A <-> INNER_B, two free ports) so that the client's first ClientHello, read
# here to learn its address, can be handed on: MicroPython's client does not send it again. After the
# HelloVerify cookie round a fresh session takes the second hello. When the session ends (an alert, an
# error) the front waits for the next client. Prints "front: ..." lines; stops after SECONDS (default 600).
import select
import socket
import sys
import time
import tls

_EAGAIN = 11
_WANT = (-26880, -26624)  # MBEDTLS_ERR_SSL_WANT_READ / WANT_WRITE: the handshake goes on
_HELLO_VERIFY = -27264  # MBEDTLS_ERR_SSL_HELLO_VERIFY_REQUIRED: cookie sent, a new session for the next hello


def addr(port):
    return socket.getaddrinfo("127.0.0.1", port)[0][-1]


def udp(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(addr(port))
    return s


def main(argv):
    listen, pa, pb, up = [int(x) for x in argv[:4]]
    ctx = tls.SSLContext(tls.PROTOCOL_DTLS_SERVER)
    ctx.verify_mode = tls.CERT_NONE
    ctx.server_psk_keys = {argv[4].encode(): bytes.fromhex(argv[5])}
    end = time.ticks_add(time.ticks_ms(), int(argv[6]) * 1000 if len(argv) > 6 else 600000)
    outer = udp(listen)
    a = udp(pa)
    b = udp(pb)
    a.connect(addr(pb))
    b.connect(addr(pa))
    for s in (a, b):
        s.setblocking(False)
    print("front: listening on %d for %d" % (listen, up))
    while time.ticks_diff(end, time.ticks_ms()) > 0:
        outer.settimeout(1)
        try:
            first, peer = outer.recvfrom(2048)
        except OSError:
            continue
        while first:  # a client that starts over from the same address gets a new session (RFC 6347 §4.2.8)
            first = serve(ctx, outer, a, b, first, peer, up, end)
        outer.close()  # a connected socket only hears its peer: a new one for the next client
        outer = udp(listen)


def client_hello(d):
    """A ClientHello in the clear (handshake record of epoch 0, message type 1)."""
    return len(d) > 13 and d[0] == 22 and d[3] == 0 and d[4] == 0 and d[13] == 1


def serve(ctx, outer, a, b, first, peer, up, end):
    """Relay one session; returns a new ClientHello when the client starts over (after a reboot it has no
    session: its hello must start a new one, not be dropped by the old), else None."""
    outer.connect(peer)
    outer.setblocking(False)
    plain = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    plain.connect(addr(up))
    plain.setblocking(False)
    ss = ctx.wrap_socket(a, server_side=True, do_handshake_on_connect=False, client_id=repr(peer).encode())
    b.send(first)
    poller = select.poll()
    for s in (outer, a, b, plain):  # a too: the session reads it, and must not wait 50 ms for that
        poller.register(s, select.POLLIN)
    print("front: client %r" % (peer,))
    up_and_running = False
    try:
        while time.ticks_diff(end, time.ticks_ms()) > 0:
            poller.poll(50)
            for src, dst in ((outer, b), (b, outer)):  # DTLS records between the client and the session
                try:
                    d = src.recv(2048)
                except OSError:
                    continue
                if src is outer and up_and_running and client_hello(d):
                    print("front: the client starts over")
                    return d
                dst.send(d)
            try:
                d = plain.recv(2048)  # the server's answers, into the session
            except OSError:
                d = None
            if d:
                ss.write(d)
            try:
                d = ss.recv(2048)
            except OSError as e:
                d = None
                if e.args[0] == _HELLO_VERIFY:
                    ss = ctx.wrap_socket(a, server_side=True, do_handshake_on_connect=False,
                                         client_id=repr(peer).encode())
                elif e.args[0] != _EAGAIN and e.args[0] not in _WANT:
                    print("front: session ended (%s)" % (e,))
                    return
            if d:
                up_and_running = True
                plain.send(d)
    finally:
        plain.close()


main(sys.argv[1:])
