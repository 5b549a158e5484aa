"""UDP over a cellular modem's AT socket commands (docs/modem.md "Transport"; 3GPP TS 27.007, TS 24.008).

The same interface as transport/udp.py (send, recv, wait, close; `sock` None, so the asyncio driver polls).
Modem does attach, the datagram queue, failure counting, signal and PSM; a dialect module
(modem_sim7080, modem_bg95, modem_sara, modem_nrf91) says which commands open, send, read and close.
"""
from micropython import const

from .at import AT, ATError
from .._compat import ticks_ms, ticks_diff, ticks_add

_ATTACH_MS = const(180000)  # registration (AT+CEREG?) polled at most this long
_QUEUE = const(4)  # received datagrams held at most (the oldest is dropped)
_FAILS = const(2)  # consecutive failed commands before the socket is given up

# 3GPP TS 24.008 10.5.7.4a GPRS Timer 3 (T3412 extended) and 10.5.7.3 GPRS Timer 2 (T3324): the unit in
# bits 8-6, the value (0..31) in bits 5-1. (seconds per unit, unit bits), smallest unit first.
_T3412 = ((2, 3), (30, 4), (60, 5), (600, 0), (3600, 1), (36000, 2), (1152000, 6))
_T3324 = ((2, 0), (60, 1), (360, 2))


def timer_bits(seconds, units):
    """The 8-bit string of a GPRS timer: the smallest unit whose value (rounded up) fits in 5 bits;
    "111....." (deactivated) for None or when even the largest unit is too small."""
    if seconds is not None:
        for unit, bits in units:
            v = (seconds + unit - 1) // unit
            if v <= 31:
                return "{:03b}{:05b}".format(bits, v)
    return "11100000"


