#!/usr/bin/env python3
"""A cellular modem on the host, for tests, demos and `make bench` (docs/modem.md, "Emulator").

Plays one AT dialect -- sim7080, bg95, sara-r5 or nrf91 -- exactly as the dialect table of docs/modem.md
says, on a TCP port on 127.0.0.1 (`--tcp PORT`, 0 = a free port) or on a pty (`--pty`); one client at a
time. The modem's UDP socket is a real UDP socket on 127.0.0.1 sending to the destination the device
names (loopback only: any other address is refused with an error); datagrams that come back are queued
and announced with the dialect's data URC. Bytes over the "UART" are counted each way, in total and per
command kind.

    python tools/modem_emu.py --dialect bg95 --tcp 0 [--attach-delay 0.2] [--fault lost@20 ...] [-v]

prints `modem_emu: bg95 on tcp:127.0.0.1:PORT` (or `... on /dev/pts/N`: the stream path for
`at.open_stream`), serves until Ctrl-C / SIGTERM, then prints the byte counts.

Thread API (stdlib only, like tools/lwm2m_server.py's ServerThread):

    with ModemEmulator("sim7080", attach_delay=0.2) as emu:   # or pty=True: emu.path
        emu.port, emu.stream   # "tcp:127.0.0.1:PORT" or the pty path
        emu.fault("lost")      # applied in the emulator's thread before fault() returns
        emu.bytes_in, emu.bytes_out, emu.bytes_by_kind, emu.log, emu.psms, emu.summary()

Faults (`--fault NAME[@SECONDS after start]` or `.fault(NAME)`):
  error       the next command gets `+CME ERROR: 100`
  lost        the dialect's network-lost URC; sockets and PDP context gone; CEREG stat 2, opens and sends
              fail with ERROR until `regained`
  regained    registration comes back attach_delay later
  slow        the next reply is written byte by byte, slow_delay apart
  split       the next reply is written in 2-6 random pieces, 10 ms apart
  urc-inside  the dialect's data URC is inserted in the next reply, just before its final result
  reset       the modem restarts: `RDY`; sockets, attach, PDP, echo (back on), CMEE, hex mode, PSM gone
  garbage     a few random lines and one 2000-byte line on the stream, right away

Details the table leaves open (what this emulator does): replies are `\\r\\n<line>\\r\\n`; the send
prompt is `\\r\\n> ` (SARA binary mode `@`); echo is on at power-on and echoes the command line; commands
before registration (activate, open) answer ERROR; reads with nothing queued answer `+CARECV: 0`,
`+QIRD: 0`, `+USORF: 0,0`, `#XRECVFROM: 0,"",0`; one datagram per read (longer than the asked length:
cut); one data URC per datagram; the nRF91 announces only after `AT#XAPOLL=1,...`; errors are
`+CME ERROR: n` after `AT+CMEE=1`, plain `ERROR` before it and for unknown commands.
"""
import argparse
import collections
import ipaddress
import os
import random
import re
import select
import signal
import socket
import sys
import threading
import time

DIALECTS = ("sim7080", "bg95", "sara-r5", "nrf91")
FAULTS = ("error", "lost", "regained", "slow", "split", "urc-inside", "reset", "garbage")
LOST_URC = {"sim7080": "+APP PDP: 0,DEACTIVE", "bg95": '+QIURC: "pdpdeact",1', "sara-r5": "+UUSOCL: 0",
            "nrf91": "+CEREG: 2"}
MODEL = {"sim7080": "SIM7080G", "bg95": "BG95-M3", "sara-r5": "SARA-R510M8S", "nrf91": "nRF9160 SLM"}
MAX_SEND = {"sim7080": 1460, "bg95": 1460, "sara-r5": 1024, "nrf91": 1024}
MAX_LINE = 8192  # a command line longer than this is dropped (SARA hex sends are 2 x 1024 + header)
CME_NOT_ALLOWED = 3
CME_BAD_PARAM = 50
CME_FAULT = 100
PDP_ADDRESS = "10.64.0.2"


def _wire(text):
    """One response line as sent: \\r\\n<text>\\r\\n."""
    return b"\r\n" + (text if isinstance(text, bytes) else text.encode("latin-1")) + b"\r\n"


