"""Host-side LwM2M 1.1 Bootstrap-Server on aiocoap: client-initiated bootstrap (Core §6.1.3 / §5.2.7,
Transport §6.4.1): answers Bootstrap-Request (POST /bs?ep=NAME) with 2.04, then runs the endpoint's
configured sequence against the device (Discover, Delete, Write of Security / Server / Access Control
instances, Read, Finish) and records what the device answered to each step. An in-process API for
tests (async `BootstrapServer`, blocking `BootstrapServerThread`) and a CLI.

    config = {"dev1": {"security": {"1": {"uri": "coaps://127.0.0.1:5684", "identity": "dev1",
                                          "key": "00112233", "ssid": 101}},
                       "servers": {"0": {"ssid": 101, "lifetime": 300}}}}
    with BootstrapServerThread(config=config) as bs:   # 127.0.0.1, a free port: bs.port, bs.uri
        ...start a client with its bootstrap server at bs.uri...
        done = bs.wait_for("finished", "dev1", timeout=10)   # done.code == "2.04"
        bs.steps("dev1")   # [Result(op="delete", path="/", code="2.02", ...), ..., Result(op="finish", ...)]
        bs.requests        # {"dev1": 1}: Bootstrap-Requests per endpoint

Config (a dict, or a JSON file): {endpoint or "*": entry}; see load_config for the entry's keys.

CLI: python tools/bootstrap_server.py [--host 127.0.0.1] [--port 5783] [--quiet] [--request-timeout S]
     (--config FILE | --psk-server URI [--psk-id ID --psk-key HEX] [--ssid N] [--lifetime S] [--binding B])
"""
import argparse
import asyncio
import dataclasses
import json
import logging
import signal
import sys
import time
from pathlib import Path
from typing import NamedTuple, Optional

import aiocoap
import aiocoap.error
import aiocoap.resource
from aiocoap import Code, Message

try:
    from . import lwm2m_codec as codec  # imported as tools.bootstrap_server
    from . import lwm2m_server as lws
except ImportError:
    import lwm2m_codec as codec  # run as a script, or with tools/ on sys.path
    import lwm2m_server as lws

TEXT, LINK, TLV = codec.TEXT, codec.LINK, codec.TLV
SENML_JSON, SENML_CBOR = codec.SENML_JSON, codec.SENML_CBOR

DEFAULT_PORT = 5783
DEFAULT_TIMEOUT = 10.0  # seconds for one step (aiocoap retransmits the CON meanwhile)
EVENT_KINDS = ("request", "step", "finished")
FORMATS = {"tlv": TLV, "senml-json": SENML_JSON, "senml-cbor": SENML_CBOR}
WRITE_FORMATS = (TLV, SENML_JSON, SENML_CBOR)

# Data types of the resources this server writes (Core Appendix E.1-E.3), so that each value goes out
# in its own type whatever its Python type: identity and keys as opaque, flags as boolean.
SECURITY, SERVER, ACCESS_CONTROL = 0, 1, 2
OBJECT_TYPES = {
    SECURITY: {0: "string", 1: "boolean", 2: "integer", 3: "opaque", 4: "opaque", 5: "opaque", 10: "integer"},
    SERVER: {0: "integer", 1: "integer", 2: "integer", 3: "integer", 6: "boolean", 7: "string"},
    ACCESS_CONTROL: {0: "integer", 1: "integer", 2: "integer", 3: "integer"},
}
MODE_PSK, MODE_NOSEC = 0, 3  # Security resource 2, Security Mode

log = logging.getLogger("bootstrap_server")


# --- records -----------------------------------------------------------------------------------------

