"""Port differences in one place: MicroPython here; CircuitPython and CPython in _compat_other.py.

Only the branch for the running port is loaded, so a MicroPython board pays for none of the shims.
"""
import sys
import time

IS_MICROPYTHON = sys.implementation.name == "micropython"

if IS_MICROPYTHON:
    from time import ticks_ms, ticks_diff, ticks_add
    from os import urandom
    from gc import mem_free, mem_alloc
    from sys import print_exception

    try:
        from machine import reset
    except ImportError:
        reset = None  # unix port: the client emulates a reboot by registering again

    def udp_send(sock, buf, n):
        sock.write(buf, n)  # stream write with a length: one datagram, no slice object

    def udp_recv(sock, buf):
        return sock.recv(buf)  # buf is a size here: esp32/rp2/unix have no recv_into for UDP

else:
    from ._compat_other import *  # noqa: F401,F403

# Seconds since 1970: MicroPython boards count from 2000 (time.gmtime(0) says which); CircuitPython (which
# has no gmtime) and CPython count from 1970
_EPOCH = 946684800 if IS_MICROPYTHON and time.gmtime(0)[0] == 2000 else 0


def unix_time():
    return int(time.time()) + _EPOCH
