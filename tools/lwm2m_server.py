"""Host-side LwM2M 1.1 server on aiocoap: the Registration interface (Core §6.2, Transport §6.4) and
every device-management operation (Core §6.3), an in-process API for tests (async `LwM2MServer`,
blocking `ServerThread`) and a CLI for `make run`.

    with ServerThread() as server:                    # 127.0.0.1, a free port: server.port
        ...start a client against coap://127.0.0.1:<server.port>...
        reg = server.wait_for("register", "dev1", timeout=10)
        result = server.read("dev1", "/3/0", accept=TLV)  # Result(code="2.05", ..., value={0: ...})

CLI: python tools/lwm2m_server.py [--host 127.0.0.1] [--port 5683] [--read-every S] [--quiet]
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
SENML_JSON, SENML_CBOR, CBOR = codec.SENML_JSON, codec.SENML_CBOR, codec.CBOR
OLD_TEXT, OLD_TLV, OLD_JSON, OLD_OPAQUE = codec.OLD_TEXT, codec.OLD_TLV, codec.OLD_JSON, codec.OLD_OPAQUE
JSON = 50  # application/json

DEFAULT_TIMEOUT = 10.0  # seconds for one DM request (aiocoap retransmits CONs meanwhile)
DEFAULT_LIFETIME = 86400  # Core §6.2.1: lt when the client leaves it out
DEFAULT_PORT = 5683
SUPPORTED_VERSIONS = ("1.0", "1.1")
BINDING_LETTERS = set("UMHTSNQ")  # 1.1 modes (U, M, H, T, S, N) plus 1.0's queue flag Q
EVENT_KINDS = ("register", "update", "deregister", "expire")
# ../shared/oma-registry relative to the repository root (this file is <root>/tools/...).
DEFAULT_REGISTRY = Path(__file__).resolve().parent.parent.parent / "shared" / "oma-registry"

log = logging.getLogger("lwm2m_server")


# --- records -----------------------------------------------------------------------------------------

class Result(NamedTuple):
    """Outcome of one request sent to a client. code: CoAP code as "2.05" (or "RST" when the client
    reset the message); value: payload decoded by its content format (TLV -> dict, text -> str,
    link format -> [(path, attrs)], JSON -> object, else bytes; the diagnostic str for errors);
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
    kind: str  # "register", "update", "deregister" or "expire"
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


class NotRegistered(LookupError):
    """A DM operation for an endpoint that has no registration."""


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


def _bound_port(context):
    """The UDP port the context's transport really bound (for port 0)."""
    for interface in context.request_interfaces:
        transport = getattr(getattr(getattr(interface, "token_interface", None),
                                    "message_interface", None), "transport", None)
        sock = transport.get_extra_info("socket") if transport is not None else None
        if sock is not None:
            return sock.getsockname()[1]
    raise RuntimeError("cannot find the bound UDP socket in the aiocoap context")


# --- the registration interface (CoAP resources rd and rd/<id>) ----------------------------------

class _RegistrationSite(aiocoap.resource.Resource):
    """Root resource of the server context: routes POST /rd, POST /rd/<id>, DELETE /rd/<id>.
    Anything else is 4.04 (unknown path) or 4.05 (known path, other method)."""

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