class Result(NamedTuple):
    """One step of a bootstrap sequence and the device's answer. op: "discover", "delete", "write",
    "read" or "finish"; path: the request's path ("/bs" for Finish); code: "2.04" etc., "RST",
    "timeout" (no answer within request_timeout; the sequence went on), "no answer" (the same for
    Finish) or "error" (value: why); value: discover -> [(path, attrs)], read -> the decoded payload
    (TLV -> decode_tlv), an error code -> its diagnostic text; sent / sent_format: our payload."""
    op: str
    path: str
    code: str
    payload: bytes = b""
    value: object = None
    content_format: Optional[int] = None
    sent: bytes = b""
    sent_format: Optional[int] = None
    decode_error: Optional[str] = None

    @property
    def ok(self):
        return self.code.startswith("2.")


@dataclasses.dataclass
class Event:
    kind: str  # "request", "step" or "finished"
    endpoint: Optional[str]  # None for a Bootstrap-Request without ep
    time: float
    address: tuple  # (host, port) of the device
    seq: int = 0  # position in BootstrapServer.events
    code: Optional[str] = None  # request: our answer ("2.04", "4.00"); step/finished: the device's
    pct: Optional[int] = None  # request: Preferred Content Format (1.1), when given
    query: dict = dataclasses.field(default_factory=dict)  # request: its Uri-Query
    result: Optional[Result] = None  # step, finished
    diagnostic: Optional[str] = None  # request: why refused; finished: Finish's payload as text


class _Op(NamedTuple):
    """One request of a sequence, built from the config."""
    op: str
    method: Code
    path: str
    payload: bytes = b""
    content_format: Optional[int] = None
    accept: Optional[int] = None


# --- configuration -------------------------------------------------------------------------------------

_ENTRY_KEYS = {"delete", "discover", "read", "format", "security", "servers", "acl", "writes", "finish"}
_SECURITY_KEYS = {"uri", "bootstrap", "mode", "identity", "key", "ssid"}
_SERVER_KEYS = {"ssid", "lifetime", "binding", "storing", "pmin", "pmax"}
_ACL_KEYS = {"object", "instance", "acl", "owner"}


def _check_keys(spec, allowed, where):
    if not isinstance(spec, dict):
        raise ValueError("%s must be an object, got %r" % (where, spec))
    unknown = set(spec) - allowed
    if unknown:  # a typo would otherwise silently leave a resource out
        raise ValueError("%s: unknown key(s) %s (allowed: %s)" % (where, ", ".join(sorted(unknown)),
                                                                 ", ".join(sorted(allowed))))


def _int(value, where, low=0, high=0xFFFF):
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValueError("%s must be an integer %d..%d, got %r" % (where, low, high, value))
    return value


def _bool(value, where):
    if not isinstance(value, bool):
        raise ValueError("%s must be true or false, got %r" % (where, value))
    return value


def _str(value, where):
    if not isinstance(value, str):
        raise ValueError("%s must be a string, got %r" % (where, value))
    return value


def _id(key, where):
    """An instance id (or ssid) from a JSON object key: "101" or 101."""
    try:
        number = int(key)
    except (TypeError, ValueError):
        raise ValueError("%s: key %r is not a number" % (where, key)) from None
    return _int(number, "%s key" % where)


def _path(path, where):
    try:
        return codec.format_path(codec.parse_path(_str(path, where)))
    except ValueError as e:
        raise ValueError("%s: %s" % (where, e)) from None


def _security_resources(spec, where):
    _check_keys(spec, _SECURITY_KEYS, where)
    if "uri" not in spec:
        raise ValueError("%s: missing uri" % where)
    try:
        key = bytes.fromhex(_str(spec.get("key", ""), where + ".key"))
    except ValueError as e:
        raise ValueError("%s.key is not hex: %s" % (where, e)) from None
    resources = {
        0: _str(spec["uri"], where + ".uri"),
        1: _bool(spec.get("bootstrap", False), where + ".bootstrap"),
        2: _int(spec.get("mode", MODE_PSK if key else MODE_NOSEC), where + ".mode", 0, 4),
        3: _str(spec.get("identity", ""), where + ".identity").encode("utf-8"),
        4: b"",  # server public key: none for PSK / NoSec
        5: key,
    }
    if spec.get("ssid") is not None:  # a bootstrap-server account has no Short Server ID
        resources[10] = _int(spec["ssid"], where + ".ssid", 1, 65534)
    return resources


