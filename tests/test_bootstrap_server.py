"""Tests of the host-side LwM2M Bootstrap-Server (tools/bootstrap_server.py): an aiocoap context on
loopback plays the device, sending Bootstrap-Request from the socket that then serves the server's
Delete / Write / Discover / Read / Finish; payloads are checked with the host codecs. CPython only;
every wait is bounded."""
import asyncio
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import NamedTuple, Optional

import aiocoap
import aiocoap.resource
import pytest
from aiocoap import Code, Message

ROOT = Path(__file__).resolve().parent.parent
sys.path.append(str(ROOT / "tools"))  # appended: tools/ must not shadow other modules

import bootstrap_server as bss  # noqa: E402
import lwm2m_codec as codec  # noqa: E402
import lwm2m_server as lws  # noqa: E402

TEST_TIMEOUT = 20  # seconds, whole async test
KEY = "000102030405060708090a0b0c0d0e0f"
DISCOVER_LINKS = b'</>;lwm2m=1.1,</0/0>,</1>;ver=1.1,</3/0>'
SERVER_TLV = codec.encode_tlv_instances({0: {0: 101, 1: 300, 6: True, 7: "U"}}, bss.OBJECT_TYPES[1])

FULL = {
    "discover": True,
    "delete": ["/"],
    "read": ["/1"],
    "security": {"0": {"uri": "coap://127.0.0.1:5783", "bootstrap": True, "mode": 3},
                 "1": {"uri": "coaps://127.0.0.1:5684", "bootstrap": False, "mode": 0,
                       "identity": "dev1", "key": KEY, "ssid": 101}},
    "servers": {"0": {"ssid": 101, "lifetime": 300, "binding": "U"}},
    "acl": {"0": {"object": 3, "instance": 0, "acl": {"101": 1, "0": 1}, "owner": 101}},
    "writes": {"/3/0/14": "+01"},
}
MINIMAL = {"security": {"1": {"uri": "coap://127.0.0.1:5683", "ssid": 101}},
           "servers": {"0": {"ssid": 101, "lifetime": 60}}}


# --- a fake device on aiocoap --------------------------------------------------------------------------------

class Seen(NamedTuple):
    method: str
    path: str
    content_format: Optional[int]
    accept: Optional[int]
    payload: bytes
    answered: bool  # the device had the answer to its Bootstrap-Request when this request came


class DeviceSite(aiocoap.resource.Resource):
    """Records every request; answers like a cooperative client (Delete 2.02, Write and Finish 2.04,
    Discover 2.05 link format, Read 2.05 TLV) unless answers[(method, path)] says otherwise: a
    Message, or HANG (an empty ACK, then no answer)."""

    HANG = "hang"

    def __init__(self):
        super().__init__()
        self.requests = []
        self.answers = {}
        self.bootstrap_answer = None  # the future of the device's own Bootstrap-Request

    async def render(self, request):
        path = "/" + "/".join(request.opt.uri_path)
        cf, accept = request.opt.content_format, request.opt.accept
        answered = self.bootstrap_answer is not None and self.bootstrap_answer.done()
        self.requests.append(Seen(request.code.name, path, None if cf is None else int(cf),
                                  None if accept is None else int(accept), bytes(request.payload), answered))
        answer = self.answers.get((request.code.name, path))
        if answer == self.HANG:
            await asyncio.sleep(TEST_TIMEOUT)  # cancelled when the test's event loop closes
            return Message(code=Code.CHANGED)
        if answer is not None:
            return Message(code=answer.code, payload=answer.payload)  # fresh: aiocoap stamps what it sends
        if request.code == Code.DELETE:
            return Message(code=Code.DELETED)
        if request.code == Code.PUT or (request.code == Code.POST and path == "/bs"):
            return Message(code=Code.CHANGED)
        if request.code == Code.GET and accept == codec.LINK:
            return Message(code=Code.CONTENT, payload=DISCOVER_LINKS, content_format=codec.LINK)
        if request.code == Code.GET and path == "/1":
            return Message(code=Code.CONTENT, payload=SERVER_TLV, content_format=codec.TLV)
        return Message(code=Code.NOT_FOUND)


