"""Firmware pull (lwm2m_mpy/fota/pull.py, RFC 7959 Block2) in sans-IO: a fake transport and a fake clock.
Block sequence and options, a fresh token per block request (RFC 7959 §3.4: tokens as for any exchange),
late negotiation (a smaller block size from the server), Size2 progress, ETag change, resume, and the
Update Result for every way a pull ends. Runs under CPython and inside micropython."""
from lwm2m_mpy.coap.message import Msg, Writer
from lwm2m_mpy.fota.pull import Pull

try:
    from lwm2m_mpy.fota.package import FotaError
except ImportError:  # fota/package.py is being written: a stand-in of the same shape (result first)
    class FotaError(Exception):
        pass

MPY = True

CON, NON, ACK, RST = 0, 1, 2, 3
GET = 1
CONTENT, NOT_FOUND, UNAVAILABLE = 69, 132, 163
ETAG, URI_HOST, URI_PATH, CONTENT_FORMAT, URI_QUERY, BLOCK2, SIZE2 = 4, 3, 11, 12, 15, 23, 28


class Link:
    """A transport: keeps what is sent, hands out what the test queued."""

    cut = False

    def __init__(self):
        self.sent = []
        self.incoming = []
        self.closed = False
        self.error = None  # an OSError recv() raises (ICMP unreachable)

    def send(self, buf, n):
        self.sent.append(bytes(buf[:n]))

    def wait(self, ms):
        return bool(self.incoming) or self.error is not None

    def recv(self):
        if self.error is not None:
            raise self.error
        return self.incoming.pop(0) if self.incoming else None

    def close(self):
        self.closed = True


class Sink:
    """The package verifier's shape: write(mv), finish(), offset; `fail` raises from write/finish."""

    def __init__(self, offset=0, fail_write=None, fail_finish=None):
        self.data = bytearray()
        self.offset = offset
        self.finished = 0
        self.fail_write = fail_write
        self.fail_finish = fail_finish

    def write(self, mv):
        if self.fail_write is not None and self.offset >= 1024:
            raise self.fail_write
        self.data += bytes(mv)
        self.offset += len(mv)

    def finish(self):
        if self.fail_finish is not None:
            raise self.fail_finish
        self.finished += 1


def decode(data):
    m = Msg()
    m.decode(data, len(data))
    return m


def opt(m, num):
    k = m.find(num)
    return None if k < 0 else m.value(k)


def opts(m, num):
    out = []
    k = m.find(num)
    while k >= 0:
        out.append(m.value(k))
        k = m.find(num, k + 1)
    return out


def block2(m):
    v = m.uint(BLOCK2)
    return None if v is None else (v >> 4, v >> 3 & 1, v & 7)


def response(req, code=CONTENT, payload=b"", block=None, size=None, etag=None, mtype=ACK, mid=None):
    """The server's answer to `req` (a decoded Msg): piggybacked in the ACK unless mtype says otherwise."""
    w = Writer(1200)
    w.header(mtype, code, req.mid if mid is None else mid, req.token(), req.tkl)
    if etag is not None:
        w.option(ETAG, etag)
    if code == CONTENT:
        w.option(CONTENT_FORMAT, 42)
    if block is not None:
        num, more, szx = block
        w.option(BLOCK2, num << 4 | more << 3 | szx)
    if size is not None:
        w.option(SIZE2, size)
    if payload:
        w.marker()
        w.put(payload)
    return bytes(w.buf[: w.n])


