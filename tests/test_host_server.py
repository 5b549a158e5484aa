"""Tests of the host-side LwM2M server (tools/lwm2m_server.py) and its codecs (tools/lwm2m_codec.py):
TLV / text / link-format vectors from the LwM2M 1.1 Core spec, and the server driven by a small
aiocoap fake device on loopback. CPython only; every wait is bounded."""
import asyncio
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import aiocoap
import aiocoap.resource
import pytest
from aiocoap import Code, Message

ROOT = Path(__file__).resolve().parent.parent
sys.path.append(str(ROOT / "tools"))  # appended: tools/ must not shadow other modules

import lwm2m_codec as codec  # noqa: E402
import lwm2m_server as lws  # noqa: E402

TEST_TIMEOUT = 20  # seconds, whole async test

# --- vectors ---------------------------------------------------------------------------------------------

# LwM2M 1.1 Core §7.4.5.2 A): Read /3/0 of the example client's Device object, TLV (121 octets).
DEVICE_TLV = bytes.fromhex(
    "C800144F70656E204D6F62696C6520416C6C69616E6365"  # 0 Manufacturer "Open Mobile Alliance"
    "C801164C69676874776569676874204D324D20436C69656E74"  # 1 Model Number "Lightweight M2M Client"
    "C80209333435303030313233"  # 2 Serial Number "345000123"
    "C303312E30"  # 3 Firmware Version "1.0"
    "86064100014101" "05"  # 6 Available Power Sources {0: 1, 1: 5}
    "88070842000ED842011388"  # 7 Power Source Voltage {0: 3800, 1: 5000}
    "870841007D42010384"  # 8 Power Source Current {0: 125, 1: 900}
    "C10964"  # 9 Battery Level 100
    "C10A0F"  # 10 Memory Free 15
    "830B410000"  # 11 Error Code {0: 0}
    "C40D5182428F"  # 13 Current Time 1367491215
    "C60E2B30323A3030"  # 14 UTC Offset "+02:00"
    "C11055"  # 16 Supported Binding and Modes "U"
)
DEVICE_TYPES = {0: "string", 1: "string", 2: "string", 3: "string", 6: "integer", 7: "integer",
                8: "integer", 9: "integer", 10: "integer", 11: "integer", 13: "time", 14: "string",
                16: "string"}
DEVICE_VALUES = {0: "Open Mobile Alliance", 1: "Lightweight M2M Client", 2: "345000123", 3: "1.0",
                 6: {0: 1, 1: 5}, 7: {0: 3800, 1: 5000}, 8: {0: 125, 1: 900}, 9: 100, 10: 15,
                 11: {0: 0}, 13: 1367491215, 14: "+02:00", 16: "U"}

# LwM2M 1.1 Core §7.4.5.2 B): Read /2, two Access Control object instances (38 octets); the second
# ACL has a resource instance id of 310, which needs a 16-bit identifier (0x61 0x01 0x36).
ACCESS_CONTROL_TLV = bytes.fromhex(
    "08000E" "C10001" "C10100" "8302417F07" "C1037F"
    "080212" "C10003" "C10100" "8702417F0761013601" "C1037F")
ACCESS_CONTROL_VALUES = {0: {0: 1, 1: 0, 2: {127: 7}, 3: 127},
                         2: {0: 3, 1: 0, 2: {127: 7, 310: 1}, 3: 127}}
INTEGERS = {0: "integer", 1: "integer", 2: "integer", 3: "integer"}

REGISTER_LINKS = b'</>;rt="oma.lwm2m";ct=11543,</1/0>,</3/0>'


# --- TLV codec ------------------------------------------------------------------------------------------

def test_tlv_device_example_decodes_and_reencodes_byte_exact():
    assert len(DEVICE_TLV) == 0x79
    assert codec.decode_tlv(DEVICE_TLV, DEVICE_TYPES) == DEVICE_VALUES
    assert codec.encode_tlv_resources(DEVICE_VALUES, DEVICE_TYPES) == DEVICE_TLV


def test_tlv_device_example_inside_object_instance():
    # Read /3 wraps the same resources in one Object Instance TLV: 0x08, id 0, 8-bit length 0x79.
    wrapped = bytes.fromhex("080079") + DEVICE_TLV
    assert codec.encode_tlv_instances({0: DEVICE_VALUES}, DEVICE_TYPES) == wrapped
    assert codec.decode_tlv(wrapped, DEVICE_TYPES) == {0: DEVICE_VALUES}


def test_tlv_access_control_example():
    assert len(ACCESS_CONTROL_TLV) == 38
    assert codec.decode_tlv(ACCESS_CONTROL_TLV, INTEGERS) == ACCESS_CONTROL_VALUES
    assert codec.encode_tlv_instances(ACCESS_CONTROL_VALUES, INTEGERS) == ACCESS_CONTROL_TLV


