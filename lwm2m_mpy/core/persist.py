"""Configuration that survives a reboot: the Security (0), Server (1) and Access Control (2) objects'
instances, in one small
JSON file written atomically (a temporary file, then a rename), so a power cut leaves the old file or the
new one, never half of one. A file that does not read back cleanly is ignored with a clear log line and
the factory configuration stands: never a crash loop.

Format: {"lwm2m_mpy": 1, "objects": {"0": {"0": {"0": "coap://...", "3": {"hex": "6465"}, ...}}, "1": ...}}
(bytes as {"hex": ...}; objlnk values as [oid, iid]). Imported when a `state` file is given.
"""
import os

try:
    import json
except ImportError:  # some very small ports name it ujson
    import ujson as json

from ..errors import CoapError

_KEPT = (0, 1, 2)  # the objects that are configuration, not live data
_VERSION = "lwm2m_mpy"


def _out(v):
    if isinstance(v, (bytes, bytearray)):
        return {"hex": bytes(v).hex()}
    if isinstance(v, dict):  # a multiple resource
        return {"multi": {str(k): _out(x) for k, x in v.items()}}
    if isinstance(v, tuple):
        return list(v)
    return v


def _in(v):
    if isinstance(v, dict):
        if "hex" in v:
            return bytes.fromhex(v["hex"])
        return {int(k): _in(x) for k, x in v["multi"].items()}
    if isinstance(v, list):
        return tuple(v)
    return v


def save(client, path):
    """Write the kept objects to `path` (via path + ".tmp" and a rename)."""
    doc = {_VERSION: 1, "objects": {str(oid): {str(iid): {str(rid): _out(v) for rid, v in inst.items()}
                                              for iid, inst in client.objs[oid].inst.items()}
                                    for oid in _KEPT if oid in client.objs}}
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(doc, f)
    os.rename(tmp, path)  # atomic on POSIX and on MicroPython's FAT/littlefs: the old file or the new one


def load(client, path):
    """Replace the kept objects' instances with what `path` holds; False (and a log line) when there is
    no such file or it does not read back cleanly, leaving the factory configuration as it is."""
    try:
        with open(path) as f:
            doc = json.load(f)
        if not isinstance(doc, dict) or doc.get(_VERSION) != 1:
            raise ValueError("not a lwm2m_mpy state file")
        got = {}
        for oid, insts in doc["objects"].items():
            oid = int(oid)
            if oid not in _KEPT:
                raise ValueError("object %d is not kept" % oid)
            if oid == 2 and oid not in client.objs:  # access control arrives with a second server
                from ..tables import o2

                client.add(o2.T)
            got[oid] = {int(iid): {int(rid): _in(v) for rid, v in inst.items()} for iid, inst in insts.items()}
            obj = client.objs[oid]
            for inst in got[oid].values():
                for rid in inst:
                    if obj.res(rid) < 0:
                        raise ValueError("no resource /%d/x/%d" % (oid, rid))
        if not got.get(0):
            raise ValueError("no Security instance")
    except OSError:
        return False  # no file yet: the first start
    except (ValueError, KeyError, TypeError, AttributeError, CoapError) as e:
        if client.log:
            client.log("stored configuration %s unreadable (%s): factory configuration" % (path, e))
        return False
    for oid, insts in got.items():
        client.objs[oid].inst.clear()
        client.objs[oid].inst.update(insts)
    if client.log:
        client.log("configuration from %s" % path)
    return True