class FakeDevice:
    """One aiocoap UDP socket on loopback: sends the Bootstrap-Request and serves what follows."""

    def __init__(self):
        self.site = DeviceSite()
        self.context = None

    async def start(self):
        self.context = await aiocoap.Context.create_server_context(
            self.site, bind=("127.0.0.1", 0), transports=["udp6"])
        self.port = lws._bound_port(self.context)
        return self

    async def stop(self):
        await self.context.shutdown()

    async def bootstrap(self, server_port, query=("ep=dev1",)):
        message = Message(code=Code.POST, uri="coap://127.0.0.1:%d/bs" % server_port)
        message.opt.uri_query = tuple(query)
        request = self.context.request(message)
        self.site.bootstrap_answer = request.response
        return await asyncio.wait_for(request.response, 5)

    def seen(self):
        return [(r.method, r.path) for r in self.site.requests]


def run(coroutine_function, timeout=TEST_TIMEOUT):
    async def bounded():
        return await asyncio.wait_for(coroutine_function(), timeout)
    return asyncio.run(bounded())


async def wait_for(server, kind, endpoint="dev1", timeout=5):
    """The blocking BootstrapServerThread.wait_for without blocking the device's loop."""
    return await asyncio.to_thread(server.wait_for, kind, endpoint, timeout)


def with_device(body):
    """Run body(device) against a fresh FakeDevice in a fresh event loop."""
    async def main():
        device = await FakeDevice().start()
        try:
            return await body(device)
        finally:
            await device.stop()
    return run(main)


# --- the sequence -------------------------------------------------------------------------------------------

def test_tlv_sequence_order_and_payloads():
    with bss.BootstrapServerThread(config={"dev1": FULL}) as server:
        async def body(device):
            response = await device.bootstrap(server.port)
            assert response.code == Code.CHANGED
            request = await wait_for(server, "request")
            assert (request.endpoint, request.pct, request.code, request.address) == (
                "dev1", None, "2.04", ("127.0.0.1", device.port))
            finished = await wait_for(server, "finished")
            assert (finished.code, finished.diagnostic) == ("2.04", None)
            return device.site.requests
        seen = with_device(body)

        assert [(r.method, r.path, r.content_format, r.accept) for r in seen] == [
            ("GET", "/", None, codec.LINK),
            ("DELETE", "/", None, None),
            ("PUT", "/0/0", codec.TLV, None),
            ("PUT", "/0/1", codec.TLV, None),
            ("PUT", "/1/0", codec.TLV, None),
            ("PUT", "/2/0", codec.TLV, None),
            ("PUT", "/3/0/14", codec.TEXT, None),
            ("GET", "/1", None, codec.TLV),
            ("POST", "/bs", None, None),
        ]
        assert all(r.answered for r in seen)  # nothing came before the 2.04 to the Bootstrap-Request
        payloads = {r.path: r.payload for r in seen}

        # Resources at the top level (no Object Instance TLV around them), each in its own type.
        security = payloads["/0/1"]
        assert {kind for kind, _, _ in codec.tlv_split(security)} == {codec.RESOURCE}
        assert codec.decode_tlv(security) == {  # raw bytes: the exact encoding of each value
            0: b"coaps://127.0.0.1:5684", 1: b"\x00", 2: b"\x00", 3: b"dev1", 4: b"", 5: bytes.fromhex(KEY),
            10: b"\x65"}
        assert codec.decode_tlv(payloads["/0/0"], bss.OBJECT_TYPES[0]) == {
            0: "coap://127.0.0.1:5783", 1: True, 2: 3, 3: b"", 4: b"", 5: b""}  # no ssid: bootstrap account
        assert codec.decode_tlv(payloads["/1/0"], bss.OBJECT_TYPES[1]) == {0: 101, 1: 300, 6: True, 7: "U"}
        assert codec.decode_tlv(payloads["/2/0"], bss.OBJECT_TYPES[2]) == {0: 3, 1: 0, 2: {0: 1, 101: 1}, 3: 101}
        assert payloads["/3/0/14"] == b"+01"

        steps = server.steps("dev1")
        assert [(s.op, s.path, s.code) for s in steps] == [
            ("discover", "/", "2.05"), ("delete", "/", "2.02"), ("write", "/0/0", "2.04"),
            ("write", "/0/1", "2.04"), ("write", "/1/0", "2.04"), ("write", "/2/0", "2.04"),
            ("write", "/3/0/14", "2.04"), ("read", "/1", "2.05"), ("finish", "/bs", "2.04")]
        assert steps[0].value == codec.parse_links(DISCOVER_LINKS)
        assert steps[7].value == {0: {0: 101, 1: 300, 6: True, 7: "U"}}
        assert steps[3].sent == security and steps[3].sent_format == codec.TLV
        assert [e.kind for e in server.events_for("dev1")] == ["request"] + ["step"] * 9 + ["finished"]
        assert server.requests == {"dev1": 1}


