"""Objects 4 Connectivity Monitoring (lwm2m_mpy/objects/conn.py) and 6 Location (objects/location.py) on the
sans-IO client over real CoAP messages: the host's bearer and address, a stand-in `network` module for a
WiFi board, refreshes that notify; a gnss part's fixes, the 3GPP TS 23.032 velocity bytes worked out by
hand, the instance appearing at the first fix. Runs under CPython and inside micropython."""
import sys

from lwm2m_mpy.objects import conn, location
from test_observe import CONTENT, CONTENT_FORMAT, GET, TLV, Device, opt

MPY = True
MPY_HEAP = "256k"

NOT_FOUND = 132
OPAQUE = 42


def text(d, path):
    r = d.ask(GET, path)
    assert r.code == CONTENT, (path, r.code)
    return bytes(r.payload()).decode()


# --- 4 Connectivity Monitoring -----------------------------------------------------------------------

def test_host_reports_ethernet_and_its_address_towards_the_server():
    d = Device()  # the server is coap://127.0.0.1:5683: the host reaches it from 127.0.0.1
    inst = conn.make(d.c, 4, 0, None, {})
    assert text(d, "/4/0/0") == "41" and text(d, "/4/0/1/0") == "41"
    assert text(d, "/4/0/2") == "0"  # mandatory; no radio on a wire
    assert text(d, "/4/0/4/0") == "127.0.0.1"
    r = d.ask(GET, "/4/0", accept=TLV)  # every mandatory resource reads, in one instance
    p = bytes(r.payload())
    assert r.code == CONTENT and int.from_bytes(opt(r, CONTENT_FORMAT), "big") == TLV
    assert p.startswith(b"\xc1\x00\x29")  # resource 0, one byte: 41
    # multiple resource 1 (type 0b10, 3 bytes: length in the type byte = 0x83) holding resource instance 0
    # (0b01, 1 byte: 0x41) = 41
    assert b"\x83\x01\x41\x00\x29" in p
    # multiple resource 4, 12 bytes (8-bit length field: 0x88 .. 0x0C) holding instance 0, 9 bytes (0x48 .. 0x09)
    assert b"\x88\x04\x0c\x48\x00\x09127.0.0.1" in p
    assert inst.poll(0) == 30000


def test_cfg_overrides_bearer_and_address():
    d = Device()
    conn.make(d.c, 4, 0, None, {"bearer": 42, "ip": "192.0.2.7"})
    assert text(d, "/4/0/0") == "42" and text(d, "/4/0/4/0") == "192.0.2.7"


def test_own_ip_names_an_address_or_says_it_cannot():
    assert conn.own_ip("coap://127.0.0.1:5683") == "127.0.0.1"
    assert conn.own_ip("coaps://127.0.0.1") == "127.0.0.1"
    assert conn.own_ip(None) == "0.0.0.0"


class FakeWLAN:
    """MicroPython's network.WLAN as far as conn.py uses it."""

    rssi = -61
    addr = ("192.168.1.23", "255.255.255.0", "192.168.1.1", "192.168.1.1")

    def __init__(self, which):
        assert which == 0

    def status(self, what):
        assert what == "rssi"
        return FakeWLAN.rssi

    def ifconfig(self):
        return FakeWLAN.addr


class FakeNetwork:
    STA_IF = 0
    WLAN = FakeWLAN


def test_wifi_board_rssi_address_router_and_notified_refresh():
    sys.modules["network"] = FakeNetwork
    try:
        d = Device()
        inst = conn.make(d.c, 4, 0, None, {"every": 10})
    finally:
        del sys.modules["network"]
    assert text(d, "/4/0/0") == "21" and text(d, "/4/0/2") == "-61"
    assert text(d, "/4/0/4/0") == "192.168.1.23" and text(d, "/4/0/5/0") == "192.168.1.1"
    d.observe("/4/0/2")
    assert inst.poll(d.t) == 10000
    assert d.run(1000) == []  # the same signal: nothing to say
    FakeWLAN.rssi = -70
    assert inst.poll(d.t + 5000) == 4000  # not due yet: the last look was at 0
    assert d.run(2000) == []
    inst.poll(d.t + 10000)
    assert d.values(d.run(3000)) == [(2100, "-70")]
    FakeWLAN.rssi = -61


