"""Cellular end to end: the client inside the real `micropython` binary (`-m lwm2m_mpy --modem D --uart
tcp:...`) talks AT to tools/modem_emu.py, which bridges the modem's UDP socket to tools/lwm2m_server.py on
loopback. For each dialect: attach, Register, Reads, notifications; then the network is lost and regained
(and, separately, the modem resets): the client re-attaches and is registered again, and the notifications
(confirmable) go on with no sequence number missing: what could not go out was stored and delivered. Loopback only, every wait bounded."""
import time

import pytest

from e2e_helpers import cli_args, ensure_mpy_tree, mpy_client  # noqa: F401 (a fixture)
import lwm2m_server as lws
from modem_emu import ModemEmulator

DIALECTS = ("sim7080", "bg95", "sara-r5", "nrf91")


@pytest.fixture
def server():
    with lws.ServerThread(request_timeout=10.0) as srv:
        yield srv


def wait_for(fn, timeout, what):
    deadline = time.monotonic() + timeout
    while True:
        v = fn()
        if v:
            return v
        assert time.monotonic() < deadline, what
        time.sleep(0.1)


@pytest.mark.parametrize("dialect", DIALECTS)
def test_register_read_notify_and_survive_faults(dialect, server, mpy_client):
    ep = "modem-" + dialect
    with ModemEmulator(dialect, attach_delay=0.2) as modem:
        proc = mpy_client(cli_args(server.uri, ep, "--modem", dialect, "--uart", modem.stream, "--apn", "iot.test",
                                   "--lifetime", 60, "--confirm", 1), heapsize="128k", tree=ensure_mpy_tree())
        server.wait_for("register", ep, timeout=30)
        r = server.read(ep, "/3/0/0", accept=lws.TEXT)
        assert r.code == "2.05" and r.value == "lwm2m_mpy", r
        server.write_attributes(ep, "/3/0/13", pmin=1, pmax=2)
        obs = server.observe(ep, "/3/0/13", accept=lws.TEXT)
        assert obs.first.code == "2.05"
        obs.wait(2, timeout=15)

        for fault in ("lost", "reset"):
            before = len(server.events_for(ep))
            modem.fault(fault)
            time.sleep(1.0)
            if fault == "lost":
                modem.fault("regained")
            # the client sees its sends fail, attaches again and is registered again (an Update or a
            # new Register, whichever the registration's state calls for)
            wait_for(lambda: len(server.events_for(ep)) > before and server.read(ep, "/3/0/0", accept=lws.TEXT,
                                                                                timeout=5).code == "2.05",
                     90, "%s: not back after %s: %s" % (dialect, fault, proc.output()[-3000:]))
            # the observation goes on: notifications confirmable (--confirm 1), so what could not be sent
            # while the network was gone was stored and delivered after it; no sequence number is missing
            n = len(obs.notifications)
            obs.wait(n + 2, timeout=30)
            seqs = [x.seq for x in obs.notifications]
            assert sorted(set(seqs)) == list(range(min(seqs), max(seqs) + 1)), (fault, obs.first_seq, seqs)
        assert "Traceback" not in proc.output(), proc.output()
        assert modem.bytes_in > 0 and modem.bytes_out > 0