def test_tlv_untyped_values_stay_bytes():
    assert codec.decode_tlv(bytes.fromhex("C10964" "830B410000")) == {9: b"\x64", 11: {0: b"\x00"}}


def test_tlv_header_length_and_identifier_sizes():
    # §7.4.3: lengths < 8 sit in bits 2-0; else an 8/16/24-bit length field (bits 4-3 = 01/10/11).
    assert codec.tlv_entry(codec.RESOURCE, 1, b"x" * 7) == b"\xc7\x01" + b"x" * 7
    assert codec.tlv_entry(codec.RESOURCE, 1, b"x" * 8) == b"\xc8\x01\x08" + b"x" * 8
    assert codec.tlv_entry(codec.RESOURCE, 1, b"x" * 255)[:3] == b"\xc8\x01\xff"
    assert codec.tlv_entry(codec.RESOURCE, 1, b"x" * 256)[:4] == b"\xd0\x01\x01\x00"
    assert codec.tlv_entry(codec.RESOURCE, 1, b"x" * 65536)[:5] == b"\xd8\x01\x01\x00\x00"
    # Bit 5: 16-bit identifier above 255.
    assert codec.tlv_entry(codec.RESOURCE, 255, b"") == b"\xc0\xff"
    assert codec.tlv_entry(codec.RESOURCE, 256, b"") == b"\xe0\x01\x00"
    assert codec.tlv_entry(codec.OBJECT_INSTANCE, 0x1234, b"ab") == b"\x22\x12\x34ab"
    for size in (0, 7, 8, 255, 256, 65535, 65536):
        data = codec.tlv_entry(codec.RESOURCE_INSTANCE, 300, bytes(size))
        assert codec.tlv_split(data) == [(codec.RESOURCE_INSTANCE, 300, bytes(size))]


def test_tlv_value_types():
    enc = codec.encode_tlv_value
    assert enc(0, "integer") == b"\x00"
    assert enc(127, "integer") == b"\x7f"
    assert enc(128, "integer") == b"\x00\x80"  # two's complement: 128 needs 2 bytes
    assert enc(-129, "integer") == b"\xff\x7f"
    assert enc(2 ** 31, "integer") == b"\x00\x00\x00\x00\x80\x00\x00\x00"
    assert enc(255, "unsigned") == b"\xff"
    assert enc(1.5, "float") == b"\x3f\xc0\x00\x00"
    assert enc(0.1, "float") == bytes.fromhex("3FB999999999999A")
    assert enc(True, "boolean") == b"\x01"
    assert enc((3, 0), "objlnk") == b"\x00\x03\x00\x00"
    assert enc("héllo", "string") == "héllo".encode()
    dec = codec.decode_tlv_value
    assert dec(b"\xff\x7f", "integer") == -129
    assert dec(b"\xff", "unsigned") == 255
    assert dec(b"\x3f\xc0\x00\x00", "float") == 1.5
    assert dec(bytes.fromhex("3FB999999999999A"), "Float") == 0.1
    assert dec(b"\x00", "Boolean") is False
    assert dec(b"\x00\x03\x00\x01", "Objlnk") == (3, 1)
    assert dec(b"\x51\x82\x42\x8f", "Time") == 1367491215
    with pytest.raises(codec.CodecError):
        dec(b"\x00\x00\x00", "integer")  # 3 bytes is no integer size
    with pytest.raises(codec.CodecError):
        dec(b"\x02", "boolean")


def test_tlv_malformed_payloads_raise():
    for bad in (b"\xc8", b"\xc8\x00", b"\xc8\x00\x05abc", b"\xc3\x00ab", b"\xe0\x01"):
        with pytest.raises(codec.CodecError):
            codec.tlv_split(bad)
    with pytest.raises(codec.CodecError):  # a Multiple Resource may only hold Resource Instances
        codec.decode_tlv(b"\x83\x06\xc1\x00\x01")
    with pytest.raises(codec.CodecError):  # Object Instance and Resource side by side
        codec.decode_tlv(b"\x00\x00\xc1\x00\x01")


# --- text, link format, paths -----------------------------------------------------------------------------

def test_text_codec():
    assert codec.encode_text(-5) == b"-5"
    assert codec.encode_text(True) == b"1"
    assert codec.encode_text(1.25) == b"1.25"
    assert codec.encode_text((1, 0)) == b"1:0"
    assert codec.encode_text(b"\x00\xff", "opaque") == b"AP8="  # 1.1: opaque text is base64
    assert codec.decode_text(b"Open Mobile Alliance") == "Open Mobile Alliance"
    assert codec.decode_text(b"42", "Integer") == 42
    assert codec.decode_text(b"0", "Boolean") is False
    assert codec.decode_text(b"3:0", "Objlnk") == (3, 0)
    assert codec.decode_text(b"AP8=", "Opaque") == b"\x00\xff"
    with pytest.raises(codec.CodecError):
        codec.decode_text(b"x", "integer")


