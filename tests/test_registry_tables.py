"""Every object of the OMA registry through the generic object store: `tools/objgen.py --all` writes one
table module per object definition, and a registered sans-IO client serves an instance of each object with
a value in every readable resource; Read (LwM2M 1.1 Core §6.3.1) of the instance as TLV and SenML JSON and
of each resource as plain text (or opaque) comes back equal and of the same type through the host
decoders of tools/lwm2m_codec.py (Core §7.4), written independently of the client's encoders; and Write
(§6.3.3) of every writable resource, TLV (partial update) and text, reads back what the host encoded.
CPython only: 300+ objects in one run."""
import atexit
import importlib.util
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET

import pytest

from test_observe import CHANGED, CONTENT, CONTENT_FORMAT, GET, POST, PUT, Device, opt

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REGISTRY = os.path.join(ROOT, "..", "shared", "oma-registry")
if os.path.join(ROOT, "tools") not in sys.path:
    sys.path.append(os.path.join(ROOT, "tools"))  # appended: tools/ must not shadow other modules

import lwm2m_codec as codec  # noqa: E402

# Registry files that are not object definitions: the object index, reusable resources, SenML units.
NOT_OBJECTS = {"DDF.xml", "Common.xml", "LWM2M_senml_units.xml"}

# Table layout: docs/design.md "Static object tables"
R, W, MULTIPLE = 1, 2, 8
OBJ_MULTIPLE = 1
# Per table type code (0 none ... 9 Corelnk): the codec's type name and the value the test stores
TYPE_NAMES = ("none", "string", "integer", "unsigned", "float", "boolean", "opaque", "time", "objlnk",
              "corelnk")
SAMPLES = (None, "text", -7, 7, 2.5, True, b"\x01\x02", 1700000000, (3, 0), "</3/0>")

UNAUTHORIZED, NOT_FOUND, NOT_ACCEPTABLE, INTERNAL_ERROR = 129, 132, 134, 160
# Objects whose instance, even with these short values, does not fit the default 1152-byte transmit
# buffer as SenML JSON (the client has no block-wise transfer, RFC 7959): that Read answers 5.00
# "message too large" (TLV fits), and a client given a larger buffer serves them. Value: the datagram
# size of the SenML answer.
SENML_TOO_LARGE = {3416: 1297, 3421: 1221, 10326: 1358}


def _generate():
    """Run objgen --all once, at collection: the parametrization below needs the module names it wrote."""
    out = tempfile.mkdtemp(prefix="registry-tables-")
    atexit.register(shutil.rmtree, out, True)
    run = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "objgen.py"), "--all", "-o", out],
                         capture_output=True, text=True, timeout=120)
    return out, run


GENERATED, OBJGEN_RUN = _generate()
MODULES = sorted((name[:-3] for name in os.listdir(GENERATED) if name.endswith(".py")),
                 key=lambda name: int(name[1:]))


