"""DTLS with a pre-shared key (coaps://, transport/dtls.py) against an independent peer: Debian's libcoap
`coap-server-openssl` (package libcoap3-bin; .ci/run installs it). The client runs inside micropython;
a relay between it and the server keeps every datagram, so the tests prove that nothing went out in
plaintext. Loopback only, every wait bounded."""
import shutil
import signal
import socket
import subprocess
import time

import pytest

from e2e_helpers import Relay, all_dtls, cli_args, dtls_front, mpy_client  # noqa: F401  (fixture)

KEY = b"lwm2m-mpy-secret"
@pytest.fixture
def coaps_server(free_udp_port, tmp_path):
    """coap-server-openssl with PSK KEY: returns (DTLS port, log file). It serves coap on P and coaps on
    P + 1, so both must be free."""
    exe = shutil.which("coap-server-openssl")
    assert exe, "coap-server-openssl missing: apt-get install libcoap3-bin (.ci/run does)"
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
        proc = subprocess.Popen([exe, "-A", "127.0.0.1", "-p", str(port), "-k", KEY.decode(), "-v", "7"],
                                stdout=out, stderr=subprocess.STDOUT)
    try:
        time.sleep(0.3)
        assert proc.poll() is None, log.read_text()
        yield port + 1, log
    finally:
        proc.terminate()
        proc.wait(5)


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
        proc.wait_line(r"lwm2m: dtls handshake failed \(.*\): wrong key or identity", timeout=30)
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