def _kind(upper):
    """The command kind a line is counted under: AT+CASEND=0,5 -> AT+CASEND, ATE0 -> ATE, AT -> AT."""
    m = re.match(r"AT([+#][A-Z0-9]+|[A-Z&]?)", upper)
    return "AT" + (m.group(1) if m else "")


def _loopback(host):
    if host.lower() == "localhost":
        return "127.0.0.1"
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return None
    return host if address.version == 4 and address.is_loopback else None


class _Error(Exception):
    """A command fails: +CME ERROR: code (after AT+CMEE=1) or ERROR (code None: always ERROR)."""

    def __init__(self, code=None):
        super().__init__(code)
        self.code = code


class _Reply:
    """What a command answers: info chunks (bytes, as on the wire), the final result, URCs after it;
    or a prompt, after which `need` bytes of data are read and given to `then(data) -> _Reply`."""

    def __init__(self, chunks=(), final="OK", after=(), prompt=None, need=0, then=None):
        self.chunks = list(chunks)
        self.final = final
        self.after = list(after)
        self.prompt = prompt
        self.need = need
        self.then = then


class _Socket:
    """The modem's UDP socket: a real one on 127.0.0.1, and the datagrams it received."""

    def __init__(self, sid, peer=None):
        self.sid = sid
        self.peer = peer
        self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.udp.bind(("127.0.0.1", 0))
        self.udp.setblocking(False)
        self.queue = collections.deque()  # (data, (ip, port))

    def close(self):
        self.udp.close()


