"""Host-side LwM2M 1.1 server on aiocoap: the Registration interface (Core §6.2, Transport §6.4), every
device-management operation (Core §6.3, with Read-/Write-Composite), information reporting (Core §6.4:
Observe and Observe-Composite with both ways of cancelling, Send on /dp), an in-process API for tests
(async `LwM2MServer`, blocking `ServerThread`) and a CLI for `make run`.

    with ServerThread() as server:                    # 127.0.0.1, a free port: server.port
        ...start a client against coap://127.0.0.1:<server.port>...
        reg = server.wait_for("register", "dev1", timeout=10)
        result = server.read("dev1", "/3/0", accept=TLV)  # Result(code="2.05", ..., value={0: ...})
        obs = server.observe("dev1", "/3303/0/5700")     # obs.first: Result; notifications follow
        obs.wait(2, timeout=5)                          # [Notification(seq=1, mtype="NON", ...), ...]
        obs.cancel()                                    # GET Observe=1 (proactive=False: RST the next)
        sent = server.wait_for("send", "dev1")          # sent.values == {"/3303/0/5700": 23.5}

CLI: python tools/lwm2m_server.py [--host 127.0.0.1] [--port 5683] [--read-every S] [--quiet]
     [--registry DIR] [--observe PATH ...] [--pmin S] [--pmax S]
"""
import argparse
import asyncio
import concurrent.futures
import dataclasses
import functools
import inspect
import ipaddress
import json
import logging
import secrets
import signal
import sys
import threading
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import NamedTuple, Optional

import aiocoap
import aiocoap.defaults
import aiocoap.error
import aiocoap.resource
from aiocoap import Code, Message
from aiocoap.optiontypes import OpaqueOption, StringOption, UintOption

try:
    from . import lwm2m_codec as codec  # imported as tools.lwm2m_server
except ImportError:
    import lwm2m_codec as codec  # run as a script, or with tools/ on sys.path

# Content formats, re-exported so tests need one import.
TEXT, LINK, OPAQUE, TLV, LWM2M_JSON = codec.TEXT, codec.LINK, codec.OPAQUE, codec.TLV, codec.LWM2M_JSON
LWM2M_CBOR = codec.LWM2M_CBOR
SENML_JSON, SENML_CBOR, CBOR = codec.SENML_JSON, codec.SENML_CBOR, codec.CBOR
OLD_TEXT, OLD_TLV, OLD_JSON, OLD_OPAQUE = codec.OLD_TEXT, codec.OLD_TLV, codec.OLD_JSON, codec.OLD_OPAQUE
JSON = 50  # application/json

DEFAULT_TIMEOUT = 10.0  # seconds for one DM request (aiocoap retransmits CONs meanwhile)
DEFAULT_LIFETIME = 86400  # Core §6.2.1: lt when the client leaves it out
DEFAULT_PORT = 5683
SUPPORTED_VERSIONS = ("1.0", "1.1")
BINDING_LETTERS = set("UMHTSNQ")  # 1.1 modes (U, M, H, T, S, N) plus 1.0's queue flag Q
EVENT_KINDS = ("register", "update", "deregister", "expire", "send")
# ../shared/oma-registry relative to the repository root (this file is <root>/tools/...).
DEFAULT_REGISTRY = Path(__file__).resolve().parent.parent.parent / "shared" / "oma-registry"

log = logging.getLogger("lwm2m_server")


# --- records -----------------------------------------------------------------------------------------

class Result(NamedTuple):
    """Outcome of one request sent to a client. code: CoAP code as "2.05" (or "RST" when the client
    reset the message); value: payload decoded by its content format (TLV -> dict, text -> str,
    SenML JSON/CBOR -> {"/3/0/1": value}, link format -> [(path, attrs)], JSON -> object, else
    bytes; the diagnostic str for errors);
    location: Location-Path of a Create ("/3303/1"); decode_error: why value is None if decoding
    failed."""
    code: str
    content_format: Optional[int]
    payload: bytes
    value: object
    location: Optional[str] = None
    decode_error: Optional[str] = None

    @property
    def ok(self):
        return self.code.startswith("2.")


@dataclasses.dataclass
class Update:
    """One Update (Core §6.2.2) as received."""
    time: float
    query: dict  # Uri-Query parameters; a flag without "=" maps to None
    has_body: bool
    links: Optional[list]  # the new object list when a body came
    address: tuple


@dataclasses.dataclass
class Registration:
    endpoint: str
    location: str  # the id in Location-Path rd/<id>
    lifetime: int
    version: str
    binding: str
    sms: Optional[str]
    queue_mode: bool  # 1.1 "Q" parameter, or 1.0 binding "UQ"
    links: list  # [(path, {attr: value})] from the Register body
    root: tuple  # alternate path segments (Core §6.2.1 rt="oma.lwm2m"), () for "/"
    address: tuple  # (host, port) requests go to; follows the latest Register/Update
    registered_at: float
    updated_at: float
    query: dict  # the Register's Uri-Query parameters
    updates: list = dataclasses.field(default_factory=list)
    remote: object = dataclasses.field(default=None, repr=False, compare=False)  # aiocoap remote

    def covers(self, path):
        """True when the client registered the object instance path lies in (the object itself for
        a path "/o"): what a Send may report (Core §6.4.6)."""
        parts = codec.parse_path(path)
        return parts[:2] in {codec.parse_path(o)[:2] for o in self.objects}

    @property
    def objects(self):
        """Object links relative to the root: ["/1/0", "/3/0", ...] (root link and others left out)."""
        found = []
        prefix = "/" + "/".join(self.root) if self.root else ""
        for path, _ in self.links:
            if prefix and not path.startswith(prefix + "/"):
                continue
            rest = path[len(prefix):]
            try:
                parts = codec.parse_path(rest)
            except ValueError:
                continue
            if parts:
                found.append(codec.format_path(parts))
        return found

    def snapshot(self):
        """A copy whose lists do not change as the registration does (for other threads)."""
        return dataclasses.replace(self, links=list(self.links), updates=list(self.updates),
                                   query=dict(self.query))


@dataclasses.dataclass
class Event:
    kind: str  # "register", "update", "deregister", "expire" or "send"
    endpoint: str
    location: str
    time: float
    query: dict  # the request's Uri-Query ({} for deregister/expire)
    has_body: bool
    links: Optional[list]
    address: tuple
    lifetime: int  # the registration's lifetime after this event
    binding: str
    version: str
    seq: int = 0  # position in LwM2MServer.events
    replaced: Optional[str] = None  # register: location of the same endpoint's older registration
    # send (Core §6.4.6): the reported {path: value}, every SenML record (times, repeated paths),
    # the request's content format (110/112), payload and message type ("CON" or "NON")
    values: Optional[dict] = None
    records: Optional[list] = None
    content_format: Optional[int] = None
    payload: Optional[bytes] = None
    mtype: Optional[str] = None


class NotRegistered(LookupError):
    """A DM operation for an endpoint that has no registration."""


class ObservationEnded(RuntimeError):
    """Observation.wait: the observation ended before the notifications waited for came."""


class Notification(NamedTuple):
    """One notification (Core §6.4 "Notify", RFC 7641 §4.2) as it arrived, retransmissions left out."""
    time: float  # time.monotonic() at arrival
    seq: Optional[int]  # its Observe option; None on a response that ends the observation
    code: str  # "2.05"; an error code ("4.04" when the observed instance was deleted) ends it
    content_format: Optional[int]
    mtype: str  # CoAP message type: "CON" or "NON"
    value: object  # decoded like Result.value
    payload: bytes
    mid: int
    decode_error: Optional[str] = None

    @property
    def ok(self):
        return self.code.startswith("2.")


