"""AT command engine for cellular modems (docs/modem.md "AT engine"; 3GPP TS 27.007 result codes).

One fixed line buffer, one fixed receive chunk: bytes are walked by index, nothing is allocated per byte.
A line that does not fit is dropped up to its end. Unsolicited result codes (URCs) go to the handlers
registered with urc(), also when they arrive in the middle of a command's response.
"""
from micropython import const

from .._compat import ticks_ms, ticks_diff, ticks_add

from time import sleep  # seconds, a float: the same on every port (sleep_ms is MicroPython's only)

_LINE = const(256)  # the line buffer: longer lines are dropped
_RX = const(64)  # bytes taken from the stream at once
_TRIES = const(10)  # start-up: `AT` until OK
_CR = const(13)
_LF = const(10)
_COMMA = const(44)
_IDLE, _BUSY, _OK, _FAIL = const(0), const(1), const(2), const(3)


class ATError(Exception):
    """A command's ERROR, +CME ERROR: n, +CMS ERROR: n (the text), or "timeout"."""


def _starts(buf, n, prefix):
    """buf[:n] starts with prefix, compared in place (no slice)."""
    k = len(prefix)
    if k > n:
        return False
    for i in range(k):
        if buf[i] != prefix[i]:
            return False
    return True


class AT:
    """cmd(text, timeout_ms, prompt, data, on, head) -> response lines; urc(prefix, fn); binary(n); poll().

    stream: write(buf), any(), readinto(buf, n) or read(n) (None when nothing); wait(ms) if it can block
    for input (host adapters), else the engine sleep-polls every 5 ms."""

    def __init__(self, stream, log=None, start=True):
        self.s = stream
        self.log = log
        self.buf = bytearray(_LINE)
        self.n = 0  # bytes in the line buffer
        self.over = False  # dropping an over-long line up to its end
        self.rx = bytearray(_RX)
        self.rp = self.rl = 0  # read position and length in rx
        self.urcs = []  # (prefix bytes, fn)
        self.state = _IDLE
        self.lines = None  # the running command's response lines
        self.pre = None  # the running command's response prefix (b"+CSQ:"): its lines are not URCs
        self.on = None  # the running command's handler for its response lines
        self.head = None  # a response line cut at its first comma: binary data follows on the same line
        self.prompt = -1  # the prompt byte being waited for
        self.commas = 1
        self.c = 0  # commas in the line so far
        self.eol = 0  # the byte that ended the line being handled (a LF after a CR is not payload)
        self.err = None
        self.ready = False
        if start:
            self.start()

    # -- public ------------------------------------------------------------------------------------
    def start(self):
        """`AT` until OK (wakes a sleeping modem, finds the baud), echo off, numeric errors."""
        for i in range(_TRIES):
            try:
                self.cmd("AT", 500)
                break
            except ATError:
                if i == _TRIES - 1:
                    raise
        self.cmd("ATE0")
        self.cmd("AT+CMEE=1")
        self.ready = True

    def urc(self, prefix, fn):
        """Call fn(line) for every unsolicited line starting with prefix (bytes or str)."""
        self.urcs.append((prefix.encode() if isinstance(prefix, str) else prefix, fn))

    def cmd(self, text, timeout_ms=1000, prompt=None, data=None, on=None, head=None, commas=1):
        """Send `text` + CR; wait for the final result. With prompt (b">" or b"@"): wait for it, write `data`,
        then wait for the result. on(line) gets each response line (it may call binary()); head (bytes)
        makes a line starting with it a response line at its `commas`-th comma (a payload follows on the
        same line: `+CARECV: n,<bytes>`)."""
        if isinstance(text, str):
            text = text.encode()
        j = 2
        while j < len(text) and text[j] != 61 and text[j] != 63:  # "=" "?"
            j += 1
        self.pre = text[2:j] + b":" if j > 2 else None
        self.lines = []
        self.on = on
        self.head = head
        self.commas = commas
        self.err = None
        self.poll()  # what came before the command is not its response
        self.prompt = prompt[0] if prompt else -1
        self.state = _BUSY
        try:
            self.s.write(text)
            self.s.write(b"\r")
            deadline = ticks_add(ticks_ms(), timeout_ms)
            while True:
                self.poll()
                if self.prompt == -2:  # the prompt came: the data, then the result
                    self.prompt = -1
                    self.s.write(data)
                if self.state != _BUSY:
                    break
                left = ticks_diff(deadline, ticks_ms())
                if left <= 0:
                    raise ATError("timeout")
                self._wait(left)
            if self.state == _FAIL:
                raise ATError(self.err)
            return self.lines
        finally:
            self.state = _IDLE
            self.lines = self.on = self.head = self.pre = None
            self.prompt = -1

    def binary(self, n, timeout_ms=2000):
        """Exactly n raw bytes from the stream (inside a response handler: the payload after its header)."""
        out = bytearray(n)
        i = 0
        deadline = ticks_add(ticks_ms(), timeout_ms)
        cr = self.eol == _CR
        self.eol = 0
        while i < n:
            if self.rp == self.rl and not self._fill():
                left = ticks_diff(deadline, ticks_ms())
                if left <= 0:
                    raise ATError("timeout")
                self._wait(left)
                continue
            if cr:  # the header line's CR LF: its LF is not data
                cr = False
                if self.rx[self.rp] == _LF:
                    self.rp += 1
                    continue
            k = min(n - i, self.rl - self.rp)
            out[i:i + k] = memoryview(self.rx)[self.rp:self.rp + k]
            i += k
            self.rp += k
        return out

    def poll(self):
        """Handle every byte waiting (URCs dispatched, response lines collected); never blocks."""
        while True:
            if self.rp == self.rl and not self._fill():
                return
            b = self.rx[self.rp]
            self.rp += 1
            if b == _LF or b == _CR:
                if self.over:
                    self.over = False
                    if self.log:
                        self.log("at: over-long line dropped")
                elif self.n:
                    self.eol = b
                    self._line()
                    self.eol = 0
                self.n = self.c = 0
                continue
            if self.over or b == 32 and self.n == 0:  # (leading spaces: "> ")
                continue
            if b == self.prompt and self.n == 0:
                self.prompt = -2  # cmd() writes the data
                continue
            if self.n == _LINE:
                self.over = True
                self.n = 0
                continue
            self.buf[self.n] = b
            self.n += 1
            if b == _COMMA and self.head:
                self.c += 1
                if self.c == self.commas and self.state == _BUSY and _starts(self.buf, self.n, self.head):
                    self._line()
                    self.n = self.c = 0

    # -- internals ---------------------------------------------------------------------------------
    def _fill(self):
        s = self.s
        k = s.any()
        if not k:
            return False
        k = min(k, _RX)
        if hasattr(s, "readinto"):
            k = s.readinto(self.rx, k) or 0
        else:
            data = s.read(k)
            k = len(data) if data else 0
            self.rx[:k] = data or b""
        self.rp = 0
        self.rl = k
        return k > 0

    def _wait(self, ms):
        w = getattr(self.s, "wait", None)
        if w:
            w(min(ms, 1000))
        else:
            sleep(0.005)

    def _line(self):
        buf, n = self.buf, self.n
        if self.state == _BUSY:
            if self.pre and _starts(buf, n, self.pre):
                line = bytes(buf[:n])
                self.lines.append(line)
                if self.on:
                    self.on(line)
                return
            if n == 2 and buf[0] == 79 and buf[1] == 75 or _starts(buf, n, b"SEND OK"):  # OK
                self.state = _OK
                return
            if (n == 5 and _starts(buf, n, b"ERROR") or _starts(buf, n, b"+CME ERROR") or
                    _starts(buf, n, b"+CMS ERROR") or _starts(buf, n, b"SEND FAIL")):
                self.err = bytes(buf[:n]).decode()
                self.state = _FAIL
                return
        for prefix, fn in self.urcs:
            if _starts(buf, n, prefix):
                fn(bytes(buf[:n]))
                return
        if self.state == _BUSY:
            if not _starts(buf, n, b"AT"):  # not the echo (before ATE0)
                line = bytes(buf[:n])
                self.lines.append(line)
                if self.on:
                    self.on(line)
        elif self.log:
            self.log("at: dropped %r" % bytes(buf[:n]))


