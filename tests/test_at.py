"""The AT engine and the modem drivers against a scripted fake UART (docs/modem.md); runs in micropython too."""
import gc
import sys

from lwm2m_mpy.transport.at import AT, ATError
from lwm2m_mpy.transport.modem import for_modem, timer_bits, _T3412, _T3324

MPY = True
MPY_HEAP = "256k"

IS_MPY = sys.implementation.name == "micropython"


class Fake:
    """A UART that answers a script: [(bytes the engine must write, bytes the modem answers)], in order.
    chunk: the most bytes any()/readinto hand out at once (1: byte by byte)."""

    def __init__(self, script=(), chunk=1000):
        self.script = list(script)
        self.inbox = bytearray()
        self.pos = 0
        self.pending = bytearray()
        self.chunk = chunk
        self.written = []

    def feed(self, data):
        if self.pos == len(self.inbox):
            self.inbox = bytearray(data)
            self.pos = 0
        else:
            self.inbox += data

    def write(self, buf):
        self.pending += buf
        if not self.script:
            raise AssertionError("unexpected write %r" % bytes(self.pending))
        want, reply = self.script[0]
        if bytes(self.pending) == want:
            self.written.append(bytes(self.pending))
            self.pending = bytearray()
            self.script.pop(0)
            self.feed(reply)
        elif len(self.pending) >= len(want) or bytes(self.pending) != want[:len(self.pending)]:
            raise AssertionError("wrote %r, script wants %r" % (bytes(self.pending), want))

    def any(self):
        return min(len(self.inbox) - self.pos, self.chunk)

    def readinto(self, buf, n=None):
        n = min(len(buf) if n is None else n, self.any())
        buf[:n] = self.inbox[self.pos:self.pos + n]
        self.pos += n
        return n


def c(text, reply="\r\nOK\r\n"):
    """A script step: the command (CR added) and the reply (text or bytes)."""
    return (text.encode() + b"\r", reply.encode() if isinstance(reply, str) else reply)


BOOT = [c("AT", "AT\r\r\nOK\r\n"), c("ATE0", "ATE0\r\r\nOK\r\n"), c("AT+CMEE=1")]


def booted(script, chunk=1000, log=None):
    f = Fake(BOOT + script, chunk)
    return AT(f, log), f


# -- the engine -----------------------------------------------------------------------------------

def test_startup_and_response():
    at, f = booted([c("AT+CSQ", "\r\n+CSQ: 20,99\r\n\r\nOK\r\n")])
    assert at.ready
    assert at.cmd("AT+CSQ") == [b"+CSQ: 20,99"]
    assert not f.script


def test_startup_retries_until_ok():
    f = Fake([c("AT", ""), c("AT", "\r\nOK\r\n")] + BOOT[1:])
    at = AT(f)
    assert at.ready and not f.script


def test_errors():
    at, f = booted([c("AT+X", "\r\nERROR\r\n"), c("AT+Y", "\r\n+CME ERROR: 100\r\n"),
                    c("AT+Z", "\r\n+CMS ERROR: 500\r\n"), c("AT+CSQ")])
    for cmd, text in (("AT+X", "ERROR"), ("AT+Y", "+CME ERROR: 100"), ("AT+Z", "+CMS ERROR: 500")):
        try:
            at.cmd(cmd)
            assert False
        except ATError as e:
            assert e.args[0] == text
    assert at.cmd("AT+CSQ") == []  # the engine is usable after an error


def test_timeout():
    at, f = booted([c("AT+CSQ", "\r\n+CSQ: 1")])  # never finished
    try:
        at.cmd("AT+CSQ", 50)
        assert False
    except ATError as e:
        assert e.args[0] == "timeout"


def test_urc_inside_response():
    seen = []
    at, f = booted([c("AT+CEREG?", "\r\n+CEREG: 0,1\r\n\r\n+CADATAIND: 0\r\n\r\nOK\r\n")])
    at.urc("+CADATAIND:", seen.append)
    assert at.cmd("AT+CEREG?") == [b"+CEREG: 0,1"]
    assert seen == [b"+CADATAIND: 0"]


def test_urc_outside_command_and_unknown_lines():
    seen = []
    logged = []
    at, f = booted([], log=logged.append)
    at.urc("+QIURC:", seen.append)
    f.feed(b'\r\n+QIURC: "recv",0\r\n\r\nSOMETHING\r\n')
    at.poll()
    assert seen == [b'+QIURC: "recv",0']
    assert len(logged) == 1 and "SOMETHING" in logged[0]


