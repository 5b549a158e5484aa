"""Firmware-update sinks (lwm2m_mpy/fota/*_sink.py, docs/fota.md) behind the package verifier: the file
sink (round trip, resume, apply/confirm/pending), the ESP32 sink against a fake esp32.Partition that
records every call (tests/fakes/esp32.py), and the files sink with fota/guard.py on a scratch folder:
stage, apply, swap at boot, confirm, and the rollback of an update whose new code never confirmed --
also end to end, booting a scratch root twice in micropython subprocesses.
Runs under CPython and inside micropython (the subprocess test: CPython only)."""
import hashlib
import os
import struct
import sys

import lwm2m_mpy  # noqa: F401  (CPython: the micropython.const shim)
from lwm2m_mpy.fota import esp32_sink, file_sink, files_sink, guard
from lwm2m_mpy.fota.package import FotaError, Package

MPY = True
MPY_HEAP = "512k"  # two fake 32 KiB partitions beside the tests
MPY_SKIP = ("test_rollback_end_to_end_in_micropython",)

from test_drivers import _load  # noqa: E402  (tests/fakes, loaded as tests/test_drivers.py does)

esp32 = _load("esp32")


def package(payload, kind, name="app", version="1.0"):
    n = name.encode("utf-8")
    v = version.encode("utf-8")
    h = 46 + len(n) + len(v)
    return (b"LWMP" + struct.pack(">BBHI", 1, kind, h, len(payload)) + hashlib.sha256(payload).digest()
            + bytes([len(n)]) + n + bytes([len(v)]) + v + payload)


def archive(files):
    out = b""
    for name, data in files:
        b = name.encode("utf-8")
        out += bytes([len(b)]) + b + struct.pack(">I", len(data)) + data
    return out


def payload_of(n, first=None):
    data = bytes((i * 13 + 5) & 0xFF for i in range(n))
    return data if first is None else bytes([first]) + data[1:]


def feed(pkg, data, chunk=1000):
    for i in range(0, len(data), chunk):
        pkg.write(data[i:i + chunk])


def scratch():
    path = "/tmp/lwm2m_fota_%s" % "".join("%02x" % b for b in os.urandom(6))
    os.mkdir(path)
    return path


def read(path):
    with open(path, "rb") as f:
        return f.read()


def put(path, data):
    guard.makedirs(path)
    with open(path, "wb") as f:
        f.write(data)


def exists(path):
    try:
        os.stat(path)
    except OSError:
        return False
    return True


def result(fn, *args):
    try:
        fn(*args)
    except FotaError as e:
        return e.result
    raise AssertionError("no FotaError")


class Restarts:
    def __init__(self):
        self.n = 0

    def __call__(self):
        self.n += 1


# --- file sink --------------------------------------------------------------------------------------

def test_file_sink_round_trip_apply_confirm():
    top = scratch()
    try:
        restart = Restarts()
        path = top + "/firmware.bin"
        sink = file_sink.Sink({"file": path}, restart)
        assert sink.types == (3,) and sink.pending() is None
        data = payload_of(5000)
        pkg = Package(sink)
        feed(pkg, package(data, 3))
        pkg.finish()
        assert read(path + ".part") == data and not exists(path) and exists(path + ".head")
        put(path, b"the old firmware")
        sink.apply()
        assert read(path) == data and not exists(path + ".part") and not exists(path + ".head")
        assert restart.n == 1 and sink.pending() == "new"
        after = file_sink.Sink({"file": path})  # the restarted program's sink
        assert after.pending() == "new"
        after.confirm()
        assert after.pending() is None and read(path) == data
    finally:
        guard.rmtree(top)


def test_file_sink_refuses_other_types_and_nothing_to_apply():
    top = scratch()
    try:
        sink = file_sink.Sink({"file": top + "/fw.bin"})
        assert result(Package(sink).write, package(b"x", 2)) == 6
        two = file_sink.Sink({"file": top + "/fw.bin", "types": (2, 3)})
        pkg = Package(two)
        pkg.write(package(b"files", 2))
        pkg.finish()
        assert read(top + "/fw.bin.part") == b"files"
        assert result(file_sink.Sink({"file": top + "/none.bin"}).apply) == 8
    finally:
        guard.rmtree(top)


