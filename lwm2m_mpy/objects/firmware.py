"""Firmware Update, object 5 (LwM2M 1.1 Core E.6): the state machine of the spec's figure over a sink
(docs/fota.md).

Push: the Package (0) comes block by block (core/blockwise.py, RFC 7959 Block1) to this instance, its
stream hook (a Write without Block1 comes through its setter), and goes through the package verifier
(fota/package.py) into the sink, never into the store.
Pull: a Package URI (1) starts fota/pull.py, driven from poll(). Update (2) applies through the sink once
the Execute's answer is out; after the restart, sink.pending() says how it went, reported once the client
is registered again. State, Update Result, PkgName/PkgVersion and a pull's resume point (URI, offset,
ETag, size) live in a small JSON file, written at each transition and every 16 KiB of a pull.

    fw = make(client, 5, 0, sink, {"file": "fota.json"})   # then board.drive(client, [fw])

cfg: "file" (default fota.json beside the client's state file), "max" (the largest package in bytes:
a push announcing more is answered 4.13; default the sink's `max`, else no limit), "szx" (the largest
block taken, 4-6: a larger one is answered with this size, RFC 7959 §2.3).
"""
from micropython import const
import json
import os

from .._compat import ticks_diff
from ..errors import CoapError

# Hook keys (core/store.py): kind << 26 | iid << 16 | rid; kind 3 is a stream (core/blockwise.py)
_SET = const(1 << 26)
_EXE = const(2 << 26)
_STREAM = const(3 << 26)
_PACKAGE = const(0)
_URI = const(1)
_UPDATE = const(2)
_STATE = const(3)
_RESULT = const(5)
_NAME = const(6)
_VERSION = const(7)
_PROTOCOLS = const(8)
_METHOD = const(9)
_CANCEL = const(10)  # object version 1.2 (the registry's table): result 10
# State (3)
_IDLE = const(0)
_DOWNLOADING = const(1)
_DOWNLOADED = const(2)
_UPDATING = const(3)
# Update Result (5): 0 initial, 1 updated, 2 no room, 3 out of RAM, 4 connection lost, 5 integrity check,
# 6 package type, 7 invalid URI, 8 update failed, 9 unsupported protocol (10 cancelled)
_NOT_ALLOWED = const(133)  # 4.05
_POLL = const(1000)  # ms between polls while no pull runs (the client's loop wakes this often anyway)
_SAVE = const(14)  # a pull's resume point is saved whenever its offset crosses a 16 KiB boundary
_STALL = const(247000)  # ms without a block before a push counts as lost (EXCHANGE_LIFETIME, RFC 7252)


def make(client, oid, iid, sink, cfg):
    """Add object 5 with instance `iid` over `sink` (docs/fota.md); returns the instance (poll(now) -> ms)."""
    if oid != 5:
        raise ValueError("firmware is object 5")
    t = __import__("lwm2m_mpy.tables.o5", None, None, ("T",)).T
    return Firmware(client, client.add(t, iid), iid, sink, cfg)


def _result(e):
    """The Update Result an exception stands for: a FotaError's own, 3 for MemoryError, 2 for a full
    flash (ENOSPC), else 8."""
    if isinstance(e, MemoryError):
        return 3
    a = e.args[0] if e.args else None
    if type(e).__name__ == "FotaError" and type(a) is int:
        return a
    return 2 if isinstance(e, OSError) and a == 28 else 8


