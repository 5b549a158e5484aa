"""The compat layer for CircuitPython and CPython (Blinka): what MicroPython's modules provide natively.

Library code and drivers are written against MicroPython (`socket`, `machine`, `network`, ticks). Where
one of those modules cannot be imported, a stand-in goes into sys.modules: `socket` and `network` over
socketpool and wifi.radio (CircuitPython), `machine` over digitalio, analogio, busio, pwmio and
microcontroller (CircuitPython, and CPython with Adafruit Blinka). The stand-ins import those modules
only when a socket, pin or bus is made, so a host tool on plain CPython pays nothing for them.
Import lwm2m_mpy before `import machine` in application code: importing it installs them.
"""
import sys
import time

try:
    from micropython import const  # CircuitPython; Blinka's shim on CPython
except ImportError:
    # Plain CPython (host tests, tools): a shim, so library modules keep `from micropython import const`
    import types

    _shim = types.ModuleType("micropython")
    _shim.const = lambda x: x
    sys.modules["micropython"] = _shim
    from micropython import const

try:
    from supervisor import ticks_ms  # CircuitPython: wraps at 2**29 (first ~65 s after power-on)

    _MASK = 0x1FFFFFFF
except ImportError:
    _MASK = 0x3FFFFFFF  # MicroPython's period on 32-bit ports: host tests see the same wrap-around

    def ticks_ms():
        return int(time.monotonic() * 1000) & _MASK

_HALF = (_MASK + 1) >> 1


def ticks_diff(a, b):
    return ((a - b + _HALF) & _MASK) - _HALF


def ticks_add(a, d):
    return (a + d) & _MASK


try:
    from os import urandom
except ImportError:  # CircuitPython without a TRNG
    import random

    def urandom(n):
        return bytes(random.getrandbits(8) for _ in range(n))

try:
    from gc import mem_free, mem_alloc  # CircuitPython
except ImportError:  # CPython: no heap figures
    mem_free = mem_alloc = None

# CircuitPython only: on CPython, Blinka's microcontroller has no reset, and importing it runs Blinka's
# board detection (and prints warnings) in every host tool
reset = None
if sys.implementation.name == "circuitpython":
    from microcontroller import reset  # noqa: F811


def print_exception(e):
    import traceback

    traceback.print_exception(type(e), e, e.__traceback__)


def udp_send(sock, buf, n):
    sock.send(memoryview(buf)[:n])


def udp_recv(sock, buf):
    """One datagram or None. CircuitPython sockets only have recv_into; timeouts raise ETIMEDOUT. `buf` is
    a size when transport/udp.py falls back to a small read (MemoryError): then a buffer of that size."""
    if buf.__class__ is int:
        buf = bytearray(buf)
    try:
        return memoryview(buf)[: sock.recv_into(buf)]
    except OSError as e:
        if e.args[0] in (11, 35, 110, 116):  # EAGAIN (Linux, BSD), ETIMEDOUT (lwIP, CircuitPython)
            return None
        raise


# -- `socket` and `network` for CircuitPython ------------------------------------------------------

class _Sockets:
    """`socket` for CircuitPython: getaddrinfo, socket() and the constants (AF_INET, SOCK_DGRAM, ...) are
    those of one socketpool.SocketPool(wifi.radio), made at first use and kept in `pool` (an application
    that needs a pool for other libraries can take this one). Its sockets have send, sendto, recv_into,
    recvfrom_into, bind, connect, settimeout, setblocking and close, no recv/recvfrom (see udp_recv)."""

    pool = None

    def __getattr__(self, name):
        if name[0] == "_":  # __path__, __spec__, ...: the import machinery asking, not a user
            raise AttributeError(name)
        p = _Sockets.pool
        if p is None:
            import socketpool
            import wifi

            p = _Sockets.pool = socketpool.SocketPool(wifi.radio)
        return getattr(p, name)


