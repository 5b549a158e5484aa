"""Port differences (MicroPython, CircuitPython, CPython) in one place; everything else imports from here."""
import sys

try:
    from micropython import const  # MicroPython; CircuitPython; Blinka's shim on CPython
except ImportError:
    # Plain CPython (host tests, tools): install a shim so library modules can keep the
    # `from micropython import const` line that lets mpy-cross inline constants.
    import types

    _shim = types.ModuleType("micropython")
    _shim.const = lambda x: x
    sys.modules["micropython"] = _shim
    from micropython import const

import time

try:
    ticks_ms = time.ticks_ms
    ticks_diff = time.ticks_diff
    ticks_add = time.ticks_add
except AttributeError:  # CPython and CircuitPython: no ticks_* in time
    try:
        from supervisor import ticks_ms  # CircuitPython: wraps like MicroPython's
    except ImportError:
        def ticks_ms():
            return int(time.monotonic() * 1000) & 0x3FFFFFFF

    _PERIOD = const(0x40000000)
    _HALF = const(0x20000000)

    def ticks_diff(a, b):
        return ((a - b + _HALF) & (_PERIOD - 1)) - _HALF

    def ticks_add(a, d):
        return (a + d) & (_PERIOD - 1)

try:
    sleep_ms = time.sleep_ms
except AttributeError:
    def sleep_ms(ms):
        time.sleep(ms / 1000)

try:
    from os import urandom
except ImportError:  # some CircuitPython builds keep it in os only when a TRNG exists
    import random

    def urandom(n):
        return bytes(random.getrandbits(8) for _ in range(n))

try:
    import gc

    mem_free = gc.mem_free
    mem_alloc = gc.mem_alloc
except AttributeError:  # CPython: no heap figures
    mem_free = mem_alloc = None

IS_MICROPYTHON = sys.implementation.name == "micropython"
IS_CIRCUITPYTHON = sys.implementation.name == "circuitpython"


def print_exception(e):
    """Traceback to stdout on every port (MicroPython's sys.print_exception vs traceback)."""
    if hasattr(sys, "print_exception"):
        sys.print_exception(e)
    else:
        import traceback

        traceback.print_exception(type(e), e, e.__traceback__)

try:
    from machine import reset  # MicroPython boards
except ImportError:
    try:
        from microcontroller import reset  # CircuitPython
    except ImportError:
        reset = None  # unix port / CPython: the client emulates a reboot by registering again

# Seconds since 1970: MicroPython boards count from 2000 (time.gmtime(0) says which)
_EPOCH = 946684800 if time.gmtime(0)[0] == 2000 else 0


def unix_time():
    return int(time.time()) + _EPOCH


def udp_send(sock, buf, n):
    """Send buf[:n] as one datagram without copying where the port allows it."""
    if hasattr(sock, "write"):
        sock.write(buf, n)  # MicroPython stream write with a length: no slice object
    else:
        sock.send(memoryview(buf)[:n])  # CircuitPython / CPython


def udp_recv(sock, size):
    """One datagram as bytes, or None when nothing is waiting (non-blocking socket)."""
    try:
        if hasattr(sock, "recv"):
            return sock.recv(size)
        buf = bytearray(size)  # CircuitPython: only recv_into exists
        return bytes(buf[: sock.recv_into(buf)])
    except OSError as e:
        if e.args[0] in (11, 35, 110, 116):  # EAGAIN (Linux, BSD), ETIMEDOUT (lwIP, CircuitPython)
            return None
        raise

