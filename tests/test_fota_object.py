"""Firmware Update (object 5, lwm2m_mpy/objects/firmware.py) and Block1 on the DM side (core/blockwise.py,
coap/block.py) on the sans-IO client over real CoAP messages, with a fake clock: block option values from
RFC 7959's examples; a push through the DM (2.31 Continue sequence, 4.08 for a gap, a smaller SZX
negotiated, 4.13 with Size1, retransmissions answered from the duplicate cache, the instance dict never
growing); the state machine of LwM2M 1.1 Core E.6 and its Update Results, with stand-ins of the verifier,
sink and pull (the interfaces of docs/fota.md); notifications of State and Update Result in order;
refusals in the wrong state; cancel by an empty URI or package; persistence across a new Client.
Runs under CPython and inside micropython."""
import gc
import os

from lwm2m_mpy import Client
from lwm2m_mpy.board import drive
from lwm2m_mpy.coap.block import decode, value
from lwm2m_mpy.coap.message import Writer
from lwm2m_mpy.core import blockwise
from lwm2m_mpy.errors import CoapError
from lwm2m_mpy.objects import firmware
from test_observe import (ACK, CHANGED, CON, CONTENT, CONTENT_FORMAT, CREATED, OBSERVE, POST, PUT, TEXT,
                          URI_PATH, Device, Link, decode as parse, opt, reply)

MPY = True
MPY_HEAP = "512k"

BLOCK1, SIZE1 = 27, 60
OPAQUE, TLV = 42, 11542
CONTINUE, BAD_OPTION, BAD_REQUEST, NOT_ALLOWED, INCOMPLETE, TOO_LARGE, SERVER_ERROR = 95, 130, 128, 133, 136, 141, 160
FILE = "/tmp/lwm2m_mpy_test_fota.json"
EMPTY_URI = b"\xc0\x01"  # TLV: resource 1, an empty string (an empty text/plain payload is "no payload")


# --- stand-ins of docs/fota.md's interfaces (the real ones are tested in their own files) ------------

class FotaError(Exception):
    def __init__(self, result):
        super().__init__(result)
        self.result = result


class Reset(BaseException):
    """What a board's machine.reset() is to the code that called it: the end of everything."""


class Sink:
    """Keeps what it is given in memory, as flash would across a reboot (the same object is handed to
    the next Client). pending(): None, "new" after apply until confirm, or what the test says."""

    types = (3,)

    def __init__(self):
        self.data = bytearray()
        self.began = self.finished = self.applied = self.confirmed = 0
        self.left = None
        self.refuse = None  # an exception apply() raises
        self.reset = False  # apply() resets the device (raises Reset) once the update is in place

    def begin(self, size, at=0):
        self.began += 1
        self.data = self.data[:at]
        return at

    def write(self, mv):
        if len(self.data) + len(mv) > 1 << 20:
            raise FotaError(2)
        self.data.extend(mv)

    def read(self, offset, buf):
        n = min(len(buf), len(self.data) - offset)
        buf[:n] = self.data[offset:offset + n]
        return n

    def finish(self):
        self.finished += 1

    def apply(self):
        self.applied += 1
        if self.refuse:
            raise self.refuse
        self.left = "new"
        if self.reset:
            raise Reset()

    def confirm(self):
        self.confirmed += 1
        self.left = None

    def pending(self):
        return self.left


