"""tools/modem_emu.py (docs/modem.md, "Emulator"): every dialect's table driven over TCP by a small AT
client in this file, a UDP peer on 127.0.0.1 answering the modem's socket, each fault's visible effect,
refusal of non-loopback destinations, the byte counters and the CLI. CPython only; every wait is bounded."""
import os
import re
import select
import signal
import socket
import subprocess
import sys
import time

import pytest

from conftest import ROOT

sys.path.append(str(ROOT / "tools"))  # appended: tools/ must not shadow other modules
from modem_emu import DIALECTS, LOST_URC, ModemEmulator  # noqa: E402

FINAL = re.compile(rb"^(OK|ERROR|SEND OK|SEND FAIL|\+CME ERROR: \d+|\+CMS ERROR: \d+)$")
# a payload with everything a line parser trips on: CR LF, an "OK" line, NUL, 0xff
PAYLOAD = b"\x00\xff\r\nOK\r\n+CARECV: 3,\r\n\x7f"
ANSWER = b"\xfe\r\nERROR\r\n\x00\x01"


class ATClient:
    """A test-side AT client over a file descriptor (TCP socket or pty): lines, prompts, binary payloads;
    counts what it wrote and read, and in how many pieces the bytes came."""

    def __init__(self, fd):
        self.fd = fd
        self.buf = b""
        self.written = 0
        self.received = 0
        self.pieces = 0
        self.urcs = []  # lines seen outside what a cmd() expected

    @classmethod
    def tcp(cls, port):
        sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        client = cls(sock.fileno())
        client.sock = sock
        return client

    def close(self):
        if hasattr(self, "sock"):
            self.sock.close()

    def write(self, data):
        if isinstance(data, str):
            data = data.encode("latin-1")
        os.write(self.fd, data)
        self.written += len(data)

    def _fill(self, deadline):
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("nothing from the modem; buffer %r" % self.buf[:200])
        ready, _, _ = select.select([self.fd], [], [], left)
        if not ready:
            raise TimeoutError("nothing from the modem; buffer %r" % self.buf[:200])
        data = os.read(self.fd, 65536)
        if not data:
            raise EOFError("modem closed the stream")
        self.pieces += 1
        self.received += len(data)
        self.buf += data

    def drain(self, quiet=0.2):
        """Read until the modem has been quiet for `quiet` s; returns what came."""
        start = len(self.buf)
        while True:
            try:
                self._fill(time.monotonic() + quiet)
            except TimeoutError:
                data = self.buf[start:]
                return data

    def line(self, timeout=3):
        """The next non-empty line, without its CR LF."""
        deadline = time.monotonic() + timeout
        while True:
            self.buf = self.buf.lstrip(b"\r\n")
            m = re.search(rb"\r\n|\r|\n", self.buf)
            if m:
                line, self.buf = self.buf[:m.start()], self.buf[m.end():]
                return line
            self._fill(deadline)

    def expect(self, regex, timeout=3):
        """Skip lines (kept in .urcs) until one matches regex; returns the match."""
        deadline = time.monotonic() + timeout
        while True:
            line = self.line(max(0.01, deadline - time.monotonic()))
            m = re.search(regex, line)
            if m:
                return m
            self.urcs.append(line)

    def cmd(self, text, data=None, prompt=rb"\r\n> ", binary=None, timeout=3, echo=False):
        """Send a command; with data: wait for the prompt, write data. binary: a regex (bytes) whose group
        1 is the length of the payload after it (e.g. rb"\\+CARECV: ([1-9]\\d*),"). Returns (info lines,
        final result, payload or None). Lines matching `urc` prefixes known to the caller stay in lines."""
        deadline = time.monotonic() + timeout
        self.write(text + "\r")
        if echo:
            while not self.buf.lstrip(b"\r\n").startswith(text.encode() + b"\r"):
                self._fill(deadline)
            self.buf = self.buf.lstrip(b"\r\n")[len(text) + 1:]
        lines, payload = [], None
        if data is not None:
            while True:
                m = re.search(prompt, self.buf)
                if m:
                    before, self.buf = self.buf[:m.start()], self.buf[m.end():]
                    lines += [x for x in re.split(rb"[\r\n]+", before) if x]
                    if any(FINAL.match(x) for x in lines):  # refused before the prompt
                        return lines[:-1], lines[-1], None
                    break
                if re.search(rb"(^|\r\n)(ERROR|\+CME ERROR: \d+)\r\n", self.buf):
                    break
                self._fill(deadline)
            if m:
                self.write(data)
        while True:
            self.buf = self.buf.lstrip(b"\r\n")
            if binary is not None and payload is None:
                m = re.match(binary, self.buf)
                if m:
                    n = int(m.group(1))
                    while len(self.buf) < m.end() + n:
                        self._fill(deadline)
                    lines.append(self.buf[:m.end()])
                    payload, self.buf = self.buf[m.end():m.end() + n], self.buf[m.end() + n:]
                    continue
                if re.match(binary[:8], self.buf) and b"\r\n" not in self.buf:  # header not complete yet
                    self._fill(deadline)
                    continue
            m = re.search(rb"\r\n|\r|\n", self.buf)
            if not m:
                self._fill(deadline)
                continue
            line, self.buf = self.buf[:m.start()], self.buf[m.end():]
            if FINAL.match(line):
                return lines, line.decode(), payload
            lines.append(line)

    def ok(self, text, **kw):
        lines, final, payload = self.cmd(text, **kw)
        assert final in ("OK", "SEND OK"), (text, lines, final)
        return lines if payload is None else (lines, payload)


