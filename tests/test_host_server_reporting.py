"""Tests of the host server's LwM2M 1.1 information reporting and composite operations
(tools/lwm2m_server.py) and its SenML codecs (tools/lwm2m_codec.py): SenML vectors from the LwM2M
1.1.1 Core spec (§7.4.4 / §7.4.5, the Device object example) cross-checked with cbor2, and the server
driven by an aiocoap fake device on loopback (observable resources sending CON and NON notifications,
FETCH / iPATCH handlers, a client context POSTing /dp), with a UDP relay in between where a test must
see the datagrams. CPython only; every wait is bounded."""
import asyncio
import json
import socket
import time

import aiocoap
import aiocoap.resource
import cbor2
import pytest
from aiocoap import Code, Message

from test_host_server import (DEVICE_VALUES, CliServer, FakeDevice, LoopThread, _coap_bytes,  # puts tools/ on sys.path
                              run, started_pair)

import lwm2m_codec as codec  # noqa: E402
import lwm2m_server as lws  # noqa: E402

# LwM2M 1.1.1 Core §7.4.4 (page 86): Read /3/0 of the example client in SenML JSON, and the same
# records in SenML CBOR as the spec prints them (bn, n, then the value, in that order).
DEVICE_SENML_JSON = b"""[{"bn":"/3/0/","n":"0","vs":"Open Mobile Alliance"},
{"n":"1","vs":"Lightweight M2M Client"},{"n":"2","vs":"345000123"},{"n":"3","vs":"1.0"},
{"n":"6/0","v":1},{"n":"6/1","v":5},{"n":"7/0","v":3800},{"n":"7/1","v":5000},
{"n":"8/0","v":125},{"n":"8/1","v":900},{"n":"9","v":100},{"n":"10","v":15},{"n":"11/0","v":0},
{"n":"13","v":1367491215},{"n":"14","vs":"+02:00"},{"n":"16","vs":"U"}]"""
DEVICE_SENML_CBOR = bytes.fromhex(
    "90a321652f332f302f00613003744f70656e204d6f62696c6520416c6c69616e6365"
    "a200613103764c69676874776569676874204d324d20436c69656e74"
    "a20061320369333435303030313233" "a20061330363312e30"
    "a20063362f300201" "a20063362f310205" "a20063372f3002190ed8" "a20063372f3102191388"
    "a20063382f3002187d" "a20063382f3102190384" "a2006139021864" "a200623130020f"
    "a2006431312f300200" "a200623133021a5182428f" "a20062313403662b30323a3030" "a200623136036155")
DEVICE_PATHS = {}
for _rid, _value in DEVICE_VALUES.items():
    DEVICE_PATHS.update({"/3/0/%d/%d" % (_rid, i): v for i, v in _value.items()} if isinstance(_value, dict)
                        else {"/3/0/%d" % _rid: _value})

SEND_LINKS = b"</1/0>,</3/0>,</3303/0>"


# --- SenML codec ---------------------------------------------------------------------------------------

def test_senml_json_device_example_decodes_and_reencodes_byte_exact():
    assert codec.decode_senml(DEVICE_SENML_JSON, codec.SENML_JSON) == DEVICE_PATHS
    compact = json.dumps(json.loads(DEVICE_SENML_JSON), separators=(",", ":")).encode()
    assert codec.encode_senml(DEVICE_PATHS, codec.SENML_JSON) == compact


def test_senml_cbor_device_example_decodes_and_reencodes_byte_exact():
    # cbor2 reads the spec's bytes as RFC 8428 labels: bn -2, n 0, vs 3, v 2.
    records = cbor2.loads(DEVICE_SENML_CBOR)
    assert records[0] == {-2: "/3/0/", 0: "0", 3: "Open Mobile Alliance"} and records[4] == {0: "6/0", 2: 1}
    assert codec.decode_senml(DEVICE_SENML_CBOR, codec.SENML_CBOR) == DEVICE_PATHS
    assert codec.encode_senml(DEVICE_PATHS, codec.SENML_CBOR) == DEVICE_SENML_CBOR


