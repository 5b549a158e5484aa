"""Objects, instances and resource values over the static tables (LwM2M 1.1 Core §5.1; format in docs/design.md)."""
from micropython import const

from ..errors import CoapError

# Table layout and flag bits: docs/design.md "Static object tables" (the modules that test flags
# keep their own private consts, which mpy-cross inlines).
_NOT_FOUND = const(132)
# Hooks live in Obj.hooks under kind << 26 | iid << 16 | rid (kind 0 getter, 1 setter, 2 execute):
# under 2**30, a small int even on 32-bit boards, so a lookup allocates nothing. Hooks need iid < 1024.


class Obj:
    """One object: its table `T` (bytes) plus instances {iid: {rid: value}} and app hooks."""

    def __init__(self, table):
        self.t = table
        self.oid = table[0] << 8 | table[1]
        self.inst = {}
        self.hooks = {}

    def res(self, rid):
        """`type << 8 | flags` of resource `rid` by binary search in the table (an int: no tuple to
        allocate on every request), or -1 if the table does not define it."""
        t = self.t
        hi = t[5] << 8 | t[6]
        if rid < hi:  # most objects number their resources 0, 1, 2...: record `rid` is often `rid`
            o = 7 + 4 * rid
            if t[o] << 8 | t[o + 1] == rid:
                return t[o + 2] << 8 | t[o + 3]
        lo = 0
        while lo < hi:
            mid = (lo + hi) >> 1
            o = 7 + 4 * mid
            r = t[o] << 8 | t[o + 1]
            if r == rid:
                return t[o + 2] << 8 | t[o + 3]
            if r < rid:
                lo = mid + 1
            else:
                hi = mid
        return -1

    def instance(self, iid):
        d = self.inst.get(iid)
        if d is None:
            raise CoapError(_NOT_FOUND, "no instance /%d/%d" % (self.oid, iid))
        return d

    def present(self, iid, rid):
        """True if the resource is instantiated: a value, a getter, or (executables) an execute hook."""
        k = iid << 16 | rid
        return rid in self.inst[iid] or k in self.hooks or (2 << 26 | k) in self.hooks

    def get(self, iid, rid):
        """Current value (a getter wins over a stored value); 4.04 if the resource is not instantiated."""
        hooks = self.hooks
        if hooks:
            fn = hooks.get(iid << 16 | rid)  # getters are hook kind 0: the key has no kind bits
            if fn:
                return fn()
        d = self.inst.get(iid)
        if d is not None and rid in d:
            return d[rid]
        raise CoapError(_NOT_FOUND, "no resource /%d/%d/%d" % (self.oid, iid, rid))
