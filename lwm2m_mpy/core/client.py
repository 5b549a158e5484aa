"""The LwM2M client: wires the object store, device management, registration and a transport together.

Sans-IO at its heart (`feed(data, now)`, `step(now) -> deadline`), with two thin drivers: the blocking
`run()` (any port, CircuitPython included) and `await serve()` for asyncio applications (aio.py).
"""
from micropython import const
import gc
import sys

# Collect between the big imports: the .mpy loader's short-lived objects otherwise stay scattered
# between the long-lived ones, and a 48 KiB heap then has no room left for the client's buffers.
from .._compat import ticks_ms, ticks_diff, ticks_add, mem_free
from ..coap.exchange import Exchange

gc.collect()
from .dm import DM  # noqa: E402
from .store import Obj  # noqa: E402

gc.collect()
from .registration import Registration  # noqa: E402

gc.collect()
from ..objects import core  # noqa: E402

gc.collect()

_SET = const(1)
_EXE = const(2)
_REGISTERED = const(2)  # Registration states (core/registration.py)
_STOPPED = const(4)
_PRELOAD_FREE = const(36864)  # free bytes at start above which the DM modules load at once (leaves room for Observe)
_MAX_WAIT = const(1000)  # ms: the loop looks at its timers at least this often
_BYE_MS = const(5000)  # how long shutdown waits for the De-register answer