class Observation:
    """One Observe (GET) or Observe-Composite (FETCH) relationship (Core §6.4), kept by the
    server: made by LwM2MServer.observe / observe_composite, fed by the server's event loop.

    first: Result of the first response; first_seq: its Observe option (None when the client did
    not take the observation); notifications: every later one (a copy, in arrival order); rejected:
    notifications answered with RST after the observation ended; end_reason: None while it runs,
    else "cancelled" (proactive), "forgotten" (reactive), an error code ("4.04"), "not observed",
    "reset", "no response", "registration ended" or "server stopped".

    wait/cancel block (from any thread but the server's); wait_async/cancel_async are the same for
    coroutines in the server's loop."""

    def __init__(self, server, reg, request, parts, paths):
        self.endpoint = reg.endpoint
        self.location = reg.location
        self.path = codec.format_path(parts)  # "/" for Observe-Composite
        self.paths = paths  # the observed paths (one, or the composite's list)
        self.token = request.token
        self.request = request  # the Observe request as sent (the proactive cancel repeats it)
        self.first = None
        self.first_seq = None
        self.end_reason = None
        self._server = server
        self._loop = server._loop
        self._parts = parts
        self._records = []
        self._rejected = []
        self._changed = threading.Condition()  # wakes wait() in other threads
        self._arrived = asyncio.Event()  # wakes wait_async() in the loop
        self._answer = self._loop.create_future()  # the first response (None: RST)
        self._cancel = None  # (cancel request, future of its response) while a cancel is out

    def __repr__(self):
        return "<Observation %s %s first=%s notifications=%d end=%s>" % (
            self.endpoint, self.path, self.first and self.first.code, len(self._records), self.end_reason)

    @property
    def active(self):
        return self.end_reason is None and self.first_seq is not None

    @property
    def notifications(self):
        with self._changed:
            return list(self._records)

    @property
    def rejected(self):
        with self._changed:
            return list(self._rejected)

    # fed by the server (in its loop)

    def _take(self, message):
        """A response with this observation's token: True to take it (a CON gets its ACK), False
        to answer it with RST."""
        if not self._answer.done():
            self.first = self._server._result(message, self._parts)
            self.first_seq = message.opt.observe if self.first.ok else None
            self._answer.set_result(message)
            if self.first_seq is None:
                self._end("not observed" if self.first.ok else self.first.code)
            self._server._notified(self, self.first)
            return True
        if self._cancel is not None and not self._cancel[1].done() and (
                message.opt.observe is None or message.mid == self._cancel[0].mid):
            self._cancel[1].set_result(message)  # the answer to the cancel, not a notification
            return True
        if any(n.mid == message.mid for n in self._records[-8:]):
            return True  # a retransmitted CON whose ACK got lost: ACK it again, record it once
        result = self._server._result(message, self._parts)
        notification = Notification(time.monotonic(), message.opt.observe, result.code, result.content_format,
                                    message.mtype.name, result.value, result.payload, message.mid,
                                    result.decode_error)
        if self.end_reason is not None:  # forgotten, cancelled or ended: reject (RFC 7641 §3.6)
            with self._changed:
                self._rejected.append(notification)
            return False
        with self._changed:
            self._records.append(notification)
        if not notification.ok or notification.seq is None:
            self._end(notification.code)  # e.g. 4.04: the observed instance was deleted
        else:
            self._wake()
        self._server._notified(self, notification)
        return True

    def _reset(self):
        """The client answered our Observe (or cancel) request with RST."""
        if not self._answer.done():
            self.first = Result("RST", None, b"", None)
            self._answer.set_result(None)
            self._end("reset")
            self._server._notified(self, self.first)
        elif self._cancel is not None and not self._cancel[1].done():
            self._cancel[1].set_result(None)

    def _end(self, reason):
        if self.end_reason is None:
            self.end_reason = reason
        self._wake()

    def _wake(self):
        with self._changed:
            self._changed.notify_all()
        self._arrived.set()

    # waiting

    def _waited(self, count, timeout):
        """The notifications once count of them arrived; None to go on waiting; raises
        ObservationEnded when no more will come (timeout: only for the message)."""
        with self._changed:
            if len(self._records) >= count:
                return list(self._records)
            if self.end_reason is not None:
                raise ObservationEnded("%s %s ended (%s) after %d of %d notifications: %r" % (
                    self.endpoint, self.path, self.end_reason, len(self._records), count, self._records))
        return None

    def _timed_out(self, count, timeout):
        return TimeoutError("%s %s: %d of %d notifications within %s s: %r" % (
            self.endpoint, self.path, len(self._records), count, timeout, self.notifications))

    def wait(self, count=1, timeout=10.0):
        """Block until count notifications arrived after the first response; all of them (a copy).
        TimeoutError (naming what arrived) after timeout s, ObservationEnded if it ends first."""
        self._not_in_loop("wait", "wait_async")
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                found = self._waited(count, timeout)
                if found is not None:
                    return found
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise self._timed_out(count, timeout)
                self._changed.wait(remaining)

    async def wait_async(self, count=1, timeout=10.0):
        """wait() for coroutines in the server's event loop."""
        deadline = self._loop.time() + timeout
        while True:
            self._arrived.clear()
            found = self._waited(count, timeout)
            if found is not None:
                return found
            try:
                await asyncio.wait_for(self._arrived.wait(), max(0.0, deadline - self._loop.time()))
            except asyncio.TimeoutError:
                raise self._timed_out(count, timeout) from None

    # cancelling

    def cancel(self, proactive=True, timeout=None):
        """Cancel Observation. proactive: the Observe request again with Observe=1 and the same token
        (RFC 7641 §3.6, Core §6.4 "Cancel Observation"); returns the client's answer as a Result. Reactive
        (proactive=False): forget the observation here, so that the next notification is answered
        with RST (CON and NON alike); returns None."""
        self._not_in_loop("cancel", "cancel_async")
        timeout = self._server.request_timeout if timeout is None else timeout
        return asyncio.run_coroutine_threadsafe(self.cancel_async(proactive, timeout), self._loop).result(timeout + 5)

    async def cancel_async(self, proactive=True, timeout=None):
        """cancel() for coroutines in the server's event loop."""
        if not proactive:
            self._end("forgotten")
            return None
        server = self._server
        reg = server._need(self.endpoint)
        request = Message(code=self.request.code, payload=self.request.payload)
        for option in self.request.opt.option_list():
            request.opt.add_option(option)
        request.opt.observe = 1
        request.token = self.token
        self._cancel = (request, self._loop.create_future())
        try:
            response = await server._exchange(reg, request, self._cancel[1], self._reset, timeout)
        finally:
            self._end("cancelled")  # answered or not: later notifications get RST
        return server._result(response, self._parts)

    def _not_in_loop(self, name, instead):
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self._loop:
            raise RuntimeError("Observation.%s() would block the server's event loop: await %s()" % (name, instead))


# --- the OMA object registry (names and types for decoding and printing) --------------------------

@dataclasses.dataclass
class ObjectDef:
    oid: int
    name: str
    resources: dict  # rid -> (name, type name, multiple)


