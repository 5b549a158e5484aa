"""UDP transport (LwM2M Transport §5 UDP binding): one connected socket per server.

Connecting the socket makes the kernel drop datagrams from any other address, which is what the
client must do with requests that do not come from its server.
"""
import socket
import select

from .._compat import udp_send, udp_recv


class UDP:
    def __init__(self, host, port, size=1152, sock_api=socket):
        ai = sock_api.getaddrinfo(host, port, 0, sock_api.SOCK_DGRAM)[0]
        self.sock = sock_api.socket(ai[0], sock_api.SOCK_DGRAM)
        self.sock.connect(ai[-1])
        self.sock.setblocking(False)
        self.size = size
        self.poller = select.poll()
        self.poller.register(self.sock, select.POLLIN)

    def send(self, buf, n):
        try:
            udp_send(self.sock, buf, n)
        except OSError as e:  # e.g. ECONNREFUSED left by an earlier ICMP: CoAP retransmission copes
            print("udp send failed: %s" % e)

    def wait(self, timeout_ms):
        for _, ev in self.poller.ipoll(timeout_ms) if hasattr(self.poller, "ipoll") else self.poller.poll(timeout_ms):
            return True
        return False

    def recv(self):
        return udp_recv(self.sock, self.size)

    def close(self):
        self.sock.close()
