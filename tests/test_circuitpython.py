"""The CircuitPython path of the library, run under CPython: the client in a child process (this file run as
a script) whose sys.modules has CircuitPython's networking modules and not CPython's `socket`, so
lwm2m_mpy/_compat_other.py puts its `socket` (over socketpool.SocketPool(wifi.radio)) and `network` (over
wifi.radio) in place, as on a board:

- `socketpool`: a pool whose sockets are real CPython UDP sockets behind a wrapper with exactly the methods
  CircuitPython's sockets have (no recv, no recvfrom: anything else raises AttributeError and is noted);
- `wifi`: a radio with CircuitPython's attributes (a simulated access point for the `network` checks);
- `supervisor.ticks_ms`: wrapping at 2**29 as CircuitPython's does, set to wrap during the run;
- `sys.implementation.name` stays "cpython"; `select` is CPython's (CircuitPython has a `select` too);
  `ssl` is imported before `socket` is hidden (CircuitPython has one, for TLS over TCP only).

The client registers with the host server (tools/lwm2m_server.py, a thread of this process) on 127.0.0.1,
answers Reads of /3/0 before and after the tick counter wraps, and de-registers when run(seconds) ends.
Every wait is bounded. Not covered: CircuitPython itself (its VM, lwIP, the WiFi chip); the fakes follow
CircuitPython's sources (shared-bindings/socketpool, ports/raspberrypi/common-hal/socketpool).

Also: the transport on its own (a datagram that arrives while it waits), coaps:// refused at start (no DTLS
on CircuitPython), `network.WLAN` over wifi.radio, `machine` over fakes of CircuitPython's hardware modules
that are as strict as CircuitPython (one user per pin, bus calls only under try_lock), and a static check
that the library asks CircuitPython's `time` only for what it has (outside MicroPython-only branches).
"""
import ast
import json
import os
import socket as _real  # the child's wrapper needs the real module before it is hidden
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
ALLOWED = {"sendto", "send", "recvfrom_into", "recv_into", "settimeout", "setblocking", "bind", "connect", "close"}
RUN_S = 6  # the client's run(seconds) in the child
WRAP_AFTER_MS = 2500  # supervisor.ticks_ms wraps this long after the fakes are installed
CHILD_TIMEOUT = 30


# --- the child: fake CircuitPython modules ------------------------------------------------------------

CALLS = []  # (call, detail) of every call into the fakes; ("missing", name): a socket method CircuitPython lacks


class CPSocket:
    """A socketpool.Socket as CircuitPython has it, over a real CPython socket. Errors are CircuitPython's:
    OSError(errno) only (EAGAIN 11 for nothing waiting, ETIMEDOUT 110 for a timeout).

    fileno() is not a CircuitPython method: it is here only because CPython's select.poll registers
    objects by their file descriptor (CircuitPython's select asks the socket object itself)."""

    def __init__(self, real):
        self._s = real

    def __getattr__(self, name):  # only for names not defined below: recv, recvfrom, makefile, ...
        CALLS.append(("missing", name))
        raise AttributeError("'Socket' object has no attribute '%s'" % name)

    def _do(self, name, fn, *args):
        try:
            result = fn(*args)
        except _real.timeout:
            CALLS.append((name, "ETIMEDOUT"))
            raise OSError(110) from None
        except OSError as e:
            CALLS.append((name, "errno %s" % e.errno))
            raise OSError(e.errno) from None
        CALLS.append((name, result if isinstance(result, int) else None))
        return result

    def sendto(self, data, address):
        return self._do("sendto", self._s.sendto, data, address)

    def send(self, data):
        return self._do("send", self._s.send, data)

    def recvfrom_into(self, buf):
        return self._do("recvfrom_into", self._s.recvfrom_into, buf)

    def recv_into(self, buf, nbytes=0):
        return self._do("recv_into", self._s.recv_into, buf, nbytes)

    def settimeout(self, value):
        return self._do("settimeout", self._s.settimeout, value)

    def setblocking(self, flag):
        return self._do("setblocking", self._s.setblocking, flag)

    def bind(self, address):
        return self._do("bind", self._s.bind, address)

    def connect(self, address):
        return self._do("connect", self._s.connect, address)

    def close(self):
        return self._do("close", self._s.close)

    def fileno(self):
        return self._s.fileno()