class _WLAN:
    """network.WLAN(STA_IF) over wifi.radio: what a WiFi bring-up and object 4 (IP, RSSI) need.
    CircuitPython's radio.connect blocks until joined and raises on failure; here, as on MicroPython,
    connect() returns and the outcome is isconnected() / status()."""

    def __init__(self, interface=0):
        import wifi

        self.radio = wifi.radio
        self.why = 0  # status() while not connected: the outcome of the last connect

    def active(self, on=None):
        if on is None:
            return self.radio.enabled
        self.radio.enabled = bool(on)

    def connect(self, ssid, key=None, **kw):
        r = self.radio
        ap = r.ap_info
        if ap is not None and ap.ssid == ssid and r.ipv4_address is not None:
            return  # already on it (CircuitPython joins CIRCUITPY_WIFI_SSID of settings.toml by itself)
        try:
            r.connect(ssid, key or "")
            self.why = 0
        except ConnectionError as e:  # "No network with that ssid", "Authentication failure", ...
            s = str(e).lower()
            self.why = -2 if "ssid" in s else -3 if "auth" in s else -1
            print("wifi: %s" % e)

    def disconnect(self):
        self.radio.stop_station()

    def isconnected(self):
        return self.radio.ipv4_address is not None

    def ifconfig(self):
        r = self.radio
        return tuple(str(a) if a is not None else "0.0.0.0"
                     for a in (r.ipv4_address, r.ipv4_subnet, r.ipv4_gateway, r.ipv4_dns))

    def status(self, param=None):
        if param is None:
            return 3 if self.isconnected() else self.why  # STAT_GOT_IP or the failure
        ap = self.radio.ap_info
        if param != "rssi":
            raise ValueError("unknown status parameter %s" % param)
        if ap is None:
            raise OSError("wifi: not connected")
        return ap.rssi

    def config(self, key):
        r = self.radio
        if key == "mac":
            return bytes(r.mac_address)
        if key == "hostname":
            return r.hostname
        if key in ("ssid", "essid"):
            ap = r.ap_info
            return ap.ssid if ap is not None else ""
        raise ValueError("unknown config parameter %s" % key)


class _Network:
    """`network` for CircuitPython: WLAN(STA_IF) and MicroPython's status numbers (those of rp2)."""

    STA_IF = 0
    AP_IF = 1
    STAT_IDLE = 0
    STAT_CONNECTING = 1
    STAT_GOT_IP = 3
    STAT_CONNECT_FAIL = -1
    STAT_NO_AP_FOUND = -2
    STAT_WRONG_PASSWORD = -3
    WLAN = _WLAN


# -- `machine` over CircuitPython's hardware modules (CircuitPython and Blinka) --------------------

def _board_pin(pin):
    """A pin of the `board` module from what MicroPython code passes: a name ("D5", "LED", "GP15", Blinka's
    "Dx_OUTPUT"), a number (board.GP<n>, else board.D<n>), a machine.Pin, or a board pin itself."""
    if pin.__class__ is _Pin:
        return pin.pin
    if isinstance(pin, (str, int)):
        import board

        for name in (pin,) if isinstance(pin, str) else ("GP%d" % pin, "D%d" % pin):
            p = getattr(board, name, None)
            if p is not None:
                return p
        raise ValueError("no pin %r on this board (names: dir(board))" % (pin,))
    return pin


def _default(name):
    """board.<name> (SCL, SDA, TX, RX): the pin a bus uses when none is given."""
    import board

    p = getattr(board, name, None)
    if p is None:
        raise ValueError("this board has no default %s pin: give one" % name)
    return p


def _take(pin):
    """The board pin for another peripheral (ADC, PWM, buses): a digital pin made on it is let go first,
    as CircuitPython allows one user per pin."""
    p = _board_pin(pin)
    state = _Pin.pins.pop(p, None)
    if state is not None:
        state[0].deinit()
    return p


