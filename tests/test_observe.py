"""Observe and notification attributes (LwM2M 1.1 Core §6.4, §5.1.2; RFC 7641) on the sans-IO client,
driven by a fake clock: exact notification times, values, message types and sequence numbers; cancel
both ways; storing while the link is down and the in-order flush; a new registration voids observations.
Runs under CPython and inside micropython (the same code a board runs)."""
import gc

from lwm2m_mpy import Client
from lwm2m_mpy.coap.message import Msg, Writer

MPY = True
MPY_HEAP = "256k"

CON, NON, ACK, RST = 0, 1, 2, 3
GET, POST, PUT = 1, 2, 3
CREATED, DELETED, CHANGED, CONTENT = 65, 66, 68, 69
OBSERVE, LOCATION_PATH, URI_PATH, CONTENT_FORMAT, MAX_AGE, URI_QUERY, ACCEPT = 6, 8, 11, 12, 14, 15, 17
TEXT, TLV = 0, 11542


class Link:
    """A transport that keeps what the client sends."""

    def __init__(self):
        self.sent = []

    def send(self, buf, n):
        self.sent.append(bytes(buf[:n]))

    def close(self):
        pass


def decode(data):
    m = Msg()
    m.decode(data, len(data))
    return m


def opt(m, num):
    k = m.find(num)
    return None if k < 0 else m.value(k)


def request(code, path, mid, token=b"\xaa", observe=None, accept=None, query=(), mtype=CON):
    w = Writer(256)
    w.header(mtype, code, mid, int.from_bytes(token, "big"), len(token))
    if observe is not None:
        w.option(OBSERVE, observe)
    for seg in path.strip("/").split("/"):
        w.option(URI_PATH, seg)
    for q in query:
        w.option(URI_QUERY, q)
    if accept is not None:
        w.option(ACCEPT, accept)
    return bytes(w.buf[: w.n])


def reply(to, code, mtype=ACK, location=()):
    """The server's answer to the client's request `to` (a decoded Msg)."""
    w = Writer(64)
    w.header(mtype, code, to.mid, to.token(), to.tkl)
    for seg in location:
        w.option(LOCATION_PATH, seg)
    return bytes(w.buf[: w.n])


def empty(mtype, mid):
    return bytes([0x40 | mtype << 4, 0, mid >> 8, mid & 255])


class Device:
    """A registered client, its link and log, and a clock in ms."""

    def __init__(self, **kw):
        self.link = Link()
        self.logs = []
        self.c = Client("ep", "coap://127.0.0.1:5683", transport=self.link, log=self.logs.append, **kw)
        self.t = 0
        self.mid = 100
        self.c.start(0)
        self.c.step(0)
        reg = decode(self.link.sent[-1])
        self.c.feed(reply(reg, CREATED, location=("rd", "5")), 10)
        assert self.c.registered
        self.link.sent.clear()

    def ask(self, code, path, **kw):
        """Send a request now; returns the decoded response."""
        self.mid += 1
        self.c.feed(request(code, path, self.mid, **kw), self.t)
        return decode(self.link.sent[-1])

    def observe(self, path, token=b"\xaa", **kw):
        r = self.ask(GET, path, observe=0, token=token, **kw)
        assert r.code == CONTENT and opt(r, OBSERVE) is not None, r.code
        return r

    def run(self, until, dt=100, answer=True):
        """Advance the clock to `until` in dt steps; returns [(t, decoded notification)]. The client's own
        requests (Updates) are left out, and answered 2.04 at once unless `answer` is False."""
        out = []
        while self.t < until:
            self.t += dt
            n = len(self.link.sent)
            self.c.step(self.t)
            for d in self.link.sent[n:]:
                m = decode(d)
                if m.code >= 64:
                    out.append((self.t, m))
                elif answer and m.code == POST:
                    self.c.feed(reply(m, CHANGED), self.t)
        return out

    def values(self, got):
        return [(t, bytes(m.payload()).decode()) for t, m in got]


def seqs(got):
    return [int.from_bytes(opt(m, OBSERVE), "big") for _, m in got]


# --- observe levels ----------------------------------------------------------------------------------

