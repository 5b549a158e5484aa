"""Test harness: the repo root on sys.path, a `<file>::micropython` item for every test module that
declares `MPY = True`, and fixtures for driving the MicroPython unix binary and UDP peers."""
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import sys
import threading
import time
from fnmatch import fnmatch
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TESTS = ROOT / "tests"
RUNNER = TESTS / "mpy_runner.py"
MPY_TIMEOUT = 60  # seconds for one module's micropython run
DEFAULT_HEAP = "256k"

# The library installs its own `micropython.const` shim (lwm2m_mpy/_compat.py); it only needs to be
# importable as `lwm2m_mpy`.
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

_MPY_FLAG = re.compile(r"^MPY = True\b", re.M)
_MPY_HEAP = re.compile(r"""^MPY_HEAP = ["']([0-9]+[kKmM]?)["']""", re.M)


def micropython_path():
    """The unix MicroPython: $MICROPYTHON, else the venv's, else the one on PATH."""
    path = os.environ.get("MICROPYTHON") or str(ROOT / ".venv" / "bin" / "micropython")
    if os.path.exists(path):
        return path
    found = shutil.which("micropython")
    if not found:
        raise RuntimeError("no micropython binary: run `make setup` or set MICROPYTHON")
    return found


def micropython_env(tree=None, extra=None):
    """Environment for a micropython child. MICROPYPATH replaces sys.path entirely, so it lists the
    compiled tree (if any) first, then the sources, tests/, and `.frozen` (asyncio is frozen into the
    unix binary and is not importable without it)."""
    tree = tree or os.environ.get("LWM2M_MPY_TREE")
    paths = [str(ROOT / tree)] if tree else []  # ROOT / an absolute path keeps the absolute path
    paths += [str(ROOT), str(TESTS), ".frozen"]
    env = dict(os.environ, MICROPYPATH=":".join(paths))
    env.update(extra or {})
    return env


# --- the `<file>::micropython` item ---------------------------------------------------------------

def pytest_collect_file(file_path, parent):
    # Read the source rather than import it: the flag decides collection, and importing here would
    # run module code twice. pytest's own Module collector still collects the file for CPython.
    if file_path.suffix != ".py":
        return None
    patterns = parent.config.getini("python_files")
    if not (parent.session.isinitpath(file_path) or any(fnmatch(file_path.name, p) for p in patterns)):
        return None
    source = file_path.read_text(encoding="utf-8", errors="replace")
    if not _MPY_FLAG.search(source):
        return None
    heap = _MPY_HEAP.search(source)
    return MpyFile.from_parent(parent, path=file_path, heapsize=heap.group(1) if heap else DEFAULT_HEAP)


class MpyFile(pytest.File):
    def __init__(self, *, heapsize, **kwargs):
        super().__init__(**kwargs)
        self.heapsize = heapsize

    def collect(self):
        yield MpyItem.from_parent(self, name="micropython")


class MpyFailed(Exception):
    pass


class MpyItem(pytest.Item):
    def runtest(self):
        cmd = [micropython_path(), "-X", "heapsize=" + self.parent.heapsize, str(RUNNER), str(self.path)]
        try:
            proc = subprocess.run(cmd, cwd=str(ROOT), env=micropython_env(), stdin=subprocess.DEVNULL,
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=MPY_TIMEOUT)
        except subprocess.TimeoutExpired as e:  # run() has killed the child and kept its output
            out = (e.stdout or b"").decode("utf-8", "replace")
            raise MpyFailed("timed out after %d s\n%s" % (MPY_TIMEOUT, out))
        out = proc.stdout.decode("utf-8", "replace")
        if proc.returncode != 0 or re.search(r"^FAIL ", out, re.M):
            raise MpyFailed("exit code %d\n%s" % (proc.returncode, out))

    def repr_failure(self, excinfo):
        if isinstance(excinfo.value, MpyFailed):
            return "micropython -X heapsize=%s: %s" % (self.parent.heapsize, excinfo.value)
        return super().repr_failure(excinfo)

    def reportinfo(self):
        return self.path, None, "%s::micropython" % self.path.name