class Modem:
    """Modem(stream or AT, host, port, apn=None, log=None): one UDP socket to host:port over the modem."""

    sock = None  # no socket for select: the asyncio driver polls wait(0)
    cut = False
    # Dialect commands ("%s" the APN); None when the modem has none
    APN = None
    ACTIVATE = None

    def __init__(self, stream, host, port, apn=None, log=None):
        self.at = stream if isinstance(stream, AT) else AT(stream, log, start=False)
        self.host = host
        self.port = port
        self.apn = apn
        self.log = log
        self.q = []  # received datagrams
        self.up = False  # the socket is open
        self.attached = False
        self.data = False  # a data URC came: read
        self.fails = 0
        self.flag = None  # set by URC handlers a dialect waits for
        self.at.urc("+CEREG:", self._cereg)
        self.at.urc("RDY", self._reset)
        self.urcs()

    # -- dialect hooks -----------------------------------------------------------------------------
    def urcs(self):
        """Register the dialect's URCs (data, network lost)."""

    def activate(self):
        if self.ACTIVATE:
            self.at.cmd(self.ACTIVATE, 10000)

    def connect(self):
        """Open the UDP socket."""
        raise NotImplementedError

    def put(self, buf, n):
        """Send one datagram."""
        raise NotImplementedError

    def get(self):
        """Read one datagram: bytes, or None when nothing is waiting."""
        raise NotImplementedError

    def disconnect(self):
        raise NotImplementedError

    # -- attach ------------------------------------------------------------------------------------
    def attach(self):
        """Radio on, the APN, wait for registration (home or roaming), activate the PDP context."""
        at = self.at
        if not at.ready:
            at.start()
        at.cmd("AT+CFUN=1", 10000)
        if self.apn and self.APN:
            at.cmd(self.APN % self.apn)
        start = ticks_ms()
        while True:
            stat = -1
            for line in at.cmd("AT+CEREG?"):
                if line.startswith(b"+CEREG:"):
                    stat = int(line.split(b",")[1])
            if stat == 1 or stat == 5:
                break
            if ticks_diff(ticks_ms(), start) > _ATTACH_MS:
                raise ATError("not registered")
            self.wait_for(None, 1000)
        self.activate()
        self.attached = True

    def open(self):
        """Attach (unless attached) and open the socket."""
        if not self.attached:
            self.attach()
        self.connect()
        self.up = True
        self.fails = 0
        if self.log:
            self.log("modem: socket open to %s:%d" % (self.host, self.port))

    def wait_for(self, flag, ms):
        """Poll URCs until self.flag becomes `flag` (never, for None) or ms pass; self.flag is then returned."""
        deadline = ticks_add(ticks_ms(), ms)
        while True:
            self.at.poll()
            if flag is not None and self.flag == flag:
                return self.flag
            left = ticks_diff(deadline, ticks_ms())
            if left <= 0:
                return self.flag
            self.at._wait(min(left, 50))

    # -- URCs --------------------------------------------------------------------------------------
    def _cereg(self, line):  # unsolicited +CEREG: stat[,...]
        stat = line[7:].split(b",")[0].strip()
        if stat not in (b"1", b"5"):
            self.lost()

    def _reset(self, line):  # the modem restarted: echo, attach and sockets are gone
        self.at.ready = False
        self.lost()

    def lost(self):
        """Network lost (a URC) or commands failing: the socket is gone; re-attach at the next send."""
        if self.log and (self.up or self.attached):
            self.log("modem: network lost")
        self.up = self.attached = False
        self.data = False

    def failed(self, e):
        self.fails += 1
        if self.log:
            self.log("modem: %s" % e)
        if self.fails >= _FAILS:
            if self.up:
                try:
                    self.disconnect()
                except ATError:
                    pass  # the socket may be gone already: re-attaching cleans up
            self.lost()

    # -- the transport interface -------------------------------------------------------------------
    def send(self, buf, n):
        try:
            if not self.up:
                self.open()
            self.put(buf, n)
            self.fails = 0
        except ATError as e:  # the datagram is lost: CoAP retransmission copes
            self.failed(e)

    def fetch(self):
        """Read what a data URC announced into the queue."""
        while self.data and self.up:
            try:
                d = self.get()
            except ATError as e:
                self.data = False
                self.failed(e)
                return
            if d is None:
                self.data = False
                return
            if len(self.q) == _QUEUE:
                self.q.pop(0)
                if self.log:
                    self.log("modem: queue full, oldest datagram dropped")
            self.q.append(d)
            self.fails = 0
            if not self.AGAIN:
                self.data = False

    AGAIN = True  # after a datagram, read again until the modem says none (False: the next URC says)

    def recv(self):
        if not self.q:
            self.at.poll()
            self.fetch()
        return self.q.pop(0) if self.q else None

    def wait(self, timeout_ms):
        deadline = ticks_add(ticks_ms(), timeout_ms)
        while True:
            self.at.poll()
            self.fetch()
            if self.q:
                return True
            left = ticks_diff(deadline, ticks_ms())
            if left <= 0:
                return False
            self.at._wait(left)

    def close(self):
        if self.up:
            self.up = False
            try:
                self.disconnect()
            except ATError as e:
                if self.log:
                    self.log("modem: close %s" % e)

    # -- radio -------------------------------------------------------------------------------------
    def signal(self):
        """dBm from AT+CSQ (TS 27.007 8.5: rssi 0..31 is -113 + 2*rssi dBm), None when unknown (99)."""
        for line in self.at.cmd("AT+CSQ"):
            if line.startswith(b"+CSQ:"):
                rssi = int(line[5:].split(b",")[0])
                return None if rssi == 99 else -113 + 2 * rssi
        return None

    def psm(self, t3412_s, t3324_s=None):
        """Ask for PSM with a periodic TAU of t3412_s and an active time of t3324_s (the network grants
        its own values); psm(None) turns PSM off. Returns the command sent."""
        if t3412_s is None:
            c = "AT+CPSMS=0"
        else:
            c = 'AT+CPSMS=1,,,"%s","%s"' % (timer_bits(t3412_s, _T3412), timer_bits(t3324_s, _T3324))
        self.at.cmd(c)
        return c


def for_modem(name, stream, host, port, apn=None, log=None):
    """The driver for a modem name: sim7080, bg95, sara-r5, nrf91."""
    names = "sim7080 bg95 sara-r5 nrf91".split()
    if name not in names:
        raise ValueError("unknown modem %s (%s)" % (name, " ".join(names)))
    k = names.index(name)
    mod = ("modem_sim7080", "modem_bg95", "modem_sara", "modem_nrf91")[k]
    mod = __import__("lwm2m_mpy.transport." + mod, None, None, ("Driver",))
    return mod.Driver(stream, host, port, apn, log)
