"""tools/deploy.py, tools/mkconfig.py and `make deploy`.

- Every MicroPython profile ships exactly what it needs, computed here from the rules (the client: all of
  lwm2m_mpy/ but __main__, aio, _compat_other, drivers/*, objects/* but core, tables/* but o0-o3; plus
  lwm2m_mpy.board.needs(profile)), compiled into build/deploy/BOARD with the sizes printed, the total
  printed, and the mpremote command (MPREMOTE=echo) copying exactly those files.
- The CircuitPython profile ships sources with _compat_other.py and code.py; blinka runs in place.
- Refusals (exit 2): unknown board, no port, a config.json the board would reject; the import check
  fails a CPython-only import.
- mkconfig writes what client_args accepts, mode 0600, and never prints the password or the key.
- End to end: the unix profile deployed through the real mpremote onto an emulated board (a raw REPL over a
  pty, served by the unix MicroPython in a scratch folder), then that folder's main.py registers with
  tools/lwm2m_server.py.
Every child process is bounded by a timeout.
"""
import ast
import importlib.util
import json
import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "tools" / "deploy.py"
MKCONFIG = ROOT / "tools" / "mkconfig.py"
TIMEOUT = 120  # one deploy: compiling ~50 files, or copying them through mpremote

if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
from lwm2m_mpy import board as board_mod  # noqa: E402

SECRET_PASSWORD = "pw-Wn8q!zz"
SECRET_KEY = "c0ffee00deadbeef0123456789abcdef"


def profiles(port):
    out = []
    for f in sorted((ROOT / "boards").glob("*.py")):
        if board_mod.profile(f.stem).PORT == port:
            out.append(f.stem)
    return out


MICROPYTHON_BOARDS = profiles("micropython")


def run(tool, *args, env=None, stdin=None, cwd=ROOT):
    """tools/<tool> under this Python; bounded. (Deploys here pass --build: tests running at the same time
    must not compile into the same build/deploy/NAME.)"""
    environment = dict(os.environ)
    environment.pop("MPREMOTE", None)
    environment.update(env or {})
    return subprocess.run([sys.executable, str(tool)] + [str(a) for a in args], cwd=str(cwd), env=environment,
                          input=stdin, capture_output=True, text=True, timeout=TIMEOUT)


def load_tool(name):
    spec = importlib.util.spec_from_file_location("tool_" + name, str(ROOT / "tools" / (name + ".py")))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


# --- the rules, independently of tools/deploy.py ---------------------------------------------------

def library():
    base = ROOT / "lwm2m_mpy"
    return sorted(p.relative_to(base).as_posix() for p in base.rglob("*.py") if "__pycache__" not in p.parts)


def library_imports(path):
    """The lwm2m_mpy files that library file `path` (inside lwm2m_mpy/) imports, in any statement."""
    tree = ast.parse((ROOT / "lwm2m_mpy" / path).read_text())
    package = ["lwm2m_mpy"] + path.split("/")[:-1]
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            mod = package[:len(package) - node.level + 1] if node.level else []
            mod = mod + (node.module.split(".") if node.module else [])
            names = [mod] + [mod + [a.name] for a in node.names]
        elif isinstance(node, ast.Import):
            names = [a.name.split(".") for a in node.names]
        else:
            continue
        for n in names:
            if n[0] == "lwm2m_mpy" and len(n) > 1:
                for f in ("/".join(n[1:]) + ".py", "/".join(n[1:]) + "/__init__.py"):
                    if (ROOT / "lwm2m_mpy" / f).is_file():
                        out.add(f)
    return out