def _server_resources(spec, where):
    _check_keys(spec, _SERVER_KEYS, where)
    if "ssid" not in spec:
        raise ValueError("%s: missing ssid" % where)
    resources = {
        0: _int(spec["ssid"], where + ".ssid", 1, 65534),
        1: _int(spec.get("lifetime", lws.DEFAULT_LIFETIME), where + ".lifetime", 1, 0x7FFFFFFF),
        6: _bool(spec.get("storing", True), where + ".storing"),
        7: _str(spec.get("binding", "U"), where + ".binding"),
    }
    for rid, name in ((2, "pmin"), (3, "pmax")):
        if spec.get(name) is not None:
            resources[rid] = _int(spec[name], where + "." + name, 0, 0x7FFFFFFF)
    return resources


def _acl_resources(spec, where):
    _check_keys(spec, _ACL_KEYS, where)
    for name in ("object", "instance", "owner"):
        if name not in spec:
            raise ValueError("%s: missing %s" % (where, name))
    acl = spec.get("acl", {})
    if not isinstance(acl, dict):
        raise ValueError("%s.acl must be an object {ssid: access bits}, got %r" % (where, acl))
    rights = {}
    for ssid, bits in acl.items():  # JSON keys are strings: {"101": 1}
        rights[_id(ssid, where + ".acl")] = _int(bits, where + ".acl[%s]" % ssid, 0, 0x7FFF)
    return {0: _int(spec["object"], where + ".object"), 1: _int(spec["instance"], where + ".instance"),
            2: dict(sorted(rights.items())), 3: _int(spec["owner"], where + ".owner")}


def _instances(specs, build, where):
    """{iid: resources} of {"iid": spec}, in instance-id order."""
    if not isinstance(specs, dict):
        raise ValueError("%s must be an object {instance id: {...}}, got %r" % (where, specs))
    instances = {}
    for iid, spec in specs.items():
        instances[_id(iid, where)] = build(spec, "%s[%s]" % (where, iid))
    return dict(sorted(instances.items()))


def _format(value, where):
    if value is None:
        return None
    if isinstance(value, str) and value.lower() in FORMATS:
        return FORMATS[value.lower()]
    if value in WRITE_FORMATS:
        return value
    raise ValueError("%s must be one of %s (or 11542, 110, 112), got %r" % (where, ", ".join(FORMATS), value))


def check_entry(entry, where="entry"):
    """One endpoint's config, validated and normalised: {"delete": [path], "discover": path or None,
    "read": [path], "format": content format or None (None: the request's pct if it is one of
    ours, else TLV), "security"/"servers"/"acl": {iid: {rid: value}}, "writes": {path: text bytes},
    "finish": bool}. Raises ValueError naming the bad item."""
    _check_keys(entry, _ENTRY_KEYS, where)
    discover = entry.get("discover", False)
    if discover is True:
        discover = "/"
    elif discover is False or discover is None:
        discover = None
    else:
        discover = _path(discover, where + ".discover")
    delete = entry.get("delete", ["/"])
    reads = entry.get("read", [])
    writes = entry.get("writes", {})
    if not isinstance(delete, list) or not isinstance(reads, list):
        raise ValueError("%s: delete and read must be lists of paths" % where)
    if not isinstance(writes, dict):
        raise ValueError("%s.writes must be an object {path: value}, got %r" % (where, writes))
    texts = {}
    for path, value in writes.items():
        parts = codec.parse_path(_path(path, where + ".writes"))
        if len(parts) < 3:
            raise ValueError("%s.writes: %s is not a resource path (text carries one value)" % (where, path))
        try:
            texts[codec.format_path(parts)] = codec.encode_text(value)
        except codec.CodecError as e:
            raise ValueError("%s.writes[%s]: %s" % (where, path, e)) from None
    return {
        "delete": [_path(p, where + ".delete") for p in delete],
        "discover": discover,
        "read": [_path(p, where + ".read") for p in reads],
        "format": _format(entry.get("format"), where + ".format"),
        "security": _instances(entry.get("security", {}), _security_resources, where + ".security"),
        "servers": _instances(entry.get("servers", {}), _server_resources, where + ".servers"),
        "acl": _instances(entry.get("acl", {}), _acl_resources, where + ".acl"),
        "writes": texts,
        "finish": _bool(entry.get("finish", True), where + ".finish"),
    }


