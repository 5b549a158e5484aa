"""The hand-written CoAP layer (lwm2m_mpy/coap/message.py, exchange.py) against aiocoap as an independent
RFC 7252 implementation: messages encoded by one side and decoded by the other, field by field and byte
for byte, and live exchanges over loopback UDP with a real aiocoap server and client. CPython only; every
wait is bounded."""
import asyncio
import socket
import threading
import time

import aiocoap
import aiocoap.resource
import pytest
from aiocoap import Code, Message
from aiocoap.numbers import OptionNumber
from aiocoap.optiontypes import BlockOption, OpaqueOption, UintOption

from lwm2m_mpy._compat import ticks_diff, ticks_ms
from lwm2m_mpy.coap.exchange import Exchange
from lwm2m_mpy.coap.message import Msg, Writer

CON, NON, ACK, RST = 0, 1, 2, 3
URI_PATH = 11
CONTENT_FORMAT = 12
URI_QUERY = 15
BLOCK2 = 23
BLOCK1 = 27
WAIT = 10.0  # seconds: the bound on any live exchange


# --- helpers -------------------------------------------------------------------------------------------------------

def aio_message(code, mtype, mid, token=b"", options=(), **kwargs):
    """An aiocoap Message with the message-layer fields set by hand (aiocoap would pick them itself)."""
    message = Message(code=code, **kwargs)
    message.mtype = aiocoap.Type(mtype)
    message.mid = mid
    message.token = token
    for option in options:
        message.opt.add_option(option)
    return message


def decode(data):
    return Msg().decode(data, len(data))


def aio_options(message):
    """(number, encoded value) of every option, in the order aiocoap encodes them."""
    return [(int(o.number), o.encode()) for o in message.opt.option_list()]


def our_options(m):
    return [(m.onum[k], m.value(k)) for k in range(m.count)]


def assert_same(aio, m):
    """aiocoap's view of a message equals our Msg's, field by field."""
    assert m.type == int(aio.mtype)
    assert m.code == int(aio.code)
    assert m.mid == aio.mid
    assert m.tkl == len(aio.token) and bytes(m.buf[4 : 4 + m.tkl]) == aio.token
    assert m.token() == int.from_bytes(aio.token, "big")
    assert our_options(m) == aio_options(aio)
    assert bytes(m.payload()) == aio.payload


def reencode(aio):
    """aiocoap's own encoding of a message it decoded (it encodes only outgoing messages: copy first)."""
    out = aio_message(aio.code, int(aio.mtype), aio.mid, aio.token, aio.opt.option_list(), payload=aio.payload)
    return out.encode()