class Verifier:
    """Package(sink, log): every byte to the sink; a package starts with b"T" (else result 6); finish()
    refuses one that ends with b"!" (result 5); name and version "demo" "2.0"; resume(offset) goes on from
    the last 1024 boundary."""

    def __init__(self, sink, log=None):
        self.sink = sink
        self.offset = 0
        self.name = self.version = None
        self.resumed = None

    def write(self, mv):
        if self.offset == 0:
            if bytes(mv[:1]) != b"T":
                raise FotaError(6)
            self.sink.begin(0)
            self.name, self.version = "demo", "2.0"
        self.sink.write(mv)
        self.offset += len(mv)

    def finish(self):
        if self.sink.data[-1:] == b"!":
            raise FotaError(5)
        self.sink.finish()

    def resume(self, offset):
        self.resumed = offset
        self.offset = self.sink.begin(0, offset // 1024 * 1024)
        self.name, self.version = "demo", "2.0"
        return self.offset


class Puller:
    """Pull(client, uri, package, log, on_done, resume=n): hands the package one chunk of `chunks` per
    poll (None: the connection drops, result 4), then, once `total` bytes are in (default: when the chunks
    run out), finish() and on_done(0)."""

    made = []

    def __init__(self, client, uri, package, log=None, on_done=None, resume=0):
        self.uri = uri
        self.package = package
        self.on_done = on_done
        self.offset = resume
        self.resume = resume
        self.size = None
        self.etag = None
        self.chunks = []
        self.cancelled = False
        self.total = None
        Puller.made.append(self)

    def poll(self, now):
        if self.chunks:
            c = self.chunks.pop(0)
            if c is None:
                self.on_done(4)
                return 60000
            try:
                self.package.write(memoryview(c))
                self.offset += len(c)
                end = not self.chunks if self.total is None else self.offset >= self.total
                if end:
                    self.package.finish()
            except FotaError as e:
                self.on_done(e.result)
                return 60000
            if self.etag is None:
                self.etag = b"\x01\x02"
            if end:
                self.on_done(0)
        return 0

    def cancel(self):
        self.cancelled = True


# --- helpers -----------------------------------------------------------------------------------------

def clean():
    for f in (FILE, FILE + ".tmp"):
        try:
            os.remove(f)
        except OSError:
            pass


def blob(n, end=b""):
    """A package of n bytes that the stand-in verifier takes: b"T", a pattern, then `end`."""
    b = bytearray(n)
    b[0] = 84
    for i in range(1, n):
        b[i] = (i * 7 + (i >> 8)) & 255
    b[n - len(end):] = end
    return bytes(b)


def setup(**cfg):
    clean()
    Puller.made = []
    d = Device()
    sink = Sink()
    cfg["file"] = FILE
    fw = make(d.c, sink, cfg)
    return d, sink, fw


def make(client, sink, cfg):
    fw = firmware.make(client, 5, 0, sink, cfg)
    fw.verifier = Verifier
    fw.puller = Puller
    drive(client, [fw])
    return fw


def request(d, code, path, payload=b"", cf=OPAQUE, block=None, size1=None, mid=None):
    """A request from the server as bytes; block = (num, more, szx) for a Block1 option."""
    if mid is None:
        d.mid += 1
        mid = d.mid
    w = Writer(4200)
    w.header(CON, code, mid, 0xB1, 1)
    for seg in path.strip("/").split("/"):
        w.option(URI_PATH, seg)
    if cf is not None:
        w.option(CONTENT_FORMAT, cf)
    if block is not None:
        w.option(BLOCK1, value(*block))
    if size1 is not None:
        w.option(SIZE1, size1)
    if payload:
        w.marker()
        w.put(payload)
    return bytes(w.buf[: w.n])


def feed(d, data):
    """Feed one request; returns its response (the client may send notifications around it)."""
    mid = data[2] << 8 | data[3]
    n = len(d.link.sent)
    d.c.feed(data, d.t)
    for raw in d.link.sent[n:]:
        m = parse(raw)
        if m.type == ACK and m.mid == mid:
            return m
    raise AssertionError("no answer to mid %d" % mid)


def ask(d, code, path, payload=b"", **kw):
    return feed(d, request(d, code, path, payload, **kw))


def block1(m):
    v = opt(m, BLOCK1)
    return None if v is None else decode(int.from_bytes(v, "big"))


def push(d, data, szx=6):
    """The whole of `data` to /5/0/0 in blocks of 16 << szx; returns the responses."""
    size = 16 << szx
    out = []
    num = 0
    while True:
        chunk = data[num * size:(num + 1) * size]
        more = (num + 1) * size < len(data)
        out.append(ask(d, PUT, "/5/0/0", chunk, block=(num, more, szx), size1=len(data) if num == 0 else None))
        if not more or out[-1].code != CONTINUE:
            return out
        num += 1


def read(d, rid):
    m = ask(d, 1, "/5/0/%d" % rid, cf=None)
    assert m.code == CONTENT, (rid, m.code)
    return bytes(m.payload()).decode()


def state(d):
    return int(read(d, 3)), int(read(d, 5))


# --- block option (RFC 7959 §2.2) -------------------------------------------------------------------

def test_block_values_from_rfc7959_examples():
    # Figure 2 (Block2 GET): 2:0/1/128, 2:1/1/128, 2:2/0/128; Figure 6 (Block1 PUT with negotiation):
    # 1:0/1/128 answered 1:0/1/32, then 1:4/1/32, 1:5/1/32, 1:6/0/32 (num/more/size, size = 16 << szx)
    assert value(0, True, 3) == 0x0B and value(1, True, 3) == 0x1B and value(2, False, 3) == 0x23
    assert value(0, True, 1) == 0x09 and value(4, True, 1) == 0x49 and value(6, False, 1) == 0x61
    for v, want in ((0x0B, (0, True, 3)), (0x49, (4, True, 1)), (0x61, (6, False, 1)), (0, (0, False, 0)),
                    (0xFFFFFE, (0xFFFFF, True, 6))):
        assert decode(v) == want, (v, decode(v))
        assert value(*want) == v
    for bad in (0x0F, 0x1000000):  # SZX 7 is BERT (reliable transports only); NUM beyond 20 bits
        try:
            decode(bad)
        except CoapError as e:
            assert e.code == BAD_REQUEST
        else:
            raise AssertionError(bad)
    w = Writer(16)  # the uint option encoding (RFC 7252 §3.2): 0 is empty, then 1-3 bytes
    w.option(BLOCK1, value(0, False, 0))
    w.option(BLOCK1, value(4, True, 1))
    w.option(BLOCK1, value(0xFFFFF, True, 6))
    assert bytes(w.buf[: w.n]) == b"\xd0\x0e" + b"\x01\x49" + b"\x03\xff\xff\xfe"


# --- Block1 through the DM ---------------------------------------------------------------------------

def test_block1_push_continue_sequence_then_changed_and_nothing_kept():
    d, sink, fw = setup()
    inst = d.c.objs[5].inst[0]
    keys = sorted(inst)
    hooks = len(d.c.objs[5].hooks)
    data = blob(3 * 1024 + 100)
    out = push(d, data)
    assert [m.code for m in out] == [CONTINUE, CONTINUE, CONTINUE, CHANGED]
    assert [block1(m) for m in out] == [(0, True, 6), (1, True, 6), (2, True, 6), (3, False, 6)]
    assert bytes(sink.data) == data and sink.finished == 1
    assert state(d) == (2, 0)
    assert read(d, 6) == "demo" and read(d, 7) == "2.0"
    # nothing of the package stays in the store, and nothing grew: the payload went to the sink in place
    assert sorted(inst) == keys and len(d.c.objs[5].hooks) == hooks and blockwise._next == {}
    assert not [v for v in inst.values() if isinstance(v, (bytes, bytearray, memoryview))]
    assert ask(d, 1, "/5/0/0", cf=None).code == NOT_ALLOWED  # Package is write-only
    assert read(d, 9) == "2"


def test_block1_gap_is_4_08_and_a_retransmission_is_answered_from_the_cache():
    d, sink, fw = setup()
    data = blob(4096)
    first = request(d, PUT, "/5/0/0", data[:1024], block=(0, True, 6))
    a = feed(d, first)
    again = feed(d, first)  # the same CON (same MID): the cached answer, not a second write
    assert a.code == again.code == CONTINUE and len(sink.data) == 1024
    r = ask(d, PUT, "/5/0/0", data[2048:3072], block=(2, True, 6))  # block 1 is missing
    assert r.code == INCOMPLETE and len(sink.data) == 1024
    r = ask(d, PUT, "/5/0/0", data[1024:2048], block=(1, True, 6))  # the transfer is over for blockwise
    assert r.code == INCOMPLETE
    assert [m.code for m in push(d, data)] == [CONTINUE] * 3 + [CHANGED]  # starting again works
    assert bytes(sink.data) == data and state(d) == (2, 0)
    # a block that is not full while more follow is malformed
    d, sink, fw = setup()
    assert ask(d, PUT, "/5/0/0", data[:1000], block=(0, True, 6)).code == BAD_REQUEST


def test_smaller_block_size_negotiated_and_larger_blocks_taken_only_in_order():
    d, sink, fw = setup(szx=4)  # 256-byte blocks
    data = blob(1024 + 256 + 100)
    r = ask(d, PUT, "/5/0/0", data[:1024], block=(0, True, 6))
    assert r.code == CONTINUE and block1(r) == (0, True, 4)  # taken whole; continue in 256s (RFC 7959 Fig. 6)
    r = ask(d, PUT, "/5/0/0", data[1024:1280], block=(4, True, 4))
    assert r.code == CONTINUE and block1(r) == (4, True, 4)
    r = ask(d, PUT, "/5/0/0", data[1280:], block=(5, False, 4))
    assert r.code == CHANGED and block1(r) == (5, False, 4)
    assert bytes(sink.data) == data and state(d) == (2, 0)
    # a larger block again: taken where it fits the transfer (offset 1024 = 1 x 1024), not elsewhere
    d, sink, fw = setup(szx=4)
    data = blob(4096)
    assert ask(d, PUT, "/5/0/0", data[:1024], block=(0, True, 6)).code == CONTINUE
    r = ask(d, PUT, "/5/0/0", data[1024:2048], block=(1, True, 6))
    assert r.code == CONTINUE and block1(r) == (1, True, 4)
    assert ask(d, PUT, "/5/0/0", data[3072:], block=(3, False, 6)).code == INCOMPLETE
    # a small message buffer limits the size too (a 1024 block and its header would not fit 512 bytes)
    clean()
    d = Device(buffer=512)
    make(d.c, Sink(), {"file": FILE})
    r = ask(d, PUT, "/5/0/0", blob(2048)[:1024], block=(0, True, 6))
    assert r.code == CONTINUE and block1(r) == (0, True, 4)


def test_rfc7959_figure_6_atomic_put_with_negotiation():
    d, sink, fw = setup(szx=1)  # a device that wants 32-byte blocks
    data = blob(128 + 32 + 32 + 20)
    steps = [((0, True, 3), data[:128], CONTINUE, (0, True, 1)),  # 1:0/1/128 -> 2.31 1:0/1/32
             ((4, True, 1), data[128:160], CONTINUE, (4, True, 1)),
             ((5, True, 1), data[160:192], CONTINUE, (5, True, 1)),
             ((6, False, 1), data[192:], CHANGED, (6, False, 1))]  # 1:6/0/32 -> 2.04 1:6/0/32
    for blk, chunk, code, answer in steps:
        r = ask(d, PUT, "/5/0/0", chunk, block=blk)
        assert (r.code, block1(r)) == (code, answer), (blk, r.code, block1(r))
    assert bytes(sink.data) == data and state(d) == (2, 0)


def test_size1_above_the_maximum_is_4_13_with_size1():
    d, sink, fw = setup(max=2048)
    r = ask(d, PUT, "/5/0/0", blob(4096)[:1024], block=(0, True, 6), size1=4096)
    assert r.code == TOO_LARGE and int.from_bytes(opt(r, SIZE1), "big") == 2048
    assert state(d) == (0, 0) and sink.began == 0
    assert ask(d, PUT, "/5/0/0", blob(3000)).code == TOO_LARGE  # one message (no Block1): too large too
    assert [m.code for m in push(d, blob(2048))] == [CONTINUE, CHANGED]  # what fits is taken
    assert state(d) == (2, 0)


def test_refused_package_fails_the_transfer_with_the_hooks_code_and_its_result():
    d, sink, fw = setup()
    r = ask(d, PUT, "/5/0/0", b"X" * 1024, block=(0, True, 6))  # a type the sink does not take
    assert r.code == BAD_REQUEST and b"result 6" in bytes(r.payload())
    assert state(d) == (0, 6)
    assert ask(d, PUT, "/5/0/0", b"X" * 1024, block=(1, True, 6)).code == INCOMPLETE
    out = push(d, blob(2048, b"!"))  # the integrity check fails at the last block
    assert [m.code for m in out] == [CONTINUE, BAD_REQUEST] and state(d) == (0, 5)
    sink.write = no_room
    r = ask(d, PUT, "/5/0/0", blob(1024), block=(0, True, 6))
    assert r.code == TOO_LARGE and state(d) == (0, 2)


def no_room(mv):
    raise FotaError(2)  # the sink's flash is full


def test_one_message_write_and_tlv_instance_write_go_to_the_stream():
    d, sink, fw = setup()
    r = ask(d, PUT, "/5/0/0", blob(500))
    assert r.code == CHANGED and block1(r) is None and state(d) == (2, 0)
    assert ask(d, PUT, "/5/0/0", b"\x00").code == CHANGED and state(d) == (0, 0)  # '\0' resets
    # Package in a TLV Write of the instance (resource 0, opaque, 10 bytes): to the stream, not the store
    tlv = b"\xc8\x00\x0a" + blob(10)
    assert ask(d, POST, "/5/0", tlv, cf=TLV).code == CHANGED
    assert state(d) == (2, 0) and bytes(sink.data) == blob(10) and 0 not in d.c.objs[5].inst[0]


def test_block1_elsewhere_is_still_an_unrecognised_critical_option():
    d, sink, fw = setup()
    r = ask(d, PUT, "/3/0/13", b"1", cf=TEXT, block=(0, False, 6))
    assert r.code == BAD_OPTION
    assert ask(d, PUT, "/5/0/0", blob(64), cf=TEXT, block=(0, False, 6)).code == 143  # 4.15: opaque only
    assert ask(d, 4, "/5/0/0", cf=None).code == NOT_ALLOWED  # DELETE


# --- the state machine -------------------------------------------------------------------------------

def values(d, since, token):
    """State/Result values notified with `token` in the client's datagrams since index `since`, with
    repeats of the same value dropped."""
    out = []
    for raw in d.link.sent[since:]:
        m = parse(raw)
        if m.code == CONTENT and m.token() == token and opt(m, OBSERVE) is not None:
            v = int(bytes(m.payload()).decode())
            if not out or out[-1] != v:
                out.append(v)
    return out


def test_notifications_of_state_and_result_in_order_through_an_update():
    d, sink, fw = setup()
    since = len(d.link.sent)
    assert bytes(d.observe("/5/0/3").payload()) == b"0"
    assert bytes(d.observe("/5/0/5", token=b"\x05").payload()) == b"0"
    data = blob(2048)
    assert ask(d, PUT, "/5/0/0", data[:1024], block=(0, True, 6)).code == CONTINUE
    d.run(d.t + 500)
    assert ask(d, PUT, "/5/0/0", data[1024:], block=(1, False, 6)).code == CHANGED
    d.run(d.t + 500)
    assert ask(d, POST, "/5/0/2", cf=None).code == CHANGED  # Update: answered, then applied
    assert sink.applied == 1
    d.run(d.t + 2000)
    assert sink.confirmed == 1 and state(d) == (0, 1)
    assert values(d, since, 0xAA) == [0, 1, 2, 3, 0]
    assert values(d, since, 0x05) == [0, 1]
    # a failed download: Downloading, then Idle with the result
    since = len(d.link.sent)
    data = blob(2048, b"!")
    ask(d, PUT, "/5/0/0", data[:1024], block=(0, True, 6))
    d.run(d.t + 500)
    assert ask(d, PUT, "/5/0/0", data[1024:], block=(1, False, 6)).code == BAD_REQUEST
    d.run(d.t + 500)
    assert values(d, since, 0xAA) == [1, 0] and values(d, since, 0x05) == [0, 5]


def test_update_and_writes_refused_in_the_wrong_state():
    d, sink, fw = setup()
    assert ask(d, POST, "/5/0/2", cf=None).code == NOT_ALLOWED  # Idle
    data = blob(2048)
    ask(d, PUT, "/5/0/0", data[:1024], block=(0, True, 6))
    assert state(d) == (1, 0)
    assert ask(d, POST, "/5/0/2", cf=None).code == NOT_ALLOWED  # Downloading
    r = ask(d, PUT, "/5/0/1", b"coap://127.0.0.1/fw", cf=TEXT)
    assert r.code == NOT_ALLOWED and read(d, 1) == ""  # the refused URI is not kept
    ask(d, PUT, "/5/0/0", data[1024:], block=(1, False, 6))
    assert state(d) == (2, 0)
    assert ask(d, PUT, "/5/0/0", data[:1024], block=(0, True, 6)).code == NOT_ALLOWED  # Downloaded
    assert ask(d, PUT, "/5/0/1", b"coap://127.0.0.1/fw", cf=TEXT).code == NOT_ALLOWED
    sink.refuse = FotaError(8)  # the sink cannot install: back to Downloaded, result 8, try again later
    assert ask(d, POST, "/5/0/2", cf=None).code == CHANGED
    assert state(d) == (2, 8)
    fw.apply = lambda: None  # Updating, the sink at work: everything else is refused meanwhile
    assert ask(d, POST, "/5/0/2", cf=None).code == CHANGED
    assert state(d) == (3, 0)
    assert ask(d, POST, "/5/0/2", cf=None).code == NOT_ALLOWED
    assert ask(d, PUT, "/5/0/1", EMPTY_URI, cf=TLV).code == NOT_ALLOWED
    assert ask(d, PUT, "/5/0/0", b"\x00").code == NOT_ALLOWED
    assert ask(d, POST, "/5/0/10", cf=None).code == NOT_ALLOWED


def test_cancel_by_empty_uri_empty_package_and_cancel():
    d, sink, fw = setup()
    data = blob(2048)
    ask(d, PUT, "/5/0/0", data[:1024], block=(0, True, 6))
    assert ask(d, PUT, "/5/0/0", b"", block=(0, False, 6)).code == CHANGED  # an empty Package: Idle, result 0
    assert state(d) == (0, 0)
    assert ask(d, PUT, "/5/0/0", data[1024:], block=(1, False, 6)).code == INCOMPLETE
    push(d, data)
    assert state(d) == (2, 0) and read(d, 6) == "demo"
    assert ask(d, PUT, "/5/0/1", EMPTY_URI, cf=TLV).code == CHANGED  # an empty URI: Idle, result 0
    assert state(d) == (0, 0) and read(d, 6) == ""
    assert ask(d, PUT, "/5/0/1", b"coap://127.0.0.1:5693/fw.bin", cf=TEXT).code == CHANGED
    pull = Puller.made[-1]
    assert state(d) == (1, 0) and read(d, 1) == "coap://127.0.0.1:5693/fw.bin"
    assert ask(d, PUT, "/5/0/0", b"\x00").code == CHANGED  # '\0': the pull stops too
    assert pull.cancelled and state(d) == (0, 0) and read(d, 1) == ""
    push(d, data)
    assert ask(d, POST, "/5/0/10", cf=None).code == CHANGED  # Cancel (object 5 version 1.2): result 10
    assert state(d) == (0, 10)


def test_pull_runs_from_poll_and_reports_its_result():
    d, sink, fw = setup()
    uri = "coap://127.0.0.1:5693/fw.bin"
    assert ask(d, PUT, "/5/0/1", uri.encode(), cf=TEXT).code == CHANGED
    p = Puller.made[-1]
    assert p.uri == uri and p.resume == 0 and state(d) == (1, 0)
    data = blob(3000)
    p.chunks = [data[:1024], data[1024:2048], data[2048:]]
    d.run(d.t + 2000)
    assert bytes(sink.data) == data and state(d) == (2, 0) and read(d, 7) == "2.0"
    assert ask(d, PUT, "/5/0/0", data[:1024], block=(0, True, 6)).code == NOT_ALLOWED
    ask(d, PUT, "/5/0/1", EMPTY_URI, cf=TLV)
    ask(d, PUT, "/5/0/1", uri.encode(), cf=TEXT)
    p = Puller.made[-1]
    p.chunks = [data[:1024], None]  # the connection drops
    d.run(d.t + 2000)
    assert state(d) == (0, 4)
    assert ask(d, PUT, "/5/0/1", uri.encode(), cf=TEXT).code == CHANGED  # Idle again: a new pull may start
    Puller.made[-1].chunks = [b"X" * 10]  # not a package this device takes
    d.run(d.t + 2000)
    assert state(d) == (0, 6)


def test_a_push_that_stops_is_lost_after_the_exchange_lifetime():
    d, sink, fw = setup()
    ask(d, PUT, "/5/0/0", blob(2048)[:1024], block=(0, True, 6))
    d.run(d.t + 240000, dt=10000)
    assert state(d) == (1, 0)
    d.run(d.t + 20000, dt=10000)
    assert state(d) == (0, 4)


# --- persistence -------------------------------------------------------------------------------------

def unregistered(sink):
    """A new Client (a reboot) with object 5 over `sink` and FILE, not registered yet."""
    link = Link()
    c = Client("ep", "coap://127.0.0.1:5683", transport=link, log=None)
    fw = make(c, sink, {"file": FILE})
    return c, link, fw


def register(c, link, t):
    c.start(t)
    c.step(t)
    c.feed(reply(parse(link.sent[-1]), CREATED, location=("rd", "6")), t + 10)
    assert c.registered


def test_a_reboot_mid_pull_resumes_from_the_saved_point():
    d, sink, fw = setup()
    uri = "coap://127.0.0.1:5693/fw.bin"
    ask(d, PUT, "/5/0/1", uri.encode(), cf=TEXT)
    data = blob(40000)
    p = Puller.made[-1]
    p.total = len(data)
    p.chunks = [data[i:i + 1024] for i in range(0, 20480, 1024)]  # 20 KiB of 40: saved at 16 KiB
    for _ in range(20):
        fw.poll(d.t)
    assert p.offset == 20480 and state(d) == (1, 0)
    del d, fw  # the device resets; the sink (flash) keeps what it had
    gc.collect()
    c, link, fw = unregistered(sink)
    assert c.objs[5].inst[0][3] == 1 and fw.uri == uri
    fw.poll(0)
    p = Puller.made[-1]
    assert p.uri == uri and p.package.resumed == 16384 and p.resume == 16384 and p.etag == b"\x01\x02"
    p.total = len(data)
    p.chunks = [data[i:i + 1024] for i in range(16384, 40000, 1024)]
    for _ in range(30):
        fw.poll(0)
    assert bytes(sink.data) == data and c.objs[5].inst[0][3] == 2


def test_after_an_update_the_result_comes_once_registered_again():
    d, sink, fw = setup()
    push(d, blob(2048))
    sink.reset = True
    n = len(d.link.sent)
    try:
        ask(d, POST, "/5/0/2", cf=None)
    except Reset:
        pass
    else:
        raise AssertionError("no reset")
    assert parse(d.link.sent[n]).code == CHANGED and sink.applied == 1  # answered first, then applied
    del d, fw
    gc.collect()
    c, link, fw = unregistered(sink)  # the new firmware starts
    inst = c.objs[5].inst[0]
    fw.poll(0)
    assert inst[3] == 3 and sink.confirmed == 0  # Updating until it has reached the server
    register(c, link, 100)
    fw.poll(200)
    assert (inst[3], inst[5]) == (0, 1) and sink.confirmed == 1 and inst[6] == "demo"
    c, link, fw = unregistered(sink)  # and it stays so
    register(c, link, 100)
    fw.poll(200)
    assert (c.objs[5].inst[0][3], c.objs[5].inst[0][5]) == (0, 1) and sink.confirmed == 1
    # rolled back: result 8 once registered, nothing confirmed
    sink.left = "rolled back"
    c, link, fw = unregistered(sink)
    register(c, link, 100)
    fw.poll(200)
    assert (c.objs[5].inst[0][3], c.objs[5].inst[0][5]) == (0, 8) and sink.confirmed == 1


def test_a_push_cut_by_a_reboot_is_reported_lost_and_downloaded_stays():
    d, sink, fw = setup()
    ask(d, PUT, "/5/0/0", blob(2048)[:1024], block=(0, True, 6))
    c, link, fw = unregistered(sink)
    assert (c.objs[5].inst[0][3], c.objs[5].inst[0][5]) == (0, 4)
    push(d, blob(2048))  # the old device object still answers: fine, it writes the same file
    c, link, fw = unregistered(sink)
    register(c, link, 0)
    fw.poll(10)
    assert c.objs[5].inst[0][3] == 2 and c.objs[5].inst[0][6] == "demo"
    clean()