def read_config(path):
    """The dict of a JSON config file."""
    with open(path, encoding="utf-8") as f:
        try:
            return json.load(f)
        except ValueError as e:
            raise ValueError("%s: not JSON: %s" % (path, e)) from None


def load_config(source):
    """{endpoint: checked entry} from a dict {endpoint or "*": entry} or a JSON file's path (str or
    Path). Entry keys (all optional):
      delete    Bootstrap-Delete paths, in order                      ["/"]
      discover  true (Bootstrap-Discover "/") or a path, done first    false
      read      Bootstrap-Read paths (Accept TLV), after the writes    []
      format    payload of the instance writes: "tlv", "senml-json", "senml-cbor"   the pct, else tlv
      security  {iid: {uri, bootstrap=false, mode=0 with a key else 3, identity="", key=hex, ssid}}
      servers   {iid: {ssid, lifetime=86400, binding="U", storing=true, pmin, pmax}}
      acl       {iid: {object, instance, acl={ssid: bits}, owner}}
      writes    {"/3/0/14": "+01"}: single-resource Bootstrap-Writes in text
      finish    send Bootstrap-Finish at the end                       true"""
    if isinstance(source, (str, Path)):
        source = read_config(source)
    if not isinstance(source, dict):
        raise ValueError("the config must be an object {endpoint: {...}}, got %r" % (source,))
    return {str(endpoint): check_entry(entry, "config[%s]" % endpoint) for endpoint, entry in source.items()}


def psk_config(uri, identity=None, key=None, ssid=1, lifetime=300, binding="U"):
    """A config that hands every endpoint ("*") one LwM2M server: Security /0/1 (PSK with identity
    and key (hex), or NoSec without them) and Server /1/0. What the CLI's --psk-server builds."""
    if (identity is None) != (key is None):
        raise ValueError("give both a PSK identity and a key, or neither (NoSec)")
    security = {"uri": uri, "bootstrap": False, "ssid": ssid}
    if identity is not None:
        security.update(mode=MODE_PSK, identity=identity, key=key)
    elif uri.startswith("coaps:"):
        raise ValueError("%s is coaps: give --psk-id and --psk-key" % uri)
    else:
        security["mode"] = MODE_NOSEC
    config = {"*": {"security": {"1": security},
                    "servers": {"0": {"ssid": ssid, "lifetime": lifetime, "binding": binding}}}}
    load_config(config)  # validate now: a bad key or ssid fails here, not at the first request
    return config


def _instance_payload(oid, iid, resources, fmt):
    """Bootstrap-Write payload of one instance: the resources at the top level of a TLV payload (as
    Leshan sends them), or SenML records with full paths ("bn": "/0/1/")."""
    types = OBJECT_TYPES[oid]
    if fmt in codec.TLV_FORMATS:
        return codec.encode_tlv_resources(resources, types)
    values = lws.values_by_path((oid, iid), resources)
    return codec.encode_senml(values, fmt, {path: types[codec.parse_path(path)[2]] for path in values})


