"""Shared pieces of the end-to-end tests (test_e2e_server.py, test_e2e_nodelib.py, test_robustness.py):
the client always runs inside the real `micropython` binary, every peer is on loopback, every wait is
bounded.

Why not the `mpy_process` fixture as it is: it starts micropython with cwd = the repository root, and
`micropython -m pkg` puts '' first on sys.path, so `-m lwm2m_mpy` would import the *source* tree from
the cwd even when MICROPYPATH starts with build/mpy. These helpers run the child in a scratch
directory instead (same MpyProcess line reader, same environment builder).
"""
import re
import subprocess
import sys
import threading

import pytest

import conftest

ROOT = conftest.ROOT
APPS = ROOT / "tests" / "apps"
MPY_TREE = ROOT / "build" / "mpy"
if str(ROOT / "tools") not in sys.path:
    sys.path.append(str(ROOT / "tools"))  # appended: tools/ must not shadow other modules


class ClientProcess(conftest.MpyProcess):
    """conftest.MpyProcess, started in `cwd` (never the repository root, see the module doc)."""

    def __init__(self, cmd, env, cwd, stdin=False):
        self.cmd = cmd
        self.proc = subprocess.Popen(cmd, cwd=str(cwd), env=env, stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     text=True, errors="replace", bufsize=1)
        self._lines = []
        self._cursor = 0
        self._cond = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def alive(self):
        return self.proc.poll() is None

    def command(self, line, timeout=10):
        """For apps that read commands (tests/apps/clock_app.py): send one line, wait for its "ok T";
        returns T, the app's clock in ms."""
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        return int(self.wait_line(r"^ok (\d+)$", timeout).group(1))

    def count(self, regex):
        pattern = re.compile(regex)
        return sum(1 for line in self.lines() if pattern.search(line))

    def assert_clean(self):
        """No traceback and no 5.00 in the client's output."""
        out = self.output()
        assert "Traceback" not in out, out
        assert "answer 5." not in out, out


def cli_args(server_uri, endpoint, *extra):
    return ["-m", "lwm2m_mpy", "--server", server_uri, "--endpoint", endpoint] + [str(x) for x in extra]


def app_args(app, *extra):
    return [str(APPS / app)] + [str(x) for x in extra]


@pytest.fixture
def mpy_client(micropython, tmp_path):
    """start(args, heapsize="256k", tree=None, path=()) -> ClientProcess running in tmp_path.
    MICROPYPATH: [tree], the repository, tests/, extra `path` entries, .frozen. Killed at teardown."""
    started = []
    cwd = tmp_path / "cwd"
    cwd.mkdir(exist_ok=True)

    def start(args, heapsize=conftest.DEFAULT_HEAP, tree=None, path=(), env=None, stdin=False):
        cmd = [micropython, "-X", "heapsize=" + heapsize] + [str(a) for a in args]
        environment = conftest.micropython_env(tree, env)
        if path:
            parts = environment["MICROPYPATH"].split(":")
            environment["MICROPYPATH"] = ":".join(parts[:-1] + [str(p) for p in path] + parts[-1:])
        process = ClientProcess(cmd, environment, cwd, stdin)
        started.append(process)
        return process

    yield start
    for process in started:
        process.kill()


def tree_is_stale():
    """True when build/mpy is missing or older than a library source."""
    for src in (ROOT / "lwm2m_mpy").rglob("*.py"):
        out = MPY_TREE / src.relative_to(ROOT).with_suffix(".mpy")
        if not out.exists() or out.stat().st_mtime < src.stat().st_mtime:
            return True
    return False


def ensure_mpy_tree():
    if tree_is_stale():
        proc = subprocess.run(["make", "mpy"], cwd=str(ROOT), stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, timeout=300)
        assert proc.returncode == 0, proc.stdout.decode("utf-8", "replace")
    assert (MPY_TREE / "lwm2m_mpy" / "__init__.mpy").exists()
    return MPY_TREE
