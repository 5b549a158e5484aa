"""Robustness of the client (in the real `micropython` binary) on loopback:

1. through a lossy link (LossyProxy: drop 0.3, duplicate 0.1, reorder 0.1, fixed seed) it still
   registers and answers every Read (the server's retries are aiocoap's own);
2. a flood of 1,000 random, truncated and mutated datagrams from its server's address gets only RSTs
   and 4.xx answers (each reply classified against an independent strict RFC 7252 parser here), no
   crash, and a proper GET afterwards is answered 2.05;
3. requests from any other address or port than the server's are not answered.
"""
import random
import socket
import struct
import time

import pytest

from e2e_helpers import cli_args, ensure_mpy_tree, mpy_client  # noqa: F401
import lwm2m_server as lws
from peers.lossy_proxy import LossyProxy

CON, NON, ACK, RST = 0, 1, 2, 3
GET, POST, PUT, DELETE = 1, 2, 3, 4


# --- a strict, independent RFC 7252 decoder (the test's own; aiocoap's is lenient) ------------------------

class Parsed:
    def __init__(self, kind, mtype=None, code=None, mid=None, token=b"", options=(), payload=b""):
        self.kind = kind  # "invalid", "empty", "request", "response", "reserved"
        self.mtype, self.code, self.mid, self.token = mtype, code, mid, token
        self.options, self.payload = list(options), payload

    def path(self):
        return tuple(v.decode("latin-1") for n, v in self.options if n == 11)


def parse(data):
    """Classify a datagram the way RFC 7252 §3 defines the format."""
    if len(data) < 4 or data[0] >> 6 != 1:
        return Parsed("invalid")
    mtype, tkl, code = data[0] >> 4 & 3, data[0] & 15, data[1]
    mid = data[2] << 8 | data[3]
    if tkl > 8:
        return Parsed("invalid", mtype)
    if code == 0:
        return Parsed("empty" if len(data) == 4 else "invalid", mtype, 0, mid)
    if 4 + tkl > len(data):
        return Parsed("invalid", mtype)
    token = bytes(data[4:4 + tkl])
    i, number, options, payload = 4 + tkl, 0, [], b""
    while i < len(data):
        byte = data[i]
        i += 1
        if byte == 0xFF:
            if i == len(data):
                return Parsed("invalid", mtype)
            payload = bytes(data[i:])
            break
        fields = []
        for nibble in (byte >> 4, byte & 15):
            if nibble == 15:
                return Parsed("invalid", mtype)
            if nibble == 13:
                if i >= len(data):
                    return Parsed("invalid", mtype)
                nibble = data[i] + 13
                i += 1
            elif nibble == 14:
                if i + 2 > len(data):
                    return Parsed("invalid", mtype)
                nibble = (data[i] << 8 | data[i + 1]) + 269
                i += 2
            fields.append(nibble)
        number += fields[0]
        if i + fields[1] > len(data) or number > 0xFFFF:
            return Parsed("invalid", mtype)
        options.append((number, bytes(data[i:i + fields[1]])))
        i += fields[1]
    cls = code >> 5
    kind = "request" if cls == 0 else "reserved" if cls in (1, 6, 7) else "response"
    return Parsed(kind, mtype, code, mid, token, options, payload)


