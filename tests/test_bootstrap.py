"""Bootstrap (core/bootstrap.py) end to end: the client inside micropython, tools/bootstrap_server.py as the
Bootstrap-Server, tools/lwm2m_server.py as the LwM2M server (behind tools/dtls_front.py for coaps://).
Loopback only, every wait bounded."""
import signal
import time

import pytest

from e2e_helpers import all_dtls, dtls_front, mpy_client  # noqa: F401  (fixture; puts tools/ on sys.path)

import bootstrap_server as bss  # noqa: E402
import lwm2m_codec as codec  # noqa: E402
import lwm2m_server as lws  # noqa: E402

KEY = bytes(range(16))


def bs_args(bs, endpoint, *extra):
    return ["-m", "lwm2m_mpy", "--bootstrap", bs.uri, "--endpoint", endpoint] + [str(x) for x in extra]


def server_entry(uri, ssid=101, iid="1", **more):
    entry = {"security": {iid: {"uri": uri, "bootstrap": False, "mode": 3, "ssid": ssid}},
             "servers": {"0": {"ssid": ssid, "lifetime": 120}}}
    entry.update(more)
    return entry


def test_factory_empty_client_bootstraps_gets_psk_and_registers_over_dtls_then_restarts_from_its_file(
        mpy_client, micropython, free_udp_port, tmp_path):
    """The issue's acceptance run: bootstrap → PSK credentials → Register over DTLS; killed and started again
    it registers from the stored configuration without a second Bootstrap-Request; with the file cut in
    half it says so, bootstraps again and registers."""
    state = tmp_path / "state.json"
    with lws.ServerThread() as srv, dtls_front(micropython, free_udp_port, srv.port, "bs-dev", KEY) as relay:
        config = bss.psk_config("coaps://127.0.0.1:%d" % relay.port, "bs-dev", KEY.hex(), ssid=7, lifetime=120)
        with bss.BootstrapServerThread(config=config) as bs:
            args = bs_args(bs, "bs-e2e", "--state", state)
            proc = mpy_client(args)
            assert bs.wait_for("finished", "bs-e2e", timeout=20).code == "2.04"
            srv.wait_for("register", "bs-e2e", timeout=20)
            assert srv.read("bs-e2e", "/3/0/0", accept=lws.TEXT).payload == b"lwm2m_mpy"
            assert bs.requests["bs-e2e"] == 1
            proc.wait_line(r"registered /rd/", 10)
            proc.kill()  # a power cut: no De-register

            proc = mpy_client(args)
            proc.wait_line(r"configuration from .*state.json", 10)
            srv.wait_for("register", "bs-e2e", timeout=20)
            proc.wait_line(r"registered /rd/", 10)
            assert bs.requests["bs-e2e"] == 1  # straight to the server: no second bootstrap
            assert "bootstrap" not in proc.output()
            proc.kill()

            text = state.read_text()
            state.write_text(text[: len(text) // 2])  # half-written
            proc = mpy_client(args)
            proc.wait_line(r"stored configuration .* unreadable .*: factory configuration", 10)
            assert bs.wait_for("finished", "bs-e2e", timeout=20).code == "2.04"
            srv.wait_for("register", "bs-e2e", timeout=20)
            assert bs.requests["bs-e2e"] == 2
            proc.wait_line(r"registered /rd/", 10)
            proc.send_signal(signal.SIGINT)
            srv.wait_for("deregister", "bs-e2e", timeout=10)
            assert proc.wait_exit(10) == 0
            proc.assert_clean()
    sent = [d for way, d in relay.log if way == "c2s"]
    assert sent and all_dtls(sent), relay.front_output  # nothing to the LwM2M server in plaintext
    assert not any(b"bs-e2e" in d for d in sent)


def test_bootstrap_operations_discover_read_senml_write_and_the_client_answers(mpy_client):
    """Discover lists `</>;lwm2m=1.1`, the Security instances with ssid and uri and the bootstrap account
    without; a SenML JSON Bootstrap-Write; Bootstrap-Read of /1; deleting the bootstrap account or the Device
    instance is refused and keeps them; then registration with what was written."""
    with lws.ServerThread() as srv:
        entry = server_entry(srv.uri, ssid=9, discover=True, read=["/1"], format="senml-json",
                             delete=["/0/0", "/3/0", "/"], writes={"/1/0/1": "77"})
        with bss.BootstrapServerThread(config={"ops-dev": entry}) as bs:
            proc = mpy_client(bs_args(bs, "ops-dev"))
            assert bs.wait_for("finished", "ops-dev", timeout=20).code == "2.04"
            reg = srv.wait_for("register", "ops-dev", timeout=20)
            assert reg.query["lt"] == "77"
            steps = {(s.op, s.path): s for s in bs.steps("ops-dev")}
            links = steps[("discover", "/")]
            assert links.code == "2.05"
            text = links.payload.decode()
            assert text.startswith("</>;lwm2m=1.1,"), text
            assert "</0/0>," in text and "ssid" not in text.split("</0/0>")[1].split(",")[0]  # the bootstrap account
            assert "</3/0>" in text
            assert steps[("delete", "/0/0")].code == "4.00"
            assert steps[("delete", "/3/0")].code == "4.00"
            assert steps[("delete", "/")].code == "2.02"
            assert steps[("write", "/0/1")].code == "2.04"
            read = steps[("read", "/1")]
            assert read.code == "2.05"
            assert read.value[0][0] == 9 and read.value[0][1] == 77  # /1/0: ssid and the lifetime written as text
            assert srv.read("ops-dev", "/3/0/0", accept=lws.TEXT).payload == b"lwm2m_mpy"
            assert srv.read("ops-dev", "/0/1", accept=lws.TLV).code == "4.01"  # Security: never for a server
            proc.assert_clean()


def test_finish_with_an_inconsistent_configuration_is_refused_with_the_reason(mpy_client):
    """A Server instance without its Security instance: Finish gets 4.06 and says which; nothing registers."""
    with lws.ServerThread() as srv:
        entry = server_entry(srv.uri, ssid=5)
        entry["servers"]["0"]["ssid"] = 6
        with bss.BootstrapServerThread(config={"bad-dev": entry}) as bs:
            proc = mpy_client(bs_args(bs, "bad-dev"))
            done = bs.wait_for("finished", "bad-dev", timeout=20)
            assert done.code == "4.06"
            assert "Server /1/0: no Security instance with Short Server ID 6" in done.diagnostic
            time.sleep(1)
            assert not srv.events_for("bad-dev")
            assert proc.alive()
            proc.assert_clean()


def test_finish_refuses_a_coaps_account_without_keys_in_the_transports_words(mpy_client):
    """The check at Finish is the one the transport makes at start-up (transport/udp.py for_uri)."""
    with bss.BootstrapServerThread(config={"nokey-dev": server_entry("coaps://127.0.0.1:5684", ssid=5)}) as bs:
        proc = mpy_client(bs_args(bs, "nokey-dev"))
        done = bs.wait_for("finished", "nokey-dev", timeout=20)
        assert done.code == "4.06"
        assert done.diagnostic == ("Security /0/1: coaps:// needs a pre-shared key (mode 0, /0/x/3 and /0/x/5) or"
                                   " certificates (mode 2, /0/x/3, /0/x/4 and /0/x/5)")
        proc.assert_clean()


def test_registration_failure_falls_back_to_bootstrap(mpy_client, free_udp_port):
    """A factory server that never answers (nothing on its port): after Communication Retry Count attempts the
    client bootstraps (/1/x/16 defaults to true) and registers with the server it is given."""
    dead = free_udp_port()
    with lws.ServerThread() as srv:
        entry = server_entry(srv.uri, ssid=3, iid="2", delete=["/0/0", "/1"])
        with bss.BootstrapServerThread(config={"fail-dev": entry}) as bs:
            proc = mpy_client(["-m", "lwm2m_mpy", "--server", "coap://127.0.0.1:%d" % dead, "--bootstrap", bs.uri,
                               "--endpoint", "fail-dev", "--retry", "1"])
            proc.wait_line(r"register failed \(.*\): bootstrap", 40)
            assert proc.count(r"^lwm2m: register ep=") == 5  # Communication Retry Count: 5 attempts
            assert bs.wait_for("finished", "fail-dev", timeout=20).code == "2.04"
            srv.wait_for("register", "fail-dev", timeout=20)
            proc.assert_clean()


def acl_config(a, b):
    """Two servers (ssid 1 at `a`, ssid 2 at `b`) and who may do what: /3/0 is server 1's, server 2 may read
    it; each Server instance belongs to its server; /2 instances are their owners'."""
    return {"acl-dev": {
        "security": {"1": {"uri": a.uri, "bootstrap": False, "mode": 3, "ssid": 1},
                     "2": {"uri": b.uri, "bootstrap": False, "mode": 3, "ssid": 2}},
        "servers": {"0": {"ssid": 1, "lifetime": 120}, "1": {"ssid": 2, "lifetime": 120}},
        "acl": {"0": {"object": 3, "instance": 0, "acl": {"2": 1}, "owner": 1},
                "1": {"object": 1, "instance": 0, "acl": {}, "owner": 1},
                "2": {"object": 1, "instance": 1, "acl": {"1": 1}, "owner": 2}}}}


def test_two_servers_each_see_exactly_what_access_control_allows(mpy_client):
    with lws.ServerThread() as a, lws.ServerThread() as b:
        with bss.BootstrapServerThread(config=acl_config(a, b)) as bs:
            proc = mpy_client(bs_args(bs, "acl-dev"))
            assert bs.wait_for("finished", "acl-dev", timeout=20).code == "2.04"
            a.wait_for("register", "acl-dev", timeout=20)
            b.wait_for("register", "acl-dev", timeout=20)
            ep = "acl-dev"
            # /3/0: owner 1 has every right; server 2 only reads
            assert a.read(ep, "/3/0/0", accept=lws.TEXT).payload == b"lwm2m_mpy"
            assert b.read(ep, "/3/0/0", accept=lws.TEXT).payload == b"lwm2m_mpy"
            assert a.write(ep, "/3/0/14", "+02", fmt=lws.TEXT).code == "2.04"
            denied = b.write(ep, "/3/0/14", "+03", fmt=lws.TEXT)
            assert denied.code == "4.01"
            assert a.read(ep, "/3/0/14", accept=lws.TEXT).payload == b"+02"  # unchanged by the refused write
            assert a.execute(ep, "/3/0/12").code == "2.04"
            assert b.execute(ep, "/3/0/12").code == "4.01"
            # Server instances: each its own; server 1 may read server 2's, not the other way round
            assert b.read(ep, "/1/0", accept=lws.TLV).code == "4.01"
            assert a.read(ep, "/1/1", accept=lws.TLV).code == "2.05"
            assert a.write(ep, "/1/1/1", 100, fmt=lws.TEXT).code == "4.01"
            assert sorted(codec.decode_tlv(a.read(ep, "/1", accept=lws.TLV).payload)) == [0, 1]
            assert sorted(codec.decode_tlv(b.read(ep, "/1", accept=lws.TLV).payload)) == [1]
            # Access Control instances: their owners'
            assert sorted(codec.decode_tlv(a.read(ep, "/2", accept=lws.TLV).payload)) == [0, 1]
            assert sorted(codec.decode_tlv(b.read(ep, "/2", accept=lws.TLV).payload)) == [2]
            # Security: nobody's
            assert a.read(ep, "/0", accept=lws.TLV).code == "4.01"
            # a write by server 2 to its own lifetime goes out as its Update, not server 1's
            assert b.write(ep, "/1/1/1", 90, fmt=lws.TEXT).code == "2.04"
            assert b.wait_for("update", ep, timeout=10).query.get("lt") == "90"
            proc.send_signal(signal.SIGINT)
            a.wait_for("deregister", ep, timeout=10)
            b.wait_for("deregister", ep, timeout=10)
            assert proc.wait_exit(10) == 0
            proc.assert_clean()


@pytest.mark.parametrize("fmt", ["tlv", "senml-cbor"])
def test_two_servers_from_a_stored_file_register_without_bootstrap(mpy_client, tmp_path, fmt):
    """The two-server configuration (with its access control) survives a restart."""
    state = tmp_path / "state.json"
    with lws.ServerThread() as a, lws.ServerThread() as b:
        config = acl_config(a, b)
        config["acl-dev"]["format"] = fmt
        with bss.BootstrapServerThread(config=config) as bs:
            proc = mpy_client(bs_args(bs, "acl-dev", "--state", state))
            a.wait_for("register", "acl-dev", timeout=20)
            b.wait_for("register", "acl-dev", timeout=20)
            proc.kill()
            proc = mpy_client(bs_args(bs, "acl-dev", "--state", state))
            a.wait_for("register", "acl-dev", timeout=20)
            b.wait_for("register", "acl-dev", timeout=20)
            assert bs.requests["acl-dev"] == 1
            assert b.write("acl-dev", "/3/0/14", "+03", fmt=lws.TEXT).code == "4.01"
            proc.assert_clean()
