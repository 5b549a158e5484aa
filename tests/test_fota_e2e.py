"""Firmware update end to end through object 5, the client inside the real `micropython` binary:

- pull (Package URI, Block2) of a 1 MiB package from tools/package_server.py, made by tools/package.py:
  State and Update Result notified in order, Update, reset, result 1 after registering again;
- a pull killed mid-way resumes after the restart from where it was (the package server's log shows no
  block asked twice) and finishes;
- one corrupt byte: result 5, nothing applied; a package type the sink does not take: 6; an invalid URI: 7;
  the package server gone mid-download: 4;
- rollback: a staged application update (FOTA "files", fota/files_sink.py + fota/guard.py) whose new main.py
  raises at start is rolled back to the old files at the next boot, which reports result 8 once registered.

Loopback only; every wait bounded.
"""
import os
import subprocess
import sys
import time

import pytest

from e2e_helpers import ROOT, app_args, mpy_client  # noqa: F401 (a fixture)
import lwm2m_server as lws
from package_server import PackageServerThread

EP = "e2e-fota-pull"


@pytest.fixture
def server():
    with lws.ServerThread(request_timeout=30) as srv:
        yield srv


def make_package(tmp_path, name, payload_or_folder, kind="raw", version="2.0"):
    src = payload_or_folder
    if isinstance(payload_or_folder, bytes):
        src = tmp_path / (name + ".img")
        src.write_bytes(payload_or_folder)
    out = tmp_path / "packages" / name
    out.parent.mkdir(exist_ok=True)
    r = subprocess.run([sys.executable, str(ROOT / "tools" / "package.py"), "--type", kind, "--name", name,
                        "--version", version, "-o", str(out), str(src)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return out


def start(mpy_client, server, folder, ep=EP):
    proc = mpy_client(app_args("fota_app.py", server.uri, ep, folder))
    event = server.wait_for("register", ep, timeout=10)
    proc.wait_line(r"lwm2m: registered /rd/%s$" % event.location, timeout=5)
    return proc


def wait_value(server, path, want, timeout=30, ep=EP):
    deadline = time.monotonic() + timeout
    while True:
        v = server.read(ep, path).value
        if v == want:
            return
        assert time.monotonic() < deadline, "%s is %s, waited for %s" % (path, v, want)
        time.sleep(0.1)


def test_pull_1mib_notified_in_order_update_and_result(server, mpy_client, tmp_path):
    payload = os.urandom(1024 * 1024)
    pkg = make_package(tmp_path, "fw.bin", payload)
    folder = tmp_path / "device"
    folder.mkdir()
    with PackageServerThread(str(tmp_path / "packages")) as packages:
        proc = start(mpy_client, server, folder)
        state = server.observe(EP, "/5/0/3")
        result = server.observe(EP, "/5/0/5")
        assert server.write(EP, "/5/0/1", packages.uri_for("fw.bin")).code == "2.04"
        wait_value(server, "/5/0/3", "2", timeout=60)
        assert [n.value for n in state.notifications] == ["1", "2"]
        assert [n.value for n in result.notifications] == []  # 0 all along
        assert server.read(EP, "/5/0/6").value == "fw.bin" and server.read(EP, "/5/0/7").value == "2.0"
        blocks = packages.blocks()
        n = -(-pkg.stat().st_size // 1024)  # header + 1 MiB in 1 KiB blocks
        assert sorted(blocks) == list(range(n)), blocks[:8]  # each block once
        assert proc.count(r"lwm2m: .*\b100 ?%") >= 1, proc.output()[-2000:]  # progress in the log
    assert (folder / "firmware.bin.part").read_bytes() == payload
    assert server.execute(EP, "/5/0/2").code == "2.04"
    proc.wait_line(r"^APP reset$", timeout=10)
    assert [n.value for n in state.notifications][-1] == "3"
    proc = start(mpy_client, server, folder)
    wait_value(server, "/5/0/5", "1")
    assert server.read(EP, "/5/0/3").value == "0"
    assert (folder / "firmware.bin").read_bytes() == payload
    proc.assert_clean()


def test_a_pull_killed_mid_way_resumes_after_the_restart(server, mpy_client, tmp_path):
    payload = os.urandom(512 * 1024)
    pkg = make_package(tmp_path, "fw.bin", payload)
    folder = tmp_path / "device"
    folder.mkdir()
    with PackageServerThread(str(tmp_path / "packages"), delay=0.004) as packages:
        proc = start(mpy_client, server, folder)
        assert server.write(EP, "/5/0/1", packages.uri_for("fw.bin")).code == "2.04"
        deadline = time.monotonic() + 30
        while len(packages.blocks()) < 200:  # well past the first saved resume point (every 16 KiB)
            assert time.monotonic() < deadline
            time.sleep(0.05)
        proc.kill()  # the power goes
        first = set(packages.blocks())
        proc = start(mpy_client, server, folder)  # boots: object 5 says Downloading and carries on
        wait_value(server, "/5/0/3", "2", timeout=60)
        second = packages.blocks()[len(first):]
    assert min(second) > 16, "started over: %s" % second[:8]  # resumed from a saved point, not from 0
    assert set(range(-(-pkg.stat().st_size // 1024))) == first | set(second)
    assert (folder / "firmware.bin.part").read_bytes() == payload
    assert server.read(EP, "/5/0/5").value == "0"
    proc.assert_clean()


def test_corrupt_wrong_type_invalid_uri_and_server_gone(server, mpy_client, tmp_path):
    folder = tmp_path / "device"
    folder.mkdir()
    good = make_package(tmp_path, "fw.bin", os.urandom(64 * 1024))
    bad = bytearray(good.read_bytes())
    bad[-100] ^= 0x40  # one byte of the payload
    (tmp_path / "packages" / "corrupt.bin").write_bytes(bytes(bad))
    wrong = bytearray(good.read_bytes())
    wrong[5] = 1  # type 1, an ESP32 image: not for a file sink
    (tmp_path / "packages" / "wrong.bin").write_bytes(bytes(wrong))
    make_package(tmp_path, "big.bin", os.urandom(1024 * 1024))
    with PackageServerThread(str(tmp_path / "packages"), delay=0.002) as packages:
        proc = start(mpy_client, server, folder)
        result = server.observe(EP, "/5/0/5")
        for name, want in (("corrupt.bin", "5"), ("wrong.bin", "6")):
            assert server.write(EP, "/5/0/1", packages.uri_for(name)).code == "2.04"
            wait_value(server, "/5/0/5", want)
            assert server.read(EP, "/5/0/3").value == "0"  # back to Idle, nothing to update
            assert server.execute(EP, "/5/0/2").code == "4.05"
        assert not (folder / "firmware.bin").exists()  # nothing applied
        assert server.write(EP, "/5/0/1", "coap://[not-an-address/fw.bin").code == "2.04"
        wait_value(server, "/5/0/5", "7")
        assert server.write(EP, "/5/0/1", packages.uri_for("big.bin")).code == "2.04"
        deadline = time.monotonic() + 30
        while len(packages.blocks("big.bin")) < 50:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        packages.stop()  # the package server goes away mid-download
        wait_value(server, "/5/0/5", "4", timeout=120)
        assert server.read(EP, "/5/0/3").value == "0"
        # each failure notified, in order (a new download sets the result back to 0 first)
        assert [n.value for n in result.notifications if n.value != "0"] == ["5", "6", "7", "4"]
    assert "Traceback" not in proc.output()


OLD_MAIN = '''
from lwm2m_mpy import Client
from lwm2m_mpy.board import drive
from lwm2m_mpy.fota.files_sink import Sink
from lwm2m_mpy.objects import firmware
import sys

print("APP old")


def reset():
    print("APP reset")
    sys.exit(3)


client = Client(ENDPOINT, URI, log=lambda msg: print("lwm2m:", msg))
fw = firmware.make(client, 5, 0, Sink({"root": ROOT}, reset), {"file": ROOT + "/fota.json"})
drive(client, [fw])
client.run()
'''

NEW_MAIN = '''
print("APP new")
raise RuntimeError("the new code is broken")
'''


def test_rollback_of_an_application_update_whose_new_code_raises(server, mpy_client, tmp_path):
    ep = "e2e-fota-rollback"
    root = tmp_path / "board"
    root.mkdir()
    (root / "main.py").write_text(OLD_MAIN)
    new = tmp_path / "new_app"
    new.mkdir()
    (new / "main.py").write_text(NEW_MAIN)
    pkg = make_package(tmp_path, "app.pkg", new, kind="files", version="2")

    def boot():
        return mpy_client(app_args("fota_boot.py", root, server.uri, ep))

    proc = boot()
    server.wait_for("register", ep, timeout=10)
    proc.wait_line(r"lwm2m: registered", timeout=5)
    assert server.write(ep, "/5/0/0", pkg.read_bytes(), timeout=60).code == "2.04"  # pushed, Block1
    assert server.read(ep, "/5/0/3").value == "2"
    assert server.execute(ep, "/5/0/2").code == "2.04"
    proc.wait_line(r"^APP reset$", timeout=10)  # staged; the board resets

    proc = boot()  # the guard swaps the new files in; the new main.py raises at start
    proc.wait_line(r"^APP new$", timeout=10)
    proc.wait_exit(10)
    assert "the new code is broken" in proc.output()

    proc = boot()  # next reset: not confirmed, so the old files come back
    proc.wait_line(r"^APP old$", timeout=10)
    server.wait_for("register", ep, timeout=10)
    wait_value(server, "/5/0/5", "8", ep=ep)  # reported once registered
    assert server.read(ep, "/5/0/3").value == "0"
    assert (root / "main.py").read_text() == OLD_MAIN
