"""Board profiles made real: the parts of boards/<name>.py from lwm2m_mpy/drivers, its objects from
lwm2m_mpy/objects, polled from the client's loop (docs/boards.md).

On a board, main.py is `from lwm2m_mpy.board import run; run("pico_w")`: WiFi, endpoint and server come
from config.json (tools/mkconfig.py), never from code.
"""
import gc
import json
import sys
import time

from ._compat import ticks_ms, ticks_diff, ticks_add, print_exception, reset

# config.json keys that are Client keyword arguments as they stand
_PLAIN = ("lifetime", "binding", "queue", "awake_s", "retry_s", "state", "bootstrap", "confirm", "store")
_OTHER = ("wifi", "endpoint", "server", "psk_id", "psk_key", "apn")
_MODEMS = ("sim7080", "bg95", "sara-r5", "nrf91")  # and their modules under transport/ (docs/modem.md)
_MODEM_MODULES = ("modem_sim7080", "modem_bg95", "modem_sara", "modem_nrf91")
_WIFI_S = 30  # how long the WiFi may take to associate and get an address


def profile(name):
    """The profile module boards/<name>.py (data only)."""
    try:
        return __import__("boards." + name, None, None, ("PARTS",))
    except ImportError as e:
        raise ValueError("unknown board %s (no boards/%s.py: %s)" % (name, name, e))


def module(oid):
    """The module under lwm2m_mpy/objects that gives object `oid` its behaviour."""
    return "conn" if oid == 4 else "location" if oid == 6 else "ipso"


def needs(prof):
    """Module names (under lwm2m_mpy) this profile loads besides the client itself: its drivers, object
    modules and tables. tools/deploy.py ships exactly these with the client."""
    mods = {"board"}
    for name in prof.PARTS:
        mods.add("drivers." + prof.PARTS[name][0])
    for oid, iid, part, cfg in prof.OBJECTS:
        mods.add("objects." + module(oid))
        mods.add("tables.o%d" % oid)
    if getattr(prof, "NET", None) == "modem":  # the cellular transport (docs/modem.md)
        mods.update(("transport.at", "transport.modem", "transport." + _MODEM_MODULES[_MODEMS.index(prof.MODEM["modem"])]))
    fota = getattr(prof, "FOTA", None)
    if fota:  # object 5 with its sink (docs/fota.md): the verifier, the puller, and the guard of a files sink
        mods.update(("objects.firmware", "tables.o5", "fota.package", "fota.pull", "fota.%s_sink" % fota))
        if fota == "files":
            mods.add("fota.guard")
    return sorted(mods)


def setup(client, prof):
    """Make the parts and objects of profile `prof` on `client`; returns the object instances. A part whose
    device does not answer (OSError from its driver) is logged and its objects are left out."""
    log = client.log or (lambda msg: None)
    parts = {}
    for name in prof.PARTS:
        driver, cfg = prof.PARTS[name]
        gc.collect()
        make = __import__("lwm2m_mpy.drivers." + driver, None, None, ("make",)).make
        try:
            parts[name] = make(cfg)
        except OSError as e:
            log("board: part %s (%s) left out: %s" % (name, driver, e))
    insts = []
    for oid, iid, part, cfg in prof.OBJECTS:
        if part is not None and part not in parts:
            continue
        gc.collect()
        make = __import__("lwm2m_mpy.objects." + module(oid), None, None, ("make",)).make
        insts.append(make(client, oid, iid, parts.get(part), cfg))
    fota = getattr(prof, "FOTA", None)
    if fota:  # object 5 Firmware Update into the profile's sink (docs/fota.md)
        gc.collect()
        sink = __import__("lwm2m_mpy.fota.%s_sink" % fota, None, None, ("Sink",)).Sink(None, reset or client.restart)
        make = __import__("lwm2m_mpy.objects.firmware", None, None, ("make",)).make
        insts.append(make(client, 5, 0, sink, {}))
    drive(client, insts, log)
    # The profile's data (its dicts and tuples: about 3 KiB of heap) is not needed again
    name = getattr(prof, "__name__", "")
    if sys.modules.get(name) is prof:
        sys.modules.pop(name)
        pkg = sys.modules.get("boards")
        if pkg:
            pkg.__dict__.pop(name[7:], None)  # the package holds it too
    gc.collect()
    return insts