@pytest.fixture
def peer():
    """The UDP server the modem's socket talks to (127.0.0.1)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(3)
    yield sock
    sock.close()


@pytest.fixture
def emulator():
    started = []

    def start(dialect, **kw):
        kw.setdefault("attach_delay", 0.3)
        emu = ModemEmulator(dialect, **kw).start()
        client = ATClient.tcp(emu.port)
        started.append((emu, client))
        return emu, client

    yield start
    for emu, client in started:
        client.close()
        emu.stop()


# --- the dialect table, as a driver walks it ---------------------------------------------------------------

APN = {"sim7080": 'AT+CNCFG=0,1,"iot.test"', "bg95": 'AT+QICSGP=1,1,"iot.test","","",1',
       "sara-r5": 'AT+CGDCONT=1,"IP","iot.test"', "nrf91": 'AT+CGDCONT=0,"IP","iot.test"'}
DATA_URC = {"sim7080": rb"^\+CADATAIND: 0$", "bg95": rb'^\+QIURC: "recv",0$', "sara-r5": rb"^\+UUSORF: 0,(\d+)$",
            "nrf91": rb"^#XAPOLL: 0,1$"}


def start_session(client, dialect, cmee=True):
    """Start-up as the AT engine does it, then attach: CFUN, the APN, CEREG until 1. Returns the stats
    CEREG gave on the way."""
    client.ok("AT", echo=True)  # echo is on at power-on
    client.ok("ATE0", echo=True)
    client.ok("AT")
    if cmee:
        client.ok("AT+CMEE=1")
    client.ok("AT+CFUN=1")
    client.ok(APN[dialect])
    stats = []
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        (line,) = client.ok("AT+CEREG?")
        stats.append(int(re.match(rb"\+CEREG: 0,(\d)$", line).group(1)))
        if stats[-1] in (1, 5):
            return stats
        time.sleep(0.05)
    raise AssertionError("never attached: %s" % stats)


def open_socket(client, dialect, port, host="127.0.0.1"):
    """Activate (where the dialect has it) and open the UDP socket; returns the final result."""
    if dialect == "sim7080":
        client.ok("AT+CNACT=0,1")
        client.expect(rb"^\+APP PDP: 0,ACTIVE$")
        lines, final, _ = client.cmd('AT+CAOPEN=0,0,"UDP","%s",%d' % (host, port))
        if final == "OK":
            assert lines == [b"+CAOPEN: 0,0"]
        return final
    if dialect == "bg95":
        client.ok("AT+QIACT=1")
        lines, final, _ = client.cmd('AT+QIOPEN=1,0,"UDP","%s",%d,0,0' % (host, port))
        if final == "OK":
            client.expect(rb"^\+QIOPEN: 0,0$")
        return final
    if dialect == "sara-r5":
        client.ok("AT+UDCONF=1,1")
        assert client.ok("AT+USOCR=17") == [b"+USOCR: 0"]
        return "OK"
    assert client.ok("AT#XSOCKET=1,2,0") == [b"#XSOCKET: 0,2,17"]
    client.ok("AT#XAPOLL=1,1,0")
    return "OK"


def send(client, dialect, port, payload, host="127.0.0.1"):
    """The dialect's send; returns (info lines, final)."""
    n = len(payload)
    if dialect == "sim7080":
        lines, final, _ = client.cmd("AT+CASEND=0,%d" % n, data=payload)
    elif dialect == "bg95":
        lines, final, _ = client.cmd("AT+QISEND=0,%d" % n, data=payload)
    elif dialect == "sara-r5":
        lines, final, _ = client.cmd('AT+USOST=0,"%s",%d,%d,"%s"' % (host, port, n, payload.hex().upper()))
        if final == "OK":
            assert lines == [b"+USOST: 0,%d" % n]
    else:
        lines, final, _ = client.cmd('AT#XSENDTO="%s",%d,0,"%s"' % (host, port, payload.hex()))
        if final == "OK":
            assert lines == [b"#XSENDTO: %d" % n]
    return lines, final


