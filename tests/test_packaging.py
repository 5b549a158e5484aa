"""package.json (mip) and manifest.py (frozen firmware), both written by tools/pkgjson.py: up to date with
the tree, every URL a file of the repository, the same file list in both, nothing a MicroPython board does
not need (the unix-port CLI, the CircuitPython/CPython shims), and the MicroPython board profiles that
`run("pico_w")` imports as boards.pico_w (not the CircuitPython or CPython ones)."""
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def package_json():
    with open(os.path.join(ROOT, "package.json")) as f:
        return json.load(f)


def manifest_files():
    """Run manifest.py with stand-ins for MicroPython's manifest functions; the files it freezes."""
    got = {"packages": [], "files": []}

    def package(name, files=None, base_path=".", opt=None):
        got["packages"].append(name)
        got["files"] += ["%s/%s" % (name, f) for f in files]

    env = {"metadata": lambda **kw: got.setdefault("metadata", kw), "include": lambda path: None,
           "package": package}
    with open(os.path.join(ROOT, "manifest.py")) as f:
        exec(compile(f.read(), "manifest.py", "exec"), env)
    return got


def test_package_json_and_manifest_are_what_the_tool_writes():
    r = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "pkgjson.py"), "--check"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr


def test_every_url_is_a_file_of_the_repository_installed_at_the_same_path():
    doc = package_json()
    assert doc["deps"] == [] and doc["version"]
    for dest, src in doc["urls"]:
        assert dest == src and dest.startswith(("lwm2m_mpy/", "boards/")) and dest.endswith(".py")
        assert os.path.isfile(os.path.join(ROOT, src)), src


def test_the_board_gets_the_whole_library_but_the_cli_and_the_shims():
    listed = {dest for dest, _ in package_json()["urls"] if dest.startswith("lwm2m_mpy/")}
    tree = set()
    for folder, _, files in os.walk(os.path.join(ROOT, "lwm2m_mpy")):
        tree |= {os.path.relpath(os.path.join(folder, f), ROOT).replace(os.sep, "/") for f in files
                 if f.endswith(".py")}
    assert tree - listed == {"lwm2m_mpy/__main__.py", "lwm2m_mpy/_compat_other.py"}
    assert listed <= tree


def profile_port(path):
    """PORT = "..." of a board profile, read from its text (profiles are pure data)."""
    with open(path) as f:
        for line in f:
            if line.startswith("PORT ="):
                return line.split("=", 1)[1].split("#")[0].strip().strip("\"'")
    return None


def test_the_micropython_board_profiles_go_along_and_no_other():
    listed = {dest for dest, _ in package_json()["urls"] if dest.startswith("boards/")}
    folder = os.path.join(ROOT, "boards")
    profiles = {"boards/" + f: profile_port(os.path.join(folder, f)) for f in os.listdir(folder) if f.endswith(".py")}
    assert listed == {p for p, port in profiles.items() if port == "micropython"}
    assert "boards/pico_w.py" in listed and "boards/unix.py" in listed
    assert not any(port in ("circuitpython", "cpython") for p, port in profiles.items() if p in listed)
    assert not any("/" in p[len("boards/"):] for p in listed)  # not the examples (main.py is the user's)


def test_manifest_freezes_the_same_files():
    got = manifest_files()
    assert got["packages"] == ["lwm2m_mpy", "boards"]
    assert got["files"] == [dest for dest, _ in package_json()["urls"]]
    assert got["metadata"]["version"] == package_json()["version"]