def plan(entry, pct=None):
    """The requests of one bootstrap sequence (a checked entry): Discover, Deletes, Writes of the
    Security, Server and Access Control instances and the text writes, Reads, Finish."""
    fmt = entry["format"] or (pct if pct in WRITE_FORMATS else TLV)
    ops = []
    if entry["discover"] is not None:
        ops.append(_Op("discover", Code.GET, entry["discover"], accept=LINK))
    ops += [_Op("delete", Code.DELETE, path) for path in entry["delete"]]
    for oid, key in ((SECURITY, "security"), (SERVER, "servers"), (ACCESS_CONTROL, "acl")):
        for iid, resources in entry[key].items():
            ops.append(_Op("write", Code.PUT, "/%d/%d" % (oid, iid), _instance_payload(oid, iid, resources, fmt), fmt))
    ops += [_Op("write", Code.PUT, path, text, TEXT) for path, text in entry["writes"].items()]
    ops += [_Op("read", Code.GET, path, accept=TLV) for path in entry["read"]]
    if entry["finish"]:
        ops.append(_Op("finish", Code.POST, "/bs"))
    return ops


# --- the CoAP side ---------------------------------------------------------------------------------------

class _BootstrapSite(aiocoap.resource.Resource):
    """Root resource: POST /bs is the Bootstrap-Request; anything else 4.04 / 4.05. It renders into the
    pipe itself so that the sequence starts only once the 2.04 is on its way: a device must not get
    the first Delete before the answer to its request."""

    def __init__(self, server):
        super().__init__()
        self.server = server

    async def render_to_pipe(self, pipe):
        request = pipe.request
        start = None
        if tuple(request.opt.uri_path) != ("bs",):
            response = Message(code=Code.NOT_FOUND)
        elif request.code != Code.POST:
            response = Message(code=Code.METHOD_NOT_ALLOWED)
        else:
            response, start = self.server._on_bootstrap_request(request)
        pipe.add_response(response, is_last=True)
        if start is not None:
            start()


