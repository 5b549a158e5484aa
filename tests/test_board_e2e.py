"""Board profiles end to end against the host server (tools/lwm2m_server.py), loopback only, bounded:

- `unix` (the default of `make run`): the compiled tree in the real `micropython` binary, `--board unix`,
  registers its IPSO objects; 3303 Temperature, 3311 Light Control and 3347 Push Button serve values that
  change and notify; a Write drives the simulated lamp.
- `blinka`: the same CLI under CPython with Adafruit Blinka's simulated board (BLINKA_OS_AGNOSTIC=1):
  the toggling digital input notifies, a Write of the digital output changes the simulated pin (read back
  from the pin, through digitalio).
"""
import os
import sys
import time

import pytest

from e2e_helpers import ROOT, ClientProcess, cli_args, ensure_mpy_tree, mpy_client  # noqa: F401 (fixture)
import lwm2m_server as lws

REGISTER_TIMEOUT = 15


@pytest.fixture
def server():
    with lws.ServerThread(request_timeout=5.0) as srv:
        yield srv


def object_paths(server, ep):
    return {path for path, _ in server.registration(ep).links}


def test_unix_profile_registers_and_its_objects_change_and_notify(server, mpy_client):
    ep = "board-unix"
    proc = mpy_client(cli_args(server.uri, ep, "--board", "unix"), heapsize="160k", tree=ensure_mpy_tree())
    server.wait_for("register", ep, timeout=REGISTER_TIMEOUT)
    paths = object_paths(server, ep)
    for p in ("/3303/0", "/3304/0", "/3315/0", "/3301/0", "/3347/0", "/3201/0", "/3311/0", "/4/0"):
        assert p in paths, (p, paths)
    # /6/0 Location appears with the GNSS's first fix (a second or so of NMEA): an Update tells the server
    deadline = time.monotonic() + 10
    while "/6/0" not in object_paths(server, ep) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert "/6/0" in object_paths(server, ep)

    # 3303: a live value inside the measured min/max, its unit
    t = server.read(ep, "/3303/0", accept=lws.TLV)
    assert t.code == "2.05", t
    v = t.value
    assert v[5701] == "Cel" and v[5601] <= v[5700] <= v[5602] and 15 < v[5700] < 30, v

    # It changes (the simulated room warms and cools): notifications with values that differ
    server.write_attributes(ep, "/3303/0/5700", pmin=1, pmax=2)
    temp = server.observe(ep, "/3303/0/5700", accept=lws.TEXT)
    assert temp.first.code == "2.05"
    got = temp.wait(3, timeout=15)
    assert len({float(n.value) for n in got[:3]}) >= 2, got

    # 3347: the simulated button is pressed every 7 s; the counter notifies and grows
    button = server.observe(ep, "/3347/0/5501", accept=lws.TEXT)
    first = int(button.first.value)
    got = button.wait(1, timeout=20)
    assert int(got[0].value) > first, got

    # 3311: a Write switches the simulated lamp on (the sim prints it) at half brightness; its On Time counts
    assert server.write(ep, "/3311/0/5851", 50, fmt=lws.TEXT).code == "2.04"
    assert server.write(ep, "/3311/0/5850", True, fmt=lws.TEXT).code == "2.04"
    proc.wait_line(r"sim: lamp on", timeout=5)
    lamp = server.read(ep, "/3311/0", accept=lws.TLV).value
    assert lamp[5850] is True and lamp[5851] == 50, lamp
    server.write_attributes(ep, "/3311/0/5852", pmin=1, pmax=2)
    on_time = server.observe(ep, "/3311/0/5852", accept=lws.TEXT)
    got = on_time.wait(2, timeout=10)
    assert int(got[-1].value) > int(on_time.first.value), got
    # Out of range: 4.00, nothing changed
    assert server.write(ep, "/3311/0/5851", 150, fmt=lws.TEXT).code == "4.00"
    assert server.read(ep, "/3311/0/5851", accept=lws.TEXT).value in ("50", 50)

    # 6 Location from the simulated GNSS (through the NMEA parser), 4 Connectivity Monitoring
    loc = server.read(ep, "/6/0", accept=lws.TLV).value
    assert abs(loc[0] - 48.8584) < 0.1 and abs(loc[1] - 2.2945) < 0.1, loc
    conn = server.read(ep, "/4/0", accept=lws.TLV)
    assert conn.code == "2.05" and 0 in conn.value and 4 in conn.value, conn

    proc.assert_clean()


def test_blinka_profile_under_cpython(server, tmp_path):
    """`python -m lwm2m_mpy --board blinka`: the CLI of the unix port, under CPython with Blinka."""
    ep = "board-blinka"
    env = dict(os.environ, BLINKA_OS_AGNOSTIC="1", PYTHONPATH=str(ROOT))
    cmd = [sys.executable, "-m", "lwm2m_mpy"] + cli_args(server.uri, ep, "--board", "blinka", "--seconds", 60)[2:]
    proc = ClientProcess(cmd, env, ROOT)
    try:
        server.wait_for("register", ep, timeout=REGISTER_TIMEOUT)
        paths = object_paths(server, ep)
        assert {"/3200/0", "/3201/0", "/3202/0", "/4/0"} <= paths, paths

        # the simulated input toggles at every read: sampled every second, each sample is a change
        server.write_attributes(ep, "/3200/0/5500", pmin=0, pmax=30)
        switch = server.observe(ep, "/3200/0/5500", accept=lws.TEXT)
        got = switch.wait(2, timeout=10)
        states = [switch.first.value] + [n.value for n in got]
        assert len(set(states)) == 2, states

        # the digital output: a Write sets the simulated pin, a Read reads the pin back
        for state in (True, False, True):
            assert server.write(ep, "/3201/0/5550", state, fmt=lws.TEXT).code == "2.04"
            assert server.read(ep, "/3201/0/5550", accept=lws.TEXT).value in (str(int(state)), state)

        # the analog input follows Blinka's sine wave
        knob = [server.read(ep, "/3202/0/5600", accept=lws.TEXT).value for _ in range(3)]
        assert all(0.0 <= float(k) <= 3.3 for k in knob), knob
    finally:
        proc.proc.send_signal(2)  # SIGINT: de-registers
        try:
            proc.proc.wait(10)
        finally:
            proc.kill()
    out = proc.output()
    assert "Traceback" not in out, out
    assert "deregistered" in out, out