class SocketPool:
    """socketpool.SocketPool(radio): IPv4 only; getaddrinfo answers SOCK_STREAM whatever was asked, as
    CircuitPython's does."""

    AF_INET = 2
    SOCK_STREAM = 1
    SOCK_DGRAM = 2
    SOCK_RAW = 3
    IPPROTO_IP = 0
    IPPROTO_TCP = 6
    IPPROTO_UDP = 17

    def __init__(self, radio):
        assert radio is sys.modules["wifi"].radio
        CALLS.append(("SocketPool", None))

    def socket(self, family=AF_INET, type=SOCK_STREAM, proto=0):
        assert family == self.AF_INET, family
        CALLS.append(("socket", type))
        return CPSocket(_real.socket(_real.AF_INET, _real.SOCK_DGRAM if type == self.SOCK_DGRAM else type))

    def getaddrinfo(self, host, port, family=0, type=0, proto=0, flags=0):
        ip = _real.getaddrinfo(host, port, _real.AF_INET)[0][4][0]
        return [(self.AF_INET, self.SOCK_STREAM, 0, "", (ip, port))]


class Address:
    def __init__(self, text):
        self.text = text

    def __str__(self):
        return self.text


class AccessPoint:
    def __init__(self, ssid, rssi):
        self.ssid = ssid
        self.rssi = rssi


class Radio:
    """wifi.radio: one simulated access point "home" with password "secret"."""

    def __init__(self):
        self.enabled = False
        self.hostname = "cpy-test"
        self.mac_address = b"\x02\x00\x00\x12\x34\x56"
        self.ap_info = self.ipv4_address = self.ipv4_subnet = self.ipv4_gateway = self.ipv4_dns = None
        self.joins = 0

    def connect(self, ssid, password=b"", *, channel=0, bssid=None, timeout=None):
        self.joins += 1
        if ssid != "home":
            raise ConnectionError("No network with that ssid")
        if password != "secret":
            raise ConnectionError("Authentication failure")
        self.ap_info = AccessPoint("home", -61)
        self.ipv4_address, self.ipv4_subnet = Address("192.168.1.23"), Address("255.255.255.0")
        self.ipv4_gateway = self.ipv4_dns = Address("192.168.1.1")

    def stop_station(self):
        self.ap_info = self.ipv4_address = None


def install_fakes():
    """sys.modules as on a CircuitPython board, before lwm2m_mpy is imported."""
    import ssl  # noqa: F401  (see the module doc)
    import types

    sys.modules["socket"] = None  # `import socket` raises ImportError, as on CircuitPython
    pool = types.ModuleType("socketpool")
    pool.SocketPool = SocketPool
    wifi = types.ModuleType("wifi")
    wifi.radio = Radio()
    supervisor = types.ModuleType("supervisor")
    offset = (1 << 29) - WRAP_AFTER_MS - int(time.monotonic() * 1000)
    supervisor.ticks_ms = lambda: (int(time.monotonic() * 1000) + offset) & ((1 << 29) - 1)
    sys.modules.update(socketpool=pool, wifi=wifi, supervisor=supervisor)
    return supervisor.ticks_ms


def child_client(uri, endpoint):
    ticks = install_fakes()
    from lwm2m_mpy import Client

    client = Client(endpoint, uri, lifetime=60)
    first = ticks()
    client.run(RUN_S)  # ends by its own clock, read across the wrap; de-registers
    import socket

    return {"calls": CALLS, "sock": type(client.transport.sock).__name__, "ticks": [first, ticks()],
            "pool": type(socket.pool).__name__}