def read(client, dialect):
    """The dialect's read; returns (payload or None, source (ip, port) where the reply names it)."""
    if dialect == "sim7080":
        lines, final, payload = client.cmd("AT+CARECV=0,1460", binary=rb"\+CARECV: ([1-9]\d*),")
        assert final == "OK"
        if payload is None:
            assert lines == [b"+CARECV: 0"]
        return payload, None
    if dialect == "bg95":
        lines, final, payload = client.cmd("AT+QIRD=0,1500", binary=rb"\+QIRD: ([1-9]\d*)\r\n")
        assert final == "OK"
        if payload is None:
            assert lines == [b"+QIRD: 0"]
        return payload, None
    if dialect == "sara-r5":
        lines, final, _ = client.cmd("AT+USORF=0,1024")
        assert final == "OK" and len(lines) == 1, lines
        m = re.match(rb'\+USORF: 0,"([\d.]+)",(\d+),(\d+),"([0-9A-F]*)"$', lines[0])
        if not m:
            assert lines == [b"+USORF: 0,0"]
            return None, None
        data = bytes.fromhex(m.group(4).decode())
        assert len(data) == int(m.group(3))
        return data, (m.group(1).decode(), int(m.group(2)))
    lines, final, payload = client.cmd("AT#XRECVFROM=0", binary=rb'#XRECVFROM: ([1-9]\d*),"[\d.]+",\d+\r\n')
    assert final == "OK"
    if payload is None:
        assert lines == [b'#XRECVFROM: 0,"",0']
        return None, None
    m = re.match(rb'#XRECVFROM: (\d+),"([\d.]+)",(\d+)\r\n', lines[-1])
    return payload, (m.group(2).decode(), int(m.group(3)))


CLOSE = {"sim7080": "AT+CACLOSE=0", "bg95": "AT+QICLOSE=0", "sara-r5": "AT+USOCL=0", "nrf91": "AT#XSOCKET=0"}


@pytest.mark.parametrize("dialect", DIALECTS)
def test_whole_table(emulator, peer, dialect):
    emu, client = emulator(dialect)
    stats = start_session(client, dialect)
    assert stats[0] == 2 and stats[-1] == 1  # searching, then attached after attach_delay
    assert client.ok("AT+CSQ") == [b"+CSQ: 20,99"]
    client.ok('AT+CPSMS=1,,,"00000100","00000001"')
    assert emu.psms == '1,,,"00000100","00000001"'
    assert emu.apn == "iot.test"
    port = peer.getsockname()[1]
    assert open_socket(client, dialect, port) == "OK"

    lines, final = send(client, dialect, port, PAYLOAD)
    assert final == ("SEND OK" if dialect == "bg95" else "OK"), (lines, final)
    data, modem_addr = peer.recvfrom(2048)
    assert data == PAYLOAD and modem_addr[0] == "127.0.0.1"

    peer.sendto(ANSWER, modem_addr)
    m = client.expect(DATA_URC[dialect])
    if dialect == "sara-r5":
        assert int(m.group(1)) == len(ANSWER)
    got, source = read(client, dialect)
    assert got == ANSWER
    if source is not None:
        assert source == peer.getsockname()
    assert read(client, dialect) == (None, None)  # nothing more queued

    # two datagrams: two URCs, two reads, in order
    peer.sendto(b"one", modem_addr)
    peer.sendto(b"two\r\n", modem_addr)
    client.expect(DATA_URC[dialect])
    client.expect(DATA_URC[dialect])
    assert read(client, dialect)[0] == b"one"
    assert read(client, dialect)[0] == b"two\r\n"

    client.ok(CLOSE[dialect])
    assert not emu.socks
    assert emu.log[:3] == ["AT", "ATE0", "AT"]
    assert client.urcs == []  # nothing unexpected on the stream