def expected_library(name, port="micropython"):
    """Paths inside lwm2m_mpy/ board `name` gets: the client, what its profile needs, and what those
    import from the library, but for the modules left out on purpose."""
    tree = library()
    never = {"__main__.py", "aio.py", "_compat_other.py"}
    if port == "circuitpython":
        never = never - {"_compat_other.py"}
    keep = set()
    for p in tree:
        if p in never or p.startswith(("drivers/", "fota/", "transport/at", "transport/modem")):
            continue  # per profile: PARTS, FOTA; the cellular transports only when asked for
        if p.startswith("objects/") and p != "objects/core.py":
            continue
        if p.startswith("tables/") and p not in ("tables/o0.py", "tables/o1.py", "tables/o2.py", "tables/o3.py"):
            continue
        keep.add(p)
    if port == "circuitpython":
        keep.add("_compat_other.py")
    prof = board_mod.profile(name)
    keep |= {m.replace(".", "/") + ".py" for m in board_mod.needs(prof)}
    # needs() itself, checked against the profile: each part's driver, each object's table
    assert {"drivers/%s.py" % d for d, _ in prof.PARTS.values()} <= keep
    assert {"tables/o%d.py" % o[0] for o in prof.OBJECTS} <= keep
    if prof.FOTA:  # object 5 and its sink
        assert {"objects/firmware.py", "tables/o5.py", "fota/%s_sink.py" % prof.FOTA} <= keep
    while True:
        more = set().union(*(library_imports(p) for p in keep)) - never - keep
        if not more:
            break
        keep |= more
    for p in list(keep):  # a package's __init__.py, where there is one
        parts = p.split("/")[:-1]
        for k in range(1, len(parts) + 1):
            init = "/".join(parts[:k]) + "/__init__.py"
            if init in tree:
                keep.add(init)
    return keep


def listing(out, suffix):
    """{path on the board: size} of the file list a deploy prints, and the total line's (bytes, count)."""
    files, total = {}, None
    for line in out.splitlines():
        m = re.match(r"^  (\S+) +(\d+)(?:  \(.+\))?$", line)
        if m and total is None:
            files[m.group(1)] = int(m.group(2))
        m = re.match(r"^%s total: (\d+) B \(([\d.]+) KiB\) in (\d+) files$" % re.escape(suffix), line)
        if m:
            total = int(m.group(1)), float(m.group(2)), int(m.group(3))
    return files, total


def echoed(out, port):
    """The mpremote command MPREMOTE=echo printed, as its commands (split at ` + `)."""
    lines = [line for line in out.splitlines() if line.startswith("connect %s exec " % port)]
    assert len(lines) == 1, out
    return lines[0].split(" + ")


# --- MicroPython profiles ------------------------------------------------------------------------------

def test_there_are_micropython_profiles():
    assert {"pico_w", "esp32", "unix"} <= set(MICROPYTHON_BOARDS)


