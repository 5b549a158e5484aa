"""The lwm2m-node-lib test peer (tools/nodelib/server.js + tests/peers/nodelib.py), checked with a
tiny fake LwM2M client built by hand from CPython sockets (UDP, loopback only).

These tests also pin what the peer puts on the wire, so client code can rely on it:
  * Register answer: piggybacked ACK 2.01, Location-Path as ONE option "rd/<id>" (slash inside);
  * Read: CON GET with Accept 0 (text/plain, encoded as one 0x00 byte);
  * Write: CON PUT, Content-Format 1541 (legacy LwM2M text), payload the text value;
  * Execute: CON POST, also Content-Format 1541, no payload when no argument is given;
  * Observe: the Observe=0 answer is dropped by the lib (the harness reports it as .initial);
    CON notifications are never ACKed.
"""

import concurrent.futures
import os
import random
import socket
import sys
import time

import pytest

try:
    from tests.peers.nodelib import NodeLibError, NodeLibServer
except ImportError:  # run from another directory
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from peers.nodelib import NodeLibError, NodeLibServer

# --- CoAP by hand (RFC 7252) ------------------------------------------------------------------
CON, NON, ACK, RST = 0, 1, 2, 3
GET, POST, PUT, DELETE = 0x01, 0x02, 0x03, 0x04
OBSERVE, LOCATION_PATH, URI_PATH, CONTENT_FORMAT, URI_QUERY, ACCEPT = 6, 8, 11, 12, 15, 17


def code(c, d):
    return (c << 5) | d


def code_str(b):
    return "%d.%02d" % (b >> 5, b & 0x1F)


def uint(n):
    """Minimal big-endian encoding (0 -> empty)."""
    out = b""
    while n:
        out = bytes([n & 0xFF]) + out
        n >>= 8
    return out


def to_uint(b):
    return int.from_bytes(b, "big") if b else 0


def _ext(n):
    if n < 13:
        return n, b""
    if n < 269:
        return 13, bytes([n - 13])
    return 14, (n - 269).to_bytes(2, "big")


def encode(mtype, code_, mid, token=b"", options=(), payload=b""):
    out = bytearray([0x40 | (mtype << 4) | len(token), code_])
    out += mid.to_bytes(2, "big") + token
    last = 0
    for num, val in sorted(options, key=lambda o: o[0]):  # stable: keeps repeated options in order
        d, dx = _ext(num - last)
        ln, lx = _ext(len(val))
        out += bytes([(d << 4) | ln]) + dx + lx + val
        last = num
    if payload:
        out += b"\xff" + payload
    return bytes(out)


def decode(data):
    assert data[0] >> 6 == 1, "CoAP version"
    tkl = data[0] & 0x0F
    msg = {
        "type": (data[0] >> 4) & 3,
        "code": code_str(data[1]),
        "mid": int.from_bytes(data[2:4], "big"),
        "token": data[4:4 + tkl],
        "options": [],
        "payload": b"",
    }
    i, num = 4 + tkl, 0
    while i < len(data):
        if data[i] == 0xFF:
            msg["payload"] = data[i + 1:]
            break
        d, ln = data[i] >> 4, data[i] & 0x0F
        i += 1
        vals = []
        for v in (d, ln):
            if v == 13:
                v = data[i] + 13
                i += 1
            elif v == 14:
                v = int.from_bytes(data[i:i + 2], "big") + 269
                i += 2
            vals.append(v)
        num += vals[0]
        msg["options"].append((num, data[i:i + vals[1]]))
        i += vals[1]
    return msg


def opts(msg, number):
    return [v for n, v in msg["options"] if n == number]