def child_transport():
    install_fakes()
    from lwm2m_mpy.transport.udp import for_uri

    out = {}
    peer = _real.socket(_real.AF_INET, _real.SOCK_DGRAM)
    peer.bind(("127.0.0.1", 0))
    peer.settimeout(5)
    t = for_uri("coap://127.0.0.1:%d" % peer.getsockname()[1], {})
    t.send(bytearray(b"hello world"), 5)  # the first n bytes of the buffer, one datagram
    data, client_address = peer.recvfrom(100)
    out["sent"] = data.decode()
    out["idle"] = [t.wait(0), t.recv()]  # nothing waiting: not readable, and recv says None (EAGAIN)
    timer = threading.Timer(0.3, peer.sendto, (b"\x40\x01\x12\x34", client_address))
    timer.start()
    start = time.monotonic()
    ready = t.wait(3000)  # the datagram arrives while the transport waits
    out["waited_s"] = time.monotonic() - start
    data = t.recv()
    out["arrived"] = [ready, bytes(data).hex() if data is not None else None]
    out["after"] = t.recv()
    stranger = _real.socket(_real.AF_INET, _real.SOCK_DGRAM)  # another address: the connected socket drops it
    stranger.sendto(b"\x40\x01\x00\x01", client_address)
    out["stranger"] = t.wait(300)
    t.close()
    out["calls"] = CALLS
    return out


def child_coaps(endpoint):
    install_fakes()
    from lwm2m_mpy import Client

    client = Client(endpoint, "coaps://127.0.0.1:5684", psk=(b"id", b"\x00\x11"))
    try:
        client.run(2)
        return {"error": None, "calls": CALLS}
    except OSError as e:
        return {"error": str(e), "calls": CALLS}


def child_wifi():
    install_fakes()
    import lwm2m_mpy  # noqa: F401
    import network

    radio = sys.modules["wifi"].radio
    w = network.WLAN(network.STA_IF)
    out = {"module": repr(network)}
    w.active(True)
    out["active"] = [w.active(), radio.enabled]
    out["start"] = [w.isconnected(), w.status()]
    w.connect("home", "wrong")
    out["wrong_password"] = [w.isconnected(), w.status() == network.STAT_WRONG_PASSWORD]
    w.connect("elsewhere", "secret")
    out["no_ap"] = [w.isconnected(), w.status() == network.STAT_NO_AP_FOUND]
    w.connect("home", "secret")
    out["joined"] = [w.isconnected(), w.status() == network.STAT_GOT_IP]
    out["ifconfig"] = list(w.ifconfig())
    out["rssi"] = w.status("rssi")
    out["config"] = [w.config("mac").hex(), w.config("essid")]
    joins = radio.joins
    w.connect("home", "secret")  # already joined (as CircuitPython does from settings.toml): nothing to do
    out["rejoined"] = radio.joins - joins
    w.disconnect()
    out["after_disconnect"] = w.isconnected()
    try:
        w.status("rssi")
        out["rssi_offline"] = None
    except OSError as e:
        out["rssi_offline"] = str(e)
    return out


# CircuitPython's hardware modules, as strict as CircuitPython is where Blinka is lenient: one user per
# pin ("in use"), bus methods only under try_lock ("Function requires lock"), a PWM frequency fixed
# unless variable_frequency. A BME280-like device answers at 0x76 (chip id 0x60 in register 0xD0).

class HwPin:
    def __init__(self, name):
        self.name = name

    def __repr__(self):
        return "board." + self.name


class Claims:
    used = set()

    def claim(self, *pins):
        for p in pins:
            if p in Claims.used:
                raise ValueError("%s in use" % p.name)
        Claims.used.update(pins)
        self.pins = pins

    def deinit(self):
        Claims.used.difference_update(self.pins)
        CALLS.append(("deinit", type(self).__name__))


class DigitalInOut(Claims):
    def __init__(self, pin):
        self.claim(pin)
        self.direction, self.pull, self.latch = "input", None, False

    def switch_to_input(self, pull=None):
        self.direction, self.pull = "input", pull
        CALLS.append(("switch_to_input", pull))

    def switch_to_output(self, value=False, drive_mode=None):
        self.direction, self.latch = "output", value
        CALLS.append(("switch_to_output", [value, drive_mode]))

    @property
    def value(self):
        return self.latch if self.direction == "output" else self.pull == "UP"  # an open input floats low

    @value.setter
    def value(self, v):
        if self.direction != "output":
            raise AttributeError("Cannot set value when direction is input.")
        self.latch = v