@pytest.mark.parametrize("dialect", DIALECTS)
def test_refuses_non_loopback(emulator, peer, dialect):
    emu, client = emulator(dialect, attach_delay=0)
    start_session(client, dialect)
    if dialect in ("sim7080", "bg95"):
        assert open_socket(client, dialect, 5683, host="192.0.2.1") == "+CME ERROR: 3"
        assert not emu.socks
    else:
        open_socket(client, dialect, peer.getsockname()[1])
        assert send(client, dialect, 5683, b"x", host="192.0.2.1")[1] == "+CME ERROR: 3"
        assert send(client, dialect, 5683, b"x", host="example.com")[1] == "+CME ERROR: 3"


def test_unknown_commands_and_plain_errors(emulator):
    emu, client = emulator("bg95", attach_delay=0)
    client.ok("ATE0", echo=True)
    assert client.cmd("AT+NOSUCH=1")[1] == "ERROR"
    assert client.cmd("AT+CASEND=0,5")[1] == "ERROR"  # another dialect's command
    assert client.cmd("AT+QIRD=0,1500")[1] == "ERROR"  # no socket, CMEE=0: plain ERROR
    client.ok("AT+CMEE=1")
    assert client.cmd("AT+QIRD=0,1500")[1] == "+CME ERROR: 3"
    assert client.cmd("AT+NOSUCH")[1] == "ERROR"
    client.write(b"hello\r\n")  # not a command: ignored, like a modem
    client.ok("AT")


def test_activate_needs_registration(emulator):
    emu, client = emulator("sim7080", attach_delay=5)
    client.ok("ATE0", echo=True)
    client.ok("AT+CMEE=1")
    assert client.ok("AT+CEREG?") == [b"+CEREG: 0,2"]
    assert client.cmd("AT+CNACT=0,1")[1] == "+CME ERROR: 3"
    assert client.cmd('AT+CAOPEN=0,0,"UDP","127.0.0.1",5683')[1] == "+CME ERROR: 3"


def test_roaming(emulator):
    emu, client = emulator("nrf91", attach_delay=0, stat=5)
    assert start_session(client, "nrf91")[-1] == 5


# --- faults ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("dialect", DIALECTS)
def test_fault_error(emulator, dialect):
    emu, client = emulator(dialect, attach_delay=0)
    client.ok("ATE0", echo=True)
    emu.fault("error")
    assert client.cmd("AT+CSQ") == ([], "+CME ERROR: 100", None)
    assert client.ok("AT+CSQ") == [b"+CSQ: 20,99"]  # one command only


@pytest.mark.parametrize("dialect", DIALECTS)
def test_fault_lost_and_regained(emulator, peer, dialect):
    emu, client = emulator(dialect, attach_delay=0.2)
    start_session(client, dialect)
    port = peer.getsockname()[1]
    open_socket(client, dialect, port)
    assert send(client, dialect, port, b"before")[1] in ("OK", "SEND OK")
    assert peer.recvfrom(100)[0] == b"before"

    emu.fault("lost")
    assert client.line() == LOST_URC[dialect].encode()
    assert client.ok("AT+CEREG?") == [b"+CEREG: 0,2"]
    assert send(client, dialect, port, b"during")[1] == "ERROR"
    assert not emu.socks  # the network took the sockets with it

    emu.fault("regained")
    stats = []
    deadline = time.monotonic() + 5
    while not stats or stats[-1] != 1:
        assert time.monotonic() < deadline, stats
        stats.append(int(client.ok("AT+CEREG?")[0][-1:]))
        time.sleep(0.05)
    assert stats[0] == 2  # attach_delay again
    assert open_socket(client, dialect, port) == "OK"
    assert send(client, dialect, port, b"after")[1] in ("OK", "SEND OK")
    assert peer.recvfrom(100)[0] == b"after"


