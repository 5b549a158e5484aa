"""Writes into a stream, block by block (RFC 7959 §2.3 Block1 on the server side; LwM2M 1.1 Core §6.3.3).

core/dm.py sends here every Write that carries Block1. Its target must be a resource with a stream hook
(core/store.py kind 3, under `3 << 26 | iid << 16 | rid`, called `fn(offset, payload, more)`); Block1 to
anything else stays what it was, an unrecognised critical option (4.02). Each block's payload goes to
the hook as a memoryview into the receive buffer: nothing is buffered. All that is kept between blocks is
the offset each stream expects next. (A Write without Block1 is an ordinary one, core/changes.py: the
resource's setter hears the value.) The hook may carry `max` (the largest whole payload in bytes: a larger
Size1 is answered 4.13 with our Size1) and `szx` (the largest block it wants: a larger block is still
taken when it is the next one, and the answer names the smaller size, §2.3). A hook raising CoapError
fails the transfer with that code. Retransmitted blocks never get here: the exchange answers them from its
duplicate cache.
"""
from micropython import const

from ..errors import CoapError
from ..coap.block import decode, value
from .dm import resource

_STREAM = const(3 << 26)
_W = const(2)
_POST = const(2)
_PUT = const(3)
_CONTENT_FORMAT = const(12)
_BLOCK1 = const(27)
_SIZE1 = const(60)
_AROUND = const(64)  # header, token and options around a block's payload in one datagram

_next = {}  # hook key -> the offset of the block expected next, while a transfer is under way


def write(dm, obj, m, w):
    path = dm.path
    key = _STREAM | path[1] << 16 | path[2]
    fn = obj.hooks.get(key) if dm.plen == 3 else None
    if fn is None:  # Block1 is a critical option (RFC 7252 §5.4.1): only streams take it
        raise CoapError(130, "no block-wise transfer to this path")
    if m.code != _PUT and m.code != _POST:
        raise CoapError(133, "method not allowed here")
    obj.instance(path[1])
    resource(obj, path[2], _W)
    cf = m.uint(_CONTENT_FORMAT)
    if cf is not None and cf != 42 and cf != 1544:  # opaque (or its pre-1.0 number): bytes as they come
        raise CoapError(143, "a block-wise Write is opaque")
    num, more, szx = decode(m.uint(_BLOCK1))
    top = getattr(fn, "max", 0)
    if top and m.uint(_SIZE1, 0) > top:  # RFC 7959 §2.9.3, §4: too large, and how much would fit
        _next.pop(key, None)
        w.option(_SIZE1, top)
        return 141
    mv = m.payload()
    n = len(mv)
    size = 16 << szx
    if more and n != size:
        raise CoapError(128, "block of %d bytes, not %d" % (n, size))
    off = num * size
    if num and _next.get(key) != off:  # a gap, a block again after others, or no transfer under way
        _next.pop(key, None)
        raise CoapError(136, "block %d out of order" % num)
    _next.pop(key, None)
    fn(off, mv, more)
    if more:
        _next[key] = off + n
    lim = getattr(fn, "szx", 6)
    while lim and (16 << lim) + _AROUND > len(w.buf):  # what our buffer takes (§2.3: the server's size)
        lim -= 1
    w.option(_BLOCK1, value(num, more, min(szx, lim)))
    return 95 if more else 68