def test_senml_json_and_cbor_writes():
    config = {"dev1": dict(MINIMAL, format="senml-json", security={"1": FULL["security"]["1"]}),
              "*": MINIMAL}  # no format: the request's pct decides
    with bss.BootstrapServerThread(config=config) as server:
        async def body(device):
            assert (await device.bootstrap(server.port)).code == Code.CHANGED
            await wait_for(server, "finished")
            json_requests = list(device.site.requests)
            assert (await device.bootstrap(server.port, ("ep=other", "pct=112"))).code == Code.CHANGED
            request = await wait_for(server, "request", "other")
            assert request.pct == 112 and request.query == {"ep": "other", "pct": "112"}
            await wait_for(server, "finished", "other")
            return json_requests, device.site.requests[len(json_requests):]
        json_requests, cbor_requests = with_device(body)

    assert [(r.method, r.path, r.content_format) for r in json_requests] == [
        ("DELETE", "/", None), ("PUT", "/0/1", codec.SENML_JSON), ("PUT", "/1/0", codec.SENML_JSON),
        ("POST", "/bs", None)]
    security = json_requests[1].payload
    assert codec.decode_senml(security, codec.SENML_JSON) == {
        "/0/1/0": "coaps://127.0.0.1:5684", "/0/1/1": False, "/0/1/2": 0, "/0/1/3": b"dev1", "/0/1/4": b"",
        "/0/1/5": bytes.fromhex(KEY), "/0/1/10": 101}
    records = json.loads(security)
    assert records[0]["bn"] == "/0/1/"
    fields = {record["n"]: set(record) - {"bn", "n"} for record in records}
    assert fields == {"0": {"vs"}, "1": {"vb"}, "2": {"v"}, "3": {"vd"}, "4": {"vd"}, "5": {"vd"}, "10": {"v"}}
    assert codec.decode_senml(json_requests[2].payload, codec.SENML_JSON) == {
        "/1/0/0": 101, "/1/0/1": 60, "/1/0/6": True, "/1/0/7": "U"}

    assert [(r.path, r.content_format) for r in cbor_requests if r.method == "PUT"] == [
        ("/0/1", codec.SENML_CBOR), ("/1/0", codec.SENML_CBOR)]
    assert codec.decode_senml(cbor_requests[1].payload, codec.SENML_CBOR) == {
        "/0/1/0": "coap://127.0.0.1:5683", "/0/1/1": False, "/0/1/2": 3, "/0/1/3": b"", "/0/1/4": b"",
        "/0/1/5": b"", "/0/1/10": 101}


def test_refused_requests_start_nothing():
    with bss.BootstrapServerThread(config={"dev1": MINIMAL}) as server:
        async def body(device):
            response = await device.bootstrap(server.port, ("ep=nobody",))
            assert (response.code, response.payload) == (Code.BAD_REQUEST, b"unknown endpoint nobody")
            response = await device.bootstrap(server.port, ())
            assert response.code == Code.BAD_REQUEST and response.payload == b"missing ep"
            response = await device.bootstrap(server.port, ("ep=dev1", "pct=tlv"))
            assert response.code == Code.BAD_REQUEST
            message = Message(code=Code.GET, uri="coap://127.0.0.1:%d/bs" % server.port)
            assert (await asyncio.wait_for(device.context.request(message).response, 5)).code == \
                Code.METHOD_NOT_ALLOWED
            event = await wait_for(server, "request", "nobody")
            assert (event.code, event.diagnostic) == ("4.00", "unknown endpoint nobody")
            await asyncio.sleep(0.3)  # time for a sequence that must not come
            assert device.site.requests == []
        with_device(body)
        assert server.requests == {"nobody": 1, "dev1": 1}
        assert server.steps("nobody") == [] and server.steps("dev1") == []


