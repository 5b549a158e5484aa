"""UDP transport (LwM2M Transport §5 UDP binding): one connected socket per server.

Connecting the socket makes the kernel drop datagrams from any other address, which is what the
client must do with requests that do not come from its server.
"""
from micropython import const
import socket
import select

from .._compat import udp_send, udp_recv, IS_MICROPYTHON


_SMALL = const(256)  # receive size when the heap has no room for a full one


class UDP:
    """send(buf, n), recv() -> bytes or None, wait(ms) -> readable?, close(); `sock` for asyncio.

    `cut` is True when the last datagram may have been truncated (see recv)."""

    cut = False

    def __init__(self, host, port, size=1152, sock_api=socket):
        ai = sock_api.getaddrinfo(host, port, 0, sock_api.SOCK_DGRAM)[0]
        self.sock = s = sock_api.socket(ai[0], sock_api.SOCK_DGRAM)
        s.connect(ai[-1])
        s.setblocking(False)
        # MicroPython's recv(size) allocates the datagram itself; recv_into ports need a buffer
        self.buf = size if IS_MICROPYTHON else bytearray(size)
        self.poller = select.poll()
        self.poller.register(s, select.POLLIN)

    def send(self, buf, n):
        try:
            udp_send(self.sock, buf, n)
        except OSError as e:  # ECONNREFUSED left by an earlier ICMP error: CoAP retransmission copes
            print("udp send: %s" % e)

    def wait(self, timeout_ms):
        return bool(self.poller.poll(timeout_ms))

    def recv(self):
        self.cut = False
        try:
            try:
                return udp_recv(self.sock, self.buf)
            except MemoryError:
                # MicroPython's recv(size) needs `size` contiguous bytes. When a crowded heap has no such
                # block, read with a small buffer instead: a datagram that fills it may have been cut,
                # and the exchange answers it 4.13 rather than misreading it.
                data = udp_recv(self.sock, _SMALL)
                self.cut = data is not None and len(data) >= _SMALL
                return data
        except OSError as e:
            if e.args[0] == 11:  # EAGAIN: nothing waiting
                return None
            raise

    def close(self):
        self.sock.close()


def for_uri(uri, security, log=None, check=False):
    """The transport for a server URI: UDP for coap://host[:port] (5683), DTLS for coaps://host[:port] (5684)
    with what `security` (the Security instance) holds: mode /0/x/2 0, a pre-shared key (identity /0/x/3,
    key /0/x/5), or mode 2, certificates (the client's /0/x/3 and private key /0/x/5, the server's /0/x/4,
    Certificate Usage /0/x/15). IPv6 as coap://[::1]:5683.

    check=True makes nothing: it returns why these cannot be used (the ValueError's words) or None, for the
    bootstrap's consistency check (core/bootstrap.py). A parameter, not a function of its own: one more
    module global would cost this resident module's dict a larger table."""
    scheme, _, rest = uri.partition("://")
    why = None
    if scheme == "coaps":
        mode = security.get(2)
        if mode != 0 and mode != 2 or not security.get(3) or not security.get(5) or mode == 2 and not security.get(4):
            why = ("coaps:// needs a pre-shared key (mode 0, /0/x/3 and /0/x/5) or certificates (mode 2, /0/x/3,"
                   " /0/x/4 and /0/x/5)")
    elif scheme != "coap":
        why = "unsupported scheme " + scheme
    if check:
        return why
    if why:
        raise ValueError(why)
    rest = rest.split("/")[0]
    if rest.startswith("["):  # [IPv6]:port
        host, _, port = rest[1:].partition("]")
        port = port[1:]
    else:
        host, _, port = rest.partition(":")
    port = int(port) if port else 5684 if scheme == "coaps" else 5683
    if scheme == "coap":
        return UDP(host, port)
    from .dtls import DTLS

    return DTLS(host, port, security[3], security[5], log=log, server=security[4] if security[2] == 2 else None,
                usage=security.get(15, 3))