def load(name):
    spec = importlib.util.spec_from_file_location(name, os.path.join(GENERATED, name + ".py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def records(table):
    """(oid, object flags, [(rid, type, flags)]) of a table."""
    oid, oflags, _, _, count = struct.unpack_from(">HBBBH", table, 0)
    assert len(table) == 7 + 4 * count
    return oid, oflags, [struct.unpack_from(">HBB", table, 7 + 4 * i) for i in range(count)]


def strict(value):
    """The value with its type beside it, so that True does not pass for 1, nor 2 for 2.0."""
    if isinstance(value, dict):
        return {key: strict(item) for key, item in value.items()}
    return type(value).__name__, value


def test_objgen_all_writes_one_module_per_object_definition():
    assert os.path.isdir(REGISTRY), REGISTRY  # a missing registry fails, never skips
    assert OBJGEN_RUN.returncode == 0, OBJGEN_RUN.stderr
    assert OBJGEN_RUN.stderr == ""
    # What the registry holds, read without objgen: an object definition is <LWM2M><Object><ObjectID>.
    oids, others = set(), set()
    for name in os.listdir(REGISTRY):
        if name.endswith(".xml"):
            root = ET.parse(os.path.join(REGISTRY, name)).getroot()
            oid = root.findtext("Object/ObjectID") if root.tag == "LWM2M" else None
            if oid is None:
                others.add(name)
            else:
                oids.add(int(oid))
    assert others == NOT_OBJECTS  # skipped by objgen, silently and with exit status 0
    assert len(oids) > 300
    assert MODULES == ["o%d" % oid for oid in sorted(oids)]
    # One line per module written: its path
    assert sorted(OBJGEN_RUN.stdout.split()) == sorted(os.path.join(GENERATED, name + ".py") for name in MODULES)


def _instance(device, oid, oflags, table, values):
    """Put `values` into an instance of `oid` on the device's client; returns the instance id."""
    client = device.c
    obj = client.objs.get(oid)
    if obj is None:
        client.add(table, 0, values)
        return 0
    # The client made 0 Security, 1 Server and 3 Device itself (objects/core.py) from the committed
    # tables, which are the generated ones (tests/test_objgen.py checks the files; here the bytes).
    assert bytes(obj.t) == table
    if oflags & OBJ_MULTIPLE:
        # Security and Server allow several instances: a second one, so that instance 0, the account
        # the client registered with (server URI in /0/0, lifetime and binding in /1/0), stays as it is.
        client.add(table, 1, values)
        return 1
    # Device is single-instance: replace instance 0. Its getters (current time, free memory) would win
    # over stored values (core/store.py Obj.get), so they go; its execute hooks do not matter to Read.
    obj.inst[0] = dict(values)
    for key in [key for key in obj.hooks if key < 1 << 26 and key >> 16 == 0]:
        del obj.hooks[key]
    return 0


@pytest.mark.parametrize("name", MODULES)
def test_registry_object_is_served(name):
    table = load(name).T
    oid, oflags, recs = records(table)
    assert name == "o%d" % oid
    # A value of its type in every readable resource with a data type; executables (type 0, E) and
    # write-only resources get none. 10482/5 "Read data" is R with an empty <Type> (a registry quirk:
    # the text says it is an executable) and gets none either: it is checked below to be absent.
    types = {rid: TYPE_NAMES[rtype] for rid, rtype, flags in recs if flags & R and rtype}
    values = {rid: {0: SAMPLES[rtype], 1: SAMPLES[rtype]} if flags & MULTIPLE else SAMPLES[rtype]
              for rid, rtype, flags in recs if flags & R and rtype}
    device = Device()
    iid = _instance(device, oid, oflags, table, values)
    base = "/%d/%d" % (oid, iid)

    tlv = device.ask(GET, base, accept=codec.TLV)
    senml = device.ask(GET, base, accept=codec.SENML_JSON)
    if oid in SENML_TOO_LARGE:
        assert senml.code == INTERNAL_ERROR and bytes(senml.payload()) == b"message too large"
        device = Device(buffer=2048)
        iid = _instance(device, oid, oflags, table, values)
        senml = device.ask(GET, base, accept=codec.SENML_JSON)
        assert len(device.link.sent[-1]) == SENML_TOO_LARGE[oid]
    if oid == 0:
        # §6.3: the Security object is for the Bootstrap-Server only; the DM refuses it with 4.01 for
        # every format and path, whatever the instance holds.
        assert tlv.code == senml.code == UNAUTHORIZED
        for rid in values:
            assert device.ask(GET, "%s/%d" % (base, rid), accept=codec.TEXT).code == UNAUTHORIZED
        return

    assert tlv.code == CONTENT, bytes(tlv.payload())
    assert int.from_bytes(opt(tlv, CONTENT_FORMAT), "big") == codec.TLV
    assert strict(codec.decode_tlv(bytes(tlv.payload()), types)) == strict(values)

    assert senml.code == CONTENT, bytes(senml.payload())
    assert int.from_bytes(opt(senml, CONTENT_FORMAT), "big") == codec.SENML_JSON
    expected = {}
    for rid, value in values.items():
        if isinstance(value, dict):
            expected.update(("%s/%d/%d" % (base, rid, riid), item) for riid, item in value.items())
        else:
            expected["%s/%d" % (base, rid)] = value
    assert strict(codec.decode_senml(bytes(senml.payload()), codec.SENML_JSON)) == strict(expected)

    # Each resource on its own: plain text for every type but Opaque (its own format, 42, instead:
    # text asks for 4.06); a multiple resource instance by instance.
    for rid, rtype, flags in recs:
        if not flags & R:
            continue
        path = "%s/%d" % (base, rid)
        if not rtype:  # 10482/5: readable, no data type, no value: not instantiated
            assert device.ask(GET, path, accept=codec.TEXT).code == NOT_FOUND
            continue
        kind = TYPE_NAMES[rtype]
        if flags & MULTIPLE:
            paths = [("%s/%d" % (path, riid), value) for riid, value in sorted(values[rid].items())]
            # a whole multiple resource has no text form
            assert device.ask(GET, path, accept=codec.TEXT).code == NOT_ACCEPTABLE
        else:
            paths = [(path, values[rid])]
        for path, value in paths:
            if kind == "opaque":
                assert device.ask(GET, path, accept=codec.TEXT).code == NOT_ACCEPTABLE
                r = device.ask(GET, path, accept=codec.OPAQUE)
                assert r.code == CONTENT and int.from_bytes(opt(r, CONTENT_FORMAT), "big") == codec.OPAQUE
                assert bytes(r.payload()) == value
                continue
            r = device.ask(GET, path, accept=codec.TEXT)
            assert r.code == CONTENT, (path, bytes(r.payload()))
            assert opt(r, CONTENT_FORMAT) in (None, b"")  # 0: text/plain, the empty uint
            payload = bytes(r.payload())
            assert payload == codec.encode_text(value, kind), path
            assert strict(codec.decode_text(payload, kind)) == strict(value), path


# Values other than SAMPLES, for Writes: what a Read returns afterwards must be these
OTHERS = (None, "other", -9, 9, 4.5, False, b"\x03\x04", 1800000000, (4, 1), "</4/0>")


@pytest.mark.parametrize("name", MODULES)
def test_registry_object_is_written(name):
    """Write (Core §6.3.3) through the generic store: a partial-update TLV Write (POST /oid/iid) of every
    writable resource of the object, then a plain-text Write (PUT) of one single-value resource; a TLV Read
    gives back what was written, decoded by the host codec."""
    from test_access import send

    table = load(name).T
    oid, oflags, recs = records(table)
    if oid == 0:  # the Security object is the Bootstrap-Server's: 4.01 for a server (test above)
        return
    types = {rid: TYPE_NAMES[rtype] for rid, rtype, flags in recs if rtype}
    values = {rid: {0: SAMPLES[rtype], 1: SAMPLES[rtype]} if flags & MULTIPLE else SAMPLES[rtype]
              for rid, rtype, flags in recs if flags & R and rtype}
    writes = {rid: {0: OTHERS[rtype]} if flags & MULTIPLE else OTHERS[rtype]
              for rid, rtype, flags in recs if flags & W and rtype}
    device = Device()
    iid = _instance(device, oid, oflags, table, values)
    base = "/%d/%d" % (oid, iid)
    if oid == 1 and iid == 1:  # a second Server instance needs a Short Server ID of its own
        writes.pop(0, None)
    if not writes:
        return
    r = send(device, POST, base, codec.TLV, codec.encode_tlv_resources(writes, types))
    assert r.code == CHANGED, (name, bytes(r.payload()))
    expected = dict(values)
    for rid, value in writes.items():
        expected[rid] = {**(values.get(rid) or {}), **value} if isinstance(value, dict) else value
    readable = {rid: v for rid, v in expected.items() if rid in values}
    got = device.ask(GET, base, accept=codec.TLV)
    assert got.code == CONTENT
    assert strict(codec.decode_tlv(bytes(got.payload()), types)) == strict(readable)
    single = [rid for rid, rtype, flags in recs if flags & W and flags & R and rtype and not flags & MULTIPLE
              and TYPE_NAMES[rtype] != "opaque" and not (oid == 1 and rid == 0)]
    if single:
        rid = single[0]
        value = SAMPLES[[rt for r_, rt, f in recs if r_ == rid][0]]
        r = send(device, PUT, "%s/%d" % (base, rid), codec.TEXT, codec.encode_text(value, types[rid]))
        assert r.code == CHANGED, (name, rid, bytes(r.payload()))
        r = device.ask(GET, "%s/%d" % (base, rid), accept=codec.TEXT)
        assert strict(codec.decode_text(bytes(r.payload()), types[rid])) == strict(value)