def uint_bytes(v):
    return v.to_bytes((v.bit_length() + 7) // 8, "big")


def block_raw(num, more, szx):
    return num << 4 | (8 if more else 0) | szx


def write(mtype, code, mid, tok, tkl, options=(), payload=b"", size=4096):
    w = Writer(size)
    w.header(mtype, code, mid, tok, tkl)
    for num, value in options:
        w.option(num, value)
    start = w.marker()
    w.put(payload)
    w.end_payload(start)
    return bytes(w.buf[: w.n])


# --- aiocoap encodes, Msg decodes -------------------------------------------------------------------------------------

@pytest.mark.parametrize("tkl", range(9))
def test_aiocoap_get_with_token_decodes(tkl):
    token = bytes(range(0xF8, 0xF8 + tkl)) if tkl else b""
    aio = aio_message(Code.GET, CON, 0x7D34, token, uri_path=("3", "0", "13"), uri_query=("pmin=10", "pmax=60"))
    m = decode(aio.encode())
    assert_same(aio, m)
    assert m.strings(URI_PATH) == ["3", "0", "13"] and m.strings(URI_QUERY) == ["pmin=10", "pmax=60"]


def test_aiocoap_response_with_format_accept_and_payload_decodes():
    aio = aio_message(Code.CONTENT, ACK, 0xBC90, b"\x71", content_format=11542, max_age=0,
                      payload=b"\xc8\x00\x14" + b"x" * 20)
    m = decode(aio.encode())
    assert_same(aio, m)
    assert m.uint(CONTENT_FORMAT) == 11542 and m.uint(14) == 0  # Max-Age 0 is an empty value
    aio = aio_message(Code.POST, NON, 1, b"\x01\x02", uri_path=("rd",), content_format=40, accept=0,
                      uri_query=("ep=node-1", "lt=300", "lwm2m=1.1", "b=U"), payload=b"</1/0>,</3/0>")
    m = decode(aio.encode())
    assert_same(aio, m)
    assert m.uint(17) == 0 and m.uint(CONTENT_FORMAT) == 40


def test_aiocoap_empty_ack_and_rst_decode():
    for mtype in (ACK, RST, CON):
        aio = aio_message(Code.EMPTY, mtype, 0xFFFF)
        m = decode(aio.encode())
        assert_same(aio, m)
        assert m.code == 0 and m.count == 0 and m.n == 4


@pytest.mark.parametrize("length", [0, 1, 12, 13, 14, 268, 269, 270, 1000])
def test_aiocoap_long_option_values_decode(length):
    segment = "p" * length
    aio = aio_message(Code.PUT, CON, 7, b"\xaa", uri_path=("a", segment, "b"), payload=b"v")
    m = decode(aio.encode())
    assert_same(aio, m)
    assert m.strings(URI_PATH) == ["a", segment, "b"]


def test_aiocoap_options_above_269_decode():
    options = [OpaqueOption(269, b""), OpaqueOption(270, b"q" * 13), OpaqueOption(2048, b"x" * 300),
               UintOption(65000, 0xFFFF), OpaqueOption(65535, b"last")]
    aio = aio_message(Code.GET, CON, 42, b"\x01", options, uri_path=("x",))
    data = aio.encode()
    m = decode(data)
    assert_same(aio, m)
    assert [m.onum[k] for k in range(m.count)] == [URI_PATH, 269, 270, 2048, 65000, 65535]
    assert m.uint(65000) == 0xFFFF and m.value(m.find(2048)) == b"x" * 300


def test_aiocoap_block_options_decode_as_raw_uints():
    for num, more, szx in ((0, False, 0), (1, True, 6), (15, False, 2), (16, True, 4), (4095, True, 6),
                           (4096, False, 6), (0xFFFFF, True, 5)):
        aio = aio_message(Code.CONTENT, ACK, 9, b"\x05", payload=b"b")
        aio.opt.block2 = BlockOption.BlockwiseTuple(num, more, szx)
        aio.opt.block1 = BlockOption.BlockwiseTuple(num // 2, not more, 6 - szx)
        m = decode(aio.encode())
        assert_same(aio, m)
        assert m.uint(BLOCK2) == block_raw(num, more, szx)
        assert m.uint(BLOCK1) == block_raw(num // 2, not more, 6 - szx)


def test_aiocoap_uint_options_of_every_width_decode():
    for value in (0, 1, 255, 256, 65535, 65536, 0xFFFFFF, 0x1000000, 0xFFFFFFFF):
        aio = aio_message(Code.CONTENT, ACK, 9, b"", max_age=value, size2=value, observe=value & 0xFFFFFF)
        m = decode(aio.encode())
        assert_same(aio, m)
        assert (m.uint(14), m.uint(28), m.uint(6)) == (value, value, value & 0xFFFFFF)


def test_aiocoap_many_repeated_options_decode():
    query = tuple("k%d=%s" % (i, "v" * i) for i in range(18))
    aio = aio_message(Code.POST, CON, 3, b"\x10\x20", uri_path=("bs",), uri_query=query, payload=b"p" * 600)
    m = decode(aio.encode())
    assert_same(aio, m)
    assert m.strings(URI_QUERY) == list(query)


# --- Writer encodes, aiocoap decodes ------------------------------------------------------------------------------------

def test_writer_request_decodes_in_aiocoap():
    data = write(CON, 0x02, 0xABCD, 0x0102030405060708, 8,
                 [(URI_PATH, "rd"), (CONTENT_FORMAT, 40), (URI_QUERY, "ep=node"), (URI_QUERY, "lt=300"),
                  (URI_QUERY, "lwm2m=1.1")], b"</1/0>,</3/0>")
    aio = Message.decode(data)
    assert (aio.mtype, aio.code, aio.mid, aio.token) == (aiocoap.CON, Code.POST, 0xABCD, bytes(range(1, 9)))
    assert aio.opt.uri_path == ("rd",) and aio.opt.uri_query == ("ep=node", "lt=300", "lwm2m=1.1")
    assert aio.opt.content_format == 40 and aio.payload == b"</1/0>,</3/0>"
    assert reencode(aio) == data  # and aiocoap writes exactly the same bytes back


@pytest.mark.parametrize("tkl", range(9))
def test_writer_tokens_decode_in_aiocoap(tkl):
    tok = int.from_bytes(bytes(range(0, tkl)), "big")  # leading zero byte included
    data = write(NON, 0x01, tkl, tok, tkl, [(URI_PATH, "t")])
    aio = Message.decode(data)
    assert aio.token == bytes(range(0, tkl)) and aio.mtype == aiocoap.NON and aio.mid == tkl
    assert reencode(aio) == data


def test_writer_long_and_high_options_decode_in_aiocoap():
    options = [(URI_PATH, "a"), (URI_PATH, "p" * 13), (URI_PATH, "p" * 268), (URI_PATH, "p" * 269),
               (URI_PATH, "p" * 1000), (BLOCK2, block_raw(4096, True, 6)), (269, b""), (270, b"z" * 270),
               (2048, b"x" * 13), (2048, b"y"), (65000, 0xFFFF), (65535, b"end")]
    data = write(ACK, 0x45, 0x1111, 0x3F, 1, options, b"\x00" * 1000)
    aio = Message.decode(data)
    assert aio.opt.uri_path == ("a", "p" * 13, "p" * 268, "p" * 269, "p" * 1000)
    assert aio.opt.block2 == (4096, True, 6)
    assert aio_options(aio) == [(n, v if isinstance(v, bytes) else v.encode() if isinstance(v, str)
                                 else uint_bytes(v)) for n, v in options]
    assert [o.value for o in aio.opt.get_option(OptionNumber(2048))] == [b"x" * 13, b"y"]
    assert aio.opt.get_option(OptionNumber(65000))[0].value == b"\xff\xff"
    assert aio.payload == b"\x00" * 1000
    assert reencode(aio) == data


def test_writer_uint_options_decode_in_aiocoap():
    for value in (0, 1, 255, 256, 65535, 65536, 0xFFFFFF, 0x1000000, 0xFFFFFFFF):
        data = write(ACK, 0x45, 1, 0, 0, [(6, value & 0xFFFFFF), (14, value), (28, value)])
        aio = Message.decode(data)
        assert (aio.opt.observe, aio.opt.max_age, aio.opt.size2) == (value & 0xFFFFFF, value, value)
        assert reencode(aio) == data


def test_writer_block_options_decode_in_aiocoap():
    for num, more, szx in ((0, False, 0), (1, True, 6), (15, True, 2), (16, False, 4), (0xFFFFF, True, 5)):
        data = write(CON, 0x03, 2, 1, 1, [(BLOCK2, block_raw(num, more, szx)), (BLOCK1, block_raw(num, False, 6))],
                     b"b" * 16)
        aio = Message.decode(data)
        assert aio.opt.block2 == (num, more, szx) and aio.opt.block1 == (num, False, 6)
        assert reencode(aio) == data


def test_writer_many_repeated_options_decode_in_aiocoap():
    path = tuple("s%d" % i for i in range(40))  # more than Msg keeps, no limit for the Writer
    data = write(CON, 0x01, 5, 0xBEEF, 2, [(URI_PATH, p) for p in path] + [(URI_QUERY, "q")])
    aio = Message.decode(data)
    assert aio.opt.uri_path == path and aio.opt.uri_query == ("q",)
    assert reencode(aio) == data


def test_round_trip_through_both():
    # aiocoap -> Msg -> Writer reproduces aiocoap's bytes exactly
    aio = aio_message(Code.CONTENT, NON, 0x8001, b"\x00\x01\x02", [OpaqueOption(2048, b"w" * 400)],
                      uri_path=("x" * 14,), content_format=11543, etag=b"\x01\x02\x03\x04", size2=1 << 20,
                      payload=b"{}")
    data = aio.encode()
    m = decode(data)
    again = write(m.type, m.code, m.mid, m.token(), m.tkl, [(m.onum[k], m.value(k)) for k in range(m.count)],
                  bytes(m.payload()))
    assert again == data


# --- live: a real aiocoap on loopback -----------------------------------------------------------------------------------

class LoopThread:
    """An asyncio loop in a thread, for aiocoap contexts; run(coro) waits for the result (bounded)."""

    def __init__(self):
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro, timeout=WAIT):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self):
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        if not self.thread.is_alive():
            self.loop.close()


@pytest.fixture
def aio_loop():
    loop = LoopThread()
    contexts = []
    loop.contexts = contexts
    yield loop
    for context in contexts:
        loop.run(context.shutdown())
    loop.close()


class Temperature(aiocoap.resource.Resource):
    def __init__(self, delay=0.0):
        super().__init__()
        self.delay = delay
        self.requests = []

    async def render_get(self, request):
        self.requests.append(request)
        if self.delay:
            await asyncio.sleep(self.delay)  # longer than aiocoap's empty-ACK delay: a separate response
        return Message(code=Code.CONTENT, payload=b"22.5 C", content_format=0)


def udp_socket():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    return s


class Client:
    """Our Exchange on a CPython UDP socket, talking to one server address."""

    def __init__(self, server):
        self.server = server
        self.sock = udp_socket()
        self.sent = []
        self.received = []
        self.results = []
        self.ex = Exchange(self.send, self.refuse)

    def send(self, buf, n):
        data = bytes(buf[:n])
        self.sent.append(data)
        self.sock.sendto(data, self.server)

    def refuse(self, msg, w):
        w.buf[1] = 0x85  # 4.05: this side only asks

    def done(self, msg):
        if msg is None:
            self.results.append(None)
        else:
            self.results.append((msg.type, msg.code, msg.token(), msg.uint(CONTENT_FORMAT), bytes(msg.payload())))

    def get(self, path):
        w = self.ex.begin(0x01)
        for segment in path:
            w.option(URI_PATH, segment)
        self.ex.request(self.done, ticks_ms())
        deadline = time.monotonic() + WAIT
        while not self.results:
            assert time.monotonic() < deadline, "no response; sent %r received %r" % (self.sent, self.received)
            now = ticks_ms()
            due = self.ex.step(now)
            wait = 0.05 if due is None else min(0.05, max(0.001, ticks_diff(due, now) / 1000))
            self.sock.settimeout(wait)
            try:
                data, address = self.sock.recvfrom(2048)
            except socket.timeout:
                continue
            assert address == self.server
            self.received.append(data)
            self.ex.feed(data, ticks_ms())
        return self.results[0]

    def token(self):
        """The token of our first request, as an int (what Msg.token() gives for the response)."""
        first = self.sent[0]
        return int.from_bytes(first[4 : 4 + (first[0] & 15)], "big")

    def close(self):
        self.sock.close()


def start_aiocoap_server(aio_loop, port, resource):
    site = aiocoap.resource.Site()
    site.add_resource(["temp"], resource)
    context = aio_loop.run(aiocoap.Context.create_server_context(site, bind=("127.0.0.1", port)))
    aio_loop.contexts.append(context)
    return context


def test_live_our_con_get_to_aiocoap_server(aio_loop, free_udp_port):
    port = free_udp_port()
    resource = Temperature()
    start_aiocoap_server(aio_loop, port, resource)
    client = Client(("127.0.0.1", port))
    try:
        result = client.get(["temp"])
        mid = client.sent[0][2] << 8 | client.sent[0][3]
        assert result == (ACK, 0x45, client.token(), 0, b"22.5 C")
        assert client.received[0][0] >> 4 & 3 == ACK and client.received[0][2:4] == client.sent[0][2:4]
        assert len(resource.requests) == 1  # (the Site has consumed the Uri-Path by now)
        assert resource.requests[0].mtype == aiocoap.CON and resource.requests[0].mid == mid
        assert not client.ex.busy()
    finally:
        client.close()


def test_live_separate_response_from_aiocoap_is_acknowledged(aio_loop, free_udp_port):
    port = free_udp_port()
    resource = Temperature(delay=0.6)
    start_aiocoap_server(aio_loop, port, resource)
    client = Client(("127.0.0.1", port))
    try:
        result = client.get(["temp"])
        assert result == (CON, 0x45, client.token(), 0, b"22.5 C")
        kinds = [(d[0] >> 4 & 3, d[1]) for d in client.received]
        assert kinds == [(ACK, 0), (CON, 0x45)], client.received  # empty ACK, then the CON response
        response_mid = client.received[1][2:4]
        assert client.sent[-1] == b"\x60\x00" + response_mid  # which we acknowledged
        # aiocoap got the ACK: it does not retransmit the response within its first ACK timeout
        client.sock.settimeout(3.2)
        with pytest.raises(socket.timeout):
            client.sock.recvfrom(2048)
    finally:
        client.close()


class Server:
    """Our Exchange answering requests on a UDP socket, fed by a thread."""

    def __init__(self):
        self.sock = udp_socket()
        self.sock.settimeout(0.02)
        self.port = self.sock.getsockname()[1]
        self.peer = None
        self.requests = []
        self.ex = Exchange(self.send, self.handle)
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def send(self, buf, n):
        self.sock.sendto(bytes(buf[:n]), self.peer)

    def handle(self, msg, w):
        path = msg.strings(URI_PATH)
        self.requests.append((msg.type, msg.code, path))
        if path == ["3", "0", "0"]:
            w.option(CONTENT_FORMAT, 0)
            start = w.marker()
            w.put(b"lwm2m_mpy")
            w.end_payload(start)
            w.buf[1] = 0x45
        else:
            w.buf[1] = 0x84

    def serve(self):
        while not self.stopping.is_set():
            try:
                data, self.peer = self.sock.recvfrom(2048)
            except socket.timeout:
                self.ex.step(ticks_ms())
                continue
            except OSError:
                return
            self.ex.feed(data, ticks_ms())

    def close(self):
        self.stopping.set()
        self.thread.join(5)
        self.sock.close()


def test_live_aiocoap_client_against_our_exchange(aio_loop):
    server = Server()
    try:
        # a server context bound to loopback doubles as a client whose socket never leaves 127.0.0.1
        context = aio_loop.run(aiocoap.Context.create_server_context(aiocoap.resource.Site(),
                                                                    bind=("127.0.0.1", 0)))
        aio_loop.contexts.append(context)
        uri = "coap://127.0.0.1:%d/3/0/0" % server.port

        async def ask(mtype, path_uri):
            request = Message(code=Code.GET, uri=path_uri)
            request.mtype = mtype
            return await asyncio.wait_for(context.request(request).response, WAIT)

        response = aio_loop.run(ask(aiocoap.CON, uri))
        assert (response.code, response.mtype, response.payload) == (Code.CONTENT, aiocoap.ACK, b"lwm2m_mpy")
        assert response.opt.content_format == 0

        response = aio_loop.run(ask(aiocoap.NON, uri))
        assert (response.code, response.mtype, response.payload) == (Code.CONTENT, aiocoap.NON, b"lwm2m_mpy")

        response = aio_loop.run(ask(aiocoap.CON, "coap://127.0.0.1:%d/9/9" % server.port))
        assert (response.code, response.mtype, response.payload) == (Code.NOT_FOUND, aiocoap.ACK, b"")

        assert server.requests == [(CON, 1, ["3", "0", "0"]), (NON, 1, ["3", "0", "0"]), (CON, 1, ["9", "9"])]
    finally:
        server.close()