def test_file_sink_resume_after_a_reboot():
    top = scratch()
    try:
        path = top + "/fw.bin"
        data = payload_of(9000)
        p = package(data, 3)
        sink = file_sink.Sink({"file": path})
        first = Package(sink)
        feed(first, p[:6000], 700)
        sink.finish()  # what the file system kept at the reset (a board may keep less: next case)
        again = file_sink.Sink({"file": path})
        pkg = Package(again)
        at = pkg.resume(first.offset)
        assert at == 6000 and pkg.name == "app"
        feed(pkg, p[at:], 512)
        pkg.finish()
        assert read(path + ".part") == data
        # the file lost its last bytes in the reset: the download goes on from what it holds
        put(path + ".part", data[:2500])
        pkg = Package(file_sink.Sink({"file": path}))
        at = pkg.resume(6000)
        assert at == 2500 + len(p) - len(data)
        feed(pkg, p[at:])
        pkg.finish()
        assert read(path + ".part") == data
    finally:
        guard.rmtree(top)


# --- ESP32 OTA sink against the fake esp32.Partition ----------------------------------------------

def _image(n):
    return payload_of(n, 0xE9)  # an ESP-IDF image starts with 0xE9


def test_esp32_sink_writes_sector_by_sector_and_boots_on_apply():
    esp32.ota_reset(blocks=8)
    top = scratch()
    try:
        restart = Restarts()
        sink = esp32_sink.Sink({"file": top + "/ota"}, restart, esp32)
        assert sink.types == (1,) and sink.pending() is None
        image = _image(10000)  # two whole sectors and 1808 bytes
        pkg = Package(sink)
        feed(pkg, package(image, 1), 1000)
        assert esp32.calls == [("get_next_update", "ota_0"), ("writeblocks", "ota_1", 0, 4096),
                               ("writeblocks", "ota_1", 1, 4096)]
        pkg.finish()
        assert esp32.calls[3:] == [("writeblocks", "ota_1", 2, 4096)]
        flash = esp32.flash["ota_1"]
        assert bytes(flash[:10000]) == image and bytes(flash[10000:12288]) == b"\xff" * 2288
        sink.apply()
        assert esp32.calls[4:] == [("set_boot", "ota_1")] and restart.n == 1
        # the reset: the bootloader starts ota_1, pending verify; the new program's sink says "new"
        esp32.ota_restart()
        after = esp32_sink.Sink({"file": top + "/ota"}, None, esp32)
        assert after.pending() == "new"
        assert ("mark_app_valid_cancel_rollback",) not in esp32.calls  # only object 5's confirm does that
        after.confirm()  # registered again with the new image
        assert esp32.calls[-1] == ("mark_app_valid_cancel_rollback",) and after.pending() is None
        esp32.ota_restart()
        assert esp32.ota["running"] == "ota_1"
    finally:
        guard.rmtree(top)


def test_esp32_sink_rollback_is_reported():
    esp32.ota_reset(blocks=8)
    top = scratch()
    try:
        sink = esp32_sink.Sink({"file": top + "/ota"}, Restarts(), esp32)
        pkg = Package(sink)
        pkg.write(package(_image(5000), 1))
        pkg.finish()
        sink.apply()
        esp32.ota_restart()  # the new image starts ... and crashes before registering: reset again
        esp32.ota_restart()
        assert esp32.ota["running"] == "ota_0"
        after = esp32_sink.Sink({"file": top + "/ota"}, None, esp32)
        assert after.pending() == "rolled back"
        after.confirm()  # the report is out: forget it (no mark_app_valid for the old image)
        assert after.pending() is None and ("mark_app_valid_cancel_rollback",) not in esp32.calls
    finally:
        guard.rmtree(top)