def test_split_and_byte_by_byte():
    for chunk in (1, 3, 7):
        at, f = booted([c("AT+CSQ", "\r\n+CSQ: 31,0\r\n\r\nOK\r\n")], chunk)
        assert at.cmd("AT+CSQ") == [b"+CSQ: 31,0"]


def test_prompt_and_binary_data():
    payload = b"\x00\r\n>OK\r\n\xff"
    at, f = booted([c("AT+CASEND=0,%d" % len(payload), "\r\n> "), (payload, b"\r\nOK\r\n")], 2)
    assert at.cmd("AT+CASEND=0,%d" % len(payload), 1000, b">", payload) == []
    at, f = booted([c("AT#XSEND", "\r\n@"), (b"xy", b"\r\nOK\r\n")])
    at.cmd("AT#XSEND", 1000, b"@", b"xy")
    assert not f.script


def test_binary_payloads_with_crlf():
    payload = b"\r\n\r\nOK\r\nERROR\n"
    n = len(payload)
    got = []
    # +QIRD: header line, CR LF, then the bytes
    at, f = booted([c("AT+QIRD=0,1500", b"\r\n+QIRD: %d\r\n" % n + payload + b"\r\n\r\nOK\r\n")], 1)
    at.cmd("AT+QIRD=0,1500", on=lambda line: got.append(at.binary(int(line[6:]))))
    # +CARECV: n, and the bytes on the same line
    at, f = booted([c("AT+CARECV=0,1460", b"\r\n+CARECV: %d," % n + payload + b"\r\n\r\nOK\r\n")], 5)
    at.cmd("AT+CARECV=0,1460", on=lambda line: got.append(at.binary(int(line[9:-1]))), head=b"+CARECV:")
    assert got == [payload, payload]


def test_overlong_line_dropped():
    logged = []
    at, f = booted([c("AT+CSQ", b"\r\n+CSQ: " + b"9" * 600 + b"\r\n+CSQ: 5,5\r\n\r\nOK\r\n")], log=logged.append)
    assert at.cmd("AT+CSQ") == [b"+CSQ: 5,5"]
    assert logged == ["at: over-long line dropped"]
    assert len(at.buf) == 256


def test_garbage_does_not_grow_the_heap():
    count = [0]

    def log(msg):
        count[0] += 1

    at, f = booted([c("AT+CSQ", "\r\n+CSQ: 9,9\r\n\r\nOK\r\n")], chunk=64, log=log)
    line = b"\r\n#garbage 0123456789 ,,, \xff\xfe\r\n" + b"x" * 300 + b"\n"
    def rounds(k):
        for i in range(k):
            f.feed(line * 5)
            at.poll()
        f.inbox = bytearray()
        f.pos = 0
        gc.collect()
        return gc.mem_alloc() if IS_MPY else 0

    before = rounds(10)  # first use: whatever the engine and the fake make once
    after = rounds(1000)  # 10,000 garbage lines (and 5,000 of them over-long)
    assert after - before < 400, (before, after)  # bounded: nothing kept per line
    assert count[0] == 10100, count[0]
    assert len(at.buf) == 256 and len(at.rx) == 64
    assert at.cmd("AT+CSQ") == [b"+CSQ: 9,9"]  # still in step


# -- signal and PSM -------------------------------------------------------------------------------

def test_timer_bits():
    # T3412 (GPRS Timer 3, TS 24.008 10.5.7.4a): unit bits 8-6 (011 2 s, 100 30 s, 101 1 min, 000 10 min,
    # 001 1 h, 010 10 h, 110 320 h), value bits 5-1. 1 h = 6 x 10 min -> 000 00110.
    assert timer_bits(3600, _T3412) == "00000110"
    assert timer_bits(60, _T3412) == "01111110"  # 30 x 2 s
    assert timer_bits(86400, _T3412) == "00111000"  # 24 h = 24 x 1 h -> 001 11000
    assert timer_bits(10, _T3412) == "01100101"  # 5 x 2 s
    # T3324 (GPRS Timer 2, 10.5.7.3): 000 2 s, 001 1 min, 010 6 min. 60 s = 30 x 2 s -> 000 11110;
    # 10 min = 10 x 1 min -> 001 01010; 1 h = 10 x 6 min -> 010 01010; too long: deactivated 111
    assert timer_bits(60, _T3324) == "00011110"
    assert timer_bits(600, _T3324) == "00101010"
    assert timer_bits(3600, _T3324) == "01001010"
    assert timer_bits(None, _T3324) == "11100000"
    assert timer_bits(100000, _T3324) == "11100000"