@pytest.mark.parametrize("name", MICROPYTHON_BOARDS)
def test_micropython_profile_ships_exactly_what_it_needs(name, tmp_path):
    r = run(DEPLOY, name, "--port", "/dev/ttyFAKE0", "--build", tmp_path, env={"MPREMOTE": "echo"})
    assert r.returncode == 0, r.stdout + r.stderr
    files, total = listing(r.stdout, ".mpy")
    want = {"lwm2m_mpy/%s.mpy" % p[:-3] for p in expected_library(name)}
    want |= {"boards/%s.mpy" % name, "main.py"}
    if getattr(board_mod.profile(name), "FOTA", None) == "files":
        want.add("boot.py")  # fota/guard.py swaps updates in before main.py
    assert set(files) == want, (sorted(set(files) - want), sorted(want - set(files)))

    # every listed file is in BUILD/NAME with the size printed; the .mpy files are MicroPython's
    stage = tmp_path / name
    for dest, size in files.items():
        assert (stage / dest).stat().st_size == size, dest
        if dest.endswith(".mpy"):
            assert (stage / dest).read_bytes()[:2] == b"M\x06", dest
    assert (stage / "main.py").read_bytes() == (ROOT / "boards" / "examples" / (name + ".py")).read_bytes()
    staged = {p.relative_to(stage).as_posix() for p in stage.rglob("*") if p.is_file()}
    assert staged == want  # nothing else left in the stage

    # the total
    mpy = [s for d, s in files.items() if d.endswith(".mpy")]
    assert total is not None, r.stdout
    assert total[0] == sum(mpy) and total[2] == len(mpy) and abs(total[1] - sum(mpy) / 1024) < 0.06

    # nothing a board never loads; the simulated driver only where the profile uses it
    for never in ("_compat_other", "__main__", "aio"):
        assert "lwm2m_mpy/%s.mpy" % never not in files
    uses_sim = any(d == "sim" for d, _ in board_mod.profile(name).PARTS.values())
    assert ("lwm2m_mpy/drivers/sim.mpy" in files) == uses_sim
    if uses_sim:  # its GNSS parses NMEA with drivers/nmea.py, imported inside a function: it comes along
        assert "lwm2m_mpy/drivers/nmea.mpy" in files
        assert "note: lwm2m_mpy/drivers/nmea.py comes along: lwm2m_mpy/drivers/sim.py imports it" in r.stdout
    assert not [d for d in files if d.endswith(".py") and d not in ("main.py", "boot.py")]

    # the mpremote call copies exactly these files, into folders it makes, after the clean-up
    cmds = echoed(r.stdout, "/dev/ttyFAKE0")
    assert cmds[0].startswith("connect /dev/ttyFAKE0 exec import os;")
    copies = {}
    for c in cmds[1:]:
        m = re.match(r"^fs cp -f (\S+) :(\S+)$", c)
        if m:
            copies[m.group(2)] = m.group(1)
    assert set(copies) == want
    for dest, src in copies.items():
        assert src == str(stage / dest)
    made = [c[len("fs mkdir :"):] for c in cmds[1:] if c.startswith("fs mkdir :")]
    dirs = {"/".join(d.split("/")[:k]) for d in want for k in range(1, d.count("/") + 1)}
    assert set(made) == dirs - {"boards"}  # boards/ may hold the user's own profiles: the clean-up makes it
    assert made.index("lwm2m_mpy") < made.index("lwm2m_mpy/core")  # parents first
    assert len(cmds) == 1 + len(made) + len(copies)


def test_dry_run_compiles_but_runs_nothing(tmp_path):
    # `false` would fail the deploy if run
    r = run(DEPLOY, "pico_w", "--dry-run", "--build", tmp_path, env={"MPREMOTE": "false"})
    assert r.returncode == 0, r.stdout + r.stderr
    files, total = listing(r.stdout, ".mpy")
    assert "lwm2m_mpy/core/client.mpy" in files and total
    assert "dry run: would run" in r.stdout and "false connect PORT exec" in r.stdout
    assert "+ fs cp -f %s/pico_w/main.py :main.py" % tmp_path in r.stdout
    client = tmp_path / "pico_w" / "lwm2m_mpy" / "core" / "client.mpy"
    assert client.stat().st_size == files["lwm2m_mpy/core/client.mpy"]


def test_config_goes_along_when_given(tmp_path):
    cfg = tmp_path / "config.json"
    cfg.write_text(json.dumps({"wifi": {"ssid": "home", "password": SECRET_PASSWORD}, "endpoint": "pico-1",
                               "server": "coap://192.168.1.10:5683"}))
    r = run(DEPLOY, "pico_w", "--port", "/dev/ttyFAKE0", "--config", cfg, "--build", tmp_path,
            env={"MPREMOTE": "echo"})
    assert r.returncode == 0, r.stdout + r.stderr
    files, _ = listing(r.stdout, ".mpy")
    assert files["config.json"] == cfg.stat().st_size
    assert "fs cp -f %s :config.json" % cfg in echoed(r.stdout, "/dev/ttyFAKE0")
    assert SECRET_PASSWORD not in r.stdout + r.stderr