class FakeClient:
    """Just enough of an LwM2M client to exercise the peer."""

    def __init__(self, server_addr, ep):
        self.server = server_addr
        self.ep = ep
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(5)
        # the peer de-duplicates on the last message ID seen from anyone: start at random
        self.mid = random.randrange(0x10000)
        self.location = None

    def close(self):
        self.sock.close()

    def next_mid(self):
        self.mid = (self.mid + 1) & 0xFFFF
        return self.mid

    def send(self, data):
        self.sock.sendto(data, self.server)

    def recv(self, timeout=5):
        self.sock.settimeout(timeout)
        data, addr = self.sock.recvfrom(2048)
        assert addr == self.server, addr
        return decode(data)

    def request(self, code_, options, payload=b""):
        """CON request, wait for the piggybacked answer (retransmit a couple of times)."""
        mid, token = self.next_mid(), os.urandom(4)
        data = encode(CON, code_, mid, token, options, payload)
        for _ in range(3):
            self.send(data)
            deadline = time.monotonic() + 2
            while time.monotonic() < deadline:
                try:
                    msg = self.recv(timeout=max(0.05, deadline - time.monotonic()))
                except socket.timeout:
                    break
                if msg["mid"] == mid and msg["type"] == ACK:
                    assert msg["token"] == token
                    return msg
        raise AssertionError("no answer to request")

    def register(self, lifetime=300, links=b"</1/0>,</3/0>"):
        options = [(URI_PATH, b"rd"), (CONTENT_FORMAT, uint(40))]
        for q in ("ep=%s" % self.ep, "lt=%d" % lifetime, "lwm2m=1.1", "b=U"):
            options.append((URI_QUERY, q.encode()))
        rsp = self.request(code(0, POST), options, links)
        self.location = [v.decode() for v in opts(rsp, LOCATION_PATH)]
        return rsp

    def _loc_options(self):
        # a robust client splits "rd/1" (one option from this peer) into Uri-Path segments
        segs = [s for v in self.location for s in v.split("/") if s]
        return [(URI_PATH, s.encode()) for s in segs]

    def update(self, lifetime=None):
        options = self._loc_options()
        if lifetime is not None:
            options.append((URI_QUERY, b"lt=%d" % lifetime))
        return self.request(code(0, POST), options)

    def deregister(self):
        return self.request(code(0, DELETE), self._loc_options())

    def answer(self, req, code_, payload=b"", options=()):
        """Piggybacked answer to a CON request from the server."""
        self.send(encode(ACK, code_, req["mid"], req["token"], options, payload))


@pytest.fixture
def server():
    with NodeLibServer() as srv:
        yield srv


@pytest.fixture
def pool():
    ex = concurrent.futures.ThreadPoolExecutor(max_workers=2)
    yield ex
    ex.shutdown(wait=False)


def registered(server, ep):
    cl = FakeClient(server.address, ep)
    rsp = cl.register()
    assert rsp["code"] == "2.01", rsp
    ev = server.wait_event("register", ep=ep, timeout=10)
    return cl, rsp, ev


def test_register_read_write_execute_deregister(server, pool):
    assert server.host == "127.0.0.1" and server.port > 0
    assert server.list_devices() == []

    cl, rsp, ev = registered(server, "fake-1")
    try:
        # the quirk: one Location-Path option with a slash inside
        assert cl.location == ["rd/%d" % ev["id"]]
        assert ev["location"] == "rd/%d" % ev["id"]
        assert ev["lifetime"] == "300" and ev["version"] == "1.1" and ev["binding"] == "U"
        assert ev["payload"] == "</1/0>,</3/0>"
        assert ev["port"] == cl.sock.getsockname()[1]
        devs = server.list_devices()
        assert [d["ep"] for d in devs] == ["fake-1"]

        # Read /3/0/0 -> "Acme"
        fut = pool.submit(server.read, "fake-1", "/3/0/0", timeout=10)
        req = cl.recv()
        assert req["type"] == CON and req["code"] == "0.01"
        assert opts(req, URI_PATH) == [b"3", b"0", b"0"]
        assert [to_uint(v) for v in opts(req, ACCEPT)] == [0]      # Accept: text/plain
        assert opts(req, ACCEPT) == [b"\x00"]                       # sent as one zero byte
        assert len(req["token"]) > 0
        cl.answer(req, code(2, 5), b"Acme", [(CONTENT_FORMAT, uint(0))])
        assert fut.result(timeout=15) == "Acme"

        # Write /1/0/1 = "120": PUT with legacy text 1541
        fut = pool.submit(server.write, "fake-1", "/1/0/1", 120, timeout=10)
        req = cl.recv()
        assert req["type"] == CON and req["code"] == "0.03"
        assert opts(req, URI_PATH) == [b"1", b"0", b"1"]
        assert [to_uint(v) for v in opts(req, CONTENT_FORMAT)] == [1541]
        assert req["payload"] == b"120"
        cl.answer(req, code(2, 4))
        fut.result(timeout=15)

        # Execute /3/0/4: POST, no payload (the lib still sets Content-Format 1541)
        fut = pool.submit(server.execute, "fake-1", "/3/0/4", timeout=10)
        req = cl.recv()
        assert req["type"] == CON and req["code"] == "0.02"
        assert opts(req, URI_PATH) == [b"3", b"0", b"4"]
        assert req["payload"] == b""
        assert [to_uint(v) for v in opts(req, CONTENT_FORMAT)] == [1541]
        cl.answer(req, code(2, 4))
        fut.result(timeout=15)

        # an error answer surfaces as NodeLibError carrying the CoAP code
        fut = pool.submit(server.read, "fake-1", "/3/0/9", timeout=10)
        req = cl.recv()
        cl.answer(req, code(4, 4))
        with pytest.raises(NodeLibError) as ei:
            fut.result(timeout=15)
        assert ei.value.code == "4.04"

        fut = pool.submit(server.execute, "fake-1", "/3/0/0", timeout=10)
        req = cl.recv()
        cl.answer(req, code(4, 5))
        with pytest.raises(NodeLibError) as ei:
            fut.result(timeout=15)
        assert ei.value.code == "4.05" and "4.05" in str(ei.value)

        # Update (lifetime) on the location path
        rsp = cl.update(lifetime=600)
        assert rsp["code"] == "2.04"
        ev = server.wait_event("update", ep="fake-1", timeout=10)
        assert ev["lifetime"] == "600"

        # De-register
        rsp = cl.deregister()
        assert rsp["code"] == "2.02"
        ev = server.wait_event("unregister", ep="fake-1", timeout=10)
        assert ev["reason"] == "deregister"
        assert server.list_devices() == []
    finally:
        cl.close()


