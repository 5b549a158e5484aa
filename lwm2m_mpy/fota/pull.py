"""Firmware pull (LwM2M 1.1 Core E.6, Package URI): a block-wise GET (RFC 7959 Block2) of a coap:// or
coaps:// URI, each block streamed into the package verifier; loaded only when a pull starts.

Its own transport (transport/udp.py for_uri) and Exchange, so a download never waits behind the LwM2M
session's requests; driven from the client's loop (board.drive: `poll(now) -> ms`). Memory is constant
whatever the package's size: one datagram at a time, its payload handed on as a memoryview.

Results (`on_done(result)`, the Update Result values of object 5): 0 downloaded and `package.finish()`
accepted it; 3 out of RAM; 4 connection lost (no answer, RST, ICMP unreachable, an error response other
than 4.04, a malformed block, or the package changed: another ETag); 7 invalid URI (unparsable, unknown
host, 4.04 from the server); 9 unsupported protocol (a scheme other than coap/coaps, or coaps:// where
there is no DTLS or no credentials); 2/5/6 (any 1-11) as the package or its sink raise them
(FotaError(result): the result is the exception's first argument), ENOSPC from a sink is 2, any other
failure of theirs 8.
"""
from micropython import const

from .._compat import ticks_ms, ticks_add, ticks_diff
from ..coap.exchange import Exchange

_GET = const(1)
_CONTENT = const(69)  # 2.05
_NOT_FOUND = const(132)  # 4.04
_ETAG = const(4)
_URI_HOST = const(3)
_URI_PATH = const(11)
_URI_QUERY = const(15)
_BLOCK2 = const(23)
_SIZE2 = const(28)
_SLICE = const(5)  # ms a poll may wait on the pull's socket while a block is outstanding
_IDLE = const(60000)  # ms: nothing to do (finished, failed or cancelled)
_ENOSPC = const(28)


def _result(e):
    """The Update Result for an exception raised by the package or its sink."""
    if isinstance(e, MemoryError):
        return 3
    a = e.args[0] if e.args else None
    if type(a) is not int:
        return 8
    if isinstance(e, OSError) and type(e).__name__ != "FotaError":
        return 2 if a == _ENOSPC else 8  # an errno: a full flash, or something the update cannot get past
    return a if 0 < a < 12 else 8


def _unquote(s):
    """A URI component with its percent-encodings decoded (RFC 3986 §2.1), as bytes; ValueError if bad."""
    b = s.encode()
    if b"%" not in b:
        return b
    out = bytearray()
    i = 0
    n = len(b)
    while i < n:
        c = b[i]
        if c == 37:  # %
            if i + 3 > n:
                raise ValueError(s)
            out.append(int(str(b[i + 1 : i + 3], "ascii"), 16))
            i += 3
        else:
            out.append(c)
            i += 1
    return bytes(out)