def test_link_format_parse_and_format():
    links = codec.parse_links(REGISTER_LINKS)
    assert links == [("/", {"rt": "oma.lwm2m", "ct": "11543"}), ("/1/0", {}), ("/3/0", {})]
    assert codec.format_links(links).encode() == REGISTER_LINKS
    # Quoted values may hold separators; a parameter without "=" is a flag.
    assert codec.parse_links('</3/0>;rt="a,b;c";obs, </3/0/1>;pmin=10') == [
        ("/3/0", {"rt": "a,b;c", "obs": None}), ("/3/0/1", {"pmin": "10"})]
    assert codec.parse_links(b"") == []
    for bad in ("/3/0", "</3/0", '</3/0>;rt="x', "</3/0> </4/0>"):
        with pytest.raises(codec.CodecError):
            codec.parse_links(bad)


def test_paths_and_execute_arguments():
    assert codec.parse_path("/3/0/1") == (3, 0, 1)
    assert codec.parse_path("/") == ()
    with pytest.raises(ValueError):
        codec.parse_path("/3/x")
    assert codec.execute_arguments({0: "v", 1: None}) == b"0='v',1"
    assert codec.execute_arguments(None) == b""


# --- a fake LwM2M device on aiocoap -------------------------------------------------------------------------

class DeviceResource(aiocoap.resource.Resource):
    """Answers every request from a table {(method, "/path"): Message or callable}; 4.04 otherwise.
    Keeps every request for the test to inspect."""

    def __init__(self):
        super().__init__()
        self.requests = []
        self.answers = {}

    async def render(self, request):
        self.requests.append(request)
        # Like an LwM2M client: an unrecognised critical (odd-numbered) option gets 4.02 (RFC 7252
        # §5.4.1). aiocoap itself lets them through (it knows 9 as OSCORE).
        if any(o.number in (9, 65001) for o in request.opt.option_list()):
            return Message(code=Code.BAD_OPTION)
        key = (request.code.name, "/" + "/".join(request.opt.uri_path))
        answer = self.answers.get(key)
        if answer is None:
            return Message(code=Code.NOT_FOUND)
        if callable(answer):
            answer = answer(request)
            if asyncio.iscoroutine(answer):
                answer = await answer
        # A fresh copy each time: aiocoap stamps message ID and token on what it sends.
        response = Message(code=answer.code, payload=answer.payload)
        for option in answer.opt.option_list():
            response.opt.add_option(option)
        return response


class FakeDevice:
    """An LwM2M client stand-in: one aiocoap UDP socket on loopback that registers with the server
    and serves the server's requests."""

    def __init__(self, server_port, endpoint="dev1", host="127.0.0.1"):
        self.server = "coap://%s:%d" % (host, server_port)
        self.endpoint = endpoint
        self.host = host
        self.site = DeviceResource()
        self.context = None
        self.location = None

    async def start(self):
        self.context = await aiocoap.Context.create_server_context(
            self.site, bind=(self.host, 0), transports=["udp6"])
        self.port = lws._bound_port(self.context)
        return self

    async def stop(self):
        await self.context.shutdown()

    async def send(self, code, path, query=(), payload=b"", content_format=None):
        message = Message(code=code, uri=self.server + path, payload=payload)
        if query:
            message.opt.uri_query = tuple(query)
        if content_format is not None:
            message.opt.content_format = content_format
        return await asyncio.wait_for(self.context.request(message).response, 10)

    async def register(self, query=None, payload=REGISTER_LINKS):
        query = query if query is not None else ("ep=" + self.endpoint, "lt=300", "lwm2m=1.1", "b=U")
        response = await self.send(Code.POST, "/rd", query, payload, codec.LINK)
        if response.code == Code.CREATED:
            self.location = "/" + "/".join(response.opt.location_path)
        return response

    async def update(self, query=(), payload=b""):
        return await self.send(Code.POST, self.location, query, payload, codec.LINK if payload else None)

    async def deregister(self):
        return await self.send(Code.DELETE, self.location)


def run(coroutine_function, timeout=TEST_TIMEOUT):
    """Run an async test body in a fresh loop, bounded in time."""
    async def bounded():
        return await asyncio.wait_for(coroutine_function(), timeout)
    return asyncio.run(bounded())


async def started_pair(endpoint="dev1"):
    server = await lws.LwM2MServer("127.0.0.1", 0, request_timeout=5).start()
    device = await FakeDevice(server.port, endpoint).start()
    return server, device