class ModemEmulator:
    """One emulated modem in its own thread. pty=False: a TCP server on host:port (port 0: free, see
    .port); pty=True: a pty, see .path. A context manager (start/stop)."""

    def __init__(self, dialect="sim7080", attach_delay=0.2, host="127.0.0.1", port=0, pty=False,
                 faults=(), stat=1, csq=(20, 99), slow_delay=0.005, seed=None, verbose=False, trace=False):
        if dialect not in DIALECTS:
            raise ValueError("dialect must be one of %s" % ", ".join(DIALECTS))
        if not pty and _loopback(host) is None:
            raise ValueError("the emulator listens on loopback only, not %r" % host)
        self.dialect = dialect
        self.attach_delay = attach_delay
        self.host = host
        self._port = port
        self.pty = pty
        self.path = None
        self.stat = stat
        self.csq = csq
        self.slow_delay = slow_delay
        self.verbose = verbose
        self.trace = [] if trace else None  # [(">" from the device | "<" to it, bytes)]
        self.log = []  # the command lines received, in order
        self.faults_applied = []
        self._timed = sorted(faults, key=lambda f: f[1])  # [(name, seconds after start)]
        self._random = random.Random(seed)
        self.bytes_in = 0
        self.bytes_out = 0
        self._in = collections.Counter()
        self._out = collections.Counter()
        self._pending = set()  # one-shot faults for the next reply
        self._requests = collections.deque()  # (fault name, threading.Event) from other threads
        self._thread = None
        self._stopping = False
        self._listener = None
        self._conn = None  # the TCP client socket, or the pty master fd
        self._slave = None
        self._wake_r = self._wake_w = None
        self.socks = {}
        self._inbuf = b""
        self._data = None
        self._boot()

    # --- state ---------------------------------------------------------------------------------------

    def _boot(self):
        """Power-on state (also after the reset fault)."""
        for s in self.socks.values():
            s.close()
        self.socks = {}
        self.echo = True
        self.cmee = 0
        self.cfun = 1
        self.lost = False
        self._reg_at = time.monotonic() + self.attach_delay
        self.apn = None
        self.pdp = False
        self.hex_mode = False
        self.apoll = False
        self.psms = None
        self._selected = 0  # nRF91: the socket #XSENDTO/#XRECVFROM/#XSOCKET=0 use
        self._inbuf = b""
        self._data = None

    @property
    def registered(self):
        return self.cfun == 1 and not self.lost and time.monotonic() >= self._reg_at

    def _reg_stat(self):
        if self.cfun != 1:
            return 0
        return self.stat if self.registered else 2

    # --- public API -----------------------------------------------------------------------------------

    @property
    def port(self):
        return self._port

    @property
    def stream(self):
        """What at.open_stream() takes: tcp:127.0.0.1:PORT, or the pty's path."""
        return self.path if self.pty else "tcp:%s:%d" % (self.host, self._port)

    @property
    def connected(self):
        return self._conn is not None

    @property
    def bytes_by_kind(self):
        """{kind: (bytes in, bytes out)}: command kinds (AT+CASEND, ...), URC, garbage, other."""
        kinds = set(self._in) | set(self._out)
        return {k: (self._in[k], self._out[k]) for k in sorted(kinds)}

    def summary(self):
        lines = ["modem_emu %s: %d bytes in, %d bytes out" % (self.dialect, self.bytes_in, self.bytes_out),
                 "  %-16s %8s %8s" % ("kind", "in", "out")]
        for kind, (n_in, n_out) in self.bytes_by_kind.items():
            lines.append("  %-16s %8d %8d" % (kind, n_in, n_out))
        return "\n".join(lines)

    def start(self):
        if self._thread is not None:
            return self
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        if self.pty:
            import tty
            master, slave = os.openpty()
            tty.setraw(slave)
            os.set_blocking(master, False)
            self._conn, self._slave = master, slave  # the slave is kept open: no EIO when a client closes
            self.path = os.ttyname(slave)
        else:
            self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self._listener.bind((_loopback(self.host), self._port))
            self._listener.listen(2)
            self._port = self._listener.getsockname()[1]
        self._started = time.monotonic()
        self._boot()
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="modem-emu", daemon=True)
        self._thread.start()
        return self

    def stop(self):
        if self._thread is None:
            return
        self._stopping = True
        self._wake()
        self._thread.join(10)
        self._thread = None
        for s in self.socks.values():
            s.close()
        self.socks = {}
        if self.pty:
            for fd in (self._conn, self._slave):
                try:
                    os.close(fd)
                except OSError:
                    pass
        else:
            if self._conn is not None:
                self._conn.close()
            self._listener.close()
        self._conn = self._slave = self._listener = None
        os.close(self._wake_r)
        os.close(self._wake_w)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def fault(self, name, timeout=5):
        """Inject a fault (see the module doc); returns once the emulator's thread has applied it."""
        if name not in FAULTS:
            raise ValueError("fault must be one of %s" % ", ".join(FAULTS))
        if self._thread is None:
            raise RuntimeError("ModemEmulator is not started")
        done = threading.Event()
        self._requests.append((name, done))
        self._wake()
        if not done.wait(timeout):
            raise TimeoutError("fault %r not applied within %s s" % (name, timeout))

    def wait_connected(self, timeout=5):
        deadline = time.monotonic() + timeout
        while not self.connected:
            if time.monotonic() > deadline:
                raise TimeoutError("no client within %s s" % timeout)
            time.sleep(0.01)

    # --- the loop ---------------------------------------------------------------------------------------

    def _wake(self):
        try:
            os.write(self._wake_w, b"x")
        except OSError:
            pass

    def _run(self):
        while not self._stopping:
            now = time.monotonic()
            while self._timed and now - self._started >= self._timed[0][1]:
                self._apply(self._timed.pop(0)[0])
            while self._requests:
                name, done = self._requests.popleft()
                self._apply(name)
                done.set()
            rlist = [self._wake_r]
            if self._listener is not None:
                rlist.append(self._listener)
            if self._conn is not None:
                rlist.append(self._conn)
            socks = {s.udp.fileno(): s for s in self.socks.values()}
            rlist += list(socks)
            timeout = 0.5
            if self._timed:
                timeout = max(0.0, min(timeout, self._started + self._timed[0][1] - now))
            try:
                ready, _, _ = select.select(rlist, [], [], timeout)
            except (OSError, ValueError):
                continue  # a socket closed under us (stop): look again
            for r in ready:
                if r == self._wake_r:
                    try:
                        os.read(self._wake_r, 512)
                    except OSError:
                        pass
                elif r is self._listener:
                    self._accept()
                elif r is self._conn or (self.pty and r == self._conn):
                    self._read_conn()
                elif r in socks and socks[r] in self.socks.values():
                    self._read_udp(socks[r])

    def _accept(self):
        try:
            conn, _ = self._listener.accept()
        except OSError:
            return
        if self._conn is not None:  # one client at a time
            conn.close()
            return
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conn.settimeout(2)
        self._conn = conn
        self._inbuf = b""
        self._data = None

    def _drop_client(self):
        if not self.pty and self._conn is not None:
            self._conn.close()
            self._conn = None
            self._inbuf = b""
            self._data = None

    def _read_conn(self):
        try:
            data = os.read(self._conn, 4096) if self.pty else self._conn.recv(4096)
        except (BlockingIOError, InterruptedError, socket.timeout):
            return
        except OSError:
            data = b"" if not self.pty else None
        if data is None:  # pty: EIO etc.; nothing to read
            return
        if not data:
            self._drop_client()
            return
        if self.trace is not None:
            self.trace.append((">", data))
        self._feed(data)

    def _read_udp(self, sock):
        try:
            data, addr = sock.udp.recvfrom(65535)
        except OSError:
            return
        if self.lost:
            return
        sock.queue.append((data, addr))
        urc = self._data_urc(sock.sid, len(data))
        if urc:
            self._send([_wire(urc)], "URC")

    def _data_urc(self, sid, n, always=False):
        if self.dialect == "sim7080":
            return "+CADATAIND: %d" % sid
        if self.dialect == "bg95":
            return '+QIURC: "recv",%d' % sid
        if self.dialect == "sara-r5":
            return "+UUSORF: %d,%d" % (sid, n)
        return "#XAPOLL: %d,1" % sid if (self.apoll or always) else None

    # --- output -----------------------------------------------------------------------------------------

    def _write(self, data):
        if self._conn is None:
            return
        if self.trace is not None:
            self.trace.append(("<", data))
        if self.verbose:
            sys.stderr.write("modem_emu < %r\n" % data)
        try:
            if not self.pty:
                self._conn.sendall(data)
                return
            deadline = time.monotonic() + 1
            while data:
                try:
                    data = data[os.write(self._conn, data):]
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        return  # nobody reads the pty: drop
                    select.select([], [self._conn], [], 0.05)
        except OSError:
            self._drop_client()

    def _send(self, chunks, kind, mode=None):
        data = b"".join(chunks)
        if not data:
            return
        self.bytes_out += len(data)
        self._out[kind] += len(data)
        if mode == "slow":
            for i in range(len(data)):
                self._write(data[i:i + 1])
                time.sleep(self.slow_delay)
        elif mode == "split" and len(data) > 1:
            cuts = sorted(self._random.sample(range(1, len(data)), min(len(data) - 1, self._random.randint(1, 5))))
            for a, b in zip([0] + cuts, cuts + [len(data)]):
                self._write(data[a:b])
                time.sleep(0.01)
        else:
            self._write(data)

    def _reply(self, chunks, kind):
        """Send one reply, with the one-shot faults that apply to it."""
        if "urc-inside" in self._pending and chunks:
            self._pending.discard("urc-inside")
            sock = self.socks.get(0)
            n = len(sock.queue[0][0]) if sock and sock.queue else 0
            urc = self._data_urc(0, n, always=True)
            chunks = chunks[:-1] + [_wire(urc)] + chunks[-1:]
        mode = None
        for name in ("slow", "split"):
            if name in self._pending:
                self._pending.discard(name)
                mode = name
                break
        self._send(chunks, kind, mode)

    def _error_text(self, code):
        return "+CME ERROR: %d" % code if (code is not None and self.cmee) else "ERROR"

    # --- faults -----------------------------------------------------------------------------------------

    def _apply(self, name):
        self.faults_applied.append(name)
        if self.verbose:
            sys.stderr.write("modem_emu: fault %s\n" % name)
        if name in ("error", "slow", "split", "urc-inside"):
            self._pending.add(name)
        elif name == "lost":
            self.lost = True
            self.pdp = False
            self._close_all()
            self._send([_wire(LOST_URC[self.dialect])], "URC")
        elif name == "regained":
            if self.lost:
                self.lost = False
                self._reg_at = time.monotonic() + self.attach_delay
        elif name == "reset":
            self._boot()
            self._send([_wire("RDY")], "URC")
        elif name == "garbage":
            lines = []
            for _ in range(self._random.randint(2, 4)):
                n = self._random.randint(1, 40)
                lines.append(_wire("".join(self._random.choice("abcdefghijklmnopqrstuvwxyz0123456789 ~*")
                                           for _ in range(n))))
            lines.insert(1, _wire("~" + "".join(self._random.choice("abcdefghijklmnopqrstuvwxyz")
                                                for _ in range(1999))))
            self._send(lines, "garbage")

    def _close_all(self):
        for s in self.socks.values():
            s.close()
        self.socks = {}

    # --- input ------------------------------------------------------------------------------------------

    def _feed(self, data):
        self._inbuf += data
        while self._inbuf:
            if self._data is not None:
                need, kind, then = self._data
                if len(self._inbuf) < need:
                    return
                payload, self._inbuf = self._inbuf[:need], self._inbuf[need:]
                self.bytes_in += need
                self._in[kind] += need
                self._data = None
                self._finish(then(payload), kind)
                continue
            m = re.search(rb"[\r\n]", self._inbuf)
            if not m:
                if len(self._inbuf) > MAX_LINE:
                    self._count_in("other", len(self._inbuf))
                    self._inbuf = b""
                return
            i = j = m.start()
            j += 2 if self._inbuf[i:i + 2] == b"\r\n" else 1
            line, term, self._inbuf = self._inbuf[:i], self._inbuf[i:j], self._inbuf[j:]
            self._command(line, term)

    def _count_in(self, kind, n):
        self.bytes_in += n
        self._in[kind] += n

    def _command(self, raw, term):
        text = raw.decode("latin-1").strip()
        upper = text.upper()
        if not upper.startswith("AT"):
            self._count_in("other", len(raw) + len(term))  # empty lines, noise: ignored like a modem
            return
        kind = _kind(upper)
        self._count_in(kind, len(raw) + len(term))
        self.log.append(text)
        if self.verbose:
            sys.stderr.write("modem_emu > %s\n" % text)
        echo = [raw + term] if self.echo else []
        if "error" in self._pending:
            self._pending.discard("error")
            self._reply(echo + [_wire("+CME ERROR: %d" % CME_FAULT)], kind)
            return
        try:
            reply = self._handle(text, upper)
        except _Error as e:
            reply = _Reply(final=self._error_text(e.code))
        if reply is None:
            reply = _Reply(final="ERROR")
        if reply.prompt is not None:
            self._reply(echo + [reply.prompt], kind)
            if self._inbuf[:1] == b"\n" and term == b"\r":
                self._count_in("other", 1)  # the LF of a CR LF terminator, sent before the prompt
                self._inbuf = self._inbuf[1:]
            self._data = (reply.need, kind, reply.then)
            return
        self._finish(reply, kind, echo)

    def _finish(self, reply, kind, head=()):
        if reply.prompt is None:
            self._reply(list(head) + reply.chunks + [_wire(reply.final)], kind)
            if reply.after:
                self._send([_wire(u) for u in reply.after], "URC")

    # --- commands ---------------------------------------------------------------------------------------

    def _handle(self, text, upper):
        if upper == "AT":
            return _Reply()
        if upper in ("ATE0", "ATE1", "ATE"):
            self.echo = upper == "ATE1"
            return _Reply()
        if upper == "ATI":
            return _Reply([_wire(MODEL[self.dialect])])
        m = re.fullmatch(r"AT\+CMEE=([012])", upper)
        if m:
            self.cmee = int(m.group(1))
            return _Reply()
        if upper == "AT+CMEE?":
            return _Reply([_wire("+CMEE: %d" % self.cmee)])
        m = re.fullmatch(r"AT\+CFUN=(\d+)(,\d+)?", upper)
        if m:
            fun = int(m.group(1))
            if fun not in (0, 1, 4):
                raise _Error(CME_BAD_PARAM)
            if fun == 1 and self.cfun != 1:
                self._reg_at = time.monotonic() + self.attach_delay
            if fun != 1:
                self.pdp = False
                self._close_all()
            self.cfun = fun
            return _Reply()
        if upper == "AT+CFUN?":
            return _Reply([_wire("+CFUN: %d" % self.cfun)])
        if upper == "AT+CEREG?":
            return _Reply([_wire("+CEREG: 0,%d" % self._reg_stat())])
        if re.fullmatch(r"AT\+CEREG=\d", upper):
            return _Reply()
        if upper == "AT+CSQ":
            return _Reply([_wire("+CSQ: %d,%d" % self.csq)])
        if upper.startswith("AT+CPSMS="):
            self.psms = text[len("AT+CPSMS="):]
            return _Reply()
        if upper == "AT+CPSMS?":
            return _Reply([_wire("+CPSMS: %s" % (self.psms or "0"))])
        handler = getattr(self, "_" + self.dialect.replace("-", "_"))
        return handler(text, upper)

    def _need_attached(self):
        if self.lost or not self.registered:
            raise _Error(CME_NOT_ALLOWED)

    def _new_socket(self, sid, peer=None):
        if sid in self.socks:
            raise _Error(CME_NOT_ALLOWED)
        self.socks[sid] = _Socket(sid, peer)
        return self.socks[sid]

    def _socket(self, sid):
        """An open socket for a send/read/close: ERROR when the network is lost or the socket gone."""
        if self.lost:
            raise _Error()
        sock = self.socks.get(sid)
        if sock is None:
            raise _Error(CME_NOT_ALLOWED)
        return sock

    def _dest(self, host, port):
        ip = _loopback(host)
        if ip is None or not 0 < port < 65536:
            raise _Error(CME_NOT_ALLOWED)  # loopback only
        return ip, port

    def _sendto(self, sock, data, dest):
        if self.lost or sock.sid not in self.socks:
            raise _Error()
        try:
            sock.udp.sendto(data, dest)
        except OSError:
            raise _Error()

    def _close(self, sid):
        sock = self._socket(sid)
        sock.close()
        del self.socks[sid]

    def _pop(self, sid, size):
        sock = self._socket(sid)
        if not sock.queue:
            return None, None
        data, addr = sock.queue.popleft()
        return data[:size], addr

    def _prompted(self, sid, n, final, after_send=None, prompt=b"\r\n> "):
        sock = self._socket(sid)
        if not 0 < n <= MAX_SEND[self.dialect]:
            raise _Error(CME_BAD_PARAM)

        def then(data):
            try:
                self._sendto(sock, data, sock.peer)
            except _Error as e:
                return _Reply(final=self._error_text(e.code))
            return _Reply(after_send(n) if after_send else (), final=final)
        return _Reply(prompt=prompt, need=n, then=then)

    def _sim7080(self, text, upper):
        m = re.fullmatch(r'AT\+CNCFG=(\d+),(\d+),"([^"]*)"(,.*)?', text, re.I)
        if m:
            self.apn = m.group(3)
            return _Reply()
        m = re.fullmatch(r"AT\+CNACT=(\d+),([01])", upper)
        if m:
            if m.group(2) == "1":
                self._need_attached()
                self.pdp = True
                return _Reply(after=["+APP PDP: %s,ACTIVE" % m.group(1)])
            self.pdp = False
            self._close_all()
            return _Reply(after=["+APP PDP: %s,DEACTIVE" % m.group(1)])
        if upper == "AT+CNACT?":
            return _Reply([_wire('+CNACT: 0,%d,"%s"' % (self.pdp, PDP_ADDRESS if self.pdp else "0.0.0.0"))])
        m = re.fullmatch(r'AT\+CAOPEN=(\d+),(\d+),"UDP","([^"]+)",(\d+)', text, re.I)
        if m:
            if not self.pdp or self.lost:
                raise _Error(CME_NOT_ALLOWED)
            dest = self._dest(m.group(3), int(m.group(4)))
            sid = int(m.group(1))
            self._new_socket(sid, dest)
            return _Reply([_wire("+CAOPEN: %d,0" % sid)])
        m = re.fullmatch(r"AT\+CASEND=(\d+),(\d+)", upper)
        if m:
            return self._prompted(int(m.group(1)), int(m.group(2)), "OK")
        m = re.fullmatch(r"AT\+CARECV=(\d+),(\d+)", upper)
        if m:
            data, _ = self._pop(int(m.group(1)), int(m.group(2)))
            if data is None:
                return _Reply([_wire("+CARECV: 0")])
            return _Reply([b"\r\n+CARECV: %d," % len(data), data + b"\r\n"])
        m = re.fullmatch(r"AT\+CACLOSE=(\d+)", upper)
        if m:
            self._close(int(m.group(1)))
            return _Reply()
        return None

    def _bg95(self, text, upper):
        m = re.fullmatch(r'AT\+QICSGP=(\d+),(\d+),"([^"]*)"(,.*)?', text, re.I)
        if m:
            self.apn = m.group(3)
            return _Reply()
        m = re.fullmatch(r"AT\+QIACT=(\d+)", upper)
        if m:
            self._need_attached()
            self.pdp = True
            return _Reply()
        if upper == "AT+QIACT?":
            return _Reply([_wire('+QIACT: 1,1,1,"%s"' % PDP_ADDRESS)] if self.pdp else [])
        m = re.fullmatch(r"AT\+QIDEACT=(\d+)", upper)
        if m:
            self.pdp = False
            self._close_all()
            return _Reply()
        m = re.fullmatch(r'AT\+QIOPEN=(\d+),(\d+),"UDP","([^"]+)",(\d+)(,\d+)?(,\d+)?', text, re.I)
        if m:
            if not self.pdp or self.lost:
                raise _Error(CME_NOT_ALLOWED)
            dest = self._dest(m.group(3), int(m.group(4)))
            sid = int(m.group(2))
            self._new_socket(sid, dest)
            return _Reply(after=["+QIOPEN: %d,0" % sid])
        m = re.fullmatch(r"AT\+QISEND=(\d+),(\d+)", upper)
        if m:
            return self._prompted(int(m.group(1)), int(m.group(2)), "SEND OK")
        m = re.fullmatch(r"AT\+QIRD=(\d+)(?:,(\d+))?", upper)
        if m:
            data, _ = self._pop(int(m.group(1)), int(m.group(2) or 1500))
            if data is None:
                return _Reply([_wire("+QIRD: 0")])
            return _Reply([b"\r\n+QIRD: %d\r\n" % len(data), data + b"\r\n"])
        m = re.fullmatch(r"AT\+QICLOSE=(\d+)", upper)
        if m:
            self._close(int(m.group(1)))
            return _Reply()
        return None

    def _cgdcont(self, text):
        m = re.fullmatch(r'AT\+CGDCONT=(\d+),"(IP|IPV6|IPV4V6|NONIP)","([^"]*)"(,.*)?', text, re.I)
        if m:
            self.apn = m.group(3)
            return _Reply()
        return None

    def _sara_r5(self, text, upper):
        reply = self._cgdcont(text)
        if reply:
            return reply
        m = re.fullmatch(r"AT\+UDCONF=1,([01])", upper)
        if m:
            self.hex_mode = m.group(1) == "1"
            return _Reply()
        if upper == "AT+UDCONF=1":
            return _Reply([_wire("+UDCONF: 1,%d" % self.hex_mode)])
        m = re.fullmatch(r"AT\+USOCR=(\d+)(,\d+)?", upper)
        if m:
            if m.group(1) != "17":
                raise _Error(CME_BAD_PARAM)
            self._need_attached()
            sid = min(set(range(7)) - set(self.socks))
            self._new_socket(sid)
            return _Reply([_wire("+USOCR: %d" % sid)])
        m = re.fullmatch(r'AT\+USOST=(\d+),"([^"]+)",(\d+),(\d+)(?:,"([^"]*)")?', text, re.I)
        if m:
            sock = self._socket(int(m.group(1)))
            dest = self._dest(m.group(2), int(m.group(3)))
            n = int(m.group(4))
            if not 0 < n <= MAX_SEND[self.dialect]:
                raise _Error(CME_BAD_PARAM)
            if m.group(5) is None:  # binary: the @ prompt, then n bytes
                sock.peer = dest
                return self._prompted(sock.sid, n, "OK", lambda n: [_wire("+USOST: %d,%d" % (sock.sid, n))],
                                      prompt=b"@")
            try:
                data = bytes.fromhex(m.group(5)) if self.hex_mode else m.group(5).encode("latin-1")
            except ValueError:
                raise _Error(CME_BAD_PARAM)
            if len(data) != n:
                raise _Error(CME_BAD_PARAM)
            self._sendto(sock, data, dest)
            return _Reply([_wire("+USOST: %d,%d" % (sock.sid, n))])
        m = re.fullmatch(r"AT\+USORF=(\d+),(\d+)", upper)
        if m:
            sid, size = int(m.group(1)), int(m.group(2))
            sock = self._socket(sid)
            if size == 0:  # how much is waiting
                return _Reply([_wire("+USORF: %d,%d" % (sid, len(sock.queue[0][0]) if sock.queue else 0))])
            data, addr = self._pop(sid, size)
            if data is None:
                return _Reply([_wire("+USORF: %d,0" % sid)])
            body = data.hex().upper().encode() if self.hex_mode else data
            return _Reply([b'\r\n+USORF: %d,"%s",%d,%d,"' % (sid, addr[0].encode(), addr[1], len(data)) + body
                           + b'"\r\n'])
        m = re.fullmatch(r"AT\+USOCL=(\d+)(,\d+)?", upper)
        if m:
            self._close(int(m.group(1)))
            return _Reply()
        return None

    def _nrf91(self, text, upper):
        reply = self._cgdcont(text)
        if reply:
            return reply
        m = re.fullmatch(r"AT#XSOCKET=1,2,(\d+)", upper)
        if m:
            self._need_attached()
            sid = min(set(range(8)) - set(self.socks))
            self._new_socket(sid)
            self._selected = sid
            return _Reply([_wire("#XSOCKET: %d,2,17" % sid)])
        if upper == "AT#XSOCKET=0":
            sid = self._selected
            self._close(sid)
            return _Reply([_wire('#XSOCKET: %d,"closed"' % sid)])
        m = re.fullmatch(r"AT#XAPOLL=([01])(,\d+)*", upper)
        if m:
            self.apoll = m.group(1) == "1"
            return _Reply()
        m = re.fullmatch(r'AT#XSENDTO="([^"]+)",(\d+),([01]),"([^"]*)"', text, re.I)
        if m:
            sock = self._socket(self._selected)
            dest = self._dest(m.group(1), int(m.group(2)))
            try:
                data = bytes.fromhex(m.group(4)) if m.group(3) == "0" else m.group(4).encode("latin-1")
            except ValueError:
                raise _Error(CME_BAD_PARAM)
            if not 0 < len(data) <= MAX_SEND[self.dialect]:
                raise _Error(CME_BAD_PARAM)
            self._sendto(sock, data, dest)
            return _Reply([_wire("#XSENDTO: %d" % len(data))])
        m = re.fullmatch(r"AT#XRECVFROM=(\d+)(,\d+)?", upper)
        if m:
            data, addr = self._pop(self._selected, 65535)
            if data is None:
                return _Reply([_wire('#XRECVFROM: 0,"",0')])
            return _Reply([b'\r\n#XRECVFROM: %d,"%s",%d\r\n' % (len(data), addr[0].encode(), addr[1]),
                           data + b"\r\n"])
        return None