class BootstrapServer(lws.EventLog):
    """asyncio LwM2M Bootstrap-Server. `await start()` / `await stop()` (or `async with`) in one event
    loop; BootstrapServerThread wraps it for blocking code. config: see load_config."""

    EVENT_KINDS = EVENT_KINDS

    def __init__(self, host="127.0.0.1", port=DEFAULT_PORT, config=None, *, request_timeout=DEFAULT_TIMEOUT,
                 registry_dir=lws.DEFAULT_REGISTRY, on_event=None):
        self.host = lws.loopback_host(host)
        self.requested_port = int(port)
        self.port = None  # the bound port, known after start()
        self.config = load_config(config if config is not None else {})
        self.request_timeout = request_timeout
        self.on_event = on_event  # called with each Event (in the loop's thread)
        # Types for decoding Bootstrap-Read answers of objects other than 0, 1, 2.
        self.registry = lws.ObjectRegistry(registry_dir if registry_dir and Path(registry_dir).is_dir() else None)
        self.requests = {}  # endpoint -> Bootstrap-Requests received (also refused ones)
        self.runs = {}  # endpoint -> [[Result]], one list per sequence, oldest first
        self.events = []
        self._taken = set()  # seq of events already returned by wait_for
        self._waiters = []  # (kind, endpoint, future)
        self._tasks = {}  # endpoint -> its running sequence
        self._context = None
        self._loop = None

    def configure(self, config):
        """Add or replace endpoints' entries (same form as the constructor's config)."""
        self.config.update(load_config(config))

    def entry_for(self, endpoint):
        """The checked config entry for endpoint (its own, else "*"), or None."""
        return self.config.get(endpoint, self.config.get("*"))

    # lifecycle

    async def start(self):
        self._loop = asyncio.get_running_loop()
        lws._exclusive_bind(True)  # no SO_REUSEPORT: a second server on the port must fail
        try:
            # udp6 only, as lwm2m_server: one socket serves /bs and sends the sequence, so requests
            # reach the device from the address it sent its Bootstrap-Request to.
            self._context = await aiocoap.Context.create_server_context(
                _BootstrapSite(self), bind=(self.host, self.requested_port), transports=["udp6"])
        finally:
            lws._exclusive_bind(False)
        self.port = lws._bound_port(self._context)
        return self

    async def stop(self):
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self._close()

    # Bootstrap-Request

    def _on_bootstrap_request(self, request):
        """(response, start or None): start() runs the sequence; called once the response is sent."""
        query = lws._parse_query(request.opt.uri_query)
        endpoint = query.get("ep")
        address = lws._remote_address(request.remote)
        pct = None
        refused = None
        if endpoint:
            self.requests[endpoint] = self.requests.get(endpoint, 0) + 1
        if not endpoint:
            refused = "missing ep"
        elif "pct" in query:
            try:
                pct = int(query["pct"] or "")
            except ValueError:
                refused = "bad pct %r" % query["pct"]
        entry = self.entry_for(endpoint) if endpoint else None
        if refused is None and entry is None:
            refused = "unknown endpoint %s" % endpoint
        if refused is not None:
            self._record("request", endpoint or None, address, code="4.00", pct=pct, query=query,
                         diagnostic=refused)
            return lws._bad(Code.BAD_REQUEST, refused), None
        ops = plan(entry, pct)
        self._record("request", endpoint, address, code="2.04", pct=pct, query=query)

        def start():
            old = self._tasks.pop(endpoint, None)
            if old is not None:
                old.cancel()  # the device asked again: the new sequence replaces the old one
            task = self._loop.create_task(self._sequence(endpoint, ops, request.remote, address))
            self._tasks[endpoint] = task
            task.add_done_callback(lambda done: self._sequence_done(endpoint, done))
        return Message(code=Code.CHANGED), start

    def _sequence_done(self, endpoint, task):
        if self._tasks.get(endpoint) is task:
            del self._tasks[endpoint]
        if not task.cancelled() and task.exception() is not None:
            log.error("bootstrap sequence of %s failed", endpoint, exc_info=task.exception())

    async def _sequence(self, endpoint, ops, remote, address):
        run = []
        self.runs.setdefault(endpoint, []).append(run)
        for op in ops:
            # Each step is recorded and the sequence goes on whatever the answer: a test must see
            # everything the device said, not only its first refusal.
            result = await self._step(op, remote)
            run.append(result)
            self._record("step", endpoint, address, code=result.code, result=result)
            if op.op == "finish":
                diagnostic = result.payload.decode("utf-8", "replace") if result.payload else None
                self._record("finished", endpoint, address, code=result.code, result=result, diagnostic=diagnostic)

    async def _step(self, op, remote):
        message = Message(code=op.method, payload=op.payload)  # confirmable: aiocoap's default
        message.opt.uri_path = tuple(p for p in op.path.split("/") if p)  # "/" -> none
        if op.content_format is not None:
            message.opt.content_format = op.content_format
        if op.accept is not None:
            message.opt.accept = op.accept
        message.remote = remote  # the device's address, sent from the socket its request came to
        request = self._context.request(message)
        try:
            done, _ = await asyncio.wait({request.response}, timeout=self.request_timeout)
        except asyncio.CancelledError:
            request.response.cancel()
            self._abandon(message)
            raise
        if not done:
            request.response.cancel()
            self._abandon(message)
            return self._result(op, "no answer" if op.op == "finish" else "timeout")
        try:
            response = request.response.result()
        except aiocoap.error.TimeoutError:  # aiocoap gave up retransmitting first
            return self._result(op, "no answer" if op.op == "finish" else "timeout")
        except aiocoap.error.MessageError:
            return self._result(op, "RST")
        except aiocoap.error.Error as e:
            return self._result(op, "error", value=str(e))
        return self._response_result(op, response)

    def _abandon(self, message):
        # aiocoap keeps retransmitting a CON whose response future was cancelled and, with NSTART=1,
        # holds every later request to the device behind it for ~93 s; lwm2m_server's remedy needs
        # only ._context.
        lws.LwM2MServer._abandon(self, message)

    @staticmethod
    def _result(op, code, payload=b"", value=None, content_format=None, decode_error=None):
        return Result(op.op, op.path, code, payload, value, content_format, op.payload, op.content_format,
                      decode_error)

    def _response_result(self, op, response):
        payload = bytes(response.payload)
        cf = response.opt.content_format
        cf = None if cf is None else int(cf)
        code = response.code.dotted
        if not response.code.is_successful():
            return self._result(op, code, payload, payload.decode("utf-8", "replace") or None, cf)
        if op.op not in ("discover", "read") or not payload:
            return self._result(op, code, payload, None, cf)
        try:
            value = self._decode(payload, cf, codec.parse_path(op.path))
        except (codec.CodecError, ValueError, UnicodeDecodeError) as e:
            return self._result(op, code, payload, None, cf, str(e))
        return self._result(op, code, payload, value, cf)

    def _decode(self, payload, cf, parts):
        if cf == LINK:
            return codec.parse_links(payload)
        if cf in codec.TLV_FORMATS:
            types = {}
            if parts:
                types = dict(self.registry.types(parts[0]))
                types.update(OBJECT_TYPES.get(parts[0], {}))
            return codec.decode_tlv(payload, types)
        if cf in codec.SENML_FORMATS:
            return codec.decode_senml(payload, cf)
        if cf in codec.TEXT_FORMATS:
            return codec.decode_text(payload)
        return payload

    # results and events

    def steps(self, endpoint, run=-1):
        """Results of the endpoint's latest sequence (run=-1), of an earlier one (0 = the first), or of
        all of them in order (run=None); [] when it has none."""
        runs = self.runs.get(endpoint, [])
        if run is None:
            return [result for results in runs for result in results]
        try:
            return list(runs[run])
        except IndexError:
            return []

    def _record(self, kind, endpoint, address, **details):
        self._publish(Event(kind=kind, endpoint=endpoint, time=time.time(), address=address, seq=len(self.events),
                            **details))  # a broken on_event callback must not stop the sequence

    def events_for(self, endpoint):
        return [event for event in self.events if event.endpoint == endpoint]



