"""End to end against the project's aiocoap LwM2M server (tools/lwm2m_server.py): the client runs in the
real `micropython` binary (CLI `-m lwm2m_mpy` or an app script from tests/apps/), the server in a thread
of this process; everything on 127.0.0.1 and bounded in time.

Covers Register (query and object links), Read (TLV, text), Write (+ the Update it causes), Execute
(app callback and the CLI's reboot), Discover, Write-Attributes, Create/Delete (+ Updates), every error
answer of the DM interface, De-register on SIGINT, Updates before the lifetime runs out, registering
again after an Update is refused or the server restarts, Register back-off while the server is down,
and one run of the compiled tree (build/mpy) in a 64 KiB heap.
"""
import ast
import signal
import subprocess
import sys
import time

import pytest
from aiocoap import Code

from e2e_helpers import ROOT, ClientProcess, app_args, cli_args, ensure_mpy_tree, mpy_client, tables  # noqa: F401
import conftest
import lwm2m_codec as codec
import lwm2m_server as lws

REGISTER_TIMEOUT = 10  # s: micropython start-up + Register on loopback takes well under 1 s


@pytest.fixture
def server():
    with lws.ServerThread() as srv:
        yield srv


def start_cli(mpy_client, server, ep, *extra, **kwargs):
    """Client CLI against `server`; returns (process, register Event)."""
    proc = mpy_client(cli_args(server.uri, ep, *extra), **kwargs)
    event = server.wait_for("register", ep, timeout=REGISTER_TIMEOUT)
    proc.wait_line(r"lwm2m: registered /rd/%s$" % event.location, timeout=5)
    return proc, event


def paths_of(links):
    return [path for path, _ in links]


def attrs_of(links, path):
    for p, attrs in links:
        if p == path:
            return attrs
    raise AssertionError("no link <%s> in %s" % (path, links))


# --- Register ---------------------------------------------------------------------------------------

def test_register_query_and_object_links(server, mpy_client):
    proc, event = start_cli(mpy_client, server, "e2e-register")
    assert event.query == {"ep": "e2e-register", "lt": "300", "lwm2m": "1.1", "b": "U"}
    assert event.has_body
    reg = server.registration("e2e-register")
    assert (reg.lifetime, reg.version, reg.binding) == (300, "1.1", "U")
    paths = paths_of(reg.links)
    assert "/1/0" in paths and "/3/0" in paths
    assert set(reg.objects) >= {"/1/0", "/3/0"}
    assert not [p for p in paths if p == "/0" or p.startswith("/0/")], "Security object listed: %s" % paths
    # versions other than 1.0 are announced on the object link (Core §6.2.1): both 1 and 3 are 1.2
    assert attrs_of(reg.links, "/1").get("ver") == "1.2"
    assert attrs_of(reg.links, "/3").get("ver") == "1.2"
    assert reg.address[0] == "127.0.0.1"
    time.sleep(0.5)  # nothing else follows a successful Register
    assert [e.kind for e in server.events_for("e2e-register")] == ["register"]
    proc.assert_clean()


# --- Read ---------------------------------------------------------------------------------------------

def test_read_device_tlv_and_text(server, mpy_client):
    proc, _ = start_cli(mpy_client, server, "e2e-read")
    ep = "e2e-read"
    result = server.read(ep, "/3/0", accept=lws.TLV)
    assert (result.code, result.content_format, result.decode_error) == ("2.05", lws.TLV, None)
    device = result.value
    assert device[0] == "lwm2m_mpy"  # Manufacturer: the CLI's default
    assert device[1] and device[2] == "0" and device[3]  # model, serial, firmware
    assert device[11] == {0: 0}  # Error Code: a multiple resource, instance 0 = no error
    assert device[16] == "U"
    assert abs(device[13] - time.time()) < 60  # Current Time
    assert 4 not in device and 5 not in device  # executables are never in a Read

    # no Accept: the client picks TLV for an instance, text for a single resource
    assert server.read(ep, "/3/0").content_format == lws.TLV
    text = server.read(ep, "/3/0/0", accept=lws.TEXT)
    assert (text.code, text.content_format, text.payload) == ("2.05", lws.TEXT, b"lwm2m_mpy")
    plain = server.read(ep, "/3/0/0")
    assert (plain.code, plain.content_format, plain.payload) == ("2.05", lws.TEXT, b"lwm2m_mpy")

    # the object, a multiple resource, one resource instance, a single resource in TLV
    whole = server.read(ep, "/3", accept=lws.TLV)
    assert whole.code == "2.05" and whole.value[0][0] == "lwm2m_mpy"
    errors = server.read(ep, "/3/0/11", accept=lws.TLV)
    assert (errors.code, errors.value) == ("2.05", {11: {0: 0}})
    one = server.read(ep, "/3/0/11/0", accept=lws.TLV)
    assert (one.code, one.value) == ("2.05", {11: {0: 0}})
    manufacturer = server.read(ep, "/3/0/0", accept=lws.TLV)
    assert (manufacturer.code, manufacturer.value) == ("2.05", {0: "lwm2m_mpy"})

    # the Server object: what the CLI registered with
    srv = server.read(ep, "/1/0", accept=lws.TLV)
    assert srv.code == "2.05"
    assert (srv.value[0], srv.value[1], srv.value[6], srv.value[7]) == (1, 300, True, "U")
    assert server.read(ep, "/1/0/1", accept=lws.TEXT).payload == b"300"
    # a legacy (LwM2M 1.0 draft) Accept is still served
    legacy = server.read(ep, "/3/0/0", accept=lws.OLD_TEXT)
    assert (legacy.code, legacy.content_format, legacy.payload) == ("2.05", lws.OLD_TEXT, b"lwm2m_mpy")
    proc.assert_clean()


