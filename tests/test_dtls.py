"""DTLS with a pre-shared key (coaps://, transport/dtls.py) against an independent peer: Debian's libcoap
`coap-server-openssl` (package libcoap3-bin; .ci/run installs it). The client runs inside micropython;
a relay between it and the server keeps every datagram, so the tests prove that nothing went out in
plaintext. Loopback only, every wait bounded."""
import json
import shutil
import signal
import socket
import subprocess
import time

from pathlib import Path

import pytest

from e2e_helpers import Relay, all_dtls, cli_args, dtls_front, mpy_client  # noqa: F401  (fixture)

KEY = b"lwm2m-mpy-secret"
@pytest.fixture
def libcoap(free_udp_port, tmp_path):
    """start(*args) runs coap-server-openssl with those security options and returns (DTLS port, log
    file). It serves coap on P and coaps on P + 1, so both must be free."""
    exe = shutil.which("coap-server-openssl")
    assert exe, "coap-server-openssl missing: apt-get install libcoap3-bin (.ci/run does)"
    started = []

    def start(*args):
        for _ in range(20):
            port = free_udp_port()
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                try:
                    s.bind(("127.0.0.1", port + 1))
                except OSError:
                    continue
            break
        log = tmp_path / "coap-server.log"
        with open(log, "w") as out:
            proc = subprocess.Popen([exe, "-A", "127.0.0.1", "-p", str(port), "-v", "7"] + [str(a) for a in args],
                                    stdout=out, stderr=subprocess.STDOUT)
        started.append(proc)
        time.sleep(0.3)
        assert proc.poll() is None, log.read_text()
        return port + 1, log

    yield start
    for proc in started:
        proc.terminate()
        proc.wait(5)


@pytest.fixture
def coaps_server(libcoap):
    """coap-server-openssl with the pre-shared key KEY."""
    return libcoap("-k", KEY.decode())


def wait_for(check, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.1)
    return False


def test_register_over_dtls_psk_reaches_libcoap(coaps_server, mpy_client):
    port, log = coaps_server
    relay = Relay(port)
    try:
        proc = mpy_client(cli_args("coaps://127.0.0.1:%d" % relay.port, "dtls-dev", "--psk-id", "dev-1",
                                   "--psk-key", KEY.hex(), "--retry", 1, "--seconds", 6))
        proc.wait_line(r"lwm2m: dtls session up$", timeout=15)
        # libcoap's example server is no LwM2M server: it answers the Register 4.04, over DTLS
        proc.wait_line(r"lwm2m: register failed \(4\.04\)", timeout=10)
        assert wait_for(lambda: "Uri-Query:ep=dtls-dev" in log.read_text(), 5), log.read_text()[-2000:]
        text = log.read_text()
        assert "got psk_identity: 'dev-1'" in text and "c:POST" in text and "Uri-Path:rd" in text
        assert proc.wait_exit(15) == 0
    finally:
        relay.close()
    sent = [d for way, d in relay.log if way == "c2s"]
    assert sent and all_dtls(sent) and all_dtls([d for way, d in relay.log if way == "s2c"])
    assert not any(b"ep=dtls-dev" in d or b"rd" in d[4:12] for d in sent)  # the Register only encrypted
    assert any(d[0] == 23 for d in sent)  # application data records: CoAP inside
    proc.assert_clean()


def test_wrong_key_fails_clearly_retries_and_sends_no_plaintext(coaps_server, mpy_client):
    port, log = coaps_server
    relay = Relay(port)
    try:
        proc = mpy_client(cli_args("coaps://127.0.0.1:%d" % relay.port, "dtls-bad", "--psk-id", "dev-1",
                                   "--psk-key", b"not-the-key".hex(), "--retry", 1, "--seconds", 40))
        proc.wait_line(r"lwm2m: dtls handshake failed \(.*\): wrong key, identity or certificate", timeout=30)
        proc.wait_line(r"lwm2m: dtls handshake failed", timeout=30)  # tried again (CoAP retransmission)
        proc.kill()
    finally:
        relay.close()
    sent = [d for way, d in relay.log if way == "c2s"]
    assert sent and all_dtls(sent)
    assert not any(d[0] == 23 for d in sent)  # no application data: no session, nothing sent
    assert "lwm2m: dtls session up" not in proc.output()


def test_register_and_read_over_dtls_with_the_host_server(mpy_client, micropython, free_udp_port):
    """The project's server behind tools/dtls_front.py (MicroPython's DTLS server mode: the PSK suites our
    client offers; aiocoap's tinydtls has only AES-128-CCM-8): Register and a read, all over DTLS."""
    import lwm2m_server as lws

    with lws.ServerThread() as srv, dtls_front(micropython, free_udp_port, srv.port, "dev-1", KEY) as relay:
        proc = mpy_client(cli_args("coaps://127.0.0.1:%d" % relay.port, "dtls-lwm2m", "--psk-id", "dev-1",
                                   "--psk-key", KEY.hex()))
        event = srv.wait_for("register", "dtls-lwm2m", timeout=20)
        assert event.query["ep"] == "dtls-lwm2m"
        assert srv.read("dtls-lwm2m", "/3/0/0", accept=lws.TEXT).payload == b"lwm2m_mpy"
        proc.send_signal(signal.SIGINT)
        srv.wait_for("deregister", "dtls-lwm2m", timeout=10)
        assert proc.wait_exit(10) == 0
    out = relay.front_output
    sent = [d for way, d in relay.log if way == "c2s"]
    assert sent and all_dtls(sent), out
    assert not any(b"dtls-lwm2m" in d for d in sent)
    proc.assert_clean()


