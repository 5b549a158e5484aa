"""Access control with two server accounts (core/access.py, LwM2M 1.1 Core §7.3) on the sans-IO client: rights
from the Access Control object, 4.01 without them, Create making the creator the owner, Delete taking the
Access Control instance along, object-level reads showing only readable instances, and an observation that
ends when the right to read goes. Runs under CPython and inside micropython."""
from lwm2m_mpy.tables import o2
from lwm2m_mpy.coap.message import Writer
from test_observe import CHANGED, CON, CONTENT, CONTENT_FORMAT, CREATED, DELETED, GET, POST, PUT, TEXT, TLV, \
    URI_PATH, Device, decode

MPY = True
MPY_HEAP = "256k"

UNAUTHORIZED = 129
DELETE = 4
R, W, E, D, C = 1, 2, 4, 8, 16


def device():
    """A registered client with a second server account (ssid 2), answering as server 1 (dm.ssid 1) until
    `as_server(2)`; /3 is owned by 1 and readable by 2; 2 may create in object 1 (a stand-in object with
    several instances: this client's tables hold 0-3)."""
    d = Device()
    c = d.c
    c.objs[1].inst[1] = {0: 2, 1: 300, 6: True, 7: "U"}
    c.add(o2.T)
    c.objs[2].inst[0] = {0: 3, 1: 0, 2: {2: R}, 3: 1}
    c.objs[2].inst[1] = {0: 1, 1: 65535, 2: {2: C}, 3: 65535}
    c.objs[2].inst[2] = {0: 1, 1: 1, 2: {}, 3: 2}
    c.objs[2].inst[3] = {0: 1, 1: 0, 2: {}, 3: 1}
    c.dm.ssid = 1
    d.link.sent.clear()
    return d


def send(d, code, path, cf, payload):
    """A request with a payload from the server; returns the decoded response."""
    d.mid += 1
    w = Writer(256)
    w.header(CON, code, d.mid, 0xAB, 1)
    for seg in path.strip("/").split("/"):
        w.option(URI_PATH, seg)
    w.option(CONTENT_FORMAT, cf)
    w.marker()
    w.put(payload)
    d.c.feed(bytes(w.buf[: w.n]), d.t)
    return decode(d.link.sent[-1])


def as_server(d, ssid):
    d.c.dm.ssid = ssid


def tlv_ids(m):
    """Instance ids at the top of a TLV payload."""
    p = bytes(m.payload())
    out = []
    i = 0
    while i < len(p):
        t = p[i]
        n = 1 + (2 if t & 0x20 else 1)
        ident = p[i + 1] << 8 | p[i + 2] if t & 0x20 else p[i + 1]
        ln = t & 7
        lt = (t >> 3) & 3
        if lt:
            ln = int.from_bytes(p[i + n:i + n + lt], "big")
        out.append(ident)
        i += n + lt + ln
    return out


def test_owner_has_every_right_another_server_only_what_its_acl_entry_says():
    d = device()
    assert d.ask(GET, "/3/0/0").code == CONTENT
    assert send(d, PUT, "/3/0/14", TEXT, b"+01").code == CHANGED
    as_server(d, 2)
    assert send(d, PUT, "/3/0/14", TEXT, b"+02").code == UNAUTHORIZED
    assert d.c.objs[3].inst[0][14] == "+01"
    assert d.ask(GET, "/3/0/0").code == CONTENT
    r = d.ask(POST, "/3/0/12")  # Execute Reset Error Code: not in 2's ACL entry
    assert r.code == UNAUTHORIZED and bytes(r.payload()) == b"server 2 may not execute /3/0"
    as_server(d, 1)
    assert d.ask(POST, "/3/0/12").code == CHANGED


def test_no_access_control_instance_means_no_rights_and_security_is_nobodys():
    d = device()
    del d.c.objs[2].inst[0]
    assert d.ask(GET, "/3/0/0").code == UNAUTHORIZED
    assert d.ask(GET, "/0/0").code == UNAUTHORIZED


def test_object_level_read_shows_only_readable_instances():
    d = device()
    assert tlv_ids(d.ask(GET, "/1", accept=TLV)) == [0]
    as_server(d, 2)
    assert tlv_ids(d.ask(GET, "/1", accept=TLV)) == [1]
    assert tlv_ids(d.ask(GET, "/2", accept=TLV)) == [2]  # Access Control instances: their owner's


def test_create_needs_the_c_right_and_makes_the_creator_owner_delete_takes_its_acl_along():
    d = device()
    body = bytes([0xC1, 0, 3, 0xC2, 1, 0, 60, 0xC1, 6, 1, 0xC1, 7, ord("U")])  # ssid 3, lifetime 60, storing, U
    assert send(d, POST, "/1", TLV, body).code == UNAUTHORIZED  # server 1 has no C right in object 1
    as_server(d, 2)
    assert send(d, POST, "/1", TLV, body).code == CREATED
    new = [k for k in d.c.objs[1].inst if k not in (0, 1)][0]
    aco = [a for a in d.c.objs[2].inst.values() if a.get(0) == 1 and a.get(1) == new]
    assert aco == [{0: 1, 1: new, 3: 2}]
    assert d.ask(GET, "/1/%d" % new, accept=TLV).code == CONTENT
    as_server(d, 1)
    assert d.ask(GET, "/1/%d" % new, accept=TLV).code == UNAUTHORIZED
    as_server(d, 2)
    assert d.ask(DELETE, "/1/%d" % new).code == DELETED
    assert not [a for a in d.c.objs[2].inst.values() if a.get(0) == 1 and a.get(1) == new]


def test_access_control_instances_are_made_by_the_client_only():
    d = device()
    assert send(d, POST, "/2", TLV, bytes([0xC1, 0, 3, 0xC1, 1, 0, 0xC1, 3, 1])).code == UNAUTHORIZED


def test_a_refused_write_changes_nothing():
    d = device()
    as_server(d, 2)
    assert send(d, PUT, "/1/0/1", TEXT, b"99").code == UNAUTHORIZED
    assert d.c.objs[1].inst[0][1] == 300


def test_an_observation_ends_when_the_right_to_read_goes():
    d = device()
    d.c.set("/3/0/14", "+00")
    as_server(d, 2)
    d.observe("/3/0/14")
    del d.c.objs[2].inst[0][2][2]  # server 2's entry gone, no default: no rights on /3/0
    d.c.set("/3/0/14", "+05")
    got = d.run(2000)
    assert got and got[-1][1].code == UNAUTHORIZED
    d.c.set("/3/0/14", "+06")
    assert d.run(4000) == []