class _Pin:
    """machine.Pin over digitalio.DigitalInOut, made when the pin is first used as a digital pin: Pin(4)
    alone only names a pin (for I2C(sda=Pin(4), ...), PWM(Pin(16)), ...), which CircuitPython could not
    otherwise give to a bus that holds it already. One DigitalInOut per pin, shared by every Pin made on
    it (MicroPython allows Pin(5) twice; CircuitPython says "in use"). value() of an output is the level
    it drives (a push-pull output reads what was written: Blinka's simulated board reads its output pin
    as 1 whatever was written); of an input or open-drain pin, the level read from the pin."""

    IN = 0
    OUT = 1
    OPEN_DRAIN = 2
    PULL_UP = 1
    PULL_DOWN = 2
    pins = {}  # board pin -> [DigitalInOut, output level, mode]

    def __init__(self, id, mode=-1, pull=None, value=None):
        self.pin = _board_pin(id)
        if mode != -1 or pull is not None or value is not None:
            self.init(mode, pull, value)

    def _state(self):
        s = _Pin.pins.get(self.pin)
        if s is None:
            import digitalio

            s = _Pin.pins[self.pin] = [digitalio.DigitalInOut(self.pin), False, 0]  # it starts as an input
        return s

    def init(self, mode=-1, pull=None, value=None):
        """mode -1 keeps the mode; an input's pull is set when a mode or a pull is given (None: none)."""
        import digitalio

        s = self._state()
        io = s[0]
        if value is not None:
            s[1] = bool(value)
        if mode == -1:
            if pull is None and (s[2] == 0 or value is None):
                return
            mode = s[2]
        if mode == 0:
            io.switch_to_input(pull=digitalio.Pull.UP if pull == 1 else digitalio.Pull.DOWN if pull == 2 else None)
        else:
            io.switch_to_output(value=s[1], drive_mode=digitalio.DriveMode.OPEN_DRAIN if mode == 2
                                else digitalio.DriveMode.PUSH_PULL)
        s[2] = mode

    def value(self, v=None):
        s = self._state()
        if v is None:
            return int(s[1]) if s[2] == 1 else int(s[0].value)
        s[1] = v = bool(v)
        if s[2]:  # an input keeps the level for when it becomes an output, as on MicroPython
            s[0].value = v

    __call__ = value

    def on(self):
        self.value(1)

    def off(self):
        self.value(0)

    def toggle(self):
        self.value(not self.value())


class _ADC:
    """machine.ADC over analogio.AnalogIn: read_u16() 0..65535."""

    def __init__(self, pin, **kw):
        import analogio

        self.adc = analogio.AnalogIn(_take(pin))

    def read_u16(self):
        v = self.adc.value
        return 0 if v < 0 else 65535 if v > 65535 else v  # Blinka's simulated inputs go below 0

    def deinit(self):
        self.adc.deinit()