class Pull:
    """Download `uri` block by block into `package` (write(mv), finish(), offset).

    pull = Pull(client, "coap://host/fw.bin", package, on_done=done)   # done(result), once
    board.drive(client, [pull])                                        # or poll(now) from an owner
    pull.offset, pull.size (Size2, None until the server says), pull.etag, pull.cancel()

    `resume=n`: the package holds n bytes already; the first request asks for block n // block size.
    Set `etag` (what an earlier run saw) before the first poll to have a changed package refused.
    `security`: the Security instance for coaps:// (default: the client's first non-bootstrap one).
    """

    def __init__(self, client, uri, package, log=None, on_done=None, security=None, szx=6, resume=0):
        self.client = client
        self.uri = uri
        self.package = package
        self.log = log or getattr(client, "log", None)
        self.on_done = on_done
        self.security = security
        self.szx = szx
        self.offset = resume  # bytes the package holds
        self.size = None
        self.etag = None  # the first block's ETag (b"" when the server sends none)
        self.result = None  # None while running; the Update Result when over (10: cancelled)
        self.t = None  # the transport, made at the first poll (tests put a fake one here)
        self.opts = None  # [(option number, bytes)]: Uri-Host, Uri-Path, Uri-Query of every request
        self.pct = -1  # last tenth of the size logged
        self.first = True  # the next response is the first: learn or check the ETag, ask for Size2
        # The requests are small: the URI's options and Block2 (responses arrive in the transport's buffer)
        self.ex = Exchange(None, self._serve, len(uri) + 64, self.log)

    # -- driver ------------------------------------------------------------------------------------
    def poll(self, now):
        """Open and send the first request, take what came, retransmit; waits at most a few ms on the
        pull's socket while a block is outstanding. Returns ms until it wants to be polled again."""
        if self.result is not None:
            return _IDLE
        ex = self.ex
        try:
            if self.opts is None:
                if not self._open():
                    return _IDLE
                self._ask(now)
            t = self.t
            start = ticks_ms()
            left = _SLICE
            while ex.busy() and self.result is None:
                if not t.wait(left):
                    break
                while self.result is None:
                    try:
                        data = t.recv()
                    except OSError as e:  # ICMP unreachable: nobody listens there any more
                        self._end(4, "unreachable (%s)" % e)
                        return _IDLE
                    if data is None:
                        break
                    if getattr(t, "cut", False):  # the transport could not find room for a whole datagram
                        self._end(3, "no room for a block")
                        return _IDLE
                    ex.feed(data, ticks_add(now, ticks_diff(ticks_ms(), start)))
                left = _SLICE - ticks_diff(ticks_ms(), start)
                if left <= 0:
                    break
            if self.result is None:
                ex.step(ticks_add(now, ticks_diff(ticks_ms(), start)))
        except MemoryError:
            self._end(3, "out of memory")
        return _IDLE if self.result is not None else 0

    def cancel(self):
        """Stop without a callback (the owner asked): forgets the outstanding request, closes the socket."""
        self.on_done = None
        self._end(10, "pull cancelled")

    # -- internals ---------------------------------------------------------------------------------
    def _open(self):
        """Parse the URI (RFC 7252 §6.4) into the request's options and make the transport."""
        uri = self.uri
        scheme, sep, rest = uri.partition("://")
        if not sep or not scheme or not scheme[0].isalpha() or "#" in uri:
            return self._end(7, "bad URI " + uri)
        if scheme != "coap" and scheme != "coaps":
            return self._end(9, "unsupported scheme " + scheme)
        i = 0
        while i < len(rest) and rest[i] not in "/?":
            i += 1
        auth = rest[:i]
        path, _, query = rest[i:].partition("?")
        host = auth
        port = ""
        if auth.startswith("["):  # [IPv6]:port
            host, _, port = auth[1:].partition("]")
            port = port[1:]
            literal = True
        else:
            host, _, port = auth.partition(":")
            literal = host.replace(".", "").isdigit()
        opts = []
        try:
            if not host or port and not 0 < int(port) < 65536:
                raise ValueError(auth)
            if not literal:  # §6.4 step 5: a name is sent as Uri-Host (virtual hosting)
                opts.append((_URI_HOST, host.lower().encode()))
            if path not in ("", "/"):
                for seg in path[1:].split("/"):
                    opts.append((_URI_PATH, _unquote(seg)))
            if query:
                for q in query.split("&"):
                    opts.append((_URI_QUERY, _unquote(q)))
        except ValueError:
            return self._end(7, "bad URI " + uri)
        for _, v in opts:
            if len(v) > 255:
                return self._end(7, "bad URI " + uri)
        self.opts = opts
        if self.t is None:
            sec = self.security
            if sec is None and self.client is not None:  # the LwM2M server's account: its PSK or certificates
                for s in self.client.objs[0].inst.values():
                    if not s.get(1):
                        sec = s
                        break
            from ..transport.udp import for_uri

            if scheme == "coaps":
                why = for_uri(uri, sec or {}, check=True)
                if why is None:
                    try:
                        from ..transport import dtls

                        if not hasattr(dtls.tls, "PROTOCOL_DTLS_CLIENT"):
                            why = "no DTLS on this port"
                    except ImportError:
                        why = "no DTLS on this port"
                if why:
                    return self._end(9, why)
            try:
                self.t = for_uri(scheme + "://" + auth, sec, self.log)
            except (OSError, ValueError, IndexError) as e:  # getaddrinfo: unknown host
                return self._end(7, "%s: %s" % (host, e))
        self.ex.send = self.t.send
        if self.log:
            self.log("pull %s from %d" % (uri, self.offset))
        return True

    def _ask(self, now):
        """GET the block holding byte `offset` (RFC 7959 §2.4); the first request asks for Size2 (§4)."""
        bits = self.szx + 4
        w = self.ex.begin(_GET)
        for num, v in self.opts:
            w.option(num, v)
        w.option(_BLOCK2, (self.offset >> bits) << 4 | self.szx)  # M is 0 in a request
        if self.first:
            w.option(_SIZE2, 0)
        self.ex.request(self._got, now)

    def _got(self, m):
        """The response to the outstanding block request (the Exchange matched its token)."""
        if m is None or m is False:
            return self._end(4, "no answer" if m is None else "reset")
        if m.code != _CONTENT:
            c = m.code
            return self._end(7 if c == _NOT_FOUND else 4, "answer %d.%02d" % (c >> 5, c & 31))
        # ETag: the same on every block, and the one a resumed pull saw before (§2.4: compare them)
        k = m.find(_ETAG)
        e = self.etag
        if self.first and e is None:
            self.etag = m.value(k) if k >= 0 else b""
        else:  # compared in place: no copy of the option per block
            same = k < 0 and not e or k >= 0 and e is not None and m.olen[k] == len(e)
            if same and k >= 0:
                o = m.ooff[k]
                b = m.buf
                for i in range(len(e)):
                    if b[o + i] != e[i]:
                        same = False
                        break
            if not same:
                return self._end(4, "package changed (ETag)")
        size = m.uint(_SIZE2)
        if size is not None:
            self.size = size
            if self.pct < 0 and size:
                self.pct = self.offset * 10 // size  # progress lines start from where a resume stands
        self.first = False
        v = m.uint(_BLOCK2)
        pl = m.pl
        n = m.n - pl
        if v is None:  # the whole representation in one response
            pos = 0
            more = 0
        else:
            szx = v & 7
            if szx == 7:  # BERT: only over reliable transports (RFC 8323)
                return self._end(4, "bad block")
            more = v & 8
            pos = (v >> 4) << (szx + 4)
            if more and n != 16 << szx:  # §2.2: every block but the last is full
                return self._end(4, "bad block")
            self.szx = szx  # follow the size the server chose (late negotiation, §2.4)
        off = self.offset
        if pos > off:  # a block beyond what we hold: nothing to join it to
            return self._end(4, "bad block")
        skip = off - pos  # bytes of this block the package has already (a resume inside a block)
        if skip >= n and more:  # no new byte, yet more to come: a server that ignores Block2 would loop
            return self._end(4, "bad block")
        if skip > n:
            skip = n
        self.offset = off + n - skip
        if more:
            self._ask(self.ex.now)  # the next request goes out before this block is written: they overlap
        try:
            if skip < n:
                self.package.write(memoryview(m.buf)[pl + skip : m.n])
            if not more:
                self.package.finish()
        except Exception as e:  # FotaError(result) from the verifier or its sink, MemoryError, OSError
            return self._end(_result(e), "package: %r" % (e,))
        if self.size:
            p = self.offset * 10 // self.size
            if p != self.pct:
                self.pct = p
                if self.log:
                    self.log("pull %d%%" % (p * 10))
        if not more:
            self._end(0, "pull done: %d B" % self.offset)

    def _serve(self, m, tx):
        tx.buf[1] = _NOT_FOUND  # a request to us over the pull's socket: there is nothing here

    def _end(self, result, why):
        """End the pull: log, forget the request, close the socket, then tell the owner (once)."""
        if self.result is not None:
            return False
        self.result = result
        if self.log:
            self.log(why if result == 0 or result == 10 else "pull failed (%d): %s" % (result, why))
        self.ex.cancel()
        t = self.t
        if t is not None:
            try:
                t.close()
            except OSError:
                pass
        if self.on_done:
            self.on_done(result)
        return False