class AnalogIn(Claims):
    def __init__(self, pin):
        self.claim(pin)
        self.value = 40000


class PWMOut(Claims):
    def __init__(self, pin, *, duty_cycle=0, frequency=500, variable_frequency=False):
        self.claim(pin)
        self.duty_cycle, self._frequency, self.variable = duty_cycle, frequency, variable_frequency
        CALLS.append(("PWMOut", [frequency, duty_cycle, variable_frequency]))

    @property
    def frequency(self):
        return self._frequency

    @frequency.setter
    def frequency(self, f):
        if not self.variable:
            raise AttributeError("Cannot change frequency when variable_frequency is False.")
        self._frequency = f


class I2C(Claims):
    def __init__(self, scl, sda, *, frequency=100000, timeout=255):
        self.claim(scl, sda)
        self.locked = False
        self.regs = bytearray(256)
        self.regs[0xD0] = 0x60
        self.pointer = 0
        CALLS.append(("busio.I2C", [repr(scl), repr(sda), frequency]))

    def try_lock(self):
        if self.locked:
            return False
        self.locked = True
        return True

    def unlock(self):
        self.locked = False

    def _check(self, name, addr):
        CALLS.append(("i2c", name))
        if not self.locked:
            raise RuntimeError("Function requires lock")
        if addr != 0x76:
            raise OSError(19)  # CircuitPython: no ACK from that address

    def scan(self):
        self._check("scan", 0x76)
        return [0x76]

    def writeto(self, addr, buf, *, start=0, end=None):
        self._check("writeto", addr)
        data = bytes(buf)
        self.pointer = data[0]
        self.regs[self.pointer:self.pointer + len(data) - 1] = data[1:]

    def readfrom_into(self, addr, buf, *, start=0, end=None):
        self._check("readfrom_into", addr)
        buf[:] = self.regs[self.pointer:self.pointer + len(buf)]

    def writeto_then_readfrom(self, addr, out_buffer, in_buffer, **kw):
        self._check("writeto_then_readfrom", addr)
        self.pointer = bytes(out_buffer)[0]
        in_buffer[:] = self.regs[self.pointer:self.pointer + len(in_buffer)]


class UART(Claims):
    class Parity:
        EVEN, ODD = "even", "odd"

    def __init__(self, tx, rx, *, baudrate=9600, bits=8, parity=None, stop=1, timeout=1, receiver_buffer_size=64):
        self.claim(tx, rx)
        self.waiting = bytearray(b"$GPGGA,1\r\n")
        CALLS.append(("busio.UART", [repr(tx), repr(rx), baudrate, timeout, parity, receiver_buffer_size]))

    @property
    def in_waiting(self):
        return len(self.waiting)

    def read(self, n=None):
        n = len(self.waiting) if n is None else n
        data, self.waiting[:n] = bytes(self.waiting[:n]), b""
        return data or None

    def readinto(self, buf):
        n = min(len(buf), len(self.waiting))
        buf[:n] = self.waiting[:n]
        self.waiting[:n] = b""
        return n or None

    def write(self, buf):
        CALLS.append(("uart write", bytes(buf).decode()))
        return len(buf)