# --- Write --------------------------------------------------------------------------------------------

def test_write_lifetime_sends_update(server, mpy_client):
    proc, _ = start_cli(mpy_client, server, "e2e-write")
    ep = "e2e-write"
    result = server.write(ep, "/1/0/1", 120, fmt=lws.TEXT)
    assert result.code == "2.04"
    update = server.wait_for("update", ep, timeout=10)
    assert update.query == {"lt": "120"}
    assert not update.has_body  # the object list did not change
    assert server.registration(ep).lifetime == 120
    assert server.read(ep, "/1/0/1", accept=lws.TEXT).payload == b"120"
    assert server.read(ep, "/1/0", accept=lws.TLV).value[1] == 120
    proc.wait_line(r"lwm2m: update lt=120$", timeout=5)
    proc.wait_line(r"lwm2m: updated$", timeout=5)

    # TLV write of the same resource, and a partial update (POST) of the instance
    assert server.write(ep, "/1/0/1", 150, fmt=lws.TLV).code == "2.04"
    assert server.wait_for("update", ep, timeout=10).query == {"lt": "150"}
    assert server.write(ep, "/1/0", {1: 180}, fmt=lws.TLV, replace=False).code == "2.04"
    assert server.wait_for("update", ep, timeout=10).query == {"lt": "180"}
    assert server.read(ep, "/1/0/1", accept=lws.TEXT).payload == b"180"
    proc.assert_clean()


def test_write_current_time(server, mpy_client):
    """A writable resource of the Device object: Current Time (a Time; the client keeps an offset)."""
    proc, _ = start_cli(mpy_client, server, "e2e-write-time")
    ep = "e2e-write-time"
    result = server.write(ep, "/3/0/13", 1000000000, fmt=lws.TEXT)
    assert result.code == "2.04", (result, proc.output())
    now = server.read(ep, "/3/0/13", accept=lws.TEXT)
    assert abs(int(now.payload) - 1000000000) < 30
    assert server.write(ep, "/3/0/13", 2000000000, fmt=lws.TLV).code == "2.04"
    assert abs(server.read(ep, "/3/0", accept=lws.TLV).value[13] - 2000000000) < 30
    time.sleep(0.3)
    # no Update for a resource that is not lifetime/binding
    assert [e.kind for e in server.events_for(ep)] == ["register"]
    proc.assert_clean()


# --- Execute ------------------------------------------------------------------------------------------

def _execute_marker(proc, n):
    match = proc.wait_line(r"^APP execute /3/0/4 n=%d args=(.*)$" % n, timeout=5)
    return ast.literal_eval(match.group(1))


def test_execute_runs_app_callback(server, mpy_client):
    ep = "e2e-exec-app"
    proc = mpy_client(app_args("exec_app.py", server.uri, ep))
    server.wait_for("register", ep, timeout=REGISTER_TIMEOUT)
    assert server.read(ep, "/3/0/0", accept=lws.TEXT).payload == b"Acme"  # the app's own value

    assert server.execute(ep, "/3/0/4", args="0='x'").code == "2.04"
    assert _execute_marker(proc, 1) == "0='x'"
    assert server.execute(ep, "/3/0/4").code == "2.04"
    assert _execute_marker(proc, 2) == ""
    assert server.execute(ep, "/3/0/4", args={0: "a,b", 1: None, 2: "z"}).code == "2.04"
    assert _execute_marker(proc, 3) == "0='a,b',1,2='z'"
    # the app's callback replaced the reboot: no new Register
    time.sleep(0.3)
    assert [e.kind for e in server.events_for(ep)] == ["register"]
    proc.assert_clean()