def test_fault_slow(emulator):
    emu, client = emulator("sim7080", attach_delay=0, slow_delay=0.01)
    client.ok("ATE0", echo=True)
    emu.fault("slow")
    pieces, t0 = client.pieces, time.monotonic()
    assert client.ok("AT+CSQ") == [b"+CSQ: 20,99"]
    reply = len(b"\r\n+CSQ: 20,99\r\n\r\nOK\r\n")
    assert time.monotonic() - t0 >= 0.8 * reply * 0.01
    assert client.pieces - pieces >= reply // 2  # byte by byte (a few may coalesce)
    pieces = client.pieces
    client.ok("AT+CSQ")
    assert client.pieces - pieces <= 2  # the next reply is whole again


@pytest.mark.parametrize("dialect", DIALECTS)
def test_fault_split(emulator, peer, dialect):
    emu, client = emulator(dialect, attach_delay=0, seed=1)
    start_session(client, dialect)
    port = peer.getsockname()[1]
    open_socket(client, dialect, port)
    send(client, dialect, port, b"x")
    _, modem_addr = peer.recvfrom(100)
    peer.sendto(PAYLOAD, modem_addr)
    client.expect(DATA_URC[dialect])
    emu.fault("split")
    pieces = client.pieces
    assert read(client, dialect)[0] == PAYLOAD  # a binary reply cut anywhere still parses
    assert client.pieces - pieces >= 2


@pytest.mark.parametrize("dialect", DIALECTS)
def test_fault_urc_inside(emulator, dialect):
    emu, client = emulator(dialect, attach_delay=0)
    client.ok("ATE0", echo=True)
    emu.fault("urc-inside")
    lines, final, _ = client.cmd("AT+CSQ")
    assert final == "OK"
    assert lines[0] == b"+CSQ: 20,99" and re.match(DATA_URC[dialect], lines[1]), lines  # before the OK
    assert client.ok("AT+CSQ") == [b"+CSQ: 20,99"]


@pytest.mark.parametrize("dialect", DIALECTS)
def test_fault_reset(emulator, peer, dialect):
    emu, client = emulator(dialect, attach_delay=0.2)
    start_session(client, dialect)
    port = peer.getsockname()[1]
    open_socket(client, dialect, port)
    client.ok("AT+CPSMS=1")
    emu.fault("reset")
    assert client.line() == b"RDY"
    assert not emu.socks and emu.psms is None
    client.ok("AT", echo=True)  # echo is back on
    client.ok("ATE0", echo=True)
    assert client.ok("AT+CEREG?") == [b"+CEREG: 0,2"]  # attach starts over
    assert send(client, dialect, port, b"x")[1] == "ERROR"  # the socket is gone (CMEE forgotten too)


def test_fault_reset_in_data_mode(emulator, peer):
    emu, client = emulator("bg95", attach_delay=0)
    start_session(client, "bg95")
    open_socket(client, "bg95", peer.getsockname()[1])
    client.write("AT+QISEND=0,10\r")
    deadline = time.monotonic() + 3
    while not client.buf.endswith(b"\r\n> "):
        client._fill(deadline)
    client.buf = b""
    emu.fault("reset")
    assert client.line() == b"RDY"
    client.write("AT\r")  # a command again, not payload
    assert client.line() == b"AT" and client.line() == b"OK"


@pytest.mark.parametrize("dialect", DIALECTS)
def test_fault_garbage(emulator, dialect):
    emu, client = emulator(dialect, attach_delay=0, seed=7)
    client.ok("ATE0", echo=True)
    emu.fault("garbage")
    lines, final, _ = client.cmd("AT+CSQ")
    assert final == "OK" and lines[-1] == b"+CSQ: 20,99"
    junk = lines[:-1]
    assert len(junk) >= 3 and max(len(x) for x in junk) == 2000
    assert not any(FINAL.match(x) or x[:1] in b"+#>" for x in junk)
    assert emu.bytes_by_kind["garbage"][1] > 2000