# -- host streams (unix port, CPython) ---------------------------------------------------------------

class _Host:
    """A socket or a serial device / pty as a UART: write, any, readinto, read, wait (select.poll)."""

    def __init__(self, f, sock):
        import select

        self.f = f
        self.sock = sock
        self.p = select.poll()
        self.p.register(f, select.POLLIN)
        self.one = bytearray(1)
        self.mpy = not hasattr(f, "recv_into") and not isinstance(f, int)

    def write(self, buf):
        f = self.f
        if isinstance(f, int):  # CPython fd
            import os

            mv = memoryview(buf)
            while len(mv):
                mv = mv[os.write(f, mv):]
        elif self.sock and not self.mpy:
            f.sendall(buf)
        else:
            f.write(buf)

    def wait(self, ms):
        return bool(self.p.poll(ms))

    def any(self):
        return _RX if self.p.poll(0) else 0

    def readinto(self, buf, n=None):
        n = len(buf) if n is None else n
        f = self.f
        if isinstance(f, int):
            import os

            data = os.read(f, n)
            buf[:len(data)] = data
            return len(data)
        if not self.mpy:
            return f.recv_into(buf, n)
        if self.sock:
            data = f.recv(n)  # readable: returns what is there
            buf[:len(data)] = data
            return len(data)
        i = 0  # a MicroPython file reads until n: one byte at a time while there is one
        while i < n and self.p.poll(0):
            f.readinto(self.one, 1)
            buf[i] = self.one[0]
            i += 1
        return i

    def read(self, n):
        buf = bytearray(n)
        k = self.readinto(buf, n) if self.any() else 0
        return bytes(buf[:k]) if k else None

    def close(self):
        if isinstance(self.f, int):
            import os

            os.close(self.f)
        else:
            self.f.close()


def open_stream(path):
    """`tcp:HOST:PORT` (a modem emulator's socket) or a serial device / pty path (raw mode is set on
    CPython; on the MicroPython unix port, which has no termios, the device must already be raw: the
    emulator's pty is)."""
    if path.startswith("tcp:"):
        import socket

        host, _, port = path[4:].rpartition(":")
        s = socket.socket()
        s.connect(socket.getaddrinfo(host, int(port))[0][-1])
        return _Host(s, True)
    import os

    if not hasattr(os, "open"):  # MicroPython unix: a file (the device must already be raw)
        return _Host(open(path, "r+b"), False)
    fd = os.open(path, os.O_RDWR | os.O_NOCTTY)  # CPython
    try:
        import termios
        import tty

        try:
            tty.setraw(fd)
        except termios.error:
            pass  # not a terminal (a fifo): as it is
    except ImportError:  # no termios (not Linux/macOS)
        pass
    return _Host(fd, False)