def test_finish_refused_with_reason():
    with bss.BootstrapServerThread(config={"dev1": MINIMAL}) as server:
        async def body(device):
            device.site.answers[("POST", "/bs")] = Message(code=Code.NOT_ACCEPTABLE,
                                                           payload=b"no LwM2M server account")
            assert (await device.bootstrap(server.port)).code == Code.CHANGED
            return await wait_for(server, "finished")
        finished = with_device(body)
        assert (finished.code, finished.diagnostic) == ("4.06", "no LwM2M server account")
        last = server.steps("dev1")[-1]
        assert (last.op, last.code, last.value, last.ok) == ("finish", "4.06", "no LwM2M server account", False)


def test_errors_and_timeouts_are_recorded_and_the_sequence_goes_on():
    with bss.BootstrapServerThread(config={"dev1": MINIMAL}, request_timeout=1.0) as server:
        async def body(device):
            device.site.answers[("PUT", "/0/1")] = Message(code=Code.BAD_REQUEST, payload=b"bad uri")
            device.site.answers[("PUT", "/1/0")] = DeviceSite.HANG
            device.site.answers[("POST", "/bs")] = DeviceSite.HANG
            started = time.monotonic()
            assert (await device.bootstrap(server.port)).code == Code.CHANGED
            finished = await wait_for(server, "finished", timeout=8)
            return finished, time.monotonic() - started, device.seen()
        finished, elapsed, seen = with_device(body)
        assert seen == [("DELETE", "/"), ("PUT", "/0/1"), ("PUT", "/1/0"), ("POST", "/bs")]
        assert [(s.op, s.path, s.code, s.value) for s in server.steps("dev1")] == [
            ("delete", "/", "2.02", None), ("write", "/0/1", "4.00", "bad uri"), ("write", "/1/0", "timeout", None),
            ("finish", "/bs", "no answer", None)]
        assert finished.code == "no answer"
        assert elapsed < 5  # two 1 s timeouts, nothing held back behind the unanswered requests


def test_silent_device_gets_every_step_in_turn():
    """A device that never even ACKs: each step times out and is abandoned, so the next request goes
    out at once (aiocoap would otherwise hold it back for ~93 s behind the retransmitted CON)."""
    with bss.BootstrapServerThread(config={"*": MINIMAL}, request_timeout=0.5) as server:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            sock.bind(("127.0.0.1", 0))
            sock.settimeout(3)
            request = Message(code=Code.POST, uri_path=("bs",), uri_query=("ep=silent",),
                              _mtype=aiocoap.CON, _mid=0x1234, _token=b"\x42")
            sock.sendto(request.encode(), ("127.0.0.1", server.port))
            answer = Message.decode(sock.recv(1500))
            assert (answer.mtype, answer.mid, answer.code) == (aiocoap.ACK, 0x1234, Code.CHANGED)
            seen = []
            deadline = time.monotonic() + 5
            while len({mid for mid, _ in seen}) < 4 and time.monotonic() < deadline:
                message = Message.decode(sock.recv(1500))
                seen.append((message.mid, (message.code.name, "/" + "/".join(message.opt.uri_path))))
            # Still open: a closed port would turn the Finish into an ICMP error, not a timeout.
            finished = server.wait_for("finished", "silent", timeout=5)
        finally:
            sock.close()
        assert list(dict(seen).values()) == [("DELETE", "/"), ("PUT", "/0/1"), ("PUT", "/1/0"), ("POST", "/bs")]
        assert finished.code == "no answer"
        assert [s.code for s in server.steps("silent")] == ["timeout", "timeout", "timeout", "no answer"]


def test_requests_are_counted_and_each_run_kept():
    with bss.BootstrapServerThread(config={"dev1": dict(MINIMAL, delete=["/0", "/1"], finish=False)}) as server:
        async def body(device):
            for _ in range(2):
                assert (await device.bootstrap(server.port)).code == Code.CHANGED
                for _ in range(4):
                    await wait_for(server, "step")
            return device.seen()
        seen = with_device(body)
        assert seen == [("DELETE", "/0"), ("DELETE", "/1"), ("PUT", "/0/1"), ("PUT", "/1/0")] * 2  # no Finish
        assert server.requests == {"dev1": 2}
        assert len(server.steps("dev1", run=0)) == 4 and len(server.steps("dev1", run=None)) == 8
        assert [e.kind for e in server.events if e.kind != "step"] == ["request", "request"]


# --- configuration and CLI ----------------------------------------------------------------------------------