# --- blocking wrapper ----------------------------------------------------------------------------------

class BootstrapServerThread(lws.LoopThread):
    """A BootstrapServer in its own thread and event loop, for pytest. port=0 (the default) binds a
    free port: see .port / .uri. A context manager."""

    name = "bootstrap-server"

    def __init__(self, host="127.0.0.1", port=0, config=None, **server_options):
        super().__init__(BootstrapServer(host, port, config, **server_options))

    def wait_for(self, kind, endpoint=None, timeout=10.0):
        """BootstrapServer.wait_for, blocking: the next unseen Event of kind, or TimeoutError."""
        return self._call(self.server.wait_for(kind, endpoint, timeout), timeout + 5)

    def steps(self, endpoint, run=-1):
        return self._snapshot(lambda: self.server.steps(endpoint, run))

    def configure(self, config):
        return self._snapshot(lambda: self.server.configure(config))

    @property
    def requests(self):
        return self._snapshot(lambda: dict(self.server.requests))

    @property
    def events(self):
        return self._snapshot(lambda: list(self.server.events))

    def events_for(self, endpoint):
        return self._snapshot(lambda: self.server.events_for(endpoint))


# --- CLI ---------------------------------------------------------------------------------------------------

def _show(value, limit=120):
    text = lws._show(value) if isinstance(value, bytes) else str(value)
    return text if len(text) <= limit else text[:limit] + "..."


