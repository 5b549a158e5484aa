"""The compat layer for CircuitPython and CPython (Blinka): what MicroPython's modules provide natively."""
import sys
import time

try:
    from micropython import const  # CircuitPython; Blinka's shim on CPython
except ImportError:
    # Plain CPython (host tests, tools): a shim, so library modules keep `from micropython import const`
    import types

    _shim = types.ModuleType("micropython")
    _shim.const = lambda x: x
    sys.modules["micropython"] = _shim
    from micropython import const

_PERIOD = const(0x40000000)  # MicroPython's ticks period: tests and timers see the same wrap-around
_HALF = const(0x20000000)

try:
    from supervisor import ticks_ms  # CircuitPython: wraps like MicroPython's
except ImportError:
    def ticks_ms():
        return int(time.monotonic() * 1000) & (_PERIOD - 1)


def ticks_diff(a, b):
    return ((a - b + _HALF) & (_PERIOD - 1)) - _HALF


def ticks_add(a, d):
    return (a + d) & (_PERIOD - 1)


try:
    from os import urandom
except ImportError:  # CircuitPython without a TRNG
    import random

    def urandom(n):
        return bytes(random.getrandbits(8) for _ in range(n))

try:
    from gc import mem_free, mem_alloc  # CircuitPython
except ImportError:  # CPython: no heap figures
    mem_free = mem_alloc = None

try:
    from microcontroller import reset  # CircuitPython (Blinka has no reset either)
except (ImportError, NotImplementedError):
    reset = None


def print_exception(e):
    import traceback

    traceback.print_exception(type(e), e, e.__traceback__)


def udp_send(sock, buf, n):
    sock.send(memoryview(buf)[:n])


def udp_recv(sock, buf):
    """One datagram or None. CircuitPython sockets only have recv_into; timeouts raise ETIMEDOUT."""
    try:
        return memoryview(buf)[: sock.recv_into(buf)]
    except OSError as e:
        if e.args[0] in (11, 35, 110, 116):  # EAGAIN (Linux, BSD), ETIMEDOUT (lwIP, CircuitPython)
            return None
        raise