def test_execute_reboot_with_cli_registers_again(server, mpy_client):
    ep = "e2e-exec-cli"
    proc, first = start_cli(mpy_client, server, ep)
    assert server.execute(ep, "/3/0/4").code == "2.04"  # answered first, then the "reboot"
    again = server.wait_for("register", ep, timeout=10)
    assert again.replaced == first.location
    assert server.read(ep, "/3/0/0", accept=lws.TEXT).payload == b"lwm2m_mpy"
    proc.assert_clean()


def test_execute_registration_update_trigger(server, mpy_client):
    ep = "e2e-exec-update"
    proc, _ = start_cli(mpy_client, server, ep)
    assert server.execute(ep, "/1/0/8").code == "2.04"
    update = server.wait_for("update", ep, timeout=10)
    assert update.query == {} and not update.has_body  # nothing changed: an empty Update
    proc.assert_clean()


# --- Discover and Write-Attributes -----------------------------------------------------------------------

def test_discover(server, mpy_client):
    proc, _ = start_cli(mpy_client, server, "e2e-discover")
    ep = "e2e-discover"
    obj = server.discover(ep, "/3")
    assert (obj.code, obj.content_format) == ("2.05", lws.LINK)
    paths = paths_of(obj.value)
    assert paths[0] == "/3" and "/3/0" in paths
    for rid in (0, 1, 2, 3, 11, 13, 16):
        assert "/3/0/%d" % rid in paths, paths
    assert attrs_of(obj.value, "/3/0/11") == {"dim": "1"}

    inst = server.discover(ep, "/3/0")
    assert inst.code == "2.05"
    paths = paths_of(inst.value)
    assert paths[0] == "/3/0" and "/3" not in paths
    for rid in (0, 1, 2, 3, 11, 13, 16):
        assert "/3/0/%d" % rid in paths, paths
    assert not [p for p in paths if p.count("/") > 3]  # no resource instances in a Discover
    assert attrs_of(inst.value, "/3/0/11") == {"dim": "1"}
    assert attrs_of(inst.value, "/3/0/0") == {}

    res = server.discover(ep, "/3/0/11")
    assert res.code == "2.05" and res.value == [("/3/0/11", {"dim": "1"})]
    srv = server.discover(ep, "/1/0")
    assert srv.code == "2.05" and {"/1/0/0", "/1/0/1", "/1/0/6", "/1/0/7"} <= set(paths_of(srv.value))
    proc.assert_clean()


def test_discover_lists_executable_resources(server, mpy_client):
    """Core §6.3.5 (its /3 example lists </3/0/4>): Discover names every resource the instance has,
    executables included (Reboot /3/0/4 is mandatory, Registration Update Trigger /1/0/8 too)."""
    proc, _ = start_cli(mpy_client, server, "e2e-discover-exec")
    inst = server.discover("e2e-discover-exec", "/3/0")
    assert inst.code == "2.05"
    assert "/3/0/4" in paths_of(inst.value), inst.payload
    srv = server.discover("e2e-discover-exec", "/1/0")
    assert "/1/0/8" in paths_of(srv.value), srv.payload
    proc.assert_clean()


def test_write_attributes_then_discover(server, mpy_client):
    proc, _ = start_cli(mpy_client, server, "e2e-attrs")
    ep = "e2e-attrs"
    assert server.write_attributes(ep, "/3/0/13", pmin=10, pmax=60).code == "2.04"
    res = server.discover(ep, "/3/0/13")
    assert res.code == "2.05"
    assert res.value == [("/3/0/13", {"pmin": "10", "pmax": "60"})]
    inst = server.discover(ep, "/3/0")
    assert attrs_of(inst.value, "/3/0/13") == {"pmin": "10", "pmax": "60"}
    assert attrs_of(inst.value, "/3/0/0") == {}

    # numeric attributes on a numeric resource (Memory Free, Integer), attributes on the instance,
    # removal of one
    assert server.write_attributes(ep, "/3/0/10", gt=50, lt=10, st=2).code == "2.04"
    assert server.write_attributes(ep, "/3/0", pmin=5).code == "2.04"
    assert server.write_attributes(ep, "/3/0/13", pmax=None).code == "2.04"
    inst = server.discover(ep, "/3/0")
    assert attrs_of(inst.value, "/3/0") == {"pmin": "5"}
    assert attrs_of(inst.value, "/3/0/13") == {"pmin": "10"}
    attrs = attrs_of(inst.value, "/3/0/10")
    assert float(attrs["gt"]) == 50 and float(attrs["lt"]) == 10 and float(attrs["st"]) == 2
    # attributes never reach a Read
    assert server.read(ep, "/3/0/0", accept=lws.TEXT).payload == b"lwm2m_mpy"
    proc.assert_clean()


# --- Create and Delete --------------------------------------------------------------------------------------