def test_esp32_sink_refusals():
    esp32.ota_reset(blocks=8)
    top = scratch()
    try:
        sink = esp32_sink.Sink({"file": top + "/ota"}, None, esp32)
        # larger than the partition (8 x 4 KiB): 2 at header time, nothing written
        assert result(Package(sink).write, package(_image(8 * 4096 + 1), 1)[:100]) == 2
        assert esp32.calls == [("get_next_update", "ota_0")]
        # not an application image: 5 when the first sector is complete, before it is written
        pkg = Package(sink)
        assert result(feed, pkg, package(payload_of(6000, 0x00), 1)) == 5
        assert [c for c in esp32.calls if c[0] == "writeblocks"] == []
        # other package types
        assert result(Package(sink).write, package(b"x", 3)) == 6
        # a sector that did not keep what was written: the read-back after the last one fails
        image = _image(9000)
        p = package(image, 1)
        pkg = Package(sink)
        feed(pkg, p[:-100])
        esp32.flash["ota_1"][5000] ^= 0xFF
        pkg.write(p[-100:])
        assert result(pkg.finish) == 5
    finally:
        guard.rmtree(top)


def test_esp32_sink_resume_and_a_build_without_rollback():
    esp32.ota_reset(blocks=8)
    top = scratch()
    try:
        cfg = {"file": top + "/ota"}
        image = _image(20000)
        p = package(image, 1)
        first = Package(esp32_sink.Sink(cfg, None, esp32))
        feed(first, p[:11000], 1024)  # two sectors in flash, the third in RAM when the power goes
        pkg = Package(esp32_sink.Sink(cfg, None, esp32))
        at = pkg.resume(first.offset)
        h = len(p) - len(image)
        assert at == h + 8192
        feed(pkg, p[at:], 1024)
        pkg.finish()
        assert bytes(esp32.flash["ota_1"][:20000]) == image
        pkg.sink.apply()
        esp32.ota["rollback"] = False  # firmware without CONFIG_BOOTLOADER_APP_ROLLBACK_ENABLE
        esp32.ota_restart()
        after = esp32_sink.Sink(cfg, None, esp32)
        assert after.pending() == "new"
        after.confirm()  # mark_app_valid raises OSError(-261) there: nothing to cancel, no error
        assert after.pending() is None and esp32.calls[-1] == ("mark_app_valid_cancel_rollback",)
    finally:
        guard.rmtree(top)


# --- files sink and guard ----------------------------------------------------------------------------

_OLD = (("main.py", b"print('old')\n"), ("lib/a.py", b"A = 1\n"), ("lib/keep.py", b"K = 1\n"))
_NEW = (("main.py", b"print('new')\n"), ("lib/a.py", b"A = 2\n"), ("lib/b/c.py", b"C = 3\n"))


def _board():
    top = scratch()
    for name, data in _OLD:
        put(top + "/" + name, data)
    return top


def _stage(top, files=_NEW, chunk=7):
    restart = Restarts()
    sink = files_sink.Sink({"root": top}, restart)
    pkg = Package(sink)
    feed(pkg, package(archive(files), 2), chunk)
    pkg.finish()
    return sink, restart


def test_files_sink_stage_apply_boot_confirm():
    top = _board()
    try:
        sink, restart = _stage(top)
        for name, data in _NEW:
            assert read(top + "/.fota/new/" + name) == data
        assert read(top + "/main.py") == b"print('old')\n" and sink.pending() is None
        sink.apply()
        assert restart.n == 1 and exists(top + "/.fota/pending") and not exists(top + "/.fota/head")
        assert guard.boot(top) == "new"  # boot.py of the next start
        for name, data in _NEW:
            assert read(top + "/" + name) == data
        assert read(top + "/lib/keep.py") == b"K = 1\n"
        assert read(top + "/.fota/old/main.py") == b"print('old')\n" and read(top + "/.fota/old/lib/a.py") == b"A = 1\n"
        assert not exists(top + "/.fota/new") and not exists(top + "/.fota/pending")
        after = files_sink.Sink({"root": top})
        assert after.pending() == "new"
        after.confirm()  # registered again: keep the new files
        assert after.pending() is None and not exists(top + "/.fota/old")
        assert guard.boot(top) is None and read(top + "/main.py") == b"print('new')\n"
    finally:
        guard.rmtree(top)


