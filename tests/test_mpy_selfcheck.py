"""Trivial tests that must pass under CPython and inside micropython: proof the harness runs both."""
import struct

MPY = True
MPY_HEAP = "64k"


def test_arithmetic():
    assert 1 + 1 == 2


def test_struct_pack_into():
    buf = bytearray(4)
    struct.pack_into(">HH", buf, 0, 0x1234, 5683)
    assert bytes(buf) == b"\x12\x34\x16\x33"


def test_exception_carries_value():
    try:
        raise ValueError(132)
    except ValueError as e:
        assert e.args[0] == 132
