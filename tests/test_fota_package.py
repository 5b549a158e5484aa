"""The firmware package verifier (lwm2m_mpy/fota/package.py, docs/fota.md): the header parsed across any
chunk split, refusals at header time (type 6, foreign format 6, corrupt header 5), length and SHA-256
checked before the sink is finished (5), a resume that rebuilds the hash from what the sink holds, and
tools/package.py's output read by the library (made by CPython, verified by CPython and micropython).
Runs under CPython and inside micropython."""
import hashlib
import struct

import lwm2m_mpy  # noqa: F401  (CPython: the micropython.const shim)
from lwm2m_mpy.fota.package import FotaError, Package

MPY = True
MPY_SKIP = ("test_tool_output_is_read_by_the_library_in_cpython_and_micropython", "test_tool_info_and_refusals")


def package(payload, kind=3, name="app", version="1.0"):
    """A package as docs/fota.md lays it out (written here independently of tools/package.py)."""
    n = name.encode("utf-8")
    v = version.encode("utf-8")
    h = 46 + len(n) + len(v)
    return (b"LWMP" + struct.pack(">BBHI", 1, kind, h, len(payload)) + hashlib.sha256(payload).digest()
            + bytes([len(n)]) + n + bytes([len(v)]) + v + payload)


def payload_of(n):
    return bytes((i * 7 + 3) & 0xFF for i in range(n))


class Memory:
    """A sink in RAM with the library sinks' extras (header copy, begin(size, at))."""
    types = (3,)

    def __init__(self, types=(3,)):
        self.types = types
        self.data = bytearray()
        self.began = []
        self.finished = False
        self.head = None
        self.views = True  # every write was a memoryview (no copies on the way)

    def begin(self, size, at=0):
        self.began.append((size, at))
        self.data = self.data[:at]
        return at

    def write(self, mv):
        self.views = self.views and isinstance(mv, memoryview)
        self.data += bytes(mv)

    def read(self, offset, buf):
        n = max(0, min(len(buf), len(self.data) - offset))
        buf[0:n] = self.data[offset:offset + n]
        return n

    def finish(self):
        self.finished = True

    def header(self, data=None):
        if data is None:
            return self.head
        self.head = bytes(data)


class Plain:
    """Only the documented sink interface: no header copy, begin(size)."""
    types = (3,)

    def __init__(self):
        self.data = bytearray()
        self.finished = False

    def begin(self, size):
        self.data = bytearray()

    def write(self, mv):
        self.data += bytes(mv)

    def read(self, offset, buf):
        return 0

    def finish(self):
        self.finished = True


def _result(fn, *args):
    try:
        fn(*args)
    except FotaError as e:
        return e.result
    raise AssertionError("no FotaError")


def test_fota_error_carries_the_update_result():
    e = FotaError(6)
    assert e.result == 6 and e.args[0] == 6 and isinstance(e, Exception)


def test_header_split_anywhere():
    data = payload_of(300)
    p = package(data, name="sensor-app", version="2.3.1")
    h = len(p) - len(data)
    for cut in range(0, len(p) + 1):
        sink = Memory()
        pkg = Package(sink)
        pkg.write(p[:cut])
        if cut < h:
            assert pkg.size is None and pkg.offset == cut and not sink.began
        pkg.write(memoryview(p)[cut:])
        pkg.finish()
        assert sink.finished and bytes(sink.data) == data and sink.views
        assert sink.began == [(300, 0)] and sink.head == p[:h]
        assert (pkg.name, pkg.version, pkg.type, pkg.size, pkg.offset) == ("sensor-app", "2.3.1", 3, len(p), len(p))


def test_byte_by_byte_and_three_pieces():
    data = payload_of(1000)
    p = package(data, name="", version="")
    sink = Memory()
    pkg = Package(sink)
    for i in range(len(p)):
        pkg.write(p[i:i + 1])
    pkg.finish()
    assert bytes(sink.data) == data and pkg.name == "" and pkg.version == ""
    for a, b in ((3, 46), (8, 47), (45, 600), (46, 47)):
        sink = Memory()
        pkg = Package(sink)
        pkg.write(p[:a])
        pkg.write(bytearray(p[a:b]))
        pkg.write(p[b:])
        pkg.finish()
        assert bytes(sink.data) == data