# --- registration interface ---------------------------------------------------------------------------------

def test_register_update_deregister_lifecycle():
    async def body():
        server, device = await started_pair()
        try:
            response = await device.register()
            assert response.code == Code.CREATED
            location = response.opt.location_path
            assert len(location) == 2 and location[0] == "rd"  # two Location-Path options

            event = await server.wait_for("register", "dev1", timeout=2)
            assert (event.kind, event.location, event.lifetime, event.binding, event.version) == (
                "register", location[1], 300, "U", "1.1")
            reg = server.registration("dev1")
            assert reg.links == codec.parse_links(REGISTER_LINKS)
            assert reg.objects == ["/1/0", "/3/0"]
            assert reg.address == ("127.0.0.1", device.port)

            # Update with only lt=120 and no body.
            response = await device.update(("lt=120",))
            assert response.code == Code.CHANGED
            event = await server.wait_for("update", "dev1", timeout=2)
            assert event.query == {"lt": "120"} and event.has_body is False
            assert reg.lifetime == 120 and reg.updates[-1].query == {"lt": "120"}

            # Update with a new object list.
            response = await device.update(payload=b"</1/0>,</3/0>,</3303/0>")
            assert response.code == Code.CHANGED
            event = await server.wait_for("update", "dev1", timeout=2)
            assert event.has_body and reg.objects == ["/1/0", "/3/0", "/3303/0"]

            response = await device.deregister()
            assert response.code == Code.DELETED
            await server.wait_for("deregister", "dev1", timeout=2)
            assert server.registration("dev1") is None
            assert [e.kind for e in server.events_for("dev1")] == ["register", "update", "update", "deregister"]

            # The registration is gone: Update and De-register now get 4.04.
            assert (await device.update()).code == Code.NOT_FOUND
            assert (await device.deregister()).code == Code.NOT_FOUND
        finally:
            await device.stop()
            await server.stop()
    run(body)


def test_register_rejections_mirror_leshan():
    async def body():
        server, device = await started_pair()
        try:
            cases = [
                (("lt=300", "lwm2m=1.1"), REGISTER_LINKS, Code.BAD_REQUEST),  # no ep
                (("ep=x", "lt=300"), REGISTER_LINKS, Code.BAD_REQUEST),  # no lwm2m
                (("ep=x", "lwm2m=2.0"), REGISTER_LINKS, Code.PRECONDITION_FAILED),
                (("ep=x", "lwm2m=1.1", "lt=abc"), REGISTER_LINKS, Code.BAD_REQUEST),
                (("ep=x", "lwm2m=1.1", "b=X"), REGISTER_LINKS, Code.BAD_REQUEST),
                (("ep=x", "lwm2m=1.1"), b"</1/0", Code.BAD_REQUEST),
                (("ep=x", "lwm2m=1.1"), b"", Code.BAD_REQUEST),
            ]
            for query, payload, expected in cases:
                response = await device.register(query, payload)
                assert response.code == expected, (query, payload, response)
            assert server.registrations == {} and server.events == []

            # LwM2M 1.0, defaults: lt 86400, binding U; sms and a Q-less binding are kept.
            response = await device.register(("ep=old", "lwm2m=1.0", "sms=+1234", "b=US"))
            assert response.code == Code.CREATED
            reg = server.registration("old")
            assert (reg.version, reg.lifetime, reg.binding, reg.sms, reg.queue_mode) == (
                "1.0", 86400, "US", "+1234", False)
            response = await device.register(("ep=q", "lwm2m=1.1", "Q"))
            assert server.registration("q").queue_mode is True

            # Wrong method or path.
            assert (await device.send(Code.GET, "/rd")).code == Code.METHOD_NOT_ALLOWED
            assert (await device.send(Code.POST, "/bogus")).code == Code.NOT_FOUND
            assert (await device.send(Code.POST, "/rd/nope")).code == Code.NOT_FOUND
        finally:
            await device.stop()
            await server.stop()
    run(body)


def test_register_again_replaces_old_registration():
    async def body():
        server, device = await started_pair()
        try:
            await device.register()
            first = (await server.wait_for("register", "dev1", 2)).location
            await device.register()
            second = await server.wait_for("register", "dev1", 2)
            assert second.location != first and second.replaced == first
            assert list(server.registrations) == [second.location]
        finally:
            await device.stop()
            await server.stop()
    run(body)


def test_registration_expires_after_lifetime():
    async def body():
        server, device = await started_pair()
        try:
            await device.register(("ep=short", "lt=1", "lwm2m=1.1"))
            started = time.monotonic()
            event = await server.wait_for("expire", "short", timeout=5)
            assert 0.9 <= time.monotonic() - started < 4
            assert event.lifetime == 1 and server.registration("short") is None
        finally:
            await device.stop()
            await server.stop()
    run(body)