class ObjectRegistry:
    """Object and resource names and data types, read on first use from the OMA registry's
    <oid>.xml files in a directory (which may be missing: then nothing is known)."""

    def __init__(self, directory):
        self.directory = Path(directory) if directory else None
        self._objects = {}

    def get(self, oid):
        if oid not in self._objects:
            self._objects[oid] = self._load(oid)
        return self._objects[oid]

    def _load(self, oid):
        if self.directory is None:
            return None
        path = self.directory / ("%d.xml" % oid)
        try:
            root = ET.parse(str(path)).getroot()
        except (OSError, ET.ParseError):
            return None
        obj = root.find("Object")
        if obj is None:
            return None
        resources = {}
        for item in obj.iterfind("Resources/Item"):
            try:
                rid = int(item.get("ID"))
            except (TypeError, ValueError):
                continue
            kind = (item.findtext("Type") or "").strip()
            try:
                kind = codec.norm_type(kind)
            except codec.CodecError:
                kind = None
            resources[rid] = ((item.findtext("Name") or "").strip(), kind,
                              (item.findtext("MultipleInstances") or "").strip() == "Multiple")
        return ObjectDef(oid, (obj.findtext("Name") or "").strip(), resources)

    def types(self, oid):
        """{rid: type name} for an object, {} when unknown."""
        obj = self.get(oid)
        return {rid: r[1] for rid, r in obj.resources.items()} if obj else {}

    def resource_name(self, oid, rid):
        obj = self.get(oid)
        entry = obj.resources.get(rid) if obj else None
        return entry[0] if entry else None


# --- helpers -------------------------------------------------------------------------------------------

def loopback_host(host):
    """host as an IP literal, refusing anything that is not a loopback address: this server is
    for tests and the local demo and must never listen on the network."""
    if host == "localhost":
        host = "127.0.0.1"
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        raise ValueError("host must be a loopback IP address (127.0.0.1 or ::1), got %r" % host) from None
    if not ip.is_loopback:
        raise ValueError("refusing to bind %s: only loopback addresses (127.0.0.1, ::1) are allowed" % host)
    return str(ip)