def test_files_sink_rollback_when_the_new_code_never_confirms():
    top = _board()
    try:
        sink, _ = _stage(top)
        sink.apply()
        assert guard.boot(top) == "new"
        # the new main.py raises at start: no registration, no confirm; the next boot puts the old back
        assert guard.boot(top) == "rolled back"
        for name, data in _OLD:
            assert read(top + "/" + name) == data
        assert not exists(top + "/lib/b/c.py") and not exists(top + "/lib/b")  # what the update added
        assert not exists(top + "/.fota/old") and not exists(top + "/.fota/trial")
        after = files_sink.Sink({"root": top})
        assert after.pending() == "rolled back"  # object 5 reports result 8 once registered
        assert guard.boot(top) is None and after.pending() == "rolled back"  # until reported
        after.confirm()
        assert after.pending() is None
    finally:
        guard.rmtree(top)


def test_files_sink_a_reset_during_the_swap_is_finished_at_the_next_boot():
    top = _board()
    real = guard._move
    moves = []

    def power_cut(src, dst):
        if len(moves) == 3:
            raise OSError(5)  # the power goes in the middle of the swap
        moves.append(dst)
        real(src, dst)

    try:
        sink, _ = _stage(top)
        sink.apply()
        guard._move = power_cut
        try:
            guard.boot(top)
            raise AssertionError("the cut did not happen")
        except OSError:
            pass
        guard._move = real
        assert guard.boot(top) == "new"
        for name, data in _NEW:
            assert read(top + "/" + name) == data
        assert read(top + "/.fota/old/main.py") == b"print('old')\n"
        assert guard.boot(top) == "rolled back"  # and the list still knows what to undo
        for name, data in _OLD:
            assert read(top + "/" + name) == data
        assert not exists(top + "/lib/b/c.py")
    finally:
        guard._move = real
        guard.rmtree(top)


def test_files_sink_refuses_unsafe_names_and_cut_records():
    top = _board()
    try:
        for bad in ("../evil.py", "/main.py", "lib//a.py", "lib/./a.py", ".fota/pending", "lib\\a.py", "", "a/.."):
            sink = files_sink.Sink({"root": top})
            assert result(Package(sink).write, package(archive(((bad, b"x"),)), 2)) == 5, bad
        assert not exists(top + "/evil.py") and not exists(top + "/../evil.py")
        # the archive ends inside a record although the package's length and digest are right
        sink = files_sink.Sink({"root": top})
        pkg = Package(sink)
        pkg.write(package(archive(_NEW)[:-3], 2))
        assert result(pkg.finish) == 5
        assert result(Package(sink).write, package(b"x", 1)) == 6
        assert result(files_sink.Sink({"root": top + "/nowhere"}).apply) == 8
        # a resume starts the archive over (its files cannot be read back in stream order)
        p = package(archive(_NEW), 2)
        sink = files_sink.Sink({"root": top})
        Package(sink).write(p[:70])
        pkg = Package(files_sink.Sink({"root": top}))
        h = len(p) - len(archive(_NEW))
        assert pkg.resume(70) == h
        pkg.write(p[h:])
        pkg.finish()
        assert read(top + "/.fota/new/lib/b/c.py") == b"C = 3\n"
    finally:
        guard.rmtree(top)


def test_files_sink_empty_files_and_a_new_download_replaces_a_staged_one():
    top = _board()
    try:
        sink, _ = _stage(top, (("empty.txt", b""), ("x/y.py", b"Y")), chunk=1)
        assert read(top + "/.fota/new/empty.txt") == b""
        sink, _ = _stage(top, (("z.py", b"Z"),))
        assert not exists(top + "/.fota/new/x") and read(top + "/.fota/new/z.py") == b"Z"
    finally:
        guard.rmtree(top)