def test_add_ships_one_more_module(tmp_path):
    r = run(DEPLOY, "pico_w", "--dry-run", "--add", "aio", "--build", tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    files, _ = listing(r.stdout, ".mpy")
    assert "lwm2m_mpy/aio.mpy" in files
    assert "imports lwm2m_mpy.aio on demand" not in r.stdout
    r = run(DEPLOY, "pico_w", "--dry-run", "--build", tmp_path)
    assert "core/client.py:" in r.stdout and "imports lwm2m_mpy.aio on demand: not shipped" in r.stdout


def test_the_clean_up_on_the_board_removes_the_old_library_and_profile(micropython, tmp_path):
    """The one-line `exec` of the mpremote call, run by MicroPython in a folder standing for the board's /."""
    code = load_tool("deploy")._cleanup("pico_w")
    for p in ("lwm2m_mpy/core/client.py", "lwm2m_mpy/core/x/y.mpy", "boards/pico_w.py", "boards/pico_w.mpy",
              "boards/mine.py", "main.py", "config.json"):
        (tmp_path / p).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / p).write_text("")
    r = subprocess.run([micropython, "-c", code], cwd=str(tmp_path), capture_output=True, text=True, timeout=30,
                       env=dict(os.environ, MICROPYPATH=".frozen"))
    assert r.returncode == 0, r.stdout + r.stderr
    left = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*"))
    assert left == ["boards", "boards/mine.py", "config.json", "main.py"]
    empty = tmp_path / "empty"
    empty.mkdir()
    r = subprocess.run([micropython, "-c", code], cwd=str(empty), capture_output=True, text=True, timeout=30,
                       env=dict(os.environ, MICROPYPATH=".frozen"))
    assert r.returncode == 0 and [p.name for p in empty.iterdir()] == ["boards"], r.stdout + r.stderr


# --- CircuitPython and CPython -------------------------------------------------------------------------

@pytest.mark.parametrize("name", profiles("circuitpython"))
def test_circuitpython_profile_ships_sources_with_the_shims(name, tmp_path):
    r = run(DEPLOY, name, "--dry-run")
    assert r.returncode == 0, r.stdout + r.stderr
    files, total = listing(r.stdout, ".py")
    want = {"lwm2m_mpy/" + p for p in expected_library(name, "circuitpython")}
    want |= {"boards/%s.py" % name, "code.py"}
    if board_mod.profile(name).FOTA == "files":
        want.add("boot.py")  # remounts the drive for the board and runs fota/guard.py
    assert set(files) == want, (sorted(set(files) - want), sorted(want - set(files)))
    # dtls.py goes along: a coaps:// URI (from a bootstrap) gets its clear "no DTLS here" error
    assert "lwm2m_mpy/_compat_other.py" in files and "lwm2m_mpy/transport/dtls.py" in files
    assert not [f for f in files if f.endswith(".mpy")] and "main.py" not in files
    assert total[0] == sum(files.values()) and total[2] == len(files)
    assert files["code.py"] == (ROOT / "boards" / "examples" / (name + ".py")).stat().st_size

    # a real copy into a folder standing for the mounted drive: stale files go, sources arrive as they are
    drive = tmp_path / "CIRCUITPY"
    (drive / "lwm2m_mpy" / "core").mkdir(parents=True)
    (drive / "lwm2m_mpy" / "core" / "stale.py").write_text("raise ImportError")
    (drive / "boards").mkdir()
    (drive / "boards" / (name + ".mpy")).write_bytes(b"M")
    (drive / "boot_out.txt").write_text("Adafruit CircuitPython 9")
    cfg = tmp_path / "config.json"
    cfg.write_text(json.dumps({"wifi": {"ssid": "home", "password": "x"}, "server": "coap://10.0.0.1"}))
    r = run(DEPLOY, name, "--port", drive, "--config", cfg)
    assert r.returncode == 0, r.stdout + r.stderr
    got = {p.relative_to(drive).as_posix() for p in drive.rglob("*") if p.is_file()}
    assert got == want | {"config.json", "boot_out.txt"}
    for dest in want:
        src = ROOT / ("boards/examples/%s.py" % name if dest == "code.py" else
                      "boards/examples/boot_circuitpython.py" if dest == "boot.py" else dest)
        assert (drive / dest).read_bytes() == src.read_bytes(), dest


