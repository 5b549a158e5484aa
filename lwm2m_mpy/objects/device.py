"""Object 3 Device (Core §E.4): identity, memory and time read live, reboot / factory reset / error codes."""
import sys

from .._compat import mem_free, mem_alloc, reset, unix_time
from ..tables.o3 import T


def add(client, manufacturer="lwm2m_mpy", model=None, serial="0", firmware=None, reboot=None,
        factory_reset=None):
    ver = "%d.%d.%d" % sys.implementation.version[:3]
    client.add(T, 0, {
        0: manufacturer,
        1: model or sys.platform,
        2: serial,
        3: firmware or ver,
        11: {0: 0},  # error code 0: no error
        16: "U",  # supported binding: UDP
        19: ver,
    })
    offset = [0]  # a written Current Time shifts the clock instead of setting the RTC
    client.bind("/3/0/13", get=lambda: unix_time() + offset[0],
                set=lambda v: offset.__setitem__(0, v - unix_time()))
    if mem_free:
        client.bind("/3/0/10", get=lambda: mem_free() // 1024)
        client.bind("/3/0/21", get=lambda: (mem_free() + mem_alloc()) // 1024)
    # Reboot answers 2.04 first, then acts (Core §E.4: the response precedes the reboot)
    client.on_execute("/3/0/4", lambda args: client.later(reboot or reset or client.restart))
    client.on_execute("/3/0/5", lambda args: client.later(factory_reset or client.factory_reset))
    client.on_execute("/3/0/12", lambda args: client.set("/3/0/11", {0: 0}))