def encode(mtype, code, mid, token=b"", options=(), payload=b""):
    out = bytearray([0x40 | mtype << 4 | len(token), code, mid >> 8, mid & 255]) + token
    last = 0
    for number, value in sorted(options, key=lambda o: o[0]):
        if isinstance(value, int):
            value = value.to_bytes((value.bit_length() + 7) // 8, "big")
        elif isinstance(value, str):
            value = value.encode()
        head, ext = [], b""
        for x in (number - last, len(value)):
            if x >= 269:
                head.append(14)
                ext += struct.pack(">H", x - 269)
            elif x >= 13:
                head.append(13)
                ext += bytes([x - 13])
            else:
                head.append(x)
        out += bytes([head[0] << 4 | head[1]]) + ext + value
        last = number
    if payload:
        out += b"\xff" + payload
    return bytes(out)


def code_str(code):
    return "%d.%02d" % (code >> 5, code & 31)


# --- 1. a lossy link ---------------------------------------------------------------------------------------

class CountingProxy(LossyProxy):
    """LossyProxy that also counts the CON requests it delivered to the client (duplicates included)
    and the ACKs the client sent back (before the dice: a dropped ACK was still sent)."""

    def __init__(self, *args, **kwargs):
        self.delivered_requests = 0
        self.client_acks = 0
        super().__init__(*args, **kwargs)  # starts the proxy thread

    def _send(self, sock, data, address):
        if sock is self._front:
            msg = parse(data)
            if msg.kind == "request" and msg.mtype == CON:
                self.delivered_requests += 1
        super()._send(sock, data, address)

    def _pass(self, sock, data, address):
        if sock is self._back:  # from the client
            msg = parse(data)
            if msg.kind == "response" and msg.mtype == ACK:
                self.client_acks += 1
        super()._pass(sock, data, address)


# Seed 3 is one where the Register loses a datagram and one Read needs four retransmissions; the run
# is repeatable (both peers take turns, so the proxy draws in the same order). About 45 s.
LOSSY_SEED = 3


def test_lossy_link_register_and_reads(mpy_client):
    ep = "robust-lossy"
    with lws.ServerThread(request_timeout=100) as server, \
            CountingProxy(("127.0.0.1", server.port), drop=0.3, duplicate=0.1, reorder=0.1,
                          seed=LOSSY_SEED) as proxy:
        proc = mpy_client(cli_args("coap://127.0.0.1:%d" % proxy.port, ep, "--retry", 1))
        server.wait_for("register", ep, timeout=150)
        started = time.monotonic()
        answers = []
        for _ in range(10):
            # aiocoap retransmits the CON (up to 4 times, ~45-90 s); 100 s covers its whole exchange
            answers.append(server.read(ep, "/3/0/0", accept=lws.TEXT, timeout=100))
        took = time.monotonic() - started
        time.sleep(1.5)  # a held-back datagram goes out within 1 s
        stats = proxy.stats()
        assert [(a.code, a.payload) for a in answers] == [("2.05", b"lwm2m_mpy")] * 10, (stats, proc.output())
        assert stats["dropped"] > 0 and stats["duplicated"] > 0 and stats["reordered"] > 0, stats
        # every copy of a request that reached the client was answered (duplicates from its cache)
        assert proxy.client_acks == proxy.delivered_requests, (proxy.client_acks, proxy.delivered_requests)
        assert proc.alive(), proc.output()
        proc.assert_clean()
        print("lossy link: 10 reads in %.1f s, proxy %s, %d requests delivered" % (
            took, stats, proxy.delivered_requests))


# --- 2. a flood of garbage from the server's own address -----------------------------------------------------

class FakeServer:
    """A CPython UDP socket posing as the LwM2M server: answers Register/Update itself."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.client = None
        self.client_requests = []  # (code, path, query) of CON requests the client sent us

    def close(self):
        self.sock.close()

    def recv(self, timeout):
        self.sock.settimeout(timeout)
        try:
            data, address = self.sock.recvfrom(4096)
        except socket.timeout:
            return None
        return data, address

    def serve_client_request(self, msg):
        """Answer a Register (2.01) or an Update (2.04); returns True if msg was one."""
        if msg.kind != "request" or msg.mtype != CON:
            return False
        path = msg.path()
        query = tuple(v.decode() for n, v in msg.options if n == 15)
        self.client_requests.append((code_str(msg.code), path, query))
        if msg.code == POST and path == ("rd",):
            reply = encode(ACK, 65, msg.mid, msg.token, [(8, "rd"), (8, "flood")])
        elif msg.code == POST and path == ("rd", "flood"):
            reply = encode(ACK, 68, msg.mid, msg.token)
        elif msg.code == DELETE and path == ("rd", "flood"):
            reply = encode(ACK, 66, msg.mid, msg.token)
        else:
            reply = encode(ACK, 132, msg.mid, msg.token)
        self.sock.sendto(reply, self.client)
        return True

    def wait_register(self, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = self.recv(0.5)
            if got is None:
                continue
            data, address = got
            msg = parse(data)
            if msg.kind == "request" and msg.code == POST and msg.path() == ("rd",):
                self.client = address
                self.serve_client_request(msg)
                return msg
        raise AssertionError("no Register within %s s" % timeout)


# Well-formed requests the flood is made from (truncated and mutated); none of them, nor anything
# made from them that is still a valid request, may change what the final GET reads.
def _base_requests():
    tok = b"\x11\x22\x33\x44"
    return [
        encode(CON, GET, 0, tok, [(11, "3"), (11, "0"), (11, "0")]),
        encode(CON, GET, 0, tok, [(11, "3"), (11, "0"), (17, 11542)]),
        encode(CON, GET, 0, tok, [(11, "3"), (11, "0"), (17, 40)]),
        encode(CON, PUT, 0, tok, [(11, "1"), (11, "0"), (11, "2"), (12, 0)], b"10"),
        encode(CON, PUT, 0, tok, [(11, "1"), (11, "0"), (12, 11542)], b"\xc1\x02\x0a"),
        encode(CON, PUT, 0, tok, [(11, "3"), (11, "0"), (11, "10"), (15, "pmin=5")]),
        encode(NON, GET, 0, tok, [(11, "3"), (11, "0"), (11, "0")]),
        encode(CON, GET, 0, tok, [(9, b"x"), (11, "3"), (11, "0"), (11, "0")]),
        encode(CON, GET, 0, b"", [(11, "3"), (11, "0"), (11, "11"), (11, "0"), (17, 0)]),
    ]


SAFE_WRITES = {("1", "0", "2"), ("1", "0"), ("3", "0", "10")}


def _harmless(msg):
    """A valid request the flood may send: reads and the few writes of SAFE_WRITES (no Execute, Create,
    Delete, and nothing that would make the client register again)."""
    if msg.kind != "request":
        return True
    if msg.code == GET or msg.code > DELETE:  # GET, or FETCH/PATCH/...: answered 4.05
        return True
    return msg.code == PUT and msg.path() in SAFE_WRITES


def _garbage(rng, base):
    choice = rng.random()
    if choice < 0.25:  # anything
        data = bytearray(rng.getrandbits(8) for _ in range(rng.randint(0, 48)))
    elif choice < 0.5:  # a version-1 header, the rest random
        data = bytearray([0x40 | rng.randint(0, 3) << 4 | rng.randint(0, 15), rng.getrandbits(8)]
                         + [rng.getrandbits(8) for _ in range(rng.randint(2, 40))])
    elif choice < 0.75:  # a good request cut short
        good = rng.choice(base)
        data = bytearray(good[:rng.randint(0, len(good) - 1)])
    else:  # a good request with a few bits or bytes changed, maybe junk appended
        data = bytearray(rng.choice(base))
        for _ in range(rng.randint(1, 3)):
            k = rng.randrange(len(data))
            if rng.random() < 0.5:
                data[k] ^= 1 << rng.randrange(8)
            else:
                data[k] = rng.getrandbits(8)
        if rng.random() < 0.2:
            data += bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 8)))
    return data


# The compiled tree in 96k: random requests reach every on-demand module (Write, Discover, Observe, SenML,
# composite), about 36 KiB of heap together on this 64-bit port on top of the 44 KiB the client needs to
# register; 64k holds the client and some of them, not all at once (README "Memory").
@pytest.mark.parametrize("build", ["source-256k", "compiled-96k"])
def test_flood_of_garbage_from_the_server_address(mpy_client, build):
    rng = random.Random(20261101)
    fake = FakeServer()
    try:
        if build == "compiled-96k":  # the .mpy tree in a small heap: garbage must not exhaust it
            options = {"heapsize": "96k", "tree": str(ensure_mpy_tree())}
        else:
            options = {}
        proc = mpy_client(cli_args("coap://127.0.0.1:%d" % fake.port, "robust-flood"), **options)
        fake.wait_register(timeout=10)
        proc.wait_line(r"lwm2m: registered /rd/flood$", timeout=5)

        base = _base_requests()
        sent = []  # (bytes, Parsed)
        by_mid, by_token = {}, {}
        mid = 0x5000
        while len(sent) < 1000:
            data = _garbage(rng, base)
            if len(data) >= 4:  # a unique Message ID per datagram, so every reply maps back to one
                mid += 1
                data[2], data[3] = mid >> 8 & 255, mid & 255
            msg = parse(bytes(data))
            if not _harmless(msg):
                continue
            index = len(sent)
            sent.append((bytes(data), msg))
            if len(data) >= 4:
                by_mid[mid] = index
            if msg.kind == "request" and msg.mtype == NON:
                by_token[msg.token] = index

        replies = []  # (reply bytes, Parsed)

        def drain(quiet):
            while True:
                got = fake.recv(quiet)
                if got is None:
                    return
                data, address = got
                assert address == fake.client, "reply from %s" % (address,)
                msg = parse(data)
                if not fake.serve_client_request(msg):
                    replies.append((data, msg))

        started = time.monotonic()
        for k, (data, _) in enumerate(sent):
            fake.sock.sendto(data, fake.client)
            if k % 10 == 9:  # paced, so the kernel never drops what the client has not read yet
                drain(0.02)
        drain(1.0)
        took = time.monotonic() - started
        assert proc.alive(), proc.output()

        # classify every reply
        classes = {}
        problems = []
        answered = set()
        for data, msg in replies:
            if msg.kind == "empty" and msg.mtype == RST:
                index = by_mid.get(msg.mid)
                if index is None or sent[index][0][0] >> 4 != 4:  # version 1 and CON
                    problems.append("RST for no CON we sent: %s" % data.hex())
                    continue
                answered.add(index)
                classes["RST to %s" % sent[index][1].kind] = classes.get("RST to %s" % sent[index][1].kind, 0) + 1
                continue
            if msg.kind == "response" and msg.mtype in (ACK, NON):
                index = by_mid.get(msg.mid) if msg.mtype == ACK else by_token.get(msg.token)
                if index is None:
                    problems.append("response to nothing we sent: %s" % data.hex())
                    continue
                request = sent[index][1]
                answered.add(index)
                code = code_str(msg.code)
                classes[code] = classes.get(code, 0) + 1
                if msg.code >> 5 == 5:
                    problems.append("%s for %s" % (code, sent[index][0].hex()))
                elif msg.code >> 5 == 2 and request.kind != "request":
                    problems.append("%s for a datagram that is no valid request: %s" % (code, sent[index][0].hex()))
                elif msg.code >> 5 not in (2, 4):
                    problems.append("code %s for %s" % (code, sent[index][0].hex()))
                if msg.mtype == ACK and (request.mtype != CON or msg.token != request.token):
                    problems.append("ACK %s does not match %s" % (data.hex(), sent[index][0].hex()))
                continue
            problems.append("unexpected reply %s (%s)" % (data.hex(), msg.kind))

        # what had to be answered: every well-formed CON request and CON ping; nothing else may be
        for index, (data, msg) in enumerate(sent):
            must = msg.mtype == CON and msg.kind in ("request", "empty")
            may = must or msg.mtype == CON or (msg.kind == "request" and msg.mtype == NON)
            if must and index not in answered:
                problems.append("no answer to %s %s" % (msg.kind, data.hex()))
            if index in answered and not may:
                problems.append("answered a %s %s that needs no answer: %s" % (
                    msg.kind, ["CON", "NON", "ACK", "RST"][msg.mtype] if msg.mtype is not None else "?", data.hex()))
        kinds = {}
        for _, msg in sent:
            kinds[msg.kind] = kinds.get(msg.kind, 0) + 1
        print("flood: sent %s, %d replies %s in %.1f s, client requests %s" % (
            kinds, len(replies), classes, took, fake.client_requests))
        if problems:  # the client's output without its routine "bad message" lines
            log = [line for line in proc.lines() if "bad message" not in line and "answer 4." not in line]
            raise AssertionError("\n".join(problems[:30] + ["(%d problems)" % len(problems)] + log[-60:]))
        assert all(not code.startswith("5") for code in classes), "\n".join(
            line for line in proc.lines() if "answer 5" in line or "Error" in line)

        # a proper request is still answered
        fake.sock.sendto(encode(CON, GET, 0x7777, b"\xaa\xbb", [(11, "3"), (11, "0"), (11, "0")]), fake.client)
        got = fake.recv(5)
        assert got is not None, proc.output()
        msg = parse(got[0])
        assert (msg.mtype, code_str(msg.code), msg.mid, msg.token, msg.payload) == \
            (ACK, "2.05", 0x7777, b"\xaa\xbb", b"lwm2m_mpy")
        assert proc.alive()
        # nothing in the flood made the client register again
        assert [r[1] for r in fake.client_requests].count(("rd",)) == 1, fake.client_requests
        proc.assert_clean()
    finally:
        fake.close()


# --- 3. strangers are not answered ------------------------------------------------------------------------

@pytest.mark.parametrize("source", ["other-port", "other-address"])
def test_requests_from_other_addresses_are_not_answered(mpy_client, source):
    ep = "robust-stranger-" + source
    with lws.ServerThread() as server:
        proc = mpy_client(cli_args(server.uri, ep))
        server.wait_for("register", ep, timeout=10)
        client_addr = server.registration(ep).address
        stranger = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            # another port on 127.0.0.1, or the server's own port number on another loopback address
            stranger.bind(("127.0.0.1", 0) if source == "other-port" else ("127.0.0.2", server.port))
            stranger.settimeout(1.0)
            for k, request in enumerate([
                    encode(CON, GET, 0x100, b"\x01", [(11, "3"), (11, "0"), (11, "0")]),
                    encode(NON, GET, 0x101, b"\x02", [(11, "3"), (11, "0"), (11, "0")]),
                    encode(CON, 0, 0x102),  # a ping
                    encode(CON, PUT, 0x103, b"\x03", [(11, "1"), (11, "0"), (11, "1"), (12, 0)], b"33")]):
                stranger.sendto(request, client_addr)
                try:
                    data, _ = stranger.recvfrom(2048)
                except socket.timeout:
                    continue
                except ConnectionRefusedError:  # ICMP port unreachable: nobody took it
                    continue
                raise AssertionError("request %d from a stranger was answered: %s" % (k, data.hex()))
        finally:
            stranger.close()
        # the client neither answered nor acted
        assert server.read(ep, "/1/0/1", accept=lws.TEXT).payload == b"300"
        assert [e.kind for e in server.events_for(ep)] == ["register"]
        assert "answer" not in proc.output()
        assert proc.alive()
        proc.assert_clean()


# --- 4. a server that answers the Register badly -----------------------------------------------------------

def test_bad_register_answers_do_not_crash(mpy_client):
    """A 2.01 with a wrong token is ignored (the Register is retransmitted); a 2.01 whose Location-Path
    is not UTF-8 must not kill the client. Afterwards a proper 2.01 registers it and it serves."""
    fake = FakeServer()
    try:
        proc = mpy_client(cli_args("coap://127.0.0.1:%d" % fake.port, "robust-badreg", "--retry", 1))
        got = fake.recv(10)
        assert got is not None, proc.output()
        first, fake.client = parse(got[0]), got[1]
        assert first.code == POST and first.path() == ("rd",)
        # 1. right Message ID, wrong token: not our answer; the client retransmits the same Register
        fake.sock.sendto(encode(ACK, 65, first.mid, b"\x00" + first.token[1:] if first.token else b"\x01",
                                [(8, "rd"), (8, "x")]), fake.client)
        got = fake.recv(10)
        assert got is not None, proc.output()
        again = parse(got[0])
        assert (again.mid, again.path()) == (first.mid, ("rd",)), "not a retransmission: %s" % got[0].hex()
        # 2. a Location-Path that is not UTF-8
        fake.sock.sendto(encode(ACK, 65, again.mid, again.token, [(8, b"\xff\xfe")]), fake.client)
        time.sleep(1.0)
        assert proc.alive(), proc.output()
        # 3. whatever it made of that, a proper answer to its next Register gets it registered
        deadline = time.monotonic() + 15
        while "registered /rd/flood" not in proc.output() and time.monotonic() < deadline:
            got = fake.recv(0.5)
            if got is not None:
                fake.serve_client_request(parse(got[0]))
        proc.wait_line(r"lwm2m: registered /rd/flood$", timeout=1)
        fake.sock.sendto(encode(CON, GET, 0x4242, b"\x42", [(11, "3"), (11, "0"), (11, "0")]), fake.client)
        got = fake.recv(5)
        assert got is not None and parse(got[0]).code == 69, proc.output()
        proc.assert_clean()
    finally:
        fake.close()