def test_observe_resource_first_response_then_changes_after_pmin():
    d = Device()
    d.c.set("/3/0/9", 40)
    assert d.ask(PUT, "/3/0/9", query=("pmin=5", "pmax=20")).code == CHANGED
    first = d.observe("/3/0/9")
    assert bytes(first.payload()) == b"40" and opt(first, CONTENT_FORMAT) in (b"", None)
    d.run(1000)
    d.c.set("/3/0/9", 41)
    got = d.run(6000)
    assert d.values(got) == [(5000, "41")]  # held back until pmin (5 s after the first response)
    m = got[0][1]
    assert m.type == NON and m.code == CONTENT and m.token() == 0xAA
    assert seqs(got)[0] > int.from_bytes(opt(first, OBSERVE), "big")


def test_pmax_sends_without_a_change():
    d = Device()
    d.c.set("/3/0/9", 7)
    d.ask(PUT, "/3/0/9", query=("pmax=20",))
    d.observe("/3/0/9")
    got = d.run(61000)
    assert d.values(got) == [(20000, "7"), (40000, "7"), (60000, "7")]
    s = seqs(got)
    assert s == sorted(s) and len(set(s)) == 3


def test_server_default_periods_from_the_server_object():
    d = Device()
    d.c.set("/1/0/3", 10)  # Default Maximum Period
    d.c.set("/3/0/9", 1)
    d.observe("/3/0/9")
    assert [t for t, _ in d.run(25000)] == [10000, 20000]


def test_pmax_not_above_pmin_is_ignored():
    d = Device()
    d.c.set("/3/0/9", 1)
    d.ask(PUT, "/3/0/9", query=("pmin=10", "pmax=10"))
    d.observe("/3/0/9")
    assert d.run(30000) == []


def test_unchanged_value_is_not_notified():
    d = Device()
    d.c.set("/3/0/9", 3)
    d.observe("/3/0/9")
    d.c.set("/3/0/9", 3)
    d.c.set("/3/0/14", "+01:00")  # another resource
    assert d.run(5000) == []
    d.c.set("/3/0/9", 4)
    assert d.values(d.run(5100)) == [(5100, "4")]


def test_gt_and_lt_crossings():
    d = Device()
    d.c.set("/3/0/9", 40)
    d.ask(PUT, "/3/0/9", query=("gt=50", "lt=20"))
    d.observe("/3/0/9")
    got = []
    for t, v in ((1000, 45), (2000, 55), (3000, 60), (4000, 48), (5000, 30), (6000, 15), (7000, 18), (8000, 25)):
        d.run(t)
        d.c.set("/3/0/9", v)
        got += d.run(t + 100)
    # up through gt, down through gt, down through lt, up through lt: each relative to the last notified
    assert d.values(got) == [(2100, "55"), (4100, "48"), (6100, "15"), (8100, "25")]


def test_st_step_from_the_last_notified_value():
    d = Device()
    d.c.set("/3/0/9", 40)
    d.ask(PUT, "/3/0/9", query=("st=5",))
    d.observe("/3/0/9")
    got = []
    for t, v in ((1000, 43), (2000, 46), (3000, 49), (4000, 51), (5000, 47)):
        d.run(t)
        d.c.set("/3/0/9", v)
        got += d.run(t + 100)
    assert d.values(got) == [(2100, "46"), (4100, "51")]


def test_conditions_wait_for_pmin_and_send_the_value_then():
    d = Device()
    d.c.set("/3/0/9", 40)
    d.ask(PUT, "/3/0/9", query=("st=5", "pmin=3"))
    d.observe("/3/0/9")
    d.run(1000)
    d.c.set("/3/0/9", 50)
    d.run(2000)
    d.c.set("/3/0/9", 52)
    assert d.values(d.run(4000)) == [(3000, "52")]


def test_attributes_inherit_object_then_instance_then_resource():
    d = Device()
    d.c.set("/3/0/9", 1)
    d.ask(PUT, "/3", query=("pmax=30",))
    d.ask(PUT, "/3/0", query=("pmax=20",))
    d.observe("/3/0/9")
    assert [t for t, _ in d.run(41000)] == [20000, 40000]
    d.ask(PUT, "/3/0/9", query=("pmax=5",))  # a Write-Attributes applies to a running observation
    assert [t for t, _ in d.run(56000)] == [45000, 50000, 55000]


def test_observe_instance_and_object_in_tlv():
    d = Device()
    d.c.set("/3/0/9", 1)
    d.observe("/3/0", token=b"\x01", accept=TLV)
    d.observe("/3", token=b"\x02")
    d.c.set("/3/0/9", 2)
    got = d.run(100)
    assert sorted(m.token() for _, m in got) == [1, 2]
    for _, m in got:
        assert int.from_bytes(opt(m, CONTENT_FORMAT), "big") == TLV
        assert b"\xc1\x09\x02" in bytes(m.payload())  # resource 9 = 2