# --- fixtures ---------------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def repo_root():
    return ROOT


@pytest.fixture(scope="session")
def micropython():
    return micropython_path()


@pytest.fixture(scope="session")
def free_udp_port():
    """A function returning a UDP port on 127.0.0.1 that was free a moment ago; never the same twice
    in a session, so two peers started in one test do not collide."""
    given = set()

    def pick():
        for _ in range(100):
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                s.bind(("127.0.0.1", 0))
                port = s.getsockname()[1]
            if port not in given:
                given.add(port)
                return port
        raise RuntimeError("no free UDP port")

    return pick


class MpyProcess:
    """A running `micropython` with stdout+stderr merged and collected line by line by a thread."""

    def __init__(self, cmd, env):
        self.cmd = cmd
        # Not the repo root: MicroPython puts '' first on sys.path, so from there `-m lwm2m_mpy` would
        # import the .py sources even when MICROPYPATH names the compiled tree.
        self.proc = subprocess.Popen(cmd, cwd=tempfile.gettempdir(), env=env, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     text=True, errors="replace", bufsize=1)
        self._lines = []
        self._cursor = 0  # wait_line() searches lines after the previous match (expect-style)
        self._cond = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self):
        for line in self.proc.stdout:
            with self._cond:
                self._lines.append(line.rstrip("\n"))
                self._cond.notify_all()
        with self._cond:
            self._cond.notify_all()  # EOF: wake waiters so they can fail fast

    @property
    def pid(self):
        return self.proc.pid

    def lines(self):
        with self._cond:
            return list(self._lines)

    def output(self):
        return "\n".join(self.lines())

    def _fail(self, what):
        raise AssertionError("%s\ncommand: %s\n--- output ---\n%s" % (what, " ".join(self.cmd), self.output()))

    def wait_line(self, regex, timeout=10):
        """Wait for a line (after the last one matched) that re.search()es regex; returns the match.
        Fails with the collected output on timeout or when the process ends without printing it."""
        pattern = re.compile(regex)
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                while self._cursor < len(self._lines):
                    line = self._lines[self._cursor]
                    self._cursor += 1
                    match = pattern.search(line)
                    if match:
                        return match
                if not self._reader.is_alive():
                    break
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(left)
        try:  # output ended: the exit code is moments away
            rc = self.proc.wait(1) if not self._reader.is_alive() else None
        except subprocess.TimeoutExpired:
            rc = None
        self._fail("no line matching %r within %s s%s" % (
            pattern.pattern, timeout, "" if rc is None else " (exited with %d)" % rc))

    def send_signal(self, sig=signal.SIGINT):
        self.proc.send_signal(sig)

    def wait_exit(self, timeout=10):
        """Wait for the process to end; returns its exit code (negative: killed by that signal)."""
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self._fail("still running after %s s" % timeout)
        self._reader.join(2)  # let the reader pick up the last lines
        return rc

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                pass
        self._reader.join(2)
        self.proc.stdout.close()


@pytest.fixture
def mpy_process(micropython):
    """Start `micropython -X heapsize=.. <args>`: mpy_process(args, heapsize="256k", env=None, tree=None).
    env adds to (and may override) the environment; tree (e.g. "build/mpy") goes first on MICROPYPATH,
    default $LWM2M_MPY_TREE. Every process is killed at teardown."""
    started = []

    def start(args, heapsize=DEFAULT_HEAP, env=None, tree=None):
        cmd = [micropython, "-X", "heapsize=" + heapsize] + [str(a) for a in args]
        process = MpyProcess(cmd, micropython_env(tree, env))
        started.append(process)
        return process

    yield start
    for process in started:
        process.kill()