def test_signal_and_psm():
    f = Fake(BOOT + [c("AT+CSQ", "\r\n+CSQ: 20,99\r\n\r\nOK\r\n"), c("AT+CSQ", "\r\n+CSQ: 99,99\r\n\r\nOK\r\n"),
                     c('AT+CPSMS=1,,,"00000110","00011110"'), c("AT+CPSMS=0")])
    m = for_modem("bg95", AT(f), "10.0.0.1", 5683)
    assert m.signal() == -73  # -113 + 2 x 20
    assert m.signal() is None  # 99: unknown
    assert m.psm(3600, 60) == 'AT+CPSMS=1,,,"00000110","00011110"'
    assert m.psm(None) == "AT+CPSMS=0"
    assert not f.script


# -- the dialects (replies from docs/modem.md's table) -----------------------------------------------

REG = [c("AT+CFUN=1"), c("AT+CEREG?", "\r\n+CEREG: 0,1\r\n\r\nOK\r\n")]
HOST = '"10.0.0.1",5683'
DATA = b"\x40\x01\r\n\x00"


def _run(name, attach, opening, send, data_urc, read, lost, chunk=1000):
    """Attach and open at the first send, a datagram in, the network lost, re-attach at the next send."""
    f = Fake(BOOT + attach + opening + send, chunk)
    logged = []
    m = for_modem(name, f, "10.0.0.1", 5683, "iot", logged.append)
    assert m.sock is None
    m.send(bytearray(b"\x40\x01\r\n\x00 and more"), 5)
    assert m.up and not f.script, f.script
    assert not m.wait(0) and m.recv() is None
    f.script = list(read)
    f.feed(data_urc)
    assert m.wait(200)
    assert m.recv() == DATA
    assert m.recv() is None
    assert not f.script, f.script
    f.feed(lost)
    assert m.recv() is None
    assert not m.up and not m.attached
    f.script = attach + opening + send  # radio, APN, registration, activation again; opened, sent
    m.send(DATA, 5)
    assert m.up and not f.script, f.script
    return m, f


def test_sim7080():
    m, f = _run("sim7080", [c("AT+CFUN=1"), c('AT+CNCFG=0,1,"iot"'), REG[1],
                            c("AT+CNACT=0,1", "\r\nOK\r\n\r\n+APP PDP: 0,ACTIVE\r\n")],
                [c('AT+CAOPEN=0,0,"UDP",%s' % HOST, "\r\n+CAOPEN: 0,0\r\n\r\nOK\r\n")],
                [c("AT+CASEND=0,5", "\r\n> "), (DATA, b"\r\nOK\r\n")],
                b"\r\n+CADATAIND: 0\r\n",
                [c("AT+CARECV=0,1460", b"\r\n+CARECV: 5," + DATA + b"\r\n\r\nOK\r\n"),
                 c("AT+CARECV=0,1460", "\r\n+CARECV: 0\r\n\r\nOK\r\n")],
                b"\r\n+APP PDP: 0,DEACTIVE\r\n", chunk=3)
    f.script = [c("AT+CACLOSE=0")]
    m.close()
    assert not f.script


def test_bg95():
    _run("bg95", [c("AT+CFUN=1"), c('AT+QICSGP=1,1,"iot","","",1'), REG[1], c("AT+QIACT=1")],
         [c('AT+QIOPEN=1,0,"UDP",%s,0,0' % HOST, "\r\nOK\r\n\r\n+QIOPEN: 0,0\r\n")],
         [c("AT+QISEND=0,5", "\r\n> "), (DATA, b"\r\nSEND OK\r\n")],
         b'\r\n+QIURC: "recv",0\r\n',
         [c("AT+QIRD=0,1500", b"\r\n+QIRD: 5\r\n" + DATA + b"\r\n\r\nOK\r\n"),
          c("AT+QIRD=0,1500", "\r\n+QIRD: 0\r\n\r\nOK\r\n")],
         b'\r\n+QIURC: "pdpdeact",1\r\n', chunk=1)


