"""DTLS 1.2 with a pre-shared key (LwM2M Transport §5.2 "coaps", Security mode 0) over one UDP socket,
with MicroPython's `tls` module (mbedTLS). Same interface as transport/udp.py.

The handshake happens on the first send and again after a failure, bounded by `timeout_s` (mbedTLS only
advances its retransmission timers inside a read or write, so the socket timeout is what bounds it). A
failed handshake drops that datagram: CoAP's retransmission and the registration back-off try again.
A server that lost the session (restarted) ignores our records: after 5 datagrams without an answer the
next send shakes hands anew, so the next Register retry gets through.
Nothing is ever sent in plaintext: without a session there is no send. Suites: what the port's mbedTLS
offers for PSK (AES-GCM and AES-CBC on the unix and rp2 builds; no AES-128-CCM-8 there).
"""
from micropython import const
import socket
import select

try:
    import tls
except ImportError:  # older MicroPython names it ssl; CircuitPython has no DTLS at all (checked below)
    import ssl as tls

_SIZE = const(1152)
_EAGAIN = const(11)
_SILENT = const(5)  # datagrams sent without one coming back before the session counts as lost


class DTLS:
    """send(buf, n), recv() -> bytes or None, wait(ms) -> readable?, close(); `reset()` forces a new
    handshake (the server lost the session)."""

    cut = False

    def __init__(self, host, port, identity, key, timeout_s=10, log=None, server=None, usage=3):
        """PSK: identity and key. Certificates (Security mode 2): identity is the client's certificate, key
        its private key, server the server's certificate (usage 3, the default: exactly that certificate,
        "domain-issued") or a CA that signed it (usage 0 or 2: chain and host name are checked). DER."""
        if not hasattr(tls, "PROTOCOL_DTLS_CLIENT"):
            raise OSError("this port has no DTLS: coaps:// is not available here")
        self.addr = socket.getaddrinfo(host, port, 0, socket.SOCK_DGRAM)[0]
        self.identity = identity
        self.key = key
        self.server = server
        self.usage = usage
        self.host = host
        self.timeout_s = timeout_s
        self.log = log
        self.sock = None  # the DTLS session's socket, None until a handshake succeeded
        self.poller = select.poll()
        self.silent = 0  # sent since the last datagram came in

    def _connect(self):
        ai = self.addr
        s = socket.socket(ai[0], socket.SOCK_DGRAM)
        try:
            s.connect(ai[-1])
            ctx = tls.SSLContext(tls.PROTOCOL_DTLS_CLIENT)
            name = None
            if self.server is None:
                ctx.verify_mode = tls.CERT_NONE  # PSK: the key is the authentication
                ctx.psk_identity = self.identity
                ctx.psk_key = self.key
            else:
                ctx.load_cert_chain(self.identity, self.key)
                if self.usage in (0, 2):  # a CA: mbedTLS checks the chain and the name
                    ctx.load_verify_locations(self.server)
                    ctx.verify_mode = tls.CERT_REQUIRED
                    name = self.host
                else:  # the server's own certificate, byte for byte; whoever signed it
                    ctx.verify_mode = tls.CERT_OPTIONAL
                    ctx.verify_callback = self._pinned
            s.settimeout(self.timeout_s)
            ss = ctx.wrap_socket(s, server_side=False, server_hostname=name)  # at most timeout_s per flight
            ss.setblocking(False)
        except OSError as e:
            s.close()
            if self.log:
                self.log("dtls handshake failed (%s): wrong key, identity or certificate, or no DTLS server there"
                         % e)
            return False
        self.sock = ss
        self.poller = select.poll()
        self.poller.register(ss, select.POLLIN)
        if self.log:
            self.log("dtls session up")
        return True

    def _pinned(self, cert, depth):
        """mbedTLS asks about each certificate of the server's chain, the server's own last (depth 0)."""
        if depth or bytes(cert) == self.server:
            return 0
        if self.log:
            self.log("dtls: the server's certificate is not the one in /0/x/4")
        return 8  # MBEDTLS_X509_BADCERT_NOT_TRUSTED: the handshake stops

    def send(self, buf, n):
        if self.silent >= _SILENT:  # a server that restarted drops our records silently: shake hands anew
            if self.log:
                self.log("dtls: no answer to %d datagrams, new handshake" % self.silent)
            self.reset()
        if self.sock is None and not self._connect():
            return
        self.silent += 1
        try:
            self.sock.write(memoryview(buf)[:n])
        except OSError as e:
            if self.log:
                self.log("dtls send failed (%s): new handshake next time" % e)
            self.reset()

    def wait(self, timeout_ms):
        return bool(self.poller.poll(timeout_ms))

    def recv(self):
        if self.sock is None:
            return None
        try:
            # recv, not recv_into/readinto into a kept buffer: with MicroPython 1.29 those may join two
            # datagrams or cut one (seen under load), and a DTLS record is one CoAP message
            data = self.sock.recv(_SIZE)
        except OSError as e:
            if e.args[0] == _EAGAIN:
                return None
            if self.log:
                self.log("dtls receive failed (%s): new handshake next time" % e)
            self.reset()
            return None
        if not data:
            return None
        self.silent = 0
        return data

    def reset(self):
        if self.sock is not None:
            try:
                self.sock.close()
            except OSError:  # a session that is gone already: nothing to close
                pass
        self.sock = None
        self.silent = 0
        self.poller = select.poll()

    def close(self):
        self.reset()