@pytest.mark.parametrize("name", profiles("circuitpython"))
def test_circuitpython_refuses_coaps(name, tmp_path):
    cfg = tmp_path / "config.json"
    cfg.write_text(json.dumps({"wifi": {"ssid": "home", "password": "x"}, "server": "coaps://10.0.0.1",
                               "psk_id": "a", "psk_key": "0011"}))
    r = run(DEPLOY, name, "--dry-run", "--config", cfg)
    assert r.returncode == 2 and "DTLS" in r.stderr, r.stdout + r.stderr


@pytest.mark.parametrize("name", profiles("cpython"))
def test_cpython_profile_runs_in_place(name):
    r = run(DEPLOY, name)
    assert r.returncode == 0, r.stderr
    assert "python -m lwm2m_mpy --board %s" % name in r.stdout
    assert "total" not in r.stdout


# --- refusals ------------------------------------------------------------------------------------------

def test_unknown_board_is_refused():
    for name in ("nope", "../lwm2m_mpy/board", "examples"):
        r = run(DEPLOY, name, "--dry-run")
        assert r.returncode == 2, (name, r.stdout, r.stderr)
        assert "unknown board" in r.stderr and "pico_w" in r.stderr


def test_no_port_or_a_udp_port_is_refused():
    r = run(DEPLOY, "pico_w")
    assert r.returncode == 2 and "no --port" in r.stderr, r.stderr
    r = run(DEPLOY, "pico_w", "--port", "5683")
    assert r.returncode == 2 and "UDP port" in r.stderr, r.stderr
    r = run(DEPLOY, "circuitpython_pico_w", "--port", "/nonexistent/CIRCUITPY")
    assert r.returncode == 2 and "not a folder" in r.stderr, r.stderr


@pytest.mark.parametrize("cfg, words", [
    ({"wifi": {"ssid": "h", "password": "p"}, "server": "coap://h", "lifetim": 60}, "unknown key lifetim"),
    ({"wifi": {"ssid": "h", "password": "p"}, "endpoint": "x"}, "no server"),
    ({"server": "coap://h"}, "wifi"),  # pico_w joins a WiFi
    ({"wifi": {"ssid": "h", "password": "p"}, "server": "coaps://h"}, "psk_id"),
    ({"wifi": {"ssid": "h", "password": "p"}, "server": "http://h"}, "coap or coaps"),
    ({"wifi": {"ssid": "h", "password": "p"}, "server": "coaps://h", "psk_id": "a", "psk_key": SECRET_KEY + "z"},
     "hex"),
    ("not json", "not JSON"),
])
def test_a_config_the_board_would_reject_is_refused(tmp_path, cfg, words):
    path = tmp_path / "config.json"
    path.write_text(cfg if isinstance(cfg, str) else json.dumps(cfg))
    r = run(DEPLOY, "pico_w", "--port", "/dev/ttyFAKE0", "--config", path, "--build", tmp_path,
            env={"MPREMOTE": "echo"})
    assert r.returncode == 2, r.stdout + r.stderr
    assert words in r.stderr, r.stderr
    assert "connect" not in r.stdout  # refused before anything was built or run
    assert SECRET_KEY not in r.stdout + r.stderr


# --- the import check ------------------------------------------------------------------------------------