def test_sara_r5():
    hexdata = "40010d0a00"
    _run("sara-r5", [c("AT+CFUN=1"), c('AT+CGDCONT=1,"IP","iot"'), REG[1]],
         [c("AT+UDCONF=1,1"), c("AT+USOCR=17", "\r\n+USOCR: 0\r\n\r\nOK\r\n")],
         [c('AT+USOST=0,%s,5,"%s"' % (HOST, hexdata), "\r\n+USOST: 0,5\r\n\r\nOK\r\n")],
         b"\r\n+UUSORF: 0,5\r\n",
         [c("AT+USORF=0,1024", '\r\n+USORF: 0,%s,5,"%s"\r\n\r\nOK\r\n' % (HOST, hexdata))],
         b"\r\n+UUSOCL: 0\r\n", chunk=4)


def test_sara_r5_long_hex_read():
    f = Fake(BOOT + [c("AT+USORF=0,1024", '\r\n+USORF: 0,"10.0.0.1",5683,1024,"%s"\r\n\r\nOK\r\n' % ("a5" * 1024))])
    m = for_modem("sara-r5", f, "10.0.0.1", 5683)
    m.at.start()
    assert m.get() == b"\xa5" * 1024  # 2 KiB of hex: not through the 256-byte line buffer


def test_nrf91():
    _run("nrf91", [c("AT+CFUN=1"), c('AT+CGDCONT=0,"IP","iot"'), REG[1]],
         [c("AT#XSOCKET=1,2,0", "\r\n#XSOCKET: 0,2,17\r\n\r\nOK\r\n"), c("AT#XAPOLL=1,1,0")],
         [c('AT#XSENDTO=%s,0,"40010d0a00"' % HOST, "\r\n#XSENDTO: 5\r\n\r\nOK\r\n")],
         b"\r\n#XAPOLL: 0,1\r\n",
         [c("AT#XRECVFROM=0", b'\r\n#XRECVFROM: 5,"10.0.0.1",5683\r\n' + DATA + b"\r\nOK\r\n")],
         b"\r\n+CEREG: 2\r\n")


def test_registration_search_then_home():
    f = Fake(BOOT + [c("AT+CFUN=1"), c("AT+CEREG?", "\r\n+CEREG: 0,2\r\n\r\nOK\r\n"),
                     c("AT+CEREG?", "\r\n+CEREG: 0,5\r\n\r\nOK\r\n"),
                     c("AT#XSOCKET=1,2,0", "\r\n#XSOCKET: 0,2,17\r\n\r\nOK\r\n"), c("AT#XAPOLL=1,1,0")])
    m = for_modem("nrf91", f, "10.0.0.1", 5683)  # no APN: none sent
    m.open()
    assert m.up and not f.script


def test_failures_drop_the_socket():
    f = Fake(BOOT + REG + [c("AT#XSOCKET=1,2,0", "\r\n#XSOCKET: 0,2,17\r\n\r\nOK\r\n"), c("AT#XAPOLL=1,1,0"),
                           c('AT#XSENDTO=%s,0,"01"' % HOST, "\r\n+CME ERROR: 100\r\n"),
                           c('AT#XSENDTO=%s,0,"02"' % HOST, "\r\n+CME ERROR: 100\r\n"),
                           c("AT#XSOCKET=0", "\r\nERROR\r\n")])
    m = for_modem("nrf91", f, "10.0.0.1", 5683)
    m.send(b"\x01", 1)
    assert m.up  # one failure: kept
    m.send(b"\x02", 1)
    assert not m.up and not m.attached and not f.script  # two: closed, re-attach at the next send


def test_modem_reset_restarts_the_engine():
    f = Fake(BOOT + REG + [c("AT#XSOCKET=1,2,0", "\r\n#XSOCKET: 0,2,17\r\n\r\nOK\r\n"), c("AT#XAPOLL=1,1,0")])
    m = for_modem("nrf91", f, "10.0.0.1", 5683)
    m.open()
    f.feed(b"\r\nRDY\r\n")
    m.wait(0)
    assert not m.up and not m.at.ready
    f.script = BOOT + REG + [c("AT#XSOCKET=1,2,0", "\r\n#XSOCKET: 0,2,17\r\n\r\nOK\r\n"), c("AT#XAPOLL=1,1,0")]
    m.open()
    assert m.up and m.at.ready and not f.script


def test_unknown_modem():
    try:
        for_modem("sim800", Fake(), "h", 1)
        assert False
    except ValueError as e:
        assert "sim7080" in e.args[0]