def test_create_and_delete_server_instance(server, mpy_client):
    proc, _ = start_cli(mpy_client, server, "e2e-create")
    ep = "e2e-create"
    created = server.create(ep, "/1", {0: 2, 1: 60, 6: False, 7: "U"}, instance_id=1)
    assert (created.code, created.location) == ("2.01", "/1/1")
    update = server.wait_for("update", ep, timeout=10)
    assert update.has_body and update.query == {}  # lifetime of /1/0 unchanged
    assert "/1/1" in paths_of(update.links) and "/1/0" in paths_of(update.links)
    assert "/1/1" in server.registration(ep).objects
    new = server.read(ep, "/1/1", accept=lws.TLV)
    assert new.code == "2.05"
    assert (new.value[0], new.value[1], new.value[6], new.value[7]) == (2, 60, False, "U")

    deleted = server.delete(ep, "/1/1")
    assert deleted.code == "2.02"
    update = server.wait_for("update", ep, timeout=10)
    assert update.has_body and "/1/1" not in paths_of(update.links)
    assert server.read(ep, "/1/1").code == "4.04"

    # Create without an instance id: the client picks the first free one
    created = server.create(ep, "/1", {0: 3, 1: 90, 6: True, 7: "U"})
    assert (created.code, created.location) == ("2.01", "/1/1")
    assert "/1/1" in paths_of(server.wait_for("update", ep, timeout=10).links)
    # the registration still follows /1/0, not the new instance
    assert server.registration(ep).lifetime == 300
    proc.assert_clean()


# --- every error answer, on one client, then its state is checked unchanged ----------------------------

SHARED_EP = "e2e-errors"
BAD_TLV_TRUNCATED = b"\xc8\x01"  # Resource, 8-bit length field missing
BAD_TLV_LONG = b"\xc1\x01"  # Resource 1 with a 1-byte value that is not there
TLV_RES7_AT_RES1 = b"\xc1\x07\x55"  # Resource 7 in a write to /1/0/1
GOOD_LIFETIME_TLV = b"\xc2\x01\x01\x2c"  # Resource 1 = 300 (well formed, for the mismatch cases)