def test_config_checks():
    entry = bss.load_config({"dev1": FULL})["dev1"]
    assert entry["security"][1] == {0: "coaps://127.0.0.1:5684", 1: False, 2: 0, 3: b"dev1", 4: b"",
                                    5: bytes.fromhex(KEY), 10: 101}
    assert entry["acl"][0][2] == {0: 1, 101: 1}
    for bad in ({"dev1": {"securty": {}}},  # a typo
                {"dev1": {"security": {"1": {"uri": "coap://x", "key": "zz"}}}},
                {"dev1": {"servers": {"0": {"lifetime": 60}}}},  # no ssid
                {"dev1": {"servers": {"0": {"ssid": 1, "storing": "yes"}}}},
                {"dev1": {"format": "xml"}},
                {"dev1": {"writes": {"/3/0": "x"}}},
                {"dev1": {"delete": "/"}}):
        with pytest.raises(ValueError):
            bss.load_config(bad)
    with pytest.raises(ValueError):
        bss.BootstrapServerThread(host="0.0.0.0")


def test_cli_options_build_a_one_server_config(tmp_path):
    args = bss._parser().parse_args(["--psk-server", "coaps://127.0.0.1:5684", "--psk-id", "dev-x",
                                     "--psk-key", "a1b2", "--ssid", "7", "--lifetime", "120"])
    config = bss.config_from_args(args)
    assert config == {"*": {"security": {"1": {"uri": "coaps://127.0.0.1:5684", "bootstrap": False, "ssid": 7,
                                               "mode": 0, "identity": "dev-x", "key": "a1b2"}},
                            "servers": {"0": {"ssid": 7, "lifetime": 120, "binding": "U"}}}}
    entry = bss.load_config(config)["*"]
    assert (entry["security"][1][3], entry["security"][1][5]) == (b"dev-x", b"\xa1\xb2")
    assert bss.psk_config("coap://127.0.0.1:5683")["*"]["security"]["1"]["mode"] == 3  # NoSec
    for argv in (["--psk-server", "coaps://127.0.0.1:5684"],  # coaps without a key
                 ["--psk-server", "coaps://h", "--psk-id", "x"],
                 []):  # neither --config nor --psk-server
        with pytest.raises(ValueError):
            bss.config_from_args(bss._parser().parse_args(argv))
    path = tmp_path / "bs.json"
    path.write_text(json.dumps({"dev1": MINIMAL}))
    assert bss.config_from_args(bss._parser().parse_args(["--config", str(path)])) == {"dev1": MINIMAL}

    help_text = subprocess.run([sys.executable, str(ROOT / "tools" / "bootstrap_server.py"), "--help"],
                               capture_output=True, text=True, timeout=30)
    assert help_text.returncode == 0 and "--psk-server" in help_text.stdout


def test_cli_prints_one_line_per_event():
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "tools" / "bootstrap_server.py"), "--port", "0", "--psk-server",
         "coaps://127.0.0.1:5684", "--psk-id", "cli-dev", "--psk-key", "0011"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    lines = []
    done = threading.Event()

    def reader():
        for line in process.stdout:
            lines.append(line.rstrip("\n"))
            if line.startswith("finished"):
                done.set()
    thread = threading.Thread(target=reader, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not any("port" in line for line in lines) and time.monotonic() < deadline:
            time.sleep(0.05)
        port = int(re.search(r"port (\d+)", lines[0]).group(1))

        async def body(device):
            assert (await device.bootstrap(port, ("ep=cli-dev",))).code == Code.CHANGED
            assert await asyncio.to_thread(done.wait, 10)
        with_device(body)
        process.send_signal(signal.SIGINT)
        assert process.wait(10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(5)
        thread.join(5)
        process.stdout.close()
    assert re.match(r"request ep=cli-dev addr=127\.0\.0\.1:\d+ -> 2\.04$", lines[1]), lines
    assert [re.sub(r"\d+ bytes", "N bytes", line) for line in lines[2:7]] == [
        "step ep=cli-dev delete / -> 2.02",
        "step ep=cli-dev write /0/1 (11542, N bytes) -> 2.04",
        "step ep=cli-dev write /1/0 (11542, N bytes) -> 2.04",
        "step ep=cli-dev finish /bs -> 2.04",
        "finished ep=cli-dev -> 2.04"], lines

