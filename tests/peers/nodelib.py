"""Drive the independent LwM2M server ``lwm2m-node-lib`` (npm, Telefonica, 1.4.0) from tests.

``tools/nodelib/server.js`` wraps the library and talks JSON lines over stdin/stdout; this module
starts it as a subprocess and offers a blocking API::

    with NodeLibServer() as srv:              # binds 127.0.0.1, a free UDP port: srv.port
        ev = srv.wait_event("register", ep="dev1", timeout=10)
        srv.read("dev1", "/3/0/0")            # -> "Acme"
        srv.write("dev1", "/1/0/1", "120")
        srv.execute("dev1", "/3/0/4")
        obs = srv.observe("dev1", "/3/0/13")  # obs.initial, obs.next(timeout) -> value
        srv.cancel("dev1", "/3/0/13")

Error answers raise :class:`NodeLibError` (``.code`` holds the CoAP code such as ``"4.04"``
when the library gave one). A missing ``node``/``npm`` is a hard error, never a skip.

The library's quirks (pinned by tests/test_nodelib_peer.py):
it only handles single-resource paths (/O/I/R) for read/write/execute/observe, writes with the
legacy content format 1541, never ACKs a CON response, and drops the Observe=0 response (the
harness reports that value as ``Observation.initial`` by peeking at the raw response).
"""

import collections
import hashlib
import itertools
import json
import os
import shutil
import subprocess
import tempfile
import threading
import time

try:
    import fcntl
except ImportError:  # pragma: no cover - not on the test hosts
    fcntl = None

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
NODELIB_DIR = os.path.join(REPO, "tools", "nodelib")
SERVER_JS = os.path.join(NODELIB_DIR, "server.js")

__all__ = ["NodeLibServer", "NodeLibError", "NodeLibTimeout", "Observation", "ensure_installed"]


class NodeLibError(RuntimeError):
    """The server answered a command with an error."""

    def __init__(self, op, ep, path, message, code=None):
        self.op, self.ep, self.path, self.code, self.message = op, ep, path, code, message
        where = " ".join(str(x) for x in (ep, path) if x is not None)
        super().__init__("lwm2m-node-lib %s %s failed: %s" % (op, where, message))


class NodeLibTimeout(NodeLibError, TimeoutError):
    """No answer/event in time."""


def _tool(name):
    path = shutil.which(name)
    if not path:
        raise RuntimeError(
            "%r not found on PATH: the lwm2m-node-lib test peer needs Node.js (>= 8, tested "
            "with 20) and npm" % name
        )
    return path


def ensure_installed(timeout=300):
    """Run ``npm ci`` in tools/nodelib unless lwm2m-node-lib is already installed there."""
    marker = os.path.join(NODELIB_DIR, "node_modules", "lwm2m-node-lib", "package.json")
    if os.path.exists(marker):
        return
    npm = _tool("npm")
    _tool("node")
    # lock outside the repo (nothing to git-ignore): one install at a time per checkout
    digest = hashlib.sha1(NODELIB_DIR.encode()).hexdigest()[:12]
    lock_path = os.path.join(tempfile.gettempdir(), "lwm2m_mpy-nodelib-npm-ci-%s.lock" % digest)
    with open(lock_path, "w") as lock:
        if fcntl is not None:
            fcntl.flock(lock, fcntl.LOCK_EX)  # parallel test workers: one install
        try:
            if os.path.exists(marker):
                return
            proc = subprocess.run(
                [npm, "ci", "--no-audit", "--no-fund"],
                cwd=NODELIB_DIR,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                timeout=timeout,
            )
            if proc.returncode != 0 or not os.path.exists(marker):
                raise RuntimeError(
                    "npm ci in %s failed (rc=%s):\n%s"
                    % (NODELIB_DIR, proc.returncode, proc.stdout.decode("utf-8", "replace")[-4000:])
                )
        finally:
            if fcntl is not None:
                fcntl.flock(lock, fcntl.LOCK_UN)