def test_timed_fault(emulator):
    emu, client = emulator("sara-r5", attach_delay=0, faults=[("lost", 0.3)])
    client.ok("ATE0", echo=True)
    t0 = time.monotonic()
    assert client.line(timeout=3) == b"+UUSOCL: 0"
    assert time.monotonic() - t0 >= 0.1
    assert emu.faults_applied == ["lost"]


def test_fault_names_checked(emulator):
    emu, _ = emulator("nrf91")
    with pytest.raises(ValueError):
        emu.fault("nosuch")


# --- counting, clients ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("dialect", DIALECTS)
def test_byte_counters(emulator, peer, dialect):
    emu, client = emulator(dialect, attach_delay=0)
    start_session(client, dialect)
    port = peer.getsockname()[1]
    open_socket(client, dialect, port)
    send(client, dialect, port, PAYLOAD)
    _, modem_addr = peer.recvfrom(100)
    peer.sendto(ANSWER, modem_addr)
    client.expect(DATA_URC[dialect])
    read(client, dialect)
    client.drain()
    assert emu.bytes_in == client.written
    assert emu.bytes_out == client.received
    kinds = emu.bytes_by_kind
    assert sum(i for i, _ in kinds.values()) == emu.bytes_in
    assert sum(o for _, o in kinds.values()) == emu.bytes_out
    send_kind = {"sim7080": "AT+CASEND", "bg95": "AT+QISEND", "sara-r5": "AT+USOST", "nrf91": "AT#XSENDTO"}[dialect]
    assert kinds[send_kind][0] > len(PAYLOAD)  # the command and its payload (hex: twice as long)
    assert kinds["URC"][1] > 0
    assert "%d bytes in, %d bytes out" % (emu.bytes_in, emu.bytes_out) in emu.summary()


def test_one_client_at_a_time(emulator):
    emu, client = emulator("sim7080", attach_delay=0)
    client.ok("AT", echo=True)
    second = socket.create_connection(("127.0.0.1", emu.port), timeout=3)
    try:
        assert second.recv(10) == b""  # closed at once
    finally:
        second.close()
    client.ok("AT", echo=True)
    client.close()
    time.sleep(0.1)
    third = ATClient.tcp(emu.port)  # the modem kept its state (echo on) for the next one
    try:
        third.ok("AT", echo=True)
    finally:
        third.close()


def test_listens_on_loopback_only():
    with pytest.raises(ValueError):
        ModemEmulator("bg95", host="0.0.0.0")
    with pytest.raises(ValueError):
        ModemEmulator("sim7000")


# --- CLI ------------------------------------------------------------------------------------------------------

def test_cli(peer):
    proc = subprocess.Popen([sys.executable, str(ROOT / "tools" / "modem_emu.py"), "--dialect", "bg95",
                             "--tcp", "0", "--attach-delay", "0", "--fault", "error", "--fault", "lost@30"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        line = proc.stdout.readline()
        m = re.match(r"modem_emu: bg95 on tcp:127\.0\.0\.1:(\d+)$", line.strip())
        assert m, line
        client = ATClient.tcp(int(m.group(1)))
        try:
            assert client.cmd("AT")[1] == "+CME ERROR: 100"  # --fault error: at start
            start_session(client, "bg95")
            open_socket(client, "bg95", peer.getsockname()[1])
            send(client, "bg95", peer.getsockname()[1], b"cli")
            assert peer.recvfrom(100)[0] == b"cli"
        finally:
            client.close()
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=10)
        assert proc.returncode == 0, out
        assert re.search(r"modem_emu bg95: \d+ bytes in, \d+ bytes out", out), out
        assert re.search(r"AT\+QISEND\s+\d+\s+\d+", out), out
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
        proc.stdout.close()


def test_cli_rejects_bad_fault():
    proc = subprocess.run([sys.executable, str(ROOT / "tools" / "modem_emu.py"), "--tcp", "0", "--fault", "boom"],
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=10)
    assert proc.returncode == 2 and "unknown fault" in proc.stdout