def install_hardware():
    import types

    def module(name, **attrs):
        m = types.ModuleType(name)
        m.__dict__.update(attrs)
        sys.modules[name] = m
        return m

    pins = {"GP%d" % n: HwPin("GP%d" % n) for n in range(29)}
    pins.update(LED=HwPin("LED"), SCL=pins["GP5"], SDA=pins["GP4"], TX=pins["GP0"], RX=pins["GP1"])
    module("board", **pins)
    module("digitalio", DigitalInOut=DigitalInOut, Pull=types.SimpleNamespace(UP="UP", DOWN="DOWN"),
           DriveMode=types.SimpleNamespace(PUSH_PULL="PUSH_PULL", OPEN_DRAIN="OPEN_DRAIN"))
    module("analogio", AnalogIn=AnalogIn)
    module("pwmio", PWMOut=PWMOut)
    module("busio", I2C=I2C, UART=UART)
    module("microcontroller", cpu=types.SimpleNamespace(uid=bytearray(b"\xe6\x61\x41\x04\x03\x2b\x8d\x2c")),
           reset=lambda: CALLS.append(("reset", None)))


def child_machine():
    install_fakes()
    install_hardware()
    import lwm2m_mpy  # noqa: F401
    import machine

    out = {"module": repr(machine)}
    Pin = machine.Pin
    led = Pin("LED", Pin.OUT)
    again = Pin("LED", Pin.OUT, value=1)  # CircuitPython alone would say "LED in use"
    out["led"] = [led.value(), again.value()]
    led.value(0)
    out["led_off"] = [led.value(), again.value()]
    button = Pin(15, Pin.IN, Pin.PULL_UP)  # a number: board.GP15
    out["button"] = [button.pin.name, button.value()]
    pwm = machine.PWM(Pin(16, Pin.OUT), freq=1000, duty_u16=0)  # the digital pin is handed over
    pwm.duty_u16(30000)
    pwm.freq(2000)  # fixed-frequency PWMOut: made anew, the duty kept
    out["pwm"] = [pwm.freq(), pwm.duty_u16()]
    out["adc"] = machine.ADC(Pin(26)).read_u16()
    i2c = machine.I2C(0, sda=Pin(4), scl=Pin(5), freq=100000)
    out["scan"] = i2c.scan()
    out["chip_id"] = i2c.readfrom_mem(0x76, 0xD0, 1).hex()
    i2c.writeto_mem(0x76, 0xF4, b"\x27")
    buf = bytearray(1)
    i2c.readfrom_mem_into(0x76, 0xF4, buf)
    out["ctrl"] = buf.hex()
    i2c.writeto(0x76, b"\xd0", False)  # repeated start: one transfer with the read that follows
    out["repeated"] = i2c.readfrom(0x76, 1).hex()
    i2c.writeto(0x76, b"\xf4")
    out["plain"] = i2c.readfrom(0x76, 1).hex()
    i2c.writeto(0x76, b"\xd0", False)  # held, then sent on its own: the next read is from another device
    try:
        i2c.readfrom(0x44, 2)
        out["absent"] = None
    except OSError as e:
        out["absent"] = e.args[0]
    out["unlocked"] = i2c.bus.locked is False
    out["same_bus"] = machine.I2C(0, sda=Pin(4), scl=Pin(5)).bus is i2c.bus and machine.I2C(0).bus is i2c.bus
    uart = machine.UART(1, baudrate=9600, tx=Pin(8), rx=Pin(9))
    chunk = bytearray(4)
    out["uart"] = [uart.any(), uart.readinto(chunk), bytes(chunk).decode(), uart.read().decode(), uart.read(),
                   uart.write(b"$PMTK\r\n")]
    out["uid"] = machine.unique_id().hex()
    machine.reset()
    out["calls"] = CALLS
    return out


# --- the tests --------------------------------------------------------------------------------------