def drive(client, insts, log=None):
    """Poll every instance (anything with `poll(now) -> ms`) when it is due, from the client's own step (an instance attribute over the
    method, as core/servers.py widens it for several servers), so the blocking loop and the asyncio one
    both wake for the polls: the deadline step() returns includes them."""
    inner = client.step
    due = [None] * len(insts)

    def step(now):
        nxt = inner(now)
        for k in range(len(insts)):
            d = due[k]
            if d is None or ticks_diff(d, now) <= 0:
                try:
                    d = ticks_add(now, insts[k].poll(now))
                except Exception as e:  # a driver or object bug: say so, keep the device serving, retry later
                    print_exception(e)
                    if log:
                        log("board: poll of %s failed: %r" % (insts[k], e))
                    d = ticks_add(now, 10000)
                due[k] = d
            if nxt is None or ticks_diff(nxt, d) > 0:
                nxt = d
        return nxt

    client.step = step


def client_args(cfg):
    """(endpoint, server, keyword arguments) for Client from a config.json dict; unknown keys are an error
    (a typo must not silently mean a default)."""
    for k in cfg:
        if k not in _PLAIN and k not in _OTHER:
            raise ValueError("config.json: unknown key %s (known: %s)" % (k, " ".join(_PLAIN + _OTHER)))
    kw = {}
    for k in _PLAIN:
        if cfg.get(k) is not None:
            kw[k] = cfg[k]
    if cfg.get("psk_id"):
        kw["psk"] = (cfg["psk_id"].encode(), bytes.fromhex(cfg["psk_key"]))
    server = cfg.get("server")
    if server is None and "bootstrap" not in kw:
        raise ValueError("config.json: no server (and no bootstrap)")
    return cfg.get("endpoint") or "lwm2m-mpy", server, kw


def wifi(cfg, log):
    """Join the WLAN of config.json's "wifi" {"ssid", "password"}; at most 30 s. (CircuitPython: the network
    module comes from _compat_other over wifi.radio.)"""
    import network

    w = network.WLAN(network.STA_IF)
    w.active(True)
    if not w.isconnected():
        log("wifi: joining %s" % cfg["ssid"])
        w.connect(cfg["ssid"], cfg.get("password", ""))
        start = ticks_ms()
        while not w.isconnected():
            if ticks_diff(ticks_ms(), start) > _WIFI_S * 1000:
                raise OSError("wifi: no connection to %s within %d s" % (cfg["ssid"], _WIFI_S))
            time.sleep(0.2)
    log("wifi: %s" % w.ifconfig()[0])
    return w


def modem(prof, cfg, server, log=None):
    """The cellular transport of a profile with NET = "modem": its MODEM {"modem": "sim7080" | "bg95" |
    "sara-r5" | "nrf91", "uart": id, "tx", "rx": pins, "baud": 115200, "apn": ...}; config.json's "apn" wins.
    coap:// only: a modem carries no DTLS of ours yet."""
    from machine import UART, Pin
    from .transport.modem import for_modem

    m = prof.MODEM
    scheme, _, rest = (server or "").partition("://")
    if scheme != "coap":
        raise ValueError("a modem carries coap:// servers only (no DTLS yet): %s" % server)
    if "tx" in m:
        uart = UART(m.get("uart", 1), m.get("baud", 115200), tx=Pin(m["tx"]), rx=Pin(m["rx"]))
    else:
        uart = UART(m.get("uart", 1), m.get("baud", 115200))
    host, _, port = rest.split("/")[0].partition(":")
    return for_modem(m["modem"], uart, host, int(port or 5683), cfg.get("apn") or m.get("apn"), log)


def run(name, config="config.json", log=print, **kw):
    """A board's whole main.py: config.json, network, Client with the profile's objects, run() until Ctrl-C.
    More Client keyword arguments (device={...}, buffer=...) may be given."""
    prof = profile(name)
    with open(config) as f:
        cfg = json.load(f)
    if prof.NET == "wlan":
        if "wifi" not in cfg:
            raise ValueError("config.json: no wifi section for board %s" % name)
        wifi(cfg["wifi"], log)
    endpoint, server, more = client_args(cfg)
    if prof.NET == "modem":
        more["transport"] = modem(prof, cfg, server, log)
    more.update(kw)
    from lwm2m_mpy import Client

    client = Client(endpoint, server, log=log, **more)
    setup(client, prof)
    client.run()
    return client