def test_utf8_name_and_version():
    p = package(b"x", name="capteur-été", version="1.0-β")
    pkg = Package(Memory())
    pkg.write(p)
    pkg.finish()
    assert pkg.name == "capteur-été" and pkg.version == "1.0-β"


def test_one_flipped_byte_is_an_integrity_failure_and_nothing_is_finished():
    data = payload_of(2000)
    p = package(data)
    h = len(p) - len(data)
    for at in (h, h + 1000, len(p) - 1, 12, 43):  # payload bytes, and the digest field itself
        bad = bytearray(p)
        bad[at] ^= 0x01
        sink = Memory()
        pkg = Package(sink)
        pkg.write(bad)
        assert _result(pkg.finish) == 5 and not sink.finished


def test_wrong_type_is_refused_when_the_header_says_so():
    p = package(payload_of(100), kind=1)  # an ESP32 image offered to a raw sink
    sink = Memory(types=(3,))
    pkg = Package(sink)
    pkg.write(p[:7])  # not yet known
    assert _result(pkg.write, p[7:8]) == 6 and not sink.began
    assert _result(Package(Memory(types=(2, 3))).write, p) == 6
    pkg = Package(Memory(types=(1,)))
    pkg.write(p)
    pkg.finish()
    assert pkg.type == 1


def test_foreign_or_corrupt_headers():
    p = package(payload_of(300))
    assert _result(Package(Memory()).write, b"\x7fELF" + p[4:]) == 6  # not our format
    assert _result(Package(Memory()).write, p[:4] + b"\x02" + p[5:]) == 6  # a later format version
    for h in (0, 45, 557, 200):  # header length outside the format, or not what the strings fill
        bad = p[:6] + struct.pack(">H", h) + p[8:]
        assert _result(Package(Memory()).write, bad) == 5, h
    bad = bytearray(p)
    bad[44] = 200  # name length beyond the header
    assert _result(Package(Memory()).write, bad) == 5
    bad = bytearray(package(b"", name="ab"))
    bad[45] = 0xFF  # not UTF-8
    assert _result(Package(Memory()).write, bad) == 5


def test_length_overrun_and_short_package():
    data = payload_of(500)
    p = package(data)
    sink = Memory()
    pkg = Package(sink)
    pkg.write(p)
    assert _result(pkg.write, b"x") == 5 and len(sink.data) == 500  # refused whole
    sink = Memory()
    pkg = Package(sink)
    assert _result(pkg.write, p + b"extra") == 5 and len(sink.data) == 0  # refused before the sink saw it
    sink = Memory()
    pkg = Package(sink)
    pkg.write(p[:-1])
    assert _result(pkg.finish) == 5 and not sink.finished
    pkg = Package(Memory())
    pkg.write(p[:20])
    assert _result(pkg.finish) == 5  # the header is not even complete


def test_resume_rebuilds_the_hash_from_the_sink():
    data = payload_of(5000)
    p = package(data, name="fw", version="7")
    h = len(p) - len(data)
    for taken in (3000, 1024, 2048 + h, len(p)):
        sink = Memory()
        first = Package(sink)
        for i in range(0, taken, 333):
            first.write(p[i:min(i + 333, taken)])
        assert first.offset == taken
        # a reboot: a new verifier over the same sink goes on from a block boundary it holds
        logs = []
        pkg = Package(sink, logs.append)
        at = pkg.resume(first.offset)
        assert at == taken, (taken, at)
        assert (pkg.offset, pkg.size, pkg.name, pkg.version, pkg.type) == (at, len(p), "fw", "7", 3)
        assert sink.began[-1] == (5000, at - h) and logs and "resuming" in logs[-1]
        pkg.write(p[at:])
        pkg.finish()
        assert sink.finished and bytes(sink.data) == data


def test_resume_with_a_bad_copy_of_what_was_held_fails_the_digest():
    data = payload_of(4000)
    p = package(data)
    sink = Memory()
    Package(sink).write(p[:3000])
    sink.data[10] ^= 0xFF  # flash that did not keep what was written
    pkg = Package(sink)
    at = pkg.resume(3000)
    pkg.write(p[at:])
    assert _result(pkg.finish) == 5 and not sink.finished