def test_wait_for_times_out_and_returns_each_event_once():
    async def body():
        server, device = await started_pair()
        try:
            with pytest.raises(TimeoutError):
                await server.wait_for("register", "dev1", timeout=0.2)
            await device.register()
            await device.update(("lt=60",))
            await device.update(("lt=70",))
            assert (await server.wait_for("update", "dev1", 1)).query == {"lt": "60"}
            assert (await server.wait_for("update", None, 1)).query == {"lt": "70"}
            with pytest.raises(TimeoutError):
                await server.wait_for("update", "dev1", timeout=0.2)
            with pytest.raises(ValueError):
                await server.wait_for("bogus")
        finally:
            await device.stop()
            await server.stop()
    run(body)


# --- device management --------------------------------------------------------------------------------------

def test_read_tlv_text_and_discover():
    async def body():
        server, device = await started_pair()
        answers = device.site.answers
        answers[("GET", "/3/0")] = Message(code=Code.CONTENT, payload=DEVICE_TLV, content_format=codec.TLV)
        answers[("GET", "/3/0/0")] = Message(code=Code.CONTENT, payload=b"Open Mobile Alliance",
                                             content_format=codec.TEXT)
        answers[("GET", "/3/0/6")] = Message(code=Code.CONTENT, payload=bytes.fromhex("86064100014101" "05"),
                                             content_format=codec.TLV)
        answers[("GET", "/3/0/6/1")] = Message(code=Code.CONTENT, payload=b"\x41\x01\x05",
                                               content_format=codec.TLV)
        answers[("GET", "/2")] = Message(code=Code.CONTENT, payload=ACCESS_CONTROL_TLV, content_format=codec.TLV)
        answers[("GET", "/3")] = Message(code=Code.CONTENT, payload=b"</3/0/0>,</3/0/9>;pmin=10",
                                         content_format=codec.LINK)
        answers[("GET", "/5/0/0")] = Message(code=Code.CONTENT, payload=b"\xc8\x00", content_format=codec.TLV)
        big = bytes(range(256)) * 12  # 3072 bytes: aiocoap's fake answers in Block2 pieces
        answers[("GET", "/5/0/1")] = Message(code=Code.CONTENT, payload=big, content_format=codec.OPAQUE)
        try:
            await device.register()
            await server.wait_for("register", "dev1", 2)

            result = await server.read("dev1", "/3/0", accept=lws.TLV)
            assert (result.code, result.content_format, result.payload) == ("2.05", codec.TLV, DEVICE_TLV)
            assert result.ok and result.value == server.decode(DEVICE_TLV, codec.TLV, (3, 0))
            assert device.site.requests[-1].opt.accept == codec.TLV
            if server.registry.get(3) is not None:  # ../shared/oma-registry present: typed values
                assert result.value == DEVICE_VALUES

            result = await server.read("dev1", "/3/0/0")
            assert result.value == "Open Mobile Alliance" and result.content_format == codec.TEXT
            assert device.site.requests[-1].opt.accept is None

            result = await server.read("dev1", "/3/0/6")
            assert set(result.value) == {6} and set(result.value[6]) == {0, 1}
            result = await server.read("dev1", "/3/0/6/1")
            assert set(result.value) == {6} and set(result.value[6]) == {1}  # {rid: {riid: value}}

            result = await server.read("dev1", "/2")
            assert set(result.value) == {0, 2} and set(result.value[2][2]) == {127, 310}

            result = await server.discover("dev1", "/3")
            assert device.site.requests[-1].opt.accept == codec.LINK
            assert result.value == [("/3/0/0", {}), ("/3/0/9", {"pmin": "10"})]

            result = await server.read("dev1", "/5/0/0")  # malformed TLV: reported, not raised
            assert result.code == "2.05" and result.value is None and "truncated" in result.decode_error

            result = await server.read("dev1", "/5/0/1")  # block-wise: reassembled
            assert result.value == big and result.content_format == codec.OPAQUE
            first_block = await server.raw("dev1", "GET", "/5/0/1")  # raw: no block-wise handling
            assert first_block.code == "2.05" and first_block.payload == big[:1024]

            result = await server.read("dev1", "/4/0")  # the fake answers 4.04
            assert result.code == "4.04" and not result.ok
        finally:
            await device.stop()
            await server.stop()
    run(body)


