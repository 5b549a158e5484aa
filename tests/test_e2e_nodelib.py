"""End to end against an independent LwM2M server: lwm2m-node-lib (npm, Telefonica) through
tests/peers/nodelib.py. The client runs in the real `micropython` binary; all on 127.0.0.1, bounded.

The peer's quirks the client must live with: Location-Path "rd/<id>" in ONE option, legacy content
format 1541 for writes and executes, text-only single-resource operations, and no ACK for a CON that
carries a response. None of that may wedge the client: every test ends with the client still serving.
"""
import ast
import signal
import time

import pytest

from e2e_helpers import app_args, cli_args, mpy_client, tables  # noqa: F401  (fixtures)
from peers.nodelib import NodeLibError, NodeLibServer

REGISTER_TIMEOUT = 15


@pytest.fixture
def nodelib():
    srv = NodeLibServer(host="127.0.0.1")
    try:
        yield srv
    finally:
        srv.stop()


def uri(srv):
    return "coap://127.0.0.1:%d" % srv.port


def start_cli(mpy_client, srv, ep, *extra):
    proc = mpy_client(cli_args(uri(srv), ep, *extra))
    event = srv.wait_event("register", ep=ep, timeout=REGISTER_TIMEOUT)
    proc.wait_line(r"lwm2m: registered /rd/%s$" % event["id"], timeout=5)
    return proc, event


def test_register_read_and_deregister(nodelib, mpy_client):
    ep = "nl-basic"
    proc, event = start_cli(mpy_client, nodelib, ep)
    assert event["lifetime"] in (300, "300")
    assert event["version"] == "1.1" and event["binding"] == "U"
    assert event["location"] == "rd/%s" % event["id"]  # sent as ONE Location-Path option
    assert "</3/0>" in event["payload"] and "</1/0>" in event["payload"]
    assert "</0" not in event["payload"]
    assert [d["ep"] for d in nodelib.list_devices()] == [ep]

    assert nodelib.read(ep, "/3/0/0") == "lwm2m_mpy"
    assert nodelib.read(ep, "/1/0/1") == "300"
    assert nodelib.read(ep, "/3/0/16") == "U"
    assert "</3/0/0>" in nodelib.discover(ep, "/3/0")

    proc.send_signal(signal.SIGINT)
    gone = nodelib.wait_event("unregister", ep=ep, timeout=10)
    assert gone["reason"] == "deregister"
    assert proc.wait_exit(10) == 0
    assert "lwm2m: deregistered" in proc.output()
    assert nodelib.list_devices() == []
    proc.assert_clean()


def test_write_lifetime_in_legacy_text_sends_update(nodelib, mpy_client):
    ep = "nl-write"
    proc, _ = start_cli(mpy_client, nodelib, ep)
    nodelib.write(ep, "/1/0/1", "120")  # Content-Format 1541
    update = nodelib.wait_event("update", ep=ep, timeout=10)
    assert update["lifetime"] in (120, "120")
    proc.wait_line(r"lwm2m: update lt=120$", timeout=5)
    proc.wait_line(r"lwm2m: updated$", timeout=5)
    assert nodelib.read(ep, "/1/0/1") == "120"
    # a refused write comes back as an error, and changes nothing
    with pytest.raises(NodeLibError) as refused:
        nodelib.write(ep, "/3/0/0", "Evil Corp")
    assert refused.value.code in (None, "4.05"), refused.value
    assert nodelib.read(ep, "/3/0/0") == "lwm2m_mpy"
    with pytest.raises(NodeLibError):
        nodelib.read(ep, "/3/0/99")
    assert nodelib.read(ep, "/3/0/0") == "lwm2m_mpy"
    proc.assert_clean()


def test_execute_reboot_with_cli_registers_again(nodelib, mpy_client):
    ep = "nl-reboot"
    proc, first = start_cli(mpy_client, nodelib, ep)
    nodelib.execute(ep, "/3/0/4")
    again = nodelib.wait_event("register", ep=ep, timeout=10)
    assert again["payload"] == first["payload"]
    assert nodelib.read(ep, "/3/0/0") == "lwm2m_mpy"
    # and the trigger for an Update
    nodelib.execute(ep, "/1/0/8")
    nodelib.wait_event("update", ep=ep, timeout=10)
    assert nodelib.read(ep, "/3/0/0") == "lwm2m_mpy"
    proc.assert_clean()