def test_import_check_fails_cpython_only_imports_and_allows_guarded_ones():
    deploy = load_tool("deploy")
    shipped = {"lwm2m_mpy", "lwm2m_mpy._compat", "lwm2m_mpy.core.dm", "lwm2m_mpy.errors"}
    tree = shipped | {"lwm2m_mpy.aio", "lwm2m_mpy._compat_other", "lwm2m_mpy.drivers.sim"}

    def check(text, name="lwm2m_mpy/core/dm.py"):
        return deploy.check_imports({name: (text, name)}, shipped, tree)

    assert check("import gc, sys\nfrom micropython import const\nfrom ..errors import CoapError\n"
                 "from .. import _compat\nimport lwm2m_mpy.errors\n") == []
    assert check("try:\n    import typing\nexcept ImportError:\n    pass\n") == []
    assert check("if IS_MICROPYTHON:\n    import machine\nelse:\n    from ._compat_other import *\n",
                 "lwm2m_mpy/_compat.py") == []
    notes = check("def serve():\n    from ..aio import serve\n")
    assert len(notes) == 1 and "lwm2m_mpy.aio" in notes[0] and "dm.py:2" in notes[0]
    notes = check("def cpu():\n    from microcontroller import cpu\n")  # a CircuitPython-only path
    assert len(notes) == 1 and "microcontroller, a CircuitPython module" in notes[0]
    for bad, words in (("import traceback\n", "traceback: not a MicroPython module"),
                       ("from microcontroller import cpu\n", "microcontroller: not a MicroPython module"),
                       ("def f():\n    import logging\n", "logging"),
                       ("from ..aio import serve\n", "lwm2m_mpy.aio, which is not shipped"),
                       ("from ..drivers import sim\n", "lwm2m_mpy.drivers.sim, which is not shipped"),
                       ("from ..nothing import x\n", "lwm2m_mpy.nothing")):
        with pytest.raises(deploy.BuildError) as e:
            check(bad)
        assert words in str(e.value), (bad, str(e.value))


# --- mkconfig ---------------------------------------------------------------------------------------------

def test_mkconfig_round_trip(tmp_path):
    out = tmp_path / "config.json"
    out.write_text("{}")
    out.chmod(0o644)  # an older file readable by all: written back 0600
    r = run(MKCONFIG, "--ssid", "home", "--password", SECRET_PASSWORD, "--endpoint", "pico-1",
            "--server", "coaps://192.168.1.10:5684", "--psk-id", "pico-1", "--psk-key", SECRET_KEY,
            "--lifetime", 300, "--board", "pico_w", "-o", out)
    assert r.returncode == 0, r.stderr
    assert SECRET_PASSWORD not in r.stdout + r.stderr and SECRET_KEY not in r.stdout + r.stderr
    assert "pico-1" in r.stdout and "16 bytes" in r.stdout
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    cfg = json.loads(out.read_text())
    assert cfg == {"wifi": {"ssid": "home", "password": SECRET_PASSWORD}, "endpoint": "pico-1",
                   "server": "coaps://192.168.1.10:5684", "psk_id": "pico-1", "psk_key": SECRET_KEY,
                   "lifetime": 300}
    endpoint, server, kw = board_mod.client_args(cfg)
    assert (endpoint, server) == ("pico-1", "coaps://192.168.1.10:5684")
    assert kw == {"lifetime": 300, "psk": (b"pico-1", bytes.fromhex(SECRET_KEY))}
    r = run(DEPLOY, "pico_w", "--dry-run", "--config", out, "--build", tmp_path)  # and deploy takes it
    assert r.returncode == 0 and ":config.json" in r.stdout, r.stderr
    assert SECRET_PASSWORD not in r.stdout + r.stderr and SECRET_KEY not in r.stdout + r.stderr


def test_mkconfig_reads_secrets_left_out_from_stdin(tmp_path):
    out = tmp_path / "c.json"
    r = run(MKCONFIG, "--ssid", "home", "--endpoint", "e", "--server", "coap://10.0.0.2", "-o", out,
            stdin=SECRET_PASSWORD + "\n")
    assert r.returncode == 0, r.stderr
    assert json.loads(out.read_text())["wifi"] == {"ssid": "home", "password": SECRET_PASSWORD}
    assert SECRET_PASSWORD not in r.stdout + r.stderr
    r = run(MKCONFIG, "--endpoint", "e", "--server", "coaps://10.0.0.2", "--psk-id", "e", "-o", out,
            stdin=SECRET_KEY + "\n")
    assert r.returncode == 0, r.stderr
    cfg = json.loads(out.read_text())
    assert cfg["psk_key"] == SECRET_KEY and "wifi" not in cfg  # a board without WiFi (unix, blinka)
    assert SECRET_KEY not in r.stdout + r.stderr