class Client:
    """An LwM2M client for one server.

    client = Client("my-device", "coap://192.168.1.10:5683", lifetime=300)
    client.set("/3/0/0", "Acme")                     # a value
    client.bind("/3/0/9", get=read_battery)          # a getter (and/or set=callback for writes)
    client.on_execute("/3/0/4", reboot)              # an executable resource
    client.run()                                     # or: await client.serve()
    """

    # Defaults kept on the class until first set: an instance dict that stays small is heap saved
    done = False
    active = 0  # ticks of the last datagram in or notification out
    dozing = False  # queue mode: asleep at the last look
    state = None  # the file that keeps objects 0, 1 and 2 across reboots (core/persist.py)
    peers = ()  # sessions with more LwM2M servers (core/servers.py: it also takes over step, poll, changed,
    # the DM's change report and shutdown for them, so that one server costs nothing of that)

    def __init__(self, endpoint, server, lifetime=300, binding="U", version="1.1", transport=None,
                 log=print, root_link=True, retry_s=60, buffer=1152, device=None, queue=False, awake_s=93,
                 sleep=None, store=8, confirm=10, psk=None, state=None, bootstrap=None, config=None, cert=None):
        self.endpoint = endpoint
        self.server = server
        self.log = log
        self.objs = objs = {}
        self.transport = transport
        self._later = []
        self._sends = []  # (paths, done) waiting for the exchange
        self.store = store  # notifications kept while the server is out of reach
        self.confirm = confirm  # every confirm-th notification is confirmable
        self.awake_s = awake_s if queue else 0  # queue mode: listen this long after traffic
        self.sleep = sleep  # sleep(ms) in queue mode, e.g. machine.lightsleep; None: wait on the socket
        self.dm = DM(objs, self._changed, log)
        self.dm.client = self
        self.ex = Exchange(transport and transport.send, self.dm.handle, buffer, log)
        # also sets up factory reset
        m = core
        if "add" not in m.__dict__:  # a client made before this one let go of it (below): load it again
            sys.modules.pop(m.__name__)
            m = __import__(m.__name__, None, None, ("add",))
        m.add(self, server, lifetime, binding, psk=psk, bootstrap=bootstrap, config=config, cert=cert,
              **(device or {}))
        # add's bytecode (0.9 KiB of heap from .mpy) is needed again only by a factory reset, which
        # loads the module anew (objects/core.py restore)
        m.__dict__.pop("add")
        self.reg = Registration(self.ex, endpoint, objs, log, version, root_link, retry_s * 1000)
        self.reg.queue = queue
        if state:
            self.dm._lazy("core.persist").load(self, state)
            self.state = state
        # With room to spare, load the Write/Create/... and Discover code now, while the heap is tidy:
        # loaded later, after hours of traffic, it may find no contiguous block. A small heap keeps
        # it on demand (core/dm.py).
        if not mem_free or mem_free() > _PRELOAD_FREE:
            self.dm._lazy("core.changes")
            self.dm._lazy("core.attributes")

    # -- application API ---------------------------------------------------------------------------
    def add(self, table, iid=None, values=None):
        """Add an object from its table (`T` of a tables/oNNN module) and, with `iid`, an instance."""
        oid = table[0] << 8 | table[1]
        obj = self.objs.get(oid)
        if obj is None:
            obj = self.objs[oid] = Obj(table)
        if iid is not None:
            obj.inst[iid] = dict(values or {})
            self._changed(oid, iid, None)
        return obj

    def _target(self, path):
        p = [int(x) for x in path.strip("/").split("/")]
        if p[1] > 1023:
            raise ValueError("instance ids up to 1023")  # hook keys stay small ints (core/store.py)
        obj = self.objs[p[0]]
        if p[1] not in obj.inst:
            obj.inst[p[1]] = {}
        return obj, p

    def set(self, path, value):
        """Set a resource value ("/3/0/0"); a multiple resource takes a dict {instance id: value}."""
        obj, p = self._target(path)
        obj.inst[p[1]][p[2]] = value
        self.changed(path)

    def changed(self, path):
        """Tell observers that a getter-backed resource ("/3303/0/5700") has a new value to read."""
        if self.dm.obs:
            p = [int(x) for x in path.strip("/").split("/")]
            self.dm.obs.changed(p[0], p[1], p[2])

    def send(self, paths, done=None):
        """Send (LwM2M 1.1): POST the current values of `paths` (["/3303/0/5700", ...]) to the server as
        SenML CBOR once registered; `done(ok, why)` hears the result ("2.04", "no answer", "muted ...")."""
        self._sends.append((paths, done))

    def bind(self, path, get=None, set=None):
        """Serve a resource from app code: `get()` returns the value; `set(value)` hears writes."""
        obj, p = self._target(path)
        if get:
            obj.hooks[p[1] << 16 | p[2]] = get
        if set:
            obj.hooks[_SET << 26 | p[1] << 16 | p[2]] = set

    def on_execute(self, path, fn):
        """`fn(args)` runs when the server executes the resource; args is the text the server sent."""
        obj, p = self._target(path)
        obj.hooks[_EXE << 26 | p[1] << 16 | p[2]] = fn

    def later(self, fn):
        """Run `fn()` after the current response has gone out (e.g. reboot after answering Execute)."""
        self._later.append(fn)

    def update(self, args=None):
        """Send a Registration Update now (also what executing /1/0/8 does; `args` is ignored)."""
        self.reg.want_update = True

    def restart(self):
        """Forget the registration and register from scratch, as a rebooted device would."""
        self.ex.cancel()
        self.start(self.ex.now)

    @property
    def registered(self):
        return self.reg.state == _REGISTERED

    def _changed(self, oid, iid, rid):
        # Lifetime, binding and the object list are what an Update reports (§6.2.2). Flagged in any state:
        # a change while the Register is out (a GNSS fix adding /6/0) goes out as an Update once registered;
        # building a Register clears the flag, since it reports everything anyway.
        if rid is None or oid == 1 and rid in (1, 7):
            if hasattr(self, "reg"):
                self.reg.want_update = True
        if self.dm.obs:
            self.dm.obs.changed(oid, iid, rid)
        if oid < 3 and self.state:  # Security, Server or Access Control changed: keep it
            self.dm._lazy("core.persist").save(self, self.state)

    def asleep(self, now):
        """Queue mode: nothing in flight and no traffic for awake_s seconds. The server then holds its
        requests until the client's next Update; notifications wait in the store (core/observe.py)."""
        a = self.awake_s > 0 and not self.ex.busy() and ticks_diff(now, self.active) >= self.awake_s * 1000
        if a != self.dozing:
            self.dozing = a
            if self.log:
                self.log("queue mode: asleep" if a else "queue mode: awake")
        return a

    # -- sans-IO core ------------------------------------------------------------------------------
    def start(self, now):
        """Register; a configuration other than one server account in /0/0 and /1/0 (several servers, a
        bootstrap account, a bootstrapped or stored one) goes through core/servers.py."""
        self.active = now
        s = self.objs[0].inst
        if list(s) == [0] and not s[0].get(1) and list(self.objs[1].inst) == [0] and (
                self.transport is None or self.server == s[0][0]):  # core/servers.py sets server to its URI
            self.open()
            self.reg.start(now)
        else:
            self.dm._lazy("core.servers").start(self, now)

    def feed(self, data, now):
        """One datagram from the server."""
        self.active = now
        self.ex.feed(data, now)
        if self._later:
            self.step(now)

    def step(self, now):
        """Fire timers; returns the next deadline (ticks ms) or None when nothing is scheduled."""
        while self._later:
            self._later.pop(0)()
        a = self.ex.step(now)
        b = self.reg.step(now)
        if a is None or b is not None and ticks_diff(a, b) > 0:
            a = b
        if self.dm.obs:
            b = self.dm.obs.step(now)
            if a is None or b is not None and ticks_diff(a, b) > 0:
                a = b
        if self._sends and self.reg.state == _REGISTERED and not self.ex.busy():
            self.dm._lazy("core.composite").send(self, now)
        return a

    # -- drivers -----------------------------------------------------------------------------------
    def open(self):
        """Create the transport for `server` unless one was given: UDP for coap://, DTLS with the Security
        object's pre-shared key for coaps:// (never plaintext for it). See transport/udp.py for_uri()."""
        if self.transport is None:
            gc.collect()  # the import below needs room (see the imports at the top)
            from ..transport.udp import for_uri  # imported here: a client given a transport never loads it

            sec = self.objs[0].inst[0]  # the Security object says where
            self.transport = for_uri(sec[0], sec, self.log)
            self.ex.send = self.transport.send  # straight to the socket: no extra call per datagram
        return self.transport

    def wait_ms(self, now):
        """Fire timers; how long the driver may wait for the socket (until the next deadline, <= 1 s)."""
        deadline = self.step(now)
        return _MAX_WAIT if deadline is None else max(0, min(ticks_diff(deadline, ticks_ms()), _MAX_WAIT))

    def poll(self, now):
        """One turn of the blocking driver: timers, wait for the socket (or sleep, in queue mode), handle what came."""
        ms = self.wait_ms(now)
        if self.sleep and self.asleep(now):
            self.sleep(ms)
        elif self.transport.wait(ms):
            self.drain()

    def drain(self):
        """Feed every datagram waiting on the transport."""
        t = self.transport
        feed = self.ex.feed
        while True:
            try:
                data = t.recv()
            except OSError as e:  # ICMP port unreachable: fail the outstanding request now
                if self.log:
                    self.log("server unreachable (%s)" % e)
                if self.ex.busy():
                    self.ex._finish(None)
                return
            if data is None:
                return
            now = ticks_ms()
            self.active = now
            feed(data, now, getattr(t, "cut", False))  # a transport may not know about cutting
            if self._later:
                self.step(now)
                if self.transport is not t:  # bootstrap finished: the old socket is closed
                    return

    def run(self, seconds=None):
        """Blocking loop: register, serve, keep registered. Ctrl-C (or `stop()`) de-registers and returns."""
        start = ticks_ms()
        self.start(start)
        try:
            while not self.done:
                now = ticks_ms()
                if seconds is not None and ticks_diff(now, start) >= seconds * 1000:
                    break
                try:
                    self.poll(now)
                except MemoryError:
                    # A crowded heap: drop the on-demand DM modules and the duplicate cache (all can
                    # be had again), so the next datagram can be read rather than spinning on this.
                    # Inline, not a method: a method measurably costs the 48 KiB budget (make bench:
                    # 50 KiB with one); aio.py repeats these lines.
                    self.dm.unload()
                    c = self.ex.c_mid
                    c[:] = self.ex.c_data[:] = [None] * len(c)
                    gc.collect()
                    if self.log:
                        self.log("out of memory")
        except KeyboardInterrupt:
            if self.log:
                self.log("interrupted")
        self.shutdown()

    def stop(self):
        self.done = True

    def shutdown(self, bye=None):
        """De-register (waiting at most 5 s for the answer) and close the transport. With several servers
        core/servers.py passes `bye`, where the other sessions count their answers: all are waited for."""
        if bye is None:
            bye = []
        self.reg.deregister(ticks_ms(), lambda: bye.append(1))
        end = ticks_add(ticks_ms(), _BYE_MS)
        while len(bye) <= len(self.peers) and ticks_diff(end, ticks_ms()) > 0:
            try:
                self.poll(ticks_ms())
            except MemoryError:  # no room to read the answer: stop waiting for it, still close
                break
        self.reg.state = _STOPPED
        self.transport.close()

    async def serve(self):
        """`run()` for asyncio apps (the loop lives in aio.py, imported only when used)."""
        from ..aio import serve

        await serve(self)
