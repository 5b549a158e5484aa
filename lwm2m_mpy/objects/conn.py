"""Object 4 Connectivity Monitoring (OMA LwM2M registry 4.xml) from the network interface.

MicroPython boards: `network.WLAN(network.STA_IF)` (bearer 21 WLAN, RSSI, address and router from
ifconfig; on CircuitPython the same API over `wifi.radio`, from _compat_other.py). Elsewhere (unix port, CPython) bearer 41 Ethernet and the
address the host uses towards the LwM2M server: getsockname() where sockets have it, else (MicroPython's
unix port has none) Linux's /proc/net/udp row of a socket connected to the server.
"""
from micropython import const

from .._compat import ticks_add, ticks_diff
from ..tables import o4

_WLAN = const(21)
_ETHERNET = const(41)
_RSSI = const(2)
_IP = const(4)
_ROUTER = const(5)


def make(client, oid, iid, part, cfg):
    """cfg: every (s between looks at the interface, default 30), bearer (0-50, resource 0), ip (a fixed
    address for resource 4, where the port cannot tell it)."""
    return Conn(client, iid, cfg)


def _nic():
    """The station interface (MicroPython's WLAN, or _compat_other's over CircuitPython's radio), or None."""
    try:
        import network

        return network.WLAN(network.STA_IF)
    except (ImportError, AttributeError):  # no network module (a host), or one without WiFi (wired boards)
        return None


def own_ip(uri):
    """The local address of a UDP socket connected to the host of `uri` ("0.0.0.0" when it cannot be told).
    Connecting a UDP socket sends nothing; it only makes the kernel choose the route and source address."""
    rest = uri.partition("://")[2].partition("/")[0] if uri else ""
    host = rest[1 : rest.find("]")] if rest.startswith("[") else rest.partition(":")[0]
    s = None
    try:
        import os
        import socket  # here: CircuitPython has none (its sockets come from socketpool) and needs none
        import sys

        ai = socket.getaddrinfo(host, 5683, 0, socket.SOCK_DGRAM)[0]
        s = socket.socket(ai[0], socket.SOCK_DGRAM)
        s.connect(ai[-1])
        try:
            return s.getsockname()[0]
        except AttributeError:  # MicroPython: find the socket's row by its inode in Linux's table
            pass
        ino = str(os.stat("/proc/self/fd/%d" % s.fileno())[1])
        with open("/proc/net/udp6" if ai[0] == socket.AF_INET6 else "/proc/net/udp") as f:
            for line in f:
                p = line.split()
                if len(p) > 9 and p[9] == ino:
                    h = p[1].split(":")[0]  # hex of 32-bit words in host byte order
                    x = 3 if sys.byteorder == "little" else 0
                    b = bytes(int(h[2 * (i ^ x) : 2 * (i ^ x) + 2], 16) for i in range(len(h) // 2))
                    return socket.inet_ntop(ai[0], b)
    except (ImportError, OSError, AttributeError, IndexError, ValueError):  # no /proc, no route, unknown name
        pass
    finally:
        if s is not None:
            s.close()
    return "0.0.0.0"


class Conn:
    """One instance of object 4: 0/1 bearer, 2 RSSI (dBm; 0 on a wire), 4 IP address, 5 router (boards),
    looked at every `every` s; a change is notified."""

    def __init__(self, client, iid, cfg):
        self.c = client
        self.path = "/4/%d/%%d" % iid
        self.every = int(cfg.get("every", 30) * 1000)
        self.due = None
        self.ip = cfg.get("ip")
        self.nic = _nic()
        bearer = cfg.get("bearer", _ETHERNET if self.nic is None else _WLAN)
        # the mandatory resources from the start: 2 stays 0 (no radio) on a wired link
        client.add(o4.T, iid, {0: bearer, 1: {0: bearer}, _RSSI: 0, _IP: {0: self.ip or "0.0.0.0"}})
        self.d = client.objs[4].inst[iid]
        self.refresh()

    def refresh(self):
        """Look at the interface; tell observers what changed."""
        n = self.nic
        rssi = router = None
        if n is None:
            ip = self.ip or own_ip(self.c.server)
        else:
            a = n.ifconfig()
            ip = a[0]
            router = a[2]
            try:
                rssi = n.status("rssi")
            except (OSError, ValueError, TypeError):  # not connected, or a port that does not say
                pass
        d = self.d
        for rid, v in ((_RSSI, rssi), (_IP, {0: self.ip or ip}), (_ROUTER, router and {0: router})):
            if v is not None and d.get(rid) != v:
                d[rid] = v
                self.c.changed(self.path % rid)

    def poll(self, now):
        if self.due is None or ticks_diff(now, self.due) >= 0:
            self.due = ticks_add(now, self.every)
            self.refresh()
        return ticks_diff(self.due, now)