@pytest.mark.parametrize("args, words", [
    (["--server", "http://10.0.0.2"], "coap or coaps"),
    (["--server", "coap//10.0.0.2"], "expected coap://"),
    (["--server", "coap://10.0.0.2:70000"], "port"),
    (["--server", "coaps://10.0.0.2"], "needs psk_id and psk_key"),
    (["--server", "coaps://10.0.0.2", "--psk-id", "e", "--psk-key", SECRET_KEY[:-1]], "hex"),
    (["--server", "coaps://10.0.0.2", "--psk-id", "e", "--psk-key", SECRET_KEY[:-2] + "zz"], "hex"),
    (["--server", "coap://10.0.0.2", "--psk-id", "e", "--psk-key", SECRET_KEY], "no coaps"),
    (["--server", "coap://10.0.0.2", "--lifetime", "0"], "lifetime"),
    (["--endpoint", "e"], "--server"),
    (["--server", "coap://10.0.0.2", "--board", "pico_w"], "wifi"),
    (["--server", "coaps://10.0.0.2", "--psk-id", "e", "--psk-key", SECRET_KEY, "--ssid", "h",
      "--password", "p", "--board", "circuitpython_pico_w"], "DTLS"),
    (["--server", "coap://10.0.0.2", "--endpoint", "two words"], "endpoint"),
])
def test_mkconfig_refuses_what_the_board_cannot_use(tmp_path, args, words):
    out = tmp_path / "config.json"
    r = run(MKCONFIG, *(args + ["-o", out]), stdin="")
    assert r.returncode == 2, r.stdout + r.stderr
    assert words in r.stderr, r.stderr
    assert not out.exists()
    assert SECRET_KEY[:-2] not in r.stdout + r.stderr