class _Timer:
    """rp2's soft machine.Timer, as far as guard.boot() uses it for the trial's deadline."""
    ONE_SHOT = 0

    def __init__(self, id, mode=None, period=None, callback=None):
        self.period = period
        self.callback = callback
        self.live = True
        _Machine.timers.append(self)

    def deinit(self):
        self.live = False


class _Machine:
    Timer = _Timer
    timers = []
    resets = 0

    @staticmethod
    def reset():
        _Machine.resets += 1


def test_guard_deadline_resets_a_trial_that_does_not_confirm():
    top = _board()
    fake = _Machine
    del fake.timers[:]
    fake.resets = 0
    saved = sys.modules.get("machine")
    sys.modules["machine"] = fake
    try:
        sink, _ = _stage(top)
        sink.apply()
        assert guard.boot(top, deadline=300) == "new"
        timer = fake.timers[0]
        assert timer.period == 300000
        timer.callback(timer)  # 5 minutes without a confirm: reset, and the next boot rolls back
        assert fake.resets == 1
        assert guard.boot(top) == "rolled back"
        sink, _ = _stage(top)
        sink.apply()
        assert guard.boot(top) == "new"
        timer = fake.timers[1]
        files_sink.Sink({"root": top}).confirm()  # registered in time
        assert not timer.live
        timer.callback(timer)  # even a timer confirm() could not reach does nothing now
        assert fake.resets == 1
        assert guard.boot(top, deadline=0) is None and len(fake.timers) == 2
    finally:
        if saved is None:
            sys.modules.pop("machine", None)
        else:
            sys.modules["machine"] = saved
        guard.rmtree(top)


def test_guard_without_an_update_does_nothing():
    top = _board()
    try:
        assert guard.boot(top) is None and guard.pending(top) is None
        guard.confirm(top)
        assert read(top + "/main.py") == b"print('old')\n"
    finally:
        guard.rmtree(top)


# --- end to end: boot.py (guard) then main.py, twice, in micropython -------------------------------

_BOOT = """import sys
sys.path.insert(0, %r)
from lwm2m_mpy.fota import guard
print("boot:", guard.boot(%r))
"""

_START = """# the board's start-up: boot.py, then main.py (read after boot.py has run)
import sys
for name in ("boot.py", "main.py"):
    with open(%r + "/" + name) as f:
        exec(f.read())
"""


def test_rollback_end_to_end_in_micropython(tmp_path):
    import subprocess

    import conftest

    top = str(tmp_path / "board")
    os.mkdir(top)
    put(top + "/main.py", b"print('old')\n")
    put(top + "/boot.py", (_BOOT % (str(conftest.ROOT), top)).encode())
    new_main = b"raise RuntimeError('the new code fails at start')\n"
    sink, _ = _stage(top, (("main.py", new_main),))
    sink.apply()
    start = tmp_path / "start.py"
    start.write_text(_START % top)

    def run():
        return subprocess.run([conftest.micropython_path(), "-X", "heapsize=128k", str(start)], capture_output=True,
                              text=True, timeout=60, env=conftest.micropython_env(), cwd=str(tmp_path))

    first = run()
    assert first.returncode == 1 and "boot: new" in first.stdout, first.stdout + first.stderr
    assert "the new code fails at start" in first.stdout + first.stderr and read(top + "/main.py") == new_main
    second = run()
    assert second.returncode == 0, second.stdout + second.stderr
    assert second.stdout.split("\n")[:2] == ["boot: rolled back", "old"], second.stdout
    assert files_sink.Sink({"root": top}).pending() == "rolled back"  # object 5: result 8 after registering
    third = run()
    assert third.stdout.split("\n")[:2] == ["boot: None", "old"], third.stdout