def test_senml_value_kinds_both_encodings():
    values = {"/3303/0/5700": 23.5, "/1/0/1": -300, "/3/0/0": "Acme", "/5/0/0": b"\x00\xff\x10",
              "/11/0/1": (3, 0), "/1/0/6": True}
    as_json = codec.encode_senml(values, codec.SENML_JSON)
    assert json.loads(as_json) == [  # no common prefix: no bn; opaque as base64url without padding
        {"n": "/3303/0/5700", "v": 23.5}, {"n": "/1/0/1", "v": -300}, {"n": "/3/0/0", "vs": "Acme"},
        {"n": "/5/0/0", "vd": "AP8Q"}, {"n": "/11/0/1", "vlo": "3:0"}, {"n": "/1/0/6", "vb": True}]
    as_cbor = codec.encode_senml(values, codec.SENML_CBOR)
    assert cbor2.loads(as_cbor) == [
        {0: "/3303/0/5700", 2: 23.5}, {0: "/1/0/1", 2: -300}, {0: "/3/0/0", 3: "Acme"},
        {0: "/5/0/0", 8: b"\x00\xff\x10"}, {0: "/11/0/1", "vlo": "3:0"}, {0: "/1/0/6", 4: True}]
    for payload, fmt in ((as_json, codec.SENML_JSON), (as_cbor, codec.SENML_CBOR)):
        assert codec.decode_senml(payload, fmt) == values
    # A type from the caller wins over the Python type: 21 as Float is 21.0.
    assert cbor2.loads(codec.encode_senml({"/3303/0/5700": 21}, codec.SENML_CBOR, {"/3303/0/5700": "Float"})) == [
        {-2: "/3303/0/", 0: "5700", 2: 21.0}]
    assert json.loads(codec.encode_senml({"/3303/0/5700": 21}, codec.SENML_JSON, {"/3303/0/5700": "float"})) == [
        {"bn": "/3303/0/", "n": "5700", "v": 21.0}]
    # Padded base64url is accepted too.
    assert codec.decode_senml(b'[{"n":"/5/0/0","vd":"AP8Q"},{"n":"/5/0/1","vd":"AA=="}]', codec.SENML_JSON) == {
        "/5/0/0": b"\x00\xff\x10", "/5/0/1": b"\x00"}


def test_senml_base_name_time_and_base_value_resolution():
    payload = cbor2.dumps([
        {-2: "/3303/0/", -3: 1000, 0: "5700", 2: 21.5, 6: -10},
        {0: "5700", 2: 22.5},  # bn and bt carry over
        {-2: "/3/0/", 0: "9", 2: 90},  # a new bn replaces the old one
        {-5: 100, 0: "10", 2: 5},  # bv adds to v
    ])
    records = codec.senml_records(payload, codec.SENML_CBOR)
    assert records == [codec.SenMLRecord("/3303/0/5700", 21.5, 990), codec.SenMLRecord("/3303/0/5700", 22.5, 1000),
                       codec.SenMLRecord("/3/0/9", 90, 1000), codec.SenMLRecord("/3/0/10", 105, 1000)]
    # {path: value}: a repeated path keeps its last value.
    assert codec.decode_senml(payload, codec.SENML_CBOR) == {"/3303/0/5700": 22.5, "/3/0/9": 90, "/3/0/10": 105}
    assert codec.senml_records(b'[{"n":"/3/0/9","v":1}]', codec.SENML_JSON)[0].time is None


def test_senml_path_only_records():
    paths = ["/3/0/9", "/1/0", "/3303/0/5700/1"]
    assert codec.encode_senml(paths, codec.SENML_JSON) == b'[{"n":"/3/0/9"},{"n":"/1/0"},{"n":"/3303/0/5700/1"}]'
    assert cbor2.loads(codec.encode_senml(paths, codec.SENML_CBOR)) == [{0: p} for p in paths]
    assert codec.decode_senml_paths(codec.encode_senml(paths, codec.SENML_CBOR), codec.SENML_CBOR) == paths
    assert codec.decode_senml_paths(b'[{"bn":"/3/0/","n":"9"},{"n":"10"}]', codec.SENML_JSON) == ["/3/0/9", "/3/0/10"]
    with pytest.raises(codec.CodecError):  # a path without a value is no value
        codec.decode_senml(b'[{"n":"/3/0/9"}]', codec.SENML_JSON)