# (id, method, path, raw() keyword arguments, acceptable codes)
ERROR_CASES = [
    ("404-object", "GET", "/99", {}, {"4.04"}),
    ("404-instance", "GET", "/3/1", {}, {"4.04"}),
    ("404-undefined-resource", "GET", "/3/0/99", {}, {"4.04"}),
    ("404-absent-resource", "GET", "/3/0/9", {}, {"4.04"}),  # Battery Level: defined, not present
    ("404-resource-instance", "GET", "/3/0/11/7", {}, {"4.04"}),
    ("404-non-numeric-segment", "GET", "/3/x", {}, {"4.04"}),
    ("404-too-deep", "GET", "/3/0/0/0/0", {}, {"4.04"}),
    ("404-write-instance", "PUT", "/3/1/13", {"payload": b"5", "content_format": 0}, {"4.04"}),
    ("404-execute-resource", "POST", "/3/0/99", {}, {"4.04"}),
    ("404-execute-instance", "POST", "/3/1/4", {}, {"4.04"}),
    ("404-delete-instance", "DELETE", "/1/9", {}, {"4.04"}),
    ("404-discover-instance", "GET", "/3/7", {"accept": 40}, {"4.04"}),
    ("405-write-read-only", "PUT", "/3/0/0", {"payload": b"x", "content_format": 0}, {"4.05"}),
    ("405-execute-read-only", "POST", "/3/0/0", {}, {"4.05"}),
    ("405-read-executable", "GET", "/3/0/4", {}, {"4.05"}),
    ("405-delete-device", "DELETE", "/3/0", {}, {"4.05"}),
    ("405-delete-object", "DELETE", "/3", {}, {"4.05"}),
    ("405-write-object", "PUT", "/1", {"payload": GOOD_LIFETIME_TLV, "content_format": 11542}, {"4.05"}),
    ("405-root", "GET", "/", {}, {"4.04", "4.05"}),
    ("406-opaque-on-string", "GET", "/3/0/0", {"accept": 42}, {"4.06"}),
    ("406-text-on-instance", "GET", "/3/0", {"accept": 0}, {"4.06"}),
    ("406-lwm2m-json-on-resource", "GET", "/3/0/0", {"accept": 11543}, {"4.06"}),
    ("406-text-on-multiple", "GET", "/3/0/11", {"accept": 0}, {"4.06"}),
    ("415-lwm2m-json", "PUT", "/3/0/13", {"payload": b'{"e":[{"v":5}]}', "content_format": 11543}, {"4.15"}),
    ("400-senml-json-without-name", "PUT", "/3/0/13", {"payload": b'[{"v":5}]', "content_format": 110}, {"4.00"}),
    ("400-senml-json-truncated", "PUT", "/3/0/13", {"payload": b'[{"n":"/3/0/13","v":5', "content_format": 110},
     {"4.00"}),
    ("400-senml-cbor-huge-length", "PUT", "/3/0/13", {"payload": b"\x81\xa1\x00\x7b\xff\xff\xff\xff\xff\xff\xff\xff",
                                                        "content_format": 112}, {"4.00"}),
    ("400-senml-wrong-type", "PUT", "/3/0/13", {"payload": b'[{"n":"/3/0/13","vs":"noon"}]', "content_format": 110},
     {"4.00"}),
    ("405-senml-write-read-only", "PUT", "/3/0/0", {"payload": b'[{"n":"/3/0/0","vs":"x"}]', "content_format": 110},
     {"4.05"}),
    ("415-fetch-in-tlv", "FETCH", "/", {"payload": b"\xc1\x00\x01", "content_format": 11542}, {"4.15"}),
    ("400-ipatch-unknown-resource-name", "0.07", "/", {"payload": b'[{"n":"/3/0/x","v":1}]', "content_format": 110},
     {"4.00"}),
    ("415-json", "PUT", "/1/0/1", {"payload": b"120", "content_format": 50}, {"4.15"}),
    ("415-cbor", "PUT", "/1/0/1", {"payload": b"\x18\x78", "content_format": 60}, {"4.15"}),
    ("415-opaque-on-integer", "PUT", "/1/0/1", {"payload": b"\x78", "content_format": 42}, {"4.15", "4.00"}),
    ("400-tlv-truncated", "PUT", "/1/0", {"payload": BAD_TLV_TRUNCATED, "content_format": 11542}, {"4.00"}),
    ("400-tlv-too-long", "PUT", "/1/0", {"payload": BAD_TLV_LONG, "content_format": 11542}, {"4.00"}),
    ("400-tlv-wrong-resource", "PUT", "/1/0/1", {"payload": TLV_RES7_AT_RES1, "content_format": 11542}, {"4.00"}),
    ("400-text-not-integer", "PUT", "/1/0/1", {"payload": b"abc", "content_format": 0}, {"4.00"}),
    ("400-text-float-for-integer", "PUT", "/1/0/1", {"payload": b"12.5", "content_format": 0}, {"4.00"}),
    ("400-no-payload", "PUT", "/1/0/1", {"content_format": 0}, {"4.00"}),
    ("400-no-content-format", "PUT", "/1/0/1", {"payload": b"120"}, {"4.00", "4.15"}),
    ("400-boolean-2", "PUT", "/1/0/6", {"payload": b"2", "content_format": 0}, {"4.00"}),
    ("400-execute-args-word", "POST", "/3/0/4", {"payload": b"abc", "content_format": 0}, {"4.00"}),
    ("400-execute-args-unterminated", "POST", "/3/0/4", {"payload": b"0='x", "content_format": 0}, {"4.00"}),
    ("400-execute-args-trailing-comma", "POST", "/3/0/4", {"payload": b"0,", "content_format": 0}, {"4.00"}),
    ("400-execute-args-two-digits", "POST", "/3/0/4", {"payload": b"10", "content_format": 0}, {"4.00"}),
    ("400-create-missing-mandatory", "POST", "/1", {"payload": b"\xc1\x01\x3c", "content_format": 11542}, {"4.00"}),
    ("400-create-single-instance-object", "POST", "/3",
     {"payload": b"\xc8\x00\x01x", "content_format": 11542}, {"4.00", "4.05"}),
    ("400-attr-unknown", "PUT", "/3/0/13", {"query": ["foo=1"]}, {"4.00"}),
    ("400-attr-pmin-above-pmax", "PUT", "/3/0/13", {"query": ["pmin=60", "pmax=10"]}, {"4.00"}),
    ("400-attr-gt-on-string", "PUT", "/3/0/0", {"query": ["gt=1"]}, {"4.00"}),
    ("400-attr-not-a-number", "PUT", "/3/0/13", {"query": ["pmin=soon"]}, {"4.00"}),
    ("401-read-security-object", "GET", "/0", {}, {"4.01"}),
    ("401-read-security-instance", "GET", "/0/0", {}, {"4.01"}),
    ("401-read-security-uri", "GET", "/0/0/0", {"accept": 0}, {"4.01"}),
    ("401-write-security", "PUT", "/0/0/0", {"payload": b"coap://evil", "content_format": 0}, {"4.01"}),
    ("401-delete-security", "DELETE", "/0/0", {}, {"4.01"}),
    ("401-discover-security", "GET", "/0", {"accept": 40}, {"4.01"}),
    ("401-create-security", "POST", "/0", {"payload": b"\xc1\x0a\x01", "content_format": 11542}, {"4.01"}),
    ("402-critical-option-9", "GET", "/3/0/0", {"options": [(9, b"x")]}, {"4.02"}),
    ("402-critical-option-2049", "GET", "/3/0/0", {"options": [(2049, b"x")]}, {"4.02"}),
    ("402-critical-option-on-write", "PUT", "/1/0/1",
     {"payload": b"77", "content_format": 0, "options": [(65001, b"")]}, {"4.02"}),
    # an unknown *elective* option (even number) is ignored: the request is served
    ("205-elective-option-2048", "GET", "/3/0/0", {"options": [(2048, b"x")]}, {"2.05"}),
]