def test_write_execute_create_delete_write_attributes():
    async def body():
        server, device = await started_pair()
        answers = device.site.answers
        for method, path in (("PUT", "/1/0/1"), ("PUT", "/3/0"), ("POST", "/3/0"), ("PUT", "/3/0/14"),
                             ("POST", "/3/0/4"), ("PUT", "/3/0/9"), ("PUT", "/5/0/0")):
            answers[(method, path)] = Message(code=Code.CHANGED)
        answers[("POST", "/3/0/4")] = Message(code=Code.CHANGED)
        answers[("POST", "/3303")] = Message(code=Code.CREATED, location_path=("3303", "1"))
        answers[("DELETE", "/3303/1")] = Message(code=Code.DELETED)
        try:
            await device.register()
            await server.wait_for("register", "dev1", 2)
            requests = device.site.requests

            result = await server.write("dev1", "/1/0/1", 120)  # a single value: text by default
            assert result.code == "2.04"
            assert (requests[-1].code, requests[-1].payload, requests[-1].opt.content_format) == (
                Code.PUT, b"120", codec.TEXT)

            await server.write("dev1", "/3/0", {14: "+02:00", 16: "U"}, type={14: "string", 16: "string"})
            assert requests[-1].code == Code.PUT and requests[-1].opt.content_format == codec.TLV
            assert requests[-1].payload == bytes.fromhex("C60E2B30323A3030" "C11055")

            await server.write("dev1", "/3/0", {14: "+02:00"}, replace=False)  # partial update
            assert requests[-1].code == Code.POST

            await server.write("dev1", "/3/0/14", "+01:00", fmt=lws.TLV)
            assert requests[-1].payload == b"\xc6\x0e+01:00"

            result = await server.write("dev1", "/5/0/0", b"\x01\x02")  # bytes go out as they are
            assert requests[-1].payload == b"\x01\x02" and requests[-1].opt.content_format == codec.OPAQUE
            assert result.ok and result.value is None

            image = bytes(range(256)) * 10  # larger than one block: sent with Block1, reassembled
            assert (await server.write("dev1", "/5/0/0", image)).code == "2.04"
            assert requests[-1].payload == image

            result = await server.execute("dev1", "/3/0/4")
            assert result.code == "2.04" and requests[-1].code == Code.POST and requests[-1].payload == b""
            await server.execute("dev1", "/3/0/4", {0: "now", 1: None})
            assert requests[-1].payload == b"0='now',1"

            result = await server.create("dev1", "/3303", {5700: 21.5}, type={5700: "float"})
            assert result.code == "2.01" and result.location == "/3303/1"
            assert requests[-1].payload == codec.tlv_entry(codec.RESOURCE, 5700, b"\x41\xac\x00\x00")
            await server.create("dev1", "/3303", {5700: 21.5}, instance_id=7, type={5700: "float"})
            assert codec.tlv_split(requests[-1].payload)[0][:2] == (codec.OBJECT_INSTANCE, 7)

            assert (await server.delete("dev1", "/3303/1")).code == "2.02"
            assert requests[-1].code == Code.DELETE

            result = await server.write_attributes("dev1", "/3/0/9", pmin=10, pmax=60, gt=None)
            assert result.code == "2.04"
            assert requests[-1].code == Code.PUT and requests[-1].payload == b""
            assert requests[-1].opt.uri_query == ("pmin=10", "pmax=60", "gt")

            with pytest.raises(lws.NotRegistered):
                await server.read("nobody", "/3/0")
        finally:
            await device.stop()
            await server.stop()
    run(body)


def test_raw_requests_show_the_clients_code():
    async def body():
        server, device = await started_pair()
        device.site.answers[("GET", "/3/0/0")] = lambda request: Message(
            code=Code.NOT_ACCEPTABLE if request.opt.accept not in (None, 0) else Code.CONTENT)
        device.site.answers[("PUT", "/3/0/0")] = lambda request: Message(
            code=Code.UNSUPPORTED_CONTENT_FORMAT if request.opt.content_format != 0 else Code.CHANGED)
        try:
            await device.register()
            await server.wait_for("register", "dev1", 2)
            # Unrecognised critical options go on the wire as given; the fake answers 4.02.
            assert (await server.raw("dev1", "GET", "/3/0/0", options=[(9, b"x")])).code == "4.02"
            sent = device.site.requests[-1].opt.option_list()
            assert [(o.number, o.value) for o in sent if o.number == 9] == [(9, b"x")]
            assert (await server.raw("dev1", 1, "/3/0/0", options=[(65001, 1)])).code == "4.02"
            assert any(o.number == 65001 for o in device.site.requests[-1].opt.option_list())
            assert (await server.raw("dev1", "0.01", "/3/0/0", accept=9999)).code == "4.06"
            assert (await server.raw("dev1", "PUT", "/3/0/0", b"x", content_format=12345)).code == "4.15"
            assert (await server.raw("dev1", "GET", "/3/0/0", confirmable=False)).code == "2.05"
        finally:
            await device.stop()
            await server.stop()
    run(body)