def package(n):
    return bytes((i * 7 + i // 256) & 255 for i in range(n))


def answer(req, data, szx=6, etag=b"E1", size2=True):
    """What a Block2 server (tools/package_server.py's rules) answers to request `req` for `data`."""
    b = block2(req)
    start = b[0] << (b[2] + 4) if b else 0
    szx = min(szx, b[2]) if b else szx
    chunk = data[start : start + (16 << szx)]
    more = int(start + len(chunk) < len(data))
    return response(req, payload=chunk, block=(start >> (szx + 4), more, szx), size=len(data) if size2 else None,
                    etag=etag)


class Run:
    """A Pull over a Link with a fake clock; `serve()` plays the server until the pull ends."""

    def __init__(self, uri="coap://127.0.0.1:5693/fw/p.bin", sink=None, **kw):
        self.link = Link()
        self.sink = sink or Sink(kw.get("resume", 0))
        self.logs = []
        self.done = []
        self.p = Pull(None, uri, self.sink, log=self.logs.append, on_done=self.done.append, **kw)
        self.p.t = self.link
        self.now = 0
        self.seen = 0

    def poll(self, dt=1):
        self.now += dt
        return self.p.poll(self.now)

    def requests(self):
        """Requests sent since the last call, decoded."""
        new = self.link.sent[self.seen :]
        self.seen = len(self.link.sent)
        return [decode(d) for d in new]

    def serve(self, data, limit=10000, **kw):
        """Answer every request as a Block2 server would, until the pull ends; returns the requests."""
        got = []
        self.poll()
        for _ in range(limit):
            if self.done:
                break
            new = self.requests()
            got += new
            for req in new:
                self.link.incoming.append(answer(req, data, **kw))
            self.poll()
        return got


# --- the block sequence --------------------------------------------------------------------------------

def test_block_sequence_options_and_tokens():
    data = package(3000)
    r = Run()
    reqs = r.serve(data)
    assert r.done == [0] and bytes(r.sink.data) == data and r.sink.finished == 1
    assert r.p.offset == 3000 and r.p.size == 3000 and r.p.result == 0
    assert [block2(q) for q in reqs] == [(0, 0, 6), (1, 0, 6), (2, 0, 6)]
    for q in reqs:
        assert q.type == CON and q.code == GET and q.tkl == 4
        assert opts(q, URI_PATH) == [b"fw", b"p.bin"] and opt(q, URI_HOST) is None  # an IP literal: no Uri-Host
    assert opt(reqs[0], SIZE2) == b"" and opt(reqs[1], SIZE2) is None  # Size2 0 asks for the size (§4)
    assert len(set(q.token() for q in reqs)) == 3  # a fresh token per block request (§3.4)
    assert len(set(q.mid for q in reqs)) == 3
    assert r.link.closed and r.p.poll(r.now) == 60000  # done: socket closed, nothing more to do


def test_next_request_before_the_block_is_written():
    """The next block is asked for before this one goes to the package: network and flash overlap."""
    data = package(2048)
    r = Run()
    at_write = []
    write = r.sink.write

    def watching(mv):
        at_write.append(len(r.link.sent))
        write(mv)

    r.sink.write = watching
    r.serve(data)
    assert r.done == [0] and at_write == [2, 2]  # block 0 written after request 1 went; the last has no next


def test_duplicate_and_stale_responses_are_ignored():
    data = package(2048)
    r = Run()
    r.poll()
    q0 = r.requests()[0]
    first = answer(q0, data)
    r.link.incoming.append(first)
    r.poll()
    q1 = r.requests()[0]
    assert block2(q1) == (1, 0, 6)
    r.link.incoming.append(first)  # the same response again (a duplicate ACK): no second write, no new request
    r.link.incoming.append(response(q0, payload=b"x" * 1024, block=(1, 0, 6), etag=b"E1", mtype=NON))  # old token
    r.poll()
    assert r.requests() == [] and r.sink.offset == 1024 and not r.done
    r.link.incoming.append(answer(q1, data))
    r.poll()
    assert r.done == [0] and bytes(r.sink.data) == data


def test_separate_response_after_empty_ack():
    data = package(100)
    r = Run()
    r.poll()
    q = r.requests()[0]
    r.link.incoming.append(bytes([0x60, 0, q.mid >> 8, q.mid & 255]))  # empty ACK: the answer comes later
    r.poll()
    assert not r.done
    r.link.incoming.append(response(q, payload=data, block=(0, 0, 6), etag=b"E1", size=100, mtype=CON, mid=0x1234))
    r.poll()
    assert r.done == [0] and bytes(r.sink.data) == data
    ack = decode(r.link.sent[-1])
    assert ack.type == ACK and ack.code == 0 and ack.mid == 0x1234  # the CON response was acknowledged


def test_whole_representation_without_block2():
    data = package(300)
    r = Run()
    r.poll()
    q = r.requests()[0]
    r.link.incoming.append(response(q, payload=data, etag=b"E1"))
    r.poll()
    assert r.done == [0] and bytes(r.sink.data) == data and r.p.size is None


# --- block size ----------------------------------------------------------------------------------------

def test_smaller_block_size_from_the_server_is_followed():
    data = package(1000)
    r = Run()
    reqs = r.serve(data, szx=4)  # the server answers 256-byte blocks to a request for 1024
    assert r.done == [0] and bytes(r.sink.data) == data
    assert [block2(q) for q in reqs] == [(0, 0, 6), (1, 0, 4), (2, 0, 4), (3, 0, 4)]


def test_requested_szx():
    data = package(200)
    r = Run(szx=2)  # 64-byte blocks asked for from the start
    reqs = r.serve(data)
    assert r.done == [0] and bytes(r.sink.data) == data
    assert [block2(q) for q in reqs] == [(n, 0, 2) for n in range(4)]


def test_smaller_size_at_a_resume_keeps_the_byte_position():
    data = package(4000)
    r = Run(resume=2048)
    reqs = r.serve(data, szx=4)  # asked block 2 of 1024; answered block 8 of 256 (the same bytes)
    assert r.done == [0] and bytes(r.sink.data) == data[2048:]
    assert [block2(q) for q in reqs] == [(2, 0, 6)] + [(n, 0, 4) for n in range(9, 16)]


def test_a_short_block_with_more_is_refused():
    r = Run()
    r.poll()
    q = r.requests()[0]
    r.link.incoming.append(response(q, payload=b"x" * 100, block=(0, 1, 6), etag=b"E1"))
    r.poll()
    assert r.done == [4] and r.sink.offset == 0 and r.requests() == []


def test_a_server_ignoring_block2_does_not_loop():
    data = package(3000)
    r = Run()
    r.poll()
    q = r.requests()[0]
    r.link.incoming.append(answer(q, data))
    r.poll()
    q = r.requests()[0]
    r.link.incoming.append(response(q, payload=data[:1024], block=(0, 1, 6), etag=b"E1"))  # block 0 again
    r.poll()
    assert r.done == [4] and r.sink.offset == 1024


# --- Size2, progress -----------------------------------------------------------------------------------

def test_size2_progress_every_ten_percent():
    data = package(10 * 1024)
    r = Run(szx=4)  # 40 blocks
    r.serve(data)
    assert r.done == [0] and r.p.size == len(data)
    pct = [line for line in r.logs if line.startswith("pull ") and line.endswith("%")]
    assert pct == ["pull %d%%" % p for p in range(10, 101, 10)], r.logs
    assert r.logs[0].startswith("pull coap://") and r.logs[-1] == "pull done: 10240 B"


def test_progress_after_a_resume_starts_where_it_is():
    data = package(20 * 1024)
    r = Run(resume=11 * 1024)
    r.serve(data)
    pct = [line for line in r.logs if line.endswith("%")]
    assert pct == ["pull 60%", "pull 70%", "pull 80%", "pull 90%", "pull 100%"], r.logs


# --- ETag ----------------------------------------------------------------------------------------------

def test_etag_change_fails_with_4():
    data = package(3000)
    r = Run()
    r.poll()
    r.link.incoming.append(answer(r.requests()[0], data, etag=b"E1"))
    r.poll()
    r.link.incoming.append(answer(r.requests()[0], data, etag=b"E2"))  # the package changed under us
    r.poll()
    assert r.done == [4] and r.sink.offset == 1024 and r.requests() == [] and r.link.closed
    assert r.p.etag == b"E1" and any("ETag" in line for line in r.logs)


def test_etag_appearing_later_is_a_change():
    data = package(3000)
    r = Run()
    r.poll()
    r.link.incoming.append(answer(r.requests()[0], data, etag=None))
    r.poll()
    assert r.p.etag == b""
    r.link.incoming.append(answer(r.requests()[0], data, etag=b"E1"))
    r.poll()
    assert r.done == [4]


def test_no_etag_at_all_is_accepted():
    data = package(3000)
    r = Run()
    r.serve(data, etag=None)
    assert r.done == [0] and bytes(r.sink.data) == data


def test_resume_with_the_etag_of_the_earlier_run():
    data = package(3000)
    r = Run(resume=1024)
    r.p.etag = b"E1"
    r.serve(data, etag=b"E1")
    assert r.done == [0] and bytes(r.sink.data) == data[1024:]
    r = Run(resume=1024)
    r.p.etag = b"E0"  # what the first run saw: the server has another package now
    r.serve(data, etag=b"E1")
    assert r.done == [4] and r.sink.data == b""


# --- resume --------------------------------------------------------------------------------------------

def test_resume_offset_gives_the_first_block_number():
    data = package(8000)
    r = Run(resume=5000)  # inside block 4: bytes 4096..4999 are in the package already
    reqs = r.serve(data)
    assert block2(reqs[0]) == (4, 0, 6) and [block2(q)[0] for q in reqs] == [4, 5, 6, 7]
    assert r.done == [0] and bytes(r.sink.data) == data[5000:] and r.p.offset == 8000


def test_resume_on_a_block_boundary():
    data = package(8192)
    r = Run(resume=4096)
    reqs = r.serve(data)
    assert [block2(q)[0] for q in reqs] == [4, 5, 6, 7] and bytes(r.sink.data) == data[4096:]


# --- how a pull ends -----------------------------------------------------------------------------------

def test_exchange_timeout_is_connection_lost():
    r = Run()
    r.p.ex.ack_ms = 100
    r.poll()
    for _ in range(1000):
        if r.done:
            break
        r.poll(10)
    assert r.done == [4] and len(r.link.sent) == 5  # the request and 4 retransmissions (RFC 7252 §4.2)
    assert r.now <= 10 + 100 * 31 * 3 // 2 + 20 and r.link.closed
    assert any("no answer" in line for line in r.logs)


def test_reset_is_connection_lost():
    r = Run()
    r.poll()
    q = r.requests()[0]
    r.link.incoming.append(bytes([0x70, 0, q.mid >> 8, q.mid & 255]))
    r.poll()
    assert r.done == [4]


def test_icmp_unreachable_is_connection_lost():
    data = package(3000)
    r = Run()
    r.poll()
    r.link.incoming.append(answer(r.requests()[0], data))
    r.poll()
    r.link.error = OSError(111)  # ECONNREFUSED: the server's port is closed
    r.poll()
    assert r.done == [4] and r.link.closed and r.sink.offset == 1024


def test_not_found_is_invalid_uri_other_errors_connection_lost():
    for code, result in ((NOT_FOUND, 7), (UNAVAILABLE, 4), (128, 4), (131, 4)):
        r = Run()
        r.poll()
        r.link.incoming.append(response(r.requests()[0], code=code))
        r.poll()
        assert r.done == [result], (code, r.done)


def test_bad_uris_are_invalid_uri():
    for uri in ("coap//127.0.0.1/fw", "coap://", "coap://:5683/fw", "coap://127.0.0.1:0/fw",
                "coap://127.0.0.1:70000/fw", "coap://127.0.0.1:x/fw", "coap://127.0.0.1/%zz", "coap://127.0.0.1/%4",
                "coap://127.0.0.1/fw#part", "://127.0.0.1/fw", "fw.bin", "", "coap://127.0.0.1/" + "a" * 300):
        r = Run(uri)
        assert r.poll() == 60000
        assert r.done == [7] and r.link.sent == [], uri


def test_unknown_host_is_invalid_uri():
    done = []
    p = Pull(None, "coap://nohost.invalid/fw.bin", Sink(), log=None, on_done=done.append)
    p.poll(0)
    assert done == [7]


def test_other_schemes_are_unsupported_protocol():
    for uri in ("http://127.0.0.1/fw.bin", "https://example.com/fw.bin", "coap+tcp://127.0.0.1/fw",
                "ftp://127.0.0.1/fw"):
        r = Run(uri)
        r.poll()
        assert r.done == [9] and r.link.sent == [], uri


def test_coaps_without_credentials_is_unsupported_protocol():
    done = []
    p = Pull(None, "coaps://127.0.0.1:5694/fw.bin", Sink(), on_done=done.append, security={0: "coaps://x", 2: 3})
    p.poll(0)
    assert done == [9]


def test_uri_options():
    r = Run("coap://Example.COM:5700/a%20b/%C3%A9/?v=1&x%26y")
    r.poll()
    q = r.requests()[0]
    assert opt(q, URI_HOST) == b"example.com"
    assert opts(q, URI_PATH) == [b"a b", b"\xc3\xa9", b""]  # RFC 7252 §6.4: the empty last segment counts
    assert opts(q, URI_QUERY) == [b"v=1", b"x&y"]
    r = Run("coap://[::1]:5700")
    r.poll()
    q = r.requests()[0]
    assert opt(q, URI_HOST) is None and opts(q, URI_PATH) == [] and block2(q) == (0, 0, 6)


def test_package_failures_give_their_result():
    data = package(3000)
    for sink, result in ((Sink(fail_write=FotaError(6)), 6), (Sink(fail_finish=FotaError(5)), 5),
                         (Sink(fail_write=FotaError(2)), 2), (Sink(fail_write=MemoryError()), 3),
                         (Sink(fail_write=OSError(28)), 2), (Sink(fail_write=OSError(5)), 8),
                         (Sink(fail_write=ValueError("bug")), 8)):
        r = Run(sink=sink)
        r.serve(data)
        assert r.done == [result], (sink.fail_write, sink.fail_finish, r.done)
        assert r.link.closed and not r.p.ex.busy()


def test_cancel():
    data = package(3000)
    r = Run()
    r.poll()
    q = r.requests()[0]
    r.p.cancel()
    assert r.link.closed and r.p.result == 10
    r.link.incoming.append(answer(q, data))
    assert r.poll() == 60000
    assert r.done == [] and r.sink.offset == 0 and r.requests() == []


def test_request_to_the_pull_socket_is_refused():
    r = Run()
    r.poll()
    r.requests()
    w = Writer(32)
    w.header(CON, GET, 0x4242, 0x77, 1)
    r.link.incoming.append(bytes(w.buf[: w.n]))
    r.poll()
    out = decode(r.link.sent[-1])
    assert out.type == ACK and out.code == NOT_FOUND and out.mid == 0x4242 and not r.done
