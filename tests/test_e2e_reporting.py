"""Information reporting end to end (LwM2M 1.1 Core §6.4, §5.1.2, §6.3 composite): the client inside
micropython (tests/apps/clock_app.py: real UDP, a clock the test moves) against the host aiocoap server
(tools/lwm2m_server.py). Notification times are exact because every client timer runs on that clock;
what the server received is checked on the server side. Loopback only, every wait bounded."""
import re

import pytest

from e2e_helpers import app_args, mpy_client, tables  # noqa: F401  (fixtures)
from peers.lossy_proxy import LossyProxy

import lwm2m_server as lws

REGISTER_TIMEOUT = 15


@pytest.fixture
def server():
    with lws.ServerThread(request_timeout=5.0) as srv:
        yield srv


class App:
    """The clock app and its server: `tick(ms)` moves the client's clock and returns the notify log
    lines it printed meanwhile, as (clock ms, line)."""

    def __init__(self, proc, srv, ep):
        self.proc, self.srv, self.ep = proc, srv, ep
        self.seen = 0

    def lines_since(self):
        lines = self.proc.lines()
        new = lines[self.seen:]
        self.seen = len(lines)
        return new

    def command(self, line):
        return self.proc.command(line)

    def tick(self, ms, step=1000):
        """Advance the clock in `step` chunks; [(clock after the chunk, "notify ..." line)]."""
        out = []
        for _ in range(ms // step):
            t = self.command("tick %d" % step)
            out += [(t, line) for line in self.lines_since() if "lwm2m: notify" in line]
        return out

    def set(self, path, value):
        return self.command("set %s %s" % (path, value))

    def saw(self, regex):
        """Has the app printed a line matching regex (anywhere in its output so far)?"""
        pattern = re.compile(regex)
        return any(pattern.search(line) for line in self.proc.lines())


def start(mpy_client, srv, tables, ep, *kw, uri=None):
    proc = mpy_client(app_args("clock_app.py", uri or srv.uri, ep, *kw), path=[tables], stdin=True)
    srv.wait_for("register", ep, timeout=REGISTER_TIMEOUT)
    app = App(proc, srv, ep)
    app.command("sync")  # the 2.01 has been fed
    app.lines_since()
    return app


def values(notifications):
    return [n.value for n in notifications]


# --- observe at each level, in each format ----------------------------------------------------------------

def test_observe_each_level(server, mpy_client, tables):
    app = start(mpy_client, server, tables, "rep-levels")
    res = server.observe(app.ep, "/3303/0/5700", accept=lws.TEXT)
    inst = server.observe(app.ep, "/3303/0", accept=lws.TLV)
    obj = server.observe(app.ep, "/3303", accept=lws.SENML_CBOR)
    ri = server.observe(app.ep, "/3/0/11/0")  # a resource instance (Error Code 0), never changes here
    assert res.first.code == "2.05" and float(res.first.value) == 20.0 and res.first_seq is not None
    assert inst.first.value[5700] == 20.0 and obj.first.value["/3303/0/5700"] == 20.0
    assert ri.first.code == "2.05" and int(ri.first.value) == 0
    app.set("/3303/0/5700", 21.5)
    app.tick(1000)
    assert float(res.wait(1)[0].value) == 21.5
    assert inst.wait(1)[0].value[5700] == 21.5 and inst.notifications[0].content_format == lws.TLV
    n = obj.wait(1)[0]
    assert n.value["/3303/0/5700"] == 21.5 and n.content_format == lws.SENML_CBOR
    assert ri.notifications == []
    for o in (res, inst, obj):
        assert o.notifications[0].seq > o.first_seq  # RFC 7641 §4.4: the sequence grows
        assert o.notifications[0].mtype == "NON"


def test_pmin_pmax_exact_times(server, mpy_client, tables):
    app = start(mpy_client, server, tables, "rep-periods")
    assert server.write_attributes(app.ep, "/3303/0/5700", pmin=5, pmax=20).code == "2.04"
    obs = server.observe(app.ep, "/3303/0/5700", accept=lws.TEXT)
    t0 = app.command("sync")
    app.tick(2000)
    app.set("/3303/0/5700", 22)  # at t0+2 s: held back until pmin, t0+5 s
    sent = app.tick(28000)
    times = [t - t0 for t, _ in sent]
    assert times == [5000, 25000], sent  # pmin after the change, then pmax after that notification
    got = obs.wait(2)
    assert [float(n.value) for n in got] == [22.0, 22.0]


def test_gt_lt_st_exact_values(server, mpy_client, tables):
    app = start(mpy_client, server, tables, "rep-conditions")
    assert server.write_attributes(app.ep, "/3303/0/5700", gt=30, lt=10, st=4).code == "2.04"
    obs = server.observe(app.ep, "/3303/0/5700", accept=lws.TEXT)  # last notified: 20
    expected = []
    for value, notify in ((22, False), (25, True), (27, False), (31, True), (29, True), (28, False),
                          (9, True), (11, True), (13, False)):
        app.set("/3303/0/5700", value)
        sent = app.tick(1000)
        assert bool(sent) == notify, (value, sent)
        if notify:
            expected.append(float(value))
    # 25: st (5 >= 4); 31: up through gt; 29: down through gt; 9: down through lt (and st); 11: up
    # through lt; 22, 27, 28 and 13 meet none of them
    assert [float(n.value) for n in obs.wait(len(expected))] == expected


def test_getter_sampled_on_pmin(server, mpy_client, tables):
    app = start(mpy_client, server, tables, "rep-getter")
    assert server.write_attributes(app.ep, "/3303/0/5601", pmin=3, st=1).code == "2.04"
    obs = server.observe(app.ep, "/3303/0/5601", accept=lws.TEXT)
    t0 = app.command("sync")
    app.command("reading 20.5")  # below st
    assert app.tick(4000) == []
    app.command("reading 25")
    sent = app.tick(3000)
    assert [t - t0 for t, _ in sent] == [6000]  # the sampling at 6 s saw it
    assert float(obs.wait(1)[0].value) == 25.0


# --- cancel ----------------------------------------------------------------------------------------------

def test_cancel_proactive_and_reactive(server, mpy_client, tables):
    app = start(mpy_client, server, tables, "rep-cancel")
    a = server.observe(app.ep, "/3303/0/5700", accept=lws.TEXT)
    b = server.observe(app.ep, "/3303/0/5701", accept=lws.TEXT)
    answer = a.cancel(proactive=True)  # GET with Observe=1
    assert answer.code == "2.05"
    assert app.saw(r"lwm2m: cancel /3303/0/5700 \(cancelled by the server\)$"), app.proc.output()
    app.set("/3303/0/5700", 23)
    assert app.tick(2000) == []
    b.cancel(proactive=False)  # forget it: the next notification gets a RST
    app.set("/3303/0/5701", "K")
    assert len(app.tick(1000)) == 1
    assert app.saw(r"lwm2m: cancel /3303/0/5701 \(reset by the server\)$"), app.proc.output()
    app.set("/3303/0/5701", "F")
    assert app.tick(2000) == []
    assert len(b.rejected) == 1 and a.notifications == []


# --- storing while the server is out of reach --------------------------------------------------------------

def test_storing_while_server_is_down_then_in_order_flush(server, mpy_client, tables):
    with LossyProxy(("127.0.0.1", server.port), drop=0.0, duplicate=0.0, reorder=0.0) as proxy:
        app = start(mpy_client, server, tables, "rep-store", "confirm=1", "store=4", "retry_s=5",
                    uri="coap://127.0.0.1:%d" % proxy.port)
        obs = server.observe(app.ep, "/3303/0/5700", accept=lws.TEXT)
        app.set("/3303/0/5700", 21)
        app.tick(1000)
        obs.wait(1)
        proxy.drop = 1.0  # the link goes down
        app.set("/3303/0/5700", 22)
        for _ in range(20):  # retransmissions (at most 93 s), then the link counts as lost
            app.tick(5000)
            if app.saw(r"notification not acknowledged: storing"):
                break
        assert app.saw(r"notification not acknowledged: storing"), app.proc.output()
        for v in (23, 24, 25, 26):  # offline now: each change is a stored notification
            app.set("/3303/0/5700", v)
            app.tick(1000)
        assert app.saw(r"store full: oldest notification dropped \(1 so far\)"), app.proc.output()
        assert len(obs.notifications) == 1
        proxy.drop = 0.0  # back: the next Update probe gets through, then the store is flushed
        for _ in range(60):
            app.tick(5000)
            if len(obs.notifications) >= 5:
                break
        assert app.saw(r"lwm2m: updated$"), app.proc.output()
        got = obs.wait(5)
        # the 4 newest, in order; 22 (the lost one, kept first) made room when the store was full
        assert [float(n.value) for n in got[1:]] == [23.0, 24.0, 25.0, 26.0], got
        assert [n.seq for n in got] == sorted(n.seq for n in got)
        assert all(n.mtype == "CON" for n in got)
        assert not any(e.kind == "register" for e in server.events_for(app.ep)[1:])  # never registered again


# --- Send, composite ------------------------------------------------------------------------------------

def test_send_accepted_by_the_server(server, mpy_client, tables):
    app = start(mpy_client, server, tables, "rep-send")
    app.set("/3303/0/5700", 24.5)
    app.command("send /3303/0/5700 /3/0/0")
    app.tick(1000)
    assert app.saw(r"^SEND ok 2\.04$"), app.proc.output()
    event = server.wait_for("send", app.ep, timeout=5)
    assert event.values == {"/3303/0/5700": 24.5, "/3/0/0": "lwm2m_mpy"} or \
        getattr(event, "data", None) == {"/3303/0/5700": 24.5, "/3/0/0": "lwm2m_mpy"}, event


def test_send_of_a_missing_path_fails_clearly(server, mpy_client, tables):
    app = start(mpy_client, server, tables, "rep-send-bad")
    app.command("send /3303/7/5700")
    app.tick(1000)
    assert app.saw(r"^SEND failed cannot read: "), app.proc.output()


@pytest.mark.parametrize("fmt", [lws.SENML_CBOR, lws.SENML_JSON])
def test_read_and_write_composite(server, mpy_client, tables, fmt):
    app = start(mpy_client, server, tables, "rep-composite-%d" % fmt)
    got = server.read_composite(app.ep, ["/3303/0/5700", "/3/0/0", "/3303/0/5701"], fmt=fmt, accept=fmt)
    assert got.code == "2.05"
    assert got.value == {"/3303/0/5700": 20.0, "/3/0/0": "lwm2m_mpy", "/3303/0/5701": "Cel"}
    done = server.write_composite(app.ep, {"/3303/0/5750": "lab", "/1/0/1": 120}, fmt=fmt)
    assert done.code == "2.04"
    assert server.read(app.ep, "/3303/0/5750", accept=lws.TEXT).payload == b"lab"
    assert server.wait_for("update", app.ep, timeout=10).query == {"lt": "120"}


def test_observe_composite(server, mpy_client, tables):
    app = start(mpy_client, server, tables, "rep-observe-composite")
    obs = server.observe_composite(app.ep, ["/3303/0/5700", "/3/0/0"])
    assert obs.first.value == {"/3303/0/5700": 20.0, "/3/0/0": "lwm2m_mpy"}
    app.set("/3303/0/5700", 19.5)
    app.tick(1000)
    assert obs.wait(1)[0].value == {"/3303/0/5700": 19.5, "/3/0/0": "lwm2m_mpy"}


# --- queue mode --------------------------------------------------------------------------------------------

def test_queue_mode_cycle(server, mpy_client, tables):
    app = start(mpy_client, server, tables, "rep-queue", "queue=True", "awake_s=10")
    reg = server.events_for(app.ep)[0]
    assert reg.kind == "register" and "Q" in reg.query, reg
    assert server.write_attributes(app.ep, "/3303/0/5700", pmax=30).code == "2.04"
    obs = server.observe(app.ep, "/3303/0/5700", accept=lws.TEXT)
    app.tick(11000)
    assert app.saw(r"lwm2m: queue mode: asleep$"), app.proc.output()
    updates = len([e for e in server.events_for(app.ep) if e.kind == "update"])
    app.set("/3303/0/5700", 18)  # a change while asleep: stored, then the client wakes to send it
    app.tick(2000)
    got = obs.wait(1)
    assert float(got[0].value) == 18.0 and got[0].mtype == "CON"
    log = app.proc.lines()
    first = lambda regex: next(i for i, line in enumerate(log) if re.search(regex, line))  # noqa: E731
    # Update first (the server learns the client is reachable), then the stored notification
    assert first(r"queue mode: asleep") < first(r"lwm2m: update") < first(r"flush stored notification")
    assert len([e for e in server.events_for(app.ep) if e.kind == "update"]) == updates + 1
    # asleep again after awake_s; pmax (30 s after that notification) wakes it once more
    app.tick(12000)
    assert app.saw(r"lwm2m: queue mode: awake$"), app.proc.output()
    assert obs.notifications == got  # nothing while asleep
    app.tick(20000)
    got = obs.wait(2)
    assert float(got[1].value) == 18.0
    assert len([e for e in server.events_for(app.ep) if e.kind == "update"]) == updates + 2


def test_register_advertises_senml_cbor_and_accept_is_honoured(server, mpy_client, tables):
    app = start(mpy_client, server, tables, "rep-formats")
    reg = server.events_for(app.ep)[0]
    assert reg.links[0] == ("/", {"rt": "oma.lwm2m", "ct": "112"}), reg.links
    for accept in (lws.TEXT, lws.TLV, lws.SENML_JSON, lws.SENML_CBOR):
        got = server.read(app.ep, "/3303/0/5700", accept=accept)
        assert got.code == "2.05" and got.content_format == accept
    assert server.read(app.ep, "/3303/0/5700", accept=lws.LWM2M_JSON).code == "4.06"


def test_lwm2m_cbor_read_and_observe(server, mpy_client, tables):
    """LwM2M CBOR (11544, from LwM2M 1.2): nested maps by path ids, decoded by the server with cbor2."""
    app = start(mpy_client, server, tables, "rep-lwm2m-cbor")
    got = server.read(app.ep, "/3303/0", accept=lws.LWM2M_CBOR)
    assert got.code == "2.05" and got.content_format == lws.LWM2M_CBOR
    assert got.value["/3303/0/5700"] == 20.0 and got.value["/3303/0/5701"] == "Cel"
    device = server.read(app.ep, "/3/0/11", accept=lws.LWM2M_CBOR)  # a multiple resource
    assert device.value == {"/3/0/11/0": 0}
    obs = server.observe(app.ep, "/3303/0/5700", accept=lws.LWM2M_CBOR)
    assert obs.first.value == {"/3303/0/5700": 20.0}
    app.set("/3303/0/5700", 26.5)
    app.tick(1000)
    n = obs.wait(1)[0]
    assert n.content_format == lws.LWM2M_CBOR and n.value == {"/3303/0/5700": 26.5}