def _plain_address(sockaddr):
    """(host, port) from a socket address, with IPv4-mapped IPv6 shown as plain IPv4."""
    ip = ipaddress.ip_address(sockaddr[0].split("%")[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return str(ip), sockaddr[1]


def _remote_address(remote):
    sockaddr = getattr(remote, "sockaddr", None)
    if sockaddr:
        return _plain_address(sockaddr)
    return (getattr(remote, "hostinfo", str(remote)), None)


def _parse_query(options):
    query = {}
    for item in options:
        name, sep, value = item.partition("=")
        query[name] = value if sep else None
    return query


def _content_format(message):
    cf = message.opt.content_format
    return None if cf is None else int(cf)


def _method(method):
    """aiocoap Code from an int (1 = GET), a name ("GET") or dotted "0.01"."""
    if isinstance(method, Code):
        return method
    if isinstance(method, int):
        return Code(method)
    text = str(method).strip()
    if "." in text:
        cls, detail = text.split(".")
        return Code((int(cls) << 5) | int(detail))
    return Code[text.upper()]


def _set_options(message, query, content_format, accept):
    """Uri-Query, Content-Format and Accept when given; returns the message."""
    if query:
        message.opt.uri_query = tuple(query)
    if content_format is not None:
        message.opt.content_format = content_format
    if accept is not None:
        message.opt.accept = accept
    return message


def _option(number, value):
    """An aiocoap option of any number (known or not) from bytes, int or str."""
    if isinstance(value, (bytes, bytearray)):
        return OpaqueOption(number, bytes(value))
    if isinstance(value, int):
        return UintOption(number, value)
    return StringOption(number, str(value))


def values_by_path(parts, value):
    """{path: value} of a value at parts: a dict {id: ...} goes one level down per key, a dict of
    path strings is taken as it is, anything else is the value at parts itself."""
    if not isinstance(value, dict):
        return {codec.format_path(parts): value}
    found = {}
    for key, item in value.items():
        if isinstance(key, str):
            found[codec.format_path(codec.parse_path(key))] = item
        else:
            found.update(values_by_path(tuple(parts) + (key,), item))
    return found


# aiocoap's udp6 transport sets SO_REUSEPORT, which would let a second server (a forgotten `make run`,
# a parallel test) bind the same port and silently take half of the datagrams. Turn it off while our
# sockets are created; the counter keeps the swap correct when servers start concurrently.
_reuse_lock = threading.Lock()
_reuse_users = 0
_reuse_saved = None


def _reuse_port_off(**_kwargs):
    return False


def _exclusive_bind(enter):
    global _reuse_users, _reuse_saved
    with _reuse_lock:
        if enter:
            if _reuse_users == 0:
                _reuse_saved = aiocoap.defaults.has_reuse_port
                aiocoap.defaults.has_reuse_port = _reuse_port_off
            _reuse_users += 1
        else:
            _reuse_users -= 1
            if _reuse_users == 0:
                aiocoap.defaults.has_reuse_port = _reuse_saved


def _message_manager(context):
    """aiocoap's CoAP message layer (message IDs, retransmission, ACK/RST) of the context's UDP
    transport. Observations go past aiocoap's token layer, straight to it: aiocoap 0.4 sends nothing
    when an observation is cancelled, takes (and ACKs) the next notification anyway, and never
    answers a NON notification with RST."""
    for interface in context.request_interfaces:
        manager = getattr(interface, "token_interface", None)
        if hasattr(manager, "_process_response") and hasattr(manager, "send_message"):
            return manager
    raise RuntimeError("cannot find aiocoap's message manager (did aiocoap's internals change?)")


def _bound_port(context):
    """The UDP port the context's transport really bound (for port 0)."""
    transport = getattr(getattr(_message_manager(context), "message_interface", None), "transport", None)
    sock = transport.get_extra_info("socket") if transport is not None else None
    if sock is None:
        raise RuntimeError("cannot find the bound UDP socket in the aiocoap context")
    return sock.getsockname()[1]


# --- the registration interface (CoAP resources rd and rd/<id>) ----------------------------------

class _RegistrationSite(aiocoap.resource.Resource):
    """Root resource of the server context: routes POST /rd, POST /rd/<id>, DELETE /rd/<id> and
    POST /dp (Send). Anything else is 4.04 (unknown path) or 4.05 (known path, other method)."""

    def __init__(self, server):
        super().__init__()
        self.server = server

    async def render(self, request):
        path = request.opt.uri_path
        if len(path) == 1 and path[0] == "rd":
            if request.code != Code.POST:
                return Message(code=Code.METHOD_NOT_ALLOWED)
            return self.server._on_register(request)
        if len(path) == 2 and path[0] == "rd":
            if request.code == Code.POST:
                return self.server._on_update(request, path[1])
            if request.code == Code.DELETE:
                return self.server._on_deregister(path[1])
            return Message(code=Code.METHOD_NOT_ALLOWED)
        if len(path) == 1 and path[0] == "dp":
            if request.code != Code.POST:
                return Message(code=Code.METHOD_NOT_ALLOWED)
            return self.server._on_send(request)
        return Message(code=Code.NOT_FOUND)


def _bad(code, text):
    return Message(code=code, payload=text.encode("utf-8"))


def _links_from_body(request):
    """The object links of a Register/Update body, or (None, error response)."""
    cf = _content_format(request)
    if cf not in (None, LINK):
        return None, _bad(Code.BAD_REQUEST, "payload must be application/link-format (40)")
    try:
        return codec.parse_links(request.payload), None
    except (codec.CodecError, UnicodeDecodeError) as e:
        return None, _bad(Code.BAD_REQUEST, "bad link-format payload: %s" % e)


def _root_of(links):
    """Alternate path from the link with rt="oma.lwm2m" (Core §6.2.1); () when it is "/"."""
    for path, attrs in links:
        if attrs.get("rt") == "oma.lwm2m":
            return tuple(p for p in path.split("/") if p)
    return ()


def _check_lifetime_binding(query):
    """Validated (lifetime or None, binding or None), or raise ValueError with the reason."""
    lifetime = None
    if "lt" in query:
        try:
            lifetime = int(query["lt"] or "")
        except ValueError:
            raise ValueError("lt must be an integer, got %r" % query["lt"]) from None
        if lifetime <= 0:
            raise ValueError("lt must be positive, got %d" % lifetime)
    binding = query.get("b")
    if "b" in query and (not binding or not set(binding) <= BINDING_LETTERS):
        raise ValueError("bad binding b=%r" % binding)
    return lifetime, binding


# --- the server ------------------------------------------------------------------------------------------

class EventLog:
    """Events in order, `wait_for` over them, and the end of the aiocoap context, for the servers here
    (this one and tools/bootstrap_server.py). Needs self.events (list), self._taken (set), self._waiters
    (list), self.on_event (callable or None), self._context; EVENT_KINDS says which kinds may be waited for."""

    EVENT_KINDS = EVENT_KINDS

    async def _close(self):
        """Fail the waiters, then shut the context down."""
        for _, _, future in self._waiters:
            if not future.done():
                future.cancel()
        self._waiters.clear()
        if self._context is not None:
            # Let requests cancelled just now unwind first: aiocoap's shutdown would otherwise try
            # to fail their already-cancelled futures (InvalidStateError). Unwinding takes three
            # loop iterations (response future -> block-wise runner task -> inner request).
            for _ in range(5):
                await asyncio.sleep(0)
            context, self._context = self._context, None
            await context.shutdown()

    async def __aenter__(self):
        return await self.start()

    async def __aexit__(self, *exc):
        await self.stop()

    def _publish(self, event):
        self.events.append(event)
        for waiter in self._waiters:
            w_kind, w_endpoint, future = waiter
            if not future.done() and w_kind == event.kind and w_endpoint in (None, event.endpoint):
                self._taken.add(event.seq)
                future.set_result(event)
                self._waiters.remove(waiter)
                break
        if self.on_event is not None:
            try:
                self.on_event(event)
            except Exception:  # a broken callback must not break the server's work
                log.exception("on_event callback failed for %s", event.kind)

    async def wait_for(self, kind, ep=None, timeout=10.0):
        """The oldest event of this kind (for endpoint ep, or any) that no earlier wait_for returned,
        waiting up to timeout seconds for it; raises TimeoutError. Each event is returned once, so
        successive calls walk through e.g. successive updates."""
        if kind not in self.EVENT_KINDS:
            raise ValueError("kind must be one of %s" % ", ".join(self.EVENT_KINDS))
        for event in self.events:
            if event.seq not in self._taken and event.kind == kind and ep in (None, event.endpoint):
                self._taken.add(event.seq)
                return event
        future = asyncio.get_running_loop().create_future()
        waiter = (kind, ep, future)
        self._waiters.append(waiter)
        try:
            await asyncio.wait({future}, timeout=timeout)
        finally:
            if waiter in self._waiters:
                self._waiters.remove(waiter)
        if future.done() and not future.cancelled():
            return future.result()
        future.cancel()
        raise TimeoutError("no %s event%s within %s s" % (kind, " for %s" % ep if ep else "", timeout))


class LwM2MServer(EventLog):
    """asyncio LwM2M server. Use `await start()` / `await stop()` (or `async with`) in one event loop;
    ServerThread wraps it for blocking code."""

    def __init__(self, host="127.0.0.1", port=DEFAULT_PORT, *, request_timeout=DEFAULT_TIMEOUT,
                 registry_dir=DEFAULT_REGISTRY, expiry_grace=0.0, on_event=None, on_notify=None):
        self.host = loopback_host(host)
        self.requested_port = int(port)
        self.port = None  # the bound port, known after start()
        self.request_timeout = request_timeout
        self.expiry_grace = expiry_grace  # seconds past the lifetime before a registration expires
        self.on_event = on_event  # called with each Event (in the loop's thread)
        # on_notify(observation, report): report is observation.first (a Result) for the first
        # response, then each Notification, in arrival order (in the loop's thread)
        self.on_notify = on_notify
        self.registry = ObjectRegistry(registry_dir if registry_dir and Path(registry_dir).is_dir() else None)
        self.registrations = {}  # location id -> Registration
        self.events = []  # every Event, in order
        self._by_endpoint = {}  # endpoint -> [Event]
        self._taken = set()  # seq of events already returned by wait_for
        self._waiters = []  # (kind, endpoint, future)
        self._expiry = {}  # location id -> asyncio TimerHandle
        self._observations = {}  # token -> Observation (ended ones stay: their notifications get RST)
        self._context = None
        self._messages = None  # aiocoap's message manager (see _message_manager)
        self._loop = None

    # lifecycle

    async def start(self):
        self._loop = asyncio.get_running_loop()
        _exclusive_bind(True)
        try:
            # Only the udp6 transport: aiocoap's default list also opens TCP/TLS/WebSocket servers. udp6
            # serves and sends on one socket, so requests to a client leave from the port it
            # registered with (a client's connected UDP socket drops datagrams from anywhere else).
            self._context = await aiocoap.Context.create_server_context(
                _RegistrationSite(self), bind=(self.host, self.requested_port), transports=["udp6"])
        finally:
            _exclusive_bind(False)
        self.port = _bound_port(self._context)
        self._messages = _message_manager(self._context)
        self._messages._process_response = functools.partial(self._on_response, self._messages._process_response)
        return self

    async def stop(self):
        for handle in self._expiry.values():
            handle.cancel()
        self._expiry.clear()
        for observation in self._observations.values():
            observation._end("server stopped")
        await self._close()

    # registration interface

    def _on_register(self, request):
        query = _parse_query(request.opt.uri_query)
        endpoint = query.get("ep")
        if not endpoint:
            return _bad(Code.BAD_REQUEST, "missing ep")
        version = query.get("lwm2m")
        if not version:
            return _bad(Code.BAD_REQUEST, "missing lwm2m")
        if version not in SUPPORTED_VERSIONS:
            # Leshan answers an unsupported LwM2M version with 4.12 Precondition Failed.
            return _bad(Code.PRECONDITION_FAILED, "unsupported lwm2m version %s" % version)
        try:
            lifetime, binding = _check_lifetime_binding(query)
        except ValueError as e:
            return _bad(Code.BAD_REQUEST, str(e))
        if not request.payload:
            return _bad(Code.BAD_REQUEST, "missing object links payload")
        links, error = _links_from_body(request)
        if error is not None:
            return error
        binding = binding or "U"
        replaced = None
        for old in list(self.registrations.values()):
            if old.endpoint == endpoint:  # a new Register replaces the endpoint's old registration
                replaced = old.location
                self._drop(old.location)
        location = self._new_location()
        now = time.time()
        reg = Registration(
            endpoint=endpoint, location=location, lifetime=lifetime or DEFAULT_LIFETIME,
            version=version, binding=binding, sms=query.get("sms"),
            queue_mode="Q" in query or "Q" in binding, links=links, root=_root_of(links),
            address=_remote_address(request.remote), registered_at=now, updated_at=now,
            query=query, remote=request.remote)
        self.registrations[location] = reg
        self._arm_expiry(reg)
        self._record("register", reg, query, True, links, replaced=replaced)
        return Message(code=Code.CREATED, location_path=("rd", location))

    def _on_update(self, request, location):
        reg = self.registrations.get(location)
        if reg is None:
            return _bad(Code.NOT_FOUND, "no registration rd/%s" % location)
        query = _parse_query(request.opt.uri_query)
        try:
            lifetime, binding = _check_lifetime_binding(query)
        except ValueError as e:
            return _bad(Code.BAD_REQUEST, str(e))
        links = None
        if request.payload:
            links, error = _links_from_body(request)
            if error is not None:
                return error
        # Everything validated: apply.
        if lifetime is not None:
            reg.lifetime = lifetime
        if binding is not None:
            reg.binding = binding
        if "sms" in query:
            reg.sms = query["sms"]
        if "Q" in query:
            reg.queue_mode = True
        if links is not None:
            reg.links = links
            reg.root = _root_of(links)
        reg.remote = request.remote  # the client may have a new address (NAT rebinding, Core §6.2.2)
        reg.address = _remote_address(request.remote)
        reg.updated_at = time.time()
        reg.updates.append(Update(reg.updated_at, query, links is not None, links, reg.address))
        self._arm_expiry(reg)
        self._record("update", reg, query, links is not None, links)
        return Message(code=Code.CHANGED)

    def _on_deregister(self, location):
        reg = self.registrations.get(location)
        if reg is None:
            return _bad(Code.NOT_FOUND, "no registration rd/%s" % location)
        self._drop(location)
        self._record("deregister", reg, {}, False, None)
        return Message(code=Code.DELETED)

    def _on_send(self, request):
        """Send (Core §6.4.6): POST /dp with SenML from a registered client (known by its address, the
        one it registered or last updated from). Transport Table 6.7-4 gives Send 2.04 Changed,
        4.00 Bad Request ("Undetermined error occurred") and 4.04 Not Found ("Reported Object was not
        registered to the LwM2M Server"): 4.04 for a path outside the registered object instances,
        4.00 for a sender with no registration (as Leshan) and for a payload that does not decode,
        4.15 (RFC 7252 §5.9.2.10) for a content format other than SenML JSON/CBOR."""
        address = _remote_address(request.remote)
        reg = next((r for r in self.registrations.values() if r.address == address), None)
        if reg is None:
            return _bad(Code.BAD_REQUEST, "no registration for %s:%s" % address)
        cf = _content_format(request)
        if cf not in codec.SENML_FORMATS:
            return _bad(Code.UNSUPPORTED_CONTENT_FORMAT, "Send takes SenML JSON (110) or SenML CBOR (112)")
        try:
            records = codec.senml_records(request.payload, cf)
            values = codec.senml_values(records)
        except codec.CodecError as e:
            return _bad(Code.BAD_REQUEST, "bad SenML payload: %s" % e)
        unregistered = [path for path in values if not reg.covers(path)]
        if unregistered:
            return _bad(Code.NOT_FOUND, "not registered: %s" % " ".join(unregistered))
        self._record("send", reg, {}, True, None, values=values, records=records, content_format=cf,
                     payload=bytes(request.payload), mtype=request.mtype.name)
        return Message(code=Code.CHANGED)

    def _new_location(self):
        while True:
            location = secrets.token_hex(4)
            if location not in self.registrations:
                return location

    def _arm_expiry(self, reg):
        handle = self._expiry.pop(reg.location, None)
        if handle is not None:
            handle.cancel()
        self._expiry[reg.location] = self._loop.call_later(
            reg.lifetime + self.expiry_grace, self._expire, reg.location)

    def _expire(self, location):
        reg = self.registrations.get(location)
        if reg is None:
            return
        self._drop(location)
        self._record("expire", reg, {}, False, None)

    def _drop(self, location):
        self.registrations.pop(location, None)
        for observation in self._observations.values():
            if observation.location == location:
                observation._end("registration ended")
        handle = self._expiry.pop(location, None)
        if handle is not None:
            handle.cancel()

    # events

    def _record(self, kind, reg, query, has_body, links, **details):
        event = Event(kind=kind, endpoint=reg.endpoint, location=reg.location, time=time.time(),
                      query=dict(query), has_body=has_body, links=links, address=reg.address,
                      lifetime=reg.lifetime, binding=reg.binding, version=reg.version,
                      seq=len(self.events), **details)
        self._by_endpoint.setdefault(reg.endpoint, []).append(event)
        self._publish(event)  # a broken on_event callback must not turn the Register into a 5.00

    def events_for(self, endpoint):
        """Every event of one endpoint, in order."""
        return list(self._by_endpoint.get(endpoint, ()))

    def registration(self, endpoint):
        """The endpoint's current Registration, or None."""
        for reg in self.registrations.values():
            if reg.endpoint == endpoint:
                return reg
        return None

    # device management: requests to the client

    def _need(self, ep):
        reg = self.registration(ep)
        if reg is None:
            raise NotRegistered("endpoint %r is not registered" % ep)
        return reg

    async def _send(self, reg, message, timeout, blockwise=True):
        """Send message to the registered client; its response (Message) or an "RST" marker."""
        if self._context is None:
            raise RuntimeError("server is not running")
        message.remote = reg.remote  # the very address and socket the client registered from
        request = self._context.request(message, handle_blockwise=blockwise)
        await self._bounded(reg, message, request.response, timeout)
        try:
            return request.response.result()
        except aiocoap.error.MessageError:
            return None  # the client answered with RST
        except aiocoap.error.TimeoutError as e:
            raise TimeoutError("%s: %s" % (reg.endpoint, e)) from None
        except aiocoap.error.NetworkError as e:
            raise ConnectionError("%s: %s" % (reg.endpoint, e)) from None

    async def _bounded(self, reg, message, future, timeout):
        """Wait for future (the response to message) up to timeout s, default request_timeout; on
        timeout forget the request and raise TimeoutError."""
        timeout = self.request_timeout if timeout is None else timeout
        done, _ = await asyncio.wait({future}, timeout=timeout)
        if not done:
            future.cancel()
            self._abandon(message)
            raise TimeoutError("%s: no response to %s %s within %s s"
                               % (reg.endpoint, message.code, "/" + "/".join(message.opt.uri_path), timeout))

    def _abandon(self, message):
        """Forget a request we gave up on. aiocoap 0.4 keeps retransmitting a CON for ~93 s after its
        response future is cancelled, and with NSTART=1 holds every later request to the same
        client back until then; so drop its exchange (or its place in the queue) and let the next
        request go. Uses aiocoap's message-manager internals; skipped if they are not there. (For
        a multi-block transfer only the first block is recognised here.)"""
        for interface in self._context.request_interfaces:
            manager = getattr(interface, "token_interface", None)
            exchanges = getattr(manager, "_active_exchanges", None)
            backlogs = getattr(manager, "_backlogs", None)
            if exchanges is None or backlogs is None or message.mid is None:
                continue
            remote = message.remote
            queue = backlogs.get(remote)
            if queue:
                queue[:] = [item for item in queue if item[0] is not message]
            entry = exchanges.pop((remote, message.mid), None)
            if entry is not None:
                entry[1].cancel()  # the retransmission timer
                if remote in backlogs:
                    manager._continue_backlog(remote)

    def _message(self, reg, code, parts, payload=b"", content_format=None, accept=None, query=()):
        message = Message(code=code, payload=bytes(payload))  # confirmable: aiocoap's default
        message.opt.uri_path = tuple(reg.root) + tuple(str(p) for p in parts)
        return _set_options(message, query, content_format, accept)

    def _result(self, response, parts):
        if response is None:
            return Result("RST", None, b"", None)
        payload = bytes(response.payload)
        cf = _content_format(response)
        location = None
        if response.opt.location_path:
            location = "/" + "/".join(response.opt.location_path)
        code = response.code.dotted
        try:
            value = self.decode(payload, cf, parts, error=not response.code.is_successful())
        except (codec.CodecError, ValueError, UnicodeDecodeError) as e:
            return Result(code, cf, payload, None, location, str(e))
        return Result(code, cf, payload, value, location)

    def decode(self, payload, content_format, parts=(), error=False):
        """Python value of a response payload (see Result.value); parts is the request path."""
        if error:
            return payload.decode("utf-8", "replace") if payload else None
        if not payload and content_format is None:
            return None  # e.g. 2.04 Changed
        if content_format in codec.TLV_FORMATS:
            return self._decode_tlv(payload, parts)
        if content_format in codec.TEXT_FORMATS:
            return codec.decode_text(payload)
        if content_format == LINK:
            return codec.parse_links(payload)
        if content_format in codec.SENML_FORMATS:
            return codec.decode_senml(payload, content_format)
        if content_format == LWM2M_CBOR:
            return codec.decode_lwm2m_cbor(payload)
        if content_format in (LWM2M_JSON, OLD_JSON, JSON):
            return json.loads(payload.decode("utf-8")) if payload else None
        return payload

    def _decode_tlv(self, payload, parts):
        types = self.registry.types(parts[0]) if parts else {}
        top = {kind for kind, _, _ in codec.tlv_split(payload)}
        if len(parts) == 4 and top == {codec.RESOURCE_INSTANCE}:
            # a resource-instance read: keep the resource id level, {rid: {riid: value}}
            return {parts[2]: codec.decode_tlv(payload, types.get(parts[2]))}
        value = codec.decode_tlv(payload, types)
        if len(parts) == 2 and top == {codec.OBJECT_INSTANCE} and list(value) == [parts[1]]:
            return value[parts[1]]  # instance read answered inside an Object Instance TLV: unwrap
        return value

    def encode(self, parts, value, fmt, type=None):
        """Payload for writing a Python value at a path: TLV (Resource TLV for /o/i/r, Resource
        Instance TLV for /o/i/r/ri, the resources of {rid: value} for /o/i, Object Instance TLVs of
        {iid: {...}} for /o), text, or SenML JSON/CBOR (of any of these, or of {path: value}).
        type: a type name for one value, or {rid: type name} (SenML also {path: type name}); when
        left out, the OMA registry's type, else the Python type, decides."""
        if fmt in codec.SENML_FORMATS:
            values = values_by_path(parts, value)
            return codec.encode_senml(values, fmt, {path: self._type_at(path, type) for path in values})
        registry_types = self.registry.types(parts[0]) if parts else {}
        if fmt in codec.TEXT_FORMATS:
            if isinstance(value, dict):
                raise ValueError("text/plain carries one value, not %r" % (value,))
            if type is None and len(parts) >= 3:
                type = registry_types.get(parts[2])
            return codec.encode_text(value, type)
        if fmt not in codec.TLV_FORMATS:
            raise ValueError("cannot encode Python values as content format %s; pass bytes" % fmt)
        if len(parts) >= 3:
            type = type if type is not None else registry_types.get(parts[2])
            if len(parts) == 4:
                return codec.tlv_entry(codec.RESOURCE_INSTANCE, parts[3], codec.encode_tlv_value(value, type))
            return codec.encode_tlv_resource(parts[2], value, type)
        if not isinstance(value, dict):
            raise ValueError("TLV for %s needs a dict" % codec.format_path(parts))
        types = dict(registry_types)
        types.update(type if isinstance(type, dict) else {})
        if len(parts) == 2:
            return codec.encode_tlv_resources(value, types)
        return codec.encode_tlv_instances(value, types)

    def _type_at(self, path, type):
        """The data type to write path in: type (one name, or {path or rid: name}), else the registry's."""
        parts = codec.parse_path(path)
        rid = parts[2] if len(parts) >= 3 else None
        if isinstance(type, dict):
            type = type.get(path, type.get(rid))
        if type is None and rid is not None:
            type = self.registry.types(parts[0]).get(rid)
        return type

    async def read(self, ep, path, accept=None, timeout=None):
        """Read (GET). accept: a content format (e.g. TLV, TEXT) or None to let the client choose."""
        reg = self._need(ep)
        parts = codec.parse_path(path)
        response = await self._send(reg, self._message(reg, Code.GET, parts, accept=accept), timeout)
        return self._result(response, parts)

    async def write(self, ep, path, value, fmt=None, replace=True, type=None, timeout=None):
        """Write: PUT (replace) or POST (partial update). value is bytes (sent as they are, fmt
        defaults to opaque) or a Python value encoded as fmt (default TLV for dicts and instance
        paths, text otherwise); type as in encode()."""
        reg = self._need(ep)
        parts = codec.parse_path(path)
        if isinstance(value, (bytes, bytearray)):
            payload, fmt = bytes(value), OPAQUE if fmt is None else fmt
        else:
            if fmt is None:
                fmt = TLV if isinstance(value, dict) or len(parts) < 3 else TEXT
            payload = self.encode(parts, value, fmt, type)
        code = Code.PUT if replace else Code.POST
        message = self._message(reg, code, parts, payload, content_format=fmt)
        return self._result(await self._send(reg, message, timeout), parts)

    async def execute(self, ep, path, args=None, timeout=None):
        """Execute (POST). args: None, str/bytes, or {digit: value or None} (Core §5.4.5)."""
        reg = self._need(ep)
        parts = codec.parse_path(path)
        payload = codec.execute_arguments(args)
        message = self._message(reg, Code.POST, parts, payload, content_format=TEXT if payload else None)
        return self._result(await self._send(reg, message, timeout), parts)

    async def create(self, ep, path, payload, fmt=TLV, instance_id=None, type=None, timeout=None):
        """Create (POST to /o). payload: bytes as they are, or {rid: value} encoded as TLV (wrapped
        in an Object Instance TLV when instance_id is given). Result.location: the new instance."""
        reg = self._need(ep)
        parts = codec.parse_path(path)
        if not isinstance(payload, (bytes, bytearray)):
            body = self.encode(parts[:1] + (0,), payload, fmt, type)  # resources of an instance
            if instance_id is not None:
                body = codec.tlv_entry(codec.OBJECT_INSTANCE, instance_id, body)
            payload = body
        message = self._message(reg, Code.POST, parts, payload, content_format=fmt)
        return self._result(await self._send(reg, message, timeout), parts)

    async def delete(self, ep, path, timeout=None):
        """Delete (DELETE) an object instance."""
        reg = self._need(ep)
        parts = codec.parse_path(path)
        return self._result(await self._send(reg, self._message(reg, Code.DELETE, parts), timeout), parts)

    async def discover(self, ep, path, timeout=None):
        """Discover (GET, Accept: link-format). Result.value: [(path, attrs)]."""
        reg = self._need(ep)
        parts = codec.parse_path(path)
        message = self._message(reg, Code.GET, parts, accept=LINK)
        return self._result(await self._send(reg, message, timeout), parts)

    async def write_attributes(self, ep, path, timeout=None, **attrs):
        """Write-Attributes (PUT with only Uri-Query): write_attributes(ep, "/3/0/9", pmin=10, gt=50).
        A value of None sends the bare name (which clears the attribute)."""
        reg = self._need(ep)
        parts = codec.parse_path(path)
        query = [name if value is None else "%s=%s" % (name, value) for name, value in attrs.items()]
        message = self._message(reg, Code.PUT, parts, query=query)
        return self._result(await self._send(reg, message, timeout), parts)

    async def raw(self, ep, method, path, payload=b"", options=(), content_format=None, accept=None,
                  query=(), confirmable=True, blockwise=False, timeout=None):
        """Any request: method as 1/"GET"/"0.01"; path used as given (no alternate-root prefix, no
        checks: "/3/0/abc" is fine); options: [(number, bytes|int|str)] added as they are (e.g.
        (9, b"x") for an unknown critical option). No block-wise handling unless asked, so the
        test sees the client's own first answer."""
        reg = self._need(ep)
        message = Message(code=_method(method), payload=bytes(payload),
                          transport_tuning=aiocoap.Reliable if confirmable else aiocoap.Unreliable)
        message.opt.uri_path = tuple(p for p in str(path).split("/") if p)
        _set_options(message, query, content_format, accept)
        for number, value in options:
            message.opt.add_option(_option(number, value))
        try:
            parts = codec.parse_path(path)
        except ValueError:
            parts = ()
        return self._result(await self._send(reg, message, timeout, blockwise), parts)

    # composite operations (Core §6.3 "Read-Composite", "Write-Composite")

    def _fetch(self, reg, paths, fmt, accept):
        """FETCH on the root with the paths as name-only SenML records."""
        return self._message(reg, Code.FETCH, (), codec.encode_senml(paths, fmt), content_format=fmt, accept=accept)

    async def read_composite(self, ep, paths, fmt=SENML_CBOR, accept=SENML_CBOR, timeout=None):
        """Read-Composite: FETCH "/" with the paths (["/3/0/9", "/1/0"]) in fmt. Result.value:
        {path: value} of the SenML answer."""
        reg = self._need(ep)
        return self._result(await self._send(reg, self._fetch(reg, paths, fmt, accept), timeout), ())

    async def write_composite(self, ep, values, fmt=SENML_CBOR, types=None, timeout=None):
        """Write-Composite: iPATCH "/" with SenML records of values {path: value}; types: {path:
        type name} over the registry's (else each value's Python type)."""
        reg = self._need(ep)
        message = self._message(reg, Code.iPATCH, (), self.encode((), values, fmt, types), content_format=fmt)
        return self._result(await self._send(reg, message, timeout), ())

    # information reporting (Core §6.4): Observe, Observe-Composite; Send is _on_send

    async def observe(self, ep, path, accept=None, timeout=None):
        """Observe: GET with Observe=0 (RFC 7641). An Observation: .first is the Result of the first
        response (.first_seq its Observe number), notifications follow; see Observation. accept as
        in read(). A notification is one datagram (no block-wise reassembly)."""
        reg = self._need(ep)
        parts = codec.parse_path(path)
        message = self._message(reg, Code.GET, parts, accept=accept)
        return await self._observation(reg, message, parts, [codec.format_path(parts)], timeout)

    async def observe_composite(self, ep, paths, accept=SENML_CBOR, fmt=SENML_CBOR, timeout=None):
        """Observe-Composite: FETCH "/" with Observe=0 and the paths as SenML in fmt; an Observation
        whose values are {path: value}."""
        reg = self._need(ep)
        paths = [codec.format_path(codec.parse_path(p)) for p in paths]
        return await self._observation(reg, self._fetch(reg, paths, fmt, accept), (), paths, timeout)

    async def _observation(self, reg, message, parts, paths, timeout):
        message.opt.observe = 0
        message.token = secrets.token_bytes(8)  # ours, not aiocoap's: see _message_manager
        observation = Observation(self, reg, message, parts, paths)
        self._observations[message.token] = observation
        try:
            await self._exchange(reg, message, observation._answer, observation._reset, timeout)
        except TimeoutError:
            observation._end("no response")  # a late answer gets RST
            raise
        return observation

    async def _exchange(self, reg, message, answer, on_reset, timeout):
        """Send a request that carries an observation's token (Observe, or its cancel) as a CON
        through the message layer; the observation puts the response (None for RST) into answer."""
        if self._context is None:
            raise RuntimeError("server is not running")
        message.remote = reg.remote
        message.transport_tuning = aiocoap.Reliable
        self._messages.send_message(message, on_reset)
        await self._bounded(reg, message, answer, timeout)
        return answer.result()

    def _on_response(self, process_response, message):
        """In place of aiocoap's MessageManager._process_response: a response with an observation's
        token goes to that observation, anything else on to aiocoap. True makes aiocoap ACK a CON,
        False makes it answer a CON with RST; a NON that is turned away gets its RST here."""
        observation = self._observations.get(message.token)
        if observation is None:
            return process_response(message)
        if observation._take(message):
            return True
        if message.mtype == aiocoap.NON:
            reset = Message(code=Code.EMPTY, _mtype=aiocoap.RST, _mid=message.mid)
            reset.remote = message.remote.as_response_address()
            self._messages._send_initially(reset)
        return False

    def _notified(self, observation, report):
        if self.on_notify is not None:
            try:
                self.on_notify(observation, report)
            except Exception:  # a broken callback must not stop the ACK
                log.exception("on_notify callback failed")


# --- blocking wrapper ----------------------------------------------------------------------------------

class LoopThread:
    """An asyncio server object (start()/stop() coroutines, .host, .port) run in its own thread and event
    loop, for blocking code: the base of ServerThread and tools/bootstrap_server.py's
    BootstrapServerThread. A context manager."""

    name = "server"

    def __init__(self, server):
        self.server = server
        self._loop = None
        self._thread = None

    @property
    def host(self):
        return self.server.host

    @property
    def port(self):
        return self.server.port

    @property
    def uri(self):
        host = "[%s]" % self.host if ":" in self.host else self.host
        return "coap://%s:%d" % (host, self.port)

    def start(self):
        if self._thread is not None:
            return self
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()
        try:
            asyncio.run_coroutine_threadsafe(self.server.start(), self._loop).result(10)
        except BaseException:
            self._halt_loop()
            raise
        return self

    def _run(self):
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_forever()
        finally:
            self._loop.close()

    def stop(self):
        if self._thread is None:
            return
        try:
            asyncio.run_coroutine_threadsafe(self.server.stop(), self._loop).result(10)
        except concurrent.futures.TimeoutError:
            log.warning("%s shutdown took over 10 s; stopping its loop anyway", self.name)
        finally:
            self._halt_loop()

    def _halt_loop(self):
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._thread = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def _call(self, coroutine, timeout):
        """Run a coroutine in the server's loop and wait for it; timeout is a backstop only (every
        operation has its own timeout)."""
        if self._thread is None:
            coroutine.close()
            raise RuntimeError("%s is not started" % type(self).__name__)
        future = asyncio.run_coroutine_threadsafe(coroutine, self._loop)
        try:
            return future.result(timeout)
        except concurrent.futures.TimeoutError:  # not the builtin TimeoutError before Python 3.11
            if future.done():  # the operation itself timed out (3.11+: the same class): keep its words
                raise
            future.cancel()
            raise TimeoutError("no result from the %s thread within %s s" % (self.name, timeout)) from None

    def _snapshot(self, function):
        async def run():
            return function()
        return self._call(run(), 10)


class ServerThread(LoopThread):
    """An LwM2MServer running in its own thread and event loop, with blocking methods of the same
    names (read, write, execute, create, delete, discover, write_attributes, raw, wait_for,
    read_composite, write_composite, observe, observe_composite) for pytest. port=0 (the default)
    binds a free port chosen by the kernel: see .port."""

    name = "lwm2m-server"

    def __init__(self, host="127.0.0.1", port=0, **server_options):
        super().__init__(LwM2MServer(host, port, **server_options))

    # read-only views (copies, safe to keep)

    @property
    def events(self):
        return self._snapshot(lambda: list(self.server.events))

    def events_for(self, endpoint):
        return self._snapshot(lambda: self.server.events_for(endpoint))

    def registration(self, endpoint):
        def get():
            reg = self.server.registration(endpoint)
            return reg.snapshot() if reg else None
        return self._snapshot(get)

    @property
    def registrations(self):
        return self._snapshot(lambda: {k: r.snapshot() for k, r in self.server.registrations.items()})


def _blocking(name):
    """ServerThread.<name>: the LwM2MServer coroutine of that name, run in the server's thread."""
    method = getattr(LwM2MServer, name)
    signature = inspect.signature(method)

    @functools.wraps(method)
    def call(self, *args, **kwargs):
        timeout = signature.bind(self.server, *args, **kwargs).arguments.get("timeout")
        if timeout is None:
            timeout = DEFAULT_TIMEOUT if name == "wait_for" else self.server.request_timeout
        return self._call(method(self.server, *args, **kwargs), timeout + 5)
    return call


for _name in ("read", "write", "execute", "create", "delete", "discover", "write_attributes", "raw",
              "wait_for", "read_composite", "write_composite", "observe", "observe_composite"):
    setattr(ServerThread, _name, _blocking(_name))


# --- CLI (make run) --------------------------------------------------------------------------------------

def _show(value):
    if isinstance(value, bytes):
        text = value[:32].hex()
        return "0x" + text + ("..." if len(value) > 32 else "")
    if isinstance(value, tuple):
        return "%d:%d" % value
    return str(value)


def labelled(values, registry=None):
    """One "/3303/0/5700 Sensor Value = 23.5" per item of {path: value}, in path order (without
    the registry, or for a resource it does not know: just the path)."""
    lines = []
    for path, value in sorted(values.items(), key=lambda item: codec.parse_path(item[0])):
        parts = codec.parse_path(path)
        name = registry.resource_name(parts[0], parts[2]) if registry is not None and len(parts) >= 3 else None
        lines.append("%s%s = %s" % (path, " " + name if name else "", _show(value)))
    return lines


def describe_report(observation, report, seq, registry=None, verb="notify"):
    """Lines for a notification (or, verb "observe", an observation's first response), one per value:
    "notify ep=dev /3303/0/5700 Sensor Value = 23.5 (seq 3)"; "notify ep=dev /3303/0 -> 4.04" for
    an error or a payload that did not decode."""
    head = "%s ep=%s" % (verb, observation.endpoint)
    if not report.ok or report.value is None:
        return ["%s %s -> %s %s" % (head, observation.path, report.code, report.decode_error or report.value or "")]
    parts = codec.parse_path(observation.path)
    # A TLV dict is keyed from the object instance down (see read()), anything else sits at the path.
    values = values_by_path(parts[:2] if isinstance(report.value, dict) else parts, report.value)
    tail = " (seq %d)" % seq if seq is not None else " (not observed)"
    return ["%s %s%s" % (head, line, tail) for line in labelled(values, registry)]


def describe_event(event, registration=None, registry=None):
    """One line per event, e.g. "register ep=dev lt=300 b=U lwm2m=1.1 objects=</1/0>,</3/0>"; a Send
    gives one line per value, "send ep=dev /3303/0/5700 Sensor Value = 23.5"."""
    if event.kind == "send":
        lines = ["send ep=%s %s" % (event.endpoint, line) for line in labelled(event.values, registry)]
        return "\n".join(lines) or "send ep=%s (no values)" % event.endpoint
    if event.kind == "register":
        objects = registration.objects if registration else []
        return "register ep=%s lt=%d b=%s lwm2m=%s objects=%s addr=%s:%s" % (
            event.endpoint, event.lifetime, event.binding, event.version,
            ",".join("<%s>" % o for o in objects), event.address[0], event.address[1])
    if event.kind == "update":
        params = "".join(" %s" % k if v is None else " %s=%s" % (k, v) for k, v in event.query.items())
        line = "update ep=%s%s" % (event.endpoint, params)
        if event.has_body and registration is not None:
            line += " objects=" + ",".join("<%s>" % o for o in registration.objects)
        return line
    if event.kind == "expire":
        return "expire ep=%s (no update within lt=%d)" % (event.endpoint, event.lifetime)
    return "%s ep=%s" % (event.kind, event.endpoint)


async def print_device(server, endpoint, path="/3/0"):
    """Read path in TLV and print one line per resource (instance) with its registry name."""
    try:
        result = await server.read(endpoint, path, accept=TLV)
    except (TimeoutError, ConnectionError, NotRegistered) as e:
        print("  read %s: %s" % (path, e), flush=True)
        return
    if not result.ok or not isinstance(result.value, dict):
        print("  read %s -> %s %s" % (path, result.code, result.decode_error or result.value or ""), flush=True)
        return
    for line in labelled(values_by_path(codec.parse_path(path)[:2], result.value), server.registry):
        print("  " + line, flush=True)


async def serve(args):
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        # A SIGINT ignored from the start (a background job of tools/run_demo.sh) stays ignored: Ctrl-C there
        # is for the client, which de-registers with this server before the script stops it (SIGTERM)
        if sig != signal.SIGINT or signal.getsignal(sig) is not signal.SIG_IGN:
            loop.add_signal_handler(sig, stop.set)
    reading = set()  # endpoints with a read in flight (no pile-up when a client is slow or asleep)
    tasks = set()

    def later(job, delay):
        async def run():
            # Let the Register's response reach the client before the first request does.
            await asyncio.sleep(delay)
            await job()
        task = loop.create_task(run())
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    def dump(endpoint, delay=0.0):
        if args.quiet or endpoint in reading:
            return
        reading.add(endpoint)

        async def read():
            try:
                await print_device(server, endpoint)
            finally:
                reading.discard(endpoint)
        later(read, delay)

    def watch(endpoint, path):
        async def observe():
            try:
                attrs = {k: v for k, v in (("pmin", args.pmin), ("pmax", args.pmax)) if v is not None}
                if attrs:  # Write-Attributes first: the observation starts with these periods
                    done = await server.write_attributes(endpoint, path, **attrs)
                    if not done.ok:
                        print("  write-attributes %s: %s" % (path, done.code), flush=True)
                await server.observe(endpoint, path)  # on_notify prints the answers as they come
            except (TimeoutError, ConnectionError, NotRegistered) as e:
                print("  observe %s: %s" % (path, e), flush=True)
        later(observe, 0.5)

    def on_event(event):
        print(describe_event(event, server.registration(event.endpoint), server.registry), flush=True)
        if event.kind == "register":
            dump(event.endpoint, delay=0.5)
            for path in args.observe:
                watch(event.endpoint, path)

    def on_notify(observation, report):
        first = report is observation.first
        for line in describe_report(observation, report, observation.first_seq if first else report.seq,
                                    server.registry, verb="observe" if first else "notify"):
            print(line, flush=True)

    server = LwM2MServer(args.host, args.port, registry_dir=args.registry, on_event=on_event,
                         on_notify=on_notify)
    await server.start()
    print("LwM2M server on %s port %d (Ctrl-C to stop)" % (server.host, server.port), flush=True)

    async def periodic():
        while True:
            await asyncio.sleep(args.read_every)
            for reg in list(server.registrations.values()):
                dump(reg.endpoint)

    ticker = loop.create_task(periodic()) if args.read_every > 0 and not args.quiet else None
    try:
        await stop.wait()
    finally:
        for task in list(tasks) + ([ticker] if ticker else []):
            task.cancel()
        await asyncio.gather(*tasks, *([ticker] if ticker else []), return_exceptions=True)
        await server.stop()
    print("stopped", flush=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description="LwM2M 1.1 server for tests and the local demo")
    parser.add_argument("--host", default="127.0.0.1", help="loopback address to bind [127.0.0.1]")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="UDP port [5683]")
    parser.add_argument("--read-every", type=float, default=10.0, metavar="SECONDS",
                        help="read /3/0 of every registered client this often; 0: only after Register [10]")
    parser.add_argument("--quiet", action="store_true", help="print only registration events, no reads")
    parser.add_argument("--registry", default=str(DEFAULT_REGISTRY),
                        help="folder of OMA object XML files for resource names [../shared/oma-registry]")
    parser.add_argument("--observe", action="append", default=[], metavar="PATH",
                        help="observe PATH (e.g. /3303/0/5700) on every client after it registers and print "
                             "each notification; repeatable")
    parser.add_argument("--pmin", type=int, metavar="S", help="with --observe: Write-Attributes pmin=S first")
    parser.add_argument("--pmax", type=int, metavar="S",
                        help="with --observe: Write-Attributes pmax=S first (a notification at least every S s)")
    args = parser.parse_args(argv)
    try:
        args.host = loopback_host(args.host)
        args.observe = [codec.format_path(codec.parse_path(path)) for path in args.observe]
    except ValueError as e:
        parser.error(str(e))
    logging.basicConfig(level=logging.ERROR if args.quiet else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        asyncio.run(serve(args))
    except OSError as e:
        print("lwm2m_server: cannot serve on %s port %d: %s" % (args.host, args.port, e), file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # a second Ctrl-C during shutdown
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
