#!/usr/bin/env python3
"""Write package.json (for mip, MicroPython's installer) and manifest.py (for freezing into a firmware)
from the tree: the library files a MicroPython board needs. package.json's URLs are repository-relative,
so `mip.install("github:OWNER/REPO")` installs them under lib/ from this repository or any fork of it.

    python tools/pkgjson.py            # rewrite both
    python tools/pkgjson.py --check    # exit 1 if either is not what this would write

Left out: __main__.py (the unix-port command line) and _compat_other.py (CircuitPython/CPython shims; a
MicroPython board never loads it).

The MicroPython board profiles go with the library (boards/NAME.py with PORT = "micropython", unix
included: `micropython -m mip install` is how the unix port installs too, and its simulated driver is in
the library anyway): `from lwm2m_mpy.board import run; run("pico_w")` imports `boards.pico_w`, which mip
puts in /lib/boards/ and a frozen firmware carries as a second package. CircuitPython and CPython
profiles stay out (mip and frozen firmware are MicroPython's). Every driver and object module is in the
package, so any profile works; tools/deploy.py is the way to ship one board's modules only.
Host tool, CPython standard library only.
"""
import ast
import argparse
import json
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = "lwm2m_mpy"
BOARDS = "boards"
LEFT_OUT = ("lwm2m_mpy/__main__.py", "lwm2m_mpy/_compat_other.py")


def board_files(root=ROOT):
    """The library's .py files a MicroPython board needs, repository-relative, sorted."""
    out = []
    for folder, dirs, files in os.walk(os.path.join(root, PACKAGE)):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        for name in files:
            if name.endswith(".py"):
                path = os.path.relpath(os.path.join(folder, name), root).replace(os.sep, "/")
                if path not in LEFT_OUT:
                    out.append(path)
    return sorted(out)


def profile_port(path):
    """PORT of a board profile (pure data: read, not imported)."""
    with open(path) as f:
        tree = ast.parse(f.read(), path)
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "PORT" for t in node.targets):
            return ast.literal_eval(node.value)
    return None


def board_profiles(root=ROOT):
    """The MicroPython board profiles, repository-relative ("boards/pico_w.py"), sorted."""
    folder = os.path.join(root, BOARDS)
    return sorted("%s/%s" % (BOARDS, name) for name in os.listdir(folder)
                  if name.endswith(".py") and profile_port(os.path.join(folder, name)) == "micropython")


def version(root=ROOT):
    with open(os.path.join(root, PACKAGE, "__init__.py")) as f:
        for line in f:
            if line.startswith("__version__"):
                return line.split("=")[1].strip().strip("\"'")
    raise SystemExit("no __version__ in %s/__init__.py" % PACKAGE)


def render(root=ROOT):
    """{file name: text} of package.json and manifest.py."""
    files = board_files(root)
    profiles = board_profiles(root)
    pairs = ",\n".join('  ["%s", "%s"]' % (path, path) for path in files + profiles)
    package_json = '{"version": "%s", "deps": [], "urls": [\n%s\n]}\n' % (version(root), pairs)
    names = ",\n".join('    "%s"' % path[len(PACKAGE) + 1:] for path in files)
    boards = ",\n".join('    "%s"' % path[len(BOARDS) + 1:] for path in profiles)
    manifest = MANIFEST % (version(root), PACKAGE, names, BOARDS, boards)
    json.loads(package_json)  # well-formed, or this tool is wrong
    return {"package.json": package_json, "manifest.py": manifest}


MANIFEST = """# Written by tools/pkgjson.py -- do not edit. Freezes lwm2m_mpy into a MicroPython firmware (its bytecode
# then stays in flash, not in the heap), e.g.
#   make -C ports/esp32 BOARD=ESP32_GENERIC FROZEN_MANIFEST=/path/to/lwm2m_mpy/manifest.py
# The unix-port command line and the CircuitPython/CPython shims are left out, as in package.json; the
# MicroPython board profiles are a package of their own (run("pico_w") imports boards.pico_w).
metadata(description="OMA LwM2M 1.1 client", version="%s")
include("$(PORT_DIR)/boards/manifest.py")
package("%s", files=[
%s,
], opt=3)
package("%s", files=[
%s,
], opt=3)
"""


def main(argv=None):
    parser = argparse.ArgumentParser(description="write or check package.json for mip")
    parser.add_argument("--check", action="store_true", help="exit 1 if package.json is out of date")
    args = parser.parse_args(argv)
    stale = []
    for name, text in render().items():
        path = os.path.join(ROOT, name)
        if args.check:
            try:
                with open(path) as f:
                    if f.read() == text:
                        continue
            except OSError:
                pass
            stale.append(name)
        else:
            with open(path, "w") as f:
                f.write(text)
    if stale:
        print("%s out of date: run python tools/pkgjson.py" % " and ".join(stale), file=sys.stderr)
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
