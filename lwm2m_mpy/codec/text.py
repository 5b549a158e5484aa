"""Plain text (content format 0, LwM2M 1.1 Core §7.4.1): one resource value as its textual form."""
from micropython import const

from ..errors import CoapError

_STRING = const(1)
_FLOAT = const(4)
_BOOLEAN = const(5)
_OPAQUE = const(6)
_OBJLNK = const(8)
_CORELNK = const(9)


def format_value(v, rtype):
    """Text form of a value: integers in decimal, booleans 0/1, Objlnk as "oid:iid" (§7.4.1)."""
    if rtype == _STRING or rtype == _CORELNK:
        return v
    if rtype == _BOOLEAN:
        return "1" if v else "0"
    if rtype == _FLOAT:
        return repr(float(v))
    if rtype == _OBJLNK:
        return "%d:%d" % (v[0], v[1])
    if rtype == _OPAQUE:
        raise CoapError(134, "opaque has no text form")  # 4.06: ask for 42 instead
    return str(int(v))