def test_observe_resource_instance():
    d = Device()
    d.c.set("/3/0/7", {0: 3800, 1: 5000})
    first = d.observe("/3/0/7/1")
    assert bytes(first.payload()) == b"5000"
    d.c.set("/3/0/7", {0: 3900, 1: 5000})  # the other instance changed
    assert d.run(1000) == []
    d.c.set("/3/0/7", {0: 3900, 1: 5100})
    assert d.values(d.run(1100)) == [(1100, "5100")]


def test_getter_is_sampled_every_pmin_and_at_pmax():
    d = Device()
    reading = [20]
    d.c.bind("/3/0/9", get=lambda: reading[0])
    d.ask(PUT, "/3/0/9", query=("pmin=2", "pmax=60", "st=3"))
    d.observe("/3/0/9")
    reading[0] = 22
    assert d.run(5000) == []  # sampled at 2 s and 4 s: a step of 2 < st
    reading[0] = 24
    assert d.values(d.run(7000)) == [(6000, "24")]


def test_max_age_follows_a_long_pmax():
    d = Device()
    d.c.set("/3/0/9", 1)
    d.ask(PUT, "/3/0/9", query=("pmax=300",))
    first = d.observe("/3/0/9")
    assert int.from_bytes(opt(first, MAX_AGE), "big") == 300
    assert bytes(first.payload()) == b"1"  # the payload moved behind the inserted option intact
    got = d.run(300000, dt=1000)
    assert [t for t, _ in got] == [300000] and int.from_bytes(opt(got[0][1], MAX_AGE), "big") == 300


# --- cancel ------------------------------------------------------------------------------------------

def test_cancel_with_observe_1_answers_and_stops():
    d = Device()
    d.c.set("/3/0/9", 1)
    d.observe("/3/0/9")
    r = d.ask(GET, "/3/0/9", observe=1)
    assert r.code == CONTENT and bytes(r.payload()) == b"1"
    d.c.set("/3/0/9", 2)
    assert d.run(5000) == [] and d.c.dm.obs.count() == 0


def test_rst_to_a_notification_cancels():
    d = Device()
    d.c.set("/3/0/9", 1)
    d.observe("/3/0/9")
    d.c.set("/3/0/9", 2)
    (t, m), = d.run(100)
    d.c.feed(empty(RST, m.mid), d.t)
    d.c.set("/3/0/9", 3)
    assert d.run(5000) == [] and d.c.dm.obs.count() == 0


def test_a_new_token_on_the_same_path_is_another_observation_same_token_replaces():
    d = Device()
    d.c.set("/3/0/9", 1)
    d.observe("/3/0/9", token=b"\x01")
    d.observe("/3/0/9", token=b"\x02")
    d.observe("/3/0/9", token=b"\x02")
    assert d.c.dm.obs.count() == 2


def test_observe_on_a_missing_path_is_404_and_keeps_nothing():
    d = Device()
    r = d.ask(GET, "/3/7/9", observe=0)
    assert r.code == 132 and opt(r, OBSERVE) is None
    assert d.c.dm.obs.count() == 0


def test_deleted_instance_ends_the_observation_with_404():
    d = Device()
    d.c.set("/1/1/0", 2)  # a second Server instance to delete
    d.c.set("/1/1/1", 60)
    d.c.set("/1/1/7", "U")
    d.observe("/1/1")
    assert d.ask(4, "/1/1").code == DELETED
    (t, m), = d.run(1000)
    assert m.code == 132 and opt(m, OBSERVE) is None
    assert d.c.dm.obs.count() == 0


# --- confirmable notifications, storing, flushing ------------------------------------------------------

def test_every_third_notification_is_confirmable():
    d = Device(confirm=3)
    d.c.set("/3/0/9", 0)
    d.observe("/3/0/9")
    types = []
    for i in range(1, 7):
        d.c.set("/3/0/9", i)
        got = d.run(d.t + 100)
        types.append(got[0][1].type)
        if got[0][1].type == CON:
            d.c.feed(empty(ACK, got[0][1].mid), d.t)
    assert types == [NON, NON, CON, NON, NON, CON]


