"""Block options of RFC 7959 (§2.2): a Block1/Block2 value <-> (NUM, M, SZX); a block is 16 << SZX bytes.

Loaded with firmware updates only (core/blockwise.py for Block1 on the device side, fota/pull.py for Block2).
"""
from micropython import const

from ..errors import CoapError

# Option numbers (RFC 7959 §2.1, §4) and the response codes block-wise transfers use (§2.9)
BLOCK2 = const(23)
BLOCK1 = const(27)
SIZE2 = const(28)
SIZE1 = const(60)
CONTINUE = const(95)  # 2.31
INCOMPLETE = const(136)  # 4.08 Request Entity Incomplete
TOO_LARGE = const(141)  # 4.13 Request Entity Too Large


def decode(v):
    """(num, more, szx) of a Block option's uint value. SZX 7 (BERT, RFC 8323: reliable transports only)
    and values longer than the option's 3 bytes are a bad request (4.00)."""
    if v > 0xFFFFFF or v & 7 == 7:
        raise CoapError(128, "bad block option")
    return v >> 4, bool(v & 8), v & 7


def value(num, more, szx):
    """The uint value of a Block option: NUM << 4 | M << 3 | SZX (RFC 7959 §2.2)."""
    return num << 4 | (8 if more else 0) | szx