def test_alternate_root_path_prefixes_requests():
    async def body():
        server, device = await started_pair()
        device.site.answers[("GET", "/lwm2m/3/0/0")] = Message(code=Code.CONTENT, payload=b"ok",
                                                               content_format=codec.TEXT)
        try:
            await device.register(payload=b'</lwm2m>;rt="oma.lwm2m",</lwm2m/1/0>,</lwm2m/3/0>')
            await server.wait_for("register", "dev1", 2)
            assert server.registration("dev1").objects == ["/1/0", "/3/0"]
            assert (await server.read("dev1", "/3/0/0")).value == "ok"
        finally:
            await device.stop()
            await server.stop()
    run(body)


def _coap_bytes(code, mid, token, path=(), query=(), payload=b"", mtype=aiocoap.CON):
    message = Message(code=code, payload=payload)
    message.mtype, message.mid, message.token = mtype, mid, token
    message.opt.uri_path = tuple(path)
    message.opt.uri_query = tuple(query)
    return message.encode()


def test_silent_client_times_out_and_reset_is_reported():
    """A client on a plain UDP socket: registers by hand, then first ignores a request (the read
    must give up after its timeout) and then answers one with RST."""
    async def body():
        server = await lws.LwM2MServer("127.0.0.1", 0).start()
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.settimeout(5)
        loop = asyncio.get_running_loop()
        try:
            sock.sendto(_coap_bytes(Code.POST, 0x1234, b"t1", ("rd",), ("ep=raw", "lwm2m=1.1"), b"</3/0>"),
                        ("127.0.0.1", server.port))
            # Blocking socket calls run in an executor: the server shares this event loop.
            ack = Message.decode(await loop.run_in_executor(None, sock.recv, 1500))
            assert ack.code == Code.CREATED and ack.mid == 0x1234
            await server.wait_for("register", "raw", 2)

            started = time.monotonic()
            with pytest.raises(TimeoutError):
                await server.read("raw", "/3/0", timeout=0.5)
            assert time.monotonic() - started < 2

            ignored = Message.decode(await loop.run_in_executor(None, sock.recv, 1500))
            assert ignored.opt.uri_path == ("3", "0")

            async def reset_next():
                # The next datagram is the new read, not a retransmission of the abandoned one
                # (which would also hold the new read back: aiocoap sends one CON at a time).
                request = Message.decode(await loop.run_in_executor(None, sock.recv, 1500))
                assert request.opt.uri_path == ("3", "0", "1")
                reset = Message(code=Code.EMPTY)
                reset.mtype, reset.mid = aiocoap.RST, request.mid
                sock.sendto(reset.encode(), ("127.0.0.1", server.port))
            resetter = asyncio.ensure_future(reset_next())
            result = await server.read("raw", "/3/0/1", timeout=5)
            await resetter
            assert result.code == "RST" and result.value is None

            # The client's socket is gone: ICMP port unreachable ends the read early (or it times out).
            sock.close()
            started = time.monotonic()
            with pytest.raises((ConnectionError, TimeoutError)):
                await server.read("raw", "/3/0", timeout=3)
            assert time.monotonic() - started < 4
        finally:
            sock.close()
            await server.stop()
    run(body)


# --- the blocking wrapper -------------------------------------------------------------------------------------

class LoopThread:
    """An event loop in a thread, for running the async fake device next to a ServerThread."""

    def __init__(self):
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coroutine, timeout=10):
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def close(self):
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


def test_server_thread_blocking_api():
    device_loop = LoopThread()
    try:
        with lws.ServerThread() as server:
            assert server.port > 0 and server.host == "127.0.0.1"
            assert server.uri == "coap://127.0.0.1:%d" % server.port
            device = device_loop.run(FakeDevice(server.port).start())
            device.site.answers[("GET", "/3/0")] = Message(code=Code.CONTENT, payload=DEVICE_TLV,
                                                           content_format=codec.TLV)
            try:
                device_loop.run(device.register())
                event = server.wait_for("register", "dev1", timeout=2)
                assert event.endpoint == "dev1"
                reg = server.registration("dev1")
                assert reg.objects == ["/1/0", "/3/0"] and list(server.registrations) == [reg.location]
                result = server.read("dev1", "/3/0", accept=lws.TLV)
                assert result.code == "2.05" and result.payload == DEVICE_TLV
                assert result.value[0] in ("Open Mobile Alliance", b"Open Mobile Alliance")
                assert server.read("dev1", "/9/9", timeout=3).code == "4.04"
                with pytest.raises(TimeoutError):
                    server.wait_for("update", "dev1", 0.2)
                device_loop.run(device.update(("lt=120",)))
                assert server.wait_for("update", "dev1", 2).query == {"lt": "120"}
                assert [e.kind for e in server.events] == ["register", "update"]
            finally:
                device_loop.run(device.stop())
        assert server.port is not None  # stopped cleanly; stop() again is harmless
        server.stop()
    finally:
        device_loop.close()


