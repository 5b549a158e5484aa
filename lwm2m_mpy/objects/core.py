"""The mandatory objects (Core Appendix E): 0 Security, 1 Server, 3 Device, with their default behaviour.

One module for the three, since every client has all three: each module costs heap of its own.
"""
import sys
from micropython import const

from .._compat import mem_free, mem_alloc, reset, unix_time
from ..tables import o0, o1, o3

_SET = const(1 << 26)
_EXE = const(2 << 26)


def add(client, uri, lifetime=300, binding="U", ssid=1, manufacturer="lwm2m_mpy", model=None,
        serial="0", firmware=None, reboot=None, factory_reset=None, psk=None, bootstrap=None, config=None,
        cert=None):
    """Objects 0, 1 and 3 with their start-up values; also how Factory Reset restores them."""
    for oid in (0, 1, 2, 3):  # a factory reset starts from no instances (a server may have created some)
        if oid in client.objs:
            client.objs[oid].inst.clear()
    # 0 Security: the server account; mode 0 = pre-shared key (identity /0/0/3, key /0/0/5) or 2 =
    # certificates (the client's /0/0/3 and its key /0/0/5, the server's /0/0/4) for coaps://, else 3 = NoSec.
    # A Bootstrap-Server account (below) has the same keys.
    # One dict literal each (a dict grown by update keeps a larger table for the device's life).
    key = cert or psk
    mode = 2 if cert else 0 if psk else 3
    ident = key[0] if key else b""
    secret = key[1] if key else b""
    theirs = cert[2] if cert else b""
    client.add(o0.T, 0 if uri else None, {0: uri, 1: False, 2: mode, 3: ident, 4: theirs, 5: secret, 10: ssid})
    # 1 Server: lifetime (1) and binding (7) are what Register/Update report; 6 = store notifications
    # Hooks are set by key (kind << 26 | iid << 16 | rid; kind 0 get, 1 set, 2 execute) rather than by
    # path strings, which would each stay interned in the heap.
    client.add(o1.T, 0 if uri else None, {0: ssid, 1: lifetime, 6: True, 7: binding}).hooks[_EXE | 8] = client.update
    if bootstrap:  # the Bootstrap-Server account (/0/x/1 true), after the server account if there is one
        client.add(o0.T, len(client.objs[0].inst), {0: bootstrap, 1: True, 2: mode, 3: ident, 4: theirs, 5: secret})
    if config:  # factory configuration from a file (core/persist.py format): objects 0, 1 and 2 from it
        client.dm._lazy("core.persist").load(client, config)
    # 3 Device
    ver = "%d.%d.%d" % sys.implementation.version[:3]
    device = client.add(o3.T, 0, {0: manufacturer, 1: model or sys.platform, 2: serial, 3: firmware or ver,
                                  11: {0: 0},  # error code 0: no error
                                  16: binding, 19: ver})
    hooks = device.hooks
    offset = [0]  # a written Current Time shifts the clock instead of setting the RTC

    def set_time(v):
        offset[0] = v - unix_time()

    hooks[13] = lambda: unix_time() + offset[0]
    hooks[_SET | 13] = set_time
    if mem_free:  # KiB, from the Python heap
        hooks[10] = lambda: mem_free() // 1024
        hooks[21] = lambda: (mem_free() + mem_alloc()) // 1024
    # Reboot and factory reset answer 2.04 first, then act (Core §E.4: the response precedes them)
    def restore():  # the default Factory Reset: these values again, attributes gone, register anew
        sys.modules.pop(__name__, None)  # this copy let go of add (core/client.py): load it again
        m = __import__(__name__, None, None, ("add",))
        m.add(client, uri, lifetime, binding, ssid, manufacturer, model, serial, firmware, reboot, factory_reset,
              psk, bootstrap, config, cert)
        m.__dict__.pop("add")
        client.dm.attrs.clear()
        client.restart()

    hooks[_EXE | 4] = lambda args: client.later(reboot or reset or client.restart)
    hooks[_EXE | 5] = lambda args: client.later(factory_reset or restore)
    hooks[_EXE | 12] = lambda args: device.inst[0].__setitem__(11, {0: 0})  # Reset Error Code

