"""Firmware push end to end: the client (tests/apps/fota_app.py inside the real `micropython` binary: object 5
over fota/file_sink.py, the real package verifier) against tools/lwm2m_server.py, which writes a 256 KiB
package to /5/0/0 with aiocoap's Block1 (RFC 7959, 1024-byte blocks) while observing State (/5/0/3) and
Update Result (/5/0/5). Then Update: the device resets (the app ends), boots again (the app is started
again) and reports result 1 once registered. Everything on 127.0.0.1, every wait bounded.
"""
import hashlib
import os
import struct
import time

import pytest

from e2e_helpers import app_args, mpy_client  # noqa: F401 (a fixture)
import lwm2m_server as lws

EP = "e2e-fota"
REGISTER_TIMEOUT = 10


def package(payload, name="demo-app", version="1.2.3", kind=3):
    """A package of docs/fota.md (built here from the format, independently of the device's parser):
    magic, format 1, type, header length, payload length, SHA-256, name and version."""
    tail = bytes([len(name)]) + name.encode() + bytes([len(version)]) + version.encode()
    h = 4 + 1 + 1 + 2 + 4 + 32 + len(tail)
    return b"LWMP" + struct.pack(">BBHI", 1, kind, h, len(payload)) + hashlib.sha256(payload).digest() + tail + payload


@pytest.fixture
def server():
    with lws.ServerThread(request_timeout=30) as srv:
        yield srv


def start(mpy_client, server, folder):
    proc = mpy_client(app_args("fota_app.py", server.uri, EP, folder))
    event = server.wait_for("register", EP, timeout=REGISTER_TIMEOUT)
    proc.wait_line(r"lwm2m: registered /rd/%s$" % event.location, timeout=5)
    return proc


def values(observation):
    return [int(n.value) for n in observation.notifications]



def wait_values(observation, want, timeout=10):
    """Wait until the notified values end with `want`'s last one; returns them all."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = values(observation)
        if got and got[-1] == want[-1] and len(got) >= len(want):
            return got
        time.sleep(0.05)
    raise AssertionError("notified %r, waited for %r" % (values(observation), want))


def test_push_256k_with_block1_observed_in_order_then_update_reset_and_result(server, mpy_client, tmp_path):
    folder = tmp_path / "device"
    folder.mkdir()
    payload = os.urandom(256 * 1024)
    pkg = package(payload)
    proc = start(mpy_client, server, folder)
    state = server.observe(EP, "/5/0/3")
    result = server.observe(EP, "/5/0/5")
    assert (state.first.value, result.first.value) == ("0", "0")
    assert server.read(EP, "/5/0/9").value == "2"  # push and pull
    assert server.read(EP, "/5/0/8", accept=lws.TLV).value[8][0] == 0  # CoAP

    t = time.monotonic()
    done = server.write(EP, "/5/0/0", pkg, timeout=60)  # aiocoap splits it: Block1, szx 6, Size1
    took = time.monotonic() - t
    assert done.code == "2.04", done
    assert wait_values(state, [1, 2]) == [1, 2]
    assert values(result) == []  # 0 all along: nothing to notify
    with open(folder / "firmware.bin.part", "rb") as f:
        assert f.read() == payload  # the sink holds the payload, byte for byte
    assert (server.read(EP, "/5/0/6").value, server.read(EP, "/5/0/7").value) == ("demo-app", "1.2.3")
    assert proc.count(r"answer [45]\.") == 0 and "Traceback" not in proc.output()
    assert took < 30, "256 KiB in %.1f s" % took

    # Update: answered, Updating told, then the sink installs and resets the device
    assert server.execute(EP, "/5/0/2").code == "2.04"
    proc.wait_line(r"^APP reset$", timeout=10)
    assert proc.wait_exit(10) == 3
    assert 3 in values(state)
    with open(folder / "firmware.bin", "rb") as f:
        assert f.read() == payload
    assert os.path.exists(str(folder / "firmware.bin.new"))  # new, not confirmed yet

    # the new firmware boots, registers, then says it worked (and keeps it: the marker goes)
    proc = start(mpy_client, server, folder)
    deadline = time.monotonic() + 10
    while server.read(EP, "/5/0/5").value != "1":
        assert time.monotonic() < deadline, "no result 1"
        time.sleep(0.1)
    assert server.read(EP, "/5/0/3").value == "0"
    assert server.read(EP, "/5/0/6").value == "demo-app"
    assert not os.path.exists(str(folder / "firmware.bin.new"))
    proc.assert_clean()


def test_a_package_too_large_or_corrupt_is_refused_and_reported(server, mpy_client, tmp_path):
    folder = tmp_path / "device"
    folder.mkdir()
    proc = start(mpy_client, server, folder)
    result = server.observe(EP, "/5/0/5")
    bad = bytearray(package(os.urandom(4096)))
    bad[-1] ^= 1  # one bit of the payload: the SHA-256 no longer matches
    done = server.write(EP, "/5/0/0", bytes(bad))
    assert done.code == "4.00" and "result 5" in done.value
    assert wait_values(result, [5]) == [5]
    assert server.read(EP, "/5/0/3").value == "0"
    done = server.write(EP, "/5/0/0", package(os.urandom(4096), kind=1))  # an ESP32 image: not for a file sink
    assert done.code == "4.00" and "result 6" in done.value
    assert server.read(EP, "/5/0/5").value == "6"
    done = server.write(EP, "/5/0/0", package(b"fine" * 1024))  # and a good one still goes through
    assert done.code == "2.04" and server.read(EP, "/5/0/3").value == "2"
    assert "Traceback" not in proc.output()