class Firmware:
    """Instance /5/iid. It is its own stream hook: called (offset, payload, more) for each block of a
    Package write, with `max` and `szx` read by core/blockwise.py."""

    # Defaults on the class: the instance dict holds only what differs
    verifier = None  # the package verifier class; None: fota/package.py's Package (tests give stand-ins)
    puller = None  # the pull class; None: fota/pull.py's Pull
    max = 0  # the largest package (bytes), 0: no limit
    szx = 6  # the largest block taken (1024 bytes)
    pkg = None  # the verifier of the download under way
    pull = None  # the pull under way
    resume = None  # (offset, etag, size) of a pull to go on with at the first poll (after a reboot)
    wait = None  # after an update: the result to report once the client is registered (1 or 8)
    mark = 0  # a pull's offset when its resume point was saved
    seen = 0  # when the last block of a push came (the exchange's clock)

    def __init__(self, client, obj, iid, sink, cfg):
        self.c = client
        self.sink = sink
        self.log = client.log
        self.path = "/5/%d/%%d" % iid
        st = client.state
        self.file = cfg.get("file") or (st[: st.rfind("/") + 1] if st else "") + "fota.json"
        top = cfg.get("max") or getattr(sink, "max", 0)
        if top:
            self.max = top
        if "szx" in cfg:
            self.szx = cfg["szx"]
        try:  # CoAPS needs DTLS in the port's tls module (transport/dtls.py)
            import tls

            coaps = hasattr(tls, "PROTOCOL_DTLS_CLIENT")
        except ImportError:
            coaps = False
        d = self.d = obj.inst[iid]
        d[_PROTOCOLS] = {0: 0, 1: 1} if coaps else {0: 0}
        d[_METHOD] = 2  # pull and push
        k = iid << 16
        h = obj.hooks
        h[k | _URI] = lambda: self.uri
        h[_SET | k | _URI] = self.point
        h[_SET | k | _PACKAGE] = self.whole
        h[_STREAM | k | _PACKAGE] = self
        h[_EXE | k | _UPDATE] = self.update
        h[_EXE | k | _CANCEL] = lambda args: self.cancel(10)
        try:
            with open(self.file) as f:
                j = json.load(f)
        except (OSError, ValueError):  # none yet, or cut by a power loss: start afresh
            j = {}
        s = j.get("s", _IDLE)
        d[_RESULT] = j.get("r", 0)
        d[_NAME] = j.get("n", "")
        d[_VERSION] = j.get("v", "")
        self.uri = j.get("u", "")
        p = sink.pending()
        if p or s == _UPDATING:  # the update ran: how it went is told once registered again
            self.wait = 1 if p == "new" else 8
            s = _UPDATING
        elif s == _DOWNLOADING:
            if self.uri:  # a pull: go on from the saved point
                e = j.get("e")
                self.resume = (j.get("o", 0), e and bytes(e), j.get("z"))
            else:  # a push cut by the restart: the server has given up on it
                s = _IDLE
                d[_RESULT] = 4
        d[_STATE] = s

    # -- the state machine -------------------------------------------------------------------------
    def move(self, state, result):
        """Enter `state` with Update Result `result`: observers hear of what changed; the file keeps it."""
        d = self.d
        c = self.c
        if d[_STATE] != state:
            d[_STATE] = state
            c.changed(self.path % _STATE)
        if d[_RESULT] != result:
            d[_RESULT] = result
            c.changed(self.path % _RESULT)
        if self.log:
            self.log("firmware: state %d result %d" % (state, result))
        self.save()

    def save(self):
        d = self.d
        j = {"s": d[_STATE], "r": d[_RESULT], "n": d[_NAME], "v": d[_VERSION], "u": self.uri}
        p = self.pull
        if p:
            self.mark = j["o"] = p.offset
            j["z"] = p.size
            if p.etag:
                j["e"] = list(p.etag)
        tmp = self.file + ".tmp"
        try:
            with open(tmp, "w") as f:
                json.dump(j, f)
            os.rename(tmp, self.file)  # the old file or the new one, never half of one
        except OSError as e:
            if self.log:
                self.log("firmware: cannot save %s (%s)" % (self.file, e))

    def stop(self):
        p = self.pull
        self.pull = self.pkg = self.resume = None
        if p:
            p.cancel()

    def begin(self):
        """A new download: a fresh verifier over the sink, State Downloading, Update Result 0."""
        self.stop()
        V = self.verifier
        if V is None:
            from ..fota.package import Package as V
        self.pkg = V(self.sink, self.log)
        d = self.d
        d[_NAME] = d[_VERSION] = ""
        self.move(_DOWNLOADING, 0)
        return self.pkg

    def got(self):
        """The package is in and verified (length, SHA-256): Downloaded, with its name and version."""
        pkg = self.pkg
        self.pkg = self.pull = None
        d = self.d
        d[_NAME] = pkg.name or ""
        d[_VERSION] = pkg.version or ""
        self.c.changed(self.path % _NAME)
        self.c.changed(self.path % _VERSION)
        self.move(_DOWNLOADED, 0)

    def fail(self, e):
        """A download failed (`e` an Update Result or the exception): back to Idle with that result."""
        r = e if type(e) is int else _result(e)
        if self.log:
            self.log("firmware: download failed, result %d (%r)" % (r, e))
        self.stop()
        self.move(_IDLE, r)
        return r

    def cancel(self, result):
        """An empty Package URI or Package (result 0), or Cancel (10): back to Idle, the download dropped."""
        if self.d[_STATE] == _UPDATING:
            raise CoapError(_NOT_ALLOWED, "firmware update under way")
        self.stop()
        self.uri = ""
        d = self.d
        d[_NAME] = d[_VERSION] = ""
        self.move(_IDLE, result)

    # -- push: Package (0) -------------------------------------------------------------------------
    def __call__(self, offset, mv, more):
        """One block of a Package write (core/blockwise.py has checked its order)."""
        n = len(mv)
        self.seen = self.c.ex.now
        if offset == 0 and not more and (n == 0 or n == 1 and mv[0] == 0):  # empty or '\0': reset (E.6)
            return self.cancel(0)
        if offset == 0:
            if self.d[_STATE] >= _DOWNLOADED or self.pull or self.resume:
                raise CoapError(_NOT_ALLOWED, "firmware busy: cancel first")
        elif self.d[_STATE] != _DOWNLOADING or self.pkg is None or self.pull:
            raise CoapError(136, "no package transfer under way")
        r = 0
        try:
            (self.begin() if offset == 0 else self.pkg).write(mv)
            if not more:
                self.pkg.finish()
        except Exception as e:  # FotaError(result) of the verifier or its sink, MemoryError, OSError
            r = self.fail(e)
        if r:  # the result says why; the transfer stops here
            raise CoapError(141 if r == 2 else 160 if r == 3 else 128, "package refused: result %d" % r)
        if not more:
            self.got()

    def whole(self, v):
        """A Package in one Write without Block1 (core/changes.py stored it first): to the stream, not the store."""
        self.d.pop(_PACKAGE, None)
        if self.max and len(v) > self.max:
            raise CoapError(141, "package over %d bytes" % self.max)
        self(0, memoryview(v), False)

    # -- pull: Package URI (1) ---------------------------------------------------------------------
    def point(self, uri):
        self.d.pop(_URI, None)  # the getter serves it (a refused Write leaves the old one)
        if not uri:
            return self.cancel(0)
        if self.d[_STATE] != _IDLE:
            raise CoapError(_NOT_ALLOWED, "Package URI: not in state Idle")
        self.uri = uri
        self.start(0, None, None)

    def start(self, offset, etag, size):
        """Pull self.uri from `offset` (a resume: the verifier rebuilds what the sink holds)."""
        try:
            pkg = self.begin()
            at = pkg.resume(offset) if offset else 0
            P = self.puller
            if P is None:
                from ..fota.pull import Pull as P
            p = P(self.c, self.uri, pkg, self.log, self.done, resume=at)
            if at:
                p.etag = etag  # a package changed meanwhile is refused (result 4)
                p.size = size
        except Exception as e:
            return self.fail(e)
        if self.pkg is pkg:
            self.pull = p
            self.save()  # with the resume point

    def done(self, r):
        """The pull ended: 0 all in and verified (Pull called finish), else an Update Result."""
        if r:
            self.fail(r)
        else:
            self.got()

    # -- Update (2) --------------------------------------------------------------------------------
    def update(self, args):
        if self.d[_STATE] != _DOWNLOADED:
            raise CoapError(_NOT_ALLOWED, "Update needs state Downloaded")
        self.move(_UPDATING, 0)
        self.c.later(self.apply)

    def apply(self):
        """After the Execute's answer: tell observers of Updating now (a restart follows), then the sink
        installs and restarts. A sink that returns has installed without a restart: result when registered."""
        obs = self.c.dm.obs
        if obs:
            obs.step(self.c.ex.now)
        try:
            self.sink.apply()
        except Exception as e:  # nothing installed: the package is still there to try again
            r = _result(e)
            if self.log:
                self.log("firmware: update failed, result %d (%r)" % (r, e))
            return self.move(_IDLE if r == 5 else _DOWNLOADED, r)
        self.wait = 8 if self.sink.pending() == "rolled back" else 1

    # -- driven from the client's loop (board.drive) -------------------------------------------------
    def poll(self, now):
        r = self.wait
        if r is not None:
            if not self.c.registered:
                return _POLL
            self.wait = None
            if r == 1:
                try:
                    self.sink.confirm()  # the new firmware has reached the server: keep it
                except Exception as e:
                    r = _result(e)
            self.move(_IDLE, r)
        if self.resume:
            offset, etag, size = self.resume
            self.resume = None
            self.start(offset, etag, size)
        p = self.pull
        if p is None:
            if self.pkg and ticks_diff(now, self.seen) > _STALL:  # the server stopped pushing
                self.fail(4)
            return _POLL
        ms = p.poll(now)
        if self.pull is not p:  # over: the pull's own pace no longer matters
            return _POLL
        if p.offset >> _SAVE != self.mark >> _SAVE:
            self.save()
        return ms