def test_a_restarted_dtls_server_gets_a_new_handshake_and_the_registration_goes_on(mpy_client, micropython,
                                                                                     free_udp_port):
    """The DTLS front (the server's session) restarts and forgets the session: the client's records go
    unanswered, and after 5 of them it shakes hands anew and its Update or Register gets through."""
    import lwm2m_server as lws
    from e2e_helpers import app_args, dtls_front_process

    with lws.ServerThread() as srv:
        ports = [free_udp_port() for _ in range(3)]
        front = dtls_front_process(micropython, ports, srv.port, "dev-1", KEY)
        try:
            proc = mpy_client(app_args("dtls_app.py", "coaps://127.0.0.1:%d" % ports[0], "dtls-again", "dev-1",
                                       KEY.hex(), 200, 20, 60))
            srv.wait_for("register", "dtls-again", timeout=20)
            proc.wait_line(r"registered /rd/", 10)
            front.terminate()
            front.wait(5)
            front = dtls_front_process(micropython, ports, srv.port, "dev-1", KEY)
            proc.wait_line(r"dtls: no answer to 5 datagrams, new handshake", 40)
            proc.wait_line(r"^lwm2m: (updated|registered /rd/)", 30)
            assert proc.count(r"dtls session up") == 2
            proc.assert_clean()
        finally:
            front.terminate()
            front.wait(5)


CERTS = Path(__file__).parent / "peers" / "certs"  # test-only certificates (see its README)


def _server_with_certificates(libcoap):
    """coap-server-openssl with the server's certificate, asking the client for one signed by the CA."""
    return libcoap("-c", CERTS / "server.pem", "-j", CERTS / "server.key", "-R", CERTS / "ca.pem")


def _cert_args(server_cert):
    return ["--cert", CERTS / "client.der", "--cert-key", CERTS / "client.key.der", "--server-cert", server_cert]


def test_certificates_with_the_servers_own_certificate_pinned_reach_libcoap(libcoap, mpy_client):
    """Security mode 2, Certificate Usage 3 (the default): the server's certificate in /0/0/4, byte for
    byte; the client's certificate and key in /0/0/3 and /0/0/5. libcoap checks ours against its CA."""
    port, log = _server_with_certificates(libcoap)
    relay = Relay(port)
    try:
        proc = mpy_client(cli_args("coaps://127.0.0.1:%d" % relay.port, "cert-dev", "--retry", 1, "--seconds", 6,
                                   *_cert_args(CERTS / "server.der")))
        proc.wait_line(r"lwm2m: dtls session up$", timeout=15)
        proc.wait_line(r"lwm2m: register failed \(4\.04\)", timeout=10)  # libcoap is no LwM2M server
        assert wait_for(lambda: "Uri-Query:ep=cert-dev" in log.read_text(), 5), log.read_text()[-2000:]
        assert proc.wait_exit(15) == 0
    finally:
        relay.close()
    sent = [d for way, d in relay.log if way == "c2s"]
    assert sent and all_dtls(sent) and any(d[0] == 23 for d in sent)
    assert not any(b"ep=cert-dev" in d for d in sent)
    proc.assert_clean()


def test_a_server_certificate_other_than_the_pinned_one_stops_the_handshake(libcoap, mpy_client):
    port, _ = _server_with_certificates(libcoap)
    relay = Relay(port)
    try:
        proc = mpy_client(cli_args("coaps://127.0.0.1:%d" % relay.port, "cert-bad", "--retry", 1, "--seconds", 30,
                                   *_cert_args(CERTS / "client.der")))  # not the server's
        proc.wait_line(r"lwm2m: dtls: the server's certificate is not the one in /0/x/4", timeout=15)
        proc.wait_line(r"lwm2m: dtls handshake failed", timeout=5)
        proc.kill()
    finally:
        relay.close()
    sent = [d for way, d in relay.log if way == "c2s"]
    assert sent and all_dtls(sent) and not any(d[0] == 23 for d in sent)  # no session, nothing sent
    assert "dtls session up" not in proc.output()


def test_certificates_with_a_trust_anchor_check_the_chain_and_the_name(libcoap, mpy_client, tmp_path):
    """Certificate Usage 2 (/0/0/15, here from a factory configuration file): /0/0/4 is the CA; the server's
    certificate must chain to it and name 127.0.0.1."""
    port, _ = _server_with_certificates(libcoap)
    config = tmp_path / "factory.json"
    hexof = lambda name: {"hex": (CERTS / name).read_bytes().hex()}  # noqa: E731
    config.write_text(json.dumps({"lwm2m_mpy": 1, "objects": {
        "0": {"0": {"0": "coaps://127.0.0.1:%d" % port, "1": False, "2": 2, "3": hexof("client.der"),
                    "4": hexof("ca.der"), "5": hexof("client.key.der"), "10": 1, "15": 2}},
        "1": {"0": {"0": 1, "1": 60, "6": True, "7": "U"}}}}))
    proc = mpy_client(["-m", "lwm2m_mpy", "--config", config, "--endpoint", "cert-ca", "--retry", 1,
                       "--seconds", 6])
    proc.wait_line(r"lwm2m: dtls session up$", timeout=15)
    proc.wait_line(r"lwm2m: register failed \(4\.04\)", timeout=10)
    assert proc.wait_exit(15) == 0
    proc.assert_clean()
