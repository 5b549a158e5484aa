"""Server accounts (LwM2M 1.1 Core §5.2.1, §6.2.1): which Security instance belongs to which Server instance,
the transport of an account, and a `Peer` for each LwM2M server after the first.

Loaded when the configuration is not the one factory account (Security /0/0 + Server /1/0): after a
bootstrap, from a stored or factory configuration file, or with several servers. A Peer is a Client that
shares the object store with the first one and has its own exchange, registration, transport,
observations and attributes: each server sees the same device through its own session.
"""
from micropython import const
import select


from ..coap.exchange import Exchange
from .client import Client
from .dm import DM
from .registration import Registration
from .._compat import ticks_add, ticks_diff, ticks_ms

_IDLE = const(0)
_REGISTERING = const(1)
_STOPPED = const(4)
_EXE = const(2 << 26)  # execute hooks (core/store.py)


def accounts(objs):
    """[(Server iid, Security iid, ssid)] of every complete LwM2M server account, in Registration Priority
    Order (/1/x/13, lowest first; none = after all), then by Short Server ID."""
    sec = objs[0].inst
    out = []
    for srv, s in objs[1].inst.items():
        ssid = s.get(0)
        for k in sorted(sec):
            if not sec[k].get(1) and sec[k].get(10) == ssid and sec[k].get(0):
                out.append((s.get(13, 65536), ssid, srv, k))
                break
    out.sort()
    return [(srv, k, ssid) for _, ssid, srv, k in out]


def bootstrap_account(objs):
    """The Security iid of the Bootstrap-Server account (/0/x/1 true), or None."""
    sec = objs[0].inst
    for k in sorted(sec):
        if sec[k].get(1) and sec[k].get(0):
            return k
    return None


def connect(c, sec, fresh=True):
    """Give client `c` the transport of Security instance `sec` (closing the one it had) and return it. When
    it cannot be made for now (out of memory, no route: logged) a _Nowhere stands in and is returned; a URI
    this client cannot use raises ValueError."""
    from ..transport.udp import for_uri

    if c.transport is not None:
        c.transport.close()
    if fresh:
        c.ex.cancel()
    c.transport = t = _Nowhere(c, sec)
    c.ex.send = t.send
    s = c.objs[0].inst[sec]
    try:
        t = for_uri(s[0], s, c.log)
    except (MemoryError, OSError) as e:
        if c.log:
            c.log("no transport for /0/%d yet (%s)" % (sec, e))
        return t
    c.transport = t
    c.server = s[0]  # the URI it was made for (Client.start)
    c.ex.send = t.send
    return t


class _Nowhere:
    """The transport while the real one cannot be made: nothing arrives, and each datagram to send first
    tries again to make it (CoAP's retransmissions and the registration back-off pace the attempts)."""

    sock = None

    def __init__(self, c, sec):
        self.c = c
        self.sec = sec

    def send(self, buf, n):
        t = connect(self.c, self.sec, False)
        if not isinstance(t, _Nowhere):
            t.send(buf, n)

    def wait(self, ms):
        return bool(select.poll().poll(ms))  # nothing to wait for: just the time

    def recv(self):
        return None

    def close(self):
        pass


def start(c, now):
    """Register with every usable account (the first through `c`, the others through Peers); with none,
    bootstrap if there is a Bootstrap-Server account; with neither, say so and stay idle."""
    stop_peers(c)
    sessions = []
    for srv, sec, ssid in accounts(c.objs):
        s = Peer(c) if sessions else c
        try:
            connect(s, sec)
        except ValueError as e:  # a URI this client cannot use: skip the account, loudly
            if c.log:
                c.log("server account /0/%d unusable: %s" % (sec, e))
            continue
        s.reg.iid = srv
        c.objs[1].hooks[_EXE | srv << 16 | 8] = s.update  # Registration Update Trigger of this account
        s.dm.ssid = ssid
        sessions.append(s)
    if not sessions:
        k = bootstrap_account(c.objs)
        if k is None:
            c.reg.state = _IDLE
            if c.log:
                c.log("no LwM2M server account and no bootstrap account: nothing to do")
            return
        c.dm.unload()  # room for the bootstrap: the Write and Discover code loads again when needed
        c.dm._lazy("core.bootstrap").start(c, now, k)
        return
    if len(sessions) == 1:  # one server has every right: access control is for several (Core §7.3)
        c.dm.ssid = 0
    k = bootstrap_account(c.objs)
    if k is not None:  # bootstrap on registration failure (/1/x/16) and the Bootstrap-Request Trigger (/1/x/9)
        def boot(*args):
            c.later(lambda: c.dm._lazy("core.bootstrap").start(c, c.ex.now, k))

        for s in sessions:
            s.reg.fail = _failed(s.reg, boot)
            c.objs[1].hooks[_EXE | s.reg.iid << 16 | 9] = boot
    c.peers = tuple(sessions[1:])
    c.socks = [0] * len(sessions)  # never a socket: the first poll makes the poller
    if c.peers:  # the first Client's loop drives them all: its methods for one session, widened
        if "wide" not in c.__dict__:  # once: a restart must not wrap it twice
            inner = c.step  # Client.step, or a board's poller over it (lwm2m_mpy/board.py)
            c.step = lambda now: step(c, now, inner(now))
            c.wide = True
        c.poll = lambda now: poll(c, now)
        c.changed = lambda path: _each(c, Client.changed, path)
        c.dm.changed = lambda oid, iid, rid: _each(c, Client._changed, oid, iid, rid)
        for p in c.peers:
            p.dm.changed = c.dm.changed
        c.shutdown = lambda: shutdown(c)
    for s in sessions:
        s.reg.start(now)