def test_unknown_device_and_silent_client(server):
    with pytest.raises(NodeLibError) as ei:
        server.read("nobody", "/3/0/0", timeout=5)
    assert ei.value.code == "4.04"

    cl, _, _ = registered(server, "mute")
    try:
        t0 = time.monotonic()
        with pytest.raises(NodeLibError) as ei:
            server.read("mute", "/3/0/0", timeout=1.5)  # the fake client never answers
        assert "timeout" in str(ei.value)
        assert time.monotonic() - t0 < 10
        assert server.ping() == "pong"                 # and the peer keeps working
    finally:
        cl.close()


def test_register_without_ep_is_rejected(server):
    cl = FakeClient(server.address, "x")
    try:
        rsp = cl.request(code(0, POST), [(URI_PATH, b"rd"), (URI_QUERY, b"lt=60")], b"</3/0>")
        assert rsp["code"] == "4.00"
    finally:
        cl.close()


def test_observe_notifications(server, pool):
    cl, _, _ = registered(server, "obs")
    try:
        fut = pool.submit(server.observe, "obs", "/3/0/13", timeout=10)
        req = cl.recv()
        assert req["code"] == "0.01" and opts(req, URI_PATH) == [b"3", b"0", b"13"]
        assert [to_uint(v) for v in opts(req, OBSERVE)] == [0]
        token = req["token"]
        cl.answer(req, code(2, 5), b"1000", [(OBSERVE, uint(0)), (CONTENT_FORMAT, uint(0))])
        obs = fut.result(timeout=15)
        assert obs.initial == "1000"

        # NON notification
        cl.send(encode(NON, code(2, 5), cl.next_mid(), token,
                       [(OBSERVE, uint(1)), (CONTENT_FORMAT, uint(0))], b"1001"))
        assert obs.next(timeout=10) == "1001"

        # CON notification: delivered, but the peer never ACKs it
        cl.send(encode(CON, code(2, 5), cl.next_mid(), token,
                       [(OBSERVE, uint(2)), (CONTENT_FORMAT, uint(0))], b"1002"))
        assert obs.next(timeout=10) == "1002"
        with pytest.raises(socket.timeout):
            cl.recv(timeout=1.0)

        server.cancel("obs", "/3/0/13")
        with pytest.raises(NodeLibError):
            server.cancel("obs", "/3/0/13")
    finally:
        cl.close()


def test_observe_refused(server, pool):
    cl, _, _ = registered(server, "obs-refused")
    try:
        fut = pool.submit(server.observe, "obs-refused", "/3/0/13", timeout=10)
        req = cl.recv()
        cl.answer(req, code(4, 4))
        with pytest.raises(NodeLibError) as ei:
            fut.result(timeout=15)
        assert ei.value.code == "4.04"
    finally:
        cl.close()


def test_lifetime_expiry_and_minimal_register(server):
    cl = FakeClient(server.address, "short")
    try:
        # only ep= is required by the peer; no payload, no Content-Format
        rsp = cl.request(code(0, POST), [(URI_PATH, b"rd"), (URI_QUERY, b"ep=short"), (URI_QUERY, b"lt=1")])
        assert rsp["code"] == "2.01"
        ev = server.wait_event("register", ep="short", timeout=10)
        assert ev["lifetime"] == "1" and ev["version"] is None and ev["payload"] == ""
        ev = server.wait_event("unregister", ep="short", timeout=10)
        assert ev["reason"] == "expired"
        assert server.list_devices() == []
    finally:
        cl.close()