class LwM2MServer:
    """asyncio LwM2M server. Use `await start()` / `await stop()` (or `async with`) in one event loop;
    ServerThread wraps it for blocking code."""

    def __init__(self, host="127.0.0.1", port=DEFAULT_PORT, *, request_timeout=DEFAULT_TIMEOUT,
                 registry_dir=DEFAULT_REGISTRY, expiry_grace=0.0, on_event=None):
        self.host = loopback_host(host)
        self.requested_port = int(port)
        self.port = None  # the bound port, known after start()
        self.request_timeout = request_timeout
        self.expiry_grace = expiry_grace  # seconds past the lifetime before a registration expires
        self.on_event = on_event  # called with each Event (in the loop's thread)
        self.registry = ObjectRegistry(registry_dir if registry_dir and Path(registry_dir).is_dir() else None)
        self.registrations = {}  # location id -> Registration
        self.events = []  # every Event, in order
        self._by_endpoint = {}  # endpoint -> [Event]
        self._taken = set()  # seq of events already returned by wait_for
        self._waiters = []  # (kind, endpoint, future)
        self._expiry = {}  # location id -> asyncio TimerHandle
        self._context = None
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
        return self

    async def stop(self):
        for handle in self._expiry.values():
            handle.cancel()
        self._expiry.clear()
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
        handle = self._expiry.pop(location, None)
        if handle is not None:
            handle.cancel()

    # events

    def _record(self, kind, reg, query, has_body, links, replaced=None):
        event = Event(kind=kind, endpoint=reg.endpoint, location=reg.location, time=time.time(),
                      query=dict(query), has_body=has_body, links=links, address=reg.address,
                      lifetime=reg.lifetime, binding=reg.binding, version=reg.version,
                      seq=len(self.events), replaced=replaced)
        self.events.append(event)
        self._by_endpoint.setdefault(reg.endpoint, []).append(event)
        for waiter in self._waiters:
            w_kind, w_endpoint, future = waiter
            if not future.done() and w_kind == kind and w_endpoint in (None, reg.endpoint):
                self._taken.add(event.seq)
                future.set_result(event)
                self._waiters.remove(waiter)
                break
        if self.on_event is not None:
            try:
                self.on_event(event)
            except Exception:  # a broken callback must not turn the Register into a 5.00
                log.exception("on_event callback failed for %s", event.kind)

    def events_for(self, endpoint):
        """Every event of one endpoint, in order."""
        return list(self._by_endpoint.get(endpoint, ()))

    def registration(self, endpoint):
        """The endpoint's current Registration, or None."""
        for reg in self.registrations.values():
            if reg.endpoint == endpoint:
                return reg
        return None

    async def wait_for(self, kind, ep=None, timeout=10.0):
        """The oldest event of this kind (for endpoint ep, or any) that no earlier wait_for returned,
        waiting up to timeout seconds for it; raises TimeoutError. Each event is returned once, so
        successive calls walk through e.g. successive updates."""
        if kind not in EVENT_KINDS:
            raise ValueError("kind must be one of %s" % ", ".join(EVENT_KINDS))
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
        timeout = self.request_timeout if timeout is None else timeout
        request = self._context.request(message, handle_blockwise=blockwise)
        done, _ = await asyncio.wait({request.response}, timeout=timeout)
        if not done:
            request.response.cancel()
            self._abandon(message)
            raise TimeoutError("%s: no response to %s %s within %s s"
                               % (reg.endpoint, message.code, "/" + "/".join(message.opt.uri_path), timeout))
        try:
            return request.response.result()
        except aiocoap.error.MessageError:
            return None  # the client answered with RST
        except aiocoap.error.TimeoutError as e:
            raise TimeoutError("%s: %s" % (reg.endpoint, e)) from None
        except aiocoap.error.NetworkError as e:
            raise ConnectionError("%s: %s" % (reg.endpoint, e)) from None

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
        if content_format in (SENML_JSON, LWM2M_JSON, OLD_JSON, JSON):
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
        {iid: {...}} for /o) or text. type: a type name for one value, or {rid: type name}; when
        left out, the OMA registry's type, else the Python type, decides."""
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


# --- blocking wrapper ----------------------------------------------------------------------------------

class ServerThread:
    """An LwM2MServer running in its own thread and event loop, with blocking methods of the same
    names (read, write, execute, create, delete, discover, write_attributes, raw, wait_for) for
    pytest. port=0 (the default) binds a free port chosen by the kernel: see .port."""

    def __init__(self, host="127.0.0.1", port=0, **server_options):
        self.server = LwM2MServer(host, port, **server_options)
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
        self._thread = threading.Thread(target=self._run, name="lwm2m-server", daemon=True)
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
            log.warning("server shutdown took over 10 s; stopping its loop anyway")
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
            raise RuntimeError("ServerThread is not started")
        future = asyncio.run_coroutine_threadsafe(coroutine, self._loop)
        try:
            return future.result(timeout)
        except concurrent.futures.TimeoutError:  # not the builtin TimeoutError before Python 3.11
            if future.done():  # the operation itself timed out (3.11+: the same class): keep its words
                raise
            future.cancel()
            raise TimeoutError("no result from the server thread within %s s" % timeout) from None

    def _snapshot(self, function):
        async def run():
            return function()
        return self._call(run(), 10)

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
              "wait_for"):
    setattr(ServerThread, _name, _blocking(_name))


# --- CLI (make run) --------------------------------------------------------------------------------------

def _show(value):
    if isinstance(value, bytes):
        text = value[:32].hex()
        return "0x" + text + ("..." if len(value) > 32 else "")
    if isinstance(value, tuple):
        return "%d:%d" % value
    return str(value)


def describe_event(event, registration=None):
    """One line per event, e.g. "register ep=dev lt=300 b=U lwm2m=1.1 objects=</1/0>,</3/0>"."""
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
    oid, iid = codec.parse_path(path)[:2]
    for rid, value in sorted(result.value.items()):
        name = server.registry.resource_name(oid, rid)
        label = " " + name if name else ""  # without the registry: just the numbers
        if isinstance(value, dict):
            for riid, item in sorted(value.items()):
                print("  /%d/%d/%d/%d%s = %s" % (oid, iid, rid, riid, label, _show(item)), flush=True)
        else:
            print("  /%d/%d/%d%s = %s" % (oid, iid, rid, label, _show(value)), flush=True)


async def serve(args):
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    reading = set()  # endpoints with a read in flight (no pile-up when a client is slow or asleep)
    tasks = set()

    def dump(endpoint, delay=0.0):
        if args.quiet or endpoint in reading:
            return

        async def run():
            reading.add(endpoint)
            try:
                # Let the Register's response reach the client before the first request does.
                await asyncio.sleep(delay)
                await print_device(server, endpoint)
            finally:
                reading.discard(endpoint)
        task = loop.create_task(run())
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    def on_event(event):
        print(describe_event(event, server.registration(event.endpoint)), flush=True)
        if event.kind == "register":
            dump(event.endpoint, delay=0.5)

    server = LwM2MServer(args.host, args.port, registry_dir=args.registry, on_event=on_event)
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
    args = parser.parse_args(argv)
    try:
        args.host = loopback_host(args.host)
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