def test_resume_starts_over_when_it_cannot_go_on():
    data = payload_of(3000)
    p = package(data)
    # a sink of the documented interface only: no header copy, so from the start
    plain = Plain()
    Package(plain).write(p[:2000])
    pkg = Package(plain)
    assert pkg.resume(2000) == 0 and pkg.offset == 0 and pkg.size is None
    pkg.write(p)
    pkg.finish()
    assert plain.finished and bytes(plain.data) == data
    # only part of the header taken, a sink that lost what it held, a copy of another type
    sink = Memory()
    Package(sink).write(p[:30])
    assert Package(sink).resume(30) == 0
    sink = Memory()
    Package(sink).write(p[:2500])
    sink.data = bytearray(100)
    assert Package(sink).resume(2500) == 0
    sink = Memory(types=(3,))
    Package(sink).write(p[:2500])
    sink.types = (1,)
    assert Package(sink).resume(2500) == 0
    assert Package(Memory()).resume(0) == 0


def test_sink_rounding_is_followed():
    """A sink that keeps whole 4 KiB sectors only (the ESP32 one): the download goes on from there."""
    class Sectors(Memory):
        def begin(self, size, at=0):
            return Memory.begin(self, size, at // 4096 * 4096)

    data = payload_of(20000)
    p = package(data)
    sink = Sectors()
    Package(sink).write(p[:15000])
    pkg = Package(sink)
    at = pkg.resume(15000)
    h = len(p) - len(data)
    assert at - h == 12288 and len(sink.data) == 12288
    pkg.write(p[at:])
    pkg.finish()
    assert bytes(sink.data) == data


# --- tools/package.py (CPython makes the files; the library reads them under CPython and micropython) ---

_VERIFY = """
import sys
sys.path.insert(0, %r)
from lwm2m_mpy.fota.package import Package
class Sink:
    types = (2, 3)
    def __init__(self):
        self.n = 0
        self.done = False
    def begin(self, size):
        self.size = size
    def write(self, mv):
        self.n += len(mv)
    def finish(self):
        self.done = True
for path in sys.argv[1:]:
    sink = Sink()
    pkg = Package(sink)
    with open(path, "rb") as f:
        while True:
            chunk = f.read(777)
            if not chunk:
                break
            pkg.write(chunk)
    pkg.finish()
    print("ok", pkg.type, pkg.name, pkg.version, sink.n, sink.done)
"""


def _tool(*args):
    import os
    import subprocess
    import sys

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    return subprocess.run([sys.executable, os.path.join(root, "tools", "package.py")] + [str(a) for a in args],
                          capture_output=True, text=True, timeout=60)


def test_tool_output_is_read_by_the_library_in_cpython_and_micropython(tmp_path):
    import os
    import subprocess

    import conftest

    raw = tmp_path / "image.bin"
    raw.write_bytes(payload_of(3000))
    tree = tmp_path / "tree"
    (tree / "lib" / "pkg").mkdir(parents=True)
    (tree / "main.py").write_text("print('new')\n")
    (tree / "lib" / "pkg" / "mod.mpy").write_bytes(b"M\x06" + payload_of(500))
    (tree / "lib" / "__pycache__").mkdir()
    (tree / "lib" / "__pycache__" / "x.pyc").write_bytes(b"junk")
    r = _tool("--type", "raw", "--name", "img", "--version", "1.2", "-o", tmp_path / "raw.pkg", raw)
    assert r.returncode == 0, r.stderr
    r = _tool("--type", "files", "--name", "app", "--version", "3", "-o", tmp_path / "out" / "files.pkg", tree)
    assert r.returncode == 0, r.stderr
    assert "lib/pkg/mod.mpy" in r.stdout and "__pycache__" not in r.stdout
    expected = payload_of(3000)
    data = (tmp_path / "raw.pkg").read_bytes()
    assert data == package(expected, name="img", version="1.2")  # byte for byte what the format says
    archive = (tmp_path / "out" / "files.pkg").read_bytes()
    # records sorted by path: lib/pkg/mod.mpy before main.py; __pycache__ left out
    mod = b"M\x06" + payload_of(500)
    body = (bytes([15]) + b"lib/pkg/mod.mpy" + struct.pack(">I", len(mod)) + mod
            + bytes([7]) + b"main.py" + struct.pack(">I", 13) + b"print('new')\n")
    assert archive == package(body, kind=2, name="app", version="3")

    sink = Memory(types=(2, 3))
    pkg = Package(sink)
    pkg.write(data)
    pkg.finish()
    assert bytes(sink.data) == expected and (pkg.name, pkg.version) == ("img", "1.2")

    script = tmp_path / "verify.py"
    script.write_text(_VERIFY % str(conftest.ROOT))
    r = subprocess.run([conftest.micropython_path(), "-X", "heapsize=64k", str(script), str(tmp_path / "raw.pkg"),
                        str(tmp_path / "out" / "files.pkg")], capture_output=True, text=True, timeout=60,
                       env=conftest.micropython_env(), cwd=str(tmp_path))
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.split("\n")[:2] == ["ok 3 img 1.2 3000 True", "ok 2 app 3 %d True" % len(body)], r.stdout
    assert os.path.getsize(tmp_path / "raw.pkg") == 3000 + 46 + 3 + 3


def test_tool_info_and_refusals(tmp_path):
    img = tmp_path / "app.bin"
    # the start of an ESP-IDF application image: magic 0xE9, then esp_app_desc_t's magic word at 32
    image = bytes([0xE9]) + bytes(31) + struct.pack("<I", 0xABCD5432) + payload_of(5000)
    img.write_bytes(image)
    out = tmp_path / "fw.pkg"
    r = _tool("--type", "esp32", "--name", "esp32-app", "--version", "1.29", "-o", out, img)
    assert r.returncode == 0, r.stderr
    r = _tool("--info", out)
    assert r.returncode == 0 and "type 1 (esp32)" in r.stdout and "'esp32-app'" in r.stdout, r.stdout
    assert hashlib.sha256(image).hexdigest() in r.stdout and "sha256 OK" in r.stdout
    bad = bytearray(out.read_bytes())
    bad[-1] ^= 1
    (tmp_path / "bad.pkg").write_bytes(bytes(bad))
    r = _tool("--info", tmp_path / "bad.pkg")
    assert r.returncode == 1 and "MISMATCH" in r.stdout
    # a firmware .bin (bootloader first) is not an application image; --force takes it anyway
    boot = tmp_path / "firmware.bin"
    boot.write_bytes(bytes([0xE9]) + payload_of(100))
    r = _tool("--type", "esp32", "-o", tmp_path / "x.pkg", boot)
    assert r.returncode == 1 and ".app-bin" in r.stderr
    r = _tool("--type", "esp32", "--force", "--version", "", "-o", tmp_path / "x.pkg", boot)
    assert r.returncode == 0 and "'firmware.bin'" in r.stdout  # the name defaults to the input's
    r = _tool("--type", "files", "-o", tmp_path / "y.pkg", img)
    assert r.returncode == 1 and "not a folder" in r.stderr
    r = _tool("--info", img)
    assert r.returncode == 1 and "not a package" in r.stderr
    r = _tool("--type", "raw", img)
    assert r.returncode == 2


def test_constant_memory_whatever_the_package_size():
    """Heap in use after 16 KiB and after 512 KiB of payload is the same (micropython: gc.mem_alloc)."""
    import gc

    if not hasattr(gc, "mem_alloc"):
        return  # CPython: nothing to measure this way

    class Counter:
        types = (3,)

        def begin(self, size):
            self.n = 0

        def write(self, mv):
            self.n += len(mv)

        def finish(self):
            pass

    size = 512 * 1024
    chunk = bytearray(1024)
    h = hashlib.sha256()
    for _ in range(size // 1024):
        h.update(chunk)
    head = b"LWMP" + struct.pack(">BBHI", 1, 3, 47, size) + h.digest() + b"\x01a\x00"
    sink = Counter()
    pkg = Package(sink)
    pkg.write(head)
    used = []
    for i in range(size // 1024):
        pkg.write(chunk)
        if i in (16, size // 1024 - 1):
            gc.collect()
            used.append(gc.mem_alloc())
    pkg.finish()
    assert sink.n == size and used[1] - used[0] < 256, used