def describe_event(event):
    """One line per event: "request ep=dev1 pct=11542 addr=127.0.0.1:40000 -> 2.04",
    "step ep=dev1 write /0/1 (11542, 52 bytes) -> 2.04", "finished ep=dev1 -> 4.06 reason"."""
    ep = "ep=%s" % event.endpoint
    if event.kind == "request":
        pct = " pct=%s" % event.pct if event.pct is not None else ""
        tail = " %s" % event.diagnostic if event.diagnostic else ""
        return "request %s%s addr=%s:%s -> %s%s" % (ep, pct, event.address[0], event.address[1], event.code, tail)
    result = event.result
    if event.kind == "finished":
        return "finished %s -> %s%s" % (ep, event.code, " %s" % event.diagnostic if event.diagnostic else "")
    sent = " (%s, %d bytes)" % (result.sent_format, len(result.sent)) if result.sent else ""
    line = "step %s %s %s%s -> %s" % (ep, result.op, result.path, sent, result.code)
    if result.decode_error:
        line += " (undecodable: %s)" % result.decode_error
    elif result.value is not None:
        line += " " + _show(result.value)
    return line


def _parser():
    parser = argparse.ArgumentParser(description="LwM2M 1.1 Bootstrap-Server for tests and the local demo")
    parser.add_argument("--host", default="127.0.0.1", help="loopback address to bind [127.0.0.1]")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="UDP port [%d]" % DEFAULT_PORT)
    parser.add_argument("--config", metavar="FILE", help="JSON file {endpoint or \"*\": {...}}")
    parser.add_argument("--psk-server", metavar="URI",
                        help="instead of --config: give every endpoint this one LwM2M server "
                             "(e.g. coaps://127.0.0.1:5684)")
    parser.add_argument("--psk-id", metavar="ID", help="with --psk-server: PSK identity")
    parser.add_argument("--psk-key", metavar="HEX", help="with --psk-server: PSK key in hex")
    parser.add_argument("--ssid", type=int, default=1, help="with --psk-server: Short Server ID [1]")
    parser.add_argument("--lifetime", type=int, default=300, help="with --psk-server: lifetime in s [300]")
    parser.add_argument("--binding", default="U", help="with --psk-server: binding [U]")
    parser.add_argument("--request-timeout", type=float, default=DEFAULT_TIMEOUT, metavar="S",
                        help="seconds to wait for the device's answer to each step [%g]" % DEFAULT_TIMEOUT)
    parser.add_argument("--quiet", action="store_true", help="print only requests and finishes, not each step")
    return parser


def config_from_args(args):
    """The config (a dict as BootstrapServer takes it) the CLI arguments ask for: the --config file's,
    or psk_config of the --psk-* options. ValueError (OSError for an unreadable file) when they are
    wrong or do not fit together."""
    if (args.config is None) == (args.psk_server is None):
        raise ValueError("give either --config FILE or --psk-server URI")
    if args.config is None:
        return psk_config(args.psk_server, args.psk_id, args.psk_key, args.ssid, args.lifetime, args.binding)
    config = read_config(args.config)
    load_config(config)  # validate before binding anything
    return config


async def serve(args, config):
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)

    def on_event(event):
        if not (args.quiet and event.kind == "step"):
            print(describe_event(event), flush=True)

    server = BootstrapServer(args.host, args.port, config, request_timeout=args.request_timeout, on_event=on_event)
    await server.start()
    print("LwM2M bootstrap server on %s port %d for %s (Ctrl-C to stop)"
          % (server.host, server.port, ", ".join(sorted(config)) or "no endpoints"), flush=True)
    try:
        await stop.wait()
    finally:
        await server.stop()
    print("stopped", flush=True)


def main(argv=None):
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        args.host = lws.loopback_host(args.host)
        config = config_from_args(args)
    except (ValueError, OSError) as e:
        parser.error(str(e))
    logging.basicConfig(level=logging.ERROR if args.quiet else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        asyncio.run(serve(args, config))
    except OSError as e:
        print("bootstrap_server: cannot serve on %s port %d: %s" % (args.host, args.port, e), file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # a second Ctrl-C during shutdown
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