@pytest.mark.parametrize("payload, fmt", [
    (b'{"n":"/3/0/9","v":1}', codec.SENML_JSON),  # not an array
    (b'[{"n":"/3/0/9","v":1', codec.SENML_JSON),  # truncated
    (b'[{"n":"/3/0/9","v":1,"vs":"x"}]', codec.SENML_JSON),  # two values
    (b'[{"n":"3/0/9","v":1}]', codec.SENML_JSON),  # not an absolute path
    (b'[{"n":"/3/zero/9","v":1}]', codec.SENML_JSON),
    (b'[{"n":"/3/0/9","v":"1"}]', codec.SENML_JSON),  # v must be a number
    (b'[{"n":"/3/0/9","vb":1}]', codec.SENML_JSON),  # vb must be a boolean
    (b'[{"n":"/5/0/0","vd":"*"}]', codec.SENML_JSON),  # not base64url
    (b'[{"n":"/11/0/1","vlo":"3"}]', codec.SENML_JSON),  # vlo is "oid:iid"
    (b'[{"n":"/3/0/9","v":1,"x_":1}]', codec.SENML_JSON),  # must-understand field (RFC 8428 §4.4)
    (b'[{"n":"/3/0/9","t":"now","v":1}]', codec.SENML_JSON),
    (b"\x81\xa1\x00", codec.SENML_CBOR),  # truncated CBOR
    (cbor2.dumps([{0: "/5/0/0", 8: "AP8"}]), codec.SENML_CBOR),  # vd in CBOR is a byte string
    (cbor2.dumps([{0: "/3/0/9", 2: 1}]), codec.TLV),  # not SenML at all
])
def test_senml_malformed_payloads_raise(payload, fmt):
    with pytest.raises(codec.CodecError):
        codec.senml_records(payload, fmt)


# --- helpers: a relay that sees the datagrams, an observable fake device --------------------------------

class Relay(asyncio.DatagramProtocol):
    """UDP relay between the fake device (whatever sends to it first) and the server, keeping every
    datagram as (direction "up" device -> server / "down", decoded Message)."""

    def __init__(self, server_port):
        self.server = ("127.0.0.1", server_port)
        self.device = None
        self.seen = []

    async def start(self):
        self.transport, _ = await asyncio.get_running_loop().create_datagram_endpoint(
            lambda: self, local_addr=("127.0.0.1", 0))
        self.port = self.transport.get_extra_info("sockname")[1]
        return self

    def datagram_received(self, data, addr):
        down = addr == self.server
        if not down:
            self.device = addr
        self.seen.append(("down" if down else "up", Message.decode(data)))
        self.transport.sendto(data, self.device if down else self.server)

    def sent(self, direction, mtype=None, code=None):
        return [m for d, m in self.seen if d == direction and mtype in (None, m.mtype) and code in (None, m.code)]


class ObservableSite(aiocoap.resource.ObservableResource):
    """The fake device's whole tree as one observable aiocoap resource: GET reads a resource as text,
    FETCH "/" reads the SenML CBOR path list (parsed with cbor2) and answers SenML CBOR, iPATCH "/"
    answers 2.04. values: path -> value; a path that is not there is 4.04. Every observation
    renders its request again on notify(); reliable picks CON or NON; observable=False answers
    without taking the observation."""

    def __init__(self):
        super().__init__()
        self.values = {}
        self.requests = []
        self.observers = 0
        self.reliable = False
        self.observable = True

    async def add_observation(self, request, serverobservation):
        if self.observable:
            await super().add_observation(request, serverobservation)

    def update_observation_count(self, count):
        self.observers = count

    def notify(self, reliable):
        self.reliable = reliable
        self.updated_state()

    async def render(self, request):
        self.requests.append(request)
        tuning = aiocoap.Reliable if self.reliable else aiocoap.Unreliable
        path = "/" + "/".join(request.opt.uri_path)
        if request.code == Code.FETCH and path == "/":
            paths = [r.get(-2, "") + r.get(0, "") for r in cbor2.loads(request.payload)]
            if any(p not in self.values for p in paths):
                return Message(code=Code.NOT_FOUND, transport_tuning=tuning)
            body = cbor2.dumps([{0: p, (3 if isinstance(self.values[p], str) else 2): self.values[p]} for p in paths])
            return Message(code=Code.CONTENT, payload=body, content_format=codec.SENML_CBOR, transport_tuning=tuning)
        if request.code == Code.iPATCH and path == "/":
            return Message(code=Code.CHANGED)
        if request.code != Code.GET or path not in self.values:
            return Message(code=Code.NOT_FOUND, transport_tuning=tuning)
        return Message(code=Code.CONTENT, payload=str(self.values[path]).encode(), content_format=codec.TEXT,
                       transport_tuning=tuning)