def test_execute_app_callback_with_arguments(nodelib, mpy_client):
    ep = "nl-exec-app"
    proc = mpy_client(app_args("exec_app.py", uri(nodelib), ep))
    nodelib.wait_event("register", ep=ep, timeout=REGISTER_TIMEOUT)
    assert nodelib.read(ep, "/3/0/0") == "Acme"
    nodelib.execute(ep, "/3/0/4", "0='on'")
    match = proc.wait_line(r"^APP execute /3/0/4 n=1 args=(.*)$", timeout=5)
    assert ast.literal_eval(match.group(1)) == "0='on'"
    nodelib.execute(ep, "/3/0/4")
    match = proc.wait_line(r"^APP execute /3/0/4 n=2 args=(.*)$", timeout=5)
    assert ast.literal_eval(match.group(1)) == ""
    with pytest.raises(NodeLibError) as refused:
        nodelib.execute(ep, "/3/0/4", "not args")
    assert refused.value.code in (None, "4.00"), refused.value
    assert proc.count(r"^APP execute") == 2
    assert nodelib.events("register") and len(nodelib.events("register")) == 1
    proc.assert_clean()


def test_many_operations_do_not_wedge_the_client(nodelib, mpy_client):
    """A burst of operations with the peer's quirks (no ACK of CON responses, shared message-ID
    de-duplication): all answered, and the client's own Update still goes out and is answered."""
    ep = "nl-burst"
    proc, _ = start_cli(mpy_client, nodelib, ep, "--lifetime", 10)
    started = time.monotonic()
    for i in range(20):
        assert nodelib.read(ep, "/3/0/0") == "lwm2m_mpy"
        if i % 5 == 0:
            assert "</3/0/11>" in nodelib.discover(ep, "/3/0")
    nodelib.wait_event("update", ep=ep, timeout=10)  # lt=10: an Update within 10 s of Register
    proc.wait_line(r"lwm2m: updated$", timeout=10)
    assert nodelib.read(ep, "/3/0/0") == "lwm2m_mpy"
    assert time.monotonic() - started < 20
    assert not nodelib.events("unregister")
    proc.assert_clean()


# --- Observe (clock app: tests/apps/clock_app.py, a clock the test moves) ------------------------------

def test_observe_notifications_and_unacknowledged_con(nodelib, mpy_client, tables):
    """node-lib drops an observe response with Observe=0 and never ACKs a confirmable notification. The
    client delivers the non-confirmable ones; the every-3rd confirmable one goes unanswered, so the
    client probes with an Update (answered), tries once more, then drops the observation (RFC 7641
    §4.5) instead of looping; it stays registered and serving."""
    ep = "nl-observe"
    proc = mpy_client(app_args("clock_app.py", uri(nodelib), ep, "confirm=3"), path=[tables], stdin=True)
    nodelib.wait_event("register", ep=ep, timeout=REGISTER_TIMEOUT)
    proc.command("sync")
    obs = nodelib.observe(ep, "/3303/0/5700")
    # node-lib drops a first response whose Observe value is 0; ours starts at 1, so it is reported
    assert float(obs.next(timeout=5)) == 20.0
    got = []
    for value in (21.5, 22.5):
        proc.command("set /3303/0/5700 %s" % value)
        proc.command("tick 1000")
        got.append(float(obs.next(timeout=5)))
    assert got == [21.5, 22.5]  # NON notifications, both reported
    proc.command("set /3303/0/5700 23.5")  # the 3rd: confirmable, never acknowledged
    for _ in range(60):
        proc.command("tick 5000")
        if "lwm2m: cancel /3303/0/5700 (not acknowledged)" in proc.output():
            break
    out = proc.output()
    assert "lwm2m: cancel /3303/0/5700 (not acknowledged)" in out, out
    assert "lwm2m: updated" in out  # the probe: the server answers Updates
    assert out.count("lwm2m: register ") == 1  # registered once: no re-register loop
    proc.command("set /3303/0/5700 24.5")
    proc.command("tick 10000")
    out = proc.output()
    assert out.count("lwm2m: notify") == 3 and out.count("flush stored notification") == 1  # then quiet
    assert nodelib.read(ep, "/3303/0/5700") == "24.5"  # still serving
    proc.assert_clean()