# --- CLI ----------------------------------------------------------------------------------------------------

def _fault_arg(text):
    name, _, at = text.partition("@")
    if name not in FAULTS:
        raise argparse.ArgumentTypeError("unknown fault %r (one of %s)" % (name, ", ".join(FAULTS)))
    try:
        return name, float(at) if at else 0.0
    except ValueError:
        raise argparse.ArgumentTypeError("bad time in %r" % text)


def main(argv=None):
    parser = argparse.ArgumentParser(description="Emulate a cellular modem's AT interface (docs/modem.md).")
    parser.add_argument("--dialect", choices=DIALECTS, default="sim7080")
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--tcp", type=int, metavar="PORT", help="serve on 127.0.0.1:PORT (0: a free port)")
    where.add_argument("--pty", action="store_true", help="serve on a pty (its path is printed)")
    parser.add_argument("--host", default="127.0.0.1", help="TCP address (loopback only)")
    parser.add_argument("--attach-delay", type=float, default=0.2, help="seconds until CEREG says 1")
    parser.add_argument("--roaming", action="store_true", help="register as roaming (stat 5)")
    parser.add_argument("--fault", type=_fault_arg, action="append", default=[], metavar="NAME[@SECONDS]",
                        help="inject a fault SECONDS after start: " + ", ".join(FAULTS))
    parser.add_argument("--seed", type=int, help="seed for split and garbage")
    parser.add_argument("-v", "--verbose", action="store_true", help="log the traffic to stderr")
    args = parser.parse_args(argv)
    try:
        emu = ModemEmulator(args.dialect, attach_delay=args.attach_delay, host=args.host, port=args.tcp or 0,
                            pty=args.pty, faults=args.fault, stat=5 if args.roaming else 1, seed=args.seed,
                            verbose=args.verbose)
    except ValueError as e:
        parser.error(str(e))
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *a: stop.set())
    emu.start()
    print("modem_emu: %s on %s" % (args.dialect, emu.stream), flush=True)
    try:
        while not stop.wait(0.2):
            pass
    except KeyboardInterrupt:
        pass
    emu.stop()
    print(emu.summary(), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