class _I2C:
    """machine.I2C over busio.I2C (locked around every transfer; one busio.I2C per pin pair, shared as
    MicroPython lets I2C(0) be made twice). `id` is unused: CircuitPython picks the controller from the
    pins, board.SCL/board.SDA when none are given. writeto(..., stop=False) is kept and sent with the next
    read from that address as one transfer with a repeated start (busio's writeto_then_readfrom)."""

    buses = {}
    held = None  # (addr, bytes) of a writeto without stop

    def __init__(self, id=-1, scl=None, sda=None, freq=400000, **kw):
        scl = _default("SCL") if scl is None else _take(scl)
        sda = _default("SDA") if sda is None else _take(sda)
        bus = _I2C.buses.get((scl, sda))
        if bus is None:
            import busio

            bus = _I2C.buses[(scl, sda)] = busio.I2C(scl, sda, frequency=freq)
        self.bus = bus

    def _lock(self):
        b = self.bus
        for _ in range(100):
            if b.try_lock():
                return b
        raise OSError(16)  # EBUSY: someone holds the bus and did not unlock it

    def _run(self, fn, *args):
        b = self._lock()
        try:
            return fn(b, *args)
        finally:
            b.unlock()

    def scan(self):
        return self._run(lambda b: list(b.scan()))

    def _flush(self):
        held = self.held
        if held is not None:
            self.held = None
            self._run(lambda b: b.writeto(held[0], held[1]))

    def writeto(self, addr, buf, stop=True):
        self._flush()
        if not stop:
            self.held = (addr, bytes(buf))
        else:
            self._run(lambda b: b.writeto(addr, buf))
        return len(buf)  # the number of ACKs, as MicroPython counts them (a NACK raises OSError)

    def readfrom_into(self, addr, buf, stop=True):
        held = self.held
        if held is not None and held[0] == addr:
            self.held = None
            self._run(lambda b: b.writeto_then_readfrom(addr, held[1], buf))
        else:
            self._flush()
            self._run(lambda b: b.readfrom_into(addr, buf))

    def readfrom(self, addr, nbytes, stop=True):
        buf = bytearray(nbytes)
        self.readfrom_into(addr, buf, stop)
        return bytes(buf)

    def readfrom_mem_into(self, addr, memaddr, buf, addrsize=8):
        self._run(lambda b: b.writeto_then_readfrom(addr, memaddr.to_bytes(addrsize // 8, "big"), buf))

    def readfrom_mem(self, addr, memaddr, nbytes, addrsize=8):
        buf = bytearray(nbytes)
        self.readfrom_mem_into(addr, memaddr, buf, addrsize)
        return bytes(buf)

    def writeto_mem(self, addr, memaddr, buf, addrsize=8):
        self._run(lambda b: b.writeto(addr, memaddr.to_bytes(addrsize // 8, "big") + bytes(buf)))


class _PWM:
    """machine.PWM over pwmio.PWMOut: duty_u16([v]), freq([f]). A new frequency makes the PWMOut anew
    (variable_frequency=True would reserve a whole PWM slice on some chips)."""

    def __init__(self, pin, freq=500, duty_u16=0, **kw):
        import pwmio

        self.pin = _take(pin)
        self.pwm = pwmio.PWMOut(self.pin, frequency=freq, duty_cycle=duty_u16)

    def duty_u16(self, v=None):
        if v is None:
            return self.pwm.duty_cycle
        self.pwm.duty_cycle = v

    def freq(self, f=None):
        o = self.pwm
        if f is None:
            return o.frequency
        if f != o.frequency:
            import pwmio

            d = o.duty_cycle
            o.deinit()
            self.pwm = pwmio.PWMOut(self.pin, frequency=f, duty_cycle=d)

    def deinit(self):
        self.pwm.deinit()


class _UART:
    """machine.UART over busio.UART: any(), read([n]) (None when nothing came), readinto, readline, write.
    timeout in ms as on MicroPython (default 0: reads return what is waiting)."""

    def __init__(self, id=-1, baudrate=9600, bits=8, parity=None, stop=1, tx=None, rx=None, timeout=0,
                 rxbuf=256, **kw):
        import busio

        tx = _default("TX") if tx is None else _take(tx)
        rx = _default("RX") if rx is None else _take(rx)
        self.uart = busio.UART(tx, rx, baudrate=baudrate, bits=bits, stop=stop, timeout=timeout / 1000,
                               parity=None if parity is None else busio.UART.Parity.ODD if parity else
                               busio.UART.Parity.EVEN, receiver_buffer_size=max(rxbuf, 64))

    def any(self):
        return self.uart.in_waiting

    def read(self, n=None):
        return self.uart.read(n)

    def readinto(self, buf, n=None):
        return self.uart.readinto(buf if n is None else memoryview(buf)[:n])

    def readline(self):
        return self.uart.readline()

    def write(self, buf):
        return self.uart.write(buf)

    def deinit(self):
        self.uart.deinit()


class _Machine:
    """`machine` for CircuitPython and Blinka: Pin, ADC, I2C, PWM, UART, unique_id(), reset()."""

    Pin = _Pin
    ADC = _ADC
    I2C = _I2C
    PWM = _PWM
    UART = _UART

    @staticmethod
    def unique_id():
        try:
            import microcontroller

            return bytes(microcontroller.cpu.uid)
        except (ImportError, AttributeError):  # Blinka: no cpu.uid; the host's MAC address instead
            import uuid

            return uuid.getnode().to_bytes(6, "big")

    @staticmethod
    def reset():
        import microcontroller

        microcontroller.reset()  # Blinka has none: AttributeError


def _install(name, shim):
    """Put `shim` in sys.modules as `name` unless the port has that module."""
    try:
        __import__(name)
    except ImportError:
        sys.modules[name] = shim
        return True
    return False


if _install("socket", _Sockets()):  # CircuitPython: no socket module; WiFi and sockets come from wifi.radio
    _install("network", _Network)
_install("machine", _Machine)