def test_lost_link_stores_notifications_and_flushes_them_in_order():
    d = Device(confirm=1, store=3)
    d.c.ex.ack_ms = 1000
    d.c.set("/3/0/9", 0)
    d.observe("/3/0/9")
    d.c.set("/3/0/9", 1)
    got = d.run(100)
    assert len(got) == 1 and got[0][1].type == CON
    # no ACK: 4 retransmissions, then the link counts as lost and an Update probes it
    for v in range(2, 7):
        d.run(d.t + 20000, dt=500, answer=False)
        d.c.set("/3/0/9", v)
    probes = [m for m in (decode(x) for x in d.link.sent) if m.code == POST]
    assert probes and all(opt(m, URI_PATH) == b"rd" for m in probes)
    obs = d.c.dm.obs
    assert len(obs.queue) == 3 and obs.dropped >= 1
    d.link.sent.clear()
    # the server answers the next Update: the stored notifications go out in order, confirmable
    upd = None
    while upd is None:
        d.run(d.t + 500, answer=False)
        for x in d.link.sent:
            m = decode(x)
            if m.code == POST:
                upd = m
    d.c.feed(reply(upd, CHANGED), d.t)
    d.link.sent.clear()
    flushed = []
    for _ in range(10):
        got = d.run(d.t + 100)
        for t, m in got:
            flushed.append(m)
            d.c.feed(empty(ACK, m.mid), d.t)
    values = [bytes(m.payload()).decode() for m in flushed]
    assert values[:3] == ["4", "5", "6"] or values[:3] == sorted(values[:3], key=int), values
    assert all(m.type == CON for m in flushed)
    s = [int.from_bytes(opt(m, OBSERVE), "big") for m in flushed]
    assert s == sorted(s)
    assert not obs.queue


def test_new_registration_voids_observations_and_the_store():
    d = Device()
    d.c.set("/3/0/9", 0)
    d.observe("/3/0/9")
    d.c.restart()
    d.c.step(d.t)
    reg = decode(d.link.sent[-1])
    d.c.feed(reply(reg, CREATED, location=("rd", "6")), d.t)
    d.c.step(d.t)
    assert d.c.dm.obs.count() == 0


def test_heap_per_observation():
    if not hasattr(gc, "mem_alloc"):  # CPython: its objects say nothing about a board's heap
        return
    d = Device()
    d.observe("/3/0/0", token=b"\xff")  # loads the observe code first
    d.c.log = None  # the test's log list would grow with every observation
    gc.collect()
    before = gc.mem_alloc()
    for i in range(100):
        d.observe("/3/0/%d" % (0, 1, 2, 3, 16, 19)[i % 6], token=bytes([i]))
    d.link.sent.clear()
    gc.collect()
    per = (gc.mem_alloc() - before) / 100
    assert d.c.dm.obs.count() == 101
    print("heap per observation: %d B" % per)
    assert per <= 64, per


def test_long_periods_beyond_nine_hours():
    """Periods are kept in 16 bits: seconds below 32768, whole minutes beyond; pmax rounds down and pmin
    up, so neither bound is broken (a daily pmax stays exactly daily)."""
    d = Device(lifetime=86400 * 3)
    d.c.set("/3/0/9", 1)
    d.ask(PUT, "/3/0/9", query=("pmax=86400",))
    d.observe("/3/0/9")
    got = d.run(2 * 86400 * 1000 + 1000, dt=60000)
    assert [t for t, _ in got] == [86400000, 172800000]
    d.ask(PUT, "/3/0/9", query=("pmin=40010", "pmax=90000"))  # pmin 666.8 min -> 667 min
    d.c.set("/3/0/9", 2)
    t0 = d.t
    got = d.run(t0 + 41000 * 1000, dt=1000)
    assert [t - 172800000 for t, _ in got] == [667 * 60000]


def test_epmax_and_epmin_set_how_often_a_getter_is_read():
    d = Device()
    reads = []
    reading = [10]

    def get():
        reads.append(d.t)
        return reading[0]

    d.c.bind("/3/0/9", get=get)
    d.ask(PUT, "/3/0/9", query=("epmin=1", "epmax=3", "pmax=60"))
    d.observe("/3/0/9")
    del reads[:]
    assert d.run(10000) == []  # unchanged: read every epmax (3 s), nothing to say
    assert reads == [3000, 6000, 9000]
    reading[0] = 11
    assert d.values(d.run(12000)) == [(12000, "11")]  # seen at the next evaluation
    d.ask(PUT, "/3/0/9", query=("epmax=",))  # epmax removed: pmin (0) would mean never; epmin (1 s) rules
    del reads[:]
    d.run(15000)
    assert reads == [13000, 14000, 15000]