@pytest.fixture(scope="module")
def shared_device(micropython, tmp_path_factory):
    """One server and one client (exec_app.py, so an Execute never reboots it) for the error cases.
    Yields (server, process, initial /3/0 and /1/0 values)."""
    cwd = tmp_path_factory.mktemp("shared")
    with lws.ServerThread() as srv:
        cmd = [micropython, "-X", "heapsize=256k"] + app_args("exec_app.py", srv.uri, SHARED_EP)
        proc = ClientProcess(cmd, conftest.micropython_env(), cwd)
        try:
            srv.wait_for("register", SHARED_EP, timeout=REGISTER_TIMEOUT)
            device = srv.read(SHARED_EP, "/3/0", accept=lws.TLV).value
            server_obj = srv.read(SHARED_EP, "/1/0", accept=lws.TLV).value
            yield srv, proc, {"device": device, "server": server_obj}
        finally:
            proc.kill()


@pytest.mark.parametrize("method,path,kwargs,codes", [c[1:] for c in ERROR_CASES],
                         ids=[c[0] for c in ERROR_CASES])
def test_error_answer(shared_device, method, path, kwargs, codes):
    srv, proc, _ = shared_device
    assert proc.alive(), proc.output()
    result = srv.raw(SHARED_EP, method, path, **kwargs)
    assert result.code in codes, "%s %s -> %s %r (want %s)" % (method, path, result.code, result.payload, codes)
    if not result.ok:
        # RFC 7252 §5.5.2: an error may carry a diagnostic text; when there is one it is UTF-8 text
        result.payload.decode("utf-8")


def test_state_unchanged_after_errors(shared_device):
    srv, proc, initial = shared_device
    assert proc.alive(), proc.output()
    device = srv.read(SHARED_EP, "/3/0", accept=lws.TLV)
    assert device.code == "2.05"
    volatile = {10, 13, 21}  # memory and time change by themselves
    assert {k: v for k, v in device.value.items() if k not in volatile} == \
        {k: v for k, v in initial["device"].items() if k not in volatile}
    assert abs(device.value[13] - time.time()) < 60  # the refused 4.15 write did not touch the clock
    server_obj = srv.read(SHARED_EP, "/1/0", accept=lws.TLV)
    assert server_obj.value == initial["server"]
    assert srv.read(SHARED_EP, "/1/1").code == "4.04"  # no refused Create left an instance behind
    assert srv.read(SHARED_EP, "/3/0/0", accept=lws.TEXT).payload == b"Acme"
    # nothing but the Register: no refused request changed the lifetime or the object list
    assert [e.kind for e in srv.events_for(SHARED_EP)] == ["register"]
    assert proc.count(r"^APP execute") == 0  # bad arguments never reached the app
    proc.assert_clean()
    # the refused attributes left none behind
    assert attrs_of(srv.discover(SHARED_EP, "/3/0").value, "/3/0/13") == {}


# --- De-register, Update timing, registering again ------------------------------------------------------

def test_deregister_on_sigint(server, mpy_client):
    proc, first = start_cli(mpy_client, server, "e2e-bye")
    proc.send_signal(signal.SIGINT)
    event = server.wait_for("deregister", "e2e-bye", timeout=10)
    assert event.location == first.location
    assert proc.wait_exit(10) == 0
    out = proc.output()
    assert "lwm2m: deregister /rd/%s" % first.location in out
    assert "lwm2m: deregistered" in out
    assert server.registration("e2e-bye") is None


def test_update_before_lifetime_expires(server, mpy_client):
    ep = "e2e-lifetime"
    proc, reg = start_cli(mpy_client, server, ep, "--lifetime", 10)
    assert reg.query["lt"] == "10"
    first = server.wait_for("update", ep, timeout=10)
    second = server.wait_for("update", ep, timeout=10)
    assert first.time - reg.time < 10 and second.time - first.time < 10
    assert first.query == {} and not first.has_body  # a plain Update: nothing changed
    assert "expire" not in [e.kind for e in server.events_for(ep)]
    assert server.read(ep, "/3/0/0", accept=lws.TEXT).code == "2.05"
    proc.assert_clean()


def _forget_registration(server, ep):
    """Drop the endpoint's registration inside the server (as if it had restarted); returns the
    registration as it was, which still holds the client's address for raw requests."""
    reg = server.registration(ep)

    async def drop():
        server.server._drop(reg.location)
    server._call(drop(), 10)
    return reg