def _failed(reg, boot):
    """Registration.fail for an account that may fall back to bootstrap (§6.2.1.1): Communication Retry Count
    (/1/x/17, default 5) attempts make a sequence; the next sequence after the Sequence Delay Timer (/1/x/19,
    1 day); once Sequence Retry Count (/1/x/20, 1) sequences failed, or at once when the server refuses
    (4.xx), bootstrap if Bootstrap on Registration Failure (/1/x/16) is true, as it is by default."""
    seq = [0]

    def fail(now, code, why):
        s = reg.objs[1].inst[reg.iid]
        refused = code >> 5 == 4 and s.get(16, True)
        if reg.failures < s.get(17, 5) and not refused:
            return False
        reg.failures = 0
        seq[0] += 1
        if s.get(16, True) and (refused or seq[0] >= s.get(20, 1)):
            reg.state = _IDLE
            if reg.log:
                reg.log("register failed (%s): bootstrap" % why)
            boot()
            return True
        delay = min(s.get(19, 86400), 86400)  # ticks arithmetic holds 6 days at most
        reg.state = _REGISTERING
        reg.due = ticks_add(now, delay * 1000)
        if reg.log:
            reg.log("register failed (%s), %d attempts; again in %d s" % (why, s.get(17, 5), delay))
        return True

    return fail


def stop_peers(c):
    for p in c.peers:
        p.reg.state = _STOPPED
        if p.transport is not None:
            p.transport.close()
    c.peers = ()
    c.socks = [0]


class Peer(Client):
    """The session with one more LwM2M server, driven by the first Client's loop (`poll` below)."""

    def __init__(self, main):
        self.main = main
        self.endpoint = main.endpoint
        self.log = main.log
        self.objs = main.objs
        self.transport = None
        self.server = None
        self._later = main._later  # one list: whichever session answered, its after-work runs once
        self._sends = []
        self.store = main.store
        self.confirm = main.confirm
        self.awake_s = main.awake_s
        self.sleep = None
        self.dm = DM(main.objs, None, main.log)  # its own attributes and observations; changes go to main
        self.dm.client = self
        self.ex = Exchange(None, self.dm.handle, len(main.ex.tx.buf), main.log)
        r = main.reg
        self.reg = Registration(self.ex, main.endpoint, main.objs, main.log, r.version, r.root_link, r.retry_ms)
        self.reg.queue = r.queue

    def start(self, now):
        self.active = now
        self.reg.start(now)

    def restart(self):  # a reboot or factory reset concerns the device: every session
        self.main.restart()


def step(c, now, a):
    """The peers' timers: the earlier of deadline `a` and theirs."""
    for p in c.peers:
        b = p.step(now)
        if a is None or b is not None and ticks_diff(a, b) > 0:
            a = b
    return a


def poll(c, now):
    """One turn of the blocking driver with several sessions: wait on all their sockets at once. The poller
    is made again only when a socket changed (a DTLS session is a new socket after each handshake)."""
    ms = c.wait_ms(now)
    socks = c.socks
    new = False
    for i in range(len(socks)):
        s = c if i == 0 else c.peers[i - 1]
        k = s.transport.sock if s.transport is not None else None
        if k is not socks[i]:
            socks[i] = k
            new = True
    if new:
        c.poller = select.poll()
        for k in socks:
            if k is not None:
                c.poller.register(k, select.POLLIN)
    if c.poller.poll(ms):
        c.drain()
        for p in c.peers:
            p.drain()


def _each(c, method, *args):
    """`method` (a Client method for one session) for c and every peer. A Peer has no state file: the
    first Client's call saves."""
    method(c, *args)
    for p in c.peers:
        method(p, *args)


def shutdown(c):
    """Client.shutdown for every session: the peers' De-registers go out first, then the first Client's
    shutdown waits (at most 5 s, through `poll`: every socket) for all the answers."""
    bye = []
    for p in c.peers:
        p.reg.deregister(ticks_ms(), lambda: bye.append(1))
    Client.shutdown(c, bye)
    for p in c.peers:
        p.reg.state = _STOPPED
        p.transport.close()