class Observation:
    """An observation started with :meth:`NodeLibServer.observe`."""

    def __init__(self, server, cmd_id, ep, path, initial):
        self.server, self.id, self.ep, self.path = server, cmd_id, ep, path
        self.initial = initial  # payload of the Observe=0 response (the lib itself drops it)

    def next(self, timeout=10):
        """Wait for the next notification value of this observation."""
        ev = self.server.wait_event(
            "notify", ep=self.ep, timeout=timeout, predicate=lambda e: e.get("id") == self.id
        )
        return ev["value"]

    def cancel(self, timeout=10):
        return self.server.cancel(self.ep, self.path, timeout=timeout)

    def __repr__(self):
        return "Observation(id=%r, ep=%r, path=%r)" % (self.id, self.ep, self.path)


class NodeLibServer:
    """lwm2m-node-lib as a subprocess bound to ``host`` (loopback).

    ``port=None`` lets the OS pick a free UDP port (server.js binds port 0 and fixes up the
    library's idea of its own port); the chosen one is in ``self.port`` after start.
    """

    def __init__(self, port=None, host="127.0.0.1", start_timeout=60, lifetime_check_ms=1000,
                 autostart=True):
        self.host = host
        self.port = port
        self.start_timeout = start_timeout
        self.lifetime_check_ms = lifetime_check_ms
        self.proc = None
        self._ids = itertools.count(1)
        self._cond = threading.Condition()
        self._events = []          # every event, in arrival order
        self._consumed = set()     # indexes handed out by wait_event
        self._answers = {}         # id -> answer dict
        self._stderr = collections.deque(maxlen=200)
        self._write_lock = threading.Lock()
        self._closed = False
        self._threads = []
        if autostart:
            self.start()

    # -- lifecycle --------------------------------------------------------------------------
    def start(self):
        if self.proc is not None:
            return self
        node = _tool("node")
        ensure_installed()
        env = {k: v for k, v in os.environ.items() if not k.startswith("LWM2M_")}
        cmd = [node, "--no-warnings", SERVER_JS, "--port", str(self.port or 0), "--host", self.host,
               "--lifetime-check-ms", str(int(self.lifetime_check_ms))]
        self.proc = subprocess.Popen(
            cmd, cwd=NODELIB_DIR, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, bufsize=0,
        )
        for target, name in ((self._read_stdout, "nodelib-stdout"), (self._read_stderr, "nodelib-stderr")):
            t = threading.Thread(target=target, name=name, daemon=True)
            t.start()
            self._threads.append(t)
        try:
            ready = self.wait_event("ready", timeout=self.start_timeout)
        except NodeLibTimeout:
            self.stop()
            raise NodeLibTimeout("start", None, None, "server.js did not become ready in %ss; "
                                 "stderr:\n%s" % (self.start_timeout, self.stderr_text()))
        self.port = ready["port"]
        return self

    def stop(self, timeout=5):
        """Close stdin (server.js exits on EOF); kill it if it lingers. Idempotent."""
        proc = self.proc
        if proc is None:
            return
        try:
            if proc.stdin and not proc.stdin.closed:
                proc.stdin.close()
        except OSError:
            pass
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=timeout)
        for t in self._threads:
            t.join(timeout=2)
        for f in (proc.stdout, proc.stderr):
            try:
                f.close()
            except OSError:
                pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
        return False

    def __del__(self):
        try:
            if self.proc is not None and self.proc.poll() is None:
                self.proc.kill()
        except Exception:
            pass

    @property
    def address(self):
        return (self.host, self.port)

    def stderr_text(self):
        with self._cond:
            return "".join(self._stderr)

    # -- reader threads ---------------------------------------------------------------------
    def _read_stdout(self):
        for raw in iter(self.proc.stdout.readline, b""):
            line = raw.decode("utf-8", "replace").strip()
            if not line:
                continue
            try:
                msg = json.loads(line)
            except ValueError:
                with self._cond:
                    self._stderr.append("[stdout, not JSON] " + line + "\n")
                continue
            with self._cond:
                if isinstance(msg, dict) and "event" in msg:
                    msg["_t"] = time.monotonic()
                    self._events.append(msg)
                elif isinstance(msg, dict) and "ok" in msg:
                    self._answers[msg.get("id")] = msg
                else:
                    self._stderr.append("[stdout, unknown] " + line + "\n")
                self._cond.notify_all()
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def _read_stderr(self):
        for raw in iter(self.proc.stderr.readline, b""):
            with self._cond:
                self._stderr.append(raw.decode("utf-8", "replace"))

    # -- events -----------------------------------------------------------------------------
    def events(self, kind=None):
        """A copy of every event received so far (optionally only those of one kind)."""
        with self._cond:
            return [dict(e) for e in self._events if kind is None or e["event"] == kind]

    def wait_event(self, kind, ep=None, timeout=10, predicate=None):
        """Return the oldest not yet returned event of ``kind`` (and ``ep``); wait for one."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for i, e in enumerate(self._events):
                    if i in self._consumed or e["event"] != kind:
                        continue
                    if ep is not None and e.get("ep") != ep:
                        continue
                    if predicate is not None and not predicate(e):
                        continue
                    self._consumed.add(i)
                    return dict(e)
                left = deadline - time.monotonic()
                if left <= 0:
                    raise NodeLibTimeout("wait_event", ep, None, "no %r event within %ss (got: %s)"
                                         % (kind, timeout, [e["event"] for e in self._events]))
                if self._closed:
                    raise NodeLibError("wait_event", ep, None, "server.js exited (rc=%s) while "
                                       "waiting for %r; stderr:\n%s"
                                       % (self.proc.poll(), kind, "".join(self._stderr)))
                self._cond.wait(left)

    # -- commands ---------------------------------------------------------------------------
    def _command(self, op, ep=None, path=None, timeout=10, **extra):
        if self.proc is None or self.proc.poll() is not None:
            raise NodeLibError(op, ep, path, "server.js is not running; stderr:\n" + self.stderr_text())
        cid = next(self._ids)
        cmd = {"id": cid, "op": op, "timeout": timeout}
        if ep is not None:
            cmd["ep"] = ep
        if path is not None:
            cmd["path"] = path
        cmd.update(extra)
        data = (json.dumps(cmd) + "\n").encode()
        with self._write_lock:
            try:
                self.proc.stdin.write(data)
                self.proc.stdin.flush()
            except (OSError, ValueError) as e:
                raise NodeLibError(op, ep, path, "cannot write to server.js: %s" % e)
        # server.js always answers within `timeout`; allow slack for the pipe
        deadline = time.monotonic() + timeout + 5
        with self._cond:
            while cid not in self._answers:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise NodeLibTimeout(op, ep, path, "no answer from server.js")
                if self._closed:
                    raise NodeLibError(op, ep, path, "server.js exited; stderr:\n" + "".join(self._stderr))
                self._cond.wait(left)
            ans = self._answers.pop(cid)
        if not ans.get("ok"):
            err = ans.get("error", "unknown error")
            cls = NodeLibTimeout if err.startswith("timeout after") else NodeLibError
            raise cls(op, ep, path, err, code=ans.get("code"))
        return cid, ans.get("value")

    def read(self, ep, path, timeout=10):
        """Read one resource (/O/I/R); returns the payload text."""
        return self._command("read", ep, path, timeout)[1]

    def write(self, ep, path, value, timeout=10):
        """Write one resource (/O/I/R) as text (the lib sends Content-Format 1541)."""
        return self._command("write", ep, path, timeout, value=str(value))[1]

    def execute(self, ep, path, value=None, timeout=10):
        """Execute one resource (/O/I/R), optionally with a text argument payload."""
        extra = {} if value is None else {"value": str(value)}
        return self._command("execute", ep, path, timeout, **extra)[1]

    def discover(self, ep, path, timeout=10):
        """Discover /O, /O/I or /O/I/R; returns the link-format text."""
        return self._command("discover", ep, path, timeout)[1]

    def observe(self, ep, path, timeout=10):
        """Observe one resource; returns an :class:`Observation` once the client accepted it."""
        cid, initial = self._command("observe", ep, path, timeout)
        return Observation(self, cid, ep, path, initial)

    def cancel(self, ep, path, timeout=10):
        """Forget an observation (the lib only closes its stream; it sends nothing)."""
        return self._command("cancel", ep, path, timeout)[1]

    def list_devices(self, timeout=10):
        """Registered devices: dicts with id, ep, lifetime, address, port, ..."""
        return self._command("list", timeout=timeout)[1]

    def ping(self, timeout=10):
        return self._command("ping", timeout=timeout)[1]