def test_server_thread_binds_loopback_only_and_exclusively():
    with pytest.raises(ValueError):
        lws.ServerThread(host="0.0.0.0")
    with pytest.raises(ValueError):
        lws.ServerThread(host="192.168.1.10")
    with lws.ServerThread() as first:
        # A second server on the same port must fail, not share it (aiocoap sets SO_REUSEPORT).
        second = lws.ServerThread(port=first.port)
        with pytest.raises(OSError):
            second.start()
        # Nothing else may bind it either: the socket is really on 127.0.0.1:port.
        probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            with pytest.raises(OSError):
                probe.bind(("127.0.0.1", first.port))
        finally:
            probe.close()
    try:
        probe6 = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        probe6.bind(("::1", 0))
        probe6.close()
    except OSError:
        return  # no IPv6 loopback here
    with lws.ServerThread(host="::1") as v6:
        assert v6.port > 0 and v6.uri == "coap://[::1]:%d" % v6.port


# --- the CLI ------------------------------------------------------------------------------------------------

class CliServer:
    """tools/lwm2m_server.py as a child process on a free port (.port); read_until() waits, bounded,
    for an output line matching a pattern. A context manager: leaving it kills what is left."""

    def __init__(self, *args):
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        self.process = subprocess.Popen(
            [sys.executable, str(ROOT / "tools" / "lwm2m_server.py"), "--port", "0", *args],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
        self.lines = []

    def __enter__(self):
        try:
            self.port = int(self.read_until(r"port (\d+)").group(1))
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc):
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(5)
        self.process.stdout.close()

    def read_until(self, pattern, timeout=10):
        deadline = time.monotonic() + timeout
        result = {}

        def reader():
            for line in self.process.stdout:
                self.lines.append(line.rstrip("\n"))
                match = re.search(pattern, line)
                if match:
                    result["match"] = match
                    return
        thread = threading.Thread(target=reader, daemon=True)
        thread.start()
        thread.join(max(0, deadline - time.monotonic()))
        assert "match" in result, "no %r in CLI output:\n%s" % (pattern, "\n".join(self.lines))
        return result["match"]

    def interrupt(self):
        """Ctrl-C; the exit status."""
        self.process.send_signal(signal.SIGINT)
        return self.process.wait(10)


def test_cli_prints_events_and_device_resources():
    with CliServer("--read-every", "0") as cli:
        async def body():
            device = await FakeDevice(cli.port, "cli-dev").start()
            device.site.answers[("GET", "/3/0")] = Message(code=Code.CONTENT, payload=DEVICE_TLV,
                                                           content_format=codec.TLV)
            try:
                assert (await device.register()).code == Code.CREATED
                # The CLI reads /3/0 half a second after the Register; serve it, then deregister.
                for _ in range(50):
                    if any(r.opt.uri_path == ("3", "0") for r in device.site.requests):
                        break
                    await asyncio.sleep(0.1)
                await asyncio.sleep(0.2)
                await device.deregister()
            finally:
                await device.stop()
        run(body)

        cli.read_until(r"^register ep=cli-dev lt=300 b=U lwm2m=1\.1 objects=</1/0>,</3/0>")
        line = cli.read_until(r"^  /3/0/0 ")
        assert line.string.rstrip("\n") in ("  /3/0/0 Manufacturer = Open Mobile Alliance",
                                            "  /3/0/0 = 0x4f70656e204d6f62696c6520416c6c69616e6365")  # no registry
        cli.read_until(r"^  /3/0/6/1 .*= 5$")
        cli.read_until(r"^deregister ep=cli-dev")
        assert cli.interrupt() == 0


def test_lwm2m_cbor_decoder():
    # {3: {0: {0: "Acme", 7: {0: 3800, 1: 5000}}}} and the same with an array key for /3/0
    nested = bytes.fromhex("a1 03 a1 00 a2 00 64 41636d65 07 a2 00 19 0ed8 01 19 1388".replace(" ", ""))
    flat = bytes.fromhex("a1 82 03 00 a2 00 64 41636d65 07 a2 00 19 0ed8 01 19 1388".replace(" ", ""))
    want = {"/3/0/0": "Acme", "/3/0/7/0": 3800, "/3/0/7/1": 5000}
    assert codec.decode_lwm2m_cbor(nested) == want
    assert codec.decode_lwm2m_cbor(flat) == want
    with pytest.raises(codec.CodecError):
        codec.decode_lwm2m_cbor(bytes.fromhex("a10301"))  # a value at object level