def with_device(test_body):
    """Run `await test_body(server, relay, device)`: a server, a relay, and a fake device with an
    ObservableSite behind the relay, registered as dev1 (with /3303/0/5700 = 20.0); all closed after."""
    async def body():
        server = await lws.LwM2MServer("127.0.0.1", 0, request_timeout=3).start()
        relay = await Relay(server.port).start()
        device = FakeDevice(relay.port)
        device.site = ObservableSite()
        device.site.values["/3303/0/5700"] = 20.0
        try:
            await device.start()
            assert (await device.register(payload=SEND_LINKS)).code == Code.CREATED
            await server.wait_for("register", "dev1", 2)
            await test_body(server, relay, device)
        finally:
            await device.stop()
            relay.transport.close()
            await server.stop()
    run(body)


async def observed_sensor(server, site, reliable):
    """An Observation of /3303/0/5700 that has had one notification (CON if reliable)."""
    obs = await server.observe("dev1", "/3303/0/5700")
    site.notify(reliable)
    await obs.wait_async(1, timeout=2)
    return obs


async def eventually(predicate, timeout=2.0):
    """Wait (bounded) until predicate() holds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met within %s s" % timeout
        await asyncio.sleep(0.01)


# --- composite operations -----------------------------------------------------------------------------

def test_read_composite_and_write_composite_and_senml_read_write():
    async def body(server, relay, device):
        site = device.site
        site.values.update({"/3/0/9": 90, "/3303/0/5700": 23.5, "/3/0/0": "Acme"})
        result = await server.read_composite("dev1", ["/3/0/9", "/3303/0/5700", "/3/0/0"])
        assert result.code == "2.05" and result.content_format == codec.SENML_CBOR
        assert result.value == {"/3/0/9": 90, "/3303/0/5700": 23.5, "/3/0/0": "Acme"}
        request = site.requests[-1]
        assert (request.code, request.opt.uri_path) == (Code.FETCH, ())
        assert (request.opt.content_format, request.opt.accept) == (codec.SENML_CBOR, codec.SENML_CBOR)
        assert cbor2.loads(request.payload) == [{0: "/3/0/9"}, {0: "/3303/0/5700"}, {0: "/3/0/0"}]
        assert (await server.read_composite("dev1", ["/3/0/9", "/4/0"])).code == "4.04"

        result = await server.write_composite("dev1", {"/3303/0/5750": "Kitchen", "/1/0/1": 120,
                                                       "/3303/0/5700": 21}, fmt=codec.SENML_JSON)
        assert result.code == "2.04"
        request = site.requests[-1]
        assert (request.code, request.opt.uri_path, request.opt.content_format) == (
            Code.iPATCH, (), codec.SENML_JSON)
        # 5700 is a Float in the OMA registry: 21 goes out as 21.0 (the Python type without it).
        sensor = 21.0 if server.registry.get(3303) is not None else 21
        assert json.loads(request.payload) == [
            {"n": "/3303/0/5750", "vs": "Kitchen"}, {"n": "/1/0/1", "v": 120}, {"n": "/3303/0/5700", "v": sensor}]
        await server.write_composite("dev1", {"/3303/0/5700": 7}, types={"/3303/0/5700": "integer"})
        assert cbor2.loads(site.requests[-1].payload) == [{-2: "/3303/0/", 0: "5700", 2: 7}]

        # Plain Write in SenML: {rid: value} under an instance becomes records with a base name.
        await server.write("dev1", "/3/0", {14: "+02:00", 16: "U"}, fmt=codec.SENML_JSON)
        assert json.loads(site.requests[-1].payload) == [
            {"bn": "/3/0/", "n": "14", "vs": "+02:00"}, {"n": "16", "vs": "U"}]
    with_device(body)


def test_read_with_senml_accept_decodes_to_paths():
    async def body():
        server, device = await started_pair()
        for path, payload, fmt in (("/3/0", DEVICE_SENML_CBOR, codec.SENML_CBOR),
                                   ("/3/0/0", DEVICE_SENML_JSON, codec.SENML_JSON),
                                   ("/3/0/1", b'[{"n":"/3/0/1"', codec.SENML_JSON)):
            device.site.answers[("GET", path)] = Message(code=Code.CONTENT, payload=payload, content_format=fmt)
        try:
            await device.register()
            await server.wait_for("register", "dev1", 2)
            result = await server.read("dev1", "/3/0", accept=codec.SENML_CBOR)
            assert device.site.requests[-1].opt.accept == codec.SENML_CBOR
            assert result.value == DEVICE_PATHS
            assert (await server.read("dev1", "/3/0/0", accept=codec.SENML_JSON)).value == DEVICE_PATHS
            result = await server.read("dev1", "/3/0/1", accept=codec.SENML_JSON)
            assert result.value is None and "SenML JSON" in result.decode_error
        finally:
            await device.stop()
            await server.stop()
    run(body)


# --- Observe --------------------------------------------------------------------------------------------

def test_observe_records_con_and_non_notifications():
    async def body(server, relay, device):
        site = device.site
        started = time.monotonic()
        obs = await server.observe("dev1", "/3303/0/5700", accept=codec.TEXT)
        assert obs.first.code == "2.05" and obs.first.value == "20.0" and obs.first_seq == 0
        assert obs.active and obs.end_reason is None and obs.paths == ["/3303/0/5700"]
        request = site.requests[-1]
        assert request.opt.observe == 0 and request.opt.accept == codec.TEXT and request.token == obs.token
        assert site.observers == 1

        pattern = [False, False, True, False, False, True]  # "confirmable every 3rd"
        for number, reliable in enumerate(pattern):
            site.values["/3303/0/5700"] = 21.0 + number
            site.notify(reliable)
            await obs.wait_async(number + 1, timeout=2)
        notes = obs.notifications
        assert [n.mtype for n in notes] == ["NON", "NON", "CON", "NON", "NON", "CON"]
        assert [n.seq for n in notes] == [1, 2, 3, 4, 5, 6]
        assert [n.value for n in notes] == ["21.0", "22.0", "23.0", "24.0", "25.0", "26.0"]
        assert all(n.code == "2.05" and n.content_format == codec.TEXT and n.ok for n in notes)
        assert started <= notes[0].time <= notes[-1].time <= time.monotonic()
        assert notes[2].payload == b"23.0" and notes[2].decode_error is None
        # Each CON notification got its empty ACK, no NON got anything.
        await eventually(lambda: len(relay.sent("down", aiocoap.ACK, Code.EMPTY)) == 2)
        acked = {m.mid for m in relay.sent("down", aiocoap.ACK, Code.EMPTY)}
        assert acked == {notes[2].mid, notes[5].mid}
        assert relay.sent("down", aiocoap.RST) == []
        with pytest.raises(TimeoutError, match="6 of 7 notifications"):
            await obs.wait_async(7, timeout=0.2)
        with pytest.raises(RuntimeError, match="await wait_async"):
            obs.wait(1)  # would block this very loop
    with_device(body)


def test_observe_ends_on_error_notification_and_unobservable_answers():
    async def body(server, relay, device):
        site = device.site
        obs = await observed_sensor(server, site, True)
        del site.values["/3303/0/5700"]  # the instance is deleted: the next notification is 4.04
        site.notify(True)
        notes = await obs.wait_async(2, timeout=2)
        assert (notes[-1].code, notes[-1].seq, notes[-1].ok) == ("4.04", None, False)
        assert obs.end_reason == "4.04" and not obs.active
        with pytest.raises(lws.ObservationEnded, match="4.04"):
            await obs.wait_async(3, timeout=1)

        # The first answer is an error, or a plain response: no observation.
        refused = await server.observe("dev1", "/3303/0/5701")
        assert (refused.first.code, refused.first_seq, refused.end_reason) == ("4.04", None, "4.04")
        site.observable = False
        site.values["/3/0/9"] = 90
        unobserved = await server.observe("dev1", "/3/0/9")
        assert (unobserved.first.code, unobserved.first.value, unobserved.first_seq) == ("2.05", "90", None)
        assert unobserved.end_reason == "not observed"
    with_device(body)


def test_proactive_cancel_sends_observe_1_with_the_same_token():
    async def body(server, relay, device):
        site = device.site
        obs = await observed_sensor(server, site, False)
        result = await obs.cancel_async()
        assert result.code == "2.05" and result.value == "20.0"
        cancel = [m for m in relay.sent("down") if m.opt.observe == 1]
        assert len(cancel) == 1
        assert (cancel[0].code, cancel[0].mtype, cancel[0].token, cancel[0].opt.uri_path) == (
            Code.GET, aiocoap.CON, obs.token, ("3303", "0", "5700"))
        assert obs.end_reason == "cancelled" and site.observers == 0
        site.notify(True)  # nobody observes any more: nothing goes out
        await asyncio.sleep(0.1)
        assert [m for m in relay.sent("up") if m.opt.observe is not None and m.opt.observe > 1] == []
        assert len(obs.notifications) == 1
    with_device(body)


@pytest.mark.parametrize("reliable", [False, True], ids=["NON", "CON"])
def test_reactive_cancel_answers_the_next_notification_with_rst(reliable):
    async def body(server, relay, device):
        site = device.site
        obs = await observed_sensor(server, site, reliable)
        assert await obs.cancel_async(proactive=False) is None
        assert obs.end_reason == "forgotten"
        assert [m for m in relay.sent("down") if m.opt.observe == 1] == []  # nothing on the wire yet

        site.values["/3303/0/5700"] = 30.0
        site.notify(reliable)
        await eventually(lambda: relay.sent("down", aiocoap.RST))
        notification = [m for m in relay.sent("up") if m.opt.observe == 2][0]
        reset = relay.sent("down", aiocoap.RST)
        assert [(m.mid, m.code, m.token) for m in reset] == [(notification.mid, Code.EMPTY, b"")]
        assert [n.value for n in obs.rejected] == ["30.0"] and len(obs.notifications) == 1
        if reliable:  # aiocoap drops an observation on RST to a CON notification
            await eventually(lambda: site.observers == 0)
    with_device(body)


def test_deregistration_ends_observations_and_late_notifications_get_rst():
    async def body(server, relay, device):
        obs = await server.observe("dev1", "/3303/0/5700")
        assert (await device.deregister()).code == Code.DELETED
        assert obs.end_reason == "registration ended"
        device.site.notify(False)
        await eventually(lambda: relay.sent("down", aiocoap.RST))
        assert len(obs.rejected) == 1 and obs.notifications == []
    with_device(body)


def test_observe_answered_with_rst_or_not_at_all_by_a_raw_socket():
    """A client on a plain UDP socket: RST to an Observe ends it; an Observe that gets no answer
    times out, and a late answer with its token is then turned away with RST."""
    async def body():
        server = await lws.LwM2MServer("127.0.0.1", 0).start()
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.settimeout(5)
        loop = asyncio.get_running_loop()

        async def receive():  # blocking socket calls in an executor: the server shares this loop
            return Message.decode(await loop.run_in_executor(None, sock.recv, 1500))

        def send(code, mtype, mid, token=b"", observe=None):
            message = Message(code=code, payload=b"1" if code == Code.CONTENT else b"")
            message.mtype, message.mid, message.token, message.opt.observe = mtype, mid, token, observe
            sock.sendto(message.encode(), ("127.0.0.1", server.port))
        try:
            sock.sendto(_coap_bytes(Code.POST, 0x1234, b"t1", ("rd",), ("ep=raw", "lwm2m=1.1"), b"</3303/0>"),
                        ("127.0.0.1", server.port))
            assert (await receive()).code == Code.CREATED
            await server.wait_for("register", "raw", 2)

            async def reset_it():
                request = await receive()
                send(Code.EMPTY, aiocoap.RST, request.mid)
            resetter = asyncio.ensure_future(reset_it())
            obs = await server.observe("raw", "/3303/0/5700", timeout=3)
            await resetter
            assert (obs.first.code, obs.first_seq, obs.end_reason) == ("RST", None, "reset")

            with pytest.raises(TimeoutError):
                await server.observe("raw", "/3303/0/5701", timeout=0.3)
            request = await receive()
            assert request.opt.observe == 0 and request.opt.uri_path == ("3303", "0", "5701")
            send(Code.CONTENT, aiocoap.NON, 0x2000, request.token, observe=0)
            reset = await receive()
            assert (reset.mtype, reset.mid, reset.code) == (aiocoap.RST, 0x2000, Code.EMPTY)
        finally:
            sock.close()
            await server.stop()
    run(body)


def test_observe_composite_and_its_cancel():
    async def body(server, relay, device):
        site = device.site
        site.values.update({"/3303/0/5700": 20.5, "/3/0/9": 90})
        seen = []
        server.on_notify = lambda observation, report: seen.append((observation, report))
        obs = await server.observe_composite("dev1", ["/3303/0/5700", "3/0/9"])
        assert obs.path == "/" and obs.paths == ["/3303/0/5700", "/3/0/9"]
        assert obs.first.value == {"/3303/0/5700": 20.5, "/3/0/9": 90} and obs.first_seq == 0
        request = site.requests[-1]
        assert (request.code, request.opt.uri_path, request.opt.observe) == (Code.FETCH, (), 0)
        assert cbor2.loads(request.payload) == [{0: "/3303/0/5700"}, {0: "/3/0/9"}]

        site.values["/3/0/9"] = 89
        site.notify(True)
        notes = await obs.wait_async(1, timeout=2)
        assert notes[0].value == {"/3303/0/5700": 20.5, "/3/0/9": 89} and notes[0].mtype == "CON"
        assert seen == [(obs, obs.first), (obs, notes[0])]  # in arrival order

        result = await obs.cancel_async()
        assert result.code == "2.05" and result.value == {"/3303/0/5700": 20.5, "/3/0/9": 89}
        cancel = [m for m in relay.sent("down") if m.opt.observe == 1][0]
        assert (cancel.code, cancel.token, cancel.payload, cancel.opt.content_format) == (
            Code.FETCH, obs.token, request.payload, codec.SENML_CBOR)
        assert site.observers == 0
    with_device(body)


# --- Send -------------------------------------------------------------------------------------------------

def test_send_records_an_event_and_answers_by_the_spec():
    async def body():
        server, device = await started_pair()
        stranger = await FakeDevice(server.port, "stranger").start()  # another socket, not registered
        try:
            await device.register(payload=SEND_LINKS)
            await server.wait_for("register", "dev1", 2)
            cbor_body = cbor2.dumps([{-2: "/3303/0/", -3: 1700000000, 0: "5700", 2: 23.5},
                                     {-2: "/3/0/", 0: "9", 2: 90}])
            started = time.time()
            response = await device.send(Code.POST, "/dp", payload=cbor_body, content_format=codec.SENML_CBOR)
            assert response.code == Code.CHANGED
            event = await server.wait_for("send", "dev1", 1)
            assert (event.kind, event.endpoint, event.content_format, event.mtype) == (
                "send", "dev1", codec.SENML_CBOR, "CON")
            assert event.values == {"/3303/0/5700": 23.5, "/3/0/9": 90} and event.payload == cbor_body
            assert event.records[0] == codec.SenMLRecord("/3303/0/5700", 23.5, 1700000000)
            assert started <= event.time <= time.time()

            # NON and SenML JSON; the answer is NON too.
            message = Message(code=Code.POST, uri=device.server + "/dp", payload=b'[{"n":"/3303/0/5700","v":24}]',
                              content_format=codec.SENML_JSON, transport_tuning=aiocoap.Unreliable)
            response = await asyncio.wait_for(device.context.request(message).response, 5)
            assert response.code == Code.CHANGED
            event = await server.wait_for("send", None, 1)
            assert (event.values, event.mtype, event.content_format) == ({"/3303/0/5700": 24}, "NON", codec.SENML_JSON)

            async def send(payload, content_format, sender=device):
                return (await sender.send(Code.POST, "/dp", payload=payload, content_format=content_format)).code
            assert await send(b"23.5", codec.TEXT) == Code.UNSUPPORTED_CONTENT_FORMAT
            assert await send(b"[{", codec.SENML_JSON) == Code.BAD_REQUEST
            assert await send(b'[{"n":"/3/0/9"}]', codec.SENML_JSON) == Code.BAD_REQUEST  # no value
            assert await send(b'[{"n":"/3303/1/5700","v":1}]', codec.SENML_JSON) == Code.NOT_FOUND
            assert await send(b'[{"n":"/4/0/2","v":1}]', codec.SENML_JSON) == Code.NOT_FOUND
            assert await send(cbor_body, codec.SENML_CBOR, stranger) == Code.BAD_REQUEST
            assert (await device.send(Code.GET, "/dp")).code == Code.METHOD_NOT_ALLOWED
            assert [e.kind for e in server.events].count("send") == 2

            line = lws.describe_event(server.events[-1], None, server.registry)
            assert line in ("send ep=dev1 /3303/0/5700 Sensor Value = 24", "send ep=dev1 /3303/0/5700 = 24")
        finally:
            await stranger.stop()
            await device.stop()
            await server.stop()
    run(body)


# --- blocking wrapper and CLI ------------------------------------------------------------------------------

def test_server_thread_observe_wait_and_cancel():
    device_loop = LoopThread()
    try:
        with lws.ServerThread(request_timeout=3) as server:
            relay = device_loop.run(Relay(server.port).start())
            device = FakeDevice(relay.port)
            device.site = site = ObservableSite()
            device_loop.run(device.start())
            site.values.update({"/3303/0/5700": 20.0, "/3/0/9": 90})
            try:
                device_loop.run(device.register(payload=SEND_LINKS))
                server.wait_for("register", "dev1", 2)
                obs = server.observe("dev1", "/3303/0/5700")
                assert obs.first.value == "20.0" and obs.active
                for count, reliable in enumerate((False, True), 1):
                    device_loop.loop.call_soon_threadsafe(site.notify, reliable)
                    notes = obs.wait(count, timeout=3)  # one at a time: aiocoap merges quick triggers
                assert [n.mtype for n in notes] == ["NON", "CON"]
                with pytest.raises(TimeoutError, match="2 of 3"):
                    obs.wait(3, timeout=0.2)
                assert obs.cancel().code == "2.05" and obs.end_reason == "cancelled"

                composite = server.observe_composite("dev1", ["/3/0/9"])
                assert composite.first.value == {"/3/0/9": 90}
                assert composite.cancel(proactive=False) is None
                device_loop.loop.call_soon_threadsafe(site.notify, False)
                deadline = time.monotonic() + 3
                while not composite.rejected and time.monotonic() < deadline:
                    time.sleep(0.01)
                assert len(composite.rejected) == 1
                assert server.read_composite("dev1", ["/3/0/9"]).value == {"/3/0/9": 90}
                assert server.write_composite("dev1", {"/3/0/9": 80}).code == "2.04"
            finally:
                device_loop.run(device.stop())
                relay.transport.close()
    finally:
        device_loop.close()


def test_cli_observes_after_register_and_prints_notifications_and_sends():
    with CliServer("--read-every", "0", "--observe", "/3303/0/5700") as cli:
        async def body():
            device = FakeDevice(cli.port, "cli-obs")
            device.site = site = ObservableSite()
            await device.start()
            site.values["/3303/0/5700"] = 23.5
            try:
                assert (await device.register(payload=SEND_LINKS)).code == Code.CREATED
                await eventually(lambda: site.observers == 1, timeout=5)
                site.values["/3303/0/5700"] = 24.5
                site.notify(True)
                await device.send(Code.POST, "/dp", payload=b'[{"n":"/3303/0/5700","v":25.5}]',
                                  content_format=codec.SENML_JSON)
                await device.deregister()
            finally:
                await device.stop()
        run(body)

        name = r"( Sensor Value)?"  # without the registry: just the path
        cli.read_until(r"^observe ep=cli-obs /3303/0/5700%s = 23\.5 \(seq 0\)$" % name)
        cli.read_until(r"^notify ep=cli-obs /3303/0/5700%s = 24\.5 \(seq 1\)$" % name)
        cli.read_until(r"^send ep=cli-obs /3303/0/5700%s = 25\.5$" % name)
        cli.read_until(r"^deregister ep=cli-obs")
        assert cli.interrupt() == 0