def _send_to(server, reg, code, path, timeout=10):
    """A request to the client at the address of a registration the server no longer has."""
    message = server.server._message(reg, code, codec.parse_path(path))
    return server._call(server.server._send(reg, message, timeout), timeout + 5)


def test_register_again_when_update_gets_404(server, mpy_client):
    ep = "e2e-update-404"
    proc, first = start_cli(mpy_client, server, ep)
    reg = _forget_registration(server, ep)
    response = _send_to(server, reg, Code.POST, "/1/0/8")  # Registration Update Trigger
    assert response.code == Code.CHANGED
    proc.wait_line(r"lwm2m: update failed \(4\.04\)", timeout=10)
    again = server.wait_for("register", ep, timeout=10)
    assert again.location != first.location and again.replaced is None
    assert server.read(ep, "/3/0/0", accept=lws.TEXT).payload == b"lwm2m_mpy"
    proc.assert_clean()


def test_register_again_after_server_restart(mpy_client):
    ep = "e2e-restart"
    first_server = lws.ServerThread().start()
    port = first_server.port
    try:
        proc, first = start_cli(mpy_client, first_server, ep, "--lifetime", 10)
    finally:
        first_server.stop()
    with lws.ServerThread(port=port) as second_server:  # same port, empty registry
        # the next Update (due 5 s after Register with lt=10) gets 4.04: register from scratch
        event = second_server.wait_for("register", ep, timeout=15)
        assert event.query["lt"] == "10"
        assert second_server.read(ep, "/3/0/0", accept=lws.TEXT).payload == b"lwm2m_mpy"
    assert proc.count(r"lwm2m: update failed \(4\.04\)") == 1
    proc.assert_clean()


def test_register_retries_with_backoff_until_server_is_up(mpy_client, free_udp_port):
    ep = "e2e-backoff"
    port = free_udp_port()
    proc = mpy_client(cli_args("coap://127.0.0.1:%d" % port, ep, "--retry", 1))
    proc.wait_line(r"lwm2m: register failed .*register in 1 s", timeout=10)
    proc.wait_line(r"lwm2m: register failed .*register in 2 s", timeout=10)
    started = time.monotonic()
    with lws.ServerThread(port=port) as srv:
        event = srv.wait_for("register", ep, timeout=20)
        waited = time.monotonic() - started
        assert event.query["ep"] == ep
        assert srv.read(ep, "/3/0/0", accept=lws.TEXT).payload == b"lwm2m_mpy"
    # the next try after "register in 4 s" (or 8 s) found the server
    assert waited < 10, waited
    proc.assert_clean()


# --- an app with a generated table (objgen) -----------------------------------------------------------------

def test_app_with_generated_temperature_object(server, mpy_client, tables):
    ep = "e2e-temperature"
    proc = mpy_client(app_args("temperature_app.py", server.uri, ep), path=[tables])
    server.wait_for("register", ep, timeout=REGISTER_TIMEOUT)
    reg = server.registration(ep)
    assert "/3303/0" in reg.objects
    assert attrs_of(reg.links, "/3303").get("ver") == "1.1"
    first = float(server.read(ep, "/3303/0/5700", accept=lws.TEXT).payload)
    second = float(server.read(ep, "/3303/0/5700", accept=lws.TEXT).payload)
    assert second == first + 1.0  # the getter runs on every Read
    inst = server.read(ep, "/3303/0", accept=lws.TLV)
    assert inst.code == "2.05" and inst.value[5701] == "Cel" and inst.value[5750] == "room"
    assert isinstance(inst.value[5700], float)
    assert server.write(ep, "/3303/0/5750", "lab", fmt=lws.TEXT).code == "2.04"
    proc.wait_line(r"^APP set 5750 'lab'$", timeout=5)
    assert server.read(ep, "/3303/0/5750", accept=lws.TEXT).payload == b"lab"
    assert server.raw(ep, "PUT", "/3303/0/5700", payload=b"1.5", content_format=0).code == "4.05"
    links = paths_of(server.discover(ep, "/3303/0").value)
    assert {"/3303/0/5700", "/3303/0/5701", "/3303/0/5750"} <= set(links)
    proc.assert_clean()


# --- the compiled tree in a small heap ------------------------------------------------------------------------