def test_config_json_is_ignored_by_git():
    r = subprocess.run(["git", "check-ignore", "config.json", "boards/config.json"], cwd=str(ROOT),
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0 and r.stdout.split() == ["config.json", "boards/config.json"], r.stdout + r.stderr


# --- make deploy ------------------------------------------------------------------------------------------

def make(*args):
    env = {k: v for k, v in os.environ.items()
           if k not in ("BOARD", "PORT", "CONFIG", "MPREMOTE", "DRY_RUN", "DEPLOY_ARGS", "MAKEFLAGS", "MFLAGS",
                        "MAKELEVEL")}
    return subprocess.run(["make", "--no-print-directory"] + list(args), cwd=str(ROOT), env=env,
                          capture_output=True, text=True, timeout=60)


def test_make_deploy_needs_a_board_and_reads_port_only_when_given():
    r = make("deploy")
    assert r.returncode != 0 and "make deploy needs BOARD=NAME" in r.stderr, r.stderr
    r = make("-n", "deploy", "BOARD=pico_w", "PORT=/dev/ttyACM0", "CONFIG=my.json", "MPREMOTE=echo")
    assert r.returncode == 0, r.stderr
    line = " ".join(r.stdout.replace("\\\n", " ").split())
    assert "MPREMOTE='echo'" in line
    assert "tools/deploy.py pico_w --port '/dev/ttyACM0' --config 'my.json'" in line
    r = make("-n", "deploy", "BOARD=esp32", "DRY_RUN=1")
    assert r.returncode == 0, r.stderr
    line = " ".join(r.stdout.replace("\\\n", " ").split())
    assert "tools/deploy.py esp32" in line and "--dry-run" in line
    assert "--port" not in line  # PORT's default is make run's UDP port, not a device


# --- end to end: the real mpremote, an emulated board, the deployed main.py registering -------------------

AGENT = r'''
# A MicroPython board's raw REPL (what mpremote speaks) over stdin/stdout; the cwd is the board's "/".
import sys

rd = sys.stdin.buffer
wr = sys.stdout.buffer
BANNER = b"raw REPL; CTRL-B to exit\r\n>"
g = {}
raw = False
buf = bytearray()
while True:
    c = rd.read(1)
    if not c:
        break
    if c == b"\x01":
        raw = True
        buf = bytearray()
        wr.write(b"\r\n" + BANNER)
    elif not raw:
        pass
    elif c == b"\x02":
        raw = False
        wr.write(b"\r\nMicroPython (emulated)\r\n>>> ")
    elif c == b"\x03":
        buf = bytearray()
    elif c == b"\x05":
        rd.read(2)
        wr.write(b"R\x00")  # raw-paste mode understood, not supported: standard raw mode
    elif c == b"\x04":
        if not buf:
            g = {}
            wr.write(b"soft reboot\r\n" + BANNER)
            continue
        wr.write(b"OK")
        try:
            exec(bytes(buf), g)
            wr.write(b"\x04")
        except BaseException as e:
            wr.write(b"\x04")
            sys.print_exception(e, sys.stdout)
        wr.write(b"\x04>")
        buf = bytearray()
    else:
        buf += c
'''


@pytest.fixture
def emulated_board(micropython, tmp_path):
    """(serial device, folder): a pty whose other end is the unix MicroPython answering mpremote's raw
    REPL, with `folder` as the board's filesystem."""
    import pty
    import tty

    root = tmp_path / "board"
    root.mkdir()
    agent = tmp_path / "agent.py"
    agent.write_text(AGENT)
    master, slave = pty.openpty()
    tty.setraw(slave)
    proc = subprocess.Popen([micropython, str(agent)], stdin=master, stdout=master, stderr=subprocess.DEVNULL,
                            cwd=str(root), env=dict(os.environ, MICROPYPATH=".frozen"))
    try:
        yield os.ttyname(slave), root  # the slave stays open here: the pty lives across mpremote calls
    finally:
        proc.kill()
        proc.wait(10)
        os.close(master)
        os.close(slave)


def test_deployed_unix_profile_registers_from_the_board_folder(emulated_board, micropython, tmp_path):
    e2e = pytest.importorskip("e2e_helpers")
    import lwm2m_server as lws

    mpremote = ROOT / ".venv" / "bin" / "mpremote"
    if not mpremote.exists():
        pytest.fail("no mpremote: run `make setup`")
    dev, root = emulated_board
    # What an earlier install may have left: a stale source that would shadow its new .mpy
    (root / "lwm2m_mpy" / "core").mkdir(parents=True)
    (root / "lwm2m_mpy" / "core" / "client.py").write_text("raise ImportError('stale')\n")
    (root / "boards").mkdir()
    (root / "boards" / "unix.py").write_text("raise ImportError('stale')\n")
    (root / "boards" / "mine.py").write_text("PORT = 'micropython'\n")

    with lws.ServerThread(request_timeout=5.0) as server:
        cfg = tmp_path / "config.json"
        r = run(MKCONFIG, "--endpoint", "deployed-unix", "--server", server.uri, "--lifetime", 60, "-o", cfg)
        assert r.returncode == 0, r.stderr
        r = run(DEPLOY, "unix", "--port", dev, "--config", cfg, "--build", tmp_path / "build")
        assert r.returncode == 0, r.stdout + r.stderr

        files, _ = listing(r.stdout, ".mpy")
        on_board = {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}
        assert on_board == set(files) | {"boards/mine.py"}
        for dest in files:
            src = cfg if dest == "config.json" else tmp_path / "build" / "unix" / dest
            assert (root / dest).read_bytes() == src.read_bytes(), dest

        client = e2e.ClientProcess([micropython, "-X", "heapsize=160k", "main.py"],  # make run's heap
                                   dict(os.environ, MICROPYPATH=".frozen"), root)
        try:
            server.wait_for("register", "deployed-unix", timeout=30)
            links = {path for path, _ in server.registration("deployed-unix").links}
            for p in ("/3/0", "/3303/0", "/3347/0", "/3201/0", "/4/0", "/5/0"):
                assert p in links, (p, links, client.output())
            assert "/6" in links or "/6/0" in links  # /6/0 comes at the GNSS's first fix, in an Update
            assert server.read("deployed-unix", "/3303/0/5700", accept=lws.TEXT).code == "2.05"
        finally:
            client.kill()
        assert "Traceback" not in client.output(), client.output()
