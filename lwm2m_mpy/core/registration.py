"""Registration interface (LwM2M 1.1 Core §6.2, Transport §6.2.2): Register, Update, De-register, retries."""
from micropython import const

from .._compat import ticks_add, ticks_diff
from ..errors import CoapError

_URI_PATH = const(11)
_URI_QUERY = const(15)
_CONTENT_FORMAT = const(12)
_LOCATION_PATH = const(8)

_POST = const(2)
_DELETE = const(4)
_LINK = const(40)

_IDLE = const(0)  # not started
_REGISTERING = const(1)
_REGISTERED = const(2)
_DEREGISTERING = const(3)
_STOPPED = const(4)


class Registration:
    """Keeps the client registered with one server. Driven by `step(now)`; talks through an Exchange.

    Lifetime (/1/x/1) and binding (/1/x/7) are read from the Server object each time, so a Write to
    them is reported by the next Update without a second copy of the value.
    """

    iid = 0  # the Server object instance (/1/iid) of this account: class default, set for other accounts
    fail = None  # fail(now, code) -> True if it took over after a failed Register (core/servers.py)

    def __init__(self, ex, endpoint, objs, log=None, version="1.1", root_link=True, retry_ms=60000):
        self.ex = ex
        self.ep = endpoint
        self.objs = objs
        self.log = log
        self.version = version
        self.root_link = root_link
        self.retry_ms = retry_ms
        self.state = _IDLE
        self.location = None  # Location-Path segments from the 2.01
        self.due = 0
        self.failures = 0
        self.sent = None  # (lifetime, binding, links) in the Register/Update in flight or last sent
        self.acked = None  # ... and as the server last confirmed them
        self.until = 0  # ticks when the server drops the registration unless updated
        self.queue = False  # queue mode: told to the server in Register
        self.want_update = False
        self.done = None  # called once De-register is answered or timed out

    def links(self):
        """Object list (§6.2.1): `</1>;ver=1.2,</1/0>,</3>;ver=1.2,</3/0>`; never the Security object."""
        out = []
        for oid in sorted(self.objs):
            o = self.objs[oid]
            t = o.t
            if oid == 0:
                continue
            if t[3] != 1 or t[4] != 0:
                out.append("</%d>;ver=%d.%d" % (oid, t[3], t[4]))
            elif not o.inst:
                out.append("</%d>" % oid)
            for iid in sorted(o.inst):
                out.append("</%d/%d>" % (oid, iid))
        return ",".join(out)

    def start(self, now):
        self.state = _REGISTERING
        self.due = now
        self.failures = 0

    def step(self, now):
        """Send whatever is due; returns the next deadline or None."""
        st = self.state
        if st == _IDLE or st >= _DEREGISTERING or self.ex.busy():
            return None
        if ticks_diff(self.due, now) > 0 and not (self.want_update and st == _REGISTERED):
            return self.due
        self._send(now, st == _REGISTERED)
        return None

    def _send(self, now, update):
        srv = self.objs[1].inst[self.iid]  # looked up each time: a factory reset or bootstrap replaces it
        lt = srv[1]
        b = srv[7]
        links = self.links()
        w = self.ex.begin(_POST)
        if update:  # §6.2.2: only what changed since the last Register/Update
            for seg in self.location:
                w.option(_URI_PATH, seg)
            slt, sb, slinks = self.sent
            q = []
            if links != slinks:
                w.option(_CONTENT_FORMAT, _LINK)
            if lt != slt:
                q.append("lt=%d" % lt)
            if b != sb:
                q.append("b=" + b)
        else:
            w.option(_URI_PATH, "rd")
            w.option(_CONTENT_FORMAT, _LINK)
            slinks = None
            q = ["ep=" + self.ep, "lt=%d" % lt, "lwm2m=" + self.version, "b=" + b]
            if self.queue:  # 1.1 says queue mode with a Q parameter, 1.0 with a Q in the binding
                if self.version < "1.1":
                    q[3] += "Q"
                else:
                    q.append("Q")
        for s in q:
            w.option(_URI_QUERY, s)
        if links != slinks:
            w.marker()
            if self.root_link and not update:  # 1.1: the preferred format as one ct (what Wakaama and Leshan parse)
                w.put(b'</>;rt="oma.lwm2m";ct=112,' if self.version >= "1.1" else b'</>;rt="oma.lwm2m",')
            w.put(links.encode())
            q.append(links)
        self.sent = (lt, b, links)
        self.want_update = False
        if self.log:
            self.log("%s %s" % ("update" if update else "register", " ".join(q)))
        self.ex.request(self._answer, now)

    def _answer(self, m):
        """Response (or None: timeout/RST) to our Register, Update or De-register."""
        now = self.ex.now
        st = self.state
        code = m.code if m else 0
        why = "%d.%02d" % (code >> 5, code & 31) if m else "no answer"
        if st == _DEREGISTERING:
            self.state = _STOPPED
            if self.log:
                self.log("deregistered" if code == 66 else "deregister: " + why)
            if self.done:
                self.done()
            return
        ok = code == 68 and st == _REGISTERED
        if code == 65 and st == _REGISTERING:
            try:
                loc = []
                for seg in m.strings(_LOCATION_PATH):
                    loc.extend(seg.split("/"))  # one server sends "rd/1" as a single option
                self.location = [s for s in loc if s]  # a new list: observers see a new registration by it
                self.state = _REGISTERED
                ok = True
            except CoapError:  # a Location-Path that is not UTF-8: no usable location, Register failed
                why = "bad Location-Path"
        srv = self.objs[1].inst[self.iid]
        lt = srv[1] * 1000
        if ok:
            # Next Update before the lifetime runs out, leaving room for CoAP retransmissions
            self.due = ticks_add(now, lt - max(lt // 10, min(93000, lt // 2)))
            self.until = ticks_add(now, lt)
            self.acked = self.sent  # a new tuple each time: observers see an answered Register/Update by it
            self.failures = 0
            if self.log:
                self.log("registered /" + "/".join(self.location) if code == 65 else "updated")
            return
        # Communication Retry Timer (/1/x/18), doubled for each failed attempt (§6.2.1.1), at most 1 h
        delay = min(srv.get(18, self.retry_ms // 1000) * 1000 << min(self.failures, 16), 3600000)
        if st == _REGISTERED and m is None and ticks_diff(self.until, ticks_add(now, delay)) > 0:
            # Unanswered while the server still holds the registration (and its observations): the link
            # is down, not the registration. Try the Update again, with what it had to say.
            self.failures += 1
            self.sent = self.acked
            self.due = ticks_add(now, delay)
            if self.log:
                self.log("update failed (%s); again in %d s" % (why, delay // 1000))
            return
        if st == _REGISTERED:
            # Update refused (4.04: the server forgot us) or too late: register from scratch (§6.2.2)
            delay = 0
        else:
            # Register failed: back off as above. With a Bootstrap-Server account core/servers.py also
            # counts attempts and sequences (§6.2.1.1) and may bootstrap.
            self.failures += 1
            if self.fail and self.fail(now, code, why):
                return
        self.state = _REGISTERING
        self.due = ticks_add(now, delay)
        if self.log:
            self.log("%s failed (%s); register in %d s" % ("update" if st == _REGISTERED else "register", why,
                                                          delay // 1000))

    def deregister(self, now, done=None):
        """Send De-register (§6.2.3) if registered; `done()` runs when it is answered or timed out."""
        self.ex.cancel()
        self.done = done
        if self.state != _REGISTERED:
            self.state = _STOPPED
            if done:
                done()
            return
        self.state = _DEREGISTERING
        w = self.ex.begin(_DELETE)
        for seg in self.location:
            w.option(_URI_PATH, seg)
        if self.log:
            self.log("deregister /" + "/".join(self.location))
        self.ex.request(self._answer, now)