def test_compiled_tree_serves_every_operation_in_72k(server, mpy_client, micropython, tmp_path):
    """Every DM operation, one after another, their code loading on demand. 72k, not the 64k it took
    before Observe/Send joined the resident code: Write's code, then Discover's, and the qstr pool's
    growth no longer fit beside the client in 64k on this 64-bit port (README "Memory")."""
    tree = ensure_mpy_tree()
    # the child imports the .mpy files, not the sources (run from a scratch directory)
    check = subprocess.run([micropython, "-c", "import lwm2m_mpy; print(lwm2m_mpy.__file__)"],
                           cwd=str(tmp_path), env=conftest.micropython_env(str(tree)),
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=30)
    assert check.stdout.decode().strip().endswith("build/mpy/lwm2m_mpy/__init__.mpy"), check.stdout
    ep = "e2e-compiled"
    proc, _ = start_cli(mpy_client, server, ep, heapsize="72k", tree=str(tree))
    device = server.read(ep, "/3/0", accept=lws.TLV)
    assert device.code == "2.05" and device.value[0] == "lwm2m_mpy"
    assert server.read(ep, "/3/0/0", accept=lws.TEXT).payload == b"lwm2m_mpy"
    # the lazily imported parts load in the small heap too
    assert server.write(ep, "/1/0/1", 120, fmt=lws.TEXT).code == "2.04"
    assert server.wait_for("update", ep, timeout=10).query == {"lt": "120"}
    assert server.discover(ep, "/3/0").code == "2.05", proc.output()
    assert server.write_attributes(ep, "/3/0/13", pmin=10).code == "2.04", proc.output()
    for _ in range(20):  # steady state: many requests in the small heap
        assert server.read(ep, "/3/0", accept=lws.TLV).code == "2.05", proc.output()
    proc.send_signal(signal.SIGINT)
    server.wait_for("deregister", ep, timeout=10)
    assert proc.wait_exit(10) == 0
    proc.assert_clean()
    assert "MemoryError" not in proc.output()


def test_compiled_tree_registers_and_serves_reads_in_56k(server, mpy_client):
    """The heap budget, with a little room: `make bench` finds the floor (52 KiB on this port since the
    Observe, Send and queue-mode hooks joined the resident code); this guards against it growing
    further. Reads only: Write, Discover and the other operations load their code on demand and need
    more (64 KiB above)."""
    tree = ensure_mpy_tree()
    ep = "e2e-heap-56k"
    proc, _ = start_cli(mpy_client, server, ep, heapsize="56k", tree=str(tree))
    for _ in range(20):
        assert server.read(ep, "/3/0/0", accept=lws.TEXT).payload == b"lwm2m_mpy", proc.output()
        device = server.read(ep, "/3/0", accept=lws.TLV)
        assert device.code == "2.05" and device.value[0] == "lwm2m_mpy", proc.output()
    proc.send_signal(signal.SIGINT)
    server.wait_for("deregister", ep, timeout=10)
    assert proc.wait_exit(10) == 0
    proc.assert_clean()
    assert "MemoryError" not in proc.output() and "out of memory" not in proc.output()


def test_asyncio_serve_shares_the_loop(server, mpy_client):
    """`await client.serve()`: registers, answers reads while another asyncio task keeps running (its
    tick count, served as /3/0/9, grows between reads), and de-registers when stopped."""
    ep = "e2e-asyncio"
    proc = mpy_client(app_args("async_app.py", server.uri, ep, 3))
    server.wait_for("register", ep, timeout=REGISTER_TIMEOUT)
    first = server.read(ep, "/3/0/9", accept=lws.TEXT)
    time.sleep(0.5)
    second = server.read(ep, "/3/0/9", accept=lws.TEXT)
    assert first.code == second.code == "2.05", (first, second, proc.output())
    assert int(second.value) > int(first.value), (first.value, second.value)
    server.wait_for("deregister", ep, timeout=10)
    proc.wait_line(r"^APP exit ticks=\d+$", timeout=10)
    proc.assert_clean()


# --- stored configuration (core/persist.py) -----------------------------------------------------------------

def test_stored_configuration_survives_a_kill_and_a_truncated_file_falls_back(server, mpy_client, tmp_path):
    ep = "e2e-state"
    state = tmp_path / "state.json"
    proc, first = start_cli(mpy_client, server, ep, "--state", state)
    assert first.query["lt"] == "300"
    assert server.write(ep, "/1/0/1", 120, fmt=lws.TEXT).code == "2.04"
    server.wait_for("update", ep, timeout=10)
    proc.kill()  # no De-register: a power cut
    assert '"1": 120' in state.read_text()
    proc, again = start_cli(mpy_client, server, ep, "--state", state)
    assert again.query["lt"] == "120"  # straight from the stored Server object
    assert "lwm2m: configuration from %s" % state in proc.output()
    proc.kill()
    text = state.read_text()
    state.write_text(text[: len(text) // 2])  # half-written
    proc, third = start_cli(mpy_client, server, ep, "--state", state)
    assert third.query["lt"] == "300"  # the factory configuration
    assert "unreadable" in proc.output() and "factory configuration" in proc.output()
    proc.assert_clean()
