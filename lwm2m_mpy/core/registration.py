"""Registration interface (LwM2M 1.1 Core §6.2, Transport §6.2.2): Register, Update, De-register, retries."""
from micropython import const

from .._compat import ticks_add, ticks_diff
from ..coap.message import URI_PATH, URI_QUERY, CONTENT_FORMAT, LOCATION_PATH, CON

_POST = const(2)
_DELETE = const(4)
_LINK = const(40)

# States
IDLE = const(0)  # not started
REGISTERING = const(1)
REGISTERED = const(2)
DEREGISTERING = const(3)
STOPPED = const(4)


class Registration:
    """Keeps the client registered with one server. Driven by `step(now)`; talks through an Exchange."""

    def __init__(self, ex, endpoint, objs, server_obj, log=None, version="1.1", root_link=False,
                 retry_ms=60000, max_retry_ms=3600000):
        self.ex = ex
        self.ep = endpoint
        self.objs = objs  # {oid: Obj}: the object list is built from it
        self.srv = server_obj  # (Obj 1, iid): lifetime /1/x/1 and binding /1/x/7 are read live
        self.log = log
        self.version = version
        self.root_link = root_link
        self.retry_ms = retry_ms
        self.max_retry_ms = max_retry_ms
        self.state = IDLE
        self.location = None  # Location-Path segments from the 2.01
        self.due = 0
        self.failures = 0
        self.sent = None  # (lifetime, binding, links) last told to the server
        self.want_update = False
        self.registered_at = 0

    # -- what we tell the server -------------------------------------------------------------------
    def lifetime(self):
        obj, iid = self.srv
        return obj.get(iid, 1)

    def binding(self):
        obj, iid = self.srv
        return obj.get(iid, 7)

    def links(self):
        """Object list as a string (§6.2.1): `</1>;ver=1.2,</1/0>,</3>;ver=1.2,</3/0>`; never /0."""
        out = []
        for oid in sorted(self.objs):
            if oid == 0:
                continue
            o = self.objs[oid]
            v = o.version
            if v != "1.0":
                out.append("</%d>;ver=%s" % (oid, v))
            elif not o.inst:
                out.append("</%d>" % oid)
            for iid in sorted(o.inst):
                out.append("</%d/%d>" % (oid, iid))
        return ",".join(out)

    # -- state machine -----------------------------------------------------------------------------
    def start(self, now):
        self.state = REGISTERING
        self.due = now
        self.failures = 0

    def update(self):
        """Ask for an Update soon (a parameter changed, or the app or server triggered one)."""
        self.want_update = True

    def step(self, now):
        """Send whatever is due; returns the next deadline or None."""
        ex = self.ex
        if self.state in (IDLE, STOPPED) or ex.busy():
            return None
        if ticks_diff(self.due, now) > 0 and not (self.want_update and self.state == REGISTERED):
            return self.due
        if self.state == REGISTERING:
            self._register(now)
        elif self.state == REGISTERED:
            self._update(now)
        return None

    def _register(self, now):
        lt = self.lifetime()
        b = self.binding()
        links = self.links()
        w = self.ex.begin(_POST, CON)
        w.option(URI_PATH, "rd")
        w.uint_option(CONTENT_FORMAT, _LINK)
        w.option(URI_QUERY, "ep=" + self.ep)
        w.option(URI_QUERY, "lt=%d" % lt)
        w.option(URI_QUERY, "lwm2m=" + self.version)
        w.option(URI_QUERY, "b=" + b)
        w.marker()
        if self.root_link:
            w.put(b'</>;rt="oma.lwm2m",')
        w.put(links.encode())
        self.sent = (lt, b, links)
        if self.log:
            self.log("register ep=%s lt=%d b=%s lwm2m=%s %s" % (self.ep, lt, b, self.version, links))
        self.ex.request(self._on_register, now)

    def _on_register(self, m):
        now = self.ex.now
        if m is not None and m.code == 65:
            loc = []
            for seg in m.strings(LOCATION_PATH):
                loc.extend(seg.split("/"))  # one server sends "rd/1" as a single option
            self.location = [s for s in loc if s]
            self.state = REGISTERED
            self.failures = 0
            self.want_update = False
            self.registered_at = now
            self._schedule(now)
            if self.log:
                self.log("registered /%s" % "/".join(self.location))
            return
        self._failed(now, m, "register")

    def _failed(self, now, m, what):
        """Back off exponentially (Core §6.2.1.1 communication retry timer), then Register again."""
        delay = self.retry_ms << min(self.failures, 16)
        if delay > self.max_retry_ms:
            delay = self.max_retry_ms
        self.failures += 1
        self.state = REGISTERING
        self.due = ticks_add(now, delay)
        if self.log:
            why = "no answer" if m is None else "%d.%02d" % (m.code >> 5, m.code & 31)
            self.log("%s failed (%s); retry in %d s" % (what, why, delay // 1000))

    def _schedule(self, now):
        """Next Update before the lifetime runs out, leaving room for CoAP retransmissions."""
        lt = self.lifetime() * 1000
        margin = max(lt // 10, min(93000, lt // 2))
        self.due = ticks_add(now, lt - margin)

    def _update(self, now):
        lt = self.lifetime()
        b = self.binding()
        links = self.links()
        slt, sb, slinks = self.sent
        w = self.ex.begin(_POST, CON)
        for seg in self.location:
            w.option(URI_PATH, seg)
        changed = []
        if links != slinks:
            w.uint_option(CONTENT_FORMAT, _LINK)
        if lt != slt:  # §6.2.2: only parameters that changed go in the Update
            changed.append("lt=%d" % lt)
        if b != sb:
            changed.append("b=" + b)
        for q in changed:
            w.option(URI_QUERY, q)
        if links != slinks:
            w.marker()
            w.put(links.encode())
            changed.append(links)
        self.sent = (lt, b, links)
        self.want_update = False
        if self.log:
            self.log("update /%s %s" % ("/".join(self.location), " ".join(changed)))
        self.ex.request(self._on_update, now)

    def _on_update(self, m):
        now = self.ex.now
        if m is not None and m.code == 68:
            self._schedule(now)
            if self.log:
                self.log("updated")
            return
        # 4.04: the server forgot us; anything else or no answer: register from scratch (§6.2.2)
        if self.log:
            why = "no answer" if m is None else "%d.%02d" % (m.code >> 5, m.code & 31)
            self.log("update failed (%s); registering again" % why)
        self.state = REGISTERING
        self.due = now

    def deregister(self, now, done=None):
        """Send De-register (§6.2.3) if registered; `done()` runs when it is answered or timed out."""
        self.ex.cancel()
        if self.state != REGISTERED:
            self.state = STOPPED
            if done:
                done()
            return
        self.state = DEREGISTERING
        w = self.ex.begin(_DELETE, CON)
        for seg in self.location:
            w.option(URI_PATH, seg)
        if self.log:
            self.log("deregister /%s" % "/".join(self.location))

        def answered(m):
            self.state = STOPPED
            if self.log:
                self.log("deregistered" if m is not None and m.code == 66 else "deregister unanswered")
            if done:
                done()

        self.ex.request(answered, now)