def run_child(*args):
    """This file as a script: the child of mode args[0] (see the end of the file); its report is the JSON on
    the last line it prints."""
    return subprocess.Popen([sys.executable, __file__] + [str(a) for a in args], cwd=str(ROOT),
                            env=dict(os.environ, PYTHONPATH=str(ROOT)), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def report_of(proc, timeout=CHILD_TIMEOUT):
    try:
        out = proc.communicate(timeout=timeout)[0]
    finally:
        proc.kill()
    assert proc.returncode == 0, out
    return json.loads(out.strip().splitlines()[-1]), out


def methods_used(calls):
    return {name for name, _ in calls if name not in ("SocketPool", "socket")}


@pytest.fixture
def server():
    import e2e_helpers  # noqa: F401  (puts tools/ on sys.path)
    import lwm2m_server as lws

    with lws.ServerThread(request_timeout=5.0) as srv:
        yield srv


def test_client_over_socketpool_registers_answers_reads_and_deregisters(server):
    import lwm2m_server as lws

    ep = "cpy-client"
    proc = run_child("client", server.uri, ep)
    try:
        event = server.wait_for("register", ep, timeout=15)
        assert event.query["ep"] == ep
        reads = [server.read(ep, "/3/0", accept=lws.TLV)]  # before the tick counter wraps
        time.sleep(WRAP_AFTER_MS / 1000 + 0.5)
        reads.append(server.read(ep, "/3/0", accept=lws.TLV))  # and after
        for r in reads:
            assert r.code == "2.05" and r.value[0] == "lwm2m_mpy", r
        server.wait_for("deregister", ep, timeout=RUN_S + 10)  # run(seconds) ended by the wrapped clock
    finally:
        report, out = report_of(proc, timeout=10)  # it ends right after the De-register
    assert "Traceback" not in out, out
    assert report["sock"] == "CPSocket" and report["pool"] == "SocketPool", report
    first, last = report["ticks"]
    assert last < first, "supervisor.ticks_ms did not wrap during the run: %s" % report["ticks"]
    calls = report["calls"]
    assert not [c for c in calls if c[0] == "missing"], calls
    assert methods_used(calls) <= ALLOWED, calls
    received = [n for name, n in calls if name == "recv_into" and isinstance(n, int) and n > 0]
    # the Register and De-register answers and both Read requests, all through recv_into
    assert len(received) >= 4, calls
    assert ["socket", 2] in calls  # one UDP socket (SOCK_DGRAM) from the pool


def test_transport_receives_a_datagram_that_arrives_while_it_waits():
    report, _ = report_of(run_child("transport"))
    assert report["sent"] == "hello"
    assert report["idle"] == [False, None]
    ready, data = report["arrived"]
    assert ready is True and data == "40011234", report
    assert 0.2 < report["waited_s"] < 2.5, report  # it waited for the datagram, not for the timeout
    assert report["after"] is None
    assert report["stranger"] is False  # connected: a datagram from another address never shows
    calls = report["calls"]
    assert not [c for c in calls if c[0] == "missing"], calls
    assert methods_used(calls) <= ALLOWED, calls
    assert ["recv_into", 4] in calls and ["recv_into", "errno 11"] in calls, calls


def test_coaps_says_at_start_that_circuitpython_has_no_dtls():
    report, _ = report_of(run_child("coaps", "cpy-coaps"))
    assert report["error"] and "no DTLS" in report["error"] and "coaps://" in report["error"], report
    assert not [c for c in report["calls"] if c[0] == "socket"], report  # nothing was sent, in any form


def test_network_wlan_over_wifi_radio():
    report, _ = report_of(run_child("wifi"))
    assert "_Network" in report["module"]
    assert report["active"] == [True, True]
    assert report["start"] == [False, 0]
    assert report["wrong_password"] == [False, True]
    assert report["no_ap"] == [False, True]
    assert report["joined"] == [True, True]
    assert report["ifconfig"] == ["192.168.1.23", "255.255.255.0", "192.168.1.1", "192.168.1.1"]
    assert report["rssi"] == -61
    assert report["config"] == ["020000123456", "home"]
    assert report["rejoined"] == 0
    assert report["after_disconnect"] is False
    assert report["rssi_offline"] and "not connected" in report["rssi_offline"]


def test_machine_over_circuitpython_hardware_modules():
    report, _ = report_of(run_child("machine"))
    calls = report["calls"]
    assert "_Machine" in report["module"]
    assert report["led"] == [1, 1] and report["led_off"] == [0, 0]  # one DigitalInOut for both Pins
    assert report["button"] == ["GP15", 1] and ["switch_to_input", "UP"] in calls
    assert report["pwm"] == [2000, 30000]
    assert ["PWMOut", [1000, 0, False]] in calls and ["PWMOut", [2000, 30000, False]] in calls
    assert report["adc"] == 40000
    assert ["busio.I2C", ["board.GP5", "board.GP4", 100000]] in calls
    assert report["scan"] == [0x76] and report["chip_id"] == "60" and report["ctrl"] == "27"
    assert report["repeated"] == "60" and report["plain"] == "27"
    i2c = [detail for name, detail in calls if name == "i2c"]
    # scan; readfrom_mem; writeto_mem; readfrom_mem_into; writeto without stop + readfrom as one transfer;
    # writeto + readfrom as two; a held writeto sent before a read from an absent device
    assert i2c == ["scan", "writeto_then_readfrom", "writeto", "writeto_then_readfrom", "writeto_then_readfrom",
                   "writeto", "readfrom_into", "writeto", "readfrom_into"], i2c
    assert report["absent"] == 19 and report["unlocked"] is True  # a NACK: OSError, and the lock let go
    assert report["same_bus"] is True
    assert ["busio.UART", ["board.GP8", "board.GP9", 9600, 0.0, None, 256]] in calls
    assert report["uart"] == [10, 4, "$GPG", "GA,1\r\n", None, 7]
    assert report["uid"] == "e6614104032b8d2c"
    assert ["reset", None] in calls


# CircuitPython's `time` (shared-bindings/time): no gmtime, sleep_ms, ticks_*; those come from _compat.
CIRCUITPYTHON_TIME = {"monotonic", "monotonic_ns", "sleep", "struct_time", "localtime", "mktime", "time"}


def _micropython_only(test):
    return isinstance(test, ast.Name) and test.id == "IS_MICROPYTHON"


def time_calls_circuitpython_lacks(tree, path):
    """`time.<name>` and `from time import <name>` outside MicroPython-only code (`if IS_MICROPYTHON:`,
    `a if IS_MICROPYTHON else b`, `IS_MICROPYTHON and ...`), for names CircuitPython's time lacks."""
    found = []

    def visit(node, mpy_only):
        if isinstance(node, ast.BoolOp) and isinstance(node.op, ast.And):
            for child in node.values:
                visit(child, mpy_only)
                mpy_only = mpy_only or _micropython_only(child)
            return
        if isinstance(node, (ast.If, ast.IfExp)) and _micropython_only(node.test):
            body = node.body if isinstance(node.body, list) else [node.body]
            orelse = node.orelse if isinstance(node.orelse, list) else [node.orelse]
            for child in body:
                visit(child, True)
            for child in orelse:
                visit(child, mpy_only)
            return
        if not mpy_only:
            if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "time"
                    and node.attr not in CIRCUITPYTHON_TIME):
                found.append("%s:%d time.%s" % (path, node.lineno, node.attr))
            if isinstance(node, ast.ImportFrom) and node.module == "time":
                found.extend("%s:%d from time import %s" % (path, node.lineno, a.name) for a in node.names
                             if a.name not in CIRCUITPYTHON_TIME)
        for child in ast.iter_child_nodes(node):
            visit(child, mpy_only)

    visit(tree, False)
    return found


def test_library_asks_time_only_for_what_circuitpython_has():
    found = []
    for path in sorted((ROOT / "lwm2m_mpy").rglob("*.py")):
        found += time_calls_circuitpython_lacks(ast.parse(path.read_text()), path.relative_to(ROOT))
    assert not found, ("CircuitPython's time module lacks these (AttributeError on a board; route them "
                       "through _compat, e.g. ticks_* and, for _compat's epoch check, "
                       "`946684800 if IS_MICROPYTHON and time.gmtime(0)[0] == 2000 else 0`): %s" % found)


if __name__ == "__main__":
    mode, args = sys.argv[1], sys.argv[2:]
    sys.path.insert(0, str(ROOT))
    run = {"client": child_client, "transport": child_transport, "coaps": child_coaps, "wifi": child_wifi,
           "machine": child_machine}[mode]
    print(json.dumps(run(*args)))
