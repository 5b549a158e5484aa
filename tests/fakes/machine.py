"""A fake `machine` module for tests (MicroPython's API subset the drivers use), for micropython and
CPython alike. Hardware state lives in module-level dicts that tests read and set:

  levels[pin_id] = 0/1      what an input pin sees from outside (None: only its pull decides)
  pins[pin_id]              the last Pin made with that id (mode, pull, output level)
  adc_values[key] = n       what ADC(key).read_u16() returns (key: pin id, or the channel number)
  attach(bus, addr, chip)   put a fake I2C chip (tests/fakes/chips.py) on bus `bus`
  pwms[pin_id], uarts[id]   the last PWM / UART made there; uart.receive(b"...") queues input bytes

reset() forgets everything (each test starts from a clean board).
"""
_ENODEV = 19  # what MicroPython raises when no device ACKs the address

levels = {}
pins = {}
adc_values = {}
buses = {}  # bus id -> {addr: chip}
pwms = {}
uarts = {}


def reset():
    for d in (levels, pins, adc_values, buses, pwms, uarts):
        d.clear()


def attach(bus, addr, chip):
    buses.setdefault(bus, {})[addr] = chip
    return chip


def _pin_id(p):
    return p.id if isinstance(p, Pin) else p


class Pin:
    IN = 0
    OUT = 1
    OPEN_DRAIN = 2
    PULL_UP = 1
    PULL_DOWN = 2

    def __init__(self, id, mode=-1, pull=-1, value=None):
        self.id = id
        self.mode = mode
        self.pull = pull
        self.out = 0
        if value is not None:
            self.out = 1 if value else 0
        pins[id] = self

    def value(self, v=None):
        if v is not None:
            self.out = 1 if v else 0
            return None
        if self.mode == Pin.OUT or self.mode == Pin.OPEN_DRAIN:
            return self.out  # what the port reads back from an output pin
        level = levels.get(self.id)
        if level is not None:
            return 1 if level else 0
        return 1 if self.pull == Pin.PULL_UP else 0

    def on(self):
        self.value(1)

    def off(self):
        self.value(0)

    def __call__(self, v=None):
        return self.value(v)


class ADC:
    def __init__(self, id, **kw):
        self.key = _pin_id(id)

    def read_u16(self):
        return adc_values.get(self.key, 0)


class I2C:
    """Transactions go to the chip at the address: write(bytes) for a write, read(n) for a read; a
    register read is the register number written, then a read (what the bus does: repeated start)."""

    def __init__(self, id, sda=None, scl=None, freq=400000):
        self.id = id
        self.freq = freq
        self.sda = _pin_id(sda)
        self.scl = _pin_id(scl)

    def _chip(self, addr):
        chip = buses.get(self.id, {}).get(addr)
        if chip is None:
            raise OSError(_ENODEV)
        return chip

    def scan(self):
        return sorted(buses.get(self.id, {}))

    def writeto(self, addr, buf, stop=True):
        self._chip(addr).write(bytes(buf))
        return len(buf)

    def readfrom(self, addr, n, stop=True):
        return bytes(self._chip(addr).read(n))

    def readfrom_into(self, addr, buf, stop=True):
        data = self._chip(addr).read(len(buf))
        for i in range(len(buf)):
            buf[i] = data[i]

    def writeto_mem(self, addr, reg, buf, addrsize=8):
        self._chip(addr).write(bytes([reg]) + bytes(buf))

    def readfrom_mem(self, addr, reg, n, addrsize=8):
        chip = self._chip(addr)
        chip.write(bytes([reg]))
        return bytes(chip.read(n))

    def readfrom_mem_into(self, addr, reg, buf, addrsize=8):
        chip = self._chip(addr)
        chip.write(bytes([reg]))
        data = chip.read(len(buf))
        for i in range(len(buf)):
            buf[i] = data[i]


class PWM:
    def __init__(self, pin, freq=None, duty_u16=None, **kw):
        self.pin = _pin_id(pin)
        self._freq = freq or 1000
        self._duty = duty_u16 or 0
        self.writes = 0
        pwms[self.pin] = self

    def freq(self, f=None):
        if f is None:
            return self._freq
        self._freq = f

    def duty_u16(self, d=None):
        if d is None:
            return self._duty
        if not 0 <= d <= 65535:
            raise ValueError("duty_u16 out of range")
        self._duty = d
        self.writes += 1

    def deinit(self):
        self._duty = 0


class UART:
    def __init__(self, id, baudrate=9600, tx=None, rx=None, **kw):
        self.id = id
        self.baudrate = baudrate
        self.tx = _pin_id(tx)
        self.rx = _pin_id(rx)
        self._rx = bytearray()
        self.written = bytearray()
        uarts[id] = self

    def receive(self, data):
        """Test side: bytes arriving on RX."""
        self._rx.extend(data)

    def any(self):
        return len(self._rx)

    def read(self, n=None):
        if not self._rx:
            return None
        n = len(self._rx) if n is None else min(n, len(self._rx))
        data = bytes(self._rx[:n])
        self._rx = self._rx[n:]
        return data

    def readinto(self, buf, nbytes=None):
        n = min(len(buf) if nbytes is None else nbytes, len(self._rx))
        if n == 0:
            return None  # MicroPython: nothing before the timeout
        for i in range(n):
            buf[i] = self._rx[i]
        self._rx = self._rx[n:]
        return n

    def write(self, buf):
        self.written.extend(buf)
        return len(buf)