# --- 6 Location ----------------------------------------------------------------------------------------

class FakeGnss:
    """A gnss part: poll() reads the receiver, fix() the last position or None."""

    def __init__(self):
        self.f = None
        self.polls = 0

    def poll(self):
        self.polls += 1

    def fix(self):
        return self.f


def test_velocity_is_3gpp_horizontal_velocity():
    # 3GPP TS 23.032 §8.12: octet 1 = velocity type 0 (bits 8-5), 3 spare bits, bit 1 = bearing bit 9;
    # octet 2 = bearing bits 8-1; octets 3-4 = horizontal speed in km/h.
    # 10 m/s = 36 km/h = 0x0024; bearing 270 = 0b1_0000_1110: octet 1 = 0x01, octet 2 = 0x0E.
    assert location.velocity(10.0, 270) == b"\x01\x0e\x00\x24"
    # 3 m/s = 10.8 km/h, rounded to 11 = 0x000B; bearing 89.9 is in [89, 90): 89 = 0x59.
    assert location.velocity(3.0, 89.9) == b"\x00\x59\x00\x0b"
    # a bearing of -90.5 (atan2's range) is 269.5: 269 = 0x10D.
    assert location.velocity(0, -90.5) == b"\x01\x0d\x00\x00"
    # 20000 m/s = 72000 km/h: beyond 16 bits, all ones.
    assert location.velocity(20000, 0) == b"\x00\x00\xff\xff"


def test_instance_appears_at_the_first_fix_with_every_resource():
    d = Device()
    gnss = FakeGnss()
    inst = location.make(d.c, 6, 0, gnss, {})
    assert inst.poll(0) == 100 and gnss.polls == 1
    assert d.ask(GET, "/6/0").code == NOT_FOUND  # no position yet: no instance
    d.c.reg.want_update = False
    gnss.f = (52.0907, 5.1214, 12.5, 10.0, 1767225600, 270.0)
    inst.poll(100)
    assert d.c.reg.want_update  # the new instance goes to the server with an Update
    assert text(d, "/6/0/0") == "52.0907" and text(d, "/6/0/1") == "5.1214"
    assert text(d, "/6/0/2") == "12.5" and text(d, "/6/0/6") == "10.0"
    assert text(d, "/6/0/5") == "1767225600"
    r = d.ask(GET, "/6/0/4")
    assert int.from_bytes(opt(r, CONTENT_FORMAT), "big") == OPAQUE
    assert bytes(r.payload()) == b"\x01\x0e\x00\x24"  # 270 degrees, 36 km/h (worked out above)


def test_bearing_from_successive_fixes_and_notified_changes():
    d = Device()
    gnss = FakeGnss()
    inst = location.make(d.c, 6, 0, gnss, {"every": 1})
    gnss.f = (0.0, 0.0, 0.0, 0.0, 1000)
    inst.poll(0)
    d.observe("/6/0/1")
    d.observe("/6/0/4", token=b"\x02")
    gnss.f = (0.0, 0.001, 0.0, 5.5, 1001)  # due east along the equator at 19.8 km/h
    inst.poll(500)  # not due
    assert d.run(600) == []
    inst.poll(1000)
    got = d.run(1100)
    assert sorted((m.token(), bytes(m.payload())) for _, m in got) == [
        (2, b"\x00\x5a\x00\x14"),  # bearing 90 = 0x5A, 20 km/h = 0x14
        (0xAA, b"0.001")]
    gnss.f = (-0.001, 0.001, 0.0, 5.5, 1002)  # then due south: bearing 180 = 0xB4
    inst.poll(2000)
    got = d.run(2100)
    assert [bytes(m.payload()) for _, m in got] == [b"\x00\xb4\x00\x14"]  # longitude unchanged: not sent
    inst.poll(3000)  # the same fix again: nothing
    assert d.run(3200) == []


def test_fixed_position_without_a_receiver():
    d = Device()
    inst = location.make(d.c, 6, 0, None, {"lat": 48.8584, "lon": 2.2945, "alt": 35})
    assert text(d, "/6/0/0") == "48.8584" and text(d, "/6/0/2") == "35.0"
    assert int(text(d, "/6/0/5")) > 0
    assert inst.poll(0) == 100
